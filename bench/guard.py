#!/usr/bin/env python3
"""Outage-guard benchmark (issue 13.6): real Kamailio 5.6 (children 4) + SIPp at a constant
rate, one kamhttp call per SIP request against an API that is healthy, then blackholed
(accepts TCP, never answers), then healthy again; with the guard off and on.

Kamailio runs the shipped kamailio-cfg/kamailio.cfg (-A KAMHTTP_NO_ASYNC) with the KEMI script
bench/kamailio/guard_script.py: KSR.http_client.curl_connect("api", "/ok", "$var(r)") on
"api=>http://127.0.0.1:PORT;timeout=1" (keep_connections=1), then 200 whatever the call gave
("OK" or "fallback"). Variants:
  no HTTP      the same Kamailio without the call: what it answers without an API
  guard off    no breaker keys (the C module's behaviour)
  guard on     breaker_failures=5;breaker_cooldown=1000
The API is a small asyncio HTTP/1.1 server of this file (a subprocess, stopped by its PID)
that SIGUSR1 makes silent (every request read and never answered, the connection held) and
SIGUSR2 healthy again; it logs when each request came and whether it was answered.

Part 1, the timeline (--reps rounds, the variants interleaved): SIPp offers --rate OPTIONS/s
for healthy + outage + recovery seconds (default 5 + 15 + 10, 200/s; round r's outage is
r * 2 s / reps longer, so that the API comes back at another phase of the breaker's probe
cycle); SIPp's -trace_rtt gives the time and response time of every answered call, the
script's trace (GUARD_TRACE) the end, rc and breaker state of every request Kamailio handled,
the API's log every request that reached it. Derived: time from outage start to the answered
rate (1 s sliding window) back at >= 90 % of the no-HTTP rate, the answered rate during the
outage, time from API back to the breaker closed (the first call that got HTTP 200 again:
only the probe can get through an open breaker) and closed for good (after the last -6),
the API's attempts and probes during the outage, how late the calls were answered.
--retrans makes SIPp retransmit (T1 500 ms); without it each OPTIONS is sent once.

Part 2, healthy-path CPU (--cpu-rounds rounds): guard off, guard on and, as an A/A control,
guard off again, started at once against a local nginx (/ok), trace off. Each round:
sequential, one SIPp run of --cpu-calls OPTIONS at full speed (-l 64) per Kamailio in
rotating order (A/B interleaved); parallel, all of them driven at once at --cpu-rate calls/s
for --cpu-seconds. Kamailio's CPU per call from /proc/<pid>/stat (utime + stime of all its
processes); the ratios on/off and control/off paired per round, medians.

Part 3, in-process: the guard's own cost without Kamailio, KEMI curl_connect to nginx on a
connection without and with the breaker keys, alternating blocks, time.process_time.

Run:   .venv/bin/python bench/guard.py --json bench/results/guard.json --plot docs/guard.png
       .venv/bin/python bench/guard.py --smoke                 # ~40 s: checks it still runs
       .venv/bin/python bench/guard.py --report bench/results/guard.json [--plot PNG]
Needs: root, Debian's kamailio, kamailio-python3-modules, sip-tester (SIPp), nginx; the
venv's pycurl built for Python 3.11; matplotlib for --plot (bench/requirements.txt).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from common import (CLK_TCK, Nginx, Summary, children, cpu_seconds, free_port,  # noqa: E402
                    free_udp_port, machine, rotate, table, wait_port)

CFG = HERE.parent / "kamailio-cfg" / "kamailio.cfg"
SCRIPT = HERE / "kamailio" / "guard_script.py"
SIPP = shutil.which("sipp", path="/usr/bin:/usr/sbin:/bin:/sbin")
BREAKER = "breaker_failures=5;breaker_cooldown=1000"
PROBE_CYCLE = 2.0                  # s: cool-down 1 s + the probe's timeout 1 s
VARIANTS = ("no HTTP", "guard off", "guard on")
BIN = 0.1                          # s: the resolution of the stored timelines
WINDOW = 1.0                       # s: the sliding window of the rates

# One OPTIONS per call, 200 expected (the script answers 200 even when the API failed);
# start_rtd/rtd make -trace_rtt write the time of every answer.
SCENARIO = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="kamhttp guard">
  <send start_rtd="1">
    <![CDATA[

OPTIONS sip:guard@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:sipp@[local_ip]:[local_port]>;tag=[call_number]
To: <sip:guard@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 OPTIONS
Max-Forwards: 70
Content-Length: 0

    ]]>
  </send>
  <recv response="200" rtd="1"/>
</scenario>
"""


# ------------------------------------------------------------------------------------------
# The API: healthy or blackholed on a signal

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n"


def serve_upstream(port: int, log_path: str, max_seconds: float) -> None:
    """The API (runs in its own process): HTTP/1.1 with keep-alive, "ok\\n" to every request
    while healthy; while silent (SIGUSR1) every request is read and never answered, its
    connection held until the client closes it; SIGUSR2 healthy again; SIGTERM, or
    ``max_seconds``, stops it. Logs "<time> answer|hold" per request, "<time> mode M"."""
    import asyncio

    log = open(log_path, "a", buffering=1)
    state = {"healthy": True}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")     # GET: no body
                if state["healthy"]:
                    writer.write(RESPONSE)
                    log.write(f"{time.time():.6f} answer\n")
                    await writer.drain()
                else:
                    log.write(f"{time.time():.6f} hold\n")
                    while await reader.read(65536):     # until the client gives up
                        pass
                    return
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()

    def mode(healthy: bool) -> None:
        state["healthy"] = healthy
        log.write(f"{time.time():.6f} mode {'healthy' if healthy else 'silent'}\n")

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGUSR1, mode, False)
        loop.add_signal_handler(signal.SIGUSR2, mode, True)
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
        try:
            await asyncio.wait_for(stop.wait(), max_seconds)
        except asyncio.TimeoutError:
            pass
        server.close()

    asyncio.run(main())
    log.close()


