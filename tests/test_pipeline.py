"""`engagement run` end to end on the sandbox: extract, gate, load, dbt build, publish."""

from __future__ import annotations

import csv
import gzip
import re
import shutil
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import holidays
import pytest

from devtools.sample import (
    SUPPORT_SITE_HOST,
    access_log_lines,
    generate,
    latest_versions,
)
from engagement import pipeline
from engagement.warehouse.build import publish
from tests.attribution import attribute, normalized, own_links, tco_session_pages, tco_sessions
from tests.conftest import FIRST_DAY, REPO, SampleRun, engagement, mart_hashes, sample_company_env

pytestmark = pytest.mark.e2e  # drives the real CLI, dbt, Airflow or warehouse

DAYS = [date(2026, 11, 2), date(2026, 11, 3)]
# the referrer field of a combined-format line, when it is one of X's hosts
X_REFERRER = re.compile(r'" \d{3} \S+ "https?://(t\.co|(www\.|mobile\.)?(x|twitter)\.com)[/"]')
OWN = ("acmecloud", "acmesupport")
WINDOW_DAYS = 1  # X_ANSWER_WINDOW_DAYS of the module's marts
ACCOUNTS_FILE = REPO / "tests" / "fixtures" / "accounts.yml"  # of the module's marts


def run_day(day: date, env: dict[str, str]) -> str:
    end = day + timedelta(days=1)
    return engagement("run", "--start", str(day), "--end", str(end), env=env).stdout


@pytest.fixture(scope="module")
def pipeline_env(
    tmp_path_factory: pytest.TempPathFactory, sandbox_url: str, sample_day: SampleRun
) -> dict:
    """The sample's first day run (conftest's copy), then its second."""
    assert sample_day.stdout and ("--start", str(DAYS[0]), "--end", str(DAYS[1])) == FIRST_DAY
    env = sample_day.copy(tmp_path_factory.mktemp("pipeline"), sandbox_url)
    env["first_output"] = sample_day.stdout
    # a day's answer window: the first day's mentions are decided by the end of the second,
    # the second's mostly still waiting (with the default 7 days, all of them would be)
    env["X_ANSWER_WINDOW_DAYS"] = str(WINDOW_DAYS)
    env["ENGAGEMENT_ACCOUNTS_FILE"] = str(ACCOUNTS_FILE)
    run_day(DAYS[1], env)
    return env


def published(env: dict) -> Path:
    return Path(env["ENGAGEMENT_DATA_DIR"]) / "warehouse" / "engagement.duckdb"


def query(env: dict, sql: str) -> list[tuple]:
    with duckdb.connect(str(published(env)), read_only=True) as con:
        return con.execute(sql).fetchall()


def mart_fingerprint(env: dict) -> dict[str, str]:
    return mart_hashes(published(env))


def expected_mentions() -> dict[date, tuple[int, int]]:
    """Mentions per day and how many got an own reply within the loaded days and the answer
    window, from the sample."""
    company = generate()
    own_ids = {u["id"] for u in company.users if u["username"] in OWN}
    window_end = datetime.combine(DAYS[-1] + timedelta(days=1), datetime.min.time(), UTC)

    def created(post: dict) -> datetime:
        return datetime.fromisoformat(post["created_at"].replace("Z", "+00:00"))

    replied: dict[str, datetime] = {}
    for post in company.tweets:
        if post["author_id"] in own_ids and created(post) < window_end:
            for ref in post.get("referenced_tweets", []):
                if ref["type"] == "replied_to":
                    replied[ref["id"]] = min(replied.get(ref["id"], created(post)), created(post))
    counts: dict[date, tuple[int, int]] = {}
    for post in company.tweets:
        names = {m["username"] for m in post.get("entities", {}).get("mentions", [])}
        day = created(post).date()
        if post["author_id"] not in own_ids and names & set(OWN) and day in DAYS:
            mentions, done = counts.get(day, (0, 0))
            reply = replied.get(post["id"])
            in_time = reply is not None and reply <= created(post) + timedelta(days=WINDOW_DAYS)
            counts[day] = (mentions + 1, done + in_time)
    return counts


def test_one_row_per_day_with_the_sample_s_numbers(pipeline_env: dict) -> None:
    rows = query(
        pipeline_env,
        """
        select date_day, x_mentions, x_mentions_answered, support_sessions, social_sessions,
            x_referred_sessions, search_sessions + own_site_sessions + email_sessions
            + ai_assistant_sessions + direct_sessions + social_sessions + other_sessions
            + internal_sessions
        from marts.agg_daily_engagement order by date_day
        """,
    )
    assert [r[0] for r in rows] == DAYS
    expected = expected_mentions()
    assert {r[0]: (r[1], r[2]) for r in rows} == expected
    for _, _, _, sessions, social, from_x, by_channel in rows:
        assert sessions == by_channel > 0
        assert social >= from_x > 0


