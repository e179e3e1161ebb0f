#!/usr/bin/env python3
"""In-process micro benchmark: what one HTTP call costs the calling process.

Compares kamhttp's cfg functions (http_connect, http_client_query) and KEMI functions
(http_client.curl_connect, http_client.query) with a bare reused pycurl handle doing the same
GET, and with urllib3, httpx and requests (Session and requests.get), all against one local
nginx on 127.0.0.1 (keep-alive). Then HTTPS (TLS 1.3, ECDSA P-256, peer verification on) with
keep_connections 0 and 1.

Method: every variant runs one block of calls per round; the order rotates each round
(A/B interleaved); a block is sized from a warm-up to take about --budget seconds. Reported:
the median over --rounds rounds of client CPU per call (time.process_time) and of wall time,
the spread (min..max over rounds), and ratios from the same rounds.

Run:   .venv/bin/python bench/inprocess.py                 # full run, a few minutes
       .venv/bin/python bench/inprocess.py --smoke         # seconds: checks it still runs
       .venv/bin/python bench/inprocess.py --json out.json # also write the numbers
Needs: nginx (apt-get install nginx-light), bench/requirements.txt in the venv.
"""
from __future__ import annotations

import argparse
import gc
import importlib.util
import io
import json
import ssl
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import Nginx, Summary, machine, rotate, table  # noqa: E402

Call = Callable[[], object]


@dataclass
class Variant:
    """One client doing one kind of call. ``make`` builds the call (outside the timing);
    ``before`` runs before each block, outside the timing (kamhttp's keep_connections switch)."""

    name: str
    make: Callable[[], Call]
    before: Callable[[], None] = lambda: None
    group: str = "python"
    call: Call | None = None
    calls: int = 0
    cpu_us: list[float] = field(default_factory=list)
    wall_us: list[float] = field(default_factory=list)


# --- bare pycurl -------------------------------------------------------------------------------

def pycurl_reused(url: str, cafile: str | None) -> Call:
    """One easy handle kept for every call: what a careful hand-written caller does."""
    import pycurl

    handle = pycurl.Curl()
    handle.setopt(pycurl.NOSIGNAL, 1)
    if cafile:
        handle.setopt(pycurl.CAINFO, cafile)

    def call() -> int:
        buf = io.BytesIO()
        handle.setopt(pycurl.URL, url)
        handle.setopt(pycurl.WRITEDATA, buf)
        handle.perform()
        buf.getvalue()
        return handle.getinfo(pycurl.RESPONSE_CODE)
    return call


def pycurl_fresh(url: str, cafile: str | None) -> Call:
    """A new handle per call: a new TCP (and TLS) connection each time, as the C module's
    direct functions and keep_connections=0 connections do."""
    import pycurl

    def call() -> int:
        handle = pycurl.Curl()
        buf = io.BytesIO()
        handle.setopt(pycurl.NOSIGNAL, 1)
        if cafile:
            handle.setopt(pycurl.CAINFO, cafile)
        handle.setopt(pycurl.URL, url)
        handle.setopt(pycurl.WRITEDATA, buf)
        handle.perform()
        code = handle.getinfo(pycurl.RESPONSE_CODE)
        handle.close()
        return code
    return call


# --- Python HTTP clients -----------------------------------------------------------------------

def urllib3_pool(url: str, cafile: str | None) -> Call:
    import urllib3

    pool = urllib3.PoolManager(maxsize=1, **({"ca_certs": cafile, "cert_reqs": "CERT_REQUIRED"}
                                              if cafile else {}))
    return lambda: pool.request("GET", url).status


def httpx_client(url: str, cafile: str | None) -> Call:
    import httpx

    client = httpx.Client(verify=ssl.create_default_context(cafile=cafile) if cafile else True)
    return lambda: client.get(url).status_code


def requests_session(url: str, cafile: str | None) -> Call:
    import requests

    session = requests.Session()
    verify = cafile or True
    return lambda: session.get(url, verify=verify).status_code


def requests_get(url: str, cafile: str | None) -> Call:
    import requests

    verify = cafile or True
    return lambda: requests.get(url, verify=verify).status_code


