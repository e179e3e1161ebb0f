"""The module parameters (modparams) of http_client: one table that drives parsing, defaults,
validation and the generated documentation.

Each :class:`ModParam` says *when* its value is read, because the C module's load order is part
of the contract:

* ``COPIED``  - an ``httpcon`` copies the value in force at its line; config_file connections
  take the final value; direct-URL functions read it at request time.
* ``REQUEST`` - read at request time by every function (cacert, netinterface, timeout_mode,
  response_headers).
* ``DIRECT``  - read at request time by the direct-URL functions only.
* ``LOADER``  - not a value but an action (``httpcon`` defines a connection, ``config_file``
  loads a file).
"""
from __future__ import annotations

import dataclasses
import enum
import platform
from dataclasses import dataclass
from typing import Any, Callable

from .. import __version__
from ..errors import ConfigError


class Scope(enum.Enum):
    COPIED = "copied into a connection at its definition"
    REQUEST = "read at request time (all functions)"
    DIRECT = "read at request time (direct-URL functions)"
    LOADER = "defines connections"
    STARTUP = "read once, when kamhttp starts (mod_init)"


TLS_VERSIONS: tuple[str, ...] = ("DEFAULT", "TLSv1", "SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3")
"""libcurl's CURL_SSLVERSION_* numbers, by index; each is a minimum version."""

AUTH_BITS = {1: "BASIC", 2: "DIGEST", 4: "GSS-Negotiate", 8: "NTLM", 16: "Digest-IE"}

DEFAULT_USERAGENT = (f"kamhttp ({__version__} "
                     f"({platform.machine() or 'unknown'}/{platform.system().lower() or 'unknown'}))")
"""Built like Kamailio's own ``NAME (VERSION (ARCH/OS))``."""

DEFAULT_TIMEOUT_S = 4
"""What a timeout of 0 (unset) becomes: 4 s, or 4000 ms in timeout_mode 2 (master)."""

INT_MAX = 2**31 - 1
"""The largest integer value any parameter takes (a C int; libcurl options are longs)."""


def _check_bool(value: int) -> str | None:
    return None if value >= 0 else "0 (off) or 1 (on)"


def _choices(*allowed: int, names: tuple[str, ...] = ()) -> Callable[[int], str | None]:
    def check(value: int) -> str | None:
        if value in allowed:
            return None
        labels = [f"{v} ({names[v]})" if names else str(v) for v in allowed]
        return "one of " + ", ".join(labels)
    return check


def _check_uint(value: int) -> str | None:
    return None if value >= 0 else "an integer >= 0"


def _check_positive(value: int) -> str | None:
    return None if value > 0 else "an integer >= 1"


def _check_percent(value: int) -> str | None:
    return None if 0 <= value <= 100 else "a percentage 0..100 (0 is off)"


def _check_queue_size(value: int) -> str | None:
    return None if value >= 1 << 20 else "bytes, at least 1048576 (1 MiB)"


def _check_port(value: int) -> str | None:
    return None if 0 <= value <= 65535 else "a port number 0..65535 (0 disables the proxy)"


def _check_authmethod(value: int) -> str | None:
    if 0 < value < 32:
        return None
    return "a bitmap of " + ", ".join(f"{b} ({n})" for b, n in AUTH_BITS.items())


@dataclass(frozen=True)
class ModParam:
    """One modparam; ``key`` makes it the default of a per-connection key of that name."""

    name: str
    kind: type                      # int or str
    default: Any
    scope: Scope
    doc: str
    check: Callable[[int], str | None] | None = None   # returns what would be valid, or None
    key: str | None = None          # the per-connection key it is the default of
    key_kind: str = ""              # that key's value kind: str, int, bool or tlsversion
    aliases: tuple[str, ...] = ()   # other spellings of the key in config_file and YAML
    curl: str | None = None         # the libcurl option (pycurl's name) its value sets as is


