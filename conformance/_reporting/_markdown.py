"""summary.md: the few lines a CI job summary shows (verdict, counts, failures with rule ids)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

ORDER = ("passed", "failed", "warned", "skipped", "untested")


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def render_markdown(document: dict[str, Any]) -> str:
    verdict = document["verdict"]
    icon = "✅" if verdict["conforms_should"] else ("⚠️" if verdict["conforms_must"] else "❌")
    counts = document["counts"]["requirements"]
    tests = document["counts"]["tests"]
    lines = [
        "## CreatorAudit v2 conformance",
        "",
        f"{icon} **{document['target']['base_url'] or 'target'}** {verdict['text']}",
        "",
        "- Requirements: " + ", ".join(f"{counts.get(k, 0)} {k}" for k in ORDER),
        "- Tests: " + (", ".join(f"{n} {k}" for k, n in sorted(tests.items())) or "none ran"),
        "",
        f"Suite {document['suite']['version']} · spec sha256 `{document['spec']['sha256'][:12]}` "
        f"· run `{document['run']['id']}` · {document['run']['started_at']}",
    ]
    problems = [r for r in document["requirements"] if r["outcome"] in {"failed", "warned"}]
    if problems:
        lines += ["", "| outcome | level | requirement | reason |", "|---|---|---|---|"]
        for r in problems:
            reason = _cell(r["reasons"][0])[:160] if r["reasons"] else ""
            lines.append(f"| {r['outcome']} | {r['level']} | `{r['id']}` | {reason} |")
    unattributed = [
        t for t in document["tests"]
        if t["outcome"] in {"failed", "error"} and not (t["broken"] or t["requirements"])
    ]
    for test in unattributed:
        lines.append(f"- `{test['id']}` {test['outcome']}: {_cell(test['message'])[:160]}")
    flaky = [t["id"] for t in document["tests"] if t.get("flaky")]
    if flaky:
        lines += ["", f"Flaky (failed, then passed on a re-run; counted as failed): {len(flaky)}"]
        lines += [f"- `{nodeid}`" for nodeid in flaky]
    return "\n".join(lines) + "\n"


def write_markdown(document: dict[str, Any], path: Path) -> Path:
    path.write_text(render_markdown(document), encoding="utf-8")
    return path


def append_step_summary(summary: Path, step_summary: Path) -> None:
    """GitHub Actions shows whatever a step appends to ``$GITHUB_STEP_SUMMARY``."""
    with step_summary.open("a", encoding="utf-8") as out:
        out.write(summary.read_text(encoding="utf-8") + "\n")
