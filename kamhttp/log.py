"""Logging bridge: records of the ``kamhttp`` loggers reach Kamailio's log inside Kamailio.

Inside Kamailio (or under the testing kit's emulator) a ``KSR`` module with ``err``/``warn``/
``info``/``dbg`` is importable: records go there, so they land where the operator looks for
http_client messages and obey Kamailio's debug level.  Without one, records stay in Python
logging (propagated to the root logger as usual).
"""
from __future__ import annotations

import logging
import sys

PREFIX = "http_client"


class KsrHandler(logging.Handler):
    """Sends a record to KSR.err/warn/info/dbg when KSR exists, else to the root logger."""

    def emit(self, record: logging.LogRecord) -> None:
        ksr = sys.modules.get("KSR")
        log = _ksr_function(ksr, record.levelno) if ksr is not None else None
        if log is None:
            logging.getLogger().handle(record)
            return
        try:
            log(f"{PREFIX} [{record.name}]: {record.getMessage()}\n")
        except Exception:  # a broken KSR must not break the request path
            self.handleError(record)


def _ksr_function(ksr, level: int):
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


def _install() -> logging.Logger:
    logger = logging.getLogger("kamhttp")
    if not any(isinstance(h, KsrHandler) for h in logger.handlers):
        logger.addHandler(KsrHandler())
        logger.propagate = False     # KsrHandler forwards to the root logger itself
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.INFO)
    return logger


_install()


def get_logger(name: str) -> logging.Logger:
    """The logger of a kamhttp module (``kamhttp.<name>``), bridged to Kamailio's log."""
    return logging.getLogger(f"kamhttp.{name}")
