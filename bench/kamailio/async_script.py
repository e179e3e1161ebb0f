"""KEMI routing script of the asynchronous SIP benchmark (bench/async_sip.py, app_python3).

OPTIONS is answered at once by the SIP worker (no HTTP). Every other request makes one HTTP
call of BENCH_PATH on the connection "bench" (keep_connections BENCH_KEEP), as a ported
script would write it:

BENCH_MODE=sync    ``KSR.http_client.curl_connect`` in the SIP worker, then a stateless 200
                   (500 when the call did not return HTTP 200)
BENCH_MODE=async   ``KSR.http_client.async_curl_connect(..., "$avp(res)", "done")``: the
                   transaction is suspended and ``done`` answers it with ``t_reply`` in
                   kamhttp's HTTP process (200 when the result was HTTP 200, else 500);
                   nothing suspended (-1, -2, -3): a stateless 500
BENCH_CON          the httpcon value of the connection "bench"
"""
import os

import KSR

import kamhttp

MODE = os.environ.get("BENCH_MODE", "sync")
PATH = os.environ.get("BENCH_PATH", "/delay/0")


def mod_init():
    """Before the fork: kamhttp's configuration (and so its asynchronous queue)."""
    kamhttp.modparam("keep_connections", int(os.environ.get("BENCH_KEEP", "1")))
    kamhttp.modparam("httpcon", os.environ["BENCH_CON"])
    kamhttp.finalize()
    kamhttp.install(KSR)
    return kamailio()


class kamailio(kamhttp.AsyncHandler):     # kamhttp_http_process, kamhttp_resume
    def child_init(self, rank):
        return 0

    def ksr_request_route(self, msg):
        if KSR.is_OPTIONS():
            KSR.sl.sl_send_reply(200, "OK")
            return 1
        if MODE == "async":
            rc = KSR.http_client.async_curl_connect("bench", PATH, "$avp(res)", "done")
            if rc == 0:
                return 1                   # suspended: done() answers
            KSR.sl.sl_send_reply(500, "Not suspended %d" % rc)
            return 1
        if KSR.http_client.curl_connect("bench", PATH, "$var(res)") != 200:
            KSR.sl.sl_send_reply(500, "HTTP call failed")
            return 1
        KSR.sl.sl_send_reply(200, "OK")
        return 1

    def done(self, msg, *args):
        if kamhttp.async_result().code == 200:
            KSR.tm.t_reply(200, "OK")
        else:
            KSR.tm.t_reply(500, "HTTP call failed")
        return 1
