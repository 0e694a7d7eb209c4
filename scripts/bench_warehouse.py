"""`make bench` (warehouse): what a day's run costs after 1 day and after D days of history.

Builds support-site logs of LINES lines a day (default 200,000) for D + 2 days from
../shared/data/access_logs (each copy of the log moved onto the day, keeping its times of
day, with other client IPs), one rotated file per day, and serves the sample company over
the X API sandbox for the same days. Then, through the `engagement` CLI in fresh processes:

- history of 1 day: day 1 extracted, gated, loaded and built; then day 2's whole run
  (extract, gate and load of both sources, build, publish) is timed;
- history of D days: days 1..D extracted, gated and loaded and built; then day D + 1's whole
  run is timed;
- `engagement build --full-refresh` over the D + 1 days is timed;
- publishing is timed at scale: that build with fct_x_post_metrics and fct_support_sessions
  grown to PUBLISH_ROWS rows each (default 5,000,000), the last day's window rebuilt, every
  mart copied against in place.

Prints each run's steps, the ratio of the two day runs, the day run at D days against the
full refresh, and the peak RSS of any process involved; the published marts of the
incremental runs must equal (contents hashed) those of the full refresh, or the bench fails.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parent.parent
SHARED_LOG = REPO.parent / "shared" / "data" / "access_logs" / "apache_logs_elastic_2015.log"
KEY = "bench-only-ip-hmac-key-not-a-secret"
FIRST_DAY = date(2026, 10, 1)
STAMP = re.compile(rb"\[\d\d/May/2015:")


def write_day(path: Path, day: date, lines: int) -> int:
    """`lines` lines of the shared log moved onto `day` (times of day kept, IPs varied)."""
    source = [line for line in SHARED_LOG.read_bytes().splitlines() if line]
    stamp = b"[" + day.strftime("%d/%b/%Y:").encode()
    seed = day.toordinal()
    written = 0
    with open(path, "wb") as out:
        copy = 0
        while written < lines:
            chunk = []
            for line in source[: lines - written]:
                ip, _, rest = line.partition(b" ")
                octets = ip.split(b".")
                if len(octets) == 4:  # other visitors per copy and per day
                    octets[0] = str((int(octets[0]) + seed) % 223 + 1).encode()
                    octets[1] = str((int(octets[1]) + copy) % 256).encode()
                    ip = b".".join(octets)
                chunk.append(ip + b" " + STAMP.sub(stamp, rest, count=1))
            out.write(b"\n".join(chunk) + b"\n")
            written += len(chunk)
            copy += 1
    return written


PEAK_RSS: dict[str, float] = {}  # MiB, the largest of a kind of step (with its children)


def run(label: str, command: list[str], env: dict[str, str]) -> str:
    """Runs a command; returns its output, and keeps its peak RSS under `label`."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(command, env=env, cwd=REPO, stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        PEAK_RSS[label] = max(PEAK_RSS.get(label, 0.0), usage.ru_maxrss / 1024)
        out.seek(0)
        err.seek(0)
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit(f"bench: {' '.join(command[:4])} failed:\n{err.read().decode()[-3000:]}")
        return out.read().decode()


def engagement(*args: str, env: dict[str, str], label: str = "") -> tuple[float, str]:
    """Runs the CLI; returns its wall time and its last output line."""
    started = time.perf_counter()
    label = label or " ".join(a for a in args if a not in ("--start", "--end", "--source"))
    label = label.split(" 20")[0]  # without the interval
    output = run(label, [str(REPO / ".venv" / "bin" / "engagement"), *args], env)
    return time.perf_counter() - started, output.strip().splitlines()[-1]


def interval(day: date) -> list[str]:
    return ["--start", str(day), "--end", str(day + timedelta(days=1))]


def load_day(day: date, env: dict[str, str]) -> dict[str, float]:
    """Extract, gate and load both sources of a day; seconds per step."""
    steps = {"extract": 0.0, "gate+load": 0.0}
    for source in ("x", "support-site"):
        steps["extract"] += engagement("extract", source, *interval(day), env=env)[0]
        steps["gate+load"] += engagement("load", "--source", source, *interval(day), env=env)[0]
    return steps


def load_history(days: list[date], env: dict[str, str]) -> None:
    """Extract, gate and load both sources of each day, in one process (faster than the CLI
    per step; the timed day runs use the CLI)."""
    script = (
        "import sys\n"
        "from engagement import pipeline\n"
        "from engagement.landing import Interval\n"
        "from engagement.settings import Settings\n"
        "settings = Settings.from_env()\n"
        "for day in sys.argv[1:]:\n"
        "    start, end = day.split('/')\n"
        "    interval = Interval.parse(start, end)\n"
        "    pipeline.extract_x(settings, interval)\n"
        "    pipeline.extract_support_site(settings, interval)\n"
        "    for source in ('x', 'support_site'):\n"
        "        pipeline.validate(settings, source, interval)\n"
        "        pipeline.load_batch(settings, source, interval)\n"
    )
    spans = [f"{day}/{day + timedelta(days=1)}" for day in days]
    run("history load", [str(REPO / ".venv" / "bin" / "python"), "-c", script, *spans], env)


