"""The transport: one libcurl transfer on a reused per-process pycurl handle.

:class:`Profile` holds every option that comes from configuration (applied once per handle,
again only when it changes), :class:`Handle` one pycurl handle and what was last set on it,
:func:`transfer` sets only what differs per call (URL, method, body, headers, sinks) and
performs it.  Curl failures become their CURLcode here, logged the way the C module words
them; nothing raises.  The request rules of the C module live in :mod:`.request`.
"""
from __future__ import annotations

import re
import select
import socket
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Iterable

import pycurl

from ..config.connection import Connection
from ..config.params import PARAMS, ConnectionOptions, Settings
from ..log import get_logger, printable
from .curlerror import curl_strerror

log = get_logger("engine")

MAX_REDIRECTS = 10
"""Redirect hops followed before libcurl gives up with curl 47 (C: unlimited, so a loop ran
until the timeout)."""

DRAIN_LIMIT = 64 << 10
"""Bytes past the size cap that a kept connection reads and drops, when the response announced
its length, so that the connection stays usable; a longer or unbounded rest stops the transfer
(and closes the connection)."""

_HTTP_PROTOCOLS = pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS
_AUTH_MASK = 1 | 2 | 4 | 8 | 16       # CURLAUTH_BASIC|DIGEST|GSSNEGOTIATE|NTLM|DIGEST_IE
_PEM = b"PEM"


