"""A KEMI script for the tests: it runs, in the worker that got the SIP request, the steps the
request carries, and answers with what they returned.

Request: a SIP MESSAGE whose body is JSON ``{"steps": [STEP, ...]}`` (or the headers of
``header_steps``). Steps:

* ``{"call": API, "fn": NAME, "args": [...], "read": ["$var(res)"]}`` — API is one of
  ``kamhttp.cfg`` (kamhttp's module-level cfg functions), ``kamhttp.kemi``
  (``kamhttp.http_client``), ``ksr.kemi`` (``KSR.http_client``: the C module's exports, or
  kamhttp's after ``kamhttp.install(KSR)``) or ``ksr.cfg`` (a cfg function of a loaded C
  module through ``msg.call_function``, at most two arguments). Every PV in ``read`` is set
  to ``"<unset>"`` before the call and read after it.
* ``{"pv": NAME, "via": "kamhttp" | "ksr"}`` — read a pseudo-variable through ``kamhttp.pv``
  or Kamailio's ``KSR.pv``.
* ``{"set": NAME, "value": TEXT}`` — ``KSR.pv.sets(NAME, TEXT)`` first (for PV expansion).

Each request is answered statefully (tm), so that a client's retransmission over UDP is
absorbed instead of running the steps twice.

Reply: 200 with a JSON body ``{"pid", "rank", "steps": [{"rc", "read": {...}, "elapsed"} |
{"value"} | {"error": traceback}]}`` (plus ``kamhttp_failure`` when kamhttp failed to load);
500 with the traceback when the request itself is malformed. With a header ``X-Expect: V``
(for SIPp, which cannot parse JSON), the reply is 500 "Mismatch" unless every PV read by
every call step equals V.

Environment (read in ``mod_init``, before the fork):
``PROBE_BACKENDS`` — comma-separated, ``kamhttp`` and/or ``c`` (default ``kamhttp``);
``PROBE_KAMHTTP_CONFIG`` — a YAML file for ``kamhttp.load_config`` or a kamailio.cfg for
``kamhttp.load_kamailio_cfg``; ``PROBE_INSTALL=1`` — ``kamhttp.install(KSR)``.
"""
import json
import os
import time
import traceback

import KSR

BACKENDS = [b for b in os.environ.get("PROBE_BACKENDS", "kamhttp").split(",") if b]
UNSET = "<unset>"
kamhttp = None
kamhttp_failure = "kamhttp is not in PROBE_BACKENDS"


def mod_init():
    global kamhttp, kamhttp_failure
    if "kamhttp" in BACKENDS:
        # A failure here is reported by every kamhttp step (the C steps still run), so that
        # a side-by-side test shows it per case instead of a Kamailio that does not start.
        try:
            import kamhttp as module
            config = os.environ.get("PROBE_KAMHTTP_CONFIG", "")
            if config.endswith((".yaml", ".yml")):
                module.load_config(config)
            elif config:
                module.load_kamailio_cfg(config)
            if os.environ.get("PROBE_INSTALL") == "1":
                module.install(KSR)
            kamhttp = module
        except Exception:
            kamhttp_failure = "kamhttp failed in mod_init:\n" + traceback.format_exc()
            KSR.err(kamhttp_failure + "\n")
    KSR.info("probe mod_init pid=%d backends=%s\n" % (os.getpid(), ",".join(BACKENDS)))
    return Probe()


class Probe:
    def __init__(self):
        self.rank = None

    def child_init(self, rank):
        self.rank = rank
        KSR.info("probe child_init rank=%d pid=%d\n" % (rank, os.getpid()))
        return 0

    def ksr_xhttp_event(self, msg, evname=None):
        """xhttp (kamailio.cfg with KAMHTTP_OPERATOR_PORT): kamhttp's operator paths."""
        if kamhttp is not None:
            kamhttp.AsyncHandler.ksr_xhttp_event(self, msg, evname)
        return 1

    def ksr_request_route(self, msg):
        if KSR.is_OPTIONS():
            KSR.sl.sl_send_reply(200, "Ready")
            return 1
        if KSR.tm.t_newtran() != 1:  # a retransmission, absorbed by its transaction
            return 1
        try:
            steps = self.header_steps() or json.loads(KSR.pv.get("$rb") or "{}")["steps"]
        except Exception:
            return self.reply(500, "Bad Probe", {"error": traceback.format_exc()})
        results = [self.run(step, msg) for step in steps]
        answer = {"pid": os.getpid(), "rank": self.rank, "steps": results}
        if "kamhttp" in BACKENDS and kamhttp is None:
            answer["kamhttp_failure"] = kamhttp_failure
        expect = KSR.hdr.get("X-Expect")
        if expect is not None and not all(
                "read" in r and all(v == expect for v in r["read"].values())
                for r in results if r):
            return self.reply(500, "Mismatch", answer)
        return self.reply(200, "OK", answer)

    @staticmethod
    def header_steps():
        """The steps of a bodiless request (SIPp scenarios cannot write JSON arrays, since
        SIPp reads [..] as keywords): X-Probe-Connection and X-Probe-Path ask for the path
        through kamhttp's cfg http_connect and then its KEMI curl_connect."""
        connection = KSR.hdr.get("X-Probe-Connection")
        path = KSR.hdr.get("X-Probe-Path")
        if connection is None or path is None:
            return None
        return [{"call": api, "fn": fn, "args": [connection, path, "$var(res)"],
                 "read": ["$var(res)"]}
                for api, fn in (("kamhttp.cfg", "http_connect"),
                                ("kamhttp.kemi", "curl_connect"))]

    def run(self, step, msg):
        try:
            if "set" in step:
                KSR.pv.sets(step["set"], step["value"])
                return {}
            if "pv" in step:
                if step.get("via", "kamhttp") == "kamhttp" and kamhttp is None:
                    raise RuntimeError(kamhttp_failure)
                reader = kamhttp.pv.get if step.get("via", "kamhttp") == "kamhttp" else KSR.pv.get
                return {"value": reader(step["pv"])}
            reads = step.get("read", [])
            for name in reads:
                KSR.pv.sets(name, UNSET)
            function = self.function(step["call"], step["fn"], msg)
            started = time.monotonic()
            rc = function(*step.get("args", []))
            elapsed = time.monotonic() - started
            return {"rc": rc, "read": {name: KSR.pv.get(name) for name in reads},
                    "elapsed": elapsed}
        except Exception:
            return {"error": traceback.format_exc()}

    @staticmethod
    def function(api, name, msg):
        if api.startswith("kamhttp") and kamhttp is None:
            raise RuntimeError(kamhttp_failure)
        if api == "kamhttp.cfg":
            return getattr(kamhttp, name)
        if api == "kamhttp.kemi":
            return getattr(kamhttp.http_client, name)
        if api == "ksr.kemi":
            return getattr(KSR.http_client, name)
        if api == "ksr.cfg":
            return lambda *args: msg.call_function(name, *args)
        raise ValueError("unknown api %r: kamhttp.cfg, kamhttp.kemi, ksr.kemi or ksr.cfg" % api)

    @staticmethod
    def reply(code, reason, body):
        KSR.textops.set_reply_body(json.dumps(body), "application/json")
        KSR.tm.t_reply(code, reason)
        return 1
