"""extract._logparse on hostile input: real lines of the elastic log mutated at random (with a
fixed seed) and hand-written nasty lines, in the three kinds of format. Every line must come
back as a row or as a bad line, the buffers must make valid Arrow arrays of valid UTF-8, and
the values must be the line's own."""

from __future__ import annotations

import hashlib
import hmac
import random
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from extract import _logparse
from extract.access_log import NUMBERS, STRING_COLUMNS, _strings, line_text
from extract.log_format import LogFormat
from tests.conftest import REPO

CUSTOM = (
    '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
    '"$http_referer" "$http_user_agent" $request_time'
)
GOOD = (
    b'203.0.113.9 - - [17/May/2015:10:05:03 +0000] "GET /a.css?utm_source=News&x=1 HTTP/1.1" '
    b'200 512 "http://ref.example/p" "Mozilla/5.0"'
)
# what random mutations insert: quotes, escapes, NULs, bytes that are not UTF-8, separators
NASTY = [b'"', b"\\", b'\\"', b"\\\\", b"\x00", b"\xff", b"\xc3", b"\xe2\x82", b"\xed\xa0\x80"]
NASTY += [b"\xf0\x9f\x98", b"\xf4\x90\x80\x80", b"\xc0\xaf", b"\r", b"\t", b" ", b"[", b"]"]
NASTY += [b"?", b"&", b"#", b"-", b":", b"&utm_medium=", b".woff2", b"\xc3\xa9"]
TIME = re.compile(r"\[(\d\d/[A-Za-z]{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\]")
MIN_US = int(datetime(1, 1, 1, tzinfo=UTC).timestamp()) * 10**6
MAX_US = int(datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()) * 10**6 + 999_999


def parse(lines: list[bytes], spec: str | None = None) -> dict:
    """_logparse.parse of the lines as one block, checked against every invariant of its
    output; returns the rows as Python values (by column) and the bad lines."""
    assert all(b"\n" not in line for line in lines)
    block = b"".join(line + b"\n" for line in lines)
    out = _logparse.parse(memoryview(bytearray(block)), LogFormat.parse(spec).program)
    n = out["rows"]
    assert out["lines"] == len(lines)

    numbers = np.frombuffer(out["line_no"], np.int64)
    bad_buffers = zip(out["bad"], (np.int64, np.int64, np.int64, np.uint8), strict=True)
    bad, starts, ends, reasons = (np.frombuffer(b, t).tolist() for b, t in bad_buffers)
    assert len(numbers) == n and n + len(bad) == len(lines) == len(starts) + n == len(ends) + n
    assert sorted([*numbers.tolist(), *bad]) == list(range(len(lines)))  # each line once
    assert np.all(np.diff(numbers) > 0) and bad == sorted(bad)
    assert set(reasons) <= {1, 2}
    line_starts = np.cumsum([0] + [len(line) + 1 for line in lines]).tolist()
    for line_no, start, end in zip(bad, starts, ends, strict=True):
        assert (start, end) == (line_starts[line_no], line_starts[line_no] + len(lines[line_no]))
        assert block[start:end] == lines[line_no]

    columns: dict[str, pa.Array] = {}
    for name, buffers in zip(STRING_COLUMNS, out["strings"], strict=True):
        columns[name] = _strings(n, *buffers)
    stamps = np.frombuffer(out["requested_at"], np.int64)
    assert len(stamps) == n
    for name, arrow_type in NUMBERS.items():
        values, valid = out[name]
        assert memoryview(valid).nbytes == (n + 7) // 8
        assert memoryview(values).nbytes == (n * arrow_type.bit_width + 7) // 8
        columns[name] = pa.Array.from_buffers(
            arrow_type, n, [pa.py_buffer(valid), pa.py_buffer(values)]
        )
    for name, array in columns.items():
        assert len(array) == n, name
        array.validate(full=True)  # offsets in range, dictionary codes in range, UTF-8

    rows = {name: array.to_pylist() for name, array in columns.items()}
    rows["line_no"] = numbers.tolist()
    rows["requested_at"] = stamps.tolist()
    return {"rows": rows, "n": n, "bad": dict(zip(bad, reasons, strict=True))}


def row(result: dict, line_no: int) -> dict:
    rows = result["rows"]
    i = rows["line_no"].index(line_no)
    return {name: values[i] for name, values in rows.items()}


