"""The generated sample company: deterministic, internally consistent, telling the story."""

from __future__ import annotations

import gzip
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import pytest

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
    write_sample,
)
from tests.attribution import attribute, own_links, tco_sessions

COMBINED = re.compile(
    r"^(?P<ip>[0-9a-f.:]+) - - \[(?P<ts>\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d \+0000)\] "
    r'"(?P<method>GET|POST|OPTIONS) (?P<path>/\S*|\*) HTTP/1\.[01]" '
    r"(?P<status>\d{3}) (?P<bytes>\d+|-) "
    r'"(?P<referrer>(?:[^"\\]|\\.)*)" "(?P<agent>(?:[^"\\]|\\.)*)"$'
)
START = datetime.combine(SAMPLE_START, datetime.min.time(), UTC)
END = START + timedelta(days=SAMPLE_DAYS)
BOTS = ("Googlebot", "bingbot", "AhrefsBot", "Twitterbot", "facebookexternalhit", "LinkedInBot")


@cache
def company() -> SampleCompany:
    return generate()


@cache
def log() -> tuple[tuple[datetime, dict[str, str]], ...]:
    rows = []
    for line in access_log_lines(company()):
        match = COMBINED.match(line)
        assert match, f"not a combined-format line: {line!r}"
        when = datetime.strptime(match["ts"], "%d/%b/%Y:%H:%M:%S %z")
        rows.append((when, match.groupdict()))
    return tuple(rows)


def _users() -> dict[str, dict]:
    return {u["id"]: u for u in company().users}


def _by_id() -> dict[str, dict]:
    return {t["id"]: t for t in company().tweets}


def _is_human_session_start(row: dict[str, str]) -> bool:
    """A human page view that enters the site (not internal navigation, assets or forms)."""
    return (
        not any(bot in row["agent"] for bot in BOTS + ("zgrab",))
        and row["method"] == "GET"
        and not row["path"].startswith(("/static/", "/favicon.ico", "/contact?sent"))
        and not row["referrer"].startswith(f"https://{SUPPORT_SITE_HOST}/")
    )


def test_generate_is_deterministic() -> None:
    assert generate() == generate()
    assert generate(seed=8) != generate()
    assert access_log_lines(generate()) == access_log_lines(generate())


def test_write_sample_is_byte_identical_and_rotated(tmp_path: Path) -> None:
    first = write_sample(tmp_path / "a")
    second = write_sample(tmp_path / "b")
    names = ["access.log", "access.log.1"] + [f"access.log.{i}.gz" for i in range(2, SAMPLE_DAYS)]
    assert [p.name for p in first] == names
    assert [p.name for p in second] == names
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name
    days = []
    for path in first:
        data = path.read_bytes()
        text = (gzip.decompress(data) if path.suffix == ".gz" else data).decode()
        assert text.endswith("\n")
        lines = text.splitlines()
        stamps = {COMBINED.match(line)["ts"][:11] for line in lines}
        assert len(stamps) == 1, f"{path.name} holds more than one day"
        days.append(datetime.strptime(stamps.pop(), "%d/%b/%Y").date())
    expected = [SAMPLE_START + timedelta(days=SAMPLE_DAYS - 1 - i) for i in range(SAMPLE_DAYS)]
    assert days == expected, "newest day first: access.log, access.log.1, access.log.2.gz, ..."
    restored = []
    for path in reversed(first):
        data = path.read_bytes()
        restored += (gzip.decompress(data) if path.suffix == ".gz" else data).decode().splitlines()
    assert restored == access_log_lines(company())


def test_tweets_have_the_api_shape() -> None:
    users = _users()
    for tweet in company().tweets:
        assert set(tweet) >= {
            "id",
            "text",
            "created_at",
            "author_id",
            "conversation_id",
            "public_metrics",
            "lang",
            "edit_history_tweet_ids",
        }
        assert re.fullmatch(r"\d{1,19}", tweet["id"])
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z", tweet["created_at"])
        assert START <= parse_stamp(tweet["created_at"]) < END
        assert tweet["author_id"] in users
        history = tweet["edit_history_tweet_ids"]
        assert tweet["id"] in history
        assert history == sorted(history, key=int), "versions in the order of the edits"
        assert set(tweet["public_metrics"]) == {
            "retweet_count",
            "reply_count",
            "like_count",
            "quote_count",
            "bookmark_count",
            "impression_count",
        }
        for mention in tweet.get("entities", {}).get("mentions", []):
            assert tweet["text"][mention["start"] : mention["end"]] == "@" + mention["username"]
            assert users[mention["id"]]["username"] == mention["username"]
        for url in tweet.get("entities", {}).get("urls", []):
            assert tweet["text"][url["start"] : url["end"]] == url["url"]
            assert url["url"].startswith("https://t.co/")
            assert url["expanded_url"].startswith("https://")
    ids = [int(t["id"]) for t in company().tweets]
    assert len(set(ids)) == len(ids)
    by_time = sorted(company().tweets, key=lambda t: int(t["id"]))
    stamps = [t["created_at"] for t in by_time]
    assert stamps == sorted(stamps), "ordering by id must be ordering by time"


