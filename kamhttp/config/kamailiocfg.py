"""The ``modparam("http_client", name, value)`` lines of an existing kamailio.cfg, in order.

Kamailio's cfg lexer is followed where it decides what such a line means: ``#`` and ``//``
line comments and nested ``/* */`` blocks; the ``#!``/``!!`` preprocessor (``define``,
``trydef``, ``redefine``, ``ifdef``, ``ifndef``, ``else``, ``endif``; ``include_file`` and
``import_file``); a defined name is replaced by its text and scanned again, so a constant may be
a value, a string or even the module name; ``"..."`` strings with escapes, and adjacent
``"..."`` strings joined (a string spread over lines); ``'...'`` strings verbatim; integers in
decimal, hex (0x), octal (0...) and binary (...b), ``yes``/``no`` words, and a leading ``-``.
The module name is matched as Kamailio does (an anchored, case-insensitive regular
expression).  Other modules' lines, and everything else, are ignored.
"""
from __future__ import annotations

import dataclasses
import pathlib
import re
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError, read_config_text
from .params import Statement

MODULE = "http_client"
EAT = " \t\b\r"
ID = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
WORD = re.compile(r"[A-Za-z0-9_]+")
NUMBERS = ((re.compile(r"0x[0-9a-fA-F]+\Z"), 16), (re.compile(r"0[0-7]+\Z"), 8),
           (re.compile(r"[01]+b\Z"), 2), (re.compile(r"(0|[1-9][0-9]*)\Z"), 10))
WORDS = {"yes": 1, "true": 1, "on": 1, "enable": 1, "no": 0, "false": 0, "off": 0, "disable": 0}
DEFINE = re.compile(r"(?:#!|!!)(define|def|trydefine|trydef|redefine|redef)[ \t\b\r]+")
IFDEF = re.compile(r"(?:#!|!!)(ifdef|ifndef)[ \t\b\r]+([A-Za-z_][A-Za-z0-9_]*)[ \t\b\r]*(\n|\Z)")
ELSE_ENDIF = re.compile(r"(?:#!|!!)(else|endif)[ \t\b\r]*(\n|\Z)")
INCLUDE = re.compile(r"(?:#!|!!)?(include_file|import_file)\b")
FILE_NAME = re.compile(r"[^ \t\r\n]+")
HEX_ESCAPE = re.compile(r"x([0-9a-fA-F]{1,2})")
OCTAL_ESCAPE = re.compile(r"[0-7]{2,3}")
PVAR_NAME = re.compile(r"[A-Za-z0-9_.]*")
STRING_ESCAPES = {"n": "\n", "r": "\r", "a": "\a", "t": "\t", '"': '"', "\\": "\\"}
MAX_INCLUDE_DEPTH = 10
MAX_EXPANSIONS = 100_000


@dataclasses.dataclass(frozen=True)
class Token:
    kind: str            # "id", "num", "str", "pvar", "punct"
    value: Any
    where: str           # "file:line"


class _Frame:
    def __init__(self, text: str, filename: str, line: int = 1, macro: bool = False) -> None:
        self.text, self.filename, self.line, self.macro, self.pos = text, filename, line, macro, 0


class _Error(Exception):
    def __init__(self, where: str, message: str, text: str | None = None,
                 valid: str | None = None, fatal: bool = False) -> None:
        super().__init__(message)
        self.where, self.message, self.text, self.valid = where, message, text, valid
        self.fatal = fatal           # nothing sensible can be read after it


