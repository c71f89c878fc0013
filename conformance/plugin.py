"""The pytest plugin: options, the target, the client, test data and requirement markers.

Loaded through the ``pytest11`` entry point, so ``pytest scenarios --base-url URL`` works
wherever the suite is installed. ``--base-url`` itself belongs to pytest-base-url; with no base
URL the plugin starts the embedded reference server for the session.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from _pytest._code.code import TerminalRepr  # pytest exports no public base for failure texts

from conformance._client import ApiClient, MissingCredential
from conformance._config import (
    KEY_ENV_VARS,
    ConfigurationError,
    Credentials,
    Principal,
    SuiteConfig,
    parse_body_template,
)
from conformance._exchange import Exchange
from conformance._expect import skip_test
from conformance._limits import BudgetExhausted, ReadOnlyRefused
from conformance._provisioning import IdPool, Provisioner, ProvisioningUnavailable
from conformance._requirements import load_catalogue
from conformance._results import (
    FailureRecord,
    RunResults,
    TestResult,
    requirement_ids_in,
)
from conformance._rules import RuleViolation, Violation, judge

SUITE_FIXTURES = frozenset({"api", "data", "conformance_target"})
DEFAULT_RATE_LIMIT_BUDGET = 100
#: The window of a reference server given --reference-rate-limit: long enough that it does
#: not roll over while the scenarios exhaust it.
REFERENCE_SMALL_WINDOW_SECONDS = 3600
#: Exceptions that mean "this check cannot run here", not "the target is wrong": a skip.
SKIP_WITH_REASON = (MissingCredential, ProvisioningUnavailable, BudgetExhausted, ReadOnlyRefused)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("creatoraudit", "CreatorAudit v2 conformance")
    for name, var in KEY_ENV_VARS.items():
        group.addoption(
            f"--{name.replace('_', '-')}",
            dest=f"creatoraudit_{name}",
            metavar="KEY",
            default=None,
            help=f"API key; defaults to ${var}",
        )
    group.addoption(
        "--request-timeout",
        dest="creatoraudit_request_timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="per-request timeout (default: $CREATORAUDIT_REQUEST_TIMEOUT or 10)",
    )
    group.addoption(
        "--creator-body",
        dest="creatoraudit_creator_body",
        metavar="JSON",
        help="JSON body for POST /creators; {run_id} and {n} are substituted",
    )
    group.addoption(
        "--account-body",
        dest="creatoraudit_account_body",
        metavar="JSON",
        help="JSON body for POST /accounts; {run_id} and {n} are substituted",
    )
    group.addoption(
        "--ids-file",
        dest="creatoraudit_ids_file",
        metavar="PATH",
        help="JSON file of existing ids to use instead of creating test data",
    )
    group.addoption(
        "--reference-fault",
        dest="creatoraudit_reference_faults",
        action="append",
        default=[],
        metavar="NAME",
        help="embedded server only: start it with this fault (repeatable)",
    )
    group.addoption(
        "--reference-rate-limit",
        dest="creatoraudit_reference_rate_limit",
        type=int,
        default=None,
        metavar="N",
        help="embedded server only: allow N requests per key per (hour-long) window, so the "
        "rate-limit scenarios can exhaust it",
    )
    group.addoption(
        "--rate-limit-budget",
        dest="creatoraudit_rate_limit_budget",
        type=int,
        default=DEFAULT_RATE_LIMIT_BUDGET,
        metavar="N",
        help="exhaust a rate-limit window (with --enable-disruptive) only when "
        f"X-RateLimit-Remaining is at most N (default {DEFAULT_RATE_LIMIT_BUDGET})",
    )
    group.addoption(
        "--report-dir",
        dest="creatoraudit_report_dir",
        default=None,
        metavar="DIR",
        help="write results.json, report.html and summary.md here (default: no reports)",
    )
    _add_safety_options(group)
    _add_fuzzing_options(group)
    from conformance import _lanes

    _lanes.add_option(group)


def _add_fuzzing_options(group: pytest.OptionGroup) -> None:
    """Controls of the fuzzer and the state machine (conformance._fuzzing, conformance._model)."""
    from conformance._profiles import PROFILES

    group.addoption(
        "--profile",
        dest="creatoraudit_profile",
        choices=PROFILES,
        default="smoke",
        help="how hard fuzzing and the state machine try: smoke (default, every push) or full",
    )
    group.addoption(
        "--seed",
        dest="creatoraudit_seed",
        type=int,
        default=None,
        metavar="N",
        help="seed of fuzzing and the state machine; the same seed sends the same requests",
    )
    group.addoption(
        "--max-examples",
        dest="creatoraudit_max_examples",
        type=int,
        default=None,
        metavar="N",
        help="examples per fuzzed operation and per state-machine run (default: the profile's)",
    )
    group.addoption(
        "--spec",
        dest="creatoraudit_spec",
        default=None,
        metavar="PATH_OR_URL",
        help="OpenAPI document to fuzz (default: the published spec/openapi.yaml)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "requirement(*ids): the requirement ids of spec/requirements this test verifies"
    )
    _register_safety_plugins(config)
    config.pluginmanager.register(_RerunRecorder(config), "creatoraudit-rerun-recorder")
    from conformance import _xdist

    _xdist.register(config)


class _RerunRecorder:
    """Copies the re-run verdict into the results, so every report can say "flaky". The
    property is set after the reports are made, so it is read when they are logged."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        results = self.config.stash.get(RESULTS, None)
        rerun = dict(report.user_properties).get("rerun")
        if results is not None and report.when == "call" and rerun:
            test = results.tests.get(report.nodeid)
            if test is not None:
                test.rerun = str(rerun)


