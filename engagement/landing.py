"""Raw batches: one immutable directory per source, data interval and extraction.

An extraction lands a new version of the interval's batch (a candidate) under
`versions/<source>/<batch_id>/<version_id>/` (version_id: the extraction's start, UTC,
`%Y%m%dT%H%M%S%fZ`, so versions sort by time), written into a hidden temporary directory
and renamed into place: a reader sees a whole version or none. `raw/<source>/<batch_id>`
is a relative symlink to the version in force; only a version that passed the gate becomes
it (`promote`: a symlink at a temporary name renamed over the old one, atomically), so a
refused re-extraction never touches the batch in force. `versions/<source>/<batch_id>/`
also keeps `promotions.jsonl`, a line per promotion (the version, when): what tells a
superseded version from a candidate, and when it was superseded (`prune` removes the
superseded versions past their retention). A real directory at `raw/<source>/<batch_id>`
(landed before versions) is the version in force; its first promotion moves it into
versions/ first.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SerializerFunctionWrapHandler,
    StrictInt,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    model_serializer,
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


class Endpoint(StrEnum):
    """The X API v2 endpoints an extraction reads, as its pages (pages.jsonl), its gaps and
    the raw tables name them. `<endpoint>_newer` names a timeline page newer than the
    interval, read only to count what it takes of the API's reach (see extract/x.py)."""

    USER = "user"
    TWEETS = "tweets"
    MENTIONS = "mentions"
    LOOKUP = "lookup"
    TWEETS_NEWER = "tweets_newer"
    MENTIONS_NEWER = "mentions_newer"
    DM_EVENTS = "dm_events"  # an authorised account's DM events (user context)
    DM_EVENTS_NEWER = "dm_events_newer"
    # an authorised account's own posts of X's last 30 days, with their private metrics
    # (user context: non_public_metrics, organic_metrics)
    OWN_METRICS = "own_metrics"
    USAGE = "usage"  # X's count of the posts read (x-usage compares it; never landed)

    @property
    def requested(self) -> Endpoint:
        """The endpoint the page was read from (`tweets` for `tweets_newer`)."""
        return Endpoint(self.removesuffix("_newer"))

    @property
    def newer(self) -> Endpoint:
        return Endpoint(f"{self.requested}_newer")

    @property
    def path(self) -> str:
        """The API path it requests (`:name` a path parameter)."""
        return ENDPOINT_PATHS[self.requested]

    @property
    def request(self) -> str:
        """The request as errors and logs name it: `GET /2/users/:id/mentions`."""
        return f"GET {self.path}"

    @property
    def is_timeline(self) -> bool:
        """A page of an account's own posts or mentions in the interval."""
        return self in (Endpoint.TWEETS, Endpoint.MENTIONS)


ENDPOINT_PATHS = {
    Endpoint.USER: "/2/users/by/username/:username",
    Endpoint.TWEETS: "/2/users/:id/tweets",
    Endpoint.MENTIONS: "/2/users/:id/mentions",
    Endpoint.LOOKUP: "/2/tweets",
    Endpoint.DM_EVENTS: "/2/dm_events",
    Endpoint.OWN_METRICS: "/2/users/:id/tweets",
    Endpoint.USAGE: "/2/usage/tweets",
}


BATCH_ID_TIME = "%Y%m%dT%H%M%SZ"


def parse_instant(text: str) -> datetime:
    """An ISO date or date-time; naive values are UTC. Returns an aware UTC datetime."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


Instant = Annotated[
    datetime,
    BeforeValidator(lambda value: parse_instant(value) if isinstance(value, str) else value),
    PlainSerializer(iso, return_type=str),
]


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
    endpoint: Endpoint
    status: int | None
    body: dict
    served_at: str | None = None  # the API's Date header (own_metrics pages keep it)

    def timeline_posts(self) -> list[dict]:
        """The posts of an account's timeline or mentions page (none for other pages)."""
        return self.body.get("data", []) if self.endpoint.is_timeline else []

    def dm_events(self) -> list[dict]:
        """The DM events of a dm_events page: every one, the interval's and newer ones."""
        return self.body.get("data", []) if self.endpoint is Endpoint.DM_EVENTS else []

    def private_metrics(self) -> list[dict]:
        """The posts of an own_metrics page that carry private metrics: a snapshot each (a
        post X served without them, a retweet say, is none)."""
        if self.endpoint is not Endpoint.OWN_METRICS:
            return []
        return [
            post
            for post in self.body.get("data", [])
            if "non_public_metrics" in post or "organic_metrics" in post
        ]


