"""The ``config_file`` format (spec 4.2-4.4): Kamailio's core cfg_parser dialect.

::

    [name]                      # a section per connection; name: A-Z a-z 0-9 _
    url = http://127.0.0.1/api  # key = value, one per line; keys case-insensitive
    useragent = "quoted value"  # "..." with \\\\ \\" \\n \\r \\t escapes; "" sets null
    verify_peer = yes           # booleans: yes true enable enabled 1 on / no false ...
    tlsversion = TLSv1.2        # enum: DEFAULT TLSv1 SSLv2 SSLv3 TLSv1.0 TLSv1.1 TLSv1.2

Kept from C: the lexer (character classes, escapes, comments, the 512-character token limit),
case-insensitive keys, a repeated key's last value winning, integers as ``str2sint`` reads
them (an unquoted ``-`` is not part of a number).  Decided (interface page): both spellings of
``keep_connections``/``keepconnections`` and ``http_follow_redirect``/``httpredirect`` [B4];
``""`` sets a value to null [B6]; a section without ``url``, a bad URL or a duplicate name is an
error, never a crash or a partial load [B7]; ``client_cert``/``client_key`` names resolve like
the file's own name [B5]; credentials in the ``url`` are taken out like httpcon's, so listcon
masks them (``username``/``password`` keys win over them); ``TLSv1.3`` names tlsversion 7.
"""
from __future__ import annotations

import pathlib
import re
from dataclasses import dataclass
from typing import Any

from .connection import KEY_BY_SPELLING, ConnectionKey, ConnectionSpec, describe, \
    invalid_value, parse_base_url
from ..errors import ConfigError
from .syntax import (BOOLEAN_WORDS, TLS_NAMES, TLS_VERSION_NUMBERS, ParseError, Source,
                     position, read_text, resolve_file_name)

MAX_TOKEN_LEN = 512
ALPHA = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
DELIM = frozenset("=:;.,?[]/@!$%&*()-+|'")
WHITESPACE = frozenset(" \t\r")
PATH_KEYS = frozenset({"client_cert", "client_key"})
FILE_KIND = {"keepconnections": "int", "keep_connections": "flag"}
"""How the file reads a key, by spelling, where it differs from the key's kind: C's
``keepconnections`` as an integer, as C does (``yes`` is refused [verified 5.6.3]); the
documented ``keep_connections`` also takes the boolean words, as the documentation writes the
file's flags (issue 11), and the integers C accepts."""
SINT = re.compile(r"[+-]?[0-9]+\Z")

ALPHA_T, STRING_T = "alpha", "string"
ESCAPES = {"n": "\n", "r": "\r", "t": "\t"}


@dataclass(frozen=True)
class Token:
    type: str          # ALPHA_T, STRING_T, or the single character ("\n", "=", "[", ...)
    value: str
    line: int


