"""The same requests answered by the C http_client (Debian 5.6.3) and by kamhttp, in a real
Kamailio, compared return code by return code and result by result.

* Native cfg functions: a Kamailio with the native cfg engine runs each case as a ``case`` of
  a generated ``request_route`` (the C functions with their real fixups and PV expansion).
* KEMI: kamailio-cfg/kamailio-c.cfg (app_python3 + the C module) runs tests/kamailio/scripts/
  probe.py, which calls ``KSR.http_client.*`` (C) and then ``kamhttp.http_client.*`` and
  kamhttp's cfg functions, in the same worker, on the same connection definitions
  (``kamhttp.load_kamailio_cfg`` reads the cfg's ``modparam("http_client", ...)`` lines).

Every case states the value the C module gives on 5.6.3 (spec http_client-c-module.md) and,
where the interface page decides differently, kamhttp's value and why: those differences are
asserted explicitly, never skipped.
"""
from __future__ import annotations

import base64
import dataclasses
import json
import pathlib
import re
import socket
import subprocess
import sys
import urllib.parse
from typing import Callable, Iterator

import pytest

from tests import servers

from .kamharness import ROOT, Kamailio, SipClient, free_port, side_by_side_cfg

UNSET = "<unset>"
RES = "$var(res)"
KEMI_NAME = {  # cfg function and argument count -> KEMI export (spec section 11)
    ("http_connect", 3): "curl_connect",
    ("http_connect", 5): "curl_connect_post",
    ("http_connect_raw", 5): "curl_connect_post",
    ("http_client_query", 2): "query",
    ("http_client_query", 3): "query_post",
    ("http_client_query", 4): "query_post_hdrs",
    ("http_client_get", 4): "get_hdrs",
}
KAMHTTP_KEMI_EXTRA = {"http_get_redirect": "get_redirect"}
"""What the C module has no KEMI export for; kamhttp adds a KEMI-style form."""


@dataclasses.dataclass(frozen=True)
class Step:
    """One call (``fn`` with cfg ``args``), a pseudo-variable read (``pv``) or a PV set."""

    fn: str | None = None
    args: tuple[str, ...] = ()
    pv: str | None = None
    set: tuple[str, str] | None = None

    def native(self, n: int) -> str:
        """The native cfg statements; results go to $var(rcN) and $var(resN)."""
        if self.set:
            return f"{self.set[0]} = {cfg_quote(self.set[1])};"
        if self.pv:
            return f'$var(rc{n}) = "pv"; $var(res{n}) = {self.pv};'
        args = ", ".join(cfg_quote(a) for a in self.args)
        return (f'$var(res) = "{UNSET}"; {self.fn}({args}); $var(rc{n}) = $rc; '
                f"$var(res{n}) = $var(res);")

    def probe(self, api: str) -> dict | None:
        """The probe step for ``api`` (c.kemi, kamhttp.kemi, kamhttp.cfg)."""
        if self.set:
            return {"set": self.set[0], "value": self.set[1]}
        if self.pv:
            return {"pv": self.pv, "via": "ksr" if api.startswith("c.") else "kamhttp"}
        if api == "kamhttp.cfg":
            return {"call": api, "fn": self.fn, "args": list(self.args), "read": [RES]}
        kemi = KEMI_NAME.get((self.fn, len(self.args)))
        if api == "c.kemi":  # KSR.http_client; the cfg function where C has no KEMI export
            if kemi is None:
                return {"call": "ksr.cfg", "fn": self.fn, "args": list(self.args),
                        "read": [RES]}
            return {"call": "ksr.kemi", "fn": kemi, "args": list(self.args), "read": [RES]}
        kemi = kemi or KAMHTTP_KEMI_EXTRA[self.fn]
        return {"call": api, "fn": kemi, "args": list(self.args), "read": [RES]}

    @property
    def reports(self) -> bool:
        return self.set is None


Outcome = tuple  # (rc, result) per reporting step


