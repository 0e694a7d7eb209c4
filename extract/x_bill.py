"""The X bill: what an extraction's reads cost, per UTC day, and the monthly budget.

X bills reads per resource served (a post, a user, a DM event), each resource once per UTC
day (docs.x.com/x-api/getting-started/pricing; prices in engagement/settings.py). `read`
counts the resources of an extraction's pages by kind; the ledger (`Ledger`, one file per
UTC day under `<ENGAGEMENT_DATA_DIR>/state/x_bill/`) keeps every resource billed that day,
by every run, so a resource read again the same day costs nothing more; the manifest of
each batch records what it added (`engagement.landing.XBill`).

The day of a run's reads is the UTC day of X's first answer to it, by X's clock (its Date
header, as X bills by its own days; the extraction's start when X never answered): pages.jsonl
keeps no request time per page (keeping one would make a rerun's pages differ from the first
run's), so a run crossing midnight counts its later reads on the day it started.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from itertools import islice
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import requests
import tweepy

from engagement.errors import UsageError
from engagement.landing import (
    ENDPOINT_PATHS,
    BillKind,
    Endpoint,
    KindBill,
    Source,
    XBill,
    XManifest,
    parse_instant,
    read_manifest,
    versions_root,
)
from engagement.settings import Settings

log = logging.getLogger(__name__)

Resources = dict[BillKind, set[str]]

# What the `data` of a page is, by its endpoint (pages.jsonl's name for it).
DATA_KIND = {
    "user": BillKind.USER_READS,
    "me": BillKind.USER_READS,
    "lookup": BillKind.POST_READS,
    "tweets": BillKind.POST_READS,
    "mentions": BillKind.POST_READS,
    "tweets_newer": BillKind.POST_READS,
    "mentions_newer": BillKind.POST_READS,
    "dm_events": BillKind.DM_EVENT_READS,
    "dm_events_newer": BillKind.DM_EVENT_READS,
    # an account's own timeline read with its own token: owned reads (see _is_owned)
    "own_metrics": BillKind.OWNED_READS,
}
OWNED_PATH = re.compile(r"/2/users/([0-9]+)/(?:tweets|mentions)")
LEDGER = "x_bill"  # under the state directory
REUSED = "reused_from"  # a lookup page carried over from a batch landed the same day


def day_of(served_at: datetime) -> date:
    """The UTC day a read is billed on."""
    return served_at.astimezone(UTC).date()


def _objects(value: object) -> list[dict]:
    if isinstance(value, dict):
        return [value]
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _user_ids(pages: list[dict]) -> dict[str, str]:
    """Each account's user id: the data.id of its `user` (or `me`) page."""
    ids = {}
    for page in pages:
        if page["endpoint"] in ("user", "me"):
            for user in _objects(json.loads(page["body"]).get("data")):
                ids[page["account"]] = str(user["id"])
    return ids


def _is_owned(page: dict, user_ids: dict[str, str]) -> bool:
    """A timeline read with the account's own user-context token, of its own id: X bills
    what it serves as "owned reads". X's pricing page does not say how a timeline's
    expansions (includes.users, includes.tweets) are billed; we read it as everything the
    response serves, expansions included, being owned reads."""
    found = OWNED_PATH.fullmatch(urlsplit(page["url"]).path)
    return (
        page.get("auth") == "user"
        and found is not None
        and found.group(1) == user_ids.get(page["account"])
    )


def read(pages: Iterable[dict]) -> Resources:
    """The distinct resources the pages (lines of pages.jsonl, as dicts) were served, by
    kind: posts in `data` and `includes.tweets` are post reads, users in `data` of a user
    lookup and in `includes.users` user reads, the events of GET /2/dm_events DM event
    reads; an owned timeline (`_is_owned`) is owned reads (ids `post:<id>`, `user:<id>`).
    Pages carried over from an earlier batch (`reuse_lookups`) were not read."""
    pages = [page for page in pages if REUSED not in page]
    user_ids = _user_ids(pages)
    resources: Resources = {kind: set() for kind in BillKind}
    for page in pages:
        body = json.loads(page["body"])
        includes = body.get("includes") or {}
        endpoint = page["endpoint"]
        data_kind = DATA_KIND.get(endpoint)
        if data_kind is None:
            log.warning(
                "the X bill does not know the endpoint %r: its data is not counted", endpoint
            )
        if _is_owned(page, user_ids):
            owned = resources[BillKind.OWNED_READS]
            owned |= {f"post:{p['id']}" for p in _objects(body.get("data"))}
            owned |= {f"post:{p['id']}" for p in _objects(includes.get("tweets"))}
            owned |= {f"user:{u['id']}" for u in _objects(includes.get("users"))}
            continue
        if data_kind is not None:
            resources[data_kind] |= {str(item["id"]) for item in _objects(body.get("data"))}
        resources[BillKind.POST_READS] |= {str(p["id"]) for p in _objects(includes.get("tweets"))}
        resources[BillKind.USER_READS] |= {str(u["id"]) for u in _objects(includes.get("users"))}
    return resources


