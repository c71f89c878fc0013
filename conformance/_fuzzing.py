"""Spec-driven fuzzing with schemathesis: what the loaded document allows, sent and judged.

Schemathesis generates the requests (positive and negative data, explicit examples, the
coverage phase); this module decides how they reach the target and how answers are judged:

- path ids are drawn from a mix of the run's provisioned ids and generated UUIDs, in every phase;
- the key comes from an auth provider, so ``ignored_auth`` knows what to strip;
- the project's rules run as one extra check (:func:`project_rules_check`), converting
  schemathesis' response into an :class:`~conformance._exchange.Exchange` for
  :func:`conformance._rules.judge`, so fuzzing and scenarios share one rule implementation;
- every failure ends with a ``curl`` line that reads ``$CREATORAUDIT_API_KEY`` and the seed.

Schemathesis is imported here and nowhere else on the CLI's fast path.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import schemathesis
from requests.structures import CaseInsensitiveDict
from schemathesis import Case as SchemathesisCase
from schemathesis import Response
from schemathesis.core.result import Ok

from conformance._config import ConfigurationError, Credentials, Principal
from conformance._exchange import CaseInsensitiveHeaders, Exchange
from conformance._hypothesis_storage import seed_utf8_table
from conformance._profiles import Profile
from conformance._rules import RuleViolation

Case = SchemathesisCase[Any]

#: Built-in checks left out, and why.
EXCLUDED_CHECKS: dict[str, str] = {
    # The loaded document may describe only part of the API (the published one has a single
    # PUT); a correct server also answers GET and DELETE on that path. These two checks probe
    # undocumented methods and would fail a target for what the document does not mention.
    "unsupported_method": "fails a target for methods the loaded spec does not mention",
    "allow_header_conformance": "fails a target for methods the loaded spec does not mention",
    # Positive data legitimately gets 404 (ids that exist nowhere), 409 (account owned by
    # another creator) or 403 (quota): a well-formed request is not necessarily an accepted one.
    "positive_data_acceptance": "well-formed link requests may rightly get 404 or 409",
    # Stateful-only and object-ownership checks need links between operations and several
    # identities; the state machine (conformance._model) covers ownership instead.
    "use_after_free": "stateful only; the state machine covers link ownership",
    "ensure_resource_availability": "stateful only; the state machine covers link ownership",
    "object_level_authorization": "needs identities schemathesis does not know; see _model",
}

#: A request with invalid data must be refused. The document answers a malformed path id with
#: 422; 400/404/405/406/415 are the other documented refusals a mangled request can meet
#: (404 when mangling leaves the route, 405 for a path that now names another resource).
NEGATIVE_EXPECTED_STATUSES = ["400", "401", "403", "404", "405", "406", "415", "422"]


# --- the test -------------------------------------------------------------------------------


def for_every_operation(request: Any, schema_fixture: str, test: Callable[..., None]) -> None:
    """Run ``test(case, **fixtures)`` for every operation of the schema that the fixture named
    ``schema_fixture`` gives, as ``@schemathesis.pytest.from_fixture(...).parametrize()`` would:
    one subtest per operation, schemathesis' phases, checks and failure reports. Built when the
    test runs, so that collecting it imports nothing of schemathesis (see scenarios/test_fuzz)."""
    _register_schemathesis_plugin(request.config)
    lazy_test = schemathesis.pytest.from_fixture(schema_fixture).parametrize()(test)
    lazy_test(request=request)


def _register_schemathesis_plugin(config: Any) -> None:
    """Schemathesis' pytest plugin formats its failures and reports per operation; a run loads
    it here, with schemathesis, instead of at start-up (a plain ``pytest`` has it already,
    from its entry point)."""
    import schemathesis.pytest.plugin as plugin

    if not config.pluginmanager.is_registered(plugin):
        config.pluginmanager.register(plugin, "schemathesis.pytest.plugin")


# --- the spec -------------------------------------------------------------------------------


def is_url(location: str) -> bool:
    return urlsplit(location).scheme in {"http", "https"}


def load_spec(location: str | Path) -> Any:
    """Load an OpenAPI document from a path or URL; a bad one is a one-line ConfigurationError."""
    text = str(location)
    try:
        if is_url(text):
            schema = schemathesis.openapi.from_url(text, timeout=10)
        else:
            path = Path(text)
            if not path.is_file():
                raise ConfigurationError(f"spec {text}: no such file")
            schema = schemathesis.openapi.from_path(path)
        operations = [r.ok() for r in schema.get_all_operations() if isinstance(r, Ok)]
    except ConfigurationError:
        raise
    except Exception as exc:  # schemathesis raises several loader errors; all mean "unusable"
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ConfigurationError(f"spec {text} cannot be used: {reason[:300]}") from None
    if not operations:
        raise ConfigurationError(f"spec {text} documents no operation that can be fuzzed")
    return schema


# --- ids ------------------------------------------------------------------------------------


@dataclass
class IdMix:
    """The run's provisioned ids by role; a generated UUID is mapped onto one of them or kept.

    Mapping happens on the case itself, right before it is sent, so it applies to every phase
    (explicit examples, coverage, fuzzing) alike: schemathesis' path-parameter hooks do not
    reach coverage cases. The mapping is a pure function of the generated value, so a seed
    still fixes the requests, and hypothesis still shrinks failures.
    """

    creators: dict[str, str] = field(default_factory=dict)
    accounts: dict[str, str] = field(default_factory=dict)

    def pool(self, parameter: str) -> list[str]:
        """The candidates for a path parameter, in a fixed order."""
        if "account" in parameter:
            return [self.accounts[k] for k in sorted(self.accounts)]
        if "creator" in parameter:
            return [self.creators[k] for k in sorted(self.creators)]
        return []

    def choose(self, parameter: str, generated: str) -> str:
        """Keep about a third of generated UUIDs; map the rest onto provisioned ids, sometimes
        written in uppercase (UUIDs are case-insensitive, so that is valid data too)."""
        pool = self.pool(parameter)
        if not pool or not _looks_like_uuid(generated):
            return generated
        digest = int.from_bytes(hashlib.sha256(generated.encode()).digest()[:8], "big")
        slot = digest % (len(pool) * 2 + 2)
        if slot >= len(pool) * 2:
            return generated.upper() if slot % 2 else generated
        chosen = pool[slot // 2]
        return chosen.upper() if slot % 2 else chosen

    def apply(self, case: Case) -> None:
        parameters = case.path_parameters or {}
        for name, value in list(parameters.items()):
            if isinstance(value, str):
                parameters[name] = self.choose(name, value)

    def normalise(self, text: str) -> str:
        """Replace provisioned ids with their role names (for comparing two runs)."""
        for role, value in [*self.creators.items(), *self.accounts.items()]:
            text = text.replace(value, f"<{role}>").replace(value.upper(), f"<{role}:upper>")
        return text


def _looks_like_uuid(value: str) -> bool:
    import uuid

    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return len(value) == 36


# --- the run --------------------------------------------------------------------------------


@dataclass
class FuzzRun:
    """Everything one session's fuzzing shares: target, keys, ids, seed, and what was sent."""

    base_url: str
    credentials: Credentials
    seed: int
    profile: Profile
    max_examples: int
    request_timeout: float
    next_request_id: Callable[[], str]
    record: Callable[[Exchange], None]
    ids: IdMix = field(default_factory=IdMix)
    log: list[Exchange] = field(default_factory=list)
    #: told before each case: the test then records the last (the failing) case's exchanges
    begin_example: Callable[[], None] = field(default=lambda: None)

    def principal_of(self, authorization: str | None) -> Principal:
        if authorization is None:
            return Principal.NONE
        token = authorization.partition(" ")[2].strip()
        for principal in Principal:
            if token and principal.env_var and token == self.credentials.key_for(principal):
                return principal
        return Principal.INVALID

    def exchange_of(self, response: Response) -> Exchange:
        """Schemathesis' response (and the request it carries) as the rules see it."""
        request = response.request
        request_headers = CaseInsensitiveHeaders.of(
            (name, value if isinstance(value, str) else value.decode("latin-1"))
            for name, value in request.headers.items()
        )
        raw = request.body
        body = raw.encode() if isinstance(raw, str) else raw if isinstance(raw, bytes) else None
        headers = CaseInsensitiveHeaders.of(
            (name, value) for name, values in response.headers.items() for value in values
        )
        return Exchange(
            method=str(request.method),
            url=str(request.url),
            request_headers=request_headers,
            request_body=body or None,
            status=response.status_code,
            headers=headers,
            body=response.content or b"",
            principal=self.principal_of(request_headers.get_value("authorization")),
            elapsed=response.elapsed,
            secrets=self.credentials.secrets(),
        )

    def reproduction(self, exchange: Exchange) -> str:
        return f"reproduce: {exchange.curl()}\nseed: --seed {self.seed}"

    def send(self, case: Case) -> Response:
        """Send ``case`` as fuzzing does: mapped ids, a run-scoped X-Request-ID, every check."""
        self.begin_example()
        self.ids.apply(case)
        headers = {"X-Request-ID": self.next_request_id()}
        judged = len(self.log)
        try:
            return case.call_and_validate(
                headers=headers,
                additional_checks=[project_rules_check(self)],
                timeout=self.request_timeout,
            )
        except BaseExceptionGroup as failures:  # schemathesis' FailureGroup
            name_requirements(failures)
            # Schemathesis' own reproduction filters the key out; add one that reads it from
            # the environment, and the seed, as every fuzzing failure must show.
            if len(self.log) > judged:
                failures.add_note(self.reproduction(self.log[-1]))
            raise

    def requests_sent(self) -> list[str]:
        """Method and path of every judged request, provisioned ids replaced by their roles."""
        return [self.ids.normalise(f"{e.method} {urlsplit(e.url).path}") for e in self.log]


