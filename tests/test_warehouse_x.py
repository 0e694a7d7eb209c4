"""The incremental warehouse on X data: what a later batch says about an older post (a reply
days after its mention, an edit, a deletion, a renamed author, metrics growth) reaches the
marts, whatever the order of loads, overlapping intervals, reruns and removals. (The X models
are plain tables, rebuilt whole by any build that takes in X data: a build killed half-way is
test_warehouse.py's, whatever the models.)"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
import requests

from devtools.sample import generate, latest_versions
from devtools.x_sandbox import SandboxServer, make_server
from engagement.landing import Interval, XManifest, write_manifest
from engagement.settings import Settings
from engagement.warehouse.build import BuildSummary, build_and_publish
from engagement.warehouse.load import load
from tests.conftest import TOKEN, engagement, land, mart_hashes

pytestmark = pytest.mark.e2e  # drives the real CLI, dbt, Airflow or warehouse

OWN = ("acmecloud", "acmesupport")
TWITTER_EPOCH_MS = 1288834974657


def snowflake(when: datetime, sequence: int) -> str:
    return str((int(when.timestamp() * 1000) - TWITTER_EPOCH_MS) << 22 | sequence)


def on(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.000Z")


class History:
    """A private sandbox and a warehouse that takes in X intervals one at a time."""

    def __init__(self, root: Path, server: SandboxServer | None = None) -> None:
        if server is None:
            server = make_server(0)
            server.start()
        self.server = server
        self.base = server.url
        self.env = dict(
            os.environ,
            ENGAGEMENT_DATA_DIR=str(root / "data"),
            X_API_BASE_URL=self.base,
            X_BEARER_TOKEN=TOKEN,
            X_ACCOUNTS=",".join(OWN),
        )
        self.settings = Settings.from_env(self.env)
        self.steps: list[dict] = []
        company = generate()
        self.own_ids = {u["id"] for u in company.users if u["username"] in OWN}
        self.users = {u["id"]: u for u in company.users}
        self.posts = latest_versions(company.tweets)

    def load(self, day: date) -> None:
        land(self.settings, Interval.parse(str(day), str(day + timedelta(days=1))), "x")

    def load_with_the_cli(self, start: datetime, end: datetime) -> None:
        interval = ["--start", stamp(start), "--end", stamp(end)]
        engagement("extract", "x", *interval, env=self.env)
        engagement("load", "--source", "x", *interval, env=self.env)

    def build(self) -> BuildSummary:
        result = build_and_publish(self.settings)
        self.steps.append(result)
        return result

    def post(self, tweets: list[dict]) -> None:
        assert requests.post(f"{self.base}/_sandbox/tweets", json=tweets, timeout=10).ok

    def rename(self, user: dict, username: str) -> None:
        renamed = dict(user, username=username)
        assert requests.post(f"{self.base}/_sandbox/users", json=[renamed], timeout=10).ok

    def delete(self, post: dict) -> None:
        assert requests.delete(f"{self.base}/_sandbox/tweets/{post['id']}", timeout=10).ok

    def own(self, day: date) -> list[dict]:
        return [
            p
            for p in self.posts
            if p["author_id"] in self.own_ids and p["created_at"].startswith(str(day))
        ]

    def mart(self, sql: str, *params: object) -> list[tuple]:
        with duckdb.connect(str(self.settings.published_db), read_only=True) as con:
            return con.execute(sql, list(params)).fetchall()


def unanswered_mention(history: History, day: date, before_hour: int = 24) -> dict:
    """A customer's post on `day` (before `before_hour`) that tags a company account and
    that no own post answers."""
    answered = {
        ref["id"]
        for p in history.posts
        if p["author_id"] in history.own_ids
        for ref in p.get("referenced_tweets", [])
    }
    return next(
        p
        for p in history.posts
        if p["created_at"].startswith(str(day))
        and int(p["created_at"][11:13]) < before_hour
        and p["author_id"] not in history.own_ids
        and p["id"] not in answered
        and any(m["username"] in OWN for m in p.get("entities", {}).get("mentions", []))
        and "referenced_tweets" not in p
    )


@pytest.fixture(scope="module")
def x_history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[History, dict]]:
    """Four builds. X days 4 and 6, and (through the CLI) the interval from day 5 noon to
    day 6 noon, which overlaps day 6 and the day 5 loaded later. Then, dated day 7, an own
    reply to an unanswered day-4 mention whose author is renamed, an edit of a day-4 own
    post, the deletion of another, and 1234 more impressions of a day-6 own post; day 7.
    Then day 5 (a backfill). Then day 5's batch removed from the raw warehouse (its morning
    posts are in no other batch), and day 6 again after a third day-4 post was deleted (the
    metrics refresh of the re-loaded batch finds it gone)."""
    history = History(tmp_path_factory.mktemp("x_history"))
    day4, day5, day6, day7 = (date(2026, 11, d) for d in (4, 5, 6, 7))
    history.load(day4)
    history.load(day6)
    history.load_with_the_cli(on(day5, 12), on(day6, 12))
    history.build()

    mention = unanswered_mention(history, day4)
    customer = history.users[mention["author_id"]]
    support = next(u for u in history.users.values() if u["username"] == "acmesupport")
    reply = {
        "id": snowflake(on(day7, 10), 1),
        "text": f"@{customer['username']} Sorry for the wait, we are on it.",
        "created_at": stamp(on(day7, 10)),
        "author_id": support["id"],
        "conversation_id": mention.get("conversation_id", mention["id"]),
        "in_reply_to_user_id": customer["id"],
        "referenced_tweets": [{"type": "replied_to", "id": mention["id"]}],
        "entities": {"mentions": [{"start": 0, "end": 1, "username": customer["username"]}]},
        "lang": "en",
        "public_metrics": dict.fromkeys(
            ("retweet_count", "reply_count", "like_count", "quote_count", "bookmark_count"), 0
        )
        | {"impression_count": 0},
    }
    original = next(p for p in history.own(day4) if p["edit_history_tweet_ids"] == [p["id"]])
    edit_id = snowflake(on(day7, 9), 2)
    edit = dict(
        original,
        id=edit_id,
        text=original["text"] + " (edited)",
        created_at=stamp(on(day7, 9)),
        edit_history_tweet_ids=[original["id"], edit_id],
    )
    grown = next(
        p
        for p in history.own(day6)
        if p["created_at"] >= stamp(on(day6, 12)) and p["edit_history_tweet_ids"] == [p["id"]]
    )
    metrics = dict(grown["public_metrics"])
    more = dict(
        grown, public_metrics=metrics | {"impression_count": metrics["impression_count"] + 1234}
    )
    history.post([reply, edit, more])
    history.rename(customer, customer["username"][:11] + "_new")
    gone_before_day7, gone_before_rerun = [p for p in history.own(day4) if p != original][:2]
    history.delete(gone_before_day7)

    history.load(day7)
    history.build()
    growth = history.mart(
        "select snapshot_at, impression_count, impression_growth from marts.fct_x_post_metrics"
        " where post_id = ? order by snapshot_at",
        grown["id"],
    )
    history.load(day5)
    history.build()
    # own posts of day 5 to day 6 noon, landed by two overlapping batches (day 5 and 6, and
    # the CLI's noon to noon): edited ones among them
    overlapped = history.mart(
        "select post_id, latest_version_id, post_text, is_edited from marts.fct_x_posts"
        " where created_at >= ? and created_at < ?",
        on(day5, 0).replace(tzinfo=None),
        on(day6, 12).replace(tzinfo=None),
    )
    vanished = unanswered_mention(history, day5, before_hour=12)  # only day 5's batch has it
    mentions_before_removal = history.mart("select mention_id from marts.fct_x_mentions")
    # retention: day 5's batch is dropped from the raw warehouse with its load and directory
    batch = Interval.parse(str(day5), str(day6)).batch_id
    with duckdb.connect(str(history.settings.raw_db)) as raw:
        for (table,) in raw.execute(
            "select table_name from duckdb_tables() where schema_name = 'x'"
        ).fetchall():
            raw.execute(f"delete from x.{table} where batch_id = ?", [batch])
        raw.execute("delete from main.batches where source = 'x' and batch_id = ?", [batch])
    (history.settings.raw_dir / "x" / batch).unlink()  # the link to its version in force
    shutil.rmtree(history.settings.versions_dir / "x" / batch)
    history.delete(gone_before_rerun)
    history.load(day6)
    history.build()
    seen = {
        "mention": mention,
        "reply": reply,
        "customer": customer,
        "original": original,
        "edit_id": edit_id,
        "deleted": (gone_before_day7, gone_before_rerun),
        "vanished": (vanished, mentions_before_removal),
        "grown": (grown, growth),
        "overlapped": overlapped,
    }
    yield history, seen
    history.server.stop()


def test_x_builds_take_in_the_changed_loads_and_keep_the_marts_built_by_day(x_history) -> None:
    history, _ = x_history
    assert [step.full_refresh for step in history.steps] == [True, False, False, False]
    assert [step.changed_loads for step in history.steps] == [3, 1, 1, 2]
    # the marts built by day are kept in a copy of the published file (none of their days
    # changed), the other marts copied whole
    by_day = ["agg_daily_excluded_traffic", "agg_daily_referrals", "fct_support_sessions"]
    assert [step.updated_in_place for step in history.steps] == [[]] + [by_day] * 3


def test_later_batches_change_older_posts(x_history) -> None:
    history, seen = x_history
    mention, reply = seen["mention"], seen["reply"]
    assert history.mart(
        "select is_answered, first_response_id, author_username from marts.fct_x_mentions"
        " where mention_id = ?",
        mention["id"],
    ) == [(True, reply["id"], seen["customer"]["username"][:11] + "_new")]
    assert history.mart(
        "select latest_version_id, is_edited from marts.fct_x_posts where post_id = ?",
        seen["original"]["id"],
    ) == [(seen["edit_id"], True)]
    deleted, seen_later = seen["deleted"]
    assert history.mart(
        "select is_deleted, post_text from marts.fct_x_posts where post_id = ?", deleted["id"]
    ) == [(True, None)]
    vanished, mentions_before = seen["vanished"]
    assert (vanished["id"],) in mentions_before
    assert (
        history.mart("select * from marts.fct_x_mentions where mention_id = ?", vanished["id"])
        == []
    )
    # the re-loaded day 6 found it gone, but day 7 (a later interval) had seen it
    assert history.mart(
        "select is_deleted, post_text from marts.fct_x_posts where post_id = ?", seen_later["id"]
    ) == [(False, seen_later["text"])]


def test_overlapping_batches_give_one_row_per_post_at_its_latest_version(x_history) -> None:
    history, seen = x_history
    start, end = on(date(2026, 11, 5), 0), on(date(2026, 11, 6), 12)
    expected = {
        post["edit_history_tweet_ids"][0]: (post["id"], post["text"])
        for post in history.posts
        if post["author_id"] in history.own_ids and stamp(start) <= post["created_at"] < stamp(end)
    }
    rows = seen["overlapped"]
    assert len(rows) == len({row[0] for row in rows})  # one row per post
    assert {row[0]: (row[1], row[2]) for row in rows} == expected
    edited = [row for row in rows if row[3]]
    assert edited and all(row[0] != row[1] for row in edited)


def test_metrics_growth_reaches_the_marts(x_history) -> None:
    """The day-6 post's impressions grew before day 7 was landed: day 7's metrics refresh
    read it again."""
    _, seen = x_history
    grown, growth = seen["grown"]
    impressions = grown["public_metrics"]["impression_count"]
    assert growth == [
        (datetime(2026, 11, 7), impressions, None),
        (datetime(2026, 11, 8), impressions + 1234, 1234),
    ]


def test_a_mart_count_traces_back_to_the_api_responses_that_made_it(x_history) -> None:
    """An account's mentions of a day, from the published mart through the build's
    mentions to the raw rows (batch, page number, load time) and the API responses
    themselves: each row's line of its batch's pages.jsonl is that account's mentions
    request, and its body holds the post."""
    history, _ = x_history
    day, account = date(2026, 11, 6), "acmesupport"
    [(count,)] = history.mart(
        "select mentions from marts.agg_daily_account_engagement"
        " where date_day = ? and account_username = ?",
        day,
        account,
    )
    with duckdb.connect(str(history.settings.build_db), read_only=True) as con:
        con.execute(f"attach '{history.settings.raw_db}' as raw (read_only)")
        origins = con.execute(
            """
            select m.mention_id, p.account_id, p.batch_id, p.page_no, p._loaded_at
            from intermediate.int_x__mentions_responses as m
            inner join intermediate.int_x__mention_accounts as a using (mention_id)
            inner join intermediate.int_x__accounts as acc using (account_id)
            inner join raw.x.posts as p
                on p.post_id = m.mention_id
                and p.endpoint = 'mentions'
                and p.account_id = a.account_id
            where m.created_date = ? and acc.account_username = ?
            """,
            [day, account],
        ).fetchall()
    assert count > 0 and len({origin[0] for origin in origins}) == count
    assert all(loaded is not None for *_, loaded in origins)
    for mention_id, account_id, batch, page_no, _ in origins:
        pages = (history.settings.raw_dir / "x" / batch / "pages.jsonl").read_text().splitlines()
        page = json.loads(pages[page_no - 1])
        assert f"/2/users/{account_id}/mentions?" in page["url"]
        assert mention_id in {post["id"] for post in json.loads(page["body"])["data"]}


ACME = {"id": "1488213377", "username": "acmecloud", "name": "AcmeCloud"}
CUSTOMER = {"id": "42", "username": "customer", "name": "A Customer"}
FAN = {"id": "43", "username": "fan", "name": "A Fan"}
METRICS = ("retweet_count", "reply_count", "like_count", "quote_count", "bookmark_count")


def landed_batch(
    raw: Path, day: date, timeline: list[dict], mentions: list[dict], fan: dict = FAN
) -> Path:
    """An X batch as the extractor lands it, without a metrics refresh (older posts are not
    read again): the account lookup, a page of the account's timeline and one of mentions."""
    interval = Interval.parse(str(day), str(day + timedelta(days=1)))
    directory = raw / interval.batch_id
    directory.mkdir(parents=True)
    users = [CUSTOMER, ACME, fan]
    pages = [
        ("user", {"data": ACME}),
        ("tweets", {"data": timeline, "includes": {"users": users}}),
        ("mentions", {"data": mentions, "includes": {"users": users}}),
    ]
    with open(directory / "pages.jsonl", "w") as out:
        for endpoint, body in pages:
            page = {"account": "acmecloud", "endpoint": endpoint, "body": json.dumps(body)}
            out.write(json.dumps(page) + "\n")
    records = len(timeline) + len(mentions)
    manifest = XManifest(
        batch=interval.batch_id, start=interval.start, end=interval.end, records=records,
        quarantined=0, accounts=[ACME["username"]], pages=len(pages),
    )  # fmt: skip
    write_manifest(directory, manifest)
    return directory


