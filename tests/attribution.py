"""Per-post link attribution computed in Python from the sample's posts and access-log lines,
independently of dbt: what `marts.fct_x_post_attributed_sessions` must hold (rules in
dbt_project/models/marts/fct_x_post_attributed_sessions.sql)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

WINDOW = timedelta(hours=24)
TIMEOUT = timedelta(minutes=30)
COMBINED = re.compile(
    r'^(?P<ip>\S+) \S+ \S+ \[(?P<ts>[^\]]+)\] "(?P<method>\S+) (?P<path>\S+) [^"]*" '
    r'(?P<status>\d{3}) \S+ "(?P<referrer>(?:[^"\\]|\\.)*)" "(?P<agent>(?:[^"\\]|\\.)*)"$'
)
BOTS = ("Googlebot", "bingbot", "AhrefsBot", "Twitterbot", "facebookexternalhit", "LinkedInBot")
STATIC = ("/static/", "/favicon.ico")


@dataclass(frozen=True)
class Link:
    created_at: datetime
    post_id: str
    path: str


@dataclass(frozen=True)
class Click:
    """A session whose first page view a t.co link referred, and what it is credited to."""

    started_at: datetime
    path: str
    post_id: str | None
    reason: str  # credited | credited, several posts | later than 24 h | before the post | ...


def normalized(path: str) -> str:
    return path.split("?")[0].split("#")[0].rstrip("/") or "/"


def own_links(tweets: list[dict], own_ids: set[str], hosts: set[str]) -> list[Link]:
    """Every own post's (edit root's) links to the support site: of all its versions in
    `tweets`, retweets left out; the post's time is that of its oldest version there."""
    chains: dict[str, list[dict]] = {}
    for tweet in tweets:
        chains.setdefault(tweet["edit_history_tweet_ids"][0], []).append(tweet)
    links = []
    for root, versions in chains.items():
        if versions[0]["author_id"] not in own_ids or any(
            ref["type"] == "retweeted"
            for version in versions
            for ref in version.get("referenced_tweets", [])
        ):
            continue
        created = min(datetime.fromisoformat(v["created_at"].replace("Z", "")) for v in versions)
        paths = set()
        for version in versions:
            for url in version.get("entities", {}).get("urls", []):
                parts = urlsplit(url["expanded_url"])
                if parts.scheme.lower() in ("http", "https") and parts.hostname in hosts:
                    paths.add(normalized(parts.path))
        links += [Link(created, root, path) for path in sorted(paths)]
    return links


def tco_sessions(lines: list[str], until: datetime) -> list[tuple[datetime, str]]:
    """(start, landing path) of the human sessions before `until` that t.co referred: a
    visitor's (IP and user agent) page view starts one after 30 minutes without any."""
    return [(started, path) for started, path, _ in tco_session_pages(lines, until)]


def tco_session_pages(lines: list[str], until: datetime) -> list[tuple[datetime, str, list[str]]]:
    """The sessions of `tco_sessions`, each with the paths of all its page views (as
    requested, query strings included), in order."""
    last: dict[tuple[str, str], datetime] = {}
    current: dict[tuple[str, str], list[str] | None] = {}
    sessions: list[tuple[datetime, str, list[str]]] = []
    for line in lines:
        row = COMBINED.match(line)
        assert row, line
        when = datetime.strptime(row["ts"], "%d/%b/%Y:%H:%M:%S %z").replace(tzinfo=None)
        if when >= until:
            continue
        status = int(row["status"])
        if (
            any(bot in row["agent"] for bot in BOTS + ("zgrab",))
            or row["method"] != "GET"
            or row["path"].startswith(STATIC)
            or not (200 <= status < 300 or status == 304)
        ):
            continue
        visitor = (row["ip"], row["agent"])
        previous, last[visitor] = last.get(visitor), when
        if previous is not None and when - previous <= TIMEOUT:
            pages = current.get(visitor)
            if pages is not None:
                pages.append(row["path"])
            continue
        current[visitor] = None
        if urlsplit(row["referrer"]).hostname == "t.co":
            current[visitor] = [row["path"]]
            sessions.append((when, row["path"].split("?")[0], current[visitor]))
    return sessions


def attribute(links: list[Link], sessions: list[tuple[datetime, str]]) -> list[Click]:
    """Each t.co session credited to the most recent post linking its landing path within
    the 24 hours before it (the highest id on a tie), or why not."""
    clicks = []
    for started, path in sessions:
        same_path = [link for link in links if link.path == normalized(path)]
        within = [
            link for link in same_path if link.created_at <= started < link.created_at + WINDOW
        ]
        if within:
            best = max(within, key=lambda link: (link.created_at, int(link.post_id)))
            reason = "credited, several posts" if len(within) > 1 else "credited"
            clicks.append(Click(started, path, best.post_id, reason))
        elif any(link.created_at <= started for link in same_path):
            clicks.append(Click(started, path, None, "later than 24 h"))
        elif same_path:
            clicks.append(Click(started, path, None, "before the post"))
        else:
            clicks.append(Click(started, path, None, "a path no own post links"))
    return clicks