@dataclasses.dataclass(frozen=True)
class Case:
    """``c``: the outcome of the C module (cfg functions); ``c_kemi`` where its KEMI export
    differs (no PV expansion, spec 11). ``kamhttp``/``kamhttp_kemi``: kamhttp's outcome where
    the interface page decides differently, with ``why``."""

    name: str
    steps: tuple[Step, ...]
    c: tuple[Outcome, ...]
    c_kemi: tuple[Outcome, ...] | None = None
    kamhttp: tuple[Outcome, ...] | None = None
    kamhttp_kemi: tuple[Outcome, ...] | None = None
    why: str = ""
    norm: Callable[[str | None], object] = lambda value: value
    refused_by_kamhttp: str | None = None
    """The connection this case needs is refused by kamhttp at load (this text in the error):
    the case runs on the C module only, and test_kamhttp_refuses_at_load asserts the refusal."""

    def expected(self, api: str) -> tuple[Outcome, ...]:
        c_kemi = self.c_kemi or self.c
        return {"c.cfg": self.c, "c.kemi": c_kemi,
                "kamhttp.cfg": self.kamhttp or self.c,
                "kamhttp.kemi": self.kamhttp_kemi or self.kamhttp or c_kemi}[api]

    def normalized(self, outcomes: list[tuple[object, str | None]]) -> tuple[Outcome, ...]:
        return tuple((rc, value if value == UNSET else self.norm(value))
                     for rc, value in outcomes)


def cfg_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def call(fn: str, *args: str) -> Step:
    return Step(fn=fn, args=args)


def echo(*fields: str, headers: tuple[str, ...] = ()) -> Callable[[str | None], object]:
    """Reduce an /echo JSON answer to what both modules must agree on (not the client port,
    nor headers that name the library)."""
    def norm(value: str | None) -> object:
        if not value:
            return value
        doc = json.loads(value)
        got = {name.lower(): v for name, v in doc["headers"]}
        return (tuple(doc[f] for f in fields),
                tuple(got.get(h.lower()) for h in headers))
    return norm


def q(text: str) -> str:
    return urllib.parse.quote(text, safe="")


LONG = "x" * 1200
"""Longer than query_maxdatasize (1000)."""


@dataclasses.dataclass(frozen=True)
class Urls:
    http: str
    https: str
    wrong_host: str
    untrusted: str
    dead: str


