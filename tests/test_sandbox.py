"""The X API v2 sandbox, over real HTTP with the real tweepy client (no mocks)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
import tweepy
from jsonschema import Draft4Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from extract import sandbox, x
from extract.sample import BRAND, SAMPLE_START, SUPPORT, generate, parse_stamp
from extract.sandbox import make_server
from extract.settings import REAL_X_API

OPENAPI = Path(__file__).resolve().parents[2] / "shared" / "data" / "reference"
OPENAPI = OPENAPI / "x-api-v2-openapi.json"
DAY_START = datetime.combine(SAMPLE_START + timedelta(days=2), datetime.min.time(), UTC)
DAY_END = DAY_START + timedelta(days=1)
EXPANSIONS = [*x.EXPANSIONS, "entities.mentions.username"]
COMPANY = generate()
USER_IDS = {u["username"]: u["id"] for u in COMPANY.users}


@pytest.fixture
def base_url(sandbox_url: str) -> str:
    return sandbox_url


@pytest.fixture
def client(base_url: str) -> tweepy.Client:
    """tweepy rerouted to the sandbox by the extractor's own adapter."""
    client = tweepy.Client(bearer_token="t")
    client.session.mount(f"{REAL_X_API}/", x.Reroute(base_url))
    return client


def _get(base_url: str, path: str, token: str | None = "t", **params) -> requests.Response:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return requests.get(base_url + path, params=params, headers=headers, timeout=10)


def _expected(username: str, endpoint: str) -> set[str]:
    """An independent filter of the generated sample: what the endpoint should return."""
    user_id = USER_IDS[username]
    found = set()
    for tweet in COMPANY.tweets:
        if not DAY_START <= parse_stamp(tweet["created_at"]) < DAY_END:
            continue
        named = [m["username"] for m in tweet.get("entities", {}).get("mentions", [])]
        if endpoint == "tweets" and tweet["author_id"] == user_id:
            found.add(tweet["id"])
        if endpoint == "mentions" and tweet["author_id"] != user_id and username in named:
            found.add(tweet["id"])
    return found


def _paginate(client: tweepy.Client, username: str, endpoint: str, page_size: int) -> list:
    method = {"tweets": client.get_users_tweets, "mentions": client.get_users_mentions}[endpoint]
    return list(
        tweepy.Paginator(
            method,
            USER_IDS[username],
            start_time=DAY_START,
            end_time=DAY_END,
            max_results=page_size,
            tweet_fields=x.TWEET_FIELDS,
            user_fields=x.USER_FIELDS,
            expansions=EXPANSIONS,
        )
    )


def test_get_user_by_username(client: tweepy.Client) -> None:
    response = client.get_user(username="acmesupport", user_fields=x.USER_FIELDS)
    assert str(response.data.id) == USER_IDS[SUPPORT]
    assert response.data.username == SUPPORT
    assert response.data.public_metrics["followers_count"] > 0
    assert response.errors == []


