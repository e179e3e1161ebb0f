"""The YAML configuration format of the interface page::

    modparams:                       # applied in order, exactly like modparam lines
      - connection_timeout: 2
      - httpcon: "api=>http://127.0.0.1:8080/v1;failover=backup"
    connections:                     # config_file sections, built after all modparams
      backup:
        url: http://127.0.0.1:8081/v1
        timeout: 1

Values are YAML scalars: a modparam takes an integer or a string as its table says (a YAML
boolean counts as 1/0); connection keys are the config_file keys (both spellings,
case-insensitive), with integers, booleans (YAML's or the config_file words), tlsversion names
or numbers, and strings (null or "" sets a string to null, as in the config_file).  Every
error names file:line.
"""
from __future__ import annotations

import pathlib
import re
from typing import Any

import yaml

from .cfgfile import section_spec
from .syntax import BOOLEAN_WORDS, TLS_NAMES, TLS_VERSION_NUMBERS, Source, read_text
from .connection import KEY_BY_SPELLING, ConnectionKey, ConnectionSpec, describe, invalid_value
from ..errors import ConfigError
from .params import Statement

TOP_LEVEL = ("modparams", "connections")
NAME = re.compile(r"[^\s=]+\Z")


def read_yaml(path: pathlib.Path
              ) -> tuple[list[Statement], list[ConnectionSpec], list[ConfigError]]:
    """The modparam statements (name, value, "file:line"), the connection sections and every
    error found in a YAML file.  Raises ConfigError if it cannot be read or parsed."""
    text = read_text(path, "an existing readable YAML file")
    return parse_yaml(text, str(path), path.resolve().parent)


def parse_yaml(text: str, filename: str, base_dir: pathlib.Path
               ) -> tuple[list[Statement], list[ConnectionSpec], list[ConfigError]]:
    """Like :func:`read_yaml`, from the text of a file named ``filename``."""
    reader = _Reader(filename, base_dir)
    try:
        loader = yaml.SafeLoader(text)
        try:
            root = loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        raise ConfigError(Source.at(filename, mark.line + 1 if mark else 1),
                          f"YAML syntax error: {err.problem or err.context}",
                          valid="a YAML mapping with modparams: and connections:") from None
    except (yaml.YAMLError, RecursionError) as err:
        raise ConfigError(filename, f"YAML syntax error: {err}", valid="YAML") from None
    reader.loader = loader
    statements, specs = reader.document(root)
    return statements, specs, reader.errors


