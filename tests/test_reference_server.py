"""Behaviour of the embedded reference server, over real HTTP on loopback.

The reference server is what the conformance suite is calibrated against: the
correct build must pass every check and each fault must change an observable
behaviour.  These tests pin both halves down independently of the suite.
"""

from __future__ import annotations

import ast
import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from conformance._reference import (
    FAULTS,
    EmbeddedServer,
    ReferenceKeys,
    ReferenceSettings,
    create_app,
)

JSON = "application/json"
PROBLEM = "application/problem+json"


@dataclass
class Api:
    """A running server plus one client per key, so tests read as 'who does what'."""

    server: EmbeddedServer
    a: httpx.Client  # org A, full scopes
    ro: httpx.Client  # org A, read only
    b: httpx.Client  # org B, full scopes
    anon: httpx.Client  # no credentials

    def creator(self, name: str = "Creator", client: httpx.Client | None = None) -> str:
        response = (client or self.a).post("/creators", json={"name": name})
        assert response.status_code == 201, response.text
        return str(response.json()["data"]["id"])

    def account(self, platform: str = "tiktok", client: httpx.Client | None = None) -> str:
        body = {"platform": platform, "handle": "h-" + uuid.uuid4().hex[:8]}
        response = (client or self.a).post("/accounts", json=body)
        assert response.status_code == 201, response.text
        return str(response.json()["data"]["id"])

    def link(self, cid: str, aid: str, client: httpx.Client | None = None) -> httpx.Response:
        return (client or self.a).put(f"/creators/{cid}/accounts/{aid}")


def _client(server: EmbeddedServer, key: str | None) -> httpx.Client:
    headers = {} if key is None else {"Authorization": f"Bearer {key}"}
    return httpx.Client(base_url=server.base_url, headers=headers, timeout=5)


@contextmanager
def _api(settings: ReferenceSettings | None = None) -> Iterator[Api]:
    """Start a server and its clients; close everything so no ResourceWarning leaks."""
    with EmbeddedServer(settings) as server:
        keys = server.keys
        clients = [
            _client(server, key)
            for key in (keys.api_key, keys.readonly_api_key, keys.other_org_api_key, None)
        ]
        try:
            yield Api(server, *clients)
        finally:
            for client in clients:
                client.close()


@pytest.fixture(scope="module")
def api() -> Iterator[Api]:
    with _api() as running:
        yield running


@pytest.fixture(scope="module")
def constrained() -> Iterator[Api]:
    """Tiny rate limit (for org B's key) and a one-account quota; a window long enough
    that it will not roll over mid-test."""
    settings = ReferenceSettings(rate_limit=4, rate_window_seconds=10**7, account_quota=1)
    with _api(settings) as running:
        yield running


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Every error is an RFC 9457 problem with code, type, instance and request id."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == "urn:creatoraudit:error:" + code.lower().replace("_", "-")
    assert body["title"] and body["detail"]
    assert body["instance"] == response.request.url.raw_path.decode().split("?")[0]
    assert body["request_id"] == response.headers["x-request-id"]
    return body


def error_fields(response: httpx.Response) -> set[str]:
    return {entry["field"] for entry in response.json()["errors"]}


def parse_links(header: str) -> dict[str, str]:
    """Minimal RFC 8288 parser: rel -> target."""
    links: dict[str, str] = {}
    for part in header.split(","):
        target, _, params = part.partition(";")
        rel = params.split("rel=", 1)[1].strip().strip('"')
        links[rel] = target.strip().strip("<>")
    return links


# -- public endpoints --------------------------------------------------------------------


def test_health_is_public_and_enveloped(api: Api) -> None:
    response = api.anon.get("/health")
    assert response.status_code == 200
    assert response.headers["content-type"] == JSON
    assert response.json() == {"data": {"status": "ok"}}


def test_meta_reports_name_and_version(api: Api) -> None:
    response = api.anon.get("/meta")
    assert response.json() == {"data": {"name": "CreatorAudit API", "version": "2.0.0"}}


