"""The configuration registry: module parameters applied in load order, connections from every
source, and the immutable :class:`Configuration` the request side reads.

Load order (spec 2.1, master semantics): an ``httpcon`` copies the Settings in force at its
line; ``config_file`` is read and checked at its line, and its connections (like the YAML
``connections:``) are built from the final Settings when the load ends (:func:`finalize`);
cacert, netinterface, timeout_mode and response_headers are read at request time, and a
connection timeout of 0 becomes the final default then (``Settings.effective_timeout``).

Loads are transactional: each builds a new state from the old one and swaps it in only when it
succeeded, so a failed load raises :class:`ConfigError` and changes nothing.  Loading again adds
on top, like more modparam lines (a duplicate connection name is then an error); :func:`reset`
starts again from the defaults.

Loading after requests were made publishes a new Configuration with a higher ``generation``;
the request side sees it at its next call of :func:`current` (and drops the curl handles of
connections that changed).  Each worker process holds its own copy: load in ``mod_init()``,
before Kamailio forks, so that every worker has the same configuration.
"""
from __future__ import annotations

import dataclasses
import os
import pathlib
import re
import threading
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .cfgfile import parse_config_file
from .connection import Connection, ConnectionSpec
from ..errors import ConfigError
from .httpcon import parse_httpcon
from .kamailiocfg import read_modparams
from .params import Settings, Statement, coerce
from .syntax import position, resolve_file_name
from .yamlfile import read_yaml

KINDS = ("yaml", "config_file", "kamailio_cfg")
DEFAULT_KAMAILIO_CFG = "/etc/kamailio/kamailio.cfg"


@dataclass(frozen=True)
class Configuration:
    """One published, immutable configuration: what every request reads.

    ``order`` is listcon's order (spec 7.1): the newest connection first, where config_file
    and YAML sections are created in reverse file order when their load ends, after its
    httpcon lines - so file sections come first in file order, then httpcon lines in reverse
    definition order.  ``warnings`` holds what was logged and ignored (unknown httpcon keys).
    """

    settings: Settings
    connections: Mapping[str, Connection]
    order: tuple[str, ...]
    generation: int
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Draft:
    """The state of a load in progress: immutable, so a failed step leaves the old one intact."""

    settings: Settings = dataclasses.field(default_factory=Settings)
    connections: tuple[Connection, ...] = ()   # built, in creation order
    specs: tuple[ConnectionSpec, ...] = ()     # config_file/YAML sections, in creation order
    warnings: tuple[str, ...] = ()

    def apply(self, name: str, value: Any, source: str, base_dir: pathlib.Path) -> "Draft":
        """This state after one ``modparam("http_client", name, value)`` line."""
        value = coerce(name, value, source)
        if name == "httpcon":
            warnings: list[str] = []
            conn = parse_httpcon(value, self.settings, source, warnings)
            _check_unique(conn.name, conn.source, self)
            return dataclasses.replace(self, connections=self.connections + (conn,),
                                       warnings=self.warnings + tuple(warnings))
        if name == "config_file":
            specs = parse_config_file(resolve_file_name(value, base_dir, source), base_dir)
            return self.with_specs(specs)
        return dataclasses.replace(self, settings=self.settings.with_value(name, value))

    def apply_all(self, statements: Iterable[Statement], base_dir: pathlib.Path) -> "Draft":
        """Every statement applied in order; raises one ConfigError listing every failure."""
        draft, errors = self, []
        for name, value, source in statements:
            try:
                draft = draft.apply(name, value, source, base_dir)
            except ConfigError as err:
                errors.extend(err.errors)
        if errors:
            raise ConfigError.collect(errors)
        return draft

    def load(self, statements: Iterable[Statement], specs: Iterable[ConnectionSpec],
             errors: list[ConfigError], base_dir: pathlib.Path) -> "Draft":
        """A file's statements applied and its sections queued; raises one ConfigError with
        the reader's ``errors`` and those of the statements, in file order."""
        try:
            draft = self.apply_all(statements, base_dir)
        except ConfigError as err:
            errors = [*errors, *err.errors]
        if errors:
            raise ConfigError.collect(sorted(errors, key=_place))
        return draft.with_specs(specs)

    def with_specs(self, specs: Iterable[ConnectionSpec]) -> "Draft":
        """Sections (given in file order) queued to be built when the load ends; like C they
        are created last section first, so listcon shows them in file order."""
        return dataclasses.replace(self, specs=self.specs + tuple(reversed(tuple(specs))))

    def build(self, generation: int) -> tuple["Draft", Configuration]:
        """The sections built with the final Settings, names checked, failovers resolved."""
        errors: list[ConfigError] = []
        sections = tuple(spec.build(self.settings) for spec in self.specs)
        built = self.connections + sections
        by_name: dict[str, Connection] = {}
        for conn in self.connections + sections[::-1]:    # sections in file order
            first = by_name.setdefault(conn.name, conn)
            if first is not conn:
                errors.append(_duplicate(conn.name, first.source, conn.source))
        for conn in built:
            if conn.failover is not None and conn.failover not in by_name:
                errors.append(ConfigError(
                    conn.source, f"connection {conn.name!r} fails over to {conn.failover!r}, "
                    "which is not defined", text=conn.failover,
                    valid="the name of a connection (defined anywhere in the configuration)"))
        if errors:
            raise ConfigError.collect(errors)
        draft = dataclasses.replace(self, connections=built, specs=())
        return draft, Configuration(
            settings=self.settings, connections=types.MappingProxyType(by_name),
            order=tuple(conn.name for conn in reversed(built)), generation=generation,
            warnings=self.warnings)


