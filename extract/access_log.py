"""Support-site access logs → one landed batch per interval, losslessly and fast.

Each file (plain or .gz) is read in fixed-size blocks cut at line ends, so memory does not
grow with the file. A block's lines become one Arrow column without a copy (cut at the
positions of its newlines: every newline ends exactly one line, counted), DuckDB parses
them (`extract.log_format`), client IPs are replaced by keyed pseudonyms (HMAC-SHA256 in
SQL, once per distinct IP of the block) and user agents and referrers are read once per
distinct value of the run (`extract.visitors`), and the rows of the interval are appended
to `lines.parquet` while the next block is parsed. Every line read is a row of this
interval, a line of another interval, or a quarantined line (file, line number, text with
IPs pseudonymised, reason); the manifest counts all of them per file and the counts must
add up.

A line without a readable timestamp belongs to the interval of the nearest readable line
before it in its file (at the top of a file, the first readable line of its first block;
the file's mtime when that block has none), so every line lands in exactly one batch.

Files are identified by content: `file_id` is the SHA-256 of their first 64 KiB
(decompressed), so access.log, access.log.1 and access.log.2.gz holding the same lines
share it. Two files of one run with the same id are read once (the plain or longer one).
`state` (a JSON file) remembers the time span of every file read whole; a file whose id,
length and format are known and whose span misses the interval is not read again.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import zlib
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from extract.batches import Interval, iso, landing, summary, write_manifest
from extract.log_format import LogFormat, split_quoted
from extract.visitors import AgentClassifier, Pseudonymiser, agent_classifier

HEAD_BYTES = 64 * 1024
DEFAULT_BLOCK_BYTES = 16 * 1024 * 1024
BATCH_ROWS = 16 * 1024
NOT_PARSED = "does not match the log format"
# HMAC-SHA256 (RFC 2104) of each IP with the key's inner and outer pads ($1, $2), 32 hex
HMAC_SQL = "select left(sha256($2 || unhex(sha256($1 || encode(ip)))), 32) as visitor_id from ips"
UNBALANCED = "unbalanced double quote"

TEXT = pa.dictionary(pa.int32(), pa.string())
ROW_SCHEMA = pa.schema(
    [
        ("site", TEXT),
        ("source_file", TEXT),
        ("file_id", TEXT),
        ("line_no", pa.int64()),
        ("requested_at", pa.timestamp("us")),
        ("visitor_id", TEXT),
        ("method", pa.string()),
        ("path", pa.string()),
        ("query_string", pa.string()),
        ("protocol", pa.string()),
        ("status", pa.int16()),
        ("bytes", pa.int64()),
        ("request_time", pa.float64()),
        ("referrer", pa.string()),
        ("referrer_host", pa.string()),
        ("referrer_path", pa.string()),
        ("utm_source", pa.string()),
        ("utm_medium", pa.string()),
        ("utm_campaign", pa.string()),
        ("user_agent", TEXT),
        ("is_bot", pa.bool_()),
        ("bot_kind", pa.string()),
        ("is_static_asset", pa.bool_()),
    ]
)
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
class Source:
    """A glob of log files and the site they belong to."""

    site: str
    pattern: str


def parse_sources(spec: str, default_site: str) -> list[Source]:
    """`[site=]glob[,[site=]glob...]`: several sites' logs, each glob with its site."""
    sources = []
    for entry in (e.strip() for e in spec.split(",")):
        if not entry:
            continue
        site, sep, pattern = entry.partition("=")
        site, pattern = (site.strip(), pattern.strip()) if sep else (default_site, entry)
        sources.append(Source(site, pattern))
    return sources


# --- reading ----------------------------------------------------------------------------


