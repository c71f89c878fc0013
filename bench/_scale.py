"""A generated spec with N operations of the same shape, and the app that serves them.

Operation ``i`` is the published link operation under ``/scale/{i}``. The generated app is a
small Starlette app that strips that prefix and hands the request to the unchanged reference
app, so every generated operation behaves exactly like the documented one (same checks, same
rules, same data) and only the number of operations changes between runs.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml
from starlette.applications import Starlette
from starlette.routing import Mount, Route

LINK_PATH = "/creators/{creator_id}/accounts/{account_id}"
_SCALE_PREFIX = re.compile(r"^/v2/scale/(\d+)(/creators/[^/]+/accounts/[^/]+)$")


def generated_spec(published: Path, operations: int) -> dict[str, Any]:
    """The published document with its link operation copied ``operations`` times."""
    document = yaml.safe_load(published.read_text(encoding="utf-8"))
    template = document["paths"][LINK_PATH]
    paths: dict[str, Any] = {}
    for i in range(operations):
        item = copy.deepcopy(template)
        for operation in item.values():
            if isinstance(operation, dict) and "operationId" in operation:
                operation["operationId"] = f"{operation['operationId']}Scale{i}"
        paths[f"/scale/{i}{LINK_PATH}"] = item
    document["paths"] = paths
    return document


def write_generated_spec(published: Path, operations: int, folder: Path) -> Path:
    path = folder / f"openapi-{operations}-ops.yaml"
    path.write_text(yaml.safe_dump(generated_spec(published, operations)), encoding="utf-8")
    return path


class _StripScalePrefix:
    """Endpoint for ``/v2/scale/{i}/creators/.../accounts/...``: the same request, unprefixed."""

    def __init__(self, reference: Any, operations: int) -> None:
        self.reference = reference
        self.operations = operations

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        raw = scope.get("raw_path") or scope["path"].encode()
        match = _SCALE_PREFIX.match(raw.decode("latin-1"))
        if match is not None and int(match.group(1)) < self.operations:
            inner = match.group(2)
            scope = {**scope, "path": "/v2" + inner, "raw_path": ("/v2" + inner).encode("latin-1")}
        await self.reference(scope, receive, send)


def scale_app(reference: Any, operations: int) -> Starlette:
    """Serve the generated operations, and everything else (provisioning, health) unchanged."""
    strip = _StripScalePrefix(reference, operations)
    app = Starlette(
        routes=[
            Route("/v2/scale/{rest:path}", endpoint=strip, methods=None),
            Mount("/", app=reference),
        ]
    )
    app.state.api = reference.state.api  # EmbeddedServer closes the store through .state
    return app
