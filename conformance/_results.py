"""Results per test and per requirement: what every report and the verdict are made from.

The plugin fills a :class:`RunResults` while tests run; reporters only read it. A failure is
attributed to the requirement ids it names (a rule violation or an expectation carries them);
a failure that names none counts against every requirement the test declares.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

from conformance._exchange import Exchange
from conformance._requirements import Requirement

REQUIREMENT_TAG = re.compile(r"^\[([A-Z][A-Z0-9]*(?:-[A-Z0-9]+)+)\]", re.MULTILINE)
MAX_EXCHANGES_PER_TEST = 50


@dataclass
class ExchangeRecord:
    """An exchange with every secret masked, safe to write into any report.

    It keeps what ``replay`` needs to send the request again: the request body, and which
    principal sent it (``authorization`` holds the header only for principals that carry no
    configured key, such as a deliberately invalid one; keys are read from the environment)."""

    method: str
    url: str
    principal: str
    status: int
    request_headers: dict[str, str]
    response_headers: dict[str, str]
    body: str
    curl: str
    request_body: str | None = None
    authorization: str | None = None

    @classmethod
    def of(cls, exchange: Exchange, body_limit: int = 2000) -> ExchangeRecord:
        request_headers = {
            k: ("***" if k == "authorization" else exchange.mask(v))
            for k, v in exchange.request_headers.items()
        }
        sent = exchange.request_headers.get_value("authorization")
        keyless = exchange.principal.env_var is None
        return cls(
            method=exchange.method, url=exchange.mask(exchange.url),
            principal=exchange.principal.name, status=exchange.status,
            request_headers=request_headers,
            response_headers={k: exchange.mask(v) for k, v in exchange.headers.items()},
            body=_masked_text(exchange, exchange.body, body_limit) or "", curl=exchange.curl(),
            request_body=_masked_text(exchange, exchange.request_body, body_limit),
            authorization=exchange.mask(sent) if sent is not None and keyless else None,
        )


def _masked_text(exchange: Exchange, content: bytes | None, limit: int) -> str | None:
    """Decode, mask, then truncate: masking first means no key survives half-cut."""
    if content is None:
        return None
    text = exchange.mask(content.decode("utf-8", "replace"))
    if len(text) > limit:
        text = text[:limit] + f"... ({len(content)} bytes)"
    return text


@dataclass
class FailureRecord:
    """Where a failing test went wrong, so ``replay`` can judge the same step again.

    ``step`` indexes the test's exchanges (None when the failure was about no single
    exchange); ``expected_status`` is what the scenario accepted there, when it was a status."""

    step: int | None = None
    expected_status: list[int] | None = None


@dataclass
class TestResult:
    """One test's outcome and the evidence behind it."""

    nodeid: str
    requirements: list[str]
    outcome: str = "passed"  # passed | failed | skipped | error
    broken: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # SHOULD-level violations, as "[ID] text"
    observations: list[str] = field(default_factory=list)
    #: how a re-run of a failure went: "" (none), "reproduced", "passed" (flaky) or "skipped"
    rerun: str = ""

    def record_phase(
        self, *, when: str, duration: float, skipped: bool, failed: bool, skip_reason: str = ""
    ) -> bool:
        """Fold one pytest phase (setup, call, teardown) into the outcome. A skip counts only
        while nothing failed; the first failure decides failed (call) or error (setup or
        teardown). True when this phase is that first failure: the caller adds its evidence."""
        self.duration += duration
        if skipped and self.outcome == "passed":
            self.outcome, self.message = "skipped", skip_reason
        elif failed and self.outcome not in {"failed", "error"}:
            self.outcome = "failed" if when == "call" else "error"
            return True
        return False
    message: str = ""
    duration: float = 0.0
    #: the evidence as recorded (masked): taken from :attr:`observed` by :meth:`evidence`, or
    #: adopted from a worker's report
    exchanges: list[ExchangeRecord] = field(default_factory=list)
    failure: FailureRecord | None = None
    #: this process's exchanges of the test, not yet recorded. Only a failure's evidence is
    #: ever written, and recording an exchange (masking it, its curl line) at once cost a
    #: twentieth of a scenario run's own CPU time, nearly all of it for tests that passed.
    #: Held here, in memory only, as the client's log holds them.
    observed: list[Exchange] = field(default_factory=list, repr=False, compare=False)

    @property
    def recorded(self) -> int:
        """How many exchanges the test's evidence holds, recorded or not yet."""
        return len(self.exchanges) + len(self.observed)

    def keep_first(self, count: int) -> None:
        """Forget every exchange after the first ``count`` (a hypothesis example's)."""
        kept = min(count, len(self.exchanges))
        del self.exchanges[kept:]
        del self.observed[count - kept :]

    def evidence(self) -> list[ExchangeRecord]:
        """The test's exchanges as masked records, the observed ones recorded now."""
        if self.observed:
            self.exchanges.extend(ExchangeRecord.of(exchange) for exchange in self.observed)
            self.observed.clear()
        return self.exchanges


