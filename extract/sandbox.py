"""A local X API v2 sandbox that serves a sample company, so ``tweepy.Client`` runs unchanged.

Implements, after the official OpenAPI document, the four reads the extractor uses:
GET /2/users/by/username/{username}, /2/users/{id}/tweets, /2/users/{id}/mentions and
/2/tweets?ids=..., with field selection, expansions, time and id bounds, stable pagination,
bearer-token auth, rate-limit headers and the real API's problem bodies.
"""

from __future__ import annotations

import json
import re
import signal
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from extract.sample import SampleCompany, generate, parse_stamp

RATE_LIMIT = 10_000  # requests per endpoint per window: generous, the sandbox is for testing
RATE_WINDOW = 15 * 60
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
NOT_FOUND = {"title": "Not Found", "type": "about:blank", "status": 404, "detail": "Not Found"}


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


class SandboxServer(ThreadingHTTPServer):
    """Holds the data and the per-endpoint rate-limit counters; requests go to _Handler."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, port: int, users: list[dict], tweets: list[dict], host: str = "127.0.0.1"
    ) -> None:
        super().__init__((host, port), _Handler)
        self.users = {u["id"]: u for u in users}
        self.usernames = {u["username"].lower(): u for u in users}
        self.tweets = {t["id"]: t for t in tweets}
        newest_first = sorted(tweets, key=lambda t: int(t["id"]), reverse=True)
        self.timelines: dict[str, list[dict]] = {u["id"]: [] for u in users}
        self.mentions: dict[str, list[dict]] = {u["id"]: [] for u in users}
        for tweet in newest_first:
            self.timelines.setdefault(tweet["author_id"], []).append(tweet)
            named = {m["username"].lower() for m in tweet.get("entities", {}).get("mentions", [])}
            for username in named:
                user = self.usernames.get(username)
                if user is not None and user["id"] != tweet["author_id"]:
                    self.mentions[user["id"]].append(tweet)
        self.lock = threading.Lock()
        self.calls: dict[str, list[int]] = {}  # endpoint -> [window start, requests in window]

    def count_call(self, endpoint: str) -> tuple[dict[str, str], bool]:
        """Count one request to an endpoint: its rate-limit headers, and whether it is over."""
        now = int(time.time())
        with self.lock:
            window = self.calls.setdefault(endpoint, [now, 0])
            if now >= window[0] + RATE_WINDOW:
                window[:] = [now, 0]
            window[1] += 1
            remaining = RATE_LIMIT - window[1]
        headers = {
            "x-rate-limit-limit": str(RATE_LIMIT),
            "x-rate-limit-remaining": str(max(remaining, 0)),
            "x-rate-limit-reset": str(window[0] + RATE_WINDOW),
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
        if missing:
            body["errors"] = [
                _not_found("tweet", "ids", i, f"Could not find tweet with ids: [{i}].")
                for i in missing
            ]
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
        return body


def _select(obj: dict, default: tuple[str, ...], requested: list[str]) -> dict:
    wanted = set(default) | set(requested)
    return {key: value for key, value in obj.items() if key in wanted}


# Path pattern -> SandboxServer method, called with the path's parts and the query string.
ROUTES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"/2/users/by/username/([^/]+)"), "user_by_username"),
    (re.compile(r"/2/users/([^/]+)/tweets"), "user_tweets"),
    (re.compile(r"/2/users/([^/]+)/mentions"), "user_mentions"),
    (re.compile(r"/2/tweets"), "tweets_by_ids"),
]


class _Handler(BaseHTTPRequestHandler):
    server: SandboxServer
    protocol_version = "HTTP/1.1"

    def version_string(self) -> str:
        return "x-api-v2-sandbox"

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: no access log on stderr (headers, the token included, are never logged)."""

    def _send(self, status: int, body: dict, headers: dict[str, str]) -> None:
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json; charset=utf-8")
        self.send_header("content-length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        found = [(e, m) for p, e in ROUTES if (m := p.fullmatch(url.path))]
        if not found:
            self._send(404, NOT_FOUND, self.server.count_call("unknown")[0])
            return
        endpoint, match = found[0]
        headers, exceeded = self.server.count_call(endpoint)
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            self._send(401, UNAUTHORIZED, headers)
            return
        if exceeded:
            self._send(429, TOO_MANY, headers)
            return
        parts = [unquote(part) for part in match.groups()]
        try:
            self._send(200, getattr(self.server, endpoint)(*parts, url.query), headers)
        except ApiError as error:
            self._send(error.status, error.body, headers)
        except Exception:  # a sandbox bug: answer like the real API's 500, then let it surface
            self._send(500, SERVER_ERROR, headers)
            raise

    def _not_allowed(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        self._send(404, NOT_FOUND, self.server.count_call("unknown")[0])

    do_POST = do_PUT = do_DELETE = do_PATCH = _not_allowed


def make_server(
    port: int = 0,
    company: SampleCompany | None = None,
    *,
    users: list[dict] | None = None,
    tweets: list[dict] | None = None,
) -> ThreadingHTTPServer:
    """A sandbox on 127.0.0.1:port (0 picks a free port: see ``server.server_address[1]``).

    Serves ``company`` (the default sample company when nothing is given); ``users`` and
    ``tweets`` replace the company's lists when given.
    """
    if company is None:
        company = generate() if users is None and tweets is None else SampleCompany([], [])
    return SandboxServer(
        port,
        company.users if users is None else users,
        company.tweets if tweets is None else tweets,
    )


def serve(port: int, seed: int = 7, host: str = "127.0.0.1") -> None:
    """Serve the sample company of ``seed`` until SIGINT or SIGTERM.

    ``host`` stays on loopback except inside a container, where 0.0.0.0 lets other services in.
    """
    company = generate(seed)
    server = SandboxServer(port, company.users, company.tweets, host)
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    worker = threading.Thread(target=server.serve_forever, name="sandbox", daemon=True)
    worker.start()
    print(f"sandbox listening on http://{host}:{server.server_address[1]}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.shutdown()
        server.server_close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
