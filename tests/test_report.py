"""`engagement report`: the HTML report of a mart built from the sandbox, opened in headless
Chromium (Debian's `chromium`, which `make test` installs), driven over the DevTools
protocol: any console error fails the test, a screenshot is taken, and every figure shown
equals the one computed here with SQL of our own over the published mart."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from itertools import count as counter
from pathlib import Path
from typing import Any

import duckdb
import pytest

from engagement.report import BILL_LABELS, RULE_LABELS
from tests.conftest import REPO, authorise, engagement, land, sample_company_env, user_context

pytestmark = pytest.mark.e2e  # drives the real CLI, dbt, warehouse and a browser

DAYS = [date(2026, 11, 2), date(2026, 11, 3), date(2026, 11, 4)]
ACCOUNTS = ("acmecloud", "acmesupport")
SCREENSHOT_WIDTH = 1000


# ------------------------------------------------------------------ the browser, over CDP


def chromium_binary() -> str:
    """Debian's chromium (or $CHROMIUM); its absence fails the test, saying how to get it."""
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and (found := shutil.which(name)):
            return found
    pytest.fail(
        "chromium not found: `make test` installs it (apt-get install chromium), or set"
        " CHROMIUM to a Chromium or Chrome binary"
    )


class Browser:
    """Headless Chromium with one page, driven over the DevTools protocol (a websocket)."""

    def __init__(self, profile: Path) -> None:
        self.process = subprocess.Popen(
            [
                chromium_binary(),
                "--headless",
                "--no-sandbox",  # root in CI containers
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-extensions",
                "--no-first-run",
                "--hide-scrollbars",
                f"--window-size={SCREENSHOT_WIDTH},900",
                "--remote-debugging-port=0",
                f"--user-data-dir={profile}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.is_file() and port_file.read_text().count("\n") >= 1):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.close()
                pytest.fail("chromium did not start its DevTools endpoint")
            time.sleep(0.1)
        port = port_file.read_text().split()[0]
        with_pages = self._json(f"http://127.0.0.1:{port}/json/list")
        page = next(t for t in with_pages if t["type"] == "page")
        self.url = page["webSocketDebuggerUrl"]
        self.ids = counter(1)
        self.events: list[dict] = []

    @contextmanager
    def connected(self) -> Iterator[Browser]:
        from websockets.sync.client import connect

        with connect(self.url, max_size=None) as self.ws:
            for domain in ("Page", "Runtime", "Log"):
                self.call(f"{domain}.enable")
            yield self

    @staticmethod
    def _json(url: str) -> Any:
        import urllib.request

        with urllib.request.urlopen(url, timeout=10) as response:
            return json.load(response)

    def call(self, method: str, **params: Any) -> dict:
        ident = next(self.ids)
        self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=30))
            if message.get("id") == ident:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                return message["result"]
            self.events.append(message)

    def wait_for(self, method: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == method for e in self.events):
            self.events.append(json.loads(self.ws.recv(timeout=deadline - time.monotonic())))

    def settle(self, quiet: float = 0.5) -> None:
        """Take in whatever the page still reports until it has been quiet a while."""
        while True:
            try:
                self.events.append(json.loads(self.ws.recv(timeout=quiet)))
            except TimeoutError:
                return

    def open(self, url: str) -> None:
        self.events.clear()
        self.call("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired")
        self.settle()

    def console_errors(self) -> list[str]:
        """Every error the page reported: console.error/assert, uncaught exceptions, and
        the browser's own log (failed loads, Content-Security-Policy refusals...)."""
        errors = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
                errors.append(" ".join(str(a.get("value", a)) for a in params["args"]))
            elif method == "Runtime.exceptionThrown":
                errors.append(params["exceptionDetails"].get("text", "exception"))
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                entry = params["entry"]
                errors.append(f"{entry['text']} {entry.get('url', '')}".strip())
        return errors

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise AssertionError(result["exceptionDetails"])
        return result["result"]["value"]

    def screenshot(self, path: Path) -> Path:
        size = self.call("Page.getLayoutMetrics")["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        shot = self.call(
            "Page.captureScreenshot", format="png", captureBeyondViewport=True, clip=clip
        )
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    opened = Browser(tmp_path_factory.mktemp("chromium-profile"))
    try:
        with opened.connected():
            yield opened
    finally:
        opened.close()


