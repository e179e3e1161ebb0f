#!/usr/bin/env python3
"""Where kamhttp's asynchronous path spends its CPU: one Kamailio of bench/async_sip.py
(kamhttp async, 1 HTTP process) under SIPp load, py-spy sampling its processes.

py-spy records the HTTP process (evrexec), its transfer process and one SIP worker for
--seconds while SIPp offers --rate MESSAGEs/s against an answer after --delay ms; printed
per process: the CPU it used per call, and the functions with the most samples, by self
time (where the CPU goes) and by total time (inclusive, the call tree's weight).

With --perf, perf (Debian's linux-perf) samples instead, with its software clock, and the
split is by shared object: Kamailio's core and modules (tm's t_continue and t_reply), Python,
libcurl, the kernel.

Run:   .venv/bin/python bench/async_profile.py --delay 100 --rate 2000 --seconds 10
       .venv/bin/python bench/async_profile.py --delay 100 --rate 2000 --perf
Needs: what bench/async_sip.py needs, and py-spy (bench/requirements.txt) or perf.
"""
from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import async_sip  # noqa: E402
from common import Nginx, cpu_seconds  # noqa: E402

PY_SPY = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")


def profile(pid: int, seconds: float, out: Path, native: bool) -> subprocess.Popen:
    cmd = [PY_SPY, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "200",
           "--format", "raw", "--output", str(out), "--nonblocking"]
    if native:
        cmd.append("--native")
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


PERF = shutil.which("perf") or "perf"


def perf_record(pid: int, seconds: float, out: Path) -> subprocess.Popen:
    """perf's software clock (no hardware counters needed) sampling ``pid`` for ``seconds``."""
    return subprocess.Popen([PERF, "record", "-e", "cpu-clock", "-F", "2000", "-p", str(pid),
                             "-o", str(out), "--", "sleep", str(int(seconds))],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def perf_summary(data: Path, top: int) -> str:
    """Where the process's CPU went by shared object (Kamailio's core and modules, Python,
    libcurl, the kernel...), then by symbol."""
    lines = []
    for sort, limit in (("dso", 12), ("dso,sym", top)):
        out = subprocess.run([PERF, "report", "-i", str(data), "--no-children", "--sort", sort,
                              "--stdio"], capture_output=True, text=True, timeout=120).stdout
        rows = [line.strip() for line in out.splitlines()
                if line.strip() and not line.startswith("#")][:limit]
        lines.append(f"  by {sort}:")
        lines += [f"    {row}" for row in rows]
    return "\n".join(lines)


def summary(raw: Path, top: int) -> str:
    """Self and total samples per function from py-spy's collapsed stacks."""
    self_n: collections.Counter[str] = collections.Counter()
    total_n: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        samples += n
        frames = [_short(f) for f in stack.split(";")]
        self_n[frames[-1]] += n
        for f in set(frames):
            total_n[f] += n
    if not samples:
        return "  (no samples: the process was idle)"
    lines = [f"  {samples} samples; self:"]
    lines += [f"    {n * 100 / samples:5.1f}%  {f}" for f, n in self_n.most_common(top)]
    lines.append("  total (inclusive):")
    lines += [f"    {n * 100 / samples:5.1f}%  {f}" for f, n in total_n.most_common(top)]
    return "\n".join(lines)


def _short(frame: str) -> str:
    """'func (path/to/kamhttp/aio/file.py:12)' -> 'func (aio/file.py:12)'."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    parts = where.split("/")
    return f"{name} ({'/'.join(parts[-2:])})" if where else name


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--delay", type=int, default=100)
    ap.add_argument("--rate", type=float, default=2000)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--children", type=int, default=4)
    ap.add_argument("--processes", type=int, choices=(1, 2), default=1)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--native", action="store_true", help="py-spy --native (C frames too)")
    ap.add_argument("--perf", action="store_true",
                    help="sample with perf instead of py-spy: the split between Kamailio's C, "
                         "Python, libcurl and the kernel")
    ap.add_argument("--keep", type=Path, help="keep py-spy's raw files in this directory")
    args = ap.parse_args()
    ns = argparse.Namespace(only=[f"{args.processes} HTTP"], async_limit=4000, sync_limit=64)
    v = async_sip.variants(ns)[0]
    root = Path(tempfile.mkdtemp(prefix="kamhttp-prof-"))
    try:
        with Nginx(delays=(args.delay,)) as nginx:
            async_sip.start(v, nginx, args.delay, args.children, root / "k")
            try:
                wd = v.kamailio.workdir
                calls = int(args.rate * (args.seconds + 4))
                stat = wd / "stat.csv"
                load = subprocess.Popen(
                    async_sip.sipp_cmd(async_sip.MESSAGE, v.kamailio.sip_port, calls, v.limit,
                                       args.rate, wd, stat),
                    cwd=wd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL)
                time.sleep(2)
                rest, http, transfer = async_sip.roles(v.kamailio.pid)
                worker = max(rest[1:], key=lambda p: cpu_seconds([p]))
                targets = {"HTTP process": http[0], "transfer process": transfer[0],
                           "busiest SIP worker": worker}
                cpu0 = {name: cpu_seconds([pid]) for name, pid in targets.items()}
                t0 = time.monotonic()
                spies = {name: perf_record(pid, args.seconds, root / f"{pid}.perf") if args.perf
                         else profile(pid, args.seconds, root / f"{pid}.txt", args.native)
                         for name, pid in targets.items()}
                for spy in spies.values():
                    spy.wait(timeout=args.seconds + 60)
                elapsed = time.monotonic() - t0
                cpu1 = {name: cpu_seconds([pid]) for name, pid in targets.items()}
                load.wait(timeout=300)
                ok, failed, rts = async_sip.sipp_results(async_sip.MESSAGE, wd, stat)
            finally:
                v.kamailio.stop()
        print(f"kamhttp async, {args.processes} HTTP process(es), delay {args.delay} ms, "
              f"{args.rate:g}/s offered: {ok} answered 200, {failed} failed, response time "
              f"{async_sip.percentiles(rts)}\n")
        for name, pid in targets.items():
            cores = (cpu1[name] - cpu0[name]) / elapsed
            print(f"## {name} (pid {pid}): {cores:.2f} cores, ~{cores * 1e6 / args.rate:,.0f} µs "
                  f"per call at the offered rate")
            raw = root / f"{pid}.{'perf' if args.perf else 'txt'}"
            if not raw.exists():
                print(f"  the profiler failed: {spies[name].stderr.read()[-300:]}")
            else:
                print(perf_summary(raw, args.top) if args.perf else summary(raw, args.top))
            if args.keep:
                args.keep.mkdir(parents=True, exist_ok=True)
                shutil.copy(raw, args.keep / f"{name.replace(' ', '-')}.txt")
            print()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
