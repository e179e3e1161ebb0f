"""The KEMI exports, ``KSR.http_client.*`` after :func:`install` (spec 11): KEMI semantics,
no PV expansion; the last argument names the result PV and is checked before any request."""
from __future__ import annotations

from typing import Any

from .. import aio, config, process
from ..core import request
from ..core.state import process_state
from .arguments import (content_type as content_type_, method as method_, result_name,
                        script_function, text)
from .calls import connect, deliver, direct
from .cfg import (http_client_response_headers_clear, http_client_response_headers_set,
                  http_get_redirect)

class _Kemi:
    """``KSR.http_client``: the KEMI exports, with KEMI semantics (no PV expansion; the last
    argument names the result PV and is checked before any request)."""

    @staticmethod
    @script_function
    def query(url: str, dpv: str) -> int:
        result = result_name(dpv)
        return direct(None, text(url, "url"), None, None, result)

    @staticmethod
    @script_function
    def query_post(url: str, post: str, dpv: str) -> int:
        result = result_name(dpv)
        return direct(None, text(url, "url"), text(post, "post"), None, result)

    @staticmethod
    @script_function
    def query_post_hdrs(url: str, post: str, hdrs: str, dpv: str) -> int:
        result = result_name(dpv)
        return direct(None, text(url, "url"), text(post, "post"), text(hdrs, "hdrs"), result)

    @staticmethod
    @script_function
    def get_hdrs(url: str, body: str, hdrs: str, dpv: str) -> int:
        result = result_name(dpv)
        return direct("GET", text(url, "url"), text(body, "body"), text(hdrs, "hdrs"),
                       result)

    @staticmethod
    @script_function
    def query_request(method: str, url: str, body: str, hdrs: str, dpv: str) -> int:
        """method "" lets the body choose GET or POST (spec 11)."""
        result = result_name(dpv)
        return direct(method_(method) or None, text(url, "url"), text(body, "body"),
                       text(hdrs, "hdrs"), result)

    @staticmethod
    @script_function
    def query_request_v2pk(method: str, url: str, body: str, hdrs: str, dpv: str) -> int:
        result = result_name(dpv)
        return direct(method_(method) or None, text(url, "url"), text(body, "body"),
                       text(hdrs, "hdrs"), result, True)

    @staticmethod
    @script_function
    def curl_connect(con: str, url: str, dpv: str) -> int:
        result = result_name(dpv)
        if con.__class__ is not str or url.__class__ is not str:
            text(con, "connection")         # raises the clear error (the common case
            text(url, "url")                # pays no call)
        return deliver(result, request.connection_request(config.current(), process_state(),
                                                          con, url))

    @staticmethod
    @script_function
    def curl_connect_post(con: str, url: str, ctype: str, data: str, dpv: str) -> int:
        result = result_name(dpv)
        return connect(text(con, "connection"), text(url, "url"),
                        content_type_(ctype), text(data, "data"), result)

    async_query = staticmethod(aio.async_query)
    async_query_post = staticmethod(aio.async_query_post)
    async_query_request = staticmethod(aio.async_query_request)
    async_curl_connect = staticmethod(aio.async_curl_connect)
    async_curl_connect_post = staticmethod(aio.async_curl_connect_post)
    send = staticmethod(aio.send)
    send_connect = staticmethod(aio.send_connect)

    get_redirect = staticmethod(http_get_redirect)
    response_headers_set = staticmethod(http_client_response_headers_set)
    response_headers_clear = staticmethod(http_client_response_headers_clear)


http_client = _Kemi()
"""The KEMI exports: ``kamhttp.install(KSR)`` makes this ``KSR.http_client``."""


def install(ksr: Any) -> None:
    """``KSR.http_client = kamhttp.http_client``: scripts written for the C module's KEMI
    exports run unchanged.  Sets up kamhttp's process-global hooks too."""
    process.setup()
    process.prepare_async()
    ksr.http_client = http_client
