"""Quality gate: Great Expectations validates a landed batch before it is loaded.

Each source's suites are code (`suites`). A support-site batch is validated in two parts, so
the gate keeps up with the extraction and its memory does not grow with the batch:

- the batch as a whole (its row counts, the share of lines parsed, the share of known HTTP
  methods, its volume against the trailing batches of the source), on a frame of two narrow
  columns of every line;
- its rows, one row group of `ROWS_AT_A_TIME` at a time, with the bounds of each column
  checked as column minima and maxima (every value is within bounds exactly when the
  smallest and the largest are) and visitor ids by pattern.

A batch whose every part passes goes on to the loader, its report kept under
`data/validations/`; a failing one is moved whole to the quarantine directory with its
report, and the refusal says in plain words which checks failed, with their numbers.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from statistics import median
from typing import TYPE_CHECKING, Any

from engagement.landing import (
    MANIFEST,
    Manifest,
    Source,
    SupportSiteManifest,
    XManifest,
    read_manifest,
    x_pages,
)

if TYPE_CHECKING:
    import pandas as pd

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

HTTP_METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE"]
MIN_PARSED_SHARE = 0.95
MIN_KNOWN_METHOD_SHARE = 0.99
ROWS_AT_A_TIME = 131_072  # measured on 1M rows: 262,144 as fast, +40 MiB; 1M slower, +130 MiB
TRAILING_BATCHES = 7


class BatchRejected(Exception):
    """A batch failed its expectations and was quarantined."""

    def __init__(
        self, source: str, batch: str, failed: list[Failure], quarantined_at: Path
    ) -> None:
        self.failed = [failure.check for failure in failed]
        self.reasons = [failure.reason for failure in failed]
        self.quarantined_at = quarantined_at
        super().__init__(
            f"{source} batch {batch} failed {len(failed)} check(s): {'; '.join(self.reasons)}."
            f" Quarantined at {quarantined_at}"
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


def _observed(what: str) -> Callable[[dict], str]:
    return lambda result: f"{what}: {_n(result.get('observed_value'))}"


def _naive(value: datetime) -> pd.Timestamp:
    import pandas as pd

    return pd.Timestamp(value).tz_localize(None)


def _volume(source: Source, manifest: Manifest, trailing: list[int], share: float) -> list:
    """A batch with less than `share` of the trailing batches' median is an outage, not a
    quiet day (nothing to compare with: no check)."""
    if not trailing or share <= 0:
        return []
    import great_expectations as gx

    floor = int(share * median(trailing))
    return [
        Check(
            gx.expectations.ExpectColumnMinToBeBetween(column="records", min_value=floor),
            lambda r: (
                f"{_n(manifest.records)} records, under {share:.0%} of the median of the"
                f" last {len(trailing)} {source} batches ({_n(int(median(trailing)))}): an outage"
                " upstream? (a real quiet day: --allow-empty, or ENGAGEMENT_MIN_VOLUME_SHARE=0)"
            ),
        )
    ]


def suites(
    source: Source, manifest: Manifest, expected_rows: int
) -> tuple[list[Check], list[Check]]:
    """The checks of the batch as a whole, and those of its rows."""
    import great_expectations as gx

    e = gx.expectations
    start, end = _naive(manifest.start), _naive(manifest.end)
    rows = Check(
        e.ExpectTableRowCountToEqual(value=expected_rows),
        lambda r: (
            f"{_n(r.get('observed_value'))} rows where the manifest counts"
            f" {_n(expected_rows)}: rows were lost or added after landing"
        ),
    )
    if source is Source.X:
        return [rows], [
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
                e.ExpectColumnValuesToBeInSet(column="endpoint", value_set=["tweets", "mentions"]),
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
    assert isinstance(manifest, SupportSiteManifest)
    lines = manifest.lines_read - manifest.outside_interval
    parsed = manifest.records / expected_rows if expected_rows else 1.0
    batch = [
        rows,
        # every line read is a row, quarantined, or in another interval: nothing is lost
        Check(  # a second row-count expectation: Great Expectations keeps one per type
            e.ExpectTableRowCountToBeBetween(min_value=lines, max_value=lines),
            lambda r: (
                f"{_n(r.get('observed_value'))} rows for {_n(lines)} lines of the"
                " interval: lines were lost"
            ),
        ),
        # A batch that is mostly unparseable means a wrong log format, not a few bad lines.
        Check(
            e.ExpectColumnValuesToBeInSet(
                column="parsed", value_set=[True], mostly=MIN_PARSED_SHARE
            ),
            lambda r: (
                f"{_n(manifest.records)} of {_n(expected_rows)} lines parsed"
                f" ({parsed:.1%}): the log does not match SUPPORT_SITE_LOG_FORMAT="
                f"{manifest.format}"
            ),
        ),
        Check(
            e.ExpectColumnValuesToBeInSet(
                column="method", value_set=HTTP_METHODS, mostly=MIN_KNOWN_METHOD_SHARE
            ),
            _unexpected(f"requests have an unknown HTTP method (at most {1 - 0.99:.0%})"),
        ),
    ]
    row = [
        # client IPs land only as keyed pseudonyms
        Check(
            e.ExpectColumnValuesToMatchRegex(column="visitor_id", regex=r"^[0-9a-f]{32}$"),
            _unexpected("visitor ids are not 32-hex pseudonyms (a client IP in clear?)"),
        ),
        Check(
            e.ExpectColumnValuesToBeInSet(column="is_bot", value_set=[True, False]),
            _unexpected("rows lack is_bot"),
        ),
        Check(
            e.ExpectColumnMinToBeBetween(column="requested_at", min_value=start),
            _observed(f"a request is dated before the interval's start {start}"),
        ),
        Check(
            e.ExpectColumnMaxToBeBetween(column="requested_at", max_value=end, strict_max=True),
            _observed(f"a request is dated at or after the interval's end {end}"),
        ),
        Check(
            e.ExpectColumnMinToBeBetween(column="status", min_value=100),
            _observed("an HTTP status is under 100"),
        ),
        Check(
            e.ExpectColumnMaxToBeBetween(column="status", max_value=599),
            _observed("an HTTP status is over 599"),
        ),
        Check(
            e.ExpectColumnMinToBeBetween(column="bytes", min_value=0),
            _observed("a response size is negative"),
        ),
    ]
    return batch, row


def x_frame(batch: Path) -> pd.DataFrame:
    import pandas as pd

    rows = [
        {
            "account": page.account,
            "endpoint": page.endpoint,
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


def support_site_lines(batch: Path) -> pd.DataFrame:
    """Every line of the batch, parsed or quarantined, as two narrow columns."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    method = pq.read_table(batch / "lines.parquet", columns=["method"]).column(0)
    quarantined = pq.ParquetFile(batch / "quarantine.parquet").metadata.num_rows
    methods = pa.chunked_array([*method.chunks, pa.nulls(quarantined, method.type)])
    parsed = np.concatenate([np.ones(len(method), bool), np.zeros(quarantined, bool)])
    return pd.DataFrame({"parsed": parsed, "method": methods.to_pandas()})


