"""Support-site access logs → one landed batch per interval, losslessly and fast.

Each file (plain or .gz) is read in fixed-size blocks cut at line ends, so memory does not
grow with the file. Two threads parse the two halves of a block in C (`extract._logparse`,
driven by the log format's token program from `extract.log_format`) straight into Arrow
columns; client IPs become keyed pseudonyms (HMAC-SHA256 by OpenSSL, called from C with the
GIL released, once per distinct IP of a half block), user agents, referrers and utm values
are read once per distinct value of the run (`extract.visitors`), and the rows of the
interval are appended to `lines.parquet` while the next block is parsed. Every line read is
a row of this interval, a line of another interval, or a quarantined line (file, line
number, text with IPs pseudonymised, reason); the manifest counts all of them per file and
the counts must add up.

A line without a readable timestamp belongs to the interval of the nearest readable line
before it in its file (at the top of a file, the first readable line of its first block),
so every line lands in exactly one batch. Lines that cannot be dated that way (a file, or
the first block of one, where no line parses: a wrong log format) are never counted as
"outside the interval": every extraction that reads them quarantines them as unparsed, and
the gate refuses the batch.

Files are identified by content: `file_id` is the SHA-256 of their first 64 KiB
(decompressed), so access.log, access.log.1 and access.log.2.gz holding the same lines
share it. Two files of one run with the same id are read once (the plain or longer one).
A source names a directory (the files in it that are not hidden) or a glob; one naming no
file is refused. A file damaged inside (a truncated or corrupt gzip, a block that cannot be
read) keeps every line before the damage, and its manifest entry says where reading
stopped and estimates what was lost (`LogFile.record_damage`): the batch is partial, unless
the lost lines provably lie outside its interval (`_place_damage`).

`state` (a JSON file) remembers the time span of every file read whole; a file whose id,
length and format are known and whose span misses the interval is not read again.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import uuid
import zlib
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Network, IPv6Network
from itertools import chain
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import unquote_plus, urlsplit

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field

from engagement.errors import UsageError
from engagement.landing import (
    BatchSummary,
    Instant,
    Interval,
    LogFileEntry,
    Source,
    SupportSiteManifest,
    iso,
    landed_version,
    landing,
    new_version,
    parse_instant,
    summary,
    version_time,
    versions_root,
    write_manifest,
)
from extract import _logparse
from extract.log_format import FIELDS, KINDS, LogFormat
from extract.visitors import (
    AgentClassifier,
    InternalTraffic,
    Pseudonymiser,
    agent_classifier,
    as_dictionary,
)

HEAD_BYTES = 64 * 1024
DEFAULT_BLOCK_BYTES = 16 * 1024 * 1024
# bytes of file per log line, to estimate the lines lost in a file damaged before any line was
# read (combined-format lines are ~200 bytes; gzip makes them ~10 times smaller)
TYPICAL_LINE_BYTES = {False: 200, True: 20}
# why a line is bad, numbered by extract/_logparse.c
REASONS = {
    _logparse.R_NOT_PARSED: "does not match the log format",
    _logparse.R_UNBALANCED: "unbalanced double quote",
}
C_NAMES = {"time_local": "time", "query_string": "query"}  # where _logparse.c's names differ


def _check_c_enums() -> None:
    """extract/_logparse.c numbers the token kinds, fields and string columns in enums: they
    must be the positions of log_format.KINDS, log_format.FIELDS and STRING_COLUMNS."""
    expected = {
        f"{prefix}_{C_NAMES.get(name, name).upper()}": number
        for prefix, names in (("K", KINDS), ("F", FIELDS), ("C", STRING_COLUMNS))
        for number, name in enumerate(names)
    }
    actual = {name: getattr(_logparse, name, None) for name in expected}
    differing = {name: number for name, number in actual.items() if number != expected[name]}
    if differing:
        raise ImportError(f"extract/_logparse.c numbers these differently: {differing}")


# the string columns _logparse.parse returns, in its order
STRING_COLUMNS = ("ip", "site", "method", "path", "query_string", "protocol", "referrer")
STRING_COLUMNS += ("user_agent", "utm_source", "utm_medium", "utm_campaign")
_check_c_enums()
NUMBERS = {
    "status": pa.int16(),
    "bytes": pa.int64(),
    "request_time": pa.float64(),
    "is_static_asset": pa.bool_(),
}
UTM = ("utm_source", "utm_medium", "utm_campaign")

TEXT = pa.dictionary(pa.int32(), pa.string())
ROW_SCHEMA = pa.schema(
    [
        ("site", TEXT),
        ("source_file", TEXT),
        ("file_id", TEXT),
        ("line_no", pa.int64()),
        ("requested_at", pa.timestamp("us")),
        ("visitor_id", TEXT),
        ("method", TEXT),
        ("path", pa.string()),
        ("query_string", pa.string()),
        ("protocol", TEXT),
        ("status", pa.int16()),
        ("bytes", pa.int64()),
        ("request_time", pa.float64()),
        ("referrer", TEXT),
        ("referrer_host", TEXT),
        ("referrer_path", TEXT),
        ("utm_source", TEXT),
        ("utm_medium", TEXT),
        ("utm_campaign", TEXT),
        ("user_agent", TEXT),
        ("is_bot", pa.bool_()),
        ("bot_kind", pa.string()),
        ("internal_kind", TEXT),  # extract.visitors.INTERNAL_KINDS; null: not internal
        ("is_static_asset", pa.bool_()),
    ]
)
PARQUET_OPTIONS = {
    "store_schema": False,
    "compression": "lz4",  # as small as snappy on access logs, and faster
    "write_statistics": ["line_no", "requested_at", "status"],  # what readers filter on
}
QUARANTINE_SCHEMA = pa.schema(
    [
        ("site", pa.string()),
        ("source_file", pa.string()),
        ("file_id", pa.string()),
        ("line_no", pa.int64()),
        ("raw", pa.string()),
        ("reason", pa.string()),
    ]
)


@dataclass(frozen=True)
class LogSource:
    """A glob (or directory) of log files and the site they belong to; not a `landing.Source`,
    which names one of the product's sources."""

    site: str
    pattern: str


