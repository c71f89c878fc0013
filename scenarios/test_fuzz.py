"""Spec-driven fuzzing: every operation of the loaded document, positive and negative data,
explicit examples and the coverage phase, judged by schemathesis' checks and the project's rules.

Schemathesis is imported when the test runs, not when it is collected: a run's parent process
collects every test but runs none (conformance._lanes), so it never pays for the import.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from conformance import ApiClient, link_path
from conformance._profiles import PROFILE_SETTINGS
from conformance._resources import spec_path
from conformance.plugin import Target, fuzzing_seed

if TYPE_CHECKING:
    from conformance._fuzzing import FuzzRun, IdMix


def provisioned_ids(api: ApiClient, data: Any) -> IdMix:
    """Own creators (one owning a linked account), an unlinked own account, and the other
    organization's creator and account, so fuzzed requests reach 201, 200, 409 and 404."""
    from conformance._fuzzing import IdMix

    owner, rival = data.creator(), data.creator()
    linked, unlinked = data.account(), data.account()
    api.put(link_path(owner, linked))
    foreign_creator, foreign_account = data.creator("other"), data.account("other")
    return IdMix(
        creators={"own-owner": owner, "own-rival": rival, "other-org": foreign_creator},
        accounts={"own-linked": linked, "own-unlinked": unlinked, "other-org": foreign_account},
    )


@pytest.fixture
def fuzz_run(
    request: pytest.FixtureRequest, api: ApiClient, data: Any, conformance_target: Target
) -> FuzzRun:
    from conformance._fuzzing import FuzzRun

    config = request.config
    profile = PROFILE_SETTINGS[config.getoption("creatoraudit_profile")]
    return FuzzRun(
        base_url=conformance_target.base_url,
        credentials=conformance_target.config.credentials,
        seed=fuzzing_seed(config),
        profile=profile,
        max_examples=config.getoption("creatoraudit_max_examples") or profile.fuzz_examples,
        request_timeout=conformance_target.config.request_timeout,
        next_request_id=api.next_request_id,
        record=api.record,
        ids=provisioned_ids(api, data),
        begin_example=data.begin_example,
    )


@pytest.fixture
def fuzz_schema(request: pytest.FixtureRequest, fuzz_run: FuzzRun) -> Iterator[Any]:
    # schemathesis 4.32's lazy loader reads and rewrites `node._nodeid`, which pytest 9 no longer
    # has; giving it one keeps the loader working and changes nothing pytest reports.
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid
    from conformance._fuzzing import configure, load_spec

    location = request.config.getoption("creatoraudit_spec") or spec_path()
    yield configure(load_spec(location), fuzz_run)


def send_each_case(case: Any, fuzz_run: FuzzRun) -> None:
    """What each generated case goes through (its other arguments are fixtures)."""
    fuzz_run.send(case)


@pytest.mark.requirement(
    "SPEC-RESPONSES-CONFORM",
    "SPEC-NO-SERVER-ERROR",
    "LINK-PATH-UUID-422",
    "ERR-PROBLEM-MEMBERS",
    "ERR-422-ERRORS",
    "HDR-REQUEST-ID-ECHO",
    "RL-HEADERS",
    "ENV-DATA",
)
@pytest.mark.many_requests
@pytest.mark.usefixtures("fuzz_schema", "fuzz_run")  # set up (and failing) before the test
def test_every_documented_operation_survives_fuzzing(request: pytest.FixtureRequest) -> None:
    from conformance._fuzzing import for_every_operation

    for_every_operation(request, "fuzz_schema", send_each_case)


# hypothesis' pytest plugin treats it as the hypothesis test it runs (schemathesis' own wrapper
# says the same): it reports the examples' statistics and hypothesis' notes with the test
test_every_documented_operation_survives_fuzzing.is_hypothesis_test = True  # type: ignore[attr-defined]