def test_what_a_later_batch_says_about_posts_it_does_not_hold(tmp_path: Path) -> None:
    """Batches without a metrics refresh, so nothing is read twice. The first (day 5):
    post 200 without an edit history (its own root), 300 listing [200, 300], an own reply
    400 to 200, a customer's mention 500 and a fan's mention 700 (all dated day 4), and an
    own post 800 of day 5. The second (day 6): 200 with the history [100, 200] (the root of
    200 becomes 100, and so do that of 300, one hop further, and the post 400 replies to),
    an own reply 600 to 500 dated day 5 (where no post changed), and the fan renamed. Then
    the second batch is removed, and the next build gives back the first's marts."""
    settings = Settings.from_env(dict(os.environ, ENGAGEMENT_DATA_DIR=str(tmp_path / "data")))
    day = date(2026, 11, 4)

    def post(post_id: str, author: dict = ACME, **fields: object) -> dict:
        return {
            "id": post_id,
            "text": f"post {post_id}",
            "author_id": author["id"],
            "created_at": stamp(on(day, int(post_id) // 100)),
            "public_metrics": dict.fromkeys(METRICS, 0) | {"impression_count": int(post_id)},
        } | fields

    def reply(post_id: str, to: str, user: dict, **fields: object) -> dict:
        replied = [{"type": "replied_to", "id": to}]
        return post(post_id, in_reply_to_user_id=user["id"], referenced_tweets=replied, **fields)

    def mention(post_id: str, author: dict) -> dict:
        tags = [{"start": 0, "end": 10, "username": ACME["username"]}]
        return post(post_id, author, entities={"mentions": tags})

    first = landed_batch(
        settings.raw_dir / "x",
        day + timedelta(days=1),
        [
            post("200"),
            post("300", edit_history_tweet_ids=["200", "300"]),
            reply("400", "200", ACME),
            post("800", created_at=stamp(on(day + timedelta(days=1), 8))),
        ],
        [mention("500", CUSTOMER), mention("700", FAN)],
    )
    second = landed_batch(
        settings.raw_dir / "x",
        day + timedelta(days=2),
        [
            post("200", edit_history_tweet_ids=["100", "200"]),
            reply("600", "500", CUSTOMER, created_at=stamp(on(day + timedelta(days=1), 6))),
        ],
        [],
        {**FAN, "username": "fan_new"},
    )
    posts = "select post_id, version_ids, replied_to_post_id from marts.fct_x_posts order by 1"
    mentions = (
        "select mention_id, first_response_id, author_username from marts.fct_x_mentions order by 1"
    )

    steps, marts, rows = [], [], []
    for batch in (first, second):
        load(batch, settings.raw_db)
        steps.append(build_and_publish(settings).full_refresh)
        marts.append(mart_hashes(settings.published_db))
        with duckdb.connect(str(settings.published_db), read_only=True) as con:
            rows.append((con.execute(posts).fetchall(), con.execute(mentions).fetchall()))
    assert rows == [
        (
            [("200", ["200", "300"], None), ("400", ["400"], "200"), ("800", ["800"], None)],
            [("500", None, "customer"), ("700", None, "fan")],
        ),
        (
            [
                ("100", ["100", "200", "300"], None),
                ("400", ["400"], "100"),
                ("600", ["600"], "500"),
                ("800", ["800"], None),
            ],
            [("500", "600", "customer"), ("700", None, "fan_new")],
        ),
    ]
    with duckdb.connect(str(settings.raw_db)) as raw:
        for (table,) in raw.execute(
            "select table_name from duckdb_tables() where schema_name = 'x'"
        ).fetchall():
            raw.execute(f"delete from x.{table} where batch_id = ?", [second.name])
        raw.execute("delete from main.batches where batch_id = ?", [second.name])
    steps.append(build_and_publish(settings).full_refresh)
    assert steps == [True, False, False]
    assert mart_hashes(settings.published_db) == marts[0]
