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

The directives that make values, as Kamailio 5.6 applies them [verified 5.6.3]:

* ``#!defenv NAME=VARIABLE`` / ``#!defenv VARIABLE`` define a name from the environment
  (an unset variable is an error); ``#!defenvs`` quotes the value (a string);
  ``#!trydefenv``/``#!trydefenvs`` skip an unset variable.
* ``#!subst "/regex/replacement/flags"`` rewrites every string scanned after it: ``"..."``
  (once joined, after define expansion) and ``'...'`` strings, the module and parameter
  names, later directives' strings, include file names; never numbers or bare names.  Rules
  run in order, each on the previous one's result.  Flags: ``g`` every match (else the first),
  ``i`` ASCII case, ``s`` ``.`` and ``[^...]`` match a newline (else ``^``/``$`` also match at
  newlines).  The regex is POSIX extended, matched as glibc does in the C locale: in bytes,
  leftmost-longest (``k|kk`` takes ``kk``), ``\\`` literal in brackets.  The replacement takes
  ``\\0``-``\\9``, ``\\n \\r \\t \\\\ \\$``, and ``\\c`` for any other c.
* ``#!substdef "/NAME/value/"`` is such a rule and defines NAME as ``value`` as written
  (``#!substdefs``: as a string).

Refused, naming file:line (never loaded differently from Kamailio): pseudo-variables and
``\\u`` in a replacement; GNU regex operators (``\\w``, ``\\b``, back-references), ``[= =]``,
``[. .]``, a repetition of a repetition, ``\\1``-``\\9`` with ``|`` or a repeated group (glibc's
submatch choice), and with ``s`` a ``^`` or ``$`` in mid-pattern (a glibc quirk); a rule
matching an empty string, or making a replacement over 1022 bytes, where Kamailio logs an
error and leaves the string as it was; ``#!defexp``/``#!defexps``, which Kamailio 5.6 reads
as a comment and 5.7 evaluates as an expression.
"""
from __future__ import annotations

import dataclasses
import os
import pathlib
import re
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError
from .syntax import ParseError, Source, read_text
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
SUBST = re.compile(r"(?:#!|!!)(substdefs|substdef|subst)")
DEFENV = re.compile(r"(?:#!|!!)(trydefenvs|trydefenv|defenvs|defenv)[ \t]*")
DEFENV_ID = re.compile(r"[^ \t\r\n]+")
DEFEXP = re.compile(r"(?:#!|!!)(defexps|defexp)(?=[ \t\b\r\n]|\Z)")
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
    where: Source


class _Frame:
    def __init__(self, text: str, filename: str, line: int = 1, macro: bool = False) -> None:
        self.text, self.filename, self.line, self.macro, self.pos = text, filename, line, macro, 0


class Scanner:
    """Kamailio's cfg lexer, reduced to what locating modparam lines needs."""

    def __init__(self, path: pathlib.Path, text: str, defines: Mapping[str, str]) -> None:
        self.frames = [_Frame(text, str(path))]
        self.defines = dict(defines)
        self.ifdefs: list[bool] = []
        self.expansions = 0
        self.substs: list[SubstRule] = []

    @property
    def frame(self) -> _Frame:
        return self.frames[-1]

    def where(self) -> Source:
        return Source.at(self.frame.filename, self.frame.line)

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
                        raise ParseError(self.where(), "#!ifdef without #!endif",
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
                raise ParseError(where, f"#!define {word} expands without end", text=word,
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
        raise ParseError(where, "/* comment not closed", valid="*/ to close every /*", fatal=True)

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
        if match := SUBST.match(frame.text, frame.pos):
            self._advance(match.end() - frame.pos)
            self._subst(match.group(1), where)
            return True
        if match := DEFENV.match(frame.text, frame.pos):
            self._advance(match.end() - frame.pos)
            self._defenv(match.group(1), where)
            return True
        if match := DEFEXP.match(frame.text, frame.pos):
            self._advance(match.end() - frame.pos)
            line = self._rest_of_line()
            raise ParseError(where, f"#!{match.group(1)} is not supported: kamhttp does not "
                         "evaluate expressions (Kamailio 5.6 reads this line as a comment, "
                         "5.7 and later evaluate it)", text=f"#!{match.group(1)} {line}",
                         valid='#!define NAME value, #!substdef "/NAME/value/" or '
                               "#!defenv NAME=VARIABLE")
        return False

    def _rest_of_line(self) -> str:
        """The rest of the line, backslash-newline continuing it, consumed."""
        frame, text = self.frame, []
        while frame.pos < len(frame.text) and frame.text[frame.pos] != "\n":
            if frame.text.startswith("\\\n", frame.pos):
                self._advance(2)
                continue
            text.append(self._advance())
        return "".join(text).strip()

    def _define_new(self, name: str, value: str, kind: str, where: Source) -> None:
        """What ``#!define`` does; ``#!substdef`` and ``#!defenv`` define the same way."""
        if name in self.defines:
            raise ParseError(where, f"#!{kind}: {name} is already defined", text=name,
                         valid="a name not yet defined (#!redefine changes a #!define)")
        self.defines[name] = value

    def _subst(self, kind: str, where: Source) -> None:
        """``#!subst``/``#!substdef``/``#!substdefs`` and the string token after it, which is
        read as any string is: defines expanded, joined, the earlier rules applied."""
        token = self.token()
        if token is None or token.kind != "str":
            raise ParseError(where, f"invalid #!{kind} preprocess statement",
                         text=None if token is None else str(token.value),
                         valid=f'#!{kind} "/regex/replacement/flags"')
        rule = SubstRule(token.value, where, kind)
        self.substs.append(rule)              # Kamailio adds the rule before the define
        if kind != "subst":
            name, value = rule.define(quoted=kind == "substdefs")
            self._define_new(name, value, kind, where)

    def _defenv(self, kind: str, where: Source) -> None:
        """``#!defenv NAME=VARIABLE`` or ``#!defenv VARIABLE``: a define from the
        environment; ``...s`` quotes the value, ``try...`` skips an unset variable."""
        frame = self.frame
        match = DEFENV_ID.match(frame.text, frame.pos)
        valid = f"#!{kind} NAME=VARIABLE or #!{kind} VARIABLE"
        if match is None or match.group().startswith("="):
            raise ParseError(where, f"#!{kind} needs a name", valid=valid)
        self._advance(match.end() - frame.pos)
        name, equals, variable = match.group().partition("=")
        if equals and not variable:
            raise ParseError(where, f"#!{kind}: no variable after '='", text=match.group(),
                         valid=valid)
        value = os.environ.get(variable or name)
        if value is None:
            if kind.startswith("try"):
                return
            raise ParseError(where, f"#!{kind}: environment variable {variable or name} is not "
                         "set", text=match.group(), valid=f"a set variable, or #!try{kind}")
        self._define_new(name, f'"{value}"' if kind.endswith("s") else value, kind, where)

    def _substituted(self, value: str, where: Source) -> str:
        """Every #!subst rule so far, in order, on a string: Kamailio runs them on each
        ``"..."`` (once joined) and ``'...'`` string and on include file names."""
        for rule in self.substs:
            value = rule.apply(value, where)
        return value

    def _define(self, kind: str, where: Source) -> None:
        frame = self.frame
        name = ID.match(frame.text, frame.pos)
        if name is None:
            raise ParseError(where, "#!define needs a name", text=frame.text[frame.pos:][:40],
                         valid="#!define NAME [value]")
        self._advance(name.end() - frame.pos)
        if frame.text.startswith("-", frame.pos):
            raise ParseError(where, "'-' not allowed in a #!define name", text=name.group())
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
            raise ParseError(where, f"{name.group()} is already defined", text=name.group(),
                         valid="#!redefine to change a define, #!trydef to keep the first")
        self.defines[name.group()] = "".join(value)

    def _include(self, kind: str, where: Source) -> None:
        frame = self.frame
        while frame.pos < len(frame.text) and frame.text[frame.pos] in " \t":
            self._advance()
        match = FILE_NAME.match(frame.text, frame.pos)
        if match is None:
            raise ParseError(where, f"{kind} needs a file name", valid=f'{kind} "file.cfg"')
        self._advance(match.end() - frame.pos)
        name = self._substituted(match.group(), where).strip("\"'")
        if len(self.frames) > MAX_INCLUDE_DEPTH:
            raise ParseError(where, f"{kind} nested too deep", text=name,
                         valid=f"at most {MAX_INCLUDE_DEPTH} levels")
        path = pathlib.Path(name)
        if not path.is_absolute() and not path.exists():
            path = pathlib.Path(frame.filename).parent / name
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            if kind == "import_file" and isinstance(err, FileNotFoundError):
                return
            raise ParseError(where, f"{kind}: cannot read {name!r}", text=name,
                         valid="an existing UTF-8 file") from None
        self.frames.append(_Frame(text, str(path)))

    def _double_quoted(self) -> Token:
        where, parts = self.where(), []
        while True:
            self._advance()                                  # the opening quote
            while True:
                frame = self.frame
                if frame.pos >= len(frame.text):
                    raise ParseError(where, "string not closed", valid='a closing "', fatal=True)
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
                return Token("str", self._substituted("".join(parts), where), where)
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
            raise ParseError(where, "string not closed", valid="a closing '", fatal=True)
        value = self._advance(end + 1 - frame.pos)[1:-1]
        return Token("str", self._substituted(value, where), where)

    def _pvar(self) -> Token:
        where, frame = self.where(), self.frame
        start = frame.pos
        self._advance()
        word = PVAR_NAME.match(frame.text, frame.pos)
        self._advance(word.end() - frame.pos if word else 0)
        if frame.text.startswith("(", frame.pos):
            depth = 0
            while frame.pos < len(frame.text):
                char = self._advance()
                depth += {"(": 1, ")": -1}.get(char, 0)
                if depth == 0:
                    break
        return Token("pvar", frame.text[start:frame.pos], where)


# --- #!subst rules ------------------------------------------------------------------------

SUBST_VALID = ('"/regex/replacement/flags": an ASCII separator other than \\, the flags i '
               "(ignore case), g (every match), s (. and [^...] also match a newline)")
CLASSES = {"alpha": "AZaz", "digit": "09", "alnum": "09AZaz", "upper": "AZ", "lower": "az",
           "space": "\t\r  ", "blank": "\t\t  ", "punct": "!/:@[`{~", "print": " ~",
           "graph": "!~", "cntrl": "\x00\x1f\x7f\x7f", "xdigit": "09AFaf"}
"""The bracket classes in the C locale (Kamailio never calls setlocale), as range bounds."""
INTERVAL = re.compile(rb"\{([0-9]{1,3})(,([0-9]{0,3}))?\}")
REPLACEMENT_ESCAPES = {ord("n"): b"\n", ord("r"): b"\r", ord("t"): b"\t"}
MAX_REPLACEMENT = 1022       # Kamailio builds one replacement in a 1024-byte buffer
MAX_REPLACEMENT_ESCAPES = 99


class _Unsupported(Exception):
    """A regular expression construct kamhttp does not reproduce exactly."""


class SubstRule:
    """One ``#!subst``/``#!substdef``/``#!substdefs`` rule, ``<sep>regex<sep>replacement<sep>
    flags``, read as Kamailio 5.6 reads it; the regex is matched as glibc's regexec matches it
    (leftmost-longest, in bytes), or refused where kamhttp could not be sure to."""

    def __init__(self, text: str, where: Source, kind: str) -> None:
        self.where, self.kind = where, kind
        data = text.encode()
        if len(data) < 3 or data[0] == ord("\\") or data[0] > 127:
            self._refuse(text, "too short" if len(data) < 3 else
                         "the separator must be an ASCII character other than \\")
        end = self._separator(data, 1)
        if end < 0 or len(data) < end + 2:
            self._refuse(text, "no separator after the regular expression" if end < 0 else
                         "too short after the regular expression")
        value_end = self._separator(data, end + 1)        # substdef's own, simpler scan
        self.raw_name = data[1:end]
        self.raw_value = data[end + 1:value_end] if value_end >= 0 else None
        self.replacement, flag_bytes = self._replacement(text, data, end + 1)
        flags = flag_bytes.decode()
        if unknown := set(flags) - set("igs"):
            self._refuse(text, f"unknown flag {sorted(unknown)[0]!r}")
        self.every = "g" in flags
        ere = _ERE(data[1:end], newline="s" not in flags)
        options = re.IGNORECASE if "i" in flags else 0
        try:
            self.search = {bol: re.compile(ere.pattern(bol), options) for bol in (True, False)}
            self.fixed = not (ere.alternation or ere.repeats)   # one match per start
            if ere.alternation or ere.repeated_group:
                if any(isinstance(part, int) and part for part in self.replacement):
                    raise _Unsupported("\\1 to \\9 with | or a repeated group (glibc's choice "
                                       "of submatch is not reproduced)")
        except (_Unsupported, re.error) as err:
            self._refuse(text, f"regular expression {data[1:end].decode(errors='replace')!r}: "
                         f"{err} is not supported", unsupported=True)
        self.pinned: dict[tuple[bool, int], re.Pattern[bytes]] = {}
        self.failed = False          # reported once; Kamailio then leaves strings unchanged

    def _refuse(self, text: str, problem: str, unsupported: bool = False) -> None:
        raise ParseError(self.where, f"#!{self.kind}: {problem}", text=text,
                     valid=SUBST_VALID + ("; kamhttp reads POSIX extended regexes without "
                                          "GNU operators (\\w, \\b, \\1 ...), [= =] and [. .], "
                                          "nested repetitions, and with the s flag ^ first "
                                          "and $ last only" if unsupported else ""))

    @staticmethod
    def _separator(data: bytes, start: int) -> int:
        """The first separator (data[0]) from ``start`` not right after a backslash."""
        return next((i for i in range(start, len(data))
                     if data[i] == data[0] and data[i - 1] != ord("\\")), -1)

    def _replacement(self, text: str, data: bytes, pos: int
                     ) -> tuple[list[bytes | int], bytes]:
        """The replacement as literal bytes and group numbers, and the flags after it."""
        parts: list[bytes | int] = []
        escapes = 0
        while pos < len(data):
            char = data[pos]
            if char == data[0]:
                return parts, data[pos + 1:]
            if char == ord("$"):
                self._refuse(text, "pseudo-variables in the replacement are not supported "
                             "(write \\$ for a $)")
            if char != ord("\\"):
                parts.append(bytes([char]))
                pos += 1
                continue
            if pos + 1 >= len(data):
                break
            escaped, pos, escapes = data[pos + 1], pos + 2, escapes + 1
            if escapes > MAX_REPLACEMENT_ESCAPES:
                self._refuse(text, "too many escapes in the replacement")
            if ord("0") <= escaped <= ord("9"):
                parts.append(escaped - ord("0"))
            elif escaped == ord("u"):
                self._refuse(text, "\\u (the request URI) is not supported")
            else:
                parts.append(REPLACEMENT_ESCAPES.get(escaped, bytes([escaped])))
        self._refuse(text, "no separator after the replacement")
        raise AssertionError                                     # not reached

    def define(self, quoted: bool) -> tuple[str, str]:
        """``#!substdef``'s define: the regex text names it, the replacement text (as
        written, escapes and all) is its value, in quotes for ``#!substdefs``."""
        if not self.raw_name or self.raw_value is None or b"$" in self.raw_value:
            self._refuse(self.raw_name.decode(), "an empty name" if not self.raw_name else
                         "no separator after the replacement" if self.raw_value is None else
                         "pseudo-variables in a define's value are not supported")
        assert self.raw_value is not None
        value = self.raw_value.decode()
        return self.raw_name.decode(), f'"{value}"' if quoted else value

    def apply(self, value: str, where: Source) -> str:
        """``value`` with the first (``g``: every) match replaced, as Kamailio's subst_str:
        each search starts where the last match ended, ``^`` matching there only after a
        newline or CR."""
        data = value.encode()
        out, pos, bol = bytearray(), 0, True
        while (match := self._match(data[pos:], bol)) is not None:
            if match.end() == match.start():
                self._fail(where, "matches an empty string here (Kamailio logs 'Matched "
                           "string is empty' and leaves the string unchanged)", value,
                           "a regular expression that matches at least one character")
                return value
            replaced = b"".join(part if isinstance(part, bytes) else _group(match, part)
                                for part in self.replacement)
            if len(replaced) > MAX_REPLACEMENT:
                self._fail(where, f"gives a replacement of {len(replaced)} bytes here "
                           "(Kamailio logs 'Buffer too small' and leaves the string "
                           "unchanged)", value, f"at most {MAX_REPLACEMENT} bytes per match")
                return value
            out += data[pos:pos + match.start()] + replaced
            pos += match.end()
            bol = data[pos - 1:pos] in (b"\n", b"\r")
            if not self.every:
                break
        if pos == 0:
            return value
        try:
            return (bytes(out) + data[pos:]).decode()
        except UnicodeDecodeError:
            raise ParseError(where, f"the #!{self.kind} of {self.where} cuts a UTF-8 character",
                         text=value, valid="a regex and replacement on whole characters"
                         ) from None

    def _fail(self, where: Source, problem: str, value: str, valid: str) -> None:
        """An error Kamailio logs for each string it meets: kamhttp refuses the file,
        naming the first such string."""
        if not self.failed:
            self.failed = True
            raise ParseError(where, f"the #!{self.kind} of {self.where} {problem}", text=value,
                         valid=valid)

    def _match(self, data: bytes, bol: bool) -> re.Match[bytes] | None:
        """The leftmost-longest match, as POSIX: Python finds the leftmost start; the longest
        end is the last one the regex can be pinned to."""
        first = self.search[bol].search(data)
        if first is None or self.fixed:
            return first
        for end in range(len(data), first.end() - 1, -1):
            key = (bol, len(data) - end)
            if key not in self.pinned:
                self.pinned[key] = re.compile(b"(?:%s)(?=[\\x00-\\xff]{%d}\\Z)" % (
                    self.search[bol].pattern, key[1]), self.search[bol].flags)
            if match := self.pinned[key].match(data, first.start()):
                return match
        return first


def _group(match: re.Match[bytes], number: int) -> bytes:
    """``\\N`` of a replacement: empty for a group that did not take part or does not exist."""
    return (match.group(number) or b"") if number <= match.re.groups else b""


class _ERE:
    """A POSIX extended regex, as glibc reads it in the C locale (bytes), translated to a
    Python bytes pattern.  Python would pick other submatches, or, with the s flag, other
    anchors in mid-pattern (glibc lets ``$\\n`` match): ``alternation`` and ``repeated_group``
    say when submatches may differ; the rest is refused."""

    def __init__(self, regex: bytes, newline: bool) -> None:
        self.regex, self.newline, self.pos, self.bol = regex, newline, 0, True
        self.alternation = self.repeated_group = self.repeats = False

    def pattern(self, bol: bool) -> bytes:
        """``bol``: may ``^`` match at the start (regexec without REG_NOTBOL)."""
        self.pos, self.bol = 0, bol
        out, self.repeats = self._alternatives(nested=False)
        return out

    def _peek(self) -> bytes:
        return self.regex[self.pos:self.pos + 1]

    def _alternatives(self, nested: bool) -> tuple[bytes, bool]:
        out, repeats = self._branch()
        while self._peek() == b"|":
            self.pos += 1
            self.alternation = True
            branch, more = self._branch()
            out, repeats = out + b"|" + branch, repeats or more
        if self._peek() == b")" and not nested:
            raise _Unsupported("')' without '('")
        return out, repeats

    def _branch(self) -> tuple[bytes, bool]:
        out, repeats = b"", False
        while self.pos < len(self.regex) and self._peek() not in (b"|", b")"):
            if self._peek() in (b"*", b"+", b"?", b"{"):
                raise _Unsupported(f"'{self._peek().decode()}' with nothing to repeat")
            atom, kind, inner = self._atom()
            if quantifier := self._quantifier():
                if kind == "anchor":
                    raise _Unsupported("a repeated ^ or $")
                if inner or self._quantifier():
                    raise _Unsupported("a repetition of a repetition")
                self.repeated_group |= kind == "group"
                atom, inner = b"(?:" + atom + b")" + quantifier, True
            out, repeats = out + atom, repeats or inner
        return out, repeats

    def _quantifier(self) -> bytes:
        char = self._peek()
        if char in (b"*", b"+", b"?"):
            self.pos += 1
            return char
        if char != b"{":
            return b""
        match = INTERVAL.match(self.regex, self.pos)
        if match is None or (match.group(3) and int(match.group(3)) < int(match.group(1))):
            raise _Unsupported("'{' not starting an interval {m}, {m,} or {m,n} (n >= m)")
        self.pos = match.end()
        return match.group()

    def _atom(self) -> tuple[bytes, str, bool]:
        """An atom as a Python pattern, its kind, and whether it holds a repetition."""
        char = self.regex[self.pos]
        self.pos += 1
        if char == ord("("):
            inner, repeats = self._alternatives(nested=True)
            if self._peek() != b")":
                raise _Unsupported("'(' without ')'")
            self.pos += 1
            return b"(" + inner + b")", "group", repeats
        if char == ord("."):
            return (b"[^\\n]" if self.newline else b"[\\x00-\\xff]"), "char", False
        if char in b"^$" and not self.newline and self.pos != (
                1 if char == ord("^") else len(self.regex)):
            raise _Unsupported("with the s flag, ^ other than first or $ other than last")
        if char == ord("^"):
            if self.newline:
                return (b"(?:\\A|(?<=\\n))" if self.bol else b"(?<=\\n)"), "anchor", False
            return (b"\\A" if self.bol else b"(?!)"), "anchor", False
        if char == ord("$"):
            return (b"(?=\\n|\\Z)" if self.newline else b"\\Z"), "anchor", False
        if char == ord("["):
            return self._bracket(), "char", False
        if char == ord("\\"):
            if self.pos >= len(self.regex):
                raise _Unsupported("a backslash at the end")
            char = self.regex[self.pos]
            self.pos += 1
            if bytes([char]).isalnum():
                raise _Unsupported(f"'\\{chr(char)}' (a GNU operator or back-reference)")
        return b"\\x%02x" % char, "char", False

    def _bracket(self) -> bytes:
        """``[...]``: a backslash is itself; with REG_NEWLINE ``[^...]`` never matches a
        newline."""
        negate = self._peek() == b"^"
        self.pos += negate
        ranges = [(10, 10)] if negate and self.newline else []
        first = True
        while not (self._peek() == b"]" and not first):
            first = False
            if self.pos >= len(self.regex):
                raise _Unsupported("'[' without ']'")
            if self.regex.startswith((b"[=", b"[."), self.pos):
                raise _Unsupported("[= =] or [. .]")
            if self.regex.startswith(b"[:", self.pos):
                end = self.regex.find(b":]", self.pos + 2)
                name = self.regex[self.pos + 2:end].decode("latin-1") if end > 0 else ""
                if name not in CLASSES:
                    raise _Unsupported(f"the class [:{name}:]")
                self.pos, bounds = end + 2, CLASSES[name]
                ranges += [(ord(bounds[i]), ord(bounds[i + 1]))
                           for i in range(0, len(bounds), 2)]
                continue
            low = high = self.regex[self.pos]
            self.pos += 1
            if self._peek() == b"-" and self.regex[self.pos + 1:self.pos + 2] not in (b"]", b""):
                high = self.regex[self.pos + 1]
                if self.regex.startswith(b"[", self.pos + 1) or high < low:
                    raise _Unsupported("a range out of order or ending in '['")
                self.pos += 2
            ranges.append((low, high))
        self.pos += 1
        return b"[" + b"^" * negate + b"".join(
            b"\\x%02x" % low + (b"-\\x%02x" % high if high > low else b"")
            for low, high in ranges) + b"]"


def read_modparams(path: pathlib.Path, defines: Mapping[str, str] | None = None
                   ) -> tuple[list[Statement], list[ConfigError]]:
    """The http_client modparam statements (name, value, "file:line") of a kamailio.cfg, in
    order, and every error found reading them.  Raises ConfigError if it cannot be read."""
    text = read_text(path, "an existing readable kamailio.cfg")
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
        except ParseError as err:
            errors.append(err.config_error())
            if err.fatal:
                break
    return statements, errors


def _expect(scanner: Scanner, what: str, kinds: tuple[str, ...], start: Token) -> Token:
    token = scanner.token()
    if token is None or token.kind not in kinds or (
            token.kind == "punct" and token.value != what):
        raise ParseError(start.where, f"malformed {start.value}: {what} expected",
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
        raise ParseError(start.where, "modparamx is not supported for http_client",
                     valid='modparam("http_client", "name", value)')
    _expect(scanner, ",", ("punct",), start)
    name = _expect(scanner, "a quoted parameter name", ("str",), start)
    _expect(scanner, ",", ("punct",), start)
    value = scanner.token()
    negative = value is not None and value.kind == "punct" and value.value == "-"
    if negative:
        value = scanner.token()
    if value is None or value.kind not in ("str", "num") or (negative and value.kind != "num"):
        problem = "value expected" if value is None or value.kind != "id" else \
            f"{value.value} is not #!defined"
        raise ParseError(start.where, f"modparam {name.value!r}: {problem}",
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
