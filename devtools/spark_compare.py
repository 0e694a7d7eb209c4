"""Build the dbt project on the `spark` target from a data directory's raw warehouse and
compare its tables with the DuckDB build's (a development tool while models are ported).

    python -m devtools.spark_compare [--select SELECTOR ...] [--incremental]
        [--event-time-start DAY --event-time-end DAY]

The data directory is the environment's (ENGAGEMENT_DATA_DIR); its DuckDB build must be
current (`engagement build`). Spark's files go to <data>/spark/. A full refresh by default,
over the event-time window a full `engagement build` takes (the support-site batches' days,
a day more each side: the microbatch models build those days, not every day since their
`begin`); --incremental builds on the last Spark build, over the window given."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb

from engagement.settings import Settings
from engagement.warehouse import build, spark


def full_window(raw_db: Path) -> tuple[date, date] | None:
    """The event-time window of a full build: the support-site batches' days, a day more
    each side (none without a support-site batch)."""
    with duckdb.connect(str(raw_db), read_only=True) as con:
        first, last = con.execute(
            "select min(cast(interval_start as date)),"
            " max(cast(interval_end - interval 1 microsecond as date))"
            " from main.batches where source = 'support_site'"
        ).fetchone()
    return build.around(first, last) if first else None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--select", nargs="*", default=[])
    parser.add_argument("--no-build", action="store_true", help="compare the last Spark build")
    parser.add_argument("--incremental", action="store_true", help="no --full-refresh")
    parser.add_argument("--event-time-start", type=date.fromisoformat)
    parser.add_argument("--event-time-end", type=date.fromisoformat)
    args = parser.parse_args()
    settings = Settings()
    root = settings.data_dir / "spark"
    root.mkdir(parents=True, exist_ok=True)
    env = dict(
        os.environ,
        ENGAGEMENT_SPARK_RAW=str(root / "raw"),
        ENGAGEMENT_SPARK_WAREHOUSE=str(root / "warehouse"),
    )
    if not args.no_build:
        print(spark.export_raw(settings.raw_db, root / "raw"))
        command, _, _ = build.dbt_command(settings, root / "dbt")
        command += ["--target", "spark", "--exclude-resource-type", "unit_test"]
        if not args.incremental:
            command.append("--full-refresh")
        window = (args.event_time_start, args.event_time_end)
        if None in window:
            window = full_window(settings.raw_db)
        if window:
            command += ["--event-time-start", str(window[0]), "--event-time-end", str(window[1])]
        if args.select:
            command += ["--select", *args.select]
        result = subprocess.run(command, env=env, cwd=root, capture_output=True, text=True)
        tail = [line for line in result.stdout.splitlines() if "ERROR" in line or "FAIL" in line]
        print("\n".join(tail[-40:]) or "dbt: green")
        print(result.stdout.splitlines()[-1] if result.stdout else result.stderr[-2000:])
    results = json.loads((root / "dbt" / "target" / "run_results.json").read_text())["results"]
    tables = []
    manifest = json.loads((root / "dbt" / "target" / "manifest.json").read_text())
    for result in results:
        node = manifest["nodes"].get(result["unique_id"], {})
        if node.get("resource_type") == "model" and node["config"]["materialized"] != "view":
            tables.append(f"{node['schema']}.{node['alias']}")
    diffs = spark.differences(settings.build_db, root / "warehouse", sorted(tables))
    for table, (only_duck, only_spark) in diffs.items():
        verdict = "equal" if only_duck == only_spark == 0 else "DIFFERENT"
        print(f"{table}: {verdict} (only DuckDB {only_duck}, only Spark {only_spark})")
    sys.exit(any(a or b for a, b in diffs.values()))


if __name__ == "__main__":
    main()
