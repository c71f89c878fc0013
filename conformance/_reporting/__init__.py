"""Reports a run writes: results.json, report.html and summary.md (junit.xml is pytest's).

Every writer reads only the run's :class:`~conformance._results.RunResults` and its
:class:`RunMetadata`, through one document (:func:`build_document`) whose format
``results.schema.json`` describes; so the JSON, the HTML and the Markdown cannot disagree.
"""

from __future__ import annotations

import os
from pathlib import Path

from conformance._reporting._document import RunMetadata, build_document, write_json
from conformance._reporting._html import write_html
from conformance._reporting._markdown import append_step_summary, write_markdown
from conformance._resources import REPORT_HTML, RESULTS_JSON, SUMMARY_MD
from conformance._results import RunResults

__all__ = ["RunMetadata", "build_document", "schema_path", "write_reports"]


def schema_path() -> Path:
    return Path(__file__).with_name("results.schema.json")


def write_reports(results: RunResults, metadata: RunMetadata, report_dir: Path) -> list[Path]:
    """Write every report into ``report_dir``; return the files written."""
    report_dir.mkdir(parents=True, exist_ok=True)
    document = build_document(results, metadata)
    written = [
        write_json(document, report_dir / RESULTS_JSON),
        write_html(document, report_dir / REPORT_HTML),
        write_markdown(document, report_dir / SUMMARY_MD),
    ]
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        append_step_summary(written[-1], Path(step_summary))
    return written
