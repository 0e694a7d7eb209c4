"""Issue 3 end to end: X extractions from a sandbox whose data changes between runs (the first
through the CLI, the others through the pipeline functions the CLI and the DAGs call), and
the published marts show one row per post, its latest version, its metrics growth and its
deletion."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
import requests

from devtools.sample import generate, latest_versions
from devtools.x_sandbox import make_server
from engagement.landing import Interval
from engagement.settings import Settings
from tests.conftest import TOKEN, engagement, land, mart_hashes

pytestmark = pytest.mark.e2e  # drives the real CLI, dbt, Airflow or warehouse

OWN = ("acmecloud", "acmesupport")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """A private sandbox (tests change its data) and the environment pointing at it."""
    server = make_server(0)
    base = server.start()
    env = dict(
        os.environ,
        ENGAGEMENT_DATA_DIR=str(tmp_path_factory.mktemp("x_pipeline") / "data"),
        X_API_BASE_URL=base,
        X_BEARER_TOKEN=TOKEN,
        X_ACCOUNTS=",".join(OWN),
    )
    yield {"base": base, "env": env}
    server.stop()


def extract_and_load(env: dict, start: str, end: str, cli: bool = False) -> None:
    if cli:
        engagement("extract", "x", "--start", start, "--end", end, env=env)
        engagement("load", "--source", "x", "--start", start, "--end", end, env=env)
        return
    land(Settings.from_env(env), Interval.parse(start, end), "x")


def mart(env: dict, sql: str, *params) -> list[tuple]:
    path = Path(env["ENGAGEMENT_DATA_DIR"]) / "warehouse" / "engagement.duckdb"
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql, list(params)).fetchall()


def created(post: dict) -> datetime:
    return datetime.fromisoformat(post["created_at"].replace("Z", "+00:00"))


def own_posts(start: datetime, end: datetime) -> dict[str, dict]:
    """The sample's own posts in [start, end), latest versions, keyed by edit root."""
    company = generate()
    own_ids = {u["id"] for u in company.users if u["username"] in OWN}
    return {
        post["edit_history_tweet_ids"][0]: post
        for post in latest_versions(company.tweets)
        if post["author_id"] in own_ids and start <= created(post) < end
    }


def test_overlapping_runs_and_edits_give_one_row_per_post(world: dict) -> None:
    env = world["env"]
    extract_and_load(env, "2026-11-05", "2026-11-06", cli=True)
    extract_and_load(env, "2026-11-05T12:00:00Z", "2026-11-06T12:00:00Z")
    engagement("build", env=env)
    rows = mart(
        env,
        """
        select post_id, latest_version_id, post_text, is_edited from marts.fct_x_posts
        where created_at >= '2026-11-05' and created_at < '2026-11-06 12:00'
        """,
    )
    expected = own_posts(datetime(2026, 11, 5, tzinfo=UTC), datetime(2026, 11, 6, 12, tzinfo=UTC))
    assert {r[0]: (r[1], r[2]) for r in rows} == {
        root: (post["id"], post["text"]) for root, post in expected.items()
    }
    edited = [r for r in rows if r[3]]
    assert edited and all(r[0] != r[1] for r in edited)


def test_metrics_growth_and_deletion_reach_the_marts(world: dict) -> None:
    env, base = world["env"], world["base"]
    extract_and_load(env, "2026-11-07", "2026-11-08")
    posts = own_posts(datetime(2026, 11, 7, tzinfo=UTC), datetime(2026, 11, 8, tzinfo=UTC))
    grown, gone = [p for p in posts.values() if p["edit_history_tweet_ids"] == [p["id"]]][:2]
    more = dict(grown, public_metrics=dict(grown["public_metrics"]))
    more["public_metrics"]["impression_count"] += 1234
    assert requests.post(f"{base}/_sandbox/tweets", json=[more], timeout=10).ok
    assert requests.delete(f"{base}/_sandbox/tweets/{gone['id']}", timeout=10).ok

    extract_and_load(env, "2026-11-08", "2026-11-09")
    engagement("build", env=env)

    growth = mart(
        env,
        """
        select snapshot_at::varchar, impression_count, impression_growth
        from marts.fct_x_post_metrics where post_id = ? order by snapshot_at
        """,
        grown["id"],
    )
    impressions = grown["public_metrics"]["impression_count"]
    assert growth == [
        ("2026-11-08 00:00:00", impressions, None),
        ("2026-11-09 00:00:00", impressions + 1234, 1234),
    ]
    deleted = mart(
        env, "select is_deleted, post_text from marts.fct_x_posts where post_id = ?", gone["id"]
    )
    assert deleted == [(True, None)]


def test_incremental_x_marts_equal_a_full_refresh(world: dict) -> None:
    """After the edits, metrics changes and deletion above, built incrementally."""
    env = world["env"]
    published = Path(env["ENGAGEMENT_DATA_DIR"]) / "warehouse" / "engagement.duckdb"
    incremental = mart_hashes(published)
    engagement("build", "--full-refresh", env=env)
    assert mart_hashes(published) == incremental