def parse_sources(spec: str, default_site: str) -> list[LogSource]:
    """`[site=]glob[,[site=]glob...]`: several sites' logs, each glob with its site."""
    sources = []
    for entry in (e.strip() for e in spec.split(",")):
        if not entry:
            continue
        site, sep, pattern = entry.partition("=")
        site, pattern = (site.strip(), pattern.strip()) if sep else (default_site, entry)
        sources.append(LogSource(site, pattern))
    return sources


# --- reading ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Damage:
    """Where reading a file stopped before its end, and why."""

    reason: str  # e.g. "truncated gzip stream: kept the lines before the damage"
    offset: int  # byte offset in the file (gzip: in the compressed file) where reading stopped


@dataclass
class LogFile:
    path: Path
    site: str
    is_gzip: bool
    file_id: str
    content_size: int  # bytes of content (gzip: from its trailer, modulo 2**32)
    damage: Damage | None = None

    @property
    def error(self) -> str | None:
        return self.damage.reason if self.damage else None

    @classmethod
    def identify(cls, path: Path, site: str) -> LogFile:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            is_gzip = handle.read(2) == b"\x1f\x8b"
            handle.seek(0)
            head = b"".join(_blocks(handle, is_gzip, HEAD_BYTES, [], limit=HEAD_BYTES))
            if is_gzip and size >= 18:
                handle.seek(-4, os.SEEK_END)
                size = int.from_bytes(handle.read(4), "little")
        return cls(
            path,
            site,
            is_gzip,
            hashlib.sha256(head[:HEAD_BYTES]).hexdigest()[:16],
            size,
        )

    def blocks(self, size: int, buffers: int = 2) -> Iterator[memoryview]:
        """The content in blocks of about `size` bytes, each ending at a line end (a last
        line without a newline gets one); a damaged file (a truncated or corrupt gzip, a
        read that fails) stops with `damage` set. `buffers` buffers take turns: a block
        stays valid until `buffers` more have been asked for."""
        errors: list[Damage] = []
        ring = [bytearray(size + HEAD_BYTES) for _ in range(buffers)]
        turn = used = position = 0
        with open(self.path, "rb", buffering=0) as handle:
            inflated = _blocks(handle, True, size, errors) if self.is_gzip else None
            while True:
                buffer = ring[turn]
                if inflated is None:  # plain: read straight into the buffer
                    if used == len(buffer):  # a line longer than the buffer
                        buffer = ring[turn] = buffer + bytes(len(buffer))
                    try:
                        got = handle.readinto(memoryview(buffer)[used:])
                    except OSError as exc:  # a bad block of the disk: keep what came before
                        errors.append(Damage(f"unreadable block: {exc.strerror}", position))
                        break
                    position += got
                else:
                    raw = next(inflated, b"")
                    if used + len(raw) > len(buffer):
                        buffer = ring[turn] = buffer + bytes(used + len(raw) - len(buffer))
                    buffer[used : used + len(raw)] = raw
                    got = len(raw)
                if not got:
                    break
                used += got
                cut = buffer.rfind(b"\n", 0, used) + 1
                if cut:
                    yield memoryview(buffer)[:cut]
                    turn = (turn + 1) % buffers
                    if used - cut > len(ring[turn]):
                        ring[turn] = bytearray(used - cut + size)
                    ring[turn][: used - cut] = buffer[cut:used]  # the unfinished line
                    used -= cut
        if used:  # a last line without its newline
            buffer = ring[turn] if used < len(ring[turn]) else ring[turn] + b"\n"
            buffer[used] = 10
            yield memoryview(buffer)[: used + 1]
        self.damage = errors[0] if errors else None

    def record_damage(self, entry: LogFileEntry, lines_kept: int) -> None:
        """The manifest's account of the damage, into the file's entry: where reading
        stopped, the lines kept, the bytes of the file after the damage and an estimate of
        the lines they held (at the lines-per-byte rate of what was read, or
        TYPICAL_LINE_BYTES when no line was read). A truncated file stops at its end: what
        was cut off is not in it, so neither its bytes nor its lines can be counted (0)."""
        if self.damage is None:
            return
        offset = self.damage.offset
        unread = max(self.path.stat().st_size - offset, 0)
        if lines_kept and offset:
            lost = round(unread * lines_kept / offset)
        else:
            lost = -(-unread // TYPICAL_LINE_BYTES[self.is_gzip])
        entry.read_error, entry.damage_offset = self.damage.reason, offset
        entry.lines_kept, entry.bytes_unread, entry.lines_lost_estimate = lines_kept, unread, lost


def _blocks(
    handle: BinaryIO, is_gzip: bool, size: int, errors: list[Damage], limit: int | None = None
) -> Iterator[bytes]:
    """Raw content blocks of an open file; gzip members are decompressed one after another,
    and a truncated or corrupt stream, or a read that fails, ends the content with its
    `Damage` in `errors` (what came before it is kept: a corrupt chunk is decompressed
    again byte by byte up to the byte zlib refuses)."""
    read = 0
    if not is_gzip:
        while block := handle.read(size):
            yield block
            read += len(block)
            if limit and read >= limit:
                return
        return
    inflate = zlib.decompressobj(wbits=31)
    pending = b""
    position = 0  # compressed bytes read from the file
    while True:
        if inflate.unused_data:
            compressed = inflate.unused_data
            inflate = zlib.decompressobj(wbits=31)
        else:
            try:
                compressed = handle.read(256 * 1024)
            except OSError as exc:
                errors.append(Damage(f"unreadable block: {exc.strerror}", position))
                break
            position += len(compressed)
        if not compressed:
            break
        before = inflate.copy()
        try:
            pending += inflate.decompress(compressed)
        except zlib.error as exc:
            kept, at = _salvage(before, compressed)
            pending += kept
            errors.append(Damage(f"corrupt gzip data: {exc}", position - len(compressed) + at))
            break
        if len(pending) >= size:
            yield pending
            read += len(pending)
            pending = b""
            if limit and read >= limit:
                return
    if not errors and not inflate.eof and (pending or read or inflate.unconsumed_tail == b""):
        errors.append(Damage("truncated gzip stream: kept the lines before the damage", position))
    if pending:
        yield pending


def _salvage(inflate: Any, data: bytes) -> tuple[bytes, int]:
    """What `inflate` makes of `data` before the byte it refuses, and that byte's offset in
    `data`: fed 4 KiB at a time, then the refused 4 KiB byte by byte (a member ending inside
    `data` is followed by the next one)."""
    out, at = [], 0
    for step in (4096, 1):
        while at < len(data):
            piece, backup = data[at : at + step], inflate.copy()
            try:
                out.append(inflate.decompress(piece))
            except zlib.error:
                inflate = backup
                break
            if inflate.eof:
                at += len(piece) - len(inflate.unused_data)
                inflate = zlib.decompressobj(wbits=31)
            else:
                at += len(piece)
    return b"".join(out), at


def line_text(raw: bytes) -> str:
    """A line's bytes (without its newline) as text: bytes that are not UTF-8 as \\xNN, no
    trailing carriage return."""
    text = raw.decode("utf-8", "backslashreplace")
    return text[:-1] if text.endswith("\r") else text


def halves(data: memoryview) -> list[memoryview]:
    """The block cut in two at the first line end after its middle, so two threads can
    parse it (one piece when it is small or has no line end within 1 MiB of the middle)."""
    middle = len(data) // 2
    cut = bytes(data[middle : middle + 2**20]).find(b"\n") + middle + 1
    if len(data) < 2**16 or cut == middle or cut == len(data):
        return [data]
    return [data[:cut], data[cut:]]


# --- parsing one block ---------------------------------------------------------------------


@dataclass
class Counts:
    lines_read: int = 0
    rows: int = 0
    quarantined: int = 0
    outside_interval: int = 0

    def add(self, other: Counts) -> None:
        for name in ("lines_read", "rows", "quarantined", "outside_interval"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @classmethod
    def of(cls, counted: LogFileEntry | PartResult) -> Counts:
        """The counts a file's entry or a part's result gives."""
        return cls(counted.lines_read, counted.rows, counted.quarantined, counted.outside_interval)


@dataclass
class Block:
    rows: pa.Table
    quarantined: pa.Table
    counts: Counts
    span: tuple[datetime, datetime] | None  # earliest and latest stamp given to its lines
    last: datetime | None  # stamp of its last line


@dataclass
class Piece:
    """What one thread made of part of a block."""

    lines: int
    rows: pa.Table  # the rows of the interval, ready to land
    numbers: np.ndarray  # line numbers of every parsed line
    stamps: np.ndarray  # and their stamps (datetime64[us])
    bad: np.ndarray  # line numbers of the lines not parsed
    bad_spans: np.ndarray  # their (start, end) byte offsets in the part
    reasons: np.ndarray  # why (keys of REASONS)

    def shift(self, lines: int, offset: int) -> None:
        """Number the lines after `lines` earlier ones, `offset` bytes into the block."""
        self.numbers = self.numbers + lines
        self.bad = self.bad + lines
        self.bad_spans = self.bad_spans + offset
        at = self.rows.schema.get_field_index("line_no")
        self.rows = self.rows.set_column(at, "line_no", pc.add(self.rows["line_no"], lines))


@dataclass
class Parser:
    """Parses blocks of lines into landed rows and quarantined lines."""

    log_format: LogFormat
    interval: Interval
    pseudonymise: Pseudonymiser
    classify: AgentClassifier = field(default_factory=agent_classifier)
    internal: InternalTraffic = field(default_factory=InternalTraffic)
    threads: int = 2

    def __post_init__(self) -> None:
        self.pool = ThreadPoolExecutor(max_workers=self.threads)
        self.referrers: dict[str, tuple[str | None, str | None]] = {}
        self.utm: dict[str, str | None] = {}
        start, end = self.interval.start, self.interval.end
        self.start = np.datetime64(start.replace(tzinfo=None), "us")
        self.end = np.datetime64(end.replace(tzinfo=None), "us")

    def close(self) -> None:
        self.pool.shutdown()

    def read(self, file: LogFile, size: int) -> Iterator[Block]:
        """The file's blocks, parsed; each block is parsed while the one before it is
        finished and handed over."""
        first_line, carry, waiting = 1, None, None
        for data in chain(file.blocks(size), [None]):
            started = self._start(file, data) if data is not None else None
            if waiting is not None:
                block = self._finish(file, *waiting, first_line, carry)
                first_line += block.counts.lines_read
                carry = block.last or carry
                yield block
            waiting = started

    def _start(self, file: LogFile, data: memoryview) -> tuple[memoryview, list, list]:
        parts = halves(data) if self.threads > 1 else [data]
        return data, parts, [self.pool.submit(self._piece, file, part) for part in parts]

    def _finish(
        self,
        file: LogFile,
        data: memoryview,
        parts: list[memoryview],
        futures: list[Future],
        first_line: int,
        carry: datetime | None,
    ) -> Block:
        """The block's rows and quarantined lines of the interval, and its counts."""
        pieces: list[Piece] = [future.result() for future in futures]
        n = offset = 0
        for part, piece in zip(parts, pieces, strict=True):  # each numbered its lines from 0
            piece.shift(first_line + n, offset)
            n, offset = n + piece.lines, offset + len(part)
        rows = pa.concat_tables([p.rows for p in pieces])
        numbers = np.concatenate([p.numbers for p in pieces])
        stamps = np.concatenate([p.stamps for p in pieces])
        bad = np.concatenate([p.bad for p in pieces])
        spans = np.concatenate([p.bad_spans for p in pieces])
        reasons = np.concatenate([p.reasons for p in pieces])
        if len(numbers) + len(bad) != n:
            raise RuntimeError(f"{file.path}: lost lines while parsing a block")

        # a bad line belongs where the nearest parsed line before it does
        if carry is None and not len(stamps):
            # no line of the file parsed yet: its lines cannot be dated, and they are not
            # "outside the interval" either (a wrong log format would pass for a quiet
            # day): they count here, as unparsed
            bad_stamps = np.full(len(bad), np.datetime64("NaT"), "datetime64[us]")
            inside = np.ones(len(bad), bool)
        else:
            default = carry or stamps[0]
            before = np.searchsorted(numbers, bad) - 1
            bad_stamps = np.where(
                before >= 0,
                stamps[np.maximum(before, 0)] if len(stamps) else default,
                np.datetime64(default, "us"),
            ).astype("datetime64[us]")
            inside = (bad_stamps >= self.start) & (bad_stamps < self.end)
        texts = [
            self.pseudonymise.scrub(line_text(data[start:end].tobytes()))
            for start, end in spans[inside]
        ]
        quarantined = pa.table(
            {
                "site": [file.site] * len(texts),
                "source_file": [str(file.path)] * len(texts),
                "file_id": [file.file_id] * len(texts),
                "line_no": pa.array(bad[inside], pa.int64()),
                "raw": texts,
                "reason": [REASONS[r] for r in reasons[inside]],
            },
            schema=QUARANTINE_SCHEMA,
        )
        counts = Counts(n, len(rows), len(quarantined), n - len(rows) - len(quarantined))
        every = np.concatenate([stamps, bad_stamps])
        every = every[~np.isnat(every)]
        if not len(every):
            return Block(rows, quarantined, counts, None, None)
        good_is_last = len(numbers) and (not len(bad) or numbers[-1] > bad[-1])
        last = stamps[-1] if good_is_last else bad_stamps[-1]
        span = (_py(every.min()), _py(every.max()))
        return Block(rows, quarantined, counts, span, None if np.isnat(last) else _py(last))

    def _piece(self, file: LogFile, data: memoryview) -> Piece:
        """Part of a block, parsed (in a thread: the parse and Arrow let go of the GIL);
        its lines are numbered from 0 until `Piece.shift`."""
        out = _logparse.parse(data, self.log_format.program)
        n = out["rows"]
        numbers = np.frombuffer(out["line_no"], np.int64)
        stamps = np.frombuffer(out["requested_at"], "datetime64[us]")
        columns = {
            name: _strings(n, *buffers)
            for name, buffers in zip(STRING_COLUMNS, out["strings"], strict=True)
        }
        columns["line_no"] = pa.Array.from_buffers(pa.int64(), n, [None, pa.py_buffer(numbers)])
        columns["requested_at"] = pa.Array.from_buffers(
            pa.timestamp("us"), n, [None, pa.py_buffer(stamps)]
        )
        for name, arrow_type in NUMBERS.items():
            values, valid = out[name]
            columns[name] = pa.Array.from_buffers(
                arrow_type, n, [pa.py_buffer(valid), pa.py_buffer(values)]
            )
        parsed = pa.table(columns)
        inside = (stamps >= self.start) & (stamps < self.end)
        if not inside.all():
            parsed = parsed.filter(pa.array(inside))
        bad, starts, ends, reasons = out["bad"]
        return Piece(
            out["lines"],
            self._rows(file, parsed),
            numbers,
            stamps,
            np.frombuffer(bad, np.int64),
            np.stack([np.frombuffer(starts, np.int64), np.frombuffer(ends, np.int64)], axis=1),
            np.frombuffer(reasons, np.uint8),
        )

    def _rows(self, file: LogFile, parsed: pa.Table) -> pa.Table:
        """The rows to land: pseudonyms, bot flags, internal traffic, referrer parts and utm
        values, each computed once per distinct value."""
        n = len(parsed)
        ips = as_dictionary(parsed["ip"])
        agents = as_dictionary(parsed["user_agent"])
        is_bot, bot_kind = self.classify.columns(agents)
        referrers = as_dictionary(parsed["referrer"])
        columns = {
            "site": as_dictionary(parsed["site"])
            if self.log_format.has_site
            else _constant(file.site, n),
            "source_file": _constant(str(file.path), n),
            "file_id": _constant(file.file_id, n),
            "visitor_id": self.pseudonymise.column(ips),
            "method": as_dictionary(parsed["method"]),
            "protocol": as_dictionary(parsed["protocol"]),
            "referrer": referrers,
            **referrer_parts(referrers, self.referrers),
            **{name: self._utm(parsed[name]) for name in UTM},
            "user_agent": agents,
            "is_bot": is_bot,
            "bot_kind": bot_kind,
            "internal_kind": self.internal.column(ips, agents),
        }
        arrays = [columns[f.name] if f.name in columns else parsed[f.name] for f in ROW_SCHEMA]
        return pa.Table.from_arrays(arrays, schema=ROW_SCHEMA)

    def _utm(self, raw: pa.ChunkedArray) -> pa.DictionaryArray:
        """A utm parameter: url-decoded, trimmed, lowercased; null when empty."""
        encoded = as_dictionary(raw)
        return recode(encoded.indices, per_distinct(encoded, self.utm, _clean_utm))


def _clean_utm(value: str) -> str | None:
    return unquote_plus(value).strip().lower() or None


def per_distinct(encoded: pa.DictionaryArray, cache: dict, compute: Callable) -> list:
    """compute(value) for each distinct value of a dictionary column, once per run (`cache`)."""
    results = []
    for value in encoded.dictionary.to_pylist():
        if value not in cache:
            cache[value] = compute(value)
        results.append(cache[value])
    return results


def referrer_parts(
    referrers: pa.DictionaryArray, cache: dict[str, tuple[str | None, str | None]]
) -> dict[str, pa.DictionaryArray]:
    """referrer_host (lowercased, without user info, port or trailing dot) and
    referrer_path of absolute referrer URLs, computed once per distinct referrer of the run."""
    parts = per_distinct(referrers, cache, _host_and_path)
    return {
        "referrer_host": recode(referrers.indices, [host for host, _ in parts]),
        "referrer_path": recode(referrers.indices, [path for _, path in parts]),
    }


def _host_and_path(url: str) -> tuple[str | None, str | None]:
    if "://" in url:
        try:
            split = urlsplit(url)
            return (split.hostname or "").rstrip(".") or None, split.path or None
        except ValueError:
            pass
    return None, None


def recode(indices: pa.Array, values: list[str | None]) -> pa.DictionaryArray:
    """values[i] for each index i, as a dictionary array of the distinct values (None and
    null indices give nulls: Parquet takes no null inside a dictionary)."""
    distinct: dict[str, int] = {}
    codes = [None if v is None else distinct.setdefault(v, len(distinct)) for v in values]
    return pa.DictionaryArray.from_arrays(
        pc.take(pa.array(codes, pa.int32()), indices), pa.array(list(distinct), pa.string())
    )


def _strings(n: int, codes: object, valid: object, offsets: object, data: object) -> pa.Array:
    """A string column from the buffers of `_logparse.parse`: plain, or (with codes) a
    dictionary array of its distinct values."""
    valid, offsets, data = pa.py_buffer(valid), pa.py_buffer(offsets), pa.py_buffer(data)
    if codes is None:
        return pa.Array.from_buffers(pa.string(), n, [valid, offsets, data])
    values = pa.Array.from_buffers(pa.string(), len(offsets) // 4 - 1, [None, offsets, data])
    indices = pa.Array.from_buffers(pa.int32(), n, [valid, pa.py_buffer(codes)])
    return pa.DictionaryArray.from_arrays(indices, values)


def _constant(value: str, n: int) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), pa.array([value]))


def _py(stamp: np.datetime64) -> datetime:
    return stamp.astype("datetime64[us]").astype(datetime)


# --- the batch ---------------------------------------------------------------------------


class FileState:
    """Time spans of files read whole, by content identity (see the module docstring)."""

    def __init__(self, path: Path | None, log_format: LogFormat) -> None:
        self.path = path
        self.format = log_format.name
        self.spans: dict = json.loads(path.read_text()) if path and path.is_file() else {}

    def key(self, file: LogFile) -> str:
        return f"{file.site}|{self.format}|{file.file_id}|{file.content_size}"

    def misses(self, file: LogFile, interval: Interval) -> bool:
        """True when the file is known and none of its lines can be in the interval."""
        span = self.spans.get(self.key(file))
        if span is None:
            return False
        if span["first"] is None:  # no line dated: empty, or lines that never parse
            return span["lines"] == 0
        start, end = iso(interval.start), iso(interval.end)
        return span["last"] < start or span["first"] >= end

    def record(self, file: LogFile, span: tuple[datetime, datetime] | None, lines: int) -> None:
        if file.error is None and self.path is not None:
            first, last = span or (None, None)
            self.spans[self.key(file)] = {
                "path": str(file.path),
                "lines": lines,
                "first": first and iso(first.replace(tzinfo=UTC)),
                "last": last and iso(last.replace(tzinfo=UTC)),
            }

    def save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.spans, indent=1, sort_keys=True) + "\n")
        os.replace(tmp, self.path)


