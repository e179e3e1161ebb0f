#!/usr/bin/env python3
"""Soak run: 200,000 kamhttp calls in one process, mixing success, 4xx, 5xx, failover and
curl errors, while the process's RSS, open file descriptors and CLOSE_WAIT sockets are
sampled. They must stay flat: a worker of a long-running Kamailio may not grow.

The servers (tests/servers: HTTP/1.1, h2c, HTTPS, the fault server) run in a child process
(``python -m tests.servers``), so their memory and sockets are not counted here.

Each cycle of the mix makes these calls (expected return code in brackets):
  http_connect "api" GET 200 [200]            http_client_query direct GET 404 [404]
  http_connect "api" GET 503 [503]            http_connect "fo5xx": 500, failover [200]
  http_connect "fo_refused": curl 7, failover [200]
  http_client_query to a refused port [7]     KEMI query_post to /echo [200]
  http_client_request_v2pk over h2c [200]     http_client_query, server closes [52]
  http_connect "tls" over HTTPS, peer verified [200]
and every TIMEOUT_EVERY calls one request to a silent server, timeout 50 ms [28].

Run:   .venv/bin/python bench/soak.py                   # 200,000 calls, a few minutes
       .venv/bin/python bench/soak.py --calls 20000     # shorter
       .venv/bin/python bench/soak.py --keep 0          # a fresh connection per request
Exit status 0 when every call returned its expected code and the samples are flat.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import kamhttp  # noqa: E402
from kamhttp.ops import counters  # noqa: E402

TIMEOUT_EVERY = 1000
WARMUP_CALLS = 20_000
"""Samples before this many calls are not judged: caches, handles and pools fill up first."""
RSS_GROWTH_LIMIT_KIB = 4096
"""Flat: RSS after the warm-up grows by less than this (allocator noise, not a leak)."""
FD_GROWTH_LIMIT = 2
CLOSE_WAIT_LIMIT = 8
"""libcurl's connection cache may hold a few connections the server has closed until it
prunes them: bounded, not growing."""


@dataclass
class Sample:
    calls: int
    seconds: float
    rss_kib: int
    fds: int
    close_wait: int
    connok: int
    connfail: int


class CountingHandler(logging.Handler):
    """Counts kamhttp's log records by level instead of printing 100,000 lines."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[str, int] = {}

    def emit(self, record: logging.LogRecord) -> None:
        self.counts[record.levelname] = self.counts.get(record.levelname, 0) + 1


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def socket_inodes() -> tuple[int, set[str]]:
    """(open fds, inodes of the socket fds) of this process."""
    fds = os.listdir("/proc/self/fd")
    inodes = set()
    for fd in fds:
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return len(fds), inodes


def close_wait(inodes: set[str]) -> int:
    """This process's TCP sockets in CLOSE_WAIT (state 08): the peer closed, we did not."""
    count = 0
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        with open(table) as lines:
            next(lines)
            count += sum(1 for line in lines
                         if (fields := line.split())[3] == "08" and fields[9] in inodes)
    return count


def sample(calls: int, started: float) -> Sample:
    fds, inodes = socket_inodes()
    totals = counters.totals()
    return Sample(calls, time.monotonic() - started, rss_kib(), fds, close_wait(inodes),
                  totals["connok"], totals["connfail"])