def cases(u: Urls) -> list[Case]:
    h = u.http
    final = f"/redirect/302?to={q('/code/200?body=final')}"
    return [
        # --- connections: GET (spec 5.3)
        Case("connect_get", (call("http_connect", "plain", "/code/200?body=hello", RES),),
             c=((200, "hello"),)),
        Case("connect_join_slash", (call("http_connect", "api", "201?body=joined", RES),),
             c=((201, "joined"),)),
        Case("connect_empty_suffix", (call("http_connect", "err500", "", RES),),
             c=((200, "kamhttp test server\n"),)),  # /code/500 -> 500 -> failover to plain
        Case("connect_404_keeps_body", (call("http_connect", "plain", "/code/404?body=nf", RES),),
             c=((404, "nf"),)),
        Case("connect_500_drops_body", (call("http_connect", "plain", "/code/503?body=e", RES),),
             c=((503, ""),)),
        Case("connect_refused", (call("http_connect", "deadonly", "/x", RES),), c=((7, ""),)),
        Case("connect_unknown", (call("http_connect", "nosuch", "/x", RES),), c=((-1, ""),)),
        Case("connect_pv_expanded",
             (Step(set=("$var(b)", "pvbody")),
              call("http_connect", "plain", "/code/200?body=$var(b)", RES)),
             c=((200, "pvbody"),), c_kemi=((200, "$var(b)"),)),
        Case("connect_file_connection", (call("http_connect", "filecon", "/200?body=file", RES),),
             c=((200, "file"),)),
        Case("connect_maxdatasize", (call("http_connect", "small", "/code/200?body=0123456789",
                                          RES),),
             c=((200, "01234"),)),
        Case("connect_timeout", (call("http_connect", "short", "/slow?delay=3&body=late", RES),),
             c=((28, ""),)),
        # --- failover (spec 6.6)
        Case("failover_on_refused", (call("http_connect", "dead", "/code/200?body=fo", RES),),
             c=((200, "fo"),)),
        Case("failover_target_missing", (call("http_connect", "fo_missing", "/x", RES),),
             c=((-1, ""),), refused_by_kamhttp="fails over to 'nosuch', which is not defined",
             why="a failover to an undefined connection is a load error, not -1 per request"),
        # --- redirects (spec 5.6, B2)
        Case("redirect_default", (call("http_connect", "plain", final, RES),),
             c=((302, ""),), kamhttp=((200, "final"),),
             why="httpredirect defaults to 1 as documented (C: 0) [B2]"),
        Case("redirect_follow", (call("http_connect", "follow", final, RES),),
             c=((200, "final"),)),
        Case("redirect_nofollow", (call("http_connect", "nofollow", final, RES),),
             c=((302, ""),)),
        Case("get_redirect_after_follow",
             (call("http_connect", "follow", final, RES), call("http_get_redirect", "follow", RES)),
             c=((200, "final"), (1, f"{h}/code/200?body=final"))),
        Case("get_redirect_not_followed",
             (call("http_connect", "nofollow", final, RES),
              call("http_get_redirect", "nofollow", RES)),
             c=((302, ""), (1, f"{h}{final}"))),
        Case("get_redirect_before_any_request", (call("http_get_redirect", "fresh", RES),),
             c=((1, ""),)),
        Case("get_redirect_after_curl_error",
             (call("http_connect", "deadonly", "/x", RES),
              call("http_get_redirect", "deadonly", RES)),
             c=((7, ""), (1, ""))),
        Case("get_redirect_unknown", (call("http_get_redirect", "nosuch", RES),), c=((-1, ""),)),
        # --- connections: POST (spec 5.4, 5.5)
        Case("connect_post", (call("http_connect", "plain", "/echo", "application/json",
                                   '{"a": 1}', RES),),
             c=((200, (("POST", '{"a": 1}'), ("application/json",))),),
             norm=echo("method", "body", headers=("Content-Type",))),
        Case("connect_post_empty_data_is_get",
             (call("http_connect", "plain", "/echo", "text/plain", "", RES),),
             c=((200, (("GET", ""), (None,))),),
             norm=echo("method", "body", headers=("Content-Type",))),
        Case("connect_post_empty_ctype_sends_none",
             (call("http_connect", "plain", "/echo", "", "d=1", RES),),
             c=((200, (("POST", "d=1"), (None,))),),
             norm=echo("method", "body", headers=("Content-Type",))),
        Case("connect_post_data_pv_expanded",
             (Step(set=("$var(d)", "dyn")),
              call("http_connect", "plain", "/echo", "text/plain", "x=$var(d)", RES)),
             c=((200, (("POST", "x=dyn"), ())),), c_kemi=((200, (("POST", "x=$var(d)"), ())),),
             norm=echo("method", "body")),
        Case("connect_raw_not_expanded",
             (Step(set=("$var(d)", "dyn")),
              call("http_connect_raw", "plain", "/echo", "text/plain", "raw $var(d) data", RES)),
             c=((200, (("POST", "raw $var(d) data"), ())),), norm=echo("method", "body")),
        Case("connect_useragent", (call("http_connect", "ua", "/echo", RES),),
             c=((200, ((), ("diffagent",))),), norm=echo(headers=("User-Agent",))),
        # --- direct URL (spec 5.7, 5.8, 6.4)
        Case("query_get", (call("http_client_query", f"{h}/code/200?body=q", RES),),
             c=((200, "q"),)),
        Case("query_first_line", (call("http_client_query", f"{h}/code/200?body=l1%0Al2", RES),),
             c=((200, "l1"),)),
        Case("query_first_line_crlf",
             (call("http_client_query", f"{h}/code/200?body=l1%0D%0Al2", RES),),
             c=((200, "l1\r"),), kamhttp=((200, "l1"),),
             why="the first line does not keep the \\r of a CRLF end [B17]"),
        Case("query_maxdatasize_no_newline",
             (call("http_client_query", f"{h}/code/200?body={LONG}", RES),),
             c=((200, LONG[:1000]),)),
        Case("query_maxdatasize_with_newline",
             (call("http_client_query", f"{h}/code/200?body={LONG}%0Aend", RES),),
             c=((200, LONG),), kamhttp=((200, LONG[:1000]),),
             why="query_maxdatasize always applies, also to the first line [B16]"),
        Case("query_pv_expanded",
             (Step(set=("$var(b)", "qpv")),
              call("http_client_query", f"{h}/code/200?body=$var(b)", RES)),
             c=((200, "qpv"),), c_kemi=((200, "$var(b)"),)),
        Case("query_post", (call("http_client_query", f"{h}/echo", "a=1", RES),),
             c=((200, (("POST", "a=1"), ("application/x-www-form-urlencoded",))),),
             norm=echo("method", "body", headers=("Content-Type",))),
        Case("query_post_hdrs",
             (call("http_client_query", f"{h}/echo", "a=1", "Content-Type: text/plain", RES),),
             c=((200, (("POST", "a=1"), ("text/plain",))),),
             norm=echo("method", "body", headers=("Content-Type",))),
        Case("query_get_with_hdrs",
             (call("http_client_query", f"{h}/echo", "", "X-Token: abc", RES),),
             c=((200, (("GET",), ("abc",))),), norm=echo("method", headers=("X-Token",))),
        Case("query_404", (call("http_client_query", f"{h}/code/404?body=nf", RES),),
             c=((404, "nf"),)),
        Case("query_500", (call("http_client_query", f"{h}/code/500?body=e", RES),),
             c=((500, ""),)),
        Case("query_refused", (call("http_client_query", f"{u.dead}/", RES),), c=((7, ""),)),
        Case("query_ftp", (call("http_client_query", "ftp://127.0.0.1:1/", RES),), c=((1, ""),)),
        Case("query_empty_url", (call("http_client_query", "", RES),),
             c=((-1, UNSET),), c_kemi=((3, ""),)),  # B22: KEMI passes "" to libcurl
        Case("query_redirect_default", (call("http_client_query", f"{h}{final}", RES),),
             c=((302, ""),), kamhttp=((200, "final"),),
             why="httpredirect defaults to 1 as documented (C: 0) [B2]"),
        Case("get_hdrs", (call("http_client_get", f"{h}/echo", "", "X-Token: abc", RES),),
             c=((200, (("GET", ""), ("abc",))),),
             norm=echo("method", "body", headers=("X-Token",))),
        Case("get_with_body", (call("http_client_get", f"{h}/echo", "b=1", "", RES),),
             c=((200, (("GET", "b=1"), ("application/x-www-form-urlencoded",))),),
             norm=echo("method", "body", headers=("Content-Type",))),
        # --- TLS (cacert is global, read at request time)
        Case("tls_verified", (call("http_connect", "tls", "/code/200?body=secure", RES),),
             c=((200, "secure"),)),
        Case("tls_wrong_host", (call("http_connect", "tlswrong", "/code/200", RES),),
             c=((60, ""),)),
        Case("tls_untrusted", (call("http_connect", "tlsuntrusted", "/code/200", RES),),
             c=((60, ""),)),
        Case("tls_no_verify", (call("http_connect", "tlsnoverify", "/code/200?body=anyway",
                                    RES),),
             c=((200, "anyway"),)),
        Case("query_tls", (call("http_client_query", f"{u.https}/code/200?body=dsec", RES),),
             c=((200, "dsec"),)),
        # --- authentication from the httpcon credentials (spec 3.3)
        Case("auth_basic", (call("http_connect", "authc", "/basic", RES),),
             c=((200, "authenticated alice"),)),
        Case("auth_digest", (call("http_connect", "authc", "/digest", RES),),
             c=((200, "authenticated alice"),)),
        # --- $curlerror (spec 9.1): texts that libcurl 7.88 and 8.x share
        Case("curlerror", tuple(Step(pv=f"$curlerror({n})") for n in (0, 1, 28, 60, 200, -1)),
             c=(("pv", "No error"), ("pv", "Unsupported protocol"),
                ("pv", "Timeout was reached"),
                ("pv", "SSL peer certificate or SSH remote key was not OK"),
                ("pv", "HTTP result code"), ("pv", "Bad CURL error code"))),
    ]


