"""`make bench` (spark): a day's build on DuckDB against the same build on Spark (local mode,
this machine's cores), at LINES log lines a day (default 1,000,000 and 10,000,000).

For each volume: two days of support-site logs from ../shared/data/access_logs (as
scripts/bench_warehouse.py writes them) and the sample company's X posts over the sandbox.
Day 1 is extracted, gated and loaded, then built on each engine (the first build); day 2 is
loaded, and its incremental build is timed on each engine (`engagement build`, planning,
dbt and publishing). The two engines' published marts must be equal (doubles to 9 decimal
places), or the bench fails. Prints seconds per engine and their ratio; the Spark start-up
(a SparkSession started and stopped, as the build's dbt starts one) is measured too, to
place the crossover.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from bench_warehouse import (  # noqa: E402
    KEY,
    PEAK_RSS,
    SHARED_LOG,
    build,
    load_history,
    run,
    write_day,
)

FIRST_DAY = date(2026, 10, 1)


def bench(lines: int, root: Path, server_url: str) -> dict[str, float]:
    from engagement.warehouse.spark import published_differences
    from tests.conftest import RUN_COLUMNS

    logs = root / "logs"
    logs.mkdir()
    days = [FIRST_DAY, FIRST_DAY + timedelta(days=1)]
    for n, day in enumerate(days):
        write_day(logs / f"access.log.{len(days) - n}", day, lines)
    duck = dict(
        os.environ,
        X_API_BASE_URL=server_url,
        X_BEARER_TOKEN="bench-token",
        X_ACCOUNTS="acmecloud,acmesupport",
        SUPPORT_SITE_LOGS=str(logs / "access.log*"),
        ENGAGEMENT_IP_HMAC_KEY=KEY,
        ENGAGEMENT_DATA_DIR=str(root / "duckdb"),
    )
    load_history(days[:1], duck)
    shutil.copytree(root / "duckdb", root / "spark", symlinks=True)
    spark = duck | {
        "ENGAGEMENT_DATA_DIR": str(root / "spark"),
        "ENGAGEMENT_WAREHOUSE_ENGINE": "spark",
    }
    figures: dict[str, float] = {}
    for engine, env in (("duckdb", duck), ("spark", spark)):
        figures[f"{engine} first build"] = sum(build(env, label=f"build {engine}").values())
        load_history(days[1:], env)
        figures[f"{engine} day build"] = sum(build(env, label=f"build {engine}").values())
    differing = {
        table: found
        for table, found in published_differences(
            root / "duckdb" / "warehouse" / "engagement.duckdb",
            root / "spark" / "warehouse" / "engagement.duckdb",
            RUN_COLUMNS,
        ).items()
        if found[0] or found[1]
    }
    if differing:
        sys.exit(
            "bench: Spark's marts differ from DuckDB's (only DuckDB, only Spark, rows):"
            f" {differing}"
        )
    return figures


def spark_startup() -> float:
    """Seconds to start and stop a local SparkSession in a new process."""
    started = time.perf_counter()
    script = (
        "from pyspark.sql import SparkSession\n"
        "SparkSession.builder.config('spark.ui.enabled', 'false').getOrCreate().stop()\n"
    )
    run("spark start-up", [str(REPO / ".venv" / "bin" / "python"), "-c", script], dict(os.environ))
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, nargs="+", default=[1_000_000, 10_000_000])
    args = parser.parse_args()
    if not SHARED_LOG.is_file():
        sys.exit(f"bench: reference log missing: {SHARED_LOG}")
    from devtools.sample import generate
    from devtools.x_sandbox import make_server

    server = make_server(0, generate(start=FIRST_DAY, days=3))
    server.start()
    print(f"a day's build, DuckDB and Spark (local mode), {os.cpu_count()} cores:")
    print(
        "| log lines a day | DuckDB first | Spark first | DuckDB a day | Spark a day"
        " | Spark / DuckDB (a day) |"
    )
    print("|---|---|---|---|---|---|")
    try:
        for lines in args.lines:
            with tempfile.TemporaryDirectory(prefix="engagement-bench-spark-") as tmp:
                f = bench(lines, Path(tmp), server.url)
            ratio = f["spark day build"] / f["duckdb day build"]
            print(
                f"| {lines:,} | {f['duckdb first build']:.1f} s | {f['spark first build']:.1f} s"
                f" | {f['duckdb day build']:.1f} s | {f['spark day build']:.1f} s | {ratio:.2f} |",
                flush=True,
            )
    finally:
        server.stop()
    print(f"Spark start-up (a local SparkSession started and stopped): {spark_startup():.1f} s")
    print("peak RSS (MiB): " + ", ".join(f"{k} {v:,.0f}" for k, v in sorted(PEAK_RSS.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
