"""Running the suite under pytest-xdist (``-n auto``): correct per worker, one table overall.

Each worker is a whole pytest session of its own: it starts its own embedded reference server
(or shares the given base URL), draws its own run id, creates and deletes its own test data,
and judges its own exchanges. What needs care is what is *shared*:

- the per-requirement table, the verdict and the reports belong to the controller, which
  never runs a test: workers put what it needs on each test's reports (``user_properties``:
  the requirement ids, and with the teardown report the worker's already masked evidence, see
  :func:`shipped`), and each worker's run id and target in its ``workeroutput``; the controller
  rebuilds the run's results from those;
- the fuzzing seed: the controller's (the one its header prints) is given to every worker;
- an ids file (``--ids-file``) is read by every worker, and an account may be linked only
  once, so each worker takes its own slice of the accounts.

The same protocol serves the suite's own lanes (``conformance._lanes``): there the parent is
the controller (:func:`become_controller`) and each forked lane a worker.

Registered by the plugin (:func:`register`); the hooks only xdist calls are optional.
"""

from __future__ import annotations

import json
import time
from collections.abc import Generator
from dataclasses import asdict
from typing import Any

import pytest

from conformance._config import ConfigurationError
from conformance._provisioning import IdPool
from conformance._rerun import RERUN_PROPERTY
from conformance._results import ExchangeRecord, FailureRecord, RunResults, TestResult, WorkerRun

#: worker -> controller only: the controller takes it off the report before JUnit sees it
RESULT_PROPERTY = "creatoraudit_result"
#: the key of a worker's run id and target in its ``workeroutput``
WORKER_OUTPUT = "creatoraudit"
#: the key of a worker's requests sent, 429 retries and read-only skips (``_guard``'s summary)
SUMMARY_OUTPUT = "creatoraudit_summary"
#: the key of the controller's fuzzing seed in a worker's ``workerinput``
SEED_INPUT = "creatoraudit_seed"
FAILED_OUTCOMES = frozenset({"failed", "error"})


#: set in the parent of the suite's lanes, which is a controller without xdist
_LANES_PARENT = pytest.StashKey[bool]()
PLUGIN_NAME = "creatoraudit-xdist"


def is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def is_controller(config: pytest.Config) -> bool:
    """The process that distributes tests to workers and runs none itself."""
    if is_worker(config):
        return False
    return config.stash.get(_LANES_PARENT, False) or config.getoption("dist", "no") != "no"


def become_controller(config: pytest.Config, nodeids: list[str]) -> None:
    """The parent of lanes: from now on it only rebuilds results from its workers' reports.
    It collected, so it has results already; they still need the given keys to mask."""
    from conformance.plugin import RESULTS

    config.stash[_LANES_PARENT] = True
    plugin = _plugin(config)
    plugin.collected = list(nodeids)
    results = config.stash.get(RESULTS, None)
    if results is not None:
        results.secrets = plugin._given_secrets()


def _plugin(config: pytest.Config) -> XdistResults:
    plugin = config.pluginmanager.get_plugin(PLUGIN_NAME)
    assert isinstance(plugin, XdistResults), "registered by the plugin at configure"
    return plugin


def worker_output(config: pytest.Config) -> dict[str, str] | None:
    """What a worker tells the controller at its end: its run id and (masked) target."""
    from conformance.plugin import RESULTS

    results = config.stash.get(RESULTS, None)
    if results is None or not results.run_id:
        return None
    return {"run_id": results.run_id, "base_url": results.mask(results.base_url)}


def adopt_worker_output(config: pytest.Config, worker: str, output: dict[str, str] | None) -> None:
    if output:
        _plugin(config).workers[worker] = dict(output)


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


def given_seed(config: pytest.Config) -> int | None:
    """On a worker, the controller's fuzzing seed, so that the seed the header prints is the
    one every worker used (``--seed`` then repeats the run)."""
    workerinput = getattr(config, "workerinput", {})
    seed = workerinput.get(SEED_INPUT)
    return int(seed) if seed is not None else None


