"""Paths of the operations the suite sends, relative to the base URL."""

from __future__ import annotations

import uuid


def link_path(creator_id: str, account_id: str) -> str:
    """The link operation: ``PUT /creators/{creator_id}/accounts/{account_id}``."""
    return f"/creators/{creator_id}/accounts/{account_id}"


def nowhere_id() -> str:
    """A well-formed UUID that names no resource anywhere."""
    return str(uuid.uuid4())