def suite_config_from(config: pytest.Config, environ: dict[str, str] | None = None) -> SuiteConfig:
    """Resolve options over environment variables; raise ConfigurationError on bad values."""
    env = dict(os.environ if environ is None else environ)
    from_env = Credentials.from_env(env)
    keys = {
        name: config.getoption(f"creatoraudit_{name}") or getattr(from_env, name)
        for name in KEY_ENV_VARS
    }
    timeout = config.getoption("creatoraudit_request_timeout")
    if timeout is None:
        raw = env.get("CREATORAUDIT_REQUEST_TIMEOUT", "10")
        try:
            timeout = float(raw)
        except ValueError:
            raise ConfigurationError(
                f"CREATORAUDIT_REQUEST_TIMEOUT={raw!r} is not a number"
            ) from None
    if timeout <= 0:
        raise ConfigurationError("the request timeout must be a positive number of seconds")
    ids_file = config.getoption("creatoraudit_ids_file")
    extra: dict[str, Any] = {}
    for kind in ("creator", "account"):
        body = parse_body_template(config.getoption(f"creatoraudit_{kind}_body"), f"--{kind}-body")
        if body is not None:
            extra[f"{kind}_body"] = body
    suite = SuiteConfig(
        base_url=(config.getoption("base_url") or None),
        credentials=Credentials(**keys),
        request_timeout=timeout,
        ids_file=Path(ids_file) if ids_file else None,
        **extra,
    )
    suite.validate_remote()
    if suite.ids_file is not None:
        if not suite.ids_file.is_file():
            raise ConfigurationError(f"ids file {suite.ids_file} does not exist")
        IdPool.load(suite.ids_file)  # a file that cannot serve is a usage error, not a verdict
    return suite


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Validate the configuration once, before any test runs, and only when suite tests run,
    so that installing the plugin never disturbs unrelated pytest sessions."""
    if not any(_uses_suite_fixtures(item) for item in items):
        return
    validate_suite_session(config)
    config.stash[RESULTS] = RunResults(load_catalogue())


def validate_suite_session(config: pytest.Config) -> None:
    """Resolve and check the suite's configuration, once; a bad value is a UsageError with a
    one-line message. ``creatoraudit-conformance run`` calls this as soon as pytest is
    configured, before the session header, so that a bad value is all it prints."""
    if _SUITE_CONFIG in config.stash:
        return
    from conformance import _lanes
    from conformance._guard import limits_from

    _lanes.validate(config)
    try:
        suite = suite_config_from(config)
        limits_from(config)  # checked only: the session resolves them when it starts sending
        load_catalogue()
        _check_fuzzing_options(config)
    except ConfigurationError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[_SUITE_CONFIG] = suite


def _check_fuzzing_options(config: pytest.Config) -> None:
    """A bad --spec or --max-examples stops the run before any test, with one line."""
    max_examples = config.getoption("creatoraudit_max_examples")
    if max_examples is not None and max_examples < 1:
        raise ConfigurationError("--max-examples must be a positive number")
    spec = config.getoption("creatoraudit_spec")
    if spec:
        from conformance._fuzzing import load_spec

        load_spec(spec)


def fuzzing_seed(config: pytest.Config) -> int:
    """The run's seed: --seed, or one drawn once per session and shown in the header (under
    xdist, drawn by the controller and given to the workers)."""
    from conformance._xdist import given_seed

    seed = config.getoption("creatoraudit_seed")
    if seed is None:
        seed = config.stash.get(_FUZZ_SEED, None)
    if seed is None:
        seed = given_seed(config)
    if seed is None:
        import random

        seed = random.SystemRandom().randrange(2**32)
    config.stash[_FUZZ_SEED] = seed
    return int(seed)


_FUZZ_SEED = pytest.StashKey[int]()


_SUITE_CONFIG = pytest.StashKey[SuiteConfig]()


def _uses_suite_fixtures(item: pytest.Item) -> bool:
    """True when the item requests this plugin's fixtures (not a same-named one of its own)."""
    info = getattr(item, "_fixtureinfo", None)
    definitions = info.name2fixturedefs if info is not None else {}
    return any(
        getattr(d.func, "__module__", "") == __name__
        for name in SUITE_FIXTURES
        for d in definitions.get(name, ())[-1:]  # the last definition is the one used
    )


