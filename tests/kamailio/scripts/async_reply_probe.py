"""A KEMI script for the real-Kamailio tests of kamhttp's asynchronous functions called in a
tm onreply route (issue 12: "async calls work where tm allows a suspend outside the request
route too").

OPTIONS to Kamailio itself are answered at once (the harness's readiness check).  Any other
request carries JSON ``{"fn": NAME, "args": [...], "on": [STATUS, ...], "chain": {...}}`` in
its body and is relayed (``t_relay``) to its Request-URI, a SIP UAS of the test, with the tm
onreply route ``reply_http`` set by ``KSR.tm.t_on_reply``.  For a reply whose status is in
``on`` (default [200]), ``reply_http`` (in the SIP worker that received the reply) appends
``X-Before-Suspend`` and calls ``kamhttp.http_client.NAME(*args, "reply_done")``; on a return
code other than 0 (nothing suspended) it appends ``X-Async-Rc`` and the reply goes on as
usual.  ``reply_done`` (in kamhttp's HTTP process, through tm's t_continue of the suspended
reply) appends what the resume saw as X-Http-* / X-Resume-* headers to the reply, which tm
then relays to the caller.  With ``chain`` it first makes a second asynchronous call from the
resume method, resumed in ``chained``.  With ``"guard": true`` the onreply route calls only
once per transaction (a transaction AVP): a retransmitted reply (an INVITE's 2xx) that comes
while the first is suspended is left alone.  ``ksr_reply_route`` is the core onreply route,
for a cfg run with -A KEMI_REPLY_ROUTE="ksr_reply_route".

Every route logs one line (``kamhttp-probe EVENT call=CALL-ID key=value...``) for the test
to count.  ``PROBE_KAMHTTP_CONFIG`` names a YAML file for kamhttp.load_config.
"""
import json
import os

import KSR

import kamhttp


def mod_init():
    kamhttp.load_config(os.environ["PROBE_KAMHTTP_CONFIG"])
    kamhttp.install(KSR)
    return Handler()


def note(event, **fields):
    """One log line for the test: ``kamhttp-probe EVENT call=... pid=... k=v ...``."""
    words = " ".join(f"{key}={value}" for key, value in fields.items())
    KSR.info(f"kamhttp-probe {event} call={KSR.pv.get('$ci')} pid={os.getpid()} {words}\n")


def route_type():
    if KSR.tmx.t_is_reply_route() > 0:
        return "reply"
    if KSR.tmx.t_is_failure_route() > 0:
        return "failure"
    if KSR.tmx.t_is_request_route() > 0:
        return "request"
    return "other"


def header(name, value):
    KSR.hdr.append(f"{name}: {value}\r\n")


class Handler(kamhttp.AsyncHandler):
    def child_init(self, rank):
        return 0

    def ksr_request_route(self, msg):
        if KSR.is_OPTIONS() and KSR.pv.get("$rU") == "probe":
            KSR.sl.sl_send_reply(200, "Ready")
            return 1
        if KSR.is_ACK():                 # of a negative reply: tm absorbs it
            KSR.tm.t_check_trans()
            return 1
        if KSR.tm.t_newtran() != 1:      # a retransmission, absorbed by its transaction
            return 1
        KSR.pv.sets("$avp(spec)", KSR.pv.get("$rb") or "{}")
        note("request", method=KSR.pv.get("$rm"))
        KSR.tm.t_on_reply("reply_http")
        if KSR.tm.t_relay() < 0:
            KSR.tm.t_reply(500, "Relay Failed")
        return 1

    def reply_http(self, msg, *args):
        """The tm onreply route of the relayed request (in the SIP worker)."""
        status = int(KSR.pv.get("$rs"))
        spec = json.loads(KSR.pv.get("$avp(spec)") or "{}")
        if status not in spec.get("on", [200]):
            note("reply-passed", status=status)
            return 1
        if spec.get("guard"):            # a retransmission of a reply already suspended
            if KSR.pv.get("$avp(asked)"):   # (the transaction's AVPs; tm's reply lock
                note("reply-again", status=status)  # serialises its onreply routes)
                return 1
            KSR.pv.sets("$avp(asked)", "1")
        KSR.pv.sets("$avp(suspended_in)", str(os.getpid()))
        KSR.pv.sets("$avp(reply_route)", route_type())
        if "chain" in spec:
            KSR.pv.sets("$avp(chain)", json.dumps(spec["chain"]))
        header("X-Before-Suspend", "yes")
        rc = self.call(spec, "reply_done")
        note("reply-route", status=status, rc=rc, index=KSR.pv.get("$T(id_index)"),
             label=KSR.pv.get("$T(id_label)"), route=route_type())
        if rc != 0:                      # nothing suspended: the reply is relayed now
            header("X-Async-Rc", rc)
        return 1

    def ksr_reply_route(self, msg):
        """The core onreply route (kemi.reply_route_callback="ksr_reply_route"), run for
        every reply before tm matches it to its transaction: for a final reply to a
        request for user "core", the async call is tried there."""
        if KSR.pv.get("$tU") != "core" or int(KSR.pv.get("$rs")) < 200:
            return 1
        rc = kamhttp.http_client.async_curl_connect("api", "/code/200?body=core", "$avp(res)",
                                                    "reply_done")
        note("core-reply-route", rc=rc, index=KSR.pv.get("$T(id_index)"))
        if rc != 0:
            header("X-Async-Rc", rc)
        return 1

    @staticmethod
    def call(spec, resume):
        return getattr(kamhttp.http_client, spec["fn"])(*spec["args"], resume)

    def reply_done(self, msg, *args):
        """Run by t_continue in kamhttp's HTTP process, on the suspended reply."""
        result = kamhttp.async_result()
        note("resumed", status=KSR.pv.get("$rs"), code=result.code, route=route_type(),
             index=KSR.pv.get("$T(id_index)"), label=KSR.pv.get("$T(id_label)"))
        chain = KSR.pv.get("$avp(chain)")
        if chain:
            KSR.pv.unset("$avp(chain)")
            KSR.pv.sets("$avp(first)", f"{result.code} {KSR.pv.get('$avp(res)')}")
            rc = self.call(json.loads(chain), "chained")
            note("chain", rc=rc)
            if rc == 0:
                return 1                 # suspended again: chained() goes on
            header("X-Chain-Rc", rc)
        self.describe(result)
        return 1

    def chained(self, msg, *args):
        result = kamhttp.async_result()
        note("chained", status=KSR.pv.get("$rs"), code=result.code, route=route_type())
        header("X-Http-First", KSR.pv.get("$avp(first)"))
        self.describe(result)
        return 1

    @staticmethod
    def describe(result):
        header("X-Http-Code", result.code)
        header("X-Http-Body", KSR.pv.get("$avp(res)"))
        header("X-Reply-Status", KSR.pv.get("$rs"))
        header("X-Suspended-In", KSR.pv.get("$avp(suspended_in)"))
        header("X-Suspend-Route", KSR.pv.get("$avp(reply_route)"))
        header("X-Resumed-In", os.getpid())
        header("X-Resume-Route", route_type())