def test_public_endpoints_carry_no_rate_limit_headers(api: Api) -> None:
    response = api.a.get("/health")
    assert not [h for h in response.headers if h.lower().startswith("x-ratelimit")]


def test_path_outside_v2_is_404_problem(api: Api) -> None:
    response = api.a.get(api.server.base_url.removesuffix("/v2") + "/v1/creators")
    assert_problem(response, 404, "NOT_FOUND")


# -- request id ----------------------------------------------------------------------------


def test_request_id_is_echoed(api: Api) -> None:
    response = api.a.get("/creators/" + str(uuid.uuid4()), headers={"X-Request-ID": "trace-42"})
    assert response.headers["x-request-id"] == "trace-42"
    assert response.json()["request_id"] == "trace-42"


@pytest.mark.parametrize("sent", [None, "x" * 201, "has space"], ids=["absent", "long", "space"])
def test_request_id_is_minted_when_absent_or_unusable(api: Api, sent: str | None) -> None:
    headers = {} if sent is None else {"X-Request-ID": sent}
    minted = api.anon.get("/health", headers=headers).headers["x-request-id"]
    assert minted != sent and len(minted) == 32


# -- authentication and scopes ---------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [None, "Basic dXNlcjpwYXNz", "Bearer", "Bearer a b", "Bearer ca_live_not-a-real-key"],
    ids=["missing", "wrong-scheme", "no-token", "malformed", "unknown-key"],
)
def test_bad_credentials_are_401_with_challenge(api: Api, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = api.anon.get("/creators", headers=headers)
    assert_problem(response, 401, "UNAUTHORIZED")
    assert response.headers["www-authenticate"] == 'Bearer realm="creatoraudit"'
    assert "x-ratelimit-limit" not in response.headers


def test_unknown_path_without_credentials_is_401_not_404(api: Api) -> None:
    assert_problem(api.anon.get("/no-such-thing"), 401, "UNAUTHORIZED")


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "BeArEr"])
def test_bearer_scheme_is_case_insensitive(api: Api, scheme: str) -> None:
    headers = {"Authorization": f"{scheme} {api.server.keys.api_key}"}
    assert api.anon.get("/creators", headers=headers).status_code == 200


def test_inactive_key_is_403_forbidden_without_rate_limit_headers(api: Api) -> None:
    headers = {"Authorization": f"Bearer {api.server.keys.inactive_api_key}"}
    response = api.anon.get("/creators", headers=headers)
    assert_problem(response, 403, "FORBIDDEN")
    assert "x-ratelimit-limit" not in response.headers


def test_readonly_key_reads_but_gets_insufficient_scope_on_writes(api: Api) -> None:
    cid, aid = api.creator(), api.account()
    assert api.ro.get(f"/creators/{cid}").status_code == 200
    for response in (
        api.ro.post("/creators", json={"name": "x"}),
        api.ro.put(f"/creators/{cid}/accounts/{aid}"),
        api.ro.delete(f"/creators/{cid}"),
    ):
        assert_problem(response, 403, "INSUFFICIENT_SCOPE")
        assert "x-ratelimit-remaining" in response.headers


# -- linking ---------------------------------------------------------------------------


def test_first_link_is_201_with_location_and_record(api: Api) -> None:
    cid, aid = api.creator(), api.account()
    response = api.link(cid, aid)
    assert response.status_code == 201
    assert response.headers["location"] == f"/v2/creators/{cid}/accounts/{aid}"
    data = response.json()["data"]
    assert (data["creator_id"], data["account_id"]) == (cid, aid)
    assert data["linked_at"]


def test_relink_to_same_creator_is_200_and_changes_nothing(api: Api) -> None:
    cid, aid = api.creator(), api.account()
    first = api.link(cid, aid).json()
    again = api.link(cid, aid)
    assert again.status_code == 200
    assert again.json() == first


