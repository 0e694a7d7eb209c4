"""People, not programs: the user-agent classifier on real user agents, and on the shared
elastic log through extraction, load and dbt, the sessions it leaves per channel."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

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
# UniversalFeedParser/4.2 alone made 84 direct sessions (364 page views, 15% of 2,393).
BEFORE = {"direct": 496, "search": 435, "internal": 281, "other": 126, "social": 30}
AFTER = {"direct": 297, "search": 434, "internal": 280, "other": 126, "social": 30}
FETCHERS = ("UniversalFeedParser/", "Digg Feed Fetcher", "LiveJournal.com", "portscout/")
FETCHERS += ("fetch libfetch",)


@pytest.mark.e2e
def test_on_the_elastic_log_feed_readers_and_fetchers_make_no_session(
    tmp_path: Path, env: dict[str, str], elastic_log: Path
) -> None:
    env = dict(env, SUPPORT_SITE_HOSTS="semicomplete.com,www.semicomplete.com")
    interval = ["--start", "2015-05-17", "--end", "2015-05-21"]
    engagement("extract", "support-site", "--logs", str(elastic_log), *interval, env=env)
    engagement("load", "--source", "support-site", *interval, env=env)
    engagement("build", env=env)
    warehouse = Path(env["ENGAGEMENT_DATA_DIR"]) / "warehouse"

    with duckdb.connect(str(warehouse / "engagement.duckdb"), read_only=True) as con:
        sessions = dict(
            con.execute(
                "select channel, sum(sessions) from marts.agg_daily_referrals group by all"
            ).fetchall()
        )
        [(t_co,)] = con.execute(
            "select sum(sessions) from marts.agg_daily_referrals where referrer_network = 'Twitter'"
        ).fetchall()
    assert sessions == AFTER
    # the one search session gone is Daum's crawler fetching /robots.txt (ua-parser: Spider)
    assert sessions["search"] == BEFORE["search"] - 1
    assert sessions["social"] == BEFORE["social"] and t_co == 2  # both from t.co

    with duckdb.connect(str(warehouse / "build.duckdb"), read_only=True) as con:
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