@dataclass
class RequirementResult:
    requirement: Requirement
    outcome: str  # passed | failed | warned | skipped | untested
    tests: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)


@dataclass
class Verdict:
    conforms_must: bool
    conforms_should: bool
    #: the run stopped before its end (Ctrl-C, a cancelled job): what ran proves no conformance
    interrupted: bool = False

    @property
    def text(self) -> str:
        if self.interrupted:
            return "no verdict: the run was interrupted before its end (what ran is reported)"
        # "it checked": requirements a run skipped or could not test prove nothing either way
        if self.conforms_must and self.conforms_should:
            return "conforms to every MUST and SHOULD it checked"
        if self.conforms_must:
            return "conforms to every MUST it checked (some SHOULD not met)"
        return "does NOT conform (a MUST failed)"


def _reason(test: TestResult, rid: str) -> str:
    """Why a failed test breaks ``rid``: the line of its message that names it, else the
    first."""
    lines = test.message.splitlines()
    if not lines:
        return test.outcome
    return next((line for line in lines if line.startswith(f"[{rid}]")), lines[0])


def requirement_ids_in(message: str) -> list[str]:
    """The ``[ID]`` tags a failure message names, in order, without repeats."""
    return list(dict.fromkeys(REQUIREMENT_TAG.findall(message)))


@dataclass(frozen=True)
class WorkerRun:
    """One pytest-xdist worker's share of a run: its own run id (the tag of the test data it
    made, which ``cleanup --run-id`` needs) and its target (its own embedded server, if any)."""

    id: str
    run_id: str
    base_url: str


@dataclass
class RunResults:
    catalogue: dict[str, Requirement]
    base_url: str = ""
    run_id: str = ""  #: under xdist, the workers' run ids, separated by spaces
    workers: list[WorkerRun] = field(default_factory=list)  #: empty without xdist
    started_at: float = field(default_factory=time.time)
    finished_at: float = 0.0
    tests: dict[str, TestResult] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=list, repr=False)
    interrupted: bool = False  #: see Verdict.interrupted

    def mask(self, text: str) -> str:
        """Replace every key value in ``text``: failure messages may quote anything."""
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def mask_all(self, value: Any) -> Any:
        """Mask every string inside a JSON-like value (dicts, lists, strings)."""
        if isinstance(value, str):
            return self.mask(value)
        if isinstance(value, dict):
            return {k: self.mask_all(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.mask_all(v) for v in value]
        return value

    def test(self, nodeid: str, requirements: list[str] | None = None) -> TestResult:
        if nodeid not in self.tests:
            self.tests[nodeid] = TestResult(nodeid, list(requirements or []))
        return self.tests[nodeid]

    def by_requirement(self) -> dict[str, RequirementResult]:
        results = {rid: RequirementResult(req, "untested") for rid, req in self.catalogue.items()}
        for test in self.tests.values():
            self._attribute(test, results)
        for entry in results.values():  # say why, where the catalogue knows: no check can
            if entry.outcome == "untested" and entry.requirement.untestable:
                entry.reasons.append(f"not checked: {entry.requirement.untestable}")
        return results

    def _attribute(self, test: TestResult, results: dict[str, RequirementResult]) -> None:
        failing = set(test.broken) if test.broken else set(test.requirements)
        for rid in dict.fromkeys([*test.requirements, *test.broken]):
            entry = results.get(rid)
            if entry is None:
                continue
            entry.tests.append(test.nodeid)
            if test.outcome in {"failed", "error"} and rid in failing:
                entry.outcome = "warned" if not entry.requirement.is_must else "failed"
                entry.reasons.append(_reason(test, rid))
            elif test.outcome == "passed" and entry.outcome in {"untested", "skipped"}:
                entry.outcome = "passed"
            elif test.outcome == "skipped" and entry.outcome == "untested":
                entry.outcome = "skipped"
                entry.reasons.append(test.message)
        for warning in test.warnings:
            for rid in requirement_ids_in(warning):
                if rid in results and results[rid].outcome != "failed":
                    results[rid].outcome = "warned"
                    results[rid].tests.append(test.nodeid)
                    results[rid].reasons.append(warning)

    def unattributed_failures(self) -> list[TestResult]:
        """Failures that name no catalogued requirement (errors in the suite or its setup)."""
        return [
            t for t in self.tests.values()
            if t.outcome in {"failed", "error"}
            and not any(r in self.catalogue for r in (t.broken or t.requirements))
        ]

    def verdict(self) -> Verdict:
        if self.interrupted:
            return Verdict(False, False, interrupted=True)
        outcomes = self.by_requirement().values()
        must_ok = not any(r.outcome == "failed" for r in outcomes)
        must_ok = must_ok and not self.unattributed_failures()
        should_ok = not any(r.outcome == "warned" for r in outcomes)
        return Verdict(must_ok, must_ok and should_ok)
