"""Where the files that travel with the suite live, installed or in a source checkout."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _bundled(name: str) -> Path:
    """Installed wheels carry ``conformance/<name>``; a checkout has ``<repo>/<name>``."""
    inside = _PACKAGE / name
    return inside if inside.is_dir() else _PACKAGE.parent / name


def spec_dir() -> Path:
    return _bundled("spec")


def spec_path() -> Path:
    return spec_dir() / "openapi.yaml"


def scenarios_dir() -> Path:
    return _bundled("scenarios")


def run_ini_path() -> Path:
    """The pytest settings of ``creatoraudit-conformance run``, independent of any project's."""
    return _PACKAGE / "run.ini"


#: The pytest plugins a run of the bundled scenarios uses, loaded by name instead of from every
#: installed distribution's entry points. Loaded from entry points, each plugin's whole
#: distribution is marked for pytest's assertion rewriting, so every module of schemathesis and
#: hypothesis (several hundred, also those imported lazily mid-run) went through pytest's
#: importer instead of Python's own: a quarter of a second of every smoke run (1.72 -> 1.48 s
#: against one ``serve`` target, four alternating pairs). xdist is named by its entry point
#: name, under which schemathesis and the suite look it up. Schemathesis' own plugin is not
#: here: the fuzzing test loads it, with schemathesis, when it runs (conformance/_fuzzing.py),
#: so that a run's parent, which runs no test, never imports schemathesis.
SUITE_PLUGINS = (
    "conformance.plugin",
    "_hypothesis_pytestplugin",
    "pytest_base_url.plugin",
    "xdist",
)


def suite_plugin_args() -> list[str]:
    """pytest arguments that load exactly the suite's plugins (nothing else that is installed)."""
    args = ["--disable-plugin-autoload"]
    for name in SUITE_PLUGINS:
        args += ["-p", name]
    return args


#: the reports a run writes into its report folder, besides pytest's junit.xml
RESULTS_JSON, REPORT_HTML, SUMMARY_MD = "results.json", "report.html", "summary.md"
REPORT_FILES = (RESULTS_JSON, REPORT_HTML, SUMMARY_MD)
