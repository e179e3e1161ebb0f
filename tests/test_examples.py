"""The KEMI examples under the testing kit, against real HTTP servers on 127.0.0.1: each
example's SIP answers, log lines and HTTP requests for its normal and failure paths."""
from __future__ import annotations

import json
import pathlib
import socket
import threading
import urllib.parse

import pytest

from kamhttp.core.curlerror import curl_strerror
from kamhttp.testing.demo import RoutingApi
from kamhttp.testing import run_script, sipmsg
from tests import servers

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "kemi_examples"


@pytest.fixture
def refused_url():
    """A loopback URL where nothing listens (the port was bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


class App:
    """A tests.servers app from a function (request -> Response), recording what it saw."""

    def __init__(self, answer):
        self.answer = answer
        self.seen: list[servers.Request] = []
        self.lock = threading.Lock()

    def respond(self, request: servers.Request) -> servers.Response:
        with self.lock:
            self.seen.append(request)
        return self.answer(request)


@pytest.fixture
def serve():
    """serve(answer, h2c=False) -> a started server with that app; all stopped afterwards."""
    started = []

    def start(answer, h2c: bool = False):
        server = servers.HttpServer(h2c=h2c)
        server.app = App(answer)
        started.append(server.start())
        return server
    yield start
    for server in started:
        server.stop()


def text(status: int, body: str = "", headers: tuple = ()) -> servers.Response:
    return servers.Response(status, (("Content-Type", "text/plain"), *headers), body.encode())


# ---------------------------------------------------------------------------------------------
# (a) routing lookup

ROUTING = EXAMPLES / "routing_lookup.py"


@pytest.fixture
def routing_apis():
    with RoutingApi("primary") as primary, RoutingApi("backup") as backup:
        yield primary, backup


def routing_env(primary: str, backup: str, timeout_ms: int = 1000) -> dict[str, str]:
    return {"ROUTING_API": primary, "ROUTING_API_BACKUP": backup,
            "ROUTING_API_TIMEOUT_MS": str(timeout_ms)}


def test_routing_found_relays_to_the_target(routing_apis):
    primary, backup = routing_apis
    invite = sipmsg.invite("sip:+4930123456@example.com", from_uri="sip:alice@example.com")
    t = run_script(ROUTING, [invite, sipmsg.options()], env=routing_env(primary.url, backup.url))
    assert t.ok
    found = t[0]
    assert found.relay.ruri == "sip:+4930123456@gw-berlin.example.net:5060"
    assert found.pvs["$ru"] == found.relay.ruri and found.reply is None
    assert [(c.method, c.url, c.status, c.connection) for c in found.http] == [
        ("POST", primary.url + "/route", 200, "routing")]
    assert [(r.method, r.path, r.status, r.callee) for r in primary.requests] == [
        ("POST", "/v1/route", 200, "+4930123456")]
    assert backup.requests == []
    assert t[1].reply.code == 200 and t[1].http == []          # OPTIONS: no lookup


def test_routing_not_found_replies_404_without_failover(routing_apis):
    primary, backup = routing_apis
    t = run_script(ROUTING, [sipmsg.invite("sip:+4971100000@example.com")],
                   env=routing_env(primary.url, backup.url))
    assert (t[0].reply.code, t[0].reply.reason, t[0].relays) == (404, "Not Found", [])
    assert "routing: no route for +4971100000" in t[0].log_text("INFO")
    assert backup.requests == []


def test_routing_fails_over_when_the_primary_is_down(routing_apis, refused_url):
    _, backup = routing_apis
    t = run_script(ROUTING, [sipmsg.invite("sip:+4940987654@example.com")],
                   env=routing_env(refused_url, backup.url))
    result = t[0]
    assert result.relay.ruri == "sip:+4940987654@gw-hamburg.example.net:5060"
    assert [(c.connection, c.status, c.curl_code) for c in result.http] == [
        ("routing", None, 7), ("routing_backup", 200, 0)]
    assert "FATAL FAILURE: Trying failover to curl con (routing_backup)" in \
        result.log_text("ERROR")


def test_routing_replies_503_with_the_curl_error_when_both_apis_fail(refused_url):
    t = run_script(ROUTING, [sipmsg.invite("sip:+4930123456@example.com")],
                   env=routing_env(refused_url, refused_url))
    assert t[0].reply.code == 503 and t[0].relays == []
    assert f"routing: API unavailable for +4930123456: {curl_strerror(7)}" in \
        t[0].log_text("ERROR")


def test_routing_timeout_is_a_503(routing_apis):
    primary, backup = routing_apis
    t = run_script(ROUTING, [sipmsg.invite("sip:+4989000000@example.com")],
                   env=routing_env(primary.url, backup.url, timeout_ms=200))
    assert t[0].reply.code == 503
    assert [c.curl_code for c in t[0].http] == [28, 28]
    assert f"API unavailable for +4989000000: {curl_strerror(28)}" in t[0].log_text("ERROR")


def test_routing_in_forked_workers(routing_apis):
    primary, backup = routing_apis
    invites = [sipmsg.invite(f"sip:{n}@example.com")
               for n in ("+4930123456", "+4940987654", "+4930123456", "+4971100000")]
    t = run_script(ROUTING, invites, children=2, env=routing_env(primary.url, backup.url))
    assert t.ok and [m.rank for m in t] == [1, 2, 1, 2]
    assert [m.relay.ruri if m.relay else m.reply.code for m in t] == [
        "sip:+4930123456@gw-berlin.example.net:5060",
        "sip:+4940987654@gw-hamburg.example.net:5060",
        "sip:+4930123456@gw-berlin.example.net:5060", 404]
    assert len(primary.requests) == 4


# ---------------------------------------------------------------------------------------------
# (b) authorization

AUTHORIZATION = EXAMPLES / "authorization.py"


def verdicts(request: servers.Request) -> servers.Response:
    path, _, query = request.path.partition("?")
    args = dict(part.split("=", 1) for part in query.split("&"))
    callee = urllib.parse.unquote(args["callee"])          # "+" stays a plus
    if path != "/v1/authorize":
        return text(404, "no such endpoint\n")
    if callee.startswith("sip:+1900"):
        return text(403, "deny\npremium-rate numbers are barred\n")
    return text(200, "allow\nmore lines are ignored\n")


def test_authorization_sends_escaped_caller_and_callee(serve):
    server = serve(verdicts)
    invite = sipmsg.invite("sip:+4930123456@example.com;user=phone",
                           from_uri="sip:alice@atlanta.example.com")
    t = run_script(AUTHORIZATION, [invite], env={"AUTH_API": server.url + "/v1"})
    assert t.ok and t[0].relay.ruri == "sip:+4930123456@example.com;user=phone"
    (request,) = server.app.seen
    assert request.method == "GET"
    assert request.path == ("/v1/authorize?caller=sip:alice%40atlanta.example.com"
                            "&callee=sip:+4930123456%40example.com%3buser%3dphone")
    assert t[0].pvs["$var(verdict)"] == "allow"              # query_result 1: first line


def test_authorization_denies_with_403(serve):
    server = serve(verdicts)
    t = run_script(AUTHORIZATION, [sipmsg.invite("sip:+19005550100@example.com"),
                                   sipmsg.message("sip:+19005550100@example.com", "hi")],
                   env={"AUTH_API": server.url + "/v1"})
    assert [(m.reply.code, m.reply.reason) for m in t] == [(403, "Forbidden")] * 2
    assert "may not call sip:+19005550100@example.com" in t[0].log_text("INFO")
    assert [m.relays for m in t] == [[], []]


def test_authorization_fails_closed_and_logs_the_curl_error(refused_url):
    t = run_script(AUTHORIZATION, [sipmsg.invite(), sipmsg.options()],
                   env={"AUTH_API": refused_url})
    assert t[0].reply.code == 503 and t[0].relays == []
    assert f"authorization: API unreachable: {curl_strerror(7)} (curl error 7)" in \
        t[0].log_text("ERROR")
    assert t[1].relay is not None and t[1].http == []          # OPTIONS is not checked


# ---------------------------------------------------------------------------------------------
# (c) CDR events over a kept-alive connection

CDR = EXAMPLES / "cdr_poster.py"


def cdr_config(tmp_path: pathlib.Path, base_url: str) -> str:
    config = tmp_path / "cdr.yaml"
    config.write_text("modparams:\n  - connection_timeout: 2\n  - keep_connections: 1\n"
                      f"  - httpcon: \"cdr=>{base_url}\"\n")
    return str(config)


def test_cdr_events_share_one_connection(serve, tmp_path):
    server = serve(lambda request: text(202))
    invite = sipmsg.invite("sip:bob@example.com", call_id="call-1@test")
    bye = sipmsg.request("BYE", "sip:bob@192.0.2.5", call_id="call-1@test", cseq=2)
    messages = [invite, sipmsg.reply(invite, 180, "Ringing"), sipmsg.reply(invite, 200, "OK"),
                bye]
    config = cdr_config(tmp_path, server.url + "/v1")
    t = run_script(CDR, messages, env={"CDR_POSTER_CONFIG": config})
    assert t.ok
    events = [json.loads(r.body) for r in server.app.seen]
    assert [(e["event"], e["call_id"]) for e in events] == [
        ("call-attempt", "call-1@test"), ("call-answered", "call-1@test"),
        ("call-ended", "call-1@test")]
    assert {r.path for r in server.app.seen} == {"/v1/events"}
    assert {r.header("Content-Type") for r in server.app.seen} == {"application/json"}
    assert len({r.client_port for r in server.app.seen}) == 1    # keep_connections 1
    assert [bool(m.relay) for m in t] == [True, False, False, True]


def test_cdr_failure_never_blocks_the_call(tmp_path, refused_url):
    invite = sipmsg.invite()
    t = run_script(CDR, [invite], env={"CDR_POSTER_CONFIG": cdr_config(tmp_path, refused_url)})
    assert t[0].relay is not None
    assert f"cdr: call-attempt event for {invite.call_id} not recorded: {curl_strerror(7)}" \
        in t[0].log_text("WARNING")


def test_cdr_default_config_file_is_valid():
    import kamhttp
    kamhttp.reset()
    try:
        configuration = kamhttp.load_config(EXAMPLES / "cdr_poster.yaml")
        assert configuration.connections["cdr"].keep_connections == 1
    finally:
        kamhttp.reset()


# ---------------------------------------------------------------------------------------------
# (d) rate limit from response headers, over HTTP/2 with prior knowledge

RATE_LIMIT = EXAMPLES / "rate_limit.py"


def limits(budget: int):
    left = {"alice": budget}

    def answer(request: servers.Request) -> servers.Response:
        user = urllib.parse.unquote(request.path.rsplit("/", 1)[-1])
        remaining = left.get(user, 0)
        if remaining <= 0:
            return text(429, "slow down\n", (("Retry-After", "17"),))
        left[user] = remaining - 1
        return text(200, "ok\n", (("X-RateLimit-Remaining", str(remaining - 1)),))
    return answer


def test_rate_limit_from_response_headers_over_h2(serve):
    server = serve(limits(budget=2), h2c=True)
    messages = [sipmsg.invite(from_uri="sip:alice@example.com") for _ in range(3)]
    t = run_script(RATE_LIMIT, messages, env={"RATE_API": server.url + "/v1"})
    assert t.ok
    assert [bool(m.relay) for m in t] == [True, True, False]
    assert [m.pvs["$var(rl_remaining)"] for m in t] == ["1", "0", "0"]
    refused = t[2].reply
    assert (refused.code, refused.reason, refused.headers) == \
        (503, "Rate Limit Exceeded", ["Retry-After: 17"])
    assert {r.http_version for r in server.app.seen} == {"2"}
    assert [r.path for r in server.app.seen] == ["/v1/limits/alice"] * 3


def test_rate_limit_fails_open(refused_url):
    t = run_script(RATE_LIMIT, [sipmsg.message()], env={"RATE_API": refused_url})
    assert t[0].relay is not None and t[0].reply is None
    assert f"API unreachable ({curl_strerror(7)}), letting alice through" in \
        t[0].log_text("WARNING")


# ---------------------------------------------------------------------------------------------
# (e) the migration pair: native KSR.http_client and kamhttp, side by side

NATIVE = EXAMPLES / "migration_native.py"
PORTED = EXAMPLES / "migration_kamhttp.py"


def portability(request: servers.Request) -> servers.Response:
    number = request.path.rsplit("/", 1)[-1]
    if number == "+4930111111":
        return text(200, "D123+4930999999\n")
    return text(404, "not ported\n")


@pytest.fixture
def lnp_cfg(tmp_path, serve):
    server = serve(portability)
    cfg = tmp_path / "kamailio.cfg"
    cfg.write_text('loadmodule "http_client.so"\n'
                   f'modparam("http_client", "httpcon", "lnp=>{server.url}/v1")\n')
    return cfg, server


def test_migration_pair_behaves_the_same(lnp_cfg):
    cfg, server = lnp_cfg
    calls = [sipmsg.invite("sip:+4930111111@example.com"),
             sipmsg.invite("sip:+4930222222@example.com"), sipmsg.options()]
    native = run_script(NATIVE, calls, kamailio_cfg=cfg)
    ported = run_script(PORTED, calls, env={"MIGRATION_KAMAILIO_CFG": str(cfg)})
    assert native.ok and ported.ok
    assert [m.relay.ruri for m in native] == ["sip:D123+4930999999@example.com",
                                              "sip:+4930222222@example.com",
                                              "sip:example.com"]
    for a, b in zip(native, ported):
        assert (a.relay.ruri, a.replies, a.logs, a.pvs) == (b.relay.ruri, b.replies, b.logs,
                                                             b.pvs)
    assert [r.path for r in server.app.seen] == ["/v1/lnp/+4930111111",
                                                 "/v1/lnp/+4930222222"] * 2


def test_migration_pair_reports_curl_errors_alike(tmp_path, refused_url):
    cfg = tmp_path / "kamailio.cfg"
    cfg.write_text(f'modparam("http_client", "httpcon", "lnp=>{refused_url}")\n')
    calls = [sipmsg.invite("sip:+4930111111@example.com")]
    native = run_script(NATIVE, calls, kamailio_cfg=cfg)
    ported = run_script(PORTED, calls, env={"MIGRATION_KAMAILIO_CFG": str(cfg)})
    expected = f"lnp: lookup of +4930111111 failed: {curl_strerror(7)}"
    assert expected in native[0].log_text("ERROR") and expected in ported[0].log_text("ERROR")
    assert native[0].relay.ruri == ported[0].relay.ruri == "sip:+4930111111@example.com"


def test_native_script_without_the_c_module_names_what_is_missing():
    t = run_script(NATIVE, [sipmsg.invite()])
    assert t[0].outcome == "error"
    assert "KSR.http_client is not emulated by kamhttp.testing (load it: kamhttp.install(KSR)" \
        in t[0].error