SUPPORT_SITE_ROW_COLUMNS = ["requested_at", "status", "bytes", "visitor_id", "is_bot"]


def support_site_row_groups(batch: Path) -> Iterator[pd.DataFrame]:
    import pyarrow.parquet as pq

    lines = pq.ParquetFile(batch / "lines.parquet")
    for group in lines.iter_batches(ROWS_AT_A_TIME, columns=SUPPORT_SITE_ROW_COLUMNS):
        yield group.to_pandas()


class _Runner:
    """One ephemeral Great Expectations context: a suite validated on any number of frames."""

    def __init__(self, name: str, checks: list[Check]) -> None:
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        definition = (
            context.data_sources.add_pandas(name)
            .add_dataframe_asset(name)
            .add_batch_definition_whole_dataframe(name)
        )
        suite = context.suites.add(gx.ExpectationSuite(name=name))
        for check in checks:
            suite.add_expectation(check.expectation)
        self.checks = checks
        self.validation = context.validation_definitions.add(
            gx.ValidationDefinition(name=name, data=definition, suite=suite)
        )

    def run(self, frame: pd.DataFrame) -> tuple[dict, list[Failure]]:
        result = self.validation.run(batch_parameters={"dataframe": frame})
        says = {str(check.expectation.id): check.says for check in self.checks}
        failures = []
        for outcome in result.results:
            if not outcome.success:
                config = outcome.expectation_config
                check = _describe(config.type, config.kwargs.get("column"))
                reason = says[str(config.id)](json.loads(json.dumps(outcome.result, default=str)))
                failures.append(Failure(check, reason))
        return json.loads(json.dumps(result.describe_dict(), default=str)), failures


