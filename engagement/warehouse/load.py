"""Load validated batches into the raw warehouse (the one DuckDB file that is written to).

Loading a batch replaces whatever an earlier load of the same batch wrote, in one
transaction, so re-running an interval never duplicates rows. `main.refusals` keeps the
gate's last refusal of a batch until a version of it loads (the same transaction deletes it).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from engagement.landing import (
    Endpoint,
    Manifest,
    Source,
    XManifest,
    parse_instant,
    read_manifest,
    x_pages,
)

if TYPE_CHECKING:
    import pandas as pd

DDL = """
create schema if not exists x;
create schema if not exists support_site;
create table if not exists main.batches (
    source varchar, batch_id varchar, interval_start timestamp, interval_end timestamp,
    records bigint, quarantined bigint, manifest json, _loaded_at timestamp,
    primary key (source, batch_id)
);
create table if not exists x.accounts (
    batch_id varchar, interval_start timestamp, interval_end timestamp,
    username varchar, user_id varchar, payload json, _loaded_at timestamp
);
create table if not exists x.posts (
    batch_id varchar, interval_start timestamp, interval_end timestamp,
    account_username varchar, account_id varchar, endpoint varchar,
    post_id varchar, payload json, _loaded_at timestamp
);
create table if not exists x.users (
    batch_id varchar, interval_start timestamp, interval_end timestamp,
    user_id varchar, payload json, _loaded_at timestamp
);
create table if not exists x.post_snapshots (
    batch_id varchar, interval_start timestamp, interval_end timestamp,
    post_id varchar, payload json, _loaded_at timestamp
);
create table if not exists x.post_lookup_errors (
    batch_id varchar, interval_start timestamp, interval_end timestamp,
    post_id varchar, payload json, _loaded_at timestamp
);
create table if not exists x.gaps (
    batch_id varchar, interval_start timestamp, interval_end timestamp,
    account_username varchar, endpoint varchar, cap integer, newer_than_interval integer,
    returned integer, complete_from varchar, _loaded_at timestamp
);
create table if not exists x.dm_events (
    batch_id varchar, interval_start timestamp, interval_end timestamp,
    account_username varchar, account_id varchar, event_id varchar, payload json,
    page_no integer, _loaded_at timestamp
);
-- per batch, each configured account and whether its DMs were read (user context)
create table if not exists x.dm_access (
    batch_id varchar, interval_start timestamp, interval_end timestamp,
    account_username varchar, is_dm_authorised boolean, _loaded_at timestamp
);
-- each authorised account's own posts with their private metrics (user context), one row per
-- post and read: a snapshot at observed_at, the API's Date header of its page
create table if not exists x.post_private_metrics (
    batch_id varchar, interval_start timestamp, interval_end timestamp,
    account_username varchar, account_id varchar, post_id varchar, observed_at timestamp,
    payload json, page_no integer, _loaded_at timestamp
);
-- per batch, each configured account and whether its private metrics were read
create table if not exists x.metrics_access (
    batch_id varchar, interval_start timestamp, interval_end timestamp,
    account_username varchar, is_metrics_authorised boolean, _loaded_at timestamp
);
create table if not exists support_site.requests (
    batch_id varchar, interval_start timestamp, interval_end timestamp,
    site varchar, source_file varchar, file_id varchar, line_no bigint,
    requested_at timestamp, visitor_id varchar, method varchar, path varchar,
    query_string varchar, protocol varchar, status integer, bytes bigint, request_time double,
    referrer varchar, referrer_host varchar, referrer_path varchar,
    utm_source varchar, utm_medium varchar, utm_campaign varchar,
    user_agent varchar, is_bot boolean, bot_kind varchar, internal_kind varchar,
    is_static_asset boolean, _loaded_at timestamp
);
-- a row's origin in its batch: the line of pages.jsonl (the API response) it came from;
-- added to raw warehouses made before it (their rows keep null)
alter table x.accounts add column if not exists page_no integer;
alter table x.posts add column if not exists page_no integer;
alter table x.users add column if not exists page_no integer;
alter table x.post_snapshots add column if not exists page_no integer;
alter table x.post_lookup_errors add column if not exists page_no integer;
-- the version of the batch loaded (null: landed before versions, or loaded before them)
alter table main.batches add column if not exists version varchar;
-- internal traffic, decided at extraction (null: ordinary, or landed before it was decided)
alter table support_site.requests add column if not exists internal_kind varchar;
-- the X bill per UTC day and kind: the ledger (state/x_bill/), copied at each X load
create table if not exists main.x_bill_days (
    day date, kind varchar, resources integer, cost double, primary key (day, kind)
);
-- the batches the gate refused last, while no version of them has loaded since
create table if not exists main.refusals (
    source varchar, batch_id varchar, interval_start timestamp, interval_end timestamp,
    version varchar, reasons json, manifest json, refused_at timestamp,
    primary key (source, batch_id)
);
"""
X_TABLES = [
    "x.accounts",
    "x.posts",
    "x.users",
    "x.post_snapshots",
    "x.post_lookup_errors",
    "x.gaps",
    "x.dm_events",
    "x.dm_access",
    "x.post_private_metrics",
    "x.metrics_access",
]
TABLES = {Source.X: X_TABLES, Source.SUPPORT_SITE: ["support_site.requests"]}


def _x_frames(batch: Path, manifest: XManifest) -> dict[str, pd.DataFrame]:
    """The batch's pages as rows of the raw X tables (payloads re-serialised JSON)."""
    import pandas as pd  # the CLI's other commands start without it

    rows: dict[str, list[dict]] = {table: [] for table in X_TABLES}
    account_ids: dict[str, str] = {}
    # every row's origin: its line of the batch's pages.jsonl (one API response each)
    for page_no, page in enumerate(x_pages(batch), start=1):
        body, account = page.body, page.account
        if page.endpoint is Endpoint.USER:
            account_ids[account] = body["data"]["id"]
            rows["x.accounts"].append(
                {
                    "username": account,
                    "user_id": body["data"]["id"],
                    "payload": body["data"],
                    "page_no": page_no,
                }
            )
        for post in page.timeline_posts():
            rows["x.posts"].append(
                {
                    "account_username": account,
                    "account_id": account_ids[account],
                    "endpoint": page.endpoint.value,
                    "post_id": post["id"],
                    "payload": post,
                    "page_no": page_no,
                }
            )
        if page.endpoint is Endpoint.LOOKUP:
            for post in body.get("data", []):
                rows["x.post_snapshots"].append(
                    {"post_id": post["id"], "payload": post, "page_no": page_no}
                )
            for error in body.get("errors", []):
                post_id = error.get("resource_id") or error.get("value")
                rows["x.post_lookup_errors"].append(
                    {"post_id": post_id, "payload": error, "page_no": page_no}
                )
        for event in page.dm_events():  # the interval's only: newer ones are the next's
            if manifest.start <= parse_instant(event["created_at"]) < manifest.end:
                rows["x.dm_events"].append(
                    {
                        "account_username": account,
                        "account_id": account_ids[account],
                        "event_id": event["id"],
                        "payload": event,
                        "page_no": page_no,
                    }
                )
        for post in page.private_metrics():  # every one: a snapshot of X's last 30 days
            rows["x.post_private_metrics"].append(
                {
                    "account_username": account,
                    "account_id": account_ids[account],
                    "post_id": post["id"],
                    "observed_at": parse_instant(page.served_at).replace(tzinfo=None),
                    "payload": post,
                    "page_no": page_no,
                }
            )
        if page.endpoint in (Endpoint.TWEETS, Endpoint.MENTIONS, Endpoint.LOOKUP):
            for user in body.get("includes", {}).get("users", []):
                rows["x.users"].append({"user_id": user["id"], "payload": user, "page_no": page_no})
    for account in manifest.accounts:
        rows["x.dm_access"].append(
            {"account_username": account, "is_dm_authorised": account in manifest.dm_accounts}
        )
        rows["x.metrics_access"].append(
            {
                "account_username": account,
                "is_metrics_authorised": account in manifest.metrics_accounts,
            }
        )
    for gap in manifest.gaps:
        rows["x.gaps"].append(
            {"account_username": gap.account} | gap.model_dump(mode="json", exclude={"account"})
        )
    frames = {}
    for table, table_rows in rows.items():
        frame = pd.DataFrame(table_rows)
        if "payload" in frame:
            frame["payload"] = frame["payload"].map(json.dumps)
        frames[table] = frame
    return frames


