"""kamhttp: Kamailio's http_client module for KEMI Python routing scripts, on pycurl.

The public surface is :data:`__all__`.  Importing kamhttp has no effect outside it:
the configuration calls, ``install()`` or the first request set up its process-global hooks
(:mod:`kamhttp.process`).
"""
__version__ = "0.1.0"

from . import pv  # noqa: E402
from .aio import (HTTP_PROCESS_LOST, NO_HTTP_PROCESS, OVERLOADED, AsyncHandler,  # noqa: E402
                  async_http_client_get, async_http_client_query, async_http_client_request,
                  async_http_connect, async_http_connect_raw, async_result)
from .config import http_connection_exists, reset  # noqa: E402
from .errors import ConfigError, KamhttpError, PVError  # noqa: E402
from .process import finalize, load_config, load_kamailio_cfg, modparam  # noqa: E402
from .script.api import Result, api, http_get_content_type, request  # noqa: E402
from .script.cfg import (http_client_get, http_client_query, http_client_request,  # noqa: E402
                         http_client_request_v2pk, http_client_response_headers_clear,
                         http_client_response_headers_set, http_connect, http_connect_raw,
                         http_get_redirect)
from .script.kemi import http_client, install  # noqa: E402

__all__ = [
    "__version__", "modparam", "load_config", "load_kamailio_cfg", "finalize", "reset",
    "install", "http_client", "http_connect", "http_connect_raw", "http_get_redirect",
    "http_client_query", "http_client_get", "http_client_request", "http_client_request_v2pk",
    "http_client_response_headers_set", "http_client_response_headers_clear", "api",
    "http_connection_exists", "http_get_content_type", "request", "Result", "pv",
    "ConfigError", "KamhttpError", "PVError",
    "AsyncHandler", "async_result", "async_http_connect", "async_http_connect_raw",
    "async_http_client_query", "async_http_client_get", "async_http_client_request",
    "OVERLOADED", "NO_HTTP_PROCESS", "HTTP_PROCESS_LOST",
]
