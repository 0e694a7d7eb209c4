"""The engagement report: one self-contained HTML file (inline CSS and SVG, no script, no
network) read from the published mart, as a BI tool reads it (read-only).

Every figure is computed here with SQL over schema `marts` (rates are ratios of sums over
the period shown, never averages of daily ratios) and shown twice: drawn in a chart, and
written in the table under it, whose cells carry `data-field` for tests and screen readers.
All the report's SQL is in this module, in the `SQL` mapping."""

from __future__ import annotations

import html
import math
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from engagement.errors import UsageError
from engagement.warehouse.build import published_file

# ---------------------------------------------------------------------------------- the SQL

SQL: dict[str, str] = {
    "tables": "select table_name from duckdb_tables() where schema_name = 'marts'",
    "period": "select min(date_day), max(date_day), count(*) from marts.agg_daily_engagement",
    "totals": """
        select
            sum(posts), sum(replies_to_customers)
        from marts.agg_daily_account_engagement
    """,
    "mention_totals": """
        select
            count(*),
            count(*) filter (where is_answered),
            median(first_response_minutes) filter (where is_answered)
        from marts.fct_x_mentions
    """,
    # conversation share per account and period (day or ISO week, $grain)
    "conversation": """
        select
            cast(date_trunc($grain, date_day) as date) as period,
            account_username,
            sum(posts) as posts,
            sum(replies_to_customers) as replies_to_customers
        from marts.agg_daily_account_engagement
        group by all
        order by period, account_username
    """,
    # per account over the period, as the metrics count it (_marts__semantic_models.yml): a
    # mention counts for its primary account, so the accounts add up to the company
    "accounts": """
        with mentions as (
            select
                mentioned_account_username as account_username,
                count(*) as mentions,
                count(*) filter (where is_answered) as answered,
                median(first_response_minutes) filter (where is_answered) as median_minutes
            from marts.fct_x_mentions
            group by mentioned_account_username
        )
        select
            accounts.account_username,
            coalesce(mentions.mentions, 0),
            coalesce(mentions.answered, 0),
            mentions.median_minutes
        from (select distinct account_username from marts.agg_daily_account_engagement) as accounts
        left join mentions on accounts.account_username = mentions.account_username
        order by accounts.account_username
    """,
    "unanswered_count": "select count(*) from marts.fct_x_mentions where not is_answered",
    "unanswered": """
        select
            mention_id, created_at, mentioned_account_usernames, author_username,
            mention_text, is_deleted
        from marts.fct_x_mentions
        where not is_answered
        order by created_at desc, mention_id
        limit $limit
    """,
    "channel_labels": "select channel, channel_label from marts.dim_channels order by sort_order",
    "channels": """
        select date_day, channel, sum(sessions) as sessions
        from marts.agg_daily_referrals
        group by all
        order by all
    """,
    "referrals": """
        select channel, referrer_network, sum(sessions) as sessions
        from marts.agg_daily_referrals
        where channel in ('social', 'own_site')
        group by all
        order by channel, sessions desc, referrer_network
    """,
    # the days a source is not complete, and why (agg_daily_source_coverage)
    "coverage": """
        select date_day, source, status, status_reason
        from marts.agg_daily_source_coverage
        where status != 'complete'
        order by date_day, source
    """,
    "top_posts": """
        select
            visits.post_id,
            any_value(visits.account_username) as account_username,
            any_value(visits.post_created_at) as created_at,
            any_value(posts.post_text) as post_text,
            count(*) as visits
        from marts.fct_x_post_attributed_sessions as visits
        left join marts.fct_x_posts as posts on visits.post_id = posts.post_id
        group by visits.post_id
        order by visits desc, visits.post_id
        limit $limit
    """,
}

ATTRIBUTION_TABLE = "fct_x_post_attributed_sessions"
COVERAGE_TABLE = "agg_daily_source_coverage"
SOURCE_LABELS = {"x": "X", "support_site": "Support site"}
UNANSWERED_SHOWN = 50
TOP_POSTS = 10
DAILY_UP_TO = 31  # periods of up to this many days are shown per day, longer ones per week

PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#999999", "#F0E442")


# ------------------------------------------------------------------------------ the figures


@dataclass(frozen=True)
class Account:
    username: str
    mentions: int
    answered: int
    median_minutes: float | None


@dataclass(frozen=True)
class Mention:
    mention_id: str
    created_at: datetime
    accounts: str
    author: str | None
    text: str | None
    deleted: bool


@dataclass(frozen=True)
class Post:
    post_id: str
    account: str
    created_at: datetime | None
    text: str | None
    visits: int


@dataclass(frozen=True)
class Figures:
    first_day: date
    last_day: date
    days: int
    grain: str  # "day" or "week"
    posts: int
    replies_to_customers: int
    mentions: int
    answered: int
    median_minutes: float | None
    # (period, account) -> (posts, replies to customers)
    conversation: dict[tuple[date, str], tuple[int, int]]
    accounts: list[Account]
    unanswered_count: int
    unanswered: list[Mention]
    channel_labels: dict[str, str]  # channel -> label, in the order shown (dim_channels)
    channels: dict[date, dict[str, int]]  # day -> channel -> sessions
    referrals: list[tuple[str, str, int]]  # (channel, network, sessions)
    top_posts: list[Post] | None  # None: the mart has no attribution table
    # the (day, source) that are not complete: (status, why); None: the mart has no coverage
    coverage: dict[tuple[date, str], tuple[str, str]] | None = None

    def incomplete(self, source: str) -> dict[date, str]:
        """The days a source is not complete, with what the charts say about them."""
        return {
            day: f"{SOURCE_LABELS.get(src, src)} {status}: {why}"
            for (day, src), (status, why) in (self.coverage or {}).items()
            if src == source
        }


def read_figures(published_db: Path) -> Figures:
    """The report's figures, from the published mart opened read-only."""
    with duckdb.connect(str(published_file(published_db)), read_only=True) as con:

        def rows(name: str, **params: Any) -> list[tuple]:
            return con.execute(SQL[name], params or None).fetchall()

        tables = {name for (name,) in rows("tables")}
        first_day, last_day, days = rows("period")[0]
        if not days:
            raise UsageError(
                f"the published mart at {published_db} has no day yet: load a batch with"
                " data, then engagement build"
            )
        grain = "day" if days <= DAILY_UP_TO else "week"
        posts, replies = rows("totals")[0]
        mentions, answered, median = rows("mention_totals")[0]
        channels: dict[date, dict[str, int]] = {}
        for day, channel, sessions in rows("channels"):
            channels.setdefault(day, {})[channel] = int(sessions)
        coverage = None
        if COVERAGE_TABLE in tables:
            coverage = {(day, src): (status, why) for day, src, status, why in rows("coverage")}
        top_posts = None
        if ATTRIBUTION_TABLE in tables:
            top_posts = [Post(*row[:4], int(row[4])) for row in rows("top_posts", limit=TOP_POSTS)]
        return Figures(
            first_day=first_day,
            last_day=last_day,
            days=days,
            grain=grain,
            posts=int(posts or 0),
            replies_to_customers=int(replies or 0),
            mentions=mentions,
            answered=answered,
            median_minutes=None if median is None else float(median),
            conversation={  # periods without X data (missing, refused days) are left out
                (period, account): (int(p), int(r))
                for period, account, p, r in rows("conversation", grain=grain)
                if p is not None
            },
            accounts=[
                Account(name, int(m), int(a), None if med is None else float(med))
                for name, m, a, med in rows("accounts")
            ],
            unanswered_count=rows("unanswered_count")[0][0],
            unanswered=[
                Mention(str(i), at, accounts, author, text, bool(deleted))
                for i, at, accounts, author, text, deleted in rows(
                    "unanswered", limit=UNANSWERED_SHOWN
                )
            ],
            channel_labels=dict(rows("channel_labels")),
            channels=channels,
            referrals=[(c, n, int(s)) for c, n, s in rows("referrals")],
            top_posts=top_posts,
            coverage=coverage,
        )


# ---------------------------------------------------------------------- formatting helpers


