"""The steps of one data interval, as functions that the CLI and the Airflow DAGs call."""

from __future__ import annotations

import logging
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import tweepy
from pydantic import BaseModel, ConfigDict

from engagement import figures, gate, landing
from engagement.errors import UsageError
from engagement.landing import BatchSummary, Interval, Source, batch_dir, iso
from engagement.settings import Settings
from engagement.warehouse import load
from engagement.warehouse.build import BuildSummary, build_and_publish
from extract import access_log, x, x_bill

log = logging.getLogger(__name__)


class InQuarantine(UsageError, FileNotFoundError):
    """The interval's batch was refused by the gate: the message says where it is."""


class Validated(BaseModel):
    """What `validate` returns: the batch passed the gate (a failing batch raises)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    batch: str
    source: Source
    validated: bool
    version: str | None = None  # the version validated, in force once it passed


class Loaded(BaseModel):
    """What `load_batch` returns: the rows written per raw table."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    batch: str
    source: Source
    loaded: dict[str, int]
    version: str | None = None  # the version in force that was loaded (None: before versions)


def ready_to_land(settings: Settings, interval: Interval) -> None:
    """Refuse what would land an incomplete or unwritable batch, before any work: an
    interval that has not ended (its day is not over, so its data is not all there) and a
    raw directory this process cannot write to."""
    now = datetime.now(UTC)
    if interval.end > now:
        raise UsageError(
            f"the interval {iso(interval.start)} - {iso(interval.end)} has not ended (now"
            f" {iso(now)}): its batch would be incomplete and pass for a quiet day; run it"
            " once it has ended"
        )
    settings.check_writable(settings.raw_dir)  # nothing is created here: the landing does


def extract_x(settings: Settings, interval: Interval) -> BatchSummary:
    ready_to_land(settings, interval)
    if not settings.x_bearer_token:
        raise UsageError("X_BEARER_TOKEN is not set (any value works against the sandbox)")
    policy = settings.x_policy
    token = settings.x_bearer_token.get_secret_value()
    client = x.make_client(token, settings.x_api_base_url, policy.timeout)
    clients = user_clients(settings)
    return x.extract(
        client,
        settings.x_accounts,
        interval,
        settings.raw_dir,
        policy,
        dm_clients=clients["dm_events"],
        metrics_clients=clients["private_metrics"],
        billing=x_bill.Billing.of(settings),
    )


def user_clients(settings: Settings) -> dict[str, dict[str, tweepy.Client]]:
    """Per user-context feature of X_USER_FEATURES (`dm_events`, `private_metrics`), a
    user-context client per account of X_ACCOUNTS whose grant (`engagement x-login`) has the
    scopes the feature needs; one client per account, shared by its features. An account
    with no grant is in none: its DMs and private metrics are "not authorised"."""
    from extract import x_auth

    # what each feature needs of a grant: its own scopes, and reading posts and users
    needs = {
        feature: {"tweet.read", "users.read", *scopes}
        for feature, scopes in x_auth.FEATURE_SCOPES.items()
    }
    features: dict[str, dict[str, tweepy.Client]] = {feature: {} for feature in needs}
    store = x_auth.TokenStore(settings.tokens_dir)
    grants = {
        account: grant
        for account in settings.x_accounts
        if (grant := store.load(account)) is not None
    }
    wanted = [feature for feature in needs if feature in settings.x_user_features]
    if not wanted or not grants:
        return features
    app = x_auth.OAuthApp.from_settings(settings)  # refreshing needs the app's client id
    for account, grant in grants.items():
        granted = set(grant.scope.split())
        client = None
        for feature in wanted:
            missing = sorted(needs[feature] - granted)
            if missing:
                log.warning(
                    "@%s: its grant lacks the scope %s, so its %s are not read: run"
                    " `engagement x-login %s` again to grant it",
                    account,
                    ", ".join(missing),
                    feature.replace("_", " "),
                    account,
                )
                continue
            client = client or x_auth.user_client(store, app, account)
            features[feature][account] = client
    return features


