"""The suite under pytest-xdist: every worker gets its own embedded server and test data, and
the controller's per-requirement table, verdict and reports say what a run without xdist says."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from conformance._reporting import schema_path
from conformance._resources import scenarios_dir

SCENARIOS = ("-k", "not fuzzing and not ownership_model")  # the scenarios suffice; keep it lean
#: relink-returns-201 fails two MUSTs; echo-credentials makes the target quote the keys back
FAULTS = ("--reference-fault=relink-returns-201", "--reference-fault=echo-credentials")
EMBEDDED_KEY = re.compile(r"ca_live_[A-Za-z0-9_-]{8,}")  # any embedded server's generated key
#: per-worker or per-moment values in texts: server URLs, ids, request ids, dates, counters
VARYING = [
    (re.compile(r"http://127\.0\.0\.1:\d+"), "URL"),
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "ID"),
    (re.compile(r"conformance-[0-9a-f]{8}-\d+"), "REQUEST-ID"),
]


def validate(document: object) -> None:
    schema = json.loads(schema_path().read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(schema).validate(document)


def steady(text: str) -> str:
    for pattern, placeholder in VARYING:
        text = pattern.sub(placeholder, text)
    return text


def comparable(document: dict[str, Any]) -> dict[str, Any]:
    """All of results.json that must not differ between a run with and without xdist: not
    timings, nor what each worker has of its own (run id, embedded server, ids, counters)."""
    tests = {
        t["id"]: {
            **{k: t[k] for k in ("outcome", "requirements", "broken", "rerun", "flaky")},
            "message": steady(t["message"].splitlines()[0] if t["message"] else ""),
            "warnings": [steady(w) for w in t["warnings"]],
            "observations": t["observations"],
            "failure": t["failure"] and {
                **{k: t["failure"][k] for k in ("seed", "step", "expected_status")},
                "exchanges": [(x["method"], x["status"], x["principal"])
                              for x in t["failure"]["exchanges"]],
                "fields": sorted({k for x in t["failure"]["exchanges"] for k in x}),
            },
        }
        for t in document["tests"]
    }
    return {
        "keys": sorted(document),
        "target": sorted(document["target"]),
        "run": sorted(set(document["run"]) - {"workers"}),
        "run.seed/profile": (document["run"]["seed"], document["run"]["profile"]),
        "verdict": document["verdict"],
        "counts": document["counts"],
        "requirements": [{**r, "reasons": [steady(x) for x in r["reasons"]]}
                         for r in document["requirements"]],
        "test order": [t["id"] for t in document["tests"]],
        "tests": tests,
    }


def junit_properties(path: Path) -> dict[str, list[str]]:
    return {
        f"{case.get('classname')}.{case.get('name')}": sorted(
            p.get("name", "") for p in case.iter("property")
        )
        for case in ET.parse(path).getroot().iter("testcase")
    }


def reported_as_one_process(shared: Path, plain: Path) -> dict[str, Any]:
    """Check that a run shared between two workers (or lanes) reports what one process does,
    but for what genuinely differs per worker: each its own run id (test-data tag) and
    server. Returns the shared run's results.json."""
    document: dict[str, Any] = json.loads((shared / "results.json").read_text(encoding="utf-8"))
    validate(document)
    expected = json.loads((plain / "results.json").read_text(encoding="utf-8"))
    assert comparable(document) == comparable(expected)
    assert junit_properties(shared / "junit.xml") == junit_properties(plain / "junit.xml")
    assert "workers" not in expected["run"]
    workers = document["run"]["workers"]
    assert [w["id"] for w in workers] == ["gw0", "gw1"]
    run_ids = [w["run_id"] for w in workers]
    assert all(re.fullmatch(r"[0-9a-f]{8}", r) for r in run_ids) and len(set(run_ids)) == 2
    assert document["run"]["id"] == " ".join(run_ids)
    return document


def run(pytester: pytest.Pytester, out: str, *args: str) -> pytest.RunResult:
    """One run of the lean scenarios; the same seed, so the two runs' seeds compare equal."""
    return pytester.runpytest_inprocess(
        str(scenarios_dir()), "-p", "no:cacheprovider", *SCENARIOS, *FAULTS,
        f"--report-dir={out}", f"--junitxml={out}/junit.xml", "--seed=3", *args,
    )


