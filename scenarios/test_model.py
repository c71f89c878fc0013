"""Model-based stateful test of the link operation: sequences of links, predicted by a model of
ownership, must get exactly the answers the document gives (see conformance._model)."""

from __future__ import annotations

from typing import Any

import pytest

from conformance import ApiClient
from conformance._fuzzing import PROFILE_SETTINGS
from conformance._model import machine_for, run_link_machine
from conformance.plugin import fuzzing_seed


def available_keys(api: ApiClient) -> tuple[Any, ...]:
    from conformance._model import KEYS_TRIED

    return tuple(principal for principal in KEYS_TRIED if api.has_key(principal))


@pytest.mark.requirement(
    "LINK-FIRST-201",
    "LINK-RELINK-200",
    "LINK-CONFLICT-409",
    "LINK-CONFLICT-UNCHANGED",
    "LINK-NOT-FOUND-404",
    "LINK-OTHER-ORG-404",
    "AUTH-INVALID-401",
    "AUTH-INACTIVE-403",
    "AUTH-SCOPE-403",
)
def test_every_answer_matches_the_ownership_model(
    request: pytest.FixtureRequest, api: ApiClient, data: Any
) -> None:
    config = request.config
    profile = PROFILE_SETTINGS[config.getoption("creatoraudit_profile")]

    def provision(kind: str, org: str) -> str:
        return data.creator(org) if kind == "creator" else data.account(org)

    machine = machine_for(api, provision, available_keys(api), fuzzing_seed(config))
    examples = config.getoption("creatoraudit_max_examples") or profile.machine_examples
    run_link_machine(machine, max_examples=examples, steps=profile.machine_steps)
