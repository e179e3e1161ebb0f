"""kamhttp.testing: run a KEMI routing script without Kamailio.

* :mod:`.sipmsg` - SIP messages parsed from text, or built (``invite``, ``register``,
  ``options``, ``message``, ``reply``).
* :mod:`.ksr` - the emulated ``KSR`` module a script imports (pseudo-variables, headers,
  replies, relaying, logging), with app_python3's ``msg`` object.
* :mod:`.runner` - loads a script like app_python3 and returns a :class:`Transcript` of what
  it did: replies, relays, logs, HTTP calls, pseudo-variables.
* :mod:`.httpproc`, :mod:`.transactions` - asynchronous scripts (``kamhttp.AsyncHandler``):
  kamhttp's real HTTP process, forked as Kamailio's evrexec would, continues the suspended
  transactions; each message's result gets its :class:`Resumption` (the resume method's
  reply, relay, logs) and the HTTP calls made for it.

    from kamhttp.testing import run_script, sipmsg
    t = run_script("routing.py", [sipmsg.invite("sip:+4930123@example.com")],
                   env={"ROUTING_API": "http://127.0.0.1:8080/v1"})
    assert t[0].reply.code == 404
"""
from . import sipmsg
from .ksr import Emulator
from .runner import Session, run_script
from .sipmsg import SipMessage, invite, message, options, parse, register, reply, request
from .transcript import (HttpCall, LogLine, MessageResult, ProcessRecord, Relay, Reply,
                         Resumption, Transcript)

__all__ = ["sipmsg", "Emulator", "Session", "run_script", "SipMessage", "invite", "message",
           "options", "parse", "register", "reply", "request", "HttpCall", "LogLine",
           "MessageResult", "ProcessRecord", "Relay", "Reply", "Resumption", "Transcript"]