PYTHON_CLIENTS = [("urllib3 PoolManager", "urllib3", urllib3_pool),
                  ("httpx.Client", "httpx", httpx_client),
                  ("requests.Session", "requests", requests_session),
                  ("requests.get", "requests", requests_get)]


# --- kamhttp -----------------------------------------------------------------------------------

class Kamhttp:
    """kamhttp configured as a routing script would: modparams, then one httpcon per scheme.
    ``configure(keep)`` re-applies the configuration with another keep_connections (direct-URL
    functions follow the module-wide value), only when it changes."""

    def __init__(self, nginx: Nginx) -> None:
        import kamhttp

        self.kamhttp = kamhttp
        self.nginx = nginx
        self.keep: int | None = None

    def configure(self, keep: int) -> None:
        if keep == self.keep:
            return
        from kamhttp import config

        config.reset()
        self.kamhttp.modparam("cacert", self.nginx.cafile)
        self.kamhttp.modparam("keep_connections", keep)
        self.kamhttp.modparam("httpcon", f"plain=>http://{self.nginx.base()}")
        self.kamhttp.modparam("httpcon", f"tls=>https://{self.nginx.base(tls=True)}")
        config.finalize()
        self.keep = keep

    def variants(self, tls: bool, keep: int) -> list[Variant]:
        k, con, url = self.kamhttp, ("tls" if tls else "plain"), self.nginx.url("/ok", tls)
        before = lambda: self.configure(keep)
        suffix = f" kc={keep}"
        return [
            Variant("kamhttp cfg http_connect" + suffix,
                    lambda: lambda: k.http_connect(con, "/ok", "$var(res)"), before, "kamhttp"),
            Variant("kamhttp KEMI curl_connect" + suffix,
                    lambda: lambda: k.http_client.curl_connect(con, "/ok", "$var(res)"),
                    before, "kamhttp"),
            Variant("kamhttp cfg http_client_query" + suffix,
                    lambda: lambda: k.http_client_query(url, "$var(res)"), before, "kamhttp"),
            Variant("kamhttp KEMI query" + suffix,
                    lambda: lambda: k.http_client.query(url, "$var(res)"), before, "kamhttp"),
        ]


# --- the runner --------------------------------------------------------------------------------

def block(call: Call, n: int) -> tuple[float, float]:
    """CPU and wall microseconds per call over ``n`` calls."""
    gc.collect()
    c0, t0 = time.process_time(), time.perf_counter()
    for _ in range(n):
        call()
    return ((time.process_time() - c0) * 1e6 / n, (time.perf_counter() - t0) * 1e6 / n)


def calibrate(call: Call, seconds: float) -> float:
    """Wall microseconds per call, from calls repeated for about ``seconds`` (at least 3,
    at most 10,000 calls), after the first connection was made."""
    calls, t0 = 0, time.perf_counter()
    while calls < 3 or (time.perf_counter() - t0 < seconds and calls < 10_000):
        call()
        calls += 1
    return max((time.perf_counter() - t0) * 1e6 / calls, 1.0)


def run(variants: list[Variant], rounds: int, budget: float, min_calls: int) -> None:
    """Warm up and size each variant, then the interleaved rounds."""
    for v in variants:
        v.before()
        v.call = v.make()
        status = v.call()
        if status != 200:
            raise SystemExit(f"{v.name}: the warm-up call returned {status}, expected 200")
        v.calls = max(min_calls, int(budget * 1e6 / calibrate(v.call, budget / 10)))
    for r in range(rounds):
        for v in rotate(variants, r):
            v.before()
            cpu, wall = block(v.call, v.calls)
            v.cpu_us.append(cpu)
            v.wall_us.append(wall)


def paired(a: Variant, b: Variant, op: Callable[[float, float], float]) -> float:
    """The median over rounds of op(a, b) on the same round's CPU values."""
    return statistics.median(op(x, y) for x, y in zip(a.cpu_us, b.cpu_us))


