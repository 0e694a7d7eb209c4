"""The X API v2 sandbox, over real HTTP with the real tweepy client (no mocks)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import tweepy
from jsonschema import Draft4Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from devtools import x_sandbox as sandbox
from devtools.sample import (
    BRAND,
    SAMPLE_DAYS,
    SAMPLE_START,
    SUPPORT,
    SUPPORT_SITE_HOST,
    SampleCompany,
    access_log_lines,
    generate,
    latest_versions,
    parse_stamp,
)
from devtools.x_sandbox import FixtureError, SandboxServer, load_fixture, make_server
from engagement import cli
from engagement.landing import Endpoint
from engagement.settings import REAL_X_API
from extract import x
from tests.attribution import attribute, own_links, tco_sessions

OPENAPI = Path(__file__).resolve().parents[2] / "shared" / "data" / "reference"
OPENAPI = OPENAPI / "x-api-v2-openapi.json"
DAY_START = datetime.combine(SAMPLE_START + timedelta(days=2), datetime.min.time(), UTC)
DAY_END = DAY_START + timedelta(days=1)
EXPANSIONS = [*x.EXPANSIONS, "entities.mentions.username"]
COMPANY = generate()
USER_IDS = {u["username"]: u["id"] for u in COMPANY.users}
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "x_fixture.json"
FIELDS = {
    "tweet.fields": ",".join(x.TWEET_FIELDS),
    "user.fields": ",".join(x.USER_FIELDS),
    "expansions": ",".join(EXPANSIONS),
}


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


@contextmanager
def _serving(company=COMPANY, **options) -> Iterator[tuple[SandboxServer, str]]:
    """A sandbox of its own for a test that changes its data, faults or limits."""
    server = make_server(0, company, **options)
    try:
        yield server, server.start()
    finally:
        server.stop()


def _client(base_url: str, **options) -> tweepy.Client:
    client = tweepy.Client(bearer_token="t", **options)
    client.session.mount(f"{REAL_X_API}/", x.Reroute(base_url))
    return client


def _control(base_url: str, method: str, path: str, body: object = None) -> requests.Response:
    return requests.request(method, base_url + path, json=body, timeout=10)


def _expected(username: str, endpoint: str) -> set[str]:
    """An independent filter of the generated sample: what the endpoint should return."""
    user_id = USER_IDS[username]
    found = set()
    for tweet in latest_versions(COMPANY.tweets):
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


def test_custom_data_and_rate_limit() -> None:
    user = {"id": "42", "name": "Solo", "username": "solo"}
    with _serving(users=[user], tweets=[], rate_limits={Endpoint.MENTIONS: 2}) as (_, base):
        first = _get(base, "/2/users/42/mentions")
        assert first.json() == {"meta": {"result_count": 0}}
        assert first.headers["x-rate-limit-limit"] == "2"
        assert first.headers["x-rate-limit-remaining"] == "1"
        assert _get(base, "/2/users/42/mentions").headers["x-rate-limit-remaining"] == "0"
        third = _get(base, "/2/users/42/mentions")
        assert third.status_code == 429
        assert third.json() == sandbox.TOO_MANY
        assert third.headers["x-rate-limit-remaining"] == "0"
        assert _get(base, "/2/users/by/username/solo").json()["data"] == user  # own counter


# --- reach caps ----------------------------------------------------------------------------


def test_timelines_reach_only_the_most_recent_posts_and_mentions() -> None:
    own = [t for t in latest_versions(COMPANY.tweets) if t["author_id"] == USER_IDS[BRAND]]
    newest = sorted((t["id"] for t in own), key=int, reverse=True)
    with _serving(timeline_cap=7, mentions_cap=4) as (_, base):
        client = _client(base)
        pages = list(
            tweepy.Paginator(
                client.get_users_tweets, USER_IDS[BRAND], max_results=5, tweet_fields=["created_at"]
            )
        )
        assert [str(t.id) for p in pages for t in p.data] == newest[:7]
        assert len(pages) == 2
        # the cap is applied before the time bounds: an older interval finds nothing
        oldest_reached = parse_stamp(next(t for t in own if t["id"] == newest[6])["created_at"])
        body = _get(
            base,
            f"/2/users/{USER_IDS[BRAND]}/tweets",
            start_time=SAMPLE_START.isoformat() + "T00:00:00Z",
            end_time=oldest_reached.strftime("%Y-%m-%dT%H:%M:%SZ"),
        ).json()
        assert body == {"meta": {"result_count": 0}}
        mentions = _get(base, f"/2/users/{USER_IDS[SUPPORT]}/mentions", max_results=100).json()
        assert mentions["meta"]["result_count"] == 4
        _assert_valid(_validator("/2/users/{id}/mentions"), mentions)


# --- rate limits and faults ----------------------------------------------------------------


def test_rate_limits_are_the_real_ones_for_app_only_auth(base_url: str) -> None:
    paths = {
        "GET /2/users/by/username/:username": f"/2/users/by/username/{BRAND}",
        "GET /2/users/:id/tweets": f"/2/users/{USER_IDS[BRAND]}/tweets",
        "GET /2/users/:id/mentions": f"/2/users/{USER_IDS[BRAND]}/mentions",
        "GET /2/tweets": "/2/tweets?ids=1",
    }
    limits = {name: _get(base_url, path).headers for name, path in paths.items()}
    assert {k: int(h["x-rate-limit-limit"]) for k, h in limits.items()} == {
        "GET /2/users/by/username/:username": 300,
        "GET /2/users/:id/tweets": 10_000,
        "GET /2/users/:id/mentions": 450,
        "GET /2/tweets": 3_500,
    }
    assert {endpoint.request for endpoint in sandbox.RATE_LIMITS} == set(paths)
    for headers in limits.values():
        assert 0 < int(headers["x-rate-limit-reset"]) - time.time() <= 15 * 60


def test_exhausted_window_resets_and_tweepy_can_wait_for_it() -> None:
    window = 3  # seconds: long enough for the next two calls to land in it on a busy machine
    with _serving(rate_limits={Endpoint.TWEETS: 1}, rate_window=window) as (_, base):
        path = f"/2/users/{USER_IDS[BRAND]}/tweets"
        assert _get(base, path).status_code == 200
        over = _get(base, path)
        assert over.status_code == 429
        _assert_valid(
            _validator("/2/users/{id}/tweets", "default", "application/problem+json"), over.json()
        )
        with pytest.raises(tweepy.TooManyRequests):
            _client(base).get_users_tweets(USER_IDS[BRAND])
        started = time.monotonic()
        waited = _client(base, wait_on_rate_limit=True).get_users_tweets(USER_IDS[BRAND])
        assert waited.data and time.monotonic() - started < window + 5  # not 15 minutes


def test_injected_429_carries_the_real_body_and_headers() -> None:
    with _serving() as (_, base):
        fault = {"path": "/mentions$", "kind": "429", "times": 2, "reset_in": 30}
        added = _control(base, "POST", "/_sandbox/faults", fault)
        assert added.status_code == 200
        assert added.json() == {"faults": [fault]}
        path = f"/2/users/{USER_IDS[SUPPORT]}/mentions"
        assert _get(base, f"/2/users/{USER_IDS[SUPPORT]}/tweets").status_code == 200
        for left in (1, 0):
            response = _get(base, path)
            assert response.status_code == 429
            assert response.json() == sandbox.TOO_MANY
            assert response.headers["x-rate-limit-remaining"] == "0"
            assert 29 <= int(response.headers["x-rate-limit-reset"]) - time.time() <= 31
            _assert_valid(
                _validator("/2/users/{id}/mentions", "default", "application/problem+json"),
                response.json(),
            )
            faults = _control(base, "GET", "/_sandbox/faults").json()["faults"]
            assert [f["times"] for f in faults] == ([left] if left else [])
        assert _get(base, path).status_code == 200
        _control(base, "POST", "/_sandbox/faults", fault)
        with pytest.raises(tweepy.TooManyRequests) as caught:
            _client(base).get_users_mentions(USER_IDS[SUPPORT])
        assert caught.value.reset_time > time.time()
        assert _control(base, "DELETE", "/_sandbox/faults").json() == {"faults": []}
        assert _get(base, path).status_code == 200


@pytest.mark.parametrize("kind", ["500", "503"])
def test_injected_server_errors(kind: str) -> None:
    with _serving(faults=[{"path": r"^/2/tweets$", "kind": kind, "times": 1}]) as (_, base):
        known = COMPANY.tweets[0]["id"]
        response = _get(base, "/2/tweets", ids=known)
        assert response.status_code == int(kind)
        assert response.json()["status"] == int(kind)
        assert response.json()["title"] in ("Internal Server Error", "Service Unavailable")
        assert "x-rate-limit-remaining" in response.headers
        _assert_valid(
            _validator("/2/tweets", "default", "application/problem+json"), response.json()
        )
        _control(base, "POST", "/_sandbox/faults", {"path": "/2/tweets", "kind": kind})
        with pytest.raises(tweepy.TwitterServerError):
            _client(base).get_tweets([known])
        assert _client(base).get_tweets([known]).data[0].id == int(known)


def test_injected_malformed_page_and_dropped_connection() -> None:
    with _serving() as (_, base):
        path = f"/2/users/{USER_IDS[BRAND]}/tweets"
        _control(base, "POST", "/_sandbox/faults", {"path": "/tweets", "kind": "malformed"})
        page = _get(base, path, max_results=5)
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("application/json")
        assert page.text.startswith('{"data":[')
        with pytest.raises(requests.JSONDecodeError):
            page.json()
        _control(base, "POST", "/_sandbox/faults", {"path": "/tweets", "kind": "drop", "times": 2})
        with pytest.raises(requests.ConnectionError):
            _get(base, path)
        with pytest.raises(requests.ConnectionError):
            _client(base).get_users_tweets(USER_IDS[BRAND])
        assert _get(base, path).status_code == 200
        log = _control(base, "GET", "/_sandbox/requests").json()
        assert [(e["status"], e.get("fault")) for e in log] == [
            (200, "malformed"),
            (None, "drop"),
            (None, "drop"),
            (200, None),
        ]


def test_fault_and_control_validation() -> None:
    assert sandbox.parse_fault_spec("429:2:/2/users/[0-9]+/mentions") == {
        "path": "/2/users/[0-9]+/mentions",
        "kind": "429",
        "times": 2,
        "reset_in": 1,
    }
    assert sandbox.parse_fault_spec('{"path": "/2/tweets", "kind": "drop"}')["times"] == 1
    for bad in ("teapot:1:/2", "429:x:/2", '{"kind": "500", "path": "("}', "{oops"):
        with pytest.raises(FixtureError):
            sandbox.parse_fault_spec(bad)
    with _serving() as (_, base):
        for body in ({"path": "/x", "kind": "418"}, {"path": "/x", "kind": "500", "times": 0}):
            response = _control(base, "POST", "/_sandbox/faults", body)
            assert response.status_code == 400
            assert "fault" in response.json()["error"]
        assert _control(base, "POST", "/_sandbox/tweets", [{"id": "5"}]).status_code == 400
        assert _control(base, "DELETE", "/_sandbox/tweets/123").status_code == 404
        assert _control(base, "GET", "/_sandbox/nothing").status_code == 404
        assert _control(base, "GET", "/_sandbox/requests").json() == [], "control not logged"


def test_request_log_shows_paging_and_never_the_token() -> None:
    secret = "secret-bearer-token-9f3e"
    with _serving() as (_, base):
        client = tweepy.Client(bearer_token=secret)
        client.session.mount(f"{REAL_X_API}/", x.Reroute(base))
        pages = list(
            tweepy.Paginator(client.get_users_mentions, USER_IDS[SUPPORT], max_results=100)
        )
        response = _control(base, "GET", "/_sandbox/requests")
        assert secret not in response.text
        log = response.json()
        assert len(log) == len(pages) > 1
        assert {e["method"] for e in log} == {"GET"}
        assert {e["path"] for e in log} == {f"/2/users/{USER_IDS[SUPPORT]}/mentions"}
        assert "pagination_token" not in log[0]["query"]
        tokens = [e["query"]["pagination_token"] for e in log[1:]]
        assert tokens == [p.meta["next_token"] for p in pages[:-1]]
        assert all(e["query"]["max_results"] == "100" and e["status"] == 200 for e in log)
        assert [e["time"] for e in log] == sorted(e["time"] for e in log)
        assert _control(base, "DELETE", "/_sandbox/requests").json() == []
        assert _control(base, "GET", "/_sandbox/requests").json() == []


# --- edits and deletions -------------------------------------------------------------------


def _day_ids(client: tweepy.Client, user_id: str, start: datetime, end: datetime) -> list[str]:
    pages = tweepy.Paginator(
        client.get_users_tweets, user_id, start_time=start, end_time=end, max_results=100
    )
    return [str(t.id) for page in pages for t in page.data or []]


def test_sample_edits_timelines_serve_the_latest_version(client: tweepy.Client) -> None:
    chains = {tuple(t["edit_history_tweet_ids"]) for t in COMPANY.tweets}
    edited = [chain for chain in chains if len(chain) > 1]
    assert edited
    by_id = {t["id"]: t for t in COMPANY.tweets}
    for chain in edited:
        author = by_id[chain[0]]["author_id"]
        day = parse_stamp(by_id[chain[0]]["created_at"]).replace(hour=0, minute=0, second=0)
        ids = _day_ids(client, author, day, day + timedelta(days=1))
        assert chain[-1] in ids and not set(chain[:-1]) & set(ids)
        looked_up = client.get_tweets(list(chain), tweet_fields=x.TWEET_FIELDS)
        assert [str(t.id) for t in looked_up.data] == list(chain)
        assert {tuple(map(str, t.edit_history_tweet_ids)) for t in looked_up.data} == {chain}


def test_edit_metrics_and_delete_through_the_control_endpoints() -> None:
    brand = USER_IDS[BRAND]
    original = next(
        t
        for t in reversed(latest_versions(COMPANY.tweets))
        if t["author_id"] == brand and "referenced_tweets" not in t
    )
    posted = parse_stamp(original["created_at"])
    edited_at = posted + timedelta(minutes=5)
    new_id = str(int(original["id"]) + (300_000 << 22))  # five minutes later, as a snowflake
    edit = dict(
        original,
        id=new_id,
        text=original["text"] + " (updated)",
        created_at=edited_at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        edit_history_tweet_ids=[original["id"], new_id],
    )
    day = posted.replace(hour=0, minute=0, second=0)
    with _serving() as (_, base):
        client = _client(base)
        assert original["id"] in _day_ids(client, brand, day, day + timedelta(days=1))
        stored = _control(base, "POST", "/_sandbox/tweets", [edit])
        assert stored.json() == {"stored": [new_id]}
        ids = _day_ids(client, brand, day, day + timedelta(days=1))
        assert new_id in ids and original["id"] not in ids
        body = _get(base, "/2/tweets", ids=f"{original['id']},{new_id}", **FIELDS).json()
        assert [t["text"] for t in body["data"]] == [original["text"], edit["text"]]
        assert [t["edit_history_tweet_ids"] for t in body["data"]] == [[original["id"], new_id]] * 2
        _assert_valid(_validator("/2/tweets"), body)

        metrics = dict(edit["public_metrics"], like_count=999_999)
        _control(base, "POST", "/_sandbox/tweets", dict(edit, public_metrics=metrics))
        fresh = client.get_tweets([new_id], tweet_fields=["public_metrics"]).data[0]
        assert fresh.public_metrics["like_count"] == 999_999

        deleted = _control(base, "DELETE", f"/_sandbox/tweets/{new_id}")
        assert deleted.json() == {"deleted": [original["id"], new_id]}, "the whole edit chain"
        assert not {original["id"], new_id} & set(
            _day_ids(client, brand, day, day + timedelta(days=1))
        )
        response = client.get_tweets([original["id"], new_id])
        assert response.data is None
        assert response.errors == [
            {
                "value": i,
                "detail": f"Could not find tweet with ids: [{i}].",
                "title": "Not Found Error",
                "resource_type": "tweet",
                "parameter": "ids",
                "resource_id": i,
                "type": "https://api.twitter.com/2/problems/resource-not-found",
            }
            for i in (original["id"], new_id)
        ]


def test_deleted_referenced_post_and_partial_lookup_conform() -> None:
    reply = next(t for t in COMPANY.tweets if "in_reply_to_user_id" in t)
    parent = reply["referenced_tweets"][0]["id"]
    other = COMPANY.tweets[5]["id"]
    with _serving() as (server, base):
        assert server.delete_tweet(parent) == [parent]
        body = _get(base, "/2/tweets", ids=f"{reply['id']},{parent},{other},7", **FIELDS).json()
        assert [t["id"] for t in body["data"]] == [reply["id"], other]
        errors = [(e["parameter"], e["resource_id"]) for e in body["errors"]]
        assert errors == [("ids", parent), ("ids", "7"), ("referenced_tweets.id", parent)]
        _assert_valid(_validator("/2/tweets"), body)
        server.add_tweets([{**COMPANY.tweets[5], "text": "replaced in Python"}])
        assert _get(base, "/2/tweets", ids=other).json()["data"][0]["text"] == "replaced in Python"


# --- fixtures ------------------------------------------------------------------------------


def _fixture_expected(users: list[dict], tweets: list[dict]) -> dict[tuple[str, str], list[str]]:
    """Own posts and mentions per account, from the fixture's definition (latest versions)."""
    superseded = {old for t in tweets for old in t["edit_history_tweet_ids"][:-1]}
    current = sorted(
        (t for t in tweets if t["id"] not in superseded), key=lambda t: int(t["id"]), reverse=True
    )
    expected = {}
    for user in users:
        named = [
            t["id"]
            for t in current
            if t["author_id"] != user["id"]
            and user["username"]
            in {m["username"] for m in t.get("entities", {}).get("mentions", [])}
        ]
        own = [t["id"] for t in current if t["author_id"] == user["id"]]
        expected[(user["username"], "tweets")], expected[(user["username"], "mentions")] = (
            own,
            named,
        )
    return expected


