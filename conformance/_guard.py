"""Run guard: resolves the run's limits and enforces the parts that live above one request.

The client enforces per-request limits (timeouts, body cap, request budget, pacing, 429 retry).
This pytest plugin (registered by :mod:`conformance.plugin`) skips what is left once the time
budget is spent, keeps disruptive checks off unless enabled, and tells the reader what the run
did not do: requirements ``--read-only`` left unchecked, 429s it waited out, budget used.
"""

from __future__ import annotations

import json
import os
from collections.abc import Generator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest

from conformance._client import ApiClient
from conformance._config import ConfigurationError
from conformance._exchange import Exchange
from conformance._expect import skip_test
from conformance._limits import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_RETRY_AFTER_CAP,
    RetryRecord,
    RunLimits,
)

SUITE_FIXTURES = frozenset({"api", "data", "conformance_target"})
READ_ONLY_FLAG = "--read-only"
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})

_LIMITS = pytest.StashKey[RunLimits]()
_CLIENTS = pytest.StashKey[list[ApiClient]]()
_UNCHECKED = pytest.StashKey[dict[str, list[str]]]()


@dataclass
class _LaneTally:
    """What the lanes (``conformance._lanes``) or xdist's workers sent, for the summary their
    parent (the controller) prints."""

    sent: int = 0
    retries: list[RetryRecord] = field(default_factory=list)


_LANE_TALLY = pytest.StashKey[_LaneTally]()


def is_suite_item(item: pytest.Item) -> bool:
    """Items of the conformance suite (not the project's own tests, nor anyone else's)."""
    return bool(SUITE_FIXTURES & set(getattr(item, "fixturenames", ())))


def _number(config: pytest.Config, env: Mapping[str, str], dest: str, var: str, kind: type) -> Any:
    value = config.getoption(dest, None)
    if value is None and env.get(var):
        try:
            value = kind(env[var])
        except ValueError:
            raise ConfigurationError(f"{var}={env[var]!r} is not a valid number") from None
    if value is not None and value <= 0:
        option = "--" + dest.removeprefix("creatoraudit_").replace("_", "-")
        raise ConfigurationError(f"{option} must be a positive number, got {value}")
    return value


def _flag(config: pytest.Config, env: Mapping[str, str], dest: str, var: str) -> bool:
    return bool(config.getoption(dest, None)) or env.get(var, "").lower() in TRUE_WORDS


def limits_from(config: pytest.Config, environ: Mapping[str, str] | None = None) -> RunLimits:
    """Resolve the limit options over their environment variables; bad values raise
    ConfigurationError (one line, exit code 2)."""
    env = os.environ if environ is None else environ
    total = _number(
        config, env, "creatoraudit_request_timeout", "CREATORAUDIT_REQUEST_TIMEOUT", float
    )
    total = total or 10.0
    read = _number(config, env, "creatoraudit_read_timeout", "CREATORAUDIT_READ_TIMEOUT", float)
    connect = _number(
        config, env, "creatoraudit_connect_timeout", "CREATORAUDIT_CONNECT_TIMEOUT", float
    )
    cap = _number(config, env, "creatoraudit_max_body_bytes", "CREATORAUDIT_MAX_BODY_BYTES", int)
    retry_cap = _number(
        config, env, "creatoraudit_retry_after_cap", "CREATORAUDIT_RETRY_AFTER_CAP", float
    )
    return RunLimits(
        connect_timeout=min(connect or DEFAULT_CONNECT_TIMEOUT, total),
        read_timeout=min(read or total, total),
        request_timeout=total,
        max_body_bytes=cap or DEFAULT_MAX_BODY_BYTES,
        max_requests=_number(
            config, env, "creatoraudit_max_requests", "CREATORAUDIT_MAX_REQUESTS", int
        ),
        time_budget=_number(
            config, env, "creatoraudit_time_budget", "CREATORAUDIT_TIME_BUDGET", float
        ),
        retry_after_cap=retry_cap or DEFAULT_RETRY_AFTER_CAP,
        read_only=_flag(config, env, "creatoraudit_read_only", "CREATORAUDIT_READ_ONLY"),
        enable_disruptive=_flag(
            config, env, "creatoraudit_enable_disruptive", "CREATORAUDIT_ENABLE_DISRUPTIVE"
        ),
    )


def run_limits(config: pytest.Config) -> RunLimits:
    """The session's limits, resolved once (the time budget counts from then)."""
    if _LIMITS not in config.stash:
        try:
            config.stash[_LIMITS] = limits_from(config)
        except ConfigurationError as exc:
            raise pytest.UsageError(str(exc)) from None
    return config.stash[_LIMITS]


def rerun_enabled(config: pytest.Config) -> bool:
    return not _flag(config, os.environ, "creatoraudit_no_rerun", "CREATORAUDIT_NO_RERUN")


def disruptive_enabled(config: pytest.Config) -> bool:
    """True when checks that disturb the target for others (exhausting a rate-limit window)
    may run: ``--enable-disruptive`` given, and not a ``--read-only`` run."""
    limits = run_limits(config)
    return limits.enable_disruptive and not limits.read_only


def require_disruptive(config: pytest.Config) -> None:
    """Skip the calling test unless disruptive checks are enabled, saying how to enable them."""
    if not disruptive_enabled(config):
        skip_test(
            "disruptive check (it spends shared limits of the target): "
            "pass --enable-disruptive to run it"
        )