def x_pages(batch: Path) -> Iterator[Page]:
    """The pages of an X batch, in the order they were read: the gate and the loader both
    read a batch through this."""
    with open(batch / "pages.jsonl") as pages:
        for line in pages:
            page = json.loads(line)
            body = json.loads(page["body"])
            yield Page(
                page["account"],
                Endpoint(page["endpoint"]),
                page.get("status"),
                body,
                page.get("served_at"),
            )


def batch_dir(root: Path, source: Source, interval: Interval) -> Path:
    return root / source / interval.batch_id


VERSION_TIME = "%Y%m%dT%H%M%S%fZ"
PROMOTIONS = "promotions.jsonl"  # versions/<source>/<batch_id>/: a line per promotion


def versions_root(raw_root: Path) -> Path:
    """Where the versions of the batches under `raw_root` are: its sibling `versions/`."""
    return raw_root.parent / "versions"


def versions_dir(raw_root: Path, source: Source, interval: Interval) -> Path:
    return versions_root(raw_root) / source / interval.batch_id


def version_dir(raw_root: Path, source: Source, interval: Interval, version: str) -> Path:
    return versions_dir(raw_root, source, interval) / version


def new_version(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).astimezone(UTC).strftime(VERSION_TIME)


def version_time(version: str) -> datetime:
    return datetime.strptime(version, VERSION_TIME).replace(tzinfo=UTC)


def legacy_version(batch: Path) -> str:
    """The version id of a batch landed before versions: when its manifest was written."""
    stat = (batch / MANIFEST if (batch / MANIFEST).is_file() else batch).stat()
    return new_version(datetime.fromtimestamp(stat.st_mtime, UTC))


def source_root(batch: Path) -> Path:
    """The directory of the batches in force of `batch`'s source (`raw/<source>`), for a
    batch at `raw/<source>/<batch_id>` or a version at `versions/<source>/<batch_id>/<v>`."""
    if _is_batch_id(batch.name):
        return batch.parent
    return batch.parents[2].parent / "raw" / batch.parent.parent.name


def _is_batch_id(name: str) -> bool:
    try:
        Interval.from_batch_id(name)
    except ValueError:
        return False
    return True


def _is_version(name: str) -> bool:
    try:
        version_time(name)
    except ValueError:
        return False
    return True


def in_force(raw_root: Path, source: Source, interval: Interval) -> tuple[str, Path] | None:
    """The version in force of the interval's batch and its directory: the target of the
    raw symlink, or a real directory there (landed before versions); None when none is."""
    link = batch_dir(raw_root, source, interval)
    if link.is_symlink():
        version = Path(os.readlink(link)).name
        return version, versions_dir(raw_root, source, interval) / version
    if link.is_dir():
        return legacy_version(link), link
    return None


class Promotion(BaseModel):
    """A line of promotions.jsonl: a version made the one in force, and when."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str
    promoted_at: Instant  # written to the microsecond (iso_micro)


def _promotions(raw_root: Path, source: Source, interval: Interval) -> list[Promotion]:
    path = versions_dir(raw_root, source, interval) / PROMOTIONS
    if not path.is_file():
        return []
    lines = path.read_text().splitlines()
    return [Promotion.model_validate_json(line) for line in lines if line.strip()]


def promoted(raw_root: Path, source: Source, interval: Interval) -> set[str]:
    """The versions of the interval's batch that have been in force (since versions)."""
    return {p.version for p in _promotions(raw_root, source, interval)}


def _landed_versions(raw_root: Path, source: Source, interval: Interval) -> list[str]:
    directory = versions_dir(raw_root, source, interval)
    if not directory.is_dir():
        return []
    return sorted(
        p.name
        for p in directory.iterdir()
        if p.is_dir() and not p.is_symlink() and _is_version(p.name)
    )


