"""Build the dbt project on the `spark` target from a data directory's raw warehouse and
compare its tables with the DuckDB build's (a development tool while models are ported).

    python -m devtools.spark_compare [--select SELECTOR ...]

The data directory is the environment's (ENGAGEMENT_DATA_DIR); its DuckDB build must be
current (`engagement build`). Spark's files go to <data>/spark/."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from engagement.settings import Settings
from engagement.warehouse import build, spark


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--select", nargs="*", default=[])
    parser.add_argument("--no-build", action="store_true", help="compare the last Spark build")
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
        command += ["--target", "spark", "--full-refresh", "--exclude-resource-type", "unit_test"]
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