class Lexer:
    """cfg_get_token: the core cfg_parser's scanner, state for state."""

    def __init__(self, text: str) -> None:
        self.text, self.pos, self.line = text, 0, 1

    def _read(self) -> str | None:
        if self.pos >= len(self.text):
            return None
        char = self.text[self.pos]
        self.pos += 1
        if char == "\n":
            self.line += 1
        return char

    def _unread(self) -> None:
        self.pos -= 1
        if self.text[self.pos] == "\n":
            self.line -= 1

    def token(self, extended: bool = False) -> Token | None:
        """The next token, or None at the end of the file.  ``extended`` is the scanner mode
        of values: delimiters (``: / . ...``) are then part of an unquoted word."""
        value: list[str] = []
        start = self.line

        def push(char: str) -> None:
            nonlocal start
            if len(value) >= MAX_TOKEN_LEN:
                raise ParseError(self.line, f"token too long (more than {MAX_TOKEN_LEN} "
                             "characters)", valid=f"values of at most {MAX_TOKEN_LEN} characters")
            if not value:
                start = self.line
            value.append(char)

        def done(kind: str) -> Token:
            return Token(kind, "".join(value), start)

        state = "S"
        while (char := self._read()) is not None:
            if state == "S":
                if char in WHITESPACE:
                    continue
                if char in ALPHA or (extended and (char == "\\" or char in DELIM)):
                    push(char)
                    state = "A"
                elif char == '"':
                    start, state = self.line, "Q"
                elif char == "#":
                    state = "C"
                elif char == "\\":
                    state = "E"
                elif char in DELIM or char == "\n":
                    push(char)
                    start = self.line - (char == "\n")
                    return done(char)
                else:
                    raise _invalid(self.line, char)
            elif state == "A":
                if char in ALPHA or (extended and (char in DELIM or char == '"')):
                    push(char)
                elif char == "\\":
                    state = "AE"
                elif char in WHITESPACE or char in "#\n" or char in DELIM or char == '"':
                    self._unread()
                    return done(ALPHA_T)
                else:
                    raise _invalid(self.line, char)
            elif state in ("AE", "QE"):
                if char in '#"\\' and not (state == "QE" and char == "#"):
                    push(char)
                elif char in ESCAPES:
                    push(ESCAPES[char])
                elif char == " " and state == "AE":
                    push(" ")
                elif char != "\n":
                    raise ParseError(self.line, f"unsupported escape character {char!r}",
                                 text="\\" + char, valid="\\\\ \\\" \\n \\r \\t" +
                                 (" \\# \\<space>" if state == "AE" else "") +
                                 " or a backslash at the end of the line")
                state = "A" if state == "AE" else "Q"
            elif state == "Q":
                if char == '"':
                    return done(STRING_T)
                if char == "\\":
                    state = "QE"
                elif char == "\x00":
                    raise _invalid(self.line, char)
                else:
                    push(char)
            elif state == "C":
                if char == "\\":
                    state = "CE"
                elif char == "\n":
                    self._unread()
                    state = "S"
            elif state == "CE":
                state = "C"
            elif state == "E":
                if char in '#"\\':
                    push(char)
                    return done(char)
                if char in ESCAPES or char == " ":
                    push(ESCAPES.get(char, " "))
                    return done(value[0])
                if char != "\n":
                    raise ParseError(self.line, f"unsupported escape character {char!r}",
                                 text="\\" + char)
                state = "S"
        if state == "A":
            return done(ALPHA_T)
        if state == "Q":
            raise ParseError(start, "end of file inside a quoted string: closing '\"' missing",
                         valid='"quoted value"')
        if state in ("AE", "QE", "E"):
            raise ParseError(self.line, "end of file after a backslash",
                         valid="a character after the backslash")
        return None

    def skip_line(self) -> None:
        """Recovery after an error: continue with the next line."""
        end = self.text.find("\n", self.pos)
        self.pos = len(self.text) if end < 0 else end


def _invalid(line: int, char: str) -> ParseError:
    return ParseError(line, f"invalid character 0x{ord(char):x}", text=char,
                  valid="letters, digits, _ and =:;.,?[]/@!$%&*()-+|' outside quotes; "
                        "anything else inside \"...\"")


@dataclass
class _Section:
    name: str
    line: int
    values: dict[str, tuple[Any, int]]
    broken: bool = False


def parse_config_file(path: pathlib.Path, base_dir: pathlib.Path) -> tuple[ConnectionSpec, ...]:
    """The connection sections of a config_file, in file order, checked.  Raises one
    ConfigError listing every error (file:line, the text at fault, what would be valid)."""
    text = read_text(path, "an existing readable file (relative names resolve "
                            f"against {base_dir}, '.'-names against the working directory)")
    return parse_text(text, str(path), base_dir)


def parse_text(text: str, filename: str, base_dir: pathlib.Path) -> tuple[ConnectionSpec, ...]:
    """Like :func:`parse_config_file`, from the text of a file named ``filename``."""
    lexer, sections, errors = Lexer(text), list[_Section](), list[ConfigError]()
    while True:
        try:
            token = lexer.token()
            if token is None:
                break
            if token.type == ALPHA_T:
                if not sections:
                    raise ParseError(token.line, f"option {token.value!r} outside a section",
                                 text=token.value, valid="[name] before the first option")
                _option(lexer, token, sections[-1])
            elif token.type == "[":
                sections.append(_Section("", token.line, {}, broken=True))  # until parsed
                sections[-1] = _section_header(lexer, token.line)
            elif token.type != "\n":
                raise ParseError(token.line, "syntax error", text=token.value,
                             valid="[name] or key = value lines")
        except ParseError as err:
            errors.append(err.config_error(filename))
            if sections and err.line >= sections[-1].line:
                sections[-1].broken = True
            lexer.skip_line()
    specs = []
    for section in sections:
        if section.broken:
            continue
        try:
            specs.append(_spec(section, filename, base_dir))
        except ConfigError as err:
            errors.append(err)
    if errors:
        raise ConfigError.collect(sorted(errors, key=lambda err: position(err.source)))
    return tuple(specs)


def _section_header(lexer: Lexer, line: int) -> _Section:
    name = lexer.token()
    if name is None or name.type != ALPHA_T:
        raise ParseError(line, "invalid or missing connection name",
                     text=None if name is None else name.value,
                     valid="[name] with letters, digits and _ only")
    close = lexer.token()
    if close is None or close.type != "]":
        raise ParseError(line, "syntax error, ']' expected",
                     text=None if close is None else close.value,
                     valid="[name] with letters, digits and _ only")
    _end_of_line(lexer)
    return _Section(name.value, line, {})