# what the page shows, as the browser rendered it
SHOWN = """
(() => {
  const text = (el) => el.textContent.trim();
  const tables = {};
  for (const t of document.querySelectorAll("table[data-figures]")) {
    tables[t.dataset.figures] = [...t.tBodies[0].rows].map(
      (r) => Object.fromEntries([...r.cells].map((c) => [c.dataset.field, text(c)])));
  }
  const kpis = Object.fromEntries(
    [...document.querySelectorAll("[data-kpi]")].map((e) => [e.dataset.kpi, text(e)]));
  const fields = Object.fromEntries(
    [...document.querySelectorAll("p [data-field], section > p[data-field]")]
      .map((e) => [e.dataset.field, text(e)]));
  const kpisOf = Object.fromEntries(
    [...document.querySelectorAll("[data-kpi-of]")].map((e) => [e.dataset.kpiOf, text(e)]));
  // the data marks each section's charts draw (the layers named data*), and every chart's
  // title and axis titles
  const charts = Object.fromEntries([...document.querySelectorAll("section")].map(
    (s) => [s.id, s.querySelectorAll("svg g.role-mark[class*=' data'] > path").length]));
  const titles = [...document.querySelectorAll("figure svg")].map((svg) => ({
    title: [...svg.querySelectorAll(".role-title-text text")].map(text).join(" "),
    axes: [...svg.querySelectorAll(".role-axis-title text")].map(text),
  }));
  return {tables, kpis, kpisOf, fields, charts, titles,
          width: document.documentElement.scrollWidth};
})()
"""


# --------------------------------------------------------------------------- the mart


@pytest.fixture(scope="module")
def mart(tmp_path_factory: pytest.TempPathFactory, sandbox_url: str) -> dict[str, str]:
    """A mart published from three sandbox days (landed in-process, one build)."""
    from engagement import pipeline
    from engagement.landing import Interval
    from engagement.settings import Settings

    env = sample_company_env(tmp_path_factory.mktemp("report"), sandbox_url)
    # a day's answer window: mentions of the first days decided (some never answered),
    # the last day's still waiting
    env["X_ANSWER_WINDOW_DAYS"] = "1"
    env = user_context(env)
    authorise(env, "acmesupport")  # its DMs read; acmecloud's not ("not authorised")
    settings = Settings.from_env(env)
    for day in DAYS:
        land(settings, Interval.parse(str(day), str(day + timedelta(days=1))), "x", "support_site")
    pipeline.build(settings)
    return env


def query(env: dict[str, str], sql: str) -> list[tuple]:
    published = Path(env["ENGAGEMENT_DATA_DIR"]) / "warehouse" / "engagement.duckdb"
    with duckdb.connect(str(published), read_only=True) as con:
        return con.execute(sql).fetchall()


def pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "–"


def mins(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f} min"