PARAMS: dict[str, ModParam] = {p.name: p for p in (
    ModParam("httpredirect", int, 1, Scope.COPIED,
             "Follow HTTP redirects (1) or not (0). Documented default 1 (C: 0).", _check_bool,
             key="httpredirect", key_kind="bool", aliases=("http_follow_redirect",)),
    ModParam("httpproxy", str, None, Scope.COPIED,
             "Default HTTP proxy URL. Connections use it only when httpproxyport > 0.",
             key="httpproxy", key_kind="str"),
    ModParam("httpproxyport", int, 0, Scope.COPIED,
             "Default proxy port; 0 disables the proxy for connections.", _check_port,
             key="httpproxyport", key_kind="int"),
    ModParam("useragent", str, DEFAULT_USERAGENT, Scope.COPIED,
             "User-Agent header; \"\" sends none.", key="useragent", key_kind="str"),
    ModParam("maxdatasize", int, 0, Scope.COPIED,
             "Largest response body kept for connections, in bytes; 0 is unlimited.", _check_uint,
             key="maxdatasize", key_kind="int"),
    ModParam("connection_timeout", int, 0, Scope.COPIED,
             "Timeout of the whole transfer, in the unit of timeout_mode; 0 means the default "
             "(4 s, or 4000 ms in timeout_mode 2).", _check_uint, key="timeout", key_kind="int"),
    ModParam("timeout_mode", int, 1, Scope.REQUEST,
             "0: no timeouts; 1: timeouts in seconds; 2: in milliseconds.", _choices(0, 1, 2)),
    ModParam("client_cert", str, None, Scope.COPIED,
             "PEM client certificate file (used only together with client_key).",
             key="client_cert", key_kind="str"),
    ModParam("client_key", str, None, Scope.COPIED,
             "PEM client key file (used only together with client_cert).",
             key="client_key", key_kind="str"),
    ModParam("cacert", str, None, Scope.REQUEST,
             "PEM file of the CAs trusted to verify servers; unset uses the system store."),
    ModParam("cipher_suites", str, None, Scope.COPIED,
             "Allowed TLS cipher list (libcurl CURLOPT_SSL_CIPHER_LIST).",
             key="cipher_suites", key_kind="str", curl="SSL_CIPHER_LIST"),
    ModParam("verify_peer", int, 1, Scope.COPIED,
             "Verify the server certificate (1) or not (0).", _check_bool,
             key="verify_peer", key_kind="bool"),
    ModParam("verify_host", int, 2, Scope.COPIED,
             "Verify the server host name (non-zero) or not (0).", _check_bool,
             key="verify_host", key_kind="bool"),
    ModParam("tlsversion", int, 0, Scope.COPIED,
             "Minimum TLS version: " + ", ".join(f"{i} {n}" for i, n in enumerate(TLS_VERSIONS)),
             _choices(*range(len(TLS_VERSIONS)), names=TLS_VERSIONS),
             key="tlsversion", key_kind="tlsversion", curl="SSLVERSION"),
    ModParam("authmethod", int, 3, Scope.COPIED,
             "HTTP authentication bitmap: 1 Basic, 2 Digest, 4 GSS-Negotiate, 8 NTLM, "
             "16 Digest-IE.", _check_authmethod, key="authmethod", key_kind="int"),
    ModParam("keep_connections", int, 0, Scope.COPIED,
             "Reuse connections (1) or open a new one per request (0).", _check_bool,
             key="keep_connections", key_kind="bool", aliases=("keepconnections",)),
    ModParam("query_result", int, 1, Scope.DIRECT,
             "Direct-URL functions keep the whole body (0) or its first line (1).", _check_bool),
    ModParam("query_maxdatasize", int, 0, Scope.DIRECT,
             "Largest result of the direct-URL functions, in bytes; 0 is unlimited.",
             _check_uint),
    ModParam("httpcon", str, None, Scope.LOADER,
             "Defines a connection: name=>scheme://[user[:password]@]host[/path][;key=value]..."),
    ModParam("config_file", str, None, Scope.LOADER,
             "A file of connection sections (Kamailio cfg_parser format)."),
    ModParam("netinterface", str, None, Scope.REQUEST,
             "Local interface name or address for outgoing requests."),
    ModParam("response_headers", int, 0, Scope.REQUEST,
             "Capture response headers for $httprhdr(name) (1) or not (0).", _check_bool),
    ModParam("breaker_failures", int, 0, Scope.COPIED,
             "kamhttp addition: consecutive failures (curl error or status >= 500) that open "
             "the upstream's circuit breaker; 0 is off.", _check_uint,
             key="breaker_failures", key_kind="int"),
    ModParam("breaker_ratio", int, 0, Scope.COPIED,
             "kamhttp addition: percent of failed attempts in breaker_window (at least 10 "
             "attempts) that open the breaker; 0 is off.", _check_percent,
             key="breaker_ratio", key_kind="int"),
    ModParam("breaker_window", int, 10, Scope.COPIED,
             "kamhttp addition: seconds of the breaker_ratio window.", _check_positive,
             key="breaker_window", key_kind="int"),
    ModParam("breaker_cooldown", int, 5000, Scope.COPIED,
             "kamhttp addition: milliseconds an open breaker refuses requests (-6) before "
             "one probe request goes through.", _check_positive,
             key="breaker_cooldown", key_kind="int"),
    ModParam("max_connecting", int, 0, Scope.COPIED,
             "kamhttp addition: processes that may be connecting at once to an upstream not "
             "known to be alive (the others get -6); 0 is no bound.", _check_uint,
             key="max_connecting", key_kind="int"),
    ModParam("latency_metrics", int, 0, Scope.STARTUP,
             "kamhttp addition: latency histograms per connection (total, connect, TLS, "
             "first byte) in the /metrics scrape (1) or not (0).", _check_bool),
    ModParam("async_queue_size", int, 8 << 20, Scope.STARTUP,
             "kamhttp addition: bytes of the hand-over queue from SIP workers to the HTTP "
             "processes; a job that does not fit is refused (-2).", _check_queue_size),
    ModParam("async_max_transfers", int, 1000, Scope.STARTUP,
             "kamhttp addition: transfers in flight per HTTP process; more jobs wait in the "
             "queue.", _check_positive),
    ModParam("async_max_per_connection", int, 0, Scope.STARTUP,
             "kamhttp addition: transfers in flight per connection (or direct-URL host) and "
             "HTTP process; 0 is no limit.", _check_uint),
)}


