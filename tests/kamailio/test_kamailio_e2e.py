"""kamhttp end to end in a real Kamailio: kamailio-cfg/kamailio.cfg (app_python3, no C module)
runs tests/kamailio/scripts/probe.py, configured from a YAML file by ``kamhttp.load_config``.
Each test sends SIP requests and asserts on the replies, which carry every call's return code
and result as the worker saw them. The C module has no counterpart on 5.6.3 for
http_client_request, v2pk, response headers or $curlredirect, so their values come from the
documentation and the spec (master)."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.parse

import pytest

from tests import servers

from .kamharness import ROOT, Kamailio, SipClient, free_port

RES = "$var(res)"


def call(api: str, fn: str, *args: str) -> dict:
    return {"call": api, "fn": fn, "args": list(args), "read": [RES]}


def cfg(fn: str, *args: str) -> dict:
    return call("kamhttp.cfg", fn, *args)


def kemi(fn: str, *args: str) -> dict:
    return call("kamhttp.kemi", fn, *args)


def pv(name: str) -> dict:
    return {"pv": name, "via": "kamhttp"}


def q(text: str) -> str:
    return urllib.parse.quote(text, safe="")


class Probe:
    """A Kamailio running probe.py, and the servers its connections point at."""

    def __init__(self, kamailio: Kamailio, urls: dict[str, str], yaml_path) -> None:
        self.kamailio = kamailio
        self.urls = urls
        self.yaml_path = yaml_path

    def run(self, *steps: dict, timeout: float = 30) -> list[dict]:
        """The results of ``steps``, run in one worker, in order."""
        with SipClient(self.kamailio.sip_port) as sip:
            reply = sip.send(sip.build(body=json.dumps({"steps": list(steps)})), timeout)
        assert reply.status == 200, reply.body
        answer = reply.json()
        assert "kamhttp_failure" not in answer, answer["kamhttp_failure"]
        for result in answer["steps"]:
            assert "error" not in result, result["error"]
        return answer["steps"]

    def outcomes(self, *steps: dict) -> list[tuple]:
        """(rc, result) per call step, the value per PV step."""
        return [(r["rc"], r["read"][RES]) if "rc" in r else r.get("value")
                for r in self.run(*steps) if r]


def yaml_text(u: dict[str, str], tls: servers.TlsFiles) -> str:
    return f"""\
modparams:
  - connection_timeout: 2
  - cacert: {json.dumps(tls.ca_file)}
  - keep_connections: 1
  - httpcon: "api=>{u['http']}"
  - httpcon: "primary=>{u['dead']};failover=backup"
  - httpcon: "follow=>{u['http']};httpredirect=1"
  - httpcon: "tls=>{u['https']}"
connections:
  backup:
    url: {u['http']}/code
    timeout: 2
  slow:
    url: {u['http']}
    timeout: 1
  clientcert:
    url: {u['client_cert']}
    client_cert: {json.dumps(tls.client_cert)}
    client_key: {json.dumps(tls.client_key)}