class Scanner:
    """Kamailio's cfg lexer, reduced to what locating modparam lines needs."""

    def __init__(self, path: pathlib.Path, text: str, defines: Mapping[str, str]) -> None:
        self.frames = [_Frame(text, str(path))]
        self.defines = dict(defines)
        self.ifdefs: list[bool] = []
        self.expansions = 0

    @property
    def frame(self) -> _Frame:
        return self.frames[-1]

    def where(self) -> str:
        return f"{self.frame.filename}:{self.frame.line}"

    def _advance(self, count: int = 1) -> str:
        frame = self.frame
        text = frame.text[frame.pos:frame.pos + count]
        frame.pos += count
        if not frame.macro:
            frame.line += text.count("\n")
        return text

    def token(self) -> Token | None:
        """The next token, or None at the end of the main file."""
        while self.frames:
            frame = self.frame
            if frame.pos >= len(frame.text):
                if len(self.frames) == 1:
                    if self.ifdefs:
                        raise _Error(self.where(), "#!ifdef without #!endif",
                                     valid="an #!endif for every #!ifdef/#!ifndef", fatal=True)
                    return None
                self.frames.pop()
                continue
            rest = frame.text[frame.pos:frame.pos + 2]
            if not all(self.ifdefs):
                if not self._directive(skipping=True):
                    self._advance()
                continue
            if rest[0] in EAT or rest[0] == "\n" or rest == "\\\n":
                self._advance(len(rest) if rest == "\\\n" else 1)
            elif rest == "/*":
                self._block_comment()
            elif rest in ("#!", "!!") and self._directive(skipping=False):
                continue
            elif rest[0] == "#" or rest == "//":
                end = frame.text.find("\n", frame.pos)
                self._advance((len(frame.text) if end < 0 else end) - frame.pos)
            elif rest[0] == '"':
                return self._double_quoted()
            elif rest[0] == "'":
                return self._single_quoted()
            elif rest[0] == "$":
                return self._pvar()
            elif (match := WORD.match(frame.text, frame.pos)) is not None:
                token = self._word(match.group())
                if token is not None:
                    return token
            else:
                where = self.where()
                return Token("punct", self._advance(), where)
        return None

    def _word(self, word: str) -> Token | None:
        where = self.where()
        if word in ("include_file", "import_file"):
            self._advance(len(word))
            self._include(word, where)
            return None
        self._advance(len(word))
        for pattern, base in NUMBERS:
            if pattern.match(word):
                return Token("num", int(word[2:] if base == 16 else word.rstrip("b"), base),
                             where)
        if word in WORDS:
            return Token("num", WORDS[word], where)
        if ID.fullmatch(word) and word in self.defines:
            self.expansions += 1
            if self.expansions > MAX_EXPANSIONS or len(self.frames) > 100:
                raise _Error(where, f"#!define {word} expands without end", text=word,
                             valid="defines that do not refer to themselves", fatal=True)
            self.frames.append(_Frame(self.defines[word], self.frame.filename,
                                      self.frame.line, macro=True))
            return None
        return Token("id" if ID.fullmatch(word) else "word", word, where)

    def _block_comment(self) -> None:
        where, depth = self.where(), 0
        while self.frame.pos < len(self.frame.text):
            pair = self.frame.text[self.frame.pos:self.frame.pos + 2]
            if pair == "/*":
                depth += 1
                self._advance(2)
            elif pair == "*/":
                depth -= 1
                self._advance(2)
                if depth == 0:
                    return
            else:
                self._advance()
        raise _Error(where, "/* comment not closed", valid="*/ to close every /*", fatal=True)

    def _directive(self, skipping: bool) -> bool:
        """Handle a preprocessor directive at the current position, if there is one."""
        frame, where = self.frame, self.where()
        if match := IFDEF.match(frame.text, frame.pos):
            self._advance(match.end() - frame.pos)
            defined = match.group(2) in self.defines
            self.ifdefs.append(defined == (match.group(1) == "ifdef"))
            return True
        if match := ELSE_ENDIF.match(frame.text, frame.pos):
            self._advance(match.end() - frame.pos)
            if self.ifdefs and match.group(1) == "else":
                self.ifdefs[-1] = not self.ifdefs[-1]
            elif self.ifdefs:
                self.ifdefs.pop()
            return True
        if skipping:
            return False
        if match := DEFINE.match(frame.text, frame.pos):
            self._advance(match.end() - frame.pos)
            self._define(match.group(1), where)
            return True
        if match := INCLUDE.match(frame.text, frame.pos):
            self._advance(match.end() - frame.pos)
            self._include(match.group(1), where)
            return True
        return False

    def _define(self, kind: str, where: str) -> None:
        frame = self.frame
        name = ID.match(frame.text, frame.pos)
        if name is None:
            raise _Error(where, "#!define needs a name", text=frame.text[frame.pos:][:40],
                         valid="#!define NAME [value]")
        self._advance(name.end() - frame.pos)
        if frame.text.startswith("-", frame.pos):
            raise _Error(where, "'-' not allowed in a #!define name", text=name.group())
        value: list[str] = []
        while frame.pos < len(frame.text) and frame.text[frame.pos] in EAT:
            self._advance()
        while frame.pos < len(frame.text) and frame.text[frame.pos] != "\n":
            if frame.text.startswith("\\\n", frame.pos):
                self._advance(2)
                continue
            value.append(self._advance())
        if name.group() in self.defines and not kind.startswith("re"):
            if kind.startswith("try"):
                return
            raise _Error(where, f"{name.group()} is already defined", text=name.group(),
                         valid="#!redefine to change a define, #!trydef to keep the first")
        self.defines[name.group()] = "".join(value)

    def _include(self, kind: str, where: str) -> None:
        frame = self.frame
        while frame.pos < len(frame.text) and frame.text[frame.pos] in " \t":
            self._advance()
        match = FILE_NAME.match(frame.text, frame.pos)
        if match is None:
            raise _Error(where, f"{kind} needs a file name", valid=f'{kind} "file.cfg"')
        self._advance(match.end() - frame.pos)
        name = match.group().strip("\"'")
        if len(self.frames) > MAX_INCLUDE_DEPTH:
            raise _Error(where, f"{kind} nested too deep", text=name,
                         valid=f"at most {MAX_INCLUDE_DEPTH} levels")
        path = pathlib.Path(name)
        if not path.is_absolute() and not path.exists():
            path = pathlib.Path(frame.filename).parent / name
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            if kind == "import_file" and isinstance(err, FileNotFoundError):
                return
            raise _Error(where, f"{kind}: cannot read {name!r}", text=name,
                         valid="an existing UTF-8 file") from None
        self.frames.append(_Frame(text, str(path)))

    def _double_quoted(self) -> Token:
        where, parts = self.where(), []
        while True:
            self._advance()                                  # the opening quote
            while True:
                frame = self.frame
                if frame.pos >= len(frame.text):
                    raise _Error(where, "string not closed", valid='a closing "', fatal=True)
                char = self._advance()
                if char == '"':
                    break
                if char != "\\" or frame.pos >= len(frame.text):
                    parts.append(char)
                    continue
                parts.append(self._escape())
            frame = self.frame
            pos = frame.pos
            while pos < len(frame.text) and frame.text[pos] in EAT + "\n":
                pos += 1
            if pos >= len(frame.text) or frame.text[pos] != '"':
                return Token("str", "".join(parts), where)
            self._advance(pos - frame.pos)                  # "a" "b" is "ab"

    def _escape(self) -> str:
        frame = self.frame
        char = frame.text[frame.pos]
        if char in STRING_ESCAPES:
            self._advance()
            return STRING_ESCAPES[char]
        if char == "\n":
            self._advance()
            return ""
        if match := HEX_ESCAPE.match(frame.text, frame.pos):
            self._advance(match.end() - frame.pos)
            return chr(int(match.group(1), 16))
        if match := OCTAL_ESCAPE.match(frame.text, frame.pos):
            self._advance(match.end() - frame.pos)
            return chr(int(match.group(), 8) & 0xFF)
        return "\\"                                          # kept, as Kamailio does

    def _single_quoted(self) -> Token:
        where, frame = self.where(), self.frame
        end = frame.text.find("'", frame.pos + 1)
        if end < 0:
            raise _Error(where, "string not closed", valid="a closing '", fatal=True)
        value = self._advance(end + 1 - frame.pos)[1:-1]
        return Token("str", value, where)

    def _pvar(self) -> Token:
        where, frame = self.where(), self.frame
        start = frame.pos
        self._advance()
        word = PVAR_NAME.match(frame.text, frame.pos)
        self._advance(word.end() - frame.pos)
        if frame.text.startswith("(", frame.pos):
            depth = 0
            while frame.pos < len(frame.text):
                char = self._advance()
                depth += {"(": 1, ")": -1}.get(char, 0)
                if depth == 0:
                    break
        return Token("pvar", frame.text[start:frame.pos], where)


