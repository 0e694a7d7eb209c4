"""The extractor against the sandbox's real HTTP faults: 429s, 5xx, dropped connections,
malformed pages, refused tokens, the API's reach, metrics refresh and deletions."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import duckdb
import pytest
import requests

from devtools.x_sandbox import make_server
from engagement.landing import Endpoint, Interval, promote
from engagement.warehouse import load
from extract import x
from tests.conftest import TOKEN

DAY = Interval.parse("2026-11-04", "2026-11-05")
ACCOUNTS = ("acmecloud", "acmesupport")


@pytest.fixture
def sandbox() -> Iterator[Callable[..., str]]:
    """Starts sandboxes with the given options; returns each one's base URL."""
    servers = []

    def start(**options) -> str:
        server = make_server(0, **options)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


class Run:
    """One extraction with a recording clock: waits are recorded, not slept."""

    def __init__(self, base_url: str, root: Path, token: str = TOKEN, **policy) -> None:
        self.base_url = base_url
        self.raw = root / "raw"
        self.sleeps: list[float] = []
        self.policy = x.Policy(**{"backoff": 0.5, **policy})
        self.caller = x.Caller(self.policy, sleep=self.sleeps.append)
        self.client = x.make_client(token, base_url)

    def __call__(self, interval: Interval = DAY, accounts: tuple[str, ...] = ACCOUNTS) -> dict:
        summary = x.extract(self.client, accounts, interval, self.raw, self.policy, self.caller)
        promote(self.raw, Path(summary.path))  # in force, as once the gate passed it
        return summary

    def requests(self) -> list[dict]:
        return requests.get(f"{self.base_url}/_sandbox/requests", timeout=10).json()


def mentions_fault(kind: str, times: int, **extra) -> list[dict]:
    return [{"path": r"/mentions$", "kind": kind, "times": times, **extra}]


def test_a_429_waits_for_the_reset_then_resumes(sandbox, tmp_path: Path) -> None:
    base = sandbox(faults=mentions_fault("429", 1, reset_in=30))
    run = Run(base, tmp_path)
    clean = Run(sandbox(), tmp_path / "clean")
    summary = run()
    assert summary.records == clean().records > 0
    assert len(run.sleeps) == 1 and 25 <= run.sleeps[0] <= 32
    paths = [r["path"] for r in run.requests()]
    assert len(paths) == len([r["path"] for r in clean.requests()]) + 1


def test_a_429_beyond_the_maximum_wait_fails_clearly_and_lands_nothing(
    sandbox, tmp_path: Path
) -> None:
    run = Run(sandbox(faults=mentions_fault("429", 1, reset_in=600)), tmp_path, max_wait=60)
    with pytest.raises(x.ExtractionError, match="X_RATE_LIMIT_MAX_WAIT") as failure:
        run()
    assert "re-run the interval" in str(failure.value)
    assert not (tmp_path / "raw").exists() and not (tmp_path / "versions").exists()


@pytest.mark.parametrize("kind", ["500", "503", "drop"])
def test_server_errors_and_dropped_connections_back_off_exponentially(
    sandbox, tmp_path: Path, kind: str
) -> None:
    run = Run(sandbox(faults=mentions_fault(kind, 3)), tmp_path, backoff=0.5)
    assert run().records > 0
    assert run.sleeps == [0.5, 1.0, 2.0]


def test_persistent_server_errors_give_up_clearly(sandbox, tmp_path: Path) -> None:
    run = Run(sandbox(faults=mentions_fault("503", 10)), tmp_path, max_retries=2)
    with pytest.raises(x.ExtractionError, match="giving up after 3 failed attempts"):
        run()
    assert run.sleeps == [0.5, 1.0]


def test_a_malformed_page_is_quarantined_and_fetched_again(sandbox, tmp_path: Path) -> None:
    run = Run(sandbox(faults=mentions_fault("malformed", 1)), tmp_path)
    summary = run()
    assert summary.quarantined == 1
    quarantined = (Path(summary.path) / "quarantine.jsonl").read_text().splitlines()
    bad = json.loads(quarantined[0])
    assert bad["endpoint"] == "mentions" and bad["status"] == 200
    with pytest.raises(ValueError):
        json.loads(bad["body"])
    clean = Run(sandbox(), tmp_path / "clean")()
    assert summary.records == clean.records