class NoLogFiles(UsageError, FileNotFoundError):
    """The logs named (--logs, SUPPORT_SITE_LOGS) match no file."""


def log_paths(pattern: str) -> list[Path]:
    """The files a source names: a directory stands for the regular files in it that are
    not hidden (access.log, access.log.1, access.log.2.gz, ...), a glob for the regular
    files it matches. Naming no file, or a file that cannot be read, is refused."""
    where = Path(pattern).expanduser()
    if where.is_dir():
        found = [p for p in where.iterdir() if not p.name.startswith(".")]
        what = f"the directory {pattern!r} holds no log file"
    else:
        found = [Path(p) for p in glob.glob(str(where))]
        what = f"no log file matches {pattern!r}"
    paths = sorted(p.resolve() for p in found if p.is_file())
    if not paths:
        raise NoLogFiles(f"{what}: check --logs or SUPPORT_SITE_LOGS")
    for path in paths:
        if not os.access(path, os.R_OK):
            raise UsageError(
                f"cannot read the log file {path} (matched by {pattern!r}): check its"
                " permissions, or --logs or SUPPORT_SITE_LOGS"
            )
    return paths


def find_files(sources: list[LogSource]) -> list[LogFile]:
    return [LogFile.identify(p, s.site) for s in sources for p in log_paths(s.pattern)]


