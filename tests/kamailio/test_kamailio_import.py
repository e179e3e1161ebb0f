"""The import path: Debian's Kamailio embeds /usr/bin/python3.11, which must find pycurl (and
kamhttp) through PYTHONPATH alone, in every worker."""
from __future__ import annotations

from .kamharness import SipClient


def test_bare_pycurl_works_in_every_worker(start_kamailio, http_server):
    kamailio = start_kamailio(script="bare_pycurl.py")
    workers = kamailio.worker_pids()
    assert len(workers) == 4, kamailio.log_tail()
    with SipClient(kamailio.sip_port) as sip:
        requests = [sip.build(headers={"X-Url": f"{http_server.url}/code/200?body=n{i}"})
                    for i in range(40)]
        replies = sip.send_many(requests, timeout=20)
    for i, request in enumerate(requests):
        reply = replies[request.call_id]
        assert (reply.status, reply.header("X-Http-Code"), reply.body) == (200, "200", f"n{i}".encode())
        assert reply.header("X-Python").startswith("3.11.")
        assert int(reply.header("X-Pid")) in workers
    assert "site-packages/pycurl" in kamailio.log()
    assert kamailio.python_errors() == []


def test_curl_error_reaches_the_reply(start_kamailio):
    kamailio = start_kamailio(script="bare_pycurl.py")
    with SipClient(kamailio.sip_port) as sip:
        reply = sip.send(sip.build(headers={"X-Url": "http://127.0.0.1:1/"}))
    assert reply.header("X-Http-Code") == "7"  # CURLE_COULDNT_CONNECT