def test_conversations_are_the_sample_s_threads(pipeline_env: dict) -> None:
    """fct_x_conversations against the sample's own threads (devtools.sample): each
    conversation holding a mention of the loaded days, its mentions, the company's replies
    in it from its first mention on, re-contact (a mention needing an answer, as
    fct_x_mentions says, after the first company reply) and one touch (undecided while the
    answer window after the one reply outlasts the data)."""
    company = generate()
    own_ids = {u["id"] for u in company.users if u["username"] in OWN}
    data_until = datetime.combine(DAYS[-1] + timedelta(days=1), datetime.min.time())

    def created(post: dict) -> datetime:
        return datetime.fromisoformat(post["created_at"].replace("Z", "+00:00")).replace(
            tzinfo=None
        )

    needs_answer = dict(
        query(pipeline_env, "select mention_id, needs_answer from marts.fct_x_mentions")
    )
    loaded = [p for p in company.tweets if DAYS[0] <= created(p).date() <= DAYS[-1]]
    mentions = [
        p
        for p in loaded
        if p["author_id"] not in own_ids
        and {m["username"] for m in p.get("entities", {}).get("mentions", [])} & set(OWN)
    ]
    assert set(needs_answer) == {p["id"] for p in mentions}
    expected = {}
    for conversation in {p["conversation_id"] for p in mentions}:
        posts = sorted(
            (p for p in mentions if p["conversation_id"] == conversation),
            key=lambda p: (created(p), p["id"]),
        )
        replies = sorted(
            created(p)
            for p in loaded
            if p["author_id"] in own_ids
            and p["conversation_id"] == conversation
            and any(r["type"] == "replied_to" for r in p.get("referenced_tweets", []))
            and created(p) >= created(posts[0])
        )
        again = [
            created(p)
            for p in posts
            if needs_answer[p["id"]] and replies and created(p) > replies[0]
        ]
        window = timedelta(days=WINDOW_DAYS)
        if len(replies) != 1 or any(t <= replies[0] + window for t in again):
            one_touch = False
        else:
            one_touch = None if replies[0] + window > data_until else True
        expected[conversation] = (
            posts[0]["id"],
            len(posts),
            len(replies),
            replies[0] if replies else None,
            bool(again),
            one_touch,
        )
    rows = query(
        pipeline_env,
        "select conversation_id, first_customer_post_id, customer_posts, company_replies,"
        " first_company_reply_at, has_recontact, is_one_touch from marts.fct_x_conversations",
    )
    assert {r[0]: r[1:] for r in rows} == expected
    # the sample's threads have the shapes the model tells apart
    shapes = Counter((replies, recontact) for _, _, replies, _, recontact, _ in expected.values())
    assert shapes[(0, False)] and shapes[(1, False)] and shapes[(1, True)] and shapes[(2, True)]
    assert any(not needs_answer[p["id"]] and p["id"] != p["conversation_id"] for p in mentions)


def test_run_prints_summaries_and_headline(pipeline_env: dict) -> None:
    lines = pipeline_env["first_output"].splitlines()
    assert '"source": "x"' in lines[0] and '"source": "support_site"' in lines[1]
    assert any("Mentions needing an answer" in line for line in lines)


def test_rerunning_an_interval_gives_identical_marts(pipeline_env: dict) -> None:
    loaded = "select date_day, source, loaded_at from marts.agg_daily_source_coverage order by 1, 2"
    before, loaded_before = mart_fingerprint(pipeline_env), query(pipeline_env, loaded)
    run_day(DAYS[0], pipeline_env)
    assert mart_fingerprint(pipeline_env) == before
    # only the coverage's load time of the day re-run moved
    moved = [
        (day, source)
        for (day, source, old), (*_, new) in zip(
            loaded_before, query(pipeline_env, loaded), strict=True
        )
        if new != old
    ]
    assert moved == [(DAYS[0], "support_site"), (DAYS[0], "x")]
    assert set(before) >= {"agg_daily_engagement", "fct_x_mentions"}


def test_a_failing_dbt_test_publishes_nothing(pipeline_env: dict, tmp_path: Path) -> None:
    project = tmp_path / "dbt_project"
    shutil.copytree(REPO / "dbt_project", project, ignore=shutil.ignore_patterns("target", "logs"))
    (project / "tests" / "always_fails.sql").write_text("select 1 as failure\n")
    before = published(pipeline_env).read_bytes()
    env = dict(pipeline_env, ENGAGEMENT_DBT_PROJECT_DIR=str(project))
    result = engagement("build", env=env, check=False)
    assert result.returncode == 3 and result.stderr.count("\n") == 1
    assert "always_fails: fail, 1 failing row(s)" in result.stderr
    assert published(pipeline_env).read_bytes() == before


def test_publishing_never_disturbs_an_open_reader(pipeline_env: dict, tmp_path: Path) -> None:
    target = tmp_path / "engagement.duckdb"
    shutil.copy(published(pipeline_env), target)
    build_db = tmp_path / "build.duckdb"
    shutil.copy(Path(pipeline_env["ENGAGEMENT_DATA_DIR"]) / "warehouse" / "build.duckdb", build_db)
    sql = "select count(*), sum(x_mentions) from marts.agg_daily_engagement"
    with duckdb.connect(str(target), read_only=True) as reader:
        before = reader.execute(sql).fetchone()
        with duckdb.connect(str(build_db)) as con:
            con.execute("delete from marts.agg_daily_engagement where date_day = ?", [DAYS[0]])
        publish(build_db, target)
        assert reader.execute(sql).fetchone() == before
    with duckdb.connect(str(target), read_only=True) as fresh:
        assert fresh.execute(sql).fetchone()[0] == before[0] - 1


