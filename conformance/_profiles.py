"""The run profiles: how hard fuzzing and the state machine try.

Apart from the engines, so that the options and collection read them without importing
schemathesis: a run's parent, which collects every test and runs none, never imports it (see
scenarios/test_fuzz.py).
"""

from __future__ import annotations

from dataclasses import dataclass

PROFILES = ("smoke", "full")


@dataclass(frozen=True)
class Profile:
    """How hard each engine tries. ``smoke`` runs on every push; ``full`` nightly."""

    name: str
    fuzz_examples: int
    machine_examples: int
    machine_steps: int
    #: the state machine's examples split into this many test items (each its own seed), so
    #: pytest-xdist can spread a long run over workers; one item when the budget is small
    machine_shards: int = 1


PROFILE_SETTINGS: dict[str, Profile] = {
    "smoke": Profile("smoke", fuzz_examples=5, machine_examples=8, machine_steps=25),
    "full": Profile(
        "full", fuzz_examples=300, machine_examples=150, machine_steps=50, machine_shards=4
    ),
}
