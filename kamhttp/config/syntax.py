"""What the configuration formats share: positions in a file, the parse error they raise, the
file's text, file-name resolution, and the value words (booleans, TLS version names)."""
from __future__ import annotations

import pathlib

from ..errors import ConfigError
from .params import TLS_VERSIONS


class Source(str):
    """Where a configuration value came from, as text (``"kamailio.cfg:12"``) that also
    carries its file and line, so errors sort in file order without parsing text again."""

    file: str
    line: int

    @classmethod
    def at(cls, file: str, line: int) -> "Source":
        source = cls(f"{file}:{line}")
        source.file, source.line = file, line
        return source


def position(source: str) -> tuple[str, int]:
    """(file, line) of a source; a source without a line (a modparam) sorts first."""
    if isinstance(source, Source):
        return source.file, source.line
    return source, 0


class ParseError(Exception):
    """A format's own error, before it knows its file: becomes a ConfigError in one place."""

    def __init__(self, where: Source | int, message: str, text: str | None = None,
                 valid: str | None = None, fatal: bool = False) -> None:
        super().__init__(message)
        self.where, self.message, self.text, self.valid = where, message, text, valid
        self.fatal = fatal           # nothing sensible can be read after it

    @property
    def line(self) -> int:
        return self.where if isinstance(self.where, int) else self.where.line

    def config_error(self, filename: str = "") -> ConfigError:
        where = self.where if isinstance(self.where, Source) else Source.at(filename, self.where)
        return ConfigError(where, self.message, text=self.text, valid=self.valid)


BOOLEAN_WORDS = {"yes": 1, "true": 1, "enable": 1, "enabled": 1, "1": 1, "on": 1,
                 "no": 0, "false": 0, "disable": 0, "disabled": 0, "0": 0, "off": 0}
"""The words of a 0/1 value in the config_file and YAML (Kamailio's cfg_parser)."""

TLS_VERSION_NUMBERS = {name.lower(): number for number, name in enumerate(TLS_VERSIONS)}
TLS_NAMES = ", ".join(TLS_VERSIONS)


def read_text(path: pathlib.Path, valid: str) -> str:
    """The text of a configuration file, or ConfigError: unreadable (``valid`` says what file
    would do), or not UTF-8 (naming the line and the byte)."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ConfigError(str(path), f"cannot read the file: {err.strerror}", text=str(path),
                          valid=valid) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise ConfigError(Source.at(str(path), line), f"the file is not UTF-8 text (byte "
                          f"0x{data[err.start]:02x})", valid="UTF-8 text") from None


def resolve_file_name(name: str, base_dir: pathlib.Path, source: str = "") -> pathlib.Path:
    """Documentation 3.20: ``/x`` absolute, ``.``-names relative to the working directory,
    anything else relative to ``base_dir``, the main config file's directory."""
    if not name:
        raise ConfigError(source, "empty file name", text=name, valid="a file name")
    if name.startswith("/"):
        return pathlib.Path(name)
    if name.startswith("."):
        return pathlib.Path.cwd() / name
    return base_dir / name
