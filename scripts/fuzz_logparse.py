"""`make fuzz`: extract/_logparse.c under AddressSanitizer and UndefinedBehaviorSanitizer.

Builds the extension again, with `-fsanitize=address,undefined`, into a temporary directory
(Python's own compiler and flags from sysconfig, as setuptools uses them, plus the
sanitizers), then runs a Python with the ASan runtime preloaded that feeds it, for
FUZZ_SECONDS (default 60) from FUZZ_SEED (default: a new one, printed), blocks of:

- real lines of ../shared/data/access_logs/apache_logs_elastic_2015.log and generated lines,
  mutated: byte flips, truncations, cut heads, quotes, backslashes, NULs, bytes that are
  not UTF-8, huge fields (up to 1 MiB), random bytes, empty and blank lines;
- in every kind of format the parser supports: combined (falling back to common),
  vhost_combined, the nginx format of docs/configuration.md, random nginx `log_format` strings over
  every variable of extract/log_format.py, and random token programs that
  `_logparse.parse` accepts but no format string compiles to;
- each block copied into memory of exactly its size (a read past its end is an ASan
  report), sometimes without its last newline, sometimes parsed by two threads at once;
- and `hmac_ids` (the visitor ids, OpenSSL's HMAC) on random values and keys, in buffers of
  exactly their size, checked against Python's `hmac`, and on broken offsets, which it must
  refuse.

Every parse is checked as tests/test_logparse.py checks it (every line a row or a bad line,
byte spans, valid Arrow arrays of valid UTF-8). It exits non-zero on any sanitizer report,
crash or failed check, saying which iteration; `--replay N` (FUZZ_REPLAY) runs that one
iteration again with the same seed. Needs gcc (or clang) with its ASan/UBSan runtimes.
"""

from __future__ import annotations

import argparse
import ctypes
import importlib.util
import json
import os
import random
import shlex
import subprocess
import sys
import sysconfig
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SOURCE = REPO / "extract" / "_logparse.c"
SHARED_LOG = REPO.parent / "shared" / "data" / "access_logs" / "apache_logs_elastic_2015.log"
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
SANITIZE += ["-fno-omit-frame-pointer", "-g", "-O1"]
# Python's CFLAGS say -fwrapv (signed overflow wraps): undone here, so that UBSan reports
# any signed overflow, a wrong value either way
SANITIZE += ["-fno-wrapv"]
LIBRARIES = ["-lcrypto"]  # as setup.py links it: OpenSSL's HMAC for hmac_ids
REPORTS = ("ERROR: AddressSanitizer", "runtime error:", "Segmentation fault", "Fatal Python")


# --- the parent: build, run, judge --------------------------------------------------------


def config(name: str) -> list[str]:
    return shlex.split(sysconfig.get_config_var(name) or "")


def build(out: Path, source: Path = SOURCE) -> Path:
    """extract/_logparse.c compiled and linked as setuptools does it (sysconfig's CC,
    CFLAGS, CCSHARED, LDSHARED, and libcrypto), with the sanitizers added."""
    obj = out / "_logparse.o"
    target = out / ("_logparse" + sysconfig.get_config_var("EXT_SUFFIX"))
    include = ["-I", sysconfig.get_paths()["include"]]
    compile_ = [*config("CC"), *config("CFLAGS"), *config("CCSHARED"), *include, *SANITIZE]
    link = [*config("LDSHARED"), *SANITIZE, str(obj), "-o", str(target), *LIBRARIES]
    for command in ([*compile_, "-c", str(source), "-o", str(obj)], link):
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            sys.exit(f"fuzz: build failed:\n{shlex.join(command)}\n{result.stderr}")
    return target


