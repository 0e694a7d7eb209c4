"""`engagement`: the command line over the steps of the flow (and the development sandbox).

A failure the user can act on is one line on stderr, `engagement: ...`, naming what to fix
(an option, a setting, a file, a connection), and exit 2; a batch refused by the gate or a
build that failed exits 3 (`engagement.errors`). A wrong option is one line too, naming
the option. Ctrl-C is `engagement: interrupted` and exit 130 (nothing is published: a build
stops dbt and leaves the published mart as it was). A closed pipe (`engagement headline |
head -1`) ends the command silently with exit 141, as a program killed by SIGPIPE (128 +
13): a pipeline under `set -o pipefail` sees it, as it would `cat`'s. Any other exception is
a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys
from datetime import UTC, date, datetime
from pathlib import Path

from pydantic import BaseModel

from engagement import pipeline
from engagement.errors import EngagementError, UsageError
from engagement.landing import Interval, Source, iso, parse_instant
from engagement.settings import Policy, Settings

INTERRUPTED = 130  # 128 + SIGINT, as shells report a command stopped by Ctrl-C
BROKEN_PIPE = 141  # 128 + SIGPIPE
ISO_EXAMPLE = "expected ISO 8601, e.g. 2026-11-05 or 2026-11-05T00:00:00Z"


class Parser(argparse.ArgumentParser):
    """argparse, whose errors are one line (no usage block) naming the option."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _print(result: BaseModel) -> None:
    for warning in getattr(result, "warnings", []):
        print(f"engagement: warning: {warning}", file=sys.stderr)
    print(json.dumps(result.model_dump(mode="json")))


def _day(text: str) -> date:
    """A day, ISO, or `today` (an argparse type: a bad one is one line naming the option)."""
    if text == "today":
        return datetime.now(UTC).date()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a day (expected ISO 8601, e.g. 2026-11-05, or today)"
        ) from None


def _instant(text: str) -> datetime:
    """An interval bound: an ISO date or date-time, UTC when naive."""
    try:
        return parse_instant(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date or time ({ISO_EXAMPLE})"
        ) from None