def read_modparams(path: pathlib.Path, defines: Mapping[str, str] | None = None
                   ) -> tuple[list[Statement], list[ConfigError]]:
    """The http_client modparam statements (name, value, "file:line") of a kamailio.cfg, in
    order, and every error found reading them.  Raises ConfigError if it cannot be read."""
    text = read_config_text(path, "an existing readable kamailio.cfg")
    return parse_modparams(text, path, defines)


def parse_modparams(text: str, path: pathlib.Path, defines: Mapping[str, str] | None = None
                    ) -> tuple[list[Statement], list[ConfigError]]:
    """Like :func:`read_modparams`, from the text of the file ``path``."""
    scanner = Scanner(path, text, defines or {})
    statements: list[Statement] = []
    errors: list[ConfigError] = []
    while True:
        try:
            token = scanner.token()
            if token is None:
                break
            if token.kind == "id" and token.value in ("modparam", "modparamx"):
                statement = _modparam(scanner, token)
                if statement is not None:
                    statements.append(statement)
        except _Error as err:
            errors.append(ConfigError(err.where, err.message, text=err.text, valid=err.valid))
            if err.fatal:
                break
    return statements, errors


def _expect(scanner: Scanner, what: str, kinds: tuple[str, ...], start: Token) -> Token:
    token = scanner.token()
    if token is None or token.kind not in kinds or (
            token.kind == "punct" and token.value != what):
        raise _Error(start.where, f"malformed {start.value}: {what} expected",
                     text=None if token is None else str(token.value),
                     valid=f'{start.value}("http_client", "name", value)')
    return token