@dataclass
class LogFile:
    path: Path
    site: str
    is_gzip: bool
    file_id: str
    content_size: int  # bytes of content (gzip: from its trailer, modulo 2**32)
    mtime: datetime
    error: str | None = None

    @classmethod
    def identify(cls, path: Path, site: str) -> LogFile:
        with open(path, "rb") as handle:
            is_gzip = handle.read(2) == b"\x1f\x8b"
        head = b"".join(_blocks(path, is_gzip, HEAD_BYTES, [], limit=HEAD_BYTES))[:HEAD_BYTES]
        stat = path.stat()
        size = stat.st_size
        if is_gzip and size >= 18:
            with open(path, "rb") as handle:
                handle.seek(-4, os.SEEK_END)
                size = int.from_bytes(handle.read(4), "little")
        return cls(
            path,
            site,
            is_gzip,
            hashlib.sha256(head).hexdigest()[:16],
            size,
            datetime.fromtimestamp(stat.st_mtime, UTC).replace(tzinfo=None),
        )

    def blocks(self, size: int) -> Iterator[memoryview]:
        """The content in blocks of about `size` bytes, each ending at a line end (a last
        line without a newline gets one); a damaged gzip stops with `error` set. A block is
        only valid until the next one is asked for (one buffer is reused)."""
        errors: list[str] = []
        buffer = bytearray(size + HEAD_BYTES)
        used = 0
        for raw in _blocks(self.path, self.is_gzip, size, errors):
            if used + len(raw) > len(buffer):  # a new buffer: the lines of the last block
                buffer = buffer + bytes(used + len(raw) - len(buffer))  # may point into it
            buffer[used : used + len(raw)] = raw
            used += len(raw)
            cut = buffer.rfind(b"\n", 0, used) + 1
            if cut:
                yield memoryview(buffer)[:cut]
                buffer[: used - cut] = buffer[cut:used]
                used -= cut
        if used:
            buffer[used : used + 1] = b"\n"
            yield memoryview(buffer)[: used + 1]
        self.error = errors[0] if errors else None


def _blocks(
    path: Path, is_gzip: bool, size: int, errors: list[str], limit: int | None = None
) -> Iterator[bytes]:
    """Raw content blocks; gzip members are decompressed one after another, and a truncated
    or corrupt stream ends the content with a message in `errors` (what came before it is
    kept)."""
    read = 0
    with open(path, "rb") as handle:
        if not is_gzip:
            while block := handle.read(size):
                yield block
                read += len(block)
                if limit and read >= limit:
                    return
            return
        inflate = zlib.decompressobj(wbits=31)
        pending = b""
        while True:
            compressed = inflate.unused_data or handle.read(256 * 1024)
            if inflate.unused_data:
                inflate = zlib.decompressobj(wbits=31)
            if not compressed:
                break
            try:
                pending += inflate.decompress(compressed)
            except zlib.error as exc:
                errors.append(f"corrupt gzip data: {exc}")
                break
            if len(pending) >= size:
                yield pending
                read += len(pending)
                pending = b""
                if limit and read >= limit:
                    return
        if not inflate.eof and (pending or read or inflate.unconsumed_tail == b""):
            errors.append("truncated gzip stream: kept the lines before the damage")
        if pending:
            yield pending


def split_lines(block: memoryview) -> pa.Array:
    """The lines of a block (which ends with b"\\n") as strings, each WITH its line end
    (\\n or \\r\\n, which the parse reads as trailing white space and `line_text` drops).

    Every newline ends exactly one line: the values are cut at the positions of the b"\\n"
    bytes (no copy: the strings point into the block). A block that is not valid UTF-8 is
    cut the careful way, bytes that are not UTF-8 kept as \\xNN escapes."""
    if not len(block):
        return pa.array([], pa.string())
    ends = np.flatnonzero(np.frombuffer(block, np.uint8) == 10)
    if len(block) < 2**31:
        offsets = np.empty(len(ends) + 1, np.int32)
        offsets[0] = 0
        offsets[1:] = ends + 1
        data = pa.py_buffer(block)
        lines = pa.StringArray.from_buffers(len(ends), pa.py_buffer(offsets), data)
        try:
            lines.validate(full=True)  # UTF-8
            return lines
        except pa.ArrowInvalid:
            pass  # the careful way below
    text = block.tobytes().decode("utf-8", "backslashreplace")
    return pa.array([line + "\n" for line in text.split("\n")[:-1]], pa.string())


def line_text(line: str) -> str:
    """A line without its line end."""
    line = line[:-1] if line.endswith("\n") else line
    return line[:-1] if line.endswith("\r") else line


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


