"""People, not programs: the user-agent classifier on real user agents, and on the shared
elastic log through extraction, load and dbt, the sessions it leaves per channel."""

from __future__ import annotations

import os
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

from devtools import sample
from extract.visitors import AgentClassifier
from tests.conftest import engagement

# real user agents of people's browsers, old and new, desktop, mobile and in-app
BROWSERS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:27.0) Gecko/20100101 Firefox/27.0",
    "Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1; SV1)",
    "Opera/9.80 (X11; Linux x86_64) Presto/2.12.388 Version/12.16",
    "Opera/9.80 (J2ME/MIDP; Opera Mini/7.1.32052/34.1244; U; en) Presto/2.8.119 Version/11.10",
    "Mozilla/5.0 (Linux; U; Android 2.3.6; en-gb; GT-S5360 Build/GINGERBREAD) "
    "AppleWebKit/533.1 (KHTML, like Gecko) Version/4.0 Mobile Safari/533.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/22B83 Twitter for iPhone/10.68",  # the X app's browser
    "Instagram 3.0.4 Android (8/2.2.1; 240dpi; 480x800; HTC/verizon_wwe; ADR6400L; mecha; "
    "mecha; en_US)",
    "SAMSUNG-GT-E2232/1.0 Openwave/6.2.3 Profile/MIDP-2.0 Configuration/CLDC-1.1 "
    "UP.Browser/6.2.3.3.c.1.101 (GUI) MMP/2.0",
    "MAXX_MAUI WAP Browser",
    "Lynx/2.8.7rel.2 libwww-FM/2.14 SSL-MM/1.4.1 OpenSSL/1.0.1f",
)
# real user agents of programs, with the kind each is given
PROGRAMS = {
    "UniversalFeedParser/4.2-pre-314-svn +http://feedparser.org/": "feed_reader",
    "Digg Feed Fetcher 1.0 (Mozilla/5.0 (Macintosh; Intel Mac OS X 10_7_1) "
    "AppleWebKit/534.48.3 (KHTML, like Gecko) Version/5.1 Safari/534.48.3)": "feed_reader",
    "LiveJournal.com (webmaster@livejournal.com; for "
    "http://www.livejournal.com/users/cshpsionic/; 8 readers)": "feed_reader",
    "Reeder/2.1.1 CFNetwork/672.0.8 Darwin/14.0.0": "feed_reader",
    "fetch libfetch/2.0": "http_library",
    "Dalvik/1.6.0 (Linux; U; Android 4.1.2; GT-S5282 Build/JZO54K)": "http_library",
    "HTTP_Request2/2.1.1 (http://pear.php.net/package/http_request2) PHP/5.3.2": "http_library",
    "portscout/0.8.1": "monitoring",
    "Chef Client/10.18.2 (ruby-1.9.3-p327; ohai-6.16.0; x86_64-linux; +http://opscode.com)": (
        "monitoring"
    ),
    "eZ Publish Link Validator": "link_checker",
    "Mozilla/5.0 (compatible; MSIE or Firefox mutant; not on Windows server; "
    "+ http://tab.search.daum.net/aboutWebSearch.html) Daumoa/3.0": "crawler",  # ua-parser
    "Robosourcer/1.0": "unrecognised",
    "Twitterbot/1.0": "social_preview",  # the crawler list still comes first
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)": "search_engine",
    None: "no_user_agent",
}


@pytest.fixture(scope="module")
def classify() -> AgentClassifier:
    return AgentClassifier()


@pytest.mark.parametrize("user_agent", BROWSERS)
def test_browsers_are_people(classify: AgentClassifier, user_agent: str) -> None:
    assert classify(user_agent) == (False, None)


@pytest.mark.parametrize("user_agent", PROGRAMS)
def test_programs_are_bots_of_their_kind(classify: AgentClassifier, user_agent: str) -> None:
    assert classify(user_agent) == (True, PROGRAMS[user_agent])


# Sessions per channel of the elastic log with its site's hosts as the support site, measured
# by this test's steps at 15f81b5, when only the crawler list classified agents: feedparser's
# UniversalFeedParser/4.2 alone made 84 direct sessions (364 page views, 15% of 2,393); then
# with the user-agent rules and ua-parser (AGENTS, at 647320e); then with the behaviour rules.
BEFORE = {"direct": 496, "search": 435, "internal": 281, "other": 126, "social": 30}
AGENTS = {"direct": 297, "search": 434, "internal": 280, "other": 126, "social": 30}
AFTER = {"direct": 231, "search": 434, "internal": 280, "other": 118, "social": 30}
FETCHERS = ("UniversalFeedParser/", "Digg Feed Fetcher", "LiveJournal.com", "portscout/")
FETCHERS += ("fetch libfetch",)
ELASTIC_DAYS = ["--start", "2015-05-17", "--end", "2015-05-21"]


