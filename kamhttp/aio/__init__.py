"""The asynchronous path: requests that suspend the SIP transaction and resume the script with
the result, so that no SIP worker waits for HTTP.

* :mod:`.functions` — what a script calls in a SIP worker (``async_*``, ``send``): suspend,
  hand over, return.
* :mod:`.handover`, :mod:`.board`, :mod:`.shared` — the queue and the shared state, made
  before Kamailio forks.
* :mod:`.resumer` — kamhttp's HTTP process (an evrexec process): continues every suspended
  transaction exactly once.
* :mod:`.transfers` — the transfer process beside it: many transfers on one CurlMulti, each
  an attempt of the request core.
* :mod:`.jobs` — what travels between them.
"""
from .functions import (NO_HTTP_PROCESS, OVERLOADED, AsyncHandler, async_curl_connect,
                        async_curl_connect_post, async_http_client_get,
                        async_http_client_query, async_http_client_request,
                        async_http_connect, async_http_connect_raw, async_query,
                        async_query_post, async_query_request, send, send_connect)
from .resumer import HTTP_PROCESS_LOST, async_result

__all__ = ["NO_HTTP_PROCESS", "OVERLOADED", "HTTP_PROCESS_LOST", "AsyncHandler", "async_result",
           "async_curl_connect", "async_curl_connect_post", "async_http_client_get",
           "async_http_client_query", "async_http_client_request", "async_http_connect",
           "async_http_connect_raw", "async_query", "async_query_post", "async_query_request",
           "send", "send_connect"]
