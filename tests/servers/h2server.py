"""The App over HTTP/2 (the `h2` package): one reader thread per connection, one thread per
stream so a slow answer does not hold the others, flow control respected for big bodies."""
from __future__ import annotations

import socket
import threading
from typing import TYPE_CHECKING

import h2.config
import h2.connection
import h2.events
import h2.exceptions

from .app import Response
from .base import IO_TIMEOUT, Request

if TYPE_CHECKING:
    from .http1 import HttpServer

CONNECTION_SPECIFIC = frozenset({"connection", "keep-alive", "transfer-encoding", "upgrade",
                                 "proxy-connection"})
"""Headers HTTP/2 forbids (RFC 9113 8.2.2); dropped from App responses."""


class _Connection:
    """One HTTP/2 connection: the h2 state machine and the socket, shared under one lock."""

    def __init__(self, server: "HttpServer", sock: socket.socket, client_port: int,
                 subject: str | None) -> None:
        self.server, self.sock = server, sock
        self.client_port, self.subject = client_port, subject
        self.h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding="latin-1"))
        self.lock = threading.Condition()
        self.closed = False

    def flush(self) -> None:
        """Send what h2 has queued; call with the lock held."""
        data = self.h2.data_to_send()
        if data:
            self.sock.sendall(data)

    def run(self) -> None:
        with self.lock:
            self.h2.initiate_connection()
            self.flush()
        streams: dict[int, tuple[list[tuple[str, str]], bytearray]] = {}
        workers: list[threading.Thread] = []
        try:
            while not self.server.stopping and not self.closed:
                data = self.sock.recv(65536)
                if not data:
                    break
                with self.lock:
                    try:
                        events = self.h2.receive_data(data)
                    except h2.exceptions.ProtocolError as exc:
                        self.server.note_error(f"HTTP/2 protocol error from port "
                                               f"{self.client_port}: {exc}")
                        self.flush()
                        break
                    for event in events:
                        if isinstance(event, h2.events.RequestReceived):
                            streams[event.stream_id] = (list(event.headers), bytearray())
                        elif isinstance(event, h2.events.DataReceived):
                            if event.stream_id in streams:
                                streams[event.stream_id][1].extend(event.data)
                            self.h2.acknowledge_received_data(event.flow_controlled_length,
                                                              event.stream_id)
                        elif isinstance(event, h2.events.StreamEnded):
                            headers, body = streams.pop(event.stream_id, ([], bytearray()))
                            worker = threading.Thread(
                                target=self._respond, args=(event.stream_id, headers, bytes(body)),
                                daemon=True, name=f"h2 stream {event.stream_id}")
                            workers.append(worker)
                            worker.start()
                        elif isinstance(event, h2.events.StreamReset):
                            streams.pop(event.stream_id, None)
                        elif isinstance(event, h2.events.ConnectionTerminated):
                            self.closed = True
                    self.flush()
                    self.lock.notify_all()
        finally:
            with self.lock:
                self.closed = True
                self.lock.notify_all()
            for worker in workers:
                worker.join(timeout=1)

    def _respond(self, stream_id: int, headers: list[tuple[str, str]], body: bytes) -> None:
        pseudo = dict(pair for pair in headers if pair[0].startswith(":"))
        request = Request(pseudo.get(":method", ""), pseudo.get(":path", ""),
                          tuple(pair for pair in headers if not pair[0].startswith(":")),
                          body, self.client_port, "2", self.subject)
        self.server.record(request)
        response = self.server.app.respond(request)
        try:
            if response.drop:
                with self.lock:
                    self.closed = True
                    self.sock.shutdown(socket.SHUT_RDWR)
                return
            self._send(stream_id, response, head_only=request.method == "HEAD")
        except (OSError, h2.exceptions.H2Error):
            pass  # the client reset the stream or went away

    def _send(self, stream_id: int, response: Response, *, head_only: bool) -> None:
        out = [(":status", str(response.status))] + [
            (name.lower(), value) for name, value in response.headers
            if name.lower() not in CONNECTION_SPECIFIC]
        no_body = head_only or response.status in (204, 304)
        if (response.body_length is not None and response.status not in (204, 304)
                and not any(name == "content-length" for name, _ in out)):
            out.append(("content-length", str(response.body_length)))
        with self.lock:
            self.h2.send_headers(stream_id, out, end_stream=no_body)
            self.flush()
        if no_body:
            return
        for piece in response.pieces():
            view = memoryview(piece)
            while view:
                with self.lock:
                    if not self.lock.wait_for(
                            lambda: self.closed or self.h2.local_flow_control_window(stream_id) > 0,
                            timeout=IO_TIMEOUT) or self.closed:
                        return
                    size = min(len(view), self.h2.local_flow_control_window(stream_id),
                               self.h2.max_outbound_frame_size)
                    self.h2.send_data(stream_id, bytes(view[:size]))
                    self.flush()
                view = view[size:]
        with self.lock:
            self.h2.end_stream(stream_id)
            self.flush()


def serve(server: "HttpServer", sock: socket.socket, client_port: int,
          subject: str | None) -> None:
    """Serve one HTTP/2 connection (the preface not yet consumed) until it ends."""
    _Connection(server, sock, client_port, subject).run()
