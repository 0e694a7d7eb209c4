"""Quality gate: Great Expectations validates a landed batch before it is loaded.

The suites are code: `x_checks`, `support_site_checks`, and the volume check against the
source's trailing batches. An X batch (thousands of posts a day) is validated post by post.
A support-site batch (millions of lines a day) is validated at the speed of its extraction,
in memory bounded by a row group: one pass over its row groups counts the aggregates its
checks need (`line_facts`: rows, quarantined lines, parsed and known-method shares, the
smallest and largest timestamp, status and size, rows whose visitor id is not a
pseudonym), then Great Expectations checks those aggregates (every value is within bounds
exactly when the smallest and the largest are). Measured at 1M lines: a row-level suite
cost 3-4 s, and each expectation costs Great Expectations about 10 ms whatever the data,
so the aggregates' suite asks only for pass or fail (`BOOLEAN_ONLY`): the report carries
the aggregates themselves.

Whatever the history, a batch with no record is refused (unless `allow_empty`: a real
quiet day), and so is a partial support-site batch, one whose files were damaged inside
(unless `accept_partial`), the refusal naming each file, the byte where reading stopped and
the lines kept.

A batch that passes goes on to the loader, its report kept under `data/validations/`; a
failing one is moved whole to the quarantine directory with its report, and the refusal
says in plain words which checks failed, with the numbers.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from statistics import median
from typing import TYPE_CHECKING, Any

from engagement.errors import DataRefused
from engagement.landing import (
    MANIFEST,
    Endpoint,
    Interval,
    LogFileEntry,
    Manifest,
    Source,
    SupportSiteManifest,
    XManifest,
    iso,
    read_manifest,
    source_root,
    x_pages,
)

if TYPE_CHECKING:
    import pandas as pd

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
log = logging.getLogger(__name__)
# Great Expectations logs ~200 INFO lines as it is imported ("Skipping registering function
# ... because it is a closure", its registries): a validate task's log is the checks instead
logging.getLogger("great_expectations").setLevel(logging.WARNING)
# with the spark group installed, Great Expectations imports pyspark, which warns on stderr
# that pandas 3 is newer than it supports (a command's error must stay one line)
warnings.filterwarnings(
    "ignore", message="PySpark does not yet fully support pandas", category=FutureWarning
)
GX_LOUD_LOGGERS = ("great_expectations.data_context.types.base",)  # set to INFO when imported

HTTP_METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE"]
MIN_PARSED_SHARE = 0.95
MIN_KNOWN_METHOD_SHARE = 0.99
PSEUDONYM = r"^[0-9a-f]{32}$"  # a visitor id: the keyed HMAC of a client IP, never the IP
TRAILING_BATCHES = 7
REPORT = "validation.json"  # beside a quarantined batch: the gate's report on it
DATA_DOCS = "data_docs.html"  # and Great Expectations' Data Docs page of the validation


class BatchRejected(DataRefused):
    """A batch failed its expectations and was quarantined (exit 3)."""

    def __init__(
        self, source: Source, batch: str, failed: list[Failure], quarantined_at: Path
    ) -> None:
        self.failed = [failure.check for failure in failed]
        self.reasons = [failure.reason for failure in failed]
        self.quarantined_at = quarantined_at
        super().__init__(
            f"batch refused: {source} batch {batch} failed {len(failed)} check(s):"
            f" {'; '.join(self.reasons)}."
            f" Quarantined at {quarantined_at}"
        )


class InForceRejected(BatchRejected):
    """A version already in force (or superseded) failed its checks when validated again:
    it was not moved, and what it loaded stays as it is."""

    def __init__(self, source: Source, batch: str, failed: list[Failure], kept_at: Path) -> None:
        super().__init__(source, batch, failed, kept_at)
        self.args = (
            f"{source} batch {batch} failed {len(failed)} check(s) when validated again:"
            f" {'; '.join(self.reasons)}. Left where it is, at {kept_at}",
        )


@dataclass(frozen=True)
class Failure:
    check: str  # the expectation and its column, e.g. expect_column_max_to_be_between(status)
    reason: str  # what failed, in plain words with the numbers


@dataclass(frozen=True)
class Check:
    """An expectation and what its failure means, in words: `says(result)` formats the
    observed numbers of Great Expectations' result."""

    expectation: Any
    says: Callable[[dict], str]


