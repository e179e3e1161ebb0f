"""Connection definitions: immutable, built once at load time from an ``httpcon`` line, a
config_file section or a YAML mapping, and never parsed again on the request path.

The per-connection keys live in one table, :data:`CONNECTION_KEYS`, which the three loaders
share: it names each key, its spellings, the modparam it defaults from and how each format
writes its value.
"""
from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import ConfigError
from .params import INT_MAX, PARAMS, ConnectionOptions, Settings


@dataclass(frozen=True)
class ConnectionKey:
    name: str                    # the field of Connection
    kind: str                    # "str", "int", "bool", "tlsversion"
    modparam: str | None = None  # the Settings value it defaults from
    aliases: tuple[str, ...] = ()  # other spellings accepted in config_file / YAML
    in_httpcon: bool = True      # settable as ;name=value in httpcon


CONNECTION_KEYS: dict[str, ConnectionKey] = {k.name: k for k in (
    ConnectionKey("url", "str", in_httpcon=False),
    ConnectionKey("username", "str", in_httpcon=False),
    ConnectionKey("password", "str", in_httpcon=False),
    ConnectionKey("failover", "str"),
    *(ConnectionKey(p.key, p.key_kind, p.name, p.aliases)
      for p in PARAMS.values() if p.key is not None),
)}
"""Every key of a connection definition: its own (url, credentials, failover) and one per
modparam with a ``key`` in PARAMS, which gives its default."""

KEY_BY_SPELLING: dict[str, ConnectionKey] = {
    spelling: key for key in CONNECTION_KEYS.values() for spelling in (key.name, *key.aliases)}


@dataclass(frozen=True, kw_only=True)
class Connection(ConnectionOptions):
    """One named connection. ``url`` is the base without scheme and credentials (what listcon
    calls URI); ``source`` says where it was defined, for error messages.  The options shared
    with Settings come from ConnectionOptions; ``timeout`` defaults from connection_timeout."""

    name: str
    schema: str
    url: str
    source: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)   # never in logs or messages
    failover: str | None = None
    timeout: int = 0

    @classmethod
    def define(cls, name: str, schema: str, url: str, source: str, defaults: Settings,
               **values: Any) -> "Connection":
        """A connection taking every key not given in ``values`` from ``defaults``."""
        inherited = {key.name: getattr(defaults, key.modparam)
                     for key in CONNECTION_KEYS.values()
                     if key.modparam and key.name not in values}
        return cls(name=name, schema=schema, url=url, source=source, **inherited, **values)

    @functools.cached_property
    def base_url(self) -> str:
        """``schema://url``, built once per connection: every request on it starts here."""
        return f"{self.schema}://{self.url}"

    def join(self, path: str) -> str:
        """The request URL for ``path``, joined as the C module does: a "/" is inserted unless
        ``path`` starts with one, and nothing is de-duplicated."""
        if not path:
            return self.base_url
        return f"{self.base_url}{'' if path.startswith('/') else '/'}{path}"

    @property
    def proxy(self) -> str | None:
        """The proxy of this connection: only with a port > 0 (the C rule for connections)."""
        return self.httpproxy if self.httpproxyport > 0 and self.httpproxy else None

    def masked(self) -> dict[str, Any]:
        """Every field, the password masked: for check, listcon and logs."""
        own = ("name", "schema", "url", "source", "username", "password", "failover", "timeout")
        values = dataclasses.asdict(self)
        fields = {name: values.pop(name) for name in own} | values
        if fields["password"] is not None:
            fields["password"] = MASK
        return fields


CREDENTIALS = re.compile(r"([^\s:/@;=>\"']+):([^@]*)@")
MASK = "********"


def mask_credentials(text: str) -> str:
    """``text`` with the password of every ``user:password@`` masked: for error messages
    about input that may hold credentials (it may mask a little more than the password)."""
    return CREDENTIALS.sub(rf"\1:{MASK}@", text)


AUTHORITY_END = "/?#"
"""Where the authority part of a URL ends (RFC 3986); credentials must come before it (B11:
an ``@`` in the path or query is not a credential separator)."""


def split_credentials(rest: str, authority_end: str = AUTHORITY_END
                      ) -> tuple[str | None, str | None, str]:
    """``user[:password]@`` at the start of ``rest`` (the URL after ``scheme://``), split off.

    The ``@`` counts only inside the authority part, which ends at a character of
    ``authority_end`` (B11).  Like C: the user ends at the first ``:``, the password may hold
    further ``:``; no percent-decoding is done.
    """
    end = len(rest)
    for i, char in enumerate(rest):
        if char in authority_end:
            end = i
            break
    at = rest.find("@", 0, end)
    if at < 0:
        return None, None, rest
    user, colon, password = rest[:at].partition(":")
    return user, (password if colon else None), rest[at + 1:]


def parse_base_url(url: str, source: str) -> tuple[str, str, str | None, str | None]:
    """``scheme://[user[:password]@]rest`` of a config_file or YAML ``url`` split into schema,
    URI, username and password; as in C, at least one character must follow ``://``."""
    schema, colon, rest = url.partition(":")
    if not colon or not rest.startswith("//") or len(rest) < 3:
        raise ConfigError(source, "invalid url: no scheme://host", text=mask_credentials(url),
                          valid="scheme://[user[:password]@]host[:port][/path], "
                                "e.g. http://127.0.0.1:8080/api")
    username, password, uri = split_credentials(rest[2:])
    return schema, uri, username, password


def invalid_value(key: ConnectionKey, value: int) -> str | None:
    """What would be valid for the integer-valued per-connection ``key``, or None if ``value``
    is: the range of the modparam it defaults from (every such modparam has a check)."""
    if value > INT_MAX:
        return f"an integer 0..{INT_MAX}"
    return _check(key)(value)


def describe(key: ConnectionKey) -> str:
    """The valid values of an integer-valued per-connection key, for error messages: what its
    check says of -1, which none accepts."""
    return _check(key)(-1) or ""


def _check(key: ConnectionKey) -> Callable[[int], str | None]:
    check = PARAMS[key.modparam].check if key.modparam is not None else None
    if check is None:
        raise ValueError(f"connection key {key.name!r} has no integer range")
    return check


@dataclass(frozen=True)
class ConnectionSpec:
    """A config_file or YAML connection section, checked but not yet built: it takes the final
    modparam values, known only when loading ends (``config.finalize()``)."""

    name: str
    schema: str
    url: str
    source: str
    values: tuple[tuple[str, Any], ...]

    def build(self, defaults: Settings) -> Connection:
        return Connection.define(self.name, self.schema, self.url, self.source, defaults,
                                 **dict(self.values))