def test_fixture_is_served_like_the_api() -> None:
    users, tweets = load_fixture(FIXTURE)
    expected = _fixture_expected(users, tweets)
    assert expected[("globexcorp", "tweets")] and expected[("globexhelp", "mentions")]
    edited = [t for t in tweets if len(t["edit_history_tweet_ids"]) > 1]
    assert edited, "the example fixture holds an edited post"
    types = {r["type"] for t in tweets for r in t.get("referenced_tweets", [])}
    assert types == {"replied_to", "quoted", "retweeted"}
    with _serving(SampleCompany(users, tweets)) as (_, base):
        client = _client(base)
        for user in users:
            found = client.get_user(username=user["username"], user_fields=x.USER_FIELDS)
            assert str(found.data.id) == user["id"]
            for endpoint, method in (
                ("tweets", client.get_users_tweets),
                ("mentions", client.get_users_mentions),
            ):
                pages = list(
                    tweepy.Paginator(
                        method,
                        user["id"],
                        max_results=5,
                        tweet_fields=x.TWEET_FIELDS,
                        user_fields=x.USER_FIELDS,
                        expansions=x.EXPANSIONS,
                    )
                )
                ids = [str(t.id) for p in pages for t in p.data or []]
                assert ids == expected[(user["username"], endpoint)], (user, endpoint)
            body = _get(base, f"/2/users/{user['id']}/tweets", max_results=100, **FIELDS).json()
            _assert_valid(_validator("/2/users/{id}/tweets"), body)
        original = edited[0]["edit_history_tweet_ids"][0]
        looked_up = client.get_tweets([original], tweet_fields=x.TWEET_FIELDS).data[0]
        assert [str(i) for i in looked_up.edit_history_tweet_ids] == edited[0][
            "edit_history_tweet_ids"
        ]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("not json", "not JSON"),
        ("[]", "expected a JSON object"),
        ({"users": []}, "missing key(s) tweets"),
        ({"users": {}, "tweets": []}, "must be JSON lists"),
        ({"users": [{"id": "1", "name": "A"}], "tweets": []}, "user without 'username'"),
        ({"users": [{"id": "x", "name": "A", "username": "a"}], "tweets": []}, "not 1-19 digits"),
        ("two users one id", "user id repeated: 1"),
        ("tweet without created_at", "tweets[0]: tweet without 'created_at'"),
        ("unknown author", "author_id 2 is not in users"),
        ("bad time", "is not RFC 3339"),
        ("repeated tweet", "tweet id repeated: 10"),
        ("latest version missing", "the latest version of its edit history, 11"),
    ],
)
def test_fixture_errors_are_clear(tmp_path: Path, document: object, message: str) -> None:
    user = {"id": "1", "name": "A", "username": "a"}
    tweet = {"id": "10", "author_id": "1", "created_at": "2026-11-02T10:00:00.000Z", "text": "hi"}
    cases = {
        "two users one id": {"users": [user, dict(user, username="b")], "tweets": []},
        "tweet without created_at": {"users": [user], "tweets": [{"id": "10", "author_id": "1"}]},
        "unknown author": {"users": [user], "tweets": [dict(tweet, author_id="2")]},
        "bad time": {"users": [user], "tweets": [dict(tweet, created_at="yesterday")]},
        "repeated tweet": {"users": [user], "tweets": [tweet, tweet]},
        "latest version missing": {
            "users": [user],
            "tweets": [dict(tweet, edit_history_tweet_ids=["10", "11"])],
        },
    }
    document = cases.get(document, document) if isinstance(document, str) else document
    path = tmp_path / "fixture.json"
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    with pytest.raises(FixtureError) as caught:
        load_fixture(path)
    assert message in str(caught.value)
    assert str(path) in str(caught.value)