def test_link_to_other_creator_is_409_and_keeps_owner(api: Api) -> None:
    owner, other, aid = api.creator(), api.creator(), api.account()
    api.link(owner, aid)
    assert_problem(api.link(other, aid), 409, "CONFLICT")
    assert api.a.get(f"/creators/{owner}/accounts/{aid}").status_code == 200
    assert api.a.get(f"/creators/{other}/accounts/{aid}").status_code == 404
    assert api.link(owner, aid).status_code == 200


def test_link_with_missing_creator_or_account_is_404(api: Api) -> None:
    cid, aid, ghost = api.creator(), api.account(), str(uuid.uuid4())
    assert_problem(api.link(ghost, aid), 404, "NOT_FOUND")
    assert_problem(api.link(cid, ghost), 404, "NOT_FOUND")


def test_link_with_non_uuid_ids_is_422_naming_each_field(api: Api) -> None:
    response = api.a.put("/creators/nope/accounts/also-nope")
    assert_problem(response, 422, "VALIDATION_ERROR")
    assert error_fields(response) == {"creator_id", "account_id"}
    only_account = api.a.put(f"/creators/{uuid.uuid4()}/accounts/123")
    assert error_fields(only_account) == {"account_id"}


def test_path_with_encoded_line_break_still_gets_a_problem(api: Api) -> None:
    """Found by the full fuzzing profile: such a path once fell through to a plain-text 404."""
    response = api.a.put("/creators/%3Ag/accounts/a%0Ab")
    assert_problem(response, 422, "VALIDATION_ERROR")
    assert response.headers.get("x-request-id")


def test_uppercase_uuids_are_normalised(api: Api) -> None:
    cid, aid = api.creator(), api.account()
    response = api.link(cid.upper(), aid.upper())
    assert response.status_code == 201
    assert response.json()["data"]["creator_id"] == cid
    assert api.link(cid, aid).status_code == 200


def test_other_orgs_resources_are_indistinguishable_from_missing(api: Api) -> None:
    cid, aid = api.creator(), api.account()
    foreign_cid, foreign_aid = api.creator(client=api.b), api.account(client=api.b)
    assert_problem(api.a.get(f"/creators/{foreign_cid}"), 404, "NOT_FOUND")
    assert_problem(api.a.get(f"/accounts/{foreign_aid}"), 404, "NOT_FOUND")
    assert_problem(api.link(cid, foreign_aid), 404, "NOT_FOUND")
    assert_problem(api.link(foreign_cid, aid), 404, "NOT_FOUND")


def test_link_can_be_read_and_deleted(api: Api) -> None:
    cid, aid = api.creator(), api.account()
    path = f"/creators/{cid}/accounts/{aid}"
    assert_problem(api.a.get(path), 404, "NOT_FOUND")
    api.link(cid, aid)
    assert api.a.get(path).json()["data"]["account_id"] == aid
    deleted = api.a.delete(path)
    assert deleted.status_code == 204 and deleted.content == b""
    assert_problem(api.a.delete(path), 404, "NOT_FOUND")
    assert api.link(cid, aid).status_code == 201


def test_deleting_a_creator_removes_its_links(api: Api) -> None:
    cid, other, aid = api.creator(), api.creator(), api.account()
    api.link(cid, aid)
    assert api.a.delete(f"/creators/{cid}").status_code == 204
    assert_problem(api.a.get(f"/creators/{cid}"), 404, "NOT_FOUND")
    assert api.link(other, aid).status_code == 201


# -- resources -----------------------------------------------------------------------


def test_create_creator_returns_location_and_record(api: Api) -> None:
    response = api.a.post("/creators", json={"name": "Ada", "ignored": True})
    assert response.status_code == 201
    data = response.json()["data"]
    assert set(data) == {"id", "name", "created_at"} and data["name"] == "Ada"
    assert response.headers["location"] == f"/v2/creators/{data['id']}"
    assert api.a.get(response.headers["location"].removeprefix("/v2")).json() == response.json()