def unescape(text: str) -> str:
    return re.sub(r'\\(["\\])', r"\1", text)


def check_values_come_from_their_lines(lines: list[bytes], result: dict) -> None:
    """Each row's strings are pieces of its line (read as Python reads it), its stamp the
    time in brackets, its numbers plausible."""
    rows = result["rows"]
    for i, line_no in enumerate(rows["line_no"]):
        text = line_text(lines[line_no])
        assert rows["ip"][i] in text
        for name in STRING_COLUMNS:
            value = rows[name][i]
            assert value is None or value in text or value in unescape(text), (name, text)
        stamp = TIME.search(text)
        assert stamp, text
        try:
            expected = datetime.strptime(stamp.group(1), "%d/%b/%Y:%H:%M:%S %z")
        except ValueError:
            continue  # out of datetime's range: see test_stamps_stay_within_datetimes_range
        assert rows["requested_at"][i] == int(expected.timestamp()) * 10**6, text
        status, size = rows["status"][i], rows["bytes"][i]
        assert status is None or 0 <= status <= 999
        assert size is None or size >= 0


def mutate(rng: random.Random, line: bytes) -> bytes:
    data = bytearray(line)
    for _ in range(rng.choice((1, 1, 2, 3))):
        at = rng.randrange(len(data) + 1)
        op = rng.randrange(6)
        if op == 0 and data:
            data[min(at, len(data) - 1)] = rng.randrange(256)
        elif op == 1:
            data[at:at] = rng.choice(NASTY)
        elif op == 2:
            data[at:at] = rng.choice(NASTY) * rng.randrange(2, 40)
        elif op == 3:
            del data[at:]
        elif op == 4:
            del data[:at]
        else:
            del data[at : at + rng.randrange(1, 12)]
    return bytes(data).replace(b"\n", b"\\n")


def as_format(rng: random.Random, line: bytes, spec: str | None) -> bytes:
    if spec == "vhost_combined":
        return b"support%d.example:%d " % (rng.randrange(3), rng.choice((80, 443))) + line
    if spec == CUSTOM:
        return line + b" " + rng.choice((b"0.250", b"1", b"-", b"12.5", b"0.000"))
    return line


@pytest.mark.parametrize(
    "spec", [None, "vhost_combined", CUSTOM], ids=["combined", "vhost", "nginx"]
)
def test_mutated_real_lines_are_each_a_row_or_a_bad_line(
    elastic_log: Path, spec: str | None
) -> None:
    real = elastic_log.read_bytes().splitlines()
    rng = random.Random(f"logparse-{spec}")
    lines, intact = [], []
    for line in rng.sample(real, 2500):
        line = as_format(rng, line, spec)
        if rng.random() < 0.2:
            intact.append(len(lines))
        else:
            line = mutate(rng, line)
        lines.append(line)
    lines += [bytes(rng.randrange(256) for _ in range(rng.randrange(80))) for _ in range(50)]
    lines = [line.replace(b"\n", b"") for line in lines]

    result = parse(lines, spec)

    check_values_come_from_their_lines(lines, result)
    assert result["n"] > 1000  # most mutations leave the line readable
    # the real lines kept whole are read (the log's one truncated line aside), as cut at quotes
    for line_no in intact:
        parts = line_text(lines[line_no]).split('"')
        if len(parts) != 7:
            assert result["bad"][line_no] == 2
            continue
        got = row(result, line_no)
        words = parts[0].split()
        assert got["ip"] == words[1 if spec == "vhost_combined" else 0]
        assert got["status"] == int(parts[2].split()[0])
        assert got["user_agent"] == (None if parts[5] in ("", "-") else parts[5])
        if spec == "vhost_combined":
            assert got["site"] == words[0].split(":")[0]
    # cutting the block anywhere at a line end gives the same rows (the two-thread split)
    cut = len(lines) // 3
    first, second = parse(lines[:cut], spec), parse(lines[cut:], spec)
    assert first["n"] + second["n"] == result["n"]
    assert (
        first["rows"]["user_agent"] + second["rows"]["user_agent"] == result["rows"]["user_agent"]
    )


