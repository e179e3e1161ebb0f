"""$curlerror texts come from pycurl's libcurl, even when the process maps another libcurl
(inside Kamailio, the C http_client module loads Debian's)."""
from __future__ import annotations

import ctypes
import pathlib

import pycurl
import pytest

from kamhttp.core.curlerror import _libcurl_strerror, _mapped_libcurls, curl_strerror

DEBIAN_LIBCURL = "/usr/lib/x86_64-linux-gnu/libcurl.so.4"


def _version(path: str) -> str:
    lib = ctypes.CDLL(path)
    lib.curl_version.restype = ctypes.c_char_p
    return lib.curl_version().split()[0].decode()


@pytest.mark.skipif(not pathlib.Path(DEBIAN_LIBCURL).exists(),
                    reason="Debian's libcurl4 is not installed")
def test_pycurls_libcurl_is_chosen_when_another_comes_first():
    ours = next(p for p in pycurl.version.split() if p.startswith("libcurl/"))
    if _version(DEBIAN_LIBCURL) == ours:
        pytest.skip(f"Debian's libcurl is pycurl's too ({ours}): nothing to tell apart")
    strerror = _libcurl_strerror([DEBIAN_LIBCURL, *_mapped_libcurls()])
    assert strerror is not None
    # libcurl 8 words code 7 "Could not connect to server", 7.88 "Couldn't connect to server"
    assert strerror(7).decode() == curl_strerror(7)
    assert strerror(7).decode() == ("Could not connect to server" if ours >= "libcurl/8"
                                    else "Couldn't connect to server")


def test_codes_outside_libcurls_range():
    assert curl_strerror(-1) == "Bad CURL error code"
    assert curl_strerror(100) == "HTTP result code"
    assert curl_strerror(1000) == "HTTP result code"
    assert curl_strerror(28) == "Timeout was reached"
