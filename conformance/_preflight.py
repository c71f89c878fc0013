"""Before a run against a given target: are the keys it was given keys of that target?

A wrong key makes nearly every check fail, and the run would end with "does NOT conform" and
thousands of lines about a target it never got to judge. One read per key tells: a key the
target answers with 401 both as a bearer token and in ``X-API-Key`` is not one it knows, which
is a configuration error (one line, exit 2). A target that refuses bearer tokens but takes the
same key in ``X-API-Key`` knows the key: the run goes ahead and fails AUTH-BEARER as it should.
The inactive key is not probed: telling it from an unknown one (403, not 401) is a check.
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections.abc import Mapping

from conformance._config import ConfigurationError

#: the keys probed, by the variable that names them in messages
PROBED_KEYS = (
    "CREATORAUDIT_API_KEY",
    "CREATORAUDIT_READONLY_API_KEY",
    "CREATORAUDIT_OTHER_ORG_API_KEY",
)
#: a read of a creator that exists nowhere: 404 for a known key, 401 for an unknown one
PROBE_PATH = "/creators/00000000-0000-4000-8000-000000000000"


def check_keys(base_url: str, keys: Mapping[str, str], timeout: float, deadline: float) -> None:
    """Raise ConfigurationError naming the first given key the target does not know."""
    for variable in PROBED_KEYS:
        key = keys.get(variable)
        if not key:
            continue
        as_bearer = _status(base_url, {"Authorization": f"Bearer {key}"}, timeout, deadline)
        if as_bearer != 401:
            continue
        if _status(base_url, {"X-API-Key": key}, timeout, deadline) == 401:
            raise ConfigurationError(
                f"{base_url} does not know {variable}: it answers 401 to it (GET "
                "/creators/{id}, as a bearer token and as X-API-Key); is it a key of this "
                "target?"
            )


def _status(base_url: str, headers: dict[str, str], timeout: float, deadline: float) -> int | None:
    """The status of one key probe, or None when it got no HTTP answer in time (the run
    itself then reports what goes wrong, request by request)."""
    outcome = probe(base_url.rstrip("/") + PROBE_PATH, headers, timeout, deadline)
    return outcome if isinstance(outcome, int) else None


def probe(
    url: str, headers: dict[str, str], timeout: float, deadline: float
) -> int | BaseException | None:
    """One GET with the standard library, in a thread so that a hanging DNS lookup cannot
    hold the run past ``deadline``: the answer's status, the error that stopped it, or None
    when nothing came back in time. (httpx here would import anyio before pytest starts, and
    pytest would warn that it cannot rewrite anyio's plugin.)"""
    request = urllib.request.Request(url, headers=headers)
    outcome: list[int | BaseException] = []

    def send() -> None:
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                outcome.append(int(response.status))
        except urllib.error.HTTPError as answer:
            outcome.append(int(answer.code))
        except BaseException as exc:  # returned to the caller's thread
            outcome.append(exc)

    worker = threading.Thread(target=send, name="preflight-probe", daemon=True)
    worker.start()
    worker.join(deadline)
    return outcome[0] if outcome else None