#: The run's results; reporters read them at session end (``config.stash[RESULTS]``).
RESULTS = pytest.StashKey[RunResults]()


def pytest_report_header(config: pytest.Config) -> list[str]:
    base_url = config.getoption("base_url")
    lines = [] if base_url else ["creatoraudit: no --base-url, using the embedded reference server"]
    profile = config.getoption("creatoraudit_profile")
    lines.append(f"creatoraudit: profile {profile}, seed {fuzzing_seed(config)} (--seed to repeat)")
    return lines


@dataclass
class Target:
    """The server under test for this session."""

    base_url: str
    config: SuiteConfig
    embedded: bool


@contextmanager
def _embedded_reference(
    suite: SuiteConfig, faults: list[str], rate_limit: int | None = None
) -> Iterator[tuple[str, Credentials]]:
    from conformance._reference import EmbeddedServer, ReferenceKeys, ReferenceSettings

    keys = ReferenceKeys.generate()
    try:
        settings = ReferenceSettings(keys=keys, faults=set(faults))
        if rate_limit is not None:
            settings = ReferenceSettings(
                keys=keys,
                faults=set(faults),
                rate_limit=rate_limit,
                rate_window_seconds=REFERENCE_SMALL_WINDOW_SECONDS,
            )
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    with EmbeddedServer(settings) as server:
        yield (
            server.base_url,
            Credentials(
                api_key=keys.api_key,
                readonly_api_key=keys.readonly_api_key,
                inactive_api_key=keys.inactive_api_key,
                other_org_api_key=keys.other_org_api_key,
            ),
        )


@contextlib.contextmanager
def _target_of(config: pytest.Config) -> Iterator[Target]:
    """The base URL given, or the embedded reference server started for this session."""
    suite = config.stash.get(_SUITE_CONFIG, None) or suite_config_from(config)
    if suite.base_url:
        yield Target(suite.base_url, suite, embedded=False)
        return
    faults = config.getoption("creatoraudit_reference_faults")
    rate_limit = config.getoption("creatoraudit_reference_rate_limit")
    with _embedded_reference(suite, faults, rate_limit) as (base_url, credentials):
        embedded = SuiteConfig(
            base_url=None,
            credentials=credentials,
            run_id=suite.run_id,
            request_timeout=suite.request_timeout,
            creator_body=suite.creator_body,
            account_body=suite.account_body,
            ids_file=suite.ids_file,
        )
        yield Target(base_url, embedded, embedded=True)


