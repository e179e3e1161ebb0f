"""The pseudo-variable shim: kamhttp's own PVs, and every other PV through ``KSR.pv``.

* :func:`get` reads ``$curlerror(N)``, ``$curlredirect`` and ``$httprhdr(name)`` itself and
  hands every other name to ``KSR.pv.get``.
* :func:`sets` writes a result variable through ``KSR.pv.sets``.
* :func:`expand` evaluates a cfg-style string with PVs, as Kamailio's ``pv_printf`` does for
  the arguments the cfg functions expand.

``KSR`` is looked up at call time in ``sys.modules``: inside Kamailio it is app_python3's
module, under the testing kit its emulator.  Without any, a small in-process store stands in
(values keyed by the PV name as written).
"""
from __future__ import annotations

import sys
from typing import Any, Callable, Union

from .core import headers
from .core.curlerror import curl_strerror
from .errors import PVError
from .log import printable
from .core.state import peek

Value = Union[str, int, None]

NULL_TEXT = "<null>"
"""What pv_printf prints for a null value."""

WRITABLE = frozenset((
    "var", "vz", "vn", "avp", "xavp", "xavu", "xavi", "shv", "sht", "dlg_var", "dlg_ctx",
    "ru", "ruri", "rU", "ruri.user", "rd", "ruri.domain", "rp", "du", "duri", "fs", "br",
    "bf", "bF", "Bf", "sf", "sF", "Sf", "mf", "mF", "Mf", "fu", "from", "fU", "from.user",
    "fd", "from.domain", "fn", "tu", "to", "tU", "to.user", "td", "to.domain", "tn",
    "branch", "sbranch", "xml"))
"""PV classes with a setter in Kamailio (pv module, htable, dialog, xmlops): the only ones a
result may be written to.  Read-only ones ($rm, $si, $ci...) and unknown ones are refused."""

_CACHE_LIMIT = 4096
_fallback: dict[str, Value] = {}


# ------------------------------------------------------------------------------------------
# Parsing (the grammar of Kamailio's pv_parse_spec)
# ------------------------------------------------------------------------------------------

class Spec(tuple):
    """One parsed PV: (text as written, class name, inner name or None)."""

    __slots__ = ()

    @property
    def text(self) -> str:
        return self[0]

    @property
    def cls(self) -> str:
        return self[1]

    @property
    def inner(self) -> str | None:
        return self[2]


_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.")


def _q(text: object) -> str:
    """A quoted, log-safe rendering of a PV text in an error message."""
    return printable(repr(text))


def _balanced(text: str, p: int, open_: str, close: str, where: str) -> int:
    """Index of the ``close`` that ends the group starting at p (nesting counted)."""
    depth = 0
    n = len(text)
    while p < n:
        ch = text[p]
        if ch == close:
            if depth == 0:
                return p
            depth -= 1
        elif ch == open_:
            depth += 1
        p += 1
    raise PVError(f"unterminated {open_!r} in PV {_q(where)}: expected {close!r}")


def scan(text: str, start: int) -> tuple[Spec, int]:
    """Parse the PV that starts with the ``$`` at ``start``; return it and the end index."""
    n = len(text)
    p = start + 1
    bracketed = p < n and text[p] == "("
    if bracketed:
        p += 1
    if p < n and text[p] == "$":                      # $$ or $($): a literal "$"
        p += 1
        if bracketed:
            if p >= n or text[p] != ")":
                raise PVError(f"bad PV at {_q(text[start:p + 1])}: "
                              "expected ')' after '$($'")
            p += 1
        return Spec((text[start:p], "$", None)), p
    name_start = p
    while p < n and text[p] in _NAME_CHARS:
        p += 1
    cls = text[name_start:p]
    if not cls:
        raise PVError(f"bad PV at {_q(text[start:start + 12])}: '$' must be followed by a PV "
                      "name such as $var(x), or written '$$' for a literal '$'")
    inner = None
    if not bracketed:
        if p < n and text[p] == "(":
            end = _balanced(text, p + 1, "(", ")", text[start:])
            inner = text[p + 1:end]
            if not inner:
                raise PVError(f"PV {_q(text[start:end + 1])} has an empty name")
            p = end + 1
        return Spec((text[start:p], cls, inner)), p
    # $( class [ (inner) ] [ [index] ] [ {transformation}... ] )
    if p < n and text[p] == "(":
        end = _balanced(text, p + 1, "(", ")", text[start:])
        inner = text[p + 1:end]
        if not inner:
            raise PVError(f"PV {_q(text[start:end + 1])} has an empty name")
        p = end + 1
    if p < n and text[p] == "[":
        end = _balanced(text, p + 1, "[", "]", text[start:])
        if end == p + 1:
            raise PVError(f"PV {_q(text[start:end + 1])} has an empty index")
        p = end + 1
    while p < n and text[p] == "{":
        p = _balanced(text, p + 1, "{", "}", text[start:]) + 1
        q = p
        while q < n and text[q] in " \t":        # blanks between transformations
            q += 1
        if q < n and text[q] == "{":
            p = q
    if p >= n or text[p] != ")":
        raise PVError(f"bad PV {_q(text[start:p + 1])}: expected ')' to close '$('")
    return Spec((text[start:p + 1], cls, inner)), p + 1


def parse_name(name: str) -> Spec:
    """A whole string that must be exactly one PV (a result variable name)."""
    if not isinstance(name, str) or not name.startswith("$"):
        raise PVError(f"{_q(name)} is not a pseudo-variable name "
                      "(valid: e.g. \"$var(result)\")")
    if not name.isprintable():
        raise PVError(f"{_q(name)} contains a control character "
                      "(valid: e.g. \"$var(result)\")")
    spec, end = scan(name, 0)
    if end != len(name):
        raise PVError(f"{_q(name)} is not one pseudo-variable: text after "
                      f"{_q(spec.text)}")
    return spec


