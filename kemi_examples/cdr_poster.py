"""CDR events: post call events to an accounting API over one kept-alive connection.

Run by Kamailio's app_python3 or by the testing kit (``python -m kamhttp run``).

Configuration: a YAML file read once in mod_init(), by default cdr_poster.yaml next to this
script; the environment variable CDR_POSTER_CONFIG names another one.  It defines the
connection "cdr" with keep_connections 1, so every worker keeps its connection to the API
open and reuses it for each event instead of connecting again.

Events, POSTed as JSON to <cdr base URL>/events:

    INVITE        {"event": "call-attempt", ...}   then relayed
    200 to INVITE {"event": "call-answered", ...}  (ksr_reply_route)
    BYE           {"event": "call-ended", ...}     then relayed

Posting never blocks a call: if the API fails, a warning with the curl error text is logged
and the request is relayed all the same.  The KEMI names of the C module are used
(KSR.http_client.curl_connect_post), installed by kamhttp.install(KSR).
"""
import json
import os
import time

import KSR
import kamhttp

HERE = os.path.dirname(os.path.abspath(__file__))


def mod_init():
    kamhttp.load_config(os.environ.get("CDR_POSTER_CONFIG",
                                       os.path.join(HERE, "cdr_poster.yaml")))
    kamhttp.install(KSR)                            # KSR.http_client = kamhttp's
    return kamailio()


def post_event(event):
    document = {"event": event, "call_id": KSR.pv.get("$ci"), "from": KSR.pv.get("$fu"),
                "to": KSR.pv.get("$tu"), "time": int(time.time())}
    rc = KSR.http_client.curl_connect_post("cdr", "/events", "application/json",
                                           json.dumps(document), "$var(cdr_answer)")
    if rc in (200, 201, 202, 204):
        return
    if 0 < rc < 100:
        problem = kamhttp.pv.get("$curlerror(%d)" % rc)
    else:
        problem = "HTTP status %d" % rc
    KSR.warn("cdr: %s event for %s not recorded: %s\n" % (event, KSR.pv.get("$ci"), problem))


class kamailio:
    def child_init(self, rank):
        return 0

    def ksr_onsend_route(self, msg):
        # app_python3 calls it for each request it relays (kemi.onsend_route_callback)
        return 1

    def ksr_request_route(self, msg):
        if KSR.is_INVITE():
            post_event("call-attempt")
        elif KSR.is_BYE():
            post_event("call-ended")
        KSR.tm.t_relay()
        return 1

    def ksr_reply_route(self, msg):
        if KSR.pv.get("$rs") == 200 and KSR.pv.get("$rm") == "INVITE":
            post_event("call-answered")
        return 1