def x_usage(settings: Settings, month: date) -> str:
    """The month's X bill from the ledger and, when the API serves it (the last 90 days, a
    bearer token set), X's own count of the post reads per day beside ours."""
    billing = x_bill.Billing.of(settings)
    today = datetime.now(UTC).date()
    days = (today - month.replace(day=1)).days + 1
    if not settings.x_bearer_token:
        return x_bill.usage(billing, month, None, "X_BEARER_TOKEN is not set")
    if days > x_bill.USAGE_DAYS or month > today:
        return x_bill.usage(billing, month, None, "X counts the last 90 days only")
    policy = settings.x_policy
    token = settings.x_bearer_token.get_secret_value()
    client = x.make_client(token, settings.x_api_base_url, policy.timeout)
    try:
        theirs = x_bill.x_post_reads(client, x.Caller(policy), days)
    except tweepy.NotFound:
        return x_bill.usage(billing, month, None, f"{settings.x_api_base_url} does not serve it")
    return x_bill.usage(billing, month, theirs)


def _support_site_logs(settings: Settings, interval: Interval, logs: str | None) -> str:
    """The logs to read, once the interval can land and client IPs can be pseudonymised."""
    ready_to_land(settings, interval)
    logs = logs or settings.support_site_logs
    if not logs:
        raise UsageError("no access logs given: pass --logs GLOB or set SUPPORT_SITE_LOGS")
    _ip_key(settings)
    return logs


def _ip_key(settings: Settings) -> str:
    if not settings.ip_hmac_key:
        # client IPs may only land pseudonymised, and a pseudonym needs the secret
        raise UsageError(
            "ENGAGEMENT_IP_HMAC_KEY is not set: it keys the pseudonyms that replace client IPs"
            " (any secret of 16+ bytes; keep it stable, or visitors' ids change)"
        )
    return settings.ip_hmac_key.get_secret_value()


def _support_site_state(settings: Settings) -> Path:
    return settings.state_dir / "support_site_files.json"


def plan_support_site(
    settings: Settings, interval: Interval, logs: str | None = None
) -> access_log.Plan:
    """The interval's support-site extraction planned: its files found and identified, and
    grouped into parts of SUPPORT_SITE_PART_MB (nothing parsed yet)."""
    logs = _support_site_logs(settings, interval, logs)
    return access_log.plan(
        access_log.parse_sources(logs, (settings.support_site_hosts or ("support",))[0]),
        interval,
        log_format=settings.support_site_log_format,
        state_path=_support_site_state(settings),
        part_bytes=round(settings.support_site_part_mb * 1024 * 1024),
        raw_root=settings.raw_dir,
    )


def extract_support_site_part(
    settings: Settings, interval: Interval, part: access_log.Part
) -> access_log.PartResult:
    """One part of a planned extraction parsed into the staging area of the raw directory
    (on any machine that mounts the data directory)."""
    return access_log.extract_part(
        part,
        interval,
        settings.raw_dir,
        key=_ip_key(settings),
        log_format=settings.support_site_log_format,
        block_bytes=settings.support_site_block_mb * 1024 * 1024,
        internal_networks=settings.support_site_internal_networks,
    )


def combine_support_site(
    settings: Settings, interval: Interval, plan: access_log.Plan
) -> BatchSummary:
    """The planned extraction's parts landed as one batch version (all of them, or none)."""
    if plan.batch != interval.batch_id:
        raise UsageError(f"the plan is of the batch {plan.batch}, not of {interval.batch_id}")
    return access_log.combine(plan, settings.raw_dir, _support_site_state(settings))


def extract_support_site(
    settings: Settings, interval: Interval, logs: str | None = None
) -> BatchSummary:
    """The support-site extraction in this process: planned, each part parsed, combined."""
    plan = plan_support_site(settings, interval, logs)
    try:
        for part in plan.parts:
            extract_support_site_part(settings, interval, part)
        return combine_support_site(settings, interval, plan)
    finally:
        access_log.remove_staging(settings.raw_dir, plan)


def extract(settings: Settings, source: Source, interval: Interval) -> BatchSummary:
    if Source.parse(source) is Source.X:
        return extract_x(settings, interval)
    return extract_support_site(settings, interval)


