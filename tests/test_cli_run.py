"""The command line end to end: a separately started reference server, exit codes, ids files."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance._config import KEY_ENV_VARS

CLI = [sys.executable, "-m", "conformance.cli"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CREATORAUDIT_", "PYTEST_"))}
    return env


class Served:
    """``creatoraudit-conformance serve`` in its own process, as a user would start it."""

    def __init__(self, *faults: str) -> None:
        port = free_port()
        args = [*CLI, "serve", "--port", str(port), *(f"--fault={f}" for f in faults)]
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, env=clean_env())
        self.env = clean_env()
        assert self.process.stdout is not None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if line.strip().startswith("export "):
                name, _, value = line.strip().removeprefix("export ").partition("=")
                self.env[name] = value
            if set(KEY_ENV_VARS.values()) <= set(self.env):
                break
        self.base_url = self.env["PYTEST_BASE_URL"]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        assert self.process.stdout is not None
        self.process.stdout.close()


@pytest.fixture
def served() -> Iterator[Served]:
    server = Served()
    yield server
    server.stop()


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "run", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_separately_served_reference_conforms(served: Served, tmp_path: Path) -> None:
    result = run(["-q"], served.env, tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert re.search(r"conforms \(\d+ of \d+ requirements passed, ", result.stdout)
    assert (tmp_path / "reports" / "junit.xml").is_file()
    for key in KEY_ENV_VARS.values():
        assert served.env[key] not in result.stdout + result.stderr


def test_faulty_served_reference_exits_1(tmp_path: Path) -> None:
    server = Served("relink-returns-201")
    try:
        result = run(["-q", "-k", "relink"], server.env, tmp_path)
    finally:
        server.stop()
    assert result.returncode == 1, result.stdout[-2000:]
    assert "LINK-RELINK-200" in result.stdout


@pytest.mark.parametrize(
    "variable", ["CREATORAUDIT_API_KEY", "CREATORAUDIT_READONLY_API_KEY"], ids=["write", "read"]
)
def test_a_key_the_target_does_not_know_is_one_line_not_a_verdict(
    served: Served, tmp_path: Path, variable: str
) -> None:
    """A wrong key would fail nearly every check: "does NOT conform" about a target the run
    never got to judge. It is a configuration error instead, and the key is not printed."""
    env = {**served.env, variable: "ca_live_wrong_key_0000000000000000"}
    result = run(["-q"], env, tmp_path)
    assert result.returncode == 2, result.stdout[-2000:]
    assert result.stderr == (
        f"creatoraudit-conformance: error: {served.base_url} does not know {variable}: it "
        "answers 401 to it (GET /creators/{id}, as a bearer token and as X-API-Key); is it a "
        "key of this target?\n"
    )
    assert not (tmp_path / "reports").exists() or not list((tmp_path / "reports").iterdir())


def test_a_target_refusing_bearer_tokens_is_judged_not_refused(tmp_path: Path) -> None:
    """It knows the key (in X-API-Key): the run goes ahead and fails AUTH-BEARER."""
    server = Served("api-key-header-only")
    try:
        result = run(["-q", "--no-rerun", "-k", "test_auth"], server.env, tmp_path)
    finally:
        server.stop()
    assert result.returncode == 1, result.stderr[-2000:]
    assert "AUTH-BEARER" in result.stdout


def test_missing_api_key_for_remote_target_exits_2(tmp_path: Path) -> None:
    result = run(["--base-url", "http://127.0.0.1:9/v2"], clean_env(), tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "CREATORAUDIT_API_KEY" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_base_url_without_the_api_path_names_the_api_root(
    served: Served, tmp_path: Path
) -> None:
    """The server's root instead of its API root made every check fail (7,000 lines, "does
    NOT conform", fresh-user trial): one line names the root that answers."""
    server_root = served.base_url.removesuffix("/v2")
    env = {**served.env, "PYTEST_BASE_URL": server_root}
    result = run(["-q"], env, tmp_path)
    assert result.returncode == 2, result.stdout[-2000:]
    assert result.stderr == (
        f"creatoraudit-conformance: error: {server_root} answers 404 to GET /health, "
        f"{served.base_url} answers 200: is the API root {served.base_url}? "
        f"(give --base-url {served.base_url})\n"
    )


