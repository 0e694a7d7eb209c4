"""Access-log formats: an nginx-style `log_format` string compiled to one DuckDB query.

A line is cut at its double quotes (Apache and nginx quote exactly the request, referrer
and user agent); the unquoted pieces between them are matched by short anchored regular
expressions, so the expensive whole-line regex is never run. Lines whose quoted values
contain backslash escapes (``\\"``) are cut in Python instead (`split_quoted`), then go
through the same query; a line that fits no variant of the format is not parsed and is
quarantined by the caller.

Variables understood (any other ``$name`` is matched and dropped):

    $remote_addr       client IP (required; pseudonymised before landing)
    $time_local        [17/May/2015:10:05:03 +0000] (required, in brackets in the format)
    $request           "GET /path?query HTTP/1.1"
    $status            3 digits
    $body_bytes_sent   bytes or "-" (also $bytes_sent)
    $http_referer      referrer, "-" for none
    $http_user_agent   user agent, "-" for none
    $request_time      seconds, as nginx writes it (0.123)
    $host              the virtual host (also $server_name): becomes the row's site
"""

from __future__ import annotations

import re
from dataclasses import dataclass

COMBINED = (
    '$remote_addr $remote_ident $remote_user [$time_local] "$request" $status '
    '$body_bytes_sent "$http_referer" "$http_user_agent"'
)
COMMON = '$remote_addr $remote_ident $remote_user [$time_local] "$request" $status $body_bytes_sent'
# name -> variants tried in turn (told apart by their number of quoted fields)
FORMATS: dict[str, tuple[str, ...]] = {
    "combined": (COMBINED, COMMON),
    "vhost_combined": ("$host:$server_port " + COMBINED, "$host:$server_port " + COMMON),
}
DEFAULT_FORMAT = "combined"

# regex of each unquoted variable; the capture group is added when the value is kept
UNQUOTED = {
    "remote_addr": r"\S+",
    "time_local": r"[^\]]+",
    "status": r"\d{3}",
    "body_bytes_sent": r"\d+|-",
    "bytes_sent": r"\d+|-",
    "request_time": r"\d+(?:\.\d+)?|-",
    "host": r"[^\s:]+",
    "server_name": r"[^\s:]+",
    "server_port": r"\d+",
}
KEPT = {
    "remote_addr": "ip",
    "time_local": "time_local",
    "request": "request",
    "status": "status",
    "body_bytes_sent": "bytes",
    "bytes_sent": "bytes",
    "http_referer": "referrer",
    "http_user_agent": "user_agent",
    "request_time": "request_time",
    "host": "site",
    "server_name": "site",
}
VARIABLE = re.compile(r"\$([a-z_]+)")
QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')
# matched against the last 6 characters of the path (no match is longer: ".woff2")
STATIC_ASSET = r"\.(?i:css|js|mjs|png|jpe?g|gif|webp|avif|svg|ico|woff2?|ttf|eot|map)$"
FIELDS = ("ip", "time_local", "request", "status", "bytes", "referrer", "user_agent")
FIELDS += ("request_time", "site")


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _escape(text: str) -> str:
    """Literal text for RE2 (Python's re.escape also escapes spaces, which RE2 refuses)."""
    return re.sub(r"([\\.^$|?*+()\[\]{}])", r"\\\1", text)


def _unquoted_regex(piece: str, last: bool) -> tuple[str, list[str]]:
    """Anchored RE2 regex of an unquoted piece of the format, and the names it captures."""
    pattern, names, pos = "", [], 0
    for m in VARIABLE.finditer(piece):
        pattern += _escape(piece[pos : m.start()])
        name = m.group(1)
        body = UNQUOTED.get(name, r"\S*")
        if name in KEPT:
            pattern += f"({body})"
            names.append(KEPT[name])
        else:
            pattern += f"(?:{body})"
        pos = m.end()
    pattern += _escape(piece[pos:])
    return "^" + pattern + (r"\s*$" if last else "$"), names


@dataclass(frozen=True)
class Variant:
    """One layout: how many pieces a line cuts into at its quotes, and how to read them."""

    pieces: int
    unquoted: tuple[tuple[int, str, tuple[str, ...]], ...]  # (1-based piece, regex, names)
    quoted: tuple[tuple[int, str | None], ...]  # (1-based piece, kept name or None)

    @classmethod
    def compile(cls, text: str) -> Variant:
        parts = text.split('"')
        if len(parts) % 2 == 0:
            raise ValueError(f"log format has an unbalanced double quote: {text!r}")
        unquoted, quoted = [], []
        for index, part in enumerate(parts):
            if index % 2:
                names = VARIABLE.fullmatch(part)
                if not names:
                    raise ValueError(f"a quoted field must be one $variable, not {part!r}")
                quoted.append((index + 1, KEPT.get(names.group(1))))
            else:
                regex, names = _unquoted_regex(part, last=index == len(parts) - 1)
                unquoted.append((index + 1, regex, tuple(names)))
        variant = cls(len(parts), tuple(unquoted), tuple(quoted))
        kept = variant.names
        for required in ("ip", "time_local"):
            if required not in kept:
                raise ValueError(
                    f"log format must contain ${required.replace('ip', 'remote_addr')}"
                )
        return variant

    @property
    def names(self) -> set[str]:
        kept = {n for _, _, names in self.unquoted for n in names}
        return kept | {n for _, n in self.quoted if n}

    def columns(self, tag: str) -> tuple[list[str], str, dict[str, str]]:
        """For lines cut into this many pieces (columns p1, p2, ... and n): the regex
        extractions to compute, the SQL condition that the line fits, and the SQL of each
        kept value."""
        extracts, checks, values = [], [], {}
        when = f"case when n = {self.pieces} then"
        for piece, regex, names in self.unquoted:
            if not names:
                checks.append(f"regexp_full_match(p{piece}, {_sql_string(regex)})")
                continue
            alias = f"{tag}_u{piece}"
            extracts.append(
                f"{when} regexp_extract(p{piece}, {_sql_string(regex)}, {list(names)!r}) end "
                f"as {alias}"
            )
            checks.append(f"{alias}.{names[0]} <> ''")
            values |= {name: f"{alias}.{name}" for name in names}
        values |= {name: f"p{piece}" for piece, name in self.quoted if name}
        return extracts, " and ".join(checks) or "true", values


