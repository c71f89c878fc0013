"""``creatoraudit-conformance requirements``: the catalogue, and how each entry is verified."""

from __future__ import annotations

from typing import TextIO

from conformance._requirements import load_catalogue


def declared_tests() -> dict[str, list[str]]:
    """Requirement id -> the scenario functions declaring it (collected, not run)."""
    from conformance._resources import scenarios_dir
    from conformance.faultmatrix import _Capture, _pytest_main

    capture = _Capture()
    _pytest_main([str(scenarios_dir()), "--collect-only", "-q", "-p", "no:cacheprovider"], capture)
    return {
        rid: sorted({s.rsplit("/", 1)[-1] for s in selectors})
        for rid, selectors in capture.declared.items()
    }


def how_verified(rid: str, tests: dict[str, list[str]], faults: dict[str, list[str]]) -> str:
    requirement = load_catalogue()[rid]
    if requirement.untestable:
        return f"untestable: {requirement.untestable}"
    names = tests.get(rid, [])
    text = f"{len(names)} scenario(s): {', '.join(names)}" if names else "no scenario"
    if faults.get(rid):
        text += f"; proven by fault(s): {', '.join(faults[rid])}"
    elif requirement.unprovable:
        text += f"; unprovable: {requirement.unprovable}"
    return text


def print_requirements(stdout: TextIO) -> None:
    from conformance.faultmatrix import FAULT_BREAKS

    tests = declared_tests()
    faults: dict[str, list[str]] = {}
    for fault, ids in sorted(FAULT_BREAKS.items()):
        for rid in ids:
            faults.setdefault(rid, []).append(fault)
    for rid, requirement in load_catalogue().items():
        print(
            f"{rid:26} {requirement.level:6} {requirement.section:24} "
            f"{how_verified(rid, tests, faults)}",
            file=stdout,
        )
