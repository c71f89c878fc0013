"""The scenarios pass against the clean reference server and fail, on the scenario that names
the deviation, against each deliberately faulty one."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance._resources import scenarios_dir

#: fault -> the scenario (test function name) that must fail because of it
FAULT_CAUGHT_BY = {
    "relink-returns-201": "test_relink_to_same_creator_is_idempotent_200",
    "conflict-returns-200": "test_link_to_other_creator_conflicts_and_keeps_owner",
    "conflict-moves-account": "test_link_to_other_creator_conflicts_and_keeps_owner",
    "created-without-location": "test_first_link_is_created_with_location",
    "problem-without-code": "test_errors_are_problem_details",
    "problem-plain-json-content-type": "test_errors_are_problem_details",
    "request-id-not-echoed": "test_sent_request_id_is_echoed",
    "foreign-account-linkable": "test_other_organization_resource_is_404",
    "validation-without-errors": "test_non_uuid_path_id_is_422_naming_field",
    "readonly-key-can-write": "test_read_only_key_cannot_link",
    "ratelimit-reset-in-millis": "test_authenticated_responses_carry_rate_limit_headers",
    "link-body-not-json": "test_first_link_is_created_with_location",
}


def run_scenarios(pytester: pytest.Pytester, *args: str) -> pytest.HookRecorder:
    pytester.chdir()
    return pytester.inline_run(
        str(scenarios_dir()), "-p", "no:cacheprovider", "--no-rerun", *args
    )


def failed_functions(recorder: pytest.HookRecorder) -> set[str]:
    _, _, failed = recorder.listoutcomes()
    return {report.nodeid.split("::")[-1].split("[")[0] for report in failed}


def test_clean_reference_passes_every_scenario(pytester: pytest.Pytester) -> None:
    recorder = run_scenarios(pytester)
    passed, skipped, failed = recorder.listoutcomes()
    assert not failed, [r.nodeid for r in failed]
    assert not skipped, [r.longrepr for r in skipped]
    assert len(passed) >= 25


@pytest.mark.parametrize("fault", sorted(FAULT_CAUGHT_BY))
def test_fault_fails_the_scenario_that_names_it(pytester: pytest.Pytester, fault: str) -> None:
    recorder = run_scenarios(pytester, f"--reference-fault={fault}")
    assert FAULT_CAUGHT_BY[fault] in failed_functions(recorder)


def test_scenarios_folder_is_where_resources_say(tmp_path: Path) -> None:
    assert (scenarios_dir() / "test_link.py").is_file()