def newest_candidate(raw_root: Path, source: Source, interval: Interval) -> Path | None:
    """The newest version landed after the one in force and never promoted: what the gate
    validates next (None: nothing new since the version in force)."""
    current = in_force(raw_root, source, interval)
    done = promoted(raw_root, source, interval)
    candidates = [
        v
        for v in _landed_versions(raw_root, source, interval)
        if (current is None or v > current[0]) and v not in done
    ]
    return version_dir(raw_root, source, interval, candidates[-1]) if candidates else None


def promote(raw_root: Path, version: Path, now: datetime | None = None) -> None:
    """Make `version` (a directory under versions/) the interval's batch in force: the raw
    symlink is written at a temporary name and renamed over the old one, atomically. A real
    directory in force (landed before versions) is first moved into versions/."""
    interval, source = (
        Interval.from_batch_id(version.parent.name),
        Source.parse(version.parent.parent.name),
    )
    link = batch_dir(raw_root, source, interval)
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_dir() and not link.is_symlink():  # landed before versions: keep it as one
        legacy = version.parent / legacy_version(link)
        os.rename(link, legacy)  # the batch is absent from raw/ until the replace below
    temporary = link.parent / f".{link.name}.{uuid.uuid4().hex}.link"
    os.symlink(os.path.relpath(version, link.parent), temporary)
    os.replace(temporary, link)
    line = {"version": version.name, "promoted_at": iso_micro(now or datetime.now(UTC))}
    with open(version.parent / PROMOTIONS, "a") as promotions:
        promotions.write(json.dumps(line) + "\n")