writable_checked: dict[str, str | None] = {}
"""Names writable_error() has seen: None for a writable PV, else why not.  The request path
reads it directly, so a known result name costs one dict look-up."""


def writable_error(name: Any) -> str | None:
    """None if ``name`` is a writable PV, else why not (cached per name)."""
    try:
        return writable_checked[name]
    except (KeyError, TypeError):
        pass
    try:
        spec = parse_name(name)
        error = None if spec.cls in WRITABLE else (
            f"{_q(name)} is not a writable pseudo-variable (valid: $var(x), $avp(x), "
            "$xavp(x), $shv(x), $sht(t=>k), $ru, $du and the other PVs with a setter)")
    except PVError as exc:
        error = str(exc)
    if isinstance(name, str):
        if len(writable_checked) >= _CACHE_LIMIT:
            writable_checked.clear()
        writable_checked[name] = error
    return error


# ------------------------------------------------------------------------------------------
# kamhttp's own PVs
# ------------------------------------------------------------------------------------------

def _atoi(text: str | None) -> int:
    """C atoi: optional blanks and sign, then digits; anything else stops (0 if none)."""
    s = (text or "").lstrip(" \t\n\r\f\v")
    sign = 1
    if s[:1] in ("-", "+"):
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    digits = ""
    for ch in s:
        if not ch.isdigit() or not ch.isascii():
            break
        digits += ch
    return sign * int(digits) if digits else 0


def _curlerror(inner: str | None) -> Value:
    return curl_strerror(_atoi(inner))


def _curlredirect(inner: str | None) -> Value:
    state = peek()
    return state.last_url if state is not None else ""


def _httprhdr(inner: str | None) -> Value:
    state = peek()
    if state is None or not inner:
        return None
    return headers.value(state.header_lines, inner)


def _httptime(inner: str | None) -> Value:
    """$httptime(total|dns|connect|tls|firstbyte|...): the last request's timer in
    microseconds (as http_async_client's $http_time); $null before any request."""
    state = peek()
    if state is None or state.timed is None or not inner:
        return None
    from .core.transport import timing_us
    return timing_us(state.timed, inner.strip().lower())


def _httpbreaker(inner: str | None) -> Value:
    """The outage guard's state of a connection (or of scheme://host:port): closed, open,
    half-open, or "" when it has no guard."""
    from .core import guard
    shared = guard.table()
    if shared is None or not inner:
        return ""
    return shared.state_of(guard.origin(inner) if "://" in inner else f"connection {inner}")


_OWN: dict[str, Callable[[str | None], Value]] = {
    "curlerror": _curlerror, "curlredirect": _curlredirect, "httprhdr": _httprhdr,
    "httpbreaker": _httpbreaker, "httptime": _httptime}
_OWN_PREFIXES = tuple(f"${b}{c}" for c in _OWN for b in ("", "("))


# ------------------------------------------------------------------------------------------
# The interface
# ------------------------------------------------------------------------------------------

def _ksr_get(name: str) -> Value:
    """Another module's PV: KSR.pv.get, or the in-process store when there is no KSR."""
    ksr_pv = getattr(sys.modules.get("KSR"), "pv", None)
    return _fallback.get(name) if ksr_pv is None else ksr_pv.get(name)


def _value(spec: Spec) -> Value:
    if spec.cls == "$":
        return "$"
    own = _OWN.get(spec.cls)
    if own is not None:
        return own(spec.inner)
    return _ksr_get(spec.text)


def get(name: str) -> Value:
    """The value of a PV: kamhttp's own, else KSR.pv.get (None is $null)."""
    if name.startswith(_OWN_PREFIXES):
        return _value(parse_name(name))
    return _ksr_get(name)


def sets(name: str, value: str) -> None:
    """Write a string value to a PV (the result variables).

    Kamailio takes C strings, so a value ends at its first NUL character.  KSR is looked up
    here, not through a helper: this runs once per request."""
    nul = value.find("\x00")
    if nul >= 0:
        value = value[:nul]
    ksr_pv = getattr(sys.modules.get("KSR"), "pv", None)
    if ksr_pv is None:
        _fallback[name] = value
    else:
        ksr_pv.sets(name, value)


Template = tuple["str | Spec", ...]
_templates: dict[str, Template] = {}


def template(text: str) -> Template:
    """The parsed form of a cfg string: literal str parts and Spec parts (cached)."""
    cached = _templates.get(text)
    if cached is None:
        parts: list[str | Spec] = []
        literal_start = 0
        p = text.find("$")
        while p >= 0:
            if p > literal_start:
                parts.append(text[literal_start:p])
            spec, end = scan(text, p)
            parts.append("$" if spec.cls == "$" else spec)
            literal_start = end
            p = text.find("$", end)
        if literal_start < len(text):
            parts.append(text[literal_start:])
        cached = tuple(parts)
        if len(_templates) >= _CACHE_LIMIT:
            _templates.clear()
        _templates[text] = cached
    return cached


def expand(text: str) -> str:
    """Evaluate a string with PVs like pv_printf: "$null" prints "<null>".

    Raises PVError when the string does not parse (the cfg function then returns -1)."""
    if "$" not in text:
        return text
    out = []
    for part in template(text):
        if isinstance(part, str):
            out.append(part)
            continue
        value = _value(part)
        out.append(NULL_TEXT if value is None else str(value))
    return "".join(out)


def clear_fallback() -> None:
    """Forget the in-process store (tests)."""
    _fallback.clear()
