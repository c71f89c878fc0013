"""The suite against targets that misbehave: it fails the affected check with the reason,
finishes within its bounds, keeps memory bounded, and exits 2 fast when nothing answers."""

from __future__ import annotations

import io
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance._resources import scenarios_dir
from conformance.cli import check_reachable, run_cli
from tests._misbehaving import HUGE_BODY_BYTES, MisbehavingServer

FIRST_LINK = "test_first_link_is_created_with_location"
QUICK = ("--connect-timeout=1", "--read-timeout=0.5", "--request-timeout=1.5")

#: misbehaviour -> (what the failure must say, extra options)
EXPECTED: dict[str, tuple[str, tuple[str, ...]]] = {
    "never-answers": ("read timeout: nothing received for 0.5 s", QUICK),
    "one-byte-per-second": (
        "no complete response within 1.5 s",
        ("--read-timeout=3", "--request-timeout=1.5"),
    ),
    "connection-reset": ("reset", QUICK),
    "closes-mid-body": (
        "the server broke the HTTP exchange: peer closed connection without sending complete "
        "message body",
        QUICK,
    ),
    "invalid-json": ("[HTTP-JSON-BODY] body declared as application/json is not valid JSON", QUICK),
    "content-type-mismatch": ("[HTTP-JSON-BODY]", QUICK),
    "huge-body": ("exceeds the 1048576-byte cap", QUICK),
    "redirect-loop": ("redirect-loop/creators [FULL] -> 307", QUICK),
}


@pytest.fixture(scope="module")
def misbehaving() -> Iterator[MisbehavingServer]:
    with MisbehavingServer() as server:
        yield server


@pytest.mark.parametrize("mode", sorted(EXPECTED))
def test_misbehaviour_fails_the_check_with_its_reason(
    pytester: pytest.Pytester, misbehaving: MisbehavingServer, mode: str
) -> None:
    reason, options = EXPECTED[mode]
    pytester.chdir()
    started = time.monotonic()
    recorder = pytester.inline_run(
        str(scenarios_dir()),
        "-p",
        "no:cacheprovider",
        f"--base-url={misbehaving.url(mode)}",
        "--api-key=ca_some_key",
        "-k",
        FIRST_LINK,
        *options,
    )
    duration = time.monotonic() - started
    failures = recorder.getfailures()
    assert [r.nodeid.split("::")[-1] for r in failures] == [FIRST_LINK]
    assert reason in str(failures[0].longrepr)
    # re-run once, so at most two attempts of ~1.5 s each
    assert duration < 8, f"took {duration:.1f} s"
    assert recorder.ret == 1
    if mode == "huge-body":
        assert misbehaving.bytes_sent < HUGE_BODY_BYTES // 4, "the client read far past its cap"


def test_unexpected_429_is_retried_once_and_reported(
    pytester: pytest.Pytester, misbehaving: MisbehavingServer
) -> None:
    pytester.makepyfile(
        test_limited="""
        def test_reads(api):
            assert api.get("/creators").status == 200
        """
    )
    junit = pytester.path / "junit.xml"
    result = pytester.runpytest(
        "-p",
        "no:cacheprovider",
        f"--base-url={misbehaving.url('rate-limited-once')}",
        "--api-key=ca_some_key",
        f"--junitxml={junit}",
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["*unexpected 429 answers*", "GET */creators ?FULL? -> 429: waited 1 s and retried once"]
    )
    assert "retried_after_429" in junit.read_text(encoding="utf-8")


def test_time_budget_skips_the_rest_and_exits_1(
    misbehaving: MisbehavingServer, tmp_path: Path
) -> None:
    started = time.monotonic()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "conformance.cli",
            "run",
            f"--base-url={misbehaving.url('never-answers')}",
            f"--report-dir={tmp_path}",
            "--api-key=ca_some_key",
            "--read-timeout=0.5",
            "--time-budget=2",
            "--no-rerun",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    duration = time.monotonic() - started
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr
    assert "time budget of 2 s (--time-budget) is spent" in result.stdout
    assert "read timeout" in result.stdout
    assert duration < 15, f"took {duration:.1f} s"


# --- unreachable targets: exit 2, one line, within 10 s ---------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def not_tls_server() -> Iterator[int]:
    """Answers every connection with plain HTTP at once, so a TLS handshake fails fast."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    threading.Thread(target=serve, daemon=True).start()
    yield int(listener.getsockname()[1])
    listener.close()


@pytest.mark.parametrize("case", ["refused", "dns", "tls"])
def test_unreachable_target_exits_2_with_one_line(case: str, not_tls_server: int) -> None:
    url, words = {
        "refused": (f"http://127.0.0.1:{_free_port()}/v2", "connection refused"),
        "dns": ("http://no-such-host.invalid/v2", "DNS lookup failed"),
        "tls": (f"https://127.0.0.1:{not_tls_server}/v2", "TLS handshake failed"),
    }[case]
    out, err = io.StringIO(), io.StringIO()
    started = time.monotonic()
    code = run_cli(["run", "--base-url", url, "--api-key", "ca_some_key"], out, err)
    assert time.monotonic() - started < 10
    assert code == 2
    lines = err.getvalue().splitlines()
    assert len(lines) == 1, lines
    assert url in lines[0] and words in lines[0]
    assert "Traceback" not in err.getvalue() + out.getvalue()


def test_target_that_never_answers_the_probe_is_unreachable() -> None:
    from conformance import ConfigurationError

    with socket.socket() as silent:  # listens, so connections complete, but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/v2"
        started = time.monotonic()
        with pytest.raises(ConfigurationError, match=r"no answer within 0\.5 s"):
            check_reachable(url, timeout=0.5)
    assert time.monotonic() - started < 3


def test_probe_deadline_bounds_a_hanging_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    """A DNS lookup that hangs is not covered by the socket timeout; the deadline is."""
    from conformance import ConfigurationError

    def hang(*args: object, **kwargs: object) -> object:
        time.sleep(5)
        raise AssertionError("unreachable")

    monkeypatch.setattr(socket, "getaddrinfo", hang)
    started = time.monotonic()
    with pytest.raises(ConfigurationError, match=r"no answer within 0\.5 s"):
        check_reachable("http://example.test/v2", timeout=5, deadline=0.5)
    assert time.monotonic() - started < 2