def _n(value: object) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def _unexpected(what: str) -> Callable[[dict], str]:
    def says(result: dict) -> str:
        bad, total = result.get("unexpected_count", "?"), result.get("element_count", "?")
        return f"{_n(bad)} of {_n(total)} {what}"

    return says


def _naive(value: datetime) -> pd.Timestamp:
    import pandas as pd

    return pd.Timestamp(value).tz_localize(None)


def _volume(source: Source, manifest: Manifest, trailing: list[int], share: float) -> list:
    """A batch with less than `share` of the trailing batches' median is an outage, not a
    quiet day (nothing to compare with: no check). Checked on the frame of the source's
    other checks: X's posts, or the support site's line aggregates."""
    if not trailing or share <= 0:
        return []
    import great_expectations as gx

    e = gx.expectations
    floor = int(share * median(trailing))
    expectation = (
        e.ExpectTableRowCountToBeBetween(min_value=floor)
        if source is Source.X
        else e.ExpectColumnMinToBeBetween(column="rows", min_value=floor)
    )
    return [
        Check(
            expectation,
            lambda r: (
                f"{_n(manifest.records)} records, under {share:.0%} of the median of the"
                f" last {len(trailing)} {source} batches ({_n(int(median(trailing)))}): an outage"
                " upstream? (a real quiet day: --allow-empty, or ENGAGEMENT_MIN_VOLUME_SHARE=0)"
            ),
        )
    ]


def is_empty(manifest: Manifest) -> bool:
    """No record, and (a support-site batch) no quarantined line of the interval either (a
    log that does not parse is refused by its parsed share)."""
    return manifest.records == 0 and (isinstance(manifest, XManifest) or manifest.quarantined == 0)


def _empty(source: Source, manifest: XManifest | SupportSiteManifest) -> list[Check]:
    """A batch with no record is refused, trailing batches or not (a first run too): a
    `--logs` naming the wrong files, or an API answering nothing, is not a quiet day."""
    import great_expectations as gx

    e = gx.expectations
    if isinstance(manifest, SupportSiteManifest):
        expectation = e.ExpectColumnMinToBeBetween(column="rows_and_quarantined", min_value=1)
        why = (
            f"{_n(len(manifest.files))} log file(s), {_n(manifest.lines_read)} lines read, none"
            f" of them in {iso(manifest.start)} - {iso(manifest.end)}: check --logs or"
            " SUPPORT_SITE_LOGS"
        )
    else:
        expectation = e.ExpectTableRowCountToBeBetween(min_value=1)
        accounts = ", ".join(manifest.accounts) or "none"
        why = f"no post or mention of the accounts ({accounts}) in the interval"
    return [
        Check(
            expectation,
            lambda _: (
                f"0 records: the {source} batch {manifest.batch} is empty ({why}); a real quiet"
                f" day is accepted with --allow-empty (engagement load, or engagement quarantine"
                f" release {manifest.batch} --allow-empty)"
            ),
        )
    ]


def damage_said(entry: LogFileEntry) -> str:
    """A damaged file of a batch, in words: where reading stopped, what was kept and lost."""
    kind = str(entry.read_error).split(":")[0]
    if entry.damage_offset is None:  # landed before damage was located
        return f"{entry.path} is damaged ({kind}): {_n(entry.lines_read)} lines kept"
    if entry.bytes_unread or "truncated" not in kind:
        lost = f"~{_n(entry.lines_lost_estimate)} lost"
    else:
        lost = "the lines cut off its end are lost (how many is unknown)"
    return (
        f"{entry.path} is damaged at byte {_n(entry.damage_offset)} ({kind}):"
        f" {_n(entry.lines_kept)} lines kept, {lost}"
    )


def _partial(manifest: SupportSiteManifest) -> list[Check]:
    """A batch with a file damaged inside is partial: refused unless accepted."""
    import great_expectations as gx

    expectation = gx.expectations.ExpectColumnValuesToBeBetween(
        column="damaged_files", min_value=0, max_value=0
    )
    return [
        Check(
            expectation,
            lambda _: (
                "; ".join(damage_said(entry) for entry in manifest.damaged_files)
                + f"; accept the partial batch with engagement quarantine release"
                f" {manifest.batch} --accept-partial"
            ),
        )
    ]


