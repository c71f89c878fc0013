"""creatoraudit-conformance: does this server conform to the CreatorAudit v2 API?

The public API is what ``__all__`` lists; every other module is private.

PYTEST_DONT_REWRITE: the CLI imports this package before starting pytest, so pytest must not
try to rewrite its assertions (it would warn that it cannot); scenarios are rewritten as usual.
"""

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
