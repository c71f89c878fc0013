"""The reports a run writes: valid results.json, JUnit properties, HTML, Markdown, and the
console; and that no key value reaches any of them, even from a server that echoes it."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest

from conformance._reference import EmbeddedServer, ReferenceKeys, ReferenceSettings
from conformance._reporting import schema_path
from conformance._reporting._document import sha256_of
from conformance._resources import scenarios_dir, spec_path

REPORTS = ("results.json", "report.html", "summary.md")
#: recognisable key values; none of them may appear in any output
KEYS = ReferenceKeys(
    api_key="caWriteKeyLEAKCANARY1111",
    readonly_api_key="caReadKeyLEAKCANARY2222",
    inactive_api_key="caInactiveKeyLEAKCANARY3333",
    other_org_api_key="caOtherOrgKeyLEAKCANARY4444",
)
KEY_ENV = {
    "CREATORAUDIT_API_KEY": KEYS.api_key,
    "CREATORAUDIT_READONLY_API_KEY": KEYS.readonly_api_key,
    "CREATORAUDIT_INACTIVE_API_KEY": KEYS.inactive_api_key,
    "CREATORAUDIT_OTHER_ORG_API_KEY": KEYS.other_org_api_key,
}
#: a vendor's own check that quotes a whole response body in a plain assert
QUOTING_TEST = '''
def test_body_is_quoted_by_a_plain_assert(api):
    exchange = api.get("/creators")
    assert exchange.json() == {}
'''


def validate(document: object) -> None:
    schema = json.loads(schema_path().read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(document)


def run_scenarios(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    pytester.chdir()
    return pytester.runpytest(str(scenarios_dir()), "-p", "no:cacheprovider", *args)


@pytest.fixture
def keyed_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in KEY_ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def echoing_server() -> Iterator[EmbeddedServer]:
    """A target that reflects the presented key in a header and in bodies, and fails a MUST."""
    faults = {"echo-credentials", "relink-returns-201"}
    with EmbeddedServer(ReferenceSettings(keys=KEYS, faults=faults)) as server:
        yield server


def test_failing_run_writes_every_report(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    step_summary = pytester.path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    result = run_scenarios(
        pytester, "-k", "relink or request_id", "--reference-fault=relink-returns-201",
        "--report-dir=out", "--junitxml=out/junit.xml",
    )
    out = pytester.path / "out"
    document = json.loads((out / "results.json").read_text(encoding="utf-8"))
    validate(document)
    assert document["spec"]["sha256"] == sha256_of(spec_path())
    assert document["verdict"]["conforms_must"] is False
    # no --seed given: the seed drawn and printed in the header is the one recorded
    result.stdout.fnmatch_lines([f"creatoraudit: profile smoke, seed {document['run']['seed']} *"])
    requirement = {r["id"]: r for r in document["requirements"]}["LINK-RELINK-200"]
    assert requirement["outcome"] == "failed"
    failed = [t for t in document["tests"] if t["outcome"] == "failed"]
    assert [t["id"].split("::")[-1] for t in failed] == [
        "test_relink_to_same_creator_is_idempotent_200"
    ]
    failure = failed[0]["failure"]
    assert isinstance(failure["seed"], int) and failure["seed"] == document["run"]["seed"]
    step = failure["exchanges"][failure["step"]]
    assert (step["method"], step["status"], failure["expected_status"]) == ("PUT", 201, [200])
    assert step["request_headers"]["authorization"] == "***"
    assert "$CREATORAUDIT_API_KEY" in step["curl"]
    assert all(t["failure"] is None for t in document["tests"] if t["outcome"] == "passed")

    summary = (out / "summary.md").read_text(encoding="utf-8")
    assert "does NOT conform" in summary and "`LINK-RELINK-200`" in summary
    assert step_summary.read_text(encoding="utf-8").strip() == summary.strip()

    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Does not conform" in html and "LINK-RELINK-200" in html
    assert "http://" not in html.replace(document["target"]["base_url"], "")
    assert "<link" not in html and "<script" not in html and "@import" not in html

    case = next(
        c for c in ET.parse(out / "junit.xml").getroot().iter("testcase")
        if c.get("name") == "test_relink_to_same_creator_is_idempotent_200"
    )
    properties = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert properties["requirements"] == "LINK-RELINK-200"
    assert properties["level"] == "MUST"
    assert properties["broken"] == "LINK-RELINK-200"
    failure_element = case.find("failure")
    assert failure_element is not None
    # the message starts with the requirement, not the exception's class (README, Reports)
    assert (failure_element.get("message") or "").startswith("[LINK-RELINK-200] expected HTTP")

    result.stdout.fnmatch_lines(["FAIL  MUST   LINK-RELINK-200*", "reports: *results.json*"])


def test_passing_run_reports_conformance(pytester: pytest.Pytester) -> None:
    run_scenarios(pytester, "-k", "relink", "--report-dir=out")
    document = json.loads((pytester.path / "out" / "results.json").read_text(encoding="utf-8"))
    validate(document)
    assert document["verdict"]["conforms_must"] is True
    assert all(t["failure"] is None for t in document["tests"])


def test_no_reports_without_report_dir(pytester: pytest.Pytester) -> None:
    run_scenarios(pytester, "-k", "relink")
    assert not any((pytester.path / name).exists() for name in REPORTS)
    assert not list(pytester.path.rglob("results.json"))


def test_no_reports_when_the_suite_is_not_used(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain="def test_nothing_to_do_with_the_suite():\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "--report-dir=out")
    result.assert_outcomes(passed=1)
    assert not (pytester.path / "out").exists()


def test_keys_never_appear_in_reports_or_console(
    pytester: pytest.Pytester, keyed_env: None, echoing_server: EmbeddedServer
) -> None:
    pytester.makepyfile(test_vendor_check=QUOTING_TEST)
    pytester.chdir()
    result = pytester.runpytest(
        str(scenarios_dir()), str(pytester.path / "test_vendor_check.py"),
        "-p", "no:cacheprovider", f"--base-url={echoing_server.base_url}",
        "--report-dir=out", "--junitxml=out/junit.xml", "-rA",
    )
    # two relink scenarios, the ownership model (it sees the relink 201 too), the vendor check
    # fail; the count of passing scenarios grows with the catalogue
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed") == 4 and outcomes.get("passed", 0) >= 28, outcomes
    outputs = {p.name: p.read_text(encoding="utf-8") for p in (pytester.path / "out").iterdir()}
    assert set(outputs) == {"junit.xml", *REPORTS}
    outputs["console"] = "\n".join(result.outlines + result.errlines)
    # the target did echo the key: the masked echo is there as evidence
    assert "x-debug-authorization: Bearer ***" in outputs["console"]
    assert '"x-debug-authorization": "Bearer ***"' in outputs["results.json"]
    leaks = {
        (where, name) for where, text in outputs.items()
        for name, key in KEY_ENV.items() if key in text
    }
    assert not leaks


def minimal_document() -> dict[str, object]:
    from conformance._reporting import RunMetadata, build_document
    from conformance._requirements import load_catalogue
    from conformance._results import RunResults

    metadata = RunMetadata(suite_version="0", spec_path="spec/openapi.yaml", spec_sha256="0")
    return build_document(RunResults(load_catalogue()), metadata)


def test_report_template_is_compiled_once_per_machine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from conformance._reporting._html import render_html

    monkeypatch.setenv("CREATORAUDIT_CACHE_DIR", str(tmp_path / "cache"))
    document = minimal_document()
    first = render_html(document)
    compiled = list((tmp_path / "cache" / "templates").iterdir())
    assert len(compiled) == 1
    assert render_html(document) == first
    assert list((tmp_path / "cache" / "templates").iterdir()) == compiled


def test_report_renders_without_a_usable_cache_folder(unusable_cache_dir: Path) -> None:
    from conformance._reporting._html import render_html

    assert "<html" in render_html(minimal_document())


#: two checks of the suite's kind; the second is interrupted (as by Ctrl-C)
INTERRUPTED_RUN = """
import pytest


