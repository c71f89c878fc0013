"""The session's cleanup without a server: it deletes over several connections at once,
accounts before creators, every resource exactly once, and stops when the target stops
answering. httpx's MockTransport answers; a slow DELETE makes the overlap visible."""

from __future__ import annotations

import itertools
import threading
import time
import uuid

import httpx
import pytest

from conformance import ApiClient, Credentials, Principal, _provisioning
from conformance._config import SuiteConfig
from conformance._exchange import Exchange
from conformance._provisioning import CLEANUP_CONNECTIONS, Provisioner

DELETE_SECONDS = 0.02


class Target:
    """Creates on POST, deletes (slowly) on DELETE, and remembers how the deletes overlapped."""

    def __init__(
        self, refuse_deletes: bool = False, delete_seconds: float = DELETE_SECONDS
    ) -> None:
        self.refuse_deletes = refuse_deletes
        self.delete_seconds = delete_seconds
        self.delete_threads: set[str] = set()
        self.lock = threading.Lock()
        self.in_flight = 0
        self.most_in_flight = 0
        self.deleted: list[str] = []
        self.delete_ids: list[str] = []
        self.attempts = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(201, json={"data": {"id": str(uuid.uuid4())}})
        with self.lock:
            self.attempts += 1
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.refuse_deletes:
                raise httpx.ConnectError("connection refused", request=request)
            time.sleep(self.delete_seconds)
            with self.lock:
                self.delete_threads.add(threading.current_thread().name)
                self.deleted.append(request.url.path.removeprefix("/v2"))
                self.delete_ids.append(request.headers["x-request-id"])
            return httpx.Response(204)
        finally:
            with self.lock:
                self.in_flight -= 1


def provisioner_for(target: Target) -> Provisioner:
    client = ApiClient(
        "http://target.test/v2",
        Credentials(api_key="ca_key", other_org_api_key="ca_other"),
        run_id="r",
        transport=httpx.MockTransport(target),
    )
    return Provisioner(client, SuiteConfig("http://target.test/v2", client.credentials))


def provision(provisioner: Provisioner, count: int) -> list[str]:
    """Creators and accounts of both organizations, interleaved as scenarios make them."""
    for org, _ in zip(itertools.cycle(["own", "other"]), range(count), strict=False):
        provisioner.creator(org)
        provisioner.account(org)
    return [path for _, path in provisioner]


def test_cleanup_deletes_everything_once_over_several_connections() -> None:
    target = Target()
    provisioner = provisioner_for(target)
    created = provision(provisioner, 8)

    assert provisioner.cleanup() == []

    assert sorted(target.deleted) == sorted(created)
    assert list(provisioner) == []
    assert 1 < target.most_in_flight <= CLEANUP_CONNECTIONS
    assert provisioner.client.budget.reserved == 0