def iso_micro(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Version:
    """A version of a batch: when it was landed, promoted and superseded, and its records."""

    version: str
    path: Path
    status: Literal["in force", "superseded", "candidate"]
    landed_at: datetime
    promoted_at: datetime | None
    superseded_at: datetime | None
    records: int | None

    def as_dict(self) -> dict:
        def when(value: datetime | None) -> str | None:
            return None if value is None else iso(value)

        return {
            "version": self.version,
            "status": self.status,
            "landed_at": when(self.landed_at),
            "promoted_at": when(self.promoted_at),
            "superseded_at": when(self.superseded_at),
            "records": self.records,
            "path": str(self.path),
        }


def versions(raw_root: Path, source: Source, interval: Interval) -> list[Version]:
    """Every version of the interval's batch, oldest first: the one in force, the ones it
    superseded (each superseded by the first promotion after it was last in force, or after
    it landed) and the candidates (landed after it, never promoted)."""
    current = in_force(raw_root, source, interval)
    events = [(e.version, e.promoted_at) for e in _promotions(raw_root, source, interval)]
    names = set(_landed_versions(raw_root, source, interval))
    paths = {name: version_dir(raw_root, source, interval, name) for name in names}
    if current is not None:
        names.add(current[0])
        paths[current[0]] = current[1]
    listed = []
    for name in sorted(names):
        times = [at for version, at in events if version == name]
        landed = version_time(name)
        since = max(times, default=landed)
        later = [at for version, at in events if version != name and at > since]
        if current is not None and name == current[0]:
            status, superseded = "in force", None
        elif times or (current is not None and name < current[0]):
            status, superseded = "superseded", min(later, default=since)
        else:
            status, superseded = "candidate", None
        try:
            records: int | None = read_manifest(paths[name]).records
        except (OSError, ValueError):
            records = None
        listed.append(
            Version(
                name, paths[name], status, landed, max(times, default=None), superseded, records
            )
        )
    return listed


def prune(raw_root: Path, retention_days: int, now: datetime | None = None) -> list[Path]:
    """Remove the superseded versions of every batch superseded `retention_days` ago or
    earlier (0: every superseded version); returns what was removed."""
    limit = (now or datetime.now(UTC)) - timedelta(days=retention_days)
    removed = []
    root = versions_root(raw_root)
    for source in Source:
        if not (root / source).is_dir():
            continue
        for directory in sorted((root / source).iterdir()):
            if directory.name.startswith(".") or not _is_batch_id(directory.name):
                continue
            interval = Interval.from_batch_id(directory.name)
            for version in versions(raw_root, source, interval):
                if version.status == "superseded" and version.superseded_at <= limit:
                    shutil.rmtree(version.path)
                    removed.append(version.path)
    return removed


@contextmanager
def landing(root: Path, source: Source, interval: Interval) -> Iterator[Path]:
    """Yield an empty work directory; on success it atomically becomes a new version of the
    interval's batch, a candidate (`landed_version(work)` is its path), its manifest saying
    which version it is. The batch in force under `root` (raw/) is not touched."""
    version = new_version()
    parent = versions_dir(root, source, interval)
    parent.mkdir(parents=True, exist_ok=True)
    work = parent / f".{version}.{uuid.uuid4().hex}.tmp"
    work.mkdir()
    try:
        yield work
        manifest = read_manifest(work)
        write_manifest(work, manifest.model_copy(update={"version": version}))
        os.rename(work, landed_version(work))
    finally:
        if work.exists():  # the extraction failed: nothing landed
            shutil.rmtree(work)
            with suppress(OSError):  # and no version of the batch was landed before
                parent.rmdir()


def landed_version(work: Path) -> Path:
    """Where the work directory of `landing` lands: its version's directory."""
    return work.parent / work.name.split(".")[1]


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

    version: str | None = None  # the version of the batch (None: landed before versions)


class Gap(BaseModel):
    """A reach the API refused to serve: an account's timeline (or mentions) in the interval
    lies partly past the API's `cap` most recent posts, or its DM events past the `cap` days
    of history X keeps (see extract/x.py)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    account: str
    endpoint: Literal[Endpoint.TWEETS, Endpoint.MENTIONS, Endpoint.DM_EVENTS]
    cap: int = Field(ge=0)
    newer_than_interval: int = Field(ge=0)  # posts newer than the interval, within the cap
    returned: int = Field(ge=0)  # posts of the interval the API served
    complete_from: str | None  # the oldest post served (created_at as the API wrote it)


class BillKind(StrEnum):
    """What X bills a read by (extract/x_bill.py says which page's resources are which)."""

    POST_READS = "post_reads"
    USER_READS = "user_reads"
    DM_EVENT_READS = "dm_event_reads"
    OWNED_READS = "owned_reads"


class KindBill(BaseModel):
    """One kind of resource of an extraction's bill: the distinct resources it read, those
    of them nothing had read earlier the same UTC day (what X bills), and their cost (USD)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    read: int = Field(ge=0)
    billed: int = Field(ge=0)
    cost: float = Field(ge=0)


class XBill(BaseModel):
    """What an extraction added to the X bill (the ledger under state/x_bill/ has the
    resources themselves): the UTC day it is billed on, each kind's counts and the cost."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    day: date  # the UTC day of the extraction's start, when its requests were made
    kinds: dict[BillKind, KindBill]
    cost: float = Field(ge=0)  # USD, the sum of the kinds' costs
    refresh_skipped: int = Field(0, ge=0)  # refresh ids not read again: looked up that day


class XManifest(Manifest):
    source: Literal[Source.X] = Source.X
    accounts: list[str] = []
    pages: int = 0
    metrics_refreshed: int = 0
    deleted: int = 0
    refresh_window_start: Instant | None = None
    gaps: list[Gap] = []
    # the accounts whose DM events were read (user context): an account not listed had no
    # grant, so its DMs are unknown, not zero
    dm_accounts: list[str] = []
    dm_events: int = Field(0, ge=0)  # DM events of the interval
    # the accounts whose own posts' private metrics were read (user context): an account
    # not listed had no grant, so its private metrics are unknown ("not authorised"), not zero
    metrics_accounts: list[str] = []
    metrics_snapshots: int = Field(0, ge=0)  # posts served with private metrics
    bill: XBill | None = None  # None: landed before the bill was counted

    @model_serializer(mode="wrap")
    def _without_no_bill(self, handler: SerializerFunctionWrapHandler) -> dict:
        # a manifest landed before the bill writes back as it was written: without the key
        data = handler(self)
        if data.get("bill") is None:
            data.pop("bill", None)
        return data


class LogFileEntry(BaseModel):
    """A log file of a support-site batch: its identity, why it was skipped or the lines it
    gave, and where reading stopped if it was damaged (see `extract.access_log`). It is
    written with the fields the extraction set, and only those (a skipped file has no
    `read_error`, an undamaged one no damage fields): the manifest's JSON keeps that shape,
    which the mart's coverage reads (`agg_daily_source_coverage`)."""

    model_config = ConfigDict(extra="forbid")

    path: str
    site: str
    file_id: str
    skipped: str | None = None  # why its lines were not read (a copy, or known content)
    read_error: str | None = None  # the damage that cut this batch's lines short
    damage_elsewhere: str | None = None  # damage whose lost lines lie outside the interval
    damage_offset: int | None = None  # the byte of the file where reading stopped
    lines_kept: int | None = None  # the lines read before the damage
    bytes_unread: int | None = None
    lines_lost_estimate: int | None = None
    lines_read: int = Field(0, ge=0)
    rows: int = Field(0, ge=0)
    quarantined: int = Field(0, ge=0)
    outside_interval: int = Field(0, ge=0)

    @model_serializer(mode="wrap")
    def _as_set(self, handler: SerializerFunctionWrapHandler) -> dict:
        return {k: v for k, v in handler(self).items() if k in self.model_fields_set}


class SupportSiteManifest(Manifest):
    source: Literal[Source.SUPPORT_SITE] = Source.SUPPORT_SITE
    format: str
    lines_read: int = Field(ge=0)
    outside_interval: int = Field(ge=0)
    files: list[LogFileEntry]

    @property
    def damaged_files(self) -> list[LogFileEntry]:
        """The files whose reading stopped at damage (a truncated or corrupt gzip, a block
        that could not be read) and lost lines of the interval."""
        return [entry for entry in self.files if entry.read_error]

    @property
    def is_partial(self) -> bool:
        """Lines of the batch's files were lost to damage: the gate refuses it unless
        accepted (`engagement quarantine release BATCH --accept-partial`)."""
        return bool(self.damaged_files)

    @property
    def lines_lost_estimate(self) -> int:
        """The lines lost to damage, estimated (see `extract.access_log.LogFile.record_damage`;
        they may belong to this interval or to others the files cover)."""
        return sum(entry.lines_lost_estimate or 0 for entry in self.damaged_files)


MANIFESTS: dict[Source, type[Manifest]] = {
    Source.X: XManifest,
    Source.SUPPORT_SITE: SupportSiteManifest,
}


def write_manifest(directory: Path, manifest: Manifest) -> None:
    text = json.dumps(manifest.model_dump(mode="json"), indent=2, sort_keys=True)
    (directory / MANIFEST).write_text(text + "\n")


def _or_none(value: object, handler: ValidatorFunctionWrapHandler) -> object:
    try:
        return handler(value)
    except ValidationError:
        return None


class ManifestFields(BaseModel):
    """What a refused batch says of itself, whatever the gate found wrong with it: its
    manifest read leniently (a field missing or of the wrong type reads as None)."""

    model_config = ConfigDict(frozen=True)

    version: Annotated[str | None, WrapValidator(_or_none)] = None
    records: Annotated[StrictInt | None, WrapValidator(_or_none)] = None


def manifest_fields(directory: Path) -> ManifestFields | None:
    """The batch's manifest as written, unvalidated (None without one)."""
    path = directory / MANIFEST
    return ManifestFields.model_validate_json(path.read_text()) if path.is_file() else None


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
    files = manifest.files if isinstance(manifest, SupportSiteManifest) else []
    warnings = [
        f"{entry.path}: {entry.read_error or entry.damage_elsewhere}"
        for entry in files
        if entry.read_error or entry.damage_elsewhere
    ]
    fields = manifest.model_dump(include=set(Batch.model_fields))
    return BatchSummary(**fields, path=path, warnings=warnings)