class ExchangeJudge:
    """The observer the client calls for every exchange: records it for the current test and
    applies every rule. A MUST violation fails the test at once; a SHOULD violation is
    recorded as a warning, which the verdict reports without failing the MUST verdict."""

    def __init__(self, results: RunResults | None) -> None:
        self.results = results
        self.current: TestResult | None = None
        self.seen: list[Exchange] = []  # the current test's exchanges, to locate a failing one
        #: how many exchanges (seen, recorded) the test made before its first example
        self._prelude: tuple[int, int] | None = None

    def start(self, test: TestResult | None) -> None:
        self.current, self.seen, self._prelude = test, [], None

    def begin_example(self) -> None:
        """A new hypothesis example starts (a fuzzed case, a state-machine run): drop the
        previous example's exchanges, keep those of the test's set-up. The example that fails
        is the last one hypothesis runs, so the recorded sequence is the failing example's,
        and it replays on its own."""
        if self.current is None:
            return
        if self._prelude is None:
            self._prelude = (len(self.seen), self.current.recorded)
        seen, recorded = self._prelude
        del self.seen[seen:]
        self.current.keep_first(recorded)

    def __call__(self, exchange: Exchange) -> None:
        if self.current is not None:
            self.seen.append(exchange)
        if self.current is not None and self.current.recorded < MAX_RECORDED_EXCHANGES:
            self.current.observed.append(exchange)
        violations = judge(exchange)
        for soft in (v for v in violations if self._is_soft(v)):
            if self.current is not None:
                self.current.warnings.append(
                    f"[{soft.requirement}] {exchange.mask(soft.message)} ({exchange.describe()})"
                )
        must = [v for v in violations if not self._is_soft(v)]
        if must:
            raise RuleViolation(exchange, must)

    def include(self, exchange: Exchange) -> None:
        """Record, once, an exchange made before the current test that it builds on (a shared
        owner's creation): its sequence then shows, and replays, everything it relied on. It
        was judged when it was made; it is not judged again."""
        if self.current is None or any(seen is exchange for seen in self.seen):
            return
        self.seen.append(exchange)
        if self.current.recorded < MAX_RECORDED_EXCHANGES:
            self.current.observed.append(exchange)

    def _is_soft(self, violation: Violation) -> bool:
        if self.results is None:
            return False
        requirement = self.results.catalogue.get(violation.requirement)
        return requirement is not None and not requirement.is_must


MAX_RECORDED_EXCHANGES = 50
_JUDGE = pytest.StashKey[ExchangeJudge]()
_SESSION = pytest.StashKey[pytest.Session]()
_TARGET = pytest.StashKey[Target]()


def _new_judge(config: pytest.Config) -> ExchangeJudge:
    judge_ = ExchangeJudge(config.stash.get(RESULTS, None))
    # created during the first test's setup, after pytest_runtest_setup chose its TestResult
    judge_.current = config.stash.get(_RUNNING, None)
    config.stash[_JUDGE] = judge_
    return judge_


@pytest.fixture(scope="session")
def api(pytestconfig: pytest.Config) -> Iterator[ApiClient]:
    """The instrumented client; every response it receives is judged by every rule. It owns
    the session's target (an embedded server starts and stops with it): a test's fixtures are
    looked up again for every test, so the suite keeps their graph shallow."""
    from conformance import _guard

    with _target_of(pytestconfig) as target:
        pytestconfig.stash[_TARGET] = target
        client = ApiClient.for_config(
            target.config, target.base_url, _guard.run_limits(pytestconfig)
        )
        _guard.register_client(pytestconfig, client)
        judge_ = _new_judge(pytestconfig)
        client.observe(judge_)
        results = judge_.results
        if results is not None:
            results.base_url = target.base_url
            results.run_id = target.config.run_id
            results.secrets = target.config.credentials.secrets()
        try:
            yield client
        finally:
            client.close()


@pytest.fixture(scope="session")
def conformance_target(api: ApiClient, pytestconfig: pytest.Config) -> Target:
    """The base URL given, or the embedded reference server started for this session."""
    return pytestconfig.stash[_TARGET]


class TestData:
    """Resources for one scenario (fresh, but for the shared link owners); a kind the target
    cannot provide skips the test."""

    __test__ = False

    def __init__(self, provisioner: Provisioner, judge: ExchangeJudge | None = None) -> None:
        self._provisioner = provisioner
        self._judge = judge

    def creator(self, org: str = "own") -> str:
        return self._provisioner.creator(org)

    def account(self, org: str = "own") -> str:
        return self._provisioner.account(org)

    def owner(self, org: str = "own", slot: int = 0) -> str:
        """A creator shared by the session's tests, for a test that only links accounts to
        it (see :meth:`Provisioner.owner`); ``creator()`` when the test reads or changes it."""
        resource_id, creation = self._provisioner.owner(org, slot)
        if creation is not None and self._judge is not None:
            self._judge.include(creation)
        return resource_id

    def checked_create(
        self, kind: str, send: Callable[[], Exchange], principal: Principal = Principal.FULL
    ) -> Exchange:
        """A create the test checks itself, sent as ``principal``; what it makes is deleted
        with the session's test data unless the test deletes it first (:meth:`delete_checked`)."""
        return self._provisioner.checked_create(kind, send, principal)

    def delete_checked(self, kind: str, resource_id: str) -> None:
        self._provisioner.delete_checked(kind, resource_id)

    def begin_example(self) -> None:
        """Hypothesis starts another example: record only its exchanges from here on (see
        :meth:`ExchangeJudge.begin_example`)."""
        if self._judge is not None:
            self._judge.begin_example()


