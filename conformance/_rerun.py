"""Re-run a failed check once, with fresh data, before reporting it.

A failure that reproduces is reported as a failure, saying it reproduced. A failure that does
not (the re-run passes) is reported as *flaky*: its own outcome in the terminal summary, a
``flaky`` user property in the JUnit report, and a failed run, since a target that answers
correctly only sometimes does not conform. Only the suite's checks are re-run.

Between the two attempts the item's own fixtures are torn down while session fixtures (the
target, the client, ``data``) stay up; ``data`` makes new resources on every call, so the second
attempt has its own.
"""

from __future__ import annotations

from typing import Any

import pytest
from _pytest.runner import call_and_report

from conformance._guard import is_suite_item, rerun_enabled

FLAKY_PROPERTY = "flaky"
RERUN_PROPERTY = "rerun"


class _KeepParents:
    """Passed as "the next item" to teardown, which then stops above the item: its
    function-scoped fixtures go, its module and session stay for the second attempt."""

    def __init__(self, item: pytest.Item) -> None:
        self._chain = item.listchain()[:-1]

    def listchain(self) -> list[Any]:
        return self._chain


def _phase(reports: list[pytest.TestReport], when: str) -> pytest.TestReport | None:
    return next((r for r in reports if r.when == when), None)


def _call_failed(reports: list[pytest.TestReport]) -> bool:
    call = _phase(reports, "call")
    return call is not None and call.failed and not hasattr(call, "wasxfail")


def _mark(reports: list[pytest.TestReport], *properties: tuple[str, str]) -> None:
    """Put properties on every phase's report: JUnit reads them from the teardown report."""
    for report in reports:
        report.user_properties.extend(properties)


def _combine(
    first: list[pytest.TestReport], second: list[pytest.TestReport]
) -> list[pytest.TestReport]:
    """The reports to log for a re-run failure, saying how the second attempt went."""
    first_call = _phase(first, "call")
    second_call = _phase(second, "call")
    assert first_call is not None
    if second_call is None or second_call.skipped:
        _mark(first, (RERUN_PROPERTY, "skipped"))
        first_call.sections.append(("re-run", "the re-run was skipped; reproduction unknown"))
        return first
    if second_call.failed:
        _mark(second, (RERUN_PROPERTY, "reproduced"), (FLAKY_PROPERTY, "false"))
        second_call.sections.append(
            ("re-run", "the failure reproduced on a re-run with fresh data")
        )
        return second
    # Failed, then passed: flaky. Keep the failure's evidence; the outcome stays a failure.
    second_call.outcome = "failed"
    second_call.longrepr = first_call.longrepr
    _mark(second, (RERUN_PROPERTY, "passed"), (FLAKY_PROPERTY, "true"))
    second_call.sections.append(
        ("re-run", "FLAKY: failed, then passed on a re-run with fresh data")
    )
    return second


def is_flaky(report: pytest.TestReport) -> bool:
    return (FLAKY_PROPERTY, "true") in report.user_properties


def _attempt(
    item: pytest.Item, nextitem: pytest.Item | None, may_rerun: bool
) -> tuple[list[pytest.TestReport], bool]:
    """One setup/call/teardown, as pytest runs it, except that when the call failed and a
    re-run is allowed, teardown keeps the item's parents for the second attempt."""
    if hasattr(item, "_request") and not item._request:
        item._initrequest()  # type: ignore[attr-defined]
    try:
        reports = [call_and_report(item, "setup", log=False)]
        if reports[0].passed:
            reports.append(call_and_report(item, "call", log=False))
        session = item.session
        rerun = may_rerun and _call_failed(reports)
        if session.shouldfail or session.shouldstop:
            rerun, nextitem = False, None
        following: Any = _KeepParents(item) if rerun else nextitem
        reports.append(call_and_report(item, "teardown", log=False, nextitem=following))
    finally:
        if hasattr(item, "_request"):
            item._request = False
            item.funcargs = None  # type: ignore[attr-defined]
    return reports, rerun


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
    if not is_suite_item(item) or not rerun_enabled(item.config):
        return None
    hook = item.ihook
    hook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    reports, rerun = _attempt(item, nextitem, may_rerun=True)
    if rerun:
        reports = _combine(reports, _attempt(item, nextitem, may_rerun=False)[0])
    for report in reports:
        hook.pytest_runtest_logreport(report=report)
    hook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True


def pytest_report_teststatus(
    report: pytest.TestReport, config: pytest.Config
) -> tuple[str, str, tuple[str, dict[str, bool]]] | None:
    if report.when == "call" and is_flaky(report):
        return "flaky", "K", ("FLAKY", {"yellow": True})
    return None


def pytest_terminal_summary(terminalreporter: Any) -> None:
    flaky = terminalreporter.stats.get("flaky", [])
    if not flaky:
        return
    terminalreporter.section("creatoraudit: flaky checks (failed, then passed on a re-run)")
    for report in flaky:
        crash = getattr(report.longrepr, "reprcrash", None)
        message = crash.message.splitlines()[0] if crash is not None else ""
        terminalreporter.write_line(f"FLAKY {report.nodeid} - {message}")
