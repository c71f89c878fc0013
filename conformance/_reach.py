"""Operations the suite uses beyond the published spec (lists, reads by id), and how a scenario
steps aside, saying why, when the target does not have them."""

from __future__ import annotations

from conformance._exchange import Exchange
from conformance._expect import skip_test

#: Answers meaning "this target has no such operation".
ABSENT_STATUSES = frozenset({404, 405, 501})


def require_operation(exchange: Exchange, operation: str) -> Exchange:
    """Skip the scenario when ``operation`` does not exist on the target (404/405/501 to the
    organization's own, valid key); the skip reason names it."""
    if exchange.status in ABSENT_STATUSES:
        skip_test(
            f"the target has no {operation} (answered {exchange.status}); it is not part of "
            "the published spec, so the checks that need it cannot run here"
        )
    return exchange