@pytest.mark.parametrize(
    ("path", "body", "fields"),
    [
        ("/creators", {"name": ""}, {"name"}),
        ("/creators", {"name": 3}, {"name"}),
        ("/creators", ["name"], {"body"}),
        ("/accounts", {"platform": "myspace", "handle": ""}, {"platform", "handle"}),
    ],
    ids=["empty-name", "numeric-name", "array-body", "bad-platform-and-handle"],
)
def test_invalid_create_bodies_are_422(api: Api, path: str, body: object, fields: set[str]) -> None:
    response = api.a.post(path, json=body)
    assert_problem(response, 422, "VALIDATION_ERROR")
    assert error_fields(response) == fields


def test_account_quota_is_403_quota_exceeded(constrained: Api) -> None:
    constrained.account()
    body = {"platform": "instagram", "handle": "second"}
    assert_problem(constrained.a.post("/accounts", json=body), 403, "QUOTA_EXCEEDED")


def test_idempotency_key_replays_first_result(api: Api) -> None:
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    first = api.a.post("/creators", json={"name": "Once"}, headers=headers)
    second = api.a.post("/creators", json={"name": "Once"}, headers=headers)
    assert (second.status_code, second.content) == (first.status_code, first.content)
    assert second.headers["location"] == first.headers["location"]
    listed = api.a.get("/creators", params={"name_prefix": "Once", "limit": 200}).json()["data"]
    assert [c["id"] for c in listed].count(first.json()["data"]["id"]) == 1
    assert len([c for c in listed if c["name"] == "Once"]) == 1


def test_idempotency_key_reused_with_other_body_is_409(api: Api) -> None:
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    api.a.post("/creators", json={"name": "A"}, headers=headers)
    conflict = api.a.post("/creators", json={"name": "B"}, headers=headers)
    assert_problem(conflict, 409, "CONFLICT")


# -- negotiation, media types, routing ---------------------------------------------


@pytest.mark.parametrize(
    "accept",
    ["text/html", "application/json;q=0", "application/xml, text/*", "application/json;q=0, */*"],
)
def test_unsatisfiable_accept_is_406(api: Api, accept: str) -> None:
    assert_problem(api.a.get("/creators", headers={"Accept": accept}), 406, "NOT_ACCEPTABLE")


@pytest.mark.parametrize(
    "accept",
    [
        "*/*",
        "application/*",
        "application/json; charset=utf-8",
        "text/html, application/json;q=0.1",
    ],
)
def test_accept_admitting_json_proceeds(api: Api, accept: str) -> None:
    assert api.a.get("/creators", headers={"Accept": accept}).status_code == 200


