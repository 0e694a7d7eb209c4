"""The engagement report: one self-contained HTML file (inline CSS and SVG, no script, no
network) read from the published mart, as a BI tool reads it (read-only).

The figures come from `marts.agg_period_figures`, where they are defined (the headline and
the dashboard read them there too); this module only selects them (`figures.period` and the
`SQL` mapping), draws them with Altair (Vega-Lite, rendered to SVG in-process by vl-convert:
nothing is fetched) and fills the page's template, templates/report.html.j2. Every chart's
figures are also in the table under it, whose cells carry `data-field` for tests and screen
readers."""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import altair as alt
import vl_convert
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from engagement import figures

# ---------------------------------------------------------------------------------- the SQL

SQL: dict[str, str] = {
    # each account's period figures, with its first-response target (ENGAGEMENT_ACCOUNTS_FILE,
    # the same on every mention of the account)
    "accounts": """
        select
            figures.*,
            targets.target_minutes,
            targets.target_basis
        from marts.agg_period_figures as figures
        left join (
            select
                mentioned_account_username,
                any_value(target_minutes) as target_minutes,
                any_value(target_basis) as target_basis
            from marts.fct_x_mentions
            group by mentioned_account_username
        ) as targets on figures.account_username = targets.mentioned_account_username
        where figures.grain = 'period' and figures.scope = 'account'
        order by figures.account_username
    """,
    # conversation share per account and period ($grain: day, or week for long periods)
    "conversation": """
        select * from marts.agg_period_figures
        where grain = $grain and scope = 'account'
        order by period_start, account_username
    """,
    # the company's days: sessions per channel (null on the support site's absent days)
    "days": """
        select * from marts.agg_period_figures
        where grain = 'day' and scope = 'company'
        order by period_start
    """,
    "channels": """
        select channel, channel_label from marts.dim_channels order by sort_order
    """,
    # the days a source is not complete, and why
    "coverage": """
        select date_day, source, status, status_reason
        from marts.agg_daily_source_coverage
        where status != 'complete'
        order by date_day, source
    """,
    # mentions that needed an answer and did not get one in time (late ones included); the
    # others not answered, counted beside: still waiting, or needing no answer
    "unanswered_counts": """
        select
            count(*) filter (
                where needs_answer and answer_status in ('unanswered', 'late')
            ) as n,
            count(*) filter (where needs_answer and answer_status = 'waiting') as waiting,
            count(*) filter (where not needs_answer and not is_answered) as not_needing
        from marts.fct_x_mentions
    """,
    "unanswered": """
        select
            mention_id, created_at, mentioned_account_usernames, author_username,
            mention_text, is_deleted, answer_status
        from marts.fct_x_mentions
        where needs_answer and answer_status in ('unanswered', 'late')
        order by created_at desc, mention_id
        limit $limit
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
    # link clicks X counted (private metrics, authorised accounts) against credited sessions
    "clicks_accounts": """
        select * from marts.agg_account_post_clicks order by account_username
    """,
    "clicks_posts": """
        select
            clicks.*,
            posts.post_text
        from marts.fct_x_post_clicks as clicks
        left join marts.fct_x_posts as posts on clicks.post_id = posts.post_id
        where clicks.url_link_clicks > 0
        order by clicks.url_link_clicks desc, clicks.post_id
        limit $limit
    """,
    # the reply funnel per account over the mart's days: sums of the daily counts (null on
    # a day a source is absent, so left out of the sums)
    "reply_funnel": """
        select
            account_username,
            sum(replies_with_links) as replies_with_links,
            sum(visits) as visits,
            sum(answer_page_visits) as answer_page_visits,
            sum(replies_customer_returned) as replies_customer_returned,
            sum(replies_return_undecided) as replies_return_undecided
        from marts.agg_daily_account_reply_funnel
        group by account_username
        order by account_username
    """,
    # the support-site traffic that makes no page view, why, in the order the rules apply
    "excluded": """
        select exclusion_rule, kind, sum(page_views) as page_views, sum(requests) as requests
        from marts.agg_daily_excluded_traffic
        group by exclusion_rule, kind
        order by
            case exclusion_rule when 'internal_traffic' then 1 when 'user_agent' then 2 else 3 end,
            page_views desc,
            kind
    """,
    # the X API bill of the latest month with one, per kind of read
    "x_bill": """
        select month_start, kind, resources, cost_usd
        from marts.agg_monthly_x_bill
        where month_start = (select max(month_start) from marts.agg_monthly_x_bill)
        order by kind
    """,
}
BILL_LABELS = {
    "post_reads": "Posts",
    "user_reads": "Users",
    "dm_event_reads": "DM events",
    "owned_reads": "Owned reads (own posts, mentions)",
}

SOURCE_LABELS = {"x": "X", "support_site": "Support site"}
RULE_LABELS = {
    "internal_traffic": "Internal traffic",
    "user_agent": "Bot, by its user agent",
    "behaviour": "Bot, by what it did",
}
UNANSWERED_SHOWN = 50
TOP_POSTS = 10
DAILY_UP_TO = 31  # periods of up to this many days are shown per day, longer ones per week
LABEL_CHARS = 44  # a top post's label in its chart (the table has the whole text)

# Okabe and Ito's palette, told apart with any colour vision; a channel keeps its colour
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#F0E442", "#000000")
CHANNEL_COLOURS = {
    "social": "#0072B2",
    "search": "#E69F00",
    "own_site": "#009E73",
    "email": "#CC79A7",
    "ai_assistant": "#D55E00",
    "direct": "#999999",
    "internal": "#F0E442",
    "other": "#000000",
}
# the social networks as agg_period_figures splits them, one name for X everywhere
NETWORKS = {"x_referred": "X", "facebook": "Facebook", "linkedin": "LinkedIn"}
NETWORKS["other_social"] = "Other networks"
# the reply funnel's steps: its columns in agg_daily_account_reply_funnel, and their names
FUNNEL_STEPS = {
    "replies_with_links": "Replies with links",
    "visits": "Visits",
    "answer_page_visits": "Visits reaching an answer page",
    "replies_customer_returned": "Customers who had to come back",
}
INCOMPLETE = "#999999"
FONT = "DejaVu Sans, Verdana, sans-serif"
WIDTH = 640  # of a chart's plot, in pixels; the page is 800 wide


# ------------------------------------------------------------------------------ the figures


def read_figures(published_db: Path) -> dict[str, Any]:
    """The report's rows, from the published mart opened read-only."""
    with figures.connect(published_db) as con:

        def rows(name: str, **params: Any) -> list[dict[str, Any]]:
            return figures.dicts(con, SQL[name], **params)

        period = figures.period(con, published_db)
        grain = "day" if period["period_days"] <= DAILY_UP_TO else "week"
        return {
            "period": period,
            "grain": grain,
            "accounts": rows("accounts"),
            "conversation": rows("conversation", grain=grain),
            "days": rows("days"),
            "channels": rows("channels"),
            "coverage": rows("coverage"),
            "unanswered_counts": rows("unanswered_counts")[0],
            "unanswered": rows("unanswered", limit=UNANSWERED_SHOWN),
            "top_posts": rows("top_posts", limit=TOP_POSTS),
            "reply_funnel": rows("reply_funnel"),
            "clicks_accounts": rows("clicks_accounts"),
            "clicks_posts": rows("clicks_posts", limit=TOP_POSTS),
            "x_bill": rows("x_bill"),
            "excluded": rows("excluded"),
        }


# -------------------------------------------------------------------------------- the charts


def svg(chart: alt.TopLevelMixin) -> Markup:
    """A chart as inline SVG, rendered in-process by vl-convert's bundled Vega, with no URL
    allowed (nothing fetched). Vega lays labels out by their width in FONT, which the page's
    browser then draws: DejaVu Sans (Debian's) or Verdana, as wide (vl-convert estimates
    the widths of labels: long ones are cut, and kept clear of axis titles)."""
    spec = chart.configure(font=FONT).configure_view(stroke=None).to_dict()
    return Markup(vl_convert.vegalite_to_svg(spec, vl_version="5.20", allowed_base_urls=[]))


def _label(d: date, grain: str) -> str:
    return f"{d:%d %b}" if grain == "day" else f"wk {d:%d %b}"


def _period_of(d: date, grain: str) -> date:
    return d if grain == "day" else date.fromordinal(d.toordinal() - d.weekday())


def incomplete_periods(
    coverage: list[dict], source: str, grain: str
) -> dict[date, tuple[str, str]]:
    """The periods holding a day the source is not complete -> (what the chart's band says,
    as "X missing", and why: each day's status and reason)."""
    statuses: dict[date, list[str]] = {}
    whys: dict[date, list[str]] = {}
    for row in coverage:
        if row["source"] == source:
            day, status = row["date_day"], row["status"]
            why = f"{SOURCE_LABELS[source]} {status}: {row['status_reason']}"
            period = _period_of(day, grain)
            if status not in statuses.setdefault(period, []):
                statuses[period].append(status)
            whys.setdefault(period, []).append(why if grain == "day" else f"{day}: {why}")
    return {
        period: (f"{SOURCE_LABELS[source]} {', '.join(statuses[period])}", "; ".join(whys[period]))
        for period in whys
    }


def _bands(marked: dict[date, tuple[str, str]], grain: str, x: alt.X) -> list[alt.Chart]:
    """Grey bands behind the incomplete periods (on the chart's x, its field the period's
    label), each labelled and carrying its reasons."""
    if not marked:
        return []
    field = x.to_dict()["field"]
    values = [
        {field: _label(p, grain), "short": short, "why": why}
        for p, (short, why) in sorted(marked.items())
    ]
    data = alt.Data(values=values)
    band = alt.Chart(data, name="incomplete").mark_rect(
        color=INCOMPLETE, opacity=0.22, stroke="#666", strokeDash=[4, 3]
    )
    text = alt.Chart(data, name="incomplete_label").mark_text(
        angle=270, align="right", baseline="middle", dx=-4, fontSize=10
    )
    return [
        band.encode(x=x, description="why:N"),
        text.encode(x=x, y=alt.value(0), text="short:N", color=alt.value("#444")),
    ]


def conversation_chart(f: dict[str, Any], marked: dict[date, tuple[str, str]]) -> Markup:
    grain = f["grain"]
    periods = sorted({r["period_start"] for r in f["conversation"]} | set(marked))
    order = [_label(p, grain) for p in periods]
    values = [
        {
            "period": _label(r["period_start"], grain),
            "account": r["account_username"],
            "share": r["conversation_share"],
        }
        for r in f["conversation"]
    ]
    x = alt.X("period:O", sort=order, title="Day" if grain == "day" else "Week (from Monday)")
    x = x.axis(labelAngle=0, labelOverlap="greedy")
    y = alt.Y("share:Q", title="Conversation share", scale=alt.Scale(domain=[0, 1]))
    y = y.axis(format="%")
    accounts = sorted({r["account_username"] for r in f["conversation"]})
    colour = alt.Color(
        "account:N", title="Account", legend=alt.Legend(orient="bottom", symbolOpacity=1)
    )
    colour = colour.scale(domain=accounts, range=list(PALETTE[: len(accounts)]))
    base = alt.Chart(alt.Data(values=values)).encode(x=x, y=y, color=colour)
    line = base.mark_line(invalid="break-paths-show-domains", strokeWidth=2)
    points = alt.Chart(alt.Data(values=values), name="data").mark_point(filled=True, size=50)
    points = points.encode(x=x, y=y, color=colour, description="share:Q")
    chart = alt.layer(*_bands(marked, grain, x), line, points)
    title = f"Conversation share per account and {grain}"
    return svg(chart.properties(title=title, width=WIDTH, height=240))


def mentions_chart(f: dict[str, Any]) -> Markup:
    accounts = [a["account_username"] for a in f["accounts"]]
    values = [
        {"account": a["account_username"], "measure": measure, "mentions": a[column]}
        for a in f["accounts"]
        for measure, column in (
            ("Needing an answer", "mentions_needing_answer"),
            ("Answered", "mentions_needing_answer_answered"),
        )
    ]
    colour = alt.Color("measure:N", title=None, legend=alt.Legend(orient="bottom"))
    colour = colour.scale(domain=["Needing an answer", "Answered"], range=list(PALETTE[:2]))
    bars = (
        alt.Chart(alt.Data(values=values), name="data")
        .mark_bar()
        .encode(
            x=alt.X("account:N", title="Account", sort=accounts).axis(labelAngle=0),
            xOffset=alt.XOffset("measure:N", sort=["Needing an answer", "Answered"]),
            y=alt.Y("mentions:Q", title="Mentions"),
            color=colour,
            description="mentions:Q",
        )
    )
    title = "Mentions needing an answer, and answered, per account"
    return svg(bars.properties(title=title, width=WIDTH - 80, height=200))


def median_chart(f: dict[str, Any]) -> Markup:
    accounts = [a["account_username"] for a in f["accounts"]]
    medians = [
        {"account": a["account_username"], "minutes": a["median_first_response_minutes"]}
        for a in f["accounts"]
    ]
    median = (
        alt.Chart(alt.Data(values=medians), name="data")
        .mark_bar(color=PALETTE[0])
        .encode(
            y=alt.Y("account:N", title="Account", sort=accounts),
            x=alt.X("minutes:Q", title="Median minutes to the first reply"),
            description="minutes:Q",
        )
        .properties(title="Median first response per account", width=WIDTH // 2 - 60, height=220)
    )
    return svg(median)


def channels_chart(f: dict[str, Any], marked: dict[date, tuple[str, str]]) -> Markup:
    days = sorted({r["period_start"] for r in f["days"]} | set(marked))
    order = [_label(d, "day") for d in days]
    labels = {c["channel"]: c["channel_label"] for c in f["channels"]}
    sort = {c: i for i, c in enumerate(labels)}
    values = [
        {
            "day": _label(r["period_start"], "day"),
            "channel": labels[channel],
            "rank": sort[channel],
            "sessions": r[f"{channel}_sessions"],
        }
        for r in f["days"]
        for channel in labels
        if r[f"{channel}_sessions"]  # nothing drawn for none, or no data
    ]
    present = [labels[c] for c in labels if any(v["channel"] == labels[c] for v in values)]
    colour = alt.Color("channel:N", title="Channel", legend=alt.Legend(orient="bottom"))
    colour = colour.scale(
        domain=present, range=[CHANNEL_COLOURS[c] for c in labels if labels[c] in present]
    )
    x = alt.X("day:O", sort=order, title="Day", scale=alt.Scale(paddingInner=0.15))
    x = x.axis(labelAngle=0, labelOverlap="greedy")
    bars = (
        alt.Chart(alt.Data(values=values), name="data")
        .mark_bar()
        .encode(
            x=x,
            y=alt.Y("sum(sessions):Q", title="Sessions").stack("zero"),
            color=colour,
            order=alt.Order("rank:Q"),
            description="sessions:Q",
        )
    )
    chart = alt.layer(*_bands(marked, "day", x), bars)
    title = "Support-site sessions by channel per day"
    return svg(chart.properties(title=title, width=WIDTH, height=260))


def referrals_chart(f: dict[str, Any], labels: dict[str, str]) -> Markup:
    p = f["period"]
    values = [
        {"referrer": name, "group": "social", "sessions": p[f"{key}_sessions"]}
        for key, name in NETWORKS.items()
    ]
    values += [
        {
            "referrer": f"{labels['social']}, all",
            "group": "social",
            "sessions": p["social_sessions"],
        },
        {"referrer": labels["own_site"], "group": "own_site", "sessions": p["own_site_sessions"]},
    ]
    order = [v["referrer"] for v in values]
    colour = alt.Color("group:N", legend=None).scale(
        domain=["social", "own_site"],
        range=[CHANNEL_COLOURS["social"], CHANNEL_COLOURS["own_site"]],
    )
    base = alt.Chart(alt.Data(values=values)).encode(
        y=alt.Y("referrer:N", sort=order, title="Referred by"),
        x=alt.X("sessions:Q", title="Sessions over the period"),
    )
    bars = base.mark_bar().encode(color=colour, description="sessions:Q")
    bars = bars.properties(name="data")
    text = base.mark_text(align="left", dx=4).encode(text=alt.Text("sessions:Q", format=","))
    title = "Sessions referred by social networks and by the company website"
    return svg(alt.layer(bars, text).properties(title=title, width=WIDTH - 120, height=170))


def top_post_label(rank: int, post: dict[str, Any]) -> str:
    """`rank. text`, cut to LABEL_CHARS: two posts alike stay apart by their rank."""
    text = " ".join((post["post_text"] or f"post {post['post_id']} (deleted)").split())
    label = f"{rank}. {text}"
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"


def top_posts_chart(f: dict[str, Any]) -> Markup:
    values = [
        {"post": top_post_label(rank, p), "visits": p["visits"]}
        for rank, p in enumerate(f["top_posts"], start=1)
    ]
    base = alt.Chart(alt.Data(values=values)).encode(
        # the axis title above the labels: Vega only estimates their width
        y=alt.Y("post:N", sort=[v["post"] for v in values], title="Post (rank. text)").axis(
            labelLimit=330, titleAngle=0, titleAlign="right", titleX=-6, titleY=-6
        ),
        x=alt.X("visits:Q", title="Attributed visits"),
    )
    bars = base.mark_bar(color=PALETTE[0]).encode(description="visits:Q").properties(name="data")
    text = base.mark_text(align="left", dx=4).encode(text=alt.Text("visits:Q", format=","))
    height = 22 * max(len(values), 1)
    title = "Top posts by attributed visits"
    return svg(alt.layer(bars, text).properties(title=title, width=WIDTH - 330, height=height))


def reply_funnel_chart(f: dict[str, Any]) -> Markup:
    accounts = [a["account_username"] for a in f["reply_funnel"]]
    values = [
        {"account": a["account_username"], "step": name, "count": a[column]}
        for a in f["reply_funnel"]
        for column, name in FUNNEL_STEPS.items()
        if a[column] is not None  # no bar for no data
    ]
    steps = list(FUNNEL_STEPS.values())
    colour = alt.Color("account:N", title="Account", legend=alt.Legend(orient="bottom"))
    colour = colour.scale(domain=accounts, range=list(PALETTE[: len(accounts)]))
    base = alt.Chart(alt.Data(values=values)).encode(
        y=alt.Y("step:N", sort=steps, title="Step").axis(labelLimit=220),
        yOffset=alt.YOffset("account:N", sort=accounts),
        x=alt.X("count:Q", title="Replies, visits or customers over the period"),
    )
    bars = base.mark_bar().encode(color=colour, description="count:Q").properties(name="data")
    text = base.mark_text(align="left", dx=4).encode(text=alt.Text("count:Q", format=","))
    title = "The reply funnel per account"
    height = 26 * len(steps) * max(len(accounts), 1)
    return svg(alt.layer(bars, text).properties(title=title, width=WIDTH - 220, height=height))


# -------------------------------------------------------------------------------- the page

TEMPLATES = Environment(
    loader=PackageLoader("engagement", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
TEMPLATES.filters.update(
    percent=figures.percent, count=figures.count, minutes=figures.minutes, ratio=figures.ratio
)


def render(
    f: dict[str, Any], generated_at: datetime | None = None, x_budget: float | None = None
) -> str:
    """The report page (`x_budget`: ENGAGEMENT_X_MONTHLY_BUDGET, shown beside the X bill)."""
    labels = {c["channel"]: c["channel_label"] for c in f["channels"]}
    x_marks = incomplete_periods(f["coverage"], "x", f["grain"])
    site_marks = incomplete_periods(f["coverage"], "support_site", "day")
    charts = {
        "conversation": conversation_chart(f, x_marks),
        "mentions": mentions_chart(f),
        "median": median_chart(f),
        "channels": channels_chart(f, site_marks),
        "referrals": referrals_chart(f, labels),
        "top_posts": top_posts_chart(f),
        "reply_funnel": reply_funnel_chart(f),
    }
    return TEMPLATES.get_template("report.html.j2").render(
        f=f,
        p=f["period"],
        labels=labels,
        networks=NETWORKS,
        source_labels=SOURCE_LABELS,
        charts=charts,
        x_marks=x_marks,
        site_marks=site_marks,
        incomplete_days=sorted({r["date_day"] for r in f["coverage"]}),
        top_posts_limit=TOP_POSTS,
        bill_labels=BILL_LABELS,
        rule_labels=RULE_LABELS,
        x_budget=x_budget,
        generated_at=(generated_at or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M"),
    )


def write_report(published_db: Path, out: Path, x_budget: float | None = None) -> Path:
    """Write the report to `out` atomically (a temporary file renamed over it): a reader
    never sees half a page."""
    page = render(read_figures(published_db), x_budget=x_budget)
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