def connection_block(u: Urls, config_file: pathlib.Path, ca_file: str,
                     refused_by_kamhttp: bool = False) -> str:
    """The modparam("http_client", ...) lines both modules load; with
    ``refused_by_kamhttp`` also those only the C module accepts."""
    h = u.http
    http_port = urllib.parse.urlsplit(h).netloc
    lines = [
        ("connection_timeout", 2),
        ("query_maxdatasize", 1000),
        ("cacert", ca_file),
        ("httpcon", f"plain=>{h}"),
        ("httpcon", f"api=>{h}/code"),
        ("httpcon", f"follow=>{h};httpredirect=1"),
        ("httpcon", f"nofollow=>{h};httpredirect=0"),
        ("httpcon", f"fresh=>{h}"),
        ("httpcon", f"deadonly=>{u.dead}"),
        ("httpcon", f"dead=>{u.dead};failover=plain"),
        ("httpcon", f"err500=>{h}/code/500;failover=plain"),
        ("httpcon", f"short=>{h};timeout=1"),
        ("httpcon", f"small=>{h};maxdatasize=5"),
        ("httpcon", f"tls=>{u.https}"),
        ("httpcon", f"tlswrong=>{u.wrong_host}"),
        ("httpcon", f"tlsuntrusted=>{u.untrusted}"),
        ("httpcon", f"tlsnoverify=>{u.untrusted};verify_peer=0;verify_host=0"),
        ("httpcon", f"ua=>{h};useragent=diffagent"),
        ("httpcon", f"authc=>http://{servers.USER}:{servers.PASSWORD}@{http_port}/auth"),
        ("config_file", str(config_file)),
        *([("httpcon", f"fo_missing=>{u.dead};failover=nosuch")] if refused_by_kamhttp else []),
    ]
    return "\n".join(f'modparam("http_client", {cfg_quote(name)}, '
                     f'{value if isinstance(value, int) else cfg_quote(value)})'
                     for name, value in lines)