def validate(
    settings: Settings,
    source: Source,
    interval: Interval,
    allow_empty: bool = False,
    reland: bool = False,
    version: str | None = None,
    accept_partial: bool = False,
) -> Validated:
    """Gate the newest version landed of the interval's batch of a source (a candidate);
    when it passes it becomes the version in force (and `load_batch` loads it). A refused
    candidate is quarantined and its refusal kept in the raw warehouse (`main.refusals`):
    the version in force, its load and the published mart are left as they were. With no
    candidate newer than the version in force, that one is validated again (a rerun).
    `version` validates that version instead (a restore, or a release from quarantine).
    `allow_empty` accepts an empty batch, or one far smaller than the source's trailing
    batches; `accept_partial` one whose files were damaged inside (lines lost). When the
    newest attempt at the interval was refused, `reland` extracts it again (the source may
    have been fixed since: a rerun of a failed validation recovers); otherwise that is an
    error saying where the refused batch is."""
    source = Source.parse(source)
    raw = settings.raw_dir
    if version is None:
        candidate = landing.newest_candidate(raw, source, interval)
        refused = _refused_last(settings, source, interval, candidate)
        if refused is not None:
            if not reland:
                raise InQuarantine(
                    f"the {source} batch {interval.batch_id} was refused by the gate and is in"
                    f" quarantine at {refused} (engagement quarantine show {interval.batch_id}):"
                    " fix the source, then extract the interval again"
                )
            extract(settings, source, interval)
            candidate = landing.newest_candidate(raw, source, interval)
    else:
        candidate = _version(settings, source, interval, version)
    current = landing.in_force(raw, source, interval)
    if candidate is None:
        if current is None:
            raise UsageError(
                f"no {source} batch of {interval.batch_id} has been landed under"
                f" {landing.versions_dir(raw, source, interval)} (ENGAGEMENT_DATA_DIR="
                f"{settings.data_dir}): extract it first"
                f" (engagement extract {source.value.replace('_', '-')} --start ... --end ...)"
            )
        candidate = current[1]
    # a version in force or superseded is validated again where it is; a candidate that is
    # refused goes to quarantine, its refusal recorded
    is_current = current is not None and candidate == current[1]
    kept = is_current or candidate.name in landing.promoted(raw, source, interval)
    kept = kept or (current is not None and candidate.name < current[0])
    manifest = landing.read_manifest(candidate)
    try:
        report = gate.gate(
            candidate,
            settings.quarantine_dir,
            settings.validations_dir,
            0.0 if allow_empty else settings.min_volume_share,
            allow_empty=allow_empty,
            accept_partial=accept_partial,
            keep=kept,
        )
    except gate.BatchRejected as exc:
        if not kept:
            load.record_refusal(settings.raw_db, manifest, exc.reasons)
        raise
    if not is_current:
        now = datetime.now(UTC)
        landing.promote(raw, candidate, now)
        landing.prune(raw, settings.raw_retention_days, now)
    refused_dir = batch_dir(settings.quarantine_dir, source, interval)
    if refused_dir.is_dir():  # a batch of this interval passed: the refused one is superseded
        shutil.rmtree(refused_dir)
    return Validated(
        batch=interval.batch_id,
        source=source,
        validated=report["success"],
        version=landing.in_force(raw, source, interval)[0],
    )


def _refused_last(
    settings: Settings, source: Source, interval: Interval, candidate: Path | None
) -> Path | None:
    """The quarantined refusal of the interval's batch when it is the newest attempt at
    it: newer than the version in force and than any candidate (None otherwise). A refusal
    from before versions is the newest only when no batch is in force or waiting."""
    refused = batch_dir(settings.quarantine_dir, source, interval)
    fields = landing.manifest_fields(refused)
    if fields is None:
        return None
    version = fields.version
    newer = [candidate.name] if candidate is not None else []
    current = landing.in_force(settings.raw_dir, source, interval)
    newer += [current[0]] if current is not None else []
    if version is None:
        return None if newer else refused
    return None if any(other >= version for other in newer) else refused


