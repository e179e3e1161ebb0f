"""Routing lookup without blocking a SIP worker: routing_lookup.py on kamhttp's asynchronous
functions.

The request route suspends the INVITE's transaction and hands the API call to kamhttp's HTTP
process (kamailio-cfg/kamailio.cfg starts it with evrexec); the SIP worker is free at once.
When the API answers (or fails over, or times out), Kamailio runs ``route_done`` in the HTTP
process with the transaction's AVPs restored, and it relays or answers from there.

Configuration as routing_lookup.py (ROUTING_API, ROUTING_API_BACKUP, ROUTING_API_TIMEOUT_MS).
"""
import json
import os

import KSR
import kamhttp


def mod_init():
    primary = os.environ.get("ROUTING_API", "http://127.0.0.1:8000/v1")
    backup = os.environ.get("ROUTING_API_BACKUP", "http://127.0.0.1:8001/v1")
    kamhttp.modparam("timeout_mode", 2)                     # timeouts in milliseconds
    kamhttp.modparam("connection_timeout", int(os.environ.get("ROUTING_API_TIMEOUT_MS", "1000")))
    kamhttp.modparam("keep_connections", 1)
    kamhttp.modparam("httpcon", "routing_backup=>" + backup)
    kamhttp.modparam("httpcon", "routing=>" + primary + ";failover=routing_backup")
    kamhttp.finalize()
    kamhttp.install(KSR)
    return kamailio()


class kamailio(kamhttp.AsyncHandler):     # kamhttp_http_process and kamhttp_resume
    def child_init(self, rank):
        return 0

    def ksr_onsend_route(self, msg):
        return 1

    def ksr_request_route(self, msg):
        if KSR.is_OPTIONS():
            KSR.sl.sl_send_reply(200, "Keepalive")
            return 1
        if not KSR.is_INVITE():
            KSR.tm.t_relay()
            return 1
        query = json.dumps({"caller": KSR.pv.get("$fU"), "callee": KSR.pv.get("$rU"),
                            "call_id": KSR.pv.get("$ci")})
        rc = KSR.http_client.async_curl_connect_post("routing", "/route", "application/json",
                                                     query, "$avp(route)", "route_done")
        if rc == 0:
            return 1                     # suspended: route_done answers the call
        KSR.err("routing: not sent (%d)\n" % rc)           # -2 overloaded, -3 no HTTP process
        KSR.sl.sl_send_reply(503, "Service Unavailable")
        return 1

    def route_done(self, msg, *args):
        result = kamhttp.async_result()
        if result.code == 200:
            try:
                target = json.loads(KSR.pv.get("$avp(route)"))["target"]
            except (ValueError, KeyError, TypeError):
                KSR.tm.t_reply(500, "Server Internal Error")
                return 1
            KSR.pv.sets("$ru", target)
            KSR.tm.t_relay()
        elif result.code == 404:
            KSR.tm.t_reply(404, "Not Found")
        else:
            KSR.err("routing: API unavailable for %s: %s\n"
                    % (KSR.pv.get("$rU"), result.curl_error or "HTTP %d" % result.code))
            KSR.tm.t_reply(503, "Service Unavailable")
        return 1