@dataclass(frozen=True)
class Prices:
    """USD per resource (settings X_PRICE_*)."""

    post_read: float = 0.005
    user_read: float = 0.010
    dm_event_read: float = 0.010
    owned_read: float = 0.001

    def of(self, kind: BillKind) -> float:
        return {
            BillKind.POST_READS: self.post_read,
            BillKind.USER_READS: self.user_read,
            BillKind.DM_EVENT_READS: self.dm_event_read,
            BillKind.OWNED_READS: self.owned_read,
        }[kind]


def _money(value: float) -> float:
    return round(value, 6)


@dataclass(frozen=True)
class DayKind:
    """One kind of one day of the ledger: the resources billed and what they cost."""

    ids: frozenset[str] = frozenset()
    cost: float = 0.0


@dataclass(frozen=True)
class Ledger:
    """What X billed, per UTC day: `<directory>/<YYYY-MM-DD>.json` is
    `{"day": ..., "kinds": {"post_reads": {"ids": [...], "cost": 0.25}, ...}}`, each
    resource once (the cost at the prices of when it was billed). Updated under a lock
    beside the files and replaced atomically, so concurrent runs bill a resource once."""

    directory: Path

    def path(self, day: date) -> Path:
        return self.directory / f"{day.isoformat()}.json"

    def day(self, day: date) -> dict[BillKind, DayKind]:
        path = self.path(day)
        kinds = json.loads(path.read_text())["kinds"] if path.is_file() else {}
        return {
            kind: DayKind(frozenset(kinds[kind]["ids"]), kinds[kind]["cost"])
            if kind in kinds
            else DayKind()
            for kind in BillKind
        }

    def add(self, day: date, resources: Resources, prices: Prices) -> Resources:
        """Bill `resources` read on `day`: returns those not billed that day before."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            known = self.day(day)
            new = {kind: resources.get(kind, set()) - known[kind].ids for kind in BillKind}
            if any(new.values()):
                kinds = {
                    kind.value: {
                        "ids": sorted(known[kind].ids | new[kind]),
                        "cost": _money(known[kind].cost + len(new[kind]) * prices.of(kind)),
                    }
                    for kind in BillKind
                }
                partial = self.path(day).with_suffix(".json.partial")
                partial.write_text(json.dumps({"day": day.isoformat(), "kinds": kinds}, indent=1))
                os.replace(partial, self.path(day))
        return new

    def days(self, month: date) -> dict[date, dict[BillKind, DayKind]]:
        """The month's days with a bill (month: any day of it), in order."""
        found = sorted(self.directory.glob(f"{month:%Y-%m}-[0-9][0-9].json"))
        return {
            date.fromisoformat(path.stem): self.day(date.fromisoformat(path.stem)) for path in found
        }

    def rows(self) -> list[dict]:
        """Every day of the ledger as rows (day, kind, resources, cost): the raw
        warehouse's main.x_bill_days, which the mart's agg_monthly_x_bill sums."""
        rows = []
        for path in sorted(self.directory.glob("[0-9]*-[0-9][0-9]-[0-9][0-9].json")):
            day = date.fromisoformat(path.stem)
            for kind, billed in self.day(day).items():
                rows.append({"day": day, "kind": kind.value, "resources": len(billed.ids),
                             "cost": billed.cost})  # fmt: skip
        return rows

    def spent(self, month: date) -> float:
        """USD billed in the month (month: any day of it)."""
        return _money(sum(k.cost for day in self.days(month).values() for k in day.values()))


@dataclass(frozen=True)
class Billing:
    """Where the bill is kept, the prices and the monthly budget (USD, None: no limit)."""

    ledger: Ledger
    prices: Prices = field(default_factory=Prices)
    budget: float | None = None

    @classmethod
    def beside(cls, raw_root: Path) -> Billing:
        """The default: the ledger in the state directory beside raw/, no budget."""
        return cls(Ledger(raw_root.parent / "state" / LEDGER))

    @classmethod
    def of(cls, settings: Settings) -> Billing:
        prices = Prices(
            post_read=settings.x_price_post_read,
            user_read=settings.x_price_user_read,
            dm_event_read=settings.x_price_dm_event_read,
            owned_read=settings.x_price_owned_read,
        )
        return cls(Ledger(settings.state_dir / LEDGER), prices, settings.x_monthly_budget)