def _version(settings: Settings, source: Source, interval: Interval, version: str) -> Path:
    """The directory of a version of the interval's batch; an unknown one is an error."""
    for known in landing.versions(settings.raw_dir, source, interval):
        if known.version == version:
            return known.path
    raise UsageError(
        f"no version {version} of the {source} batch {interval.batch_id} (engagement raw"
        f" versions {interval.batch_id} --source {source.value} lists them)"
    )


def load_batch(settings: Settings, source: Source, interval: Interval) -> Loaded:
    batch = batch_dir(settings.raw_dir, source, interval)
    ledger = x_bill.Billing.of(settings).ledger
    loaded = load.load(batch, settings.raw_db, ledger.rows() if source == Source.X else None)
    version = landing.in_force(settings.raw_dir, source, interval)
    return Loaded(
        batch=interval.batch_id,
        source=source,
        loaded=loaded,
        version=version[0] if version is not None else None,
    )


def build(settings: Settings, full_refresh: bool = False) -> BuildSummary:
    return build_and_publish(settings, full_refresh)


def run(settings: Settings, interval: Interval, logs: str | None = None) -> list[BatchSummary]:
    """Extract, validate, load both sources for the interval, then build and publish."""
    summaries = [extract_x(settings, interval), extract_support_site(settings, interval, logs)]
    for source in Source:
        validate(settings, source, interval)
        load_batch(settings, source, interval)
    build(settings)
    return summaries


def headline(published_db: Path) -> dict:
    """The headline figures: the whole mart's company row of `marts.agg_period_figures`
    (where they are defined, incomplete days included), with the runs of days a source is
    not complete. Read from the published mart, opened read-only as BI opens it."""
    with figures.connect(published_db) as con:
        row = figures.period(con, published_db)
        incomplete = con.execute(
            """
            select date_day, x_status, support_site_status from marts.agg_daily_engagement
            where not is_complete order by date_day
            """
        ).fetchall()
        dm_days = con.execute(
            """
            select account_username, dm_known_days from marts.agg_period_figures
            where grain = 'period' and scope = 'account' order by account_username
            """
        ).fetchall()
    row["coverage"] = {
        source: _day_runs([(r[0], r[1 + i]) for r in incomplete if r[1 + i] != "complete"])
        for i, source in enumerate(COVERAGE_SOURCES)
    }
    row["dm_authorised"] = [account for account, days in dm_days if days]
    row["dm_not_authorised"] = [account for account, days in dm_days if not days]
    return row


def _decided(h: dict, prefix: str) -> str:
    """The mentions no longer waiting for an answer (the response rate's denominator)."""
    total, waiting = h[prefix], h[f"{prefix}_waiting"]
    return figures.count(None if total is None else total - waiting)


# the sources of the coverage columns of agg_daily_engagement (x_status, support_site_status)
COVERAGE_SOURCES = {"x": "X", "support_site": "support site"}


def _day_runs(days: list[tuple[date, str]]) -> list[tuple[str, date, date]]:
    """Consecutive days of the same status as (status, first day, last day)."""
    runs: list[tuple[str, date, date]] = []
    for day, status in days:
        if runs and runs[-1][0] == status and runs[-1][2] + timedelta(days=1) == day:
            runs[-1] = (status, runs[-1][1], day)
        else:
            runs.append((status, day, day))
    return runs


def _days(first: date, last: date) -> str:
    return f"{first:%m-%d}" if first == last else f"{first:%m-%d}..{last:%m-%d}"


def _coverage_note(h: dict, source: str) -> str:
    """What a source's totals leave out (missing, refused days: no data) or hold partly."""
    runs = h.get("coverage", {}).get(source, [])
    absent = [_days(a, b) for status, a, b in runs if status in ("missing", "refused")]
    partial = [_days(a, b) for status, a, b in runs if status == "partial"]
    notes = []
    if absent:
        notes.append(f"no data for {', '.join(absent)}")
    if partial:
        notes.append(f"partial on {', '.join(partial)}")
    return f" [{COVERAGE_SOURCES[source]} {'; '.join(notes)}]" if notes else ""


def report(settings: Settings, out: Path | None = None) -> Path:
    """Write the HTML report of the published mart (to the setting's path by default)."""
    from engagement.report import write_report

    return write_report(
        settings.published_db, out or settings.report_file, settings.x_monthly_budget
    )