def test_non_json_write_body_is_415(api: Api) -> None:
    headers = {"Content-Type": "text/plain"}
    response = api.a.post("/creators", content=b"name=x", headers=headers)
    assert_problem(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert "x-ratelimit-limit" in response.headers


def test_json_content_type_with_charset_is_accepted(api: Api) -> None:
    headers = {"Content-Type": "application/json; charset=utf-8"}
    response = api.a.post("/creators", content=b'{"name": "cs"}', headers=headers)
    assert response.status_code == 201


def test_unparseable_json_is_400(api: Api) -> None:
    headers = {"Content-Type": JSON}
    response = api.a.post("/creators", content=b'{"name": ', headers=headers)
    assert_problem(response, 400, "BAD_REQUEST")


def test_wrong_method_is_405_with_allow(api: Api) -> None:
    response = api.a.patch("/creators", json={})
    body = assert_problem(response, 405, "BAD_REQUEST")
    assert body["title"] == "Method Not Allowed"
    assert {m.strip() for m in response.headers["allow"].split(",")} == {"GET", "POST"}


def test_unknown_path_is_404(api: Api) -> None:
    assert_problem(api.a.get("/creatorz"), 404, "NOT_FOUND")


# -- caching ---------------------------------------------------------------------------


def test_get_has_strong_etag_and_cache_control(api: Api) -> None:
    response = api.a.get(f"/creators/{api.creator()}")
    assert response.headers["etag"].startswith('"')
    assert response.headers["cache-control"] == "private, no-cache"


@pytest.mark.parametrize(
    "condition",
    ["{etag}", "W/{etag}", '"other", {etag}', "*"],
    ids=["exact", "weak-form", "in-list", "star"],
)
def test_matching_if_none_match_is_empty_304(api: Api, condition: str) -> None:
    path = f"/creators/{api.creator()}"
    etag = api.a.get(path).headers["etag"]
    response = api.a.get(path, headers={"If-None-Match": condition.format(etag=etag)})
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == etag
    assert response.headers["cache-control"] == "private, no-cache"
    assert "content-type" not in response.headers
    assert response.headers["x-request-id"] and response.headers["x-ratelimit-remaining"]


def test_changed_representation_is_full_200(api: Api) -> None:
    response = api.a.get("/creators", headers={"If-None-Match": '"stale"'})
    assert response.status_code == 200 and response.content


# -- rate limits -----------------------------------------------------------------------


def test_rate_limit_headers_count_down(api: Api) -> None:
    first, second = api.a.get("/creators"), api.a.get("/creators")
    limit = int(first.headers["x-ratelimit-limit"])
    before, after = (int(r.headers["x-ratelimit-remaining"]) for r in (first, second))
    assert 0 <= after < before < limit
    assert time.time() < int(first.headers["x-ratelimit-reset"]) <= time.time() + 61


def test_exhausted_rate_limit_is_429_with_retry_after(constrained: Api) -> None:
    responses = [constrained.b.get("/creators") for _ in range(5)]
    assert [r.status_code for r in responses] == [200, 200, 200, 200, 429]
    limited = responses[-1]
    assert_problem(limited, 429, "RATE_LIMITED")
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.headers["x-ratelimit-remaining"] == "0"
    assert limited.headers["x-ratelimit-limit"] == "4"


# -- pagination ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def five_creators(api: Api) -> tuple[str, list[str]]:
    """Five creators sharing a unique name prefix, so lists are deterministic."""
    prefix = "pg-" + uuid.uuid4().hex[:8] + "-"
    return prefix, [api.creator(f"{prefix}{i}") for i in range(5)]


@pytest.mark.parametrize("limit", ["0", "201", "abc", "-1", "2.5"])
def test_out_of_range_limit_is_422_naming_limit(api: Api, limit: str) -> None:
    response = api.a.get("/creators", params={"limit": limit})
    assert_problem(response, 422, "VALIDATION_ERROR")
    assert error_fields(response) == {"limit"}


@pytest.mark.parametrize("limit", [1, 200])
def test_limit_bounds_are_inclusive(api: Api, limit: int) -> None:
    response = api.a.get("/creators", params={"limit": limit})
    assert response.json()["pagination"]["limit"] == limit


def test_cursor_walks_all_pages_in_creation_order(
    api: Api, five_creators: tuple[str, list[str]]
) -> None:
    prefix, ids = five_creators
    seen: list[str] = []
    params: dict[str, str | int] = {"name_prefix": prefix, "limit": 2}
    flags: list[bool] = []
    while True:
        body = api.a.get("/creators", params=params).json()
        seen += [c["id"] for c in body["data"]]
        flags.append(body["pagination"]["has_next"])
        assert body["filters"] == {"name_prefix": prefix}
        if not body["pagination"]["has_next"]:
            assert body["pagination"]["next_cursor"] is None
            break
        params["cursor"] = body["pagination"]["next_cursor"]
    assert seen == ids and flags == [True, True, False]


def test_cursor_under_another_filter_is_422(api: Api, five_creators: tuple[str, list[str]]) -> None:
    prefix, _ = five_creators
    page = api.a.get("/creators", params={"name_prefix": prefix, "limit": 2}).json()
    cursor = page["pagination"]["next_cursor"]
    response = api.a.get("/creators", params={"name_prefix": prefix + "0", "cursor": cursor})
    assert_problem(response, 422, "VALIDATION_ERROR")
    assert error_fields(response) == {"cursor"}
    assert error_fields(api.a.get("/accounts", params={"cursor": cursor})) == {"cursor"}


@pytest.mark.parametrize(
    "cursor", ["garbage", "", "eyJhZnRlciI6IDF9"], ids=["text", "empty", "unsigned"]
)
def test_garbage_cursor_is_422(api: Api, cursor: str) -> None:
    response = api.a.get("/creators", params={"cursor": cursor})
    assert error_fields(response) == {"cursor"}


def test_include_total_adds_total_count(api: Api, five_creators: tuple[str, list[str]]) -> None:
    prefix, _ = five_creators
    params: dict[str, str | int] = {"name_prefix": prefix, "limit": 2}
    assert "total_count" not in api.a.get("/creators", params=params).json()["pagination"]
    with_total = api.a.get("/creators", params={**params, "include_total": "true"}).json()
    assert with_total["pagination"]["total_count"] == 5


def test_link_header_has_first_and_next_with_same_filters(
    api: Api, five_creators: tuple[str, list[str]]
) -> None:
    prefix, ids = five_creators
    response = api.a.get("/creators", params={"name_prefix": prefix, "limit": 2})
    links = parse_links(response.headers["link"])
    assert set(links) == {"first", "next"}
    second = api.a.get(links["next"].removeprefix("/v2")).json()
    assert [c["id"] for c in second["data"]] == ids[2:4]
    first = api.a.get(links["first"].removeprefix("/v2")).json()
    assert [c["id"] for c in first["data"]] == ids[:2]
    last = api.a.get("/creators", params={"name_prefix": prefix, "limit": 5})
    assert set(parse_links(last.headers["link"])) == {"first"}


def test_account_list_filters_by_platform(api: Api) -> None:
    api.account("instagram")
    body = api.a.get("/accounts", params={"platform": "instagram", "limit": 200}).json()
    assert body["filters"] == {"platform": "instagram"}
    assert body["data"] and {a["platform"] for a in body["data"]} == {"instagram"}
    assert error_fields(api.a.get("/accounts", params={"platform": "vine"})) == {"platform"}


# -- settings and packaging ------------------------------------------------------------


def test_unknown_fault_is_rejected_with_known_list() -> None:
    with pytest.raises(ValueError, match=r"no-such-fault.*relink-returns-201"):
        ReferenceSettings(faults={"no-such-fault"})
    settings = ReferenceSettings()
    settings.faults.add("typo")
    with pytest.raises(ValueError, match="typo"):
        create_app(settings)


def test_keys_are_random_or_taken_from_env() -> None:
    one, two = ReferenceKeys.generate(), ReferenceKeys.generate()
    assert one != two and one.api_key.startswith("ca_live_")
    keys = ReferenceKeys.from_env({"CREATORAUDIT_API_KEY": "pinned"})
    assert keys.api_key == "pinned" and keys.readonly_api_key.startswith("ca_live_")


def test_reference_package_imports_nothing_else_from_conformance() -> None:
    """The server is a target of the checks and must not share their code."""
    package = Path(__file__).parent.parent / "conformance" / "_reference"
    for source in package.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert node.level <= 1, f"{source.name} imports from outside _reference"
                assert not (node.module or "").startswith("conformance"), source.name
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith("conformance") for a in node.names)


