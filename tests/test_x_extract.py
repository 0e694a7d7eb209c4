"""X extraction through the real tweepy client, over HTTP, against the sandbox."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from devtools.sample import generate
from engagement.landing import BatchSummary, Interval
from extract import x
from tests.conftest import TOKEN, engagement

START, END = "2026-11-03", "2026-11-04"


def _in_day(post: dict) -> bool:
    created = datetime.fromisoformat(post["created_at"].replace("Z", "+00:00"))
    return datetime(2026, 11, 3, tzinfo=UTC) <= created < datetime(2026, 11, 4, tzinfo=UTC)


def expected_records() -> int:
    """Own posts plus mentions of each account, counted from the sample itself."""
    company = generate()
    total = 0
    for username in ("acmecloud", "acmesupport"):
        user_id = next(u["id"] for u in company.users if u["username"] == username)
        for post in filter(_in_day, company.tweets):
            mentioned = {m["username"] for m in post.get("entities", {}).get("mentions", [])}
            total += post["author_id"] == user_id
            total += post["author_id"] != user_id and username in mentioned
    return total


def test_extract_lands_every_page_as_received(sandbox_env: dict[str, str]) -> None:
    result = engagement("extract", "x", "--start", START, "--end", END, env=sandbox_env)

    line = result.stdout.splitlines()[-1]
    summary = json.loads(line)
    keys = {"batch", "source", "start", "end", "records", "quarantined", "path", "warnings"}
    assert set(summary) == keys and summary["warnings"] == []
    assert (summary["source"], summary["start"], summary["end"]) == (
        "x",
        "2026-11-03T00:00:00Z",
        "2026-11-04T00:00:00Z",
    )
    assert BatchSummary.model_validate_json(line).records == expected_records() > 20
    lines = (Path(summary["path"]) / "pages.jsonl").read_text().splitlines()
    pages = [json.loads(line) for line in lines]
    assert {p["endpoint"] for p in pages} == {
        "user",
        "tweets",
        "mentions",
        "tweets_newer",
        "mentions_newer",
        "lookup",
    }
    for page in pages:
        assert "max_results=100" in page["url"] or page["endpoint"] in ("user", "lookup")
        again = requests.get(page["url"], headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
        assert again.text == page["body"]
    timelines = [json.loads(p["body"]) for p in pages if p["endpoint"] in ("tweets", "mentions")]
    assert sum(len(body.get("data", [])) for body in timelines) == summary["records"]


def test_rerun_replaces_the_batch(sandbox_env: dict[str, str]) -> None:
    first = engagement("extract", "x", "--start", START, "--end", END, env=sandbox_env)
    second = engagement("extract", "x", "--start", START, "--end", END, env=sandbox_env)
    summaries = [json.loads(run.stdout.splitlines()[-1]) for run in (first, second)]
    paths = [Path(summary.pop("path")) for summary in summaries]
    assert summaries[0] == summaries[1] and paths[0] != paths[1]  # a new version beside
    batch = "20261103T000000Z_20261104T000000Z"
    versions = Path(sandbox_env["ENGAGEMENT_DATA_DIR"]) / "versions" / "x" / batch
    assert sorted(versions.iterdir()) == sorted(paths)
    pages = [(path / "pages.jsonl").read_bytes() for path in paths]
    assert pages[0] == pages[1]


def test_the_token_is_never_written(
    sandbox_env: dict[str, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = x.make_client(TOKEN, sandbox_env["X_API_BASE_URL"])
    summary = x.extract(client, ("acmesupport",), Interval.parse(START, END), tmp_path / "raw")
    assert summary.records > 0 and caplog.records
    assert TOKEN not in caplog.text
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path


def test_missing_token_and_accounts_fail_clearly(sandbox_env: dict[str, str]) -> None:
    no_token = dict(sandbox_env, X_BEARER_TOKEN="")
    result = engagement("extract", "x", "--start", START, "--end", END, env=no_token, check=False)
    assert result.returncode != 0 and "X_BEARER_TOKEN" in result.stderr
    no_accounts = dict(sandbox_env, X_ACCOUNTS="")
    result = engagement(
        "extract", "x", "--start", START, "--end", END, env=no_accounts, check=False
    )
    assert result.returncode != 0 and "X_ACCOUNTS" in result.stderr


@pytest.mark.parametrize("source", ["x", "support-site"])
def test_an_unfinished_interval_or_an_unwritable_data_dir_is_refused_before_any_work(
    sandbox_env: dict[str, str], tmp_path: Path, source: str
) -> None:
    """Today to the day after tomorrow has not ended: its batch would pass for a quiet day."""
    today = datetime.now(UTC).date()
    unfinished = ["--start", str(today), "--end", str(today.fromordinal(today.toordinal() + 2))]
    env = dict(sandbox_env, SUPPORT_SITE_LOGS=str(tmp_path / "none.log"))
    result = engagement("extract", source, *unfinished, env=env, check=False)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "has not ended" in result.stderr
    assert not (Path(env["ENGAGEMENT_DATA_DIR"]) / "raw").exists()
    (tmp_path / "a_file").write_text("")  # the data directory cannot be made there
    unwritable = dict(env, ENGAGEMENT_DATA_DIR=str(tmp_path / "a_file" / "data"))
    result = engagement(
        "extract", source, "--start", START, "--end", END, env=unwritable, check=False
    )
    assert result.returncode == 2
    assert result.stderr.startswith("engagement: ENGAGEMENT_DATA_DIR=")
    assert "a_file is not a directory" in result.stderr
    assert "ENGAGEMENT_DATA_DIR" in result.stderr and result.stderr.count("\n") == 1


def test_every_loaded_x_row_names_the_api_response_it_came_from(
    sandbox_env: dict[str, str],
) -> None:
    """batch_id + page_no lead to the line of pages.jsonl (one API response) holding the
    row; _loaded_at says when it was loaded."""
    import duckdb

    from engagement import pipeline
    from engagement.landing import Source
    from engagement.settings import Settings

    settings = Settings.from_env(sandbox_env)
    interval = Interval.parse(START, END)
    pipeline.extract_x(settings, interval)
    pipeline.validate(settings, Source.X, interval)
    pipeline.load_batch(settings, Source.X, interval)
    with duckdb.connect(str(settings.raw_db), read_only=True) as con:
        rows = con.execute(
            """
            select 'posts', batch_id, page_no, post_id, _loaded_at from x.posts
            union all
            select 'users', batch_id, page_no, user_id, _loaded_at from x.users
            union all
            select 'snapshots', batch_id, page_no, post_id, _loaded_at from x.post_snapshots
            """
        ).fetchall()
    assert {row[0] for row in rows} == {"posts", "users", "snapshots"}
    for _, batch, page_no, key, loaded_at in rows:
        assert batch == interval.batch_id and loaded_at is not None
        pages = (settings.raw_dir / "x" / batch / "pages.jsonl").read_text().splitlines()
        body = json.loads(json.loads(pages[page_no - 1])["body"])
        found = body.get("data", []) + body.get("includes", {}).get("users", [])
        assert key in {item["id"] for item in found}
