"""Pseudo-variables of the emulated KSR: names, transformations, and the class table.

Values are what KSR.pv.get returns inside Kamailio: a str, an int (for the integer PVs such as
$sp, $ml, $rs, an unset $var) or None for $null.  Read-only classes have no setter; a PV class
or transformation this module does not know raises KsrEmulationError (it might exist in
Kamailio, so answering None would be a silent lie).
"""
from __future__ import annotations

import base64
import hashlib
import re
import time
from dataclasses import dataclass
from typing import Any, Callable

from ..errors import PVError
from .errors import KsrEmulationError, SipParseError
from .context import MessageContext
from .sipmsg import NameAddr, SipUri

_CLASS_CHARS = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class ReadOnly(PVError):
    """An assignment to a PV without a setter (Kamailio ignores it and answers True)."""


@dataclass(frozen=True)
class PvName:
    """``$(cls(inner)[index]{tr1}{tr2})`` taken apart."""

    text: str
    cls: str
    inner: str | None = None
    index: str | None = None
    transforms: tuple[str, ...] = ()


# ---------------------------------------------------------------------------------------------
# Names

def locate(text: str, start: int) -> int:
    """The end (exclusive) of the PV name starting at ``text[start] == "$"``, or -1."""
    pos = start + 1
    if pos < len(text) and text[pos] == "(":
        end = _closing(text, pos, "(", ")")
        return -1 if end < 0 else end + 1
    match = _CLASS_CHARS.match(text, pos)
    if not match:
        return -1
    pos = match.end()
    if pos < len(text) and text[pos] == "(":
        end = _closing(text, pos, "(", ")")
        return -1 if end < 0 else end + 1
    return pos


def _closing(text: str, pos: int, opening: str, closing: str) -> int:
    depth = 0
    for i in range(pos, len(text)):
        if text[i] == opening:
            depth += 1
        elif text[i] == closing:
            depth -= 1
            if depth == 0:
                return i
    return -1


def parse_name(text: str) -> PvName:
    """Parse one whole PV name; PVError when ``text`` is not exactly one."""
    if not text.startswith("$") or locate(text, 0) != len(text):
        raise PVError(f"invalid pv [{text}]")
    if text.startswith("$("):
        body = text[2:-1]
        match = _CLASS_CHARS.match(body)
        if not match:
            raise PVError(f"invalid pv [{text}]")
        cls, rest = match.group(), body[match.end():]
        inner = None
        if rest.startswith("("):
            end = _closing(rest, 0, "(", ")")
            if end < 0:
                raise PVError(f"invalid pv [{text}]: unbalanced '('")
            inner, rest = rest[1:end], rest[end + 1:]
        index = None
        if rest.startswith("["):
            end = rest.find("]")
            if end < 0:
                raise PVError(f"invalid pv [{text}]: '[' without ']'")
            index, rest = rest[1:end].strip(), rest[end + 1:]
            if index != "*" and not re.fullmatch(r"-?\d+", index):
                raise PVError(f"invalid pv [{text}]: index [{index}] (an integer or *)")
        transforms = []
        while rest.startswith("{"):
            end = _closing(rest, 0, "{", "}")
            if end < 0:
                raise PVError(f"invalid pv [{text}]: unbalanced '{{'")
            transforms.append(rest[1:end].strip())
            rest = rest[end + 1:]
        if rest.strip():
            raise PVError(f"invalid pv [{text}]: unexpected {rest!r}")
        return PvName(text, cls, inner, index, tuple(transforms))
    match = _CLASS_CHARS.match(text, 1)
    assert match is not None        # locate() above matched the class name at 1
    cls = match.group()
    inner = text[match.end() + 1:-1] if len(text) > match.end() else None
    return PvName(text, cls, inner)


# ---------------------------------------------------------------------------------------------
# Access

Foreign = dict[str, Callable[[str], Any]]
"""PV classes served elsewhere (the C module's $curlerror and $httprhdr, played by kamhttp):
class name -> getter of the bare name."""


