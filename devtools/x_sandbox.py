"""A local X API v2 sandbox that serves a sample company, so ``tweepy.Client`` runs unchanged.

Implements, after the official OpenAPI document, the four reads the extractor uses:
GET /2/users/by/username/{username}, /2/users/{id}/tweets, /2/users/{id}/mentions and
/2/tweets?ids=..., with field selection, expansions, time and id bounds, stable pagination,
bearer-token auth, the real per-endpoint app-only rate limits and headers, the reach caps of
the timelines (3,200 most recent posts, 800 most recent mentions), edit chains (timelines serve
the latest version, a lookup by id any version) and the real API's problem bodies.

For tests it also injects faults (429, 500, 503, malformed pages, dropped connections), lets
posts be added, edited, re-metered or deleted while it runs, and logs the requests it received
(never their headers). Control endpoints live under /_sandbox/ and need no token.
"""

from __future__ import annotations

import json
import math
import re
import signal
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from datetime import date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

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
        value = self.params.get("max_results", "10")
        if not re.fullmatch(r"-?[0-9]{1,9}", value) or not 5 <= int(value) <= 100:
            raise _invalid(
                "max_results",
                value,
                f"The `max_results` query parameter value [{value}] is not between 5 and 100",
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


def load_fixture(path: str | Path) -> tuple[list[dict], list[dict]]:
    """Users and tweets of a fixture file, JSON ``{"users": [...], "tweets": [...]}`` holding
    X API v2 user and tweet objects; raises FixtureError with a clear message when invalid."""
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
    return users, tweets


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
        rate_limits: dict[Endpoint, int] | None = None,
        rate_window: int = RATE_WINDOW,
    ) -> None:
        if timeline_cap < 0 or mentions_cap < 0:
            raise FixtureError("--timeline-cap and --mentions-cap must be >= 0")
        users, tweets = check_data(users, tweets)
        super().__init__((host, port), _Handler)
        self.lock = threading.RLock()
        self.timeline_cap, self.mentions_cap = timeline_cap, mentions_cap
        self.rate_limits = RATE_LIMITS | (rate_limits or {})
        self.rate_window = rate_window
        # endpoint (None: any other path) -> [window start, requests in window]
        self.calls: dict[Endpoint | None, list[int]] = {}
        self.faults: list[dict] = [check_fault(f) for f in faults or []]
        self.requests: deque[dict] = deque(maxlen=REQUEST_LOG_SIZE)
        self.users: dict[str, dict] = {}
        self.usernames: dict[str, dict] = {}
        self.tweets: dict[str, dict] = {}
        self.timelines: dict[str, list[dict]] = {}
        self.mentions: dict[str, list[dict]] = {}
        self.add_users(users)
        self.add_tweets(tweets)

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

    def count_call(self, endpoint: Endpoint | None) -> tuple[dict[str, str], bool]:
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

    # --- endpoints --------------------------------------------------------------------------

    def user_by_username(self, username: str, query: str) -> dict:
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

    def user_tweets(self, user_id: str, query: str) -> dict:
        return self._timeline(user_id, query, self.timelines, exclude=True)

    def user_mentions(self, user_id: str, query: str) -> dict:
        return self._timeline(user_id, query, self.mentions, exclude=False)

    def tweets_by_ids(self, query: str) -> dict:
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
        body = self._tweets_body(found, q)
        missing = [i for i in dict.fromkeys(ids) if i not in self.tweets]
        errors = [
            _not_found("tweet", "ids", i, f"Could not find tweet with ids: [{i}].") for i in missing
        ] + body.pop("errors", [])
        if errors:
            body["errors"] = errors
        return body

    def _timeline(
        self, user_id: str, query: str, source: dict[str, list[dict]], *, exclude: bool
    ) -> dict:
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
        body = self._tweets_body(page, q)
        meta: dict = {"result_count": len(page)}
        if page:
            meta["newest_id"], meta["oldest_id"] = page[0]["id"], page[-1]["id"]
        if len(selected) > max_results:
            meta["next_token"] = _to_base36(int(page[-1]["id"]))
        body["meta"] = meta
        return body

    def _tweets_body(self, tweets: list[dict], q: _Query) -> dict:
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
        body: dict = {"data": [_select(t, TWEET_DEFAULT, tweet_fields) for t in tweets]}
        includes: dict = {}
        if users:
            includes["users"] = [_select(u, USER_DEFAULT, user_fields) for u in users]
        if referenced and "referenced_tweets.id" in expansions:
            includes["tweets"] = [_select(t, TWEET_DEFAULT, tweet_fields) for t in referenced]
        if includes:
            body["includes"] = includes
        if gone and "referenced_tweets.id" in expansions:  # deleted: the real API says so
            body["errors"] = [
                _not_found(
                    "tweet",
                    "referenced_tweets.id",
                    i,
                    f"Could not find tweet with referenced_tweets.id: [{i}].",
                )
                for i in gone
            ]
        return body


def _select(obj: dict, default: tuple[str, ...], requested: list[str]) -> dict:
    wanted = set(default) | set(requested)
    return {key: value for key, value in obj.items() if key in wanted}


# The SandboxServer method answering an endpoint, called with the path's parts and the query.
ANSWERS: dict[Endpoint, Callable[..., dict]] = {
    Endpoint.USER: SandboxServer.user_by_username,
    Endpoint.TWEETS: SandboxServer.user_tweets,
    Endpoint.MENTIONS: SandboxServer.user_mentions,
    Endpoint.LOOKUP: SandboxServer.tweets_by_ids,
}
# An endpoint's path as a pattern: each `:name` of it a part
ROUTES = [(re.compile(re.sub(r":\w+", "([^/]+)", e.path)), e) for e in ANSWERS]