def test_a_mart_count_traces_back_to_the_log_lines_that_made_it(pipeline_env: dict) -> None:
    """A day's X-referred sessions, from the published mart through the sessions of the
    build to the raw rows (batch, file, line number, load time) and the log lines
    themselves: each a visit from X (t.co, x.com, twitter.com) on that day."""
    day = DAYS[0]
    [(count,)] = query(
        pipeline_env,
        f"select x_referred_sessions from marts.agg_daily_engagement where date_day = '{day}'",
    )
    warehouse = Path(pipeline_env["ENGAGEMENT_DATA_DIR"]) / "warehouse"
    with duckdb.connect(str(warehouse / "build.duckdb"), read_only=True) as con:
        con.execute(f"attach '{warehouse / 'raw.duckdb'}' as raw (read_only)")
        origins = con.execute(
            """
            select r.batch_id, r.source_file, r.line_no, r._loaded_at
            from intermediate.int_support_site__sessions as s
            inner join raw.support_site.requests as r
                on md5(concat_ws('|', r.site, r.file_id, cast(r.line_no as varchar)))
                = s.first_request_id
            where s.session_date = ? and s.channel = 'social' and s.referrer_network = 'Twitter'
            """,
            [day],
        ).fetchall()
    assert len(origins) == count > 0
    batch = f"{day:%Y%m%d}T000000Z_{day + timedelta(days=1):%Y%m%d}T000000Z"
    assert {origin[0] for origin in origins} == {batch}
    assert all(loaded is not None for *_, loaded in origins)
    stamp = f"[{day:%d/%b/%Y}:"
    for _, source_file, line_no, _ in origins:
        opener = gzip.open if source_file.endswith(".gz") else open
        with opener(source_file, "rt", encoding="utf-8", errors="replace") as log:
            text = next(line for n, line in enumerate(log, start=1) if n == line_no)
        assert stamp in text and X_REFERRER.search(text), text


def mf_query(env: dict, out: Path, metrics: str, group_by: str) -> list[dict]:
    engagement(
        "mf", "query", "--metrics", metrics, "--group-by", group_by, "--csv", str(out), env=env
    )
    with out.open() as rows:
        return list(csv.DictReader(rows))


def test_metrics_are_ratios_of_sums_at_any_grain(pipeline_env: dict, tmp_path: Path) -> None:
    """MetricFlow's monthly and per-account rates equal their direct computation from the
    facts and the daily counts, not an average of the days' rates."""
    metrics = "response_rate,median_first_response_minutes,conversation_share,social_share"
    [month] = mf_query(pipeline_env, tmp_path / "month.csv", metrics, "metric_time__month")
    [direct] = query(
        pipeline_env,
        """
        with mentions as (
            select
                count(*) filter (where needs_answer and is_answered)
                / count(*) filter (where needs_answer and answer_status != 'waiting')
                    as response_rate,
                median(first_response_minutes) filter (where needs_answer)
                    as median_first_response_minutes
            from marts.fct_x_mentions
        ),
        days as (
            select
                sum(x_replies_to_customers) / (sum(x_posts) + sum(x_replies_to_customers))
                    as conversation_share,
                sum(social_sessions) / sum(support_sessions) as social_share
            from marts.agg_daily_engagement
        ),
        mention_days as (
            select
                count(*) filter (where needs_answer and is_answered) as answered,
                count(*) filter (where needs_answer and answer_status != 'waiting') as decided
            from marts.fct_x_mentions
            group by created_date
        ),
        rates_of_days as (
            select
                sum(answered) / sum(decided) as response_rate_of_daily_counts,
                avg(answered / nullif(decided, 0)) as average_of_daily_rates
            from mention_days
        )
        from mentions, days, rates_of_days
        """,
    )
    assert month["metric_time__month"].startswith("2026-11-01")
    assert float(month["response_rate"]) == pytest.approx(direct[0])
    assert float(month["response_rate"]) == pytest.approx(direct[4])
    assert float(month["median_first_response_minutes"]) == pytest.approx(direct[1])
    assert float(month["conversation_share"]) == pytest.approx(direct[2])
    assert float(month["social_share"]) == pytest.approx(direct[3])
    assert direct[5] != pytest.approx(direct[4])  # the days' mention counts differ
    # and the month's row of agg_period_figures (the headline's, report's and dashboard's)
    [figures] = query(
        pipeline_env,
        "select response_rate, median_first_response_minutes, conversation_share, social_share"
        " from marts.agg_period_figures where grain = 'month' and scope = 'company'",
    )
    assert list(figures) == pytest.approx([float(month[m]) for m in metrics.split(",")])

    by_account = mf_query(
        pipeline_env,
        tmp_path / "accounts.csv",
        "mentions,response_rate,within_target_rate,p90_first_response_business_minutes",
        "metric_time__month,mention__mentioned_account_username",
    )
    expected = query(
        pipeline_env,
        """
        select
            mentioned_account_username,
            count(*),
            count(*) filter (where needs_answer and is_answered)
            / count(*) filter (where needs_answer and answer_status != 'waiting'),
            count(*) filter (where needs_answer and is_answered_within_target)
            / count(*) filter (where needs_answer and is_answered),
            quantile_cont(first_response_business_minutes, 0.9) filter (where needs_answer)
        from marts.fct_x_mentions group by 1 order by 1
        """,
    )
    got = sorted(
        (
            r["mention__mentioned_account_username"],
            int(r["mentions"]),
            *(float(r[m]) for m in ("response_rate", "within_target_rate")),
            float(r["p90_first_response_business_minutes"]),
        )
        for r in by_account
    )
    assert [g[:2] for g in got] == [e[:2] for e in expected] and len(got) == len(OWN)
    flat = [value for row in expected for value in row[2:]]
    assert [value for row in got for value in row[2:]] == pytest.approx(flat)
    # and the period figures per account, which the report shows
    figures = query(
        pipeline_env,
        "select account_username, response_rate, within_target_rate,"
        " p90_first_response_business_minutes from marts.agg_period_figures"
        " where grain = 'month' and scope = 'account' order by 1",
    )
    assert [value for row in figures for value in row[1:]] == pytest.approx(flat)