def shipped(test: TestResult, results: RunResults) -> dict[str, Any]:
    """What a worker knows of a test that pytest's reports do not carry: its readings and, when
    it failed, its message and evidence (the recorded exchanges, the failing step). Masked
    here, with the worker's keys: the controller never learns an embedded server's keys."""
    data: dict[str, Any] = {"warnings": test.warnings, "observations": test.observations}
    if test.outcome in FAILED_OUTCOMES:
        data["message"] = test.message
        data["failure"] = asdict(test.failure) if test.failure else None
        data["exchanges"] = [asdict(x) for x in test.evidence()]
    return dict(results.mask_all(data))


def adopt(test: TestResult, data: dict[str, Any]) -> None:
    """On the controller: take a worker's :func:`shipped` data into the test's result."""
    test.warnings = list(data["warnings"])
    test.observations = list(data["observations"])
    if "message" in data:
        test.message = data["message"]
        test.failure = FailureRecord(**data["failure"]) if data["failure"] else None
        test.exchanges = [ExchangeRecord(**x) for x in data["exchanges"]]


def _take_property(report: pytest.TestReport, name: str) -> Any:
    """Remove a property from the report and return its value (None when absent)."""
    found = [value for key, value in report.user_properties if key == name]
    report.user_properties = [(k, v) for k, v in report.user_properties if k != name]
    return found[0] if found else None


def _crash_message(report: pytest.TestReport) -> str:
    """The failure's own message when a report came without the worker's (a worker crashed):
    the crash line, not the ``[gw0] linux -- Python ...`` header xdist puts first."""
    crash = getattr(report.longrepr, "reprcrash", None)
    return str(crash.message) if crash is not None else report.longreprtext[:500]


def _worker_number(worker_id: str) -> int:
    return int(worker_id.removeprefix("gw") or 0)