def expected(env: dict[str, str]) -> dict[str, Any]:
    """The report's figures, computed here from the mart's tables (by other routes where
    the mart has two: mentions from fct_x_mentions, sessions from agg_daily_engagement)."""
    posts, replies = query(
        env,
        "select sum(posts), sum(replies_to_customers) from marts.agg_daily_account_engagement",
    )[0]
    needing, answered, waiting, not_needing, median = query(
        env,
        """
        select
            count(*) filter (where needs_answer),
            count(*) filter (where needs_answer and is_answered),
            count(*) filter (where needs_answer and answer_status = 'waiting'),
            count(*) filter (where not needs_answer and not is_answered),
            median(first_response_minutes) filter (where needs_answer and is_answered)
        from marts.fct_x_mentions
        """,
    )[0]
    channel_columns = {
        "social": "social_sessions",
        "search": "search_sessions",
        "own_site": "own_site_sessions",
        "email": "email_sessions",
        "ai_assistant": "ai_assistant_sessions",
        "direct": "direct_sessions",
        "internal": "internal_sessions",
        "other": "other_sessions",
    }
    columns = ", ".join(channel_columns.values())
    daily = query(
        env,
        f"select date_day, support_sessions, {columns} from marts.agg_daily_engagement order by 1",
    )
    support = sum(row[1] for row in daily)
    social = sum(row[2] for row in daily)
    own_site = sum(row[4] for row in daily)
    conversation = [
        {
            "period": str(day),
            "account": account,
            "posts": f"{p:,}",
            "replies_to_customers": f"{r:,}",
            "share": pct(r, p + r),
        }
        for day, account, p, r in query(
            env,
            "select date_day, account_username, posts, replies_to_customers"
            " from marts.agg_daily_account_engagement order by 1, 2",
        )
    ]
    per_account = query(
        env,
        """
        select
            mentioned_account_username,
            count(*) filter (where needs_answer),
            count(*) filter (where needs_answer and is_answered),
            count(*) filter (where needs_answer and answer_status = 'waiting'),
            quantile_cont(first_response_minutes, 0.5) filter (where needs_answer and is_answered)
        from marts.fct_x_mentions
        group by 1 order by 1
        """,
    )
    # DM care from the requests themselves; acmesupport's DMs are read on every day
    dm = query(
        env,
        """
        select
            account_username, count(*), count(*) filter (where is_answered),
            count(*) filter (where is_waiting),
            quantile_cont(first_response_minutes, 0.5) filter (where is_answered),
            quantile_cont(first_response_business_minutes, 0.5) filter (where is_answered),
            count(*) filter (where is_answered_within_target),
            count(*) filter (where is_target_breached)
        from marts.fct_x_dm_requests
        group by 1 order by 1
        """,
    )
    # each account's target and its figures; the X data reaches the end of the last day
    targets = query(
        env,
        f"""
        select
            mentioned_account_username,
            any_value(target_minutes),
            any_value(target_basis),
            count(*) filter (
                where needs_answer and is_answered and first_response_at <= target_due_at
            ),
            count(*) filter (where needs_answer and is_answered),
            count(*) filter (
                where needs_answer and coalesce(first_response_at > target_due_at, true)
                and target_due_at <= timestamp '{DAYS[-1] + timedelta(days=1)}'
            ),
            quantile_cont(first_response_minutes, [0.5, 0.9])
                filter (where needs_answer and is_answered),
            quantile_cont(first_response_business_minutes, [0.5, 0.9])
                filter (where needs_answer and is_answered)
        from marts.fct_x_mentions
        group by 1 order by 1
        """,
    )
    unanswered = query(
        env,
        "select created_at, mentioned_account_usernames, author_username, mention_text,"
        " answer_status = 'late' from marts.fct_x_mentions"
        " where needs_answer and answer_status in ('unanswered', 'late')"
        " order by created_at desc, mention_id",
    )
    networks = query(
        env,
        "select sum(x_referred_sessions), sum(facebook_sessions), sum(linkedin_sessions),"
        " sum(other_social_sessions) from marts.agg_daily_engagement",
    )[0]
    # the reply funnel per account, from the replies (the report sums the daily mart)
    funnel = query(
        env,
        """
        select
            accounts.account_username,
            count(replies.reply_id),
            coalesce(sum(replies.attributed_sessions), 0),
            coalesce(sum(replies.answer_page_sessions), 0),
            count(*) filter (where replies.has_customer_returned),
            count(*) filter (
                where replies.reply_id is not null and replies.has_customer_returned is null
            )
        from (select distinct account_username from marts.agg_daily_account_engagement) accounts
        left join marts.fct_x_reply_funnel as replies using (account_username)
        group by 1 order by 1
        """,
    )
    names = ("X", "Facebook", "LinkedIn", "Other networks")  # one name for X, as the headline's
    return {
        "networks": {
            network: (f"{sessions:,}", pct(sessions, support))
            for network, sessions in zip(names, networks, strict=True)
        },
        "kpis": {
            "conversation_share": pct(replies, posts + replies),
            "response_rate": pct(answered, needing - waiting),
            "median_first_response": mins(median),
            "social_share": pct(social, support),
            "own_site_sessions": f"{own_site:,}",
        },
        # each figure with what it is of: its denominator
        "kpis_of": {
            "conversation_share": f"of {posts + replies:,} posts and replies to customers",
            "response_rate": (
                f"of {needing - waiting:,} no longer waiting; {waiting:,} still waiting"
            ),
            "median_first_response": f"over {answered:,} answered mentions needing one",
            "social_share": f"of {support:,} support-site sessions",
            "own_site_sessions": f"{pct(own_site, support)} of {support:,} sessions",
        },
        "conversation": conversation,
        "accounts": [
            {
                "account": account,
                "mentions": f"{m:,}",
                "answered": f"{a:,}",
                "waiting": f"{w:,}",
                "response_rate": pct(a, m - w),
                "median_first_response": mins(med),
            }
            for account, m, a, w, med in per_account
        ],
        "targets": [
            {
                "account": account,
                "target": mins(target) + (" of business hours" if basis == "business" else ""),
                "within_target": f"{within:,} of {answered:,}",
                "within_target_rate": pct(within, answered),
                "breaches": f"{breaches:,}",
                "median": mins(calendar[0]),
                "p90": mins(calendar[1]),
                "median_business": mins(business[0]),
                "p90_business": mins(business[1]),
            }
            for account, target, basis, within, answered, breaches, calendar, business in targets
        ],
        "dm_care": [
            {
                "account": "acmecloud",
                "dm_known_days": "not authorised: its DMs are unknown"
                " (engagement x-login acmecloud)",
            }
        ]
        + [
            {
                "account": account,
                "dm_known_days": str(len(DAYS)),
                "dm_requests": f"{n:,}",
                "dm_answered": f"{a:,}",
                "dm_response_rate": pct(a, n - w),
                "dm_waiting": f"{w:,}",
                "dm_median": mins(med),
                "dm_median_business": mins(business),
                "dm_within_target": f"{within:,}",
                "dm_breaches": f"{breaches:,}",
            }
            for account, n, a, w, med, business, within, breaches in dm
        ],
        "unanswered_count": f"{len(unanswered):,}",
        "waiting_count": f"{waiting:,}",
        "not_needing_count": f"{not_needing:,}",
        "unanswered": [
            {
                "created_at": at.strftime("%Y-%m-%d %H:%M"),
                "accounts": accounts,
                "author": f"@{author}" if author else "(unknown)",
                "text": ("(deleted)" if text is None else text)
                + (" (answered late)" if late else ""),
            }
            for at, accounts, author, text, late in unanswered[:50]
        ],
        "channels": {
            str(row[0]): {
                channel: f"{value:,}"
                for channel, value in zip(channel_columns, row[2:], strict=True)
                if value
            }
            | {"all": f"{row[1]:,}"}
            for row in daily
        },
        "social": f"{social:,}",
        "own_site": f"{own_site:,}",
        "days": [str(row[0]) for row in daily],
        "reply_funnel": [
            dict(
                zip(
                    (
                        "account",
                        "replies_with_links",
                        "visits",
                        "answer_page_visits",
                        "returned",
                        "undecided",
                    ),
                    (account, *(f"{n:,}" for n in counts)),
                    strict=True,
                )
            )
            for account, *counts in funnel
        ],
    }


