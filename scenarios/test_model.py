"""Model-based stateful test of the link operation: sequences of links, predicted by a model of
ownership, must get exactly the answers the document gives (see conformance._model)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from conformance import ApiClient
from conformance._model import machine_for, run_link_machine  # hypothesis: lanes share it
from conformance._profiles import PROFILE_SETTINGS
from conformance.plugin import fuzzing_seed

#: the link owner (see TestData.owner) each of the model's creator roles is
CREATOR_SLOTS = {"own-creator-a": 0, "own-creator-b": 1, "other-org-creator": 0}


def available_keys(api: ApiClient) -> tuple[Any, ...]:
    from conformance._model import KEYS_TRIED

    return tuple(principal for principal in KEYS_TRIED if api.has_key(principal))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A profile with several machine shards runs the machine as that many test items, each
    with its share of the examples and its own seed: under pytest-xdist they go to different
    workers, in one process they add up to the same budget."""
    if "machine_shard" not in metafunc.fixturenames:
        return
    shards = PROFILE_SETTINGS[metafunc.config.getoption("creatoraudit_profile")].machine_shards
    if shards > 1:
        metafunc.parametrize(
            "machine_shard",
            [(index, shards) for index in range(shards)],
            ids=[f"shard{index + 1}of{shards}" for index in range(shards)],
        )


@pytest.fixture
def machine_shard() -> tuple[int, int]:
    """The one shard of a profile that does not split the machine."""
    return (0, 1)


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
@pytest.mark.many_requests
def test_every_answer_matches_the_ownership_model(
    request: pytest.FixtureRequest, api: ApiClient, data: Any, machine_shard: tuple[int, int]
) -> None:
    config = request.config
    profile = PROFILE_SETTINGS[config.getoption("creatoraudit_profile")]
    index, shards = machine_shard

    def provision(kind: str, org: str, role: str) -> str:
        """Fresh accounts for every run; the creators are the session's link owners (each
        run's recorded sequence then includes their creation, see TestData.owner)."""
        if kind == "creator":
            return data.owner(org, slot=CREATOR_SLOTS[role])
        return data.account(org)

    seed = fuzzing_seed(config) + index  # shard 0 keeps the run's seed
    machine = machine_for(api, provision, available_keys(api), seed, on_run=data.begin_example)
    examples = config.getoption("creatoraudit_max_examples") or profile.machine_examples
    share = math.ceil(examples / shards)
    run_link_machine(machine, max_examples=share, steps=profile.machine_steps)
