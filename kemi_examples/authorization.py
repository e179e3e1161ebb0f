"""Authorization: ask an API whether the caller may call the callee; 403 when it says no.

Run by Kamailio's app_python3 or by the testing kit (``python -m kamhttp run``).

Configuration, read once in mod_init() from the environment of the Kamailio process:

    AUTH_API   the API base URL   default http://127.0.0.1:8002/v1

The API: GET <base>/authorize?caller=<From URI>&callee=<Request-URI>, both escaped with
Kamailio's {s.escape.param} transformation, which escapes for SIP URI parameters: it leaves
``: / & + $ [ ]`` as they are, so the API must percent-decode without turning "+" into a
space.  The first line of the answer body is the verdict: "allow" or "deny" (status 200, or
403 for deny).

SIP answers: an allowed INVITE or MESSAGE is relayed; a denied one gets 403 Forbidden; when
the API cannot be asked (a transport failure, logged with its $curlerror text, or a status
outside 200/403) the request gets 503 Service Unavailable: fail closed.
"""
import os

import KSR
import kamhttp


def mod_init():
    kamhttp.modparam("connection_timeout", 2)       # seconds, for the direct-URL functions
    kamhttp.modparam("query_result", 1)             # the result is the first line of the body
    return kamailio(os.environ.get("AUTH_API", "http://127.0.0.1:8002/v1"))


class kamailio:
    def __init__(self, api):
        # PVs inside the URL are expanded by http_client_query at each call, as in a cfg.
        self.url = (api + "/authorize?caller=$(fu{s.escape.param})"
                    "&callee=$(ru{s.escape.param})")

    def child_init(self, rank):
        return 0

    def ksr_onsend_route(self, msg):
        # app_python3 calls it for each request it relays (kemi.onsend_route_callback)
        return 1

    def ksr_request_route(self, msg):
        if not KSR.is_method_in("IM"):                 # INVITE and MESSAGE are checked
            KSR.tm.t_relay()
            return 1
        rc = kamhttp.http_client_query(self.url, "$var(verdict)")
        verdict = KSR.pv.get("$var(verdict)")
        if rc == 200 and verdict == "allow":
            KSR.tm.t_relay()
        elif rc in (200, 403) and verdict == "deny":
            KSR.info("authorization: %s may not call %s\n"
                     % (KSR.pv.get("$fu"), KSR.pv.get("$ru")))
            KSR.sl.sl_send_reply(403, "Forbidden")
        else:
            if 0 < rc < 100:
                KSR.err("authorization: API unreachable: %s (curl error %d)\n"
                        % (kamhttp.pv.get("$curlerror(%d)" % rc), rc))
            else:
                KSR.err("authorization: unexpected answer %d %r\n" % (rc, verdict))
            KSR.sl.sl_send_reply(503, "Service Unavailable")
        return 1