def _place(err: ConfigError) -> tuple[str, int]:
    """(file, line) of an error's source, to list errors in file order."""
    return position(err.source)


def _check_unique(name: str, source: str, draft: Draft) -> None:
    others: tuple[Connection | ConnectionSpec, ...] = (*draft.connections, *draft.specs)
    for other in others:
        if other.name == name:
            raise _duplicate(name, other.source, source)


def _duplicate(name: str, first: str, second: str) -> ConfigError:
    return ConfigError(second, f"duplicate connection name {name!r} (first defined at {first})",
                       text=name, valid="a name not used by another connection")


def main_cfg_dir(argv: list[bytes] | None = None) -> pathlib.Path:
    """The directory of Kamailio's main config file when running inside Kamailio (its ``-f``
    argument, default /etc/kamailio/kamailio.cfg); the working directory outside it.
    ``argv`` defaults to this process's command line."""
    if argv is None:
        try:
            argv = pathlib.Path("/proc/self/cmdline").read_bytes().split(b"\0")
        except OSError:
            return pathlib.Path.cwd()
    if not argv or not os.path.basename(argv[0]).startswith(b"kamailio"):
        return pathlib.Path.cwd()
    cfg = DEFAULT_KAMAILIO_CFG
    for i, arg in enumerate(argv[1:], 1):
        if arg == b"-f" and i + 1 < len(argv) and argv[i + 1]:
            cfg = os.fsdecode(argv[i + 1])
        elif arg.startswith(b"-f") and len(arg) > 2:
            cfg = os.fsdecode(arg[2:])
    return (pathlib.Path.cwd() / cfg).parent


# --- the process-wide registry ------------------------------------------------------------

_lock = threading.RLock()
_base = Settings()
"""The values before any modparam: PARAMS' defaults, with the running server's User-Agent
inside Kamailio (:func:`use_server_useragent`)."""
_draft = Draft()
_published: Configuration | None = None     # None while the draft holds unpublished changes
_generation = 0


def current() -> Configuration:
    """The configuration in force: one global read when nothing changed (the request path).

    After ``modparam()`` calls it finalizes lazily, so a mistake only visible at the end of
    loading (a failover to an unknown connection) raises ConfigError here; call
    :func:`finalize` at the end of ``mod_init()`` to see it there instead.
    """
    published = _published
    return published if published is not None else finalize()


def finalize() -> Configuration:
    """End the load: build config_file/YAML connections with the final Settings, check names
    and failovers, publish and return the new Configuration (or raise, changing nothing)."""
    with _lock:
        if _published is not None:
            return _published
        return _publish(_draft)


