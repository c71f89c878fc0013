"""Test data life cycle: fresh creators and accounts per scenario, all removed at the end.

Scenarios need a first link to really be a first link, so every scenario takes new resources.
Each one carries the run id in its name, is remembered the moment it exists, and is deleted at
session end, whether tests passed, failed or were interrupted. A target without the create
endpoints can be given a file of existing ids instead; then nothing is created or deleted.
"""

from __future__ import annotations

import atexit
import json
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path
from typing import Any

from conformance._client import ApiClient
from conformance._config import ConfigurationError, Principal, SuiteConfig
from conformance._exchange import Exchange
from conformance._limits import BudgetExhausted, TransportFailure
from conformance._rules import RuleViolation

ORGS = {"own": Principal.FULL, "other": Principal.OTHER_ORG}
KINDS = {"creator": "/creators", "account": "/accounts"}
#: Answers that mean "this target has no such create endpoint": skip. Anything else a create
#: answers (a redirect, a 5xx, a 2xx without an id) is the target's fault: the check fails.
ENDPOINT_ABSENT = frozenset({404, 405, 501})
#: connections the cleanup deletes over at once (a remote target's round trips overlap)
CLEANUP_CONNECTIONS = 4
#: a DELETE answered sooner than this (loopback, the embedded server) was mostly the client's
#: own work, which threads do not overlap (one interpreter lock), so the cleanup stays on one
#: connection: on loopback, four were slower than one (65 deletes: 44.7 -> 38.6 ms, medians
#: of seven alternating runs timed around the cleanup; the run's CPU 317 -> 288 ms)
OVERLAP_MIN_ROUND_TRIP = 0.002
#: the order of the cleanup's waves, by path
DELETION_ORDER = ("/accounts/", "/creators/")
#: the longest wait of an interrupted run's cleanup for a spent rate-limit window (seconds)
HURRIED_WAIT = 0.5
#: provisioners whose safety net is up (see :meth:`Provisioner.delete_at_exit`)
_EXIT_NETS: list[Provisioner] = []


class _Stopped(Exception):
    """A cleanup connection was told to stop while it waited."""


class ProvisioningFailed(AssertionError):
    """The create endpoint exists but did not create; the check that needed the data fails."""


class ProvisioningUnavailable(Exception):
    """Test data of this kind cannot be had; the message says why and what would enable it."""


#: the signals that interrupt a run (Ctrl-C, a cancelled CI job)
INTERRUPTS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM while a resource is created and recorded, so an interrupt cannot
    land between the server creating it and the run remembering to delete it. The wait is
    bounded by the request's own time bound; the signal is delivered right after.

    The Python handlers are swapped, not this thread's signal mask: a signal sent to the
    process goes to any thread that does not block it (the client's watchdog, a server
    thread), and Python then runs the handler in the main thread all the same, mid-create
    (seen: one account left, unnamed, by a lane stopped at the wrong moment)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []

    def hold(signum: int, frame: object) -> None:
        pending.append(signum)

    previous = {}
    for signum in INTERRUPTS:
        handler = signal.getsignal(signum)
        if handler not in (signal.SIG_IGN, None):  # an ignored interrupt stays ignored
            previous[signum] = signal.signal(signum, hold)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if pending:
            signal.raise_signal(pending[0])


@dataclass
class IdPool:
    """Existing ids from a file: ``{"own": {"creators": [...], "accounts": [...]}, "other": ...}``.
    Accounts are handed out once each, since a scenario links them; creators are handed out in
    turn and reused, since linking never changes a creator."""

    ids: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    _turns: dict[tuple[str, str], int] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> IdPool:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"ids file {path}: cannot be read as JSON ({exc})") from None
        if not isinstance(raw, dict):
            raise ConfigurationError(
                f'ids file {path}: must be a JSON object like {{"own": {{"creators": [...], '
                f'"accounts": [...]}}, "other": {{...}}}}'
            )
        pool = cls()
        for org in ORGS:
            section = raw.get(org, {})
            if not isinstance(section, dict):
                raise ConfigurationError(
                    f'ids file {path}: "{org}" must be an object of "creators" and "accounts"'
                )
            for kind in KINDS:
                values = section.get(f"{kind}s", [])
                if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                    raise ConfigurationError(
                        f"ids file {path}: {org}.{kind}s must be a list of ids"
                    )
                pool.ids[(org, kind)] = list(values)
        if not any(pool.ids.values()):
            raise ConfigurationError(
                f'ids file {path}: names no id (expected "own" and "other", each with '
                '"creators" and "accounts")'
            )
        return pool

    def take(self, org: str, kind: str) -> str:
        remaining = self.ids.get((org, kind), [])
        if not remaining:
            raise ProvisioningUnavailable(
                f"the ids file has no unused {kind} of the {org} organization left; "
                f"add more ids or let the suite create data (drop --ids-file)"
            )
        if kind == "account":
            return remaining.pop(0)
        turn = self._turns.get((org, kind), 0)
        self._turns[(org, kind)] = turn + 1
        return remaining[turn % len(remaining)]