def bill(pages: list[dict], billing: Billing, day: date) -> XBill:
    """Add what the pages read to the ledger's `day`; returns what that added (the
    manifest's `bill`): a rerun the same day reads the same resources and bills nothing."""
    resources = read(pages)
    skipped = {i for page in pages if REUSED in page for i in _requested_ids(page)}
    new = billing.ledger.add(day, resources, billing.prices)
    kinds = {
        kind: KindBill(
            read=len(resources[kind]),
            billed=len(new[kind]),
            cost=_money(len(new[kind]) * billing.prices.of(kind)),
        )
        for kind in BillKind
    }
    total = _money(sum(k.cost for k in kinds.values()))
    return XBill(day=day, kinds=kinds, cost=total, refresh_skipped=len(skipped))


# --- the budget ----------------------------------------------------------------------------

HISTORY = 7  # landed runs whose reads bound the next one's


class OverBudget(UsageError):
    """The run's estimated cost would take the month's X spend past the budget: no request
    was made. Raise ENGAGEMENT_X_MONTHLY_BUDGET, or wait for the next month."""


def _landed(raw_root: Path) -> Iterator[tuple[Path, XManifest]]:
    """The X versions landed with a bill and their manifests, newest first."""
    root = versions_root(raw_root) / Source.X
    for version in sorted(root.glob("*_*/[0-9]*/"), key=lambda path: path.name, reverse=True):
        try:
            manifest = read_manifest(version)
        except (OSError, ValueError):
            continue
        if isinstance(manifest, XManifest) and manifest.bill is not None:
            yield version, manifest


def estimate(
    raw_root: Path, billing: Billing, accounts: int, refresh_ids: list[str], today: date
) -> float:
    """An upper estimate of a run's cost, before any request: the larger of (a) the most any
    of the last 7 landed runs read, each resource priced as if none were billed before that
    day (timelines vary from day to day; their most expensive recent day bounds the next
    one), and (b) what is known in advance: the refresh's ids not billed yet today at the
    post price, and each account's user at the user price."""
    prices = billing.prices
    history = [
        sum(k.read * prices.of(kind) for kind, k in manifest.bill.kinds.items())
        for _, manifest in islice(_landed(raw_root), HISTORY)
        if manifest.bill is not None
    ]
    billed_today = billing.ledger.day(today)[BillKind.POST_READS].ids
    known = len(set(refresh_ids) - billed_today) * prices.post_read + accounts * prices.user_read
    return _money(max([known, *history]))


def check_budget(
    raw_root: Path, billing: Billing, accounts: int, refresh_ids: list[str], now: datetime
) -> None:
    """Refuse the run (OverBudget) when the month's spend so far plus its estimate would
    pass ENGAGEMENT_X_MONTHLY_BUDGET."""
    if billing.budget is None:
        return
    today = now.astimezone(UTC).date()
    spent = billing.ledger.spent(today)
    cost = estimate(raw_root, billing, accounts, refresh_ids, today)
    if spent + cost > billing.budget:
        raise OverBudget(
            f"ENGAGEMENT_X_MONTHLY_BUDGET={billing.budget:g}: this X run is estimated at"
            f" ${cost:.3f} and only ${max(0.0, billing.budget - spent):.3f} of the"
            f" {today:%Y-%m} budget is left (${spent:.3f} spent): nothing was requested;"
            " raise the budget or wait for next month"
        )


# --- no repeated reads ---------------------------------------------------------------------


def _requested_ids(page: dict) -> list[str]:
    values = parse_qs(urlsplit(page["url"]).query).get("ids", [""])
    return [i for i in values[-1].split(",") if i]


def reuse_lookups(raw_root: Path, ids: list[str], today: date) -> tuple[list[dict], list[str]]:
    """Lookup pages (GET /2/tweets) of the X batches landed today whose every requested id
    is among `ids`: carried into this batch as they are (marked `reused_from`, so neither
    billed nor counted as read again), and the ids left to read.

    Why carried and not just skipped: a post's observation is dated by its batch's interval
    end (int_x__post_observations), so the observation of a skipped post would be missing
    from this batch (a snapshot row lost, or the latest one dated earlier). Carried, the
    batch observes what a re-read would have, as long as the posts did not change since
    that day's read (see X_REFRESH_SKIP_SAME_DAY)."""
    wanted, carried = set(ids), []
    for version, manifest in _landed(raw_root):
        if version.name < f"{today:%Y%m%d}":  # landed before today: nothing read today
            break
        if manifest.bill is None or manifest.bill.day != today:
            continue
        for line in (version / "pages.jsonl").read_text().splitlines():
            page = json.loads(line)
            requested = set(_requested_ids(page))
            if (
                page["endpoint"] == "lookup"
                and page["status"] == 200
                and requested
                and requested <= wanted
            ):
                wanted -= requested
                where = f"{version.parent.name}/{version.name}"
                carried.append({**page, REUSED: page.get(REUSED, where)})
    return carried, [i for i in ids if i in wanted]


