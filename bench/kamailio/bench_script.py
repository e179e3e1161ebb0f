"""KEMI routing script of the SIP benchmark (app_python3): one HTTP call per SIP request, then
a stateless 200 (500 when the call did not return HTTP 200). bench/sip.py picks the call
through the environment:

BENCH_MODE   none | pycurl | kamhttp:<function>  (see CALLS below)
BENCH_URL    the URL of the direct functions and of bare pycurl
BENCH_CON    the httpcon value of the connection "bench"
BENCH_KEEP   keep_connections (0 or 1)
BENCH_CAFILE the CA file (HTTPS)
BENCH_BIND   lambda (default: each call through two lambdas, as the recorded runs) or partial
             (a functools.partial of kamhttp's function: the request route calls kamhttp
             directly, as bare pycurl's one Python function)
"""
import functools
import io
import os

import KSR

MODE = os.environ.get("BENCH_MODE", "none")
URL = os.environ.get("BENCH_URL", "")
RESULT = "$var(res)"

# kamhttp's function of each mode, with the arguments the C module's cfg would pass
ARGS = {
    "http_connect": ("http_connect", ("bench", "/ok", RESULT)),
    "curl_connect": ("http_client.curl_connect", ("bench", "/ok", RESULT)),
    "curl_connect_post": ("http_client.curl_connect_post",
                          ("bench", "/ok", "text/plain", "hello", RESULT)),
    "http_client_query": ("http_client_query", (URL, RESULT)),
    "query": ("http_client.query", (URL, RESULT)),
    "query_post": ("http_client.query_post", (URL, "hello", RESULT)),
    "get_hdrs": ("http_client.get_hdrs", (URL, "", "X-Bench: 1", RESULT)),
}
CALLS = {
    "http_connect": lambda k: k.http_connect("bench", "/ok", RESULT),
    "curl_connect": lambda k: k.http_client.curl_connect("bench", "/ok", RESULT),
    "curl_connect_post": lambda k: k.http_client.curl_connect_post(
        "bench", "/ok", "text/plain", "hello", RESULT),
    "http_client_query": lambda k: k.http_client_query(URL, RESULT),
    "query": lambda k: k.http_client.query(URL, RESULT),
    "query_post": lambda k: k.http_client.query_post(URL, "hello", RESULT),
    "get_hdrs": lambda k: k.http_client.get_hdrs(URL, "", "X-Bench: 1", RESULT),
}


def mod_init():
    """Runs before the fork: kamhttp's configuration, as a ported script would do it."""
    if MODE.startswith("kamhttp:"):
        import kamhttp

        kamhttp.modparam("keep_connections", int(os.environ.get("BENCH_KEEP", "0")))
        if os.environ.get("BENCH_CAFILE"):
            kamhttp.modparam("cacert", os.environ["BENCH_CAFILE"])
        kamhttp.modparam("httpcon", os.environ["BENCH_CON"])
    return kamailio()


class kamailio:
    def __init__(self):
        self.call = None

    def child_init(self, rank):
        if MODE == "pycurl":
            self.call = bare_pycurl()
        elif MODE.startswith("kamhttp:"):
            import kamhttp

            name = MODE.split(":", 1)[1]
            if os.environ.get("BENCH_BIND", "lambda") == "partial":
                path, args = ARGS[name]
                target = kamhttp
                for part in path.split("."):
                    target = getattr(target, part)
                self.call = functools.partial(target, *args)
            else:
                function = CALLS[name]
                self.call = lambda: function(kamhttp)
        return 0

    def ksr_request_route(self, msg):
        if self.call is not None and self.call() != 200:
            KSR.sl.sl_send_reply(500, "HTTP call failed")
            return 1
        KSR.sl.sl_send_reply(200, "OK")
        return 1


def bare_pycurl():
    """The floor: one reused pycurl handle in this worker, the body written to $var(res)."""
    import pycurl

    handle = pycurl.Curl()
    handle.setopt(pycurl.NOSIGNAL, 1)
    if os.environ.get("BENCH_CAFILE"):
        handle.setopt(pycurl.CAINFO, os.environ["BENCH_CAFILE"])

    def call():
        buf = io.BytesIO()
        handle.setopt(pycurl.URL, URL)
        handle.setopt(pycurl.WRITEDATA, buf)
        try:
            handle.perform()
        except pycurl.error as exc:
            return exc.args[0]
        KSR.pv.sets(RESULT, buf.getvalue().decode("utf-8", "replace"))
        return handle.getinfo(pycurl.RESPONSE_CODE)
    return call