def load(batch: Path, raw_db: Path, x_bill_days: list[dict] | None = None) -> dict:
    """Load one validated batch; returns the number of rows written per table. With
    `x_bill_days` (the X bill's ledger as rows: day, kind, resources, cost), those replace
    main.x_bill_days: every run's spend, superseded versions' included, is there."""
    manifest = read_manifest(batch)
    source, batch_id = manifest.source, manifest.batch
    start, end = manifest.start.replace(tzinfo=None), manifest.end.replace(tzinfo=None)
    loaded_at = datetime.now(UTC).replace(tzinfo=None)
    raw_db.parent.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    with duckdb.connect(str(raw_db)) as con:
        con.execute(DDL)
        con.execute("begin transaction")
        for table in TABLES[source]:
            con.execute(f"delete from {table} where batch_id = ?", [batch_id])
        if source is Source.X:
            for table, frame in _x_frames(batch, manifest).items():
                counts[table] = len(frame)
                if frame.empty:
                    continue
                con.register("frame", frame)
                con.execute(
                    f"""
                    insert into {table} by name
                    select ? as batch_id, ? as interval_start, ? as interval_end,
                        ? as _loaded_at, *
                    from frame
                    """,
                    [batch_id, start, end, loaded_at],
                )
                con.unregister("frame")
        else:
            con.execute(
                """
                insert into support_site.requests by name
                select ? as batch_id, ? as interval_start, ? as interval_end, *,
                    ? as _loaded_at
                from read_parquet(?)
                """,
                [batch_id, start, end, loaded_at, str(batch / "lines.parquet")],
            )
            counts["support_site.requests"] = manifest.records
        con.execute(
            """
            insert or replace into main.batches (
                source, batch_id, interval_start, interval_end, records, quarantined,
                manifest, _loaded_at, version
            ) values (?, ?, ?, ?, ?, ?, ?::json, ?, ?)
            """,
            [
                source,
                batch_id,
                start,
                end,
                manifest.records,
                manifest.quarantined,
                manifest.model_dump_json(),
                loaded_at,
                manifest.version,
            ],
        )
        con.execute(
            "delete from main.refusals where source = ? and batch_id = ?", [source, batch_id]
        )
        if x_bill_days is not None:
            con.execute("delete from main.x_bill_days")
            con.executemany(
                "insert into main.x_bill_days values ($day, $kind, $resources, $cost)",
                x_bill_days,
            )
        con.execute("commit")
    return counts


def record_refusal(
    raw_db: Path, manifest: Manifest, reasons: list[str], refused_at: datetime | None = None
) -> None:
    """Keep the gate's refusal of a version of a batch (replacing an earlier refusal of the
    batch): the version in force, its rows and `main.batches` are not touched."""
    refused_at = (refused_at or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)
    raw_db.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(raw_db)) as con:
        con.execute(DDL)
        con.execute(
            """
            insert or replace into main.refusals (
                source, batch_id, interval_start, interval_end, version, reasons, manifest,
                refused_at
            ) values (?, ?, ?, ?, ?, ?::json, ?::json, ?)
            """,
            [
                manifest.source,
                manifest.batch,
                manifest.start.replace(tzinfo=None),
                manifest.end.replace(tzinfo=None),
                manifest.version,
                json.dumps(reasons),
                manifest.model_dump_json(),
                refused_at,
            ],
        )