def test_cli_refuses_a_bad_fixture_or_fault(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"users": []}')
    assert cli.main(["sandbox", "--port", "0", "--fixture", str(bad)]) == 2
    assert "missing key(s) tweets" in capsys.readouterr().err
    assert cli.main(["sandbox", "--port", "0", "--fault", "404:1:/2/"]) == 2
    assert "fault kind '404' is not one of" in capsys.readouterr().err


def test_cli_serves_a_fixture_with_caps_and_faults_and_stops_on_sigterm() -> None:
    users, tweets = load_fixture(FIXTURE)
    expected = _fixture_expected(users, tweets)
    command = [
        *(sys.executable, "-m", "engagement.cli", "sandbox", "--port", "0"),
        *("--fixture", str(FIXTURE), "--timeline-cap", "2", "--mentions-cap", "1"),
        *("--fault", "503:1:/mentions$", "--fault", '{"path": "/by/username/", "kind": "429"}'),
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        match = re.fullmatch(r"sandbox listening on (http://127\.0\.0\.1:\d+)\n", line)
        assert match, line
        base = match[1]
        token = "secret-token-5c1d"
        assert _get(base, "/2/users/by/username/globexcorp", token=token).status_code == 429
        user = _get(base, "/2/users/by/username/globexcorp", token=token).json()["data"]
        assert user["username"] == "globexcorp"
        brand = user["id"]
        tweets_page = _get(base, f"/2/users/{brand}/tweets", max_results=100).json()
        assert [t["id"] for t in tweets_page["data"]] == expected[("globexcorp", "tweets")][:2]
        assert _get(base, f"/2/users/{brand}/mentions").status_code == 503
        mentions = _get(base, f"/2/users/{brand}/mentions").json()
        assert [t["id"] for t in mentions["data"]] == expected[("globexcorp", "mentions")][:1]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert token not in process.stderr.read()
    finally:
        process.kill()
        process.wait()


# --- user context: OAuth 2.0 with PKCE, DMs, private metrics, usage and billing ------------

TOKEN_URL = f"{REAL_X_API}/2/oauth2/token"
SAMPLE_END = datetime.combine(SAMPLE_START + timedelta(days=SAMPLE_DAYS), datetime.min.time(), UTC)
SCOPES = ["tweet.read", "users.read", "dm.read", "offline.access"]
REDIRECT = "http://127.0.0.1:9/callback"
PRIVATE = "non_public_metrics,organic_metrics"


@pytest.fixture(autouse=True)
def _oauth_over_http(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the sandbox speaks plain http


def _handler(base: str, scopes: list[str] = SCOPES, secret: str | None = "s3cr3t"):
    handler = tweepy.OAuth2UserHandler(
        client_id="engagement-mart", redirect_uri=REDIRECT, scope=scopes, client_secret=secret
    )
    handler.mount(f"{REAL_X_API}/", x.Reroute(base))
    return handler


def _approve(base: str, handler, username: str) -> str:
    """The redirect the browser follows once the user approves, as the product would get it."""
    url = handler.get_authorization_url().replace("https://twitter.com", base)
    response = requests.get(url, params={"sandbox_user": username}, allow_redirects=False)
    assert response.status_code == 302, response.text
    return response.headers["location"]


def _sign_in(base: str, username: str, scopes: list[str] = SCOPES) -> dict:
    handler = _handler(base, scopes)
    return handler.fetch_token(_approve(base, handler, username))


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _as(base: str, path: str, token: str, **params) -> requests.Response:
    return requests.get(base + path, params=params, headers=_bearer(token), timeout=10)


def _post_token(base: str, **form) -> requests.Response:
    return requests.post(base + "/2/oauth2/token", data=form, auth=("engagement-mart", "s"))


def _problem(template: str) -> Draft4Validator:
    return _validator(template, "default", "application/problem+json")


def test_authorize_token_refresh_with_tweepy_rotates_refresh_tokens() -> None:
    with _serving() as (server, base):
        handler = _handler(base)
        token = handler.fetch_token(_approve(base, handler, SUPPORT))
        assert token["token_type"] == "bearer" and token["expires_in"] == 7200
        assert token["scope"] == SCOPES  # oauthlib splits X's space-separated scope
        me = _as(base, "/2/users/me", token["access_token"], **{"user.fields": "created_at"})
        assert me.status_code == 200
        _assert_valid(_validator("/2/users/me"), me.json())
        assert me.json()["data"]["username"] == SUPPORT
        assert set(me.json()["data"]) == {"id", "name", "username", "created_at"}

        fresh = handler.refresh_token(
            TOKEN_URL, refresh_token=token["refresh_token"], auth=handler.auth
        )
        assert fresh["access_token"] != token["access_token"]
        assert fresh["refresh_token"] != token["refresh_token"]
        reused = _post_token(base, grant_type="refresh_token", refresh_token=token["refresh_token"])
        assert reused.status_code == 400
        assert reused.json() == {
            "error": "invalid_request",
            "error_description": "Value passed for the token was invalid.",
        }
        again = _post_token(base, grant_type="refresh_token", refresh_token=fresh["refresh_token"])
        assert again.status_code == 200 and "refresh_token" in again.json()
        assert _as(base, "/2/users/me", fresh["access_token"]).status_code == 200

        (grant,) = _control(base, "GET", "/_sandbox/oauth/grants").json()["grants"]
        assert grant["username"] == SUPPORT and grant["refreshed"] == 2
        assert grant["scopes"] == SCOPES and grant["revoked"] is False
        secrets = [token["access_token"], token["refresh_token"], fresh["refresh_token"]]
        for path in ("/_sandbox/oauth/grants", "/_sandbox/requests"):
            text = _control(base, "GET", path).text
            assert not any(secret in text for secret in secrets), path
        log = server.request_log()
        assert log[-1]["auth"] == "user" and log[-1]["username"] == SUPPORT
        assert {"method": "POST", "path": "/2/oauth2/token"}.items() <= log[1].items()


def test_offline_access_alone_brings_a_refresh_token_and_public_clients_work() -> None:
    with _serving() as (_, base):
        handler = _handler(base, ["tweet.read", "users.read"], secret=None)
        token = handler.fetch_token(_approve(base, handler, BRAND))
        assert "refresh_token" not in token
        assert _as(base, "/2/users/me", token["access_token"]).json()["data"]["username"] == BRAND


def test_authorize_checks_its_parameters_offers_consent_and_denial() -> None:
    with _serving() as (_, base):
        handler = _handler(base)
        url = handler.get_authorization_url().replace("https://twitter.com", base)
        consent = requests.get(url, timeout=10)
        assert consent.status_code == 200 and "text/html" in consent.headers["content-type"]
        assert (
            f"Authorize as @{BRAND}" in consent.text and f"Authorize as @{SUPPORT}" in consent.text
        )
        denied = requests.get(url, params={"sandbox_deny": "1"}, allow_redirects=False)
        state = parse_qs_one(urlsplit(url).query)["state"]
        assert denied.status_code == 302
        assert parse_qs_one(urlsplit(denied.headers["location"]).query) == {
            "error": "access_denied",
            "state": state,
        }
        for change, message in (
            ({"scope": "tweet.read dm.sniff"}, "Invalid scope: dm.sniff"),
            ({"response_type": "token"}, "Invalid response_type"),
            ({"code_challenge": ""}, "Missing required parameter: code_challenge"),
            ({"redirect_uri": "callback"}, "Invalid redirect_uri"),
            ({"sandbox_user": "nobody_here"}, "no user @nobody_here"),
        ):
            params = parse_qs_one(urlsplit(url).query) | change
            bad = requests.get(base + "/i/oauth2/authorize", params=params, timeout=10)
            assert bad.status_code == 400 and message in bad.text, (change, bad.text)

        location = _approve(base, handler, SUPPORT)
        code = parse_qs_one(urlsplit(location).query)["code"]
        verifier = handler._client.code_verifier
        exchange = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
        assert _post_token(base, **exchange, code_verifier="x" * 50).status_code == 400
        # the refused attempt spent the code: single use
        assert _post_token(base, **exchange, code_verifier=verifier).status_code == 400
        location = _approve(base, handler, SUPPORT)
        code = parse_qs_one(urlsplit(location).query)["code"]
        verifier = handler._client.code_verifier
        _control(base, "POST", "/_sandbox/clock", {"advance_seconds": 31})
        late = _post_token(base, **exchange | {"code": code}, code_verifier=verifier)
        assert late.status_code == 400, "codes live 30 s"
        nobody = requests.post(base + "/2/oauth2/token", data=exchange, timeout=10)
        assert nobody.status_code == 401 and nobody.json()["error"] == "unauthorized_client"


def parse_qs_one(query: str) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(query).items()}


def test_clock_drives_expiry() -> None:
    with _serving(access_token_lifetime=600) as (_, base):
        clock = _control(base, "GET", "/_sandbox/clock").json()["now"]
        assert SAMPLE_END <= parse_stamp(clock) < SAMPLE_END + timedelta(minutes=1)
        token = _sign_in(base, SUPPORT)
        assert token["expires_in"] == 600
        _control(base, "POST", "/_sandbox/clock", {"advance_seconds": 590})
        assert _as(base, "/2/users/me", token["access_token"]).status_code == 200
        _control(base, "POST", "/_sandbox/clock", {"advance_seconds": 11})
        expired = _as(base, "/2/users/me", token["access_token"])
        assert expired.status_code == 401 and expired.json() == sandbox.UNAUTHORIZED
        _assert_valid(_problem("/2/users/me"), expired.json())
        refreshed = _post_token(
            base, grant_type="refresh_token", refresh_token=token["refresh_token"]
        ).json()
        assert _as(base, "/2/users/me", refreshed["access_token"]).status_code == 200
        moved = _control(base, "POST", "/_sandbox/clock", {"now": "2027-01-01T00:00:00Z"})
        assert moved.json()["now"].startswith("2027-01-01T00:00:0")
        for bad in ({"now": "2027-01-01"}, {"advance_seconds": "1"}, {"later": 1}):
            assert _control(base, "POST", "/_sandbox/clock", bad).status_code == 400


def test_revocation_by_the_app_and_by_the_user() -> None:
    with _serving() as (_, base):
        token = _sign_in(base, SUPPORT)
        revoke = requests.post(
            base + "/2/oauth2/revoke",
            data={"token": token["access_token"]},
            auth=("engagement-mart", "s"),
            timeout=10,
        )
        assert revoke.json() == {"revoked": True}
        assert _as(base, "/2/users/me", token["access_token"]).status_code == 401
        renewed = _post_token(
            base, grant_type="refresh_token", refresh_token=token["refresh_token"]
        )
        assert renewed.status_code == 200, "revoking an access token leaves the grant"
        renewed = renewed.json()
        requests.post(
            base + "/2/oauth2/revoke",
            data={"token": renewed["refresh_token"], "client_id": "engagement-mart"},
            timeout=10,
        )
        assert _as(base, "/2/users/me", renewed["access_token"]).status_code == 401

        other = _sign_in(base, SUPPORT)
        brand = _sign_in(base, BRAND)
        removed = _control(base, "POST", "/_sandbox/oauth/revoke", {"username": SUPPORT})
        assert removed.json() == {"revoked_grants": 1}
        assert _as(base, "/2/users/me", other["access_token"]).status_code == 401
        refused = _post_token(
            base, grant_type="refresh_token", refresh_token=other["refresh_token"]
        )
        assert refused.status_code == 400
        assert _as(base, "/2/users/me", brand["access_token"]).status_code == 200
        grants = _control(base, "GET", "/_sandbox/oauth/grants").json()["grants"]
        assert [(g["username"], g["revoked"]) for g in grants] == [
            (SUPPORT, True),
            (SUPPORT, True),
            (BRAND, False),
        ]


def test_user_context_and_app_only_endpoints_refuse_each_other() -> None:
    with _serving() as (_, base):
        for template, path in (("/2/users/me", "/2/users/me"), ("/2/dm_events", "/2/dm_events")):
            refused = _get(base, path)
            assert refused.status_code == 403 and refused.json() == sandbox.APP_ONLY_FORBIDDEN
            _assert_valid(_problem(template), refused.json())
        no_dm = _sign_in(base, SUPPORT, ["tweet.read", "users.read"])["access_token"]
        assert _as(base, "/2/dm_events", no_dm).status_code == 403
        assert _as(base, "/2/users/me", no_dm).status_code == 200
        usage = _as(base, "/2/usage/tweets", no_dm)
        assert usage.status_code == 403 and usage.json() == sandbox.USER_CONTEXT_FORBIDDEN
        _assert_valid(_problem("/2/usage/tweets"), usage.json())


def _expected_dms(username: str, now: datetime) -> list[str]:
    """An independent filter of the sample: the user's DM events of the 30 days before now."""
    user_id = USER_IDS[username]
    return sorted(
        (
            e["id"]
            for e in COMPANY.dm_events
            if user_id in e["dm_conversation_id"].split("-")
            and now - timedelta(days=30) <= parse_stamp(e["created_at"]) <= now
        ),
        key=int,
        reverse=True,
    )


def test_dm_events_pages_of_the_users_conversations_of_30_days() -> None:
    with _serving() as (_, base):
        support = _sign_in(base, SUPPORT)["access_token"]
        validator = _validator("/2/dm_events")
        fields = {
            "dm_event.fields": "id,text,event_type,created_at,dm_conversation_id,sender_id",
            "expansions": "sender_id,participant_ids",
            "user.fields": "username",
            "max_results": "7",
        }
        pages = [_as(base, "/2/dm_events", support, **fields).json()]
        while "next_token" in pages[-1]["meta"]:
            token = pages[-1]["meta"]["next_token"]
            pages.append(
                _as(base, "/2/dm_events", support, **fields, pagination_token=token).json()
            )
        for page in pages:
            _assert_valid(validator, page)
            assert page["meta"]["result_count"] == len(page.get("data", []))
        ids = [e["id"] for page in pages for e in page["data"]]
        expected = _expected_dms(SUPPORT, SAMPLE_END)
        assert len(expected) > 50
        assert ids == expected, "every event once, newest first"
        assert all(set(p["includes"]["users"][0]) == {"id", "name", "username"} for p in pages)
        back = pages[2]["meta"]["previous_token"]
        previous = _as(base, "/2/dm_events", support, **fields, pagination_token=back).json()
        assert previous["data"] == pages[1]["data"]
        default = _as(base, "/2/dm_events", support, max_results=1).json()
        assert set(default["data"][0]) == {"id", "event_type", "text"}
        assert _as(base, "/2/dm_events", support, max_results=101).status_code == 400
        only_joins = _as(base, "/2/dm_events", support, event_types="ParticipantsJoin").json()
        assert only_joins == {"meta": {"result_count": 0}}

        brand = _sign_in(base, BRAND)["access_token"]
        assert _as(base, "/2/dm_events", brand).json() == {"meta": {"result_count": 0}}

        _control(base, "POST", "/_sandbox/clock", {"advance_seconds": 27 * 86400})
        later = SAMPLE_END + timedelta(days=27)
        support = _sign_in(base, SUPPORT)["access_token"]
        recent = _as(base, "/2/dm_events", support).json()
        kept = _expected_dms(SUPPORT, later)
        assert 0 < len(kept) < len(expected), "the test would prove nothing"
        assert [e["id"] for e in recent["data"]] == kept


def _own_posts(username: str) -> dict[str, dict]:
    return {
        t["id"]: t
        for t in latest_versions(COMPANY.tweets)
        if t["author_id"] == USER_IDS[username] and "non_public_metrics" in t
    }


def test_private_metrics_only_for_the_author_and_30_days() -> None:
    with _serving() as (_, base):
        support = _sign_in(base, SUPPORT)["access_token"]
        brand = _sign_in(base, BRAND)["access_token"]
        path = f"/2/users/{USER_IDS[SUPPORT]}/tweets"
        params = {"tweet.fields": PRIVATE + ",public_metrics", "max_results": "100"}
        validator = _validator("/2/users/{id}/tweets")
        own = _as(base, path, support, **params).json()
        _assert_valid(validator, own)
        stored = _own_posts(SUPPORT)
        served = {t["id"]: t for t in own["data"] if t["id"] in stored}
        assert len(served) > 10 and "errors" not in own
        for tweet_id, tweet in served.items():
            assert tweet["non_public_metrics"] == stored[tweet_id]["non_public_metrics"]
            assert tweet["organic_metrics"] == stored[tweet_id]["organic_metrics"]
            assert set(tweet["organic_metrics"]) == {
                *("impression_count", "like_count", "reply_count", "retweet_count"),
                *("url_link_clicks", "user_profile_clicks"),
            }

        for token in (brand, "app-only-token"):
            other = _as(base, path, token, **params).json()
            _assert_valid(validator, other)
            assert all(
                "non_public_metrics" not in t and "public_metrics" in t for t in other["data"]
            )
            refused = {(e["resource_id"], e["field"]) for e in other["errors"]}
            assert len(other["errors"]) == len(refused) == len(other["data"]) * 9
            error = other["errors"][0]
            assert error["title"] == "Field Authorization Error"
            assert error["type"] == "https://api.twitter.com/2/problems/not-authorized-for-field"
            assert (error["resource_type"], error["section"]) == ("tweet", "data")

        mentions = _as(base, f"/2/users/{USER_IDS[SUPPORT]}/mentions", support, **params).json()
        assert all("organic_metrics" not in t for t in mentions["data"]), "customers' posts"
        assert len(mentions["errors"]) == 9 * len(mentions["data"])

        _control(base, "POST", "/_sandbox/clock", {"advance_seconds": 27 * 86400})
        support = _sign_in(base, SUPPORT)["access_token"]
        aged = _as(base, path, support, **params).json()
        _assert_valid(validator, aged)
        horizon = SAMPLE_END + timedelta(days=27) - timedelta(days=30)
        young = {
            t["id"]
            for t in aged["data"]
            if parse_stamp(stored.get(t["id"], COMPANY.tweets[0])["created_at"]) >= horizon
        }
        with_metrics = {t["id"] for t in aged["data"] if "non_public_metrics" in t}
        assert with_metrics == young & set(stored) and 0 < len(with_metrics) < len(served)
        lookup = _as(
            base,
            "/2/tweets",
            support,
            ids=",".join(sorted(with_metrics)[:3]),
            **{"tweet.fields": PRIVATE},
        ).json()
        _assert_valid(_validator("/2/tweets"), lookup)
        assert all("organic_metrics" in t for t in lookup["data"]) and "errors" not in lookup


def test_usage_and_billing_count_each_resource_once_per_utc_day() -> None:
    with _serving() as (_, base):
        ids = [t["id"] for t in COMPANY.tweets[:3]]
        for _ in range(2):
            assert _get(base, "/2/tweets", ids=",".join(ids)).status_code == 200
        _get(base, f"/2/users/by/username/{BRAND}")
        _get(base, "/2/tweets", ids="1")  # not found: nothing served, nothing billed
        fields = ",".join(sorted(sandbox.USAGE_FIELDS))
        usage = _get(base, "/2/usage/tweets", days=3, **{"usage.fields": fields}).json()
        _assert_valid(_validator("/2/usage/tweets"), usage)
        today = SAMPLE_END.date().isoformat()
        daily = usage["data"]["daily_project_usage"]["usage"]
        assert [d["date"][:10] for d in daily][-1] == today and len(daily) == 3
        assert [d["usage"] for d in daily] == [0, 0, 3]
        assert usage["data"]["project_usage"] == 3
        assert set(_get(base, "/2/usage/tweets").json()["data"]) == set(sandbox.USAGE_DEFAULT)

        support = _sign_in(base, SUPPORT)["access_token"]
        own = _as(base, f"/2/users/{USER_IDS[SUPPORT]}/tweets", support, max_results=5).json()
        _as(base, "/2/users/me", support)
        _as(base, "/2/dm_events", support, max_results=4)
        _control(base, "POST", "/_sandbox/clock", {"advance_seconds": 86400})
        _get(base, "/2/tweets", ids=",".join(ids[:2]))
        _as(base, "/2/users/me", support)  # the token still lives: 7,200 s ... not after a day
        ledger = _control(base, "GET", "/_sandbox/billing").json()
        assert ledger["prices_usd"] == {
            "post_reads": 0.005,
            "user_reads": 0.010,
            "dm_event_reads": 0.010,
            "owned_reads": 0.001,
        }
        first, second = ledger["days"]
        assert first == {
            "date": today,
            "post_reads": 3,
            "user_reads": 2,  # @acmecloud by username, @acmesupport as users/me
            "dm_event_reads": 4,
            "owned_reads": len(own["data"]),
            "cost_usd": round(3 * 0.005 + 2 * 0.01 + 4 * 0.01 + len(own["data"]) * 0.001, 6),
        }
        assert second["date"] == (SAMPLE_END.date() + timedelta(days=1)).isoformat()
        assert (second["post_reads"], second["user_reads"]) == (2, 0)
        usage = _get(base, "/2/usage/tweets", days=2, **{"usage.fields": "daily_project_usage"})
        assert [d["usage"] for d in usage.json()["data"]["daily_project_usage"]["usage"]] == [
            3 + len(own["data"]),
            2,
        ]


def test_sample_dms_and_private_metrics_are_consistent_with_the_log() -> None:
    brand, support = USER_IDS[BRAND], USER_IDS[SUPPORT]
    events = COMPANY.dm_events
    conversations = {e["dm_conversation_id"] for e in events}
    assert all(brand not in c.split("-") for c in conversations), "no DMs for the brand"
    assert all(support in c.split("-") for c in conversations)
    assert all(c.split("-") == sorted(c.split("-"), key=int) for c in conversations)
    answered = {e["dm_conversation_id"] for e in events if e["sender_id"] == support}
    assert 0 < len(conversations - answered) < len(conversations) / 3
    per_day = Counter(parse_stamp(e["created_at"]).date() for e in events)
    assert len(per_day) == SAMPLE_DAYS
    assert any("@example.com" in e["text"] for e in events)
    assert any("#AC-" in e["text"] for e in events)

    own = {brand, support}
    links = own_links(COMPANY.tweets, own, {SUPPORT_SITE_HOST})
    clicks = attribute(
        links, tco_sessions(access_log_lines(COMPANY), SAMPLE_END.replace(tzinfo=None))
    )
    credited = Counter(c.post_id for c in clicks if c.post_id)
    by_id = {t["id"]: t for t in COMPANY.tweets}
    assert len(credited) > 30
    for post_id, count in credited.items():
        assert by_id[post_id]["non_public_metrics"]["url_link_clicks"] >= count, post_id
    assert sum(by_id[p]["non_public_metrics"]["url_link_clicks"] for p in credited) > sum(
        credited.values()
    ), "some clicks never arrive"
    for tweet in COMPANY.tweets:
        if "non_public_metrics" in tweet:
            public = tweet["public_metrics"]
            engagement = sum(v for k, v in public.items() if k != "impression_count")
            assert tweet["non_public_metrics"]["impression_count"] >= engagement