@pytest.mark.parametrize("endpoint", ["tweets", "mentions"])
@pytest.mark.parametrize("username", [BRAND, SUPPORT])
def test_one_day_paginated_equals_the_sample(
    client: tweepy.Client, username: str, endpoint: str
) -> None:
    pages = _paginate(client, username, endpoint, 100)
    seen: list[str] = []
    for page in pages:
        assert page.meta["result_count"] == len(page.data or [])
        for tweet in page.data or []:
            assert DAY_START <= tweet.created_at < DAY_END
            assert set(tweet.data) >= {"id", "text", "created_at", "author_id", "public_metrics"}
            seen.append(tweet.id)
    ids = [str(i) for i in seen]
    assert len(ids) == len(set(ids)), "an id repeats across pages"
    assert ids == sorted(ids, key=int, reverse=True), "not newest first"
    expected = _expected(username, endpoint)
    assert expected, "the sample has nothing on that day: the test would prove nothing"
    assert set(ids) == expected

    small = _paginate(client, username, endpoint, 5)
    assert len(small) == -(-len(expected) // 5), "max_results=5: one page per 5 posts"
    small_ids = [str(t.id) for page in small for t in page.data or []]
    assert len(small_ids) == len(set(small_ids))
    assert set(small_ids) == expected


def test_expansions_fill_includes(client: tweepy.Client) -> None:
    (page,) = _paginate(client, SUPPORT, "mentions", 100)
    authors = {str(t.author_id) for t in page.data}
    included = {str(u.id) for u in page.includes["users"]}
    assert authors <= included
    assert len(included) == len(page.includes["users"]), "includes.users not deduplicated"
    referenced = {str(r.id) for t in page.data for r in t.referenced_tweets or []}
    assert referenced <= {str(t.id) for t in page.includes["tweets"]}


def test_pages_are_stable(base_url: str) -> None:
    path = f"/2/users/{USER_IDS[SUPPORT]}/tweets"
    first = _get(base_url, path, max_results=5).json()
    token = first["meta"]["next_token"]
    again = [_get(base_url, path, max_results=5, pagination_token=token).json() for _ in "ab"]
    assert again[0] == again[1]
    assert int(again[0]["meta"]["newest_id"]) < int(first["meta"]["oldest_id"])


def test_default_fields_only_unless_asked(base_url: str) -> None:
    body = _get(base_url, f"/2/users/{USER_IDS[BRAND]}/tweets", max_results=5).json()
    assert {frozenset(t) for t in body["data"]} == {
        frozenset({"id", "text", "edit_history_tweet_ids"})
    }
    user = _get(base_url, f"/2/users/by/username/{BRAND}").json()["data"]
    assert set(user) == {"id", "name", "username"}


def test_since_and_until_ids_are_exclusive(base_url: str) -> None:
    tweets = [t for t in COMPANY.tweets if t["author_id"] == USER_IDS[BRAND]]
    tweets.sort(key=lambda t: int(t["id"]))
    low, high = tweets[3]["id"], tweets[8]["id"]
    path = f"/2/users/{USER_IDS[BRAND]}/tweets"
    body = _get(base_url, path, since_id=low, until_id=high, max_results=100).json()
    assert [t["id"] for t in body["data"]] == [t["id"] for t in reversed(tweets[4:8])]


def test_empty_result(base_url: str) -> None:
    body = _get(
        base_url,
        f"/2/users/{USER_IDS[BRAND]}/tweets",
        start_time="2020-01-01T00:00:00Z",
        end_time="2020-01-02T00:00:00Z",
    ).json()
    assert body == {"meta": {"result_count": 0}}


def test_unauthorized_without_bearer_token(base_url: str) -> None:
    for token in (None, ""):
        response = _get(base_url, f"/2/users/by/username/{BRAND}", token=token)
        assert response.status_code == 401
        assert response.json() == {
            "title": "Unauthorized",
            "type": "about:blank",
            "status": 401,
            "detail": "Unauthorized",
        }
    with pytest.raises(tweepy.Unauthorized):
        x.make_client("", base_url).get_user(username=BRAND)  # an empty token


def test_max_results_out_of_range(base_url: str, client: tweepy.Client) -> None:
    response = _get(base_url, f"/2/users/{USER_IDS[BRAND]}/tweets", max_results=500)
    assert response.status_code == 400
    body = response.json()
    assert body["title"] == "Invalid Request"
    assert body["type"] == "https://api.twitter.com/2/problems/invalid-request"
    assert body["errors"][0]["parameters"] == {"max_results": ["500"]}
    with pytest.raises(tweepy.BadRequest):
        client.get_users_mentions(USER_IDS[SUPPORT], max_results=500)


def test_unknown_user_and_tweet_and_route(base_url: str) -> None:
    body = _get(base_url, "/2/users/by/username/nobody_here").json()
    (error,) = body["errors"]
    assert "data" not in body
    assert error["title"] == "Not Found Error"
    assert error["type"] == "https://api.twitter.com/2/problems/resource-not-found"
    known = COMPANY.tweets[0]["id"]
    body = _get(base_url, "/2/tweets", ids=f"{known},1").json()
    assert [t["id"] for t in body["data"]] == [known]
    assert [e["resource_id"] for e in body["errors"]] == ["1"]
    response = _get(base_url, "/2/spaces/search")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")


def test_rate_limit_headers_on_every_response(base_url: str) -> None:
    responses = [
        _get(base_url, f"/2/users/by/username/{BRAND}"),
        _get(base_url, f"/2/users/by/username/{BRAND}", token=None),
        _get(base_url, "/2/tweets"),
        _get(base_url, "/2/nothing"),
    ]
    for response in responses:
        assert response.headers["content-type"].startswith("application/json")
        limit = int(response.headers["x-rate-limit-limit"])
        assert 0 <= int(response.headers["x-rate-limit-remaining"]) < limit
        assert int(response.headers["x-rate-limit-reset"]) > 0
    first, second = (
        int(_get(base_url, "/2/tweets", ids="1").headers["x-rate-limit-remaining"]) for _ in "ab"
    )
    assert second == first - 1


# --- conformance to the official OpenAPI document ------------------------------------------


@cache
def _openapi() -> dict:
    if not OPENAPI.is_file():
        pytest.fail(f"the X API v2 OpenAPI document is missing: {OPENAPI}")
    return json.loads(OPENAPI.read_text())


def _checker() -> FormatChecker:
    checker = FormatChecker()

    @checker.checks("date-time", raises=ValueError)
    def _date_time(value: object) -> bool:
        return not isinstance(value, str) or bool(
            re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", value)
            and datetime.fromisoformat(value.replace("Z", "+00:00"))
        )

    @checker.checks("uri")
    def _uri(value: object) -> bool:
        return not isinstance(value, str) or bool(urlsplit(value).scheme)

    return checker


def _validator(
    path: str, status: str = "200", media_type: str = "application/json"
) -> Draft4Validator:
    """A validator for a documented response of GET path, $refs resolved within the document."""
    doc = _openapi()
    ref = doc["paths"][path]["get"]["responses"][status]["content"][media_type]["schema"]["$ref"]
    registry = Registry().with_resource("urn:x-api-v2", Resource(doc, DRAFT4))
    return Draft4Validator(
        {"$ref": "urn:x-api-v2" + ref}, registry=registry, format_checker=_checker()
    )


def _assert_valid(validator: Draft4Validator, body: dict) -> None:
    errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:10])