# --------------------------------------------------------------------------- the tests


def test_the_report_opens_without_errors_and_shows_the_mart_s_figures(
    mart: dict[str, str], browser: Browser, tmp_path: Path
) -> None:
    out = tmp_path / "engagement.html"
    result = engagement("report", "--out", str(out), env=mart)
    assert result.stdout.strip() == str(out)
    page = out.read_text()
    # self-contained: nothing to fetch (the page's CSP forbids it, and the browser would say);
    # links in the posts' texts are text
    assert re.findall(r"""\b(?:src|href|srcset|action)\s*=\s*["']?([^"'\s>]*)""", page) == [
        "data:,"
    ]
    assert "<script" not in page and "url(" not in page and "@import" not in page

    browser.open(out.as_uri())
    assert browser.console_errors() == []
    # kept where REPORT_SCREENSHOT says (pytest's temporary directories do not last)
    shot = browser.screenshot(Path(os.environ.get("REPORT_SCREENSHOT", tmp_path / "report.png")))
    shutil.copy(out, shot.with_suffix(".html"))
    print(f"screenshot: {shot}")
    png = shot.read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 50_000
    width = int.from_bytes(png[16:20], "big")
    assert width == SCREENSHOT_WIDTH
    shown = browser.evaluate(SHOWN)

    want = expected(mart)
    assert shown["kpis"] == want["kpis"]
    assert shown["kpisOf"] == want["kpis_of"]
    assert shown["fields"]["first_day"] == want["days"][0]
    assert shown["fields"]["last_day"] == want["days"][-1]
    assert shown["fields"]["days"] == str(len(DAYS))
    tables = shown["tables"]
    assert tables["conversation"] == want["conversation"]
    assert tables["accounts"] == want["accounts"]
    assert tables["targets"] == want["targets"]
    assert tables["dm_care"] == want["dm_care"] and int(tables["dm_care"][1]["dm_requests"]) > 0
    assert [a["account"] for a in tables["accounts"]] == list(ACCOUNTS)
    for field in ("unanswered_count", "waiting_count", "not_needing_count"):
        assert shown["fields"][field] == want[field], field
    assert tables["unanswered"] == want["unanswered"] and tables["unanswered"]
    channels = {
        row.pop("day"): {k: v for k, v in row.items() if v != "0"} for row in tables["channels"]
    }
    assert channels == want["channels"]
    referrals = {
        (r["channel"], r["network"]): (r["sessions"], r["share"]) for r in tables["referrals"]
    }
    assert referrals.pop(("Social media", "all"))[0] == want["social"]
    assert referrals.pop(("Company website", "all"))[0] == want["own_site"]
    assert referrals == {("Social media", n): v for n, v in want["networks"].items()}
    top = query(
        mart,
        "select post_id, count(*) from marts.fct_x_post_attributed_sessions"
        " group by post_id order by 2 desc, 1 limit 10",
    )
    rows = [(r["post_id"], r["visits"]) for r in tables["top_posts"]]
    assert rows == [(post, f"{visits:,}") for post, visits in top] and rows
    assert tables["reply_funnel"] == want["reply_funnel"]
    # clicks X counted against credited visits: @acmesupport's private metrics were read,
    # @acmecloud's not
    [(posts, clicks, sessions)] = query(
        mart,
        "select count(*) filter (where url_link_clicks > 0), sum(url_link_clicks),"
        " sum(attributed_sessions) from marts.fct_x_post_clicks",
    )
    assert clicks > 0 and tables["link_clicks"] == [
        {"account": "acmecloud", "metrics_access": "not authorised"},
        {
            "account": "acmesupport",
            "posts_with_link_clicks": f"{posts:,}",
            "url_link_clicks": f"{clicks:,}",
            "attributed_sessions": f"{sessions:,}",
            "sessions_per_link_click": f"{sessions / clicks:.2f}",
        },
    ]
    top_clicks = query(
        mart,
        "select post_id, url_link_clicks from marts.fct_x_post_clicks where url_link_clicks > 0"
        " order by 2 desc, 1 limit 10",
    )
    assert [(r["post_id"], r["url_link_clicks"]) for r in tables["link_click_posts"]] == [
        (post, f"{n:,}") for post, n in top_clicks
    ]
    assert [r["account"] for r in tables["reply_funnel"]] == list(ACCOUNTS)
    assert any(r["replies_with_links"] != "0" for r in tables["reply_funnel"])
    # the latest month's X bill, per kind of read, then its total and the budget
    bill = query(
        mart,
        "select kind, resources, cost_usd from marts.agg_monthly_x_bill"
        " where month_start = (select max(month_start) from marts.agg_monthly_x_bill)"
        " order by kind",
    )
    assert [(r["kind"], r["resources"], r["cost"]) for r in tables["x_bill"][:-2]] == [
        (BILL_LABELS[kind], f"{n:,}", f"${cost:.3f}") for kind, n, cost in bill
    ]
    assert tables["x_bill"][-2]["total"] == f"${sum(cost for *_, cost in bill):.3f}"
    assert tables["x_bill"][-1]["budget"] == "none set" and sum(n for _, n, _ in bill) > 0
    # what was left out, per rule in the order they apply, and kind
    excluded = query(
        mart,
        "select exclusion_rule, kind, sum(page_views), sum(requests)"
        " from marts.agg_daily_excluded_traffic"
        " group by exclusion_rule, kind",
    )
    shown_excluded = [
        (r["rule"], r["kind"], r["page_views"], r["requests"]) for r in tables["excluded"]
    ]
    assert sorted(shown_excluded) == sorted(
        (RULE_LABELS[rule], kind, f"{views:,}", f"{n:,}") for rule, kind, views, n in excluded
    )
    rules = [r[0] for r in shown_excluded]
    assert rules == sorted(rules, key=list(RULE_LABELS.values()).index)
    assert set(rules) == set(RULE_LABELS.values())  # the sample has traffic of each
    # the charts draw them: a point per account and day, bars per account (mentions,
    # answered; the median), per channel-day, per referrer, per top post and per funnel
    # step and account
    points = [row for row in want["conversation"] if row["share"] != "–"]
    medians = [row for row in want["accounts"] if row["median_first_response"] != "–"]
    assert shown["charts"] == {
        "coverage": 0,
        "conversation": len(points),
        "mentions": 2 * len(ACCOUNTS) + len(medians),
        "unanswered": 0,
        "channels": sum(len(day) - 1 for day in want["channels"].values()),
        "referrals": len(want["networks"]) + 2,
        "top_posts": len(top),
        "reply_funnel": 4 * len(ACCOUNTS),
        "link_clicks": 0,  # tables only
        "x_bill": 0,
        "excluded": 0,
    }
    # every chart has a title and titled axes
    assert len(shown["titles"]) == 7
    for chart in shown["titles"]:
        assert chart["title"] and len(chart["axes"]) == 2 and all(chart["axes"]), chart
    assert shown["width"] <= SCREENSHOT_WIDTH  # nothing overflows sideways