def test_two_workers_report_what_one_process_reports(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.chdir()
    step_summary = pytester.path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    plain = run(pytester, "plain")
    assert plain.ret == 1
    step_summary.unlink()
    result = run(pytester, "xdist", "-p", "xdist", "-n", "2")
    assert result.ret == 1
    outcomes = result.parseoutcomes()
    assert outcomes["passed"] >= 25 and outcomes["failed"] >= 1, outcomes
    result.stdout.fnmatch_lines(["created: 2/2 workers"])
    lines = result.stdout.lines
    assert "FAIL  MUST   LINK-RELINK-200  - [LINK-RELINK-200] expected HTTP 200, got 201" in lines
    # the other workers' passes reach the controller's table too
    assert any(line.startswith("pass  MUST   ERR-PROBLEM-MEMBERS") for line in lines)
    assert any(line.startswith("pass  MUST   AUTH-MISSING-401") for line in lines)
    assert lines.count("verdict: does NOT conform (a MUST failed)") == 1
    assert lines.count("observations (readings of ambiguous rules, not failures):") == 1
    # what the workers sent is counted where the run's summary is printed, once
    sent = [line for line in lines if re.fullmatch(r"creatoraudit: \d+ requests sent", line)]
    assert len(sent) == 1 and int(sent[0].split()[1]) >= outcomes["passed"], sent

    reports = pytester.path / "xdist"
    document = reported_as_one_process(reports, pytester.path / "plain")
    workers = document["run"]["workers"]
    run_ids = [w["run_id"] for w in workers]
    assert all(w["base_url"].startswith("http://127.0.0.1:") for w in workers)
    assert document["target"]["base_url"] == workers[0]["base_url"]
    summary = (reports / "summary.md").read_text(encoding="utf-8")
    assert f"**{workers[0]['base_url']}**" in summary
    assert f"run `{run_ids[0]} {run_ids[1]}`" in summary
    # one summary on the job's page: the controller's, not one more per worker
    assert step_summary.read_text(encoding="utf-8").strip() == summary.strip()

    # the workers mask their own servers' keys, which the target echoed
    texts = [result.stdout.str(), *(p.read_text(encoding="utf-8") for p in reports.iterdir())]
    assert not [EMBEDDED_KEY.search(text) for text in texts if EMBEDDED_KEY.search(text)]


FLAKY = """
import pytest

ATTEMPTS = []

@pytest.mark.requirement("LINK-RELINK-200")
def test_flaky(api, data):
    ATTEMPTS.append(data.creator())
    assert len(ATTEMPTS) > 1, "[LINK-RELINK-200] fails on the first attempt only"

@pytest.mark.requirement("HDR-REQUEST-ID")
def test_fine(api):
    assert api.get("/creators").status == 200
"""


@pytest.mark.parametrize("rerun", [True, False], ids=["flaky", "no-rerun"])
def test_a_workers_failure_reaches_the_reports_with_its_message_and_evidence(
    pytester: pytest.Pytester, rerun: bool
) -> None:
    pytester.makepyfile(test_checks=FLAKY)
    result = pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "-p", "xdist", "-n", "2", "--report-dir=out",
        *([] if rerun else ["--no-rerun"]),
    )
    assert result.ret == 1
    assert result.parseoutcomes().get("flaky" if rerun else "failed") == 1
    reason = "[LINK-RELINK-200] fails on the first attempt only"
    assert f"FAIL  MUST   LINK-RELINK-200  - {reason}" in result.stdout.lines
    out = pytester.path / "out"
    document = json.loads((out / "results.json").read_text(encoding="utf-8"))
    validate(document)
    test = next(t for t in document["tests"] if t["id"].endswith("::test_flaky"))
    assert test["outcome"] == "failed" and test["message"].startswith(reason)
    assert (test["rerun"], test["flaky"]) == (("passed", True) if rerun else (None, False))
    posts = [x for x in test["failure"]["exchanges"] if x["method"] == "POST"]
    assert [x["status"] for x in posts] == ([201, 201] if rerun else [201])
    assert all(x["request_headers"]["authorization"] == "***" for x in posts)
    summary = (out / "summary.md").read_text(encoding="utf-8")
    assert reason in summary
    assert ("`test_checks.py::test_flaky`" in summary) is rerun
    html = (out / "report.html").read_text(encoding="utf-8")
    assert ("flaky</span>" in html) is rerun and "fails on the first attempt only" in html


SEEDS = """
import os

from conformance.plugin import fuzzing_seed

def test_a(request):
    (request.config.rootpath / f"seed-{os.environ['PYTEST_XDIST_WORKER']}").write_text(
        str(fuzzing_seed(request.config))
    )

"""


def test_every_worker_fuzzes_with_the_seed_the_header_prints(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_seeds=SEEDS)
    result = pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "-p", "xdist", "-n", "2", "--dist=each"  # both run the test
    )
    assert result.ret == 0
    header = next(line for line in result.stdout.lines if ", seed " in line)
    printed = re.search(r"seed (\d+) \(--seed to repeat\)", header)
    assert printed is not None, header
    used = [p.read_text() for p in sorted(pytester.path.glob("seed-gw*"))]
    assert used == [printed.group(1)] * 2


def test_the_cli_runs_with_two_workers(tmp_path: Path) -> None:
    """`creatoraudit-conformance run -n 2` as the README gives it (xdist is a dependency)."""
    import io

    from conformance.cli import run_cli

    out, err = io.StringIO(), io.StringIO()
    code = run_cli(
        ["run", "--report-dir", str(tmp_path), "-q", "-n", "2", "-k", "relink"], out, err
    )
    assert code == 0, err.getvalue()
    assert "conforms" in out.getvalue()
    document = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    assert document["run"]["workers"]  # only an xdist run lists workers (those that ran tests)


#: a check of the suite's own kind (it uses the suite's client) whose worker dies under it
CRASHING_CHECK = """
import os
import pytest


@pytest.mark.requirement("HDR-REQUEST-ID")
def test_health_answers(api):
    assert api.get("/health").status == 200


def test_worker_dies(api):
    os._exit(3)
"""


def test_a_crashed_workers_test_is_a_failure_in_the_results(pytester: pytest.Pytester) -> None:
    """Without its worker's evidence, the test still counts: results.json must not say
    "conforms" next to pytest's exit code 1."""
    pytester.makepyfile(test_crash=CRASHING_CHECK)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-n", "2", "--report-dir=out", "--max-worker-restart=0",
    )
    assert result.ret == 1
    document = json.loads((pytester.path / "out" / "results.json").read_text(encoding="utf-8"))
    crashed = [t for t in document["tests"] if t["id"].endswith("test_worker_dies")]
    assert [t["outcome"] for t in crashed] == ["error"], document["tests"]  # no phase known
    assert "crashed" in crashed[0]["message"]
    assert document["verdict"]["conforms_must"] is False