def x_checks(manifest: XManifest) -> list[Check]:
    """Every post of an X batch, row by row (a day of an account is thousands of posts)."""
    import great_expectations as gx

    e = gx.expectations
    start, end = _naive(manifest.start), _naive(manifest.end)
    return [
        Check(
            e.ExpectTableRowCountToEqual(value=manifest.records),
            lambda r: (
                f"{_n(r.get('observed_value'))} posts where the manifest counts"
                f" {_n(manifest.records)}: posts were lost or added after landing"
            ),
        ),
        Check(e.ExpectColumnValuesToNotBeNull(column="id"), _unexpected("posts lack an id")),
        Check(
            e.ExpectColumnValuesToMatchRegex(column="id", regex=r"^[0-9]{1,19}$"),
            _unexpected("post ids are not X ids (1-19 digits)"),
        ),
        Check(
            e.ExpectColumnValuesToNotBeNull(column="author_id"),
            _unexpected("posts lack an author"),
        ),
        Check(e.ExpectColumnValuesToNotBeNull(column="text"), _unexpected("posts lack text")),
        Check(
            e.ExpectColumnValuesToBeInSet(
                column="endpoint", value_set=[Endpoint.TWEETS.value, Endpoint.MENTIONS.value]
            ),
            _unexpected("posts come from an endpoint other than tweets or mentions"),
        ),
        Check(
            e.ExpectColumnValuesToBeInSet(column="status", value_set=[200]),
            _unexpected("pages were not HTTP 200"),
        ),
        Check(
            e.ExpectColumnValuesToNotBeNull(column="created_at"),
            _unexpected("posts have no readable created_at"),
        ),
        Check(
            e.ExpectColumnValuesToBeBetween(
                column="created_at", min_value=start, max_value=end, strict_max=True
            ),
            _unexpected(f"posts were created outside the interval {start} - {end}"),
        ),
    ]


def dm_checks(manifest: XManifest) -> list[Check]:
    """Every DM event an X batch read (user context), as pages land whole: the interval's, the
    newer ones paged through to reach it, and the older ones of the page that reached it."""
    import great_expectations as gx

    e = gx.expectations
    return [
        Check(
            e.ExpectColumnSumToBeBetween(
                column="in_interval", min_value=manifest.dm_events, max_value=manifest.dm_events
            ),
            lambda r: (
                f"{_n(r.get('observed_value'))} DM events of the interval where the manifest"
                f" counts {_n(manifest.dm_events)}: events were lost or added after landing"
            ),
        ),
        Check(e.ExpectColumnValuesToNotBeNull(column="id"), _unexpected("DM events lack an id")),
        Check(
            e.ExpectColumnValuesToMatchRegex(column="id", regex=r"^[0-9]{1,19}$"),
            _unexpected("DM event ids are not X ids (1-19 digits)"),
        ),
        Check(
            e.ExpectColumnValuesToBeInSet(column="event_type", value_set=["MessageCreate"]),
            _unexpected("DM events are not messages (MessageCreate was asked for)"),
        ),
        Check(
            e.ExpectColumnValuesToNotBeNull(column="sender_id"),
            _unexpected("DM events lack a sender"),
        ),
        Check(
            e.ExpectColumnValuesToNotBeNull(column="dm_conversation_id"),
            _unexpected("DM events lack a conversation"),
        ),
        Check(
            e.ExpectColumnValuesToBeInSet(column="account", value_set=manifest.dm_accounts),
            _unexpected("DM events were read for an account the manifest does not list"),
        ),
        Check(
            e.ExpectColumnValuesToBeInSet(column="status", value_set=[200]),
            _unexpected("DM pages were not HTTP 200"),
        ),
        Check(
            e.ExpectColumnValuesToNotBeNull(column="created_at"),
            _unexpected("DM events have no readable created_at"),
        ),
    ]