def test_cleanup_answered_at_once_stays_on_one_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On loopback a DELETE's round trip is mostly the client's own work, which threads do
    not overlap: the first DELETE's quick answer keeps the rest on one connection. Here any
    answer within a second counts as quick: a busy CI machine took more than the 2 ms of
    loopback for a DELETE answered at once."""
    monkeypatch.setattr(_provisioning, "OVERLAP_MIN_ROUND_TRIP", 1.0)
    target = Target(delete_seconds=0.0)
    provisioner = provisioner_for(target)
    created = provision(provisioner, 8)
    assert provisioner.cleanup() == []
    assert sorted(target.deleted) == sorted(created)
    assert target.delete_threads == {threading.current_thread().name}


def test_cleanup_deletes_accounts_before_creators() -> None:
    target = Target()
    provisioner = provisioner_for(target)
    provision(provisioner, 6)
    provisioner.cleanup()
    kinds = [path.split("/")[1] for path in target.deleted]
    assert kinds == sorted(kinds)  # every "accounts" before the first "creators"
    assert kinds[0] == "accounts" and kinds[-1] == "creators"


def test_cleanup_request_ids_follow_the_record_not_the_connections() -> None:
    """The ids are drawn in the record's order before any DELETE is sent, so the same run
    sends the same requests whichever connection sends which."""
    target = Target()
    provisioner = provisioner_for(target)
    provision(provisioner, 6)
    sent_before = provisioner.client.next_request_id()
    provisioner.cleanup()
    first = int(sent_before.rsplit("-", 1)[1]) + 1
    assert sorted(target.delete_ids, key=lambda rid: int(rid.rsplit("-", 1)[1])) == [
        f"conformance-r-{n}" for n in range(first, first + len(target.deleted))
    ]


def test_sequential_cleanup_keeps_one_connection() -> None:
    """What the exit safety net uses: no thread is started while the interpreter exits."""
    target = Target()
    provisioner = provisioner_for(target)
    created = provision(provisioner, 4)
    assert provisioner.cleanup(connections=1) == []
    assert target.most_in_flight == 1
    assert sorted(target.deleted) == sorted(created)


def test_cleanup_stops_when_the_target_stops_answering() -> None:
    target = Target(refuse_deletes=True)
    provisioner = provisioner_for(target)
    created = provision(provisioner, 8)

    leftovers = provisioner.cleanup()

    assert len(leftovers) == len(created)
    failed = [entry for entry in leftovers if "cannot connect" in entry]
    assert 1 <= len(failed) <= CLEANUP_CONNECTIONS
    assert target.attempts == len(failed)  # no connection insisted after the first failure
    assert all(entry.endswith("(not attempted)") for entry in leftovers if entry not in failed)
    assert list(provisioner) == []


@pytest.mark.parametrize("kind", ["account", "creator"])
def test_cleanup_of_a_single_resource(kind: str) -> None:
    target = Target()
    provisioner = provisioner_for(target)
    path = getattr(provisioner, kind)()
    assert provisioner.cleanup() == []
    assert target.deleted == [f"/{kind}s/{path}"]


def spent_window() -> dict[str, str]:
    return {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(time.time()) + 3600)}


def spent_window_target(accounts: int, deletes: list[str]) -> Provisioner:
    """A provisioner that made ``accounts`` accounts on a target whose rate-limit window is
    spent for the next hour: every other request is a 429 (DELETEs noted in ``deletes``)."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(201, json={"data": {"id": str(uuid.uuid4())}})
        if request.method == "DELETE":
            deletes.append(request.url.path)
        return httpx.Response(429, headers={**spent_window(), "Retry-After": "3600"})

    client = ApiClient(
        "http://target.test/v2", Credentials(api_key="ca_key"), run_id="r",
        transport=httpx.MockTransport(handler),
    )
    provisioner = Provisioner(client, SuiteConfig("http://target.test/v2", client.credentials))
    for _ in range(accounts):
        provisioner.account()
    return provisioner


def test_an_interrupted_runs_cleanup_does_not_wait_out_a_spent_window() -> None:
    """After Ctrl-C or a cancelled CI job there are seconds, not the hour a spent window may
    last: a refused DELETE is left to `creatoraudit-conformance cleanup` and said so."""

    provisioner = spent_window_target(4, deletes=[])
    provisioner.client.get("/health")  # the target says the window is spent (so do the 429s)
    started = time.monotonic()
    leftovers = provisioner.cleanup(hurry=True)
    assert time.monotonic() - started < 10
    assert len(leftovers) == 4
    assert all("(DELETE answered 429)" in e or "(not attempted)" in e for e in leftovers)
    assert any("(DELETE answered 429)" in entry for entry in leftovers)


def test_an_interrupted_runs_cleanup_stops_at_the_first_refusal_of_a_spent_window() -> None:
    """Each DELETE would wait and be refused too (seen: 7-14 s to end an interrupted run);
    the rest is listed for `cleanup` at once."""
    deletes: list[str] = []
    provisioner = spent_window_target(40, deletes)
    leftovers = provisioner.cleanup(hurry=True)
    assert len(leftovers) == 40
    assert len(deletes) <= 2 * CLEANUP_CONNECTIONS, deletes  # each connection: one, retried
    assert sum("(not attempted)" in entry for entry in leftovers) >= 40 - CLEANUP_CONNECTIONS