def test_the_browser_harness_catches_console_errors(browser: Browser, tmp_path: Path) -> None:
    """The check above is not vacuous: a page that logs an error or fails a load is caught."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        '<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy"'
        " content=\"default-src 'none'\"></head><body>"
        '<img src="https://example.invalid/x.png"></body></html>'
    )
    browser.open(bad.as_uri())
    errors = browser.console_errors()
    assert any("Content Security Policy" in e for e in errors), errors
    bad.write_text('<!DOCTYPE html><script>console.error("boom")</script>')
    browser.open(bad.as_uri())
    assert browser.console_errors() == ["boom"]


def test_the_report_s_dbt_exposure_names_the_tables_it_reads() -> None:
    import yaml

    from engagement.report import SQL

    exposures = yaml.safe_load(
        (REPO / "dbt_project" / "models" / "marts" / "_marts__exposures.yml").read_text()
    )["exposures"]
    report = next(e for e in exposures if e["name"] == "engagement_report")
    refs = {re.fullmatch(r"ref\('(\w+)'\)", ref)[1] for ref in report["depends_on"]}
    assert refs == {table for sql in SQL.values() for table in re.findall(r"marts\.(\w+)", sql)}


def test_no_published_mart_is_one_clear_line(env: dict[str, str], tmp_path: Path) -> None:
    result = engagement("report", "--out", str(tmp_path / "r.html"), env=env, check=False)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "no published mart" in result.stderr
    assert not (tmp_path / "r.html").exists()


def test_a_long_period_is_shown_per_week(
    mart: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past DAILY_UP_TO days the conversation is shown per ISO week (from agg_period_figures'
    week rows): here the three days, Monday to Wednesday, are one week."""
    from engagement import report

    monkeypatch.setattr(report, "DAILY_UP_TO", len(DAYS) - 1)
    published = Path(mart["ENGAGEMENT_DATA_DIR"]) / "warehouse" / "engagement.duckdb"
    page = report.render(report.read_figures(published))
    rows = re.findall(
        r'<td data-field="period">([^<]+)</td><td data-field="account">([^<]+)</td>'
        r'<td data-field="posts">([^<]+)</td><td data-field="replies_to_customers">([^<]+)<',
        page,
    )
    sums = query(
        mart,
        "select account_username, sum(posts), sum(replies_to_customers)"
        " from marts.agg_daily_account_engagement group by 1 order by 1",
    )
    assert DAYS[0].weekday() == 0
    assert rows == [(str(DAYS[0]), a, f"{p:,}", f"{r:,}") for a, p, r in sums]
    assert "Conversation share per account and week" in page and "wk 02 Nov" in page