class Upstream:
    """The API's process, started and stopped by its PID."""

    def __init__(self, workdir: Path, max_seconds: float = 900) -> None:
        self.port = free_port()
        self.log = workdir / "upstream.log"
        self.max_seconds = max_seconds
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Upstream":
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--serve-upstream",
             str(self.port), str(self.log), str(self.max_seconds)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port)
        return self

    def silent(self) -> float:
        self.proc.send_signal(signal.SIGUSR1)
        return time.time()

    def healthy(self) -> float:
        self.proc.send_signal(signal.SIGUSR2)
        return time.time()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def events(self) -> list[tuple[float, str]]:
        out = []
        if self.log.exists():
            for line in self.log.read_text().splitlines():
                parts = line.split()
                if len(parts) >= 2:
                    out.append((float(parts[0]), parts[-1] if parts[1] == "mode" else parts[1]))
        return out


# ------------------------------------------------------------------------------------------
# Kamailio and SIPp

def start_kamailio(workdir: Path, variant: str, con: str, trace: bool):
    from tests.kamailio.kamharness import Kamailio

    env = {"GUARD_MODE": "none" if variant == "no HTTP" else "http", "GUARD_CON": con}
    if trace:
        (workdir / "trace").mkdir(parents=True, exist_ok=True)
        env["GUARD_TRACE"] = str(workdir / "trace")
    kam = Kamailio(CFG, workdir, defines={"KEMI_SCRIPT": str(SCRIPT), "KAMHTTP_NO_ASYNC": 1},
                   env=env, sip_port=free_udp_port())
    kam.start()
    return kam


def con_of(variant: str, port: int) -> str:
    return f"api=>http://127.0.0.1:{port};timeout=1" + (f";{BREAKER}" if variant == "guard on"
                                                          else "")


def set_breaker(keys: str) -> None:
    """--breaker: other breaker keys for "guard on" (e.g. breaker_failures=4)."""
    global BREAKER
    BREAKER = keys


RETRANS = False
"""--retrans: SIPp retransmits the OPTIONS over UDP (T1 500 ms, as a UA does; without the
attribute SIPp sends each request once)."""


def sipp_command(workdir: Path, sip_port: int, calls: int, rate: int | None, limit: int,
                 stat: Path, timeout_s: int) -> list[str]:
    scenario = workdir / "guard.xml"
    scenario.write_text(SCENARIO.replace('<send start_rtd="1">',
                                         '<send start_rtd="1" retrans="500">') if RETRANS
                        else SCENARIO)
    cmd = [SIPP, "-sf", str(scenario), "-i", "127.0.0.1", "-p", str(free_udp_port()),
           f"127.0.0.1:{sip_port}", "-m", str(calls), "-l", str(limit), "-nostdin",
           "-timeout", f"{timeout_s}s", "-trace_stat", "-stf", str(stat), "-fd", "1"]
    cmd += ["-r", str(rate), "-rp", "1000"] if rate else ["-r", "100000"]
    return cmd


def sipp_totals(stat: Path) -> tuple[int, int]:
    """(successful, failed) calls from the last line of a SIPp statistics file."""
    if not stat.exists():
        return 0, 0
    lines = stat.read_text().splitlines()
    if len(lines) < 2:
        return 0, 0
    row = dict(zip(lines[0].split(";"), lines[-1].split(";")))
    return int(row.get("SuccessfulCall(C)", 0)), int(row.get("FailedCall(C)", 0))


def sipp_periods(stat: Path) -> list[dict[str, str]]:
    if not stat.exists():
        return []
    lines = stat.read_text().splitlines()
    return [dict(zip(lines[0].split(";"), line.split(";"))) for line in lines[1:]]