def business_seconds(start: datetime, end: datetime) -> float:
    """Seconds from `start` to `end` (naive UTC) inside New York's Monday-Friday 09:00-17:00
    and Saturday 10:00-14:00, but New York's holidays (tests/fixtures/accounts.yml), walked
    day by day in local time with zoneinfo."""
    zone = ZoneInfo("America/New_York")
    closed = holidays.US(subdiv="NY", years=range(start.year, end.year + 1))
    hours = {0: (9, 17), 1: (9, 17), 2: (9, 17), 3: (9, 17), 4: (9, 17), 5: (10, 14)}
    total = 0.0
    day = start.replace(tzinfo=UTC).astimezone(zone).date() - timedelta(days=1)
    while datetime.combine(day, time(), zone) < end.replace(tzinfo=UTC):
        if day.weekday() in hours and day not in closed:
            opens, closes = (datetime.combine(day, time(h), zone) for h in hours[day.weekday()])
            low, high = max(opens, start.replace(tzinfo=UTC)), min(closes, end.replace(tzinfo=UTC))
            total += max((high - low).total_seconds(), 0)
        day += timedelta(days=1)
    return total


def test_first_responses_in_business_minutes_and_targets_as_an_independent_count(
    pipeline_env: dict,
) -> None:
    """fct_x_mentions' business minutes and targets against the accounts file's rules
    computed here: acmesupport's New York hours (Election Day closed), the other account's
    30 calendar minutes; the period figures per account count the same breaches."""
    assert date(2026, 11, 3) in holidays.US(subdiv="NY")  # the sample's second day: closed
    rows = query(
        pipeline_env,
        """
        select mentioned_account_username, created_at, first_response_at, needs_answer,
            is_answered, first_response_minutes, first_response_business_minutes,
            target_minutes, target_basis, target_due_at, is_answered_within_target,
            is_target_breached
        from marts.fct_x_mentions order by mention_id
        """,
    )
    data_until = datetime.combine(DAYS[-1] + timedelta(days=1), time())  # the X data's end
    breaches: Counter[str] = Counter()
    for account, created, answered_at, needs, is_answered, minutes, business, *target in rows:
        target_minutes, basis, due, within, breached = target
        if account == "acmesupport":
            assert (target_minutes, basis) == (60, "business")
            assert business_seconds(created, due) == pytest.approx(60 * 60)
            # the due time is the first moment the hour of opening time is reached
            assert business_seconds(created, due - timedelta(seconds=1)) < 60 * 60
            expected_business = business_seconds(created, answered_at) / 60 if is_answered else None
        else:
            assert (target_minutes, basis, due) == (30, "calendar", created + timedelta(minutes=30))
            expected_business = minutes
        assert business == pytest.approx(expected_business)
        assert within == (is_answered and answered_at <= due)
        if not needs:
            assert breached is None
        else:
            assert breached == (False if within else True if due <= data_until else None)
        breaches[account] += bool(breached)
    business = [r for r in rows if r[0] == "acmesupport" and r[4]]
    assert any(r[6] < r[5] for r in business) and any(r[6] == 0 for r in business)
    assert breaches["acmesupport"] and breaches["acmecloud"]
    figures = query(
        pipeline_env,
        "select account_username, mentions_target_breached from marts.agg_period_figures"
        " where grain = 'period' and scope = 'account' order by 1",
    )
    assert figures == sorted(breaches.items())


