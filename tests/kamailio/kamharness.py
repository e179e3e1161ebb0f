"""Run a real Kamailio for the tests and talk SIP to it.

``Kamailio`` starts ``kamailio -f CFG -DD -E`` (foreground, logging to a file) with a run
directory of its own, the embedded Python pointed at this project and at the venv's
site-packages, and stops it by PID, always.  ``SipClient`` is a small UDP SIP client that can
keep hundreds of requests in flight and matches each reply to its request by Call-ID.

Nothing here depends on kamhttp: the same harness runs the C ``http_client`` side by side.
"""
from __future__ import annotations

import dataclasses
import glob
import json
import math
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from typing import Iterable, Mapping

ROOT = pathlib.Path(__file__).resolve().parents[2]
"""The project (the clone): what the embedded Python imports kamhttp from."""

HERE = pathlib.Path(__file__).resolve().parent
SCRIPTS = HERE / "scripts"
KAMAILIO_CFG_DIR = ROOT / "kamailio-cfg"

KAMAILIO = shutil.which("kamailio", path="/usr/sbin:/usr/bin:/sbin:/bin")
MODULES_DIR = pathlib.Path("/usr/lib/x86_64-linux-gnu/kamailio/modules")
CLEAN_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
"""Kamailio's environment never has a venv's bin/ on PATH: the embedded Python finds
sys.executable through PATH and would silently drop Debian's site-packages."""

EMBEDDED_PYTHON = "3.11"
"""Debian bookworm's app_python3 embeds /usr/bin/python3.11."""


def modules_dir() -> pathlib.Path:
    """Where Kamailio's modules are, asked from the binary's package layout."""
    for candidate in (MODULES_DIR, *map(pathlib.Path,
                                         glob.glob("/usr/lib/*/kamailio/modules"))):
        if (candidate / "sl.so").exists():
            return candidate
    return MODULES_DIR


def venv_site_packages() -> pathlib.Path:
    """The site-packages of the interpreter running the tests (the project's venv)."""
    return pathlib.Path(sys.prefix) / "lib" / f"python{EMBEDDED_PYTHON}" / "site-packages"


def unavailable_reason(*modules: str) -> str | None:
    """Why Kamailio cannot run here, or None when it can."""
    if os.geteuid() != 0:
        return "Kamailio tests need root (they run Debian's kamailio as installed)"
    if KAMAILIO is None:
        return ("kamailio is not installed (apt-get install kamailio "
                "kamailio-python3-modules kamailio-utils-modules sip-tester)")
    for module in ("app_python3", *modules):
        if not (modules_dir() / f"{module}.so").exists():
            package = {"app_python3": "kamailio-python3-modules",
                       "http_client": "kamailio-utils-modules"}.get(module, "kamailio")
            return f"Kamailio module {module}.so is missing (apt-get install {package})"
    site = venv_site_packages()
    if not glob.glob(str(site / "pycurl" / "*cpython-311*")) and \
            not glob.glob(str(site / "pycurl*cpython-311*")):
        return (f"no Python {EMBEDDED_PYTHON} pycurl in {site}: app_python3 embeds Python "
                f"{EMBEDDED_PYTHON}, the tests run {sys.version_info[0]}.{sys.version_info[1]}")
    return None