@pytest.fixture(scope="session")
def data(api: ApiClient, pytestconfig: pytest.Config) -> Iterator[TestData]:
    """The session's test data; each call provisions afresh (see :class:`TestData`), and the
    session's end deletes everything that is left."""
    from conformance._xdist import worker_share

    config = pytestconfig.stash[_TARGET].config
    pool = worker_share(IdPool.load(config.ids_file) if config.ids_file else None, pytestconfig)
    provisioner = Provisioner(api, config, pool)
    provisioner.delete_at_exit()
    judge_ = pytestconfig.stash.get(_JUDGE, None)
    yield TestData(provisioner, judge_)
    if judge_ is not None:  # the session's cleanup is no part of the last test's sequence
        judge_.start(None)
    # interrupted (Ctrl-C, a cancelled CI job): no long wait for a spent rate-limit window
    interrupted = pytestconfig.stash[_SESSION].exitstatus == pytest.ExitCode.INTERRUPTED
    leftovers = provisioner.cleanup(hurry=interrupted)
    if leftovers:
        import warnings

        warnings.warn(
            f"could not delete test data: {', '.join(leftovers)}; "
            "`creatoraudit-conformance cleanup` removes it later",
            stacklevel=1,
        )


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Generator[None, object, object]:
    """A test that needs a key or data the target cannot provide is skipped, saying why.
    Hypothesis reports such errors from several examples as a group: skip when every one is."""
    try:
        return (yield)
    except SKIP_WITH_REASON as exc:
        skip_test(str(exc))
    except BaseExceptionGroup as group:
        leaves = list(_leaves(group))
        if leaves and all(isinstance(leaf, SKIP_WITH_REASON) for leaf in leaves):
            skip_test(str(leaves[0]))
        raise


def _leaves(group: BaseExceptionGroup[BaseException]) -> Iterator[BaseException]:
    for error in group.exceptions:
        if isinstance(error, BaseExceptionGroup):
            yield from _leaves(error)
        else:
            yield error


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(
    fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
) -> Generator[None, object, object]:
    try:
        return (yield)
    except SKIP_WITH_REASON as exc:
        skip_test(str(exc))


def _interrupt_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_sessionstart(session: pytest.Session) -> None:
    """SIGTERM (a cancelled CI job) unwinds like Ctrl-C, so session teardown deletes test data."""
    # ValueError: not the main thread (e.g. an embedding runner); leave signals alone then.
    with contextlib.suppress(ValueError):
        signal.signal(signal.SIGTERM, _interrupt_on_sigterm)
    session.config.stash[_SESSION] = session
    _remove_last_runs_reports(session.config)


def _remove_last_runs_reports(config: pytest.Config) -> None:
    """A run interrupted at the wrong moment ends before it writes every report: the last
    run's must not stand beside what it wrote (a "conforms" summary next to an interrupted
    run's junit.xml). Removed once the run starts, so a usage error leaves them as they were."""
    from conformance._resources import REPORT_FILES

    report_dir = config.getoption(REPORT_DIR_OPTION, None)
    if not report_dir or hasattr(config, "workerinput"):
        return
    stale = [Path(report_dir) / name for name in REPORT_FILES]
    junit = getattr(config.option, "xmlpath", None)
    for path in [*stale, *([Path(junit)] if junit else [])]:
        with contextlib.suppress(OSError):
            path.unlink()


# --- results: per test, per requirement ------------------------------------------------------

_CURRENT = pytest.StashKey[TestResult]()
_RUNNING = pytest.StashKey[TestResult]()  # the test being run, for the judge created mid-setup
OUTCOME_MARKS = {
    "passed": "pass",
    "failed": "FAIL",
    "warned": "warn",
    "skipped": "skip",
    "untested": "----",
}


def _requirements_of(item: pytest.Item) -> list[str]:
    return [rid for marker in item.iter_markers("requirement") for rid in marker.args]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    results = item.config.stash.get(RESULTS, None)
    if results is None:
        return
    test = results.test(item.nodeid, _requirements_of(item))
    item.stash[_CURRENT] = test
    item.config.stash[_RUNNING] = test
    judge_ = item.config.stash.get(_JUDGE, None)
    if judge_ is not None:
        judge_.start(test)