def machine_busy() -> float:
    """CPU seconds the whole machine has been busy (all cores), from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / CLK_TCK


def run_sipp_blocking(workdir: Path, sip_port: int, calls: int, limit: int = 64) -> dict:
    """One SIPp run at full speed: elapsed, ok, failed, SIPp CPU (bounded by timeouts)."""
    stat = workdir / "sipp-stat.csv"
    stat.unlink(missing_ok=True)
    cmd = sipp_command(workdir, sip_port, calls, None, limit, stat, 60 + calls // 200)
    cmd[cmd.index("-fd") + 1] = "3600"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=workdir, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=120 + calls // 100)
    elapsed = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    ok, failed = sipp_totals(stat)
    return {"elapsed": elapsed, "ok": ok, "failed": failed,
            "sipp_cpu": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)}


# ------------------------------------------------------------------------------------------
# Part 1: the timeline

def timeline_run(variant: str, args, workdir: Path, outage: float) -> dict:
    workdir.mkdir(parents=True, exist_ok=True)
    up = Upstream(workdir).start()
    kam = None
    sipp = None
    try:
        kam = start_kamailio(workdir, variant, con_of(variant, up.port), trace=True)
        warm = run_sipp_blocking(workdir, kam.sip_port, args.warmup)
        if warm["failed"] or not warm["ok"]:
            raise RuntimeError(f"{variant}: warm-up: {warm}\n{kam.log_tail(30)}")
        kam_pids = [kam.pid, *children(kam.pid)]
        total = args.healthy + outage + args.recovery
        calls = int(args.rate * total)
        stat = workdir / "timeline-stat.csv"
        for old in workdir.glob("guard_*_rtt.csv"):
            old.unlink()
        cmd = sipp_command(workdir, kam.sip_port, calls, args.rate, args.limit, stat,
                           int(total + 60))
        cmd += ["-trace_rtt", "-rtt_freq", "1"]
        samples = []
        t_out = t_back = None
        t0 = time.time()
        sipp = subprocess.Popen(cmd, cwd=workdir, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = t0 + total + 90
        next_sample = t0
        while sipp.poll() is None and time.time() < deadline:
            now = time.time()
            if t_out is None and now >= t0 + args.healthy:
                t_out = up.silent()
            if t_back is None and now >= t0 + args.healthy + outage:
                t_back = up.healthy()
            if now >= next_sample:
                samples.append((now - t0, cpu_seconds(kam_pids), cpu_seconds([sipp.pid]),
                                cpu_seconds([up.proc.pid]), machine_busy()))
                next_sample += 0.5
            time.sleep(0.02)
        if sipp.poll() is None:
            sipp.kill()
            sipp.wait(timeout=10)
        if t_out is None or t_back is None:
            raise RuntimeError(f"{variant}: SIPp ended after {time.time() - t0:.1f} s, before "
                               f"the outage was over")
        ok, failed = sipp_totals(stat)
        # -trace_rtt's Date_ms counts from SIPp's start (its StartTime, epoch seconds in the
        # statistics file), in SIPp's clock ticks (a few ms)
        periods = sipp_periods(stat)
        sipp_start = float(periods[0]["StartTime"].split()[-1]) if periods else t0
        answers, response_ms = [], []
        for rtt in workdir.glob("guard_*_rtt.csv"):
            for line in rtt.read_text().splitlines()[1:]:
                parts = line.split(";")
                if len(parts) >= 2 and parts[0].replace(".", "", 1).isdigit():
                    answers.append(sipp_start + float(parts[0]) / 1000.0 - t0)
                    response_ms.append(float(parts[1]))
        trace = []
        for f in (workdir / "trace").glob("trace-*.txt"):
            for line in f.read_text().splitlines():
                s, e, rc, st = line.split()
                if float(s) >= t0:
                    trace.append((float(s) - t0, float(e) - t0, int(rc), st))
        trace.sort(key=lambda r: r[1])
        api = [(t - t0, what) for t, what in up.events() if t >= t0]
        python_errors = kam.python_errors()
        # the guard's state changes, in the log's order (Kamailio's log has no time stamps)
        guard_log = [line.split("circuit of connection api ", 1)[1]
                     for line in kam.log().splitlines() if "circuit of connection api " in line]
    finally:
        if sipp is not None and sipp.poll() is None:
            sipp.kill()
            sipp.wait(timeout=10)
        if kam is not None:
            kam.stop()
        up.stop()
    return {"variant": variant, "t_out": t_out - t0, "t_back": t_back - t0, "total": total,
            "ok": ok, "failed": failed, "answers": sorted(answers), "response_ms": response_ms,
            "trace": trace, "api": api,
            "samples": samples, "python_errors": python_errors[:3],
            "guard_log": guard_log, "sipp_periods": periods}


def bins(times: list[float], end: float, width: float = BIN) -> list[int]:
    out = [0] * (int(end / width) + 1)
    for t in times:
        if 0 <= t < end:
            out[int(t / width)] += 1
    return out


def sliding(counts: list[int], width: float = BIN, window: float = WINDOW) -> list[float]:
    """Rate per second over the window ending at each bin's end: r[i] = calls in
    (end_i - window, end_i] / window."""
    k = int(round(window / width))
    out, acc = [], 0
    for i, c in enumerate(counts):
        acc += c
        if i >= k:
            acc -= counts[i - k]
        out.append(acc / window)
    return out


def analyse(run: dict, floor_rate: float) -> dict:
    """The derived numbers of one timeline run (``floor_rate``: the no-HTTP rate, calls/s)."""
    t_out, t_back, total = run["t_out"], run["t_back"], run["total"]
    end = total + 30
    ans = bins(run["answers"], end)
    rate = sliding(ans)
    thr = 0.9 * floor_rate
    t_of = lambda i: (i + 1) * BIN           # the end of bin i
    i_out, i_back = int(t_out / BIN), int(t_back / BIN)
    i_end = int((total - WINDOW) / BIN)     # the last window before SIPp stops offering
    drop = next((i for i in range(i_out, i_end) if rate[i] < thr), None)
    first_back = None
    if drop is not None:
        first_back = next((i for i in range(drop, i_end) if rate[i] >= thr), None)
    # for good: from there on >= 90 % until the offered traffic ends
    sustained = None
    if rate[i_end - 1] >= thr:
        j = i_end - 1
        while j > i_out and rate[j - 1] >= thr:
            j -= 1
        sustained = max(0.0, t_of(j) - t_out) if j > i_out else 0.0
    out_len = t_back - t_out
    per_s = [sum(ans[int(s / BIN):int((s + 1) / BIN)]) for s in range(int(end))]
    during = [per_s[s] for s in range(int(t_out) + 3, int(t_back))]
    healthy = [per_s[s] for s in range(1, int(t_out))]
    after = [per_s[s] for s in range(int(t_back) + 3, int(total))]
    trace = run["trace"]
    out = {"variant": run["variant"], "ok": run["ok"], "failed": run["failed"],
           "threshold": thr, "first_back_s": 0.0 if drop is None else
           t_of(first_back) - t_out if first_back is not None else None,
           "sustained_back_s": sustained,
           "api_back_to_rate_s": max(0.0, sustained - out_len) if sustained is not None
           else None,
           "rate_healthy": statistics.median(healthy) if healthy else 0,
           "rate_outage": statistics.median(during) if during else 0,
           "rate_outage_mean": statistics.mean(during) if during else 0,
           "rate_after": statistics.median(after) if after else 0,
           "api_attempts_outage": sum(1 for t, w in run["api"] if w == "hold"),
           "replies_outage": sum(1 for r in trace if t_out <= r[1] < t_back),
           "replies_outage_http200": sum(1 for r in trace if t_out <= r[1] < t_back and
                                         r[2] == 200)}
    # how late the answers were (SIPp's response time of each answered call)
    rt = sorted(run.get("response_ms") or [0.0])
    out["response_ms"] = {"p50": rt[len(rt) // 2], "p99": rt[int(len(rt) * 0.99)],
                          "max": rt[-1], "over_1s": sum(1 for x in rt if x > 1000),
                          "over_5s": sum(1 for x in rt if x > 5000)}
    rc_counts: dict[str, int] = {}
    for r in trace:
        if t_out <= r[1] < t_back:
            rc_counts[str(r[2])] = rc_counts.get(str(r[2]), 0) + 1
    out["rc_outage"] = rc_counts
    # the breaker: first seen open after the outage started, first HTTP 200 after API back
    opened = next((r for r in trace if r[1] >= t_out and r[3] == "open"), None)
    out["breaker_open_s"] = opened[1] - t_out if opened else None
    # probes: the API's attempts after the breaker opened; one that came about one timeout
    # after the one before (not cool-down + timeout) replaced a probe still in flight
    if opened:
        probes = [t for t, w in run["api"] if w == "hold" and t > opened[1] + 0.2]
        out["probes_outage"] = len(probes)
        out["probes_replacing"] = sum(1 for x, y in zip(probes, probes[1:]) if y - x < 1.5)
    first_200 = next((r for r in trace if r[1] >= t_back and r[2] == 200), None)
    out["api_back_to_200_s"] = first_200[1] - t_back if first_200 else None
    closed = next((r for r in trace if r[1] >= t_back and r[3] == "closed"), None)
    out["api_back_to_closed_s"] = closed[1] - t_back if closed else None
    # refused (-6) after the breaker had closed again: it opened once more
    refused = [r for r in trace if r[1] >= t_back and r[2] == -6]
    out["refused_after_api_back"] = len(refused)
    out["refused_after_closed"] = sum(1 for r in refused if closed and r[1] > closed[1])
    if refused:
        last = refused[-1][1]
        good = next((r for r in trace if r[1] > last and r[3] == "closed"), None)
        out["api_back_to_closed_for_good_s"] = good[1] - t_back if good else None
    else:
        out["api_back_to_closed_for_good_s"] = out["api_back_to_closed_s"]
    first_answer = next((t for t, w in run["api"] if t >= t_back and w == "answer"), None)
    out["api_back_to_first_answer_s"] = first_answer - t_back if first_answer else None
    # from when on >= 90 % of the replies (per 0.1 s bin) are HTTP 200 again
    ok200 = bins([r[1] for r in trace if r[2] == 200], end)
    every = bins([r[1] for r in trace], end)
    bad = [i for i in range(i_back, i_end) if every[i] and ok200[i] < 0.9 * every[i]]
    out["api_back_to_http_ok_s"] = max(0.0, t_of(bad[-1]) - t_back) if bad else 0.0
    s = run["samples"]
    if len(s) > 2:
        span = s[-1][0] - s[0][0]
        kam, sip, api, busy = ((s[-1][k] - s[0][k]) / span for k in range(1, 5))
        out["cores"] = {"kamailio": kam, "sipp": sip, "api": api,
                        "other": max(0.0, busy - kam - sip - api)}
        # Kamailio CPU per answered call in the healthy phase (trace on: not the A/B figure)
        h = [x for x in s if 1.0 <= x[0] <= t_out]
        if len(h) > 2:
            n = sum(1 for a in run["answers"] if h[0][0] <= a < h[-1][0])
            out["kam_us_healthy"] = (h[-1][1] - h[0][1]) * 1e6 / n if n else None
    return out


def timeline_series(run: dict, end: float) -> dict:
    """What the JSON keeps of a run: 0.1 s bins of answered calls, replies by rc class and
    the API's requests (answered / held), the breaker state seen per bin."""
    trace = run["trace"]
    state_bins: list[str] = [""] * (int(end / BIN) + 1)
    for r in trace:
        i = int(r[1] / BIN)
        if 0 <= i < len(state_bins) and r[3] != "-":
            state_bins[i] = r[3]
    return {
        "answered": bins(run["answers"], end),
        "replies_http200": bins([r[1] for r in trace if r[2] == 200], end),
        "replies_refused": bins([r[1] for r in trace if r[2] == -6], end),
        "replies_failed": bins([r[1] for r in trace if r[2] not in (200, -6)], end),
        "api_answer": bins([t for t, w in run["api"] if w == "answer"], end),
        "api_hold": bins([t for t, w in run["api"] if w == "hold"], end),
        "breaker": state_bins,
    }


