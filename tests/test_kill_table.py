"""The kill table: the whole suite passes against the clean reference server, and every fault
is caught by a test that verifies the requirement it breaks. Every testable requirement has a
fault. The table is printed (also: ``python -m conformance.faultmatrix``)."""

from __future__ import annotations

import pytest

from conformance._reference import FAULTS
from conformance._requirements import load_catalogue
from conformance._resources import scenarios_dir
from conformance.faultmatrix import (
    DISRUPTIVE_REQUIREMENTS,
    FAULT_BREAKS,
    SUITE_FAULTS,
    build_matrix,
)


def test_every_fault_names_known_requirements_it_breaks() -> None:
    catalogue = load_catalogue()
    assert set(FAULT_BREAKS) | set(SUITE_FAULTS) == set(FAULTS), "registries differ"
    assert not set(FAULT_BREAKS) & set(SUITE_FAULTS)
    unknown = {rid for ids in FAULT_BREAKS.values() for rid in ids} - set(catalogue)
    assert not unknown, f"unknown requirement ids: {sorted(unknown)}"
    assert set(catalogue) >= DISRUPTIVE_REQUIREMENTS
    assert all(FAULT_BREAKS.values()), "a fault breaks no requirement"


def test_every_testable_requirement_has_a_fault() -> None:
    faulted = {rid for ids in FAULT_BREAKS.values() for rid in ids}
    missing = [
        rid
        for rid, req in load_catalogue().items()
        if not req.untestable and not req.unprovable and rid not in faulted
    ]
    assert not missing, f"testable requirements that no fault breaks: {missing}"


def test_untestable_requirements_have_no_fault() -> None:
    faulted = {rid for ids in FAULT_BREAKS.values() for rid in ids}
    untestable = {rid for rid, req in load_catalogue().items() if req.untestable}
    assert not faulted & untestable


def test_kill_table(pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    pytester.chdir()

    def runner(args: list[str], plugin: object) -> None:
        pytester.inline_run(*args, plugins=[plugin])

    matrix = build_matrix(runner, scenarios_dir())
    with capsys.disabled():
        print("\n" + matrix.table())
    assert not matrix.clean_failures, f"the clean reference fails: {matrix.clean_failures}"
    assert not matrix.uncaught(), f"faults not caught: {matrix.uncaught()}"
    assert not matrix.testable_without_fault()


def test_scenarios_folder_is_where_resources_say() -> None:
    assert (scenarios_dir() / "test_link.py").is_file()