def _chosen(files: list[LogFile]) -> dict[str, LogFile]:
    """Of files with the same content id, the one to read: plain before gzip, then longer."""
    best: dict[str, LogFile] = {}
    for f in files:
        key = f"{f.site}|{f.file_id}"
        current = best.get(key)
        if current is None or (not f.is_gzip, f.content_size) > (
            not current.is_gzip,
            current.content_size,
        ):
            best[key] = f
    return best


# --- the fan-out: plan, parts, combine ---------------------------------------------------
#
# An interval's extraction is planned (the files found, copies and known files skipped, the
# rest grouped into parts), each part parsed on its own (anywhere the raw directory is
# mounted), and the parts' results combined into one batch version. `extract` does the
# three in one process; the ingest DAG runs the parts as mapped tasks.

DEFAULT_PART_BYTES = 512 * 1024 * 1024
PARTS = ".parts"  # versions/.parts/support_site/<batch>/<attempt>/ (see `staging_dir`)
PART_RESULT = "part.json"


class PartFile(BaseModel):
    """A file a part parses, as the plan identified it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    index: int = Field(ge=0)  # its place among the interval's files (the manifest's order)
    path: str
    site: str
    file_id: str
    is_gzip: bool
    content_size: int = Field(ge=0)

    @classmethod
    def of(cls, index: int, file: LogFile) -> PartFile:
        fields = ("site", "file_id", "is_gzip", "content_size")
        return cls(index=index, path=str(file.path), **{k: getattr(file, k) for k in fields})

    def log_file(self) -> LogFile:
        return LogFile(Path(self.path), self.site, self.is_gzip, self.file_id, self.content_size)


class Part(BaseModel):
    """A group of one site's files, parsed by one task: what the plan hands each."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    batch: str
    attempt: str  # the extraction's staging directory (see `staging_dir`)
    format: str  # the log format's name: a part parses with the plan's format only
    index: int = Field(ge=0)
    site: str
    files: list[PartFile]


