"""`engagement`: the command line over the steps of the flow (and the development sandbox)."""

from __future__ import annotations

import argparse
import errno
import json
import sys
from datetime import UTC, date, datetime

from pydantic import BaseModel

from engagement import pipeline
from engagement.gate import BatchRejected
from engagement.landing import Interval, Source
from engagement.settings import Policy, Settings
from engagement.warehouse.build import BuildFailed


def _print(result: BaseModel) -> None:
    for warning in getattr(result, "warnings", []):
        print(f"engagement: warning: {warning}", file=sys.stderr)
    print(json.dumps(result.model_dump(mode="json")))


def _day(text: str) -> date:
    return datetime.now(UTC).date() if text == "today" else date.fromisoformat(text)


def _sample_days(parser: argparse.ArgumentParser) -> None:
    """The sample's days (the sandbox and the sample logs of one deployment use the same)."""
    parser.add_argument("--start", type=_day, help="first day, ISO (default: 2026-11-02)")
    parser.add_argument(
        "--end", type=_day, help="day after the last, ISO or `today` (default: a week)"
    )


def _sample_span(args: argparse.Namespace) -> dict:
    """`start` and `days` for the sample generator, when given."""
    from devtools.sample import SAMPLE_START

    span = {"start": args.start} if args.start else {}
    if args.end:
        span["days"] = (args.end - (args.start or SAMPLE_START)).days
        if span["days"] < 1:
            raise ValueError(f"--end {args.end} is not after the sample's first day")
    return span


