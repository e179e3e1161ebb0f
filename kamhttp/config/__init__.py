"""The configuration layer: module parameters, connection definitions and their file formats.

One public entry for everything that loads or reads configuration; the registry
(:mod:`.registry`) keeps the process-wide state, the formats (:mod:`.httpcon`,
:mod:`.cfgfile`, :mod:`.yamlfile`, :mod:`.kamailiocfg`) only parse.
"""
from .params import PARAMS, Settings
from .registry import (KINDS, Configuration, current, detect_kind, finalize,
                       http_connection_exists, load_config, load_kamailio_cfg, main_cfg_dir,
                       modparam, read, reset)

__all__ = ["PARAMS", "Settings", "KINDS", "Configuration", "current", "detect_kind", "finalize",
           "http_connection_exists", "load_config", "load_kamailio_cfg", "main_cfg_dir",
           "modparam", "read", "reset"]