#: schemathesis' failure codes of a server error; its other checks judge what the loaded
#: document says of the answers (status, content type, headers, schema, invalid data refused,
#: auth enforced), which is SPEC-RESPONSES-CONFORM
SERVER_ERROR_CODES = frozenset({"ST101", "ST102"})
#: the code of a custom check's failure: the project's rules, whose messages name their ids
CUSTOM_CHECK_CODE = "ST901"


def name_requirements(failures: BaseExceptionGroup[Any]) -> None:
    """Note on each of schemathesis' own check failures the requirement it breaks, as the
    project's rules name theirs, so that the reports fail that requirement and not every one
    the fuzzing test verifies (SPEC-NO-SERVER-ERROR for a server error)."""
    for failure in failures.exceptions:
        if isinstance(failure, BaseExceptionGroup):
            name_requirements(failure)
            continue
        code = getattr(failure, "code", None)
        if not isinstance(code, str) or code == CUSTOM_CHECK_CODE:
            continue
        requirement = "SPEC-NO-SERVER-ERROR" if code in SERVER_ERROR_CODES else (
            "SPEC-RESPONSES-CONFORM"
        )
        note = f"[{requirement}] {getattr(failure, 'title', 'check failed')} (schemathesis {code})"
        if note not in (getattr(failure, "__notes__", None) or []):
            failure.add_note(note)


