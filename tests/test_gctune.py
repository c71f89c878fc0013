"""A run of the suite's checks tunes garbage collection and puts it back; other tests do not."""

from __future__ import annotations

import gc

import pytest

from conformance._gctune import RUN_THRESHOLDS

SEES_THRESHOLDS = """
import gc

def test_{name}({fixture}):
    with open("thresholds.txt", "w") as out:
        out.write(repr(gc.get_threshold()))
"""


def thresholds_inside(pytester: pytest.Pytester, fixture: str) -> str:
    pytester.makepyfile(SEES_THRESHOLDS.format(name="sees", fixture=fixture))
    pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
    return (pytester.path / "thresholds.txt").read_text()


def test_a_suite_session_runs_tuned_and_leaves_the_process_as_it_was(
    pytester: pytest.Pytester,
) -> None:
    before, frozen = gc.get_threshold(), gc.get_freeze_count()
    assert thresholds_inside(pytester, "api") == repr(RUN_THRESHOLDS)
    assert gc.get_threshold() == before and gc.get_freeze_count() == frozen


def test_another_projects_session_keeps_the_interpreters_defaults(
    pytester: pytest.Pytester,
) -> None:
    assert thresholds_inside(pytester, "tmp_path") == repr(gc.get_threshold())