def runtime() -> str:
    """The compiler's ASan runtime, to preload into the (uninstrumented) Python."""
    result = subprocess.run(
        [*config("CC"), "-print-file-name=libasan.so"], capture_output=True, text=True
    )
    path = result.stdout.strip()
    if result.returncode != 0 or not os.path.isabs(path) or not os.path.exists(path):
        sys.exit("fuzz: the C compiler has no ASan runtime (libasan.so): install gcc's")
    return os.path.realpath(path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seconds", type=float, default=float(os.environ.get("FUZZ_SECONDS") or 60)
    )
    parser.add_argument("--seed", type=int, default=int(os.environ.get("FUZZ_SEED") or 0) or None)
    parser.add_argument("--replay", type=int, default=os.environ.get("FUZZ_REPLAY") or None)
    parser.add_argument("--source", type=Path, default=SOURCE, help=argparse.SUPPRESS)
    parser.add_argument("--child", nargs=2, metavar=("LIBRARY", "STATUS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    seed = args.seed or random.SystemRandom().randrange(1, 2**31)
    if args.child:
        return child(Path(args.child[0]), Path(args.child[1]), args.seconds, seed, args.replay)

    with tempfile.TemporaryDirectory(prefix="fuzz-logparse-") as tmp:
        started = time.perf_counter()
        library = build(Path(tmp), args.source)
        print(f"fuzz: built {SOURCE.name} with {' '.join(SANITIZE)} "
              f"({time.perf_counter() - started:.1f} s)", flush=True)  # fmt: skip
        status, log = Path(tmp) / "status", Path(tmp) / "stderr"
        env = {
            **os.environ,
            "LD_PRELOAD": runtime(),
            "ASAN_OPTIONS": "detect_leaks=0:halt_on_error=1:abort_on_error=0",
            "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1",
            "PYTHONMALLOC": "malloc",  # Python's objects in ASan's heap, with redzones
        }
        command = [sys.executable, __file__, "--child", str(library), str(status)]
        command += ["--seconds", str(args.seconds), "--seed", str(seed)]
        if args.replay is not None:
            command += ["--replay", str(args.replay)]
        with open(log, "w") as errors:
            result = subprocess.run(
                command, stdout=subprocess.PIPE, stderr=errors, text=True, cwd=REPO, env=env,
                timeout=args.seconds + 600, check=False,
            )  # fmt: skip
        stderr = log.read_text(errors="backslashreplace")
        reported = [r for r in REPORTS if r in stderr]
        if result.returncode != 0 or reported:
            at = status.read_text().strip() if status.exists() else "?"
            sys.stderr.write(stderr[-20000:])
            print(f"fuzz: FAILED at iteration {at} (exit {result.returncode}"
                  f"{', ' + ', '.join(reported) if reported else ''}); replay it with"
                  f" FUZZ_SEED={seed} FUZZ_REPLAY={at} make fuzz")  # fmt: skip
            return 1
        summary = json.loads(result.stdout.splitlines()[-1])
        print(f"fuzz: seed {seed}: {summary['iterations']:,} inputs in"
              f" {summary['seconds']:.0f} s: {summary['blocks']:,} blocks parsed,"
              f" {summary['lines']:,} lines ({summary['rows']:,} rows, {summary['bad']:,} bad;"
              f" {summary['bytes'] / 2**20:,.0f} MiB), {summary['programs']:,} of them with raw"
              f" token programs; {summary['refused_programs']:,} raw programs and"
              f" {summary['refused_formats']:,} random formats refused cleanly;"
              f" hmac_ids: {summary['hmac_calls']:,} calls, {summary['hmac_values']:,} ids"
              f" equal to hmac's, {summary['hmac_refused']:,} broken calls refused;"
              f" no sanitizer report, every check passed")  # fmt: skip
    return 0


# --- the child: under the sanitizers --------------------------------------------------------


class ExactBuffers:
    """The sanitized module, whose parse() reads a copy of the block in memory of exactly
    its size, so that ASan sees any read past the block's end."""

    def __init__(self, module: object) -> None:
        self.module = module

    def parse(self, block: object, program: tuple) -> dict:
        data = bytes(block)
        return self.module.parse((ctypes.c_char * len(data)).from_buffer_copy(data), program)

    def hmac_ids(self, offsets: bytes, data: bytes, *args: object) -> bytes:
        exact = [(ctypes.c_char * len(b)).from_buffer_copy(b) for b in (offsets, data)]
        return self.module.hmac_ids(*exact, *args)

    def __getattr__(self, name: str) -> object:
        return getattr(self.module, name)


def load(library: Path) -> ExactBuffers:
    """The sanitized build as `extract._logparse`, for every module that imports it."""
    spec = importlib.util.spec_from_file_location("extract._logparse", library)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules["extract._logparse"] = module
    import extract

    extract._logparse = module
    maps = Path("/proc/self/maps").read_text()
    if str(library) not in maps or "libasan" not in maps or "libubsan" not in maps:
        raise SystemExit("fuzz: the sanitized build or its runtimes are not loaded")
    return ExactBuffers(module)


# values of each variable's kind, well-formed or not
WORDS = ["-", "", "GET", "POST", "/", "/a?b=c&utm_source=X", "HTTP/1.1", "x" * 70, "\\", '\\"']
WORDS += ["utm_medium=", "%zz", "é", "🙂", "1.2.3.4", "::1", "[", "]", ":", "+0000", "00"]


def value(rng: random.Random, kind: str) -> str:
    if rng.random() < 0.15:
        return "".join(rng.choice(WORDS) for _ in range(rng.randrange(4)))
    if kind == "time":
        day, month = rng.randrange(0, 33), rng.choice(["May", "Jan", "Dec", "Foo", "may"])
        year = rng.choice([0, 1, 1970, 2015, 2038, 9999, 10000])
        clock = f"{rng.randrange(25):02d}:{rng.randrange(61):02d}:{rng.randrange(61):02d}"
        return f"{day:02d}/{month}/{year:04d}:{clock} {rng.choice('+-')}{rng.randrange(10000):04d}"
    if kind in ("status", "digits"):
        return str(rng.choice([200, 404, 0, 99, 1000, 65536, 2**40]))
    if kind == "bytes":
        return rng.choice(["-", "0", "512", str(2**63), str(2**64), "-1"])
    if kind == "seconds":
        return rng.choice(["0.123", "1", "-", "1e308", "1e999", "nan", ".", "0." + "9" * 80])
    if kind == "host":
        return rng.choice(["support.example", "a:b", "x" * 300, "[::1]", "-"])
    if kind == "token":  # remote_addr
        return rng.choice(["203.0.113.9", "2001:db8::1", "::ffff:1.2.3.4", "unknown", "-"])
    if kind == "request":
        return f"{rng.choice(['GET', 'POST', ''])} {rng.choice(WORDS)} {rng.choice(WORDS)}"
    return rng.choice(WORDS)  # referrer, user agent, any other variable


def random_format(rng: random.Random) -> str:
    """An nginx log_format string over every variable log_format knows (and others)."""
    from extract.log_format import KIND_OF

    names = [*KIND_OF, "request", "http_referer", "http_user_agent", "remote_user", "x"]
    chosen = ["remote_addr", "time_local", *rng.sample(names, rng.randrange(0, 8))]
    rng.shuffle(chosen)
    parts = []
    for name in chosen:
        quoted = rng.random() < 0.4
        field = f'"${name}"' if quoted else f"${name}"
        if name == "time_local" and rng.random() < 0.8:
            field = f"[{field}]"
        separators = [" ", " - ", ":", " | ", "\t", ",", "  ", " [", "] "]
        parts += [field, rng.choice(separators) if rng.random() < 0.97 else ""]
    return "".join(parts[:-1])


def render(rng: random.Random, spec: str) -> bytes:
    """A line of format `spec` with values of each variable's kind."""
    import re

    from extract.log_format import KIND_OF

    def one(m: re.Match) -> str:
        return value(rng, "request" if m[1] == "request" else KIND_OF.get(m[1], "any"))

    return re.sub(r"\$([a-z_]+)", one, spec).encode()


def random_program(rng: random.Random) -> tuple:
    """A token program `parse` accepts (or should refuse) that no format compiles to:
    variables side by side, any kind for any field, odd literals, bad numbers."""
    from extract.log_format import FIELDS, KINDS

    variants = []
    for _ in range(rng.choice([1, 1, 2, 8, 9, 0])):
        tokens = []
        for _ in range(rng.choice([0, 1, 3, 9, 20, 64, 65])):
            kind = rng.randrange(len(KINDS)) if rng.random() < 0.97 else rng.choice([-1, 99])
            field = rng.randrange(-1, len(FIELDS)) if rng.random() < 0.97 else 2**31 - 1
            literal = rng.choice([b" ", b'"', b"[", b"] ", b"\\", b"\x00", b"", b"\n", b"ab"])
            tokens.append((kind, field, literal if kind == 0 else b""))
        variants.append(tuple(tokens))
    return tuple(variants)


def visitor_ids(parser: ExactBuffers, rng: random.Random, real: list[bytes]) -> dict:
    """hmac_ids on random values (IPs of the log, random bytes, long ones) and keys: the ids
    must be Python's hmac's; broken offsets must be refused with a ValueError."""
    import hashlib
    import hmac

    import numpy as np

    key = rng.randbytes(rng.choice([1, 16, 63, 64, 65, 300]))
    pool = [b"", b"\x00", b"\xff" * 64, b"2001:db8::1", b"x" * 5000]
    values = [
        rng.choice(real).split(b" ")[0] if rng.random() < 0.5 else rng.choice(pool)
        for _ in range(rng.randrange(50))
    ]
    values += [rng.randbytes(rng.randrange(200)) for _ in range(rng.randrange(5))]
    rng.shuffle(values)
    offsets = np.cumsum([0, *map(len, values)]).astype(np.int32)
    data = b"".join(values)
    start = rng.randrange(len(values) + 1)
    n = len(values) - start
    if rng.random() < 0.3:  # broken: an offset out of order or past the data, a bad count
        broken = offsets.copy()
        what = rng.randrange(3)
        if what == 0 and len(broken) > 1:
            broken[rng.randrange(len(broken))] = rng.choice([-1, len(data) + 1, 2**31 - 1])
        elif what == 1:
            n += rng.choice([1, 2**20, 2**62])
        else:
            start = rng.choice([-1, len(values) + 1])
        try:
            parser.hmac_ids(broken.tobytes(), data, start, n, key)
        except ValueError:
            return {"hmac_calls": 1, "hmac_refused": 1}
        # an offset changed where no value reads it (or to a value still in range)
        return {"hmac_calls": 1}
    got = parser.hmac_ids(offsets.tobytes(), data, start, n, key)
    want = "".join(hmac.new(key, v, hashlib.sha256).hexdigest()[:32] for v in values[start:])
    assert got == want.encode(), (key, values[start:])
    return {"hmac_calls": 1, "hmac_values": n}


def iteration(parser: ExactBuffers, t: object, real: list[bytes], seed: int, i: int) -> dict:
    """One block: lines of a format, mutated, parsed and checked (every 20th iteration, a
    call of hmac_ids instead); returns its counts."""
    from extract.log_format import LogFormat

    rng = random.Random(f"{seed}-{i}")
    if i % 20 == 19:
        return visitor_ids(parser, rng, real)
    roll = rng.random()
    if roll < 0.1:  # a raw program: parse must refuse it cleanly or read every line
        program = random_program(rng)
        block = bytes(rng.randrange(256) for _ in range(rng.randrange(2000)))
        block += rng.choice(real) + b"\n"
        try:
            out = parser.parse(block, program)
        except (ValueError, TypeError, OverflowError):
            return {"programs": 1, "refused_programs": 1, "bytes": len(block)}
        assert out["lines"] == block.count(b"\n")
        return counts(out["lines"], out["rows"], len(block), programs=1)
    if roll < 0.45:
        spec = rng.choice([None, "vhost_combined", t.CUSTOM])
        lines = [t.as_format(rng, rng.choice(real), spec) for _ in range(rng.randrange(1, 300))]
    else:
        spec = random_format(rng)
        try:
            LogFormat.parse(spec)
        except ValueError:
            return {"refused_formats": 1}
        lines = [render(rng, spec) for _ in range(rng.randrange(1, 300))]
    lines = [t.mutate(rng, line) if rng.random() < 0.7 else line for line in lines]
    for _ in range(rng.randrange(3)):  # huge fields, random bytes, blank lines
        at = rng.randrange(len(lines))
        what = rng.randrange(4)
        if what == 0:
            cut = rng.randrange(len(lines[at]) + 1)
            filler = rng.choice([b"A", b'"', b"\\", b"\x00", b"\xff", b" ", b"\xe2\x82"])
            size = rng.choice([1000, 65536, 1 << 20])
            lines[at] = lines[at][:cut] + filler * (size // len(filler)) + lines[at][cut:]
        elif what == 1:
            lines[at] = bytes(rng.randrange(256) for _ in range(rng.randrange(200)))
        else:
            lines[at] = rng.choice([b"", b" ", b"\t \r", b"\\"])
    lines = [line.replace(b"\n", b"") for line in lines]
    if rng.random() < 0.1:  # a block whose last line has no newline: that line is not read
        block = b"\n".join(lines)
        out = parser.parse(block, LogFormat.parse(spec).program)
        assert out["lines"] == block.count(b"\n"), (out["lines"], block.count(b"\n"))
        return counts(out["lines"], out["rows"], len(block))
    parts = [lines]
    if rng.random() < 0.1 and len(lines) > 1:  # two threads at once, as the extraction does
        parts = [lines[: len(lines) // 2], lines[len(lines) // 2 :]]
    with ThreadPoolExecutor(len(parts)) as pool:
        results = list(pool.map(lambda part: t.parse(part, spec), parts))
    if spec in (None, "vhost_combined", t.CUSTOM):  # values are pieces of their own line
        for part, result in zip(parts, results, strict=True):
            t.check_values_come_from_their_lines(part, result)
    rows = sum(r["n"] for r in results)
    return counts(len(lines), rows, sum(len(line) + 1 for line in lines))


def counts(lines: int, rows: int, size: int, programs: int = 0) -> dict:
    return {"blocks": 1, "lines": lines, "rows": rows, "bad": lines - rows, "bytes": size,
            "programs": programs}  # fmt: skip


def child(library: Path, status: Path, seconds: float, seed: int, replay: int | None) -> int:
    parser = load(library)
    sys.path.insert(0, str(REPO))
    from tests import test_logparse as t

    t._logparse = parser  # the tests' checking parse() on the sanitized build
    real = SHARED_LOG.read_bytes().splitlines() if SHARED_LOG.is_file() else [t.GOOD]
    totals = dict.fromkeys(["blocks", "lines", "rows", "bad", "bytes", "programs"], 0)
    totals |= {"refused_programs": 0, "refused_formats": 0}
    totals |= {"hmac_calls": 0, "hmac_values": 0, "hmac_refused": 0}
    started = time.perf_counter()
    fd = os.open(status, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    i = replay if replay is not None else 0
    while True:
        os.pwrite(fd, f"{i:<12}".encode(), 0)
        for key, count in iteration(parser, t, real, seed, i).items():
            totals[key] += count
        i += 1
        if replay is not None or time.perf_counter() - started >= seconds:
            break
    totals["iterations"] = i - (replay or 0)
    totals["seconds"] = time.perf_counter() - started
    print(json.dumps(totals))
    return 0


if __name__ == "__main__":
    sys.exit(main())