def dm_frame(batch: Path, manifest: XManifest) -> pd.DataFrame:
    import pandas as pd

    columns = ["account", "status", "id", "event_type", "sender_id", "dm_conversation_id"]
    rows = [
        [page.account, page.status] + [event.get(c) for c in columns[2:]]
        + [event.get("created_at")]
        for page in x_pages(batch)
        for event in page.dm_events()
    ]  # fmt: skip
    data = pd.DataFrame(rows, columns=[*columns, "created_at"])
    stamps = pd.to_datetime(data["created_at"], utc=True, errors="coerce").dt.tz_localize(None)
    data["created_at"] = stamps
    data["in_interval"] = (
        (stamps >= _naive(manifest.start)) & (stamps < _naive(manifest.end))
    ).astype(int)
    return data


PRIVATE_METRIC_COLUMNS = [
    f"{group}__{key}"
    for group, keys in (
        ("non_public_metrics", ("impression_count", "url_link_clicks", "user_profile_clicks")),
        ("organic_metrics", ("impression_count", "like_count", "reply_count", "retweet_count",
                             "url_link_clicks", "user_profile_clicks")),
    )
    for key in keys
]  # fmt: skip


def metrics_checks(manifest: XManifest) -> list[Check]:
    """Every own post an X batch read with its private metrics (user context): a snapshot
    each, as many as the manifest counts, of the account's own posts, the metrics counts."""
    import great_expectations as gx

    e = gx.expectations
    n = manifest.metrics_snapshots
    return [
        Check(
            e.ExpectColumnSumToBeBetween(column="has_metrics", min_value=n, max_value=n),
            lambda r: (
                f"{_n(r.get('observed_value'))} private-metrics snapshots where the manifest"
                f" counts {_n(n)}: snapshots were lost or added after landing"
            ),
        ),
        Check(e.ExpectColumnValuesToNotBeNull(column="id"), _unexpected("own posts lack an id")),
        Check(
            e.ExpectColumnValuesToMatchRegex(column="id", regex=r"^[0-9]{1,19}$"),
            _unexpected("own post ids are not X ids (1-19 digits)"),
        ),
        Check(
            e.ExpectColumnValuesToBeInSet(column="is_own", value_set=[True]),
            _unexpected("posts of the private-metrics pages are not the account's own"),
        ),
        Check(
            e.ExpectColumnValuesToBeInSet(column="account", value_set=manifest.metrics_accounts),
            _unexpected("private metrics were read for an account the manifest does not list"),
        ),
        Check(
            e.ExpectColumnValuesToBeInSet(column="status", value_set=[200]),
            _unexpected("private-metrics pages were not HTTP 200"),
        ),
        Check(
            e.ExpectColumnValuesToNotBeNull(column="served_at"),
            _unexpected("private-metrics pages have no served_at (the snapshot's time)"),
        ),
        *(
            Check(
                e.ExpectColumnValuesToBeBetween(column=column, min_value=0),
                _unexpected(f"{column} is negative or not a count"),
            )
            for column in PRIVATE_METRIC_COLUMNS
        ),
    ]


def metrics_frame(batch: Path) -> pd.DataFrame:
    import pandas as pd

    user_ids: dict[str, str] = {}
    rows = []
    for page in x_pages(batch):
        if page.endpoint is Endpoint.USER and "data" in page.body:
            user_ids[page.account] = page.body["data"]["id"]
        if page.endpoint is not Endpoint.OWN_METRICS:
            continue
        for post in page.body.get("data", []):
            row = {
                "account": page.account,
                "status": page.status,
                "served_at": page.served_at,
                "id": post.get("id"),
                "is_own": post.get("author_id") == user_ids.get(page.account),
                "has_metrics": int("non_public_metrics" in post or "organic_metrics" in post),
            }
            for column in PRIVATE_METRIC_COLUMNS:
                group, key = column.split("__")
                value = (post.get(group) or {}).get(key)
                # a count or nothing: anything else fails the range check as -1
                row[column] = value if value is None or type(value) is int else -1
            rows.append(row)
    columns = ["account", "status", "served_at", "id", "is_own", "has_metrics"]
    frame = pd.DataFrame(rows, columns=columns + PRIVATE_METRIC_COLUMNS)
    for column in PRIVATE_METRIC_COLUMNS:
        frame[column] = frame[column].astype("Float64")
    frame["has_metrics"] = frame["has_metrics"].astype("int64")
    return frame