def test_a_few_broadcasts_are_edited_with_their_whole_history() -> None:
    by_id, users = _by_id(), _users()
    chains = {tuple(t["edit_history_tweet_ids"]) for t in company().tweets}
    edited = [chain for chain in chains if len(chain) > 1]
    assert 2 <= len(edited) <= 3
    assert any(len(chain) == 3 for chain in edited), "one post is edited twice"
    referenced = {r["id"] for t in company().tweets for r in t.get("referenced_tweets", [])}
    for chain in edited:
        versions = [by_id[i] for i in chain]  # every version is in the data
        assert all(v["edit_history_tweet_ids"] == list(chain) for v in versions)
        original, latest = versions[0], versions[-1]
        assert users[original["author_id"]]["username"] in (BRAND, SUPPORT)
        assert "referenced_tweets" not in original and original["id"] not in referenced
        posted = parse_stamp(original["created_at"])
        for before, after in zip(versions, versions[1:], strict=False):
            assert parse_stamp(before["created_at"]) < parse_stamp(after["created_at"])
        assert parse_stamp(latest["created_at"]) - posted < timedelta(minutes=30)
        assert original["text"] != latest["text"]
        for version in versions:
            for key in ("author_id", "conversation_id", "lang", "entities"):
                assert version.get(key) == original.get(key), key
        assert latest["public_metrics"]["impression_count"] > max(
            v["public_metrics"]["impression_count"] for v in versions[:-1]
        ), "the latest version gathers most of the engagement"
    current = latest_versions(company().tweets)
    superseded = {i for chain in edited for i in chain[:-1]}
    assert {t["id"] for t in current} == {t["id"] for t in company().tweets} - superseded
    assert generate().tweets == company().tweets, "edits are deterministic too"


def test_replies_point_at_earlier_posts_of_the_same_conversation() -> None:
    by_id, users = _by_id(), _users()
    company_ids = {u["id"] for u in company().users if u["username"] in (BRAND, SUPPORT)}
    replies = 0
    for tweet in company().tweets:
        for ref in tweet.get("referenced_tweets", []):
            parent = by_id[ref["id"]]  # every referenced post exists
            assert parse_stamp(parent["created_at"]) < parse_stamp(tweet["created_at"])
            if ref["type"] != "replied_to":
                continue
            replies += 1
            assert tweet["conversation_id"] == parent["conversation_id"]
            assert tweet["in_reply_to_user_id"] == parent["author_id"]
            if tweet["author_id"] in company_ids and parent["author_id"] not in company_ids:
                assert tweet["text"].startswith("@" + users[parent["author_id"]]["username"])
        if "in_reply_to_user_id" in tweet:
            assert [r["type"] for r in tweet["referenced_tweets"]] == ["replied_to"]
    assert replies > 50


