"""The KEMI examples, unchanged, inside a real Kamailio (kamailio-cfg/kamailio.cfg, and
kamailio-c.cfg for the C side of the migration pair): SIP requests in, HTTP APIs on 127.0.0.1
asked, requests relayed to a SIP user agent server (SipUas) or answered by the script.

The fake APIs are those of tests/test_examples.py (the same examples under the testing kit),
so both runs hold the examples to the same contract."""
from __future__ import annotations

import json
import time
import urllib.parse
from typing import Callable, Iterator

import pytest

from kamhttp.testing.demo import RoutingApi
from tests import servers
from tests.test_examples import App, limits, portability, text, verdicts

from .kamharness import ROOT, SipClient, SipUas, side_by_side_cfg

EXAMPLES = ROOT / "kemi_examples"


@pytest.fixture
def uas() -> Iterator[SipUas]:
    with SipUas() as agent:
        yield agent


@pytest.fixture
def serve() -> Iterator[Callable[..., servers.HttpServer]]:
    """serve(answer, h2c=False): an HTTP server answering with ``answer(request)``."""
    started = []

    def start(answer, h2c: bool = False) -> servers.HttpServer:
        server = servers.HttpServer(h2c=h2c)
        server.app = App(answer)
        started.append(server.start())
        return server
    yield start
    for server in started:
        server.stop()


def relayed_to(reply) -> str | None:
    """The Request-URI with which the request reached the UAS (None: it did not)."""
    return reply.header("X-Uas-Ruri")


def test_routing_lookup(start_kamailio, uas):
    """kamailio.cfg's default script: lookup, relay to the target, 404, failover, timeouts."""
    routes = {"+4930123456": uas.uri("berlin-gw"), "+4940987654": uas.uri("hamburg-gw")}
    with RoutingApi("primary", routes) as primary, RoutingApi("backup", routes) as backup:
        kamailio = start_kamailio(script=EXAMPLES / "routing_lookup.py", env={
            "ROUTING_API": primary.url, "ROUTING_API_BACKUP": backup.url,
            "ROUTING_API_TIMEOUT_MS": "1000"})
        with SipClient(kamailio.sip_port) as sip:
            numbers = ["+4930123456", "+4940987654", "+4971100000"] * 12
            invites = [sip.build("INVITE", user=n) for n in numbers]
            replies = sip.send_many(invites, timeout=30)
            got = [(replies[i.call_id].status, relayed_to(replies[i.call_id])) for i in invites]
            assert got == [(486, uas.uri("berlin-gw")), (486, uas.uri("hamburg-gw")),
                           (404, None)] * 12
            assert len(primary.requests) == 36 and backup.requests == []

            started = time.monotonic()
            slow = sip.send(sip.build("INVITE", user="+4989000000"))  # both APIs too slow
            assert slow.status == 503
            assert time.monotonic() - started < 2 * 1 + 2  # two attempts of 1 s, bounded

            primary.stop()
            failover = sip.send(sip.build("INVITE", user="+4930123456"))
            assert (failover.status, relayed_to(failover)) == (486, uas.uri("berlin-gw"))
            assert [r.callee for r in backup.requests][-1] == "+4930123456"
            assert sip.send(sip.build("OPTIONS")).status == 200
    assert "FATAL FAILURE: Trying failover to curl con (routing_backup)" in kamailio.log()
    assert kamailio.python_errors() == []


def test_authorization(start_kamailio, uas, serve):
    api = serve(verdicts)
    kamailio = start_kamailio(script=EXAMPLES / "authorization.py",
                              env={"AUTH_API": api.url + "/v1"}, ready="rpc")
    with SipClient(kamailio.sip_port) as sip:
        allowed = sip.send(sip.build("INVITE", uri=uas.uri("+4930123456"),
                                     from_user="alice"))
        denied = sip.send(sip.build("MESSAGE", uri=uas.uri("+19005550100"), body="hi",
                                    content_type="text/plain"))
    assert (allowed.status, relayed_to(allowed)) == (486, uas.uri("+4930123456"))
    assert (denied.status, denied.reason) == (403, "Forbidden")
    paths = [urllib.parse.unquote(r.path) for r in api.app.seen]
    assert paths[0].startswith("/v1/authorize?caller=sip:alice@127.0.0.1&callee=sip:+4930123456")
    assert kamailio.python_errors() == []


