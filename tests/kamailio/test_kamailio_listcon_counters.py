"""What an operator sees, side by side: the C module's RPC ``httpclient.listcon`` and counters
(``cnt.grp_get_all httpclient``) against ``python -m kamhttp listcon FILE`` and
``python -m kamhttp counters --pid MAINPID``, after the same requests through both modules in
the same workers (kamailio-cfg/kamailio-c.cfg)."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
from typing import Iterator

import pytest

from .kamharness import ROOT, SipClient, free_port, side_by_side_cfg

RES = "$var(res)"


def block(http_url: str, dead_url: str, config_file: str) -> str:
    lines = [
        ("connection_timeout", 3),
        ("httpcon", f"one=>{http_url}/code;timeout=1"),
        ("httpcon", f"two=>{dead_url};failover=one"),
        ("httpcon", f"three=>{http_url}"),
        ("config_file", config_file),
    ]
    return "\n".join(f'modparam("http_client", "{name}", '
                     f'{value if isinstance(value, int) else json.dumps(value)})'
                     for name, value in lines)


@pytest.fixture(scope="module")
def side_by_side(start_kamailio, tmp_path_factory, http_server) -> Iterator[tuple]:
    where = tmp_path_factory.mktemp("operator")
    dead = f"http://127.0.0.1:{free_port(socket.SOCK_STREAM)}"
    config_file = where / "http_client.cfg"
    config_file.write_text(f"[filea]\nurl = {http_server.url}/code\n\n"
                           f"[fileb]\nurl = {http_server.url}\ntimeout = 2\n")
    cfg = where / "kamailio-c.cfg"
    cfg.write_text(side_by_side_cfg(block(http_server.url, dead, str(config_file))))
    kamailio = start_kamailio(cfg=cfg, script="probe.py", modules=("http_client",),
                              env={"PROBE_BACKENDS": "c,kamhttp",
                                   "PROBE_KAMHTTP_CONFIG": str(cfg)})
    yield kamailio, cfg, dead


def kamhttp_cli(*args: str) -> object:
    done = subprocess.run([sys.executable, "-m", "kamhttp", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout, object_pairs_hook=_pairs)


def _pairs(pairs):
    keys = [k for k, _ in pairs]
    return dict(pairs) if len(set(keys)) == len(keys) else pairs


def _members(listed) -> list[dict]:
    """The CONNECTION members, whether the object repeats the key (as the C module's RPC
    does), holds a list, or the whole answer is a list."""
    if isinstance(listed, list) and listed and isinstance(listed[0], tuple):
        return [value for _, value in listed]
    if isinstance(listed, dict):
        listed = listed["CONNECTION"]
    return listed if isinstance(listed, list) else [listed]


def test_listcon_matches_the_c_module(side_by_side):
    kamailio, cfg, dead = side_by_side
    c_listed = _members(kamailio.rpc("httpclient.listcon"))
    kamhttp_listed = _members(kamhttp_cli("listcon", str(cfg)))
    assert [c["NAME"] for c in c_listed] == ["filea", "fileb", "three", "two", "one"]
    assert kamhttp_listed == c_listed
    two = c_listed[3]
    assert two == {"NAME": "two", "SCHEMA": "http", "URI": dead[len("http://"):],
                   "USERNAME": None, "PASSWORD": None, "FAILOVER": "one", "TIMEOUT": 3}


def test_counters_match_the_c_module(side_by_side, http_server):
    """The same calls through KSR.http_client (C) and kamhttp.http_client, spread over the
    workers; connok counts exactly-200 attempts, connfail the others and curl errors, a
    failover counts both attempts (spec 7.2)."""
    kamailio, _cfg, dead = side_by_side
    plan = ([("curl_connect", "one", "/200")] * 20 + [("curl_connect", "one", "/201")] * 10
            + [("curl_connect", "one", "/404")] * 10 + [("curl_connect", "three", "/code/503")] * 5
            + [("curl_connect", "two", "/200")] * 5 + [("query", f"{dead}/", None)] * 5
            + [("curl_connect", "filea", "/200")] * 5)
    with SipClient(kamailio.sip_port) as sip:
        requests = []
        for fn, first, second in plan:
            args = [first, second, RES] if second is not None else [first, RES]
            requests.append(sip.build(body=json.dumps({"steps": [
                {"call": api, "fn": fn, "args": args, "read": [RES]}
                for api in ("ksr.kemi", "kamhttp.kemi")]})))
        replies = sip.send_many(requests, timeout=60, retransmit=True)
    pids = set()
    for request in requests:
        answer = replies[request.call_id].json()
        c_step, kamhttp_step = answer["steps"]
        assert "error" not in kamhttp_step, kamhttp_step.get("error")
        assert (c_step["rc"], c_step["read"]) == (kamhttp_step["rc"], kamhttp_step["read"])
        pids.add(answer["pid"])
    assert len(pids) > 1

    c_counters = kamailio.rpc("cnt.grp_get_all", "httpclient")
    kamhttp_counters = kamhttp_cli("counters", "--pid", str(kamailio.pid))
    assert c_counters == {"connections": 3, "connfail": 35, "connok": 30}
    assert {k: kamhttp_counters[k] for k in ("connok", "connfail")} == {"connok": 30,
                                                                         "connfail": 35}
    # documented: "the number of connection definitions that are in-memory"; the C module
    # leaves out the config_file connections [B15]
    assert kamhttp_counters["connections"] == 5