class _Handler(BaseHTTPRequestHandler):
    server: SandboxServer
    protocol_version = "HTTP/1.1"
    # headers and body go out in separate writes: with Nagle's algorithm on, each response
    # of a kept-alive connection waited for the client's delayed ACK (~40 ms)
    disable_nagle_algorithm = True

    def version_string(self) -> str:
        return "x-api-v2-sandbox"

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: no access log on stderr (headers, the token included, are never logged)."""

    def _send_bytes(self, status: int, data: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("content-type", "application/json; charset=utf-8")
        self.send_header("content-length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _send(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        self._send_bytes(status, data, headers or {})

    def _read_json(self) -> object:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise FixtureError(f"the request body is not JSON: {exc}") from None

    # --- the API ----------------------------------------------------------------------------

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path.startswith("/_sandbox/"):
            self._control("GET", url.path)
            return
        found = [(e, m) for p, e in ROUTES if (m := p.fullmatch(url.path))]
        endpoint = found[0][0] if found else None
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        entry = {"method": "GET", "path": url.path, "query": query, "time": time.time()}
        with self.server.lock:
            self.server.requests.append(entry)
        fault = self.server.take_fault(url.path)
        if fault is not None and fault["kind"] == "drop":
            entry.update(status=None, fault="drop")
            self.close_connection = True  # no response at all: the client sees the socket close
            return
        headers, exceeded = self.server.count_call(endpoint)
        if fault is not None and fault["kind"] in FAULT_BODIES:
            status, body = FAULT_BODIES[fault["kind"]]
            if fault["kind"] == "429":
                reset = math.ceil(time.time() + fault["reset_in"])
                headers = dict(headers, **{"x-rate-limit-remaining": "0"})
                headers["x-rate-limit-reset"] = str(reset)
            entry.update(status=status, fault=fault["kind"])
            self._send(status, body, headers)
            return
        status, body = self._answer(found, url.query, headers, exceeded)
        entry["status"] = status
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        if fault is not None:  # malformed: a 200 whose JSON body is cut short
            entry.update(status=200, fault="malformed")
            status, data = 200, data[: max(1, len(data) // 2)]
        self._send_bytes(status, data, headers)

    def _answer(
        self, found: list, query: str, headers: dict[str, str], exceeded: bool
    ) -> tuple[int, dict]:
        if not found:
            return 404, NOT_FOUND
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return 401, UNAUTHORIZED
        if exceeded:
            return 429, TOO_MANY
        endpoint, match = found[0]
        parts = [unquote(part) for part in match.groups()]
        try:
            with self.server.lock:
                return 200, ANSWERS[endpoint](self.server, *parts, query)
        except ApiError as error:
            return error.status, error.body
        except Exception:  # a sandbox bug: answer like the real API's 500, and show it
            traceback.print_exc()
            return 500, SERVER_ERROR

    # --- control endpoints (no token, outside /2/) ------------------------------------------

    def do_POST(self) -> None:
        self._control("POST", urlsplit(self.path).path)

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
            elif (
                m := re.fullmatch(r"/_sandbox/tweets/([0-9]{1,19})", path)
            ) and method == "DELETE":
                deleted = server.delete_tweet(m[1])
                if deleted:
                    self._send(200, {"deleted": deleted})
                else:
                    self._send(404, {"error": f"no tweet with id {m[1]}"})
            else:
                self._send(404, {"error": f"no control endpoint {method} {path}"})
        except FixtureError as exc:
            self._send(400, {"error": str(exc)})


def make_server(
    port: int = 0,
    company: SampleCompany | None = None,
    *,
    users: list[dict] | None = None,
    tweets: list[dict] | None = None,
    timeline_cap: int = TIMELINE_CAP,
    mentions_cap: int = MENTIONS_CAP,
    faults: list[dict] | None = None,
    rate_limits: dict[Endpoint, int] | None = None,
    rate_window: int = RATE_WINDOW,
    host: str = "127.0.0.1",
) -> SandboxServer:
    """A sandbox on 127.0.0.1:port (0 picks a free port: see ``server.server_address[1]``).

    Serves ``company`` (the default sample company when nothing is given); ``users`` and
    ``tweets`` replace the company's lists when given. ``timeline_cap`` and ``mentions_cap``
    are the reach of the timelines; ``faults`` are queued as if POSTed to /_sandbox/faults;
    ``rate_limits`` overrides the per-endpoint limits (keys of RATE_LIMITS) and
    ``rate_window`` their window in seconds.
    """
    if company is None:
        company = generate() if users is None and tweets is None else SampleCompany([], [])
    return SandboxServer(
        port,
        company.users if users is None else users,
        company.tweets if tweets is None else tweets,
        host,
        timeline_cap=timeline_cap,
        mentions_cap=mentions_cap,
        faults=faults,
        rate_limits=rate_limits,
        rate_window=rate_window,
    )


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
) -> None:
    """Serve the sample company of ``seed`` (its ``days`` from ``start``, or the fixture
    file) until SIGINT or SIGTERM.

    ``host`` stays on loopback except inside a container, where 0.0.0.0 lets other services in.
    """
    if fixture is not None:
        users, tweets = load_fixture(fixture)
    else:
        company = generate(seed, start, days)
        users, tweets = company.users, company.tweets
    server = make_server(
        port,
        users=users,
        tweets=tweets,
        timeline_cap=timeline_cap,
        mentions_cap=mentions_cap,
        faults=faults,
        host=host,
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