@dataclass(frozen=True)
class LogFormat:
    name: str
    variants: tuple[Variant, ...]

    @classmethod
    def parse(cls, spec: str | None) -> LogFormat:
        """A named format (combined, vhost_combined) or an nginx-style format string."""
        spec = spec or DEFAULT_FORMAT
        texts = FORMATS.get(spec, (spec,))
        variants = tuple(Variant.compile(t) for t in texts)
        if len({v.pieces for v in variants}) != len(variants):
            raise ValueError("format variants must differ in their number of quoted fields")
        return cls(spec, variants)

    @property
    def has_site(self) -> bool:
        return any("site" in v.names for v in self.variants)

    def sql(self, source: str) -> str:
        """The query that parses `source` (columns line_no, p: the line cut at its quotes)."""
        most = max(v.pieces for v in self.variants)
        pieces = ", ".join(f"p[{k}] as p{k}" for k in range(1, most + 1))
        extracts, oks, values = [], [], {n: [] for n in FIELDS}
        for index, variant in enumerate(self.variants):
            columns, ok, kept = variant.columns(f"v{index}")
            extracts += columns
            oks.append(f"when {variant.pieces} then {ok}")
            for name in FIELDS:
                if name in kept:
                    values[name].append(f"when {variant.pieces} then {kept[name]}")
        fields = [f"case n {' '.join(oks)} else false end as ok"]
        fields += [
            f"case n {' '.join(cases)} end as {name}" if cases else f"null::varchar as {name}"
            for name, cases in values.items()
        ]
        return PARSE_SQL.format(
            pieces=f"select line_no, len(p) as n, {pieces} from {source}",
            extracted=f"select *, {', '.join(extracts)} from pieces" if extracts else "pieces",
            fields=f"select line_no, {', '.join(fields)} from extracted",
        )


def _utm(column: str, name: str) -> str:
    """A utm parameter of the request target: url-decoded, trimmed, lowercased, or null."""
    value = f"regexp_extract({column}, '[?&]{name}=([^&#]*)', 1)"
    return (
        f"case when contains({column}, '{name}=') then "
        f"nullif(lower(trim(url_decode(replace({value}, '+', ' ')))), '') end as {name}"
    )


# the first three steps depend on the format (LogFormat.sql); the rest is the same for all
PARSE_SQL = (
    """
with pieces as ({pieces}),
extracted as ({extracted}),
fields as ({fields}),
typed as (
    select
        line_no, ok, ip, request, referrer, user_agent, site,
        try_strptime(substr(time_local, 1, 20), '%d/%b/%Y:%H:%M:%S') as local_time,
        case when length(time_local) = 26 and substr(time_local, 21, 2) in (' +', ' -')
            then (case substr(time_local, 22, 1) when '-' then -1 else 1 end)
                * (try_cast(substr(time_local, 23, 2) as utinyint) * 60
                   + try_cast(substr(time_local, 25, 2) as utinyint))
        end as offset_minutes,
        try_cast(status as smallint) as status,
        try_cast(nullif(bytes, '-') as bigint) as bytes,
        try_cast(nullif(request_time, '-') as double) as request_time,
        string_split(request, ' ') as r
    from fields
),
parsed as (
    select
        line_no,
        ok and local_time is not null and offset_minutes is not null as ok,
        ip, site,
        local_time - to_minutes(offset_minutes) as requested_at,
        case when len(r) <= 3 and r[1] not in ('', '-') then r[1] end as method,
        case when len(r) <= 3 then r[2] end as target,
        case when len(r) <= 3 then r[3] end as protocol,
        status, bytes, request_time,
        nullif(nullif(referrer, '-'), '') as referrer,
        nullif(nullif(user_agent, '-'), '') as user_agent
    from typed
)
select
    line_no, ok, ip, site, requested_at, method,
    split_part(target, '?', 1) as path,
    case when strpos(target, '?') > 0
        then nullif(substr(target, strpos(target, '?') + 1), '') end as query_string,
    protocol, status, bytes, request_time, referrer,
    """
    + ",\n    ".join(_utm("target", n) for n in ("utm_source", "utm_medium", "utm_campaign"))
    + """,
    user_agent,
    regexp_matches(right(split_part(target, '?', 1), 6), """
    + _sql_string(STATIC_ASSET).replace("{", "{{").replace("}", "}}")
    + """) as is_static_asset
from parsed
"""
)


def split_quoted(line: str) -> list[str] | None:
    """A line cut at its quotes like `string_split(line, '"')`, but honouring backslash
    escapes inside quoted values (which are unescaped); None when a quote is unbalanced."""
    pieces, pos = [], 0
    for m in QUOTED.finditer(line):
        pieces += [line[pos : m.start()], re.sub(r"\\([\"\\])", r"\1", m.group(1))]
        pos = m.end()
    rest = line[pos:]
    if '"' in rest:
        return None
    return [*pieces, rest]
