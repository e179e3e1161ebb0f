#!/usr/bin/env python3
"""Draws docs/benchmarks.png from the JSON files of bench/inprocess.py and bench/sip.py:
client CPU per call and calls/s by client (in-process), and Kamailio CPU per SIP call and
calls/s by variant (SIP, children=4).

Run:   .venv/bin/python bench/plot.py --inprocess in.json --sip sip.json -o docs/benchmarks.png
Needs: matplotlib (bench/requirements.txt).
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLORS = {"pycurl": "#777777", "kamhttp": "#1f77b4", "python": "#ff7f0e", "C": "#2ca02c",
          "none": "#bbbbbb"}


def bars(ax, labels, values, colors, xlabel, log=False):
    y = range(len(labels))
    ax.barh(list(y), values, color=colors)
    ax.set_yticks(list(y), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel, fontsize=8)
    if log:
        ax.set_xscale("log")
    ax.tick_params(axis="x", labelsize=7)
    for i, v in enumerate(values):
        ax.text(v, i, f" {v:,.0f}", va="center", fontsize=6)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--inprocess", type=Path, required=True)
    ap.add_argument("--sip", type=Path, required=True)
    ap.add_argument("--children", type=int, default=4)
    ap.add_argument("-o", "--output", type=Path, default=Path("docs/benchmarks.png"))
    args = ap.parse_args()
    inproc = json.loads(args.inprocess.read_text())["sections"]
    sip = json.loads(args.sip.read_text())["groups"]
    groups = [g for g in sip if g["children"] == args.children]
    fig, axes = plt.subplots(1 + len(groups), 2, figsize=(12, 4.2 * (1 + len(groups))))
    if len(axes.shape) == 1:
        axes = [axes]
    title, variants = next(iter(inproc.items()))
    https = inproc.get(next((t for t in inproc if t.startswith("HTTPS")), ""), [])
    rows = [(v["name"], v) for v in variants] + [("HTTPS " + v["name"], v) for v in https]
    labels = [name for name, _ in rows]
    colors = [COLORS.get(v["group"], "#999999") for _, v in rows]
    bars(axes[0][0], labels, [statistics.median(v["cpu_us"]) for _, v in rows], colors,
         "in-process: client CPU µs per call (median, log scale)", log=True)
    bars(axes[0][1], labels, [1e6 / statistics.median(v["wall_us"]) for _, v in rows], colors,
         "in-process: calls/s, one thread (median, log scale)", log=True)
    for row, g in enumerate(groups, start=1):
        vs = g["variants"]
        labels = [v["label"] for v in vs]
        colors = [COLORS.get(v["impl"], "#999999") for v in vs]
        bars(axes[row][0], labels, [statistics.median(v["kam_us"]) for v in vs], colors,
             f"SIP {g['group']}: Kamailio CPU µs per SIP call (median)")
        bars(axes[row][1], labels, [statistics.median(v["rate"]) for v in vs], colors,
             f"SIP {g['group']}: SIP calls/s (median)")
    fig.suptitle("kamhttp vs bare pycurl, the C http_client and Python HTTP clients "
                 "(blue: kamhttp, green: C module, grey: pycurl, orange: Python clients)",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(args.output, dpi=110)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