@pytest.mark.parametrize("url", ["notaurl", "ftp://example.com/v2", "http://"])
def test_a_base_url_that_is_no_http_url_is_one_line(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    from conformance.cli import run_cli

    monkeypatch.setenv("CREATORAUDIT_API_KEY", "ca_test_key")
    err = io.StringIO()
    args = ["run", "--base-url", url, "--report-dir", str(tmp_path)]
    assert run_cli(args, io.StringIO(), err) == 2
    assert err.getvalue() == (
        f"creatoraudit-conformance: error: base URL {url!r} is not an http:// or https:// URL "
        "with a host\n"
    )


@pytest.mark.parametrize("where", ["option", "variable"])
def test_an_empty_base_url_is_an_error_not_the_embedded_server(
    where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--base-url "$STAGING_URL"` with the variable unset must not pass green."""
    import io

    from conformance.cli import run_cli

    args = ["run", "--report-dir", str(tmp_path)]
    if where == "option":
        args += ["--base-url", ""]
    else:
        monkeypatch.setenv("PYTEST_BASE_URL", "  ")
    err = io.StringIO()
    assert run_cli(args, io.StringIO(), err) == 2
    assert "the base URL (--base-url or $PYTEST_BASE_URL) is empty" in err.getvalue()
    assert err.getvalue().count("\n") == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("content", "said"),
    [
        ("{bad", "cannot be read as JSON"),
        ('{"own": 5}', '"own" must be an object'),
        ("[]", "must be a JSON object"),
        ("{}", "names no id"),
    ],
    ids=["not-json", "section-not-object", "not-object", "no-id"],
)
def test_an_ids_file_that_cannot_serve_is_one_line_and_keeps_the_last_reports(
    content: str, said: str, tmp_path: Path
) -> None:
    """Before, only a missing file was a usage error: an unreadable one failed every check
    (exit 1, "does NOT conform") and replaced the last run's reports."""
    import io

    from conformance.cli import run_cli

    ids_file = tmp_path / "ids.json"
    ids_file.write_text(content, encoding="utf-8")
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "summary.md").write_text("the last run's", encoding="utf-8")
    err = io.StringIO()
    args = ["run", "--report-dir", str(reports), "--ids-file", str(ids_file)]
    assert run_cli(args, io.StringIO(), err) == 2
    assert err.getvalue().count("\n") == 1 and said in err.getvalue(), err.getvalue()
    assert [p.name for p in reports.iterdir()] == ["summary.md"]


def test_refused_connection_exits_2_quickly(tmp_path: Path) -> None:
    env = clean_env() | {"CREATORAUDIT_API_KEY": "k"}
    started = time.monotonic()
    result = run(["--base-url", f"http://127.0.0.1:{free_port()}/v2"], env, tmp_path)
    assert result.returncode == 2
    assert time.monotonic() - started < 10
    assert "cannot reach" in result.stderr and result.stderr.strip().count("\n") == 0


def test_ids_file_runs_without_creating_and_says_what_it_cannot_run(
    served: Served, tmp_path: Path
) -> None:
    """With existing ids, nothing is created; scenarios left without ids are skipped, saying
    why. The ids come from the served reference itself, created up front like an operator."""
    import httpx

    def create(kind: str, key_var: str, body: dict[str, str]) -> str:
        response = httpx.post(
            f"{served.base_url}/{kind}",
            json=body,
            headers={"Authorization": f"Bearer {served.env[key_var]}"},
        )
        return str(response.json()["data"]["id"])

    ids = {
        "own": {
            "creators": [
                create("creators", "CREATORAUDIT_API_KEY", {"name": f"op-{i}"}) for i in range(3)
            ],
            "accounts": [
                create(
                    "accounts", "CREATORAUDIT_API_KEY", {"platform": "tiktok", "handle": f"op-{i}"}
                )
                for i in range(2)
            ],
        },
        "other": {"creators": [], "accounts": []},
    }
    ids_file = tmp_path / "ids.json"
    ids_file.write_text(json.dumps(ids), encoding="utf-8")
    result = run(["-q", "-rs", f"--ids-file={ids_file}", "-k", "test_link"], served.env, tmp_path)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "no unused account of the own organization left" in result.stdout, result.stdout
    assert "passed" in result.stdout


def test_a_thin_verdict_says_how_little_it_stands_on(tmp_path: Path) -> None:
    """`--max-requests 5` skips nearly everything: "conforms" alone would read like a pass."""
    from conformance.cli import coverage

    results = tmp_path / "results.json"
    results.write_text(
        json.dumps({"counts": {"requirements": {"passed": 3, "skipped": 77, "untested": 13}}}),
        encoding="utf-8",
    )
    assert coverage(results) == " (3 of 93 requirements passed, 77 skipped, 13 untested)"
    assert coverage(tmp_path / "missing.json") == ""


def test_help_is_fast() -> None:
    started = time.monotonic()
    result = subprocess.run([*CLI, "--help"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and "run" in result.stdout
    assert time.monotonic() - started < 3  # generous: CI machines vary; the bench measures 1 s


def test_the_client_does_not_load_the_command_line_of_httpx() -> None:
    """httpx's own command line (click, rich) is 40 ms of start-up the suite never uses."""
    probe = (
        "import sys, conformance._client, httpx; "
        "print(sorted({'click', 'rich'} & set(sys.modules)), httpx.Client.__name__)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=30
    )
    assert result.stdout.split() == ["[]", "Client"], result.stderr


def test_a_disruptive_check_not_enabled_sends_nothing(tmp_path: Path) -> None:
    """Skipped before its first request: a probe sent first was judged, and failed such a
    check on a faulty target although it was reported as not run."""
    log = tmp_path / "requests.jsonl"
    run = subprocess.run(
        [*CLI, "run", f"--report-dir={tmp_path}", f"--request-log={log}",
         "--reference-fault=unknown-error-code",
         "-k", "exhausted_window or public_endpoints_are_not_limited"],
        capture_output=True, text=True, timeout=120, env=clean_env(),
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr
    sent = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
    assert sent == []
    # the skips are reported at the checks that stepped aside, not at the suite's helper
    skipped = [line for line in run.stdout.splitlines() if line.startswith("SKIPPED")]
    assert len(skipped) == 2 and all("test_rate_limit.py:" in line for line in skipped), skipped


#: a pytest plugin for the run under test: the interrupt lands as the session ends, before
#: any report is written
INTERRUPT_BEFORE_REPORTS = """
import pytest

@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session):
    raise KeyboardInterrupt
"""


def test_a_run_interrupted_before_its_reports_leaves_none_of_the_last_runs(tmp_path: Path) -> None:
    """Otherwise the last run's summary ("conforms") stood beside the interrupted run's files."""
    from conformance._resources import REPORT_FILES

    reports = tmp_path / "reports"
    run = [*CLI, "run", f"--report-dir={reports}", "-k", "public", "--lanes=1"]
    first = subprocess.run(run, capture_output=True, text=True, timeout=120, env=clean_env())
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr
    written = [reports / name for name in [*REPORT_FILES, "junit.xml"]]
    assert all(path.exists() for path in written)
    (tmp_path / "interrupt_before_reports.py").write_text(INTERRUPT_BEFORE_REPORTS)
    env = {**clean_env(), "PYTHONPATH": str(tmp_path)}
    second = subprocess.run(
        [*run, "-p", "interrupt_before_reports"], capture_output=True, text=True, timeout=120,
        env=env,
    )
    assert second.returncode == 2, second.stdout[-2000:] + second.stderr
    assert [path.name for path in written if path.exists()] == []


def test_collecting_the_scenarios_does_not_import_schemathesis() -> None:
    """A run's parent collects every test and runs none (lanes): schemathesis, a fifth of its
    start-up, is imported by the lane that fuzzes, when the fuzzing test runs."""
    probe = (
        "import sys, pytest\n"
        "from conformance._resources import run_ini_path, scenarios_dir, suite_plugin_args\n"
        "code = pytest.main([str(scenarios_dir()), f'--config-file={run_ini_path()}',\n"
        "    f'--rootdir={scenarios_dir()}', '--collect-only', '-q', *suite_plugin_args()])\n"
        "print('collected' if code == 0 else code, sorted({'schemathesis'} & set(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, env=clean_env()
    )
    assert result.stdout.splitlines()[-1] == "collected []", result.stdout[-2000:] + result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--profile", "bogus"],
        ["--seed=x1"],
        ["--max-examples", "2.5"],
        ["--max-requests=many"],
        ["--lanes", "some"],
        ["--lanes", "2", "-n", "2"],
    ],
    ids=[
        "profile-unknown", "seed-not-int", "examples-not-int", "budget-not-int",
        "lanes-not-a-number", "lanes-and-xdist",
    ],
)
def test_bad_option_value_is_one_line_and_exit_2(args: list[str]) -> None:
    import io

    from conformance.cli import run_cli

    out, err = io.StringIO(), io.StringIO()
    assert run_cli(["run", *args], out, err) == 2
    assert err.getvalue().count("\n") == 1 and args[0].split("=")[0] in err.getvalue()
    assert out.getvalue() == ""


@pytest.mark.parametrize(
    "args",
    [["--max-examples", "-3"], ["-k", "nothing_is_called_this"]],
    ids=["examples-negative", "nothing-selected"],
)
def test_a_run_that_judged_nothing_writes_no_report(
    args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Exit 2 with no report: a results.json or job summary saying "conforms" would read as a
    pass next to the failed job; the last run's reports are left as they were (a run that
    selected nothing removed them when it started: fresh-user trial)."""
    import io

    from conformance._resources import REPORT_FILES
    from conformance.cli import run_cli

    step_summary = tmp_path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    reports = tmp_path / "reports"
    reports.mkdir()
    earlier = {name: f"<!-- the last real run's {name} -->".encode() for name in REPORT_FILES}
    earlier["junit.xml"] = b"<testsuites><!-- the last real run --></testsuites>"
    for name, content in earlier.items():
        (reports / name).write_bytes(content)
    assert run_cli(["run", "--report-dir", str(reports), *args], io.StringIO(), io.StringIO()) == 2
    assert {p.name: p.read_bytes() for p in reports.glob("*")} == earlier
    assert not step_summary.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bogus-option"], "unrecognized arguments: --bogus-option"),
        (["--max-examples", "-3"], "--max-examples must be a positive number"),
        (["--spec", "/nowhere/openapi.yaml"], "spec /nowhere/openapi.yaml: no such file"),
        (["--max-requests", "0"], "--max-requests must be a positive number, got 0"),
        (["--time-budget", "-5"], "--time-budget must be a positive number, got -5.0"),
    ],
    ids=["unknown-option", "examples-negative", "spec-missing", "budget-zero", "time-negative"],
)
def test_a_bad_option_pytest_refuses_is_one_line(
    args: list[str], message: str, tmp_path: Path
) -> None:
    """pytest's usage block, or its session header and then ERROR, become the one line the
    program prints for any other bad input."""
    result = subprocess.run(
        [*CLI, "run", "--report-dir", str(tmp_path / "reports"), *args],
        capture_output=True, text=True, env=clean_env(), timeout=60,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == f"creatoraudit-conformance: error: {message}\n"


def test_a_usage_error_found_after_the_header_is_one_line_too(tmp_path: Path) -> None:
    """A bad -k expression is found at collection, after pytest printed its header."""
    result = subprocess.run(
        [*CLI, "run", "--report-dir", str(tmp_path / "reports"), "-k", "("],
        capture_output=True, text=True, env=clean_env(), timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("creatoraudit-conformance: error: Wrong expression passed")
    assert result.stderr.count("\n") == 1


#: the program's entry point, with an exit handler and, optionally, a thread still working
ENTRY_POINT = """
import atexit, sys, threading, time
atexit.register(lambda: print("exit handler ran", flush=True))
if sys.argv[1] == "thread":
    def late():
        time.sleep(2.0)  # still working when the command is done
        print("thread finished", file=sys.stderr, flush=True)
    threading.Thread(target=late).start()
from conformance.cli import main
sys.argv = ["creatoraudit-conformance", "requirements"]
sys.exit(main())
"""


@pytest.mark.parametrize("thread", [False, True], ids=["alone", "with-a-thread"])
def test_the_program_skips_interpreter_teardown_but_not_exit_handlers_or_threads(
    thread: bool,
) -> None:
    """The program ends without the interpreter's teardown (0.1-0.2 s a run); what a caller
    relies on still happens: output, exit code, exit handlers, and a thread still running."""
    result = subprocess.run(
        [sys.executable, "-c", ENTRY_POINT, "thread" if thread else "alone"],
        capture_output=True, text=True, env=clean_env(), timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "LINK-FIRST-201" in result.stdout
    assert "exit handler ran" in result.stdout
    assert ("thread finished" in result.stderr) is thread


def test_a_profiled_run_still_reports(tmp_path: Path) -> None:
    """``python -m cProfile`` writes its statistics after the program returns to it."""
    stats = tmp_path / "requirements.prof"
    result = subprocess.run(
        [sys.executable, "-m", "cProfile", "-o", str(stats), "-m", "conformance.cli",
         "requirements"],
        capture_output=True, text=True, env=clean_env(), timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert stats.stat().st_size > 0