def report(title: str, variants: list[Variant], reference: Variant) -> str:
    rows = []
    for v in variants:
        cpu, wall = Summary(v.cpu_us), Summary(v.wall_us)
        rows.append([v.name, f"{1e6 / wall.median:,.0f}", f"{cpu.median:,.1f}",
                     f"{cpu.low:,.1f}..{cpu.high:,.1f}", f"{wall.median:,.1f}",
                     f"{paired(v, reference, lambda x, y: x / y):.2f}",
                     f"{paired(v, reference, lambda x, y: x - y):+,.1f}", str(v.calls)])
    return (f"### {title}\n\n" + table(
        ["client", "calls/s", "CPU µs/call", "CPU spread", "wall µs/call",
         f"CPU × {reference.name}", "CPU µs over it", "calls/block"], rows))


def targets(http: list[Variant]) -> str:
    """The in-process targets of issue 6, checked on the HTTP section."""
    by = {v.name: v for v in http}
    bare = by["pycurl reused handle"]
    lines = []
    for v in http:
        if v.group != "kamhttp" or "kc=1" not in v.name:
            continue
        extra = paired(v, bare, lambda x, y: x - y)
        lines.append(f"- {v.name}: {extra:+.1f} µs CPU/call over bare pycurl (target <= 10): "
                     f"{'met' if extra <= 10 else 'MISSED'}")
        for other, want in (("requests.get", 20), ("requests.Session", 10)):
            if other in by:
                ratio = paired(by[other], v, lambda x, y: x / y)
                lines.append(f"  - {other} uses {ratio:.1f} × its CPU (target >= {want}): "
                             f"{'met' if ratio >= want else 'MISSED'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=7, help="interleaved rounds (default 7)")
    ap.add_argument("--budget", type=float, default=0.3,
                    help="seconds per block, used to size the blocks (default 0.3)")
    ap.add_argument("--min-calls", type=int, default=20)
    ap.add_argument("--smoke", action="store_true",
                    help="1 round of tiny blocks: checks that every variant still runs")
    ap.add_argument("--no-https", action="store_true")
    ap.add_argument("--no-kamhttp", action="store_true", help="leave kamhttp out")
    ap.add_argument("--json", type=Path, help="write the raw per-round numbers here")
    args = ap.parse_args(argv)
    if args.smoke:
        args.rounds, args.budget, args.min_calls = 1, 0.0, 4

    results: dict = {"machine": machine(), "rounds": args.rounds, "sections": {}}
    with Nginx() as nginx:
        kh = None if args.no_kamhttp else Kamhttp(nginx)
        sections = [("HTTP, keep-alive server", False)]
        if not args.no_https:
            sections.append(("HTTPS (TLS 1.3, ECDSA P-256, verify on)", True))
        print(f"# kamhttp in-process benchmark\n\n{results['machine']}\n"
              f"{args.rounds} rounds, A/B interleaved; medians over rounds.\n")
        for title, tls in sections:
            url, ca = nginx.url("/ok", tls), (nginx.cafile if tls else None)
            variants = [Variant("pycurl reused handle", lambda: pycurl_reused(url, ca),
                                group="pycurl")]
            if tls:
                variants.append(Variant("pycurl new handle per call",
                                        lambda: pycurl_fresh(url, ca), group="pycurl"))
            if kh:
                for keep in ((0, 1) if tls else (1,)):
                    variants += kh.variants(tls, keep)
            for name, module, make in PYTHON_CLIENTS:
                if importlib.util.find_spec(module) is None:
                    print(f"({name} left out: {module} is not installed; "
                          "see bench/requirements.txt)")
                    continue
                variants.append(Variant(name, lambda make=make: make(url, ca)))
            run(variants, args.rounds, args.budget, args.min_calls)
            print(report(title, variants, variants[0]) + "\n")
            if not tls and kh:
                print("Targets (HTTP):\n" + targets(variants) + "\n")
            results["sections"][title] = [
                {"name": v.name, "group": v.group, "calls": v.calls,
                 "cpu_us": v.cpu_us, "wall_us": v.wall_us} for v in variants]
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
