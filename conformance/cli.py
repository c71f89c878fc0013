"""The ``creatoraudit-conformance`` command: run the suite, serve the reference server.

Exit codes: 0 the target conforms, 1 it does not, 2 the suite could not run (bad configuration,
unreachable target, invalid spec), always with a one-line reason and no traceback. Heavy imports
(pytest, schemathesis, the reference server) happen inside the subcommands so ``--help`` is fast.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from conformance._config import ConfigurationError

PROG = "creatoraudit-conformance"
EXIT_CONFORMS, EXIT_FAILS, EXIT_CANNOT_RUN = 0, 1, 2
REACHABILITY_TIMEOUT = 5.0
#: The probe's hard bound: name resolution is not covered by the socket timeout.
REACHABILITY_DEADLINE = 8.0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Does this server conform to the CreatorAudit v2 API?"
    )
    from conformance import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="run the suite against --base-url, or the embedded reference server",
        description="Run every scenario. Arguments not listed here go to pytest "
        "(e.g. -k, -x, --api-key, --ids-file, --profile full, --lanes 1, --reference-fault "
        "NAME); the README lists them all.",
    )
    run.add_argument(
        "--base-url",
        metavar="URL",
        default=os.environ.get("PYTEST_BASE_URL"),
        help="API root of the target, e.g. https://staging.example.com/v2 "
        "(default: $PYTEST_BASE_URL; none: the embedded reference server)",
    )
    run.add_argument(
        "--report-dir",
        metavar="DIR",
        type=Path,
        default=Path("reports"),
        help="where reports are written (default: ./reports)",
    )

    _add_cleanup_parser(commands)

    serve = commands.add_parser("serve", help="run the reference server until interrupted")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="NAME",
        help="start with this deliberate deviation (repeatable); see --list-faults",
    )
    serve.add_argument("--list-faults", action="store_true", help="list the faults and exit")
    commands.add_parser(
        "requirements",
        help="list the requirement catalogue: id, level, section, how each one is verified",
    )
    commands.add_parser(
        "fault-matrix",
        help="run the suite against every fault of the reference server and print the kill "
        "table (requirement, fault, caught); exit 1 if a fault is not caught",
    )
    _add_replay_parser(commands)
    return parser


def _add_replay_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    replay = commands.add_parser(
        "replay",
        help="re-send the request sequences of a run's failures and say which still fail",
        description="Exit 0: no failure reproduces; 1: some still fail (or cannot be told "
        "apart); 2: bad input. Keys come from $CREATORAUDIT_*_API_KEY.",
    )
    replay.add_argument("results", type=Path, metavar="RESULTS_JSON", help="reports/results.json")
    replay.add_argument("--test", metavar="ID", help="only this failed test (node id or name)")
    replay.add_argument(
        "--base-url", metavar="URL", help="another target (default: the one in the results)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    try:
        code = run_cli(list(sys.argv[1:] if argv is None else argv), sys.stdout, sys.stderr)
    except BrokenPipeError:
        # the reader went away (`... | head`): not an error of ours, and no traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = EXIT_CONFORMS
    if argv is None:  # the program itself, not a caller in the same process
        exit_without_teardown(code)
    return code


def exit_without_teardown(code: int) -> None:
    """End the process as soon as its work is done. The interpreter's own teardown (freeing
    every module, then one more full garbage collection over everything pytest, hypothesis
    and schemathesis loaded) took 0.13-0.2 s of each run, paid on every CI push, for nothing
    a finished run needs. Exit handlers still run and output is flushed. The ordinary exit
    is kept while another (non-daemon) thread is alive, since it waits for it, and under a
    profiler, tracer or debugger (``python -m cProfile``, pyinstrument), which reports only
    once the program has returned to it."""
    import atexit
    import threading

    if sys.getprofile() is not None or sys.gettrace() is not None:
        return
    main_thread = threading.main_thread()
    if any(t is not main_thread and not t.daemon for t in threading.enumerate()):
        return
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def run_cli(argv: list[str], stdout: TextIO, stderr: TextIO) -> int:
    parser = build_parser()
    arguments, rest = parser.parse_known_args(argv)
    if rest and arguments.command != "run":
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        if arguments.command == "serve":
            return serve(arguments, stdout)
        if arguments.command == "requirements":
            from conformance._listing import print_requirements

            print_requirements(stdout)
            return EXIT_CONFORMS
        if arguments.command == "fault-matrix":
            from conformance.faultmatrix import main as fault_matrix

            return fault_matrix([])
        if arguments.command == "cleanup":
            return cleanup(arguments, stdout)
        if arguments.command == "replay":
            return replay_failures(arguments, stdout)
        return run_suite(arguments, rest, stdout)
    except ConfigurationError as exc:
        print(f"{PROG}: error: {exc}", file=stderr)
        return EXIT_CANNOT_RUN
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=stderr)
        return EXIT_CANNOT_RUN


def validate_spec(path: Path) -> None:
    """A spec that does not validate cannot drive a run. A document that validated before
    (same bytes, same validator) is not validated again: see conformance._speccache."""
    from conformance import _speccache

    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"spec {path}: cannot be read ({exc})") from None
    if _speccache.known_valid(raw):
        return
    import yaml
    from openapi_spec_validator import validate
    from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

    from conformance import _yaml

    try:
        document = _yaml.safe_load(raw.decode("utf-8"))
        validate(document)
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigurationError(f"spec {path}: cannot be read ({exc})") from None
    except OpenAPIValidationError as exc:
        raise ConfigurationError(
            f"spec {path} is not a valid OpenAPI document: {exc.message}"
        ) from None
    _speccache.remember_valid(raw)


def check_reachable(
    base_url: str,
    timeout: float = REACHABILITY_TIMEOUT,
    deadline: float = REACHABILITY_DEADLINE,
) -> None:
    """Fail fast, with one line, when nothing answers at the base URL. Any HTTP answer counts
    (the probe: :func:`conformance._preflight.probe`)."""
    from urllib.parse import urlsplit

    from conformance._preflight import probe

    parts = urlsplit(base_url)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ConfigurationError(
            f"base URL {base_url!r} is not an http:// or https:// URL with a host"
        )
    outcome = probe(base_url.rstrip("/") + "/health", {}, timeout, deadline)
    if outcome is None:
        raise ConfigurationError(
            f"cannot reach {base_url}: no answer within {deadline:g} s "
            "(name resolution or connection hangs)"
        )
    if isinstance(outcome, int):
        if outcome == 404:
            _suggest_api_root(base_url, timeout, deadline)
        return
    if isinstance(outcome, ValueError):
        raise ConfigurationError(f"base URL {base_url!r} is not valid: {outcome}") from None
    raise ConfigurationError(f"cannot reach {base_url}: {unreachable_reason(outcome, timeout)}")


#: where the API root usually is below a server's root, for a base URL that has no /health
API_ROOT_SUFFIXES = ("/v2",)


def _suggest_api_root(base_url: str, timeout: float, deadline: float) -> None:
    """A base URL without the API's path (the server's root, not ``.../v2``) makes every
    check fail: thousands of lines and "does NOT conform" about a target never reached. When
    the URL has no ``/health`` and the usual API root below it has, say so (exit 2). With no
    such root found the run goes ahead: a missing ``/health`` is then the target's fault."""
    from conformance._preflight import probe

    root = base_url.rstrip("/")
    for suffix in API_ROOT_SUFFIXES:
        if root.endswith(suffix):
            continue
        if probe(f"{root}{suffix}/health", {}, timeout, deadline) == 200:
            raise ConfigurationError(
                f"{base_url} answers 404 to GET /health, {root}{suffix} answers 200: is the "
                f"API root {root}{suffix}? (give --base-url {root}{suffix})"
            )