@pytest.fixture(scope="module")
def elastic_warehouse(tmp_path_factory: pytest.TempPathFactory, elastic_log: Path) -> Path:
    """The elastic log extracted, loaded and built, its site's hosts the support site."""
    data = tmp_path_factory.mktemp("elastic") / "data"
    env = dict(
        os.environ,
        ENGAGEMENT_DATA_DIR=str(data),
        SUPPORT_SITE_HOSTS="semicomplete.com,www.semicomplete.com",
    )
    engagement("extract", "support-site", "--logs", str(elastic_log), *ELASTIC_DAYS, env=env)
    engagement("load", "--source", "support-site", *ELASTIC_DAYS, env=env)
    engagement("build", env=env)
    return data / "warehouse"


@pytest.mark.e2e
def test_on_the_elastic_log_feed_readers_and_fetchers_make_no_session(
    elastic_warehouse: Path,
) -> None:
    with duckdb.connect(str(elastic_warehouse / "engagement.duckdb"), read_only=True) as con:
        sessions = dict(
            con.execute(
                "select channel, sum(sessions) from marts.agg_daily_referrals group by all"
            ).fetchall()
        )
        [(t_co,)] = con.execute(
            "select sum(sessions) from marts.agg_daily_referrals where referrer_network = 'Twitter'"
        ).fetchall()
    assert sessions == AFTER
    assert sessions["social"] == BEFORE["social"] and t_co == 2  # both from t.co

    with duckdb.connect(str(elastic_warehouse / "build.duckdb"), read_only=True) as con:
        kinds = con.execute(
            "select distinct user_agent, is_bot, bot_kind, is_page_view"
            " from intermediate.int_support_site__requests_classified"
            " where " + " or ".join(f"starts_with(user_agent, '{f}')" for f in FETCHERS)
        ).fetchall()
        feed_parser_sessions = con.execute(
            "select count(*) from intermediate.int_support_site__sessions"
            " where user_agent like 'UniversalFeedParser/4.2%'"
        ).fetchone()
    assert {f for f in FETCHERS for ua, *_ in kinds if ua.startswith(f)} == set(FETCHERS)
    assert {(is_bot, is_page_view) for _, is_bot, _, is_page_view in kinds} == {(True, False)}
    assert {kind for *_, kind, _ in kinds} == {"feed_reader", "monitoring", "http_library"}
    assert feed_parser_sessions == (0,)


# What the behaviour rules left out of the elastic log's page views (dbt_project.yml's
# thresholds): 54 visitor-days fetched /robots.txt with a browser's user agent (129 page
# views), 7 more made 10 or more page views and loaded no asset (127); none requested pages
# faster than 10 in 10 s (the fastest that loads assets: 6, the fastest of all: 8).
BEHAVIOUR = {"behaviour_robots_txt": (54, 129), "behaviour_no_assets": (7, 127)}


@pytest.mark.e2e
def test_on_the_elastic_log_browsers_that_behave_as_bots_are_bots_for_the_day(
    elastic_warehouse: Path,
) -> None:
    with duckdb.connect(str(elastic_warehouse / "build.duckdb"), read_only=True) as con:
        con.execute(f"attach '{elastic_warehouse / 'raw.duckdb'}' as raw (read_only)")
        rows = con.execute(
            "select request_id, site, visitor_id, user_agent, requested_at, request_path,"
            " is_static_asset, is_page_request, is_bot, bot_kind, is_page_view"
            " from intermediate.int_support_site__requests_classified"
        ).fetchall()
        agent_bots = dict(
            con.execute(
                "select request_id, is_bot from staging.stg_support_site__requests"
            ).fetchall()
        )
    expected = behaviour_verdicts(
        [r for r in rows if not agent_bots[r[0]]], window=10, most=10, no_assets=10
    )
    found = {r[0]: r[9] for r in rows if r[9] and r[9].startswith("behaviour_")}
    assert found == {rid: kind for rid, kind in expected.items() if kind}
    # their page views: no session has them
    per_kind: dict[str, tuple[set, int]] = {}
    for rid, _, visitor, agent, at, *_, is_page_request, _, kind, is_page_view in rows:
        if rid in found:
            assert not is_page_view
            seen, views = per_kind.get(kind, (set(), 0))
            seen.add((visitor, agent, at.date()))
            per_kind[kind] = (seen, views + is_page_request)
    assert {kind: (len(seen), views) for kind, (seen, views) in per_kind.items()} == BEHAVIOUR
    # the day is the unit: a visitor whose robots.txt fetch fell on another day stays a person
    robots_days = {(r[2], r[3], r[4].date()) for r in rows if r[5].lower() == "/robots.txt"}
    people = [r for r in rows if r[10] and (r[2], r[3]) in {(v, a) for v, a, _ in robots_days}]
    assert people and all((r[2], r[3], r[4].date()) not in robots_days for r in people)


