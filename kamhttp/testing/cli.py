"""``python -m kamhttp run SCRIPT``: run a KEMI script on simulated SIP messages and print
the transcript (exit status 0 when every message ran without a Python exception and every
suspended transaction was resumed).  An asynchronous script (``kamhttp.AsyncHandler``) runs
with kamhttp's HTTP process, as under Kamailio's evrexec line; the transcript shows each
message's t_suspend, the HTTP calls made for it, its resumption and what that sent."""
from __future__ import annotations

import argparse
import pathlib
import sys
from typing import TypedDict

from .errors import ScriptError, SipParseError
from . import sipmsg
from .runner import run_script


def run(args: argparse.Namespace) -> int:
    try:
        messages = _messages(args)
    except (SipParseError, OSError, ValueError) as exc:
        print(f"kamhttp run: {exc}", file=sys.stderr)
        return 2
    env = {}
    for item in args.env:
        name, sep, value = item.partition("=")
        if not sep or not name:
            print(f"kamhttp run: --env {item!r}: expected NAME=VALUE", file=sys.stderr)
            return 2
        env[name] = value
    if args.children < 1 or args.count < 1:
        print("kamhttp run: --children and --count must be >= 1", file=sys.stderr)
        return 2
    try:
        transcript = run_script(args.script, messages * args.count, children=args.children,
                                env=env, kamailio_cfg=args.kamailio_cfg, timeout=args.timeout,
                                reply_route=args.reply_route, onsend_route=args.onsend_route,
                                http_process=args.http_process)
    except ScriptError as exc:
        print(f"kamhttp run: the script did not start: {exc}", file=sys.stderr)
        return 2
    print(transcript.render())
    return 0 if transcript.ok else 1


class _Source(TypedDict):
    """Where the simulated messages come from (--source IP[:PORT])."""

    src_ip: str
    src_port: int


def _messages(args: argparse.Namespace) -> list[sipmsg.SipMessage]:
    ip, _, port = (args.source or "127.0.0.1").partition(":")
    source: _Source = {"src_ip": ip, "src_port": int(port or 5060)}
    built = any(v is not None for v in (args.method, args.ruri, args.from_uri, args.body)) \
        or args.header
    if args.sip:
        if built:
            raise ValueError("--sip and --method/--ruri/--from/--header/--body exclude "
                             "each other")
        return [sipmsg.parse(_read(name), **source) for name in args.sip]
    method = (args.method or "INVITE").upper()
    ruri = args.ruri or ("sip:example.com" if method in ("REGISTER", "OPTIONS")
                         else "sip:bob@example.com")
    options = dict(from_uri=args.from_uri or "sip:alice@example.com", headers=args.header,
                   **source)
    if method == "INVITE" and args.body is None:
        return [sipmsg.invite(ruri, **options)]
    if method == "REGISTER":
        aor = options.pop("from_uri")
        return [sipmsg.register(ruri, aor=aor, body=args.body or "", **options)]
    return [sipmsg.request(method, ruri, body=args.body or "", **options)]


def _read(name: str) -> str:
    if name == "-":
        return sys.stdin.read()
    return pathlib.Path(name).read_text(encoding="utf-8")
