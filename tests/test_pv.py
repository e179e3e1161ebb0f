"""The pseudo-variable shim: Kamailio's PV grammar, pv_printf-style expansion, kamhttp's own
PVs ($curlerror, $curlredirect, $httprhdr lookup rules) and the hand-over to KSR (spec 9)."""
from __future__ import annotations

import logging
import sys
import types

import pytest

import kamhttp
from kamhttp.core import headers
from kamhttp import pv
from kamhttp.errors import PVError


@pytest.fixture(autouse=True)
def clean_store():
    pv.clear_fallback()
    yield
    pv.clear_fallback()


# --- grammar ----------------------------------------------------------------------------------

@pytest.mark.parametrize("text, parts", [
    ("plain", ("plain",)),
    ("a $var(x) b", ("a ", ("$var(x)", "var", "x"), " b")),
    ("$rU@$rd", (("$rU", "rU", None), "@", ("$rd", "rd", None))),
    ("$var(a(b)c)x", (("$var(a(b)c)", "var", "a(b)c"), "x")),
    ("$avp(i:1)[0]", (("$avp(i:1)", "avp", "i:1"), "[0]")),
    ("$(avp(x)[1])", (("$(avp(x)[1])", "avp", "x"),)),
    ("$(ru{s.escape.param})&f", (("$(ru{s.escape.param})", "ru", None), "&f")),
    ("$(fu{s.select,0,@} {s.len})", (("$(fu{s.select,0,@} {s.len})", "fu", None),)),
    ("cost: $$5", ("cost: ", "$", "5")),
    ("$($)", ("$",)),
    ("$curlerror(7).", (("$curlerror(7)", "curlerror", "7"), ".")),
])
def test_template(text, parts):
    assert pv.template(text) == parts


@pytest.mark.parametrize("text", ["$", "a $ b", "$(var(x)", "$var(x", "$var()", "$(avp(x)[])",
                                  "$(ru{s.len)", "$(ru x)"])
def test_template_errors_say_what_is_wrong(text):
    with pytest.raises(PVError) as err:
        pv.template(text)
    assert str(err.value)


def test_expand_fast_path_and_null():
    text = "no variables here"
    assert pv.expand(text) is text
    pv.sets("$var(a)", "A")
    assert pv.expand("[$var(a)|$var(unset)|$$]") == "[A|<null>|$]"


def test_expand_reads_kamhttp_pvs():
    assert pv.expand("e=$curlerror(-5)") == "e=Bad CURL error code"


# --- kamhttp's own PVs ------------------------------------------------------------------------

@pytest.mark.parametrize("name, text", [
    ("$curlerror(-1)", "Bad CURL error code"),
    ("$curlerror(100)", "HTTP result code"),
    ("$curlerror(1000)", "HTTP result code"),
    ("$curlerror(abc)", "No error"),            # atoi, as C
    ("$curlerror($var(rc))", "No error"),
])
def test_curlerror_fixed_texts(name, text):
    assert pv.get(name) == text


def test_curlerror_texts_come_from_libcurl():
    assert pv.get("$curlerror(28)") == "Timeout was reached"
    assert pv.get("$curlerror(12abc)") == pv.get("$curlerror(12)")
    assert pv.get("$curlerror( 47)") == "Number of redirects hit maximum amount"


def test_curlredirect_is_the_last_url_of_any_function(http_server):
    kamhttp.reset()
    assert kamhttp.http_client_query(f"{http_server.url}/redirect/301?to=/code/200",
                                     "$var(r)") == 200
    assert pv.get("$curlredirect") == f"{http_server.url}/code/200"
    assert kamhttp.http_client_query("http://127.0.0.1:1/", "$var(r)") == 7
    assert pv.get("$curlredirect") == ""