class SiteFirst(BaseModel):
    """The first stamp of a file of a site (naive UTC): where a damaged file's loss ends."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    site: str
    first: datetime


class Plan(BaseModel):
    """An interval's extraction planned: every file of its sources in order (a skipped one
    says why), the first stamps of the files skipped as known, and the parts to parse."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    batch: str
    start: Instant
    end: Instant
    format: str
    attempt: str
    files: list[LogFileEntry]
    known_firsts: list[SiteFirst]
    parts: list[Part]

    @property
    def interval(self) -> Interval:
        return Interval(self.start, self.end)


class FileResult(BaseModel):
    """A parsed file's manifest entry and the span of its lines (naive UTC; None: no line
    dated), for the state file and for placing damage across files."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    index: int = Field(ge=0)
    entry: LogFileEntry
    first: datetime | None
    last: datetime | None


class PartResult(BaseModel):
    """What a part landed in its staging directory besides its Parquet files: each file's
    result and the part's counts, which its files' rows must match."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    batch: str
    attempt: str
    index: int = Field(ge=0)
    files: list[FileResult]
    lines_read: int = Field(ge=0)
    rows: int = Field(ge=0)
    quarantined: int = Field(ge=0)
    outside_interval: int = Field(ge=0)


class PartMissing(RuntimeError):
    """A planned part has no result to combine: no batch lands."""


