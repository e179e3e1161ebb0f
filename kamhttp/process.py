"""Process-global effects, in one place, set up explicitly.

Importing kamhttp changes nothing outside it.  :func:`setup` — run by the public
configuration calls (``modparam()``, ``load_config()``, ...), ``install()`` and a process's
first request, whichever comes first — installs the logging
bridge to Kamailio's log, the at-fork hooks (a forked worker starts with fresh curl state;
the counter store exists before workers fork), the exit hook that removes the store, and the
counters as a hook after every attempt.
"""
from __future__ import annotations

import atexit
import os
import re
import sys
from typing import Any, Mapping

from . import config, log
from .config.params import Settings
from .config.registry import Configuration
from .errors import ConfigError
from .core import request, state
from .ops import counters

_done = False
_latency = False


def setup() -> None:
    """Install kamhttp's process-global hooks, once per interpreter."""
    global _done
    if _done:
        return
    _done = True
    log.install_handler()
    if getattr(sys.modules.get("KSR"), "http_client", None) is not None:
        counters.c_module_owns_the_group()  # KSR.http_client before install(): the C module
    useragent = kamailio_useragent()
    if useragent is not None:
        config.registry.use_server_useragent(useragent)
    os.register_at_fork(before=counters.before_fork, after_in_child=state.after_fork_in_child)
    atexit.register(counters.cleanup)
    request.add_hook(counters.count)


def kamailio_useragent() -> str | None:
    """Kamailio's own SIP User-Agent, ``NAME (VERSION (ARCH/OS))`` (5.6.3: ``kamailio (5.6.3
    (x86_64/linux))``), built from the running server's ``$version(full)``
    (``kamailio 5.6.3 (x86_64/linux)``); None outside Kamailio."""
    ksr = sys.modules.get("KSR")
    if ksr is None:
        return None
    try:
        full = ksr.pv.get("$version(full)")
    except Exception:                # the testing kit's KSR has no $version: keep kamhttp's
        return None
    match = _FULL_VERSION.match(full) if isinstance(full, str) else None
    return f"{match[1]} ({match[2]} {match[3]})" if match else None


_FULL_VERSION = re.compile(r"(\S+) (\S+) (\([^()]*\))")


def prepare_async() -> None:
    """Make the asynchronous path's queue and board, sized by the configuration loaded so
    far: in ``mod_init()``, so that every process Kamailio forks shares them."""
    global _latency
    from .aio import shared
    from .core import guard
    from .ops import latency
    guard.prepare()
    try:
        settings = config.current().settings
    except ConfigError:               # raised again where the script finalizes
        settings = Settings()
    if settings.latency_metrics and not _latency:
        latency.prepare()
        request.add_hook(latency.observe)
        _latency = True
    if shared.get() is None:
        shared.prepare(settings.async_queue_size)


def modparam(name: str, value: Any) -> None:
    """``modparam("http_client", name, value)`` (see :func:`kamhttp.config.modparam`)."""
    setup()
    config.modparam(name, value)


def load_config(path: str | os.PathLike[str]) -> Configuration:
    """A YAML file applied and finalized (see :func:`kamhttp.config.load_config`)."""
    setup()
    cfg = config.load_config(path)
    prepare_async()
    return cfg


def load_kamailio_cfg(path: str | os.PathLike[str],
                      defines: Mapping[str, str] | None = None) -> Configuration:
    """The http_client modparams of a kamailio.cfg applied and finalized (see
    :func:`kamhttp.config.load_kamailio_cfg`)."""
    setup()
    cfg = config.load_kamailio_cfg(path, defines)
    prepare_async()
    return cfg


def finalize() -> Configuration:
    """End the configuration load (see :func:`kamhttp.config.finalize`)."""
    setup()
    cfg = config.finalize()
    prepare_async()
    return cfg
