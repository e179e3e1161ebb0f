"""Shared pieces of the benchmarks: a local nginx (HTTP and HTTPS, TLS 1.3 with an ECDSA P-256
certificate from a trustme CA), CPU accounting from /proc, and the statistics every script
prints (median of rounds, spread, ratio).

Not part of the test suite; see bench/README.md.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
CLK_TCK = os.sysconf("SC_CLK_TCK")
BIG_BYTES = 100 * 1024 * 1024


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the small race is acceptable for a benchmark)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 10.0) -> None:
    """Block until something accepts on 127.0.0.1:port, bounded by ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


ECHO_MODULE = "/usr/lib/nginx/modules/ngx_http_echo_module.so"
"""nginx's echo module (Debian: nginx-light depends on libnginx-mod-http-echo): echo_sleep is
the fixed delay of bench/async_sip.py's responses."""

_NGINX_CONF = """\
{modules}worker_processes {workers};
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 600s;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    ssl_protocols TLSv1.3;
    ssl_session_cache shared:BENCH:4m;
    ssl_session_tickets on;
    server {{
        listen 127.0.0.1:{http};
        listen 127.0.0.1:{https} ssl;
        ssl_certificate {tmp}/server.pem;
        ssl_certificate_key {tmp}/server.key;
        default_type text/plain;
        location = /ok {{ return 200 "ok\\n"; }}
        location = /status/404 {{ return 404 "not found\\n"; }}
        location = /status/500 {{ return 500 "boom\\n"; }}
        location = /big {{ alias {tmp}/big.bin; }}
{delay_locations}        location / {{ return 200 "ok\\n"; }}
    }}
}}
"""


@dataclass
class Nginx:
    """A private nginx on 127.0.0.1: ``/ok`` answers "ok\\n" (200), ``/status/404`` and
    ``/status/500`` their codes, ``/big`` 100 MB of text (with ``big=True``), ``/delay/<ms>``
    "ok\\n" after <ms> milliseconds for each of ``delays`` (the echo module's echo_sleep).
    HTTPS is TLS 1.3 only, ECDSA P-256, signed by a CA whose file is ``cafile``. Stopped by
    its PID."""

    workers: int = 1
    big: bool = False           # write the 100 MB file behind /big (the memory benchmark)
    delays: tuple[int, ...] = ()  # /delay/<ms>: "ok\\n" after <ms> ms (echo_sleep; echo module)
    tmp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="kamhttp-bench-")))
    http_port: int = 0
    https_port: int = 0
    proc: subprocess.Popen | None = None

    @property
    def cafile(self) -> str:
        return str(self.tmp / "ca.pem")

    def url(self, path: str = "/ok", tls: bool = False) -> str:
        return (f"https://127.0.0.1:{self.https_port}{path}" if tls
                else f"http://127.0.0.1:{self.http_port}{path}")

    def base(self, tls: bool = False) -> str:
        """The base URL without the scheme, as an httpcon wants it after ``scheme://``."""
        return f"127.0.0.1:{self.https_port if tls else self.http_port}"

    def start(self) -> "Nginx":
        import trustme  # the test dependency; imported here so --help works without it

        ca = trustme.CA(key_type=trustme.KeyType.ECDSA)
        cert = ca.issue_cert("127.0.0.1", "localhost", key_type=trustme.KeyType.ECDSA)
        ca.cert_pem.write_to_path(self.cafile)
        cert.cert_chain_pems[0].write_to_path(str(self.tmp / "server.pem"))
        for extra in cert.cert_chain_pems[1:]:
            extra.write_to_path(str(self.tmp / "server.pem"), append=True)
        cert.private_key_pem.write_to_path(str(self.tmp / "server.key"))
        if self.big:
            self._write_big()
        os.chmod(self.tmp, 0o755)  # nginx's workers run as an unprivileged user
        self.http_port, self.https_port = free_port(), free_port()
        conf = self.tmp / "nginx.conf"
        modules, delay_locations = "", ""
        if self.delays:
            if not os.path.exists(ECHO_MODULE):
                raise RuntimeError(f"{ECHO_MODULE} is missing (apt-get install nginx-light "
                                   "libnginx-mod-http-echo): the delayed responses need it")
            modules = f"load_module {ECHO_MODULE};\n"
            for ms in self.delays:
                sleep = f"echo_sleep {ms / 1000:.3f}; " if ms else ""
                delay_locations += (f"        location = /delay/{ms} {{ {sleep}"
                                    f"echo \"ok\"; }}\n")
        conf.write_text(_NGINX_CONF.format(workers=self.workers, tmp=self.tmp,
                                           http=self.http_port, https=self.https_port,
                                           modules=modules, delay_locations=delay_locations))
        self.proc = subprocess.Popen([NGINX, "-p", str(self.tmp), "-c", str(conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_port(self.http_port)
            wait_port(self.https_port)
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"nginx did not start: {(self.tmp / 'error.log').read_text()!r}")
        return self

    def _write_big(self) -> None:
        line = b"kamhttp benchmark: a long response body, one line of 64 bytes..\n"
        with open(self.tmp / "big.bin", "wb") as f:  # text: a result stops at a NUL byte
            for _ in range(BIG_BYTES // (len(line) * 1024)):
                f.write(line * 1024)
        os.chmod(self.tmp / "big.bin", 0o644)

    def pids(self) -> list[int]:
        """The master and its workers (for CPU accounting)."""
        return [self.proc.pid, *children(self.proc.pid)] if self.proc else []

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> "Nginx":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def children(pid: int) -> list[int]:
    """Direct and indirect child PIDs of ``pid``, from /proc."""
    parent_of: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parent_of[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = [], [pid]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parent_of.items() if pp == p]
        found += kids
        frontier += kids
    return found


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of these processes (threads included), in seconds, from /proc/<pid>/stat.
    A process that has gone away counts 0."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
        except (OSError, IndexError, ValueError):
            continue
    return total / CLK_TCK


def rss_kib(pid: int | str = "self") -> int:
    """Resident set size (VmRSS) in KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


@dataclass
class Summary:
    """Median and spread of one client's per-round values."""

    values: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)

    @property
    def spread_pct(self) -> float:
        """(max - min) / median, in percent: how much the rounds disagree."""
        return 100.0 * (self.high - self.low) / self.median if self.median else 0.0


def rotate(items: list, round_no: int) -> list:
    """A/B interleaving: each round runs every variant once, starting one further along, so
    slow drifts of the machine hit every variant alike."""
    k = round_no % len(items) if items else 0
    return items[k:] + items[:k]


def machine() -> str:
    """One line about the machine, for the reports."""
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    load = os.getloadavg()
    return (f"{os.cpu_count()} CPUs ({model}), Linux {os.uname().release}, "
            f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


def table(headers: list[str], rows: list[list[str]]) -> str:
    """A Markdown table (aligned, so it also reads well in a terminal)."""
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"
    return "\n".join([line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|",
                      *map(line, rows)])