def staging_dir(raw_root: Path, interval: Interval, attempt: str) -> Path:
    """Where an extraction's parts land before they are combined: hidden beside the
    versions they become, so on the data directory's storage (which the workers that parse
    the parts share)."""
    return versions_root(raw_root) / PARTS / Source.SUPPORT_SITE / interval.batch_id / attempt


def new_attempt() -> str:
    return f"{new_version()}-{uuid.uuid4().hex[:8]}"


def remove_staging(raw_root: Path, plan: Plan) -> None:
    """The extraction's staging directory, and its parents up to versions/.parts once
    empty."""
    stage = staging_dir(raw_root, plan.interval, plan.attempt)
    shutil.rmtree(stage, ignore_errors=True)
    for parent in stage.parents[:3]:
        with suppress(OSError):  # not empty: another extraction's
            parent.rmdir()


def remove_stale_attempts(raw_root: Path, interval: Interval, now: datetime) -> None:
    """The interval's staging directories of extractions started a day or more ago (runs
    that failed before combining): no part of theirs can still be running."""
    parent = staging_dir(raw_root, interval, "x").parent
    for attempt in parent.iterdir() if parent.is_dir() else ():
        with suppress(ValueError):
            if version_time(attempt.name.split("-")[0]) <= now - timedelta(days=1):
                shutil.rmtree(attempt, ignore_errors=True)


def plan(
    sources: list[LogSource] | str,
    interval: Interval,
    log_format: str | None = None,
    state_path: Path | None = None,
    part_bytes: int = DEFAULT_PART_BYTES,
    raw_root: Path | None = None,
    attempt: str | None = None,
) -> Plan:
    """The interval's files found, identified (their first 64 KiB read, nothing parsed),
    copies and files known to miss the interval skipped, and the rest grouped into parts:
    per site, in order, each part at most `part_bytes` of content (a larger file is a
    part of its own)."""
    if isinstance(sources, str):
        sources = parse_sources(sources, "support")
    if not sources:
        raise UsageError("no access logs given: check --logs or SUPPORT_SITE_LOGS")
    fmt = LogFormat.parse(log_format)
    state = FileState(state_path, fmt)
    files = find_files(sources)
    chosen = _chosen(files)
    if raw_root is not None:
        remove_stale_attempts(raw_root, interval, datetime.now(UTC))
    attempt = attempt or new_attempt()
    entries: list[LogFileEntry] = []
    firsts: list[SiteFirst] = []
    groups: dict[str, list[list[PartFile]]] = {}  # per site, its parts' files
    for index, file in enumerate(files):
        entry = LogFileEntry(path=str(file.path), site=file.site, file_id=file.file_id)
        reader = chosen[f"{file.site}|{file.file_id}"]
        if reader is not file:
            entry.skipped = f"same content as {reader.path}"
        elif state.misses(file, interval):
            entry.skipped = "known content with no line in the interval"
            if first := state.spans[state.key(file)]["first"]:
                firsts.append(SiteFirst(site=file.site, first=_naive(parse_instant(first))))
        else:
            entries.append(entry)
            site = groups.setdefault(file.site, [[]])
            size = sum(f.content_size for f in site[-1])
            if site[-1] and size + file.content_size > part_bytes:
                site.append([])
            site[-1].append(PartFile.of(index, file))
            continue
        # a skipped file's counts are written, zero, as every read file's are
        entry.lines_read = entry.rows = entry.quarantined = entry.outside_interval = 0
        entries.append(entry)
    grouped = [(site, group) for site, site_groups in groups.items() for group in site_groups]
    parts = [
        Part(batch=interval.batch_id, attempt=attempt, format=fmt.name, index=index,
             site=site, files=group)
        for index, (site, group) in enumerate(grouped)
    ]  # fmt: skip
    return Plan(
        batch=interval.batch_id,
        start=interval.start,
        end=interval.end,
        format=fmt.name,
        attempt=attempt,
        files=entries,
        known_firsts=firsts,
        parts=parts,
    )