@dataclass
class Block:
    rows: pa.Table
    quarantined: pa.Table
    counts: Counts
    span: tuple[datetime, datetime] | None  # earliest and latest stamp given to its lines
    last: datetime | None  # stamp of its last line


@dataclass
class Parser:
    """Parses blocks of lines into landed rows and quarantined lines."""

    log_format: LogFormat
    interval: Interval
    pseudonymise: Pseudonymiser
    classify: AgentClassifier = field(default_factory=agent_classifier)
    threads: int = 2

    def __post_init__(self) -> None:
        self.con = duckdb.connect()
        self.con.execute(
            f"set threads = {self.threads}; set memory_limit = '2GB';"
            " set preserve_insertion_order = true; set TimeZone = 'UTC'"
        )
        self.fast_sql = self.log_format.sql(
            "(select line_no, string_split(line, '\"') as p from block"
            " where not contains(line, '\\'))"
        )
        self.slow_sql = self.log_format.sql("slow")
        self.pads = self.pseudonymise.pads()
        self.referrers: dict[str, tuple[str | None, str | None]] = {}
        self.start = pa.scalar(self.interval.start.replace(tzinfo=None), pa.timestamp("us"))
        self.end = pa.scalar(self.interval.end.replace(tzinfo=None), pa.timestamp("us"))

    def parse(
        self, file: LogFile, lines: pa.Array, first_line: int, carry: datetime | None
    ) -> Block:
        """The block's rows and quarantined lines of the interval, and its counts."""
        n = len(lines)
        numbers = np.arange(first_line, first_line + n, dtype=np.int64)
        block = pa.table({"line_no": numbers, "line": lines})
        # record batches of BATCH_ROWS let DuckDB's threads share the block
        self.con.register("block", pa.Table.from_batches(block.to_batches(BATCH_ROWS)))
        parsed = self.con.sql(self.fast_sql).to_arrow_table()
        escaped = self.con.sql(
            "select line_no, line from block where contains(line, '\\')"
        ).to_arrow_table()
        unbalanced: list[int] = []
        if len(escaped):
            slow_numbers, slow_p = [], []
            for number, line in zip(
                escaped["line_no"].to_pylist(), escaped["line"].to_pylist(), strict=True
            ):
                pieces = split_quoted(line_text(line))
                if pieces is None:
                    unbalanced.append(number)
                else:
                    slow_numbers.append(number)
                    slow_p.append(pieces)
            slow = pa.table(
                {"line_no": pa.array(slow_numbers, pa.int64()),
                 "p": pa.array(slow_p, pa.list_(pa.string()))}
            )  # fmt: skip
            self.con.register("slow", slow)
            parsed = pa.concat_tables([parsed, self.con.sql(self.slow_sql).to_arrow_table()])
        all_ok = pc.all(parsed["ok"], skip_nulls=False).as_py() is True
        good = parsed if all_ok else parsed.filter(parsed["ok"])  # no copy when all fit
        bad_numbers = np.sort(
            np.concatenate(
                [parsed.filter(pc.invert(parsed["ok"]))["line_no"].to_numpy(),
                 np.array(unbalanced, dtype=np.int64)]
            )
        )  # fmt: skip
        if len(good) + len(bad_numbers) != n:
            raise RuntimeError(f"{file.path}: lost lines while parsing a block")

        stamps = good["requested_at"]
        inside = pc.and_(
            pc.greater_equal(stamps, self.start), pc.less(stamps, self.end)
        ).combine_chunks() if len(good) else pa.array([], pa.bool_())  # fmt: skip
        all_inside = pc.all(inside, skip_nulls=False).as_py() is True
        rows = self._rows(file, good if all_inside else good.filter(inside))

        # fast rows come in line order, rows parsed the slow way after them
        good_numbers = good["line_no"].to_numpy()
        stamp_values = stamps.to_numpy() if len(good) else np.array([], "datetime64[us]")
        if len(good_numbers) > 1 and not np.all(good_numbers[1:] > good_numbers[:-1]):
            order = np.argsort(good_numbers, kind="stable")
            good_numbers, stamp_values = good_numbers[order], stamp_values[order]
        default = carry or (stamp_values[0] if len(good) else np.datetime64(file.mtime, "us"))
        before = np.searchsorted(good_numbers, bad_numbers) - 1
        bad_stamps = np.where(
            before >= 0,
            stamp_values[np.maximum(before, 0)] if len(good) else default,
            np.datetime64(default, "us"),
        ).astype("datetime64[us]")
        start, end = np.datetime64(self.start.as_py(), "us"), np.datetime64(self.end.as_py(), "us")
        bad_inside = bad_numbers[(bad_stamps >= start) & (bad_stamps < end)]
        unbalanced_set = set(unbalanced)
        texts = lines.take(pa.array(bad_inside - first_line)).to_pylist()
        quarantined = pa.table(
            {
                "site": [file.site] * len(texts),
                "source_file": [str(file.path)] * len(texts),
                "file_id": [file.file_id] * len(texts),
                "line_no": pa.array(bad_inside, pa.int64()),
                "raw": [self.pseudonymise.scrub(line_text(t)) for t in texts],
                "reason": [UNBALANCED if int(b) in unbalanced_set else NOT_PARSED
                           for b in bad_inside],
            },
            schema=QUARANTINE_SCHEMA,
        )  # fmt: skip
        counts = Counts(n, len(rows), len(quarantined), n - len(rows) - len(quarantined))
        every = np.concatenate([stamp_values.astype("datetime64[us]"), bad_stamps])
        if not len(every):
            return Block(rows, quarantined, counts, None, None)
        good_is_last = len(good) and (not len(bad_numbers) or good_numbers[-1] > bad_numbers[-1])
        last = stamp_values[-1] if good_is_last else bad_stamps[-1]
        span = (_py(every.min()), _py(every.max()))
        return Block(rows, quarantined, counts, span, _py(last))

    def _rows(self, file: LogFile, good: pa.Table) -> pa.Table:
        n = len(good)
        agents = good["user_agent"].combine_chunks().dictionary_encode()
        is_bot, bot_kind = self.classify.columns(agents)
        columns = {
            "site": (
                good["site"].combine_chunks().dictionary_encode()
                if self.log_format.has_site
                else _constant(file.site, n)
            ),
            "source_file": _constant(str(file.path), n),
            "file_id": _constant(file.file_id, n),
            "visitor_id": self._visitor_ids(good["ip"]),
            **referrer_parts(good["referrer"], self.referrers),
            "user_agent": agents,
            "is_bot": is_bot,
            "bot_kind": bot_kind,
        }
        arrays = [
            columns[f.name] if f.name in columns else good[f.name].cast(f.type) for f in ROW_SCHEMA
        ]
        return pa.Table.from_arrays(arrays, schema=ROW_SCHEMA)

    def _visitor_ids(self, ips: pa.ChunkedArray) -> pa.DictionaryArray:
        """Visitor ids of a column of IPs: HMAC-SHA256 under the key, computed in SQL once
        per distinct IP of the block (the same ids as `Pseudonymiser.__call__`)."""
        encoded = pc.dictionary_encode(ips.combine_chunks())
        ips = pa.table({"ip": encoded.dictionary})  # in batches, for DuckDB's threads
        self.con.register("ips", pa.Table.from_batches(ips.to_batches(2048), ips.schema))
        ids = self.con.sql(HMAC_SQL, params=list(self.pads)).to_arrow_table()["visitor_id"]
        self.con.unregister("ips")
        return pa.DictionaryArray.from_arrays(encoded.indices, ids.combine_chunks())


