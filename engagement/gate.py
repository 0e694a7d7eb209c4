"""Quality gate: Great Expectations validates a landed batch, as a DataFrame, before loading.

A failing batch is moved to the quarantine directory with its validation report, so nothing
of it can be loaded.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from engagement.landing import (
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


class BatchRejected(Exception):
    """A batch failed its expectations and was quarantined."""

    def __init__(self, source: str, batch: str, failed: list[str], quarantined_at: Path) -> None:
        self.failed = failed
        self.quarantined_at = quarantined_at
        super().__init__(
            f"{source} batch {batch} failed {len(failed)} expectation(s): {', '.join(failed)}; "
            f"quarantined at {quarantined_at}"
        )


@dataclass(frozen=True)
class Frame:
    data: pd.DataFrame
    expected_rows: int


def x_frame(batch: Path, manifest: XManifest) -> Frame:
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
    return Frame(data, manifest.records)


SUPPORT_SITE_COLUMNS = [
    "line_no", "requested_at", "status", "bytes", "method", "visitor_id", "is_bot"
]  # fmt: skip


def support_site_frame(batch: Path, manifest: SupportSiteManifest) -> Frame:
    import pandas as pd

    rows = pd.read_parquet(batch / "lines.parquet", columns=SUPPORT_SITE_COLUMNS)
    rows["parsed"] = True
    quarantined = pd.read_parquet(batch / "quarantine.parquet", columns=["source_file", "line_no"])
    quarantined["parsed"] = False
    data = pd.concat([rows, quarantined], ignore_index=True) if len(quarantined) else rows
    return Frame(data, manifest.records + manifest.quarantined)


def _naive(value: datetime) -> pd.Timestamp:
    import pandas as pd

    return pd.Timestamp(value).tz_localize(None)


def expectations(source: Source, manifest: Manifest, expected_rows: int) -> list:
    import great_expectations as gx

    e = gx.expectations
    start, end = _naive(manifest.start), _naive(manifest.end)
    common = [e.ExpectTableRowCountToEqual(value=expected_rows)]
    if source is Source.X:
        return common + [
            e.ExpectColumnValuesToNotBeNull(column="id"),
            e.ExpectColumnValuesToMatchRegex(column="id", regex=r"^[0-9]{1,19}$"),
            e.ExpectColumnValuesToNotBeNull(column="author_id"),
            e.ExpectColumnValuesToNotBeNull(column="text"),
            e.ExpectColumnValuesToBeInSet(column="endpoint", value_set=["tweets", "mentions"]),
            e.ExpectColumnValuesToBeInSet(column="status", value_set=[200]),
            e.ExpectColumnValuesToNotBeNull(column="created_at"),
            e.ExpectColumnValuesToBeBetween(
                column="created_at", min_value=start, max_value=end, strict_max=True
            ),
        ]
    return common + [
        # every line read is a row, quarantined, or in another interval: nothing is lost
        e.ExpectTableRowCountToEqual(value=manifest.lines_read - manifest.outside_interval),
        # client IPs land only as keyed pseudonyms
        e.ExpectColumnValuesToMatchRegex(column="visitor_id", regex=r"^[0-9a-f]{32}$"),
        e.ExpectColumnValuesToBeInSet(column="is_bot", value_set=[True, False]),
        # A batch that is mostly unparseable means a wrong log format, not a few bad lines.
        e.ExpectColumnValuesToBeInSet(column="parsed", value_set=[True], mostly=MIN_PARSED_SHARE),
        e.ExpectColumnValuesToBeBetween(
            column="requested_at", min_value=start, max_value=end, strict_max=True
        ),
        e.ExpectColumnValuesToBeBetween(column="status", min_value=100, max_value=599),
        e.ExpectColumnValuesToBeBetween(column="bytes", min_value=0),
        e.ExpectColumnValuesToBeInSet(column="method", value_set=HTTP_METHODS, mostly=0.99),
    ]


def _describe(expectation: dict) -> str:
    column = expectation.get("kwargs", {}).get("column")
    kind = expectation["expectation_type"]
    return f"{kind}({column})" if column else kind


def validate(batch: Path) -> dict:
    """Run the source's suite on the batch; returns the JSON-able validation report."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    manifest = read_manifest(batch)
    source = Source.parse(manifest.source)
    frame = {Source.X: x_frame, Source.SUPPORT_SITE: support_site_frame}[source](batch, manifest)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    definition = (
        context.data_sources.add_pandas("landed")
        .add_dataframe_asset(source)
        .add_batch_definition_whole_dataframe(manifest.batch)
    )
    suite = context.suites.add(gx.ExpectationSuite(name=f"{source}_batch"))
    for expectation in expectations(source, manifest, frame.expected_rows):
        suite.add_expectation(expectation)
    validation = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"{source}_{manifest.batch}", data=definition, suite=suite)
    )
    result = validation.run(batch_parameters={"dataframe": frame.data})
    return json.loads(json.dumps(result.describe_dict(), default=str))


def gate(batch: Path, quarantine_root: Path) -> dict:
    """Validate; on failure quarantine the batch with its report and raise BatchRejected."""
    manifest = read_manifest(batch)
    try:
        report = validate(batch)
    except (ValueError, KeyError, json.JSONDecodeError) as exc:
        report = {"success": False, "error": f"unreadable batch: {type(exc).__name__}: {exc}"}
    if report["success"]:
        return report
    failed = [_describe(r) for r in report.get("expectations", []) if not r["success"]]
    failed = failed or [report.get("error", "unknown")]
    target = quarantine_root / manifest.source / manifest.batch
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(batch, target)
    (target / "validation.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    raise BatchRejected(manifest.source, manifest.batch, failed, target)
