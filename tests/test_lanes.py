"""Lanes (``--lanes N``): the collected session forked N times, tests handed out one at a time.
A run shared this way must report what one process reports; a lane that dies fails its test
and says what it may have left; runs that cannot be shared safely stay in one process.

Every run here is a subprocess: a fork copies only the forking thread, so lanes stay off in a
process with other threads running (as this test process has, from other tests' servers)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conformance._resources import scenarios_dir
from tests.test_xdist import (
    CRASHING_CHECK,
    EMBEDDED_KEY,
    FAULTS,
    FLAKY,
    SCENARIOS,
    reported_as_one_process,
    validate,
)

SHARED = ("-p", "no:cacheprovider", "--lanes=2", "--report-dir=out")
#: a few checks that need the suite's fixtures, for the runs that only ask "shared or not"
LEAN = ("-k", "relink or problem")


def run(pytester: pytest.Pytester, out: str, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        str(scenarios_dir()), "-p", "no:cacheprovider", *SCENARIOS, *FAULTS,
        f"--report-dir={out}", f"--junitxml={out}/junit.xml", "--seed=3", *args,
    )


def results(pytester: pytest.Pytester, out: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        (pytester.path / out / "results.json").read_text(encoding="utf-8")
    )
    validate(document)
    return document


def test_two_lanes_report_what_one_process_reports(pytester: pytest.Pytester) -> None:
    pytester.chdir()
    plain = run(pytester, "plain", "--lanes=1")
    assert plain.ret == 1
    shared = run(pytester, "lanes", "--lanes=2")
    assert shared.ret == 1
    assert shared.parseoutcomes() == plain.parseoutcomes()
    lines = shared.stdout.lines
    assert "FAIL  MUST   LINK-RELINK-200  - [LINK-RELINK-200] expected HTTP 200, got 201" in lines
    assert lines.count("verdict: does NOT conform (a MUST failed)") == 1
    reported_as_one_process(pytester.path / "lanes", pytester.path / "plain")
    sent = [line for line in lines if line.startswith("creatoraudit: ") and "requests sent" in line]
    assert len(sent) == 1 and int(sent[0].split()[1]) > 50, sent  # the lanes' requests, added
    # the lanes mask their own servers' keys, which the target echoed
    reports = pytester.path / "lanes"
    texts = [shared.stdout.str(), *(p.read_text(encoding="utf-8") for p in reports.iterdir())]
    assert not [EMBEDDED_KEY.search(text) for text in texts if EMBEDDED_KEY.search(text)]


def test_a_lanes_failure_reaches_the_reports_with_its_evidence(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_checks=FLAKY)
    result = pytester.runpytest_subprocess(*SHARED)
    assert result.ret == 1
    assert result.parseoutcomes().get("flaky") == 1
    reason = "[LINK-RELINK-200] fails on the first attempt only"
    assert f"FAIL  MUST   LINK-RELINK-200  - {reason}" in result.stdout.lines
    document = results(pytester, "out")
    assert len(document["run"]["workers"]) == 2
    test = next(t for t in document["tests"] if t["id"].endswith("::test_flaky"))
    assert test["outcome"] == "failed" and test["message"].startswith(reason)
    assert (test["rerun"], test["flaky"]) == ("passed", True)
    posts = [x for x in test["failure"]["exchanges"] if x["method"] == "POST"]
    assert [x["status"] for x in posts] == [201, 201]
    assert all(x["request_headers"]["authorization"] == "***" for x in posts)


def test_a_test_whose_lane_dies_fails_and_the_run_does_not_conform(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_crash=CRASHING_CHECK)
    result = pytester.runpytest_subprocess(*SHARED)
    assert result.ret == 1
    document = results(pytester, "out")
    outcomes = {t["id"].split("::")[-1]: t for t in document["tests"]}
    assert outcomes["test_worker_dies"]["outcome"] == "failed"
    assert "ended (exit code 3) in this test" in outcomes["test_worker_dies"]["message"]
    assert outcomes["test_health_answers"]["outcome"] == "passed"  # the other lane went on
    assert document["verdict"]["conforms_must"] is False
    # the dead lane is still listed (its run id tags what it left); its embedded server went
    # with it, so there is nothing to clean up and no `cleanup` hint
    assert len(document["run"]["workers"]) == 2 and len(document["run"]["id"].split()) == 2
    assert "creatoraudit-conformance cleanup" not in result.stdout.str()


SEEDS = """
import os

from conformance.plugin import fuzzing_seed


def test_a(request):
    write_seed(request)


def test_b(request):
    write_seed(request)


def write_seed(request):
    worker = os.environ["PYTEST_XDIST_WORKER"]
    (request.config.rootpath / f"seed-{worker}").write_text(str(fuzzing_seed(request.config)))