def referrer_parts(
    referrers: pa.ChunkedArray, cache: dict[str, tuple[str | None, str | None]] | None = None
) -> dict[str, pa.Array]:
    """referrer_host (lowercased, without user info, port or trailing dot) and
    referrer_path of absolute referrer URLs, computed once per distinct referrer (and once
    per run with a `cache`)."""
    encoded = referrers.combine_chunks().dictionary_encode()
    cache = {} if cache is None else cache
    hosts, paths = [], []
    for url in encoded.dictionary.to_pylist():
        parts = cache.get(url)
        if parts is None:
            host = path = None
            if "://" in url:
                try:
                    split = urlsplit(url)
                    host, path = (split.hostname or "").rstrip(".") or None, split.path or None
                except ValueError:
                    pass
            parts = cache[url] = (host, path)
        hosts.append(parts[0])
        paths.append(parts[1])
    return {
        "referrer_host": pc.take(pa.array(hosts, pa.string()), encoded.indices),
        "referrer_path": pc.take(pa.array(paths, pa.string()), encoded.indices),
    }


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
        if span["lines"] == 0:
            return True
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


def find_files(sources: list[Source]) -> list[LogFile]:
    files = []
    for source in sources:
        paths = sorted(Path(p).resolve() for p in glob.glob(source.pattern))
        if not paths:
            raise FileNotFoundError(f"no access-log file matches {source.pattern!r}")
        files += [LogFile.identify(p, source.site) for p in paths if p.is_file()]
    return files


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