def _end_of_line(lexer: Lexer) -> None:
    token = lexer.token()
    if token is not None and token.type != "\n":
        raise ParseError(token.line, "end of line expected", text=token.value,
                     valid="one value per line; quote values with spaces")


def _option(lexer: Lexer, token: Token, section: _Section) -> None:
    key = KEY_BY_SPELLING.get(token.value.lower())
    if key is None:
        raise ParseError(token.line, f"unsupported option {token.value!r}", text=token.value,
                     valid=", ".join(KEY_BY_SPELLING))
    try:
        _value(lexer, token, key, section)
    except ParseError as err:
        if key.name == "password":
            err.text = None                    # never echo a password
        raise


def _value(lexer: Lexer, token: Token, key: ConnectionKey, section: _Section) -> None:
    kind = FILE_KIND.get(token.value.lower(), key.kind)
    equal = lexer.token()
    if equal is None or equal.type != "=":
        raise ParseError(token.line, f"'=' expected after {token.value!r}",
                     text=None if equal is None else equal.value, valid=f"{token.value} = value")
    value = lexer.token(extended=kind not in ("int", "flag"))
    if value is None or value.type == "\n":
        raise ParseError(token.line, f"value of {token.value!r} missing",
                     valid=f"{token.value} = value")
    if value.type not in (ALPHA_T, STRING_T):
        raise ParseError(token.line, f"invalid value of {token.value!r}", text=value.value,
                     valid=f"{describe(key)} (a negative number must be quoted)"
                     if kind in ("int", "flag") else
                     "a value; quote it if it holds other characters")
    section.values[key.name] = (_typed(key, kind, value, token.value), token.line)
    _end_of_line(lexer)


def _typed(key: ConnectionKey, kind: str, token: Token, spelling: str) -> Any:
    text = token.value
    if kind == "str":
        if "\x00" in text:
            raise _invalid(token.line, "\x00")
        return text or None                                  # "" sets null [B6]
    if kind == "bool":
        if text.lower() not in BOOLEAN_WORDS:
            raise ParseError(token.line, f"{spelling}: boolean expected", text=text,
                         valid=", ".join(BOOLEAN_WORDS))
        return BOOLEAN_WORDS[text.lower()]
    if kind == "tlsversion":
        if text.lower() not in TLS_VERSION_NUMBERS:
            raise ParseError(token.line, f"{spelling}: unsupported enum value", text=text,
                         valid=TLS_NAMES)
        return TLS_VERSION_NUMBERS[text.lower()]
    if kind == "flag" and text.lower() in BOOLEAN_WORDS:
        return BOOLEAN_WORDS[text.lower()]
    if not SINT.match(text):
        if kind == "flag":
            raise ParseError(token.line, f"{spelling}: boolean expected", text=text,
                         valid=", ".join(BOOLEAN_WORDS))
        raise ParseError(token.line, f"{spelling}: invalid integer value", text=text,
                     valid=f"{describe(key)} (a negative number must be quoted)")
    if problem := invalid_value(key, int(text)):
        raise ParseError(token.line, f"{spelling}: value out of range", text=text, valid=problem)
    return int(text)


def _spec(section: _Section, filename: str, base_dir: pathlib.Path) -> ConnectionSpec:
    source = Source.at(filename, section.line)
    values = {name: value for name, (value, _line) in section.values.items()}
    url = values.pop("url", None)
    if url is None:
        raise ConfigError(source, f"section [{section.name}] has no url",
                          text=f"[{section.name}]", valid="url = scheme://host[:port][/path]")
    return section_spec(section.name, url, values, source,
                        Source.at(filename, section.values['url'][1]), base_dir)


def section_spec(name: str, url: str, values: dict[str, Any], source: str, url_source: str,
                 base_dir: pathlib.Path) -> ConnectionSpec:
    """A checked config_file or YAML section as a ConnectionSpec: the credentials in ``url``
    taken out (``username``/``password`` keys win over them), the certificate and key file
    names resolved [B5].  ``values`` holds the section's other keys."""
    schema, uri, username, password = parse_base_url(url, url_source)
    values = {**values}
    values.setdefault("username", username)
    values.setdefault("password", password)
    for key in PATH_KEYS & values.keys():
        if values[key] is not None:
            values[key] = str(resolve_file_name(values[key], base_dir))
    return ConnectionSpec(name, schema, uri, source, tuple(values.items()))
