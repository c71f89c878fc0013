"""Run-level behaviour against the embedded reference: re-runs and flaky outcomes, the request
budget, the read-only profile, disruptive checks, and a request log that repeats itself."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conformance._resources import scenarios_dir

FLAKY_AND_BROKEN = """
import pytest

ATTEMPTS = []

def test_flaky(api, data):
    ATTEMPTS.append(data.creator())
    assert len(ATTEMPTS) > 1, "fails on the first attempt only"

def test_broken(api, data):
    data.creator()
    assert False, "fails every time"

def test_fine(api):
    assert api.get("/creators").status == 200

def test_fresh_data_on_rerun():
    assert len(ATTEMPTS) == 2 and ATTEMPTS[0] != ATTEMPTS[1]

@pytest.mark.disruptive
def test_disruptive(api):
    assert api.get("/creators").status == 200
"""


def test_failure_is_rerun_and_flaky_is_its_own_outcome(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_checks=FLAKY_AND_BROKEN)
    junit = pytester.path / "junit.xml"
    reports = pytester.path / "reports"
    result = pytester.runpytest(
        "-p", "no:cacheprovider", f"--junitxml={junit}", f"--report-dir={reports}", "-rs"
    )
    outcomes = result.parseoutcomes()
    assert outcomes.get("flaky") == 1
    assert outcomes.get("failed") == 1
    assert outcomes.get("passed") == 2
    assert result.ret == 1  # a check that fails only sometimes is not a pass
    result.stdout.fnmatch_lines(["*flaky checks*", "FLAKY test_checks.py::test_flaky*"])
    result.stdout.fnmatch_lines(["*the failure reproduced on a re-run with fresh data*"])
    result.stdout.fnmatch_lines(["*disruptive check*pass --enable-disruptive*"])
    properties = {
        case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")}
        for case in ET.parse(junit).getroot().iter("testcase")
    }
    assert properties["test_flaky"].items() >= {("rerun", "passed"), ("flaky", "true")}
    assert properties["test_broken"].items() >= {("rerun", "reproduced"), ("flaky", "false")}
    document = json.loads((reports / "results.json").read_text(encoding="utf-8"))
    tests = {t["id"].split("::")[-1]: t for t in document["tests"]}
    assert (tests["test_flaky"]["outcome"], tests["test_flaky"]["flaky"]) == ("failed", True)
    assert tests["test_flaky"]["rerun"] == "passed"
    assert (tests["test_broken"]["rerun"], tests["test_broken"]["flaky"]) == ("reproduced", False)
    assert "`test_checks.py::test_flaky`" in (reports / "summary.md").read_text(encoding="utf-8")
    assert "flaky</span>" in (reports / "report.html").read_text(encoding="utf-8")


def test_no_rerun_reports_the_first_failure(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_checks=FLAKY_AND_BROKEN)
    result = pytester.runpytest("-p", "no:cacheprovider", "--no-rerun", "--enable-disruptive")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed") == 3  # flaky, broken, and no re-run data for the fresh check
    assert "flaky" not in outcomes
    assert outcomes.get("passed") == 2  # test_fine, and the disruptive check now runs


def run_scenarios(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    pytester.chdir()
    return pytester.runpytest(str(scenarios_dir()), "-p", "no:cacheprovider", "-rs", *args)


def read_log(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_request_budget_holds_and_cleanup_fits(pytester: pytest.Pytester) -> None:
    log = pytester.path / "requests.jsonl"
    result = run_scenarios(pytester, "--max-requests=25", f"--request-log={log}")
    requests = read_log(log)
    assert len(requests) <= 25
    outcomes = result.parseoutcomes()
    assert "failed" not in outcomes and outcomes.get("skipped", 0) > 0
    result.stdout.fnmatch_lines(["*request budget of 25 (--max-requests)*"])
    created = sum(1 for r in requests if r["method"] == "POST" and r["status"] == 201)
    deleted = sum(1 for r in requests if r["method"] == "DELETE" and r["status"] == 204)
    assert created > 0 and created == deleted


def test_read_only_sends_nothing_that_can_change_state(pytester: pytest.Pytester) -> None:
    log = pytester.path / "requests.jsonl"
    result = run_scenarios(pytester, "--read-only", f"--request-log={log}")
    outcomes = result.parseoutcomes()
    assert "failed" not in outcomes and outcomes.get("passed", 0) >= 1
    assert outcomes.get("skipped", 0) > 0
    anonymous = {"<NONE>", "<INVALID>", "<MALFORMED>", None}
    for request in read_log(log):
        headers = request["headers"]
        assert isinstance(headers, dict)
        assert request["method"] == "GET" or headers.get("authorization") in anonymous, request
    result.stdout.fnmatch_lines(
        ["*not checked because of --read-only*", "LINK-FIRST-201: * check(s) skipped"]
    )


UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
RUN_TAG = re.compile(r"conformance-[0-9a-f]{8}-")
ECHO_ID = re.compile(r"conformance-echo-[0-9a-f]{32}")
PORT = re.compile(r"127\.0\.0\.1:\d+")
#: schemathesis labels each generated case with a random id; the request itself is the same
CASE_ID = re.compile(r'"x-schemathesis-testcaseid": "[^"]*"')
ETAG = re.compile(r'\\"[0-9a-f]{32}\\"')  # entity tags of lists that hold this run's ids
CURSOR = re.compile(r"cursor=[A-Za-z0-9_-]+")  # opaque, signed with the server's own secret


def normalized(path: Path) -> list[str]:
    """The request log with what must differ between runs blanked: ids, port, run tag, labels."""
    text = path.read_text(encoding="utf-8")
    for pattern, blank in (
        (UUID, "<uuid>"),
        (ECHO_ID, "<echo>"),
        (RUN_TAG, "<run>-"),
        (PORT, "<host>"),
        (CASE_ID, '"x-schemathesis-testcaseid": "<case>"'),
        (ETAG, "<etag>"),
        (CURSOR, "cursor=<cursor>"),
    ):
        text = pattern.sub(blank, text)
    return text.splitlines()


def test_same_run_sends_the_same_requests(pytester: pytest.Pytester) -> None:
    logs = [pytester.path / "first.jsonl", pytester.path / "second.jsonl"]
    for log in logs:
        outcomes = run_scenarios(pytester, "--seed=7", f"--request-log={log}").parseoutcomes()
        assert "failed" not in outcomes and outcomes["passed"] >= 29, outcomes
    first, second = (normalized(log) for log in logs)
    assert len(first) > 50
    assert ordered_then_cleanup(first) == ordered_then_cleanup(second)


def ordered_then_cleanup(lines: list[str]) -> tuple[list[str], list[str]]:
    """The log in order up to the cleanup, then the cleanup's DELETEs as a set: they go over
    several connections at once, so only the order in which their answers came varies."""
    end = len(lines)
    while end and '"method": "DELETE"' in lines[end - 1]:
        end -= 1
    return lines[:end], sorted(lines[end:])
