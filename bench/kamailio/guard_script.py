"""KEMI routing script of the outage-guard benchmark (bench/guard.py; app_python3, run by
kamailio-cfg/kamailio.cfg with -A KEMI_SCRIPT=... -A KAMHTTP_NO_ASYNC): every SIP request
makes one call of the connection "api" through the C module's KEMI name, and is answered
200 whatever the call gave ("OK" when the API answered HTTP 200, "fallback" otherwise, as a
script with a default route would do).

Environment (read in mod_init, before the fork):
GUARD_MODE   http (default): the HTTP call; none: no HTTP call (the floor: what the same
             Kamailio answers without an API)
GUARD_CON    the httpcon value of "api" (timeout=1, and the breaker keys when the guard is on)
GUARD_PATH   the path of the call (default /ok)
GUARD_TRACE  a directory: each worker appends one line per request to trace-<pid>.txt,
             "<start> <end> <rc> <breaker state after the call>" (wall clock, s); unset in
             the CPU runs, so that they measure the call alone
"""
import os
import time

import KSR

MODE = os.environ.get("GUARD_MODE", "http")
PATH = os.environ.get("GUARD_PATH", "/ok")
TRACE = os.environ.get("GUARD_TRACE", "")
RESULT = "$var(r)"
kamhttp = None


def mod_init():
    global kamhttp
    if MODE == "http":
        import kamhttp as module

        module.modparam("keep_connections", 1)
        module.modparam("httpcon", os.environ["GUARD_CON"])
        module.install(KSR)            # KSR.http_client = kamhttp.http_client
        module.finalize()
        kamhttp = module
    return kamailio()


class kamailio:
    def __init__(self):
        self.trace = -1

    def child_init(self, rank):
        if TRACE and rank > 0:
            self.trace = os.open(os.path.join(TRACE, "trace-%d.txt" % os.getpid()),
                                 os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        return 0

    def ksr_request_route(self, msg):
        start = time.time() if self.trace >= 0 else 0.0
        if MODE == "http":
            rc = KSR.http_client.curl_connect("api", PATH, RESULT)
        else:
            rc = 200
        if rc == 200:
            KSR.sl.sl_send_reply(200, "OK")
        else:
            KSR.sl.sl_send_reply(200, "fallback")
        if self.trace >= 0:
            state = kamhttp.pv.get("$httpbreaker(api)") if kamhttp is not None else ""
            os.write(self.trace, ("%.6f %.6f %d %s\n" % (start, time.time(), rc,
                                                         state or "-")).encode())
        return 1
