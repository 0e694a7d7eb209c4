"""Access-log formats: an nginx-style `log_format` string compiled to the token program that
`extract._logparse.parse` matches lines against.

A format is literal text, unquoted `$variables` and quoted `"$variable"` fields. A line is
matched left to right: literal text must be there as written; an unquoted value runs to the
first character its variable does not allow (or the first character of the literal text
after it) and must then look like its variable (a status is 3 digits, ...); a quoted value
runs to the closing double quote that is not escaped with a backslash. Trailing white space
is allowed. Named formats have variants (combined falls back to common), tried in turn; a
line that fits none is not parsed and is quarantined by the caller.

Variables understood (any other ``$name`` is matched as non-blank text and dropped):

    $remote_addr       client IP (required; pseudonymised before landing)
    $time_local        17/May/2015:10:05:03 +0000 (required, in brackets in the format)
    $request           "GET /path?query HTTP/1.1"
    $status            3 digits
    $body_bytes_sent   bytes or "-" (also $bytes_sent)
    $http_referer      referrer, "-" for none
    $http_user_agent   user agent, "-" for none
    $request_time      seconds, as nginx writes it (0.123)
    $host              the virtual host (also $server_name): becomes the row's site
    $server_port       digits
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from engagement.errors import UsageError

COMBINED = (
    '$remote_addr $remote_ident $remote_user [$time_local] "$request" $status '
    '$body_bytes_sent "$http_referer" "$http_user_agent"'
)
COMMON = '$remote_addr $remote_ident $remote_user [$time_local] "$request" $status $body_bytes_sent'
FORMATS: dict[str, tuple[str, ...]] = {
    "combined": (COMBINED, COMMON),
    "vhost_combined": ("$host:$server_port " + COMBINED, "$host:$server_port " + COMMON),
}
DEFAULT_FORMAT = "combined"

# token kinds and fields: the numbers of the enums at the top of extract/_logparse.c
KINDS = ("literal", "quoted", "any", "token", "time", "status", "bytes", "seconds", "host")
KINDS += ("digits",)
FIELDS = ("ip", "time_local", "request", "status", "bytes", "referrer", "user_agent")
FIELDS += ("request_time", "site")
KIND_OF = {
    "remote_addr": "token",
    "time_local": "time",
    "status": "status",
    "body_bytes_sent": "bytes",
    "bytes_sent": "bytes",
    "request_time": "seconds",
    "host": "host",
    "server_name": "host",
    "server_port": "digits",
}
FIELD_OF = {
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

Token = tuple[int, int, bytes]  # (kind, field or -1, literal text)


class LogFormatError(UsageError, ValueError):
    """SUPPORT_SITE_LOG_FORMAT cannot be read: the message names the setting and why."""


def _token(kind: str, name: str | None = None, literal: str = "") -> Token:
    field = FIELD_OF.get(name or "")
    return KINDS.index(kind), FIELDS.index(field) if field else -1, literal.encode()


def compile_variant(text: str) -> tuple[Token, ...]:
    """The tokens of one format string."""
    parts = text.split('"')
    if len(parts) % 2 == 0:
        raise ValueError(f"log format has an unbalanced double quote: {text!r}")
    tokens: list[Token] = []
    for index, part in enumerate(parts):
        if index % 2:
            quoted = VARIABLE.fullmatch(part)
            if not quoted:
                raise ValueError(f"a quoted field must be one $variable, not {part!r}")
            tokens.append(_token("quoted", quoted.group(1)))
            continue
        pos = 0
        for m in VARIABLE.finditer(part):
            if m.start() > pos:
                tokens.append(_token("literal", literal=part[pos : m.start()]))
            elif tokens and KINDS[tokens[-1][0]] not in ("literal", "quoted"):
                raise ValueError(f"variables must be separated by text: {text!r}")
            name = m.group(1)
            tokens.append(_token(KIND_OF.get(name, "any"), name))
            pos = m.end()
        if pos < len(part):
            tokens.append(_token("literal", literal=part[pos:]))
    kept = {FIELDS[field] for _, field, _ in tokens if field >= 0}
    for required, variable in (("ip", "remote_addr"), ("time_local", "time_local")):
        if required not in kept:
            raise ValueError(f"a log format must contain ${variable}")
    return tuple(tokens)


@dataclass(frozen=True)
class LogFormat:
    name: str
    program: tuple[tuple[Token, ...], ...]  # the variants, tried in turn

    @classmethod
    def parse(cls, spec: str | None) -> LogFormat:
        """A named format (combined, vhost_combined) or an nginx-style format string."""
        spec = spec or DEFAULT_FORMAT
        try:
            return cls(spec, tuple(compile_variant(t) for t in FORMATS.get(spec, (spec,))))
        except ValueError as exc:
            named = "" if "$" in spec else f"not a named format ({', '.join(FORMATS)}); "
            raise LogFormatError(f"SUPPORT_SITE_LOG_FORMAT={spec}: {named}{exc}") from None

    @property
    def has_site(self) -> bool:
        site = FIELDS.index("site")
        return any(field == site for variant in self.program for _, field, _ in variant)
