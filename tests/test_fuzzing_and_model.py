"""The fuzzer and the state machine pass against the clean reference, each fails on the faults
only it can see (in the smoke profile), and the same seed sends the same requests."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conformance._profiles import PROFILE_SETTINGS
from conformance._resources import scenarios_dir
from conformance.cli import run_cli

FUZZ_TEST = "test_every_documented_operation_survives_fuzzing"
MODEL_TEST = "test_every_answer_matches_the_ownership_model"
ENGINES = f"{FUZZ_TEST} or {MODEL_TEST}"

#: fault -> (the engine's test that must fail, text its failure report must contain)
FAULT_CAUGHT_BY = {
    "uppercase-uuid-500": (FUZZ_TEST, "Server error"),
    "validation-without-errors": (FUZZ_TEST, "[ERR-422-ERRORS]"),
    "conflict-moves-account": (MODEL_TEST, "[LINK-CONFLICT-UNCHANGED]"),
    "relink-after-conflict-201": (MODEL_TEST, "[LINK-RELINK-200]"),
}
UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def run_engines(pytester: pytest.Pytester, *args: str, plugins: list[Any] | None = None):
    pytester.chdir()
    return pytester.inline_run(
        str(scenarios_dir()), "-p", "no:cacheprovider", "-k", ENGINES, *args, plugins=plugins or []
    )


def failures(recorder: pytest.HookRecorder) -> dict[str, str]:
    """Test function -> its failure reports joined (schemathesis reports per subtest)."""
    _, _, failed = recorder.listoutcomes()
    reports: dict[str, str] = {}
    for report in failed:
        name = report.nodeid.split("::")[-1].split("[")[0]
        reports[name] = reports.get(name, "") + "\n" + str(report.longrepr)
    return reports


def test_clean_reference_passes_both_engines_in_smoke(pytester: pytest.Pytester) -> None:
    recorder = run_engines(pytester, "--seed", "11")
    passed, skipped, failed = recorder.listoutcomes()
    assert not failed, [str(r.longrepr)[-2000:] for r in failed]
    assert not skipped
    assert {r.nodeid.split("::")[-1] for r in passed} >= {FUZZ_TEST, MODEL_TEST}


def test_fuzzing_reports_hypothesis_statistics_in_junit(pytester: pytest.Pytester) -> None:
    """The fuzzing test is a plain test that runs hypothesis inside: hypothesis' plugin still
    takes it for one and writes its statistics, as for schemathesis' own wrapper."""
    junit = pytester.path / "junit.xml"
    recorder = run_engines(pytester, "--seed", "11", "-k", FUZZ_TEST, f"--junitxml={junit}")
    assert not recorder.listoutcomes()[2]
    properties = re.findall(r'property name="hypothesis-statistics-([^"]+)"', junit.read_text())
    assert [name.split("::")[-1] for name in properties] == [FUZZ_TEST]