def test_cdr_poster_keeps_one_connection_per_worker(start_kamailio, uas, serve, tmp_path):
    api = serve(lambda request: text(202))
    config = tmp_path / "cdr.yaml"
    config.write_text("modparams:\n  - connection_timeout: 2\n  - keep_connections: 1\n"
                      f'  - httpcon: "cdr=>{api.url}/v1"\n')
    kamailio = start_kamailio(script=EXAMPLES / "cdr_poster.py",
                              env={"CDR_POSTER_CONFIG": str(config)}, ready="rpc",
                              defines={"KEMI_REPLY_ROUTE": "ksr_reply_route"})
    with SipClient(kamailio.sip_port) as sip:
        invites = [sip.build("INVITE", uri=uas.uri(f"bob{i}")) for i in range(32)]
        replies = sip.send_many(invites, timeout=30)
        bye = sip.send(sip.build("BYE", uri=uas.uri("bob0")))
    assert {replies[i.call_id].status for i in invites} == {486}
    assert bye.status == 200
    events = [json.loads(r.body) for r in api.app.seen]
    assert sorted(e["call_id"] for e in events if e["event"] == "call-attempt") == \
        sorted(i.call_id for i in invites)
    assert [e["event"] for e in events][-1] == "call-ended"
    # keep_connections 1: at most one connection per SIP worker (children=4)
    assert len({r.client_port for r in api.app.seen}) <= 4
    assert kamailio.python_errors() == []


def test_rate_limit_over_h2_with_response_headers(start_kamailio, uas, serve):
    api = serve(limits(budget=2), h2c=True)
    kamailio = start_kamailio(script=EXAMPLES / "rate_limit.py",
                              env={"RATE_API": api.url + "/v1"}, ready="rpc")
    with SipClient(kamailio.sip_port) as sip:
        replies = [sip.send(sip.build("MESSAGE", uri=uas.uri("bob"), from_user="alice",
                                      body="hi", content_type="text/plain"))
                   for _ in range(3)]
    assert [(r.status, relayed_to(r)) for r in replies[:2]] == [(200, uas.uri("bob"))] * 2
    assert (replies[2].status, replies[2].reason, replies[2].header("Retry-After")) == \
        (503, "Rate Limit Exceeded", "17")
    assert {r.http_version for r in api.app.seen} == {"2"}
    assert kamailio.python_errors() == []


def test_migration_pair_answers_alike(start_kamailio, uas, serve, tmp_path):
    """migration_native.py on the C module and migration_kamhttp.py on kamhttp, reading the
    same modparam line, give the same SIP answers for the same requests."""
    api = serve(portability)
    cfg = tmp_path / "kamailio-c.cfg"
    cfg.write_text(side_by_side_cfg(f'modparam("http_client", "httpcon", "lnp=>{api.url}/v1")'))
    native = start_kamailio(cfg=cfg, script=EXAMPLES / "migration_native.py",
                            modules=("http_client",), ready="rpc")
    ported = start_kamailio(script=EXAMPLES / "migration_kamhttp.py",
                            env={"MIGRATION_KAMAILIO_CFG": str(cfg)}, ready="rpc")
    outcomes = []
    for kamailio in (native, ported):
        with SipClient(kamailio.sip_port) as sip:
            replies = [sip.send(sip.build("INVITE", uri=uas.uri(n)))
                       for n in ("+4930111111", "+4930222222")]
        outcomes.append([(r.status, relayed_to(r)) for r in replies])
    assert outcomes[0] == outcomes[1] == [(486, uas.uri("D123+4930999999")),
                                          (486, uas.uri("+4930222222"))]
    for kamailio in (native, ported):
        assert "lnp: +4930111111 is ported, routing number D123+4930999999" in kamailio.log()
        assert kamailio.python_errors() == []
