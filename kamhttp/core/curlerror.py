"""The text of a libcurl error code, as ``$curlerror(N)`` gives it.

pycurl does not expose ``curl_easy_strerror``, so the texts come from the libcurl that pycurl
loaded into this process (found in ``/proc/self/maps`` and called through ctypes): the same
texts the C module shows with the same libcurl.  The table is built once, on first use.
"""
from __future__ import annotations

import ctypes
import functools

BAD_CODE = "Bad CURL error code"
HTTP_CODE = "HTTP result code"
_LAST_CODE = 99
BREAKER_OPEN = -6
"""kamhttp's outage guard refused the request (see core/guard.py, which uses these)."""
BREAKER_TEXT = "kamhttp: circuit open, no request sent"


def curl_strerror(code: int) -> str:
    """``$curlerror(code)``: the libcurl text for 0..99, fixed texts outside that range."""
    if code < 0:
        return BREAKER_TEXT if code == BREAKER_OPEN else BAD_CODE
    if code > _LAST_CODE:
        return HTTP_CODE
    return _table()[code]


@functools.cache
def _table() -> tuple[str, ...]:
    strerror = _libcurl_strerror()
    if strerror is None:
        return tuple(f"libcurl error {code}" for code in range(_LAST_CODE + 1))
    return tuple(strerror(code).decode("utf-8", "replace") for code in range(_LAST_CODE + 1))


def _libcurl_strerror(paths: list[str] | None = None):
    """``curl_easy_strerror`` of pycurl's libcurl among ``paths`` (default: every libcurl
    mapped into this process), or None.

    Kamailio may map a second libcurl (the C http_client module's, side by side): the one
    whose ``curl_version()`` is the libcurl named in ``pycurl.version`` is pycurl's."""
    import pycurl  # already loaded by the engine; named here for the version it reports

    wanted = next((part for part in pycurl.version.split() if part.startswith("libcurl/")), "")
    try:
        for path in _mapped_libcurls() if paths is None else paths:
            lib = ctypes.CDLL(path)
            lib.curl_version.restype = ctypes.c_char_p
            if wanted and lib.curl_version().split()[0].decode() != wanted:
                continue
            func = lib.curl_easy_strerror
            func.restype = ctypes.c_char_p
            func.argtypes = [ctypes.c_int]
            return func
    except (OSError, AttributeError):
        pass
    return None


def _mapped_libcurls() -> list[str]:
    with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
        return list(dict.fromkeys(fields[5].strip() for fields in
                                  (line.split(None, 5) for line in maps)
                                  if len(fields) == 6 and "/libcurl" in fields[5]))
