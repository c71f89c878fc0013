"""The requirement catalogue covers the whole document, and the scenarios cover the catalogue.

The document's sentences are held here: a sentence added to the spec fails
``test_spec_sentences_are_all_known`` until it is classified, and every normative one must be
quoted by some entry's ``source``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from conformance._requirements import LEVELS, load_catalogue
from conformance._resources import scenarios_dir, spec_path

LINK_OPERATION = ("/creators/{creator_id}/accounts/{account_id}", "put")
CODE_BLOCK = re.compile(r"```.*?```", re.DOTALL)
SENTENCE_END = re.compile(r"(?<=\.)\s+(?=[A-Z`*(])")

#: Every sentence of info.description and of the link operation's description that states a
#: status code, a header, a body member or a behaviour (code-table rows count as sentences).
NORMATIVE_SENTENCES = [
    "Send your organization API key as a bearer token on every request:",
    "Keys are scoped to a single organization; every response is limited to the data that "
    "organization owns.",
    "Missing or invalid credentials return `401`; an inactive key or subscription returns `403`.",
    "Each key carries a set of **scopes** — `read`, `write`, and `admin` — and keys are issued "
    "with all three by default.",
    "Read endpoints (`GET`) require no special scope; mutating endpoints "
    "(`POST`/`PATCH`/`PUT`/`DELETE`) require the `write` scope (`admin` implies `write` implies "
    "`read`).",
    "A key lacking the required scope gets `403` with `code: INSUFFICIENT_SCOPE`.",
    '**Single resource** — `{ "data": { ... } }`',
    '**Collection** — `{ "data": [ ... ], "pagination": { ... }, "filters": { ... } }`',
    '**Collection with metadata** — `{ "data": ..., "meta": { ... } }`',
    "`pagination` carries `next_cursor`, `has_next`, `limit`, and (when requested) `total_count`.",
    "`filters` echoes the filter/sort that produced the page.",
    "List endpoints use opaque **cursor** pagination.",
    "Pass `limit` (1–200) and the `pagination.next_cursor` from the previous page as `cursor` to "  # noqa: RUF001
    "fetch the next page.",
    "`pagination.has_next` is `false` on the final page.",
    "A cursor is bound to the exact filter and sort combination it was issued for — reusing it "
    "under a different filter/sort returns `422`.",
    "Pass `include_total=true` to also receive `pagination.total_count` (adds one COUNT query).",
    'List responses also carry an RFC 8288 `Link` header with `rel="first"` and (when more pages '
    'exist) `rel="next"`.',
    "`GET` responses carry a strong `ETag` and `Cache-Control: private, no-cache`.",
    "Send the value back as `If-None-Match` on a follow-up request; if the representation is "
    "unchanged the API replies `304 Not Modified` with an empty body, saving the re-download.",
    "Requests are rate limited per API key.",
    "Every **authenticated** response includes `X-RateLimit-Limit`, `X-RateLimit-Remaining`, and "
    "`X-RateLimit-Reset` (a Unix timestamp); the unauthenticated `GET /health` and `GET /meta` "
    "are not limited and omit them.",
    "Exceeding the limit returns `429` with `code: RATE_LIMITED` and a `Retry-After` header "
    "(seconds to wait).",
    "An organization may set an optional cap on the number of accounts it tracks.",
    "By default there is **no cap** (unlimited).",
    "When a cap is set and reached, `POST /accounts` returns `403` with `code: QUOTA_EXCEEDED`.",
    "The API only produces JSON.",
    "A request whose `Accept` header cannot be satisfied with JSON returns `406` (`code: "
    "NOT_ACCEPTABLE`).",
    "A write request whose body is not `application/json` returns `415` (`code: "
    "UNSUPPORTED_MEDIA_TYPE`).",
    "Errors follow **RFC 9457 Problem Details** (`application/problem+json`):",
    "The `code` is the stable machine identifier; `type` is an RFC 9457 URN.",
    "Validation failures (`422`) additionally carry an `errors` array of `{ field, message }` "
    "entries.",
    "The full set of machine `code`s:",
    "| HTTP | `code` | Meaning |",
    "| 400 | `BAD_REQUEST` | Malformed request. |",
    "| 401 | `UNAUTHORIZED` | Missing or invalid API key. |",
    "| 403 | `FORBIDDEN` | Inactive key/subscription. |",
    "| 403 | `INSUFFICIENT_SCOPE` | Key lacks the required scope. |",
    "| 403 | `QUOTA_EXCEEDED` | Account quota reached. |",
    "| 404 | `NOT_FOUND` | Resource not found in your org. |",
    "| 406 | `NOT_ACCEPTABLE` | `Accept` not satisfiable as JSON. |",
    "| 409 | `CONFLICT` | State conflict (e.g. duplicate). |",
    "| 415 | `UNSUPPORTED_MEDIA_TYPE` | Write body is not JSON. |",
    "| 422 | `VALIDATION_ERROR` | Request failed validation. |",
    "| 429 | `RATE_LIMITED` | Rate limit exceeded. |",
    "| 500 | `INTERNAL_ERROR` | Unexpected server error. |",
    "| 502 | `UPSTREAM_ERROR` | Upstream provider error. |",
    "| 503 | `SERVICE_UNAVAILABLE` | Temporarily unavailable; retry. |",
    "`POST` create endpoints accept an optional `Idempotency-Key` header so a retried request "
    "returns the original result instead of creating a duplicate.",
    "On success a `201` carries a `Location` header pointing at the new resource.",
    "Every response echoes `X-Request-ID` (also surfaced as `request_id` in error bodies) so a "
    "call can be correlated with its server-side event.",
    "Collections add `Link`; `GET`s add `ETag`/`Cache-Control`; authenticated responses add "
    "`X-RateLimit-*`; `429`/`503` add `Retry-After`; `201` creates add `Location`.",
    "PUT-to-create with correct REST semantics (review V2R-06): the first link returns `201 "
    "Created` with a `Location` header; re-linking an account already linked to this creator is "
    "an idempotent `200 OK`.",
    "Linking an account already owned by a *different* creator returns `409`.",
    "Returns the link record; `404` if either the creator or the account does not exist in your "
    "organization.",
]

#: Sentences that state no checkable rule (what the API is; a heading for the bullets that
#: follow; the operation's title).
INFORMATIVE_SENTENCES = [
    "The **CreatorAudit v2 API** tracks Instagram and TikTok creators, accounts, and their "
    "content, and serves the engagement analytics computed from them.",
    "Successful responses are wrapped in a consistent envelope:",
    "Link a tracked account to a creator.",
]

#: Sections whose sources quote another text than the prose (schema, RFCs).
NON_PROSE_SECTIONS = ("OpenAPI schema", "RFC ")


def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def sentences_of(text: str) -> list[str]:
    """Split the Markdown prose into sentences: code blocks dropped, table rows and bullets kept
    whole, paragraphs split after full stops."""
    units: list[str] = []
    prose: list[str] = []

    def flush() -> None:
        if prose:
            units.append(" ".join(prose))
            prose.clear()

    for line in CODE_BLOCK.sub("\n#\n", text).splitlines():
        stripped = line.strip()
        if stripped.startswith("|"):
            flush()
            if not re.fullmatch(r"[|\s\-]+", stripped):
                units.append(stripped)
        elif stripped.startswith(("#", "- ")):
            flush()
            if stripped.startswith("- "):
                units.append(stripped[2:])
        elif stripped:
            prose.append(stripped)
    flush()
    found: list[str] = []
    for unit in map(normalise, units):
        found.extend([unit] if unit.startswith("|") else SENTENCE_END.split(unit))
    return [s for s in found if s]


def document_texts() -> list[str]:
    spec = yaml.safe_load(spec_path().read_text(encoding="utf-8"))
    path, method = LINK_OPERATION
    return [spec["info"]["description"], spec["paths"][path][method]["description"]]


def document_sentences() -> list[str]:
    return [s for text in document_texts() for s in sentences_of(text)]


def test_spec_sentences_are_all_known() -> None:
    found = set(document_sentences())
    known = set(NORMATIVE_SENTENCES) | set(INFORMATIVE_SENTENCES)
    assert found - known == set(), "new sentences in the spec: classify them and catalogue them"
    assert known - found == set(), "sentences held here are no longer in the spec"


@pytest.mark.parametrize("sentence", NORMATIVE_SENTENCES, ids=lambda s: s[:40])
def test_every_normative_sentence_is_quoted_by_an_entry(sentence: str) -> None:
    quoting = [
        rid
        for rid, req in load_catalogue().items()
        if normalise(req.source) in sentence or sentence in normalise(req.source)
    ]
    assert quoting, f"no catalogue entry quotes: {sentence}"


def test_prose_sources_are_exact_quotes() -> None:
    text = normalise(" ".join(document_texts()))
    wrong = [
        rid
        for rid, req in load_catalogue().items()
        if not req.section.startswith(NON_PROSE_SECTIONS) and normalise(req.source) not in text
    ]
    assert not wrong, f"sources not quoted exactly from the spec: {wrong}"


def test_entries_are_complete() -> None:
    for rid, req in load_catalogue().items():
        assert re.fullmatch(r"[A-Z][A-Z0-9]*(-[A-Z0-9]+)+", rid), rid
        assert req.level in LEVELS and req.section and req.source and req.applies_to, rid
        assert not (req.untestable and req.unprovable), rid


def test_documented_ambiguities_are_recorded() -> None:
    catalogue = load_catalogue()
    expected = {
        "RL-HEADERS": "401",
        "RL-RETRY-AFTER": "Retry-After",
        "LINK-FIRST-LOCATION": "relative",
        "LINK-RECORD-ENVELOPE": "fields",
        "ERR-CODE-STATUS": "405",
        "AUTH-MISSING-401": "which error wins",
        "ERR-INSTANCE-PATH": "template",
    }
    for rid, words in expected.items():
        assert words in catalogue[rid].ambiguity, rid
    assert catalogue["ERR-INSTANCE-PATH"].level == "SHOULD"


def test_rules_name_only_known_requirements() -> None:
    source = (Path(__file__).parents[1] / "conformance" / "_rules.py").read_text()
    named = set(re.findall(r'"([A-Z][A-Z0-9]*(?:-[A-Z0-9]+)+)"', source))
    assert named - set(load_catalogue()) == set()


def test_every_scenario_verifies_a_known_requirement(pytester: pytest.Pytester) -> None:
    pytester.chdir()
    items, _ = pytester.inline_genitems(str(scenarios_dir()), "-p", "no:cacheprovider")
    catalogue = load_catalogue()
    assert len(items) > 100
    declared = {
        item.nodeid: [rid for m in item.iter_markers("requirement") for rid in m.args]
        for item in items
    }
    without = [nodeid for nodeid, ids in declared.items() if not ids]
    assert not without, f"scenarios verifying no requirement: {without}"
    unknown = {rid for ids in declared.values() for rid in ids} - set(catalogue)
    assert not unknown, f"unknown requirement ids: {sorted(unknown)}"
    verified = {rid for ids in declared.values() for rid in ids}
    uncovered = [
        rid for rid, req in catalogue.items() if rid not in verified and not req.untestable
    ]
    assert not uncovered, f"requirements neither verified nor marked untestable: {uncovered}"
    contradictory = [rid for rid, req in catalogue.items() if rid in verified and req.untestable]
    assert not contradictory, f"marked untestable but verified: {contradictory}"
