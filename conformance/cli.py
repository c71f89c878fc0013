"""The ``creatoraudit-conformance`` command: run the suite, serve the reference server.

Exit codes: 0 the target conforms, 1 it does not, 2 the suite could not run (bad configuration,
unreachable target, invalid spec), always with a one-line reason and no traceback. Heavy imports
(pytest, schemathesis, the reference server) happen inside the subcommands so ``--help`` is fast.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from conformance._config import ConfigurationError

PROG = "creatoraudit-conformance"
EXIT_CONFORMS, EXIT_FAILS, EXIT_CANNOT_RUN = 0, 1, 2
REACHABILITY_TIMEOUT = 5.0


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
        "(e.g. -k, -x, --api-key, --ids-file).",
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(list(sys.argv[1:] if argv is None else argv), sys.stdout, sys.stderr)


def run_cli(argv: list[str], stdout: TextIO, stderr: TextIO) -> int:
    parser = build_parser()
    arguments, rest = parser.parse_known_args(argv)
    if rest and arguments.command != "run":
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        if arguments.command == "serve":
            return serve(arguments, stdout)
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


def check_reachable(base_url: str) -> None:
    """Fail fast, with one line, when nothing answers at the base URL. Any HTTP answer counts.

    Uses the standard library: importing httpx here would import anyio before pytest starts,
    and pytest would then warn that it cannot rewrite anyio's plugin."""
    import urllib.error
    import urllib.request

    url = base_url.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=REACHABILITY_TIMEOUT):
            pass
    except urllib.error.HTTPError:
        return
    except ValueError as exc:
        raise ConfigurationError(f"base URL {base_url!r} is not valid: {exc}") from None
    except (TimeoutError, urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise ConfigurationError(f"cannot reach {base_url}: {reason}") from None


def _has_option(rest: list[str], option: str) -> bool:
    return any(arg == option or arg.startswith(option + "=") for arg in rest)


def run_suite(arguments: argparse.Namespace, rest: list[str], stdout: TextIO) -> int:
    import pytest

    from conformance._resources import run_ini_path, scenarios_dir, spec_path

    validate_spec(spec_path())
    base_url: str | None = arguments.base_url or None
    if base_url:
        if not (os.environ.get("CREATORAUDIT_API_KEY") or _has_option(rest, "--api-key")):
            raise ConfigurationError(
                f"CREATORAUDIT_API_KEY is not set: a key of the organization under test is "
                f"required to check {base_url}"
            )
        check_reachable(base_url)
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
    ]
    if base_url:
        args.append(f"--base-url={base_url}")
    code = int(pytest.main([*args, *rest]))
    if code in (EXIT_CONFORMS, EXIT_FAILS):
        verdict = "conforms" if code == EXIT_CONFORMS else "does NOT conform"
        print(
            f"{PROG}: target {base_url or '(embedded reference server)'} {verdict}; "
            f"JUnit report: {report_dir / 'junit.xml'}",
            file=stdout,
        )
        return code
    if code == int(pytest.ExitCode.NO_TESTS_COLLECTED):
        raise ConfigurationError("no scenario was selected to run")
    raise ConfigurationError(f"the suite could not run (pytest exit code {code}); see above")


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


if __name__ == "__main__":
    sys.exit(main())