def _publish(draft: Draft) -> Configuration:
    """Build ``draft`` and make it the registry's published state (a failed build raises and
    changes nothing).  The caller holds ``_lock``."""
    global _draft, _published, _generation
    draft, published = draft.build(_generation + 1)
    _draft, _published, _generation = draft, published, _generation + 1
    return published


def modparam(name: str, value: Any) -> None:
    """``modparam("http_client", name, value)``: one line, applied in load order.

    Raises ConfigError (changing nothing) for an unknown name, a value of the wrong type
    (a string where an integer is due) or out of range, an httpcon syntax error, a duplicate
    connection name, or a config_file that cannot be read or parsed.
    """
    global _draft, _published
    with _lock:
        _draft, _published = _draft.apply(name, value, f"modparam {name}", main_cfg_dir()), None


def load_config(path: str | os.PathLike[str]) -> Configuration:
    """Apply a YAML file (``modparams:`` in order, then ``connections:``) and finalize."""
    path = pathlib.Path(path)
    statements, specs, errors = read_yaml(path)
    with _lock:
        return _publish(_draft.load(statements, specs, errors, path.resolve().parent))


def load_kamailio_cfg(path: str | os.PathLike[str],
                      defines: Mapping[str, str] | None = None) -> Configuration:
    """Apply the ``modparam("http_client", ...)`` lines of a kamailio.cfg in order and
    finalize.  ``defines`` are extra ``#!define``s, like ``kamailio -A NAME[=value]``."""
    path = pathlib.Path(path)
    statements, errors = read_modparams(path, defines)
    with _lock:
        return _publish(_draft.load(statements, (), errors, path.resolve().parent))


def reset() -> None:
    """Back to the defaults and no connections (the next generation)."""
    global _draft, _published
    with _lock:
        _draft, _published = Draft(settings=_base), None


def use_server_useragent(useragent: str) -> None:
    """Make ``useragent`` the default of the useragent modparam (documentation 3.4: the
    Kamailio SIP useragent string); the loads so far keep what they have, unless nothing was
    loaded yet."""
    global _base, _draft, _published
    with _lock:
        fresh = _draft == Draft(settings=_base)
        _base = _base.with_value("useragent", useragent)
        if fresh:
            _draft, _published = Draft(settings=_base), None


def http_connection_exists(name: str) -> int:
    """1 if a connection of exactly that name (case-sensitive) exists, else 0 (developer API)."""
    return 1 if name in current().connections else 0


# --- detached loads, for the checker --------------------------------------------------------

def detect_kind(path: pathlib.Path, text: str) -> str:
    """``yaml``, ``kamailio_cfg`` or ``config_file``, from the extension, then the content."""
    if path.suffix.lower() in (".yaml", ".yml"):
        return "yaml"
    if re.search(r"^\s*(modparamx?|loadmodule|route|request_route)\s*[(\[{\"]|^#!KAMAILIO",
                 text, re.M):
        return "kamailio_cfg"
    if re.search(r"^(modparams|connections)\s*:", text, re.M):
        return "yaml"
    return "config_file"


def read(path: str | os.PathLike[str], kind: str | None = None,
         defines: Mapping[str, str] | None = None) -> Configuration:
    """The Configuration a file gives on its own (defaults first), without touching the
    process-wide one: what ``python -m kamhttp check`` and ``listcon`` show."""
    path = pathlib.Path(path)
    if kind is None:
        try:
            kind = detect_kind(path, path.read_text(errors="replace"))
        except OSError as err:
            raise ConfigError(str(path), f"cannot read the file: {err.strerror}",
                              valid="a readable file") from None
    base_dir = path.resolve().parent
    if kind == "yaml":
        draft = Draft().load(*read_yaml(path), base_dir)
    elif kind == "kamailio_cfg":
        statements, errors = read_modparams(path, defines)
        draft = Draft().load(statements, (), errors, base_dir)
    elif kind == "config_file":
        draft = Draft().apply("config_file", str(path.resolve()), str(path), base_dir)
    else:
        raise ConfigError(str(path), f"unknown file kind {kind!r}", valid=", ".join(KINDS))
    return draft.build(generation=0)[1]