def test_sessions_are_credited_to_the_posts_an_independent_count_credits(pipeline_env) -> None:
    """fct_x_post_attributed_sessions against per-post link attribution computed from the
    sample's posts (the versions the timelines serve: the latest) and log lines of the loaded
    days, session by session; the sessions it leaves out are the t.co visits not credited."""
    company = generate()
    own = {u["id"] for u in company.users if u["username"] in OWN}
    end = datetime.combine(DAYS[-1] + timedelta(days=1), datetime.min.time())
    posted = [t for t in latest_versions(company.tweets) if t["created_at"] < f"{end:%Y-%m-%d}"]
    links = own_links(posted, own, {SUPPORT_SITE_HOST})
    clicks = attribute(links, tco_sessions(access_log_lines(company), end))
    expected = sorted((c.started_at, c.path, c.post_id) for c in clicks if c.post_id)
    rows = query(
        pipeline_env,
        "select session_started_at, landing_path, post_id"
        " from marts.fct_x_post_attributed_sessions order by all",
    )
    assert rows == expected
    assert len(rows) > 50 and len(expected) < len(clicks), "some t.co visits are not credited"
    [(tco,)] = query(
        pipeline_env,
        "select count(*) from marts.fct_x_post_attributed_sessions where post_type = 'reply'",
    )
    assert tco > 0, "replies to customers with an article get credited too"


def test_the_reply_funnel_is_the_sample_s(pipeline_env: dict, tmp_path: Path) -> None:
    """fct_x_reply_funnel against the funnel computed from the sample's posts and log lines
    of the loaded days: each own reply to a customer with a support-site link, the t.co
    sessions credited to it, those with a page view under /articles/ (the default
    SUPPORT_SITE_ANSWER_PATHS), and whether its customer posted again in the thread, needing
    an answer (as fct_x_mentions says), within the answer window (None, undecided, while the
    window outlasts the data); agg_daily_account_reply_funnel and MetricFlow add them up."""
    company = generate()
    own = {u["id"] for u in company.users if u["username"] in OWN}
    end = datetime.combine(DAYS[-1] + timedelta(days=1), datetime.min.time())
    posted = [t for t in latest_versions(company.tweets) if t["created_at"] < f"{end:%Y-%m-%d}"]
    links = own_links(posted, own, {SUPPORT_SITE_HOST})
    sessions = tco_session_pages(access_log_lines(company), end)
    clicks = attribute(links, [(started, path) for started, path, _ in sessions])
    needs_answer = dict(
        query(pipeline_env, "select mention_id, needs_answer from marts.fct_x_mentions")
    )

    def created(post: dict) -> datetime:
        return datetime.fromisoformat(post["created_at"].replace("Z", "")).replace(tzinfo=None)

    mentions = [
        p
        for p in company.tweets
        if DAYS[0] <= created(p).date() <= DAYS[-1]
        and p["author_id"] not in own
        and {m["username"] for m in p.get("entities", {}).get("mentions", [])} & set(OWN)
    ]
    window = timedelta(days=WINDOW_DAYS)
    linked = {link.post_id: link.created_at for link in links}
    expected = {}
    for reply in posted:
        root = reply["edit_history_tweet_ids"][0]
        customer = reply.get("in_reply_to_user_id")
        if root not in linked or reply["author_id"] not in own or customer in (None, *own):
            continue
        at = linked[root]
        back = [
            p
            for p in mentions
            if p["author_id"] == customer
            and p["conversation_id"] == reply["conversation_id"]
            and needs_answer[p["id"]]
            and at < created(p) <= at + window
        ]
        visits = [
            pages
            for click, (_, _, pages) in zip(clicks, sessions, strict=True)
            if click.post_id == root
        ]
        reached = [
            pages for pages in visits if any(normalized(p).startswith("/articles/") for p in pages)
        ]
        returned = True if back else (None if at + window > end else False)
        expected[root] = (len(visits), len(reached), returned)
    rows = query(
        pipeline_env,
        "select reply_id, attributed_sessions, answer_page_sessions, has_customer_returned"
        " from marts.fct_x_reply_funnel",
    )
    assert {r[0]: r[1:] for r in rows} == expected
    # the sample has each outcome, and replies with and without visits
    outcomes = Counter(returned for _, _, returned in expected.values())
    assert outcomes[True] and outcomes[False] and outcomes[None], outcomes
    assert any(v for v, _, _ in expected.values()) and any(not v for v, _, _ in expected.values())

    # the daily mart adds them up per account and day
    daily = query(
        pipeline_env,
        """
        select account_username, sum(replies_with_links), sum(visits),
            sum(answer_page_visits), sum(replies_customer_returned),
            sum(replies_return_undecided)
        from marts.agg_daily_account_reply_funnel group by 1 order by 1
        """,
    )
    replies = query(
        pipeline_env,
        """
        select account_username, count(*), sum(attributed_sessions), sum(answer_page_sessions),
            count(*) filter (where has_customer_returned),
            count(*) filter (where has_customer_returned is null)
        from marts.fct_x_reply_funnel group by 1 order by 1
        """,
    )
    assert [r for r in daily if r[1]] == replies and {r[0] for r in daily} == set(OWN)
    # and MetricFlow's rates are ratios of those sums
    got = mf_query(
        pipeline_env,
        tmp_path / "funnel.csv",
        "replies_with_links,reply_visits,answer_page_visit_rate,customer_return_rate",
        "metric_time__month,reply__account_username",
    )
    assert [
        (
            r["reply__account_username"],
            int(r["replies_with_links"]),
            int(r["reply_visits"]),
            float(r["answer_page_visit_rate"]),
            float(r["customer_return_rate"]),
        )
        for r in sorted(got, key=lambda r: r["reply__account_username"])
    ] == [
        (
            account,
            n,
            visits,
            pytest.approx(reached / visits),
            pytest.approx(returned / (n - undecided)),
        )
        for account, n, visits, reached, returned, undecided in replies
    ]