LINES = [b"HTTP/1.1 302 Found\r\n", b"Location: /next\r\n", b"X-Both: old\r\n", b"\r\n",
         b"HTTP/1.1 200 OK\r\n", b"X-Both:  new \t\r\n", b"X-Fold: a\r\n", b" continued\r\n",
         b"X-Rep: 1\r\n", b"x-rep: 2\r\n", b"X-Empty:\r\n", b"\r\n"]


@pytest.mark.parametrize("name, value", [
    ("X-Both", "new"), ("x-both", "new"), ("Location", "/next"), ("X-Rep", "2"),
    ("X-Fold", "a"), ("X-Empty", ""), ("HTTP/1.1 200 OK", None), ("continued", None),
    ("Missing", None), (" X-Rep ", "2"),
])
def test_header_lookup_rules(name, value):
    assert headers.value(LINES, name) == value


# --- result variable names --------------------------------------------------------------------

@pytest.mark.parametrize("name", ["$var(x)", "$avp(s:x)", "$(avp(x)[0])", "$xavp(r=>f)",
                                  "$shv(x)", "$ru", "$rU", "$du", "$dlg_var(k)", "$sht(t=>k)"])
def test_writable(name):
    assert pv.writable_error(name) is None


@pytest.mark.parametrize("name, why", [
    ("$rm", "not a writable"), ("$si", "not a writable"), ("$curlerror(1)", "not a writable"),
    ("$var(x", "unterminated"), ("var(x)", "not a pseudo-variable"),
    ("$var(x)$var(y)", "not one pseudo-variable"), (None, "not a pseudo-variable"),
])
def test_not_writable(name, why):
    assert why in pv.writable_error(name)


# --- inside Kamailio: KSR ---------------------------------------------------------------------

class FakeKsr(types.ModuleType):
    """The KSR surface kamhttp uses (pv and logging), recording calls."""

    def __init__(self) -> None:
        super().__init__("KSR")
        self.values: dict[str, object] = {"$rU": "alice"}
        self.logs: list[tuple[str, str]] = []
        self.pv = types.SimpleNamespace(get=self.values.get, sets=self.values.__setitem__)
        for level in ("err", "warn", "info", "dbg", "crit"):
            setattr(self, level, lambda text, level=level: self.logs.append((level, text)))


@pytest.fixture
def ksr(monkeypatch):
    fake = FakeKsr()
    monkeypatch.setitem(sys.modules, "KSR", fake)
    return fake


def test_values_go_through_ksr(ksr):
    assert pv.get("$rU") == "alice"
    assert pv.expand("sip:$rU@x") == "sip:alice@x"
    pv.sets("$var(out)", "v\x00hidden")
    assert ksr.values["$var(out)"] == "v"        # a C string ends at NUL
    assert pv.get("$curlerror(-1)") == "Bad CURL error code"   # never asked to KSR


def test_logging_goes_to_ksr(ksr):
    logging.getLogger("kamhttp.engine").error("boom %d", 7)
    logging.getLogger("kamhttp.functions").warning("careful")
    assert ksr.logs == [("err", "http_client [kamhttp.engine]: boom 7\n"),
                        ("warn", "http_client [kamhttp.functions]: careful\n")]


def test_logging_without_ksr_stays_in_python(caplog):
    assert "KSR" not in sys.modules or not hasattr(sys.modules["KSR"], "err")
    with caplog.at_level(logging.ERROR):
        logging.getLogger("kamhttp.engine").error("plain")
    assert [r.getMessage() for r in caplog.records] == ["plain"]


def test_httptime_gives_the_last_requests_timers_in_microseconds(http_server):
    kamhttp.reset()
    assert kamhttp.http_client.query(f"{http_server.url}/slow?delay=0.05", "$var(t)") == 200
    total, first, connect = (pv.get(f"$httptime({n})") for n in ("total", "firstbyte",
                                                                  "connect"))
    assert isinstance(total, int) and total >= 50_000          # the server waited 50 ms
    assert 0 < connect <= first <= total
    assert pv.get("$httptime(starttransfer)") == first        # http_async_client's name
    assert pv.get("$httptime(nosuch)") is None