def get(ctx: MessageContext, name: str, foreign: Foreign | None = None) -> Any:
    """The value of ``name`` in this context: str, int or None.  PVError when the name or a
    transformation fails (KSR.pv.get then logs and answers None, as Kamailio)."""
    pv = parse_name(name)
    if foreign and pv.cls in foreign:
        bare = f"${pv.cls}({pv.inner})" if pv.inner is not None else f"${pv.cls}"
        value = foreign[pv.cls](bare)
    else:
        value = _class(pv).get(ctx, pv)
    for tr in pv.transforms:
        value = transform(tr, value, pv.text)
    return value


def set_value(ctx: MessageContext, name: str, value: Any) -> None:
    """Assign (or, with None, unset) ``name``; PVError when it cannot be written."""
    pv = parse_name(name)
    cls = _class(pv)
    if cls.set is None or pv.transforms:
        raise ReadOnly(f"{name} is read-only")
    cls.set(ctx, pv, value)


def expand(ctx: MessageContext, fmt: str, foreign: Foreign | None = None) -> str:
    """A format string with its PVs replaced (pv_printf: $null prints "<null>")."""
    out: list[str] = []
    pos = 0
    while True:
        start = fmt.find("$", pos)
        if start < 0:
            out.append(fmt[pos:])
            return "".join(out)
        end = locate(fmt, start)
        out.append(fmt[pos:start])
        if end < 0:
            out.append("$")
            pos = start + 1
            continue
        value = get(ctx, fmt[start:end], foreign)
        out.append("<null>" if value is None else str(value))
        pos = end


# ---------------------------------------------------------------------------------------------
# Transformations

def _escape(allowed: str) -> Callable[[str], str]:
    def escape(text: str) -> str:
        out = []
        for ch in text:
            if not 32 <= ord(ch) <= 126:
                raise PVError(f"invalid escaped character <{ord(ch)}>")
            out.append(ch if ch.isalnum() or ch in allowed else f"%{ord(ch):02x}")
        return "".join(out)
    return escape


def _unescape(text: str) -> str:
    def hexval(match: re.Match) -> str:
        return chr(int(match.group(1), 16))
    if re.search(r"%(?![0-9A-Fa-f]{2})", text):
        raise PVError(f"invalid escape sequence in {text!r}")
    return re.sub(r"%([0-9A-Fa-f]{2})", hexval, text)


_escape_param = _escape("-_.!~*'()[]/:&+$")       # Kamailio core strutils escape_param
_escape_user = _escape("-_.!~*'()&=+$,;?/")       # escape_user


def _uri(text: str) -> SipUri:
    try:
        return SipUri.parse(text)
    except SipParseError as exc:
        raise PVError(str(exc)) from None


def _ruri(ctx: MessageContext, pv: PvName) -> Any:
    if not ctx.message.is_request:
        return None
    ruri = ctx.ruri
    assert ruri is not None         # a request has an R-URI: the received one or the new one
    try:
        SipUri.parse(ruri)
    except SipParseError:
        raise PVError(f"failed to parse the R-URI {ruri!r}") from None
    return ruri


def _int_prefix(text: str) -> int:
    match = re.match(r"\s*[-+]?\d+", text)
    if not match:
        raise PVError(f"{{s.int}}: {text!r} is not a number")
    return int(match.group())


def _substr(text: str, offset: str, length: str = "0") -> str:
    start, size = int(offset), int(length)
    start = start if start >= 0 else max(len(text) + start, 0)
    return text[start:start + size] if size > 0 else text[start:]


def _select(text: str, index: str, sep: str) -> str:
    fields = text.split(sep)
    i = int(index)
    if not -len(fields) <= i < len(fields):
        raise PVError(f"{{s.select}}: no field {i} in {text!r}")
    return fields[i]


