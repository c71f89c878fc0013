"""Content negotiation: only JSON is produced; only JSON write bodies are read."""

from __future__ import annotations

import contextlib

import pytest

from conformance import ApiClient, Principal, expect_problem, expect_status, link_path, nowhere_id
from conformance._expect import ExpectationFailed


@pytest.mark.requirement("NEG-406", "CODE-406")
@pytest.mark.parametrize(
    "accept",
    ["text/html", "text/csv, application/xml", "application/json;q=0"],
    ids=["html", "csv-or-xml", "json-refused"],
)
def test_accept_without_json_is_406(api: ApiClient, data, accept: str) -> None:
    exchange = api.put(link_path(data.owner(), data.account()), headers={"Accept": accept})
    expect_problem(exchange, 406, "NOT_ACCEPTABLE", "NEG-406")


@pytest.mark.requirement("NEG-406", "AUTH-MISSING-401")
def test_two_faults_at_once_get_either_documented_answer(api: ApiClient, observe) -> None:
    """No credentials and an unsatisfiable Accept: the document does not say which wins."""
    exchange = api.put(
        link_path(nowhere_id(), nowhere_id()),
        principal=Principal.NONE,
        headers={"Accept": "text/html"},
    )
    expect_status(exchange, {401, 406}, "NEG-406")
    code = {401: "UNAUTHORIZED", 406: "NOT_ACCEPTABLE"}[exchange.status]
    expect_problem(exchange, exchange.status, code, "NEG-406")
    observe(f"no credentials + Accept: text/html -> {exchange.status} {code}")


ADMITTING_JSON = {
    "any": "*/*",
    "application-any": "application/*",
    "json": "application/json",
    "json-with-charset": "application/json; charset=utf-8",
    "q-list-json-lower": "text/html;q=0.9, application/json;q=0.8",
    "q-list-wildcard": "text/html, */*;q=0.1",
}


@pytest.mark.requirement("NEG-ACCEPT-JSON-ADMITTED")
@pytest.mark.parametrize("accept", list(ADMITTING_JSON.values()), ids=list(ADMITTING_JSON))
def test_accept_admitting_json_is_served(api: ApiClient, data, accept: str) -> None:
    exchange = api.put(link_path(data.owner(), data.account()), headers={"Accept": accept})
    expect_status(exchange, 201, "NEG-ACCEPT-JSON-ADMITTED")


@pytest.mark.requirement("NEG-415", "CODE-415")
def test_non_json_write_body_is_415(api: ApiClient) -> None:
    exchange = api.post(
        "/creators", content=b"name=conformance", headers={"Content-Type": "text/plain"}
    )
    _delete_if_created(api, exchange, "/creators")
    expect_problem(exchange, 415, "UNSUPPORTED_MEDIA_TYPE", "NEG-415")


@pytest.mark.requirement("CODE-400")
def test_unparseable_json_body_is_400(api: ApiClient, observe) -> None:
    """The table's 400 is for malformed requests; a validator that answers 422 for broken JSON
    is a reading the document does not rule out, so it is accepted and recorded."""
    exchange = api.post(
        "/creators", content=b'{"name": ', headers={"Content-Type": "application/json"}
    )
    _delete_if_created(api, exchange, "/creators")
    expect_status(exchange, {400, 422}, "CODE-400")
    if exchange.status == 422:
        expect_problem(exchange, 422, "VALIDATION_ERROR", "CODE-400")
        observe("unparseable JSON body -> 422 VALIDATION_ERROR (not 400)")
    else:
        expect_problem(exchange, 400, "BAD_REQUEST", "CODE-400")


def _delete_if_created(api: ApiClient, exchange, collection: str) -> None:  # type: ignore[no-untyped-def]
    """A write that should have been refused but created something is cleaned up at once."""
    body = exchange.json()
    if exchange.status == 201 and isinstance(body, dict) and isinstance(body.get("data"), dict):
        with contextlib.suppress(AssertionError, ExpectationFailed):
            api.delete(f"{collection}/{body['data'].get('id')}")
