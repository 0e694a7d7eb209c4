"""X's private metrics before they expire: each authorised account's own posts of X's last
30 days read with its user token (own_metrics pages), snapshotted run by run into raw, and
the mart's fct_x_post_clicks against an independent count. Real sandbox over HTTP."""

from __future__ import annotations

import json
import re
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest
import requests

from devtools.sample import SUPPORT_SITE_HOST, access_log_lines, generate, latest_versions
from devtools.x_sandbox import SandboxServer, make_server
from engagement.settings import Settings
from extract import x_auth
from tests.attribution import attribute, own_links, tco_sessions
from tests.conftest import (
    TOKEN,
    authorise,
    engagement,
    free_port,
    sample_company_env,
    token_secrets,
)

ACCOUNT = "acmesupport"
DAY_1 = ("--start", "2026-11-03", "--end", "2026-11-04")
DAY_2 = ("--start", "2026-11-04", "--end", "2026-11-05")
PRIVATE = ("non_public_metrics", "organic_metrics")


def _extract(env: dict[str, str], interval: tuple[str, ...]) -> Path:
    result = engagement("extract", "x", *interval, env=env)
    return Path(json.loads(result.stdout.splitlines()[-1])["path"])


def _pages(batch: Path) -> list[dict]:
    return [json.loads(line) for line in (batch / "pages.jsonl").read_text().splitlines()]


def _own_posts(sandbox: SandboxServer, user_id: str, since: datetime) -> dict[str, dict]:
    """The sandbox's own posts of the user that X serves private metrics for: the latest
    versions (a timeline serves those), not retweets, created since `since`."""
    superseded = {old for t in sandbox.tweets.values() for old in t["edit_history_tweet_ids"][:-1]}
    return {
        t["id"]: t
        for t in sandbox.tweets.values()
        if t["author_id"] == user_id
        and t["id"] not in superseded
        and "non_public_metrics" in t
        and t["created_at"] >= f"{since:%Y-%m-%dT%H:%M:%S}"
    }


def _clock(sandbox: SandboxServer) -> datetime:
    now = requests.get(sandbox.url + "/_sandbox/clock", timeout=10).json()["now"]
    return datetime.fromisoformat(now.replace("Z", "+00:00")).replace(tzinfo=None)


