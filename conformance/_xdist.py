"""Running the suite under pytest-xdist (``-n auto``): correct per worker, one table overall.

Each worker is a whole pytest session of its own: it starts its own embedded reference server
(or shares the given base URL), draws its own run id, creates and deletes its own test data,
and judges its own exchanges. What needs care is what is *shared*:

- the per-requirement table and the verdict belong to the controller, which never runs a
  test: workers put what the table needs on each report (``user_properties``), and the
  controller rebuilds the run's results from the reports it receives;
- an ids file (``--ids-file``) is read by every worker, and an account may be linked only
  once, so each worker takes its own slice of the accounts.

Registered by the plugin (:func:`register`) only when xdist is loaded.
"""

from __future__ import annotations

import json
from collections.abc import Generator
from typing import Any

import pytest

from conformance._provisioning import IdPool

WARNINGS_PROPERTY = "warnings"
MESSAGE_PROPERTY = "message"


def is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def is_controller(config: pytest.Config) -> bool:
    """The process that distributes tests to workers and runs none itself."""
    return not is_worker(config) and config.getoption("dist", "no") != "no"


def worker_share(pool: IdPool | None, config: pytest.Config) -> IdPool | None:
    """This worker's slice of an ids file: accounts are split between workers (each is used
    once); creators are shared (linking never changes a creator)."""
    if pool is None or not is_worker(config):
        return pool
    index = int(config.workerinput["workerid"].removeprefix("gw"))  # type: ignore[attr-defined]
    total = int(config.workerinput["workercount"])  # type: ignore[attr-defined]
    for (org, kind), values in pool.ids.items():
        if kind == "account":
            pool.ids[(org, kind)] = values[index::total]
    return pool


class XdistResults:
    """The plugin's xdist half: one instance per pytest process (controller or worker)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.seen: dict[str, Any] = {}  # nodeid -> TestResult, on the controller

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        """On a worker, after the plugin filled in the report: add what the controller's
        table needs and the plugin does not already send (skips, warnings, the message)."""
        report = yield
        if not is_worker(self.config):
            return report
        from conformance.plugin import _CURRENT

        test = item.stash.get(_CURRENT, None)
        if test is None:
            return report
        names = {name for name, _ in report.user_properties}
        if report.skipped and "requirements" not in names:
            report.user_properties.append(("requirements", " ".join(test.requirements)))
        if report.failed and test.message:
            report.user_properties.append((MESSAGE_PROPERTY, test.message))
        if report.when == "teardown" and test.warnings:
            report.user_properties.append((WARNINGS_PROPERTY, json.dumps(test.warnings)))
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """On the controller: rebuild each test's result from its workers' reports. A test
        joins the run's results once a report names its requirements (the plugin sends them
        with the teardown report); outcomes seen before that are kept until then."""
        if not is_controller(self.config):
            return
        from conformance._results import TestResult
        from conformance.plugin import _skip_reason

        properties = {name: value for name, value in report.user_properties}
        test = self.seen.setdefault(report.nodeid, TestResult(report.nodeid, []))
        first_failure = test.record_phase(
            when=report.when, duration=report.duration, skipped=report.skipped,
            failed=report.failed, skip_reason=_skip_reason(report) if report.skipped else "",
        )
        if first_failure:
            test.message = str(properties.get(MESSAGE_PROPERTY, "")) or report.longreprtext[:500]
        if properties.get("broken"):
            test.broken = str(properties["broken"]).split()
        if WARNINGS_PROPERTY in properties:
            test.warnings.extend(json.loads(str(properties[WARNINGS_PROPERTY])))
        if "requirements" in properties:
            test.requirements = str(properties["requirements"]).split()
            self._results().tests[report.nodeid] = test

    def _results(self) -> Any:
        from conformance._requirements import load_catalogue
        from conformance._results import RunResults
        from conformance.plugin import RESULTS

        results = self.config.stash.get(RESULTS, None)
        if results is None:
            results = self.config.stash[RESULTS] = RunResults(load_catalogue())
        return results


def register(config: pytest.Config) -> None:
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(XdistResults(config), "creatoraudit-xdist")