def _interval(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--start", required=True, help="interval start, ISO (inclusive, UTC)")
    parser.add_argument("--end", required=True, help="interval end, ISO (exclusive, UTC)")


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="engagement", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)

    sandbox = commands.add_parser(
        "sandbox", help="serve the sample company (or a fixture) over X API v2"
    )
    sandbox.add_argument("--port", type=int, default=8765)
    sandbox.add_argument("--seed", type=int, default=7)
    _sample_days(sandbox)
    sandbox.add_argument("--host", default="127.0.0.1", help="bind address")
    sandbox.add_argument(
        "--fixture", metavar="FILE", help='serve JSON {"users": [...], "tweets": [...]} instead'
    )
    sandbox.add_argument(
        "--timeline-cap",
        type=int,
        default=Policy.timeline_cap,
        metavar="N",
        help="posts a timeline reaches",
    )
    sandbox.add_argument(
        "--mentions-cap",
        type=int,
        default=Policy.mentions_cap,
        metavar="N",
        help="mentions reachable",
    )
    sandbox.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SPEC",
        help="inject a fault: KIND:TIMES:PATH_REGEX (KIND 403|429|500|503|malformed|drop) "
        "or a JSON object; repeatable",
    )

    sample = commands.add_parser("sample", help="write the sample support-site access logs")
    sample.add_argument("--out", required=True)
    sample.add_argument("--seed", type=int, default=7)
    _sample_days(sample)

    extract = commands.add_parser("extract", help="land one raw batch for an interval")
    sources = extract.add_subparsers(dest="source", required=True)
    _interval(sources.add_parser("x", help="posts, mentions and users from the X API"))
    site = sources.add_parser("support-site", help="support-site access logs")
    site.add_argument("--logs", help="glob of log files (default: $SUPPORT_SITE_LOGS)")
    _interval(site)

    load = commands.add_parser("load", help="validate an interval's batch, then load it")
    load.add_argument("--source", required=True, choices=["x", "support-site"])
    load.add_argument(
        "--allow-empty",
        action="store_true",
        help="accept a batch far smaller than the source's trailing batches (a real quiet day)",
    )
    _interval(load)

    build = commands.add_parser(
        "build", help="dbt build of what changed since the last build, then publish atomically"
    )
    build.add_argument(
        "--full-refresh", action="store_true", help="rebuild every model from the raw warehouse"
    )

    run = commands.add_parser("run", help="extract, validate, load, build, publish")
    run.add_argument("--logs", help="glob of log files (default: $SUPPORT_SITE_LOGS)")
    _interval(run)

    commands.add_parser("headline", help="print the headline numbers of the published mart")
    report = commands.add_parser(
        "report", help="write the HTML report of the published mart (one self-contained file)"
    )
    report.add_argument(
        "--out", metavar="FILE.html", help="where to write it (default: ENGAGEMENT_REPORT_PATH)"
    )
    metrics = commands.add_parser(
        "mf",
        help="MetricFlow on the published mart, e.g. mf query --metrics response_rate "
        "--group-by metric_time__month (mf --help)",
    )
    metrics.add_argument("mf_args", nargs=argparse.REMAINDER, metavar="ARGS")

    quarantine = commands.add_parser("quarantine", help="the batches the gate refused")
    actions = quarantine.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="every refused batch and why, a line each")
    for action, text in (
        ("show", "why a batch was refused, in plain words, and its validation result"),
        ("release", "validate a refused batch again (after a fix), load it, build and publish"),
    ):
        chosen = actions.add_parser(action, help=text)
        chosen.add_argument("batch", help="its id, e.g. 20261105T000000Z_20261106T000000Z")
        chosen.add_argument("--source", choices=["x", "support_site"])
        if action == "release":
            chosen.add_argument("--allow-empty", action="store_true", help="a real quiet day")
            chosen.add_argument(
                "--no-build",
                action="store_true",
                help="load only: do not build and publish the mart after the load",
            )
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        if args.command == "sandbox":
            from devtools.x_sandbox import parse_fault_spec, serve

            try:
                serve(
                    args.port,
                    seed=args.seed,
                    **_sample_span(args),
                    host=args.host,
                    fixture=args.fixture,
                    timeline_cap=args.timeline_cap,
                    mentions_cap=args.mentions_cap,
                    faults=[parse_fault_spec(spec) for spec in args.fault],
                )
            except OSError as exc:
                if exc.errno not in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
                    raise
                raise ValueError(
                    f"the sandbox cannot listen on {args.host}:{args.port}: {exc.strerror}"
                    " (pass another --port)"
                ) from None
            return 0
        if args.command == "sample":
            from pathlib import Path

            from devtools.sample import write_sample

            for path in write_sample(Path(args.out), seed=args.seed, **_sample_span(args)):
                print(path)
            return 0
        if args.command == "headline":
            print(pipeline.format_headline(pipeline.headline(settings.published_db)))
            return 0
        if args.command == "report":
            from pathlib import Path

            print(pipeline.report(settings, Path(args.out) if args.out else None))
            return 0
        if args.command == "mf":
            from engagement.warehouse.metrics import mf

            return mf(settings, args.mf_args)
        if args.command == "quarantine":
            from engagement import quarantine

            if args.action == "list":
                for refused in quarantine.batches(settings):
                    print(refused.line())
            elif args.action == "show":
                print(quarantine.show(settings, args.batch, args.source))
            else:
                _print(quarantine.release(settings, args.batch, args.source, args.allow_empty))
                if not args.no_build:  # recovery in one command: the release is published
                    _print(pipeline.build(settings))
            return 0
        if args.command == "build":
            _print(pipeline.build(settings, args.full_refresh))
            return 0
        interval = Interval.parse(args.start, args.end)
        if args.command == "extract" and args.source == "x":
            result: BaseModel = pipeline.extract_x(settings, interval)
        elif args.command == "extract":
            result = pipeline.extract_support_site(settings, interval, args.logs)
        elif args.command == "load":
            source = Source.parse(args.source)
            pipeline.validate(settings, source, interval, args.allow_empty)
            result = pipeline.load_batch(settings, source, interval)
        else:
            for summary in pipeline.run(settings, interval, args.logs):
                _print(summary)
            print(pipeline.format_headline(pipeline.headline(settings.published_db)))
            return 0
        _print(result)
        return 0
    except BatchRejected as exc:
        print(f"engagement: batch refused: {exc}", file=sys.stderr)
        return 3
    except BuildFailed as exc:
        print(f"engagement: build failed: {exc}", file=sys.stderr)
        return 3
    except (ValueError, LookupError, FileNotFoundError, RuntimeError) as exc:
        print(f"engagement: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
