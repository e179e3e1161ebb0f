"""Number portability, moved from the C http_client module to kamhttp.

The migration pair: migration_native.py and migration_kamhttp.py hold the same logic and
differ only in how they reach http_client (diff them).  The connection lines stay in
kamailio.cfg, read by kamhttp.load_kamailio_cfg(); only the "loadmodule" line goes:

    modparam("http_client", "httpcon", "lnp=>http://127.0.0.1:8005/v1")

Configuration: MIGRATION_KAMAILIO_CFG names that kamailio.cfg (environment of the Kamailio
process), default /etc/kamailio/kamailio.cfg.

The API: GET <lnp base>/lnp/<number>; 200 with the routing number (a ported number), 404 when
the number is not ported.  A ported call gets that number as its Request-URI user; every call
is relayed.  When the API fails the call is relayed unchanged and the curl error is logged.
"""
import os

import KSR
import kamhttp


def mod_init():
    kamhttp.load_kamailio_cfg(os.environ.get("MIGRATION_KAMAILIO_CFG",
                                             "/etc/kamailio/kamailio.cfg"))
    kamhttp.install(KSR)                            # KSR.http_client = kamhttp's
    return kamailio()


def curlerror(rc):
    return kamhttp.pv.get("$curlerror(%d)" % rc)   # kamhttp's PVs are read through kamhttp.pv


class kamailio:
    def child_init(self, rank):
        return 0

    def ksr_onsend_route(self, msg):
        # app_python3 calls it for each request it relays (kemi.onsend_route_callback)
        return 1

    def ksr_request_route(self, msg):
        if KSR.is_INVITE():
            number = KSR.pv.get("$rU")
            rc = KSR.http_client.curl_connect("lnp", "/lnp/" + number, "$var(lnp)")
            if rc == 200:
                routing_number = KSR.pv.get("$var(lnp)").strip()
                KSR.info("lnp: %s is ported, routing number %s\n" % (number, routing_number))
                KSR.pv.sets("$rU", routing_number)
            elif rc == 404:
                KSR.info("lnp: %s is not ported\n" % number)
            elif 0 < rc < 100:
                KSR.err("lnp: lookup of %s failed: %s\n" % (number, curlerror(rc)))
            else:
                KSR.err("lnp: lookup of %s failed: HTTP status %d\n" % (number, rc))
        KSR.tm.t_relay()
        return 1