def test_daily_volumes_and_response_rate() -> None:
    users, by_id = _users(), _by_id()
    role = {u["id"]: u["username"] for u in users.values()}
    per_day: Counter = Counter()
    for tweet in latest_versions(company().tweets):
        kind = "reply" if "in_reply_to_user_id" in tweet else "post"
        refs = [r["type"] for r in tweet.get("referenced_tweets", [])]
        per_day[(tweet["created_at"][:10], role.get(tweet["author_id"]), kind, *refs[:1])] += 1
    first_mentions = [
        t
        for t in company().tweets
        if role[t["author_id"]] not in (BRAND, SUPPORT) and "in_reply_to_user_id" not in t
    ]
    for day in range(SAMPLE_DAYS):
        date = (SAMPLE_START + timedelta(days=day)).isoformat()
        assert 3 <= per_day[(date, BRAND, "post")] <= 5
        assert 1 <= per_day[(date, SUPPORT, "post")] <= 2
        assert 12 <= sum(1 for t in first_mentions if t["created_at"].startswith(date)) <= 25
    answers: dict[str, datetime] = {}
    for tweet in company().tweets:
        if role[tweet["author_id"]] in (BRAND, SUPPORT) and "in_reply_to_user_id" in tweet:
            parent = tweet["referenced_tweets"][0]["id"]
            answers.setdefault(parent, parse_stamp(tweet["created_at"]))
    answered = [t for t in first_mentions if t["id"] in answers]
    assert 0.7 <= len(answered) / len(first_mentions) <= 0.9
    delays = sorted(answers[t["id"]] - parse_stamp(t["created_at"]) for t in answered)
    assert delays[0] < timedelta(minutes=10)
    assert delays[-1] > timedelta(hours=12), "a few are answered the next day"
    assert timedelta(minutes=20) < delays[len(delays) // 2] < timedelta(hours=4)
    assert all(by_id[i]["public_metrics"]["reply_count"] >= 1 for i in answers)


def test_every_log_line_is_combined_format_time_ordered_inside_the_window() -> None:
    rows = log()
    times = [when for when, _ in rows]
    assert times == sorted(times)
    assert times[0] >= START and times[-1] < END
    per_day = Counter(when.date() for when in times)
    assert all(1500 <= n <= 3200 for n in per_day.values()), per_day
    statuses = Counter(row["status"] for _, row in rows)
    assert {"200", "304", "404", "500"} <= set(statuses)
    assert any(row["method"] == "POST" and row["path"] == "/contact" for _, row in rows)
    assert any(":" in row["ip"] for _, row in rows), "some IPv6 clients"
    assert any('\\"' in row["agent"] for _, row in rows), "a user agent with an escaped quote"
    for _, row in rows:
        if any(bot in row["agent"] for bot in BOTS):
            assert row["referrer"] == "-", "bots send no referrer"
        # documentation addresses, the staff's private network and the web server's own
        ip = row["ip"]
        documentation = ("192.0.2.", "198.51.100.", "203.0.113.", "2001:db8:")
        assert ip.startswith((*documentation, "10.20.")) or ip in ("127.0.0.1", "::1"), ip


def test_tco_visits_follow_posts_linking_to_the_support_site() -> None:
    posts = {}
    for tweet in company().tweets:
        for url in tweet.get("entities", {}).get("urls", []):
            posts.setdefault(url["url"], (tweet, url["expanded_url"]))
    visits = [(when, row) for when, row in log() if row["referrer"].startswith("https://t.co/")]
    assert visits
    shared_elsewhere = 0
    for when, row in visits:
        if row["referrer"] not in posts:  # a link shared by someone outside the sample
            shared_elsewhere += 1
            assert row["path"].startswith("/articles/")
            continue
        tweet, expanded = posts[row["referrer"]]
        assert expanded == f"https://{SUPPORT_SITE_HOST}{row['path']}"
        assert when >= parse_stamp(tweet["created_at"])
    assert 0 < shared_elsewhere < len(visits) / 10
    previews = [row for _, row in log() if row["agent"].startswith("Twitterbot")]
    linked = {e.removeprefix(f"https://{SUPPORT_SITE_HOST}") for _, e in posts.values()}
    assert previews
    assert {row["path"] for row in previews} - {"/robots.txt"} <= linked


def test_referrer_mix_tells_the_story() -> None:
    sources: Counter = Counter()
    for _, row in log():
        if not _is_human_session_start(row):
            continue
        referrer = row["referrer"]
        host = re.sub(r"^https?://([^/]+).*$", r"\1", referrer)
        if "utm_medium=email" in row["path"]:
            host = "newsletter"
        sources[host] += 1
    total = sum(sources.values())
    from_x = sources["t.co"] + sources["x.com"] + sources["twitter.com"]
    assert 0.15 <= from_x / total <= 0.25, sources
    expected = {
        "www.google.com",
        "www.bing.com",
        "duckduckgo.com",
        "www.acme.example",
        "mail.google.com",
        "newsletter",
        "l.facebook.com",
        "www.linkedin.com",
        "lnkd.in",
        "chatgpt.com",
        "www.perplexity.ai",
        "-",
    }
    assert expected <= set(sources)


@pytest.mark.parametrize("days", [1, 2, 3])
def test_short_windows(tmp_path: Path, days: int) -> None:
    paths = write_sample(tmp_path, seed=3, start=SAMPLE_START, days=days)
    assert len(paths) == days
    assert paths[0].name == "access.log"


def test_the_sample_has_visits_to_credit_to_posts_and_visits_not_to() -> None:
    """Per-post link attribution (tests/attribution.py) on the whole sample: own posts link
    to the support site, most t.co visits are credited, some to the most recent of several
    posts linking the same page; some are not: over 24 hours late, or on a page no own post
    linked in the 24 hours before."""
    own = {u["id"] for u in company().users if u["username"] in (BRAND, SUPPORT)}
    links = own_links(company().tweets, own, {SUPPORT_SITE_HOST})
    assert len({link.post_id for link in links}) >= 50
    end = END.replace(tzinfo=None)
    clicks = attribute(links, tco_sessions(access_log_lines(company()), end))
    reasons = Counter(click.reason for click in clicks)
    assert reasons["credited"] + reasons["credited, several posts"] > 0.9 * len(clicks)
    assert reasons["credited, several posts"] >= 50
    assert reasons["later than 24 h"] >= 5
    assert reasons["before the post"] + reasons["a path no own post links"] >= 3