@dataclass(frozen=True)
class LineFacts:
    """What the support-site checks of a batch as a whole need, counted in one pass over
    its row groups (memory bounded by a row group, whatever the batch size)."""

    rows: int  # parsed lines
    quarantined: int
    methods: int  # rows with a method
    known_methods: int
    missing_is_bot: int
    first_request: datetime | None
    last_request: datetime | None
    status_min: int | None
    status_max: int | None
    bytes_min: int | None
    not_pseudonyms: int  # rows whose visitor id is not a PSEUDONYM (a client IP in clear?)

    @property
    def parsed_share(self) -> float:
        total = self.rows + self.quarantined
        return self.rows / total if total else 1.0

    @property
    def known_method_share(self) -> float:
        return self.known_methods / self.methods if self.methods else 1.0

    def values(self) -> dict[str, Any]:
        return self.__dict__ | {
            "rows_and_quarantined": self.rows + self.quarantined,
            "parsed_share": self.parsed_share,
            "known_method_share": self.known_method_share,
        }

    def frame(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame([self.values()])


def line_facts(batch: Path) -> LineFacts:
    """One pass over the batch's row groups (the ingest bounds their size), no read-ahead:
    measured on 1M lines, reading by row group was the fastest way and threads or
    prefetching only added memory. Methods and visitor ids come dictionary-encoded, so
    each distinct value of a row group is checked once."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    lines = pq.ParquetFile(
        batch / "lines.parquet", read_dictionary=["method", "visitor_id"], pre_buffer=False
    )
    columns = ["requested_at", "status", "bytes", "method", "visitor_id", "is_bot"]
    known_set = pa.array(HTTP_METHODS)
    counts = dict.fromkeys(["rows", "methods", "known_methods", "missing_is_bot"], 0)
    counts["not_pseudonyms"] = 0
    lows: dict[str, list] = {"requested_at": [], "status": [], "bytes": []}
    highs: dict[str, list] = {"requested_at": [], "status": []}

    def rows_where(column: Any, test: Callable[[Any], Any]) -> int:
        """Rows whose value passes `test`, run on each chunk's dictionary."""
        return sum(
            pc.sum(pc.take(test(c.dictionary), c.indices)).as_py() or 0 for c in column.chunks
        )

    for number in range(lines.metadata.num_row_groups):
        group = lines.read_row_group(number, columns=columns, use_threads=False)
        counts["rows"] += group.num_rows
        method = group.column("method")
        counts["methods"] += len(method) - method.null_count
        counts["known_methods"] += rows_where(method, lambda d: pc.is_in(d, value_set=known_set))
        counts["missing_is_bot"] += group.column("is_bot").null_count
        counts["not_pseudonyms"] += rows_where(
            group.column("visitor_id"), lambda d: pc.invert(pc.match_substring_regex(d, PSEUDONYM))
        )
        for name in lows:
            bounds = pc.min_max(group.column(name)).as_py()
            lows[name].append(bounds["min"])
            if name in highs:
                highs[name].append(bounds["max"])

    def low(name: str) -> Any:
        return min((v for v in lows[name] if v is not None), default=None)

    def high(name: str) -> Any:
        return max((v for v in highs[name] if v is not None), default=None)

    return LineFacts(
        **counts,
        quarantined=pq.ParquetFile(batch / "quarantine.parquet").metadata.num_rows,
        first_request=low("requested_at"),
        last_request=high("requested_at"),
        status_min=low("status"),
        status_max=high("status"),
        bytes_min=low("bytes"),
    )


def _unparsed_files(manifest: SupportSiteManifest, shown: int = 5) -> str:
    """The files of the batch whose lines mostly did not parse, with their counts."""
    bad = [
        f"{entry.path} ({_n(entry.quarantined)} of {_n(entry.lines_read)} lines)"
        for entry in manifest.files
        if entry.lines_read and entry.quarantined * 2 > entry.lines_read
    ]
    if not bad:
        return ""
    more = f" and {len(bad) - shown} more" if len(bad) > shown else ""
    return f"; files mostly unparsed: {', '.join(bad[:shown])}{more}"


def support_site_checks(manifest: SupportSiteManifest, facts: LineFacts) -> list[Check]:
    """The batch as a whole: aggregates counted once (`line_facts`), each checked by an
    expectation on them (every value is within bounds exactly when the smallest and the
    largest are)."""
    import great_expectations as gx

    e = gx.expectations
    start, end = _naive(manifest.start), _naive(manifest.end)
    rows, total = facts.rows + facts.quarantined, manifest.records + manifest.quarantined
    lines = manifest.lines_read - manifest.outside_interval

    def exactly(column: str, value: int) -> Any:
        return e.ExpectColumnValuesToBeBetween(column=column, min_value=value, max_value=value)

    return [
        Check(
            exactly("rows", manifest.records),
            lambda _: (
                f"{_n(facts.rows)} rows where the manifest counts {_n(manifest.records)}:"
                " rows were lost or added after landing"
            ),
        ),
        Check(
            exactly("quarantined", manifest.quarantined),
            lambda _: (
                f"{_n(facts.quarantined)} quarantined lines where the manifest counts"
                f" {_n(manifest.quarantined)}"
            ),
        ),
        # every line read is a row, quarantined, or in another interval: nothing is lost
        Check(
            exactly("rows_and_quarantined", lines),
            lambda _: (
                f"{_n(rows)} rows and quarantined lines for {_n(lines)} lines of the"
                f" interval (the manifest's own counts: {_n(total)}): lines were lost"
            ),
        ),
        # A batch that is mostly unparseable means a wrong log format, not a few bad lines.
        Check(
            e.ExpectColumnValuesToBeBetween(column="parsed_share", min_value=MIN_PARSED_SHARE),
            lambda _: (
                f"{_n(facts.rows)} of {_n(rows)} lines parsed ({facts.parsed_share:.1%}):"
                f" the log does not match SUPPORT_SITE_LOG_FORMAT={manifest.format}"
                + _unparsed_files(manifest)
            ),
        ),
        Check(
            e.ExpectColumnValuesToBeBetween(
                column="known_method_share", min_value=MIN_KNOWN_METHOD_SHARE
            ),
            lambda _: (
                f"{_n(facts.methods - facts.known_methods)} of {_n(facts.methods)}"
                f" requests have an unknown HTTP method (at most {1 - MIN_KNOWN_METHOD_SHARE:.0%})"
            ),
        ),
        Check(
            exactly("missing_is_bot", 0),
            lambda _: f"{_n(facts.missing_is_bot)} rows lack is_bot",
        ),
        Check(
            e.ExpectColumnValuesToBeBetween(column="first_request", min_value=start),
            lambda _: (
                f"a request is dated {facts.first_request}, before the interval's start {start}"
            ),
        ),
        Check(
            e.ExpectColumnValuesToBeBetween(column="last_request", max_value=end, strict_max=True),
            lambda _: (
                f"a request is dated {facts.last_request}, at or after the interval's end {end}"
            ),
        ),
        Check(
            e.ExpectColumnValuesToBeBetween(column="status_min", min_value=100),
            lambda _: f"an HTTP status is under 100: {facts.status_min}",
        ),
        Check(
            e.ExpectColumnValuesToBeBetween(column="status_max", max_value=599),
            lambda _: f"an HTTP status is over 599: {facts.status_max}",
        ),
        Check(
            e.ExpectColumnValuesToBeBetween(column="bytes_min", min_value=0),
            lambda _: f"a response size is negative: {facts.bytes_min}",
        ),
        # client IPs land only as keyed pseudonyms
        Check(
            exactly("not_pseudonyms", 0),
            lambda _: (
                f"{_n(facts.not_pseudonyms)} of {_n(facts.rows)} rows have a visitor id that is"
                " not a 32-hex pseudonym (a client IP in clear?)"
            ),
        ),
    ]


def x_frame(batch: Path) -> pd.DataFrame:
    import pandas as pd

    rows = [
        {
            "account": page.account,
            "endpoint": page.endpoint.value,
            "status": page.status,
            "id": post.get("id"),
            "text": post.get("text"),
            "author_id": post.get("author_id"),
            "created_at": post.get("created_at"),
        }
        for page in x_pages(batch)
        for post in page.timeline_posts()
    ]
    columns = ["account", "endpoint", "status", "id", "text", "author_id", "created_at"]
    data = pd.DataFrame(rows, columns=columns)
    data["created_at"] = pd.to_datetime(
        data["created_at"], utc=True, errors="coerce"
    ).dt.tz_localize(None)
    return data


@dataclass(frozen=True)
class Validation:
    report: dict  # JSON-able: the batch, its failures in plain words, GE's results
    failures: list[Failure]  # none when the batch passes
    result: Any  # Great Expectations' ExpectationSuiteValidationResult

    def data_docs(self) -> str:
        """Great Expectations' Data Docs page of this validation, as HTML."""
        from great_expectations.render.renderer import ValidationResultsPageRenderer
        from great_expectations.render.view import DefaultJinjaPageView

        return DefaultJinjaPageView().render(ValidationResultsPageRenderer().render(self.result))


def _run(
    name: str, checks: list[Check], frame: pd.DataFrame, result_format: str = "SUMMARY"
) -> tuple[Any, list[Failure]]:
    """Validate `frame` against the checks' suite in an ephemeral Great Expectations
    context; returns GE's result and the failures, each said in plain words."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    for name in GX_LOUD_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch = (
        context.data_sources.add_pandas(name)
        .add_dataframe_asset(name)
        .add_batch_definition_whole_dataframe(name)
        .get_batch(batch_parameters={"dataframe": frame})
    )
    # results do not come in the suite's order: each expectation carries its check's number
    expectations = [c.expectation.copy(update={"meta": {"check": i}}) for i, c in enumerate(checks)]
    suite = gx.ExpectationSuite(name=name, expectations=expectations)
    result = batch.validate(suite, result_format=result_format)
    failed = {}
    for outcome in result.results:
        if not outcome.success:
            config = outcome.expectation_config
            number = config.meta["check"]
            reason = checks[number].says(json.loads(json.dumps(outcome.result, default=str)))
            failed[number] = Failure(_describe(config.type, config.kwargs.get("column")), reason)
    return result, [failed[number] for number in sorted(failed)]  # in the suite's order


def _describe(kind: str, column: str | None) -> str:
    return f"{kind}({column})" if column else kind


def _log_verdicts(batch: str, checks: list[Check], result: Any, failures: list[Failure]) -> None:
    """A line per check at INFO, in the suite's order: the expectation and its verdict
    (failed: with the reason in words)."""
    reasons = {failure.check: failure.reason for failure in failures}
    outcomes = sorted(result.results, key=lambda o: o.expectation_config.meta["check"])
    for outcome in outcomes:
        config = outcome.expectation_config
        check = _describe(config.type, config.kwargs.get("column"))
        if outcome.success:
            log.info("%s: %s: passed", batch, check)
        else:
            log.info("%s: %s: FAILED: %s", batch, check, reasons.get(check, "see the report"))
    log.info("%s: %d of %d checks passed", batch, len(outcomes) - len(failures), len(checks))


def trailing_volumes(batch: Path, count: int = TRAILING_BATCHES) -> list[int]:
    """Records of the source's latest `count` batches in force (`raw/<source>/`) whose
    intervals end before this one starts; `batch` is one of them or a version under
    versions/ (a candidate). Batches are chosen by their directory names (their intervals),
    so only those `count` manifests are read: the cost does not grow with the history kept."""
    start = Interval.from_batch_id(read_manifest(batch).batch).start
    siblings = source_root(batch)
    earlier = sorted(
        (interval.end, other)
        for other in (siblings.iterdir() if siblings.is_dir() else [])
        if not other.name.startswith(".")
        and (other / MANIFEST).is_file()
        and (interval := Interval.from_batch_id(other.name)).end <= start
    )
    return [read_manifest(other).records for _, other in earlier[-count:]]


def validate(
    batch: Path,
    min_volume_share: float = 0.0,
    allow_empty: bool = False,
    accept_partial: bool = False,
) -> Validation:
    """Run the source's suite on the batch. An empty batch is refused unless `allow_empty`
    (then the volume check is not the one to say so), a partial one unless `accept_partial`."""
    manifest = read_manifest(batch)
    source = manifest.source
    empty = [] if allow_empty else _empty(source, manifest)
    if empty and is_empty(manifest):
        min_volume_share = 0.0  # one reason: the batch is empty
    trailing = trailing_volumes(batch) if min_volume_share > 0 else []
    volume = empty + _volume(source, manifest, trailing, min_volume_share)
    report: dict[str, Any] = {
        "batch": manifest.batch,
        "source": source.value,
        "version": manifest.version,
    }
    if isinstance(manifest, XManifest):
        name, checks = "posts", x_checks(manifest) + volume
        result, failures = _run(f"{source}_{name}", checks, x_frame(batch))
        if manifest.dm_accounts:  # the DM events: a suite of their own, in the same report
            dm = dm_checks(manifest)
            dm_result, dm_failures = _run(f"{source}_dm_events", dm, dm_frame(batch, manifest))
            _log_verdicts(f"{source} batch {manifest.batch} DM events", dm, dm_result, dm_failures)
            failures += dm_failures
            report["dm_events"] = json.loads(json.dumps(dm_result.describe_dict(), default=str))
        if manifest.metrics_accounts:  # the private metrics: a suite of their own too
            pm = metrics_checks(manifest)
            pm_result, pm_failures = _run(f"{source}_private_metrics", pm, metrics_frame(batch))
            _log_verdicts(
                f"{source} batch {manifest.batch} private metrics", pm, pm_result, pm_failures
            )
            failures += pm_failures
            report["private_metrics"] = json.loads(
                json.dumps(pm_result.describe_dict(), default=str)
            )
    else:
        name, facts = "lines", line_facts(batch)
        checks = support_site_checks(manifest, facts) + volume
        checks += [] if accept_partial else _partial(manifest)
        frame = facts.frame().assign(damaged_files=len(manifest.damaged_files))
        result, failures = _run(f"{source}_{name}", checks, frame, "BOOLEAN_ONLY")
        if failures:  # again, for the observed values in the report and the Data Docs
            result, failures = _run(f"{source}_{name}", checks, frame)
        report["facts"] = json.loads(json.dumps(facts.values(), default=str))
        if manifest.is_partial:
            report["damaged_files"] = [e.model_dump(mode="json") for e in manifest.damaged_files]
    _log_verdicts(f"{source} batch {manifest.batch}", checks, result, failures)
    report |= {
        "success": not failures,
        "failed": [f.__dict__ for f in failures],
        "suites": {name: json.loads(json.dumps(result.describe_dict(), default=str))},
    }
    return Validation(report, failures, result)


def gate(
    batch: Path, quarantine_root: Path, reports_root: Path | None = None,
    min_volume_share: float = 0.0, allow_empty: bool = False, accept_partial: bool = False,
    keep: bool = False,
) -> dict:  # fmt: skip
    """Validate; keep the report; on failure quarantine the batch with its report and
    raise BatchRejected. `keep`: a refused batch stays where it is (the version in force, or
    a superseded one, validated again: InForceRejected)."""
    manifest = read_manifest(batch)
    validation = None
    try:
        validation = validate(batch, min_volume_share, allow_empty, accept_partial)
        report, failures = validation.report, validation.failures
    except (ValueError, KeyError, OSError, json.JSONDecodeError) as exc:
        reason = f"unreadable batch: {type(exc).__name__}: {exc}"
        report, failures = {"success": False, "error": reason}, [Failure("readable", reason)]
    text = json.dumps(report, indent=2, sort_keys=True) + "\n"
    if reports_root is not None:
        kept = reports_root / manifest.source / f"{manifest.batch}.json"
        kept.parent.mkdir(parents=True, exist_ok=True)
        kept.write_text(text)
    if not failures:
        return report
    if keep:
        raise InForceRejected(manifest.source, manifest.batch, failures, batch)
    target = quarantine_root / manifest.source / manifest.batch
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(batch, target)
    (target / REPORT).write_text(text)
    if validation is not None:
        (target / DATA_DOCS).write_text(validation.data_docs())
    raise BatchRejected(manifest.source, manifest.batch, failures, target)
