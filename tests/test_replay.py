"""``replay`` re-sends a failure's recorded requests and tells a fixed target from a broken one."""

from __future__ import annotations

import io
import json
from pathlib import Path

import httpx
import pytest

from conformance._config import Credentials
from conformance._reference import EmbeddedServer, ReferenceKeys, ReferenceSettings
from conformance._replay import _Replayer, recorded_bases
from conformance._resources import scenarios_dir
from conformance.cli import EXIT_CANNOT_RUN, EXIT_CONFORMS, EXIT_FAILS, run_cli

KEYS = ReferenceKeys.generate()


def replay(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run_cli(["replay", *args], out, err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def keyed_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREATORAUDIT_API_KEY", KEYS.api_key)
    monkeypatch.setenv("CREATORAUDIT_OTHER_ORG_API_KEY", KEYS.other_org_api_key)


def test_replay_reproduces_on_the_faulty_target_and_not_on_a_fixed_one(
    pytester: pytest.Pytester, keyed_env: None
) -> None:
    faulty = ReferenceSettings(keys=KEYS, faults={"relink-returns-201"})
    with EmbeddedServer(faulty) as broken, EmbeddedServer(ReferenceSettings(keys=KEYS)) as fixed:
        pytester.chdir()
        pytester.runpytest(
            str(scenarios_dir()), "-p", "no:cacheprovider", "-k", "link and not foreign",
            f"--base-url={broken.base_url}", "--report-dir=out",
        )
        results = str(pytester.path / "out" / "results.json")
        code, out, _ = replay(results)
        assert code == EXIT_FAILS
        assert any(
            line.startswith("still fails") and "test_relink_to_same_creator" in line
            for line in out.splitlines()
        ), out
        assert "-> 201, expected 200" in out

        code, out, _ = replay(results, "--base-url", fixed.base_url)
        assert code == EXIT_CONFORMS, out
        assert out.count("fixed ") == 2

        code, out, _ = replay(
            results, "--base-url", fixed.base_url,
            "--test", "test_relink_to_same_creator_is_idempotent_200",
        )
        assert code == EXIT_CONFORMS and out.count("fixed ") == 1


def test_a_state_machine_failure_records_and_replays_its_shrunk_run(
    pytester: pytest.Pytester, keyed_env: None
) -> None:
    """The model's test runs many examples; its recorded sequence is the failing (last, shrunk)
    run's, with the creation of what that run built on, and not the session's cleanup."""
    faulty = ReferenceSettings(keys=KEYS, faults={"relink-returns-201"})
    with EmbeddedServer(faulty) as broken, EmbeddedServer(ReferenceSettings(keys=KEYS)) as fixed:
        pytester.chdir()
        pytester.runpytest(
            str(scenarios_dir()), "-p", "no:cacheprovider", "-k", "ownership_model",
            "--no-rerun", f"--base-url={broken.base_url}", "--report-dir=out",
        )
        results = pytester.path / "out" / "results.json"
        (test,) = json.loads(results.read_text(encoding="utf-8"))["tests"]
        failure = test["failure"]
        calls = [(e["method"], e["status"]) for e in failure["exchanges"]]
        assert calls[-2:] == [("PUT", 201), ("PUT", 201)], calls  # link, then the re-link
        assert ("DELETE", 204) not in calls
        assert {"POST"} == {method for method, _ in calls[:-2]}
        assert failure["step"] == len(calls) - 1 and failure["expected_status"] == [200]

        code, out, _ = replay(str(results))
        assert code == EXIT_FAILS and "-> 201, expected 200" in out, out
        code, out, _ = replay(str(results), "--base-url", fixed.base_url)
        assert code == EXIT_CONFORMS and "fixed " in out, out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read"),
        ("{not json", "is not JSON"),
        ('{"schema_version": 1}', "is not a results.json file"),
    ],
    ids=["missing-file", "not-json", "not-results"],
)
def test_bad_results_file_is_one_line_exit_2(
    tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "results.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    code, _, err = replay(str(path))
    assert code == EXIT_CANNOT_RUN
    assert message in err and err.count("\n") == 1


def test_unknown_test_is_exit_2(tmp_path: Path, pytester: pytest.Pytester) -> None:
    pytester.chdir()
    pytester.runpytest(str(scenarios_dir()), "-p", "no:cacheprovider", "-k", "relink",
                       "--report-dir=out")
    code, _, err = replay(str(pytester.path / "out" / "results.json"), "--test", "no_such_test")
    assert code == EXIT_CANNOT_RUN and "no failed test 'no_such_test'" in err
    document = json.loads((pytester.path / "out" / "results.json").read_text(encoding="utf-8"))
    assert document["verdict"]["conforms_must"] is True


def test_replay_sends_every_xdist_workers_requests_to_the_one_target() -> None:
    gw0, gw1 = "http://127.0.0.1:4001/v2", "http://127.0.0.1:4002/v2"
    document = {
        "target": {"base_url": gw0},
        "run": {"workers": [{"id": "gw0", "run_id": "a", "base_url": gw0},
                            {"id": "gw1", "run_id": "b", "base_url": gw1 + "/"}]},
    }
    assert recorded_bases(document) == (gw0, gw1)
    with httpx.Client() as client:
        replayer = _Replayer(client, Credentials(), recorded_bases(document), "http://new/v2")
        assert replayer.url(f"{gw1}/creators") == "http://new/v2/creators"
        assert replayer.url(f"{gw0}/accounts") == "http://new/v2/accounts"
    assert recorded_bases({"target": {"base_url": gw0}, "run": {}}) == (gw0,)


def test_a_key_a_later_sequence_needs_is_asked_for_before_anything_is_sent() -> None:
    """Without it, the first failures were replayed and reported before the missing key ended
    the replay (exit 2 after "still fails" lines: fresh-user trial)."""
    from conformance._config import ConfigurationError
    from conformance._replay import replay

    def failed(name: str, principal: str) -> dict[str, object]:
        record = {"principal": principal, "authorization": None, "method": "GET",
                  "url": "http://127.0.0.1:9/v2/health", "request_headers": {},
                  "request_body": None, "status": 404}
        return {"id": f"t.py::{name}", "failure": {"exchanges": [record], "step": 0}}

    document = {
        "target": {"base_url": "http://127.0.0.1:9/v2"}, "run": {},
        "tests": [failed("test_own", "FULL"), failed("test_other", "OTHER_ORG")],
    }
    outcomes = replay(document, credentials=Credentials(api_key="ca_key"))
    with pytest.raises(ConfigurationError, match="CREATORAUDIT_OTHER_ORG_API_KEY"):
        next(outcomes)