def share(part: int, whole: int) -> str:
    """A ratio of sums as shown: one decimal of a percent, `–` when there is no whole."""
    return f"{100 * part / whole:.1f}%" if whole else "–"


def minutes(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f} min"


def count(value: int) -> str:
    return f"{value:,}"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _nice_max(value: float) -> float:
    """The top of an axis of four steps at or above value, each step 1, 2 or 5 times a
    power of ten (at least 1: 4 for nothing)."""
    quarter = max(value / 4, 1.0)
    scale = 10 ** math.floor(math.log10(quarter))
    step = next(s * scale for s in (1, 2, 5, 10) if quarter <= s * scale)
    return float(4 * step)


# -------------------------------------------------------------------------------- the charts

WIDTH, HEIGHT = 760, 280
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 12, 44


def _svg(label: str, body: list[str], height: int = HEIGHT) -> str:
    return (
        f'<svg viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" role="img"'
        f' aria-label="{_e(label)}" xmlns="http://www.w3.org/2000/svg">' + "".join(body) + "</svg>"
    )


def _legend(names: Sequence[str]) -> str:
    items = "".join(
        f'<span><i style="background:{PALETTE[i % len(PALETTE)]}"></i>{_e(name)}</span>'
        for i, name in enumerate(names)
    )
    return f'<p class="legend">{items}</p>'


def _y_axis(top: float, fmt: Any, height: int = HEIGHT) -> list[str]:
    plot = height - TOP - BOTTOM
    parts = []
    for i in range(5):
        value = top * i / 4
        y = TOP + plot - plot * i / 4
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_e(fmt(value))}</text>'
        )
    return parts


def _marks(marked: dict[int, str] | None, step: float, centres: Sequence[float]) -> list[str]:
    """Grey hatched bands behind the periods of incomplete days (index -> why)."""
    parts = []
    plot_h = HEIGHT - TOP - BOTTOM
    for i, why in sorted((marked or {}).items()):
        x0, x1 = centres[i] - step / 2, centres[i] + step / 2
        hatch = []
        for k in range(-plot_h, int(step) + 1, 8):  # 45° lines, cut to the band
            t0, t1 = max(0, -k), min(plot_h, step - k)
            if t1 > t0:
                hatch.append(
                    f"M{x0 + k + t0:.1f},{TOP + plot_h - t0:.1f}"
                    f"L{x0 + k + t1:.1f},{TOP + plot_h - t1:.1f}"
                )
        parts.append(
            f'<path class="incomplete" d="M{x0:.1f},{TOP}H{x1:.1f}V{TOP + plot_h}H{x0:.1f}Z"'
            f' fill="#000" fill-opacity="0.06"><title>{_e(why)}</title></path>'
            f'<path d="{"".join(hatch)}" stroke="#999" stroke-width="1" fill="none"/>'
        )
    return parts


def _marks_legend(marked: dict[int, str] | None) -> str:
    if not marked:
        return ""
    return (
        '<p class="legend"><span><i class="hatched"></i>incomplete day: a source missing,'
        " refused or partial (see Coverage)</span></p>"
    )


