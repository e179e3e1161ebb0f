"""The ``httpcon`` modparam grammar (spec 3.1 and 3.2), parsed once at load time::

    [WS] NAME [WS] "=>" [WS] SCHEMA "://" [USER [":" PASSWORD] "@"] HOSTPATH [";" PARAMS]

Kept from C: the name runs to ``=`` or whitespace and is case-sensitive; the schema is not
checked; HOSTPATH runs to the first ``;`` and may be empty; PARAMS follow Kamailio's core
parameter parser (``name[=value]``, values a token or a ``"``/``'`` quoted string, a ``,``
ends the list and the rest is ignored, the first occurrence of a repeated name wins, unknown
names are logged at error level and ignored).

Decided fixes: an ``@`` ends the credentials only inside the authority part (B11); every
per-connection key of the config_file is accepted (B12), except url/username/password; a bad
integer value is an error instead of a warning and the default; the name may not be empty.
"""
from __future__ import annotations

import logging
import re

from .connection import CONNECTION_KEYS, Connection, ConnectionKey, describe, invalid_value, \
    mask_credentials, split_credentials
from ..errors import ConfigError
from .params import Settings

log = logging.getLogger("kamhttp.config")

WS = " \t\r\n"
SYNTAX = "name=>scheme://[user[:password]@]host[:port][/path][;key=value]..."
HTTPCON_KEYS = {name: key for name, key in CONNECTION_KEYS.items() if key.in_httpcon}
ZERO_OR_ONE = frozenset({"httpredirect", "verify_peer"})
"""Keys C accepts only as 0 or 1 in httpcon (verify_host takes any number, non-zero = on)."""
UNSIGNED = re.compile(r"\+?[0-9]+\Z")


class _Syntax(Exception):
    def __init__(self, message: str, valid: str = SYNTAX) -> None:
        super().__init__(message)
        self.valid = valid


def parse_httpcon(text: str, defaults: Settings, source: str = "modparam httpcon",
                  warnings: list[str] | None = None) -> Connection:
    """The connection an ``httpcon`` value defines, taking unset keys from ``defaults`` (the
    Settings in force at its line).  Unknown keys are logged and appended to ``warnings``."""
    try:
        name, schema, rest = _split_head(text)
        username, password, rest = split_credentials(rest, "/?#;")
        url, semicolon, params = rest.partition(";")
        pairs, ignored = _parse_params(params) if semicolon else ([], "")
    except _Syntax as err:
        raise ConfigError(source, f"invalid httpcon: {err}", text=mask_credentials(text),
                          valid=err.valid) from None
    if ignored:
        _warn(f"{source}: httpcon {name!r}: text after {ignored[0]!r} ignored, as in C: "
              f"{ignored[1:]!r}", warnings, logging.WARNING)
    values: dict[str, object] = {}
    for key_name, body in pairs:
        if key_name in values:
            continue                                   # the first occurrence wins, as in C
        key = HTTPCON_KEYS.get(key_name)
        if key is None:
            _warn(f"{source}: httpcon {name!r}: unknown parameter {key_name!r} ignored "
                  f"(valid: {', '.join(HTTPCON_KEYS)})", warnings, logging.ERROR)
            values[key_name] = None
            continue
        values[key_name] = _value(key, body, name, source)
    known = {k: v for k, v in values.items() if k in HTTPCON_KEYS}
    return Connection.define(name, schema, url, source, defaults, username=username,
                             password=password, **known)


def _warn(message: str, warnings: list[str] | None, level: int) -> None:
    log.log(level, "%s", message)
    if warnings is not None:
        warnings.append(message)


def _split_head(text: str) -> tuple[str, str, str]:
    """NAME, SCHEMA and what follows ``://`` (spec 3.1 steps 1-6)."""
    i, n = _skip_ws(text, 0), len(text)
    if i == n:
        raise _Syntax("the value is empty")
    start = i
    while i < n and text[i] != "=" and text[i] not in WS:
        i += 1
    name = text[start:i]
    i = _skip_ws(text, i)
    if i == n or text[i] != "=":
        raise _Syntax(f"'=>' expected after the connection name {name!r}")
    if not text.startswith("=>", i):
        raise _Syntax("'=' must be followed by '>'")
    if not name:
        raise _Syntax("the connection name is empty")
    i = _skip_ws(text, i + 2)
    schema, colon, rest = text[i:].partition(":")
    if not colon:
        raise _Syntax("no scheme (scheme://...)")
    if not rest.startswith("//"):
        raise _Syntax(f"'//' expected after {schema + ':'!r}")
    return name, schema, rest[2:]


def _skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i] in WS:
        i += 1
    return i


def _parse_params(text: str) -> tuple[list[tuple[str, str | None]], str]:
    """``name[=value]`` items separated by ``;``, as Kamailio's parse_params (class ANY) reads
    them (a value of None means no ``=``), and the text ignored after a ``,`` or ``>``."""
    pairs: list[tuple[str, str | None]] = []
    i, n = 0, len(text)
    while i < n:
        start = i
        while i < n and text[i] not in WS and text[i] not in ",=;":
            i += 1
        name, body = text[start:i], None
        i = _skip_ws(text, i)
        if i < n and text[i] == "=":
            i = _skip_ws(text, i + 1)
            body, i = _param_body(text, i, name)
            i = _skip_ws(text, i)
        pairs.append((name, body))
        if i == n or text[i] in ",>":
            return pairs, text[i:]
        if text[i] != ";":
            raise _Syntax(f"unexpected {text[i]!r} after parameter {name!r}",
                          "name=value;name=value (quote values holding spaces)")
        i = _skip_ws(text, i + 1)
        if i == n:
            raise _Syntax("parameter name missing after ';'", "no ';' at the end of the list")
    return pairs, ""


def _param_body(text: str, i: int, name: str) -> tuple[str, int]:
    if i == len(text):
        return "", i
    quote = text[i]
    if quote in "\"'":
        end = text.find(quote, i + 1)
        if end < 0:
            raise _Syntax(f"unterminated {quote} quote in the value of {name!r}",
                          f"{name}={quote}...{quote}")
        return text[i + 1:end], end + 1
    start = i
    while i < len(text) and text[i] not in WS and text[i] not in ",;":
        i += 1
    if i == start:
        raise _Syntax(f"value of {name!r} missing before {text[i]!r}", f"{name}=value")
    return text[start:i], i


def _value(key: ConnectionKey, body: str | None, conname: str, source: str) -> object:
    """The value of ``key=body``, in the field's type."""
    if key.kind == "str":
        if body is None:
            return "" if key.name == "useragent" else None    # C: no '=' gives "" / NULL
        return body
    valid = "0 or 1" if key.name in ZERO_OR_ONE else describe(key)
    if body is None or not UNSIGNED.match(body):
        raise ConfigError(source, f"httpcon {conname!r}: {key.name} needs an integer value",
                          text=f"{key.name}" if body is None else f"{key.name}={body}",
                          valid=f"{key.name}=<{valid}>")
    value = int(body)
    problem = ("0 or 1" if key.name in ZERO_OR_ONE and value not in (0, 1)
               else invalid_value(key, value))
    if problem:
        raise ConfigError(source, f"httpcon {conname!r}: {key.name} value out of range",
                          text=f"{key.name}={body}", valid=f"{key.name}=<{problem}>")
    return value