@dataclass(frozen=True, slots=True)
class Profile:
    """The libcurl options that come from configuration, not from the call (spec 6.1)."""

    username: str | None = None
    password: str | None = None
    authmethod: int = 3
    client_cert: str | None = None      # set only when cert and key are both given
    client_key: str | None = None
    cert_gap: str | None = None         # "client_cert"/"client_key": empty while the other is
                                        # set on an https connection (curl 58, nothing sent)
    cacert: str | None = None
    plain: tuple[tuple[int, int | bytes], ...] = ()   # options PARAMS maps to libcurl as is
    proxy: str | None = None
    proxyport: int = 0
    verify_peer: int = 1
    verify_host: int = 2
    timeout_option: int | None = None   # pycurl.TIMEOUT or TIMEOUT_MS, None: no timeout
    timeout: int = 0
    follow: int = 1
    keep: int = 0
    netinterface: str | None = None
    useragent: str = ""                 # "": no User-Agent header at all
    http2_prior_knowledge: bool = False
    maxdatasize: int = 0                # result cap in bytes, 0: unlimited

    @classmethod
    def for_connection(cls, conn: Connection, settings: Settings) -> "Profile":
        """A connection's own settings plus the global cacert/netinterface (spec 6.2).

        A null useragent (config_file ``""``) takes the useragent modparam's value.  A client
        certificate is used when cert and key are both non-empty; one of them empty while the
        other is set is, on https, the C module's curl 58 (there: an empty file name)."""
        option, timeout = _timeout(settings, conn.timeout)
        cert, key = conn.client_cert, conn.client_key
        both = bool(cert) and bool(key)
        gap = None
        if cert is not None and key is not None and bool(cert) != bool(key) \
                and conn.schema.lower() == "https":
            gap = "client_key" if cert else "client_cert"
        return cls(username=conn.username, password=conn.password,
                   authmethod=conn.authmethod,
                   client_cert=cert if both else None,
                   client_key=key if both else None, cert_gap=gap,
                   cacert=settings.cacert, plain=_plain(conn),
                   proxy=conn.proxy, proxyport=conn.httpproxyport if conn.proxy else 0,
                   verify_peer=conn.verify_peer, verify_host=conn.verify_host,
                   timeout_option=option, timeout=timeout, follow=conn.httpredirect,
                   keep=conn.keep_connections, netinterface=settings.netinterface,
                   useragent=(settings.useragent if conn.useragent is None
                              else conn.useragent) or "",
                   maxdatasize=conn.maxdatasize)

    @classmethod
    def for_direct(cls, settings: Settings, http2_prior_knowledge: bool = False) -> "Profile":
        """The module defaults at call time, as the direct-URL functions use them (spec 5.7)."""
        option, timeout = _timeout(settings, settings.connection_timeout)
        both = bool(settings.client_cert) and bool(settings.client_key)
        return cls(client_cert=settings.client_cert if both else None,
                   client_key=settings.client_key if both else None,
                   cacert=settings.cacert, plain=_plain(settings),
                   proxy=settings.httpproxy or None,
                   proxyport=settings.httpproxyport if settings.httpproxy else 0,
                   verify_peer=settings.verify_peer, verify_host=settings.verify_host,
                   timeout_option=option, timeout=timeout, follow=settings.httpredirect,
                   keep=settings.keep_connections, netinterface=settings.netinterface,
                   useragent=settings.useragent or "",
                   http2_prior_knowledge=http2_prior_knowledge,
                   maxdatasize=settings.query_maxdatasize)

    def apply(self, curl: pycurl.Curl) -> None:
        """Set every option of this profile on a freshly reset handle."""
        setopt = curl.setopt
        setopt(pycurl.PROTOCOLS, _HTTP_PROTOCOLS)
        setopt(pycurl.REDIR_PROTOCOLS, _HTTP_PROTOCOLS)
        setopt(pycurl.NOSIGNAL, 1)
        if self.http2_prior_knowledge:
            setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE)
        if self.username is not None:
            setopt(pycurl.USERNAME, _b(self.username))
            setopt(pycurl.HTTPAUTH, self.authmethod & _AUTH_MASK)
        if self.password is not None:
            setopt(pycurl.PASSWORD, _b(self.password))
        if self.client_cert is not None and self.client_key is not None:
            setopt(pycurl.SSLCERTTYPE, _PEM)
            setopt(pycurl.SSLCERT, _b(self.client_cert))
            setopt(pycurl.SSLKEYTYPE, _PEM)
            setopt(pycurl.SSLKEY, _b(self.client_key))
        if self.cacert is not None:
            setopt(pycurl.CAINFO, _b(self.cacert))
        for option, value in self.plain:
            setopt(option, value)
        if self.proxy is not None:
            setopt(pycurl.PROXY, _b(self.proxy))
            if self.proxyport > 0:
                setopt(pycurl.PROXYPORT, self.proxyport)
        setopt(pycurl.SSL_VERIFYPEER, 1 if self.verify_peer else 0)
        setopt(pycurl.SSL_VERIFYHOST, 2 if self.verify_host else 0)
        if self.timeout_option is not None:
            setopt(self.timeout_option, self.timeout)
        setopt(pycurl.FOLLOWLOCATION, 1 if self.follow else 0)
        setopt(pycurl.MAXREDIRS, MAX_REDIRECTS)
        if self.netinterface is not None:
            setopt(pycurl.INTERFACE, _b(self.netinterface))
        # always, "" too: pycurl sets its own "PycURL/... libcurl/..." at Curl() and reset().
        # libcurl sends no header for "", but libcurl 7 an empty one in a CONNECT to a proxy
        setopt(pycurl.USERAGENT, _b(self.useragent))
        if not self.useragent and self.proxy is not None:
            setopt(pycurl.PROXYHEADER, [b"User-Agent:"])
        if not self.keep:       # a fresh connection per request, which its hops (redirects,
            setopt(pycurl.FRESH_CONNECT, 1)     # auth round trips) share: the only one kept,
            setopt(pycurl.MAXCONNECTS, 1)       # and closed after the request (hang_up, retire)


_PLAIN_OPTIONS = tuple((p.name, getattr(pycurl, p.curl)) for p in PARAMS.values() if p.curl)
"""(option name, libcurl option) of the options PARAMS says libcurl takes as they are."""


def _plain(options: ConnectionOptions) -> tuple[tuple[int, int | bytes], ...]:
    """The set (non-empty, non-zero) options of ``options`` that libcurl takes as they are."""
    return tuple((curl_option, _b(value) if isinstance(value, str) else value)
                 for name, curl_option in _PLAIN_OPTIONS if (value := getattr(options, name)))


def _timeout(settings: Settings, timeout: int) -> tuple[int | None, int]:
    """The timeout option and value: seconds (mode 1), milliseconds (mode 2), else none."""
    mode = settings.timeout_mode
    if mode == 1:
        return pycurl.TIMEOUT, settings.effective_timeout(timeout)
    if mode == 2:
        return pycurl.TIMEOUT_MS, settings.effective_timeout(timeout)
    return None, 0