def test_every_prefix_and_every_nasty_byte_of_a_line() -> None:
    """Escapes, quotes, NULs and invalid UTF-8 at every position, lines cut at every length:
    nothing is lost, nothing read past a line's end."""
    lines = [GOOD[:i] for i in range(len(GOOD) + 1)]
    for nasty in (b'"', b"\\", b"\x00", b"\xff", b"\xe2\x82", b" "):
        lines += [GOOD[:i] + nasty + GOOD[i + 1 :] for i in range(len(GOOD))]
        lines += [GOOD[:i] + nasty for i in range(len(GOOD))]
    for spec in (None, "vhost_combined", CUSTOM):
        result = parse(lines, spec)
        check_values_come_from_their_lines(lines, result)
    result = parse(lines)
    assert row(result, len(GOOD))["path"] == "/a.css"  # the whole line
    # of its shorter prefixes, only those that end in the bytes are read (the common format)
    common = [i for i in range(len(GOOD)) if re.search(rb" 200 \d+ ?$", GOOD[:i])]
    assert common and sorted(result["rows"]["line_no"])[: len(common) + 1] == [*common, len(GOOD)]


def test_hand_written_nasty_lines() -> None:
    huge = b"A" * 1_000_000
    lines = {
        "empty": b"",
        "quote": b'"',
        "quotes": b'""""',
        "many quotes": b'"' * 1001,
        "backslash": b"\\",
        "backslashes": b"\\" * 1001,
        "open quote, backslash": b'"\\',
        "NULs": b"\x00" * 10,
        "not UTF-8": b"\xff\xfe\xc3",
        "spaces": b" \t \r",
        "escaped last quote": GOOD[:-1] + b'\\"',
        "ends in backslash": GOOD[:-1] + b"\\",
        "escaped backslash last": GOOD[:-1] + b'\\\\"',
        "escaped quote in path": GOOD.replace(b"/a.css", b'/a\\"b'),
        "NUL in agent": GOOD.replace(b"Mozilla", b"Moz\x00illa"),
        "invalid in agent": GOOD.replace(b"Mozilla", b"Mo\xffz\xe2\x82"),
        "backslash then invalid": GOOD.replace(b"Mozilla", b"Mo\\\xffz"),
        "carriage return": GOOD + b"\r",
        "huge agent": GOOD.replace(b"Mozilla/5.0", huge),
        "huge path": GOOD.replace(b"/a.css", b"/" + huge + b".JS"),
        "four words": GOOD.replace(b"GET /a", b"GET /a b"),
        "no request": GOOD.replace(b"GET /a.css?utm_source=News&x=1 HTTP/1.1", b"-"),
        "leap day": GOOD.replace(b"17/May/2015", b"29/Feb/2016"),
        "no leap day": GOOD.replace(b"17/May/2015", b"29/Feb/2015"),
        "upper month": GOOD.replace(b"May", b"MAY"),
        "offset 24h": GOOD.replace(b"+0000", b"+2400"),
        "second 60": GOOD.replace(b":03 +", b":60 +"),
        "19 digit bytes": GOOD.replace(b" 512 ", b" 9999999999999999999 "),
        "dash bytes": GOOD.replace(b" 512 ", b" - "),
    }
    names = list(lines)
    result = parse(list(lines.values()))
    check_values_come_from_their_lines(list(lines.values()), result)

    def get(name: str) -> dict:
        return row(result, names.index(name))

    def reason(name: str) -> int | None:
        return result["bad"].get(names.index(name))

    for name in ("empty", "quotes", "backslash", "backslashes", "NULs", "not UTF-8", "spaces"):
        assert reason(name) == 1, name
    for name in ("quote", "many quotes", "open quote, backslash", "escaped last quote"):
        assert reason(name) == 2, name
    for name in ("ends in backslash",):
        assert reason(name) == 2, name
    for name in ("no leap day", "offset 24h", "second 60"):
        assert reason(name) == 1, name
    assert get("escaped backslash last")["user_agent"] == "Mozilla/5.0\\"
    assert get("escaped quote in path")["path"] == '/a"b'
    assert get("NUL in agent")["user_agent"] == "Moz\x00illa/5.0"
    assert get("invalid in agent")["user_agent"] == "Mo\\xffz\\xe2\\x82/5.0"
    assert get("backslash then invalid")["user_agent"] == "Mo\\xffz/5.0"  # as Python reads it
    assert get("carriage return")["user_agent"] == "Mozilla/5.0"
    assert get("huge agent")["user_agent"] == huge.decode()
    assert get("huge path")["path"] == "/" + huge.decode() + ".JS"
    assert get("huge path")["is_static_asset"] is True
    assert get("four words")["method"] is None and get("four words")["path"] is None
    assert get("no request")["method"] is None and get("no request")["is_static_asset"] is None
    good = get("upper month")
    assert good["requested_at"] == 1431857103 * 10**6
    assert (good["method"], good["path"], good["query_string"]) == (
        "GET",
        "/a.css",
        "utm_source=News&x=1",
    )
    assert (good["utm_source"], good["utm_medium"], good["is_static_asset"]) == ("News", None, True)
    assert get("leap day")["requested_at"] == 1456740303 * 10**6
    assert get("19 digit bytes")["bytes"] is None and get("dash bytes")["bytes"] is None