def _fill(template: Any, run_id: str, n: int) -> Any:
    """Substitute ``{run_id}`` and ``{n}`` in every string of a body template."""
    if isinstance(template, str):
        return template.replace("{run_id}", run_id).replace("{n}", str(n))
    if isinstance(template, dict):
        return {k: _fill(v, run_id, n) for k, v in template.items()}
    if isinstance(template, list):
        return [_fill(v, run_id, n) for v in template]
    return template


def run_exit_nets() -> list[str]:
    """What the interpreter's exit does for this process's provisioners whose cleanup did not
    run to its end, for a process that ends without it: a lane ends with ``os._exit``, and an
    interrupt that cut its session's cleanup short left the rest on the target, unnamed.
    Returns what each net says, for the caller to print."""
    said = [provisioner.delete_what_is_left() for provisioner in list(_EXIT_NETS)]
    return [text for text in said if text]


class Provisioner:
    """Creates tagged resources through the API and deletes exactly those at the end."""

    def __init__(self, client: ApiClient, config: SuiteConfig, pool: IdPool | None = None) -> None:
        self.client = client
        self.config = config
        self.pool = pool
        self.created: list[tuple[Principal, str]] = []
        self._numbers = count(1)
        self._exit_net = False
        #: (org, slot) -> a shared owner's id and the exchange that created it (None: an ids file)
        self._owners: dict[tuple[str, int], tuple[str, Exchange | None]] = {}

    def delete_at_exit(self) -> None:
        """A safety net under session teardown: if the process exits with resources still
        recorded (pytest itself failed while reporting an interrupt, or the teardown was cut
        short), the interpreter's exit deletes them (a lane, which ends without the
        interpreter's exit, calls :func:`run_exit_nets`). :meth:`cleanup` removes the net."""
        if not self._exit_net:
            atexit.register(self._cleanup_at_exit)
            _EXIT_NETS.append(self)
            self._exit_net = True

    def _cleanup_at_exit(self) -> None:
        said = self.delete_what_is_left()
        if said:
            print(said, file=sys.stderr)

    def delete_what_is_left(self) -> str | None:
        """The safety net's work: delete what is still recorded, and say how it went (None:
        nothing was left)."""
        if not self.created:
            return None
        count_before = len(self.created)
        try:
            leftovers = self.cleanup(connections=1)  # no new threads while the process exits
        except BaseException as exc:  # at exit nothing is left to report it; say it here
            leftovers = [f"{path} (not attempted: {type(exc).__name__})" for _, path in self]
        return (
            f"creatoraudit-conformance: deleted {count_before - len(leftovers)} of "
            f"{count_before} test resources at exit (the session's own cleanup did not finish)"
            + (f"; still there: {', '.join(leftovers)}" if leftovers else "")
        )

    def creator(self, org: str = "own") -> str:
        return self._new(org, "creator")

    def account(self, org: str = "own") -> str:
        return self._new(org, "account")

    def owner(self, org: str = "own", slot: int = 0) -> tuple[str, Exchange | None]:
        """A creator to link accounts to, made once per session and slot and shared by every
        test that asks: linking never changes what a creator is (creators of an ids file are
        reused the same way), so tests that only need a creator to own a fresh account need
        not make one each, and a shared target is left with fewer resources. Also returns the
        exchange that created it, so a test's recorded sequence can include it and still
        replay on its own."""
        key = (org, slot)
        if key not in self._owners:
            self._owners[key] = self._create(org, "creator")
        return self._owners[key]

    def _new(self, org: str, kind: str) -> str:
        return self._create(org, kind)[0]

    def _create(self, org: str, kind: str) -> tuple[str, Exchange | None]:
        if self.pool is not None:
            return self.pool.take(org, kind), None
        principal = ORGS[org]
        if not self.client.has_key(principal):
            raise ProvisioningUnavailable(
                f"creating a {kind} of the {org} organization needs {principal.env_var}, "
                "which is not set"
            )
        template = self.config.creator_body if kind == "creator" else self.config.account_body
        body = _fill(template, self.config.run_id, next(self._numbers))
        if not self.client.budget.can_reserve(1):  # the create, then the DELETE it reserves
            raise BudgetExhausted(
                f"the request budget of {self.client.budget.limit} (--max-requests) leaves "
                f"no room to create a {kind} and delete it again"
            )
        # a spent rate-limit window is waited out first: the interrupts held below stay
        # held for one request's time, not for as long as the window lasts
        self.client.pace(principal)
        with interrupts_deferred():
            try:
                exchange = self.client.post(
                    KINDS[kind], principal=principal, json=body, pace=False
                )
            except RuleViolation as exc:  # judged wrong, but it may still have created it
                self._remember(principal, kind, exc.exchange)
                raise
            resource_id = self._remember(principal, kind, exchange)
        if resource_id is not None:
            return resource_id, exchange
        if exchange.status in ENDPOINT_ABSENT:
            raise ProvisioningUnavailable(
                f"POST {KINDS[kind]} did not create a {kind} (got {exchange.status}); the "
                "target may lack the create endpoints: pass --ids-file with existing ids"
            )
        raise ProvisioningFailed(
            f"POST {KINDS[kind]} did not create a {kind}: got {exchange.status}"
            f"{' without a data.id' if exchange.status == 201 else ''}\n{exchange.evidence()}"
        )

    def checked_create(
        self, kind: str, send: Callable[[], Exchange], principal: Principal = Principal.FULL
    ) -> Exchange:
        """``send`` a create that a test checks itself (idempotency, Location, who may
        create), as ``principal``. What it creates is recorded like the suite's own test data
        (and deleted with that key), held from Ctrl-C as :meth:`_new` holds it, so an interrupt
        before the test deletes it (seen: one resource left, silently, by an interrupted run)
        leaves it to the cleanup."""
        with interrupts_deferred():
            try:
                exchange = send()
            except RuleViolation as exc:  # judged wrong, but it may still have created it
                self._remember(principal, kind, exc.exchange)
                raise
            self._remember(principal, kind, exchange)
        return exchange

    def delete_checked(self, kind: str, resource_id: str) -> None:
        """The test's own DELETE of what :meth:`checked_create` made: off the record once sent
        (it spends the DELETE the create reserved)."""
        path = f"{KINDS[kind]}/{resource_id}"
        entry = next((r for r in self.created if r[1] == path), None)
        if entry is None:
            return
        self.client.delete(path, principal=entry[0], cleanup=True)
        self.created.remove(entry)

    def _remember(self, principal: Principal, kind: str, exchange: Exchange) -> str | None:
        """Record a created resource for deletion; its id, or None when nothing was created."""
        data = exchange.json()
        resource_id = data.get("data", {}).get("id") if isinstance(data, dict) else None
        if exchange.status != 201 or not isinstance(resource_id, str):
            return None
        record = (principal, f"{KINDS[kind]}/{resource_id}")
        if record in self.created:  # an idempotent create's replay: the same resource
            return resource_id
        self.created.append(record)
        self.client.budget.reserve()
        return resource_id

    def cleanup(self, connections: int = CLEANUP_CONNECTIONS, hurry: bool = False) -> list[str]:
        """Delete everything this run created, accounts before creators, each kind over up to
        ``connections`` connections at once; return what could not be deleted. ``hurry``
        (the run was interrupted): wait at most a few seconds for a spent rate-limit window,
        and leave what is still refused then to ``creatoraudit-conformance cleanup``.

        Deletes of one kind do not depend on one another, and on a remote target each one
        waits a round trip, so they overlap. A resource leaves the record only once its DELETE
        was answered (or failed for good), so an interrupt in the middle leaves the rest, and
        those in flight, to the exit safety net."""
        leftovers: list[str] = []
        stop = threading.Event()  # the target stopped answering: do not insist
        for wave in self._deletion_waves():
            if stop.is_set():
                break
            leftovers += self._delete_wave(wave, connections, stop, hurry)
        if stop.is_set():
            leftovers.extend(f"{p} (not attempted)" for _, p in reversed(self.created))
            self.created.clear()
        if self._exit_net:
            atexit.unregister(self._cleanup_at_exit)
            _EXIT_NETS.remove(self)
            self._exit_net = False
        return leftovers

    def _deletion_waves(self) -> list[list[tuple[Principal, str]]]:
        """Accounts, then creators (a target may refuse to delete a creator that still owns an
        account), then anything else; newest first within each."""
        newest_first = list(reversed(self.created))
        waves = [[r for r in newest_first if r[1].startswith(p)] for p in DELETION_ORDER]
        rest = [r for r in newest_first if not r[1].startswith(DELETION_ORDER)]
        return [wave for wave in [*waves, rest] if wave]

    def _delete_wave(
        self,
        wave: list[tuple[Principal, str]],
        connections: int,
        stop: threading.Event,
        hurry: bool,
    ) -> list[str]:
        # ids drawn here, in order: the same run sends the same requests, whichever
        # connection happens to send each
        ids = [self.client.next_request_id() for _ in wave]
        queue = list(reversed(list(zip(wave, ids, strict=True))))  # popped from the end
        leftovers: list[str] = []
        lock = threading.Lock()
        if connections <= 1:
            self._delete_queued(self.client, queue, lock, leftovers, stop, hurry)
            return leftovers

        def sleep(seconds: float) -> None:  # a wait (pacing, Retry-After) ends at Ctrl-C
            if stop.wait(min(seconds, HURRIED_WAIT) if hurry else seconds):
                raise _Stopped

        # the first DELETE tells whether overlapping the rest pays
        clients = [self.client.fork(sleep)]
        try:
            self._delete_queued(clients[0], queue, lock, leftovers, stop, hurry, limit=1)
            if self._answered_at_once():
                self._delete_queued(clients[0], queue, lock, leftovers, stop, hurry)
                return leftovers
            clients += [self.client.fork(sleep) for _ in range(min(connections, len(queue)) - 1)]
            return self._delete_in_threads(clients, queue, lock, leftovers, stop, hurry)
        finally:
            for client in clients:
                client.close()

    def _delete_in_threads(
        self,
        clients: list[ApiClient],
        queue: list[tuple[tuple[Principal, str], str]],
        lock: threading.Lock,
        leftovers: list[str],
        stop: threading.Event,
        hurry: bool,
    ) -> list[str]:
        """Each client deletes from the shared queue in a thread of its own."""
        workers = [
            threading.Thread(
                target=self._delete_queued,
                args=(client, queue, lock, leftovers, stop, hurry),
                name=f"conformance-cleanup-{n}", daemon=True,
            )
            for n, client in enumerate(clients)
        ]
        try:
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
        except BaseException:  # Ctrl-C: let the deletes in flight finish, start no new one
            stop.set()
            for worker in workers:
                worker.join()
            raise
        return leftovers

    def _delete_queued(
        self,
        client: ApiClient,
        queue: list[tuple[tuple[Principal, str], str]],
        lock: threading.Lock,
        leftovers: list[str],
        stop: threading.Event,
        hurry: bool = False,
        limit: int | None = None,
    ) -> None:
        sent = 0
        while not stop.is_set() and (limit is None or sent < limit):
            sent += 1
            with lock:
                if not queue:
                    return
                resource, request_id = queue.pop()
            try:
                problem = self._delete_one(client, resource, request_id, stop, hurry)
            except _Stopped:  # interrupted while waiting: not sent, so still recorded
                return
            with lock:
                self.created.remove(resource)
                if problem is not None:
                    leftovers.append(problem)

    def _answered_at_once(self) -> bool:
        """The last exchange (the wave's first DELETE) came back within
        :data:`OVERLAP_MIN_ROUND_TRIP`."""
        log = self.client.log
        return bool(log) and log[-1].elapsed < OVERLAP_MIN_ROUND_TRIP

    def _delete_one(
        self,
        client: ApiClient,
        resource: tuple[Principal, str],
        request_id: str,
        stop: threading.Event,
        hurry: bool = False,
    ) -> str | None:
        """DELETE one resource; what went wrong, or None when it is gone. Any exception but an
        interrupt is reported, not raised: the rest must still be deleted. In a hurry (an
        interrupted run), a 429 even after the client's one retry means the window is spent:
        the rest is not attempted (each would wait and be refused too) but listed at once."""
        principal, path = resource
        try:
            exchange = client.delete(
                path, principal=principal, cleanup=True, request_id=request_id
            )
            status = exchange.status
        except RuleViolation as exc:  # the rules judge the exchange; deletion is what counts
            status = exc.exchange.status
        except _Stopped:
            raise
        except TransportFailure as exc:
            stop.set()
            return f"{path} ({exc.reason})"
        except Exception as exc:
            return f"{path} ({type(exc).__name__})"
        if status == 429 and hurry:
            stop.set()
        if status not in {200, 202, 204, 404}:
            return f"{path} (DELETE answered {status})"
        return None

    def __iter__(self) -> Iterator[tuple[Principal, str]]:
        return iter(self.created)