TRANSFORMS: dict[str, Callable[..., Any]] = {
    "s.len": len,
    "s.int": _int_prefix,
    "s.tolower": str.lower,
    "s.toupper": str.upper,
    "s.trim": str.strip,
    "s.ltrim": str.lstrip,
    "s.rtrim": str.rstrip,
    "s.escape.param": _escape_param,
    "s.unescape.param": _unescape,
    "s.escape.user": _escape_user,
    "s.unescape.user": _unescape,
    "s.encode.base64": lambda t: base64.b64encode(t.encode()).decode(),
    "s.decode.base64": lambda t: base64.b64decode(t.encode(), validate=True).decode(),
    "s.md5": lambda t: hashlib.md5(t.encode()).hexdigest(),
    "s.substr": _substr,
    "s.select": _select,
    "uri.user": lambda t: _uri(t).user or "",
    "uri.host": lambda t: _uri(t).host,
    "uri.port": lambda t: _uri(t).port or "",
    "uri.scheme": lambda t: _uri(t).scheme,
    "uri.params": lambda t: _uri(t).params.lstrip(";"),
    "uri.param": lambda t, name: _uri(t).param(name) or "",
    "uri.transport": lambda t: _uri(t).param("transport") or "",
    "nameaddr.uri": lambda t: NameAddr.parse(t).uri,
    "nameaddr.name": lambda t: NameAddr.parse(t).display or "",
}
"""The transformations emulated; parameters follow a comma ({s.substr,1,3})."""


def transform(spec: str, value: Any, where: str) -> Any:
    name, *params = [part.strip() for part in spec.split(",")]
    func = TRANSFORMS.get(name)
    if func is None:
        raise KsrEmulationError(f"transformation {{{spec}}} in {where} is not emulated by "
                                f"kamhttp.testing (emulated: {', '.join(TRANSFORMS)})")
    if value is None:
        return 0 if name == "s.len" else None
    try:
        return func(str(value), *params)
    except (TypeError, ValueError) as exc:
        raise PVError(f"transformation {{{spec}}} failed on {value!r}: {exc}") from None


# ---------------------------------------------------------------------------------------------
# The classes

@dataclass(frozen=True)
class PvClass:
    get: Callable[[MessageContext, PvName], Any]
    set: Callable[[MessageContext, PvName, Any], None] | None = None
    indexed: bool = False       # accepts [n]


def _class(pv: PvName) -> PvClass:
    cls = CLASSES.get(pv.cls)
    if cls is None:
        raise KsrEmulationError(f"pseudo-variable ${pv.cls} (in {pv.text}) is not emulated by "
                                f"kamhttp.testing (emulated: "
                                f"{', '.join('$' + c for c in CLASSES)})")
    if pv.index is not None and not cls.indexed:
        raise PVError(f"invalid pv [{pv.text}]: ${pv.cls} takes no index")
    return cls


def _need_inner(pv: PvName) -> str:
    if not pv.inner:
        raise PVError(f"invalid pv [{pv.text}]: ${pv.cls} needs a name, e.g. ${pv.cls}(x)")
    return pv.inner


def _pick(values: list[Any], pv: PvName, sep: str = ",") -> Any:
    if not values:
        return None
    if pv.index is None:
        return values[0]
    if pv.index == "*":
        return sep.join(str(v) for v in values)
    i = int(pv.index)
    return values[i] if -len(values) <= i < len(values) else None


# -- request URI and destination

def _ruri_part(part: str) -> Callable[[MessageContext, PvName], Any]:
    def get_part(ctx: MessageContext, pv: PvName) -> Any:
        ruri = ctx.ruri
        if ruri is None:
            return None
        try:
            uri = SipUri.parse(ruri)
        except SipParseError:
            raise PVError(f"failed to parse the R-URI {ruri!r}") from None
        if part == "port":          # Kamailio: the port as written, or the int 5060
            return uri.port if uri.port else 5060
        return getattr(uri, part) or None
    return get_part


def _set_ruri_part(part: str | None) -> Callable[[MessageContext, PvName, Any], None]:
    def set_part(ctx: MessageContext, pv: PvName, value: Any) -> None:
        if not ctx.message.is_request:
            raise PVError(f"unable to set pv [{pv.text}]: not a request")
        if value is None:
            if part is None:
                ctx.new_uri = None          # $ru = $null: back to the received R-URI
                return
            value = ""
        if part is None:
            ctx.new_uri = str(value)        # not checked: reading it back fails, as in Kamailio
            return
        uri = _uri(ctx.ruri or "")
        ctx.new_uri = str(uri.with_parts(**{part: str(value) or None}))
    return set_part


def _set_du(ctx: MessageContext, pv: PvName, value: Any) -> None:
    ctx.dst_uri = None if value is None else str(value)


