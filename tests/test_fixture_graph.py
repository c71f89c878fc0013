"""The suite's fixtures stay a shallow graph: pytest looks every fixture in a test's closure up
again for every test, cached or not (about 15 µs each, and a fresh fixture definition for each
one that takes ``request``). Three fixtures fewer a test made the scenario rate 3.7% faster
(the bench's scenario pairs, ten alternating rounds)."""

from __future__ import annotations

import pytest

from conformance._resources import scenarios_dir

#: what each of the fixtures scenarios ask for may pull in, directly or not
ALLOWED_DEPENDENCIES = {
    "api": {"pytestconfig", "request"},
    "data": {"api", "pytestconfig", "request"},
}


def _closure(definitions: dict[str, list[pytest.FixtureDef[object]]], name: str) -> set[str]:
    found: set[str] = set()
    pending = list(definitions[name][-1].argnames)
    while pending:
        argname = pending.pop()
        if argname not in found:
            found.add(argname)
            pending += list(definitions[argname][-1].argnames) if argname in definitions else []
    return found


def test_the_fixtures_scenarios_ask_for_pull_in_little(pytester: pytest.Pytester) -> None:
    pytester.chdir()
    items, _ = pytester.inline_genitems(str(scenarios_dir()), "-p", "no:cacheprovider")
    item = next(i for i in items if {"api", "data"} <= set(i.fixturenames))  # type: ignore[attr-defined]
    definitions = item._fixtureinfo.name2fixturedefs  # type: ignore[attr-defined]
    pulled = {name: _closure(definitions, name) for name in ALLOWED_DEPENDENCIES}
    beyond = {name: pulled[name] - allowed for name, allowed in ALLOWED_DEPENDENCIES.items()}
    assert not any(beyond.values()), f"more fixtures than needed: {beyond}"
