"""A local X API v2 sandbox that serves a sample company, so ``tweepy.Client`` runs unchanged.

Implements, after the official OpenAPI document, the four reads the extractor uses:
GET /2/users/by/username/{username}, /2/users/{id}/tweets, /2/users/{id}/mentions and
/2/tweets?ids=..., with field selection, expansions, time and id bounds, stable pagination,
bearer-token auth, the real per-endpoint app-only rate limits and headers, the reach caps of
the timelines (3,200 most recent posts, 800 most recent mentions), edit chains (timelines serve
the latest version, a lookup by id any version) and the real API's problem bodies.

User context, as X does it: OAuth 2.0 Authorization Code with PKCE (GET /i/oauth2/authorize,
where the sandbox-only ``sandbox_user=<username>`` signs in, POST /2/oauth2/token with
refresh-token rotation, POST /2/oauth2/revoke). A bearer token the token endpoint issued is
user context for its user (401 once expired or revoked); any other token is app-only. User
context alone reads GET /2/users/me, GET /2/dm_events (30 days back, dm.read) and the
private metrics (non_public_metrics, organic_metrics) of the user's own posts younger than 30
days; app-only alone reads GET /2/usage/tweets. The sandbox has a clock of its own (``now``,
running on in real time, set or advanced through /_sandbox/clock) for token expiry, the
30-day horizons and the usage days.

Billing ledger (GET /_sandbox/billing), after X's pay-per-use pricing
(https://docs.x.com/x-api/getting-started/pricing): a post read costs $0.005, a user read
$0.010, a DM event read $0.010 and an owned read $0.001, and a resource is charged once per UTC
day however often it is served. Counted per UTC day of the sandbox clock, over 200 answers:
posts in ``data`` and ``includes.tweets`` (post_reads), users in ``data`` and ``includes.users``
(user_reads, /2/users/me and /2/users/by/username included), DM events in ``data``
(dm_event_reads); everything a /2/users/:id/... endpoint serves when :id is the user of the
user-context token is an owned read instead (owned_reads). GET /2/usage/tweets counts the
posts served per UTC day, each once a day.

For tests it also injects faults (429, 500, 503, malformed pages, dropped connections), lets
posts be added, edited, re-metered or deleted while it runs, and logs the requests it received
(never their headers, form bodies or tokens). Control endpoints live under /_sandbox/ and need
no token.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import json
import math
import re
import secrets
import signal
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from devtools.sample import SAMPLE_DAYS, SAMPLE_START, SampleCompany, generate, parse_stamp
from engagement.errors import UsageError
from engagement.landing import Endpoint
from engagement.settings import Policy

# Requests per 15-minute window with app-only (bearer token) auth, per endpoint, as published
# on docs.x.com/x-api/fundamentals/rate-limits.
RATE_LIMITS = {
    Endpoint.USER: 300,
    Endpoint.TWEETS: 10_000,
    Endpoint.MENTIONS: 450,
    Endpoint.LOOKUP: 3_500,
}
# The other endpoints' limits (users/me and dm_events per user on X, kept per endpoint here).
OTHER_RATE_LIMITS = {"me": 75, "dm_events": 300, "usage": 50}
RATE_LIMIT = 300  # any other path
RATE_WINDOW = 15 * 60
TIMELINE_CAP = Policy.timeline_cap  # GET /2/users/:id/tweets reaches the 3,200 most recent posts
MENTIONS_CAP = Policy.mentions_cap  # GET /2/users/:id/mentions reaches the 800 most recent
FAULT_KINDS = ("403", "429", "500", "503", "malformed", "drop")
REQUEST_LOG_SIZE = 10_000
PROBLEMS = "https://api.twitter.com/2/problems/"


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


TWEET_DEFAULT = ("id", "text", "edit_history_tweet_ids")
USER_DEFAULT = ("id", "name", "username")
TWEET_FIELDS = _names(
    "article attachments author_id card_uri community_id context_annotations conversation_id "
    "created_at display_text_range edit_controls edit_history_tweet_ids entities geo id "
    "in_reply_to_user_id lang media_metadata non_public_metrics note_tweet organic_metrics "
    "possibly_sensitive promoted_metrics public_metrics referenced_tweets reply_settings scopes "
    "source suggested_source_links suggested_source_links_with_counts text withheld"
)
USER_FIELDS = _names(
    "affiliation confirmed_email connection_status created_at description entities id "
    "is_identity_verified location most_recent_tweet_id name parody pinned_tweet_id "
    "profile_banner_url profile_image_url protected public_metrics receives_your_dm "
    "subscription subscription_type url username verified verified_followers_count "
    "verified_type withheld"
)
TWEET_EXPANSIONS = _names(
    "article.cover_media article.media_entities attachments.media_keys "
    "attachments.media_source_tweet attachments.poll_ids author_id edit_history_tweet_ids "
    "entities.mentions.username geo.place_id in_reply_to_user_id "
    "entities.note.mentions.username referenced_tweets.id "
    "referenced_tweets.id.attachments.media_keys referenced_tweets.id.author_id"
)
USER_EXPANSIONS = frozenset({"affiliation.user_id", "most_recent_tweet_id", "pinned_tweet_id"})
OTHER_FIELDS = ("media.fields", "poll.fields", "place.fields")  # accepted, nothing to return
TIMELINE_PARAMS = frozenset(
    {"since_id", "until_id", "max_results", "pagination_token", "start_time", "end_time"}
    | {"tweet.fields", "user.fields", "expansions", *OTHER_FIELDS}
)
DM_EVENT_FIELDS = _names(
    "attachments created_at dm_conversation_id entities event_type id participant_ids "
    "referenced_tweets sender_id text"
)
DM_EVENT_DEFAULT = ("id", "event_type", "text")
DM_EXPANSIONS = _names("attachments.media_keys participant_ids referenced_tweets.id sender_id")
EVENT_TYPES = ("MessageCreate", "ParticipantsJoin", "ParticipantsLeave")
USAGE_FIELDS = _names(
    "cap_reset_day daily_client_app_usage daily_project_usage project_cap project_id project_usage"
)
USAGE_DEFAULT = ("cap_reset_day", "project_cap", "project_id", "project_usage")
# The private metrics, with the keys the sandbox serves (an author's token, posts < 30 days).
PRIVATE_METRICS = {
    "non_public_metrics": ("impression_count", "url_link_clicks", "user_profile_clicks"),
    "organic_metrics": (
        *("impression_count", "like_count", "reply_count", "retweet_count"),
        *("url_link_clicks", "user_profile_clicks"),
    ),
}
HORIZON = timedelta(days=30)  # DMs and private metrics reach 30 days back
# X's OAuth 2.0 scopes (docs.x.com .../oauth-2-0/authorization-code).
SCOPES = _names(
    "tweet.read tweet.write tweet.moderate.write users.email users.read follows.read "
    "follows.write offline.access space.read mute.read mute.write like.read like.write "
    "list.read list.write block.read block.write bookmark.read bookmark.write dm.read "
    "dm.write media.write"
)
ACCESS_TOKEN_LIFETIME = 7200
CODE_LIFETIME = 30
PRICES = {"post_reads": 0.005, "user_reads": 0.010, "dm_event_reads": 0.010, "owned_reads": 0.001}
PROJECT_ID = "1722340815"  # int32: the schema's daily_project_usage.project_id is one
CLIENT_APP_ID = "29811460"
PROJECT_CAP = 10_000_000
ID = re.compile(r"[0-9]{1,19}")
USERNAME = re.compile(r"[A-Za-z0-9_]{1,15}")
UNAUTHORIZED = {
    "title": "Unauthorized",
    "type": "about:blank",
    "status": 401,
    "detail": "Unauthorized",
}
TOO_MANY = {
    "title": "Too Many Requests",
    "type": "about:blank",
    "status": 429,
    "detail": "Too Many Requests",
}
SERVER_ERROR = {
    "title": "Internal Server Error",
    "type": "about:blank",
    "status": 500,
    "detail": "Internal Server Error",
}
SERVICE_UNAVAILABLE = {
    "title": "Service Unavailable",
    "type": "about:blank",
    "status": 503,
    "detail": "Service Unavailable",
}
FORBIDDEN = {"title": "Forbidden", "type": "about:blank", "status": 403, "detail": "Forbidden"}
APP_ONLY_FORBIDDEN = {
    "title": "Unsupported Authentication",
    "detail": "Authenticating with OAuth 2.0 Application-Only is forbidden for this endpoint.  "
    "Supported authentication types are [OAuth 1.0a User Context, OAuth 2.0 User Context].",
    "type": PROBLEMS + "unsupported-authentication",
    "status": 403,
}
USER_CONTEXT_FORBIDDEN = {
    "title": "Unsupported Authentication",
    "detail": "Authenticating with OAuth 2.0 User Context is forbidden for this endpoint.  "
    "Supported authentication types are [OAuth 2.0 Application-Only].",
    "type": PROBLEMS + "unsupported-authentication",
    "status": 403,
}
# What the token endpoint answers for a bad, used, expired or revoked code or refresh token.
INVALID_TOKEN = {
    "error": "invalid_request",
    "error_description": "Value passed for the token was invalid.",
}
NO_CLIENT = {
    "error": "unauthorized_client",
    "error_description": "Missing valid authorization header",
}
NOT_FOUND = {"title": "Not Found", "type": "about:blank", "status": 404, "detail": "Not Found"}
# What an app whose plan does not include the endpoint gets.
CLIENT_FORBIDDEN = {
    "title": "Client Forbidden",
    "type": "https://api.twitter.com/2/problems/client-forbidden",
    "detail": "When authenticating requests to the Twitter API v2 endpoints, you must use keys "
    "and tokens from a Twitter developer App that is attached to a Project. You can create a "
    "project via the developer portal.",
    "reason": "client-not-enrolled",
    "registration_url": "https://developer.twitter.com/en/docs/projects/overview",
    "required_enrollment": "Appropriate Level of API Access",
}
FAULT_BODIES = {
    "403": (403, CLIENT_FORBIDDEN),
    "429": (429, TOO_MANY),
    "500": (500, SERVER_ERROR),
    "503": (503, SERVICE_UNAVAILABLE),
}


class ApiError(Exception):
    def __init__(self, status: int, body: dict) -> None:
        super().__init__(status)
        self.status, self.body = status, body


class Clock:
    """The sandbox's "now": starts at ``now`` (default: the real time) and runs on in real
    time; tests set or advance it instead of sleeping."""

    def __init__(self, now: datetime | None = None) -> None:
        self.set(now or datetime.now(UTC))

    def set(self, now: datetime) -> None:
        if now.tzinfo is None:
            raise FixtureError(f"the clock needs a time zone: {now.isoformat()}")
        self._base, self._started = now.astimezone(UTC), time.monotonic()

    def advance(self, seconds: float) -> None:
        self._base += timedelta(seconds=seconds)

    def now(self) -> datetime:
        return self._base + timedelta(seconds=time.monotonic() - self._started)


@dataclass(frozen=True)
class Auth:
    """Who a request speaks for: the app (any bearer token the sandbox did not issue), or
    the user of a grant (a token the token endpoint issued)."""

    kind: str  # "app" | "user"
    grant: dict | None = None

    @property
    def user_id(self) -> str | None:
        return self.grant["user_id"] if self.grant else None


APP = Auth("app")


def _field_errors(tweet: dict, field: str, section: str) -> list[dict]:
    """X's partial errors for a private metric refused on a post, one per key of it."""
    return [
        {
            "resource_type": "tweet",
            "field": f"{field}.{key}",
            "parameter": "id",
            "resource_id": tweet["id"],
            "value": tweet["id"],
            "section": section,
            "title": "Field Authorization Error",
            "detail": f"Sorry, you are not authorized to access '{field}.{key}' on the Tweet "
            f"with id : [{tweet['id']}].",
            "type": PROBLEMS + "not-authorized-for-field",
        }
        for key in PRIVATE_METRICS[field]
    ]