def build(env: dict[str, str], *args: str, label: str = "") -> dict[str, float]:
    """`engagement build`: its wall time, split into dbt (with planning) and publish."""
    seconds, output = engagement("build", *args, env=env, label=label)
    publish = json.loads(output)["seconds"]["publish"]
    return {"build": seconds - publish, "publish": publish}


def slowest_nodes(env: dict[str, str], count: int = 6) -> str:
    """The dbt nodes the last build spent most on (seconds, from run_results.json)."""
    results = Path(env["ENGAGEMENT_DATA_DIR"]) / "dbt" / "target" / "run_results.json"
    nodes = json.loads(results.read_text())["results"]
    total = sum(node["execution_time"] for node in nodes)
    top = sorted(nodes, key=lambda node: -node["execution_time"])[:count]
    listed = ", ".join(
        f"{node['unique_id'].split('.')[-1]} {node['execution_time']:.2f}" for node in top
    )
    return f"{len(nodes)} dbt nodes, {total:.1f} s in all; slowest: {listed}"


def day_run(day: date, env: dict[str, str]) -> dict[str, float]:
    steps = load_day(day, env) | build(env, label="build (a day's)")
    steps["total"] = sum(steps.values())
    return steps


def publish_at_scale(data: Path, rows: int, window: tuple[date, date], rounds: int = 3) -> dict:
    """Median seconds to publish a build whose two growing facts have about `rows` rows
    each: fct_x_post_metrics (the bench's own rows repeated under other post ids: years of
    snapshots of a busy account) and fct_support_sessions (repeated on earlier days: years
    of sessions), the days of `window` rebuilt since the last publish: every mart copied
    into a new file (`whole`: a first or full build's publish) against the product's
    publish in place (the marts built by day keep the published file's rows but those of
    the window; the others, fct_x_post_metrics among them, are copied whole). The two
    published files must hold the same rows."""
    from engagement.warehouse.build import microbatch_marts, publish

    scratch = data / "publish-at-scale"
    scratch.mkdir()
    build_db = scratch / "build.duckdb"
    shutil.copyfile(data / "warehouse" / "build.duckdb", build_db)
    grown = {"fct_x_post_metrics": "post_id", "fct_support_sessions": "session_id"}
    with duckdb.connect(str(build_db)) as con:
        (metrics,) = con.execute("select count(*) from marts.fct_x_post_metrics").fetchone()
        (sessions, days) = con.execute(
            "select count(*), count(distinct session_date) + 1 from marts.fct_support_sessions"
        ).fetchone()
        con.execute(
            f"""
            insert into marts.fct_x_post_metrics
            select metrics.* replace (metrics.post_id || '-' || copy as post_id)
            from marts.fct_x_post_metrics as metrics,
                range(1, {max(1, rows // metrics)}) as c (copy);
            insert into marts.fct_support_sessions
            select sessions.* replace (
                sessions.session_id || '-' || copy as session_id,
                sessions.session_started_at - to_days(cast(copy * {days} as integer))
                    as session_started_at,
                sessions.session_ended_at - to_days(cast(copy * {days} as integer))
                    as session_ended_at,
                cast(sessions.session_date - to_days(cast(copy * {days} as integer)) as date)
                    as session_date
            )
            from marts.fct_support_sessions as sessions,
                range(1, {max(1, rows // sessions)}) as c (copy);
            """
        )
        totals = {
            table: con.execute(f"select count(*) from marts.{table}").fetchone()[0]
            for table in grown
        }
    by_day = microbatch_marts(data / "dbt")
    published = scratch / "engagement.duckdb"
    publish(build_db, published, in_place=False)
    times: dict[str, list[float]] = {"whole": [], "in place": []}
    for _ in range(rounds):
        started = time.perf_counter()
        publish(build_db, scratch / "whole.duckdb", in_place=False)
        times["whole"].append(time.perf_counter() - started)
        started = time.perf_counter()
        publish(build_db, published, True, window, by_day)
        times["in place"].append(time.perf_counter() - started)
    with duckdb.connect() as con:
        con.execute(f"attach '{published}' as in_place (read_only)")
        con.execute(f"attach '{scratch / 'whole.duckdb'}' as whole (read_only)")
        for table in grown:
            (differing,) = con.execute(
                f"select count(*) from ((from in_place.marts.{table} except all"
                f" from whole.marts.{table}) union all (from whole.marts.{table}"
                f" except all from in_place.marts.{table}))"
            ).fetchone()
            if differing:
                sys.exit(
                    f"bench: publishing in place gives {differing} {table} rows other than a copy"
                )
    medians = {design: sorted(values)[len(values) // 2] for design, values in times.items()}
    return {"rows": totals, "by_day": sorted(by_day), **medians}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30, help="D, the days of history")
    parser.add_argument("--lines", type=int, default=200_000, help="log lines a day")
    parser.add_argument(
        "--publish-rows", type=int, default=5_000_000, help="fct_x_post_metrics rows to publish"
    )
    args = parser.parse_args()
    if not SHARED_LOG.is_file():
        sys.exit(f"bench: reference log missing: {SHARED_LOG}")
    sys.path.insert(0, str(REPO))
    from devtools.sample import generate
    from devtools.x_sandbox import make_server
    from tests.conftest import mart_hashes

    days = [FIRST_DAY + timedelta(days=n) for n in range(args.days + 1)]
    server = make_server(0, generate(start=FIRST_DAY, days=len(days) + 1))
    server.start()
    with tempfile.TemporaryDirectory(prefix="engagement-bench-wh-") as tmp:
        root = Path(tmp)
        logs = root / "logs"
        logs.mkdir()
        for n, day in enumerate(days):
            write_day(logs / f"access.log.{len(days) - n}", day, args.lines)
        print(
            f"input: {len(days)} days x {args.lines:,} log lines from {SHARED_LOG.name}, the"
            f" sample company's posts over the X API sandbox; {os.cpu_count()} cores"
        )
        base_env = dict(
            os.environ,
            X_API_BASE_URL=server.url,
            X_BEARER_TOKEN="bench-token",
            X_ACCOUNTS="acmecloud,acmesupport",
            SUPPORT_SITE_LOGS=str(logs / "access.log*"),
            ENGAGEMENT_IP_HMAC_KEY=KEY,
        )

        def report(label: str, steps: dict[str, float]) -> None:
            parts = ", ".join(f"{k} {v:.1f} s" for k, v in steps.items() if k != "total")
            print(f"{label}: {steps['total']:.1f} s ({parts})", flush=True)

        short = dict(base_env, ENGAGEMENT_DATA_DIR=str(root / "short"))
        load_history(days[:1], short)
        build(short, label="first build (full)")
        first = day_run(days[1], short)
        report("day run after 1 day of history", first)
        print(f"  {slowest_nodes(short)}", flush=True)

        long = dict(base_env, ENGAGEMENT_DATA_DIR=str(root / "long"))
        load_history(days[:-1], long)
        build(long, label="first build (full)")
        last = day_run(days[-1], long)
        report(f"day run after {args.days} days of history", last)
        print(f"  {slowest_nodes(long)}", flush=True)
        published = root / "long" / "warehouse" / "engagement.duckdb"
        incremental = mart_hashes(published)

        full = sum(build(long, "--full-refresh").values())
        print(f"full refresh over {len(days)} days: {full:.1f} s", flush=True)
        if mart_hashes(published) != incremental:
            sys.exit("bench: the incremental marts differ from the full refresh's")

        # the window of the last day's run: that day and one each side (plan_build)
        window = (days[-1] - timedelta(days=1), days[-1] + timedelta(days=2))
        scale = publish_at_scale(root / "long", args.publish_rows, window)
        sizes = ", ".join(f"{table} {count:,}" for table, count in scale["rows"].items())
        print(
            f"publish with {sizes} rows, the days {window[0]} to {window[1]} (exclusive)"
            f" rebuilt (median of 3): every mart copied {scale['whole']:.2f} s, in place"
            f" ({', '.join(scale['by_day'])} by day, the rest copied)"
            f" {scale['in place']:.2f} s (ratio {scale['in place'] / scale['whole']:.2f})",
            flush=True,
        )
        peaks = ", ".join(
            f"{label} {mib:.0f}"
            for label, mib in sorted(PEAK_RSS.items(), key=lambda item: -item[1])
            if label != "history load"
        )
        ratio = last["total"] / first["total"]
        share = last["total"] / full
        print(
            f"\nratio day run at {args.days} days / at 1 day: {ratio:.2f}"
            f" (floor 1.5: {'met' if ratio <= 1.5 else 'NOT met'};"
            f" goal 1.15: {'met' if ratio <= 1.15 else 'not yet'})\n"
            f"day run at {args.days} days / full refresh: {share:.2f}"
            f" (goal at most 0.20: {'met' if share <= 0.2 else 'not yet'})\n"
            f"peak RSS per step (MiB, with its dbt): {peaks}\n"
            "incremental marts = full-refresh marts (contents hashed) ✓"
        )
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