def _describe(kind: str, column: str | None) -> str:
    return f"{kind}({column})" if column else kind


def trailing_volumes(batch: Path, count: int = TRAILING_BATCHES) -> list[int]:
    """Records of the source's landed batches whose intervals end before this one starts,
    the latest `count` of them."""
    manifest = read_manifest(batch)
    earlier = []
    for other in batch.parent.iterdir():
        path = other / MANIFEST
        if other == batch or other.name.startswith(".") or not path.is_file():
            continue
        landed = read_manifest(other)
        if landed.end <= manifest.start:
            earlier.append((landed.end, landed.records))
    return [records for _, records in sorted(earlier)[-count:]]


def validate(batch: Path, min_volume_share: float = 0.0) -> tuple[dict, list[Failure]]:
    """Run the source's suites on the batch; returns the JSON-able report and the failures
    (none when it passes)."""
    import pandas as pd

    manifest = read_manifest(batch)
    source = Source.parse(manifest.source)
    trailing = trailing_volumes(batch) if min_volume_share > 0 else []
    if source is Source.X:
        assert isinstance(manifest, XManifest)
        expected = manifest.records
    else:
        assert isinstance(manifest, SupportSiteManifest)
        expected = manifest.records + manifest.quarantined
    whole, rows = suites(source, manifest, expected)
    volume = _volume(source, manifest, trailing, min_volume_share)
    reports: dict[str, Any] = {}
    failures: list[Failure] = []
    if volume:
        reports["volume"], failed = _Runner(f"{source}_volume", volume).run(
            pd.DataFrame({"records": [manifest.records]})
        )
        failures += failed
    if source is Source.X:
        frame = x_frame(batch)
        reports["batch"], failed = _Runner(f"{source}_batch", whole + rows).run(frame)
        failures += failed
    else:
        reports["batch"], failed = _Runner(f"{source}_batch", whole).run(support_site_lines(batch))
        failures += failed
        runner, groups, failed_groups = _Runner(f"{source}_rows", rows), 0, []
        seen: set[str] = set()
        for frame in support_site_row_groups(batch):
            report, failed = runner.run(frame)
            groups += 1
            if failed:
                failed_groups.append(report)
                failures += [f for f in failed if f.check not in seen]
                seen |= {f.check for f in failed}
        reports["row_groups"] = {"validated": groups, "failed": failed_groups}
    report = {
        "success": not failures,
        "batch": manifest.batch,
        "source": source.value,
        "failed": [f.__dict__ for f in failures],
        "suites": reports,
    }
    return report, failures


def gate(
    batch: Path, quarantine_root: Path, reports_root: Path | None = None,
    min_volume_share: float = 0.0,
) -> dict:  # fmt: skip
    """Validate; keep the report; on failure quarantine the batch with its report and
    raise BatchRejected."""
    manifest = read_manifest(batch)
    try:
        report, failures = validate(batch, min_volume_share)
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
    target = quarantine_root / manifest.source / manifest.batch
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(batch, target)
    (target / "validation.json").write_text(text)
    raise BatchRejected(manifest.source, manifest.batch, failures, target)
