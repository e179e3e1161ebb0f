"""The import path without kamhttp: app_python3's embedded Debian python3.11 imports pycurl
from the venv's site-packages (PYTHONPATH) and fetches the URL a SIP request names in X-Url.
The reply carries the HTTP status (X-Http-Code), the body and the worker's PID."""
import io
import os
import sys

import KSR
import pycurl


def mod_init():
    KSR.info("bare_pycurl mod_init pid=%d python=%s pycurl=%s\n"
             % (os.getpid(), sys.version.split()[0], pycurl.__file__))
    return BarePycurl()


class BarePycurl:
    def child_init(self, rank):
        KSR.info("bare_pycurl child_init rank=%d pid=%d\n" % (rank, os.getpid()))
        return 0

    def ksr_request_route(self, msg):
        if KSR.is_OPTIONS():
            KSR.sl.sl_send_reply(200, "Ready")
            return 1
        body = io.BytesIO()
        curl = pycurl.Curl()
        try:
            curl.setopt(pycurl.URL, KSR.hdr.get("X-Url"))
            curl.setopt(pycurl.WRITEDATA, body)
            curl.setopt(pycurl.TIMEOUT, 5)
            curl.perform()
            code = curl.getinfo(pycurl.RESPONSE_CODE)
        except pycurl.error as exc:
            code = exc.args[0]
        finally:
            curl.close()
        KSR.hdr.append_to_reply("X-Http-Code: %d\r\nX-Pid: %d\r\nX-Python: %s\r\n"
                                % (code, os.getpid(), sys.version.split()[0]))
        KSR.textops.set_reply_body(body.getvalue().decode("utf-8", "replace"), "text/plain")
        KSR.sl.sl_send_reply(200, "OK")
        return 1
