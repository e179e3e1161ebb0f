"""``python -m kamhttp COMMAND``: the subcommands come from one table, :data:`COMMANDS`.

To add one, append ``Command(name, help, "module:function", (arg(...), ...))``: the function
receives the parsed ``argparse.Namespace`` and returns the exit status; its module is imported
only when the command runs.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import sys
from typing import Any, Callable

from .config import KINDS, Configuration, read
from .errors import ConfigError
from .config.params import PARAMS, Scope


@dataclasses.dataclass(frozen=True)
class Argument:
    flags: tuple[str, ...]
    options: dict[str, Any]


def arg(*flags: str, **options: Any) -> Argument:
    """One ``parser.add_argument(*flags, **options)``."""
    return Argument(flags, options)


@dataclasses.dataclass(frozen=True)
class Command:
    name: str
    help: str
    target: str                              # "module:function"
    arguments: tuple[Argument, ...] = ()

    def function(self) -> Callable[[argparse.Namespace], int]:
        module, _, name = self.target.partition(":")
        return getattr(importlib.import_module(module), name)


FILE_ARGUMENTS = (
    arg("file", help="a YAML file, a config_file or a kamailio.cfg"),
    arg("--format", choices=KINDS, help="the kind of FILE (default: from its name and content)"),
    arg("-A", "--define", action="append", default=[], metavar="NAME[=VALUE]",
        help="a #!define for a kamailio.cfg, like kamailio -A"),
)

RUN_ARGUMENTS = (
    arg("script", help="the KEMI Python script (as app_python3 loads it)"),
    arg("--sip", action="append", default=[], metavar="FILE",
        help="a file holding one SIP message (repeatable; '-' reads standard input)"),
    arg("--method", help="build a request with this method (default INVITE)"),
    arg("--ruri", help="its Request-URI (default sip:bob@example.com)"),
    arg("--from", dest="from_uri", help="its From URI (default sip:alice@example.com)"),
    arg("--header", action="append", default=[], metavar="'NAME: VALUE'",
        help="an extra header of the built request (repeatable)"),
    arg("--body", help="the body of the built request"),
    arg("--source", metavar="IP[:PORT]", help="where the message comes from ($si, $sp)"),
    arg("--count", type=int, default=1, help="send the message(s) this many times"),
    arg("--children", type=int, default=1,
        help="worker processes: 1 runs in this process, N > 1 forks N workers"),
    arg("--kamailio-cfg", metavar="CFG", help="play the C http_client module loaded by this "
        "kamailio.cfg: KSR.http_client, $curlerror and $httprhdr work as natively"),
    arg("--env", action="append", default=[], metavar="NAME=VALUE",
        help="an environment variable for the script (repeatable)"),
    arg("--reply-route", default="ksr_reply_route", metavar="METHOD",
        help="kemi.reply_route_callback: the handler method for replies ('' for none)"),
    arg("--onsend-route", default="ksr_onsend_route", metavar="METHOD",
        help="kemi.onsend_route_callback: the method t_relay calls ('' for none)"),
    arg("--timeout", type=float, default=60.0,
        help="seconds a run with forked workers may take, and that suspended transactions "
             "are waited for (default 60)"),
    arg("--no-http-process", dest="http_process", action="store_false",
        help="play a kamailio.cfg without kamhttp's HTTP process (async calls answer -3)"),
)

COMMANDS: list[Command] = [
    Command("check", "validate a configuration file and print its connections",
            "kamhttp.cli:check", FILE_ARGUMENTS),
    Command("listcon", "print what httpclient.listcon prints, as JSON",
            "kamhttp.cli:listcon", FILE_ARGUMENTS),
    Command("run", "run a KEMI script on simulated SIP messages and print what it did",
            "kamhttp.testing.cli:run", RUN_ARGUMENTS),
    Command("demo", "the routing-lookup example on simulated INVITEs against a local API",
            "kamhttp.testing.demo:command"),
    Command("counters", "print the connections/connfail/connok totals of a running Kamailio",
            "kamhttp.cli:counters",
            (arg("--pid", type=int, help="the main process id (default: the only running "
                 "process tree with kamhttp counters)"),)),
]


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m kamhttp", description="kamhttp: Kamailio's "
                                  "http_client module for KEMI Python routing scripts")
    subparsers = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        sub = subparsers.add_parser(command.name, help=command.help, description=command.help)
        for argument in command.arguments:
            sub.add_argument(*argument.flags, **argument.options)
        sub.set_defaults(command_entry=command)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.command_entry.function()(args)


def _load(args: argparse.Namespace) -> Configuration | None:
    """The file's Configuration, or None after printing every error to stderr."""
    defines = dict(d.partition("=")[::2] for d in args.define)
    try:
        return read(args.file, args.format, defines)
    except ConfigError as err:
        print(f"{args.file}: {len(err.errors)} error{'s' if len(err.errors) > 1 else ''}",
              file=sys.stderr)
        for error in err.errors:
            print(f"  {error}", file=sys.stderr)
        return None


def check(args: argparse.Namespace) -> int:
    """Exit status 0 and the effective configuration, or 1 and every error."""
    cfg = _load(args)
    if cfg is None:
        return 1
    print(f"{args.file}: OK, {len(cfg.order)} connection{'s' * (len(cfg.order) != 1)}")
    changed = [(p.name, getattr(cfg.settings, p.name)) for p in PARAMS.values()
               if p.scope is not Scope.LOADER and getattr(cfg.settings, p.name) != p.default]
    print("modparams (other than the defaults):" if changed else "modparams: all defaults")
    for name, value in changed:
        print(f"  {name} = {value!r}")
    unit = {0: "(timeouts disabled)", 1: "s", 2: "ms"}[cfg.settings.timeout_mode]
    for name in cfg.order:
        conn = cfg.connections[name]
        print(f"connection {name!r} ({conn.source})")
        for field, value in conn.masked().items():
            if field == "timeout":
                print(f"  timeout: {cfg.settings.effective_timeout(value)} {unit}")
            elif field not in ("name", "source"):
                print(f"  {field}: {value!r}")
    for warning in cfg.warnings:
        print(f"warning: {warning}")
    return 0


def listcon(args: argparse.Namespace) -> int:
    """The listcon JSON; exit status 1 (with C's fault) when there is no connection."""
    from .ops.listcon import listcon_json
    cfg = _load(args)
    if cfg is None:
        return 1
    print(listcon_json(cfg))
    return 0 if cfg.order else 1


def counters(args: argparse.Namespace) -> int:
    """``python -m kamhttp counters [--pid MAINPID]``: the totals as JSON, as
    ``kamcmd cnt.grp_get_all httpclient`` prints them."""
    from .ops import counters as store
    pid = args.pid
    if pid is None:
        pids = store.live_pids()
        if len(pids) != 1:
            print("no running process has kamhttp counters" if not pids else
                  "several process trees have kamhttp counters, choose one with --pid: "
                  + " ".join(map(str, pids)), file=sys.stderr)
            return 1
        pid = pids[0]
    try:
        totals = store.read(pid)
    except (FileNotFoundError, ValueError) as err:
        print(f"no kamhttp counters for pid {pid} ({err})", file=sys.stderr)
        return 1
    print(json.dumps(totals, sort_keys=True))
    return 0
