"""kamhttp: Kamailio's http_client module for KEMI Python routing scripts, on pycurl."""
__version__ = "0.1.0"

# The configuration layer (issue 2).
from .errors import ConfigError, KamhttpError  # noqa: E402
from .config import (finalize, http_connection_exists, load_config,  # noqa: E402
                     load_kamailio_cfg, modparam, reset)

# The function table (issue 3).
from . import pv  # noqa: E402
from .functions import (api, http_client, http_client_get, http_client_query,  # noqa: E402
                        http_client_request, http_client_request_v2pk,
                        http_client_response_headers_clear, http_client_response_headers_set,
                        http_connect, http_connect_raw, http_get_content_type,
                        http_get_redirect, install, request, Result)