# -- faults: each one must change an observable behaviour ---------------------------

Probe = Callable[[Api], object]


def _relink_status(api: Api) -> object:
    cid, aid = api.creator(), api.account()
    api.link(cid, aid)
    return api.link(cid, aid).status_code


def _conflict_outcome(api: Api) -> object:
    owner, other, aid = api.creator(), api.creator(), api.account()
    api.link(owner, aid)
    status = api.link(other, aid).status_code
    owner_keeps = api.a.get(f"/creators/{owner}/accounts/{aid}").status_code == 200
    return status, owner_keeps


def _relink_after_conflict(api: Api) -> object:
    owner, other, aid = api.creator(), api.creator(), api.account()
    api.link(owner, aid)
    api.link(other, aid)
    return api.link(owner, aid).status_code


def _first_link_location(api: Api) -> object:
    return "location" in api.link(api.creator(), api.account()).headers


def _link_body_is_json(api: Api) -> object:
    body = api.link(api.creator(), api.account()).content
    try:
        json.loads(body)
    except ValueError:
        return False
    return True


def _not_found_body(api: Api) -> object:
    return sorted(api.a.get(f"/creators/{uuid.uuid4()}").json())


def _echoed_request_id(api: Api) -> object:
    return api.a.get("/creators", headers={"X-Request-ID": "probe-1"}).headers["x-request-id"]


