"""Load validated batches into the raw warehouse (the one DuckDB file that is written to).

Loading a batch replaces whatever an earlier load of the same batch wrote, in one
transaction, so re-running an interval never duplicates rows.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd

from extract.batches import parse_instant, read_manifest

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
    batch_id varchar, user_id varchar, payload json, _loaded_at timestamp
);
create table if not exists support_site.requests (
    batch_id varchar, interval_start timestamp, interval_end timestamp,
    source_file varchar, line_no bigint, requested_at timestamp, client_ip varchar,
    method varchar, target varchar, protocol varchar, status integer, bytes bigint,
    referrer varchar, user_agent varchar, _loaded_at timestamp
);
"""
TABLES = {"x": ["x.accounts", "x.posts", "x.users"], "support_site": ["support_site.requests"]}


def _naive(text: str) -> datetime:
    return parse_instant(text).replace(tzinfo=None)


def _x_frames(batch: Path) -> dict[str, pd.DataFrame]:
    accounts, posts, users = [], [], []
    account_ids: dict[str, str] = {}
    with open(batch / "pages.jsonl") as pages:
        for line in pages:
            page = json.loads(line)
            body = json.loads(page["body"])
            if page["endpoint"] == "user":
                account_ids[page["account"]] = body["data"]["id"]
                accounts.append((page["account"], body["data"]["id"], json.dumps(body["data"])))
                continue
            for post in body.get("data", []):
                posts.append(
                    (
                        page["account"],
                        account_ids[page["account"]],
                        page["endpoint"],
                        post["id"],
                        json.dumps(post),
                    )
                )
            for user in body.get("includes", {}).get("users", []):
                users.append((user["id"], json.dumps(user)))
    return {
        "x.accounts": pd.DataFrame(accounts, columns=["username", "user_id", "payload"]),
        "x.posts": pd.DataFrame(
            posts, columns=["account_username", "account_id", "endpoint", "post_id", "payload"]
        ),
        "x.users": pd.DataFrame(users, columns=["user_id", "payload"]),
    }


def load(batch: Path, raw_db: Path) -> dict:
    """Load one validated batch; returns the number of rows written per table."""
    manifest = read_manifest(batch)
    source, batch_id = manifest["source"], manifest["batch"]
    start, end = _naive(manifest["start"]), _naive(manifest["end"])
    loaded_at = datetime.now(UTC).replace(tzinfo=None)
    raw_db.parent.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    with duckdb.connect(str(raw_db)) as con:
        con.execute(DDL)
        con.execute("begin transaction")
        for table in TABLES[source]:
            con.execute(f"delete from {table} where batch_id = ?", [batch_id])
        if source == "x":
            for table, frame in _x_frames(batch).items():
                con.register("frame", frame)
                if table == "x.users":
                    select = "select ?, user_id, payload::json, ? from frame"
                    params = [batch_id, loaded_at]
                else:
                    select = (
                        "select ?, ?, ?, frame.* exclude (payload), payload::json, ? from frame"
                    )
                    params = [batch_id, start, end, loaded_at]
                con.execute(f"insert into {table} {select}", params)
                con.unregister("frame")
                counts[table] = len(frame)
        else:
            con.execute(
                """
                insert into support_site.requests
                select ?, ?, ?, * exclude (raw), ? from read_parquet(?)
                """,
                [batch_id, start, end, loaded_at, str(batch / "lines.parquet")],
            )
            counts["support_site.requests"] = manifest["records"]
        con.execute(
            "insert or replace into main.batches values (?, ?, ?, ?, ?, ?, ?::json, ?)",
            [
                source,
                batch_id,
                start,
                end,
                manifest["records"],
                manifest["quarantined"],
                json.dumps(manifest),
                loaded_at,
            ],
        )
        con.execute("commit")
    return counts