def side_by_side_cfg(http_client_lines: str) -> str:
    """kamailio-cfg/kamailio-c.cfg with the modparam("http_client", ...) lines between its
    "http_client connections" markers replaced: a per-run copy for the tests."""
    text = (KAMAILIO_CFG_DIR / "kamailio-c.cfg").read_text()
    text, count = re.subn(r"(?ms)^# --- http_client connections: begin.*?"
                          r"^# --- http_client connections: end[^\n]*\n",
                          lambda _: http_client_lines.rstrip("\n") + "\n", text)
    if count != 1:
        raise ValueError("kamailio-cfg/kamailio-c.cfg lost its http_client connection markers")
    return text


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    """A port on 127.0.0.1 that nobody holds right now."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class KamailioError(RuntimeError):
    """Kamailio did not start, died, or did not answer; the message carries its log tail."""


class Kamailio:
    """One Kamailio process tree, started from ``cfg`` with ``defines`` (-A NAME=VALUE).

    ``defines`` values that are ``str`` are passed quoted (a cfg string), ``int`` as numbers.
    ``env`` is added to the clean environment; the Python scripts read their settings there.
    ``ready`` says how to see that it runs: ``options`` (an OPTIONS request gets any reply;
    for scripts that answer OPTIONS themselves) or ``rpc`` (the JSON-RPC socket answers; for
    scripts that would relay an OPTIONS sent to Kamailio back to itself).
    ``working_dir`` is Kamailio's -w (relative paths in the cfg resolve there); default
    ``workdir``, which also holds the log and the runtime directory (-Y).
    """

    def __init__(self, cfg: pathlib.Path, workdir: pathlib.Path, *,
                 defines: Mapping[str, str | int] | None = None,
                 env: Mapping[str, str] | None = None, sip_port: int | None = None,
                 ready: str = "options", working_dir: pathlib.Path | None = None) -> None:
        self.cfg = cfg
        self.ready = ready
        self.working_dir = working_dir or workdir
        self.workdir = workdir
        self.sip_port = sip_port or free_port()
        self.defines = {"SIP_PORT": self.sip_port, **(defines or {})}
        self.env = {
            "PATH": CLEAN_PATH,
            "LANG": "C.UTF-8",
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(venv_site_packages())]),
            "PYTHONDONTWRITEBYTECODE": "1",
            **(env or {}),
        }
        self.log_path = workdir / "kamailio.log"
        self.proc: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None, "Kamailio is not started"
        return self.proc.pid

    def command(self) -> list[str]:
        cmd = [KAMAILIO, "-f", str(self.cfg), "-DD", "-E", "-Y", str(self.workdir),
               "-w", str(self.working_dir), "-L", str(modules_dir())]
        for name, value in self.defines.items():
            cmd += ["-A", f'{name}="{value}"' if isinstance(value, str) else f"{name}={value}"]
        return cmd

    def start(self, ready_timeout: float = 20.0) -> "Kamailio":
        """Start, and wait (bounded) until it is ready (see ``ready``)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=self.env,
                                         cwd=self.working_dir, start_new_session=True)
        self.wait_ready(ready_timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with SipClient(self.sip_port) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise KamailioError(f"kamailio exited with {self.proc.returncode} "
                                        f"at startup\n{self.log_tail()}")
                if self.ready == "rpc":
                    try:
                        self.rpc("core.version", timeout=0.5)
                        return
                    except (OSError, KamailioError):
                        time.sleep(0.1)
                elif client.send_many([client.build("OPTIONS")], timeout=0.5, check=False):
                    return
        raise KamailioError(f"kamailio did not answer within {timeout} s\n{self.log_tail()}")

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM the main PID (Kamailio stops all its processes), then make sure that every
        process of its group is gone.  Returns the exit status."""
        if self.proc is None:
            return None
        pgid = self.proc.pid  # start_new_session: the group is ours alone
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout)
        deadline = time.monotonic() + timeout
        while _group_alive(pgid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _group_alive(pgid):
            os.killpg(pgid, signal.SIGKILL)
        return self.proc.returncode

    def rpc(self, method: str, *params: object, timeout: float = 10.0) -> object:
        """A JSON-RPC call over jsonrpcs' datagram socket in the run directory (the cfg loads
        jsonrpcs with transport 4 or 6). Returns ``result``; an RPC error raises. Objects with
        repeated keys (listcon's CONNECTION members) come back as lists of (key, value)."""
        server = str(self.workdir / "kamailio_rpc.sock")
        client_path = self.workdir / f"rpc-client-{uuid.uuid4().hex[:8]}.sock"
        request = json.dumps({"jsonrpc": "2.0", "method": method, "params": list(params),
                              "id": 1}).encode()
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.bind(str(client_path))
            try:
                sock.settimeout(timeout)
                sock.sendto(request, server)
                data = sock.recv(1 << 20)
            finally:
                client_path.unlink(missing_ok=True)
        reply = json.loads(data, object_pairs_hook=_object)
        if isinstance(reply, dict) and "error" in reply:
            raise KamailioError(f"RPC {method}: {reply['error']}")
        return reply["result"]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def worker_pids(self) -> list[int]:
        """The PIDs of the SIP workers (ranks 1..children), from the child_init log lines
        that our scripts write ("child_init rank=R pid=P")."""
        pids = []
        for line in self.log().splitlines():
            if "child_init rank=" in line:
                fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
                if int(fields["rank"]) > 0:
                    pids.append(int(fields["pid"]))
        return sorted(set(pids))

    def python_errors(self) -> list[str]:
        """Lines of the log where the embedded Python raised."""
        return [line for line in self.log().splitlines()
                if "Traceback" in line or ("app_python3" in line and "ERROR" in line)]

    def __enter__(self) -> "Kamailio":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _object(pairs: list[tuple[str, object]]) -> dict | list:
    keys = [key for key, _ in pairs]
    return dict(pairs) if len(set(keys)) == len(keys) else pairs


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # zombies of our own Popen are reaped by wait(); others belong to init
    return any(_pgid_of(pid) == pgid for pid in _pids())


def _pids() -> Iterable[int]:
    return (int(p) for p in os.listdir("/proc") if p.isdigit())


def _pgid_of(pid: int) -> int | None:
    try:
        stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[2]) if fields[0] != "Z" else None


