"""The suite under pytest-xdist: every worker gets its own embedded server and test data, and
the controller's per-requirement table and verdict stay right."""

from __future__ import annotations

import pytest

from conformance._resources import scenarios_dir


def test_two_workers_find_a_fault_and_report_one_right_table(pytester: pytest.Pytester) -> None:
    pytester.chdir()
    result = pytester.runpytest_inprocess(
        str(scenarios_dir()), "-p", "no:cacheprovider", "-p", "xdist", "-n", "2",
        "-k", "not fuzzing and not ownership_model",  # the scenarios suffice; keep it lean
        "--reference-fault=relink-returns-201",
    )
    assert result.ret == 1
    outcomes = result.parseoutcomes()
    assert outcomes["passed"] >= 25 and outcomes["failed"] >= 1, outcomes
    result.stdout.fnmatch_lines(["created: 2/2 workers"])
    lines = result.stdout.lines
    assert any(line.startswith("FAIL  MUST   LINK-RELINK-200") for line in lines)
    # the other workers' passes reach the controller's table too
    assert any(line.startswith("pass  MUST   ERR-PROBLEM-MEMBERS") for line in lines)
    assert any(line.startswith("pass  MUST   AUTH-MISSING-401") for line in lines)
    assert lines.count("verdict: does NOT conform (a MUST failed)") == 1
