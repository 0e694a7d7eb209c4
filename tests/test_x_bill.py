"""The X bill (extract/x_bill.py): what an extraction's reads cost, counted from its pages
and checked against the sandbox's own record of what it served; the ledger billing each
resource once a UTC day; the monthly budget; `engagement x-usage`; the refresh's skip."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pytest
import requests

from devtools.x_sandbox import SandboxServer, make_server
from engagement.landing import BillKind, Interval, XManifest, read_manifest
from engagement.settings import Settings
from engagement.warehouse.build import build_and_publish
from extract import x, x_bill
from tests.conftest import TOKEN, authorise, engagement, land, user_context

DAY = Interval.parse("2026-11-05", "2026-11-06")
NEXT_DAY = Interval.parse("2026-11-06", "2026-11-07")
ACCOUNTS = ("acmecloud", "acmesupport")
CLOCK_DAY = date(2026, 11, 9)  # the sandbox's clock, unless set


@pytest.fixture
def sandbox() -> Iterator[str]:
    """A sandbox of this test alone (its request log holds this test's requests only), its
    clock the real time, as X's is: the bill's days are X's (its Date header)."""
    server = make_server(0, now=datetime.now(UTC))
    yield server.start()
    server.stop()


@pytest.fixture
def sandbox_server() -> Iterator[SandboxServer]:
    """A sandbox at its own clock (the sample's last day, 2026-11-09), for the tests that
    compare our bill with its own."""
    server = make_server(0)
    server.start()
    yield server
    server.stop()


def served(base_url: str) -> list[dict]:
    return requests.get(f"{base_url}/_sandbox/requests", timeout=10).json()


def replayed_resources(base_url: str) -> dict[BillKind, set[str]]:
    """What the sandbox served, counted apart from the extraction: every request of its log
    that succeeded asked again (the data has not changed), and the ids of its answer sorted
    by what X bills them as: the users of a user lookup, the posts of the rest, and the
    expansions' posts and users."""
    counted: dict[BillKind, set[str]] = {kind: set() for kind in BillKind}
    for request in served(base_url):
        if request["status"] != 200 or request.get("fault"):
            continue
        answer = requests.get(
            base_url + request["path"],
            params=request["query"],
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=10,
        ).json()
        data = answer.get("data", [])
        data = [data] if isinstance(data, dict) else data
        is_user = request["path"].startswith("/2/users/by/username/")
        counted[BillKind.USER_READS if is_user else BillKind.POST_READS] |= {d["id"] for d in data}
        includes = answer.get("includes", {})
        counted[BillKind.POST_READS] |= {p["id"] for p in includes.get("tweets", [])}
        counted[BillKind.USER_READS] |= {u["id"] for u in includes.get("users", [])}
    return counted


def extract(base_url: str, root: Path, interval: Interval = DAY, **options) -> XManifest:
    """One extraction landing under root/raw, billed in root/state/x_bill; its manifest."""
    client = x.make_client(TOKEN, base_url)
    policy = x.Policy(**options)
    summary = x.extract(client, ACCOUNTS, interval, root / "raw", policy)
    manifest = read_manifest(Path(summary.path))
    assert isinstance(manifest, XManifest) and manifest.bill is not None
    return manifest


def ledger(root: Path) -> dict:
    """The ledger's one day (every run of a test is billed on the same UTC day)."""
    (day,) = (root / "state" / "x_bill").glob("*.json")
    return json.loads(day.read_text())


def test_a_batch_s_bill_is_what_the_sandbox_served(sandbox: str, tmp_path: Path) -> None:
    manifest = extract(sandbox, tmp_path)
    served_ids = replayed_resources(sandbox)
    assert served_ids[BillKind.POST_READS] and served_ids[BillKind.USER_READS]
    bill = manifest.bill
    assert bill is not None and bill.day == datetime.now(UTC).date()
    for kind in BillKind:
        assert bill.kinds[kind].read == bill.kinds[kind].billed == len(served_ids[kind]), kind
    assert ledger(tmp_path)["kinds"]["post_reads"]["ids"] == sorted(served_ids[BillKind.POST_READS])
    posts, users = (len(served_ids[k]) for k in (BillKind.POST_READS, BillKind.USER_READS))
    assert bill.cost == pytest.approx(posts * 0.005 + users * 0.010)


def test_two_runs_the_same_day_bill_each_resource_once(sandbox: str, tmp_path: Path) -> None:
    first = extract(sandbox, tmp_path, DAY)
    second = extract(sandbox, tmp_path, NEXT_DAY)  # its refresh re-reads the first day's posts
    assert first.bill is not None and second.bill is not None
    served_ids = replayed_resources(sandbox)  # both runs' requests
    for kind in BillKind:
        billed = first.bill.kinds[kind].billed + second.bill.kinds[kind].billed
        assert billed == len(served_ids[kind]) == len(ledger(tmp_path)["kinds"][kind]["ids"])
    # the second day's posts were read by the first run already: its probe of what is newer
    # than its interval (tweets_newer, mentions_newer)
    posts = second.bill.kinds[BillKind.POST_READS]
    assert 0 <= posts.billed < posts.read
    assert first.bill.cost + second.bill.cost == pytest.approx(
        sum(k["cost"] for k in ledger(tmp_path)["kinds"].values())
    )


def test_a_rerun_the_same_day_bills_nothing_new(sandbox: str, tmp_path: Path) -> None:
    first = extract(sandbox, tmp_path)
    before = ledger(tmp_path)
    again = extract(sandbox, tmp_path)
    assert first.bill is not None and again.bill is not None
    assert again.bill.cost == 0 and all(k.billed == 0 for k in again.bill.kinds.values())
    assert {k: v.read for k, v in again.bill.kinds.items()} == {
        k: v.read for k, v in first.bill.kinds.items()
    }
    assert ledger(tmp_path) == before


def test_a_run_that_fails_still_bills_what_x_served(tmp_path: Path) -> None:
    """X bills what it served before a failure; nothing lands, but the ledger has it, so
    the month's spend (and the budget) count it."""
    server = make_server(0, now=datetime.now(UTC))
    server.add_faults([{"path": r"/mentions$", "kind": "503", "times": 10}])
    base = server.start()
    try:
        client = x.make_client(TOKEN, base)
        policy = x.Policy(max_retries=0)
        caller = x.Caller(policy, sleep=lambda _: None)
        with pytest.raises(x.ExtractionError):
            x.extract(client, ACCOUNTS, DAY, tmp_path / "raw", policy, caller)
        served_ids = replayed_resources(base)
    finally:
        server.stop()
    assert not (tmp_path / "versions").exists()
    kinds = ledger(tmp_path)["kinds"]
    assert served_ids[BillKind.USER_READS] and served_ids[BillKind.POST_READS]
    for kind in BillKind:
        assert set(kinds[kind]["ids"]) == served_ids[kind], kind


def test_an_old_manifest_without_a_bill_still_loads(sandbox: str, tmp_path: Path) -> None:
    manifest = extract(sandbox, tmp_path)
    written = manifest.model_dump(mode="json", exclude={"bill"})
    assert XManifest.model_validate(written).bill is None


def page(endpoint: str, url: str, body: dict, account: str = "brand", **extra) -> dict:
    return {"account": account, "endpoint": endpoint, "url": url, "status": 200,
            "body": json.dumps(body), **extra}  # fmt: skip


API = "https://api.twitter.com"
ME = page("user", f"{API}/2/users/by/username/brand", {"data": {"id": "10", "username": "brand"}})


@pytest.mark.parametrize("auth", [None, "user"])
def test_an_own_timeline_read_with_the_account_s_token_is_owned_reads(auth: str | None) -> None:
    """X bills what it serves of an account's own posts and mentions, to that account's
    user-context token, as owned reads: expansions included (our reading of the pricing)."""
    body = {
        "data": [{"id": "100"}, {"id": "101"}],
        "includes": {"users": [{"id": "10"}, {"id": "20"}], "tweets": [{"id": "90"}]},
    }
    extra = {"auth": auth} if auth else {}
    own = page("mentions", f"{API}/2/users/10/mentions?max_results=100", body, **extra)
    other = page("tweets_newer", f"{API}/2/users/11/tweets", {"data": [{"id": "7"}]}, **extra)
    counted = x_bill.read([ME, own, other])
    if auth == "user":
        assert counted[BillKind.OWNED_READS] == {
            "post:100", "post:101", "post:90", "user:10", "user:20"
        }  # fmt: skip
        assert counted[BillKind.POST_READS] == {"7"}  # another account's timeline
        assert counted[BillKind.USER_READS] == {"10"}  # the user lookup
    else:
        assert counted[BillKind.OWNED_READS] == set()
        assert counted[BillKind.POST_READS] == {"100", "101", "90", "7"}
        assert counted[BillKind.USER_READS] == {"10", "20"}


def test_dm_events_and_the_me_endpoint_are_counted() -> None:
    me = page("me", f"{API}/2/users/me", {"data": {"id": "10"}}, auth="user")
    events = {"data": [{"id": "e1"}, {"id": "e2"}], "includes": {"users": [{"id": "30"}]}}
    dms = page("dm_events", f"{API}/2/dm_events", events, auth="user")
    newer = page("dm_events_newer", f"{API}/2/dm_events", {"data": [{"id": "e3"}]}, auth="user")
    lookup = page("lookup", f"{API}/2/tweets?ids=5,6", {"data": [{"id": "5"}], "errors": [{}]})
    counted = x_bill.read([me, dms, newer, lookup])
    assert counted[BillKind.DM_EVENT_READS] == {"e1", "e2", "e3"}
    assert counted[BillKind.USER_READS] == {"10", "30"}
    assert counted[BillKind.POST_READS] == {"5"}  # a post not found is not served


def cli_env(base_url: str, root: Path, **settings: str) -> dict[str, str]:
    return dict(
        os.environ,
        ENGAGEMENT_DATA_DIR=str(root),
        X_API_BASE_URL=base_url,
        X_BEARER_TOKEN=TOKEN,
        X_ACCOUNTS=",".join(ACCOUNTS),
        **settings,
    )


def interval_args(interval: Interval) -> list[str]:
    return ["--start", interval.start.isoformat(), "--end", interval.end.isoformat()]


def test_the_budget_refuses_a_run_before_any_request(sandbox: str, tmp_path: Path) -> None:
    env = cli_env(sandbox, tmp_path / "data", ENGAGEMENT_X_MONTHLY_BUDGET="0.015")
    refused = engagement("extract", "x", *interval_args(DAY), env=env, check=False)
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.count("\n") == 1
    # no history: the two accounts' user reads are what is known in advance
    assert "ENGAGEMENT_X_MONTHLY_BUDGET=0.015" in refused.stderr
    assert "estimated at $0.020" in refused.stderr and "only $0.015" in refused.stderr
    assert served(sandbox) == [] and not (tmp_path / "data" / "versions").exists()
    # a run within the budget lands; the next one, estimated from it, no longer fits
    env["ENGAGEMENT_X_MONTHLY_BUDGET"] = "1.5"
    engagement("extract", "x", *interval_args(DAY), env=env)
    spent = ledger(tmp_path / "data")["kinds"]
    cost = sum(k["cost"] for k in spent.values())
    requests.delete(f"{sandbox}/_sandbox/requests", timeout=10)
    again = engagement("extract", "x", *interval_args(NEXT_DAY), env=env, check=False)
    assert again.returncode == 2 and served(sandbox) == []
    assert f"only ${1.5 - cost:.3f}" in again.stderr


def test_an_airflow_task_over_budget_fails_without_retries(sandbox: str, tmp_path: Path) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    from engagement import pipeline
    from engagement.orchestration import failing_for_good

    settings = Settings.from_env(cli_env(sandbox, tmp_path, ENGAGEMENT_X_MONTHLY_BUDGET="0"))
    with (
        pytest.raises(AirflowFailException, match="ENGAGEMENT_X_MONTHLY_BUDGET"),
        failing_for_good(),
    ):
        pipeline.extract_x(settings, DAY)
    assert served(sandbox) == []


def test_x_usage_prints_the_month_s_bill_and_budget(sandbox: str, tmp_path: Path) -> None:
    env = cli_env(sandbox, tmp_path / "data", ENGAGEMENT_X_MONTHLY_BUDGET="10")
    engagement("extract", "x", *interval_args(DAY), env=env)
    kinds = ledger(tmp_path / "data")["kinds"]
    usage = engagement("x-usage", env=env).stdout.splitlines()
    today = datetime.now(UTC).date()
    assert usage[0].startswith(f"X API usage {today:%Y-%m}")
    day_row = next(line for line in usage if line.startswith(str(today))).split()
    total_row = next(line for line in usage if line.startswith("total")).split()
    posts = len(kinds["post_reads"]["ids"])
    cost = sum(k["cost"] for k in kinds.values())
    assert day_row[1:3] == [str(posts), f"${kinds['post_reads']['cost']:.3f}"]
    assert day_row[-1] == total_row[-1] == f"${cost:.3f}"
    assert (
        f"budget $10.000 (ENGAGEMENT_X_MONTHLY_BUDGET), spent ${cost:.3f}, left ${10 - cost:.3f}"
        in usage
    )
    earlier = engagement("x-usage", "--month", "2026-01", env=env).stdout
    assert "total " in earlier and str(today) not in earlier and "spent $0.000" in earlier
    bad = engagement("x-usage", "--month", "2026-13", env=env, check=False)
    assert bad.returncode == 2 and "--month" in bad.stderr


def test_the_bill_equals_the_sandbox_s_own_billing(
    sandbox_server: SandboxServer, tmp_path: Path
) -> None:
    """Two runs, @acmesupport's DMs read with its own token: per kind, what the manifests
    say they billed is what the sandbox counted itself (GET /_sandbox/billing), on its day."""
    env = user_context(cli_env(sandbox_server.url, tmp_path / "data"))
    authorise(env, "acmesupport")
    bills = []
    for interval in (DAY, NEXT_DAY):
        result = engagement("extract", "x", *interval_args(interval), env=env)
        manifest = read_manifest(Path(json.loads(result.stdout.splitlines()[-1])["path"]))
        assert isinstance(manifest, XManifest) and manifest.bill is not None
        bills.append(manifest.bill)
    theirs = requests.get(f"{sandbox_server.url}/_sandbox/billing", timeout=10).json()["days"]
    (day,) = theirs
    assert {bill.day for bill in bills} == {date.fromisoformat(day["date"])} == {CLOCK_DAY}
    for kind in BillKind:
        assert sum(bill.kinds[kind].billed for bill in bills) == day[kind], kind
    assert day["dm_event_reads"] > 0 and day["post_reads"] > 0
    assert sum(bill.cost for bill in bills) == pytest.approx(day["cost_usd"])


def test_x_usage_compares_our_post_reads_with_x_s(
    sandbox_server: SandboxServer, tmp_path: Path
) -> None:
    env = cli_env(sandbox_server.url, tmp_path / "data")
    engagement("extract", "x", *interval_args(DAY), env=env)
    usage = engagement("x-usage", "--month", f"{CLOCK_DAY:%Y-%m}", env=env).stdout
    posts = len(ledger(tmp_path / "data")["kinds"]["post_reads"]["ids"])
    assert f"{CLOCK_DAY}  {posts:>8}  {posts:>8}" in usage, usage
    assert "X's counts and ours agree" in usage
    # a post read that the extraction did not make: X counts it, we do not; the day differs
    read = set(ledger(tmp_path / "data")["kinds"]["post_reads"]["ids"])
    other = next(i for i in sandbox_server.tweets if i not in read)
    requests.get(
        f"{sandbox_server.url}/2/tweets",
        params={"ids": other},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    usage = engagement("x-usage", "--month", f"{CLOCK_DAY:%Y-%m}", env=env).stdout
    assert f"1 day(s) differ: {CLOCK_DAY}" in usage, usage


MART_TABLES = ("fct_x_post_metrics", "fct_x_posts", "agg_daily_account_engagement")


def mart(settings: Settings) -> dict[str, list[tuple]]:
    """The marts' X rows, without when they were loaded or built."""
    with duckdb.connect(str(settings.published_db), read_only=True) as con:
        tables = {}
        for table in MART_TABLES:
            columns = [
                name
                for (name,) in con.execute(
                    "select column_name from information_schema.columns"
                    " where table_schema = 'marts' and table_name = ?",
                    [table],
                ).fetchall()
                if "loaded" not in name and "built" not in name
            ]
            tables[table] = sorted(
                con.execute(f"select {', '.join(columns)} from marts.{table}").fetchall(),
                key=repr,
            )
    return tables


def test_the_refresh_skip_reads_less_and_leaves_the_mart_unchanged(
    sandbox: str, tmp_path: Path
) -> None:
    """Two days and a rerun landed, loaded and built twice from the same sandbox: once
    re-reading every refresh, once skipping what was looked up the same day. The skipped
    posts' lookup pages are carried over, so the observations, and the marts, are equal."""
    marts, lookups, skips = [], [], []
    for skip in (False, True):
        root = tmp_path / f"skip_{skip}"
        env = cli_env(sandbox, root, X_REFRESH_SKIP_SAME_DAY=str(skip).lower())
        settings = Settings.from_env(env)
        requests.delete(f"{sandbox}/_sandbox/requests", timeout=10)
        for interval in (DAY, NEXT_DAY, NEXT_DAY):
            land(settings, interval, "x")
        build_and_publish(settings)
        marts.append(mart(settings))
        lookups.append([r for r in served(sandbox) if r["path"] == "/2/tweets"])
        manifests = [read_manifest(v) for v in sorted((root / "versions" / "x").glob("*/[0-9]*"))]
        skipped = [m.bill.refresh_skipped for m in manifests if isinstance(m, XManifest) and m.bill]
        skips.append(sum(skipped))
    assert len(lookups[1]) < len(lookups[0])  # fewer posts read again
    assert all(marts[0].values()) and marts[0] == marts[1]
    assert skips[0] == 0 < skips[1]


def test_the_month_s_bill_reaches_the_mart_and_the_report(sandbox: str, tmp_path: Path) -> None:
    """Two days and a rerun (which bills nothing and supersedes a version whose reads were
    billed): the mart sums the ledger, every run's reads, and the report shows it."""
    from engagement import pipeline

    env = cli_env(sandbox, tmp_path / "data", ENGAGEMENT_X_MONTHLY_BUDGET="25")
    settings = Settings.from_env(env)
    for interval in (DAY, NEXT_DAY, DAY):
        land(settings, interval, "x")
    build_and_publish(settings)
    kinds = ledger(tmp_path / "data")["kinds"]
    with duckdb.connect(str(settings.published_db), read_only=True) as con:
        rows = con.execute(
            "select month_start, kind, resources, cost_usd from marts.agg_monthly_x_bill"
        ).fetchall()
    month = datetime.now(UTC).date().replace(day=1)
    assert sorted(rows) == sorted(
        (month, kind, len(kinds[kind]["ids"]), pytest.approx(kinds[kind]["cost"])) for kind in kinds
    )
    page = pipeline.report(settings, tmp_path / "report.html").read_text()
    section = page[page.index('<section id="x_bill">') :]
    total = sum(k["cost"] for k in kinds.values())
    posts = len(kinds["post_reads"]["ids"])
    assert f'<td data-field="resources">{posts:,}</td>' in section
    assert f'<td data-field="total">${total:.3f}</td>' in section
    assert f"$25.000, ${25 - total:.3f} left" in section