# -- From and To (reads see the received header; writes change the forwarded one, as lumps)

def _nameaddr_part(header: str, part: str) -> Callable[[MessageContext, PvName], Any]:
    def get_part(ctx: MessageContext, pv: PvName) -> Any:
        value = ctx.message.header(header)
        if value is None:
            return None
        addr = NameAddr.parse(value)
        if part == "uri":
            return addr.uri
        if part == "display":
            return addr.display
        if part == "tag":
            return addr.param("tag")
        uri = _uri(addr.uri)
        return getattr(uri, part) or None
    return get_part


def _set_nameaddr_part(header: str, part: str) -> Callable[[MessageContext, PvName, Any], None]:
    def set_part(ctx: MessageContext, pv: PvName, value: Any) -> None:
        ctx.header_rewrites.setdefault(header.lower(), {})[part] = \
            None if value is None else str(value)
    return set_part


# -- headers and the message

def _hdr(ctx: MessageContext, pv: PvName) -> Any:
    return _pick(ctx.message.header_values(_need_inner(pv)), pv)


def _hdrc(ctx: MessageContext, pv: PvName) -> Any:
    return len(ctx.message.header_values(_need_inner(pv)))


def _header(name: str) -> Callable[[MessageContext, PvName], Any]:
    return lambda ctx, pv: ctx.message.header(name)


def _int_header(name: str) -> Callable[[MessageContext, PvName], Any]:
    def get_int(ctx: MessageContext, pv: PvName) -> Any:
        value = ctx.message.header(name)
        return int(value) if value is not None and value.strip().isdigit() else None
    return get_int


def _received_ruri(ctx: MessageContext) -> str:
    """The R-URI the request arrived with ($ou); only for a request (see _request_only)."""
    ruri = ctx.message.ruri
    assert ruri is not None         # a request always has one
    return ruri


def _request_only(func: Callable[[MessageContext], Any]) -> Callable[[MessageContext, PvName],
                                                                      Any]:
    return lambda ctx, pv: func(ctx) if ctx.message.is_request else None


def _reply_only(func: Callable[[MessageContext], Any]) -> Callable[[MessageContext, PvName],
                                                                    Any]:
    return lambda ctx, pv: None if ctx.message.is_request else func(ctx)


# -- script variables

def _var_get(ctx: MessageContext, pv: PvName) -> Any:
    return ctx.worker.vars.get(_need_inner(pv), 0)


def _var_set(ctx: MessageContext, pv: PvName, value: Any) -> None:
    ctx.worker.vars[_need_inner(pv)] = 0 if value is None else value


def _avp_name(pv: PvName) -> str:
    name = _need_inner(pv)
    return name[2:] if name[:2] in ("s:", "i:") else name


def _avp_get(ctx: MessageContext, pv: PvName) -> Any:
    if pv.index == "*":
        raise PVError(f"invalid pv [{pv.text}]: [*] reads are not supported, use [n]")
    return _pick(ctx.avps.get(_avp_name(pv), []), pv)


def _avp_set(ctx: MessageContext, pv: PvName, value: Any) -> None:
    values = ctx.avps.setdefault(_avp_name(pv), [])
    if value is not None:
        values.insert(0, value)          # an assignment adds a value on top
    elif pv.index == "*":
        values.clear()
    elif values:
        values.pop(0)


def _xavp_path(pv: PvName) -> tuple[str, str | None]:
    root, sep, key = _need_inner(pv).partition("=>")
    return root.strip(), key.strip() if sep else None


def _xavp_get(ctx: MessageContext, pv: PvName) -> Any:
    root, key = _xavp_path(pv)
    items = ctx.xavps.get(root, [])
    if not items:
        return None
    if key is None:
        return f"<<xavp:{root}>>"
    return _pick(items[0].get(key, []), pv)


def _xavp_set(ctx: MessageContext, pv: PvName, value: Any) -> None:
    root, key = _xavp_path(pv)
    if key is None:
        if value is None:
            ctx.xavps.pop(root, None)
            return
        raise PVError(f"unable to set pv [{pv.text}]: assign a field, e.g. $xavp({root}=>x)")
    items = ctx.xavps.setdefault(root, [])
    if not items:
        items.append({})
    if value is None:
        items[0].pop(key, None)
    else:
        items[0].setdefault(key, []).insert(0, value)