def test_a_refused_token_fails_at_once_without_showing_it(
    sandbox, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    run = Run(sandbox(), tmp_path, token="")
    with pytest.raises(x.ExtractionError, match="X_BEARER_TOKEN") as failure:
        run()
    assert run.sleeps == [] and len(run.requests()) == 1
    assert TOKEN not in str(failure.value) + caplog.text


def test_an_endpoint_outside_the_plan_fails_at_once_saying_so(sandbox, tmp_path: Path) -> None:
    run = Run(sandbox(faults=mentions_fault("403", 1)), tmp_path)
    with pytest.raises(x.ExtractionError, match="403 .*access level") as failure:
        run()
    assert "GET /2/users/:id/mentions" in str(failure.value)
    assert run.sleeps == [] and run.requests()[-1]["path"].endswith("/mentions")


def test_a_bad_request_fails_at_once_with_the_api_s_message(sandbox, tmp_path: Path) -> None:
    run = Run(sandbox(), tmp_path)
    with pytest.raises(x.ExtractionError, match="400 .*max_results"):
        run.caller(Endpoint.TWEETS, run.client.get_users_tweets, "1", max_results=500)
    assert run.sleeps == [] and len(run.requests()) == 1


def test_requests_are_paced_when_the_window_is_used_up(sandbox, tmp_path: Path) -> None:
    run = Run(sandbox(), tmp_path)
    response = requests.Response()
    response.headers["x-rate-limit-remaining"] = "0"
    response.headers["x-rate-limit-reset"] = "4102444800"  # far away: must not wait silently
    run.caller._pace(Endpoint.MENTIONS, response)
    with pytest.raises(x.ExtractionError, match="rate limit used up"):
        run.caller(Endpoint.MENTIONS, run.client.get_users_mentions, "1")
    assert run.requests() == []


def test_an_interval_past_the_api_s_reach_warns_and_records_the_gap(
    sandbox, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    base = sandbox(timeline_cap=20, mentions_cap=800)
    old = Interval.parse("2026-11-02", "2026-11-03")
    summary = Run(base, tmp_path, timeline_cap=20)(old, ("acmecloud",))
    manifest = json.loads((Path(summary.path) / "manifest.json").read_text())
    gaps = manifest["gaps"]
    assert [(g["account"], g["endpoint"], g["cap"]) for g in gaps] == [("acmecloud", "tweets", 20)]
    assert gaps[0]["newer_than_interval"] + gaps[0]["returned"] >= 20
    assert "missing (recorded as a gap)" in caplog.text
    raw_db = tmp_path / "raw.duckdb"
    load.load(Path(summary.path), raw_db)  # the raw warehouse's row of it, as dbt reads it
    with duckdb.connect(str(raw_db)) as con:
        loaded = con.sql("select * exclude (interval_start, interval_end, _loaded_at) from x.gaps")
        assert loaded.fetchall() == [
            (summary.batch, *(gaps[0][k] for k in ("account", "endpoint", "cap")),
             *(gaps[0][k] for k in ("newer_than_interval", "returned", "complete_from")))
        ]  # fmt: skip


def test_recent_posts_and_mentions_are_re_read_in_lookups_of_100(sandbox, tmp_path: Path) -> None:
    run = Run(sandbox(), tmp_path)
    for day in range(2, 5):
        summary = run(Interval.parse(f"2026-11-0{day}", f"2026-11-0{day + 1}"))
    pages = [json.loads(line) for line in (Path(summary.path) / "pages.jsonl").open()]
    seen = {
        post["id"]
        for page in earlier_pages(tmp_path / "raw")
        if page["endpoint"] in ("tweets", "mentions")
        for post in json.loads(page["body"]).get("data", [])
    }
    lookups = [parse_qs(urlsplit(p["url"]).query)["ids"][0].split(",") for p in pages
               if p["endpoint"] == "lookup"]  # fmt: skip
    assert sorted(i for ids in lookups for i in ids) == sorted(seen) and len(seen) > 100
    assert all(len(ids) <= 100 for ids in lookups)
    manifest = json.loads((Path(summary.path) / "manifest.json").read_text())
    assert manifest["metrics_refreshed"] == len(seen)


def earlier_pages(raw: Path) -> list[dict]:
    return [json.loads(line) for f in (raw / "x").glob("*/pages.jsonl") for line in f.open()]


def account_ids(pages: list[dict]) -> set[str]:
    return {json.loads(p["body"])["data"]["id"] for p in pages if p["endpoint"] == "user"}


def test_a_deleted_post_is_reported_by_the_next_refresh(sandbox, tmp_path: Path) -> None:
    base = sandbox()
    run = Run(base, tmp_path)
    first = run(Interval.parse("2026-11-03", "2026-11-04"))
    pages = [json.loads(line) for line in (Path(first.path) / "pages.jsonl").open()]
    own_ids = account_ids(pages)
    victim = next(
        post["id"]
        for page in pages
        if page["endpoint"] == "tweets"
        for post in json.loads(page["body"]).get("data", [])
        if post["author_id"] in own_ids
    )
    assert requests.delete(f"{base}/_sandbox/tweets/{victim}", timeout=10).ok
    second = run(DAY)
    manifest = json.loads((Path(second.path) / "manifest.json").read_text())
    assert manifest["deleted"] == 1
    lookups = [
        json.loads(json.loads(line)["body"])
        for line in (Path(second.path) / "pages.jsonl").open()
        if json.loads(line)["endpoint"] == "lookup"
    ]
    errors = [e for body in lookups for e in body.get("errors", [])]
    assert [e["resource_id"] for e in errors] == [victim]
