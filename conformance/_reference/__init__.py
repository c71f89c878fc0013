"""Embedded reference implementation of the CreatorAudit v2 API.

A correct server for the suite to be checked against, plus switchable faults
(`FAULTS`) that each introduce one realistic deviation from the published
document.  It deliberately imports nothing else from `conformance`: it is a
target of the checks, and must not share code (or bugs) with them.
"""

from ._app import ReferenceSettings, create_app
from ._faults import FAULTS
from ._server import EmbeddedServer
from ._store import ReferenceKeys

__all__ = ["FAULTS", "EmbeddedServer", "ReferenceKeys", "ReferenceSettings", "create_app"]