def register_client(config: pytest.Config, client: ApiClient) -> None:
    config.stash.setdefault(_CLIENTS, []).append(client)


def _clients(config: pytest.Config) -> list[ApiClient]:
    return config.stash.get(_CLIENTS, [])


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "disruptive: spends shared limits of the target; runs only with --enable-disruptive",
    )


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Resolve the limits before the first test, and only in sessions that run suite tests."""
    if any(is_suite_item(item) for item in items):
        run_limits(config)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Runs after the results plugin registered the test (so its skip is recorded) and before
    any fixture is set up (so a skipped test sends nothing)."""
    if not is_suite_item(item):
        return
    limits = run_limits(item.config)
    if limits.time_exhausted():
        skip_test(limits.time_budget_reason())
    if item.get_closest_marker("disruptive") is not None:
        require_disruptive(item.config)


def _requirements(item: pytest.Item) -> list[str]:
    return [str(i) for mark in item.iter_markers("requirement") for i in mark.args]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if not is_suite_item(item):
        return report
    if report.skipped and READ_ONLY_FLAG in str(report.longrepr):
        unchecked = item.config.stash.setdefault(_UNCHECKED, {})
        for requirement in _requirements(item) or ["(no requirement id)"]:
            unchecked.setdefault(requirement, []).append(item.nodeid)
    if call.when == "call":
        _record_retries(item, report)
    return report


def _record_retries(item: pytest.Item, report: pytest.TestReport) -> None:
    """Put the 429s this test waited out on its report (JUnit shows them as properties)."""
    for client in _clients(item.config):
        seen = getattr(client, "_retries_reported", 0)
        for record in client.retries[seen:]:
            outcome = f"waited {record.waited:g} s, retried" if record.retried else "not retried"
            entry = ("retried_after_429", f"{record.request}: {outcome}")
            report.user_properties.append(entry)
            item.user_properties.append(entry)  # JUnit reads the teardown report's
        client._retries_reported = len(client.retries)  # type: ignore[attr-defined]


def lane_summary(config: pytest.Config) -> dict[str, Any]:
    """A lane's part of the summary below, sent to the parent at the lane's end."""
    clients = _clients(config)
    return {
        "sent": sum(client.budget.sent for client in clients),
        "retries": [asdict(record) for client in clients for record in client.retries],
        "unchecked": config.stash.get(_UNCHECKED, {}),
    }


def adopt_lane_summary(config: pytest.Config, summary: Mapping[str, Any]) -> None:
    tally = config.stash.setdefault(_LANE_TALLY, _LaneTally())
    tally.sent += int(summary.get("sent", 0))
    tally.retries += [RetryRecord(**record) for record in summary.get("retries", [])]
    unchecked = config.stash.setdefault(_UNCHECKED, {})
    for requirement, nodeids in summary.get("unchecked", {}).items():
        unchecked.setdefault(requirement, []).extend(nodeids)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    clients = _clients(config)
    tally = config.stash.get(_LANE_TALLY, None)
    # an xdist controller collects nothing, so it resolves the limits only for this summary
    limits = config.stash.get(_LIMITS, None) or (run_limits(config) if tally else None)
    if (not clients and tally is None) or limits is None:
        return
    write = terminalreporter.write_line
    retries = [r for client in clients for r in client.retries] + (tally.retries if tally else [])
    if retries:
        terminalreporter.section("creatoraudit: unexpected 429 answers")
        for record in retries:
            how = (
                f"waited {record.waited:g} s and retried once"
                if record.retried
                else ("Retry-After exceeded --retry-after-cap; not retried")
            )
            write(f"{record.request}: {how}")
    unchecked = config.stash.get(_UNCHECKED, {})
    if limits.read_only:
        terminalreporter.section("creatoraudit: not checked because of --read-only")
        if not unchecked:
            write("every selected check ran")
        for requirement, nodeids in sorted(unchecked.items()):
            write(f"{requirement}: {len(nodeids)} check(s) skipped")
    sent = sum(client.budget.sent for client in clients) + (tally.sent if tally else 0)
    budget = f" of {limits.max_requests}" if limits.max_requests is not None else ""
    write(f"creatoraudit: {sent}{budget} requests sent")


def _loggable(exchange: Exchange) -> dict[str, Any]:
    headers = {
        name: (f"<{exchange.principal.name}>" if name == "authorization" else value)
        for name, value in sorted(exchange.request_headers.items())
        if name not in {"host", "content-length", "accept-encoding", "connection", "user-agent"}
    }
    body = exchange.request_body.decode("utf-8", "replace") if exchange.request_body else None
    return {
        "method": exchange.method,
        "url": exchange.mask(exchange.url),
        "headers": headers,
        "body": exchange.mask(body) if body is not None else None,
        "status": exchange.status,
    }


def pytest_sessionfinish(session: pytest.Session) -> None:
    target = session.config.getoption("creatoraudit_request_log", None)
    clients = _clients(session.config)
    if not target or not clients:
        return
    lines = [json.dumps(_loggable(e), sort_keys=True) for c in clients for e in c.log]
    Path(target).write_text("".join(line + "\n" for line in lines), encoding="utf-8")
