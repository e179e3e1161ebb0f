"""kamhttp: Kamailio's http_client module for KEMI Python routing scripts, on pycurl."""
__version__ = "0.1.0"

# The configuration layer (issue 2).
from .errors import ConfigError, KamhttpError  # noqa: E402
from .config import (finalize, http_connection_exists, load_config,  # noqa: E402
                     load_kamailio_cfg, modparam, reset)
