"""Logging bridge: records of the ``kamhttp`` loggers reach Kamailio's log inside Kamailio.

Inside Kamailio (or under the testing kit's emulator) a ``KSR`` module with ``err``/``warn``/
``info``/``dbg`` is importable: records go there, so they land where the operator looks for
http_client messages and obey Kamailio's debug level.  Records also propagate to the root
logger as usual, for whoever configured Python logging.
"""
from __future__ import annotations

import logging
import sys
from typing import Any, Callable

PREFIX = "http_client"


class KsrHandler(logging.Handler):
    """Sends a record to KSR.err/warn/info/dbg when KSR exists.

    Records still propagate to the root logger, so handlers configured there see them too.
    Without KSR and without any root handler, Python's last-resort handler (stderr, warnings
    and up) prints them, as it would if this handler did not exist.
    """

    def emit(self, record: logging.LogRecord) -> None:
        ksr = sys.modules.get("KSR")
        log = _ksr_function(ksr, record.levelno) if ksr is not None else None
        if log is None:
            last_resort = logging.lastResort
            if (last_resort is not None and not logging.getLogger().handlers
                    and record.levelno >= last_resort.level):
                last_resort.handle(record)
            return
        try:
            log(f"{PREFIX} [{record.name}]: {record.getMessage()}\n")
        except Exception:  # a broken KSR must not break the request path
            self.handleError(record)


def _ksr_function(ksr: Any, level: int) -> Callable[[str], object] | None:
    if level >= logging.CRITICAL and hasattr(ksr, "crit"):
        name = "crit"
    elif level >= logging.ERROR:
        name = "err"
    elif level >= logging.WARNING:
        name = "warn"
    elif level >= logging.INFO:
        name = "info"
    else:
        name = "dbg"
    return getattr(ksr, name, None)


def install_handler() -> logging.Logger:
    """Bridge the ``kamhttp`` loggers to KSR (once; :func:`kamhttp.process.setup` calls it)."""
    logger = logging.getLogger("kamhttp")
    if not any(isinstance(h, KsrHandler) for h in logger.handlers):
        logger.addHandler(KsrHandler())
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.INFO)
    return logger



def get_logger(name: str) -> logging.Logger:
    """The logger of a kamhttp module (``kamhttp.<name>``), bridged to Kamailio's log."""
    return logging.getLogger(f"kamhttp.{name}")


def printable(text: object, limit: int = 200) -> str:
    """``text`` for a log line: control characters escaped, clipped to ``limit`` characters,
    so an argument can neither split a log line nor flood it."""
    shown = str(text)
    if shown.isprintable() and len(shown) <= limit:
        return shown
    escaped = shown[:limit].encode("unicode_escape").decode("ascii")
    return escaped if len(shown) <= limit else f"{escaped}... ({len(shown)} characters)"
