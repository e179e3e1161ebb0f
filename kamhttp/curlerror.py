"""The text of a libcurl error code, as ``$curlerror(N)`` gives it.

pycurl does not expose ``curl_easy_strerror``, so the texts come from the libcurl that pycurl
loaded into this process (found in ``/proc/self/maps`` and called through ctypes): the same
texts the C module shows with the same libcurl.  The table is built once, on first use, by
when the package (its engine) has imported pycurl and so mapped that libcurl.
"""
from __future__ import annotations

import ctypes
import functools

BAD_CODE = "Bad CURL error code"
HTTP_CODE = "HTTP result code"
_LAST_CODE = 99


def curl_strerror(code: int) -> str:
    """``$curlerror(code)``: the libcurl text for 0..99, fixed texts outside that range."""
    if code < 0:
        return BAD_CODE
    if code > _LAST_CODE:
        return HTTP_CODE
    return _table()[code]


@functools.cache
def _table() -> tuple[str, ...]:
    strerror = _libcurl_strerror()
    if strerror is None:
        return tuple(f"libcurl error {code}" for code in range(_LAST_CODE + 1))
    return tuple(strerror(code).decode("utf-8", "replace") for code in range(_LAST_CODE + 1))


def _libcurl_strerror():
    """``curl_easy_strerror`` of the libcurl mapped into this process, or None."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            paths = [line.split(None, 5)[5].strip() for line in maps
                     if "libcurl" in line and len(line.split(None, 5)) == 6]
        for path in paths:
            if "/libcurl" in path:
                func = ctypes.CDLL(path).curl_easy_strerror
                func.restype = ctypes.c_char_p
                func.argtypes = [ctypes.c_int]
                return func
    except (OSError, AttributeError):
        pass
    return None
