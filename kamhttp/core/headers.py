"""Response header lines as libcurl delivers them (raw, in arrival order, every hop's block):
one parser for ``$httprhdr(name)`` and for :attr:`kamhttp.Result.headers`."""
from __future__ import annotations

_BLANKS = b" \t\r\n"


def split(line: bytes) -> tuple[bytes, bytes] | None:
    """(name, value) of a header field line, blanks stripped; None for a status line, a
    continuation, the empty line ending a block or a line without a colon."""
    if not line or line[0] in _BLANKS:
        return None
    colon = line.find(b":")
    if colon <= 0:
        return None
    return line[:colon].strip(_BLANKS), line[colon + 1:].strip(_BLANKS)


def value(lines: list[bytes], name: str) -> str | None:
    """Spec 9.2: the value of the newest line whose name matches case-insensitively, over
    every block; None if none."""
    wanted = name.strip(" \t\r\n").lower().encode("latin-1", "replace")
    for line in reversed(lines):
        field = split(line)
        if field is not None and field[0].lower() == wanted:
            return field[1].decode("utf-8", "replace")
    return None


def final_fields(lines: list[bytes]) -> list[tuple[str, str]]:
    """The fields of the last header block (after redirects and 401 retries), in order."""
    fields: list[tuple[str, str]] = []
    for line in lines:
        if line.startswith(b"HTTP/"):
            fields = []
            continue
        field = split(line)
        if field is not None:
            fields.append((field[0].decode("latin-1"), field[1].decode("utf-8", "replace")))
    return fields