"""


@pytest.fixture(scope="module")
def probe(start_kamailio, tmp_path_factory, http_server, https_server, h2c_server,
          https_client_cert_server, tls_files) -> Probe:
    urls = {"http": http_server.url, "https": https_server.url, "h2c": h2c_server.url,
            "client_cert": https_client_cert_server.url,
            "dead": f"http://127.0.0.1:{free_port(socket.SOCK_STREAM)}"}
    path = tmp_path_factory.mktemp("e2e") / "http_client.yaml"
    path.write_text(yaml_text(urls, tls_files))
    kamailio = start_kamailio(script="probe.py", env={"PROBE_KAMHTTP_CONFIG": str(path),
                                                      "PROBE_INSTALL": "1"})
    return Probe(kamailio, urls, path)


def test_connection_functions(probe):
    h = probe.urls["http"]
    final = f"/redirect/302?to={q('/code/200?body=final')}"
    assert probe.outcomes(
        cfg("http_connect", "api", "/code/200?body=got", RES),
        cfg("http_connect", "api", "/code/404?body=nf", RES),
        cfg("http_connect", "api", "/code/503?body=gone", RES),
        cfg("http_connect", "nosuch", "/", RES),
        cfg("http_connect", "follow", final, RES),
        cfg("http_get_redirect", "follow", RES),
        pv("$curlredirect"),
    ) == [(200, "got"), (404, "nf"), (503, ""), (-1, ""), (200, "final"),
          (1, f"{h}/code/200?body=final"), f"{h}/code/200?body=final"]


def test_post_functions_and_pv_expansion(probe):
    results = probe.run(
        {"set": "$var(who)", "value": "alice"},
        cfg("http_connect", "api", "/echo", "application/json", '{"user": "$var(who)"}', RES),
        cfg("http_connect_raw", "api", "/echo", "text/plain", "raw $var(who)", RES),
        kemi("curl_connect_post", "api", "/echo", "text/plain", "kemi $var(who)", RES),
    )
    bodies = [(r["rc"], json.loads(r["read"][RES])) for r in results if "rc" in r]
    assert [(rc, doc["method"], doc["body"]) for rc, doc in bodies] == [
        (200, "POST", '{"user": "alice"}'), (200, "POST", "raw $var(who)"),
        (200, "POST", "kemi $var(who)")]
    content_types = [dict((k.lower(), v) for k, v in doc["headers"])["content-type"]
                     for _, doc in bodies]
    assert content_types == ["application/json", "text/plain", "text/plain"]


def test_direct_url_functions(probe):
    h = probe.urls["http"]
    assert probe.outcomes(
        cfg("http_client_query", f"{h}/code/200?body=one%0Atwo", RES),
        cfg("http_client_query", f"{h}/code/201?body=posted", "a=1", RES),
        cfg("http_client_query", f"{h}/code/202?body=hdrs", "a=1", "X-A: 1", RES),
        cfg("http_client_get", f"{h}/code/200?body=got", "", "X-Token: abc", RES),
        cfg("http_client_request", "DELETE", f"{h}/code/204", "", "", RES),
        cfg("http_client_request", "", f"{h}/code/200", "", "", RES),
        kemi("query", f"{h}/code/200?body=kemi", RES),
        kemi("query_request", "", f"{h}/code/200?body=chosen", "", "", RES),
    ) == [(200, "one"), (201, "posted"), (202, "hdrs"), (200, "got"), (204, ""),
          (-1, "<unset>"), (200, "kemi"), (200, "chosen")]


def test_request_method_and_http2_prior_knowledge(probe):
    h, h2c = probe.urls["http"], probe.urls["h2c"]
    results = probe.run(
        cfg("http_client_request", "PUT", f"{h}/echo", "data", "Content-Type: text/plain", RES),
        cfg("http_client_request_v2pk", "GET", f"{h2c}/echo", "", "", RES),
        kemi("query_request_v2pk", "POST", f"{h2c}/echo", "b=2", "", RES),
    )
    docs = [(r["rc"], json.loads(r["read"][RES])) for r in results]
    assert [(rc, d["method"], d["body"], d["http_version"]) for rc, d in docs] == [
        (200, "PUT", "data", "1.1"), (200, "GET", "", "2"), (200, "POST", "b=2", "2")]


def test_failover_to_a_yaml_connection(probe):
    assert probe.outcomes(
        cfg("http_connect", "primary", "/200?body=from-backup", RES),
        kemi("curl_connect", "primary", "/503", RES),
    ) == [(200, "from-backup"), (503, "")]


def test_timeout_is_bounded(probe):
    """A connection timeout of 1 s ends a 5 s answer with curl 28, within timeout + 2 s; the
    direct functions use connection_timeout (2 s)."""
    h = probe.urls["http"]
    results = probe.run(cfg("http_connect", "slow", "/slow?delay=5&body=late", RES),
                        cfg("http_client_query", f"{h}/slow?delay=5&body=late", RES))
    assert [(r["rc"], r["read"][RES]) for r in results] == [(28, ""), (28, "")]
    assert results[0]["elapsed"] < 1 + 2
    assert results[1]["elapsed"] < 2 + 2


def test_tls_server_and_client_certificates(probe, https_client_cert_server, tls_files):
    https_client_cert_server.clear()
    assert probe.outcomes(
        cfg("http_connect", "tls", "/code/200?body=secure", RES),
        cfg("http_client_query", f"{probe.urls['https']}/code/200?body=direct", RES),
        cfg("http_connect", "clientcert", "/code/200?body=mutual", RES),
    ) == [(200, "secure"), (200, "direct"), (200, "mutual")]
    assert [r.client_cert_subject for r in https_client_cert_server.requests] == [
        tls_files.client_subject]


def test_response_headers(probe):
    """$httprhdr: captured while enabled in this process, case-insensitive, the last of a
    repeated header, $null when absent or cleared (spec 9.2)."""
    h = probe.urls["http"]
    url = f"{h}/code/200?body=h&hdr={q('X-Rate: 42')}&hdr={q('X-Dup: 1')}&hdr={q('X-Dup: 2')}"
    assert probe.outcomes(
        cfg("http_client_response_headers_set", "1"),
        cfg("http_client_query", url, RES),
        pv("$httprhdr(X-Rate)"), pv("$httprhdr(x-rate)"), pv("$httprhdr(X-Dup)"),
        pv("$httprhdr(X-Absent)"),
        cfg("http_client_response_headers_clear"),
        pv("$httprhdr(X-Rate)"),
        kemi("response_headers_set", 1),
        kemi("curl_connect", "api", "/code/200?body=c&hdr=X-Conn:%20yes", RES),
        pv("$httprhdr(X-Conn)"),
        kemi("response_headers_set", 0),
        pv("$httprhdr(X-Conn)"),
    ) == [(1, "<unset>"), (200, "h"), "42", "42", "2", None, (1, "<unset>"), None,
          (1, "<unset>"), (200, "c"), "yes", (1, "<unset>"), None]


def test_curlerror(probe):
    assert probe.outcomes(pv("$curlerror(28)"), pv("$curlerror(404)"), pv("$curlerror(-3)")) \
        == ["Timeout was reached", "HTTP result code", "Bad CURL error code"]


def test_install_makes_ksr_http_client_kamhttp(probe):
    """kamhttp.install(KSR) in mod_init: scripts written for KSR.http_client.* run unchanged
    in every worker (this Kamailio has no C http_client)."""
    with SipClient(probe.kamailio.sip_port) as sip:
        requests = [sip.build(body=json.dumps({"steps": [call(
            "ksr.kemi", "curl_connect", "api", f"/code/200?body=w{i}", RES)]}))
            for i in range(24)]
        replies = sip.send_many(requests, timeout=30)
    for i, request in enumerate(requests):
        step = replies[request.call_id].json()["steps"][0]
        assert (step.get("rc"), step.get("read", {}).get(RES)) == (200, f"w{i}"), step


def test_listcon_of_the_loaded_file(probe):
    """``python -m kamhttp listcon FILE`` on the YAML this Kamailio loaded: the listcon fields
    (spec 7.1), file-style connections first in file order, then httpcon last first."""
    done = subprocess.run([sys.executable, "-m", "kamhttp", "listcon", str(probe.yaml_path)],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)
    u = probe.urls
    names = [c["NAME"] for c in _connections(listed)]
    assert names == ["backup", "slow", "clientcert", "tls", "follow", "primary", "api"]
    primary = next(c for c in _connections(listed) if c["NAME"] == "primary")
    assert primary == {"NAME": "primary", "SCHEMA": "http", "URI": u["dead"][len("http://"):],
                       "USERNAME": None, "PASSWORD": None, "FAILOVER": "backup", "TIMEOUT": 2}


def _connections(listed) -> list[dict]:
    """listcon's members, whether printed as {"CONNECTION": [...]} or as a list."""
    if isinstance(listed, dict):
        listed = listed.get("CONNECTION", listed.get("connections", listed))
    return listed


def test_no_python_errors(probe):
    assert probe.kamailio.python_errors() == []


def test_default_user_agent_is_the_running_kamailios(probe, http_server):
    """Documentation 3.4: the useragent defaults to Kamailio's SIP useragent string, so the
    HTTP User-Agent equals the Server header of the running Kamailio's own SIP replies."""
    h = probe.urls["http"]
    steps = [kemi("query", f"{h}/echo", RES), cfg("http_connect", "api", "/echo", RES)]
    with SipClient(probe.kamailio.sip_port) as sip:
        reply = sip.send(sip.build(body=json.dumps({"steps": steps})), 30)
    server = reply.header("Server")
    assert server is not None and server.startswith("kamailio (")
    agents = [dict((k.lower(), v) for k, v in json.loads(r["read"][RES])["headers"])
              ["user-agent"] for r in reply.json()["steps"]]
    assert agents == [server, server]
