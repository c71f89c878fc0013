"""RL-PER-KEY when someone else uses the write key at the same time (another xdist worker,
another CI job on staging): a conforming server still passes, a shared window still fails.

The other user is simulated in front of the reference app: every request with the write key
is preceded by a few more with the same key, as if they had arrived meanwhile."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from conformance._reference import EmbeddedServer, ReferenceKeys, ReferenceSettings
from conformance._resources import scenarios_dir

KEYS = ReferenceKeys.generate()
#: requests the other user makes with the write key before each of the suite's own
NEIGHBOUR_REQUESTS = 6


class BusyNeighbour:
    """ASGI wrapper: replays each write-key request ``extra`` times before serving it."""

    def __init__(self, app: Any, key: str, extra: int) -> None:
        self.app, self.extra = app, extra
        self.authorization = f"Bearer {key}".encode()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)  # EmbeddedServer reaches through .app for .state

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and (b"authorization", self.authorization) in scope["headers"]:
            for _ in range(self.extra):
                await self.app(dict(scope), _no_body, _discard)
        await self.app(scope, receive, send)


async def _no_body() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _discard(message: dict[str, Any]) -> None:
    return None


@pytest.fixture(params=[None, "rate-limit-shared-across-keys"], ids=["conforming", "shared"])
def busy_target(request: pytest.FixtureRequest) -> Iterator[tuple[str, bool]]:
    faults = {request.param} if request.param else set()
    server = EmbeddedServer(ReferenceSettings(keys=KEYS, faults=faults))
    server.app = BusyNeighbour(server.app, KEYS.api_key, NEIGHBOUR_REQUESTS)
    with server:
        yield server.base_url, bool(faults)


def test_per_key_limits_are_judged_through_someone_elses_traffic(
    busy_target: tuple[str, bool], pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    base_url, shared = busy_target
    monkeypatch.setenv("CREATORAUDIT_API_KEY", KEYS.api_key)
    monkeypatch.setenv("CREATORAUDIT_READONLY_API_KEY", KEYS.readonly_api_key)
    pytester.chdir()
    result = pytester.runpytest(
        str(scenarios_dir()), "-p", "no:cacheprovider", "-k", "anothers_window", "--no-rerun",
        f"--base-url={base_url}", "--report-dir=out",
    )
    (test,) = json.loads((pytester.path / "out" / "results.json").read_text())["tests"]
    if shared:
        assert test["outcome"] == "failed", test
        assert "cost it [10, 10, 10, 10, 10] more" in test["message"]
    else:
        assert result.ret == 0 and test["outcome"] == "passed", test["message"]
        (observation,) = test["observations"]
        assert "someone else used it meanwhile" in observation
        assert f"fell by [{NEIGHBOUR_REQUESTS + 1}" in observation