def _page_token(direction: str, event_id: str) -> str:
    """A DM page token (at least 16 characters, as the schema's PaginationToken32 says)."""
    raw = f"{direction}{int(event_id):019d}".encode()
    return base64.b32encode(raw).decode().rstrip("=").lower()


def _read_page_token(token: str) -> tuple[str, int] | None:
    try:
        raw = base64.b32decode(token.upper() + "=" * (-len(token) % 8)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    match = re.fullmatch(r"([np])([0-9]{19})", raw)
    return (match[1], int(match[2])) if match else None


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _invalid(name: str, value: str, message: str) -> ApiError:
    return ApiError(
        400,
        {
            "errors": [{"parameters": {name: [value]}, "message": message}],
            "title": "Invalid Request",
            "detail": "One or more parameters to your request was invalid.",
            "type": PROBLEMS + "invalid-request",
        },
    )


def _not_found(resource_type: str, parameter: str, value: str, detail: str) -> dict:
    return {
        "value": value,
        "detail": detail,
        "title": "Not Found Error",
        "resource_type": resource_type,
        "parameter": parameter,
        "resource_id": value,
        "type": PROBLEMS + "resource-not-found",
    }


def _to_base36(number: int) -> str:
    digits = ""
    while number:
        number, rest = divmod(number, 36)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[rest] + digits
    return digits or "0"


class _Query:
    """Query parameters of one request, validated the way the real API does."""

    def __init__(self, raw: str, allowed: frozenset[str]) -> None:
        self.params = {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}
        for name in self.params:
            if name not in allowed:
                known = ",".join(sorted(allowed))
                raise _invalid(name, "", f"The query parameter [{name}] is not one of [{known}]")

    def get(self, name: str) -> str | None:
        return self.params.get(name)

    def names(self, name: str, allowed: frozenset[str]) -> list[str]:
        value = self.params.get(name)
        if value is None:
            return []
        items = value.split(",")
        for item in items:
            if item not in allowed:
                known = ",".join(sorted(allowed))
                raise _invalid(
                    name,
                    item,
                    f"The `{name}` query parameter value [{item}] is not one of [{known}]",
                )
        return items

    def tweet_id(self, name: str) -> int | None:
        value = self.params.get(name)
        if value is None:
            return None
        if not ID.fullmatch(value):
            raise _invalid(
                name,
                value,
                f"The `{name}` query parameter value [{value}] does not match ^[0-9]{{1,19}}$",
            )
        return int(value)

    def moment(self, name: str) -> datetime | None:
        value = self.params.get(name)
        if value is None:
            return None
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            moment = None
        if moment is None or moment.tzinfo is None or "T" not in value:
            raise _invalid(
                name,
                value,
                f"Invalid '{name}':'{value}'. '{name}' must be a valid RFC3339 date-time",
            )
        return moment

    def max_results(self) -> int:
        return self.number("max_results", 5, 100, 10)

    def number(self, name: str, low: int, high: int, default: int) -> int:
        value = self.params.get(name, str(default))
        if not re.fullmatch(r"-?[0-9]{1,9}", value) or not low <= int(value) <= high:
            raise _invalid(
                name,
                value,
                f"The `{name}` query parameter value [{value}] is not between {low} and {high}",
            )
        return int(value)


class FixtureError(UsageError, ValueError):
    """Users or tweets the sandbox cannot serve (a bad fixture file or control request)."""


REFERENCE_TYPES = frozenset({"replied_to", "quoted", "retweeted"})


def _check_user(user: object, where: str) -> dict:
    if not isinstance(user, dict):
        raise FixtureError(f"{where}: a user must be a JSON object, got {type(user).__name__}")
    for key in ("id", "username", "name"):
        if not isinstance(user.get(key), str):
            raise FixtureError(f"{where}: user without {key!r} (a string)")
    if not ID.fullmatch(user["id"]):
        raise FixtureError(f"{where}: user id {user['id']!r} is not 1-19 digits")
    if not USERNAME.fullmatch(user["username"]):
        raise FixtureError(f"{where}: username {user['username']!r} is not 1-15 of [A-Za-z0-9_]")
    return dict(user)


def _check_tweet(tweet: object, where: str, user_ids: set[str]) -> dict:
    if not isinstance(tweet, dict):
        raise FixtureError(f"{where}: a tweet must be a JSON object, got {type(tweet).__name__}")
    for key in ("id", "author_id", "created_at", "text"):
        if not isinstance(tweet.get(key), str):
            raise FixtureError(f"{where}: tweet without {key!r} (a string)")
    where = f"{where} (id {tweet['id']})"
    if not ID.fullmatch(tweet["id"]):
        raise FixtureError(f"{where}: tweet id is not 1-19 digits")
    if tweet["author_id"] not in user_ids:
        raise FixtureError(f"{where}: author_id {tweet['author_id']} is not in users")
    try:
        created = parse_stamp(tweet["created_at"])
    except ValueError:
        created = None
    if created is None or created.tzinfo is None:
        raise FixtureError(f"{where}: created_at {tweet['created_at']!r} is not RFC 3339 UTC")
    tweet = dict(tweet)
    history = tweet.setdefault("edit_history_tweet_ids", [tweet["id"]])
    if (
        not isinstance(history, list)
        or not all(isinstance(i, str) and ID.fullmatch(i) for i in history)
        or tweet["id"] not in history
    ):
        raise FixtureError(f"{where}: edit_history_tweet_ids must be a list of ids holding its id")
    for ref in tweet.get("referenced_tweets", []):
        if not isinstance(ref, dict) or ref.get("type") not in REFERENCE_TYPES or "id" not in ref:
            raise FixtureError(f"{where}: referenced_tweets entries need a type and an id")
    for mention in tweet.get("entities", {}).get("mentions", []):
        if not isinstance(mention, dict) or not isinstance(mention.get("username"), str):
            raise FixtureError(f"{where}: entities.mentions entries need a username")
    return tweet


def check_data(
    users: object, tweets: object, source: str = "data", known_users: set[str] | None = None
) -> tuple[list[dict], list[dict]]:
    """Validated copies of users and tweets (a missing edit_history_tweet_ids becomes [id]).

    Raises FixtureError naming the offending entry: missing keys, malformed ids, authors not
    among the users (nor ``known_users``), duplicate ids, an edit chain whose latest version
    is absent.
    """
    if not isinstance(users, list) or not isinstance(tweets, list):
        raise FixtureError(f"{source}: 'users' and 'tweets' must be JSON lists")
    checked_users = [_check_user(u, f"{source}: users[{n}]") for n, u in enumerate(users)]
    ids = [u["id"] for u in checked_users]
    names = [u["username"].lower() for u in checked_users]
    for label, values in (("user id", ids), ("username", names)):
        repeated = sorted({v for v in values if values.count(v) > 1})
        if repeated:
            raise FixtureError(f"{source}: {label} repeated: {', '.join(repeated)}")
    user_ids = set(ids) | (known_users or set())
    checked = [_check_tweet(t, f"{source}: tweets[{n}]", user_ids) for n, t in enumerate(tweets)]
    tweet_ids = [t["id"] for t in checked]
    repeated = sorted({i for i in tweet_ids if tweet_ids.count(i) > 1}, key=int)
    if repeated:
        raise FixtureError(f"{source}: tweet id repeated: {', '.join(repeated)}")
    return checked_users, checked


def check_dm_events(events: object, user_ids: set[str], source: str = "dm_events") -> list[dict]:
    """Validated copies of X DmEvent objects: an id, an event_type of EVENT_TYPES, an RFC 3339
    created_at, a dm_conversation_id ("<id>-<id>" for one-to-one) and participant_ids or a
    sender_id among the users (the participants of a conversation are those of its events)."""
    if not isinstance(events, list):
        raise FixtureError(f"{source}: 'dm_events' must be a JSON list")
    checked, seen = [], set()
    for n, event in enumerate(events):
        where = f"{source}: dm_events[{n}]"
        if not isinstance(event, dict):
            raise FixtureError(f"{where}: a DM event must be a JSON object")
        for key in ("id", "event_type", "created_at", "dm_conversation_id"):
            if not isinstance(event.get(key), str):
                raise FixtureError(f"{where}: DM event without {key!r} (a string)")
        if not ID.fullmatch(event["id"]) or event["id"] in seen:
            raise FixtureError(f"{where}: id {event['id']!r} is not 1-19 digits or repeats")
        seen.add(event["id"])
        if event["event_type"] not in EVENT_TYPES:
            raise FixtureError(f"{where}: event_type is not one of {', '.join(EVENT_TYPES)}")
        if not re.fullmatch(r"[0-9]{1,19}-[0-9]{1,19}|[0-9]{15,19}", event["dm_conversation_id"]):
            raise FixtureError(f"{where}: dm_conversation_id is not '<id>-<id>' nor an id")
        try:
            created = parse_stamp(event["created_at"])
        except ValueError:
            created = None
        if created is None or created.tzinfo is None:
            raise FixtureError(f"{where}: created_at {event['created_at']!r} is not RFC 3339 UTC")
        people = [event.get("sender_id"), *event.get("participant_ids", [])]
        if any(p is not None and p not in user_ids for p in people) or people == [None]:
            raise FixtureError(f"{where}: sender_id or participant_ids not among the users")
        checked.append(dict(event))
    return checked


def load_fixture(path: str | Path) -> tuple[list[dict], list[dict]]:
    """Users and tweets of a fixture file, JSON ``{"users": [...], "tweets": [...]}`` holding
    X API v2 user and tweet objects; raises FixtureError with a clear message when invalid."""
    company = load_fixture_company(path)
    return company.users, company.tweets


def load_fixture_company(path: str | Path) -> SampleCompany:
    """A fixture file as a company: `load_fixture`'s users and tweets, and the optional
    ``"dm_events"`` list (X DmEvent objects)."""
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise FixtureError(f"{path}: cannot read the fixture: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise FixtureError(f"{path}: not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise FixtureError(f'{path}: expected a JSON object {{"users": [...], "tweets": [...]}}')
    missing = [key for key in ("users", "tweets") if key not in document]
    if missing:
        raise FixtureError(f"{path}: missing key(s) {', '.join(missing)}")
    users, tweets = check_data(document["users"], document["tweets"], str(path))
    latest = {t["id"] for t in tweets}
    for tweet in tweets:
        if tweet["edit_history_tweet_ids"][-1] not in latest:
            raise FixtureError(
                f"{path}: tweet {tweet['id']}: the latest version of its edit history, "
                f"{tweet['edit_history_tweet_ids'][-1]}, is not among the tweets"
            )
    user_ids = {u["id"] for u in users}
    dm_events = check_dm_events(document.get("dm_events", []), user_ids, str(path))
    return SampleCompany(users, tweets, dm_events)


def check_fault(fault: object) -> dict:
    """A fault as the server keeps it: {"path", "kind", "times", "reset_in"} (defaults filled)."""
    if not isinstance(fault, dict):
        raise FixtureError("a fault must be a JSON object")
    unknown = set(fault) - {"path", "kind", "times", "reset_in"}
    if unknown:
        raise FixtureError(f"unknown fault key(s): {', '.join(sorted(unknown))}")
    path, kind = fault.get("path", ""), str(fault.get("kind", ""))
    times, reset_in = fault.get("times", 1), fault.get("reset_in", 1)
    if not isinstance(path, str):
        raise FixtureError("fault path must be a regular expression (a string)")
    try:
        re.compile(path)
    except re.error as exc:
        raise FixtureError(f"fault path {path!r} is not a regular expression: {exc}") from None
    if kind not in FAULT_KINDS:
        raise FixtureError(f"fault kind {kind!r} is not one of {', '.join(FAULT_KINDS)}")
    if isinstance(times, bool) or not isinstance(times, int) or times < 1:
        raise FixtureError(f"fault times {times!r} must be a positive integer")
    if isinstance(reset_in, bool) or not isinstance(reset_in, int | float) or reset_in < 0:
        raise FixtureError(f"fault reset_in {reset_in!r} must be a number of seconds >= 0")
    return {"path": path, "kind": kind, "times": times, "reset_in": reset_in}


def parse_fault_spec(spec: str) -> dict:
    """A CLI fault: a JSON object, or ``KIND:TIMES:PATH_REGEX`` (e.g. ``429:2:/mentions``)."""
    if spec.lstrip().startswith("{"):
        try:
            return check_fault(json.loads(spec))
        except json.JSONDecodeError as exc:
            raise FixtureError(f"fault {spec!r} is not JSON: {exc}") from None
    kind, _, rest = spec.partition(":")
    times, _, path = rest.partition(":")
    if not times.isdigit():
        raise FixtureError(f"fault {spec!r}: expected KIND:TIMES:PATH_REGEX or a JSON object")
    return check_fault({"kind": kind, "times": int(times), "path": path})


def _client_id(form: dict[str, str], authorization: str) -> str | None:
    """The client of a token or revoke request: HTTP Basic (a confidential client, any
    non-empty id and secret) or ``client_id`` in the form (a public client); None if neither,
    or if they disagree."""
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "basic":
        try:
            client_id, _, secret = base64.b64decode(value, validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        if not client_id or not secret:
            return None
        return client_id if form.get("client_id", client_id) == client_id else None
    return form.get("client_id") or None


def _challenge(verifier: str, method: str) -> str:
    if method == "plain":
        return verifier
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


class SandboxServer(ThreadingHTTPServer):
    """Holds the data, rate-limit counters, faults and request log; requests go to _Handler."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        port: int,
        users: list[dict],
        tweets: list[dict],
        host: str = "127.0.0.1",
        *,
        timeline_cap: int = TIMELINE_CAP,
        mentions_cap: int = MENTIONS_CAP,
        faults: list[dict] | None = None,
        rate_limits: dict[str, int] | None = None,
        rate_window: int = RATE_WINDOW,
        dm_events: list[dict] | None = None,
        now: datetime | None = None,
        access_token_lifetime: int = ACCESS_TOKEN_LIFETIME,
    ) -> None:
        if timeline_cap < 0 or mentions_cap < 0:
            raise FixtureError("--timeline-cap and --mentions-cap must be >= 0")
        if access_token_lifetime < 1:
            raise FixtureError("--access-token-lifetime must be >= 1 second")
        users, tweets = check_data(users, tweets)
        super().__init__((host, port), _Handler)
        self.lock = threading.RLock()
        self.clock = Clock(now)
        self.access_token_lifetime = access_token_lifetime
        self.timeline_cap, self.mentions_cap = timeline_cap, mentions_cap
        self.rate_limits: dict[str, int] = RATE_LIMITS | OTHER_RATE_LIMITS | (rate_limits or {})
        self.rate_window = rate_window
        # endpoint (None: any other path) -> [window start, requests in window]
        self.calls: dict[str | None, list[int]] = {}
        self.codes: dict[str, dict] = {}  # authorization code -> what it grants
        self.grants: list[dict] = []
        # every token ever issued -> {"kind": access|refresh, "grant", "expires"|"current"}:
        # kept after expiry or revocation, so that they answer 401 rather than pass as app-only
        self.tokens: dict[str, dict] = {}
        # UTC day -> kind -> the (resource type, id) billed that day
        self.ledger: dict[date, dict[str, set[tuple[str, str]]]] = {}
        self.dm_events: list[dict] = []
        self.faults: list[dict] = [check_fault(f) for f in faults or []]
        self.requests: deque[dict] = deque(maxlen=REQUEST_LOG_SIZE)
        self.users: dict[str, dict] = {}
        self.usernames: dict[str, dict] = {}
        self.tweets: dict[str, dict] = {}
        self.timelines: dict[str, list[dict]] = {}
        self.mentions: dict[str, list[dict]] = {}
        self.add_users(users)
        self.add_tweets(tweets)
        self.add_dm_events(dm_events or [])

    # --- data control -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> str:
        """Serve in a daemon thread; returns the base URL. `stop` ends it within 20 ms."""
        threading.Thread(target=self.serve_forever, args=(0.02,), daemon=True).start()
        return self.url

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def add_users(self, users: list[dict]) -> None:
        """Add users, or replace those with the same id."""
        users, _ = check_data(users, [], "users")
        with self.lock:
            for user in users:
                old = self.users.get(user["id"])
                if old is not None:
                    self.usernames.pop(old["username"].lower(), None)
                self.users[user["id"]] = user
                self.usernames[user["username"].lower()] = user
            self._reindex()

    def add_tweets(self, tweets: list[dict]) -> None:
        """Add tweets, or replace those with the same id (new text, new public_metrics, ...).

        An edit is a new tweet whose edit_history_tweet_ids is [original id, ..., its id]:
        every stored version of the chain then carries that full history, timelines serve
        only the latest version and GET /2/tweets still returns any version by its id.
        """
        with self.lock:
            _, tweets = check_data([], tweets, "tweets", set(self.users))
            for tweet in tweets:
                history = tweet["edit_history_tweet_ids"]
                known = [
                    self.tweets[i]["edit_history_tweet_ids"] for i in history if i in self.tweets
                ]
                chain = max([history, *known], key=len)
                self.tweets[tweet["id"]] = tweet
                for version in chain:
                    if version in self.tweets:
                        stored = self.tweets[version]
                        self.tweets[version] = dict(stored, edit_history_tweet_ids=list(chain))
            self._reindex()

    def add_dm_events(self, events: list[dict]) -> None:
        """Add DM events (X DmEvent objects), or replace those with the same id."""
        with self.lock:
            checked = check_dm_events(events, set(self.users))
            by_id = {e["id"]: e for e in self.dm_events} | {e["id"]: e for e in checked}
            self.dm_events = sorted(by_id.values(), key=lambda e: int(e["id"]), reverse=True)

    def delete_tweet(self, tweet_id: str) -> list[str]:
        """Delete a post, and with it every version of its edit chain, as X does.

        Returns the ids deleted (none when the id is unknown)."""
        with self.lock:
            tweet = self.tweets.get(tweet_id)
            if tweet is None:
                return []
            chain = [i for i in dict.fromkeys([*tweet["edit_history_tweet_ids"], tweet_id])]
            deleted = [i for i in chain if self.tweets.pop(i, None) is not None]
            self._reindex()
            return deleted

    def _reindex(self) -> None:
        """Timelines and mentions: latest versions only, newest first, cut to the reach caps."""
        superseded = {old for t in self.tweets.values() for old in t["edit_history_tweet_ids"][:-1]}
        current = [t for t in self.tweets.values() if t["id"] not in superseded]
        current.sort(key=lambda t: int(t["id"]), reverse=True)
        timelines: dict[str, list[dict]] = {i: [] for i in self.users}
        mentions: dict[str, list[dict]] = {i: [] for i in self.users}
        for tweet in current:
            timelines.setdefault(tweet["author_id"], []).append(tweet)
            named = {m["username"].lower() for m in tweet.get("entities", {}).get("mentions", [])}
            for username in named:
                user = self.usernames.get(username)
                if user is not None and user["id"] != tweet["author_id"]:
                    mentions[user["id"]].append(tweet)
        self.timelines = {k: v[: self.timeline_cap] for k, v in timelines.items()}
        self.mentions = {k: v[: self.mentions_cap] for k, v in mentions.items()}

    def add_faults(self, faults: list[dict]) -> list[dict]:
        """Queue faults: the next ``times`` requests whose path matches ``path`` get ``kind``."""
        checked = [check_fault(f) for f in faults]
        with self.lock:
            self.faults.extend(checked)
            return [dict(f) for f in self.faults]

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def take_fault(self, path: str) -> dict | None:
        """The first queued fault matching the path, counted down (removed at zero)."""
        with self.lock:
            for fault in self.faults:
                if re.search(fault["path"], path):
                    fault["times"] -= 1
                    if fault["times"] <= 0:
                        self.faults.remove(fault)
                    return dict(fault)
        return None

    def request_log(self) -> list[dict]:
        """Requests received on the API (not the control endpoints): method, path, query,
        time, status and injected fault. Headers, and so the token, are never kept."""
        with self.lock:
            return [dict(entry) for entry in self.requests]

    def count_call(self, endpoint: str | None) -> tuple[dict[str, str], bool]:
        """Count one request to an endpoint: its rate-limit headers, and whether it is over."""
        now = int(time.time())
        limit = self.rate_limits.get(endpoint, RATE_LIMIT)
        with self.lock:
            window = self.calls.setdefault(endpoint, [now, 0])
            if now >= window[0] + self.rate_window:
                window[:] = [now, 0]
            window[1] += 1
            remaining = limit - window[1]
            reset = window[0] + self.rate_window
        headers = {
            "x-rate-limit-limit": str(limit),
            "x-rate-limit-remaining": str(max(remaining, 0)),
            "x-rate-limit-reset": str(reset),
        }
        return headers, remaining < 0

    # --- OAuth 2.0 user context -------------------------------------------------------------

    def authorize(self, params: dict[str, str]) -> tuple[int, str, str]:
        """GET /i/oauth2/authorize: (status, redirect location or "", HTML or plain text).

        ``sandbox_user=<username>`` approves as that user, ``sandbox_deny=1`` refuses;
        without either, a consent page links one approval per user."""
        for name in ("response_type", "client_id", "redirect_uri", "scope", "state"):
            if not params.get(name):
                return 400, "", f"Missing required parameter: {name}"
        if not params.get("code_challenge"):
            return 400, "", "Missing required parameter: code_challenge"
        if params["response_type"] != "code":
            return 400, "", f"Invalid response_type: {params['response_type']} (only code)"
        redirect = urlsplit(params["redirect_uri"])
        if redirect.scheme not in ("http", "https") or not redirect.netloc:
            return 400, "", f"Invalid redirect_uri: {params['redirect_uri']}"
        unknown = [scope for scope in params["scope"].split() if scope not in SCOPES]
        if unknown:
            return 400, "", f"Invalid scope: {' '.join(unknown)}"
        method = params.get("code_challenge_method", "plain")
        if method not in ("S256", "plain"):
            return 400, "", f"Invalid code_challenge_method: {method} (S256 or plain)"
        if len(params["state"]) > 500:
            return 400, "", "Invalid state: longer than 500 characters"
        separator = "&" if redirect.query else "?"
        if params.get("sandbox_deny") == "1":
            answer = urlencode({"error": "access_denied", "state": params["state"]})
            return 302, params["redirect_uri"] + separator + answer, ""
        username = params.get("sandbox_user")
        if username is None:
            return 200, "", self._consent_page(params)
        with self.lock:
            user = self.usernames.get(username.lower())
            if user is None:
                return 400, "", f"Invalid sandbox_user: no user @{username} in the sandbox"
            code = secrets.token_urlsafe(32)
            self.codes[code] = {
                "client_id": params["client_id"],
                "redirect_uri": params["redirect_uri"],
                "scopes": list(dict.fromkeys(params["scope"].split())),
                "challenge": params["code_challenge"],
                "method": method,
                "user_id": user["id"],
                "expires": self.clock.now() + timedelta(seconds=CODE_LIFETIME),
            }
        answer = urlencode({"state": params["state"], "code": code})
        return 302, params["redirect_uri"] + separator + answer, ""

    def _consent_page(self, params: dict[str, str]) -> str:
        with self.lock:
            users = list(self.users.values())
        links = "\n".join(
            f'<li><a href="/i/oauth2/authorize?'
            f'{html.escape(urlencode(params | {"sandbox_user": u["username"]}))}">'
            f"Authorize as @{html.escape(u['username'])}</a></li>"
            for u in users
        )
        scopes = html.escape(params["scope"])
        cancel = html.escape(urlencode(params | {"sandbox_deny": "1"}))
        return (
            "<!doctype html>\n<title>Authorize app (X API sandbox)</title>\n"
            f"<h1>{html.escape(params['client_id'])} wants to access your account</h1>\n"
            f"<p>Scopes: {scopes}</p>\n<ul>\n{links}\n</ul>\n"
            f'<p><a href="/i/oauth2/authorize?{cancel}">Cancel</a></p>\n'
        )

    def token(self, form: dict[str, str], authorization: str) -> tuple[int, dict]:
        """POST /2/oauth2/token: grant_type authorization_code or refresh_token."""
        client_id = _client_id(form, authorization)
        if client_id is None:
            return 401, NO_CLIENT
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            needed = ("code", "redirect_uri", "code_verifier")
        elif grant_type == "refresh_token":
            needed = ("refresh_token",)
        else:
            return 400, {
                "error": "unsupported_grant_type",
                "error_description": f"grant_type must be authorization_code or refresh_token, "
                f"got [{grant_type}]",
            }
        for name in needed:
            if not form.get(name):
                description = f"Missing required parameter [{name}]."
                return 400, {"error": "invalid_request", "error_description": description}
        now = self.clock.now()
        with self.lock:
            if grant_type == "refresh_token":
                info = self.tokens.get(form["refresh_token"])
                if (
                    info is None
                    or info["kind"] != "refresh"
                    or not info["current"]
                    or info["grant"]["revoked"]
                    or info["grant"]["client_id"] != client_id
                ):
                    return 400, INVALID_TOKEN
                info["current"] = False  # rotation: a refresh token works once
                info["grant"]["refreshed"] += 1
                return 200, self._issue(info["grant"])
            code = self.codes.pop(form["code"], None)  # single use, even when refused
            if (
                code is None
                or now >= code["expires"]
                or code["client_id"] != client_id
                or code["redirect_uri"] != form["redirect_uri"]
                or _challenge(form["code_verifier"], code["method"]) != code["challenge"]
            ):
                return 400, INVALID_TOKEN
            grant = {
                "id": len(self.grants) + 1,
                "user_id": code["user_id"],
                "client_id": client_id,
                "scopes": code["scopes"],
                "created": _stamp(now),
                "refreshed": 0,
                "revoked": False,
            }
            self.grants.append(grant)
            return 200, self._issue(grant)

    def _issue(self, grant: dict) -> dict:
        access = secrets.token_urlsafe(48)
        expires = self.clock.now() + timedelta(seconds=self.access_token_lifetime)
        self.tokens[access] = {"kind": "access", "grant": grant, "expires": expires}
        body = {
            "token_type": "bearer",
            "expires_in": self.access_token_lifetime,
            "access_token": access,
            "scope": " ".join(grant["scopes"]),
        }
        if "offline.access" in grant["scopes"]:
            refresh = secrets.token_urlsafe(48)
            self.tokens[refresh] = {"kind": "refresh", "grant": grant, "current": True}
            body["refresh_token"] = refresh
        return body

    def revoke(self, form: dict[str, str], authorization: str) -> tuple[int, dict]:
        """POST /2/oauth2/revoke: an access token stops working; a refresh token ends its
        grant (every token of it)."""
        client_id = _client_id(form, authorization)
        if client_id is None:
            return 401, NO_CLIENT
        if not form.get("token"):
            description = "Missing required parameter [token]."
            return 400, {"error": "invalid_request", "error_description": description}
        with self.lock:
            info = self.tokens.get(form["token"])
            if info is not None and info["grant"]["client_id"] == client_id:
                if info["kind"] == "access":
                    info["revoked"] = True
                else:
                    info["grant"]["revoked"] = True
        return 200, {"revoked": True}

    def revoke_user(self, username: str) -> int:
        """The user removed the app: every grant of theirs ends. Returns how many did."""
        with self.lock:
            user = self.usernames.get(username.lower())
            if user is None:
                raise FixtureError(f"no user @{username} in the sandbox")
            ended = [g for g in self.grants if g["user_id"] == user["id"] and not g["revoked"]]
            for grant in ended:
                grant["revoked"] = True
            return len(ended)

    def grant_list(self) -> list[dict]:
        """The grants, oldest first, without any token."""
        with self.lock:
            return [
                {
                    "username": self.users[g["user_id"]]["username"],
                    "user_id": g["user_id"],
                    "client_id": g["client_id"],
                    "scopes": list(g["scopes"]),
                    "created": g["created"],
                    "refreshed": g["refreshed"],
                    "revoked": g["revoked"],
                }
                for g in self.grants
            ]

    def authenticate(self, token: str) -> tuple[Auth, bool]:
        """Who a bearer token speaks for, and whether it is (still) valid."""
        with self.lock:
            info = self.tokens.get(token)
            if info is None:
                return APP, True
            auth = Auth("user", info["grant"])
            valid = (
                info["kind"] == "access"
                and not info.get("revoked")
                and not info["grant"]["revoked"]
                and self.clock.now() < info["expires"]
            )
            return auth, valid

    def username_of(self, auth: Auth) -> str | None:
        user = self.users.get(auth.user_id or "")
        return user["username"] if user else None

    # --- billing ----------------------------------------------------------------------------

    def bill(self, route: str, parts: list[str], auth: Auth, body: dict) -> None:
        """Count what a 200 answer served in the ledger of today's UTC day (sandbox clock)."""
        data = body.get("data")
        items = data if isinstance(data, list) else [data] if isinstance(data, dict) else []
        kinds = {Endpoint.USER: "user", "me": "user", "dm_events": "dm_event", "usage": None}
        kind = kinds.get(route, "post")
        served = [(kind, item["id"]) for item in items if kind and "id" in item]
        includes = body.get("includes", {})
        served += [("post", t["id"]) for t in includes.get("tweets", [])]
        served += [("user", u["id"]) for u in includes.get("users", [])]
        owned = route in (Endpoint.TWEETS, Endpoint.MENTIONS) and auth.user_id == parts[0]
        with self.lock:
            day = self.ledger.setdefault(self.clock.now().date(), {k: set() for k in PRICES})
            for resource in served:
                counter = "owned_reads" if owned else f"{resource[0]}_reads"
                day[counter].add(resource)
            # the posts served, whoever paid for them, for GET /2/usage/tweets
            day.setdefault("posts", set()).update(r for r in served if r[0] == "post")

    def billing(self) -> dict:
        """The ledger: per UTC day, the distinct resources charged per kind, and their cost."""
        with self.lock:
            days = []
            for day in sorted(self.ledger):
                counts = {kind: len(self.ledger[day][kind]) for kind in PRICES}
                cost = sum(PRICES[kind] * n for kind, n in counts.items())
                days.append({"date": day.isoformat(), **counts, "cost_usd": round(cost, 6)})
            return {"prices_usd": dict(PRICES), "days": days}

    # --- endpoints --------------------------------------------------------------------------

    def _need_user(self, auth: Auth, scopes: set[str]) -> None:
        if auth.grant is None:
            raise ApiError(403, APP_ONLY_FORBIDDEN)
        if not scopes <= set(auth.grant["scopes"]):
            raise ApiError(403, FORBIDDEN)

    def _may_read(self, auth: Auth) -> None:
        """The public reads take app-only or a user token with tweet.read and users.read."""
        if auth.grant is not None:
            self._need_user(auth, {"tweet.read", "users.read"})

    def user_by_username(self, username: str, query: str, auth: Auth = APP) -> dict:
        self._may_read(auth)
        q = _Query(query, frozenset({"user.fields", "expansions", "tweet.fields"}))
        user_fields = q.names("user.fields", USER_FIELDS)
        q.names("expansions", USER_EXPANSIONS)
        q.names("tweet.fields", TWEET_FIELDS)
        if not USERNAME.fullmatch(username):
            raise _invalid(
                "username",
                username,
                f"The `username` query parameter value "
                f"[{username}] does not match ^[A-Za-z0-9_]{{1,15}}$",
            )
        user = self.usernames.get(username.lower())
        if user is None:
            detail = f"Could not find user with username: [{username}]."
            return {"errors": [_not_found("user", "username", username, detail)]}
        return {"data": _select(user, USER_DEFAULT, user_fields)}

    def user_tweets(self, user_id: str, query: str, auth: Auth = APP) -> dict:
        return self._timeline(user_id, query, self.timelines, exclude=True, auth=auth)

    def user_mentions(self, user_id: str, query: str, auth: Auth = APP) -> dict:
        return self._timeline(user_id, query, self.mentions, exclude=False, auth=auth)

    def tweets_by_ids(self, query: str, auth: Auth = APP) -> dict:
        self._may_read(auth)
        allowed = {"ids", "tweet.fields", "user.fields", "expansions", *OTHER_FIELDS}
        q = _Query(query, frozenset(allowed))
        ids = [i for i in (q.get("ids") or "").split(",") if i]
        if not ids:
            raise _invalid("ids", "", "The `ids` query parameter can not be empty")
        if len(ids) > 100:
            raise _invalid(
                "ids",
                q.get("ids") or "",
                f"The `ids` query parameter value [{q.get('ids')}] is not between 1 and 100",
            )
        for tweet_id in ids:
            if not ID.fullmatch(tweet_id):
                raise _invalid(
                    "ids",
                    tweet_id,
                    f"The `ids` query parameter value [{tweet_id}] does not match ^[0-9]{{1,19}}$",
                )
        found = [self.tweets[i] for i in dict.fromkeys(ids) if i in self.tweets]
        body = self._tweets_body(found, q, auth)
        missing = [i for i in dict.fromkeys(ids) if i not in self.tweets]
        errors = [
            _not_found("tweet", "ids", i, f"Could not find tweet with ids: [{i}].") for i in missing
        ] + body.pop("errors", [])
        if errors:
            body["errors"] = errors
        return body

    def _timeline(
        self, user_id: str, query: str, source: dict[str, list[dict]], *, exclude: bool, auth: Auth
    ) -> dict:
        self._may_read(auth)
        q = _Query(query, TIMELINE_PARAMS | ({"exclude"} if exclude else set()))
        if not ID.fullmatch(user_id):
            raise _invalid(
                "id",
                user_id,
                f"The `id` query parameter value [{user_id}] does not match ^[0-9]{{1,19}}$",
            )
        max_results = q.max_results()
        since_id, until_id = q.tweet_id("since_id"), q.tweet_id("until_id")
        start, end = q.moment("start_time"), q.moment("end_time")
        if start is not None and end is not None and start >= end:
            value = q.get("start_time") or ""
            raise _invalid(
                "start_time",
                value,
                f"Invalid 'start_time':'{value}'. 'start_time' must be before 'end_time'",
            )
        skipped = q.names("exclude", frozenset({"replies", "retweets"}))
        token = q.get("pagination_token")
        after: int | None = None
        if token is not None:
            if not re.fullmatch(r"[0-9a-z]{1,20}", token):
                raise _invalid(
                    "pagination_token",
                    token,
                    f"The `pagination_token` query parameter value [{token}] is not valid",
                )
            after = int(token, 36)
        q.names("tweet.fields", TWEET_FIELDS)
        q.names("user.fields", USER_FIELDS)
        q.names("expansions", TWEET_EXPANSIONS)
        if user_id not in self.users:
            detail = f"Could not find user with id: [{user_id}]."
            return {"errors": [_not_found("user", "id", user_id, detail)]}
        kept_types = {"replies": "replied_to", "retweets": "retweeted"}
        dropped = {kept_types[name] for name in skipped}
        selected = []
        for tweet in source.get(user_id, []):
            number, created = int(tweet["id"]), parse_stamp(tweet["created_at"])
            if after is not None and number >= after:
                continue
            if since_id is not None and number <= since_id:
                continue
            if since_id is None and start is not None and created < start:
                continue
            if until_id is not None and number >= until_id:
                continue
            if until_id is None and end is not None and created >= end:
                continue
            if any(r["type"] in dropped for r in tweet.get("referenced_tweets", [])):
                continue
            selected.append(tweet)
        page = selected[:max_results]
        body = self._tweets_body(page, q, auth)
        meta: dict = {"result_count": len(page)}
        if page:
            meta["newest_id"], meta["oldest_id"] = page[0]["id"], page[-1]["id"]
        if len(selected) > max_results:
            meta["next_token"] = _to_base36(int(page[-1]["id"]))
        body["meta"] = meta
        return body

    def _tweets_body(self, tweets: list[dict], q: _Query, auth: Auth) -> dict:
        tweet_fields = q.names("tweet.fields", TWEET_FIELDS)
        user_fields = q.names("user.fields", USER_FIELDS)
        expansions = set(q.names("expansions", TWEET_EXPANSIONS))
        if not tweets:
            return {}
        user_ids: list[str] = []
        ref_ids: list[str] = []
        for tweet in tweets:
            if "author_id" in expansions:
                user_ids.append(tweet["author_id"])
            if "in_reply_to_user_id" in expansions and "in_reply_to_user_id" in tweet:
                user_ids.append(tweet["in_reply_to_user_id"])
            if "entities.mentions.username" in expansions:
                for mention in tweet.get("entities", {}).get("mentions", []):
                    user = self.usernames.get(mention["username"].lower())
                    user_ids.extend([user["id"]] if user else [])
            if expansions & {"referenced_tweets.id", "referenced_tweets.id.author_id"}:
                ref_ids.extend(r["id"] for r in tweet.get("referenced_tweets", []))
        referenced = [self.tweets[i] for i in dict.fromkeys(ref_ids) if i in self.tweets]
        gone = [i for i in dict.fromkeys(ref_ids) if i not in self.tweets]
        if "referenced_tweets.id.author_id" in expansions:
            user_ids.extend(t["author_id"] for t in referenced)
        users = [self.users[i] for i in dict.fromkeys(user_ids) if i in self.users]
        refused: list[dict] = []
        body: dict = {"data": self._posts(tweets, tweet_fields, auth, "data", refused)}
        includes: dict = {}
        if users:
            includes["users"] = [_select(u, USER_DEFAULT, user_fields) for u in users]
        if referenced and "referenced_tweets.id" in expansions:
            includes["tweets"] = self._posts(referenced, tweet_fields, auth, "includes", refused)
        if includes:
            body["includes"] = includes
        if refused:
            body["errors"] = refused
        if gone and "referenced_tweets.id" in expansions:  # deleted: the real API says so
            body["errors"] = refused + [
                _not_found(
                    "tweet",
                    "referenced_tweets.id",
                    i,
                    f"Could not find tweet with referenced_tweets.id: [{i}].",
                )
                for i in gone
            ]
        return body

    def _posts(
        self, tweets: list[dict], fields: list[str], auth: Auth, section: str, refused: list
    ) -> list[dict]:
        """The posts with the fields asked; a private metric only to its author's user token
        and for 30 days, otherwise left out with a Field Authorization Error per key."""
        private = [f for f in fields if f in PRIVATE_METRICS]
        since = self.clock.now() - HORIZON
        selected = []
        for tweet in tweets:
            post = _select(tweet, TWEET_DEFAULT, fields)
            if private and not (
                auth.user_id == tweet["author_id"] and parse_stamp(tweet["created_at"]) >= since
            ):
                for field in private:
                    post.pop(field, None)
                    refused += _field_errors(tweet, field, section)
            selected.append(post)
        return selected

    def users_me(self, query: str, auth: Auth = APP) -> dict:
        self._need_user(auth, {"tweet.read", "users.read"})
        q = _Query(query, frozenset({"user.fields", "expansions", "tweet.fields"}))
        user_fields = q.names("user.fields", USER_FIELDS)
        q.names("expansions", USER_EXPANSIONS)
        q.names("tweet.fields", TWEET_FIELDS)
        return {"data": _select(self.users[auth.grant["user_id"]], USER_DEFAULT, user_fields)}

    def dm_events_list(self, query: str, auth: Auth = APP) -> dict:
        """GET /2/dm_events: the events of the user's conversations of the last 30 days,
        newest first."""
        self._need_user(auth, {"dm.read", "tweet.read", "users.read"})
        allowed = {"max_results", "pagination_token", "event_types", "dm_event.fields"}
        allowed |= {"expansions", "user.fields", "tweet.fields", "media.fields"}
        q = _Query(query, frozenset(allowed))
        max_results = q.number("max_results", 1, 100, 100)
        types = set(q.names("event_types", frozenset(EVENT_TYPES)) or EVENT_TYPES)
        fields = q.names("dm_event.fields", DM_EVENT_FIELDS)
        user_fields = q.names("user.fields", USER_FIELDS)
        tweet_fields = q.names("tweet.fields", TWEET_FIELDS)
        expansions = set(q.names("expansions", DM_EXPANSIONS))
        token = q.get("pagination_token")
        cursor = None if token is None else _read_page_token(token)
        if token is not None and cursor is None:
            raise _invalid(
                "pagination_token",
                token,
                f"The `pagination_token` query parameter value [{token}] is not valid",
            )
        me, now = auth.grant["user_id"], self.clock.now()
        events = [
            e
            for e in self.dm_events
            if e["event_type"] in types
            and (me in e.get("participant_ids", []) or me in e["dm_conversation_id"].split("-"))
            and now - HORIZON <= parse_stamp(e["created_at"]) <= now
        ]
        if cursor is None:
            page = events[:max_results]
        elif cursor[0] == "n":
            page = [e for e in events if int(e["id"]) < cursor[1]][:max_results]
        else:
            page = [e for e in events if int(e["id"]) > cursor[1]][-max_results:]
        meta: dict = {"result_count": len(page)}
        if page and int(events[-1]["id"]) < int(page[-1]["id"]):
            meta["next_token"] = _page_token("n", page[-1]["id"])
        if page and token is not None and int(events[0]["id"]) > int(page[0]["id"]):
            meta["previous_token"] = _page_token("p", page[0]["id"])
        if not page:
            return {"meta": meta}
        user_ids: list[str] = []
        ref_ids: list[str] = []
        for event in page:
            if "sender_id" in expansions and "sender_id" in event:
                user_ids.append(event["sender_id"])
            if "participant_ids" in expansions:
                user_ids += event.get("participant_ids", [])
            if "referenced_tweets.id" in expansions:
                ref_ids += [r["id"] for r in event.get("referenced_tweets", [])]
        body: dict = {"data": [_select(e, DM_EVENT_DEFAULT, fields) for e in page]}
        users = [self.users[i] for i in dict.fromkeys(user_ids) if i in self.users]
        tweets = [self.tweets[i] for i in dict.fromkeys(ref_ids) if i in self.tweets]
        includes: dict = {}
        refused: list[dict] = []
        if users:
            includes["users"] = [_select(u, USER_DEFAULT, user_fields) for u in users]
        if tweets:
            includes["tweets"] = self._posts(tweets, tweet_fields, auth, "includes", refused)
        if includes:
            body["includes"] = includes
        if refused:
            body["errors"] = refused
        body["meta"] = meta
        return body

    def usage_tweets(self, query: str, auth: Auth = APP) -> dict:
        """GET /2/usage/tweets: the posts served per UTC day, each counted once a day."""
        if auth.grant is not None:
            raise ApiError(403, USER_CONTEXT_FORBIDDEN)
        q = _Query(query, frozenset({"days", "usage.fields"}))
        days = q.number("days", 1, 90, 7)
        fields = q.names("usage.fields", USAGE_FIELDS) or USAGE_DEFAULT
        today = self.clock.now().date()
        period = today.replace(day=1)  # the cap resets on the 1st of each month
        reset = (period + timedelta(days=32)).replace(day=1)
        served = {day: len(kinds.get("posts", ())) for day, kinds in self.ledger.items()}
        daily = [
            {"date": f"{day.isoformat()}T00:00:00.000Z", "usage": served.get(day, 0)}
            for day in (today - timedelta(days=n) for n in reversed(range(days)))
        ]
        usage = {
            "cap_reset_day": (reset - today).days,
            "project_id": PROJECT_ID,
            "project_cap": PROJECT_CAP,
            "project_usage": sum(n for day, n in served.items() if period <= day <= today),
            "daily_project_usage": {"project_id": int(PROJECT_ID), "usage": daily},
            "daily_client_app_usage": [
                {"client_app_id": CLIENT_APP_ID, "usage": daily, "usage_result_count": len(daily)}
            ],
        }
        return {"data": {key: value for key, value in usage.items() if key in fields}}


def _select(obj: dict, default: tuple[str, ...], requested: list[str]) -> dict:
    wanted = set(default) | set(requested)
    return {key: value for key, value in obj.items() if key in wanted}


# The SandboxServer method answering an endpoint, called with the path's parts, the query and
# the request's Auth; the other endpoints named by their OTHER_RATE_LIMITS key.
ANSWERS: dict[str, Callable[..., dict]] = {
    Endpoint.USER: SandboxServer.user_by_username,
    Endpoint.TWEETS: SandboxServer.user_tweets,
    Endpoint.MENTIONS: SandboxServer.user_mentions,
    Endpoint.LOOKUP: SandboxServer.tweets_by_ids,
    "me": SandboxServer.users_me,
    "dm_events": SandboxServer.dm_events_list,
    "usage": SandboxServer.usage_tweets,
}
PATHS = {"me": "/2/users/me", "dm_events": "/2/dm_events", "usage": "/2/usage/tweets"}
# An endpoint's path as a pattern: each `:name` of it a part (/2/users/me before /2/users/:id)
ROUTES = [(re.compile(re.escape(path)), name) for name, path in PATHS.items()] + [
    (re.compile(re.sub(r":\w+", "([^/]+)", e.path)), e) for e in ANSWERS if isinstance(e, Endpoint)
]
AUTHORIZE_PATH = "/i/oauth2/authorize"
OAUTH_PATHS = ("/2/oauth2/token", "/2/oauth2/revoke")


class _Handler(BaseHTTPRequestHandler):
    server: SandboxServer
    protocol_version = "HTTP/1.1"
    # headers and body go out in separate writes: with Nagle's algorithm on, each response
    # of a kept-alive connection waited for the client's delayed ACK (~40 ms)
    disable_nagle_algorithm = True

    def version_string(self) -> str:
        return "x-api-v2-sandbox"

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The Date header by the sandbox's clock, as X's is by X's (the 30 days of DMs)."""
        return formatdate(self.server.clock.now().timestamp(), usegmt=True)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: no access log on stderr (headers, the token included, are never logged)."""

    def _send_bytes(
        self,
        status: int,
        data: bytes,
        headers: dict[str, str],
        content_type: str = "application/json; charset=utf-8",
    ) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _send(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        self._send_bytes(status, data, headers or {})

    def _read_body(self) -> bytes:
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length else b""

    def _read_json(self) -> object:
        raw = self._read_body()
        try:
            return json.loads(raw or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise FixtureError(f"the request body is not JSON: {exc}") from None

    def _log(self, method: str, path: str, query: dict) -> dict:
        entry = {"method": method, "path": path, "query": query, "time": time.time()}
        with self.server.lock:
            self.server.requests.append(entry)
        return entry

    # --- the API ----------------------------------------------------------------------------

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path.startswith("/_sandbox/"):
            self._control("GET", url.path)
            return
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        if url.path == AUTHORIZE_PATH:
            self._authorize(query)
            return
        found = [(e, m) for p, e in ROUTES if (m := p.fullmatch(url.path))]
        endpoint = found[0][0] if found else None
        entry = self._log("GET", url.path, query)
        fault = self.server.take_fault(url.path)
        if fault is not None and fault["kind"] == "drop":
            entry.update(status=None, fault="drop")
            self.close_connection = True  # no response at all: the client sees the socket close
            return
        headers, exceeded = self.server.count_call(endpoint)
        if fault is not None and fault["kind"] in FAULT_BODIES:
            self._send_fault(fault, entry, headers)
            return
        status, body = self._answer(found, url.query, headers, exceeded, entry)
        entry["status"] = status
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        if fault is not None:  # malformed: a 200 whose JSON body is cut short
            entry.update(status=200, fault="malformed")
            status, data = 200, data[: max(1, len(data) // 2)]
        self._send_bytes(status, data, headers)

    def _send_fault(self, fault: dict, entry: dict, headers: dict[str, str]) -> None:
        status, body = FAULT_BODIES[fault["kind"]]
        if fault["kind"] == "429":
            reset = math.ceil(time.time() + fault["reset_in"])
            headers = dict(headers, **{"x-rate-limit-remaining": "0"})
            headers["x-rate-limit-reset"] = str(reset)
        entry.update(status=status, fault=fault["kind"])
        self._send(status, body, headers)

    def _answer(
        self, found: list, query: str, headers: dict[str, str], exceeded: bool, entry: dict
    ) -> tuple[int, dict]:
        entry["auth"] = None
        if not found:
            return 404, NOT_FOUND
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return 401, UNAUTHORIZED
        auth, valid = self.server.authenticate(token.strip())
        entry["auth"] = auth.kind
        if auth.grant is not None:
            entry["username"] = self.server.username_of(auth)
        if not valid:
            return 401, UNAUTHORIZED
        if exceeded:
            return 429, TOO_MANY
        endpoint, match = found[0]
        parts = [unquote(part) for part in match.groups()]
        try:
            with self.server.lock:
                body = ANSWERS[endpoint](self.server, *parts, query, auth=auth)
                self.server.bill(endpoint, parts, auth, body)
                return 200, body
        except ApiError as error:
            return error.status, error.body
        except Exception:  # a sandbox bug: answer like the real API's 500, and show it
            traceback.print_exc()
            return 500, SERVER_ERROR

    def _authorize(self, query: dict[str, str]) -> None:
        # the query holds no secret (a code challenge, not the verifier); the code is sent back
        # in the redirect only
        entry = self._log("GET", AUTHORIZE_PATH, query)
        status, location, text = self.server.authorize(query)
        entry["status"] = status
        if status == 302:
            self._send_bytes(302, b"", {"location": location}, "text/plain; charset=utf-8")
        elif status == 200:
            self._send_bytes(200, text.encode(), {}, "text/html; charset=utf-8")
        else:
            self._send_bytes(status, text.encode(), {}, "text/plain; charset=utf-8")

    def _oauth(self, path: str) -> None:
        """POST /2/oauth2/token and /2/oauth2/revoke (form-encoded). The log keeps only the
        grant_type: the form holds codes, verifiers and tokens."""
        form = {
            k: v[-1] for k, v in parse_qs(self._read_body().decode("utf-8", "replace")).items() if v
        }
        logged = {"grant_type": form["grant_type"]} if "grant_type" in form else {}
        entry = self._log("POST", path, logged)
        fault = self.server.take_fault(path)
        if fault is not None and fault["kind"] == "drop":
            entry.update(status=None, fault="drop")
            self.close_connection = True
            return
        if fault is not None and fault["kind"] in FAULT_BODIES:
            self._send_fault(fault, entry, {})
            return
        authorization = self.headers.get("Authorization", "")
        if path.endswith("/token"):
            status, body = self.server.token(form, authorization)
        else:
            status, body = self.server.revoke(form, authorization)
        entry["status"] = status
        data = json.dumps(body, separators=(",", ":")).encode()
        if fault is not None:  # malformed
            entry["fault"] = "malformed"
            data = data[: max(1, len(data) // 2)]
        self._send_bytes(status, data, {"cache-control": "no-store"})

    # --- control endpoints (no token, outside /2/) ------------------------------------------

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        if path in OAUTH_PATHS:
            self._oauth(path)
        else:
            self._control("POST", path)

    def do_DELETE(self) -> None:
        self._control("DELETE", urlsplit(self.path).path)

    def do_PUT(self) -> None:
        self._control("PUT", urlsplit(self.path).path)

    do_PATCH = do_PUT

    def _control(self, method: str, path: str) -> None:
        server = self.server
        try:
            body = self._read_json() if method in ("POST", "PUT") else None
            if path == "/_sandbox/faults" and method == "GET":
                with server.lock:
                    self._send(200, {"faults": [dict(f) for f in server.faults]})
            elif path == "/_sandbox/faults" and method == "POST":
                faults = body if isinstance(body, list) else [body]
                self._send(200, {"faults": server.add_faults(faults)})
            elif path == "/_sandbox/faults" and method == "DELETE":
                server.clear_faults()
                self._send(200, {"faults": []})
            elif path == "/_sandbox/requests" and method == "GET":
                self._send(200, server.request_log())
            elif path == "/_sandbox/requests" and method == "DELETE":
                with server.lock:
                    server.requests.clear()
                self._send(200, [])
            elif path in ("/_sandbox/tweets", "/_sandbox/users") and method == "POST":
                items = body if isinstance(body, list) else [body]
                if path.endswith("/users"):
                    server.add_users(items)
                else:
                    server.add_tweets(items)
                self._send(200, {"stored": [i.get("id") for i in items if isinstance(i, dict)]})
            elif path == "/_sandbox/dm_events" and method == "POST":
                items = body if isinstance(body, list) else [body]
                server.add_dm_events(items)
                self._send(200, {"stored": [i.get("id") for i in items if isinstance(i, dict)]})
            elif (
                m := re.fullmatch(r"/_sandbox/tweets/([0-9]{1,19})", path)
            ) and method == "DELETE":
                deleted = server.delete_tweet(m[1])
                if deleted:
                    self._send(200, {"deleted": deleted})
                else:
                    self._send(404, {"error": f"no tweet with id {m[1]}"})
            elif path == "/_sandbox/clock" and method in ("GET", "POST"):
                if method == "POST":
                    _set_clock(server.clock, body)
                self._send(200, {"now": _stamp(server.clock.now())})
            elif path == "/_sandbox/oauth/revoke" and method == "POST":
                username = body.get("username") if isinstance(body, dict) else None
                if not isinstance(username, str):
                    raise FixtureError('expected {"username": "..."}')
                self._send(200, {"revoked_grants": server.revoke_user(username)})
            elif path == "/_sandbox/oauth/grants" and method == "GET":
                self._send(200, {"grants": server.grant_list()})
            elif path == "/_sandbox/billing" and method == "GET":
                self._send(200, server.billing())
            else:
                self._send(404, {"error": f"no control endpoint {method} {path}"})
        except FixtureError as exc:
            self._send(400, {"error": str(exc)})


def _set_clock(clock: Clock, body: object) -> None:
    """POST /_sandbox/clock: {"now": RFC 3339} or {"advance_seconds": n}."""
    if isinstance(body, dict) and set(body) == {"now"} and isinstance(body["now"], str):
        try:
            moment = datetime.fromisoformat(body["now"].replace("Z", "+00:00"))
        except ValueError:
            moment = None
        if moment is None or moment.tzinfo is None:
            raise FixtureError(f"clock: now {body['now']!r} is not an RFC 3339 time with a zone")
        clock.set(moment)
    elif (
        isinstance(body, dict)
        and set(body) == {"advance_seconds"}
        and isinstance(body["advance_seconds"], int | float)
        and not isinstance(body["advance_seconds"], bool)
    ):
        clock.advance(body["advance_seconds"])
    else:
        raise FixtureError('clock: expected {"now": "<RFC 3339>"} or {"advance_seconds": n}')


def make_server(
    port: int = 0,
    company: SampleCompany | None = None,
    *,
    users: list[dict] | None = None,
    tweets: list[dict] | None = None,
    dm_events: list[dict] | None = None,
    timeline_cap: int = TIMELINE_CAP,
    mentions_cap: int = MENTIONS_CAP,
    faults: list[dict] | None = None,
    rate_limits: dict[str, int] | None = None,
    rate_window: int = RATE_WINDOW,
    host: str = "127.0.0.1",
    now: datetime | None = None,
    access_token_lifetime: int = ACCESS_TOKEN_LIFETIME,
) -> SandboxServer:
    """A sandbox on 127.0.0.1:port (0 picks a free port: see ``server.server_address[1]``).

    Serves ``company`` (the default sample company when nothing is given); ``users``,
    ``tweets`` and ``dm_events`` replace the company's lists when given (other ``users``
    leave out the company's DM events unless ``dm_events`` is given). ``timeline_cap`` and
    ``mentions_cap`` are the reach of the timelines; ``faults`` are queued as if POSTed to
    /_sandbox/faults; ``rate_limits`` overrides the per-endpoint limits (keys of RATE_LIMITS)
    and ``rate_window`` their window in seconds. The clock starts at ``now``, by default the
    end of the data (the midnight UTC after its latest post or DM event: the generated sample's
    start + days), so that the sample is recent; the real time when there is no data.
    """
    if company is None:
        company = generate() if users is None and tweets is None else SampleCompany([], [])
    users = company.users if users is None else users
    tweets = company.tweets if tweets is None else tweets
    if dm_events is None:  # the company's DMs are between its users
        dm_events = company.dm_events if users is company.users else []
    return SandboxServer(
        port,
        users,
        tweets,
        host,
        timeline_cap=timeline_cap,
        mentions_cap=mentions_cap,
        faults=faults,
        rate_limits=rate_limits,
        rate_window=rate_window,
        dm_events=dm_events,
        now=now or data_end(tweets, dm_events),
        access_token_lifetime=access_token_lifetime,
    )


def data_end(tweets: list[dict], dm_events: list[dict]) -> datetime | None:
    """The midnight UTC after the latest post or DM event (None without any)."""
    stamps = [parse_stamp(item["created_at"]) for item in [*tweets, *dm_events]]
    if not stamps:
        return None
    latest = max(stamps).astimezone(UTC)
    return datetime.combine(latest.date() + timedelta(days=1), datetime.min.time(), UTC)


def serve(
    port: int,
    seed: int = 7,
    host: str = "127.0.0.1",
    *,
    start: date = SAMPLE_START,
    days: int = SAMPLE_DAYS,
    fixture: str | Path | None = None,
    timeline_cap: int = TIMELINE_CAP,
    mentions_cap: int = MENTIONS_CAP,
    faults: list[dict] | None = None,
    now: datetime | None = None,
    access_token_lifetime: int = ACCESS_TOKEN_LIFETIME,
) -> None:
    """Serve the sample company of ``seed`` (its ``days`` from ``start``, or the fixture
    file) until SIGINT or SIGTERM.

    ``host`` stays on loopback except inside a container, where 0.0.0.0 lets other services in.
    The clock starts at ``now``: by default start + days (00:00 UTC) for the sample, the
    midnight after the latest post or DM event for a fixture.
    """
    if fixture is not None:
        company = load_fixture_company(fixture)
    else:
        company = generate(seed, start, days)
        now = now or datetime.combine(start + timedelta(days=days), datetime.min.time(), UTC)
    server = make_server(
        port,
        company,
        timeline_cap=timeline_cap,
        mentions_cap=mentions_cap,
        faults=faults,
        host=host,
        now=now,
        access_token_lifetime=access_token_lifetime,
    )
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    print(f"sandbox listening on {server.start()}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"{text}: no time zone")
    return moment


def main(argv: list[str] | None = None) -> int:
    """``python -m devtools.x_sandbox``: `engagement sandbox`'s options, and the clock's and
    the access tokens' (``--now``, ``--access-token-lifetime``)."""
    parser = argparse.ArgumentParser(
        prog="python -m devtools.x_sandbox",
        description="Serve the sample company (or a fixture) over X API v2, with user context.",
    )
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--host", default="127.0.0.1", help="bind address")
    parser.add_argument("--start", type=date.fromisoformat, default=SAMPLE_START)
    parser.add_argument("--days", type=int, default=SAMPLE_DAYS)
    parser.add_argument("--fixture", help="a JSON file of users, tweets and dm_events to serve")
    parser.add_argument("--timeline-cap", type=int, default=TIMELINE_CAP)
    parser.add_argument("--mentions-cap", type=int, default=MENTIONS_CAP)
    parser.add_argument(
        "--fault", action="append", default=[], help="KIND:TIMES:PATH_REGEX or a JSON object"
    )
    parser.add_argument(
        "--now",
        type=_moment,
        help="the sandbox clock's start, RFC 3339 with a zone (default: the end of the data)",
    )
    parser.add_argument(
        "--access-token-lifetime",
        type=int,
        default=ACCESS_TOKEN_LIFETIME,
        help="seconds an access token lives (sandbox clock)",
    )
    args = parser.parse_args(argv)
    try:
        serve(
            args.port,
            args.seed,
            args.host,
            start=args.start,
            days=args.days,
            fixture=args.fixture,
            timeline_cap=args.timeline_cap,
            mentions_cap=args.mentions_cap,
            faults=[parse_fault_spec(spec) for spec in args.fault],
            now=args.now,
            access_token_lifetime=args.access_token_lifetime,
        )
    except (UsageError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