T1, T2 = 0.5, 4.0
"""RFC 3261 retransmission timers for non-INVITE requests over UDP."""


@dataclasses.dataclass
class SipReply:
    status: int
    reason: str
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self) -> dict:
        return json.loads(self.body)


@dataclasses.dataclass
class SipRequest:
    call_id: str
    data: bytes
    method: str = "MESSAGE"
    uri: str = ""
    via: str = ""
    from_: str = ""

    def ack(self, reply: "SipReply") -> bytes:
        """The ACK of a non-2xx final reply to this INVITE (RFC 3261 17.1.1.3)."""
        return ("\r\n".join([
            f"ACK {self.uri} SIP/2.0", f"Via: {self.via}", "Max-Forwards: 70",
            f"From: {self.from_}", f"To: {reply.header('To')}", f"Call-ID: {self.call_id}",
            f"CSeq: {reply.header('CSeq').split()[0]} ACK", "Content-Length: 0",
        ]) + "\r\n\r\n").encode()


class SipClient:
    """A UDP SIP user agent client on 127.0.0.1: builds requests, sends many at once and
    collects the replies by Call-ID, within a deadline."""

    def __init__(self, server_port: int, server_host: str = "127.0.0.1") -> None:
        self.server = (server_host, server_port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    def build(self, method: str = "MESSAGE", *, headers: Mapping[str, str] | None = None,
              body: bytes | str = b"", user: str = "probe", uri: str | None = None,
              from_user: str = "tester",
              content_type: str = "application/json") -> SipRequest:
        """A request to Kamailio; ``uri`` (default sip:USER@kamailio) is the Request-URI,
        e.g. a user at a SipUas to which Kamailio relays."""
        call_id = uuid.uuid4().hex
        body = body.encode() if isinstance(body, str) else body
        host, port = self.server
        uri = uri or f"sip:{user}@{host}:{port}"
        via = f"SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bK{call_id};rport"
        from_ = f"<sip:{from_user}@127.0.0.1>;tag={call_id[:8]}"
        lines = [
            f"{method} {uri} SIP/2.0",
            f"Via: {via}",
            "Max-Forwards: 70",
            f"From: {from_}",
            f"To: <{uri}>",
            f"Call-ID: {call_id}",
            f"CSeq: 1 {method}",
            *(f"{name}: {value}" for name, value in (headers or {}).items()),
        ]
        if body:
            lines.append(f"Content-Type: {content_type}")
        lines.append(f"Content-Length: {len(body)}")
        return SipRequest(call_id, ("\r\n".join(lines) + "\r\n\r\n").encode() + body,
                          method, uri, via, from_)

    def send_many(self, requests: list[SipRequest], timeout: float,
                  check: bool = True, retransmit: bool = False) -> dict[str, SipReply]:
        """Send every request at once, then collect the final replies until all arrived or
        ``timeout`` passed.  With ``check``, a missing reply raises with the count.

        With ``retransmit``, a request without a reply is sent again after 0.5 s, 1 s, 2 s,
        then every 4 s (RFC 3261 timer E), as a SIP UA over UDP does: only for a server that
        absorbs retransmissions in a transaction (tm), or a slow request would run twice."""
        waiting = {r.call_id: r for r in requests}
        replies: dict[str, SipReply] = {}
        for request in requests:
            self.sock.sendto(request.data, self.server)
        now = time.monotonic()
        deadline = now + timeout
        interval = T1
        next_send = now + interval if retransmit else math.inf
        while waiting and (now := time.monotonic()) < deadline:
            if now >= next_send:
                for request in waiting.values():
                    self.sock.sendto(request.data, self.server)
                interval = min(2 * interval, T2)
                next_send = now + interval
            self.sock.settimeout(max(0.001, min(deadline, next_send) - now))
            try:
                data = self.sock.recv(65535)
            except socket.timeout:
                continue
            call_id, reply = parse_reply(data)
            if call_id in waiting and reply.status >= 200:
                request = waiting.pop(call_id)
                replies[call_id] = reply
                if request.method == "INVITE" and reply.status >= 300:
                    self.sock.sendto(request.ack(reply), self.server)
        if check and waiting:
            raise TimeoutError(f"{len(waiting)} of {len(requests)} SIP requests got no reply "
                               f"within {timeout} s")
        return replies

    def send(self, request: SipRequest, timeout: float = 15.0) -> SipReply:
        return self.send_many([request], timeout)[request.call_id]

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "SipClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SipUas:
    """A user agent server on 127.0.0.1 that Kamailio relays to: it answers every request
    (INVITE with ``invite_status``, others 200) and says in ``X-Uas-Ruri`` which
    Request-URI reached it; ACKs are recorded, not answered."""

    def __init__(self, invite_status: tuple[int, str] = (486, "Busy Here")) -> None:
        self.invite_status = invite_status
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.received: list[tuple[str, str]] = []
        """(method, Request-URI) of every request that arrived."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True, name="sip-uas")

    def uri(self, user: str) -> str:
        return f"sip:{user}@127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            head = data.partition(b"\r\n\r\n")[0].decode("utf-8", "replace").split("\r\n")
            method, uri = head[0].split(" ")[:2]
            self.received.append((method, uri))
            if method == "ACK":
                continue
            code, reason = self.invite_status if method == "INVITE" else (200, "OK")
            copied = [line for line in head[1:]
                      if line.split(":", 1)[0].strip().lower() in ("via", "from", "call-id",
                                                                   "cseq")]
            to = next(line for line in head[1:] if line.lower().startswith("to:"))
            reply = [f"SIP/2.0 {code} {reason}", *copied,
                     to if ";tag=" in to else f"{to};tag=uas{self.port}",
                     f"X-Uas-Ruri: {uri}", "Content-Length: 0"]
            self.sock.sendto(("\r\n".join(reply) + "\r\n\r\n").encode(), peer)

    def __enter__(self) -> "SipUas":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


def parse_reply(data: bytes) -> tuple[str, SipReply]:
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("utf-8", "replace").split("\r\n")
    _version, status, reason = (lines[0].split(" ", 2) + [""])[:3]
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        key = name.strip().lower()
        # a repeated header keeps its values joined, as SIP allows
        headers[key] = f"{headers[key]},{value.strip()}" if key in headers else value.strip()
    length = int(headers.get("content-length", len(rest)))
    return headers.get("call-id", ""), SipReply(int(status), reason, headers, rest[:length])
