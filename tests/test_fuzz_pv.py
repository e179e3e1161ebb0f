"""Property tests of the PV-name parser (kamhttp/pv.py): whatever text a script or a response
hands it, the parser answers or raises PVError - nothing else - and what it answers is
consistent.  Names reach it from result arguments (checked before any request), cfg strings
(PV expansion of url/data/hdrs/method) and kamhttp.pv.get.

300 examples per target in CI (derandomized); KAMHTTP_LONG=1 runs 100,000 per target.
Half the inputs are arbitrary text, half are built from the grammar's own fragments, so that
the generator reaches nesting, indexes, transformations and kamhttp's own PVs.
"""
from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kamhttp
from kamhttp.core import headers
from kamhttp import pv
from kamhttp.core.curlerror import BAD_CODE, BREAKER_TEXT, HTTP_CODE, curl_strerror
from kamhttp.errors import PVError

EXAMPLES = 100_000 if os.environ.get("KAMHTTP_LONG") == "1" else 300
BOUNDED = settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES < 1000,
                   suppress_health_check=[HealthCheck.too_slow], database=None)

FRAGMENTS = ("$", "$$", "$(", "(", ")", "[", "]", "{", "}", "var", "avp", "xavp", "shv", "sht",
             "ru", "rU", "rm", "si", "curlerror", "httprhdr", "curlredirect", "s:", "i:", "=>",
             ".", "_", "-1", "12abc", "100", "7", " ", "\t", "\n", "\r", "\x00", "é", "€",
             "s.len", "s.escape.param", ",", "*", "-", "x", "X-Rate")
GRAMMAR = st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=2), max_size=30).map("".join)
TEXT = st.one_of(st.text(max_size=200), GRAMMAR)
NAMES = st.one_of(st.text(max_size=100), GRAMMAR, GRAMMAR.map(lambda g: "$" + g),
                  st.builds(lambda cls, inner: f"${cls}({inner})",
                            st.sampled_from(("var", "avp", "curlerror", "httprhdr", "rm")),
                            GRAMMAR))


def _parts_are_consistent(text: str, parts: tuple) -> None:
    for part in parts:
        if isinstance(part, str):
            assert part == "$" or "$" not in part     # a literal runs up to the next "$"
            assert part == "$" or part in text
        else:
            assert part.text in text and part.text.startswith("$")
            assert pv.parse_name(part.text) == part   # a PV parses alone to itself


@BOUNDED
@given(name=NAMES)
def test_parse_name_answers_or_raises_pverror(name):
    try:
        spec = pv.parse_name(name)
    except PVError as err:
        assert str(err)
        return
    assert spec.text == name
    assert spec.cls and (spec.inner is None or spec.inner)
    assert pv.parse_name(spec.text) == spec


@BOUNDED
@given(text=TEXT)
def test_template_answers_or_raises_pverror(text):
    try:
        parts = pv.template(text)
    except PVError as err:
        assert str(err)
        return
    _parts_are_consistent(text, parts)


@BOUNDED
@given(text=TEXT)
def test_expand_gives_text_or_pverror(text):
    pv.clear_fallback()
    try:
        value = pv.expand(text)
    except PVError:
        return
    assert isinstance(value, str)
    if "$" not in text:
        assert value == text


@BOUNDED
@given(name=st.one_of(NAMES, st.none(), st.integers(), st.binary(max_size=20),
                      st.lists(st.text(max_size=3), max_size=2)))
def test_writable_error_never_raises(name):
    error = pv.writable_error(name)
    assert error is None or (isinstance(error, str) and error)
    if error is None:
        assert pv.parse_name(name).cls in pv.WRITABLE
        # Kamailio takes C strings: a NUL would cut the name, CR/LF split a log line
        assert not any(ch in name for ch in "\x00\r\n")


@BOUNDED
@given(inner=st.one_of(st.text(max_size=30), GRAMMAR))
def test_curlerror_of_any_name_is_a_known_text(inner):
    try:
        value = pv.get(f"$curlerror({inner})")
    except PVError:
        return      # e.g. unbalanced parentheses: not one PV
    assert value in {BAD_CODE, BREAKER_TEXT, HTTP_CODE} | {curl_strerror(n) for n in range(100)}


@BOUNDED
@given(name=st.one_of(st.text(max_size=30), GRAMMAR),
       lines=st.lists(st.binary(max_size=40), max_size=8))
def test_header_lookup_never_raises(name, lines):
    value = headers.value(lines, name)
    assert value is None or isinstance(value, str)


@BOUNDED
@given(name=NAMES)
def test_result_name_through_a_function_gives_a_code(name):
    """The KEMI query checks its result name before any request: -1 for a name it refuses,
    else the request runs (a refused port: curl 7) and the result is written."""
    pv.clear_fallback()
    rc = kamhttp.http_client.query("http://127.0.0.1:1/", name)
    assert rc == (7 if pv.writable_error(name) is None else -1)
