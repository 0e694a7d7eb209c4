"""X API v2 extraction through tweepy: land every response body exactly as received."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import requests
import tweepy

from extract.batches import Interval, iso, landing, summary, write_manifest
from extract.settings import REAL_X_API

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


class Reroute(requests.adapters.HTTPAdapter):
    """Sends requests addressed to the real X API to another base URL (the sandbox)."""

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/")

    def send(self, request: requests.PreparedRequest, **kwargs) -> requests.Response:
        request.url = self.base_url + request.url.removeprefix(REAL_X_API)
        return super().send(request, **kwargs)


def make_client(bearer_token: str, base_url: str = REAL_X_API) -> tweepy.Client:
    client = tweepy.Client(bearer_token=bearer_token, return_type=requests.Response)
    if base_url.rstrip("/") != REAL_X_API:
        client.session.mount(REAL_X_API + "/", Reroute(base_url))
    return client


def _page(account: str, endpoint: str, response: requests.Response) -> dict:
    # Query parameters are kept for lineage; the token travels in a header and is never kept.
    return {
        "account": account,
        "endpoint": endpoint,
        "url": response.request.url,
        "status": response.status_code,
        "body": response.text,
    }


def extract(
    client: tweepy.Client, accounts: tuple[str, ...], interval: Interval, raw_root: Path
) -> dict:
    """Land the interval's own posts and mentions of every account as one batch."""
    if not accounts:
        raise ValueError("no X accounts configured: set X_ACCOUNTS=brand,support")
    pages: list[dict] = []
    records = 0
    for account in accounts:
        response = client.get_user(username=account, user_fields=USER_FIELDS)
        pages.append(_page(account, "user", response))
        body = response.json()
        if "data" not in body:
            raise LookupError(f"X account @{account} not found: {body.get('errors')}")
        user_id = body["data"]["id"]
        for endpoint, method in (
            ("tweets", client.get_users_tweets),
            ("mentions", client.get_users_mentions),
        ):
            for response in tweepy.Paginator(
                method,
                user_id,
                start_time=iso(interval.start),
                end_time=iso(interval.end),
                max_results=100,
                tweet_fields=TWEET_FIELDS,
                user_fields=USER_FIELDS,
                expansions=EXPANSIONS,
            ):
                pages.append(_page(account, endpoint, response))
                records += len(response.json().get("data", []))
    with landing(raw_root, "x", interval) as work:
        with open(work / "pages.jsonl", "w") as out:
            for page in pages:
                out.write(json.dumps(page, sort_keys=True) + "\n")
        manifest = {
            "batch": interval.batch_id,
            "source": "x",
            "start": iso(interval.start),
            "end": iso(interval.end),
            "records": records,
            "quarantined": 0,
            "accounts": list(accounts),
            "pages": len(pages),
        }
        write_manifest(work, manifest)
    return summary(manifest, raw_root / "x" / interval.batch_id)