@pytest.mark.requirement("HDR-REQUEST-ID")
def test_health_answers(api):
    assert api.get("/health").status == 200


def test_interrupted_here(api):
    raise KeyboardInterrupt
"""


def test_an_interrupted_run_reports_no_verdict(pytester: pytest.Pytester) -> None:
    """What ran is reported, but a run stopped half-way proves no conformance: the reports
    must not say "conforms" next to the program's "interrupted"."""
    pytester.makepyfile(test_interrupted=INTERRUPTED_RUN)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--report-dir=out")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    document = json.loads((pytester.path / "out" / "results.json").read_text(encoding="utf-8"))
    validate(document)
    assert document["verdict"]["conforms_must"] is False
    assert document["verdict"]["text"].startswith("no verdict: the run was interrupted")
    summary = (pytester.path / "out" / "summary.md").read_text(encoding="utf-8")
    assert "no verdict: the run was interrupted" in summary


def test_evidence_is_recorded_masked_when_asked_and_examples_trim_it() -> None:
    """A test's exchanges are kept as observed and recorded (masked) only when a report asks
    for its evidence; a new hypothesis example forgets the last one's exchanges whether they
    were recorded already or not."""
    from conformance._results import TestResult
    from tests._factories import SECRET, exchange

    test = TestResult("t", [])
    test.observed += [exchange(200), exchange(404)]
    assert test.recorded == 2 and test.exchanges == []
    first = test.evidence()
    assert [record.status for record in first] == [200, 404] and not test.observed
    assert all(SECRET not in json.dumps(record.__dict__) for record in first)
    test.observed.append(exchange(409))
    test.keep_first(1)
    assert [record.status for record in test.evidence()] == [200]
    test.observed += [exchange(201), exchange(422)]
    test.keep_first(2)
    assert [record.status for record in test.evidence()] == [200, 201]