def _modparam(scanner: Scanner, start: Token) -> Statement | None:
    """The statement of one ``modparam(...)``, or None when it is another module's."""
    _expect(scanner, "(", ("punct",), start)
    module = scanner.token()
    if module is None or module.kind != "str" or not _is_http_client(module.value):
        return None
    if start.value == "modparamx":
        raise _Error(start.where, "modparamx is not supported for http_client",
                     valid='modparam("http_client", "name", value)')
    _expect(scanner, ",", ("punct",), start)
    name = _expect(scanner, "a quoted parameter name", ("str",), start)
    _expect(scanner, ",", ("punct",), start)
    value = scanner.token()
    negative = value is not None and value.kind == "punct" and value.value == "-"
    if negative:
        value = scanner.token()
    if value is None or value.kind not in ("str", "num") or (negative and value.kind != "num"):
        undefined = value is not None and value.kind == "id"
        raise _Error(start.where, f"modparam {name.value!r}: "
                     + (f"{value.value} is not #!defined" if undefined else "value expected"),
                     text=None if value is None else str(value.value),
                     valid='a "string", an integer, or a #!define of one')
    _expect(scanner, ")", ("punct",), start)
    return name.value, -value.value if negative else value.value, start.where


def _is_http_client(pattern: str) -> bool:
    """Kamailio matches the module name as ``^pattern$``, case-insensitively (POSIX ERE)."""
    if pattern.lower() == MODULE:
        return True
    try:
        return re.fullmatch(pattern, MODULE, re.IGNORECASE) is not None
    except (re.error, RecursionError, OverflowError):
        return False