def error_code(exc: Exception) -> int:
    """The CURLcode of a pycurl error; 43 (bad argument) for pycurl's own refusals."""
    code = exc.args[0] if exc.args else None
    return code if isinstance(code, int) else pycurl.E_BAD_FUNCTION_ARGUMENT


def _b(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


class Sink:
    """The write callback's buffer: keeps at most ``cap`` bytes, drops or stops after that.

    On a kept connection, a rest of announced length (Content-Length) up to ``drain`` bytes
    past the cap is read and dropped, so the connection survives; any other rest stops the
    transfer (libcurl's write error 23), which bounds memory and time.  Either way the caller
    knows from ``overflow`` that the kept part is whole and the status stands.  Without a cap
    libcurl writes straight into ``chunks.append`` (no Python frame per chunk); with one,
    :meth:`header` is the header callback and feeds header capture (``lines``).
    """

    __slots__ = ("chunks", "size", "cap", "drain", "limit", "overflow", "lines")

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.cap = self.drain = 0
        self.reset(None)

    def writer(self, cap: int, drain: int) -> Callable[[bytes], int | None]:
        """The write callback for a handle whose results are capped at ``cap`` (0: none)."""
        self.cap, self.drain = cap, drain
        self.reset(None)
        return self.write if cap else self.chunks.append

    def reset(self, lines: list[bytes] | None) -> None:
        self.size = 0               # bytes received, kept or not
        self.limit = 0              # bytes that may be received: the rest of them dropped
        self.overflow = False
        self.lines = lines

    def header(self, line: bytes) -> None:
        """Capture ``line`` if asked; learn from the response's framing how long it is."""
        if self.lines is not None:
            self.lines.append(line)
        head = line[:18].lower()
        if head.startswith(b"content-length:"):
            value = line[15:].strip()
            if self.limit >= 0 and value.isdigit() and int(value) - self.cap <= self.drain:
                self.limit = int(value)
        elif head.startswith(b"http/"):         # the status line of each response (hops, 1xx)
            self.limit = 0
        elif head == b"transfer-encoding:":     # chunked: its Content-Length does not count
            self.limit = -1

    def write(self, data: bytes) -> int | None:
        size = self.size + len(data)
        if size <= self.cap:
            self.chunks.append(data)
            self.size = size
            return None
        if not self.overflow:
            self.chunks.append(data[:self.cap - self.size])
            self.overflow = True
        self.size = size
        return None if size <= self.limit else 0    # not len(data): aborts the transfer



IDEMPOTENT = frozenset(("GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"))
"""Methods whose request libcurl may send again after a kept connection failed under it."""


def _idempotent(method: str | None) -> bool:
    return method is not None and method.upper() in IDEMPOTENT


class BodySource:
    """A request body on a kept connection, read by libcurl through a callback, so that
    libcurl sends it again only with kamhttp's leave.

    libcurl re-sends a request on a new connection when a reused one fails before any byte of
    answer (a connection the server closed while idle).  That is safe for an idempotent
    method; a POST or PATCH may have been acted on already, so its body is not rewound for
    that (curl 65, logged) -- only after an answer came (a 401 round trip, a 307/308
    redirect), which the header callback tells.
    """

    __slots__ = ("body", "offset", "replayable", "answered", "forward", "url")

    def __init__(self, body: bytes, replayable: bool) -> None:
        self.body, self.offset, self.replayable = body, 0, replayable
        self.answered = False
        self.forward: Callable[[bytes], Any] | None = None   # the header callback it wraps
        self.url = ""

    def read(self, size: int) -> bytes:
        start = self.offset
        chunk = self.body[start:start + size]
        self.offset = start + len(chunk)
        return chunk

    def seek(self, offset: int, _origin: int) -> int:
        if self.replayable or self.answered:
            self.offset = offset
            return 0
        log.warning("a kept connection failed before any answer to a request that is not "
                    "idempotent: not sent again (url: %s)", printable(_masked(self.url)))
        return pycurl.SEEKFUNC_FAIL

    def header(self, line: bytes) -> None:
        self.answered = True
        if self.forward is not None:
            self.forward(line)


def _closed_by_peer(curl: pycurl.Curl) -> bool:
    """Whether the connection the handle kept has news while idle: the server closed it
    (or sent something unasked), so a request sent on it would fail.  libcurl looks only at
    connections idle for a second or more; a POST must not find out by sending."""
    fd = curl.getinfo(pycurl.ACTIVESOCKET)
    return fd >= 0 and bool(closed_by_peer((fd,))[0])


def closed_by_peer(fds: Iterable[int]) -> tuple[list[int], list[int]]:
    """Of these idle connections, those closed by their server (or with unasked input), and
    the descriptors that are closed already: one poll, no wait."""
    poller = select.poll()
    for fd in fds:
        poller.register(fd, select.POLLIN | select.POLLRDHUP)
    closed: list[int] = []
    gone: list[int] = []
    for fd, events in poller.poll(0):
        (gone if events & select.POLLNVAL else closed).append(fd)
    return closed, gone


class Handle:
    """One reused pycurl handle and what was last applied to it."""

    __slots__ = ("key", "curl", "sink", "profile", "custom", "nobody", "with_headers",
                 "capturing", "posting", "guarding", "fresh", "stale", "pool_closed",
                 "closed_info")

    def __init__(self, key: Hashable, share: pycurl.CurlShare | None) -> None:
        self.key = key
        self.curl = pycurl.Curl()
        if share is not None:          # kept by curl_easy_reset, like live connections
            self.curl.setopt(pycurl.SHARE, share)
        self.sink = Sink()
        self.profile: Profile | None = None       # None: to be configured (again)
        self.custom = False                       # state of the per-call options, so that
        self.nobody = False                       # only what was set gets unset
        self.with_headers = False
        self.capturing = False
        self.posting = False                      # the last request had a body
        self.guarding = False                     # a BodySource has the header callback
        self.fresh = False                        # FRESH_CONNECT set for one request
        self.stale = False                        # the connections it has are shut down
        self.pool_closed: Callable[[], bool] | None = None   # a multi's idle connections
        self.closed_info: tuple[str, str] | None = None

    def effective_url(self) -> str:
        """The last transfer's effective URL, read only when asked (http_get_redirect,
        $curlredirect): the request path pays no getinfo for it."""
        if self.closed_info is not None:
            return self.closed_info[0]
        return self.curl.getinfo(pycurl.EFFECTIVE_URL) or ""

    def content_type(self) -> str:
        """The last transfer's response Content-Type, read only when asked."""
        if self.closed_info is not None:
            return self.closed_info[1]
        return self.curl.getinfo(pycurl.CONTENT_TYPE) or ""

    def close(self) -> None:
        """Close the curl handle, keeping what :meth:`effective_url` and
        :meth:`content_type` answer."""
        if self.closed_info is None:
            try:
                self.closed_info = (self.effective_url(), self.content_type())
            except pycurl.error:        # e.g. a URL libcurl refused: nothing to answer
                self.closed_info = ("", "")
            self.profile = None
            self.curl.close()

    def hang_up(self) -> None:
        """Close the plain connection the last request left open (keep_connections=0).

        pycurl cannot close a handle's connections but with the handle, and the handle keeps
        what libcurl learnt (the server's auth method), so the socket is shut down: the
        server sees the close at once, and libcurl drops the dead connection at the handle's
        next request (MAXCONNECTS 1 keeps no other).  TLS connections close with the handle
        (ProcessState.retire): a bare shutdown would skip close_notify.
        """
        fd = self.curl.getinfo(pycurl.ACTIVESOCKET)
        if fd < 0:                      # closed already (e.g. "Connection: close")
            return
        try:                            # on a duplicate: libcurl still owns and closes fd
            with socket.fromfd(fd, socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.shutdown(socket.SHUT_RDWR)
        except OSError:                 # e.g. reset by the peer meanwhile
            pass

    def configure(self, profile: Profile) -> int:
        """Apply ``profile`` unless it is already in force (reset keeps live connections).

        Returns 0, or the curl code of an option libcurl refused (e.g. 43 for SSLv3) or 58 for
        a half client certificate: the request is then not performed, as in C, and the next
        call tries again.  Afterwards ``self.profile is profile``: the request path checks
        identity, not equality.
        """
        if profile == self.profile:
            self.profile = profile
            return 0
        if profile.cert_gap is not None:        # before libcurl, which answers 43 for it
            log.error("TLS client certificate: client_cert and client_key must both be set "
                      "(%s is empty)", profile.cert_gap)
            return pycurl.E_SSL_CERTPROBLEM
        curl = self.curl
        # a kc=0 profile shut its connection down (hang_up); reset lets libcurl reuse it
        self.stale = self.profile is not None and not self.profile.keep and bool(profile.keep)
        self.profile = None
        curl.reset()
        self.custom = self.nobody = self.with_headers = self.capturing = self.posting = False
        self.guarding = self.fresh = False
        try:
            profile.apply(curl)
        except pycurl.error as exc:
            log.error("Could not set CURL options. Library error (%s)", exc.args[-1])
            return error_code(exc)
        sink = self.sink
        curl.setopt(pycurl.WRITEFUNCTION,
                    sink.writer(profile.maxdatasize, DRAIN_LIMIT if profile.keep else 0))
        if profile.maxdatasize:
            curl.setopt(pycurl.HEADERFUNCTION, sink.header)
        self.profile = profile
        return 0


_TIMING_INFO = (("namelookup", pycurl.NAMELOOKUP_TIME), ("connect", pycurl.CONNECT_TIME),
                ("appconnect", pycurl.APPCONNECT_TIME), ("pretransfer", pycurl.PRETRANSFER_TIME),
                ("starttransfer", pycurl.STARTTRANSFER_TIME), ("redirect", pycurl.REDIRECT_TIME),
                ("total", pycurl.TOTAL_TIME))


TIMING_NAMES = {"dns": pycurl.NAMELOOKUP_TIME, "lookup": pycurl.NAMELOOKUP_TIME,
                "connect": pycurl.CONNECT_TIME, "tls": pycurl.APPCONNECT_TIME,
                "appconnect": pycurl.APPCONNECT_TIME, "pretransfer": pycurl.PRETRANSFER_TIME,
                "firstbyte": pycurl.STARTTRANSFER_TIME,
                "starttransfer": pycurl.STARTTRANSFER_TIME,
                "redirect": pycurl.REDIRECT_TIME, "total": pycurl.TOTAL_TIME}
"""The names of $httptime(name): kamhttp's short ones and http_async_client's $http_time
names."""


def timing_us(handle: Handle, name: str) -> int | None:
    """One timer of the handle's last transfer in microseconds from its start; None for an
    unknown name or a handle that is closed."""
    info = TIMING_NAMES.get(name)
    if info is None or handle.closed_info is not None:
        return None
    return round(handle.curl.getinfo(info) * 1_000_000)


def timings(curl: pycurl.Curl) -> dict[str, float]:
    """libcurl's timers of the last transfer on ``curl``, in seconds from its start."""
    return {name: curl.getinfo(info) for name, info in _TIMING_INFO}


def new_share() -> pycurl.CurlShare:
    """TLS sessions and DNS answers shared by every handle of this process."""
    share = pycurl.CurlShare()
    share.setopt(pycurl.SH_SHARE, pycurl.LOCK_DATA_SSL_SESSION)
    share.setopt(pycurl.SH_SHARE, pycurl.LOCK_DATA_DNS)
    return share


def transfer(handle: Handle, url: str, method: str | None, body: bytes | None,
             headers: list[bytes] | None, header_sink: list[bytes] | None) -> int:
    """Perform one request on a configured handle, here and now.

    Returns 0 when a response came (its status is on ``handle.curl``, its body in
    ``handle.sink``), else the curl code, logged."""
    code = prepare(handle, url, method, body, headers, header_sink)
    if code:
        return code
    try:
        handle.curl.perform()
        return 0
    except pycurl.error as exc:
        return completed(handle, error_code(exc), url)


def completed(handle: Handle, code: int, url: str) -> int:
    """What a transfer that libcurl ended with ``code`` gives: 0 when a response came (a stop
    at the size cap included), else the curl code, logged.  For :func:`transfer` and for
    a multi that ran the transfer."""
    if not code or handle.sink.overflow:   # stopped on purpose at the size cap, or failed
        return 0                           # in the rest being dropped: the kept part stands
    handle.sink.chunks.clear()
    return curl_failure(code, url)


def prepare(handle: Handle, url: str, method: str | None, body: bytes | None,
            headers: list[bytes] | None, header_sink: list[bytes] | None) -> int:
    """Set the per-call options of one request on a configured handle: 0, or the curl code
    (logged) of what cannot be sent."""
    curl = handle.curl
    setopt = curl.setopt
    sink = handle.sink
    if "\n" in url or "\r" in url:        # would end the request line: never sent
        return curl_failure(pycurl.E_URL_MALFORMAT, url)
    try:
        setopt(pycurl.URL, url.encode("utf-8", "surrogateescape"))
        if handle.nobody:
            setopt(pycurl.NOBODY, 0)
            handle.nobody = False
        source = None
        fresh = handle.stale
        if body is not None and handle.profile is not None and handle.profile.keep:
            source = BodySource(body, _idempotent(method))
            # a POST is not sent where it could not be sent again
            if not fresh and not source.replayable:
                fresh = handle.pool_closed() if handle.pool_closed is not None \
                    else _closed_by_peer(curl)
        if fresh != handle.fresh:
            setopt(pycurl.FRESH_CONNECT, 1 if fresh else 0)
            handle.fresh = fresh
        handle.stale = False
        if body is not None:
            if source is not None:
                setopt(pycurl.POST, 1)
                setopt(pycurl.POSTFIELDSIZE_LARGE, len(body))
                setopt(pycurl.READFUNCTION, source.read)
                setopt(pycurl.SEEKFUNCTION, source.seek)
            else:
                setopt(pycurl.POSTFIELDS, body)
            handle.posting = True
        elif handle.posting or handle.custom:
            setopt(pycurl.HTTPGET, 1)
            handle.posting = False
        if method:
            setopt(pycurl.CUSTOMREQUEST, _b(method))
            handle.custom = True
            if method == "HEAD":       # libcurl would wait for a body that never comes
                setopt(pycurl.NOBODY, 1)
                handle.nobody = True
        elif handle.custom:
            curl.unsetopt(pycurl.CUSTOMREQUEST)
            handle.custom = False
        if headers:
            setopt(pycurl.HTTPHEADER, headers)
            handle.with_headers = True
        elif handle.with_headers:
            curl.unsetopt(pycurl.HTTPHEADER)
            handle.with_headers = False
        if sink.cap:                # its own header callback, set once, feeds header_sink
            sink.reset(header_sink)
            if handle.guarding:
                setopt(pycurl.HEADERFUNCTION, sink.header)
        elif header_sink is not None:
            setopt(pycurl.HEADERFUNCTION, header_sink.append)
            handle.capturing = True
        elif handle.capturing or handle.guarding:
            curl.unsetopt(pycurl.HEADERFUNCTION)
            handle.capturing = False
        handle.guarding = False
        if source is not None and not source.replayable:   # it learns of any answer
            source.forward = sink.header if sink.cap else header_sink.append \
                if header_sink is not None else None
            source.url = url
            setopt(pycurl.HEADERFUNCTION, source.header)
            handle.guarding = True
    except (pycurl.error, ValueError) as exc:      # ValueError: a NUL byte in a string
        handle.profile = None                    # re-apply all next time
        return curl_failure(error_code(exc), url)
    return 0


_CURL_MESSAGES = {
    1: "URL Schema not supported by curl", 3: "Malformed URL used in http client",
    6: "Couldn't resolve host", 7: "failed to connect() to host",
    28: "Curl library timed out on request", 35: "TLS error in curl connection",
    47: "Too many redirects", 58: "TLS local certificate error",
    60: "TLS verification error", 77: "TLS server certificate validation error (No valid CA cert)",
}


_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://[^/?#@:]*):[^/?#@]*@")


def _masked(url: str) -> str:
    """The URL for a log line, a password in it replaced by ********."""
    return _USERINFO.sub(r"\1:********@", url, count=1)


def curl_failure(code: int, url: str) -> int:
    """Log a curl error the way the C module words it; returns ``code``."""
    message = _CURL_MESSAGES.get(code, "failed to perform curl")
    log.log(30 if code == 28 else 40, "%s (%d: %s) (url: %s)", message, code,
            curl_strerror(code) if code < 100 else "libcurl error", printable(_masked(url)))
    return code