class XdistResults:
    """The plugin's xdist half: one instance per pytest process (controller or worker)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.started_at = time.time()
        self.seen: dict[str, TestResult] = {}  # nodeid -> result, on the controller
        self.collected: list[str] = []  # node ids in collection order, on the controller
        self.workers: dict[str, dict[str, str]] = {}  # worker id -> its run id and target

    # --- on a worker ---------------------------------------------------------------------

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        """After the plugin filled in the report: add what the controller needs and the plugin
        does not already send. The evidence goes with the teardown report: it is always sent,
        and the re-run (``_rerun``) may have turned the call report into a failure after it
        was made (a flaky check), so only then is the test's outcome final."""
        report = yield
        if not is_worker(self.config):
            return report
        from conformance.plugin import _CURRENT, RESULTS

        test = item.stash.get(_CURRENT, None)
        results = self.config.stash.get(RESULTS, None)
        if test is None or results is None:
            return report
        names = {name for name, _ in report.user_properties}
        if report.skipped and "requirements" not in names:
            report.user_properties.append(("requirements", " ".join(test.requirements)))
        if report.when == "teardown":
            report.user_properties.append((RESULT_PROPERTY, json.dumps(shipped(test, results))))
        return report

    def pytest_sessionfinish(self) -> None:
        """On a worker: its run id and target go to the controller with ``workeroutput``.
        (On the controller, which runs this before the plugin writes the reports: complete
        the results with what only the workers know.)"""
        from conformance import _guard
        from conformance.plugin import RESULTS

        results = self.config.stash.get(RESULTS, None)
        output = worker_output(self.config)
        if is_worker(self.config) and output is not None:
            self.config.workeroutput[WORKER_OUTPUT] = output  # type: ignore[attr-defined]
            summary = _guard.lane_summary(self.config)
            self.config.workeroutput[SUMMARY_OUTPUT] = summary  # type: ignore[attr-defined]
        elif is_controller(self.config) and results is not None:
            self._adopt_crashed(results)
            self._in_collection_order(results)
            self._describe_workers(results)

    # --- on the controller ---------------------------------------------------------------

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        from conformance.plugin import fuzzing_seed

        node.workerinput[SEED_INPUT] = fuzzing_seed(self.config)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        self.collected = self.collected or list(ids)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        from conformance import _guard

        workeroutput = getattr(node, "workeroutput", {})
        adopt_worker_output(
            self.config, str(node.workerinput["workerid"]), workeroutput.get(WORKER_OUTPUT)
        )
        if SUMMARY_OUTPUT in workeroutput:  # the end of the run says how many were sent
            _guard.adopt_lane_summary(self.config, workeroutput[SUMMARY_OUTPUT])

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Rebuild each test's result from its workers' reports. A test joins the run's
        results once a report names its requirements (the plugin sends them with the
        teardown report); outcomes seen before that are kept until then. Runs first, so that
        the worker's evidence is taken off the report before JUnit or anyone else sees it."""
        if not is_controller(self.config):
            return
        from conformance.plugin import _skip_reason

        data = _take_property(report, RESULT_PROPERTY)
        properties = {name: value for name, value in report.user_properties}
        test = self.seen.setdefault(report.nodeid, TestResult(report.nodeid, []))
        first_failure = test.record_phase(
            when=report.when, duration=report.duration, skipped=report.skipped,
            failed=report.failed, skip_reason=_skip_reason(report) if report.skipped else "",
        )
        if first_failure:  # until the worker's own message comes with the teardown report
            test.message = _crash_message(report)
        if properties.get("broken"):
            test.broken = str(properties["broken"]).split()
        if properties.get(RERUN_PROPERTY):
            test.rerun = str(properties[RERUN_PROPERTY])
        if data is not None:
            adopt(test, json.loads(str(data)))
        if "requirements" in properties:
            test.requirements = str(properties["requirements"]).split()
            self._results().tests[report.nodeid] = test

    def _results(self) -> RunResults:
        from conformance._requirements import load_catalogue
        from conformance.plugin import RESULTS

        results = self.config.stash.get(RESULTS, None)
        if results is None:
            results = RunResults(load_catalogue(), started_at=self.started_at)
            results.secrets = self._given_secrets()
            self.config.stash[RESULTS] = results
        return results

    def _given_secrets(self) -> list[str]:
        """The keys given to the run, so the controller masks them too (the workers mask
        everything they send; an embedded server's keys are known to its worker only)."""
        from conformance.plugin import suite_config_from

        try:
            return suite_config_from(self.config).credentials.secrets()
        except ConfigurationError:
            return []

    def _adopt_crashed(self, results: RunResults) -> None:
        """A test whose worker died never sent its requirements; it failed all the same. It
        joins the results as a failure naming no requirement, which the verdict counts (the
        run does not conform), with xdist's crash line as its message."""
        for nodeid, test in self.seen.items():
            if nodeid not in results.tests and test.outcome in {"failed", "error"}:
                results.tests[nodeid] = test

    def _in_collection_order(self, results: RunResults) -> None:
        """Tests in the order a run without xdist lists them, not the order workers finished."""
        rank = {nodeid: i for i, nodeid in enumerate(self.collected)}
        ordered = sorted(results.tests.items(), key=lambda kv: rank.get(kv[0], len(rank)))
        results.tests = dict(ordered)

    def _describe_workers(self, results: RunResults) -> None:
        """Each worker's run id and target. The run id lists them all; the target is the one
        URL the workers shared, or (an embedded server each) the first worker's that has one."""
        results.workers = [
            WorkerRun(worker, **self.workers[worker])
            for worker in sorted(self.workers, key=_worker_number)
        ]
        results.run_id = " ".join(w.run_id for w in results.workers)
        # a lane that died before reaching its embedded server has none
        results.base_url = next((w.base_url for w in results.workers if w.base_url), "")


def register(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin(PLUGIN_NAME):
        config.pluginmanager.register(XdistResults(config), PLUGIN_NAME)