def _month(text: str) -> date:
    """A month, `YYYY-MM`: its first day."""
    from extract.x_bill import month_of

    try:
        return month_of(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a month (expected YYYY-MM)") from None


def _source(text: str) -> Source:
    """A source, in either spelling: `support-site` or `support_site`."""
    try:
        return Source.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


SOURCE_HELP = "x or support-site (support_site works too)"


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
            raise UsageError(f"--end {args.end} is not after the sample's first day")
    return span


def _interval(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--start", required=True, type=_instant, help="interval start, ISO (inclusive, UTC)"
    )
    parser.add_argument(
        "--end", required=True, type=_instant, help="interval end, ISO (exclusive, UTC)"
    )


def _the_interval(args: argparse.Namespace) -> Interval:
    if not args.start < args.end:
        raise UsageError(
            f"--start {iso(args.start)} is not before --end {iso(args.end)}: the interval is empty"
        )
    return Interval(args.start, args.end)


def parser() -> argparse.ArgumentParser:
    root = Parser(
        prog="engagement",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
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
    site = sources.add_parser(
        "support-site", aliases=["support_site"], help="support-site access logs"
    )
    site.add_argument(
        "--logs", help="log directory or glob of log files (default: $SUPPORT_SITE_LOGS)"
    )
    _interval(site)

    load = commands.add_parser("load", help="validate an interval's batch, then load it")
    load.add_argument("--source", required=True, type=_source, metavar="SOURCE", help=SOURCE_HELP)
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

    usage = commands.add_parser(
        "x-usage",
        help="the month's X API bill per day and kind (resources, cost), the budget and what"
        " is left, and X's own count of the post reads per day beside ours",
    )
    usage.add_argument("--month", type=_month, help="the month, YYYY-MM (default: this month, UTC)")
    commands.add_parser("headline", help="print the headline numbers of the published mart")
    login = commands.add_parser(
        "x-login",
        help="authorise user-context access to an X account (OAuth 2.0 with PKCE): its DMs"
        " and private metrics; the tokens are kept and refreshed in ENGAGEMENT_X_TOKENS_DIR",
    )
    login.add_argument("account", help="the X account (a username of X_ACCOUNTS, without @)")
    login.add_argument(
        "--paste",
        action="store_true",
        help="read the URL the browser was sent back to from the input, even when"
        " X_REDIRECT_URI is a loopback address x-login could listen on",
    )
    login.add_argument(
        "--wait", type=float, default=300.0, help="seconds to wait for the redirect (300)"
    )
    logout = commands.add_parser(
        "x-logout", help="forget an account's user-context tokens (revoke them at X too)"
    )
    logout.add_argument("account")
    commands.add_parser(
        "unanswered",
        help="list the mentions needing an answer that are past their account's target and"
        " still unanswered, oldest first (the mart DAG notifies each once)",
    )
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
        chosen.add_argument("--source", type=_source, metavar="SOURCE", help=SOURCE_HELP)
        if action == "release":
            chosen.add_argument("--allow-empty", action="store_true", help="a real quiet day")
            chosen.add_argument(
                "--accept-partial",
                action="store_true",
                help="load it although a file was damaged inside (the lines after the damage)",
            )
            chosen.add_argument(
                "--no-build",
                action="store_true",
                help="load only: do not build and publish the mart after the load",
            )

    raw = commands.add_parser("raw", help="the versions of the raw batches")
    raw_actions = raw.add_subparsers(dest="action", required=True)
    listed = raw_actions.add_parser(
        "versions", help="a batch's versions: in force, superseded or candidate, when, records"
    )
    restored = raw_actions.add_parser(
        "restore", help="validate a version of a batch again, make it the one in force, load it"
    )
    for chosen in (listed, restored):
        chosen.add_argument("batch", help="its id, e.g. 20261105T000000Z_20261106T000000Z")
    restored.add_argument("version", help="its id, e.g. 20261106T003000123456Z (raw versions)")
    restored.add_argument(
        "--no-build",
        action="store_true",
        help="load only: do not build and publish the mart after the load",
    )
    for chosen in (listed, restored):
        chosen.add_argument("--source", type=_source, metavar="SOURCE", help=SOURCE_HELP)
    return root


def _check_writes(settings: Settings, args: argparse.Namespace) -> None:
    """Refuse, before any work, a data directory where the command cannot write: the
    directories it writes in, and the warehouse's files for those that load or build."""
    landing = [settings.raw_dir, settings.state_dir]
    loading = [settings.raw_dir, settings.quarantine_dir, settings.validations_dir]
    loading.append(settings.warehouse_dir)
    building = [settings.warehouse_dir, settings.data_dir / "dbt"]
    releasing = getattr(args, "action", None) in ("release", "restore")
    writes = {
        "extract": landing,
        "load": loading,
        "build": building,
        "run": landing + loading + building,
        "mf": [settings.data_dir / "metricflow" / "logs"],
        "quarantine": loading if releasing else [],
        "raw": loading if releasing else [],
    }.get(args.command, [])
    if writes:
        warehouse = (settings.raw_db, settings.build_db, settings.published_db)
        loads = args.command in ("load", "build", "run") or releasing
        settings.check_writable(*writes, files=warehouse if loads else ())


def _report_out(settings: Settings, out: str | None) -> Path:
    """Where `report` writes, checked: --out, ENGAGEMENT_REPORT_PATH or the data directory."""
    path = Path(out).resolve() if out else settings.report_file
    if out:
        named = f"--out={out}"
    elif settings.report_path:
        named = f"ENGAGEMENT_REPORT_PATH={settings.report_path}"
    else:
        named = None
    if path.is_dir():
        raise UsageError(f"{named or 'the report path'}: {path} is a directory, not a file")
    settings.check_writable(files=(path,), setting=named)
    return path


def dispatch(args: argparse.Namespace) -> int:
    """The command `args` names; raises the project's errors (`main` prints them)."""
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
            raise UsageError(
                f"the sandbox cannot listen on {args.host}:{args.port}: {exc.strerror}"
                " (pass another --port)"
            ) from None
        return 0
    if args.command == "sample":
        from devtools.sample import write_sample

        for path in write_sample(Path(args.out), seed=args.seed, **_sample_span(args)):
            print(path)
        return 0
    settings.check_data_dir()
    _check_writes(settings, args)
    if args.command in ("x-login", "x-logout"):
        return _x_login(settings, args)
    if args.command == "headline":
        print(pipeline.format_headline(pipeline.headline(settings.published_db)))
        return 0
    if args.command == "x-usage":
        print(pipeline.x_usage(settings, args.month or datetime.now(UTC).date().replace(day=1)))
        return 0
    if args.command == "unanswered":
        from engagement import unanswered

        items = unanswered.overdue(settings.published_db)
        print(unanswered.message(items, datetime.now(UTC)))
        return 0
    if args.command == "report":
        print(pipeline.report(settings, _report_out(settings, args.out)))
        return 0
    if args.command == "mf":
        from engagement.warehouse.metrics import mf

        return mf(settings, args.mf_args)
    if args.command == "quarantine":
        from engagement import quarantine

        if args.action == "list":
            refused = quarantine.batches(settings)
            for batch in refused:
                print(batch.line())
            if not refused:
                print(f"nothing in quarantine (under {settings.quarantine_dir})")
        elif args.action == "show":
            print(quarantine.show(settings, args.batch, args.source))
        else:
            released = quarantine.release(
                settings, args.batch, args.source, args.allow_empty, args.accept_partial
            )
            _print(released)
            if not args.no_build:  # recovery in one command: the release is published
                _print(pipeline.build(settings))
        return 0
    if args.command == "raw":
        from engagement import raw

        if args.action == "versions":
            print("\n".join(raw.versions(settings, args.batch, args.source)))
        else:
            _print(raw.restore(settings, args.batch, args.version, args.source))
            if not args.no_build:  # as a release: what is restored is published
                _print(pipeline.build(settings))
        return 0
    if args.command == "build":
        _print(pipeline.build(settings, args.full_refresh))
        return 0
    interval = _the_interval(args)
    if args.command == "extract" and Source.parse(args.source) is Source.X:
        result: BaseModel = pipeline.extract_x(settings, interval)
    elif args.command == "extract":
        result = pipeline.extract_support_site(settings, interval, args.logs)
    elif args.command == "load":
        pipeline.validate(settings, args.source, interval, args.allow_empty)
        result = pipeline.load_batch(settings, args.source, interval)
    else:
        for summary in pipeline.run(settings, interval, args.logs):
            _print(summary)
        print(pipeline.format_headline(pipeline.headline(settings.published_db)))
        return 0
    _print(result)
    return 0


def _x_login(settings: Settings, args: argparse.Namespace) -> int:
    from extract import x_auth

    account = args.account.removeprefix("@")
    if account.lower() not in {name.lower() for name in settings.x_accounts}:
        raise UsageError(
            f"@{account} is not in X_ACCOUNTS ({', '.join(settings.x_accounts) or 'empty'}):"
            " add it there first"
        )
    if args.command == "x-logout":
        removed = x_auth.logout(settings, account)
        print(f"@{account}: " + ("tokens revoked and removed" if removed else "no tokens kept"))
        return 0
    grant = x_auth.login(settings, account, paste=args.paste, wait=args.wait)
    print(
        f"@{account} authorised (user {grant.user_id}, scopes {grant.scope}); its tokens are"
        f" kept in {x_auth.TokenStore(settings.tokens_dir).path(account)}, readable only by you"
    )
    return 0


def _quiet_stdout() -> None:
    """After a closed pipe: what is still buffered for stdout goes nowhere (Python would
    otherwise report the broken pipe again as it exits)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def main(argv: list[str] | None = None) -> int:
    try:
        args = parser().parse_args(argv)
        code = dispatch(args)
        sys.stdout.flush()  # a closed pipe shows here, not as Python exits
        return code
    except EngagementError as exc:
        print(f"engagement: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("engagement: interrupted", file=sys.stderr)
        return INTERRUPTED
    except BrokenPipeError:
        _quiet_stdout()
        return BROKEN_PIPE


if __name__ == "__main__":
    sys.exit(main())
