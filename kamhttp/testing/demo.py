"""``python -m kamhttp demo``: the routing-lookup example on simulated INVITEs, against a real
HTTP API started here on 127.0.0.1.

Two instances of a small routing API (primary and backup) run in this process on free ports;
``kemi_examples/routing_lookup.py`` runs under the testing kit exactly as Kamailio's
app_python3 would run it, and the demo prints what happened to each INVITE: the HTTP calls
(method, URL, status, time), the script's log lines and its SIP answer.  The API servers are
stopped before the demo returns.
"""
from __future__ import annotations

import http.server
import json
import pathlib
import socket
import socketserver
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, TextIO

from . import HttpCall, LogLine, MessageResult, Session, sipmsg

ROUTES = {
    "+4930123456": "sip:+4930123456@gw-berlin.example.net:5060",
    "+4940987654": "sip:+4940987654@gw-hamburg.example.net:5060",
}
"""The routing table both API instances serve: callee number -> SIP target."""

SLOW_NUMBERS = {"+4989000000"}
"""Callees the API answers only after SLOW_DELAY: longer than the demo's timeout."""

SLOW_DELAY = 5.0
DEMO_TIMEOUT_MS = 400
EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "kemi_examples" / "routing_lookup.py"


@dataclass
class ApiRequest:
    method: str
    path: str
    status: int
    callee: str | None


