"""Catalogue of deliberate deviations the reference server can be switched into.

Each fault is a single, realistic way an implementation of the CreatorAudit v2
API could drift from its published document.  The conformance suite is run
against the reference server with one fault switched on to prove that some
check notices it; a fault that no check notices marks a gap in the suite.

Adding a fault is one entry here plus one ``if "<name>" in settings.faults``
at the exact place in ``_app.py``/``_store.py`` where the correct behaviour
lives, so the deviation stays local and readable.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["FAULTS", "validate_faults"]

FAULTS: dict[str, str] = {
    "relink-returns-201": "a re-link to the creator that already owns the account answers 201 "
    "instead of 200",
    "conflict-returns-200": "linking an account owned by another creator answers 200 and moves "
    "the account instead of 409",
    "conflict-moves-account": "linking an account owned by another creator answers the proper "
    "409 but moves the account to the new creator anyway",
    "relink-after-conflict-201": "after a 409 on an account, the next re-link to its owner "
    "answers 201 instead of 200",
    "created-without-location": "the 201 of a first link carries no Location header",
    "problem-without-code": "problem-details bodies lack the `code` member",
    "request-id-not-echoed": "a client-sent X-Request-ID is replaced by a newly minted one",
    "foreign-account-linkable": "an account owned by another organization can be linked (201) "
    "instead of answering 404",
    "uppercase-uuid-500": "a path UUID written with uppercase hex digits makes the link "
    "operation answer 500 instead of being normalised",
    "validation-without-errors": "422 problems lack the `errors` array",
    "problem-plain-json-content-type": "problems are sent as application/json instead of "
    "application/problem+json",
    "weak-etag": 'ETags are weak (W/"...") instead of strong',
    "not-modified-with-body": "the 304 describes the full representation (Content-Type and its "
    "non-zero Content-Length) instead of being empty",
    "ratelimit-reset-in-millis": "X-RateLimit-Reset is a Unix time in milliseconds instead of "
    "seconds",
    "no-www-authenticate": "401 responses lack the WWW-Authenticate challenge",
    "readonly-key-can-write": "a key with only the read scope passes the write-scope check",
    "link-body-not-json": "the link operation's answers declare application/json but the body "
    "is an HTML page",
    "idempotency-key-ignored": "a repeated POST with the same Idempotency-Key creates a new "
    "resource instead of replaying the first result",
    "echo-credentials": "every response echoes the presented Authorization value back, in an "
    "X-Debug-Authorization header and in a `debug` member of JSON bodies",
}


def validate_faults(names: Iterable[str]) -> None:
    """Reject unknown fault names early: a typo would otherwise silently test nothing."""
    unknown = sorted(set(names) - FAULTS.keys())
    if unknown:
        known = ", ".join(sorted(FAULTS))
        raise ValueError(f"unknown fault(s): {', '.join(unknown)}; known faults: {known}")