def _x_labels(labels: Sequence[str], centres: Sequence[float]) -> list[str]:
    every = max(1, -(-len(labels) // 12))  # at most a dozen labels
    return [
        f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">{_e(label)}</text>'
        for i, (label, x) in enumerate(zip(labels, centres, strict=True))
        if i % every == 0
    ]


def line_chart(
    label: str,
    xs: Sequence[str],
    series: dict[str, list[float | None]],
    marked: dict[int, str] | None = None,
) -> str:
    """Shares (0..1) over periods, a line per series; a missing value breaks its line. The
    `marked` periods (index -> why) are hatched."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(len(xs), 1)
    centres = [LEFT + step * (i + 0.5) for i in range(len(xs))]
    body = _marks(marked, step, centres) + _y_axis(1.0, lambda v: f"{100 * v:.0f}%")
    for n, (name, values) in enumerate(series.items()):
        colour = PALETTE[n % len(PALETTE)]
        points = [
            (x, TOP + plot_h * (1 - v), v)
            for x, v in zip(centres, values, strict=True)
            if v is not None
        ]
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in points)
            body.append(
                f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>'
            )
        body += [
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{colour}">'
            f"<title>{_e(name)}: {100 * v:.1f}%</title></circle>"
            for x, y, v in points
        ]
    body += _x_labels(xs, centres)
    return _svg(label, body) + _legend(list(series)) + _marks_legend(marked)


def bar_chart(
    label: str,
    xs: Sequence[str],
    series: dict[str, list[int]],
    stacked: bool = False,
    marked: dict[int, str] | None = None,
) -> str:
    """Counts per category, the series side by side (or stacked); the `marked` categories
    (index -> why) are hatched."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    totals = [sum(v) for v in zip(*series.values(), strict=True)] if series else []
    peak = max(totals if stacked else [v for vs in series.values() for v in vs], default=0)
    top = _nice_max(peak)
    step = plot_w / max(len(xs), 1)
    centres = [LEFT + step * (i + 0.5) for i in range(len(xs))]
    width = step * 0.8 / (1 if stacked else max(len(series), 1))
    body = _marks(marked, step, centres) + _y_axis(top, lambda v: f"{v:,.0f}")
    base = [0.0] * len(xs)
    for n, (name, values) in enumerate(series.items()):
        colour = PALETTE[n % len(PALETTE)]
        for i, value in enumerate(values):
            if not value:
                continue
            h = plot_h * value / top
            if stacked:
                x, y = centres[i] - width / 2, TOP + plot_h - base[i] - h
                base[i] += h
            else:
                x, y = centres[i] - step * 0.4 + n * width, TOP + plot_h - h
            body.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{h:.1f}"'
                f' fill="{colour}"><title>{_e(xs[i])} {_e(name)}: {value:,}</title></rect>'
            )
    body += _x_labels(xs, centres)
    return _svg(label, body) + _legend(list(series)) + _marks_legend(marked)


def hbar_chart(label: str, bars: Sequence[tuple[str, float, str]]) -> str:
    """One horizontal bar per (label, value, value as shown)."""
    row, left = 28, 190
    height = TOP * 2 + row * max(len(bars), 1)
    top = _nice_max(max((v for _, v, _ in bars), default=0))
    body = []
    for i, (name, value, shown) in enumerate(bars):
        y = TOP + i * row
        w = (WIDTH - left - 110) * value / top
        short = name if len(name) <= 28 else name[:27] + "…"
        body.append(
            f'<text x="{left - 8}" y="{y + 17}" text-anchor="end">{_e(short)}</text>'
            f'<rect x="{left}" y="{y + 4}" width="{w:.1f}" height="{row - 8}"'
            f' fill="{PALETTE[0]}"><title>{_e(name)}: {_e(shown)}</title></rect>'
            f'<text x="{left + w + 6:.1f}" y="{y + 17}">{_e(shown)}</text>'
        )
    return _svg(label, body, height)


def table(name: str, headers: Sequence[str], rows: Sequence[Sequence[tuple[str, str]]]) -> str:
    """A data table: every cell is (field, text shown), the field in `data-field`."""
    head = "".join(f'<th scope="col">{_e(h)}</th>' for h in headers)
    body = "".join(
        "<tr>" + "".join(f'<td data-field="{_e(f)}">{_e(t)}</td>' for f, t in cells) + "</tr>"
        for cells in rows
    )
    return (
        f'<table data-figures="{_e(name)}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table>"
    )


def section(key: str, title: str, caption: str, chart: str, data: str) -> str:
    return (
        f'<section id="{_e(key)}"><h2>{_e(title)}</h2><figure>{chart}'
        f"<figcaption>{_e(caption)}</figcaption></figure>{data}</section>"
    )


# -------------------------------------------------------------------------------- the page

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px auto;
max-width:800px;color:#1b1b1b;padding:0 12px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:32px 0 8px}
.meta{color:#555;margin:0 0 16px}
dl.kpis{display:grid;grid-template-columns:repeat(4,1fr);gap:8px;margin:0}
dl.kpis div{border:1px solid #ddd;border-radius:6px;padding:8px}
dt{color:#555;font-size:12px}dd{margin:0;font-size:20px;font-weight:600}
figure{margin:0}figcaption{color:#444;font-size:13px;margin:4px 0 8px}
svg text{font-size:11px;fill:#333}svg .grid{stroke:#e4e4e4}
.legend span{margin-right:14px;font-size:12px}
.legend i{display:inline-block;width:10px;height:10px;margin-right:4px}
table{border-collapse:collapse;width:100%;font-size:12px;margin:6px 0}
th,td{border-bottom:1px solid #eee;padding:3px 6px;text-align:left}
td[data-field=created_at],td[data-field=period],td[data-field=day]{white-space:nowrap}
.note{background:#fff6e0;border:1px solid #e8c46a;padding:8px;border-radius:6px}
.legend i.hatched{background:repeating-linear-gradient(45deg,#999 0 1px,#eee 1px 4px)}
tr.incomplete td{color:#777;background:#f4f4f4}
"""


def _conversing(posts: int, replies_to_customers: int) -> float | None:
    whole = posts + replies_to_customers
    return replies_to_customers / whole if whole else None


def _day(d: date) -> str:
    return d.strftime("%d %b")


def _by_period(days: dict[date, str], grain: str) -> dict[date, str]:
    """Day -> why, as period (the day, or the Monday of its week) -> why."""
    periods: dict[date, list[str]] = {}
    for day, why in sorted(days.items()):
        period = day if grain == "day" else day - timedelta(days=day.weekday())
        periods.setdefault(period, []).append(f"{day}: {why}" if grain != "day" else why)
    return {period: "; ".join(whys) for period, whys in periods.items()}


def coverage_section(f: Figures) -> str:
    """The days a source is not complete (agg_daily_source_coverage), and why."""
    coverage = f.coverage or {}
    if not coverage:
        body = (
            '<p class="meta" data-field="coverage_complete">Both sources are complete on every'
            " day of the period.</p>"
        )
    else:
        body = (
            '<p class="note">Hatched in the daily charts: on a missing or refused day a'
            " source's figures are absent (not zero) and left out of the totals; on a partial"
            " day they are partial.</p>"
            + table(
                "coverage",
                ["Day", "Source", "Status", "Why"],
                [
                    [
                        ("day", day.isoformat()),
                        ("source", SOURCE_LABELS.get(source, source)),
                        ("status", status),
                        ("reason", why),
                    ]
                    for (day, source), (status, why) in sorted(coverage.items())
                ],
            )
        )
    return '<section id="coverage"><h2>Coverage</h2>' + body + "</section>"


def render(f: Figures, generated_at: datetime | None = None) -> str:
    """The report page."""
    generated_at = generated_at or datetime.now(UTC)
    accounts = [a.username for a in f.accounts]
    periods = sorted({period for period, _ in f.conversation})
    social = sum(s for c, _, s in f.referrals if c == "social")
    own_site = sum(s for c, _, s in f.referrals if c == "own_site")
    support = sum(sum(day.values()) for day in f.channels.values())
    kpis = [
        (
            "conversation_share",
            "Conversation share",
            share(f.replies_to_customers, f.posts + f.replies_to_customers),
        ),
        ("response_rate", "Mentions answered", share(f.answered, f.mentions)),
        ("median_first_response", "Median first response", minutes(f.median_minutes)),
        ("social_share", "Support sessions from social", share(social, support)),
    ]
    sections = []

    # coverage: the days a source is not complete, and why
    if f.coverage is not None:
        sections.append(coverage_section(f))

    # conversation share per account over time (periods of incomplete X days hatched)
    prefix = "" if f.grain == "day" else "wk "
    x_marks = _by_period(f.incomplete("x"), f.grain)
    periods = sorted(set(periods) | set(x_marks))
    series = {
        account: [_conversing(*f.conversation.get((period, account), (0, 0))) for period in periods]
        for account in accounts
    }
    sections.append(
        section(
            "conversation",
            "Broadcasting or conversing?",
            f"Conversation share per account and {f.grain}: replies to customers / (original"
            " posts + replies to customers), from the sums of the period.",
            line_chart(
                "Conversation share per account over time",
                [prefix + _day(p) for p in periods],
                series,
                {i: x_marks[p] for i, p in enumerate(periods) if p in x_marks},
            ),
            table(
                "conversation",
                [
                    f.grain.capitalize(),
                    "Account",
                    "Original posts",
                    "Replies to customers",
                    "Conversation share",
                ],
                [
                    [
                        ("period", period.isoformat()),
                        ("account", account),
                        ("posts", count(p)),
                        ("replies_to_customers", count(r)),
                        ("share", share(r, p + r)),
                    ]
                    for (period, account), (p, r) in sorted(f.conversation.items())
                ],
            ),
        )
    )

    # mentions answered and median first response per account
    sections.append(
        section(
            "mentions",
            "Does it answer?",
            "Mentions of each account and how many were answered over the whole period (a"
            " mention of both accounts counts for the one it replies to, else the first tagged);"
            " below, the median minutes to the first reply of the answered ones.",
            bar_chart(
                "Mentions and mentions answered per account",
                accounts,
                {
                    "Mentions": [a.mentions for a in f.accounts],
                    "Answered": [a.answered for a in f.accounts],
                },
            )
            + hbar_chart(
                "Median first response per account",
                [
                    (a.username, a.median_minutes or 0.0, minutes(a.median_minutes))
                    for a in f.accounts
                ],
            ),
            table(
                "accounts",
                [
                    "Account",
                    "Mentions",
                    "Answered",
                    "Response rate",
                    "Unanswered",
                    "Median first response",
                ],
                [
                    [
                        ("account", a.username),
                        ("mentions", count(a.mentions)),
                        ("answered", count(a.answered)),
                        ("response_rate", share(a.answered, a.mentions)),
                        ("unanswered", count(a.mentions - a.answered)),
                        ("median_first_response", minutes(a.median_minutes)),
                    ]
                    for a in f.accounts
                ],
            ),
        )
    )

    # the mentions that never had an answer
    shown = len(f.unanswered)
    more = f" (the {shown} most recent shown)" if shown < f.unanswered_count else ""
    sections.append(
        f'<section id="unanswered"><h2>Never answered</h2>'
        f'<p>Mentions no company account has replied to: <strong data-field="unanswered_count">'
        f"{count(f.unanswered_count)}</strong>{_e(more)}.</p>"
        + table(
            "unanswered",
            ["Posted (UTC)", "To", "From", "Mention"],
            [
                [
                    ("created_at", m.created_at.strftime("%Y-%m-%d %H:%M")),
                    ("accounts", m.accounts),
                    ("author", f"@{m.author}" if m.author else "(unknown)"),
                    ("text", "(deleted)" if m.deleted or m.text is None else m.text),
                ]
                for m in f.unanswered
            ],
        )
        + "</section>"
    )

    # support sessions by channel per day (incomplete support-site days hatched; days without
    # its data say so rather than 0)
    site_marks = f.incomplete("support_site")
    no_data = {
        d for (d, src), (status, _) in (f.coverage or {}).items()
        if src == "support_site" and status in ("missing", "refused")
    }  # fmt: skip
    days = sorted(set(f.channels) | set(site_marks))
    labels = f.channel_labels
    present = [c for c in labels if any(c in f.channels[d] for d in days)]
    present += sorted({c for d in days for c in f.channels[d]} - set(labels))
    sections.append(
        section(
            "channels",
            "Where does support-site traffic come from?",
            "Support-site sessions (people, not bots) per day, by the channel that referred them.",
            bar_chart(
                "Support-site sessions by channel per day",
                [_day(d) for d in days],
                {
                    labels.get(c, c): [f.channels.get(d, {}).get(c, 0) for d in days]
                    for c in present
                },
                stacked=True,
                marked={i: site_marks[d] for i, d in enumerate(days) if d in site_marks},
            ),
            table(
                "channels",
                ["Day", *(labels.get(c, c) for c in present), "All"],
                [
                    [
                        ("day", d.isoformat()),
                        *(
                            (c, "–" if d in no_data else count(f.channels.get(d, {}).get(c, 0)))
                            for c in present
                        ),
                        (
                            "all",
                            "no data"
                            if d in no_data
                            else count(sum(f.channels.get(d, {}).values())),
                        ),
                    ]
                    for d in days
                ],
            ),
        )
    )

    # social versus own-site referrals
    bars = [(f"{n} (social)", float(s), count(s)) for c, n, s in f.referrals if c == "social"]
    social_label, own_label = labels.get("social", "social"), labels.get("own_site", "own_site")
    bars += [(f"{social_label}, all", float(social), count(social))]
    bars += [(own_label, float(own_site), count(own_site))]
    ratio = f"{social / own_site:.1f}×" if own_site else "–"
    sections.append(
        section(
            "referrals",
            "Social versus own site",
            f"Support-site sessions over the period referred by social networks and by the"
            f" company's own website: social sends {ratio} as many.",
            hbar_chart("Sessions referred by social networks and by the own site", bars),
            table(
                "referrals",
                ["Channel", "Referrer", "Sessions", "Share of all sessions"],
                [
                    [
                        ("channel", labels.get(c, c)),
                        ("network", n),
                        ("sessions", count(s)),
                        ("share", share(s, support)),
                    ]
                    for c, n, s in f.referrals
                ]
                + [
                    [
                        ("channel", social_label),
                        ("network", "all"),
                        ("sessions", count(social)),
                        ("share", share(social, support)),
                    ],
                    [
                        ("channel", own_label),
                        ("network", "all"),
                        ("sessions", count(own_site)),
                        ("share", share(own_site, support)),
                    ],
                ],
            ),
        )
    )

    # top posts by attributed visits
    if f.top_posts is None:
        sections.append(
            '<section id="top_posts"><h2>Top posts by attributed visits</h2>'
            '<p class="note" data-field="top_posts_missing">Not available: this mart has no'
            f" <code>marts.{ATTRIBUTION_TABLE}</code> table yet (the attribution of t.co"
            " sessions to posts).</p></section>"
        )
    else:
        sections.append(
            section(
                "top_posts",
                "Top posts by attributed visits",
                f"The {TOP_POSTS} own posts credited with the most support-site sessions"
                " arriving through their t.co links.",
                hbar_chart(
                    "Top posts by attributed visits",
                    [(p.text or p.post_id, float(p.visits), count(p.visits)) for p in f.top_posts],
                ),
                table(
                    "top_posts",
                    ["Post", "Account", "Posted (UTC)", "Text", "Visits"],
                    [
                        [
                            ("post_id", p.post_id),
                            ("account", p.account),
                            (
                                "created_at",
                                p.created_at.strftime("%Y-%m-%d %H:%M") if p.created_at else "–",
                            ),
                            ("text", p.text or "(deleted)"),
                            ("visits", count(p.visits)),
                        ]
                        for p in f.top_posts
                    ],
                ),
            )
        )

    incomplete = len({day for day, _ in f.coverage or {}})
    cards = "".join(
        f'<div><dt>{_e(title)}</dt><dd data-kpi="{key}">{_e(value)}</dd></div>'
        for key, title, value in kpis
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        # nothing may be fetched: the page is whole by itself
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\';'
        " style-src 'unsafe-inline'; img-src data:\">"
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<link rel="icon" href="data:,">'
        f"<title>Engagement report {f.first_day} – {f.last_day}</title><style>{CSS}</style>"
        "</head><body><h1>Engagement report</h1>"
        f'<p class="meta"><span data-field="first_day">{f.first_day}</span> to'
        f' <span data-field="last_day">{f.last_day}</span> (<span data-field="days">{f.days}'
        f'</span> days, <span data-field="incomplete_days">{incomplete}</span> incomplete),'
        " read from the published mart; generated"
        f" {generated_at.strftime('%Y-%m-%d %H:%M')} UTC.</p>"
        f'<dl class="kpis">{cards}</dl>' + "".join(sections) + "</body></html>\n"
    )


def write_report(published_db: Path, out: Path) -> Path:
    """Write the report to `out` atomically (a temporary file renamed over it): a reader
    never sees half a page."""
    page = render(read_figures(published_db))
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(page)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out