def part_timeline(args, root: Path) -> dict:
    runs = []
    order = [v for v in VARIANTS if v in args.variants]
    for rep in range(args.reps):
        # the outage lasts a little longer each round, so that the API comes back at another
        # phase of the breaker's probe cycle (cool-down + one probe timeout: 2 s)
        outage = args.outage + rep * PROBE_CYCLE / args.reps
        for variant in rotate(order, rep):
            print(f"timeline: {variant}, round {rep + 1} of {args.reps} (outage {outage:.2f} s)"
                  " ...", flush=True)
            run = timeline_run(variant, args, root / f"t{rep}-{VARIANTS.index(variant)}",
                               outage)
            run["rep"] = rep
            runs.append(run)
            print(f"  answered {run['ok']}, failed {run['failed']}, "
                  f"load average {os.getloadavg()[0]:.2f}", flush=True)
    floor_runs = [r for r in runs if r["variant"] == "no HTTP"]
    per_s = []
    for r in floor_runs:
        counts = bins(r["answers"], r["total"] + 30)
        per_s += [sum(counts[int(s / BIN):int((s + 1) / BIN)]) for s in range(1, int(r["total"]))]
    floor_rate = statistics.median(per_s) if per_s else float(args.rate)
    end = max(r["total"] for r in runs) + 30
    stored = []
    for r in runs:
        stored.append({"variant": r["variant"], "rep": r["rep"], "t_out": r["t_out"],
                       "t_back": r["t_back"], "total": r["total"],
                       "python_errors": r["python_errors"], "guard_log": r["guard_log"],
                       "api_holds": [round(t, 4) for t, w in r["api"] if w == "hold"],
                       "analysis": analyse(r, floor_rate), "series": timeline_series(r, end),
                       "sipp_periods": [{k: p.get(k) for k in (
                           "ElapsedTime(C)", "SuccessfulCall(P)", "FailedCall(P)",
                           "Retransmissions(P)", "CurrentCall", "FailedMaxUDPRetrans(P)",
                           "OutOfCallMsgs(P)", "DeadCallMsgs(P)")} for p in r["sipp_periods"]]})
    return {"rate": args.rate, "healthy": args.healthy, "outage": args.outage,
            "recovery": args.recovery, "reps": args.reps, "bin": BIN, "window": WINDOW,
            "floor_rate": floor_rate, "breaker": BREAKER, "retrans": RETRANS, "runs": stored}