def test_the_headline_says_whether_social_media_or_the_own_website_sent_more(
    pipeline_env: dict,
) -> None:
    printed = engagement("headline", env=pipeline_env).stdout
    # counted here session by session, not from the marts' sums
    channels = dict(
        query(pipeline_env, "select channel, count(*) from marts.fct_support_sessions group by 1")
    )
    networks = dict(
        query(
            pipeline_env,
            "select referrer_network, count(*) from marts.fct_support_sessions"
            " where channel = 'social' group by 1",
        )
    )
    social, own = channels["social"], channels["own_site"]
    assert social > own, "the sample company's social media sends more than its own website"
    verdict = f"Social media sent more sessions than the company's own website: {social:,} vs"
    assert f"{verdict} {own:,}" in printed
    x, facebook, linkedin = (networks.pop(n, 0) for n in ("Twitter", "Facebook", "LinkedIn"))
    other = sum(networks.values())
    assert x > 0 and facebook + linkedin > 0
    assert f"X {x:,}, Facebook {facebook:,}, LinkedIn {linkedin:,}, other networks {other:,})" in (
        printed
    )
    # the other ways round, and no data, on made-up figures
    figures = pipeline.headline(published(pipeline_env))
    figures.update(social_sessions=3, own_site_sessions=5)
    assert (
        "The company's own website sent more sessions than social media: 5 vs 3"
        in pipeline.format_headline(figures)
    )
    figures.update(own_site_sessions=3)
    assert "sent as many sessions: 3 each" in pipeline.format_headline(figures)
    figures.update(own_site_sessions=None, social_sessions=None)
    assert "own website: no support-site data" in pipeline.format_headline(figures)


# ------------------------------------------------------------------ coverage: a missing source

GAPPED_DAYS = [date(2026, 11, 2) + timedelta(days=n) for n in range(6)]  # 11-02 .. 11-07
X_UNTIL = date(2026, 11, 5)  # X is loaded to 11-05, the support site to 11-07


@pytest.fixture(scope="module")
def gapped_env(tmp_path_factory: pytest.TempPathFactory, sandbox_url: str) -> dict:
    """The sample company with X loaded for fewer days than the support site, one build."""
    from engagement.landing import Interval
    from engagement.settings import Settings
    from tests.conftest import land

    env = sample_company_env(tmp_path_factory.mktemp("gapped"), sandbox_url)
    env["X_ANSWER_WINDOW_DAYS"] = str(WINDOW_DAYS)  # decided mentions beside waiting ones
    settings = Settings.from_env(env)
    for day in GAPPED_DAYS:
        sources = ("x", "support_site") if day <= X_UNTIL else ("support_site",)
        land(settings, Interval.parse(str(day), str(day + timedelta(days=1))), *sources)
    pipeline.build(settings)
    return env


def test_coverage_marks_the_days_a_source_is_missing(gapped_env: dict) -> None:
    rows = query(
        gapped_env,
        "select date_day, source, status, status_reason, is_complete, batches, records"
        " from marts.agg_daily_source_coverage order by source, date_day",
    )
    assert [(r[0], r[1]) for r in rows] == [
        (day, source) for source in ("support_site", "x") for day in GAPPED_DAYS
    ]
    for day, source, status, reason, complete, batches, records in rows:
        if source == "x" and day > X_UNTIL:
            assert (status, reason, complete, batches, records) == (
                "missing", "no batch loaded", False, 0, None
            )  # fmt: skip
        else:
            assert (status, complete, batches) == ("complete", True, 1), (day, source, reason)
            assert reason == "complete: 1 batch loaded" and records > 0
    # the daily marts: X's figures are null (not 0) on its missing days, the site's are there
    daily = query(
        gapped_env,
        "select date_day, x_posts, x_mentions, support_sessions, x_status, support_site_status,"
        " is_complete from marts.agg_daily_engagement order by date_day",
    )
    assert [r[0] for r in daily] == GAPPED_DAYS
    for day, posts, mentions, sessions, x_status, site_status, complete in daily:
        missing = day > X_UNTIL
        assert (posts is None, mentions is None) == (missing, missing), day
        assert sessions > 0 and site_status == "complete"
        assert (x_status, complete) == (("missing", False) if missing else ("complete", True))
    accounts = query(
        gapped_env,
        "select date_day, count(*) filter (where posts is null), count(*)"
        " from marts.agg_daily_account_engagement group by 1 order by 1",
    )
    assert {day: nulls == n for day, nulls, n in accounts} == {
        day: day > X_UNTIL for day in GAPPED_DAYS
    }