def test_own_posts_are_snapshotted_for_the_authorised_account_only_until_30_days(
    auth_env: dict[str, str], sandbox: SandboxServer
) -> None:
    grant = authorise(auth_env, ACCOUNT)
    requests.delete(sandbox.url + "/_sandbox/requests", timeout=10)
    first = _extract(auth_env, DAY_1)
    now = _clock(sandbox)
    manifest = json.loads((first / "manifest.json").read_text())
    assert manifest["metrics_accounts"] == [ACCOUNT]
    pages = _pages(first)
    own = [p for p in pages if p["endpoint"] == "own_metrics"]
    assert own and all(p["account"] == ACCOUNT and p["auth"] == "user" for p in own)
    assert all(p["served_at"] and p["served_at"] <= f"{now:%Y-%m-%dT%H:%M:%S}Z" for p in own)
    # the requests: the account's own timeline with its user token, never acmecloud's
    log = requests.get(sandbox.url + "/_sandbox/requests", timeout=10).json()
    private_reads = [r for r in log if "non_public_metrics" in json.dumps(r["query"])]
    assert private_reads and all(
        r["auth"] == "user"
        and r["username"] == ACCOUNT
        and r["path"] == f"/2/users/{grant.user_id}/tweets"
        for r in private_reads
    )
    assert not [r for r in log if r["auth"] == "user" and r["username"] != ACCOUNT]
    # each snapshot is the sandbox's stored metrics; every post of its 30 days is there
    served = {post["id"]: post for p in own for post in json.loads(p["body"]).get("data", [])}
    expected = _own_posts(sandbox, grant.user_id, now - timedelta(days=30))
    assert len(expected) > 20 and set(served) == set(expected)
    for post_id, post in served.items():
        for field in PRIVATE:
            assert post[field] == expected[post_id][field], (post_id, field)
    assert manifest["metrics_snapshots"] == len(expected)
    everything = "".join(p.read_text(errors="replace") for p in first.rglob("*") if p.is_file())
    for secret in token_secrets(
        x_auth.TokenStore(Settings.from_env(auth_env).tokens_dir).load(ACCOUNT)
    ):
        assert secret not in everything

    # 30 days on by X's clock, with a post's clicks changed since: the posts of the first
    # day are past X's 30 days and no longer snapshotted, the others are, with new metrics
    requests.post(sandbox.url + "/_sandbox/clock", json={"now": "2026-12-04T12:00:00Z"}, timeout=10)
    later = _clock(sandbox)
    horizon = later - timedelta(days=30)
    aged = sorted(
        i for i, t in expected.items() if t["created_at"] < f"{horizon:%Y-%m-%dT%H:%M:%S}"
    )
    fresh = sorted(set(expected) - set(aged))
    assert aged and fresh
    bumped = dict(expected[fresh[0]])
    bumped["non_public_metrics"] = bumped["non_public_metrics"] | {"url_link_clicks": 999}
    requests.post(sandbox.url + "/_sandbox/tweets", json=[bumped], timeout=10).raise_for_status()
    second = _extract(auth_env, DAY_2)
    again = {
        post["id"]: post
        for p in _pages(second)
        if p["endpoint"] == "own_metrics"
        for post in json.loads(p["body"]).get("data", [])
    }
    assert set(again) == set(fresh)
    assert again[fresh[0]]["non_public_metrics"]["url_link_clicks"] == 999
    # no post X refused: the read starts a minute inside its 30 days
    assert not any(
        json.loads(p["body"]).get("errors")
        for p in _pages(second)
        if p["endpoint"] == "own_metrics"
    )

    for interval in (DAY_1, DAY_2):
        engagement("load", "--source", "x", *interval, env=auth_env)
    raw = Path(auth_env["ENGAGEMENT_DATA_DIR"]) / "warehouse" / "raw.duckdb"
    with duckdb.connect(str(raw), read_only=True) as con:
        rows = con.sql(
            "select post_id, batch_id, observed_at,"
            " json_extract(payload, '$.non_public_metrics.url_link_clicks')::int"
            " from x.post_private_metrics"
        ).fetchall()
        access = con.sql(
            "select distinct account_username, is_metrics_authorised from x.metrics_access"
        ).fetchall()
    assert sorted(access) == [("acmecloud", False), (ACCOUNT, True)]
    snapshots: dict[str, list[tuple]] = {}
    for post_id, batch_id, observed_at, clicks in rows:
        snapshots.setdefault(post_id, []).append((batch_id, observed_at, clicks))
    # the aged posts keep their one snapshot, of the first run, dated by X's clock then
    for post_id in aged:
        [(batch_id, observed_at, clicks)] = snapshots[post_id]
        assert batch_id.startswith("20261103") and observed_at < later - timedelta(days=20)
        assert clicks == expected[post_id]["non_public_metrics"]["url_link_clicks"]
    old, new = sorted(snapshots[fresh[0]], key=lambda s: s[1])
    assert (old[2], new[2]) == (expected[fresh[0]]["non_public_metrics"]["url_link_clicks"], 999)
    assert new[1] >= later - timedelta(minutes=5)


def test_without_the_private_metrics_feature_nothing_is_read_with_the_token(
    auth_env: dict[str, str], sandbox: SandboxServer
) -> None:
    authorise(auth_env, ACCOUNT)
    env = auth_env | {"X_USER_FEATURES": "dm_events"}
    batch = _extract(env, DAY_1)
    manifest = json.loads((batch / "manifest.json").read_text())
    assert manifest["metrics_accounts"] == [] and manifest["metrics_snapshots"] == 0
    assert manifest["dm_accounts"] == [ACCOUNT]
    assert not [p for p in _pages(batch) if p["endpoint"] == "own_metrics"]