@dataclass(frozen=True, kw_only=True, slots=True)
class ConnectionOptions:
    """The values a connection takes from the modparams in force at its definition (those
    with a ``key`` in PARAMS), under their modparam names; Settings and Connection share them."""

    httpredirect: int = 1
    httpproxy: str | None = None
    httpproxyport: int = 0
    useragent: str | None = DEFAULT_USERAGENT
    maxdatasize: int = 0
    client_cert: str | None = None
    client_key: str | None = None
    cipher_suites: str | None = None
    verify_peer: int = 1
    verify_host: int = 2
    tlsversion: int = 0
    authmethod: int = 3
    keep_connections: int = 0
    breaker_failures: int = 0
    breaker_ratio: int = 0
    breaker_window: int = 10
    breaker_cooldown: int = 5000
    max_connecting: int = 0


@dataclass(frozen=True, kw_only=True, slots=True)
class Settings(ConnectionOptions):
    """The values of every value-modparam at one point of the load order (immutable), with the
    defaults of PARAMS (a test checks the two agree)."""

    connection_timeout: int = 0
    timeout_mode: int = 1
    cacert: str | None = None
    query_result: int = 1
    query_maxdatasize: int = 0
    netinterface: str | None = None
    response_headers: int = 0
    latency_metrics: int = 0
    async_queue_size: int = 8 << 20
    async_max_transfers: int = 1000
    async_max_per_connection: int = 0

    def with_value(self, name: str, value: Any) -> "Settings":
        return dataclasses.replace(self, **{name: value})

    def effective_timeout(self, timeout: int) -> int:
        """A connection's or the global timeout after master's fix-up: 0 becomes the final
        connection_timeout, and an unset connection_timeout 4 s (4000 ms in timeout_mode 2);
        in timeout_mode 0 every timeout is 0 (none), as master's curl_conn_list_fixup does."""
        if self.timeout_mode == 0:
            return 0
        if not timeout:
            timeout = self.connection_timeout
        if not timeout:
            timeout = DEFAULT_TIMEOUT_S * (1000 if self.timeout_mode == 2 else 1)
        return timeout


Statement = tuple[str, Any, str]
"""One modparam line as the loaders deliver it: name, value, and its source ("file:line", or
"modparam NAME" for kamhttp.modparam())."""


def coerce(name: str, value: Any, source: str) -> Any:
    """Check a modparam value against the table and return it in its type.

    Raises ConfigError for an unknown name, a type mismatch (a string where an integer is due,
    as Kamailio's core does) or a value out of range.
    """
    param = PARAMS.get(name)
    if param is None:
        raise ConfigError(source, f"unknown http_client modparam {name!r}", text=name,
                          valid=", ".join(PARAMS))
    if param.kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(source, f"modparam {name!r} takes an integer", text=repr(value),
                              valid="an unquoted integer")
        if valid := invalid(name, value):
            raise ConfigError(source, f"modparam {name!r} value out of range", text=str(value),
                              valid=valid)
        return value
    if not isinstance(value, str):
        raise ConfigError(source, f"modparam {name!r} takes a string", text=repr(value),
                          valid="a quoted string")
    if "\x00" in value:
        raise ConfigError(source, f"modparam {name!r} contains a NUL byte at position "
                          f"{value.index(chr(0))}", valid="text without NUL bytes")
    return value


def invalid(name: str, value: int) -> str | None:
    """What would be valid for the integer parameter ``name``, or None when ``value`` is."""
    if not -INT_MAX <= value <= INT_MAX:
        return f"an integer up to {INT_MAX}"
    check = PARAMS[name].check
    return check(value) if check else None


def documentation() -> str:
    """The parameter table as Markdown, generated from PARAMS (used by README and `check`)."""
    rows = ["| modparam | type | default | read | meaning |", "|---|---|---|---|---|"]
    for p in PARAMS.values():
        default = "unset" if p.default is None else repr(p.default)
        rows.append(f"| `{p.name}` | {p.kind.__name__} | {default} | {p.scope.value} | {p.doc} |")
    return "\n".join(rows)