# ------------------------------------------------------------------------------------------
# Part 2: healthy-path CPU, guard off vs on

def part_cpu(args, root: Path) -> dict:
    """Two Kamailios (guard off, guard on) against one nginx, trace off. Each round: one
    full-speed SIPp run per variant in rotating order (sequential), then both driven at once
    at --cpu-rate calls/s for --cpu-seconds (parallel: the same machine conditions at the
    same moment, the tighter pairing on a shared machine)."""
    names = ("guard off", "guard on") + (("guard off, again",) if args.cpu_control else ())
    kams: dict = {}
    modes = {m: {v: {"kam_us": [], "rate": [], "other": []} for v in names}
             for m in ("sequential", "parallel")}
    failed = 0
    with Nginx(workers=1) as nginx:
        port = nginx.http_port
        try:
            for i, v in enumerate(names):
                kams[v] = start_kamailio(root / f"cpu-{i}", v, con_of(v, port), trace=False)
            pids = {v: [k.pid, *children(k.pid)] for v, k in kams.items()}
            for v, k in kams.items():           # warm-up: connections, imports
                w = run_sipp_blocking(k.workdir, k.sip_port, args.warmup)
                if w["failed"]:
                    raise RuntimeError(f"CPU {v}: warm-up failed: {w}\n{k.log_tail(30)}")
            for r in range(args.cpu_rounds):
                seq = modes["sequential"]
                for v in rotate(list(names), r):
                    k = kams[v]
                    k0, n0, m0 = cpu_seconds(pids[v]), cpu_seconds(nginx.pids()), machine_busy()
                    out = run_sipp_blocking(k.workdir, k.sip_port, args.cpu_calls)
                    k1, n1, m1 = cpu_seconds(pids[v]), cpu_seconds(nginx.pids()), machine_busy()
                    done = max(out["ok"] + out["failed"], 1)
                    failed += out["failed"]
                    seq[v]["kam_us"].append((k1 - k0) * 1e6 / done)
                    seq[v]["rate"].append(out["ok"] / out["elapsed"])
                    seq[v]["other"].append(max(0.0, (m1 - m0) - (k1 - k0) - (n1 - n0) -
                                               out["sipp_cpu"]) / out["elapsed"])
                failed += parallel_round(args, kams, pids, modes["parallel"], r)
                print(f"cpu: round {r + 1} of {args.cpu_rounds}: " + "; ".join(
                    f"{m} " + ", ".join(f"{v} {d[v]['kam_us'][-1]:.1f}" for v in names)
                    for m, d in modes.items()) + " µs/call", flush=True)
            for v, k in kams.items():
                errors = k.python_errors()
                if errors:
                    print(f"({v}: Python errors in Kamailio's log, first: {errors[0]})")
                if any("circuit of" in line for line in k.log().splitlines()):
                    print(f"({v}: the breaker changed state during the CPU runs)")
        finally:
            for k in kams.values():
                k.stop()
    out = {"rounds": args.cpu_rounds, "calls": args.cpu_calls, "rate": args.cpu_rate,
           "seconds": args.cpu_seconds, "failed": failed, "modes": {}}
    for m, d in modes.items():
        ratios = [on / off for on, off in zip(d["guard on"]["kam_us"], d["guard off"]["kam_us"])
                  if off]
        out["modes"][m] = {"variants": d, "ratios": ratios,
                           "ratio": statistics.median(ratios) if ratios else None}
        if "guard off, again" in d:       # A/A: two identical Kamailios, the noise and bias
            aa = [b / a for b, a in zip(d["guard off, again"]["kam_us"],
                                        d["guard off"]["kam_us"]) if a]
            out["modes"][m]["control_ratios"] = aa
            out["modes"][m]["control_ratio"] = statistics.median(aa) if aa else None
    return out


def parallel_round(args, kams: dict, pids: dict, res: dict, round_no: int) -> int:
    """Both Kamailios driven at once by a SIPp each at a fixed rate; CPU per call of each."""
    calls = int(args.cpu_rate * args.cpu_seconds)
    procs, stats = {}, {}
    c0 = {v: cpu_seconds(pids[v]) for v in kams}
    m0 = machine_busy()
    t0 = time.perf_counter()
    for v in rotate(list(kams), round_no):
        k = kams[v]
        stats[v] = k.workdir / "parallel-stat.csv"
        stats[v].unlink(missing_ok=True)
        cmd = sipp_command(k.workdir, k.sip_port, calls, args.cpu_rate, 64, stats[v],
                           int(args.cpu_seconds + 60))
        cmd[cmd.index("-fd") + 1] = "3600"
        procs[v] = subprocess.Popen(cmd, cwd=k.workdir, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for p in procs.values():
        try:
            p.wait(timeout=args.cpu_seconds + 90)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)
    elapsed = time.perf_counter() - t0
    c1 = {v: cpu_seconds(pids[v]) for v in kams}
    busy = (machine_busy() - m0) / elapsed
    failed = 0
    for v in kams:
        ok, bad = sipp_totals(stats[v])
        failed += bad
        res[v]["kam_us"].append((c1[v] - c0[v]) * 1e6 / max(ok + bad, 1))
        res[v]["rate"].append(ok / elapsed)
        res[v]["other"].append(busy)          # the whole machine busy (cores), both included
    return failed


