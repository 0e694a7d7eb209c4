"""The X API v2 sandbox, over real HTTP with the real tweepy client (no mocks)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
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

from devtools import x_sandbox as sandbox
from devtools.sample import (
    BRAND,
    SAMPLE_START,
    SUPPORT,
    SampleCompany,
    generate,
    latest_versions,
    parse_stamp,
)
from devtools.x_sandbox import FixtureError, SandboxServer, load_fixture, make_server
from engagement import cli
from engagement.landing import Endpoint
from engagement.settings import REAL_X_API
from extract import x

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