def behaviour_verdicts(
    rows: list[tuple], window: int, most: int, no_assets: int
) -> dict[str, str | None]:
    """request id -> behaviour bot kind (None: a person), by the rules of docs/mart.md, over
    the lines of browsers' user agents: per (site, visitor, user agent, UTC day), first rule
    winning: fetched /robots.txt; more than `most` requests for a new page (not the path of
    the visitor's previous page request) within `window` seconds; `no_assets` page views or
    more and no static asset."""
    days: dict[tuple, list[tuple]] = {}
    for row in rows:
        _, site, visitor, agent, at, *_ = row
        days.setdefault((site, visitor, agent, at.date()), []).append(row)
    verdicts: dict[str, str | None] = {}
    for day in days.values():
        day.sort(key=lambda r: (r[4], r[0]))
        pages = [r for r in day if not r[6]]
        new_pages = [r[4] for i, r in enumerate(pages) if i == 0 or pages[i - 1][5] != r[5]]
        fastest = max(
            (
                sum(1 for t in new_pages if 0 <= (at - t).total_seconds() < window)
                for at in new_pages
            ),
            default=0,
        )
        kind = None
        if any(r[5].lower() == "/robots.txt" for r in day):
            kind = "behaviour_robots_txt"
        elif fastest > most:
            kind = "behaviour_rate"
        elif not any(r[6] for r in day) and sum(r[7] for r in day) >= no_assets:
            kind = "behaviour_no_assets"
        verdicts.update({r[0]: kind for r in day})
    return verdicts


def _sample_build(root: Path, lines: list[str]) -> Path:
    """Two days of the sample's access log extracted, loaded and built; the published mart."""
    (root / "logs").mkdir(parents=True)
    (root / "logs" / "access.log").write_text("".join(line + "\n" for line in lines))
    env = dict(
        os.environ,
        ENGAGEMENT_DATA_DIR=str(root / "data"),
        SUPPORT_SITE_LOGS=str(root / "logs" / "access.log"),
        SUPPORT_SITE_INTERNAL_NETWORKS=sample.STAFF_NETWORK,
    )
    engagement("extract", "support-site", *SAMPLE_DAYS, env=env)
    engagement("load", "--source", "support-site", *SAMPLE_DAYS, env=env)
    engagement("build", env=env)
    return root / "data" / "warehouse" / "engagement.duckdb"


SAMPLE_DAYS = ["--start", "2026-11-03", "--end", "2026-11-05"]


@pytest.mark.e2e
def test_the_samples_programs_and_staff_are_left_out_and_its_people_are_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    company = sample.generate()
    start = date(2026, 11, 3)
    with_them = sample.access_log_lines(company, start=start, days=2)
    monkeypatch.setattr(sample, "_excluded_traffic", lambda *_: None)
    without = sample.access_log_lines(company, start=start, days=2)
    assert set(without) < set(with_them)  # the same lines, and more
    published = [
        _sample_build(tmp_path / name, lines)
        for name, lines in (("with", with_them), ("without", without))
    ]
    referrals, excluded = [], []
    for mart in published:
        with duckdb.connect(str(mart), read_only=True) as con:
            referrals.append(con.execute("from marts.agg_daily_referrals order by all").fetchall())
            excluded.append(
                con.execute(
                    "select date_day, kind, visitors, page_views"
                    " from marts.agg_daily_excluded_traffic where exclusion_rule != 'user_agent'"
                    " order by all"
                ).fetchall()
            )
    assert referrals[0] == referrals[1]  # every session of the sample's people, as it was
    assert excluded[1] == []
    # each program caught by its own rule, one visitor a day; the staff and the web server
    extra = [line for line in with_them if line not in set(without)]
    for day in (start, start + timedelta(days=1)):
        rows = {kind: (visitors, views) for d, kind, visitors, views in excluded[0] if d == day}
        stamp = f"{day:%d/%b/%Y}:"
        lines = [line for line in extra if stamp in line]
        staff = [line for line in lines if line.startswith("10.20.")]
        assert rows == {
            "behaviour_robots_txt": (1, _pages(lines, "198.51.100.150 ")),
            "behaviour_rate": (1, _pages(lines, "203.0.113.40 ")),
            "behaviour_no_assets": (1, _pages(lines, "198.51.100.151 ")),
            "internal_network": (len({_visitor(line) for line in staff}), _pages(staff, "10.20.")),
            "web_server": (2, _pages(lines, "127.0.0.1 ")),
        }


def _pages(lines: list[str], client: str) -> int:
    """Page requests (GETs of a non-static path answered 2xx or 304) among a client's lines."""
    return sum(
        1
        for line in lines
        if line.startswith(client)
        and '"GET ' in line
        and not line.split('"')[1].split()[1].startswith(("/static/", "/favicon.ico"))
        and line.split('"')[2].split()[0] in ("200", "304")
    )


def _visitor(line: str) -> tuple[str, str]:
    return line.split()[0], line.rsplit('"', 2)[1]