def _foreign_link_status(api: Api) -> object:
    return api.link(api.creator(), api.account(client=api.b)).status_code


def _uppercase_link_status(api: Api) -> object:
    return api.link(api.creator().upper(), api.account().upper()).status_code


def _validation_members(api: Api) -> object:
    return sorted(api.a.get("/creators/not-a-uuid").json())


def _problem_content_type(api: Api) -> object:
    return api.a.get(f"/accounts/{uuid.uuid4()}").headers["content-type"]


def _etag_is_weak(api: Api) -> object:
    return api.a.get("/creators").headers["etag"].startswith("W/")


def _not_modified_shape(api: Api) -> object:
    path = f"/creators/{api.creator()}"
    etag = api.a.get(path).headers["etag"]
    response = api.a.get(path, headers={"If-None-Match": etag})
    return response.status_code, response.headers.get("content-length", "0"), response.content


def _reset_is_seconds(api: Api) -> object:
    return int(api.a.get("/creators").headers["x-ratelimit-reset"]) < time.time() + 10**6


def _has_challenge(api: Api) -> object:
    return "www-authenticate" in api.anon.get("/creators").headers


def _readonly_create_status(api: Api) -> object:
    return api.ro.post("/creators", json={"name": "ro"}).status_code


def _idempotent_ids_equal(api: Api) -> object:
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    ids = [
        api.a.post("/creators", json={"name": "idem"}, headers=headers).json()["data"]["id"]
        for _ in range(2)
    ]
    return ids[0] == ids[1]


def _key_echoed(api: Api) -> object:
    response = api.a.get("/creators")
    return "x-debug-authorization" in response.headers or "debug" in response.json()


PROBES: dict[str, Probe] = {
    "relink-returns-201": _relink_status,
    "conflict-returns-200": _conflict_outcome,
    "conflict-moves-account": _conflict_outcome,
    "relink-after-conflict-201": _relink_after_conflict,
    "created-without-location": _first_link_location,
    "problem-without-code": _not_found_body,
    "request-id-not-echoed": _echoed_request_id,
    "foreign-account-linkable": _foreign_link_status,
    "uppercase-uuid-500": _uppercase_link_status,
    "validation-without-errors": _validation_members,
    "problem-plain-json-content-type": _problem_content_type,
    "weak-etag": _etag_is_weak,
    "not-modified-with-body": _not_modified_shape,
    "ratelimit-reset-in-millis": _reset_is_seconds,
    "no-www-authenticate": _has_challenge,
    "readonly-key-can-write": _readonly_create_status,
    "idempotency-key-ignored": _idempotent_ids_equal,
    "link-body-not-json": _link_body_is_json,
    "echo-credentials": _key_echoed,
}


def test_every_fault_has_a_description_and_a_probe() -> None:
    # Faults without a probe here are proven by the kill table (tests/test_kill_table.py),
    # which runs the whole suite against each one.
    assert set(PROBES) <= set(FAULTS)
    assert all(description.strip() for description in FAULTS.values())


@pytest.mark.parametrize("fault", sorted(PROBES))
def test_fault_changes_observable_behaviour(api: Api, fault: str) -> None:
    probe = PROBES[fault]
    correct = probe(api)
    api.server.faults.add(fault)
    try:
        faulty = probe(api)
    finally:
        api.server.faults.discard(fault)
    assert faulty != correct, f"{fault}: {FAULTS[fault]}"
    assert probe(api) == correct, "switching the fault off restores the correct behaviour"