def project_rules_check(run: FuzzRun) -> Callable[[Any, Response, Case], bool | None]:
    """The project's rules as one schemathesis check. The exchange goes to the suite's client
    (``run.record``), whose observer applies :func:`conformance._rules.judge` and records it in
    the requirement-level results, exactly as for the scenarios' own requests."""

    def creatoraudit_rules(ctx: Any, response: Response, case: Case) -> bool | None:
        exchange = run.exchange_of(response)
        run.log.append(exchange)
        try:
            run.record(exchange)
        except RuleViolation as violation:
            raise AssertionError(f"{violation}\nseed: --seed {run.seed}") from None
        return None

    return creatoraudit_rules


def configure(schema: Any, run: FuzzRun) -> Any:
    """Point ``schema`` at the target and set generation, phases, checks and auth."""
    seed_utf8_table()
    config = schema.config
    config.update(base_url=run.base_url, request_timeout=run.request_timeout)
    config.seed = run.seed
    config.generation.update(
        modes=["positive", "negative"],
        max_examples=run.max_examples,
        # The example database would replay earlier runs' failures first, so the same seed
        # would not send the same requests.
        database="none",
    )
    config.phases.update(phases=["examples", "coverage", "fuzzing"])
    config.checks.update(excluded_check_names=sorted(EXCLUDED_CHECKS))
    config.checks.negative_data_rejection.expected_statuses = list(NEGATIVE_EXPECTED_STATUSES)
    _install_auth(schema, run)
    return schema


def _install_auth(schema: Any, run: FuzzRun) -> None:
    """The organization's write key through an auth provider, not config headers: schemathesis
    then knows which header is the credential and its ``ignored_auth`` probes strip it."""
    key = run.credentials.api_key

    class OrganizationKey:
        def get(self, case: Case, ctx: Any) -> str | None:
            return key

        def set(self, case: Case, data: str, ctx: Any) -> None:
            if case.headers is None:
                case.headers = CaseInsensitiveDict()
            case.headers["Authorization"] = f"Bearer {data}"

    schema.auth()(OrganizationKey)
