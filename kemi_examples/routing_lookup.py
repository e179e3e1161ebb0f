"""Routing lookup: ask a routing API where each INVITE goes, with a backup API on failure.

Run by Kamailio's app_python3 (modparam("app_python3", "load", ".../routing_lookup.py"),
cfgengine "python") or by kamhttp's testing kit:

    python -m kamhttp run kemi_examples/routing_lookup.py --ruri sip:+4930123456@example.com

Configuration, read once in mod_init() from the environment of the Kamailio process:

    ROUTING_API             primary API base URL        default http://127.0.0.1:8000/v1
    ROUTING_API_BACKUP      backup API base URL         default http://127.0.0.1:8001/v1
    ROUTING_API_TIMEOUT_MS  whole-request timeout, ms   default 1000

The API: POST <base>/route with {"caller": ..., "callee": ..., "call_id": ...} (JSON);
200 {"target": "sip:..."} routes the call there, 404 means no route.  The connection
"routing" fails over to "routing_backup" on a transport error or an HTTP status >= 500.

SIP answers: relay to the target; 404 Not Found; 503 Service Unavailable when neither API
gave an answer (logged with the curl error text).
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
    kamhttp.modparam("keep_connections", 1)                 # reuse the API connection
    kamhttp.modparam("httpcon", "routing_backup=>" + backup)
    kamhttp.modparam("httpcon", "routing=>" + primary + ";failover=routing_backup")
    kamhttp.finalize()                                      # configuration errors show here
    return kamailio()


class kamailio:
    def child_init(self, rank):
        return 0

    def ksr_onsend_route(self, msg):
        # app_python3 calls it for each request it relays (kemi.onsend_route_callback)
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
        rc = kamhttp.http_connect_raw("routing", "/route", "application/json", query,
                                      "$var(route)")
        if rc == 200:
            try:
                target = json.loads(KSR.pv.get("$var(route)"))["target"]
            except (ValueError, KeyError, TypeError):
                KSR.err("routing: unusable answer %r\n" % KSR.pv.get("$var(route)"))
                KSR.sl.sl_send_reply(500, "Server Internal Error")
                return 1
            KSR.info("routing: %s -> %s\n" % (KSR.pv.get("$ru"), target))
            KSR.pv.sets("$ru", target)
            KSR.tm.t_relay()
        elif rc == 404:
            KSR.info("routing: no route for %s\n" % KSR.pv.get("$rU"))
            KSR.sl.sl_send_reply(404, "Not Found")
        else:
            if 0 < rc < 100:
                reason = kamhttp.pv.get("$curlerror(%d)" % rc)     # e.g. "Timeout was reached"
            elif rc < 0:
                reason = "no request made (see the error above)"
            else:
                reason = "HTTP status %d" % rc
            KSR.err("routing: API unavailable for %s: %s\n" % (KSR.pv.get("$rU"), reason))
            KSR.sl.sl_send_reply(503, "Service Unavailable")
        return 1