# --- the month's usage ---------------------------------------------------------------------

USAGE_DAYS = 90  # the most days GET /2/usage/tweets answers


def x_post_reads(
    client: tweepy.Client, caller: Callable[..., requests.Response], days: int
) -> dict[date, int]:
    """X's own count of the project's post reads per UTC day, the last `days` days (GET
    /2/usage/tweets, app-only bearer; tweepy has no method for it, so its session's request
    goes through `caller`, the extraction's retry policy). Its counts are integers in the
    OpenAPI document 2.159 and strings in 2.167: both are read."""
    response = caller(
        Endpoint.USAGE,
        client.request,
        "GET",
        ENDPOINT_PATHS[Endpoint.USAGE],
        params={"days": min(max(days, 1), USAGE_DAYS), "usage.fields": "daily_project_usage"},
        user_auth=False,
    )
    daily = (response.json().get("data") or {}).get("daily_project_usage") or {}
    return {
        parse_instant(entry["date"]).date(): int(entry.get("usage") or 0)
        for entry in daily.get("usage") or []
    }


def month_of(text: str) -> date:
    """The first day of the month `YYYY-MM`."""
    return datetime.strptime(text, "%Y-%m").replace(tzinfo=UTC).date()


def _posts_read(day: dict[BillKind, DayKind]) -> int:
    """The distinct posts read on a day, whoever paid for them: what X's usage counts."""
    owned = {i.removeprefix("post:") for i in day[BillKind.OWNED_READS].ids if i[:5] == "post:"}
    return len(day[BillKind.POST_READS].ids | owned)


def usage(billing: Billing, month: date, theirs: dict[date, int] | None, why_not: str = "") -> str:
    """The month's bill from the ledger, per day and kind (resources, cost), its total, the
    budget and what is left; with `theirs` (X's post reads per day), ours beside them (the
    posts of the post reads and of the owned reads: X's usage counts every post served)."""
    days = billing.ledger.days(month)
    kinds = list(BillKind)
    width = 20
    lines = [
        f"X API usage {month:%Y-%m} (UTC days; USD at X_PRICE_*: "
        + ", ".join(f"{kind} ${billing.prices.of(kind):g}" for kind in kinds)
        + ")",
        "day        " + "".join(f"{kind:>{width}}" for kind in kinds) + f"{'cost':>12}",
    ]

    def row(label: str, counts: list[int], costs: list[float]) -> str:
        cells = "".join(f"{f'{n} ${c:.3f}':>{width}}" for n, c in zip(counts, costs, strict=True))
        return f"{label:<11}" + cells + f"{f'${sum(costs):.3f}':>12}"

    for day, bill in days.items():
        lines.append(
            row(str(day), [len(bill[k].ids) for k in kinds], [bill[k].cost for k in kinds])
        )
    totals = [sum(len(bill[k].ids) for bill in days.values()) for k in kinds]
    costs = [_money(sum(bill[k].cost for bill in days.values())) for k in kinds]
    lines.append(row("total", totals, costs))
    spent = _money(sum(costs))
    if billing.budget is None:
        lines.append(f"budget: none (ENGAGEMENT_X_MONTHLY_BUDGET is not set); spent ${spent:.3f}")
    else:
        left = billing.budget - spent
        lines.append(
            f"budget ${billing.budget:.3f} (ENGAGEMENT_X_MONTHLY_BUDGET), spent ${spent:.3f},"
            f" left ${left:.3f}"
        )
    if theirs is None:
        lines.append(f"X's count (GET /2/usage/tweets): not compared: {why_not}")
        return "\n".join(lines)
    ours = {day: _posts_read(bill) for day, bill in days.items()}
    shown = sorted(d for d in set(ours) | set(theirs) if d.strftime("%Y-%m") == f"{month:%Y-%m}")
    differ = [d for d in shown if ours.get(d, 0) != theirs.get(d, 0)]
    lines.append("post reads per day, ours vs X's (GET /2/usage/tweets):")
    for day in shown:
        mark = "  differs" if day in differ else ""
        lines.append(f"{day}  {ours.get(day, 0):>8}  {theirs.get(day, 0):>8}{mark}")
    lines.append(
        f"{len(differ)} day(s) differ: " + ", ".join(map(str, differ))
        if differ
        else "X's counts and ours agree"
    )
    return "\n".join(lines)