def test_formats_with_unusual_literals() -> None:
    spec = "$host:$server_port $remote_addr » [$time_local] $status|$request_time"
    head = "ex.example:8080 198.51.100.7 » [17/May/2015:10:05:03 +0000] 404|"
    lines = [
        (head + "0.5").encode(),
        (head + "-").encode(),
        (head + "1.2.3").encode(),
        (head + "0.5").encode().replace(b"\xc2\xbb", b"\xc2\xa2"),  # the same first byte
        (head + "0.5").encode().replace(b"\xc2\xbb", b"\xc2"),
        b":8080 " + (head + "1").encode().split(b" ", 1)[1],
    ]
    result = parse(lines, spec)
    check_values_come_from_their_lines(lines, result)
    assert result["rows"]["site"] == ["ex.example", "ex.example"]
    assert result["rows"]["request_time"] == [0.5, None]
    assert result["rows"]["status"] == [404, 404]
    assert sorted(result["bad"]) == [2, 3, 4, 5]


# --- bugs found while fuzzing (fixed): formats that quote unusual fields, extreme dates, bounds


def test_a_quoted_status_that_is_not_3_digits_is_null() -> None:
    spec = '$remote_addr [$time_local] "$status"'
    values = ["", "2", "20", "abc", "2000", "71.212"]
    lines = [f'1.2.3.4 [17/May/2015:10:05:03 +0000] "{v}"'.encode() for v in values]
    result = parse(lines + [b'1.2.3.4 [17/May/2015:10:05:03 +0000] "404"'], spec)
    assert [s for s in result["rows"]["status"] if s is not None] == [404]


def test_a_quoted_request_time_that_is_not_a_number_is_null() -> None:
    spec = '$remote_addr [$time_local] "$request_time"'
    values = ["1.2.3.4", "abc", "", "0.5"]
    lines = [f'1.2.3.4 [17/May/2015:10:05:03 +0000] "{v}"'.encode() for v in values]
    assert parse(lines, spec)["rows"]["request_time"] == [None, None, None, 0.5]


def test_stamps_stay_within_datetimes_range() -> None:
    times = ["01/Jan/0000:10:05:03 +0000", "01/Jan/0001:00:30:00 +0100"]
    times += ["31/Dec/9999:23:59:59 -0100", "17/May/2015:10:05:03 +0000"]
    lines = [f'1.2.3.4 - - [{t}] "GET / HTTP/1.1" 200 1 "-" "-"'.encode() for t in times]
    stamps = parse(lines)["rows"]["requested_at"]
    assert all(MIN_US <= s <= MAX_US for s in stamps), stamps


def test_quoted_ip_and_host_are_unescaped() -> None:
    spec = '"$remote_addr" [$time_local] "$host"'
    line = b'"a\\"b" [17/May/2015:10:05:03 +0000] "c\\\\d"'
    rows = parse([line], spec)["rows"]
    assert (rows["ip"], rows["site"]) == (['a"b'], ["c\\d"])


# --- hmac_ids: visitor ids by OpenSSL's HMAC, from C


def expected_ids(key: bytes, values: list[bytes]) -> bytes:
    return "".join(hmac.new(key, v, hashlib.sha256).hexdigest()[:32] for v in values).encode()