def _dm_line(h: dict) -> str:
    count = figures.count
    accounts = ", ".join(f"@{a}" for a in h.get("dm_not_authorised", []))
    if not h.get("dm_authorised"):
        return (
            f"  DMs: not authorised ({accounts or 'no account'}): `engagement x-login ACCOUNT`"
            " reads an account's DMs"
        )
    unknown = f"; not authorised: {accounts}" if accounts else ""
    return (
        f"  DMs ({', '.join('@' + a for a in h['dm_authorised'])}):"
        f" {count(h['dm_requests_answered'])} of {_decided(h, 'dm_requests')} requests answered"
        f" ({figures.percent(h['dm_response_rate'])}), {count(h['dm_requests_waiting'])} still"
        f" waiting; median first response"
        f" {figures.minutes(h['median_dm_first_response_minutes'])},"
        f" {count(h['dm_requests_target_breached'])} breaches{unknown}"
    )


def format_headline(h: dict) -> str:
    """The headline as printed: the figures of agg_period_figures, each with what it is of."""
    count, percent = figures.count, figures.percent
    social, own = h["social_sessions"], h["own_site_sessions"]
    if social is None or own is None:
        verdict = "Social media against the company's own website: no support-site data"
    elif social > own:
        verdict = (
            f"Social media sent more sessions than the company's own website: {count(social)} vs"
            f" {count(own)}"
        )
    elif own > social:
        verdict = (
            f"The company's own website sent more sessions than social media: {count(own)} vs"
            f" {count(social)}"
        )
    else:
        verdict = (
            f"Social media and the company's own website sent as many sessions: {count(own)} each"
        )
    days = f"{h['period_days']} days"
    if h["incomplete_days"]:
        runs = [
            f"{label} {status} {_days(first, last)}"
            for source, label in COVERAGE_SOURCES.items()
            for status, first, last in h["coverage"].get(source, [])
        ]
        days += f", {h['incomplete_days']} incomplete: {', '.join(runs)}"
    x_note, site_note = _coverage_note(h, "x"), _coverage_note(h, "support_site")
    return "\n".join(
        [
            f"Engagement {h['first_day']} .. {h['last_day']} ({days})",
            f"  X: {count(h['broadcast_posts'])} original posts, "
            f"{count(h['replies_to_customers'])} replies to customers "
            f"({percent(h['conversation_share'])} of output is conversation)" + x_note,
            f"  Mentions needing an answer: {count(h['mentions_needing_answer_answered'])} of"
            f" {_decided(h, 'mentions_needing_answer')} answered"
            f" ({percent(h['response_rate'])}), {count(h['mentions_needing_answer_waiting'])}"
            f" still waiting; median first response"
            f" {figures.minutes(h['median_first_response_minutes'])}",
            f"  All mentions: {count(h['mentions_answered'])} of {_decided(h, 'mentions')}"
            f" answered ({percent(h['response_rate_all_mentions'])}),"
            f" {count(h['mentions_waiting'])} still waiting",
            f"  Against each account's target: {count(h['mentions_needing_answer_within_target'])}"
            f" of {count(h['mentions_needing_answer_answered'])} answers in time"
            f" ({percent(h['within_target_rate'])}), {count(h['mentions_target_breached'])}"
            f" breaches; p90 first response {figures.minutes(h['p90_first_response_minutes'])},"
            " median in business hours"
            f" {figures.minutes(h['median_first_response_business_minutes'])}",
            _dm_line(h),
            f"  Support-site sessions: {count(h['support_sessions'])}; social media "
            f"{count(social)} ({percent(h['social_share'])}: X {count(h['x_referred_sessions'])}, "
            f"Facebook {count(h['facebook_sessions'])}, "
            f"LinkedIn {count(h['linkedin_sessions'])}, "
            f"other networks {count(h['other_social_sessions'])})" + site_note,
            f"  {verdict}",
            f"  Other channels: search {count(h['search_sessions'])}, "
            f"email {count(h['email_sessions'])}, "
            f"AI assistants {count(h['ai_assistant_sessions'])}, "
            f"direct {count(h['direct_sessions'])}",
        ]
    )