@pytest.fixture(scope="module")
def clicks_mart(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The sample's first two days run end to end (`engagement run`) on a sandbox of its
    own, with @acmesupport authorised: its private metrics read by both runs."""
    server = make_server(0)
    server.start()
    root = tmp_path_factory.mktemp("clicks")
    env = sample_company_env(root, server.url) | {
        "X_CLIENT_ID": "test-client-id",
        "X_CLIENT_SECRET": "test-client-secret-9d2e",
        "X_REDIRECT_URI": f"http://127.0.0.1:{free_port()}/callback",
        "X_BEARER_TOKEN": TOKEN,
    }
    grant = authorise(env, ACCOUNT)
    for start, end in (("2026-11-02", "2026-11-03"), ("2026-11-03", "2026-11-04")):
        engagement("run", "--start", start, "--end", end, env=env)
    yield {"env": env, "sandbox": server, "user_id": grant.user_id}
    server.stop()


def _mart(env: dict[str, str], sql: str) -> list[tuple]:
    published = Path(env["ENGAGEMENT_DATA_DIR"]) / "warehouse" / "engagement.duckdb"
    with duckdb.connect(str(published), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_fct_x_post_clicks_is_the_sandbox_s_clicks_against_an_independent_attribution(
    clicks_mart: dict,
) -> None:
    env, sandbox = clicks_mart["env"], clicks_mart["sandbox"]
    company = generate()
    own = {u["id"] for u in company.users if u["username"] in ("acmecloud", "acmesupport")}
    end = datetime(2026, 11, 4)
    posted = [t for t in latest_versions(company.tweets) if t["created_at"] < f"{end:%Y-%m-%d}"]
    credited: dict[str, int] = {}
    for click in attribute(
        own_links(posted, own, {SUPPORT_SITE_HOST}), tco_sessions(access_log_lines(company), end)
    ):
        if click.post_id:
            credited[click.post_id] = credited.get(click.post_id, 0) + 1
    served = _own_posts(sandbox, clicks_mart["user_id"], _clock(sandbox) - timedelta(days=30))
    expected = []
    for post in (p for p in served.values() if p["created_at"] < f"{end:%Y-%m-%d}"):
        root = post["edit_history_tweet_ids"][0]
        clicks = post["non_public_metrics"]["url_link_clicks"]
        sessions = credited.get(root, 0)
        ratio = None if clicks == 0 else round(sessions / clicks, 6)
        expected.append((root, "acmesupport", clicks, sessions, ratio, clicks - sessions))
    rows = _mart(
        env,
        "select post_id, account_username, url_link_clicks, attributed_sessions,"
        " round(sessions_per_link_click, 6), link_clicks_without_session"
        " from marts.fct_x_post_clicks order by all",
    )
    assert rows == sorted(expected)
    assert sum(r[3] for r in rows) > 20, "posts with private metrics are credited sessions"
    assert any(r[5] > 0 for r in rows), "some clicks X counted never arrive as a session"
    # a snapshot per interval a post existed at the end of (both runs read X the same day:
    # the same figures, dated by their interval as public metrics are), none final yet
    snapshots = _mart(env, "select post_id, snapshot_days, is_final from marts.fct_x_post_clicks")
    ends = ("2026-11-03", "2026-11-04")
    assert {post_id: (days, final) for post_id, days, final in snapshots} == {
        post["edit_history_tweet_ids"][0]: (sum(post["created_at"] < e for e in ends), False)
        for post in served.values()
        if post["created_at"] < ends[-1]
    }
    accounts = _mart(
        env,
        "select account_username, metrics_access, url_link_clicks, attributed_sessions"
        " from marts.agg_account_post_clicks order by all",
    )
    assert accounts == [
        ("acmecloud", "not authorised", None, None),
        ("acmesupport", "authorised", sum(r[2] for r in rows), sum(r[3] for r in rows)),
    ]


def test_the_report_shows_clicks_for_the_authorised_account_and_not_authorised_otherwise(
    clicks_mart: dict, tmp_path: Path
) -> None:
    env = clicks_mart["env"]
    out = tmp_path / "report.html"
    engagement("report", "--out", str(out), env=env)
    page = out.read_text()
    table = page[page.index('<table data-figures="link_clicks">') :]
    table = table[: table.index("</table>")]
    cells = {}
    for row in re.findall(r"<tr>(.*?)</tr>", table, re.S):
        fields = dict(re.findall(r'<td data-field="(\w+)"[^>]*>(.*?)</td>', row))
        if fields:
            cells[fields["account"]] = fields
    [(posts, clicks, sessions)] = _mart(
        env,
        "select posts_with_link_clicks, url_link_clicks, attributed_sessions"
        " from marts.agg_account_post_clicks where account_username = 'acmesupport'",
    )
    assert cells["acmecloud"]["metrics_access"] == "not authorised"
    assert cells["acmesupport"]["url_link_clicks"] == f"{clicks:,}"
    assert cells["acmesupport"]["attributed_sessions"] == f"{sessions:,}"
    assert cells["acmesupport"]["posts_with_link_clicks"] == f"{posts:,}"
    assert cells["acmesupport"]["sessions_per_link_click"] == f"{sessions / clicks:.2f}"


def test_the_gate_refuses_private_metrics_that_are_not_the_account_s_or_not_counts(
    auth_env: dict[str, str], tmp_path: Path
) -> None:
    from engagement import gate

    authorise(auth_env, ACCOUNT)
    landed = _extract(auth_env, DAY_1)
    assert gate.validate(landed).failures == []
    for change, says in (
        (lambda post: post["non_public_metrics"].update(url_link_clicks=-3), "url_link_clicks"),
        (lambda post: post.update(author_id="12345"), "not the account's own"),
        (lambda post: post.pop("non_public_metrics") and post.pop("organic_metrics"), "manifest"),
    ):
        batch = tmp_path / f"copy{len(says)}"
        shutil.copytree(landed, batch)
        pages = _pages(batch)
        page = next(p for p in pages if p["endpoint"] == "own_metrics")
        body = json.loads(page["body"])
        change(body["data"][0])
        page["body"] = json.dumps(body)
        (batch / "pages.jsonl").chmod(0o644)
        (batch / "pages.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pages))
        failures = gate.validate(batch).failures
        assert failures and any(says in f.reason for f in failures), failures
