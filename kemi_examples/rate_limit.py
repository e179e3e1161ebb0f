"""Rate limit: a limits API decides from its response headers whether a caller may go on.

Run by Kamailio's app_python3 or by the testing kit (``python -m kamhttp run``).

Configuration, read once in mod_init() from the environment of the Kamailio process:

    RATE_API   the limits API base URL (HTTP/2 cleartext, prior knowledge)
               default http://127.0.0.1:8004/v1

Each INVITE and MESSAGE costs one unit: GET <base>/limits/<caller user> over HTTP/2 without
Upgrade (http_client_request_v2pk).  The API answers 200 with ``X-RateLimit-Remaining: <n>``
while the caller has units left, and 429 with ``Retry-After: <seconds>`` when not.  The
headers are read with $httprhdr (modparam response_headers 1).

SIP answers: relayed while units remain (the remaining count is kept in $var(rl_remaining) of
the worker and logged); 503 Rate Limit Exceeded with the API's Retry-After when not.  When the
API cannot be asked the request is relayed (fail open) with a warning naming the curl error.
"""
import os

import KSR
import kamhttp


def mod_init():
    kamhttp.modparam("response_headers", 1)          # keep the headers for $httprhdr
    kamhttp.modparam("timeout_mode", 2)
    kamhttp.modparam("connection_timeout", 500)      # milliseconds
    return kamailio(os.environ.get("RATE_API", "http://127.0.0.1:8004/v1"))


class kamailio:
    def __init__(self, api):
        self.url = api + "/limits/$(fU{s.escape.user})"

    def child_init(self, rank):
        return 0

    def ksr_onsend_route(self, msg):
        # app_python3 calls it for each request it relays (kemi.onsend_route_callback)
        return 1

    def ksr_request_route(self, msg):
        if not KSR.is_method_in("IM"):
            KSR.tm.t_relay()
            return 1
        rc = kamhttp.http_client_request_v2pk("GET", self.url, "", "", "$var(rl_body)")
        if rc == 429:
            retry = kamhttp.pv.get("$httprhdr(Retry-After)") or "60"
            KSR.info("rate limit: %s exceeded, retry after %s s\n" % (KSR.pv.get("$fU"), retry))
            KSR.hdr.append_to_reply("Retry-After: %s\r\n" % retry)
            KSR.sl.sl_send_reply(503, "Rate Limit Exceeded")
            return 1
        if rc == 200:
            remaining = kamhttp.pv.get("$httprhdr(X-RateLimit-Remaining)")
            KSR.pv.sets("$var(rl_remaining)", remaining or "")
            KSR.info("rate limit: %s may go on, %s left\n" % (KSR.pv.get("$fU"), remaining))
        elif 0 < rc < 100:
            KSR.warn("rate limit: API unreachable (%s), letting %s through\n"
                     % (kamhttp.pv.get("$curlerror(%d)" % rc), KSR.pv.get("$fU")))
        else:
            KSR.warn("rate limit: unexpected answer %d, letting %s through\n"
                     % (rc, KSR.pv.get("$fU")))
        KSR.tm.t_relay()
        return 1
