"""Raw batches: one immutable directory per source and data interval.

A batch is written into a temporary sibling directory and renamed into place, so a reader
sees either the whole previous batch or the whole new one. Re-running an interval replaces
its batch.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
)

from engagement.errors import DataRefused, UsageError

MANIFEST = "manifest.json"


class NoBatch(UsageError, FileNotFoundError):
    """No batch where one was expected: the message says which and what lands it."""


class ManifestError(DataRefused, ValueError):
    """A batch's manifest is unreadable or invalid: the batch cannot be trusted."""


class Source(StrEnum):
    """The product's sources. A batch directory, a manifest and the loader name them."""

    X = "x"
    SUPPORT_SITE = "support_site"

    @classmethod
    def parse(cls, name: str) -> Source:
        """The source named `name` (a CLI's `support-site` too); an unknown name is an error."""
        try:
            return cls(name.replace("-", "_"))
        except ValueError:
            known = ", ".join(source.value for source in cls)
            raise ValueError(f"unknown source {name!r}: expected one of {known}") from None


BATCH_ID_TIME = "%Y%m%dT%H%M%SZ"


def parse_instant(text: str) -> datetime:
    """An ISO date or date-time; naive values are UTC. Returns an aware UTC datetime."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Interval:
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("interval bounds must be timezone-aware")
        if not self.start < self.end:
            raise ValueError(
                f"empty interval: start {iso(self.start)} is not before end {iso(self.end)}"
            )

    @classmethod
    def parse(cls, start: str, end: str) -> Interval:
        return cls(parse_instant(start), parse_instant(end))

    @property
    def batch_id(self) -> str:
        return f"{self.start:{BATCH_ID_TIME}}_{self.end:{BATCH_ID_TIME}}"

    @classmethod
    def from_batch_id(cls, batch_id: str) -> Interval:
        start, end = (
            datetime.strptime(t, BATCH_ID_TIME).replace(tzinfo=UTC) for t in batch_id.split("_")
        )
        return cls(start, end)

    def contains(self, instant: datetime) -> bool:
        return self.start <= instant < self.end


@dataclass(frozen=True)
class Page:
    """One API response of an X batch: a line of its pages.jsonl, the body parsed."""

    account: str
    endpoint: str  # user, tweets, mentions or lookup
    status: int | None
    body: dict

    def timeline_posts(self) -> list[dict]:
        """The posts of an account's timeline or mentions page (none for other pages)."""
        return self.body.get("data", []) if self.endpoint in ("tweets", "mentions") else []


def x_pages(batch: Path) -> Iterator[Page]:
    """The pages of an X batch, in the order they were read: the gate and the loader both
    read a batch through this."""
    with open(batch / "pages.jsonl") as pages:
        for line in pages:
            page = json.loads(line)
            body = json.loads(page["body"])
            yield Page(page["account"], page["endpoint"], page.get("status"), body)


def batch_dir(root: Path, source: Source, interval: Interval) -> Path:
    return root / Source.parse(source) / interval.batch_id


@contextmanager
def landing(root: Path, source: str, interval: Interval) -> Iterator[Path]:
    """Yield an empty work directory; on success it atomically becomes the interval's batch."""
    final = batch_dir(root, source, interval)
    final.parent.mkdir(parents=True, exist_ok=True)
    work = final.parent / f".{final.name}.{uuid.uuid4().hex}.tmp"
    work.mkdir()
    try:
        yield work
        old = None
        if final.exists():
            old = final.parent / f".{final.name}.{uuid.uuid4().hex}.old"
            os.rename(final, old)
        os.rename(work, final)
        if old is not None:
            shutil.rmtree(old)
    finally:
        if work.exists():
            shutil.rmtree(work)


Instant = Annotated[
    datetime,
    BeforeValidator(lambda value: parse_instant(value) if isinstance(value, str) else value),
    PlainSerializer(iso, return_type=str),
]


class Batch(BaseModel):
    """A batch, its interval and its row counts (records landed, lines or pages
    quarantined): what every manifest says and every extraction summary repeats."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    batch: str
    source: Source
    start: Instant
    end: Instant
    records: int = Field(ge=0)
    quarantined: int = Field(ge=0)


class Manifest(Batch):
    """What every batch's manifest.json says; each source's model adds its own fields."""


class XManifest(Manifest):
    source: Literal[Source.X] = Source.X
    accounts: list[str] = []
    pages: int = 0
    metrics_refreshed: int = 0
    deleted: int = 0
    refresh_window_start: Instant | None = None
    gaps: list[dict] = []  # reaches the API refused to serve (see extract/x.py)


class SupportSiteManifest(Manifest):
    source: Literal[Source.SUPPORT_SITE] = Source.SUPPORT_SITE
    format: str
    lines_read: int = Field(ge=0)
    outside_interval: int = Field(ge=0)
    files: list[dict]  # per log file: its identity, offsets and line counts


MANIFESTS: dict[Source, type[Manifest]] = {
    Source.X: XManifest,
    Source.SUPPORT_SITE: SupportSiteManifest,
}


def write_manifest(directory: Path, manifest: Manifest) -> None:
    text = json.dumps(manifest.model_dump(mode="json"), indent=2, sort_keys=True)
    (directory / MANIFEST).write_text(text + "\n")


def read_manifest(directory: Path) -> XManifest | SupportSiteManifest:
    """The batch's manifest, validated: a batch of an unknown source, or whose manifest
    lacks a count or has one of the wrong type, is refused with one line saying so."""
    path = directory / MANIFEST
    if not path.is_file():
        raise NoBatch(
            f"no batch at {directory} (missing {MANIFEST}): engagement extract the interval"
            " first (or check ENGAGEMENT_DATA_DIR)"
        )
    data = json.loads(path.read_text())
    model = MANIFESTS[Source.parse(str(data.get("source")))]
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise ManifestError(f"{path}: {where}: {error['msg']}") from None


class BatchSummary(Batch):
    """What an extraction returns and prints last (one JSON line): the batch it landed, its
    interval, its counts and where it is. `BatchSummary.model_validate_json(line)` reads
    one back, validated."""

    path: Path
    warnings: list[str] = []  # data lost inside a file (a damaged gzip): the lines after it


def summary(manifest: Manifest, path: Path) -> BatchSummary:
    warnings = [
        f"{entry['path']}: {entry['read_error']}"
        for entry in getattr(manifest, "files", [])
        if entry.get("read_error")
    ]
    fields = manifest.model_dump(include=set(Batch.model_fields))
    return BatchSummary(**fields, path=path, warnings=warnings)