def test_the_headline_names_the_incomplete_days(gapped_env: dict) -> None:
    printed = engagement("headline", env=gapped_env).stdout
    first = printed.splitlines()[0]
    assert (
        first
        == "Engagement 2026-11-02 .. 2026-11-07 (6 days, 2 incomplete: X missing 11-06..11-07)"
    )
    assert "[X no data for 11-06..11-07]" in printed.splitlines()[1]
    [(posts,)] = query(gapped_env, "select sum(x_posts) from marts.agg_daily_engagement")
    assert f"X: {posts} original posts" in printed


def test_the_report_hatches_and_explains_the_incomplete_days(
    gapped_env: dict, tmp_path: Path
) -> None:
    out = tmp_path / "report.html"
    engagement("report", "--out", str(out), env=gapped_env)
    page = out.read_text()
    assert '<span data-field="incomplete_days">2</span> incomplete' in page
    coverage = re.findall(
        r'<td data-field="day">([^<]+)</td><td data-field="source">([^<]+)</td>'
        r'<td data-field="status">([^<]+)</td><td data-field="reason">([^<]+)</td>',
        page,
    )
    assert coverage == [
        ("2026-11-06", "X", "missing", "no batch loaded"),
        ("2026-11-07", "X", "missing", "no batch loaded"),
    ]
    # marked in the conversation chart (X's days), each band with its reason, and the reasons
    # listed under it; not in the sessions chart
    conversation = section(page, "conversation")
    bands = re.search(r'class="mark-rect role-mark incomplete_marks"[^>]*>(.*?)</g>', conversation)
    assert re.findall(r'aria-label="([^"]*)"', bands[1]) == ["X missing: no batch loaded"] * 2
    assert re.findall(r'<li data-field="incomplete">([^<]*)</li>', conversation) == [
        "2026-11-06: X missing: no batch loaded",
        "2026-11-07: X missing: no batch loaded",
    ]
    assert "incomplete_marks" not in section(page, "channels")
    # and the days without X data have no share in its table, rather than 0
    absent = re.findall(r'<tr class="incomplete"><td data-field="period">([^<]+)<', conversation)
    assert sorted(set(absent)) == ["2026-11-06", "2026-11-07"]


def section(page: str, name: str) -> str:
    start = page.index(f'<section id="{name}">')
    return page[start : page.index("</section>", start)]


def test_the_headline_the_report_and_the_dashboard_show_the_same_figures(
    gapped_env: dict, tmp_path: Path
) -> None:
    """One definition per figure: on a mart where X is missing two days, the headline, the
    report and the dashboard's chart of the period figures (its query, as Superset runs it on
    DuckDB) show the same figures, and they are the ratios of the sums over the days each
    source has data, computed here from the daily mart and the mentions."""
    from engagement.figures import connect
    from tests.test_bi import chart_rows

    [(posts, replies, mentions, support, social, x, facebook, linkedin, other, own)] = query(
        gapped_env,
        """
            select sum(x_posts), sum(x_replies_to_customers), sum(x_mentions),
                sum(support_sessions), sum(social_sessions),
                sum(x_referred_sessions), sum(facebook_sessions), sum(linkedin_sessions),
                sum(other_social_sessions), sum(own_site_sessions)
            from marts.agg_daily_engagement
            """,
    )
    [(median, counted, needing, answered, waiting)] = query(
        gapped_env,
        """
        select
            median(first_response_minutes) filter (where needs_answer and is_answered),
            count(*),
            count(*) filter (where needs_answer),
            count(*) filter (where needs_answer and is_answered),
            count(*) filter (where needs_answer and answer_status = 'waiting')
        from marts.fct_x_mentions
        """
        f" where created_date <= '{X_UNTIL}'",
    )
    assert counted == mentions and posts + replies > 0 and support > 0
    assert 0 < waiting < needing - answered  # decided unanswered mentions, and waiting ones
    # the daily marts' counts add up to them; per account, a mention counts for each account
    # it tags
    daily = query(
        gapped_env,
        "select sum(x_mentions_needing_answer), sum(x_mentions_needing_answer_answered),"
        " sum(x_mentions_needing_answer_waiting) from marts.agg_daily_engagement",
    )
    assert daily == [(needing, answered, waiting)]
    per_account = query(
        gapped_env,
        "select sum(mentions_needing_answer), sum(mentions_needing_answer_answered),"
        " sum(mentions_needing_answer_waiting) from marts.agg_daily_account_engagement",
    )
    assert per_account == query(
        gapped_env,
        """
        select
            sum(mentioned_account_count) filter (where needs_answer),
            sum(mentioned_account_count) filter (where needs_answer and is_answered),
            sum(mentioned_account_count) filter (
                where needs_answer and answer_status = 'waiting'
            )
        from marts.fct_x_mentions
        """
        f" where created_date <= '{X_UNTIL}'",
    )
    want = {
        "conversation_share": replies / (posts + replies),
        "response_rate": answered / (needing - waiting),
        "median_first_response_minutes": median,
        "social_share": social / support,
        "x_referred_sessions": x,
        "facebook_sessions": facebook,
        "linkedin_sessions": linkedin,
        "other_social_sessions": other,
        "own_site_sessions": own,
        "support_sessions": support,
        "mentions": mentions,
        "mentions_needing_answer": needing,
        "mentions_needing_answer_waiting": waiting,
        "output_posts": posts + replies,
        "incomplete_days": 2,
    }
    # the dashboard
    with connect(published(gapped_env)) as con:
        [dashboard] = chart_rows(con, "Period figures")
    assert {k: dashboard[k] for k in want} == pytest.approx(want)
    # the headline
    headline = pipeline.headline(published(gapped_env))
    assert {k: headline[k] for k in want} == pytest.approx(want)
    printed = engagement("headline", env=gapped_env).stdout

    def pct(value: float) -> str:
        return f"{100 * value:.1f}%"

    assert f"({pct(want['conversation_share'])} of output is conversation)" in printed
    assert (
        f"Mentions needing an answer: {answered:,} of {needing - waiting:,} answered"
        f" ({pct(answered / (needing - waiting))}), {waiting:,} still waiting"
    ) in printed
    assert f"median first response {median:.1f} min" in printed
    assert f"social media {social:,} ({pct(social / support)}: X {x:,}, Facebook" in printed
    # the report: its cards, with their denominators, and its referrals table
    out = tmp_path / "report.html"
    engagement("report", "--out", str(out), env=gapped_env)
    page = out.read_text()
    cards = dict(re.findall(r'data-kpi="(\w+)">([^<]*)<', page))
    assert cards == {
        "conversation_share": pct(want["conversation_share"]),
        "response_rate": pct(want["response_rate"]),
        "median_first_response": f"{median:.1f} min",
        "social_share": pct(want["social_share"]),
        "own_site_sessions": f"{own:,}",
    }
    assert dict(re.findall(r'data-kpi-of="(\w+)">([^<]*)<', page))["response_rate"] == (
        f"of {needing - waiting:,} no longer waiting; {waiting:,} still waiting"
    )
    referrals = re.findall(
        r'<td data-field="network">([^<]+)</td><td data-field="sessions">([^<]+)</td>',
        section(page, "referrals"),
    )
    assert referrals == [
        ("X", f"{x:,}"),
        ("Facebook", f"{facebook:,}"),
        ("LinkedIn", f"{linkedin:,}"),
        ("Other networks", f"{other:,}"),
        ("all", f"{social:,}"),
        ("all", f"{own:,}"),
    ]


