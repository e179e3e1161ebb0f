#!/usr/bin/env python3
"""CPU per transfer of kamhttp's transfer process alone, without Kamailio (issue 12).

The transfer process (kamhttp.aio.transfers.serve) is forked as the HTTP process forks it
and fed through the same framed socket pair: this driver keeps --in-flight jobs queued on the
connection "bench" (a private nginx on 127.0.0.1, /delay/<ms>) and reads their outcomes, for
--jobs jobs per round.  Printed per round and as a median: transfers/s, and the transfer
process's CPU (utime + stime from /proc) per transfer.  It isolates the cost the SIP benchmark
(bench/async_sip.py) reports in its "transfer" column, so a change of the loop can be judged
in a minute, on instructions' worth of noise rather than a whole Kamailio's.

Run:   .venv/bin/python bench/async_transfer.py --delay 0 --in-flight 64
       .venv/bin/python bench/async_transfer.py --delay 100 --in-flight 250 --jobs 5000
Needs: nginx-light and its echo module (as bench/async_sip.py).
"""
from __future__ import annotations

import argparse
import json
import os
import selectors
import signal
import socket
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from common import Nginx, cpu_seconds, machine  # noqa: E402

import kamhttp  # noqa: E402
from kamhttp.aio.jobs import Job, Outcome  # noqa: E402
from kamhttp.aio import transfers  # noqa: E402
from kamhttp.aio.transfers import FrameReader, FrameWriter  # noqa: E402


def one_round(sock: socket.socket, pid: int, path: str, jobs: int, in_flight: int,
              deadline_s: float) -> tuple[float, float, int]:
    """Run ``jobs`` jobs with ``in_flight`` outstanding: (seconds, CPU seconds, non-200s)."""
    reader, writer = FrameReader(sock), FrameWriter(sock)
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ)
    encoded = Job(-1, 0, "", "", "bench", path).encode()
    sent = done = bad = 0
    cpu0, t0 = cpu_seconds([pid]), time.perf_counter()
    stop = time.monotonic() + deadline_s
    while done < jobs and time.monotonic() < stop:
        while sent < jobs and sent - done < in_flight:
            writer.write(sent, encoded)
            sent += 1
        for _key, _events in sel.select(1.0):
            writer.flush()
            frames = reader.read()
            if frames is None:
                raise RuntimeError("the transfer process closed its socket")
            for _job_id, payload in frames:
                done += 1
                bad += Outcome.decode(payload).code != 200
    seconds = time.perf_counter() - t0
    sel.close()
    if done < jobs:
        raise RuntimeError(f"only {done} of {jobs} jobs came back within {deadline_s} s")
    return seconds, cpu_seconds([pid]) - cpu0, bad


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--delay", type=int, default=0, help="the HTTP answer's delay in ms")
    ap.add_argument("--in-flight", type=int, default=64)
    ap.add_argument("--jobs", type=int, default=20000, help="per round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    with Nginx(delays=(args.delay,)) as nginx:
        kamhttp.modparam("keep_connections", 1)
        kamhttp.modparam("httpcon", f"bench=>http://{nginx.base()}")
        kamhttp.finalize()
        pid, mine = transfers.start()
        rows = []
        try:
            path = f"/delay/{args.delay}"
            one_round(mine, pid, path, min(args.jobs, 2000), args.in_flight, 60)  # warm-up
            for n in range(args.rounds):
                seconds, cpu, bad = one_round(mine, pid, path, args.jobs, args.in_flight, 120)
                rows.append({"per_s": args.jobs / seconds, "cpu_us": cpu / args.jobs * 1e6,
                             "non_200": bad})
                print(f"round {n + 1}: {rows[-1]['per_s']:,.0f} transfers/s, "
                      f"{rows[-1]['cpu_us']:.1f} µs CPU per transfer, {bad} not 200",
                      flush=True)
        finally:
            mine.close()                      # the transfer process ends with its socket
            for _ in range(50):
                if os.waitpid(pid, os.WNOHANG)[0]:
                    break
                time.sleep(0.1)
            else:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
    median = statistics.median(r["cpu_us"] for r in rows)
    print(f"delay {args.delay} ms, {args.in_flight} in flight: median {median:.1f} µs CPU per "
          f"transfer (spread {min(r['cpu_us'] for r in rows):.1f}-"
          f"{max(r['cpu_us'] for r in rows):.1f}), "
          f"{statistics.median(r['per_s'] for r in rows):,.0f} transfers/s")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "args": vars(args) | {
            "json": str(args.json)}, "rounds": rows, "median_cpu_us": median}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
