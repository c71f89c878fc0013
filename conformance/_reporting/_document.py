"""The run as one JSON-ready document: what results.json holds and every other report shows."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from conformance._results import RunResults, TestResult

SCHEMA_VERSION = 1
FAILED_OUTCOMES = frozenset({"failed", "error"})


@dataclass(frozen=True)
class RunMetadata:
    """What the results alone do not know: the suite, the spec, the seed and the profile."""

    suite_version: str
    spec_path: str
    spec_sha256: str
    seed: int | str | None = None
    profile: str = "smoke"

    @classmethod
    def from_config(cls, config: Any) -> RunMetadata:
        """Read from pytest options; options another part of the suite adds may be absent."""
        from conformance import __version__
        from conformance._resources import spec_path

        spec = Path(config.getoption("creatoraudit_spec", None) or spec_path())
        return cls(
            suite_version=__version__,
            spec_path=spec.name,
            spec_sha256=sha256_of(spec),
            seed=config.getoption("creatoraudit_seed", None),
            profile=config.getoption("creatoraudit_profile", None) or "smoke",
        )


def sha256_of(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return ""


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def build_document(results: RunResults, metadata: RunMetadata) -> dict[str, Any]:
    """The results.json document (see results.schema.json). Everything in it is masked."""
    verdict = results.verdict()
    requirements = results.by_requirement()
    finished = results.finished_at or results.started_at
    return {
        "schema_version": SCHEMA_VERSION,
        "suite": {"name": "creatoraudit-conformance", "version": metadata.suite_version},
        "spec": {"file": metadata.spec_path, "sha256": metadata.spec_sha256},
        "target": {"base_url": results.mask(results.base_url)},
        "run": {
            "id": results.run_id,
            "started_at": _iso(results.started_at),
            "finished_at": _iso(finished),
            "duration": round(max(finished - results.started_at, 0.0), 3),
            "seed": metadata.seed,
            "profile": metadata.profile,
            **_workers(results),
        },
        "verdict": {
            "conforms_must": verdict.conforms_must,
            "conforms_should": verdict.conforms_should,
            "text": verdict.text,
        },
        "counts": {
            "tests": dict(Counter(t.outcome for t in results.tests.values())),
            "requirements": dict(Counter(r.outcome for r in requirements.values())),
        },
        "requirements": [
            {
                "id": rid,
                "level": entry.requirement.level,
                "section": entry.requirement.section,
                "source": entry.requirement.source,
                "outcome": entry.outcome,
                "tests": list(dict.fromkeys(entry.tests)),
                "reasons": [results.mask(r) for r in entry.reasons],
            }
            for rid, entry in requirements.items()
        ],
        "tests": [_test_entry(test, results, metadata) for test in results.tests.values()],
    }


def _workers(results: RunResults) -> dict[str, Any]:
    """Under pytest-xdist, each worker's run id and target; nothing without it."""
    if not results.workers:
        return {}
    return {
        "workers": [
            {"id": w.id, "run_id": w.run_id, "base_url": results.mask(w.base_url)}
            for w in results.workers
        ]
    }


def _test_entry(test: TestResult, results: RunResults, metadata: RunMetadata) -> dict[str, Any]:
    failed = test.outcome in FAILED_OUTCOMES
    return {
        "id": test.nodeid,
        "outcome": test.outcome,
        "duration": round(test.duration, 4),
        "requirements": test.requirements,
        "broken": test.broken,
        "message": results.mask(test.message),
        "warnings": [results.mask(w) for w in test.warnings],
        "observations": [results.mask(o) for o in test.observations],
        "rerun": test.rerun or None,
        "flaky": test.rerun == "passed",
        "failure": (
            {
                "seed": metadata.seed,
                "step": test.failure.step if test.failure else None,
                "expected_status": test.failure.expected_status if test.failure else None,
                # masked once more: a last line of defence for the files
                "exchanges": [results.mask_all(asdict(x)) for x in test.evidence()],
            }
            if failed
            else None
        ),
    }


def write_json(document: dict[str, Any], path: Path) -> Path:
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