def unreachable_reason(failure: BaseException, timeout: float) -> str:
    """What went wrong, in words: DNS, refused, TLS, timeout, or not HTTP."""
    import http.client
    import socket
    import ssl
    import urllib.error

    reason = failure.reason if isinstance(failure, urllib.error.URLError) else failure
    if isinstance(reason, socket.gaierror):
        return f"DNS lookup failed ({reason.strerror or reason})"
    if isinstance(reason, ssl.SSLError):
        return f"TLS handshake failed ({getattr(reason, 'reason', None) or reason})"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, TimeoutError):
        return f"no answer within {timeout:g} s"
    if isinstance(reason, http.client.HTTPException):
        return f"the answer is not HTTP ({type(reason).__name__})"
    if isinstance(reason, OSError):
        return reason.strerror or str(reason) or type(reason).__name__
    return f"{type(reason).__name__}: {reason}"


def given_keys(rest: list[str]) -> dict[str, str]:
    """The keys the run will use, by variable name: an option (``--api-key KEY``) over the
    variable (``CREATORAUDIT_API_KEY``), as the plugin resolves them."""
    from conformance._config import KEY_ENV_VARS

    keys: dict[str, str] = {}
    for name, variable in KEY_ENV_VARS.items():
        value = _option_value(rest, f"--{name.replace('_', '-')}") or os.environ.get(variable)
        if value:
            keys[variable] = value
    return keys


