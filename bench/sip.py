#!/usr/bin/env python3
"""SIP benchmark: real Kamailio 5.6 + SIPp, one HTTP call per SIP request.

Variants (each its own Kamailio, all started at once, driven in turn):
  no HTTP (native cfg), no HTTP (KEMI Python)     the floor
  bare pycurl                                     a reused pycurl handle in app_python3
  C <function> kc=0|1                             Debian's C http_client in a native cfg
  kamhttp <function> kc=0|1                       kamhttp in app_python3 (KEMI)
for the function families connect (http_connect / curl_connect) and query
(http_client_query / query), and with --families all also POST, http_client_get / get_hdrs
and kamhttp's cfg-style API (http_connect, http_client_query called from Python).

Each round drives every variant once with SIPp (OPTIONS -> 200, a 500 when the HTTP call did
not get HTTP 200), the order rotating each round (A/B interleaved). Per run: throughput, and
CPU from /proc/<pid>/stat of Kamailio (all its processes), nginx and SIPp, per SIP call and
as cores busy, which names the bottleneck. Printed: medians over rounds, spreads, ratios
(paired per round) and the targets of issue 6, by measured calls/s and by capacity
(cores / Kamailio CPU per call: what Kamailio could do if it had the machine to itself; the
robust figure when other load shares the machine).

Run:   .venv/bin/python bench/sip.py                           # 2 protocols x children 4, 8
       .venv/bin/python bench/sip.py --proto http --children 4 --families all
       .venv/bin/python bench/sip.py --smoke                   # ~20 s: checks it still runs
Needs: root, Debian's kamailio, kamailio-python3-modules, kamailio-utils-modules, sip-tester
(SIPp), nginx; the venv's pycurl built for Python 3.11 (app_python3 embeds 3.11).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from common import (CLK_TCK, Nginx, Summary, children, cpu_seconds, free_udp_port,  # noqa: E402
                    machine, rotate, rss_kib, table)
from tests.kamailio.kamharness import (Kamailio, unavailable_reason,  # noqa: E402
                                       venv_site_packages)

CFG = HERE / "kamailio" / "bench.cfg"
SCRIPT = HERE / "kamailio" / "bench_script.py"
SCENARIO = HERE / "kamailio" / "options.xml"
SIPP = shutil.which("sipp", path="/usr/bin:/usr/sbin:/bin:/sbin")
NCPU = os.cpu_count() or 1


@dataclass
class Variant:
    label: str
    impl: str                     # none | pycurl | C | kamhttp
    family: str                   # none | connect | query | ...
    keep: int | None = None
    defines: dict = field(default_factory=dict)
    env: dict = field(default_factory=dict)
    kamailio: Kamailio | None = None
    pids: list[int] = field(default_factory=list)
    calls: int = 0
    rate: list[float] = field(default_factory=list)
    kam_us: list[float] = field(default_factory=list)
    http_us: list[float] = field(default_factory=list)
    sipp_us: list[float] = field(default_factory=list)
    cores: list[tuple[float, float, float]] = field(default_factory=list)
    other: list[float] = field(default_factory=list)   # cores busy with anything else
    failed: int = 0
    rss_kib: list[int] = field(default_factory=list)   # worker tree RSS after warm-up, at end


def variants(families: str, keeps: list[int], binds: list[str] | None = None,
             trees: list[tuple[str, Path]] | None = None) -> list[Variant]:
    """The variants of one group; --families core (connect, query) or all. ``binds``: how
    the script calls kamhttp (``lambda``: through two lambdas, as the recorded runs did;
    ``partial``: a functools.partial of the function, no Python frame of the caller's, as a
    bare pycurl call has one); ``trees``: (label, checkout) of other kamhttp checkouts whose
    kamhttp variants run beside this one's (e.g. the commit before a change)."""
    py = {"PY_SCRIPT": str(SCRIPT)}
    out = [Variant("no HTTP (native cfg)", "none", "none"),
           Variant("no HTTP (KEMI Python)", "none", "none", defines=py,
                   env={"BENCH_MODE": "none"}),
           Variant("bare pycurl", "pycurl", "connect", 1, defines=py,
                   env={"BENCH_MODE": "pycurl"})]
    c_funcs = [("http_connect", "connect", "C_CONNECT", True),
               ("http_client_query", "query", "C_QUERY", False)]
    k_funcs = [("curl_connect", "connect", True), ("query", "query", True)]
    if families == "all":
        c_funcs += [("http_connect POST", "connect_post", "C_CONNECT_POST", True),
                    ("http_client_query POST", "query_post", "C_QUERY_POST", False),
                    ("http_client_get", "get", "C_GET", False)]
        k_funcs += [("http_connect", "connect", False), ("http_client_query", "query", False),
                    ("curl_connect_post", "connect_post", False),
                    ("query_post", "query_post", False), ("get_hdrs", "get", False)]
    for name, family, define, keeps_matter in c_funcs:
        # the C direct functions never keep a handle: kc does not apply to them
        for keep in (keeps if keeps_matter else [0]):
            label = f"C {name}" + (f" kc={keep}" if keeps_matter else "")
            out.append(Variant(label, "C", family, keep,
                               defines={"WITH_C": 1, define: 1, "KEEP": keep}))
    for tree_label, tree in [("", None), *(trees or [])]:
        for bind in binds or ["lambda"]:
            suffix = (f" ({bind})" if bind != "lambda" else "") + \
                (f" [{tree_label}]" if tree_label else "")
            extra = {"BENCH_BIND": bind}
            if tree is not None:
                extra["PYTHONPATH"] = os.pathsep.join([str(tree), str(venv_site_packages())])
            for name, family, both in k_funcs:
                for keep in (keeps if both else [max(keeps)]):
                    out.append(Variant(f"kamhttp {name} kc={keep}{suffix}", "kamhttp", family,
                                       keep, defines=py,
                                       env={"BENCH_MODE": f"kamhttp:{name}",
                                            "BENCH_KEEP": str(keep), **extra}))
    return out


