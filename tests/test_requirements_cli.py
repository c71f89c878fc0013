"""``creatoraudit-conformance requirements`` lists every entry with its level, section and how
it is verified."""

from __future__ import annotations

import io

import pytest

from conformance import _listing
from conformance._requirements import load_catalogue
from conformance.cli import run_cli


def test_requirements_lists_every_entry_and_how_it_is_verified(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        _listing, "declared_tests", lambda: {"LINK-RELINK-200": ["test_link.py::test_relink"]}
    )
    out, err = io.StringIO(), io.StringIO()
    assert run_cli(["requirements"], out, err) == 0
    lines = out.getvalue().splitlines()
    assert len(lines) == len(load_catalogue())
    relink = next(line for line in lines if line.startswith("LINK-RELINK-200 "))
    assert "MUST" in relink and "test_link.py::test_relink" in relink
    assert "relink-returns-201" in relink
    quota = next(line for line in lines if line.startswith("QUOTA-403 "))
    assert "untestable: Needs an organization with a cap" in quota
    no_body = next(line for line in lines if line.startswith("HTTP-304-NO-BODY "))
    assert "no scenario; unprovable" in no_body