def _conformance_cases() -> list[tuple[str, str, dict]]:
    brand, support = USER_IDS[BRAND], USER_IDS[SUPPORT]
    fields = {
        "tweet.fields": ",".join(x.TWEET_FIELDS),
        "user.fields": ",".join(x.USER_FIELDS),
        "expansions": ",".join(EXPANSIONS),
    }
    ids = ",".join(t["id"] for t in COMPANY.tweets[:60]) + ",1"
    user_fields = {"user.fields": ",".join(x.USER_FIELDS)}
    return [
        ("/2/users/by/username/{username}", f"/2/users/by/username/{SUPPORT}", user_fields),
        ("/2/users/by/username/{username}", "/2/users/by/username/nobody_here", user_fields),
        ("/2/users/{id}/tweets", f"/2/users/{brand}/tweets", fields | {"max_results": "100"}),
        ("/2/users/{id}/tweets", f"/2/users/{support}/tweets", fields | {"max_results": "100"}),
        ("/2/users/{id}/mentions", f"/2/users/{support}/mentions", fields | {"max_results": "100"}),
        ("/2/users/{id}/mentions", f"/2/users/{brand}/mentions", fields | {"max_results": "100"}),
        ("/2/tweets", "/2/tweets", fields | {"ids": ids}),
    ]


@pytest.mark.parametrize(("template", "path", "params"), _conformance_cases())
def test_200_responses_match_the_openapi_document(
    base_url: str, template: str, path: str, params: dict
) -> None:
    validator = _validator(template)
    response = _get(base_url, path, **params)
    assert response.status_code == 200
    body = response.json()
    assert body.get("data") or body.get("errors")
    _assert_valid(validator, body)
    while "next_token" in body.get("meta", {}):  # every page of the timelines
        response = _get(base_url, path, **params, pagination_token=body["meta"]["next_token"])
        body = response.json()
        _assert_valid(validator, body)


@pytest.mark.parametrize(
    ("template", "path", "params", "token"),
    [
        ("/2/users/{id}/tweets", "/2/users/1/tweets", {"max_results": "500"}, "t"),
        ("/2/users/{id}/mentions", "/2/users/1/mentions", {"start_time": "yesterday"}, "t"),
        ("/2/tweets", "/2/tweets", {}, None),
    ],
)
def test_error_responses_match_the_openapi_problem(
    base_url: str, template: str, path: str, params: dict, token: str | None
) -> None:
    response = _get(base_url, path, token=token, **params)
    assert response.status_code in (400, 401)
    _assert_valid(_validator(template, "default", "application/problem+json"), response.json())


def test_serve_prints_its_address_and_stops_on_sigterm() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "extract.cli", "sandbox", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        match = re.fullmatch(r"sandbox listening on (http://127\.0\.0\.1:\d+)\n", line)
        assert match, line
        response = _get(match[1], f"/2/users/by/username/{BRAND}", token="secret-token")
        assert response.json()["data"]["username"] == BRAND
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert "secret-token" not in process.stderr.read()
    finally:
        process.kill()
        process.wait()


def test_custom_data_and_rate_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox, "RATE_LIMIT", 2)
    user = {"id": "42", "name": "Solo", "username": "solo"}
    server = make_server(0, users=[user], tweets=[])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        first = _get(base, "/2/users/42/mentions")
        assert first.json() == {"meta": {"result_count": 0}}
        assert first.headers["x-rate-limit-remaining"] == "1"
        assert _get(base, "/2/users/42/mentions").headers["x-rate-limit-remaining"] == "0"
        third = _get(base, "/2/users/42/mentions")
        assert third.status_code == 429
        assert third.json()["title"] == "Too Many Requests"
        assert _get(base, "/2/users/by/username/solo").json()["data"] == user  # own counter
    finally:
        server.shutdown()
        server.server_close()