def _broken_requirements(error: BaseException, declared: list[str]) -> list[str]:
    """The requirement ids a failure names: a rule violation's, or the ``[ID]`` tags that
    start lines of its message or notes (expectations, scenario assertions and the fuzzer
    write them). A group of failures (schemathesis reports one per distinct failure) breaks
    what each of its failures names, and the test's ``declared`` requirements too when one of
    them names none; a failure that names nothing breaks nothing named (the reports then
    count it against the test's requirements)."""
    named: list[str] = []
    unnamed = False
    for failure in _failures_in(error):
        ids = _named_by(failure)
        named += ids
        unnamed = unnamed or not ids
    if named and unnamed:
        named += declared
    return list(dict.fromkeys(named))


def _failures_in(error: BaseException) -> list[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in _failures_in(inner)]
    return [error]


def _named_by(failure: BaseException) -> list[str]:
    if isinstance(failure, RuleViolation):
        return list(dict.fromkeys(v.requirement for v in failure.violations))
    return requirement_ids_in("\n".join(_lines_of(failure)))


def _lines_of(failure: BaseException) -> list[str]:
    notes = getattr(failure, "__notes__", None) or []
    return [line for text in [str(failure), *map(str, notes)] for line in text.splitlines()]


def _failure_message(error: BaseException) -> str:
    """What the reports say of a failure. A group's own message only counts its failures
    ("Schemathesis found 2 distinct failures"), so the lines in which they name the
    requirements they break come first."""
    if not isinstance(error, BaseExceptionGroup):
        return str(error)
    naming = [
        line for failure in _failures_in(error) for line in _lines_of(failure)
        if requirement_ids_in(line)
    ]
    return "\n".join([*dict.fromkeys(naming), str(error)])


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    test = item.stash.get(_CURRENT, None)
    results = item.config.stash.get(RESULTS, None)
    if test is None or results is None:
        return report
    first_failure = test.record_phase(
        when=report.when, duration=report.duration, skipped=report.skipped,
        failed=report.failed, skip_reason=_skip_reason(report) if report.skipped else "",
    )
    if first_failure:
        error = call.excinfo.value if call.excinfo else None
        test.broken = _broken_requirements(error, test.requirements) if error else []
        test.message = results.mask(_failure_message(error) if error else "")
        test.failure = _failure_record(item, call.excinfo)
    _lead_with_requirement(report, test.message if report.failed else "")
    _mask_report(report, results)
    if report.when == "teardown":  # pytest's JUnit writer reads the teardown report's
        report.user_properties.extend(_junit_properties(test, results))
    if report.when == "teardown":
        judge_ = item.config.stash.get(_JUDGE, None)
        if judge_ is not None:
            judge_.current = None
    return report


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """A compact table of requirement outcomes, then the verdict."""
    results = config.stash.get(RESULTS, None)
    if results is None or not results.tests or hasattr(config, "workerinput"):
        return  # an xdist worker's share is not the run: the controller prints the table
    terminalreporter.section("CreatorAudit v2 requirements")
    for rid, entry in results.by_requirement().items():
        line = f"{OUTCOME_MARKS[entry.outcome]:5} {entry.requirement.level:6} {rid}"
        if entry.outcome in {"failed", "warned", "skipped", "untested"} and entry.reasons:
            line += f"  - {entry.reasons[0][:100]}"
        terminalreporter.write_line(line)
    observed = [(t.nodeid, o) for t in results.tests.values() for o in t.observations]
    if observed:
        terminalreporter.write_line("observations (readings of ambiguous rules, not failures):")
        for nodeid, text in observed:
            terminalreporter.write_line(f"  {nodeid.split('::')[-1]}: {text}")
    terminalreporter.write_line(f"verdict: {results.verdict().text}", bold=True)
    _report_locations(terminalreporter, config)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """SHOULD failures alone are warnings: they do not fail the run."""
    results = session.config.stash.get(RESULTS, None)
    if results is None:
        return
    results.finished_at = time.time()
    results.interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
    if exitstatus == pytest.ExitCode.TESTS_FAILED and results.verdict().conforms_must:
        session.exitstatus = pytest.ExitCode.OK
    if exitstatus in NO_VERDICT:  # nothing was judged: a report would say "conforms"
        return
    if not hasattr(session.config, "workerinput"):  # an xdist worker's share is not the run
        _write_reports(session.config, results)


