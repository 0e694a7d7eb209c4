"""X API v2 extraction through tweepy: land every response body exactly as received.

One run covers one interval for every configured account: the account's user object, its
own posts (GET /2/users/:id/tweets) and its mentions (GET /2/users/:id/mentions) in the
interval, and a fresh read (GET /2/tweets) of its posts and mentions of the last days, so
that engagement growth, edits and deletions are seen.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

import requests
import tweepy

from engagement.errors import EngagementError, UsageError
from engagement.landing import (
    BatchSummary,
    Endpoint,
    Gap,
    Interval,
    Source,
    XManifest,
    iso,
    landed_version,
    landing,
    parse_instant,
    summary,
    write_manifest,
)
from engagement.settings import REAL_X_API, Policy
from extract import x_bill

log = logging.getLogger(__name__)
# tweepy logs request headers, bearer token included, at DEBUG: never let that through.
logging.getLogger("tweepy").setLevel(logging.INFO)

TWEET_FIELDS = [
    "created_at",
    "author_id",
    "conversation_id",
    "in_reply_to_user_id",
    "referenced_tweets",
    "entities",
    "public_metrics",
    "lang",
    "edit_history_tweet_ids",
]
USER_FIELDS = ["created_at", "description", "public_metrics", "verified", "protected"]
EXPANSIONS = ["author_id", "in_reply_to_user_id", "referenced_tweets.id"]
LOOKUP_BATCH = 100  # GET /2/tweets takes at most 100 ids
DM_EVENT_FIELDS = [
    "id",
    "event_type",
    "text",
    "created_at",
    "dm_conversation_id",
    "sender_id",
    "participant_ids",
    "referenced_tweets",
    "attachments",
]
DM_HISTORY_DAYS = 30  # GET /2/dm_events serves the last 30 days, by X's clock
# X serves an own post's private metrics (its author's user token) for 30 days after it was
# posted, by X's clock; the read starts a minute inside, so no post is refused at the edge
PRIVATE_METRICS_DAYS = 30
PRIVATE_METRICS_MARGIN = timedelta(minutes=1)
OWN_METRICS_FIELDS = [
    "created_at",
    "author_id",  # the gate checks each post is the account's own
    "public_metrics",
    "non_public_metrics",
    "organic_metrics",
]
# the endpoints read with an account's user-context token (a 401 means its grant)
USER_CONTEXT = (Endpoint.DM_EVENTS, Endpoint.OWN_METRICS)


class ExtractionError(EngagementError):
    """The extraction cannot go on; the message says what to do. Nothing is landed."""


class RequestRefused(ExtractionError, UsageError):
    """The API refused the request itself (400, 401, 403, an unknown account): the same
    request fails again until the token, the plan or the settings are fixed, so it is not
    worth a retry."""


class Reroute(requests.adapters.HTTPAdapter):
    """Sends requests addressed to the real X API to base_url, each with a timeout."""

    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def send(self, request: requests.PreparedRequest, **kwargs) -> requests.Response:
        if request.url.startswith(REAL_X_API):  # a resent request is already rerouted
            request.url = self.base_url + request.url.removeprefix(REAL_X_API)
        kwargs["timeout"] = kwargs.get("timeout") or self.timeout
        return super().send(request, **kwargs)


def make_client(
    bearer_token: str, base_url: str = REAL_X_API, timeout: float = 30.0
) -> tweepy.Client:
    """tweepy unchanged; its requests session is rerouted (and given a timeout) by config."""
    client = tweepy.Client(bearer_token=bearer_token, return_type=requests.Response)
    client.session.mount(REAL_X_API + "/", Reroute(base_url, timeout))
    return client


def _problem(exc: tweepy.HTTPException) -> str:
    messages = "; ".join(str(m) for m in exc.api_messages) or exc.response.reason
    return f"{exc.response.status_code} {messages}"


@dataclass
class Caller:
    """Calls one tweepy method with the policy: paced, retried, failing clearly."""

    policy: Policy
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.time
    malformed: list[dict] = field(default_factory=list)
    resets: dict[Endpoint, float] = field(default_factory=dict)  # when it has room
    served_at: datetime | None = None  # X's clock at its first answer: the bill's day

    def wrap(self, endpoint: Endpoint, method: Callable) -> Callable:
        @functools.wraps(method)  # tweepy's Paginator reads the method's name
        def call(*args, **kwargs) -> requests.Response:
            return self(endpoint, method, *args, **kwargs)

        return call

    def _wait_for(self, endpoint: Endpoint, until: float, why: str) -> None:
        wait = max(0.0, until - self.clock())
        if wait > self.policy.max_wait:
            raise ExtractionError(
                f"{endpoint.request}: {why}; the window resets in {wait:.0f} s, longer than "
                f"X_RATE_LIMIT_MAX_WAIT={self.policy.max_wait:.0f} s. Nothing was landed: "
                "re-run the interval after the reset."
            )
        if wait:
            log.warning(
                "%s: %s; waiting %.0f s for the window to reset", endpoint.request, why, wait
            )
            self.sleep(wait)

    def __call__(self, endpoint: Endpoint, method: Callable, *args, **kwargs) -> requests.Response:
        """`method` (tweepy's) called on `endpoint`, paced, retried, failing clearly."""
        failures: list[str] = []
        while len(failures) <= self.policy.max_retries:
            if endpoint in self.resets:
                self._wait_for(endpoint, self.resets.pop(endpoint), "rate limit used up")
            try:
                response = method(*args, **kwargs)
            except tweepy.TooManyRequests as exc:
                reset = exc.reset_time or self.clock() + 60
                failures.append("429 Too Many Requests")
                self._wait_for(endpoint, reset + 1, "429 Too Many Requests")
                continue
            except tweepy.Unauthorized as exc:
                if endpoint.requested in USER_CONTEXT:  # still 401 after a refresh
                    raise RequestRefused(
                        f"{endpoint.request}: {_problem(exc)}: X refused the account's user"
                        " token after refreshing it: run `engagement x-login ACCOUNT` again"
                    ) from None
                raise RequestRefused(
                    f"{endpoint.request}: {_problem(exc)}: the bearer token was refused; check"
                    f" {self.policy.token_source} (an app-only bearer token of your X"
                    " developer app)"
                ) from None
            except tweepy.Forbidden as exc:
                raise RequestRefused(
                    f"{endpoint.request}: {_problem(exc)}: your X API plan or app does not give"
                    " access to this endpoint; check the access level of the app whose token"
                    f" is {self.policy.token_source} in the developer portal"
                ) from None
            except tweepy.BadRequest as exc:
                raise RequestRefused(
                    f"{endpoint.request}: {_problem(exc)}: the request was refused"
                ) from None
            except (tweepy.TwitterServerError, requests.ConnectionError, requests.Timeout) as exc:
                failures.append(
                    _problem(exc) if isinstance(exc, tweepy.HTTPException) else type(exc).__name__
                )
                self._backoff(endpoint, failures)
                continue
            try:
                response.json()
            except ValueError:
                self.malformed.append(
                    {"endpoint": endpoint, "url": response.request.url,
                     "status": response.status_code, "body": response.text}
                )  # fmt: skip
                failures.append("malformed JSON page")
                self._backoff(endpoint, failures)
                continue
            self._pace(endpoint, response)
            self.served_at = self.served_at or _served_at(response)
            return response
        raise ExtractionError(
            f"{endpoint.request}: giving up after {len(failures)} failed attempts "
            f"({', '.join(failures)}); nothing was landed, re-run the interval"
        )

    def _backoff(self, endpoint: Endpoint, failures: list[str]) -> None:
        if len(failures) <= self.policy.max_retries:
            delay = self.policy.backoff * 2 ** (len(failures) - 1)
            log.warning(
                "%s: %s; retry %d in %.1f s", endpoint.request, failures[-1], len(failures), delay
            )
            self.sleep(delay)

    def _pace(self, endpoint: Endpoint, response: requests.Response) -> None:
        remaining = response.headers.get("x-rate-limit-remaining")
        reset = response.headers.get("x-rate-limit-reset")
        if remaining is not None and reset is not None and int(remaining) <= 0:
            self.resets[endpoint] = float(reset) + 1


def _page(account: str, endpoint: Endpoint, response: requests.Response) -> dict:
    # Query parameters are kept for lineage; the token travels in a header and is never kept.
    return {
        "account": account,
        "endpoint": endpoint,
        "url": response.request.url,
        "status": response.status_code,
        "body": response.text,
    }


def _data(page: dict) -> list[dict]:
    return json.loads(page["body"]).get("data", [])


def _served_at(response: requests.Response) -> datetime:
    """When the API answered, by its own clock (its Date header; ours when it has none)."""
    date = response.headers.get("date")
    return parsedate_to_datetime(date) if date else datetime.now(UTC)


@dataclass
class Extraction:
    client: tweepy.Client
    caller: Caller
    interval: Interval
    pages: list[dict] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    records: int = 0  # posts on the interval's timeline and mentions pages
    dm_records: int = 0  # DM events of the interval
    metrics_snapshots: int = 0  # own posts served with their private metrics
    user_ids: dict[str, str] = field(default_factory=dict)
    first_served: dict[str, datetime] = field(default_factory=dict)  # X's clock, per account

    def user(self, account: str) -> str:
        response = self.caller(
            Endpoint.USER, self.client.get_user, username=account, user_fields=USER_FIELDS
        )
        self.first_served.setdefault(account, _served_at(response))
        self.pages.append(_page(account, Endpoint.USER, response))
        body = response.json()
        if "data" not in body:
            said = "; ".join(
                str(e.get("detail") or e.get("title") or e) for e in body.get("errors", [])
            )
            raise RequestRefused(
                f"X_ACCOUNTS names @{account}, but X has no account of that username"
                f" ({said or 'no user in the answer'}): fix X_ACCOUNTS"
            )
        self.user_ids[account] = body["data"]["id"]
        return body["data"]["id"]

    def timeline(self, account: str, user_id: str, endpoint: Endpoint, **params) -> Iterator[dict]:
        method = {
            Endpoint.TWEETS: self.client.get_users_tweets,
            Endpoint.MENTIONS: self.client.get_users_mentions,
        }[endpoint]
        for response in tweepy.Paginator(self.caller.wrap(endpoint, method), user_id, **params):
            page = _page(account, endpoint, response)
            yield page

    def account(self, account: str) -> None:
        user_id = self.user(account)
        for endpoint, cap in ((Endpoint.TWEETS, self.caller.policy.timeline_cap),
                              (Endpoint.MENTIONS, self.caller.policy.mentions_cap)):  # fmt: skip
            # What is newer than the interval counts against the API's reach (cap).
            newer = 0
            for page in self.timeline(
                account,
                user_id,
                endpoint,
                start_time=iso(self.interval.end),
                max_results=100,
                tweet_fields=["created_at"],
            ):
                page["endpoint"] = endpoint.newer
                self.pages.append(page)
                newer += len(_data(page))
                if newer >= cap:
                    break
            found = 0
            for page in self.timeline(
                account, user_id, endpoint,
                start_time=iso(self.interval.start), end_time=iso(self.interval.end),
                max_results=100, tweet_fields=TWEET_FIELDS, user_fields=USER_FIELDS,
                expansions=EXPANSIONS,
            ):  # fmt: skip
                self.pages.append(page)
                found += len(_data(page))
            self.records += found
            if newer + found >= cap:
                gap = Gap(
                    account=account,
                    endpoint=endpoint,
                    cap=cap,
                    newer_than_interval=newer,
                    returned=found,
                    complete_from=self._oldest(endpoint, account),
                )
                log.warning(
                    "@%s %s: the interval %s..%s reaches past the API's %d most recent; "
                    "what is older than %s is missing (recorded as a gap)",
                    account, endpoint, iso(self.interval.start), iso(self.interval.end), cap,
                    gap.complete_from or iso(self.interval.end),
                )  # fmt: skip
                self.gaps.append(gap)

    def direct_messages(self, account: str, client: tweepy.Client) -> None:
        """The account's DM events of the interval (user context): newest first, so paged
        from the newest until one is older than the interval. X keeps 30 days: an interval
        reaching past that is a gap, not a quiet day."""
        method = self.caller.wrap(Endpoint.DM_EVENTS, client.get_direct_message_events)
        horizon, found, reached = None, 0, False
        for response in tweepy.Paginator(
            method,
            user_auth=False,  # tweepy's user_auth means OAuth 1.0a; the token is OAuth 2.0
            max_results=100,
            event_types="MessageCreate",
            dm_event_fields=DM_EVENT_FIELDS,
        ):
            page = _page(account, Endpoint.DM_EVENTS, response) | {"auth": "user"}
            stamps = [parse_instant(event["created_at"]) for event in _data(page)]
            if stamps and min(stamps) >= self.interval.end:
                page["endpoint"] = Endpoint.DM_EVENTS_NEWER
            self.pages.append(page)
            found += sum(self.interval.contains(stamp) for stamp in stamps)
            horizon = _served_at(response) - timedelta(days=DM_HISTORY_DAYS)
            reached = bool(stamps) and min(stamps) < self.interval.start
            if reached:
                break
        self.dm_records += found
        if not reached and horizon is not None and self.interval.start < horizon:
            log.warning(
                "@%s dm_events: X keeps %d days of DM events, so those of the interval before"
                " %s are missing (recorded as a gap)", account, DM_HISTORY_DAYS, iso(horizon),
            )  # fmt: skip
            self.gaps.append(
                Gap(
                    account=account,
                    endpoint=Endpoint.DM_EVENTS,
                    cap=DM_HISTORY_DAYS,
                    newer_than_interval=0,
                    returned=found,
                    complete_from=iso(horizon),
                )
            )

    def private_metrics(self, account: str, client: tweepy.Client) -> None:
        """The account's own posts of X's last 30 days with their private metrics, read with
        its user-context token (X bills them as owned reads): one snapshot of each post's
        metrics per run, dated by the page's Date header (X's clock), kept in the page as
        `served_at`. The window starts from X's clock at the account's first answer, a
        minute inside the 30 days, with no end: the newest posts are read too."""
        user_id = self.user_ids[account]
        since = (
            self.first_served[account]
            - timedelta(days=PRIVATE_METRICS_DAYS)
            + PRIVATE_METRICS_MARGIN
        )
        method = self.caller.wrap(Endpoint.OWN_METRICS, client.get_users_tweets)
        for response in tweepy.Paginator(
            method,
            user_id,
            user_auth=False,  # tweepy's user_auth means OAuth 1.0a; the token is OAuth 2.0
            start_time=iso(since),
            max_results=100,
            tweet_fields=OWN_METRICS_FIELDS,
        ):
            page = _page(account, Endpoint.OWN_METRICS, response) | {
                "auth": "user",
                "served_at": iso(_served_at(response)),
            }
            self.pages.append(page)
            self.metrics_snapshots += sum(
                "non_public_metrics" in post or "organic_metrics" in post for post in _data(page)
            )

    def _oldest(self, endpoint: Endpoint, account: str) -> str | None:
        stamps = [
            post["created_at"]
            for page in self.pages
            if page["account"] == account and page["endpoint"] in (endpoint, endpoint.newer)
            for post in _data(page)
        ]
        return min(stamps) if stamps else None

    def refresh(self, ids: list[str], reused: list[dict] | None = None) -> tuple[int, int]:
        """Re-read the posts' metrics, `reused` lookup pages standing for reads (see
        x_bill.reuse_lookups); returns (found, gone)."""
        found = gone = 0
        for page in reused or []:
            self.pages.append(page)
            body = json.loads(page["body"])
            found += len(body.get("data", []))
            gone += sum(1 for e in body.get("errors", []) if _is_not_found(e))
        for start in range(0, len(ids), LOOKUP_BATCH):
            response = self.caller(
                Endpoint.LOOKUP,
                self.client.get_tweets,
                ids[start : start + LOOKUP_BATCH],
                tweet_fields=TWEET_FIELDS,
                user_fields=USER_FIELDS,
                expansions=["author_id"],
            )
            page = _page("", Endpoint.LOOKUP, response)
            self.pages.append(page)
            body = json.loads(page["body"])
            found += len(body.get("data", []))
            gone += sum(1 for e in body.get("errors", []) if _is_not_found(e))
        return found, gone


def _is_not_found(error: dict) -> bool:
    return (
        error.get("type", "").endswith("/resource-not-found")
        or error.get("title") == "Not Found Error"
    )


def recent_posts(raw_root: Path, pages: list[dict], since: Interval) -> list[str]:
    """Ids of the posts to re-read: the accounts' own posts and their mentions created in
    `since`, from earlier batches and this one, with the newest id of each edit history."""
    candidates: dict[str, str] = {}

    def collect(page: dict) -> None:
        if Endpoint(page["endpoint"]) in (Endpoint.TWEETS, Endpoint.MENTIONS, Endpoint.LOOKUP):
            for post in json.loads(page["body"]).get("data", []):
                history = post.get("edit_history_tweet_ids") or post.get("edit_history_post_ids")
                for post_id in {post["id"], *(history or [])[-1:]}:
                    candidates[post_id] = post.get("created_at", "")

    for batch in sorted((raw_root / Source.X).glob("*_*/pages.jsonl")):
        landed = Interval.from_batch_id(batch.parent.name)
        if landed.end > since.start and landed.start < since.end:
            for line in batch.read_text().splitlines():
                collect(json.loads(line))
    for page in pages:
        collect(page)
    recent = [
        i for i, created in candidates.items() if created and since.contains(parse_instant(created))
    ]
    return sorted(recent, key=int)


def extract(
    client: tweepy.Client,
    accounts: tuple[str, ...],
    interval: Interval,
    raw_root: Path,
    policy: Policy | None = None,
    caller: Caller | None = None,
    dm_clients: Mapping[str, tweepy.Client] | None = None,
    metrics_clients: Mapping[str, tweepy.Client] | None = None,
    billing: x_bill.Billing | None = None,
) -> BatchSummary:
    """Land the interval's posts, mentions and metrics refresh of every account as one batch,
    the DM events of the accounts in `dm_clients` and the private metrics of the own posts
    of those in `metrics_clients` (their user-context clients)."""
    if not accounts:
        raise UsageError("no X accounts configured: set X_ACCOUNTS=brand,support")
    policy = policy or Policy()
    caller = caller or Caller(policy)
    dm_clients = dm_clients or {}
    metrics_clients = metrics_clients or {}
    billing = billing or x_bill.Billing.beside(raw_root)
    started = datetime.now(UTC)
    window = Interval(interval.end - timedelta(days=policy.refresh_days), interval.end)
    known = recent_posts(raw_root, [], window)
    x_bill.check_budget(raw_root, billing, len(accounts), known, started)
    run = Extraction(client, caller, interval)
    try:
        for account in accounts:
            run.account(account)
            if account in dm_clients:
                run.direct_messages(account, dm_clients[account])
            if account in metrics_clients:
                run.private_metrics(account, metrics_clients[account])
        ids, reused = recent_posts(raw_root, run.pages, window), []
        if policy.refresh_skip_same_day:
            day = x_bill.day_of(caller.served_at or started)
            reused, ids = x_bill.reuse_lookups(raw_root, ids, day)
        refreshed, deleted = run.refresh(ids, reused)
    finally:  # what X served is billed, whether the batch lands or not
        bill = x_bill.bill(run.pages, billing, x_bill.day_of(caller.served_at or started))
    with landing(raw_root, Source.X, interval) as work:
        with open(work / "pages.jsonl", "w") as out:
            for page in run.pages:
                out.write(json.dumps(page, sort_keys=True) + "\n")
        with open(work / "quarantine.jsonl", "w") as out:
            for page in caller.malformed:
                out.write(json.dumps(page, sort_keys=True) + "\n")
        manifest = XManifest(
            batch=interval.batch_id,
            start=interval.start,
            end=interval.end,
            records=run.records,
            quarantined=len(caller.malformed),
            accounts=list(accounts),
            pages=len(run.pages),
            metrics_refreshed=refreshed,
            deleted=deleted,
            refresh_window_start=window.start,
            gaps=run.gaps,
            dm_accounts=[account for account in accounts if account in dm_clients],
            dm_events=run.dm_records,
            metrics_accounts=[account for account in accounts if account in metrics_clients],
            metrics_snapshots=run.metrics_snapshots,
            bill=bill,
        )
        write_manifest(work, manifest)
    return summary(manifest, landed_version(work))