ARGUMENTS_IN_TRACEBACK = """
def test_fails_with_the_target_in_its_arguments(conformance_target, api):
    assert conformance_target is None
"""


def test_a_traceback_that_shows_the_target_shows_no_key_not_even_cut_short(
    pytester: pytest.Pytester,
) -> None:
    """pytest shows a failing test's arguments in its traceback, cut to a few hundred
    characters: a key cut in the middle was not masked (seen: an interrupted fuzzing run
    printed 39 of a key's 40 characters). Reprs name which keys are set, never their values."""
    import re

    pytester.makepyfile(test_arguments=ARGUMENTS_IN_TRACEBACK)
    pytester.chdir()
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--tb=long", "--report-dir=out", "--junitxml=out/junit.xml"
    )
    assert result.parseoutcomes().get("failed") == 1
    reports = (pytester.path / "out").iterdir()
    texts = [result.stdout.str(), *(path.read_text(encoding="utf-8") for path in reports)]
    assert "conformance_target = Target(" in texts[0]  # the arguments are shown
    # any start of an embedded server's key ("ca_live_..."), however short the cut left it
    assert not [m.group() for text in texts for m in re.finditer(r"ca_li\S*", text)]


def test_no_repr_holds_a_key_value() -> None:
    """Whatever a traceback shows of the suite's objects, cut short or not, holds no key."""
    from conformance import Credentials
    from conformance._reference import ReferenceKeys
    from tests._factories import SECRET, exchange

    keys = ReferenceKeys.generate()
    shown = [
        repr(Credentials(api_key=SECRET, other_org_api_key=SECRET)),
        repr(keys),
        repr(exchange(404)),
        repr(exchange(200).request_headers),
    ]
    assert not [text for text in shown if SECRET in text or keys.api_key in text], shown
    assert "api_key=<set>" in shown[0] and "readonly_api_key=None" in shown[0]


def test_a_requirement_no_check_can_test_says_why_in_the_results() -> None:
    """Reported "not tested" with no reason, it read as a gap in the suite; the catalogue says
    why no check can test it (so did only `creatoraudit-conformance requirements`)."""
    from conformance._requirements import load_catalogue
    from conformance._results import RunResults

    entries = RunResults(load_catalogue()).by_requirement()
    untestable = entries["AUTH-SCOPE-HIERARCHY"]
    assert untestable.outcome == "untested"
    assert untestable.reasons == [f"not checked: {untestable.requirement.untestable}"]
    assert entries["AUTH-MISSING-401"].reasons == []  # testable, merely not run


def test_a_summary_of_a_run_in_which_no_test_ran_says_so() -> None:
    """An interrupt before the first test ended left "- Tests: " and nothing after it."""
    from conformance._reporting._markdown import render_markdown

    assert "- Tests: none ran\n" in render_markdown(minimal_document())