def extract_part(
    part: Part,
    interval: Interval,
    raw_root: Path,
    key: str,
    log_format: str | None = None,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
    threads: int = 2,
    internal_networks: Sequence[IPv4Network | IPv6Network] = (),
) -> PartResult:
    """Parse a part's files into its staging directory: its rows and quarantined lines
    (Parquet) and its result, written in a hidden directory and renamed into place, so a
    part is there whole or not at all, and a retried part replaces its earlier try."""
    fmt = LogFormat.parse(log_format)
    if part.batch != interval.batch_id or fmt.name != part.format:
        raise UsageError(
            f"part {part.index} of the batch {part.batch} (format {part.format}) does not"
            f" belong to the interval {interval.batch_id} with the log format {fmt.name}:"
            " plan the extraction again"
        )
    stage = staging_dir(raw_root, interval, part.attempt)
    stage.mkdir(parents=True, exist_ok=True)
    work = stage / f".{_part_name(part.index)}.{uuid.uuid4().hex}.tmp"
    work.mkdir()
    internal = InternalTraffic(internal_networks)
    parser = Parser(fmt, interval, Pseudonymiser(key), internal=internal, threads=threads)
    writer_pool = ThreadPoolExecutor(max_workers=1)
    total = Counts()
    results: list[FileResult] = []
    # written as the batch's file is: a batch of one part is this file
    rows_out = pq.ParquetWriter(work / "lines.parquet", ROW_SCHEMA, **PARQUET_OPTIONS)
    quarantine_out = pq.ParquetWriter(work / "quarantine.parquet", QUARANTINE_SCHEMA)
    try:
        writes: deque[Future] = deque()
        try:
            for planned in part.files:
                file = planned.log_file()
                entry = LogFileEntry(path=planned.path, site=file.site, file_id=file.file_id)
                counts = Counts()
                span: tuple[datetime, datetime] | None = None
                for block in parser.read(file, block_bytes):
                    if block.span:
                        span = block.span if span is None else (
                            min(span[0], block.span[0]), max(span[1], block.span[1])
                        )  # fmt: skip
                    counts.add(block.counts)
                    writes.append(writer_pool.submit(_write, rows_out, block.rows))
                    if len(writes) > 2:  # bounds the rows waiting in memory
                        writes.popleft().result()
                    if len(block.quarantined):
                        quarantine_out.write_table(block.quarantined)
                entry.read_error = file.error
                file.record_damage(entry, counts.lines_read)
                entry.lines_read, entry.rows = counts.lines_read, counts.rows
                entry.quarantined = counts.quarantined
                entry.outside_interval = counts.outside_interval
                _check(entry, counts)
                total.add(counts)
                first, last = span or (None, None)
                results.append(FileResult(index=planned.index, entry=entry, first=first, last=last))
            for write in writes:
                write.result()
        finally:
            parser.close()
            writer_pool.shutdown()
            rows_out.close()
            quarantine_out.close()
        result = PartResult(
            batch=part.batch,
            attempt=part.attempt,
            index=part.index,
            files=results,
            lines_read=total.lines_read,
            rows=total.rows,
            quarantined=total.quarantined,
            outside_interval=total.outside_interval,
        )
        _check(result, total)
        (work / PART_RESULT).write_text(result.model_dump_json(indent=1) + "\n")
        _replace(work, stage / _part_name(part.index))
    finally:
        if work.exists():  # the part failed: none of it stays
            shutil.rmtree(work)
    return result


def _part_name(index: int) -> str:
    return f"part-{index:05d}"


def _replace(work: Path, target: Path) -> None:
    """`work` renamed to `target`; an earlier try at `target` is moved aside first, then
    removed (a directory cannot be renamed over one that is not empty)."""
    old = target.with_name(f".{target.name}.{uuid.uuid4().hex}.old")
    with suppress(FileNotFoundError):
        os.rename(target, old)
    os.rename(work, target)
    shutil.rmtree(old, ignore_errors=True)


def _part_results(plan: Plan, raw_root: Path) -> list[PartResult]:
    """Every planned part's result, checked against the plan and its own Parquet files:
    a part missing, of another attempt, or whose files' rows differ from its counts is an
    error (no batch lands)."""
    stage = staging_dir(raw_root, plan.interval, plan.attempt)
    results = []
    for part in plan.parts:
        directory = stage / _part_name(part.index)
        where = f"part {part.index} of {len(plan.parts)} of the support-site batch {plan.batch}"
        if not (directory / PART_RESULT).is_file():
            raise PartMissing(
                f"{where} has no result at {directory}: its extraction failed or has not run,"
                " or ran on a machine that does not share this raw directory (the workers must"
                " share ENGAGEMENT_DATA_DIR); no batch was landed"
            )
        result = PartResult.model_validate_json((directory / PART_RESULT).read_text())
        planned = [f.index for f in part.files]
        if (result.batch, result.attempt, result.index) != (plan.batch, plan.attempt, part.index):
            raise PartMissing(f"{where}: {directory} holds another part's result")
        if [f.index for f in result.files] != planned:
            raise PartMissing(f"{where}: its result covers other files than the plan's")
        landed_rows = pq.ParquetFile(directory / "lines.parquet").metadata.num_rows
        landed_quarantine = pq.ParquetFile(directory / "quarantine.parquet").metadata.num_rows
        if (landed_rows, landed_quarantine) != (result.rows, result.quarantined):
            raise RuntimeError(
                f"{where}: its files hold {landed_rows} rows and {landed_quarantine}"
                f" quarantined lines, its result counts {result.rows} and {result.quarantined}"
            )
        results.append(result)
    return results