def test_interrupts_are_not_held_while_a_create_waits_for_the_window() -> None:
    """Creating holds Ctrl-C and SIGTERM for the one request, so that nothing is created
    unrecorded; waiting for a spent window to reset happens before, interruptible."""
    import signal

    held_while_waiting: list[bool] = []

    def sleep(seconds: float) -> None:
        held_while_waiting.append(signal.getsignal(signal.SIGTERM) is not original)

    original = signal.getsignal(signal.SIGTERM)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(201, headers=spent_window(), json={"data": {"id": str(uuid.uuid4())}})

    client = ApiClient(
        "http://target.test/v2", Credentials(api_key="ca_key"), run_id="r",
        transport=httpx.MockTransport(handler), sleep=sleep,
    )
    provisioner = Provisioner(client, SuiteConfig("http://target.test/v2", client.credentials))
    provisioner.account()
    provisioner.account()  # the first answer said the window is spent: this one waits first
    assert held_while_waiting == [False]


def test_an_interrupt_another_thread_receives_mid_create_waits_until_it_is_recorded() -> None:
    """A signal sent to the process goes to any thread that does not block it, and Python runs
    its handler in the main thread, in the middle of the create: blocking the signal in the
    main thread alone let an account be created and never recorded."""
    import signal

    created_on_target: list[str] = []
    answering, signalled = threading.Event(), threading.Event()

    def watchdog_like() -> None:  # started before the create, like the client's watchdog
        answering.wait(10)
        signal.raise_signal(signal.SIGINT)  # delivered to this thread, which does not block it
        signalled.set()

    def handler(request: httpx.Request) -> httpx.Response:
        resource_id = str(uuid.uuid4())
        created_on_target.append(resource_id)  # the target has made it; the answer is on its way
        answering.set()
        signalled.wait(10)
        for _ in range(1000):  # Python runs the handler at one of these steps, unless held
            pass
        return httpx.Response(201, json={"data": {"id": resource_id}})

    elsewhere = threading.Thread(target=watchdog_like, daemon=True)
    elsewhere.start()
    client = ApiClient(
        "http://target.test/v2", Credentials(api_key="ca_key"), run_id="r",
        transport=httpx.MockTransport(handler),
    )
    provisioner = Provisioner(client, SuiteConfig("http://target.test/v2", client.credentials))
    with pytest.raises(KeyboardInterrupt):
        provisioner.account()
    assert [path for _, path in provisioner] == [f"/accounts/{created_on_target[0]}"]


def test_a_create_a_test_sends_as_another_key_is_deleted_with_that_key() -> None:
    """The authorization matrix creates as each principal; what the other organization's key
    made is deleted with that key (the own key would get a 404 and leave it)."""
    keys: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        keys.append(request.headers.get("authorization", ""))
        if request.method == "POST":
            return httpx.Response(201, json={"data": {"id": str(uuid.uuid4())}})
        return httpx.Response(204)

    client = ApiClient(
        "http://target.test/v2", Credentials(api_key="ca_key", other_org_api_key="ca_other"),
        run_id="r", transport=httpx.MockTransport(handler),
    )
    provisioner = Provisioner(client, SuiteConfig("http://target.test/v2", client.credentials))

    def create() -> Exchange:
        return client.post("/creators", json={"name": "x"}, principal=Principal.OTHER_ORG)

    provisioner.checked_create("creator", create, Principal.OTHER_ORG)
    assert provisioner.cleanup() == []
    assert keys == ["Bearer ca_other", "Bearer ca_other"]


def test_a_create_a_test_checks_itself_is_cleaned_up_when_the_test_stops_short() -> None:
    """The idempotency scenarios create and delete on their own; an interrupt (or failure)
    between the two left the resource on the target, where only `cleanup` found it."""
    target = Target()
    provisioner = provisioner_for(target)
    client = provisioner.client

    def create() -> Exchange:
        return client.post("/creators", json={"name": "conformance-r-idem"})

    kept = provisioner.checked_create("creator", create)
    replayed = provisioner.checked_create("creator", lambda: kept)  # an idempotent replay
    deleted_by_test = provisioner.checked_create("creator", create)
    provisioner.delete_checked("creator", deleted_by_test.json()["data"]["id"])
    assert [path for _, path in provisioner] == [f"/creators/{kept.json()['data']['id']}"]
    assert replayed is kept
    assert provisioner.cleanup() == []
    assert sorted(target.deleted) == sorted(
        f"/creators/{e.json()['data']['id']}" for e in (kept, deleted_by_test)
    )
    assert client.budget.reserved == 0