@pytest.mark.parametrize("key_len", [1, 16, 32, 63, 64, 65, 200])
def test_hmac_ids_is_hmac_sha256(key_len: int) -> None:
    """Keys shorter than, as long as and longer than SHA-256's 64-byte block (hashed first),
    values of every length over 0 to 2 blocks and longer, from an offset into the array."""
    rng = random.Random(2104 + key_len)
    key = rng.randbytes(key_len)
    values = [rng.randbytes(n) for n in (*range(0, 130), 1000, 5000)]
    values += [b"203.0.113.9", b"2001:db8::1", b"::ffff:192.0.2.1", "hôte-ü".encode()]
    offsets = np.cumsum([0, *map(len, values)]).astype(np.int32)
    got = _logparse.hmac_ids(offsets.tobytes(), b"".join(values), 3, len(values) - 3, key)
    assert got == expected_ids(key, values[3:])
    assert _logparse.hmac_ids(offsets.tobytes(), b"".join(values), 5, 0, key) == b""


def test_hmac_ids_with_a_non_ascii_key_and_in_threads() -> None:
    key = "clé-secrète-ünïcode".encode()
    values = [f"10.{i // 256}.{i % 256}.1".encode() for i in range(5000)]
    offsets = np.cumsum([0, *map(len, values)]).astype(np.int32).tobytes()
    data = b"".join(values)
    with ThreadPoolExecutor(2) as pool:  # the GIL is released: two calls at once
        results = list(pool.map(lambda _: _logparse.hmac_ids(offsets, data, 0, 5000, key), "ab"))
    assert results == [expected_ids(key, values)] * 2


@pytest.mark.parametrize(
    ("offsets", "data", "offset", "n", "key"),
    [
        ([0, 3, 2], b"abc", 0, 2, b"k"),  # offsets going back
        ([0, 3, 4], b"abc", 0, 2, b"k"),  # past the end of the data
        ([-1, 3], b"abc", 0, 1, b"k"),  # negative
        ([0, 3], b"abc", 0, 2, b"k"),  # more values than offsets
        ([0, 3], b"abc", 1, 1, b"k"),
        ([0, 3], b"abc", -1, 1, b"k"),
        ([0, 3], b"abc", 0, -1, b"k"),
        ([], b"", 0, 0, b"k"),  # not even the first offset
        ([0, 3], b"abc", 0, 1, b""),  # an empty key
        ([0] * (1 << 20), b"", 0, 2**62, b"k"),  # a count whose 32 bytes each would wrap
    ],
)
def test_hmac_ids_refuses_bad_arguments(offsets, data, offset, n, key) -> None:
    with pytest.raises(ValueError, match="hmac_ids"):
        _logparse.hmac_ids(np.array(offsets, np.int32).tobytes(), data, offset, n, key)


def test_the_c_enums_are_checked_against_the_python_tuples(monkeypatch) -> None:
    from extract import access_log

    access_log._check_c_enums()  # as at import: they agree
    swapped = ("site", "ip", *access_log.STRING_COLUMNS[2:])
    monkeypatch.setattr(access_log, "STRING_COLUMNS", swapped)
    with pytest.raises(ImportError, match="'C_SITE': 1, 'C_IP': 0"):
        access_log._check_c_enums()


# --- make fuzz: the same parser under ASan/UBSan, fed random and mutated lines


def fuzz(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, str(REPO / "scripts" / "fuzz_logparse.py"), "--seed", "7"]
    return subprocess.run(
        [*command, *args], cwd=REPO, capture_output=True, text=True, timeout=300, check=False
    )


def test_make_fuzz_passes_the_parser_and_catches_a_read_past_a_line(tmp_path: Path) -> None:
    clean = fuzz("--seconds", "1")
    assert clean.returncode == 0, clean.stdout + clean.stderr[-3000:]
    assert "no sanitizer report, every check passed" in clean.stdout
    # the same parser reading one byte past each line: past the last one is past the block
    source = (REPO / "extract" / "_logparse.c").read_text()
    anchor = "    Py_ssize_t end = start + len;"  # the first statement of parse_line
    assert source.count(anchor) == 1
    past = "(void)*(volatile const char *)(line + len + 1);"
    broken = tmp_path / "_logparse.c"
    broken.write_text(source.replace(anchor, past + anchor))
    caught = fuzz("--seconds", "1", "--source", str(broken))
    assert caught.returncode == 1, caught.stdout + caught.stderr[-3000:]
    assert "AddressSanitizer: heap-buffer-overflow" in caught.stderr
    assert "FUZZ_SEED=7 FUZZ_REPLAY=0 make fuzz" in caught.stdout