def _has_option(rest: list[str], option: str) -> bool:
    return any(arg == option or arg.startswith(option + "=") for arg in rest)


def _option_value(rest: list[str], option: str) -> str | None:
    """The value of a pass-through pytest option (``--opt VALUE`` or ``--opt=VALUE``)."""
    for index, arg in enumerate(rest):
        if arg.startswith(option + "="):
            return arg.split("=", 1)[1]
        if arg == option and index + 1 < len(rest):
            return rest[index + 1]
    return None


def check_fuzz_spec(rest: list[str]) -> None:
    """A ``--spec`` that cannot be loaded stops the run here, with one line and exit 2."""
    location = _option_value(rest, "--spec")
    if location is not None:
        from conformance._fuzzing import load_spec

        load_spec(location)


#: pass-through options whose values the CLI checks itself, so a typo is one line and exit 2
#: rather than pytest's multi-line usage error
CHECKED_OPTIONS: dict[str, tuple[str, ...] | type] = {
    "--profile": ("smoke", "full"),
    "--seed": int,
    "--max-examples": int,
    "--max-requests": int,
}


def check_option_values(rest: list[str]) -> None:
    for option, allowed in CHECKED_OPTIONS.items():
        value = _option_value(rest, option)
        if value is None:
            continue
        if isinstance(allowed, tuple) and value not in allowed:
            raise ConfigurationError(f"{option} {value!r}: choose one of {', '.join(allowed)}")
        if allowed is int and not value.lstrip("-").isdigit():
            raise ConfigurationError(f"{option} {value!r}: not a whole number")