def start(v: Variant, nginx: Nginx, tls: bool, children_n: int, workdir: Path) -> None:
    url = nginx.url("/ok", tls)
    con = f"bench=>{'https' if tls else 'http'}://{nginx.base(tls)}"
    defines = {"CHILDREN": children_n, **v.defines}
    if "WITH_C" in defines:
        defines.update(URL=url, HTTPCON=con, CAFILE=nginx.cafile)
    env = {**v.env, "BENCH_URL": url, "BENCH_CON": con, "BENCH_CAFILE": nginx.cafile}
    v.kamailio = Kamailio(CFG, workdir, defines=defines, env=env, sip_port=free_udp_port())
    v.kamailio.start()
    v.pids = [v.kamailio.pid, *children(v.kamailio.pid)]


def sipp(v: Variant, calls: int, limit: int, workdir: Path) -> tuple[float, int, int, float]:
    """One SIPp run of ``calls`` OPTIONS with at most ``limit`` in flight: (elapsed s,
    successful, failed, SIPp CPU s). Bounded: SIPp stops itself after a generous timeout."""
    stat = workdir / "sipp-stat.csv"
    stat.unlink(missing_ok=True)
    cmd = [SIPP, "-sf", str(SCENARIO), "-i", "127.0.0.1", "-p", str(free_udp_port()),
           f"127.0.0.1:{v.kamailio.sip_port}", "-m", str(calls), "-l", str(limit),
           "-r", "100000", "-nostdin", "-recv_timeout", "5000",
           "-timeout", f"{60 + calls // 200}s", "-timeout_error",
           "-trace_stat", "-stf", str(stat), "-fd", "3600"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=workdir, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, timeout=120 + calls // 100)
    elapsed = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    ok = failed = 0
    if stat.exists():
        lines = stat.read_text().splitlines()
        if len(lines) >= 2:
            row = dict(zip(lines[0].split(";"), lines[-1].split(";")))
            ok, failed = int(row.get("SuccessfulCall(C)", 0)), int(row.get("FailedCall(C)", 0))
    if ok + failed == 0:
        raise RuntimeError(f"SIPp gave no statistics for {v.label} (exit {proc.returncode}): "
                           f"{proc.stderr[-500:]}\n{v.kamailio.log_tail(20)}")
    return elapsed, ok, failed, cpu


def machine_busy() -> float:
    """CPU seconds the whole machine has been busy (all cores, every process), /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)      # idle + iowait
    return (sum(fields[:8]) - idle) / CLK_TCK


def measure(v: Variant, nginx: Nginx, calls: int, limit: int, workdir: Path) -> None:
    k0, n0, m0 = cpu_seconds(v.pids), cpu_seconds(nginx.pids()), machine_busy()
    elapsed, ok, failed, sipp_cpu = sipp(v, calls, limit, workdir)
    k1, n1, m1 = cpu_seconds(v.pids), cpu_seconds(nginx.pids()), machine_busy()
    v.other.append(max(0.0, (m1 - m0) - (k1 - k0) - (n1 - n0) - sipp_cpu) / elapsed)
    done = max(ok + failed, 1)
    v.failed += failed
    v.rate.append(ok / elapsed)
    v.kam_us.append((k1 - k0) * 1e6 / done)
    v.http_us.append((n1 - n0) * 1e6 / done)
    v.sipp_us.append(sipp_cpu * 1e6 / done)
    v.cores.append(((k1 - k0) / elapsed, (n1 - n0) / elapsed, sipp_cpu / elapsed))


def bottleneck(cores: tuple[float, float, float], other: float, children_n: int,
               nginx_workers: int) -> str:
    """The process group closest to its CPU ceiling; the machine when all cores are busy
    (naming the largest consumer, or "other load" when processes outside the benchmark took
    the most)."""
    names = ("Kamailio", "nginx", "SIPp")
    ceilings = (min(children_n, NCPU), min(nginx_workers, NCPU), 1)
    load = [c / cap for c, cap in zip(cores, ceilings)]
    if sum(cores) + other >= 0.9 * NCPU:
        largest = max(zip((*cores, other), (*names, "other load")))[1]
        return f"all {NCPU} cores busy (most: {largest})"
    return f"{names[load.index(max(load))]} ({max(load) * 100:.0f}% of its ceiling)"


def paired(a: list[float], b: list[float]) -> float:
    """The median over rounds of a/b from the same round (NaN when nothing was measured)."""
    ratios = [x / y for x, y in zip(a, b) if y]
    return statistics.median(ratios) if ratios else float("nan")


def run_group(tls: bool, children_n: int, args, nginx: Nginx, root: Path) -> dict:
    group = f"{'HTTPS' if tls else 'HTTP'}, children={children_n}"
    vs = variants(args.families, args.keep, args.bind, args.tree)
    if args.only:
        vs = [v for v in vs if any(s in v.label for s in args.only)]
    limit = args.limit
    try:
        for i, v in enumerate(vs):
            start(v, nginx, tls, children_n, root / f"{'s' if tls else 'p'}{children_n}-{i}")
        for v in vs:              # warm-up (connections, imports) and sizing
            wd = v.kamailio.workdir
            elapsed, ok, failed, _ = sipp(v, args.warmup, limit, wd)
            if failed:
                raise RuntimeError(f"{group}: {v.label}: {failed} of {args.warmup} warm-up calls "
                                   f"failed\n{v.kamailio.log_tail(30)}")
            v.calls = max(args.min_calls, int(ok / elapsed * args.seconds))
            v.rss_kib.append(sum(_rss(p) for p in v.pids))
        for r in range(args.rounds):
            for v in rotate(vs, r):
                measure(v, nginx, v.calls, limit, v.kamailio.workdir)
        for v in vs:
            v.rss_kib.append(sum(_rss(p) for p in v.pids))
            errors = v.kamailio.python_errors()
            if errors:
                print(f"({v.label}: Python errors in Kamailio's log, first: {errors[0]})")
    finally:
        for v in vs:
            if v.kamailio is not None:
                v.kamailio.stop()
    return {"group": group, "tls": tls, "children": children_n, "limit": limit,
            "variants": [{k: getattr(v, k) for k in (
                "label", "impl", "family", "keep", "calls", "rate", "kam_us", "http_us",
                "sipp_us", "cores", "other", "failed", "rss_kib")} for v in vs]}


def _rss(pid: int) -> int:
    try:
        return rss_kib(pid)
    except (OSError, RuntimeError):
        return 0


def report(g: dict, nginx_workers: int) -> str:
    vs = g["variants"]
    by = {v["label"]: v for v in vs}
    rows = []
    for v in vs:
        rate, kam = Summary(v["rate"]), Summary(v["kam_us"])
        cores = tuple(statistics.median(c[i] for c in v["cores"]) for i in range(3))
        other = statistics.median(v["other"]) if v.get("other") else 0.0
        ref = by.get(_c_counterpart(v))
        rows.append([
            v["label"], f"{rate.median:,.0f}", f"{rate.spread_pct:.0f}%", f"{kam.median:,.1f}",
            f"{kam.spread_pct:.0f}%", f"{NCPU * 1e6 / kam.median:,.0f}" if kam.median else "",
            f"{statistics.median(v['http_us']):,.1f}",
            f"{statistics.median(v['sipp_us']):,.1f}",
            f"{cores[0]:.2f}/{cores[1]:.2f}/{cores[2]:.2f}/{other:.2f}",
            bottleneck(cores, other, g["children"], nginx_workers),
            f"{paired(v['rate'], ref['rate']):.2f} / {paired(ref['kam_us'], v['kam_us']):.2f}"
            if ref and ref is not v else "",
            f"{(v['rss_kib'][-1] - v['rss_kib'][0]) / 1024:+.1f}" if len(v["rss_kib"]) > 1 else ""])
    return (f"### {g['group']} (SIPp -l {g['limit']})\n\n" + table(
        ["variant", "calls/s", "spread", "Kamailio CPU µs/call", "spread",
         f"capacity ({NCPU} cores)", "nginx µs/call",
         "SIPp µs/call", "cores K/N/S/other", "bottleneck", "× C: calls/s / capacity",
         "RSS MB Δ"],
        rows))


def _c_counterpart(v: dict) -> str:
    """The C module's variant that a kamhttp variant is compared with."""
    if v["impl"] != "kamhttp":
        return ""
    return {"connect": f"C http_connect kc={v['keep']}", "query": "C http_client_query",
            "connect_post": f"C http_connect POST kc={v['keep']}",
            "query_post": "C http_client_query POST", "get": "C http_client_get"}[v["family"]]


def targets(g: dict) -> list[str]:
    """Issue 6's SIP targets that this group can check."""
    by = {v["label"]: v for v in g["variants"]}
    lines = []

    def check(what: str, a: str, b: str, metric: str, want: float, most: bool = False) -> None:
        if a not in by or b not in by:
            return
        ratio = paired(by[a][metric], by[b][metric])
        ok = ratio <= want if most else ratio >= want
        text = (f"- {g['group']}: {what}: {ratio:.2f} (target {'<=' if most else '>='} {want}): "
                f"{'met' if ok else 'MISSED'}")
        if metric == "rate":        # the same ratio from Kamailio's CPU per call (capacity)
            cap = paired(by[b]["kam_us"], by[a]["kam_us"])
            text += (f"; by Kamailio CPU/call (capacity): {cap:.2f}: "
                     f"{'met' if cap >= want else 'MISSED'}")
        lines.append(text)

    if not g["tls"]:
        check("kamhttp curl_connect kc=1 Kamailio CPU/call × bare pycurl",
              "kamhttp curl_connect kc=1", "bare pycurl", "kam_us", 1.05, most=True)
        check("kamhttp curl_connect kc=1 calls/s × C http_connect kc=1",
              "kamhttp curl_connect kc=1", "C http_connect kc=1", "rate", 1.1)
        check("kamhttp query kc=1 calls/s × C http_client_query",
              "kamhttp query kc=1", "C http_client_query", "rate", 1.5)
        check("kamhttp query kc=0 calls/s × C http_client_query",
              "kamhttp query kc=0", "C http_client_query", "rate", 1.0)
    else:
        check("kamhttp query kc=1 calls/s × C http_client_query",
              "kamhttp query kc=1", "C http_client_query", "rate", 10)
        check("kamhttp curl_connect kc=1 calls/s × C http_connect kc=1",
              "kamhttp curl_connect kc=1", "C http_connect kc=1", "rate", 1.1)
        check("kamhttp query kc=0 calls/s × C http_client_query",
              "kamhttp query kc=0", "C http_client_query", "rate", 1.5)
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--proto", default="http,https", help="http, https or both (default)")
    ap.add_argument("--children", default="4,8", help="Kamailio children, comma-separated")
    ap.add_argument("--families", choices=("core", "all"), default="core")
    ap.add_argument("--keep", default="0,1", help="keep_connections values (default 0,1)")
    ap.add_argument("--only", action="append", help="keep the variants whose label has this")
    ap.add_argument("--bind", default="lambda",
                    help="how the script calls kamhttp: lambda (two lambdas, as the recorded "
                         "runs), partial (a functools.partial: no extra Python frame), or both "
                         "comma-separated")
    ap.add_argument("--tree", action="append", default=[], metavar="LABEL=PATH",
                    help="also run the kamhttp variants on the kamhttp of another checkout "
                         "(e.g. a git worktree of an older commit), labelled [LABEL]")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=2.0, help="per run (default 2)")
    ap.add_argument("--warmup", type=int, default=400, help="warm-up calls per variant")
    ap.add_argument("--min-calls", type=int, default=200)
    ap.add_argument("--limit", type=int, default=64,
                    help="SIPp -l, calls in flight (default 64: SIPp needs about 4 ms to start "
                         "a new call after one ended, so fewer would cap the rate below what "
                         "Kamailio can do; more overflows the default 208 KB UDP buffers)")
    ap.add_argument("--nginx-workers", type=int, default=1)
    ap.add_argument("--smoke", action="store_true", help="one tiny round of HTTP, children 2")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--report", type=Path, help="print the tables of a saved --json file")
    args = ap.parse_args(argv)
    if args.report:
        saved = json.loads(args.report.read_text())
        print(f"{saved['machine']}\n{saved['rounds']} rounds\n")
        for g in saved["groups"]:
            print(report(g, args.nginx_workers) + "\n")
        print("Targets:\n" + "\n".join(t for g in saved["groups"] for t in targets(g)))
        return 0
    if args.smoke:
        args.proto, args.children, args.rounds = "http", "2", 1
        args.warmup, args.min_calls, args.seconds, args.limit = 30, 60, 0.0, 8
    args.keep = [int(k) for k in args.keep.split(",")]
    args.bind = [b.strip() for b in args.bind.split(",")]
    args.tree = [(t.split("=", 1)[0], Path(t.split("=", 1)[1]).resolve()) for t in args.tree]
    reason = unavailable_reason("http_client") or (None if SIPP else "SIPp is not installed")
    if reason:
        print(f"cannot run: {reason}")
        return 2
    protos = [p.strip() for p in args.proto.split(",")]
    results = {"machine": machine(), "rounds": args.rounds, "groups": []}
    print(f"# kamhttp SIP benchmark (Kamailio + SIPp)\n\n{results['machine']}\n"
          f"{args.rounds} rounds, A/B interleaved; medians over rounds; spread = (max-min)/median;"
          f" cores K/N/S/other = CPU per second of the run of Kamailio, nginx, SIPp and anything"
          f" else on the machine.\n")
    all_targets = []
    root = Path(tempfile.mkdtemp(prefix="kamhttp-sip-"))
    try:
        with Nginx(workers=args.nginx_workers) as nginx:
            for proto in protos:
                for n in (int(c) for c in args.children.split(",")):
                    g = run_group(proto == "https", n, args, nginx, root)
                    results["groups"].append(g)
                    print(report(g, args.nginx_workers) + "\n", flush=True)
                    all_targets += targets(g)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    failed = sum(v["failed"] for g in results["groups"] for v in g["variants"])
    print(f"failed SIP calls: {failed}\n")
    if all_targets:
        print("Targets:\n" + "\n".join(all_targets))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