"""


def test_every_lane_fuzzes_with_the_seed_the_header_prints(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_seeds=SEEDS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--lanes=2")
    assert result.ret == 0
    header = next(line for line in result.stdout.lines if ", seed " in line)
    printed = re.search(r"seed (\d+) \(--seed to repeat\)", header)
    assert printed is not None, header
    used = [p.read_text() for p in sorted(pytester.path.glob("seed-gw*"))]
    assert used == [printed.group(1)] * 2  # each lane ran one of the two tests


@pytest.mark.parametrize(
    "option",
    [
        "--max-requests=100000",
        "--request-log=requests.jsonl",
        "--enable-disruptive",
        "CREATORAUDIT_ENABLE_DISRUPTIVE=true",
        "CREATORAUDIT_MAX_REQUESTS=100000",
    ],
    ids=["request-budget", "request-log", "disruptive", "disruptive-env", "request-budget-env"],
)
def test_a_run_that_cannot_be_shared_keeps_to_one_process(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, option: str
) -> None:
    """A request budget counts the whole run, a request log is one file, and a disruptive
    check exhausts the rate-limit window the other lane's checks would run in; set by option
    or by variable, as the run reads them."""
    if "=" in option and not option.startswith("--"):
        name, value = option.split("=", 1)
        monkeypatch.setenv(name, value)
        option = "--lanes=2"
    result = pytester.runpytest_subprocess(
        str(scenarios_dir()), "-p", "no:cacheprovider", *LEAN, "--lanes=2", "--report-dir=out",
        option,
    )
    assert result.ret == 0, result.stdout.str()[-2000:]
    assert "workers" not in results(pytester, "out")["run"]


def test_the_same_lean_run_is_shared_without_those_options(pytester: pytest.Pytester) -> None:
    """The control of the test above: the same run, shared."""
    result = pytester.runpytest_subprocess(
        str(scenarios_dir()), "-p", "no:cacheprovider", *LEAN, "--lanes=2", "--report-dir=out"
    )
    assert result.ret == 0, result.stdout.str()[-2000:]
    assert len(results(pytester, "out")["run"]["workers"]) == 2


def test_long_tests_are_handed_out_first() -> None:
    from conformance._lanes import FIRST_MARKER, dispatch_order

    class Item:
        def __init__(self, marked: bool) -> None:
            self.marked = marked

        def get_closest_marker(self, name: str) -> object:
            return object() if self.marked and name == FIRST_MARKER else None

    items: Any = [Item(False), Item(True), Item(False), Item(True)]
    assert dispatch_order(items) == [1, 3, 0, 2]


def test_the_run_command_shares_its_tests_between_the_cpus(tmp_path: Path) -> None:
    """`run` passes --lanes=auto (run.ini): a lane per usable CPU, at most two; one CPU, one
    process."""
    from conformance._lanes import AUTO_LANES, _usable_cpus
    from tests.test_cli_run import clean_env
    from tests.test_cli_run import run as run_cli

    result = run_cli(["--report-dir", str(tmp_path), "-q", *LEAN], clean_env(), tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    workers = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))["run"].get(
        "workers", []
    )
    lanes = min(_usable_cpus(), AUTO_LANES)
    assert len(workers) == (lanes if lanes > 1 else 0)


#: lanes whose cleanup never ends; the conftest shortens the parent's wait for them
STUCK_CLEANUP = {
    "conftest": "import conformance._lanes\n\nconformance._lanes.WIND_DOWN_WAIT = 1.0\n",
    "test_stuck": """
import time

import pytest


@pytest.fixture(scope="session")
def data_that_will_not_go():
    yield
    time.sleep(600)  # a cleanup that never ends


def test_a(data_that_will_not_go):
    time.sleep(600)


def test_b(data_that_will_not_go):
    time.sleep(600)
""",
}


NEEDS_PROC = pytest.mark.skipif(
    not Path("/proc/self/task").exists(), reason="needs /proc to find the lanes"
)


@NEEDS_PROC
def test_an_interrupted_run_stops_lanes_whose_cleanup_does_not_end(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(**STUCK_CLEANUP)
    run = _start(pytester)
    output, took = _signalled(run, lambda: run.send_signal(signal.SIGTERM))
    assert took < 10, output
    assert run.returncode == 2, output  # interrupted
    assert "ended (signal 9)" in output, output


SLEEPERS = """
import time


def test_a():
    time.sleep({seconds})


def test_b():
    time.sleep({seconds})
"""


def _start(pytester: pytest.Pytester, **popen: Any) -> Any:
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--lanes=2"],
        cwd=pytester.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True, **popen,
    )


def _signalled(run: Any, send: Callable[[], None]) -> tuple[str, float]:
    """Once both lanes are in their test, ``send`` a signal; the run's output and how long it
    took to end after it. The run's whole process group is killed afterwards, whatever
    happened, so that no lane outlives the test."""
    try:
        deadline = time.monotonic() + 20
        while len(_lanes_of(run.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1)
        send()
        started = time.monotonic()
        output, _ = run.communicate(timeout=30)
        return output, time.monotonic() - started
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(run.pid, signal.SIGKILL)
        run.communicate()


def _lanes_of(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in children.read_text().split()] if children.exists() else []


def test_a_run_that_ignores_ctrl_c_is_not_stopped_in_its_lanes(pytester: pytest.Pytester) -> None:
    """`run ... &` in a script starts with SIGINT ignored: a Ctrl-C to the terminal's
    process group must not stop its lanes either (they once did, and the parent then said
    "conforms" about the few tests that had run)."""

    pytester.makepyfile(test_sleepers=SLEEPERS.format(seconds=2))
    run = _start(pytester, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    time.sleep(1)
    os.killpg(run.pid, signal.SIGINT)
    output, _ = run.communicate(timeout=60)
    assert run.returncode == 0, output
    assert "2 passed" in output, output


@NEEDS_PROC
def test_an_interrupt_of_one_lane_interrupts_the_run(pytester: pytest.Pytester) -> None:
    """The lane's tests did not all run: no verdict (exit 2), and soon, not a verdict over
    what happened to run."""
    pytester.makepyfile(test_sleepers=SLEEPERS.format(seconds=60))
    run = _start(pytester)
    output, took = _signalled(run, lambda: os.kill(_lanes_of(run.pid)[0], signal.SIGTERM))
    assert took < 10, output
    assert run.returncode == 2, output
    assert "was interrupted" in output, output