#: session outcomes that judged nothing: no report is written, so none can read as a pass
NO_VERDICT = frozenset(
    {
        pytest.ExitCode.USAGE_ERROR,
        pytest.ExitCode.INTERNAL_ERROR,
        pytest.ExitCode.NO_TESTS_COLLECTED,
    }
)


# --- reports ---------------------------------------------------------------------------------


def _failure_record(
    item: pytest.Item, excinfo: pytest.ExceptionInfo[BaseException] | None
) -> FailureRecord:
    """Which recorded exchange the failure is about, and the statuses the scenario wanted."""
    error = excinfo.value if excinfo is not None else None
    exchange = getattr(error, "exchange", None)
    judge_ = item.config.stash.get(_JUDGE, None)
    step = None
    if exchange is not None and judge_ is not None:
        step = next((i for i, seen in enumerate(judge_.seen) if seen is exchange), None)
        if step is not None and step >= MAX_RECORDED_EXCHANGES:
            step = None
    expected = getattr(error, "expected_status", None)
    return FailureRecord(step=step, expected_status=list(expected) if expected else None)


def _junit_properties(test: TestResult, results: RunResults) -> list[tuple[str, str]]:
    """Requirement ids and their levels, as JUnit ``<property>`` elements."""
    levels = [results.catalogue[r].level for r in test.requirements if r in results.catalogue]
    strongest = next((lv for lv in ("MUST", "SHOULD", "MAY") if lv in levels), "")
    properties = [
        ("requirements", " ".join(test.requirements)),
        ("level", strongest),
        (
            "requirement_levels",
            " ".join(
                f"{r}:{results.catalogue[r].level}" for r in test.requirements
                if r in results.catalogue
            ),
        ),
    ]
    if test.broken:
        properties.append(("broken", " ".join(test.broken)))
    return properties


#: how pytest names the suite's own failures before their message ("conformance._expect.
#: ExpectationFailed: [LINK-RELINK-200] ...")
_SUITE_FAILURE_PREFIX = re.compile(r"^conformance\.[\w.]+: (?=\[)")


def _lead_with_requirement(report: pytest.TestReport, message: str) -> None:
    """JUnit's failure message and the console's summary line come from the crash message,
    which pytest starts with the exception's class: let the suite's own failures start with
    the requirement id they break instead, as the README shows; a group of failures (the
    fuzzer's) with the first line of ``message`` that names one."""
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is None or not isinstance(crash.message, str):
        return
    crash.message = _SUITE_FAILURE_PREFIX.sub("", crash.message, count=1)
    lead = message.splitlines()[0] if message else ""
    if requirement_ids_in(lead) and not requirement_ids_in(crash.message.split("\n", 1)[0]):
        crash.message = f"{lead}\n{crash.message}"


def _mask_report(report: pytest.TestReport, results: RunResults) -> None:
    """Console and JUnit print a report's traceback and captured output: mask keys there too
    (an assertion may quote a response body that echoed a key)."""
    if not results.secrets:
        return
    report.sections = [(title, results.mask(text)) for title, text in report.sections]
    if report.longrepr is None:
        return
    text = str(report.longrepr)
    if results.mask(text) != text:
        report.longrepr = _MaskedLongRepr(report.longrepr, results)


class _MaskedLongRepr(TerminalRepr):
    """A failure representation whose text and crash message have every key value masked."""

    def __init__(self, original: object, results: RunResults) -> None:
        self._text = results.mask(str(original))
        crash = getattr(original, "reprcrash", None)
        if crash is not None:
            crash = type(crash)(crash.path, crash.lineno, results.mask(crash.message))
        self.reprcrash = crash

    def toterminal(self, out: Any) -> None:
        for line in self._text.splitlines():
            out.line(line)

    def __str__(self) -> str:
        return self._text


REPORT_DIR_OPTION = "creatoraudit_report_dir"
_WRITTEN = pytest.StashKey[list[Path]]()


def _write_reports(config: pytest.Config, results: RunResults) -> None:
    """Write every report at session end, when ``--report-dir`` was given."""
    report_dir = config.getoption(REPORT_DIR_OPTION, None)
    if not report_dir:
        return
    import dataclasses

    from conformance._reporting import RunMetadata, write_reports

    # the seed the run used, also when it was drawn rather than given (the header printed it)
    metadata = dataclasses.replace(RunMetadata.from_config(config), seed=fuzzing_seed(config))
    try:
        written = write_reports(results, metadata, Path(report_dir))
    except OSError as exc:
        raise pytest.UsageError(f"cannot write reports to {report_dir}: {exc.strerror}") from None
    junit = getattr(config.option, "xmlpath", None)
    config.stash[_WRITTEN] = [*written, *([Path(junit)] if junit else [])]