def part_inprocess(args) -> dict:
    """The guard's own cost, without Kamailio: one process, two connections to one nginx,
    "off" (no breaker keys) and "on" (the breaker keys), KEMI curl_connect, blocks of calls
    alternating, CPU per call from time.process_time; median of the paired ratios."""
    import gc

    import kamhttp
    from kamhttp import config

    res = {"guard off": [], "guard on": []}
    with Nginx(workers=1) as nginx:
        config.reset()
        kamhttp.modparam("keep_connections", 1)
        kamhttp.modparam("httpcon", f"off=>http://{nginx.base()};timeout=1")
        kamhttp.modparam("httpcon", f"on=>http://{nginx.base()};timeout=1;{BREAKER}")
        config.finalize()
        calls = {"guard off": lambda: kamhttp.http_client.curl_connect("off", "/ok", "$var(r)"),
                 "guard on": lambda: kamhttp.http_client.curl_connect("on", "/ok", "$var(r)")}
        for call in calls.values():
            for _ in range(200):
                assert call() == 200
        for r in range(args.inproc_rounds):
            for v in rotate(list(calls), r):
                call = calls[v]
                gc.collect()
                c0 = time.process_time()
                for _ in range(args.inproc_calls):
                    call()
                res[v].append((time.process_time() - c0) * 1e6 / args.inproc_calls)
        state = kamhttp.pv.get("$httpbreaker(on)")
        config.reset()
    ratios = [on / off for on, off in zip(res["guard on"], res["guard off"])]
    return {"rounds": args.inproc_rounds, "calls": args.inproc_calls, "variants": res,
            "ratios": ratios, "ratio": statistics.median(ratios),
            "diff_us": statistics.median(on - off for on, off in zip(res["guard on"],
                                                                     res["guard off"])),
            "breaker_state_after": state}


# ------------------------------------------------------------------------------------------
# Report

def fmt(x, unit: str = " s", digits: int = 2) -> str:
    return "—" if x is None else f"{x:.{digits}f}{unit}"


