"""What an operator asks the running Kamailio over HTTP (Kamailio's xhttp module, its KEMI
event route): the loaded connections, the counters, and a Prometheus exposition.

    GET /kamhttp/listcon   the JSON of ``python -m kamhttp listcon`` for what this running
                           Kamailio has loaded (passwords masked)
    GET /kamhttp/counters  {"connections", "connfail", "connok"} summed over all processes
    GET /metrics           Prometheus text: the counters, each breaker's state and counts,
                           the asynchronous path's in-flight and drop counts

The script's xhttp event method calls :func:`serve` (``kamhttp.AsyncHandler`` has one,
``ksr_xhttp_event``); it answers the paths above and returns False for any other.
"""
from __future__ import annotations

import json
import sys
from typing import Any

from .. import config
from ..core import guard
from . import counters, latency
from .listcon import listcon_json

PATHS = ("/kamhttp/listcon", "/kamhttp/counters", "/metrics")
PROMETHEUS_TYPE = "text/plain; version=0.0.4"


def serve(msg: Any = None) -> bool:
    """Answer an operator request through KSR.xhttp.xhttp_reply; False when the path is not
    one of :data:`PATHS` (the script answers it)."""
    ksr: Any = sys.modules.get("KSR")
    path = (ksr.pv.get("$hu") or "").split("?", 1)[0]
    if path not in PATHS:
        return False
    if path == "/kamhttp/listcon":
        body, ctype = listcon_json(config.current()), "application/json"
    elif path == "/kamhttp/counters":
        body, ctype = json.dumps(counters.totals(), sort_keys=True), "application/json"
    else:
        body, ctype = exposition(), PROMETHEUS_TYPE
    ksr.xhttp.xhttp_reply(200, "OK", ctype, body)
    return True


def exposition() -> str:
    """The Prometheus text format of kamhttp's figures."""
    lines: list[str] = []

    def metric(name: str, kind: str, doc: str, samples: list[tuple[str, int]]) -> None:
        lines.append(f"# HELP {name} {doc}")
        lines.append(f"# TYPE {name} {kind}")
        lines.extend(f"{name}{labels} {value}" for labels, value in samples)

    totals = counters.totals()
    metric("kamhttp_connections", "gauge", "Connection definitions loaded.",
           [("", totals["connections"])])
    metric("kamhttp_requests_total", "counter", "Attempts by outcome (ok: status 200).",
           [('{outcome="ok"}', totals["connok"]), ('{outcome="fail"}', totals["connfail"])])
    table = guard.table()
    states: list[tuple[str, int]] = []
    counts: dict[str, list[tuple[str, int]]] = {name: [] for name in guard.COUNTS}
    if table is not None:
        for upstream, base in table.slots():
            label = '{upstream="%s"}' % upstream.replace("\\", "\\\\").replace('"', '\\"')
            slot = guard.counts(base)
            states.append((label, slot["state"]))
            for name in guard.COUNTS:
                counts[name].append((label, slot[name]))
    metric("kamhttp_breaker_state", "gauge", "0 closed, 1 open, 2 half-open.", states)
    for name, samples in counts.items():
        metric(f"kamhttp_breaker_{name}_total", "counter", f"Breaker {name}.", samples)
    lines.extend(latency.exposition())
    from ..aio import shared
    runtime = shared.get()
    if runtime is not None:
        board = runtime.board.counts()
        metric("kamhttp_async_dropped_total", "counter", "Async jobs refused or lost.",
               [('{reason="%s"}' % reason, value) for reason, value in sorted(board.items())])
        metric("kamhttp_async_in_flight", "gauge", "Transfers in flight per HTTP process.",
               [('{process="%d"}' % pid, count)
                for pid, count in sorted(runtime.board.in_flight().items())])
    return "\n".join(lines) + "\n"