def config_file_text(u: Urls) -> str:
    return f"[filecon]\nurl = {u.http}/code\ntimeout = 2\nkeepconnections = 1\n"


NATIVE_HEAD = """#!KAMAILIO
debug=2
log_stderror=yes
children=4
disable_tcp=yes
auto_aliases=no
listen=udp:127.0.0.1:SIP_PORT
loadmodule "kex.so"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "textops.so"
loadmodule "xlog.so"
loadmodule "jsonrpcs.so"
loadmodule "counters.so"
loadmodule "http_client.so"
modparam("jsonrpcs", "transport", 4)
"""


def native_cfg(block: str, all_cases: list[Case]) -> str:
    """A native-engine cfg running each case's C cfg functions; the reply carries
    X-Rc-N and X-Res-N (base64) per reporting step."""
    out = [NATIVE_HEAD, block, "", "request_route {",
           '    if (is_method("OPTIONS")) { sl_send_reply("200", "Ready"); exit; }',
           "    switch ($hdr(X-Case)) {"]
    for case in all_cases:
        out.append(f"    case {cfg_quote(case.name)}:")
        n = 0
        headers = []
        for step in case.steps:
            if step.reports:
                n += 1
                headers.append(f"X-Rc-{n}: $var(rc{n})\\r\\nX-Res-{n}: "
                               f"$(var(res{n}){{s.encode.base64}})\\r\\n")
            out.append("        " + step.native(n))
        out.append(f'        append_to_reply("{"".join(headers)}");')
        out.append("        break;")
    out += ["    default:", '        sl_send_reply("404", "No Such Case"); exit;', "    }",
            '    sl_send_reply("200", "OK");', "}", ""]
    return "\n".join(out)