def med(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def report(results: dict) -> str:
    lines = [f"{results['machine']}", ""]
    t = results.get("timeline")
    if t:
        lines.append(f"## Timeline: {t['rate']} calls/s offered for {t['healthy']} s healthy + "
                     f"{t['outage']} s outage + {t['recovery']} s healthy, {t['reps']} rounds; "
                     f"no-HTTP rate {t['floor_rate']:.0f} calls/s, 90 % of it "
                     f"{0.9 * t['floor_rate']:.0f}")
        lines.append("")
        rows = []
        for r in t["runs"]:
            a = r["analysis"]
            rows.append([r["variant"], str(r["rep"] + 1), f"{a['rate_healthy']:.0f}",
                         f"{a['rate_outage']:.0f}", fmt(a["first_back_s"]),
                         fmt(a["sustained_back_s"]), fmt(a["breaker_open_s"]),
                         f"{fmt(a['api_back_to_closed_s'])} / "
                         f"{fmt(a['api_back_to_closed_for_good_s'])}",
                         str(a["refused_after_closed"]), fmt(a["api_back_to_http_ok_s"]),
                         f"{a['api_attempts_outage']}"
                         + (f" ({a['probes_outage']} probes, {a['probes_replacing']} "
                            f"replacing)" if "probes_outage" in a else ""),
                         " ".join(f"{k}:{v}" for k, v in sorted(a["rc_outage"].items())),
                         f"{a['rate_after']:.0f}", f"{a['ok']}/{a['failed']}",
                         (f"{a['response_ms']['over_1s']} / {a['response_ms']['max'] / 1000:.1f} s"
                          if "response_ms" in a else ""),
                         "/".join(f"{a['cores'][k]:.2f}" for k in
                                  ("kamailio", "sipp", "api", "other")) if "cores" in a else ""])
        lines.append(table(["variant", "round", "calls/s healthy", "calls/s outage",
                            "outage→≥90 % (first)", "outage→≥90 % (stays)",
                            "outage→breaker open",
                            "API back→closed (first / for good)", "-6 after it closed",
                            "API back→HTTP 200 ≥90 %",
                            "API attempts in outage", "rc in outage", "calls/s after",
                            "SIPp ok/failed", "answered > 1 s late / latest",
                            "cores K/SIPp/API/other"], rows))
        lines.append("")
        lines.append("Medians over rounds:")
        for v in VARIANTS:
            rs = [r["analysis"] for r in t["runs"] if r["variant"] == v]
            if not rs:
                continue
            lines.append(
                f"- {v}: outage calls/s {med([a['rate_outage'] for a in rs]):.1f}; "
                f"outage start → answered rate ≥ 90 %: first "
                f"{fmt(med([a['first_back_s'] for a in rs]))}, for good "
                f"{fmt(med([a['sustained_back_s'] for a in rs]))} (API back → ≥ 90 %: "
                f"{fmt(med([a.get('api_back_to_rate_s') for a in rs]))}, worst "
                f"{fmt(max(a.get('api_back_to_rate_s') or 0 for a in rs))}); breaker open after "
                f"{fmt(med([a['breaker_open_s'] for a in rs]))}; API back → breaker closed "
                f"{fmt(med([a['api_back_to_closed_s'] for a in rs]))} (worst "
                f"{fmt(max((a['api_back_to_closed_s'] or 0) for a in rs))}; for good "
                f"{fmt(med([a['api_back_to_closed_for_good_s'] for a in rs]))}), "
                f"→ HTTP 200 again "
                f"{fmt(med([a['api_back_to_200_s'] for a in rs]))}; API attempts in the "
                f"outage {med([a['api_attempts_outage'] for a in rs]):.0f}")
    c = results.get("cpu")
    if c:
        for m, d in c["modes"].items():
            lines.append("")
            how = (f"{c['rounds']} rounds, one SIPp run of {c['calls']} calls at full speed "
                   f"(-l 64) per variant, order rotating (A/B interleaved)"
                   if m == "sequential" else
                   f"{c['rounds']} rounds, both Kamailios at once, {c['rate']} calls/s each "
                   f"for {c['seconds']:.0f} s")
            lines.append(f"## Healthy-path Kamailio CPU per call, {m}: {how}")
            lines.append("")
            rows = []
            for v, x in d["variants"].items():
                k, r = Summary(x["kam_us"]), Summary(x["rate"])
                rows.append([v, f"{k.median:.1f}", f"{k.spread_pct:.1f}%", f"{r.median:,.0f}",
                             f"{statistics.median(x['other']):.2f}",
                             " ".join(f"{y:.1f}" for y in x["kam_us"])])
            lines.append(table(["variant", "Kamailio CPU µs/call", "spread", "calls/s",
                                "other cores busy" if m == "sequential" else
                                "machine cores busy", "per round"], rows))
            lines.append("")
            q = sorted(d["ratios"])
            lines.append(f"guard on / guard off, paired per round: median {d['ratio']:.4f} "
                         f"({(d['ratio'] - 1) * 100:+.1f} %), middle half "
                         f"{q[len(q) // 4]:.3f}..{q[(3 * len(q)) // 4]:.3f}; rounds: "
                         + " ".join(f"{x:.3f}" for x in d["ratios"]))
            if d.get("control_ratios"):
                q = sorted(d["control_ratios"])
                lines.append(f"control, guard off again / guard off (A/A, same code): median "
                             f"{d['control_ratio']:.4f} ({(d['control_ratio'] - 1) * 100:+.1f} %),"
                             f" middle half {q[len(q) // 4]:.3f}..{q[(3 * len(q)) // 4]:.3f}; "
                             "rounds: " + " ".join(f"{x:.3f}" for x in d["control_ratios"]))
    p = results.get("inprocess")
    if p:
        lines.append("")
        lines.append(f"## In-process (no Kamailio): KEMI curl_connect to nginx, {p['rounds']} "
                     f"rounds of {p['calls']} calls per variant, alternating")
        lines.append("")
        lines.append(table(["variant", "CPU µs/call", "spread", "per round"], [
            [v, f"{Summary(x).median:.2f}", f"{Summary(x).spread_pct:.1f}%",
             " ".join(f"{y:.1f}" for y in x)] for v, x in p["variants"].items()]))
        lines.append("")
        lines.append(f"guard on / guard off, paired: median {p['ratio']:.4f} "
                     f"({(p['ratio'] - 1) * 100:+.2f} %), difference {p['diff_us']:+.2f} µs/call; "
                     f"breaker after: {p['breaker_state_after']}")
    return "\n".join(lines)


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = results["timeline"]
    colors = {"no HTTP": "#bbbbbb", "guard off": "#d62728", "guard on": "#1f77b4"}
    fig, (top, bottom, kinds) = plt.subplots(3, 1, figsize=(9, 8.5), sharex=True,
                                             gridspec_kw={"height_ratios": [3, 2, 2]})
    width = t["bin"]
    per = int(round(1 / width))
    for r in t["runs"]:
        a = r["series"]["answered"]
        shift = int(round(r["t_out"] / width)) % per       # 1 s bins aligned on the outage
        starts = range(shift, int((r["total"] + 2) / width) - per + 1, per)
        per_s = [sum(a[i:i + per]) for i in starts]
        xs = [i * width - r["t_out"] + 0.5 for i in starts]
        first = r["rep"] == 0
        kw = dict(color=colors[r["variant"]], lw=(3.0 if r["variant"] == "no HTTP" else 1.6)
                  if first else 0.8, alpha=1.0 if first else 0.45, drawstyle="steps-mid",
                  zorder=1 if r["variant"] == "no HTTP" else 2)
        top.plot(xs, per_s, label=r["variant"] if first else None, **kw)
        bottom.plot(xs, [max(v, 0.5) for v in per_s], **kw)
    outage = t["outage"]
    longest = max(r["t_back"] - r["t_out"] for r in t["runs"])
    for ax in (top, bottom):
        ax.axvspan(0, outage, color="#000000", alpha=0.07)
        ax.axvspan(outage, longest, color="#000000", alpha=0.03)   # the later rounds
        ax.axhline(0.9 * t["floor_rate"], color="#2ca02c", lw=0.8, ls="--")
        ax.grid(alpha=0.3)
    top.text(outage / 2, t["rate"] * 1.02, "API blackholed", ha="center", fontsize=8)
    top.set_ylabel("SIP calls answered / s (SIPp)")
    top.set_ylim(0, max(t["rate"] * 2.2, 10))
    top.legend(fontsize=8, loc="upper right")
    top.set_title(f"Kamailio children=4, curl_connect timeout 1 s, {t['rate']} calls/s offered; "
                  f"guard on: {t['breaker']}", fontsize=9)
    # what Kamailio answered with the guard on (round 1): the API's 200, or the fallback
    # after a refusal (-6) or a timeout (28)
    on = next(r for r in t["runs"] if r["variant"] == "guard on" and r["rep"] == 0)
    shift = int(round(on["t_out"] / width)) % per
    starts = range(shift, int((on["total"] + 2) / width) - per + 1, per)
    xs = [i * width - on["t_out"] + 0.5 for i in starts]
    for key, label, color in (("replies_http200", "HTTP 200 from the API", "#2ca02c"),
                              ("replies_refused", "fallback: refused, breaker open (-6)",
                               "#1f77b4"),
                              ("replies_failed", "fallback: timed out (28)", "#d62728")):
        a = on["series"][key]
        kinds.plot(xs, [max(sum(a[i:i + per]), 0.5) for i in starts], color=color,
                   drawstyle="steps-mid", lw=1.4, label=label)
    kinds.axvspan(0, on["t_back"] - on["t_out"], color="#000000", alpha=0.07)
    kinds.set_yscale("log")
    kinds.set_ylim(0.4, t["rate"] * 10)
    kinds.grid(alpha=0.3)
    kinds.legend(fontsize=7, loc="center right")
    kinds.set_ylabel("guard on, round 1:\nKamailio's replies / s", fontsize=8)
    bottom.set_yscale("log")
    bottom.set_ylim(0.4, t["rate"] * 10)
    bottom.set_ylabel("same, log scale (0 drawn at 0.5)", fontsize=8)
    bottom.set_xlim(-t["runs"][0]["t_out"], max(r["total"] - r["t_out"] for r in t["runs"]) + 2)
    kinds.set_xlabel("s since the API went silent (thick: round 1, outage 15 s; thin: the other "
                      "rounds, outage up to 2 s longer, light grey; dashed: 90 % of the no-HTTP "
                      "rate)", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


# ------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--serve-upstream"]:
        serve_upstream(int(argv[1]), argv[2], float(argv[3]))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=int, default=200, help="calls/s offered (default 200)")
    ap.add_argument("--healthy", type=float, default=5.0)
    ap.add_argument("--outage", type=float, default=15.0)
    ap.add_argument("--recovery", type=float, default=10.0)
    ap.add_argument("--reps", type=int, default=5,
                    help="timeline rounds (default 5); round r's outage is longer by "
                         "r * 2 s / reps (the phase of the probe cycle when the API is back)")
    ap.add_argument("--limit", type=int, default=20000,
                    help="SIPp -l of the timeline: calls open at once (default 20000: no cap, "
                         "SIPp keeps offering the rate while Kamailio does not answer)")
    ap.add_argument("--warmup", type=int, default=400)
    ap.add_argument("--cpu-rounds", type=int, default=11)
    ap.add_argument("--cpu-calls", type=int, default=12000,
                    help="calls per CPU run (default 20000: /proc counts in 10 ms ticks, so a "
                         "run needs seconds of Kamailio CPU for a 2 %% comparison)")
    ap.add_argument("--cpu-rate", type=int, default=500,
                    help="calls/s of each Kamailio in the parallel CPU runs (default 500)")
    ap.add_argument("--cpu-seconds", type=float, default=12.0)
    ap.add_argument("--no-cpu-control", dest="cpu_control", action="store_false",
                    help="leave out the A/A control (a second guard-off Kamailio)")
    ap.add_argument("--inproc-rounds", type=int, default=15)
    ap.add_argument("--inproc-calls", type=int, default=3000)
    ap.add_argument("--breaker", default=BREAKER,
                    help=f"the breaker keys of guard on (default {BREAKER})")
    ap.add_argument("--variants", default=",".join(VARIANTS),
                    help="the timeline's variants, comma-separated (default all; without "
                         "no HTTP the 90 %% line is 90 %% of --rate)")
    ap.add_argument("--retrans", action="store_true",
                    help="SIPp retransmits the timeline's OPTIONS (retrans=500 ms); default: "
                         "each sent once, so every call waits in Kamailio's receive buffer")
    ap.add_argument("--skip-timeline", action="store_true")
    ap.add_argument("--skip-cpu", action="store_true")
    ap.add_argument("--skip-inprocess", action="store_true")
    ap.add_argument("--smoke", action="store_true",
                    help="one short round of each part (2 + 4 + 3 s, 2 CPU rounds)")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--plot", type=Path)
    ap.add_argument("--keep", action="store_true", help="keep the run directories (logs)")
    ap.add_argument("--report", type=Path, help="print the tables of a saved --json file")
    args = ap.parse_args(argv)
    if args.report:
        results = json.loads(args.report.read_text())
        print(report(results))
        if args.plot:
            plot(results, args.plot)
        return 0
    set_breaker(args.breaker)
    global RETRANS
    RETRANS = args.retrans
    args.variants = [v.strip() for v in args.variants.split(",")]
    if args.smoke:
        args.healthy, args.outage, args.recovery, args.reps = 2.0, 4.0, 3.0, 1
        args.cpu_rounds, args.cpu_calls, args.warmup = 2, 2000, 100
        args.cpu_seconds, args.inproc_rounds, args.inproc_calls = 2.0, 3, 300
    from tests.kamailio.kamharness import unavailable_reason

    reason = unavailable_reason() or (None if SIPP else "SIPp is not installed")
    if reason:
        print(f"cannot run: {reason}")
        return 2
    results: dict = {"machine": machine(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    print(f"# kamhttp outage-guard benchmark\n\n{results['machine']}\n", flush=True)
    root = Path(tempfile.mkdtemp(prefix="kamhttp-guard-"))
    try:
        if not args.skip_timeline:
            results["timeline"] = part_timeline(args, root)
        if not args.skip_cpu:
            results["cpu"] = part_cpu(args, root)
        if not args.skip_inprocess:
            results["inprocess"] = part_inprocess(args)
    finally:
        if args.keep:
            print(f"(run directories kept in {root})")
        else:
            shutil.rmtree(root, ignore_errors=True)
    results["machine_after"] = machine()
    print("\n" + report(results) + f"\n\nafter: {results['machine_after']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=None, separators=(",", ":")))
    if args.plot and "timeline" in results:
        plot(results, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