class Servers:
    """tests/servers in a child process, stopped by closing its stdin (then by its PID)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.servers"], cwd=ROOT,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        info = json.loads(self._read_json())
        self.urls: dict[str, str] = info["urls"]
        self.ca_file: str = info["tls_files"]["ca_file"]

    def _read_json(self) -> str:
        lines = []
        for _ in range(200):          # the JSON object is a few dozen lines
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("python -m tests.servers exited before printing its URLs")
            lines.append(line)
            if line.startswith("}"):
                return "".join(lines)
        raise RuntimeError("python -m tests.servers printed no complete JSON object")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)


def configure(urls: dict[str, str], ca_file: str, keep: int) -> None:
    kamhttp.reset()
    kamhttp.modparam("timeout_mode", 2)
    kamhttp.modparam("connection_timeout", 2000)
    kamhttp.modparam("keep_connections", keep)
    kamhttp.modparam("query_result", 0)
    kamhttp.modparam("cacert", ca_file)
    kamhttp.modparam("httpcon", f"api=>{urls['http']}/code")
    kamhttp.modparam("httpcon", f"backup=>{urls['http']}/echo")
    kamhttp.modparam("httpcon", f"fo5xx=>{urls['http']}/code;failover=backup")
    kamhttp.modparam("httpcon", f"fo_refused=>{urls['refused']};failover=backup")
    kamhttp.modparam("httpcon", f"tls=>{urls['https']}/code")
    kamhttp.modparam("httpcon", f"silent=>{urls['fault']}/fault;timeout=50")
    kamhttp.finalize()


def the_mix(urls: dict[str, str]) -> list[tuple[str, int, Callable[[], int]]]:
    """(name, expected code, call) for one cycle."""
    http, h2c, fault, refused = urls["http"], urls["h2c"], urls["fault"], urls["refused"]
    kemi = kamhttp.http_client
    return [
        ("200 on a connection", 200, lambda: kamhttp.http_connect("api", "/200?body=ok",
                                                                   "$var(r)")),
        ("404 direct", 404, lambda: kamhttp.http_client_query(f"{http}/code/404?body=nf",
                                                              "$var(r)")),
        ("503 on a connection", 503, lambda: kamhttp.http_connect("api", "/503", "$var(r)")),
        ("500 then failover", 200, lambda: kamhttp.http_connect("fo5xx", "/500", "$var(r)")),
        ("refused then failover", 200, lambda: kamhttp.http_connect("fo_refused", "/x",
                                                                    "$var(r)")),
        ("refused direct", 7, lambda: kamhttp.http_client_query(f"{refused}/x", "$var(r)")),
        ("KEMI POST", 200, lambda: kemi.query_post(f"{http}/echo", "a=1&b=2", "$var(r)")),
        ("v2pk over h2c", 200, lambda: kamhttp.http_client_request_v2pk(
            "GET", f"{h2c}/code/200?body=h2", "", "", "$var(r)")),
        ("server closes", 52, lambda: kamhttp.http_client_query(f"{fault}/fault/close",
                                                                "$var(r)")),
        ("HTTPS on a connection", 200, lambda: kamhttp.http_connect("tls", "/200?body=s",
                                                                     "$var(r)")),
    ]


def timeout_call() -> int:
    return kamhttp.http_connect("silent", "/silent?seconds=1", "$var(r)")


def run(calls: int, every: int, keep: int) -> tuple[list[Sample], dict[str, int], int]:
    servers = Servers()
    try:
        configure(servers.urls, servers.ca_file, keep)
        mix = the_mix(servers.urls)
        wrong: dict[str, int] = {}
        started = time.monotonic()
        samples = [sample(0, started)]
        timeouts = 0
        done = 0
        while done < calls:              # bounded: done grows by one per call
            name, expected, call = mix[done % len(mix)]
            if done % TIMEOUT_EVERY == TIMEOUT_EVERY - 1:
                name, expected, call = "timeout 50 ms", 28, timeout_call
                timeouts += 1
            rc = call()
            if rc != expected:
                wrong[f"{name}: {rc} (expected {expected})"] = wrong.get(
                    f"{name}: {rc} (expected {expected})", 0) + 1
            done += 1
            if done % every == 0 or done == calls:
                samples.append(sample(done, started))
                last = samples[-1]
                print(f"{done:>8} calls {last.seconds:7.1f} s  RSS {last.rss_kib:>7} KiB  "
                      f"fds {last.fds:>3}  CLOSE_WAIT {last.close_wait:>2}", flush=True)
        return samples, wrong, timeouts
    finally:
        servers.stop()


def verdict(samples: list[Sample]) -> tuple[bool, dict[str, str]]:
    judged = [s for s in samples if s.calls >= WARMUP_CALLS] or samples[-1:]
    base = judged[0]
    rss_growth = max(s.rss_kib for s in judged) - base.rss_kib
    fd_growth = max(s.fds for s in judged) - base.fds
    worst_close_wait = max(s.close_wait for s in samples)
    checks = {
        "RSS": (rss_growth < RSS_GROWTH_LIMIT_KIB,
                f"{base.rss_kib} KiB after {base.calls} calls, at most +{rss_growth} KiB after"),
        "open fds": (fd_growth <= FD_GROWTH_LIMIT,
                     f"{base.fds} after {base.calls} calls, at most +{fd_growth} after"),
        "CLOSE_WAIT": (worst_close_wait <= CLOSE_WAIT_LIMIT,
                       f"at most {worst_close_wait} at any sample"),
    }
    flat = all(ok for ok, _ in checks.values())
    return flat, {name: ("flat, " if ok else "GROWING, ") + text
                  for name, (ok, text) in checks.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--sample-every", type=int, default=10_000)
    parser.add_argument("--keep", type=int, choices=(0, 1), default=1,
                        help="keep_connections (default 1)")
    parser.add_argument("--json", help="also write the samples to this file")
    args = parser.parse_args(argv)
    if args.calls < 1 or args.sample_every < 1:
        parser.error("--calls and --sample-every must be positive")

    logged = CountingHandler()
    logging.getLogger().addHandler(logged)      # kamhttp's bridge hands records to the root
    samples, wrong, timeouts = run(args.calls, args.sample_every, args.keep)
    flat, report = verdict(samples)
    last = samples[-1]
    print()
    print(f"kamhttp soak: {last.calls} calls in {last.seconds:.0f} s "
          f"({last.calls / last.seconds:.0f} calls/s), keep_connections={args.keep}, "
          f"{timeouts} timeouts; pid {os.getpid()}")
    print(f"counters: connok {last.connok}, connfail {last.connfail}")
    print("log records: " + ", ".join(f"{n} {level}" for level, n in sorted(logged.counts.items())))
    print(f"unexpected return codes: {sum(wrong.values())}"
          + "".join(f"\n  {text} x{n}" for text, n in wrong.items()))
    for name, text in report.items():
        print(f"{name}: {text}")
    print("\n| calls | seconds | RSS KiB | open fds | CLOSE_WAIT |\n|---|---|---|---|---|")
    for s in samples:
        print(f"| {s.calls} | {s.seconds:.0f} | {s.rss_kib} | {s.fds} | {s.close_wait} |")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"samples": [vars(s) for s in samples], "wrong": wrong,
                       "flat": flat, "report": report}, out, indent=2)
    return 0 if flat and not wrong else 1


if __name__ == "__main__":
    sys.exit(main())