@dataclasses.dataclass
class Runs:
    cases: list[Case]
    outcomes: dict[tuple[str, str], list[tuple[object, str | None]]]
    """(case name, api) -> [(rc, raw result)]"""
    native: Kamailio
    python: Kamailio
    kamhttp_failure: str | None
    """Why kamhttp did not load in the side-by-side Kamailio (its mod_init traceback)."""
    native_cfg: pathlib.Path

    def require_kamhttp(self) -> None:
        if self.kamhttp_failure:
            pytest.fail(self.kamhttp_failure, pytrace=False)


@pytest.fixture(scope="module")
def runs(start_kamailio, tmp_path_factory, http_server, https_server,
         https_untrusted_server, tls_files) -> Iterator[Runs]:
    urls = Urls(http=http_server.url, https=https_server.url,
                wrong_host=https_server.wrong_host.url, untrusted=https_untrusted_server.url,
                dead=f"http://127.0.0.1:{free_port(socket.SOCK_STREAM)}")
    all_cases = cases(urls)
    where = tmp_path_factory.mktemp("differential")
    config_file = where / "http_client.cfg"
    config_file.write_text(config_file_text(urls))
    block = connection_block(urls, config_file, tls_files.ca_file)
    c_block = connection_block(urls, config_file, tls_files.ca_file, refused_by_kamhttp=True)
    (where / "native.cfg").write_text(native_cfg(c_block, all_cases))
    (where / "kamailio-c.cfg").write_text(side_by_side_cfg(block))
    both = [c for c in all_cases if not c.refused_by_kamhttp]

    native = start_kamailio(cfg=where / "native.cfg", script=None, modules=("http_client",))
    python = start_kamailio(cfg=where / "kamailio-c.cfg", script="probe.py",
                            modules=("http_client",),
                            env={"PROBE_BACKENDS": "c,kamhttp",
                                 "PROBE_KAMHTTP_CONFIG": str(where / "kamailio-c.cfg")})
    outcomes: dict[tuple[str, str], list] = {}
    with SipClient(native.sip_port) as sip:
        requests = {c.name: sip.build(headers={"X-Case": c.name}) for c in all_cases}
        replies = sip.send_many(list(requests.values()), timeout=60)
    for case in all_cases:
        reply = replies[requests[case.name].call_id]
        assert reply.status == 200, f"{case.name}: {reply.status} {reply.reason}"
        count = sum(step.reports for step in case.steps)
        outcomes[case.name, "c.cfg"] = [
            (_int(reply.header(f"X-Rc-{n}")),
             base64.b64decode(reply.header(f"X-Res-{n}") or "").decode("utf-8", "replace"))
            for n in range(1, count + 1)]

    apis = ("c.kemi", "kamhttp.kemi", "kamhttp.cfg")
    with SipClient(python.sip_port) as sip:
        requests = {c.name: sip.build(body=json.dumps(
            {"steps": [s.probe(api) for api in apis for s in c.steps]})) for c in both}
        replies = sip.send_many(list(requests.values()), timeout=90)
    kamhttp_failure = None
    for case in both:
        reply = replies[requests[case.name].call_id]
        assert reply.status == 200, f"{case.name}: {reply.body!r}"
        kamhttp_failure = reply.json().get("kamhttp_failure")
        results = iter(reply.json()["steps"])
        for api in apis:
            got = []
            for step in case.steps:
                result = next(results)
                if "error" in result:
                    got.append(("error", result["error"]))
                elif step.pv:
                    got.append(("pv", result["value"]))
                elif step.reports:
                    got.append((result["rc"], result["read"][RES]))
            outcomes[case.name, api] = got
    yield Runs(all_cases, outcomes, native, python, kamhttp_failure, where / "native.cfg")