def run_suite(arguments: argparse.Namespace, rest: list[str], stdout: TextIO) -> int:
    import pytest

    from conformance._hypothesis_storage import keep_storage_in_cache_dir
    from conformance._resources import (
        REPORT_FILES,
        run_ini_path,
        scenarios_dir,
        spec_path,
        suite_plugin_args,
    )
    from conformance._usage import HeldStartupErrors

    check_option_values(rest)
    validate_spec(spec_path())
    check_fuzz_spec(rest)
    if arguments.base_url is not None and not arguments.base_url.strip():
        # an unset CI variable (`--base-url "$STAGING_URL"`) must not check the embedded server
        raise ConfigurationError(
            "the base URL (--base-url or $PYTEST_BASE_URL) is empty: give the target's API "
            "root, or leave both out to check the embedded reference server"
        )
    base_url: str | None = arguments.base_url or None
    if base_url:
        if not (os.environ.get("CREATORAUDIT_API_KEY") or _has_option(rest, "--api-key")):
            raise ConfigurationError(
                f"CREATORAUDIT_API_KEY is not set: a key of the organization under test is "
                f"required to check {base_url}"
            )
        check_reachable(base_url)
        from conformance._preflight import check_keys

        check_keys(
            base_url, given_keys(rest), REACHABILITY_TIMEOUT, REACHABILITY_DEADLINE
        )
    report_dir: Path = arguments.report_dir
    try:
        report_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot create report folder {report_dir}: {exc.strerror}"
        ) from None
    scenarios = scenarios_dir()
    args = [
        str(scenarios),
        f"--config-file={run_ini_path()}",
        f"--rootdir={scenarios}",
        f"--junitxml={report_dir / 'junit.xml'}",
        f"--report-dir={report_dir}",
        *suite_plugin_args(),
    ]
    if base_url:
        args.append(f"--base-url={base_url}")
    keep_storage_in_cache_dir()
    # a run removes the last run's reports as it starts (an interrupted one must not leave a
    # mix of two runs); one that judges nothing (no scenario selected, an internal or usage
    # error) puts them back as they were, junit.xml included, which pytest wrote empty
    last_reports = {
        path: path.read_bytes() if path.is_file() else None
        for path in [report_dir / "junit.xml", *(report_dir / name for name in REPORT_FILES)]
    }
    with HeldStartupErrors() as startup:
        code = int(pytest.main([*args, *rest], plugins=[startup]))
    if code in NOTHING_JUDGED:
        for path, content in last_reports.items():
            _put_back(path, content)
    if code == int(pytest.ExitCode.USAGE_ERROR) or not startup.configured:
        message = startup.message()  # a bad option or value: pytest's ERROR line, as one line
        if message is not None:
            raise ConfigurationError(message)
    print(startup.unshown(), end="", file=sys.stderr)
    if code in (EXIT_CONFORMS, EXIT_FAILS):
        verdict = "conforms" if code == EXIT_CONFORMS else "does NOT conform"
        print(
            f"{PROG}: target {base_url or '(embedded reference server)'} {verdict}"
            f"{coverage(report_dir / 'results.json')}; "
            f"reports in {report_dir}/ (junit.xml, results.json, report.html, summary.md)",
            file=stdout,
        )
        return code
    if code == int(pytest.ExitCode.NO_TESTS_COLLECTED):
        raise ConfigurationError("no scenario was selected to run")
    if code == int(pytest.ExitCode.INTERRUPTED):
        raise ConfigurationError(
            "interrupted before the end: no verdict (the reports hold what ran)"
        )
    raise ConfigurationError(f"the suite could not run (pytest exit code {code}); see above")


def coverage(results_json: Path) -> str:
    """How much the verdict stands on, from the run's results.json: " (76 of 93 requirements
    passed, 4 skipped, 13 untested)". A verdict over a few checks (a small --max-requests, a
    -k selection) must not read like one over all of them."""
    import json

    try:
        counts = json.loads(results_json.read_text(encoding="utf-8"))["counts"]["requirements"]
        total, passed = sum(counts.values()), counts.get("passed", 0)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return ""
    others = [
        f"{counts[k]} {k}" for k in ("failed", "warned", "skipped", "untested") if counts.get(k)
    ]
    return f" ({', '.join([f'{passed} of {total} requirements passed', *others])})"


#: pytest's exit codes of a run that judged nothing: internal error, usage error, no tests
NOTHING_JUDGED = frozenset({3, 4, 5})


def _put_back(path: Path, content: bytes | None) -> None:
    with contextlib.suppress(OSError):
        if content is None:
            path.unlink(missing_ok=True)
        else:
            path.write_bytes(content)


def serve(arguments: argparse.Namespace, stdout: TextIO) -> int:
    import threading

    from conformance._config import KEY_ENV_VARS
    from conformance._reference import FAULTS, EmbeddedServer, ReferenceKeys, ReferenceSettings

    if arguments.list_faults:
        for name, description in sorted(FAULTS.items()):
            print(f"{name:32} {description}", file=stdout)
        return EXIT_CONFORMS
    keys = ReferenceKeys.from_env(os.environ)
    try:
        settings = ReferenceSettings(keys=keys, faults=set(arguments.fault))
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None
    try:
        server = EmbeddedServer(settings, host=arguments.host, port=arguments.port)
        server.start()
    except OSError as exc:
        raise ConfigurationError(
            f"cannot listen on {arguments.host}:{arguments.port}: {exc.strerror or exc}"
        ) from None
    print(f"CreatorAudit v2 reference server at {server.base_url}", file=stdout)
    if arguments.fault:
        print(f"faults: {', '.join(sorted(arguments.fault))}", file=stdout)
    print("point the suite at it with:", file=stdout)
    print(f"  export PYTEST_BASE_URL={server.base_url}", file=stdout)
    for name, var in KEY_ENV_VARS.items():
        print(f"  export {var}={getattr(keys, name)}", file=stdout)
    stdout.flush()
    try:
        threading.Event().wait()
    finally:
        server.stop()
    return EXIT_CONFORMS