# -- tmx: the transaction

def _tm(ctx: MessageContext, pv: PvName) -> Any:
    """$T(id_index) and $T(id_label): the transaction's identifiers (t_continue takes them),
    $null while the message has no transaction."""
    name = _need_inner(pv)
    if name not in ("id_index", "id_label"):
        raise KsrEmulationError(f"{pv.text} is not emulated by kamhttp.testing (emulated: "
                                "$T(id_index), $T(id_label))")
    return ctx.tindex if name == "id_index" else ctx.tlabel


CLASSES: dict[str, PvClass] = {
    "ru": PvClass(_ruri, _set_ruri_part(None)),
    "rU": PvClass(_ruri_part("user"), _set_ruri_part("user")),
    "rd": PvClass(_ruri_part("host"), _set_ruri_part("host")),
    "rp": PvClass(_ruri_part("port"), _set_ruri_part("port")),
    "rz": PvClass(_ruri_part("scheme")),
    "ou": PvClass(_request_only(lambda c: c.message.ruri)),
    "oU": PvClass(_request_only(lambda c: _uri(_received_ruri(c)).user)),
    "du": PvClass(lambda c, pv: c.dst_uri, _set_du),
    "fu": PvClass(_nameaddr_part("From", "uri"), _set_nameaddr_part("From", "uri")),
    "fU": PvClass(_nameaddr_part("From", "user"), _set_nameaddr_part("From", "user")),
    "fd": PvClass(_nameaddr_part("From", "host"), _set_nameaddr_part("From", "host")),
    "fn": PvClass(_nameaddr_part("From", "display"), _set_nameaddr_part("From", "display")),
    "ft": PvClass(_nameaddr_part("From", "tag")),
    "tu": PvClass(_nameaddr_part("To", "uri"), _set_nameaddr_part("To", "uri")),
    "tU": PvClass(_nameaddr_part("To", "user"), _set_nameaddr_part("To", "user")),
    "td": PvClass(_nameaddr_part("To", "host"), _set_nameaddr_part("To", "host")),
    "tn": PvClass(_nameaddr_part("To", "display"), _set_nameaddr_part("To", "display")),
    "tt": PvClass(_nameaddr_part("To", "tag")),
    "ci": PvClass(_header("Call-ID")),
    "cs": PvClass(lambda c, pv: c.message.cseq[0] or None),
    "rm": PvClass(lambda c, pv: c.message.method),
    "rs": PvClass(_reply_only(lambda c: c.message.status)),
    "rr": PvClass(_reply_only(lambda c: c.message.reason)),
    "si": PvClass(lambda c, pv: c.message.src_ip),
    "sp": PvClass(lambda c, pv: c.message.src_port),
    "Ri": PvClass(lambda c, pv: c.message.dst_ip),
    "Rp": PvClass(lambda c, pv: c.message.dst_port),
    "pr": PvClass(lambda c, pv: c.message.proto),
    "proto": PvClass(lambda c, pv: c.message.proto),
    "ua": PvClass(_header("User-Agent")),
    "ct": PvClass(_header("Contact")),
    "cT": PvClass(_header("Content-Type")),
    "cl": PvClass(_int_header("Content-Length")),
    "rb": PvClass(lambda c, pv: c.message.body or None),
    "mb": PvClass(lambda c, pv: c.message.text),
    "ml": PvClass(lambda c, pv: len(c.message.text.encode("utf-8"))),
    "hdr": PvClass(_hdr, indexed=True),
    "hdrc": PvClass(_hdrc),
    "var": PvClass(_var_get, _var_set),
    "avp": PvClass(_avp_get, _avp_set, indexed=True),
    "xavp": PvClass(_xavp_get, _xavp_set, indexed=True),
    "T": PvClass(_tm),
    "Ts": PvClass(lambda c, pv: int(time.time())),
    "null": PvClass(lambda c, pv: None),
}
"""The pseudo-variables emulated: Kamailio's core and pv-module names, same types."""
