"""``creatoraudit-conformance replay``: send a failure's recorded requests again, and judge.

results.json keeps, for each failed test, the masked request sequence that led to the failure
and which step failed. Replay re-sends that sequence (keys from the environment), rebinds ids
the target assigns anew (a replayed ``POST /creators`` creates a different creator), and judges
the failing step the same way the run did: the rules (:func:`conformance._rules.judge`) and
the status the scenario expected. Resources the replay creates are deleted afterwards.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from conformance._config import ConfigurationError, Credentials, Principal
from conformance._exchange import CaseInsensitiveHeaders, Exchange
from conformance._rules import judge

NOT_RESENT = frozenset({"authorization", "host", "content-length"})
CREATES = ("/creators", "/accounts")


@dataclass
class ReplayOutcome:
    """Whether one failure still happens: True, False, or None when replay cannot tell."""

    test: str
    reproduces: bool | None
    detail: str


@dataclass
class _Replayer:
    client: httpx.Client
    credentials: Credentials
    recorded_bases: tuple[str, ...]
    base_url: str
    ids: dict[str, str] = field(default_factory=dict)
    created: list[tuple[str, Principal]] = field(default_factory=list)

    def url(self, recorded: str) -> str:
        url = recorded
        base = next((b for b in self.recorded_bases if b and url.startswith(b)), None)
        if base is not None:
            url = self.base_url + url[len(base) :]
        return self._rebind(url)

    def _rebind(self, text: str) -> str:
        for old, new in self.ids.items():
            text = text.replace(old, new)
        return text

    def authorization(self, record: dict[str, Any]) -> str | None:
        principal = Principal[record["principal"]]
        if record["authorization"] is not None or principal.env_var is None:
            return str(record["authorization"]) if record["authorization"] is not None else None
        key = self.credentials.key_for(principal)
        if key is None:
            raise ConfigurationError(f"replay needs {principal.env_var}, which is not set")
        return f"Bearer {key}"

    def send(self, record: dict[str, Any]) -> Exchange:
        headers = {k: v for k, v in record["request_headers"].items() if k not in NOT_RESENT}
        auth = self.authorization(record)
        if auth is not None:
            headers["authorization"] = auth
        body = record["request_body"]
        content = self._rebind(body).encode() if body is not None else None
        url = self.url(record["url"])
        try:
            response = self.client.request(record["method"], url, headers=headers, content=content)
        except httpx.HTTPError as exc:
            raise ConfigurationError(f"cannot reach {url}: {exc}") from None
        exchange = Exchange(
            method=record["method"],
            url=url,
            request_headers=CaseInsensitiveHeaders.of(response.request.headers.multi_items()),
            request_body=content,
            status=response.status_code,
            headers=CaseInsensitiveHeaders.of(response.headers.multi_items()),
            body=response.content,
            principal=Principal[record["principal"]],
            secrets=self.credentials.secrets(),
        )
        self._learn_ids(record, exchange)
        return exchange

    def _learn_ids(self, record: dict[str, Any], exchange: Exchange) -> None:
        """The target named a resource differently this time: use its new id from now on."""
        then, now = _data_id(_json(record["body"])), _data_id(exchange.json())
        if then and now and then != now:
            self.ids[then] = now
        created = record["method"] == "POST" and exchange.status == 201
        if created and now and exchange.path.endswith(CREATES):
            self.created.append((f"{exchange.url.rstrip('/')}/{now}", exchange.principal))

    def clean_up(self) -> None:
        for url, principal in reversed(self.created):
            auth = self.authorization({"principal": principal.name, "authorization": None})
            with contextlib.suppress(httpx.HTTPError):  # best effort: the verdict is made
                self.client.delete(url, headers={"authorization": auth} if auth else {})
        self.created.clear()


def _json(text: str | None) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def _data_id(body: Any) -> str | None:
    data = body.get("data") if isinstance(body, dict) else None
    value = data.get("id") if isinstance(data, dict) else None
    return value if isinstance(value, str) and value else None


def load_results(path: Path) -> dict[str, Any]:
    """Read and validate results.json; anything wrong is one line of ConfigurationError."""
    import jsonschema  # type: ignore[import-untyped]

    from conformance._reporting import schema_path

    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise ConfigurationError(f"{path} is not JSON: {exc}") from None
    schema = json.loads(schema_path().read_text(encoding="utf-8"))
    error = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(schema).iter_errors(document)
    )
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise ConfigurationError(f"{path} is not a results.json file: at {where}: {error.message}")
    return dict(document)


def failed_tests(document: dict[str, Any], test: str | None = None) -> list[dict[str, Any]]:
    failed = [t for t in document["tests"] if t["failure"] is not None]
    if test is None:
        return failed
    chosen = [t for t in failed if t["id"] == test or t["id"].endswith(f"::{test}")]
    if not chosen:
        known = ", ".join(t["id"] for t in failed) or "none"
        raise ConfigurationError(f"no failed test {test!r} in the results (failed: {known})")
    return chosen


def _recorded_exchange(record: dict[str, Any]) -> Exchange:
    """The failing step as the run saw it (masked), to tell which rules it broke back then."""
    return Exchange(
        method=record["method"], url=record["url"],
        request_headers=CaseInsensitiveHeaders.of(record["request_headers"]),
        request_body=None, status=record["status"],
        headers=CaseInsensitiveHeaders.of(record["response_headers"]),
        body=record["body"].encode(), principal=Principal[record["principal"]],
    )


def replay_test(test: dict[str, Any], replayer: _Replayer) -> ReplayOutcome:
    failure = test["failure"]
    exchanges = failure["exchanges"]
    if not exchanges:
        return ReplayOutcome(test["id"], None, "no request was recorded for this failure")
    step = failure["step"] if failure["step"] is not None else len(exchanges) - 1
    broken = set(test["broken"] or test["requirements"])
    expected = failure["expected_status"]
    by_rules = {v.requirement for v in judge(_recorded_exchange(exchanges[step]))} & broken
    try:
        for index, record in enumerate(exchanges[: step + 1]):
            exchange = replayer.send(record)
            found = [v for v in judge(exchange) if v.requirement in broken]
            if found:
                return ReplayOutcome(test["id"], True, _describe(index, exchange, found[0]))
        if expected and exchange.status not in expected:
            wanted = " or ".join(str(s) for s in expected)
            detail = f"step {step + 1}: {exchange.describe()}, expected {wanted}"
            return ReplayOutcome(test["id"], True, detail)
    finally:
        replayer.clean_up()
    if expected or by_rules:
        return ReplayOutcome(test["id"], False, f"step {step + 1}: {exchange.describe()}")
    return ReplayOutcome(
        test["id"], None,
        f"the failure ({', '.join(sorted(broken)) or 'no requirement'}) was the scenario's own "
        f"check, which replay cannot repeat; step {step + 1} now: {exchange.describe()}",
    )


def _describe(index: int, exchange: Exchange, violation: Any) -> str:
    return f"step {index + 1}: {exchange.describe()}: [{violation.requirement}] " + exchange.mask(
        violation.message
    )


def recorded_bases(document: dict[str, Any]) -> tuple[str, ...]:
    """The base URLs the run's requests went to: the target's and, under pytest-xdist, each
    worker's (an embedded server each); replay sends all of them to the one target."""
    workers = document["run"].get("workers") or []
    bases = [document["target"]["base_url"], *(w["base_url"] for w in workers)]
    return tuple(dict.fromkeys(b.rstrip("/") for b in bases if b))


def replay(
    document: dict[str, Any],
    *,
    test: str | None = None,
    base_url: str | None = None,
    credentials: Credentials,
    timeout: float = 10.0,
) -> Iterator[ReplayOutcome]:
    recorded = document["target"]["base_url"].rstrip("/")
    target = (base_url or recorded).rstrip("/")
    if not target:
        raise ConfigurationError("the results name no target: pass --base-url")
    chosen = failed_tests(document, test)
    with httpx.Client(timeout=timeout, follow_redirects=False) as client:
        replayer = _Replayer(client, credentials, recorded_bases(document), target)
        for entry in chosen:  # every key the chosen sequences need, before the first is sent
            for record in (entry["failure"] or {}).get("exchanges", []):
                replayer.authorization(record)
        for entry in chosen:
            yield replay_test(entry, replayer)