class RoutingApi:
    """A routing API on a free 127.0.0.1 port: POST /v1/route {"callee": ...}.

    200 {"target": ...} for a known callee, 404 for an unknown one, 400 for a bad body; the
    SLOW_NUMBERS are answered after SLOW_DELAY (the wait ends at once when the server stops).
    ``stop()`` closes the listener and every open connection, so the API is really down.
    """

    def __init__(self, name: str, routes: dict[str, str] | None = None) -> None:
        self.name = name
        self.routes = dict(ROUTES if routes is None else routes)
        self.requests: list[ApiRequest] = []
        self._stopping = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True, name=f"routing-api-{name}")

    @property
    def url(self) -> str:
        """The API base URL, e.g. http://127.0.0.1:41234/v1."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self) -> "RoutingApi":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._server.close_connections()
        self._thread.join(timeout=5)

    @property
    def stopped(self) -> bool:
        return self._stopping.is_set()

    def __enter__(self) -> "RoutingApi":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def answer(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
        """The status and JSON document for one request (recorded in ``requests``)."""
        callee = None
        if method != "POST" or path != "/v1/route":
            status, document = 404, {"error": f"no such endpoint: {method} {path}"}
        else:
            try:
                callee = json.loads(body)["callee"]
            except (ValueError, KeyError, TypeError):
                callee = None
            if not isinstance(callee, str):
                status, document = 400, {"error": 'expected a JSON object with "callee"'}
            elif callee in self.routes:
                status, document = 200, {"target": self.routes[callee], "served_by": self.name}
            else:
                status, document = 404, {"error": "no route", "callee": callee}
            if callee in SLOW_NUMBERS:
                self._stopping.wait(SLOW_DELAY)
        self.requests.append(ApiRequest(method, path, status, callee))
        return status, document


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, *args: Any) -> None:
        self.connections: set[socket.socket] = set()
        self.lock = threading.Lock()
        super().__init__(*args)

    # socketserver types a request as a socket or, for a datagram server, (data, socket);
    # this TCP server's request is always its connected socket.
    def process_request(self, request: socket.socket | tuple[bytes, socket.socket],
                        client_address: Any) -> None:
        if isinstance(request, socket.socket):
            with self.lock:
                self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: socket.socket | tuple[bytes, socket.socket]) -> None:
        if isinstance(request, socket.socket):
            with self.lock:
                self.connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self.lock:
            for sock in list(self.connections):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)   # a client that gave up is normal


def _handler_for(api: RoutingApi) -> type:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"               # keep-alive, as kamhttp reuses it
        disable_nagle_algorithm = True              # headers and body written separately

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self._answer("POST", self.rfile.read(length) if length > 0 else b"")

        def do_GET(self) -> None:
            self._answer("GET", b"")

        def _answer(self, method: str, body: bytes) -> None:
            status, document = api.answer(method, self.path, body)
            payload = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


# ---------------------------------------------------------------------------------------------
# The demo

@dataclass(frozen=True)
class Scenario:
    title: str
    callee: str
    primary_down: bool = False


SCENARIOS = (
    Scenario("found: the primary API routes the call", "+4930123456"),
    Scenario("not found: the API answers 404", "+4971100000"),
    Scenario("timeout: both APIs too slow, the call gets 503", "+4989000000"),
    Scenario("primary API down: the failover connection answers", "+4940987654",
             primary_down=True),
)


def main(out: TextIO | None = None) -> int:
    """Run the demo; 0 when every scenario ended as designed."""
    out = out or sys.stdout
    if not EXAMPLE.is_file():
        out.write(f"kamhttp demo: {EXAMPLE} is missing; run it from a clone of the repository "
                  "(pip install -e .)\n")
        return 2
    started = time.monotonic()
    primary, backup = RoutingApi("primary").start(), RoutingApi("backup").start()
    try:
        env = {"ROUTING_API": primary.url, "ROUTING_API_BACKUP": backup.url,
               "ROUTING_API_TIMEOUT_MS": str(DEMO_TIMEOUT_MS)}
        out.write(_header(primary, backup))
        results = []
        with Session(EXAMPLE, env=env) as session:
            for number, scenario in enumerate(SCENARIOS, start=1):
                if scenario.primary_down and not primary.stopped:
                    primary.stop()
                    out.write("   (the primary API is stopped now)\n\n")
                invite = sipmsg.invite(f"sip:{scenario.callee}@example.com",
                                       from_uri="sip:alice@example.com", from_name="Alice")
                result = session.send(invite)
                results.append(result)
                out.write(_scenario(number, scenario, result))
    finally:
        for api in (primary, backup):
            if not api.stopped:
                api.stop()
    elapsed = time.monotonic() - started
    relayed = sum(1 for r in results if r.relay)
    codes = [r.reply.code for r in results if r.reply]
    out.write(f"Done in {elapsed:.1f} s: {len(results)} INVITEs, {relayed} relayed, replies "
              f"{', '.join(map(str, codes)) or 'none'}; both API servers stopped.\n")
    expected = [("relay", None), ("reply", 404), ("reply", 503), ("relay", None)]
    seen = [("relay", None) if r.relay else ("reply", r.reply.code if r.reply else None)
            for r in results]
    return 0 if seen == expected and all(r.outcome == "returned" for r in results) else 1


def _header(primary: RoutingApi, backup: RoutingApi) -> str:
    return (f"kamhttp demo: {EXAMPLE.parent.name}/{EXAMPLE.name} run by the testing kit, as "
            "app_python3 runs it\n"
            f"   routing API (primary)  {primary.url}   connection 'routing', "
            "failover 'routing_backup'\n"
            f"   routing API (backup)   {backup.url}   connection 'routing_backup'\n"
            f"   timeout {DEMO_TIMEOUT_MS} ms per request, keep_connections 1\n\n")


def _scenario(number: int, scenario: Scenario, result: MessageResult) -> str:
    lines = [f"{number}. {scenario.title}",
             f"   SIP   {result.summary}"]
    for item in result.timeline:
        if isinstance(item, HttpCall):
            lines.append(f"   HTTP  {item}")
        elif isinstance(item, LogLine):
            lines.append(f"   log   {item}")
    if result.relay:
        lines.append(f"   SIP   relayed to {result.relay.ruri}")
    for reply in result.replies:
        lines.append(f"   SIP   replied {reply.code} {reply.reason}")
    if result.outcome == "error":
        lines.append("   ERROR the script raised:")
        lines += [f"         {row}" for row in (result.error or "").splitlines()]
    return "\n".join(lines) + "\n\n"


def command(args: Any) -> int:
    """The ``demo`` subcommand of ``python -m kamhttp``."""
    return main()