def test_unanswered_mentions_past_their_target_are_listed_and_sent_once(
    mart: dict[str, str], tmp_path: Path
) -> None:
    """`engagement unanswered` lists the mart's waiting mentions that need an answer and are
    past their target, oldest first; the notifier sends them as one message, then nothing
    more until another is overdue, and forgets one no longer overdue."""
    from datetime import UTC, datetime

    from engagement import unanswered
    from engagement.settings import Settings

    expected = query(
        mart,
        f"""
        select mention_id from marts.fct_x_mentions
        where needs_answer and first_response_at is null
            and target_due_at <= timestamp '{DAYS[-1] + timedelta(days=1)}'
            and created_at + interval 1 day > timestamp '{DAYS[-1] + timedelta(days=1)}'
        order by created_at, mention_id
        """,
    )
    listed = engagement("unanswered", env=mart).stdout
    assert re.findall(r"https://x\.com/[\w/]+/status/(\d+)", listed) == [m for (m,) in expected]
    assert listed.startswith(f"engagement: {len(expected)} mentions needing an answer past")
    assert len(expected) > 1

    settings = Settings.from_env(mart | {"ENGAGEMENT_DATA_DIR": str(tmp_path / "data")})
    shutil.copytree(Path(mart["ENGAGEMENT_DATA_DIR"]) / "warehouse", settings.warehouse_dir)
    messages: list[str] = []
    now = datetime.combine(DAYS[-1] + timedelta(days=1), datetime.min.time(), UTC)
    sent = unanswered.notify(settings, lambda text, items: messages.append(text), now)
    assert [item.mention_id for item in sent] == [m for (m,) in expected]
    assert messages == [unanswered.message(sent, now)]
    assert unanswered.notify(settings, lambda text, items: messages.append(text), now) == []
    assert len(messages) == 1  # once each
    record = settings.state_dir / "notified_mentions.json"
    # one answered since: it leaves the record; one not sent before is sent alone
    kept = json.loads(record.read_text())
    del kept[sent[0].mention_id]
    kept["0"] = now.isoformat()  # a mention no longer overdue
    record.write_text(json.dumps(kept))
    again = unanswered.notify(settings, lambda text, items: messages.append(text), now)
    assert [item.mention_id for item in again] == [sent[0].mention_id]
    assert sorted(json.loads(record.read_text())) == sorted(m for (m,) in expected)
