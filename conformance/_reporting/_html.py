"""report.html: one self-contained page a vendor can hand to a customer (Jinja2 template)."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup, escape

TEMPLATES = Path(__file__).with_name("templates")
BODY_SHOWN = 1500
OUTCOME_LABELS = {
    "passed": "pass",
    "failed": "fail",
    "warned": "warn",
    "skipped": "skip",
    "untested": "not tested",
}


class _CompiledTemplates(jinja2.FileSystemBytecodeCache):
    """The template compiled once per machine: compiling it took 18-20 ms of every run
    (about all of writing report.html, measured). Jinja keys each entry by the template's
    source, so an edited template is compiled afresh. Best effort: a cache folder that cannot
    be read or written only means compiling again."""

    def __init__(self) -> None:
        from conformance._speccache import cache_dir

        folder = cache_dir() / "templates"
        with contextlib.suppress(OSError):
            folder.mkdir(parents=True, exist_ok=True)
        super().__init__(str(folder))

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        with contextlib.suppress(OSError):
            super().load_bytecode(bucket)

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        with contextlib.suppress(OSError):
            super().dump_bytecode(bucket)


def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        bytecode_cache=_CompiledTemplates(),
    )
    environment.filters["clip"] = clip
    environment.filters["inline"] = inline_markdown
    return environment


def clip(text: str | None, limit: int = BODY_SHOWN) -> str:
    """Long bodies are cut for reading; results.json keeps what was recorded."""
    if not text:
        return ""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n… ({len(text) - limit} more characters in results.json)"


_CODE = re.compile(r"`([^`]+)`")
_STRONG = re.compile(r"\*\*([^*]+)\*\*")
_EMPHASIS = re.compile(r"\*([^*\s][^*]*)\*")


def inline_markdown(text: str) -> Markup:
    """The catalogue quotes the document's Markdown: show its code spans and emphasis."""
    html = str(escape(text))
    html = _CODE.sub(r"<code>\1</code>", html)
    html = _STRONG.sub(r"<b>\1</b>", html)
    return Markup(_EMPHASIS.sub(r"<i>\1</i>", html))


def sections(document: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    """Requirements grouped by the section of the document they come from, in catalogue order."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for requirement in document["requirements"]:
        grouped.setdefault(requirement["section"] or "Other", []).append(requirement)
    return list(grouped.items())


def failures(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Each failed test with the requirements it broke and the exchange it failed on."""
    catalogue = {r["id"]: r for r in document["requirements"]}
    found = []
    for test in document["tests"]:
        if test["failure"] is None:
            continue
        exchanges = test["failure"]["exchanges"]
        step = test["failure"]["step"]
        if step is None and exchanges:
            step = len(exchanges) - 1
        broken = test["broken"] or test["requirements"]
        found.append(
            {
                "test": test,
                "rules": [catalogue[r] for r in broken if r in catalogue],
                "step": step,
                "failing": exchanges[step] if step is not None else None,
                "exchanges": exchanges,
            }
        )
    return found


def render_html(document: dict[str, Any]) -> str:
    template = _environment().get_template("report.html.j2")
    return template.render(
        doc=document,
        sections=sections(document),
        failures=failures(document),
        labels=OUTCOME_LABELS,
        warned=[r for r in document["requirements"] if r["outcome"] == "warned"],
    )


def write_html(document: dict[str, Any], path: Path) -> Path:
    path.write_text(render_html(document), encoding="utf-8")
    return path