def _report_locations(terminalreporter: Any, config: pytest.Config) -> None:
    """After the requirement table: where the reports are."""
    written = config.stash.get(_WRITTEN, None)
    if written:
        terminalreporter.write_line("reports: " + ", ".join(str(p) for p in written))


# --- observations: what the suite saw where the document allows more than one answer ---------


@pytest.fixture
def observe(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Record a reading of an ambiguous rule (which answer the target chose) for this test;
    an observation is reported, never a failure."""
    test = request.node.stash.get(_CURRENT, None)

    def record(text: str) -> None:
        if test is not None:
            test.observations.append(text)

    return record
# --- safety on real, misbehaving and shared targets (conformance/_guard.py, _rerun.py) -------


def _add_safety_options(group: pytest.OptionGroup) -> None:
    """Limits that keep a run finite and polite; each falls back to an environment variable."""
    group.addoption(
        "--connect-timeout",
        dest="creatoraudit_connect_timeout",
        type=float,
        metavar="SECONDS",
        help="per-request connect timeout (default: $CREATORAUDIT_CONNECT_TIMEOUT or 5)",
    )
    group.addoption(
        "--read-timeout",
        dest="creatoraudit_read_timeout",
        type=float,
        metavar="SECONDS",
        help="longest silence while reading an answer "
        "(default: $CREATORAUDIT_READ_TIMEOUT or the request timeout)",
    )
    group.addoption(
        "--max-body-bytes",
        dest="creatoraudit_max_body_bytes",
        type=int,
        metavar="BYTES",
        help="read response bodies up to this size; a longer one fails its check "
        "(default: $CREATORAUDIT_MAX_BODY_BYTES or 1048576)",
    )
    group.addoption(
        "--max-requests",
        dest="creatoraudit_max_requests",
        type=int,
        metavar="N",
        help="never send more than N requests in the run, cleanup included; checks beyond "
        "the budget are skipped (default: $CREATORAUDIT_MAX_REQUESTS or unlimited)",
    )
    group.addoption(
        "--time-budget",
        dest="creatoraudit_time_budget",
        type=float,
        metavar="SECONDS",
        help="skip the remaining checks once the run has taken this long "
        "(default: $CREATORAUDIT_TIME_BUDGET or unlimited)",
    )
    group.addoption(
        "--retry-after-cap",
        dest="creatoraudit_retry_after_cap",
        type=float,
        metavar="SECONDS",
        help="longest Retry-After waited before retrying an unexpected 429 once "
        "(default: $CREATORAUDIT_RETRY_AFTER_CAP or 30)",
    )
    group.addoption(
        "--read-only",
        dest="creatoraudit_read_only",
        action="store_true",
        default=None,
        help="send only requests that cannot change state (production smoke checks); "
        "also $CREATORAUDIT_READ_ONLY=1",
    )
    group.addoption(
        "--enable-disruptive",
        dest="creatoraudit_enable_disruptive",
        action="store_true",
        default=None,
        help="also run disruptive checks, e.g. exhausting a rate-limit window; "
        "also $CREATORAUDIT_ENABLE_DISRUPTIVE=1",
    )
    group.addoption(
        "--no-rerun",
        dest="creatoraudit_no_rerun",
        action="store_true",
        default=None,
        help="report failures at once instead of re-running each once to tell flaky from "
        "reproducible; also $CREATORAUDIT_NO_RERUN=1",
    )
    group.addoption(
        "--request-log",
        dest="creatoraudit_request_log",
        metavar="PATH",
        help="write every request sent (keys masked) as JSON lines to PATH",
    )


def _register_safety_plugins(config: pytest.Config) -> None:
    from conformance import _guard, _lanes, _rerun
    from conformance._gctune import RunCollector

    plugins = (
        (_guard, "creatoraudit-guard"),
        (_rerun, "creatoraudit-rerun"),
        (_lanes, "creatoraudit-lanes"),
    )
    for module, name in plugins:
        if not config.pluginmanager.has_plugin(name):
            config.pluginmanager.register(module, name)
    if not config.pluginmanager.has_plugin("creatoraudit-gc"):
        config.pluginmanager.register(RunCollector(), "creatoraudit-gc")