class _Reader:
    """Walks the node tree (for line numbers), constructing scalars only."""

    def __init__(self, filename: str, base_dir: pathlib.Path) -> None:
        self.filename, self.base_dir = filename, base_dir
        self.errors: list[ConfigError] = []
        self.loader: yaml.SafeLoader | None = None

    def where(self, node: yaml.Node) -> Source:
        return Source.at(self.filename, node.start_mark.line + 1)

    def error(self, node: yaml.Node, message: str, text: Any = None, valid: str | None = None
              ) -> None:
        self.errors.append(ConfigError(self.where(node), message,
                                       text=None if text is None else str(text), valid=valid))

    def scalar(self, node: yaml.Node) -> Any:
        """The value of a scalar node; raises _NotScalar for lists, mappings and bad data."""
        if not isinstance(node, yaml.ScalarNode):
            raise _NotScalar("a list or mapping")
        assert self.loader is not None           # set before the walk
        try:
            return self.loader.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, OverflowError) as err:
            raise _NotScalar(str(err)) from None

    def pairs(self, node: yaml.Node, what: str) -> list[tuple[yaml.Node, str, yaml.Node]]:
        """The (key node, key, value node) of a mapping with unique string keys."""
        if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null":
            return []
        if not isinstance(node, yaml.MappingNode):
            self.error(node, f"{what} must be a mapping", valid=f"{what}: followed by key: value")
            return []
        result, seen = [], set()
        for key_node, value_node in node.value:
            try:
                key = self.scalar(key_node)
            except _NotScalar:
                key = None
            if not isinstance(key, str):
                self.error(key_node, f"{what}: keys must be strings", valid="name: value")
            elif key in seen:
                self.error(key_node, f"{what}: {key!r} given twice", text=key,
                           valid="each key once")
            else:
                seen.add(key)
                result.append((key_node, key, value_node))
        return result

    def document(self, root: yaml.Node | None) -> tuple[list[Statement], list[ConnectionSpec]]:
        statements: list[Statement] = []
        specs: list[ConnectionSpec] = []
        if root is None:
            return statements, specs
        for key_node, key, value in self.pairs(root, "the document"):
            if key == "modparams":
                statements = self.modparams(value)
            elif key == "connections":
                specs = self.connections(value)
            else:
                self.error(key_node, f"unknown top-level key {key!r}", text=key,
                           valid=", ".join(TOP_LEVEL))
        return statements, specs

    def modparams(self, node: yaml.Node) -> list[Statement]:
        if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null":
            return []
        if not isinstance(node, yaml.SequenceNode):
            self.error(node, "modparams must be a list", valid="modparams: then - name: value")
            return []
        statements: list[Statement] = []
        for item in node.value:
            pairs = self.pairs(item, "a modparams item") if isinstance(
                item, yaml.MappingNode) else None
            if pairs is None or len(pairs) != 1:
                if pairs is None or item.value:
                    self.error(item, "each modparams item is one name: value",
                               valid="- connection_timeout: 2")
                continue
            _, name, value_node = pairs[0]
            try:
                value = self.scalar(value_node)
            except _NotScalar as err:
                self.error(value_node, f"modparam {name!r}: not a single value ({err})",
                           valid="an integer or a string")
                continue
            if isinstance(value, bool):
                value = int(value)                      # yes/no, on/off count as 1/0
            statements.append((name, value, self.where(item)))
        return statements

    def connections(self, node: yaml.Node) -> list[ConnectionSpec]:
        specs = []
        for name_node, name, body in self.pairs(node, "connections"):
            if not NAME.match(name):
                self.error(name_node, f"invalid connection name {name!r}", text=name,
                           valid="a non-empty name without whitespace or '='")
                continue
            spec = self.connection(name, name_node, body)
            if spec is not None:
                specs.append(spec)
        return specs

    def connection(self, name: str, name_node: yaml.Node, body: yaml.Node
                   ) -> ConnectionSpec | None:
        values: dict[str, Any] = {}
        url_node: yaml.Node = name_node
        errors = len(self.errors)
        for key_node, spelling, value_node in self.pairs(body, f"connection {name!r}"):
            key = KEY_BY_SPELLING.get(spelling.lower())
            if key is None:
                self.error(key_node, f"connection {name!r}: unknown key {spelling!r}",
                           text=spelling, valid=", ".join(KEY_BY_SPELLING))
                continue
            if key.name in values:
                self.error(key_node, f"connection {name!r}: {key.name} given twice",
                           text=spelling, valid="each key once, in one spelling")
                continue
            try:
                values[key.name] = self.value(key, spelling, value_node)
            except _BadValue as err:
                self.error(value_node, f"connection {name!r}: {spelling}: {err.message}",
                           text=None if key.name == "password" else err.text, valid=err.valid)
                continue
            if key.name == "url":
                url_node = value_node
        if len(self.errors) > errors:
            return None
        url = values.pop("url", None)
        if url is None:
            self.error(name_node, f"connection {name!r} has no url", text=name,
                       valid="url: scheme://host[:port][/path]")
            return None
        try:
            return section_spec(name, url, values, self.where(name_node), self.where(url_node),
                                self.base_dir)
        except ConfigError as err:
            self.errors.append(err)
            return None

    def value(self, key: ConnectionKey, spelling: str, node: yaml.Node) -> Any:
        try:
            value = self.scalar(node)
        except _NotScalar as err:
            raise _BadValue(f"not a single value ({err})", None, "a scalar value") from None
        if key.kind == "str":
            if value is None or value == "":
                return None                                       # null, as "" in the file
            if not isinstance(value, str) or "\x00" in value:
                raise _BadValue("takes a string", value, f"a quoted string: {spelling}: "
                                "\"...\"")
            return value
        if key.kind == "tlsversion" and isinstance(value, str):
            if value.lower() not in TLS_VERSION_NUMBERS:
                raise _BadValue("unsupported tlsversion", value, f"{TLS_NAMES} or 0..7")
            return TLS_VERSION_NUMBERS[value.lower()]
        if key.kind == "bool" and isinstance(value, str) and value.lower() in BOOLEAN_WORDS:
            return BOOLEAN_WORDS[value.lower()]
        if key.kind == "bool" and isinstance(value, bool):
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise _BadValue("takes an integer", value, describe(key))
        if problem := invalid_value(key, value):
            raise _BadValue("value out of range", value, problem)
        return value


class _NotScalar(Exception):
    pass


class _BadValue(Exception):
    def __init__(self, message: str, text: Any, valid: str) -> None:
        super().__init__(message)
        self.message, self.valid = message, valid
        self.text = None if text is None else str(text)