def _int(text: str | None) -> object:
    return int(text) if text and re.fullmatch(r"-?\d+", text) else text


_ALL = cases(Urls("http://h:1", "https://h:2", "https://h:3", "https://h:4", "http://h:5"))
CASE_NAMES = [c.name for c in _ALL]
BOTH_NAMES = [c.name for c in _ALL if not c.refused_by_kamhttp]


def _case(runs: Runs, name: str) -> Case:
    return next(c for c in runs.cases if c.name == name)


@pytest.mark.parametrize("name", CASE_NAMES)
def test_c_module_cfg_functions(runs, name):
    """The native cfg functions of the C module give what the spec says (the baseline)."""
    case = _case(runs, name)
    assert case.normalized(runs.outcomes[name, "c.cfg"]) == case.expected("c.cfg")


@pytest.mark.parametrize("name", BOTH_NAMES)
def test_c_module_kemi(runs, name):
    case = _case(runs, name)
    assert case.normalized(runs.outcomes[name, "c.kemi"]) == case.expected("c.kemi")


@pytest.mark.parametrize("name", BOTH_NAMES)
def test_kamhttp_cfg_functions_match_c(runs, name):
    """kamhttp's cfg functions against the C cfg functions: equal, or the documented
    difference."""
    runs.require_kamhttp()
    case = _case(runs, name)
    got = case.normalized(runs.outcomes[name, "kamhttp.cfg"])
    assert got == case.expected("kamhttp.cfg")
    if case.why:
        assert got != case.expected("c.cfg"), f"no longer differs: {case.why}"
    else:
        assert got == case.normalized(runs.outcomes[name, "c.cfg"])


@pytest.mark.parametrize("name", BOTH_NAMES)
def test_kamhttp_kemi_matches_c(runs, name):
    runs.require_kamhttp()
    case = _case(runs, name)
    got = case.normalized(runs.outcomes[name, "kamhttp.kemi"])
    assert got == case.expected("kamhttp.kemi")
    if case.why:
        assert got != case.expected("c.kemi"), f"no longer differs: {case.why}"
    else:
        assert got == case.normalized(runs.outcomes[name, "c.kemi"])


def test_kamhttp_refuses_at_load(runs):
    """What the C module accepts and fails per request, kamhttp refuses when it loads the
    same cfg: ``python -m kamhttp check`` exits 1 naming the connection."""
    refused = [c for c in runs.cases if c.refused_by_kamhttp]
    assert refused
    done = subprocess.run([sys.executable, "-m", "kamhttp", "check", str(runs.native_cfg)],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 1, done.stdout
    for case in refused:
        assert case.refused_by_kamhttp in done.stdout + done.stderr


def test_curlerror_texts_come_from_the_libcurl_in_use(runs):
    """$curlerror gives the text of the libcurl in use: the C module has Debian's 7.88,
    kamhttp pycurl's libcurl 8.x, whose wording of a few errors changed."""
    python = runs.python
    with SipClient(python.sip_port) as sip:
        steps = [{"pv": "$curlerror(7)", "via": via} for via in ("ksr", "kamhttp")]
        reply = sip.send(sip.build(body=json.dumps({"steps": steps})))
    c_text, kamhttp_text = (s["value"] for s in reply.json()["steps"])
    assert c_text == "Couldn't connect to server"  # libcurl 7.88 (spec appendix A)
    import pycurl
    assert kamhttp_text in ("Couldn't connect to server", "Could not connect to server")
    assert pycurl.version_info()[1] >= "7.88"


def test_no_python_errors(runs):
    assert runs.python.python_errors() == []
    assert "Could not set CURL options" not in runs.native.log()