def _add_cleanup_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sweep = commands.add_parser(
        "cleanup",
        help="delete what earlier runs left behind (resources named conformance-<run id>-...)",
        description="Find the suite's resources through GET /creators and GET /accounts, by "
        "their conformance-<run id>- tag, and delete them. Untagged resources are never touched. "
        "Uses $CREATORAUDIT_API_KEY and, when set, $CREATORAUDIT_OTHER_ORG_API_KEY.",
    )
    sweep.add_argument(
        "--base-url",
        metavar="URL",
        default=os.environ.get("PYTEST_BASE_URL"),
        help="API root of the target (default: $PYTEST_BASE_URL)",
    )
    sweep.add_argument("--run-id", metavar="ID", help="only the resources of this run")
    sweep.add_argument("--dry-run", action="store_true", help="list, do not delete")
    sweep.add_argument("--api-key", metavar="KEY", help="default: $CREATORAUDIT_API_KEY")
    sweep.add_argument(
        "--other-org-api-key", metavar="KEY", help="default: $CREATORAUDIT_OTHER_ORG_API_KEY"
    )
    sweep.add_argument(
        "--request-timeout", type=float, default=10.0, metavar="SECONDS", help="default: 10"
    )


def cleanup(arguments: argparse.Namespace, stdout: TextIO) -> int:
    """Exit 0 when every tagged resource is gone, 1 when some could not be deleted."""
    from conformance._client import ApiClient
    from conformance._config import Credentials
    from conformance._limits import RunLimits
    from conformance._sweep import sweep

    base_url = arguments.base_url
    if not base_url:
        raise ConfigurationError("cleanup needs --base-url (or PYTEST_BASE_URL)")
    env = Credentials.from_env(os.environ)
    credentials = Credentials(
        api_key=arguments.api_key or env.api_key,
        other_org_api_key=arguments.other_org_api_key or env.other_org_api_key,
    )
    if not credentials.api_key:
        raise ConfigurationError("CREATORAUDIT_API_KEY is not set (or pass --api-key)")
    if arguments.run_id is not None and not arguments.run_id.strip():
        raise ConfigurationError("--run-id must not be empty")
    check_reachable(base_url)
    limits = RunLimits(
        connect_timeout=min(5.0, arguments.request_timeout),
        read_timeout=arguments.request_timeout,
        request_timeout=arguments.request_timeout,
    )
    client = ApiClient(base_url, credentials, run_id="cleanup", limits=limits)
    try:
        found, failures = sweep(client, arguments.run_id, dry_run=arguments.dry_run)
    finally:
        client.close()
    verb = "found" if arguments.dry_run else "deleted"
    for resource in found:
        print(f"{verb} {resource.kind} {resource.name} ({resource.path})", file=stdout)
    for failure in failures:
        print(f"could not delete {failure}", file=stdout)
    print(f"{PROG}: {len(found) - len(failures)} tagged resource(s) {verb}", file=stdout)
    return EXIT_FAILS if failures else EXIT_CONFORMS
def replay_failures(arguments: argparse.Namespace, stdout: TextIO) -> int:
    """Re-send each recorded failure; exit 1 while any of them still fails."""
    from conformance._config import Credentials
    from conformance._replay import load_results, replay

    document = load_results(arguments.results)
    credentials = Credentials.from_env(os.environ)
    outcomes = []
    for outcome in replay(
        document, test=arguments.test, base_url=arguments.base_url, credentials=credentials
    ):
        label = {True: "still fails", False: "fixed", None: "cannot tell"}[outcome.reproduces]
        print(f"{label:12} {outcome.test}\n             {outcome.detail}", file=stdout)
        outcomes.append(outcome)
    still = [o for o in outcomes if o.reproduces is not False]
    print(
        f"{PROG}: {len(outcomes)} failure(s) replayed, {len(still)} still failing or unclear",
        file=stdout,
    )
    return EXIT_FAILS if still else EXIT_CONFORMS


if __name__ == "__main__":
    sys.exit(main())