def extract(
    sources: list[Source] | str,
    interval: Interval,
    raw_root: Path,
    key: str,
    log_format: str | None = None,
    state_path: Path | None = None,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
    threads: int = 2,
) -> dict:
    """Land the interval's lines of every matching file as one batch; returns the summary."""
    if isinstance(sources, str):
        sources = parse_sources(sources, "support")
    fmt = LogFormat.parse(log_format)
    parser = Parser(fmt, interval, Pseudonymiser(key), threads=threads)
    state = FileState(state_path, fmt)
    files = find_files(sources)
    chosen = _chosen(files)
    total = Counts()
    entries = []
    writer_pool = ThreadPoolExecutor(max_workers=1)
    with landing(raw_root, "support_site", interval) as work:
        rows_out = pq.ParquetWriter(work / "lines.parquet", ROW_SCHEMA, store_schema=False)
        quarantine_out = pq.ParquetWriter(work / "quarantine.parquet", QUARANTINE_SCHEMA)
        pending: Future | None = None
        try:
            for file in files:
                entry = {"path": str(file.path), "site": file.site, "file_id": file.file_id}
                counts = Counts()
                reader = chosen[f"{file.site}|{file.file_id}"]
                if reader is not file:
                    entry["skipped"] = f"same content as {reader.path}"
                elif state.misses(file, interval):
                    entry["skipped"] = "known content with no line in the interval"
                else:
                    span: tuple[datetime, datetime] | None = None
                    carry = None
                    line_no = 1
                    for data in file.blocks(block_bytes):
                        lines = split_lines(data)
                        block = parser.parse(file, lines, line_no, carry)
                        if block.span:
                            carry = block.last
                            span = block.span if span is None else (
                                min(span[0], block.span[0]), max(span[1], block.span[1])
                            )  # fmt: skip
                        line_no += len(lines)
                        counts.add(block.counts)
                        if pending is not None:
                            pending.result()
                        pending = writer_pool.submit(rows_out.write_table, block.rows)
                        if len(block.quarantined):
                            quarantine_out.write_table(block.quarantined)
                    state.record(file, span, counts.lines_read)
                    entry["read_error"] = file.error
                entry |= counts.__dict__
                _check(entry, counts)
                total.add(counts)
                entries.append(entry)
            if pending is not None:
                pending.result()
        finally:
            writer_pool.shutdown()
            rows_out.close()
            quarantine_out.close()
        manifest = {
            "batch": interval.batch_id,
            "source": "support_site",
            "start": iso(interval.start),
            "end": iso(interval.end),
            "format": fmt.name,
            "records": total.rows,
            "quarantined": total.quarantined,
            "lines_read": total.lines_read,
            "outside_interval": total.outside_interval,
            "files": entries,
        }
        _check(manifest, total)
        write_manifest(work, manifest)
    state.save()
    return summary(manifest, raw_root / "support_site" / interval.batch_id)


def _check(entry: dict, counts: Counts) -> None:
    if counts.lines_read != counts.rows + counts.quarantined + counts.outside_interval:
        raise RuntimeError(f"line accounting does not add up: {entry}")