def combine(plan: Plan, raw_root: Path, state_path: Path | None = None) -> BatchSummary:
    """Land the parts' results as one batch version of the plan's interval (through
    `landing`: whole or not at all): their rows and quarantined lines copied into one file
    each (row group by row group, nothing parsed again), every file's entry in the plan's
    order, the damage placed with the first stamps of every site's files, the line
    accounting checked per file, per part and in total; then the state file updated and
    the staging directory removed."""
    interval = plan.interval
    results = _part_results(plan, raw_root)
    stage = staging_dir(raw_root, interval, plan.attempt)
    state = FileState(state_path, LogFormat.parse(plan.format))
    entries = [entry.model_copy() for entry in plan.files]
    parsed: dict[int, FileResult] = {}
    for result in results:
        for file in result.files:
            if file.index in parsed or entries[file.index].skipped:
                raise RuntimeError(f"{plan.files[file.index].path} was parsed twice or skipped")
            parsed[file.index] = file
            entries[file.index] = file.entry.model_copy()
    unread = [e.path for i, e in enumerate(plan.files) if not e.skipped and i not in parsed]
    if unread:
        raise PartMissing(f"no part parsed {', '.join(unread)}: no batch was landed")
    firsts = [(f.site, f.first) for f in plan.known_firsts]
    firsts += [(entries[i].site, f.first) for i, f in parsed.items() if f.first is not None]
    total = Counts()
    with landing(raw_root, Source.SUPPORT_SITE, interval) as work:
        for result in results:
            total.add(Counts.of(result))
        if len(results) == 1:  # one part (most days): its files are the batch's, linked
            _link_files(stage / _part_name(results[0].index), work)
        else:
            _concatenate_files([stage / _part_name(result.index) for result in results], work)
        for index, file in sorted(parsed.items()):
            entry = entries[index]
            _check(entry, Counts.of(entry))
            if entry.read_error:
                _place_damage(entry, entry.site, file.last, firsts, interval)
        by_entries = Counts()
        for entry in entries:
            by_entries.add(Counts.of(entry))
        if by_entries != total:
            raise RuntimeError(f"the files' counts {by_entries} differ from the parts' {total}")
        landed = SupportSiteManifest(
            batch=interval.batch_id,
            start=interval.start,
            end=interval.end,
            format=plan.format,
            records=total.rows,
            quarantined=total.quarantined,
            lines_read=total.lines_read,
            outside_interval=total.outside_interval,
            files=entries,
        )
        _check(landed, total)
        written = [pq.ParquetFile(work / name).metadata.num_rows
                   for name in ("lines.parquet", "quarantine.parquet")]  # fmt: skip
        if written != [total.rows, total.quarantined]:
            raise RuntimeError(f"the batch's files hold {written} rows, its parts {total}")
        write_manifest(work, landed)
    for part in plan.parts:
        for planned in part.files:
            file, result = planned.log_file(), parsed[planned.index]
            if result.entry.damage_offset is None:  # read whole: its span is known
                span = None if result.first is None else (result.first, result.last)
                state.record(file, span, result.entry.lines_read)
    state.save()
    remove_staging(raw_root, plan)
    return summary(landed, landed_version(work))


def _link_files(part: Path, work: Path) -> None:
    """A part's Parquet files as the batch's: hard links (instant, on the same file system;
    the part keeps its files until the batch has landed, so a failed combine can be run
    again), or copies where the file system has no links."""
    for name in ("lines.parquet", "quarantine.parquet"):
        try:
            os.link(part / name, work / name)
        except OSError:
            shutil.copyfile(part / name, work / name)


def _concatenate_files(parts: list[Path], work: Path) -> None:
    """The parts' Parquet files, in order, as the batch's one file of each."""
    rows_out = pq.ParquetWriter(work / "lines.parquet", ROW_SCHEMA, **PARQUET_OPTIONS)
    quarantine_out = pq.ParquetWriter(work / "quarantine.parquet", QUARANTINE_SCHEMA)
    try:
        for directory in parts:
            _copy_row_groups(directory / "lines.parquet", rows_out, ROW_SCHEMA)
            _copy_row_groups(directory / "quarantine.parquet", quarantine_out, QUARANTINE_SCHEMA)
    finally:
        rows_out.close()
        quarantine_out.close()


def _copy_row_groups(source: Path, out: pq.ParquetWriter, schema: pa.Schema) -> None:
    """A part's Parquet file appended to the batch's, a row group at a time, its dictionary
    columns read as dictionaries (nothing is parsed or encoded again)."""
    dictionaries = [f.name for f in schema if pa.types.is_dictionary(f.type)]
    parquet = pq.ParquetFile(source, read_dictionary=dictionaries)
    for group in range(parquet.num_row_groups):
        for piece in parquet.read_row_group(group).to_batches():
            out.write_batch(piece)


def extract(
    sources: list[LogSource] | str,
    interval: Interval,
    raw_root: Path,
    key: str,
    log_format: str | None = None,
    state_path: Path | None = None,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
    threads: int = 2,
    internal_networks: Sequence[IPv4Network | IPv6Network] = (),
    part_bytes: int = DEFAULT_PART_BYTES,
) -> BatchSummary:
    """Land the interval's lines of every matching file as one batch; returns the summary:
    the plan, each part and the combining in this process (what the DAG runs as tasks).
    Requests from `internal_networks` (SUPPORT_SITE_INTERNAL_NETWORKS) are internal."""
    planned = plan(sources, interval, log_format, state_path, part_bytes, raw_root)
    try:
        for part in planned.parts:
            extract_part(
                part, interval, raw_root, key, log_format, block_bytes, threads,
                internal_networks,
            )  # fmt: skip
        return combine(planned, raw_root, state_path)
    finally:
        remove_staging(raw_root, planned)


def _naive(instant: datetime) -> datetime:
    return instant.astimezone(UTC).replace(tzinfo=None)


def _place_damage(
    entry: LogFileEntry,
    site: str,
    last: datetime | None,
    firsts: list[tuple[str, datetime]],
    interval: Interval,
) -> None:
    """A damaged file's lost lines follow its last line kept (`last`) and precede the first
    line of the site's next file in the rotation (logs are written in time order, and a
    rotated file ends where the next begins). When that span lies outside the interval
    (an older rotated file, read again on every run because it is damaged), the batch is
    not partial: `read_error` moves to `damage_elsewhere`, still a warning."""
    if last is None:
        return  # nothing dated was kept: the lost lines may lie anywhere
    start, end = (bound.replace(tzinfo=None) for bound in (interval.start, interval.end))
    following = min((first for s, first in firsts if s == site and first > last), default=None)
    if last >= end:
        where = f"after {iso(last.replace(tzinfo=UTC))}, the interval's end or later"
    elif following is not None and following <= start:
        where = f"before {iso(following.replace(tzinfo=UTC))}, where the next file begins"
    else:
        return
    entry.damage_elsewhere = f"{entry.read_error} (its lost lines lie {where})"
    entry.read_error = None


def _write(out: pq.ParquetWriter, rows: pa.Table) -> None:
    """A row group per piece: a piece's columns share one dictionary each."""
    for piece in rows.to_batches():
        out.write_batch(piece)


def _check(entry: object, counts: Counts) -> None:
    if counts.lines_read != counts.rows + counts.quarantined + counts.outside_interval:
        raise RuntimeError(f"line accounting does not add up: {entry}")