def test_metrics_can_be_restricted_to_complete_days(gapped_env: dict, tmp_path: Path) -> None:
    """The support site has sessions on every day, but X is missing after X_UNTIL: filtered
    on complete days, MetricFlow gives both metrics (of two semantic models) for those alone."""
    with_sessions = query(
        gapped_env, "select date_day from marts.agg_daily_engagement where support_sessions > 0"
    )
    assert sorted(day for (day,) in with_sessions) == GAPPED_DAYS
    out = tmp_path / "complete.csv"
    engagement(
        "mf", "query", "--metrics", "support_sessions,response_rate",
        "--group-by", "metric_time__day", "--where", "{{ Dimension('coverage_day__is_complete') }}",
        "--csv", str(out), env=gapped_env,
    )  # fmt: skip
    with out.open() as rows:
        rows = list(csv.DictReader(rows))
    assert sorted(r["metric_time__day"][:10] for r in rows) == [
        str(d) for d in GAPPED_DAYS if d <= X_UNTIL
    ]
    assert all(r["support_sessions"] and r["response_rate"] for r in rows), rows


def test_a_refusal_marks_its_days_refused_until_lifted(gapped_env: dict) -> None:
    """A refusal in the raw warehouse is a change for the build: the coverage (and the daily
    marts) are rebuilt with the day refused, and again when the refusal is gone."""
    from engagement.settings import Settings

    settings = Settings.from_env(gapped_env)
    with duckdb.connect(str(settings.raw_db)) as con:
        con.execute(
            "insert into main.refusals values ('x', '20261106T000000Z_20261107T000000Z',"
            " '2026-11-06', '2026-11-07', null, ?::json, '{}'::json, now())",
            ['["0 records: the batch is empty", "another reason"]'],
        )
    summary = pipeline.build(settings)
    assert summary.changed_sources == ["pipeline"] and summary.changed_loads == 1
    sql = (
        "select date_day, status, status_reason from marts.agg_daily_source_coverage"
        " where source = 'x' and date_day > '2026-11-05' order by 1"
    )
    assert query(gapped_env, sql) == [
        (date(2026, 11, 6), "refused", "refused by the gate: 0 records: the batch is empty"),
        (date(2026, 11, 7), "missing", "no batch loaded"),
    ]
    assert query(
        gapped_env,
        "select x_status, x_posts from marts.agg_daily_engagement where date_day = '2026-11-06'",
    ) == [("refused", None)]
    assert "X refused 11-06, X missing 11-07" in engagement("headline", env=gapped_env).stdout
    with duckdb.connect(str(settings.raw_db)) as con:
        con.execute("delete from main.refusals")
    pipeline.build(settings)
    assert [r[1] for r in query(gapped_env, sql)] == ["missing", "missing"]
