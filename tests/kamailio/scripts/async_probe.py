"""A KEMI script for the real-Kamailio tests of kamhttp's asynchronous functions.

Each SIP MESSAGE carries JSON ``{"fn": NAME, "args": [...], "api": "kemi"|"cfg",
"chain": {...}}``: the request route calls ``kamhttp.http_client.NAME(*args, "done")`` (or the
module-level cfg function) and returns when it suspended; else it answers 500 with the return
code.  ``done`` (in kamhttp's HTTP process, the transaction's AVPs restored) answers 200 with
what the sync call would have given: the return code, the result PV, and the pids involved.
With ``chain`` it makes a second asynchronous call from the resume method first.
OPTIONS is answered at once by the SIP worker (no HTTP at all).  ``PROBE_KAMHTTP_CONFIG``
names a YAML file for kamhttp.load_config.
"""
import json
import os
import traceback

import KSR

import kamhttp


def mod_init():
    kamhttp.load_config(os.environ["PROBE_KAMHTTP_CONFIG"])
    kamhttp.install(KSR)
    return Handler()


class Handler(kamhttp.AsyncHandler):
    def child_init(self, rank):
        return 0

    def ksr_request_route(self, msg):
        if KSR.is_OPTIONS():
            KSR.sl.sl_send_reply(200, "Ready")
            return 1
        if KSR.tm.t_newtran() != 1:     # a retransmission, absorbed by its transaction
            return 1
        try:
            spec = json.loads(KSR.pv.get("$rb") or "{}")
            KSR.pv.sets("$avp(worker)", str(os.getpid()))
            if "chain" in spec:
                KSR.pv.sets("$avp(chain)", json.dumps(spec["chain"]))
            rc = self.call(spec, "done")
        except Exception:
            return self.reply(500, "Probe Error", {"error": traceback.format_exc()})
        if rc == 0:
            return 1                     # suspended: done() answers
        if spec["fn"].startswith("send"):
            return self.reply(200, "Sent", {"rc": rc})
        return self.reply(500, "Not Suspended", {"rc": rc})

    @staticmethod
    def call(spec, resume):
        args = list(spec["args"])
        if "repeat" in spec:             # {"repeat": [i, n]}: args[i] becomes n bytes of "x"
            index, size = spec["repeat"]
            args[index] = "x" * size
        if spec.get("api", "kemi") == "cfg":
            return getattr(kamhttp, spec["fn"])(*args, resume)
        if spec["fn"].startswith("send"):
            return getattr(kamhttp.http_client, spec["fn"])(*args)
        return getattr(kamhttp.http_client, spec["fn"])(*args, resume)

    def done(self, msg, *args):
        result = kamhttp.async_result()
        answer = {"code": result.code, "status": result.status,
                  "curl_code": result.curl_code, "curl_error": result.curl_error,
                  "dpv": KSR.pv.get("$avp(res)"), "worker": KSR.pv.get("$avp(worker)"),
                  "resumed_in": os.getpid(), "timings": sorted(result.timings)}
        chain = KSR.pv.get("$avp(chain)")
        if chain:
            KSR.pv.unset("$avp(chain)")
            KSR.pv.sets("$avp(first)", json.dumps(answer))
            rc = self.call(json.loads(chain), "chained")
            if rc == 0:
                return 1
            answer["chain_rc"] = rc
        return self.reply(200, "OK", answer)

    def chained(self, msg, *args):
        result = kamhttp.async_result()
        answer = {"first": json.loads(KSR.pv.get("$avp(first)")), "code": result.code,
                  "dpv": KSR.pv.get("$avp(res)"), "resumed_in": os.getpid()}
        return self.reply(200, "OK", answer)

    @staticmethod
    def reply(code, reason, body):
        KSR.textops.set_reply_body(json.dumps(body), "application/json")
        KSR.tm.t_reply(code, reason)
        return 1