def test_a_fuzzing_failure_fails_the_requirements_its_failures_name(tmp_path: Path) -> None:
    """Schemathesis reports a group of distinct failures; each names what it breaks (the
    project's rules by id, schemathesis' own checks SPEC-RESPONSES-CONFORM), and only those
    fail: before, every requirement the fuzzing test verifies failed with "Schemathesis found
    2 distinct failures", rate-limit headers and request-id echo included."""
    run = subprocess.run(
        [sys.executable, "-m", "conformance.cli", "run", "--reference-fault=unknown-error-code",
         "-k", FUZZ_TEST, "--seed=7", "--lanes=1", f"--report-dir={tmp_path}"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr
    document = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    failed = {r["id"]: r["reasons"] for r in document["requirements"] if r["outcome"] == "failed"}
    assert "ERR-CODE-KNOWN" in failed
    assert set(failed) <= {"ERR-CODE-KNOWN", "SPEC-RESPONSES-CONFORM"}, failed
    assert failed["ERR-CODE-KNOWN"][0].startswith("[ERR-CODE-KNOWN] code 'RESOURCE_NOT_FOUND'")


def test_a_group_with_a_failure_that_names_nothing_also_fails_the_tests_requirements() -> None:
    from conformance.plugin import _broken_requirements

    named = AssertionError("Custom check failed\n\n[ERR-CODE-KNOWN] undocumented code")
    unnamed = AssertionError("a check the suite cannot place")
    declared = ["SPEC-RESPONSES-CONFORM", "RL-HEADERS"]
    group = ExceptionGroup("2 distinct failures", [named, unnamed])
    assert _broken_requirements(group, declared) == ["ERR-CODE-KNOWN", *declared]
    assert _broken_requirements(ExceptionGroup("1", [named]), declared) == ["ERR-CODE-KNOWN"]
    assert _broken_requirements(unnamed, declared) == []  # the reports use the declared ones


@pytest.mark.parametrize("fault", sorted(FAULT_CAUGHT_BY))
def test_fault_is_caught_by_its_engine_in_smoke(pytester: pytest.Pytester, fault: str) -> None:
    test_name, evidence = FAULT_CAUGHT_BY[fault]
    selected = FUZZ_TEST if test_name == FUZZ_TEST else MODEL_TEST
    recorder = run_engines(pytester, f"--reference-fault={fault}", "--seed", "5", "-k", selected)
    failed = failures(recorder)
    assert test_name in failed, f"{fault} was not caught by {test_name}"
    report = failed[test_name]
    assert evidence in report
    if test_name == FUZZ_TEST:  # a reproduction that reads the key from the environment
        assert '"Authorization: Bearer $CREATORAUDIT_API_KEY"' in report
        assert "seed: --seed 5" in report
    else:  # shrunk: a first link, the conflicting link, the re-check that shows the fault
        calls = re.findall(r"^E?\s+\d+\. PUT .*$", report, flags=re.MULTILINE)
        assert 3 <= len(calls) <= 5, calls


class RequestLog:
    """Collects, after each engine test, every request it sent (method and path)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> None:
        api = getattr(item, "funcargs", {}).get("api")
        exchanges = list(api.log) if api is not None else []
        if api is not None:
            api.log.clear()
        created: dict[str, str] = {}
        for exchange in exchanges:
            body = exchange.json() if exchange.method == "POST" else None
            if isinstance(body, dict) and isinstance(body.get("data"), dict):
                created.setdefault(str(body["data"].get("id")), f"<created-{len(created)}>")
        for exchange in exchanges:
            line = f"{exchange.method} {exchange.path}"
            self.lines.append(UUID.sub(lambda m: _role(m.group(0), created), line))


def _role(value: str, created: dict[str, str]) -> str:
    name = created.get(value.lower())
    if name is None:
        return value
    return name if value == value.lower() else name + ":upper"


def test_same_seed_sends_the_same_requests(pytester: pytest.Pytester) -> None:
    logs = []
    for _ in range(2):
        log = RequestLog()
        run_engines(pytester, "--seed", "42", plugins=[log])
        logs.append(log.lines)
    assert len(logs[0]) > 50
    assert logs[0] == logs[1], json.dumps([a for a, b in zip(*logs, strict=False) if a != b][:5])


def test_different_seeds_send_different_requests(pytester: pytest.Pytester) -> None:
    logs = []
    for seed in ("1", "2"):
        log = RequestLog()
        run_engines(pytester, "--seed", seed, plugins=[log])
        logs.append(log.lines)
    assert logs[0] != logs[1]


@pytest.mark.parametrize(
    "content",
    [None, "foo: [1,\n", "openapi: 3.1.0\ninfo: {title: t, version: '1'}\npaths: {}\n"],
    ids=["missing-file", "not-yaml", "no-operations"],
)
def test_unusable_spec_stops_the_run_with_one_line_and_exit_2(
    tmp_path: Path, content: str | None
) -> None:
    spec = tmp_path / "spec.yaml"
    if content is not None:
        spec.write_text(content, encoding="utf-8")
    stdout, stderr = io.StringIO(), io.StringIO()
    code = run_cli(["run", "--report-dir", str(tmp_path), "--spec", str(spec)], stdout, stderr)
    assert code == 2
    lines = stderr.getvalue().strip().splitlines()
    assert len(lines) == 1 and str(spec) in lines[0], lines


class MachineRuns:
    """Records the examples budget and seed of every state-machine run."""

    def __init__(self) -> None:
        self.runs: list[tuple[int, int]] = []

    def record(self, machine: Any, max_examples: int, steps: int) -> None:
        self.runs.append((max_examples, machine._hypothesis_internal_use_seed))


def test_full_profile_splits_the_machine_into_seeded_shards(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Several test items (so xdist can spread them), their budgets adding up to the profile's
    and each with a seed of its own; smoke keeps one item with the run's seed."""
    import conformance._model as model

    for profile, shards in (("full", 4), ("smoke", 1)):
        runs = MachineRuns()
        monkeypatch.setattr(model, "run_link_machine", runs.record)
        recorder = run_engines(
            pytester, "--profile", profile, "--seed", "7", "-k", MODEL_TEST, "-p", "no:xdist"
        )
        passed, _, failed = recorder.listoutcomes()
        assert not failed and len(passed) == shards
        budget = PROFILE_SETTINGS[profile].machine_examples
        assert sum(examples for examples, _ in runs.runs) >= budget
        assert sorted(seed for _, seed in runs.runs) == list(range(7, 7 + shards))
