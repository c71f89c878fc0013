"""The kill table: every fault of the reference server against the requirements it breaks.

For each named fault, the scenarios verifying the requirements it breaks run against the
embedded reference server with that fault switched on; a (requirement, fault) pair is *caught*
when a test declaring the requirement fails (or, for a SHOULD, records a warning naming it).
The whole suite must first pass against the clean server. Requirements that can only be
broken by exhausting a rate-limit window also run the rate-limit scenarios with a tiny window.

    python -m conformance.faultmatrix      # prints the table; exit 1 if anything is uncaught
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conformance._requirements import Requirement, load_catalogue
from conformance._results import RunResults, requirement_ids_in

#: fault -> the requirement ids it breaks (the suite's knowledge, not the reference server's)
FAULT_BREAKS: dict[str, tuple[str, ...]] = {
    "relink-returns-201": ("LINK-RELINK-200",),
    "conflict-returns-200": ("LINK-CONFLICT-409", "CODE-409"),
    "conflict-moves-account": ("LINK-CONFLICT-UNCHANGED",),
    "relink-after-conflict-201": ("LINK-CONFLICT-UNCHANGED",),
    "created-without-location": ("LINK-FIRST-LOCATION",),
    "problem-without-code": ("ERR-PROBLEM-MEMBERS",),
    "request-id-not-echoed": ("HDR-REQUEST-ID-ECHO",),
    "foreign-account-linkable": ("LINK-OTHER-ORG-404",),
    "uppercase-uuid-500": ("LINK-PATH-UUID-CASE", "SPEC-NO-SERVER-ERROR"),
    "validation-without-errors": ("ERR-422-ERRORS",),
    "problem-plain-json-content-type": ("ERR-PROBLEM-MEDIA-TYPE", "SPEC-RESPONSES-CONFORM"),
    "weak-etag": ("CACHE-ETAG-STRONG",),
    "not-modified-with-body": ("HTTP-304-NO-METADATA",),
    "ratelimit-reset-in-millis": ("RL-RESET-UNIX",),
    "no-www-authenticate": ("HTTP-401-WWW-AUTHENTICATE",),
    "readonly-key-can-write": ("AUTH-SCOPE-403", "AUTH-SCOPE-WRITE", "CODE-403-SCOPE"),
    "idempotency-key-ignored": ("IDEM-REPLAY",),
    "link-body-not-json": ("HTTP-JSON-BODY",),
    "first-link-returns-200": ("LINK-FIRST-201",),
    "link-record-unwrapped": ("LINK-RECORD-ENVELOPE", "ENV-DATA"),
    "missing-creator-422": ("LINK-NOT-FOUND-404",),
    "non-uuid-path-404": ("LINK-PATH-UUID-422", "CODE-422"),
    "link-location-points-to-account": ("HTTP-PUT-201-LOCATION", "LINK-FIRST-LOCATION"),
    "api-key-header-only": ("AUTH-BEARER",),
    "foreign-creator-readable": ("AUTH-ORG-ISOLATION",),
    "missing-key-403": ("AUTH-MISSING-401", "CODE-401"),
    "invalid-key-403": ("AUTH-INVALID-401",),
    "inactive-key-accepted": ("AUTH-INACTIVE-403", "CODE-403-FORBIDDEN"),
    "readonly-key-cannot-read": ("AUTH-SCOPE-READ",),
    "bearer-scheme-case-sensitive": ("HTTP-AUTH-SCHEME-CASE",),
    "list-without-filters": ("ENV-COLLECTION",),
    "pagination-without-has-next": ("ENV-PAGINATION-MEMBERS",),
    "filters-not-echoed": ("ENV-FILTERS-ECHO",),
    "cursor-ignored": ("PAGE-CURSOR-WALK",),
    "limit-unbounded": ("PAGE-LIMIT-BOUNDS",),
    "has-next-always-true": ("PAGE-HAS-NEXT-FINAL",),
    "cursor-not-bound-to-filters": ("PAGE-CURSOR-BOUND-422",),
    "total-count-missing": ("PAGE-INCLUDE-TOTAL",),
    "list-without-link": ("PAGE-LINK-FIRST",),
    "link-without-next": ("PAGE-LINK-NEXT",),
    "link-header-malformed": ("HTTP-LINK-SYNTAX",),
    "cache-control-public": ("CACHE-CONTROL",),
    "if-none-match-ignored": ("CACHE-304",),
    "if-none-match-always-304": ("CACHE-INM-MISMATCH-200",),
    "rate-limit-shared-across-keys": ("RL-PER-KEY",),
    "ratelimit-headers-missing": ("RL-HEADERS",),
    "ratelimit-limit-not-integer": ("RL-HEADERS-FORMAT",),
    "ratelimit-remaining-constant": ("RL-REMAINING-DECREASES",),
    "health-requires-key": ("PUBLIC-NO-CREDENTIALS",),
    "public-endpoints-rate-limited": ("RL-PUBLIC-OMITTED", "RL-PUBLIC-NOT-LIMITED"),
    "rate-limit-exceeded-503": ("RL-429", "CODE-429"),
    "retry-after-missing": ("RL-RETRY-AFTER",),
    "health-text-plain": ("NEG-JSON-ONLY",),
    "accept-ignored": ("NEG-406", "CODE-406"),
    "accept-wildcard-rejected": ("NEG-ACCEPT-JSON-ADMITTED",),
    "non-json-body-400": ("NEG-415", "CODE-415"),
    "problem-status-mismatch": ("ERR-PROBLEM-STATUS",),
    "problem-type-url": ("ERR-TYPE-URN",),
    "unknown-error-code": ("ERR-CODE-KNOWN", "CODE-404"),
    "not-found-code-bad-request": ("ERR-CODE-STATUS", "CODE-404"),
    "problem-instance-template": ("ERR-INSTANCE-PATH",),
    "problem-without-request-id": ("ERR-REQUEST-ID",),
    "malformed-json-500": ("CODE-400",),
    "create-without-location": ("IDEM-201-LOCATION",),
    "no-request-id-on-public": ("HDR-REQUEST-ID",),
    "method-not-allowed-without-allow": ("HTTP-405-ALLOW",),
}

#: Faults that prove something about the suite itself rather than about the document; they
#: break no requirement and are not part of the kill table.
SUITE_FAULTS: dict[str, str] = {
    "echo-credentials": "proves that reports never leak a key the server echoes back",
}

#: Requirements only a window exhausted on purpose can show broken.
DISRUPTIVE_REQUIREMENTS = frozenset(
    {"RL-429", "RL-RETRY-AFTER", "CODE-429", "RL-PUBLIC-NOT-LIMITED"}
)
DISRUPTIVE_ARGS = ("--enable-disruptive", "--reference-rate-limit=5")
RATE_LIMIT_SCENARIOS = "test_rate_limit.py"
#: Generating engines (fuzzer, state machine): slow to shrink a failure, so a fault runs them
#: only for requirements no hand-written scenario verifies.
ENGINE_SCENARIOS = ("test_fuzz.py", "test_model.py")

#: Every run: quiet, no tracebacks to format, and no re-run of failures (a fault is
#: reproducible by construction; re-running would only double the time).
RUN_ARGS = ("-p", "no:cacheprovider", "-q", "--tb=no", "--no-rerun")

#: Runs pytest in-process with the given arguments and one extra plugin object.
Runner = Callable[[list[str], object], None]


class _Capture:
    """A pytest plugin object that keeps what a run produced: its items and its results."""

    def __init__(self) -> None:
        self.results: RunResults | None = None
        self.declared: dict[str, set[str]] = {}  # requirement -> "file::function" selectors
        self.exit_status: int = -1

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        for item in session.items:
            for marker in item.iter_markers("requirement"):
                for rid in marker.args:
                    selector = f"{item.path}::{getattr(item, 'originalname', item.name)}"
                    self.declared.setdefault(rid, set()).add(selector)

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        from conformance.plugin import RESULTS

        self.results = session.config.stash.get(RESULTS, None)
        self.exit_status = int(exitstatus)


@dataclass
class Run:
    """One in-process run: which tests failed, and which requirement each one verifies."""

    failed: list[str] = field(default_factory=list)
    caught: set[str] = field(default_factory=set)


def _run(runner: Runner, selectors: Iterable[str | Path], *extra: str) -> Run:
    capture = _Capture()
    chosen = sorted({str(s) for s in selectors})
    runner([*chosen, *RUN_ARGS, *extra], capture)
    run = Run()
    if capture.results is None:
        return run
    catalogue = capture.results.catalogue
    for test in capture.results.tests.values():
        if test.outcome in {"failed", "error"}:
            run.failed.append(test.nodeid)
            run.caught.update(test.requirements)
        for warning in test.warnings:
            run.caught.update(
                rid
                for rid in requirement_ids_in(warning)
                if rid in test.requirements and not catalogue[rid].is_must
            )
    return run


@dataclass
class Matrix:
    """The table and everything it needs to say what is missing."""

    catalogue: dict[str, Requirement]
    clean_failures: list[str]
    caught: dict[tuple[str, str], bool]  # (requirement, fault) -> caught

    def faults_of(self, rid: str) -> list[str]:
        return sorted(f for r, f in self.caught if r == rid)

    def testable_without_fault(self) -> list[str]:
        return [
            rid
            for rid, req in self.catalogue.items()
            if not req.untestable and not req.unprovable and not self.faults_of(rid)
        ]

    def uncaught(self) -> list[tuple[str, str]]:
        return sorted(pair for pair, ok in self.caught.items() if not ok)

    @property
    def ok(self) -> bool:
        return not (self.clean_failures or self.uncaught() or self.testable_without_fault())

    def table(self) -> str:
        lines = [f"{'requirement':26} {'fault':34} caught"]
        for rid, req in self.catalogue.items():
            if req.untestable:
                lines.append(f"{rid:26} {'-':34} untestable")
                continue
            faults = self.faults_of(rid)
            if not faults:
                lines.append(f"{rid:26} {'-':34} {'unprovable' if req.unprovable else 'NO FAULT'}")
            for fault in faults:
                mark = "yes" if self.caught[(rid, fault)] else "NO"
                lines.append(f"{rid:26} {fault:34} {mark}")
        verdict = (
            "clean reference passes"
            if not self.clean_failures
            else (f"clean reference FAILS: {', '.join(self.clean_failures)}")
        )
        lines.append(verdict)
        return "\n".join(lines)


def _verifying(selectors: set[str]) -> set[str]:
    """The hand-written scenarios among ``selectors``, or all of them when there are none."""
    written = {s for s in selectors if s.split("::")[0].rsplit("/", 1)[-1] not in ENGINE_SCENARIOS}
    return written or selectors


def build_matrix(runner: Runner, scenarios: Path, faults: Iterable[str] | None = None) -> Matrix:
    """Run the clean suite, then every fault against the scenarios that verify what it breaks."""
    catalogue = load_catalogue()
    clean = _Capture()
    runner([str(scenarios), *RUN_ARGS], clean)
    clean_failures = (
        [t.nodeid for t in clean.results.tests.values() if t.outcome in {"failed", "error"}]
        if clean.results
        else ["(no results)"]
    )
    if clean.exit_status not in (0,):
        clean_failures = clean_failures or [f"(pytest exit status {clean.exit_status})"]
    rate_limit_file = scenarios / RATE_LIMIT_SCENARIOS
    disruptive_clean = _run(runner, [rate_limit_file], *DISRUPTIVE_ARGS)
    clean_failures += disruptive_clean.failed
    caught: dict[tuple[str, str], bool] = {}
    for fault in sorted(faults if faults is not None else FAULT_BREAKS):
        broken = FAULT_BREAKS[fault]
        tests = {t for rid in broken for t in _verifying(clean.declared.get(rid, set()))}
        seen = _run(runner, tests, f"--reference-fault={fault}").caught if tests else set()
        if DISRUPTIVE_REQUIREMENTS & set(broken):
            seen |= _run(
                runner, [rate_limit_file], f"--reference-fault={fault}", *DISRUPTIVE_ARGS
            ).caught
        for rid in broken:
            caught[(rid, fault)] = rid in seen
    return Matrix(catalogue, clean_failures, caught)


def _pytest_main(args: list[str], plugin: object) -> None:
    """pytest.main with the CLI's own settings; its terminal output is swallowed."""
    import contextlib
    import io

    from conformance._resources import run_ini_path, scenarios_dir, suite_plugin_args

    settings = [
        f"--config-file={run_ini_path()}", f"--rootdir={scenarios_dir()}", *suite_plugin_args()
    ]
    with contextlib.redirect_stdout(io.StringIO()):
        pytest.main([*args, *settings], plugins=[plugin])


def main(argv: list[str] | None = None) -> int:
    """Print the kill table; exit 0 when every fault is caught and the clean server passes."""
    from conformance._resources import scenarios_dir

    matrix = build_matrix(_pytest_main, scenarios_dir())
    print(matrix.table())
    for rid in matrix.testable_without_fault():
        print(f"testable requirement without a fault: {rid}")
    for rid, fault in matrix.uncaught():
        print(f"not caught: {fault} ({rid})")
    return 0 if matrix.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
