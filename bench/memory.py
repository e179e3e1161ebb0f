#!/usr/bin/env python3
"""Memory benchmark: a worker's RSS over many calls (errors included), and one 100 MB
response read through maxdatasize=4096.

Part 1 runs --calls calls (default 200,000) of a mix that a routing script meets: 200, 404 and
500 on a kept connection, connection refused (curl 7), an unknown connection (-1), a direct
query, a POST, a GET with extra headers while response headers are captured. RSS (VmRSS) is
sampled 20 times; the target is growth within 2 MB after the warm-up.

Part 2 asks nginx for 100 MB on a connection with maxdatasize=4096 (and a direct query with
query_maxdatasize=4096, keep_connections 0 and 1) and reports the peak RSS (VmHWM, reset
through /proc/self/clear_refs) over the RSS before: the target is a few MB at most.

Run:   .venv/bin/python bench/memory.py              # about a minute
       .venv/bin/python bench/memory.py --smoke      # seconds
       .venv/bin/python bench/memory.py --json out.json
Needs: nginx (apt-get install nginx-light).
"""
from __future__ import annotations

import argparse
import gc
import json
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import BIG_BYTES, Nginx, free_port, machine, rss_kib  # noqa: E402


def peak_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("no VmHWM")


def reset_peak() -> None:
    """Linux: writing 5 to clear_refs resets VmHWM to the current RSS."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def configure(kamhttp, nginx: Nginx, keep: int) -> None:
    from kamhttp import config

    config.reset()
    kamhttp.modparam("keep_connections", keep)
    kamhttp.modparam("query_maxdatasize", 4096)
    kamhttp.modparam("query_result", 0)
    base = nginx.base()
    kamhttp.modparam("httpcon", f"ok=>http://{base}")
    kamhttp.modparam("httpcon", f"refused=>http://127.0.0.1:{free_port()}")
    kamhttp.modparam("httpcon", f"big=>http://{base};maxdatasize=4096")
    config.finalize()


def mix(kamhttp, nginx: Nginx) -> list:
    """The calls of part 1, with the return value each must give."""
    k, kemi = kamhttp, kamhttp.http_client
    url = nginx.url
    return [
        (lambda: kemi.curl_connect("ok", "/ok", "$var(r)"), 200),
        (lambda: k.http_connect("ok", "/status/404", "$var(r)"), 404),
        (lambda: kemi.curl_connect("ok", "/status/500", "$var(r)"), 500),
        (lambda: kemi.curl_connect("refused", "/", "$var(r)"), 7),
        (lambda: kemi.curl_connect("nosuch", "/", "$var(r)"), -1),
        (lambda: kemi.query(url("/ok"), "$var(r)"), 200),
        (lambda: kemi.query_post(url("/ok"), "a=1", "$var(r)"), 200),
        (lambda: kemi.get_hdrs(url("/status/404"), "", "X-Bench: 1", "$var(r)"), 404),
        (lambda: k.http_connect("ok", "/ok", "text/plain", "data $var(r)", "$var(r)"), 200),
    ]


def steady(kamhttp, nginx: Nginx, calls: int, samples: int = 20) -> dict:
    configure(kamhttp, nginx, keep=1)
    kamhttp.http_client_response_headers_set(1)
    calls_mix = mix(kamhttp, nginx)
    for call, want in calls_mix:          # every call returns what the spec says
        got = call()
        if got != want:
            raise SystemExit(f"memory mix: a call returned {got}, expected {want}")
    warmup = max(len(calls_mix), calls // 20)
    for i in range(warmup):
        calls_mix[i % len(calls_mix)][0]()
    gc.collect()
    start, series = rss_kib(), []
    step = max(1, calls // samples)
    t0 = time.perf_counter()
    for i in range(calls):
        calls_mix[i % len(calls_mix)][0]()
        if (i + 1) % step == 0:
            series.append(rss_kib())
    elapsed = time.perf_counter() - t0
    kamhttp.http_client_response_headers_set(0)
    return {"calls": calls, "warmup": warmup, "rss_start_kib": start, "rss_series_kib": series,
            "rss_end_kib": series[-1] if series else start,
            "growth_kib": (max(series) if series else start) - start, "seconds": elapsed}


def big(kamhttp, nginx: Nginx) -> list[dict]:
    rows = []
    for keep in (0, 1):
        configure(kamhttp, nginx, keep)
        for name, call in (
                ("curl_connect, maxdatasize=4096",
                 lambda: kamhttp.http_client.curl_connect("big", "/big", "$var(big)")),
                ("query, query_maxdatasize=4096",
                 lambda: kamhttp.http_client.query(nginx.url("/big"), "$var(big)"))):
            gc.collect()
            before = rss_kib()
            reset_peak()
            t0 = time.perf_counter()
            code = call()
            elapsed = time.perf_counter() - t0
            length = len(kamhttp.pv.get("$var(big)") or "")
            rows.append({"call": name, "keep": keep, "code": code, "result_len": length,
                         "rss_before_kib": before, "peak_over_kib": peak_kib() - before,
                         "seconds": elapsed})
            if code != 200 or length != 4096:
                raise SystemExit(f"{name}: returned {code} with {length} bytes, "
                                 "expected 200 with 4096")
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=200_000)
    ap.add_argument("--smoke", action="store_true", help="2,000 calls: checks that it runs")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    if args.smoke:
        args.calls = 2_000
    logging.getLogger().addHandler(logging.NullHandler())   # errors are expected: not printed
    import kamhttp

    with Nginx(big=True) as nginx:
        result = {"machine": machine(), "steady": steady(kamhttp, nginx, args.calls),
                  "big": big(kamhttp, nginx)}
    s = result["steady"]
    print(f"# kamhttp memory benchmark\n\n{result['machine']}\n")
    print(f"{s['calls']:,} calls after {s['warmup']:,} warm-up calls ({s['seconds']:.1f} s): "
          f"RSS {s['rss_start_kib'] / 1024:.1f} MB -> {s['rss_end_kib'] / 1024:.1f} MB, "
          f"largest growth {s['growth_kib'] / 1024:.2f} MB (target <= 2 MB: "
          f"{'met' if s['growth_kib'] <= 2048 else 'MISSED'})")
    print("RSS samples (MB): " + " ".join(f"{x / 1024:.1f}" for x in s["rss_series_kib"]))
    print(f"\n{BIG_BYTES // 2**20} MB response, result capped at 4096 bytes:")
    for row in result["big"]:
        print(f"- {row['call']}, keep_connections={row['keep']}: HTTP {row['code']}, "
              f"{row['result_len']} bytes kept, peak RSS +{row['peak_over_kib'] / 1024:.2f} MB, "
              f"{row['seconds'] * 1000:.1f} ms")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
