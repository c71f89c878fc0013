"""creatoraudit-conformance: does this server conform to the CreatorAudit v2 API?

The public API is what ``__all__`` lists; every other module is private.

PYTEST_DONT_REWRITE: the CLI imports this package before starting pytest, so pytest must not
try to rewrite its assertions (it would warn that it cannot); scenarios are rewritten as usual.
"""

import sys
from typing import TYPE_CHECKING, Any

# httpx imports its own command line (click, rich, pygments: ~40 ms of every run's start-up,
# measured with -X importtime) whenever those are installed, as schemathesis makes sure they
# are. Nothing here runs httpx's command line; with the module marked absent, httpx defines
# its stand-in ``main`` instead (its documented fallback when the extras are missing).
if "httpx" not in sys.modules:
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

if TYPE_CHECKING:
    from conformance._client import ApiClient, MissingCredential
    from conformance._config import ConfigurationError, Credentials, Principal, SuiteConfig
    from conformance._exchange import Exchange
    from conformance._expect import (
        ExpectationFailed,
        expect_data_object,
        expect_error_for_field,
        expect_location,
        expect_problem,
        expect_status,
    )
    from conformance._paths import link_path, nowhere_id
    from conformance._provisioning import Provisioner, ProvisioningUnavailable
    from conformance._rules import RULES, RuleViolation, Violation, judge, rule

# The public names load on first use: ``creatoraudit-conformance --help`` imports this package
# (through conformance._config) and must not pay ~0.5 s for httpx it never uses (profiled).
_PUBLIC_API: dict[str, str] = {
    "ApiClient": "conformance._client",
    "MissingCredential": "conformance._client",
    "ConfigurationError": "conformance._config",
    "Credentials": "conformance._config",
    "Principal": "conformance._config",
    "SuiteConfig": "conformance._config",
    "Exchange": "conformance._exchange",
    "ExpectationFailed": "conformance._expect",
    "expect_data_object": "conformance._expect",
    "expect_error_for_field": "conformance._expect",
    "expect_location": "conformance._expect",
    "expect_problem": "conformance._expect",
    "expect_status": "conformance._expect",
    "link_path": "conformance._paths",
    "nowhere_id": "conformance._paths",
    "Provisioner": "conformance._provisioning",
    "ProvisioningUnavailable": "conformance._provisioning",
    "RULES": "conformance._rules",
    "RuleViolation": "conformance._rules",
    "Violation": "conformance._rules",
    "judge": "conformance._rules",
    "rule": "conformance._rules",
}


def __getattr__(name: str) -> Any:
    module = _PUBLIC_API.get(name)
    if module is None:
        raise AttributeError(f"module 'conformance' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__version__ = "0.1.0"

__all__ = [
    "RULES",
    "ApiClient",
    "ConfigurationError",
    "Credentials",
    "Exchange",
    "ExpectationFailed",
    "MissingCredential",
    "Principal",
    "Provisioner",
    "ProvisioningUnavailable",
    "RuleViolation",
    "SuiteConfig",
    "Violation",
    "__version__",
    "expect_data_object",
    "expect_error_for_field",
    "expect_location",
    "expect_problem",
    "expect_status",
    "judge",
    "link_path",
    "nowhere_id",
    "rule",
]
