"""kamhttp's errors, in one place.

Configuration mistakes raise :class:`ConfigError` at load time, naming the source (file and
line, or the modparam and its value), the text at fault and what would be valid.  Request-time
failures never raise into a routing script: they become return codes (see ``functions``).
"""
from __future__ import annotations


class KamhttpError(Exception):
    """Base class of every error kamhttp raises."""


class ConfigError(KamhttpError):
    """A configuration input is malformed or inconsistent.

    ``source`` names where (``"kamailio.cfg:12"``, ``"modparam httpcon"``), ``text`` is the
    input at fault and ``valid`` says what would have been accepted.  ``errors`` holds every
    error when several were collected (the checker reports them all).
    """

    def __init__(self, source: str, message: str, text: str | None = None,
                 valid: str | None = None, errors: list["ConfigError"] | None = None) -> None:
        self.source = source
        self.message = message
        self.text = text
        self.valid = valid
        self.errors = errors or [self]
        parts = [f"{source}: {message}"]
        if text is not None:
            parts.append(f"at {_clip(text)!r}")
        if valid:
            parts.append(f"(valid: {valid})")
        super().__init__(" ".join(parts))

    @classmethod
    def collect(cls, errors: list["ConfigError"]) -> "ConfigError":
        """One error standing for several, its message listing them all."""
        if len(errors) == 1:
            return errors[0]
        err = cls(errors[0].source, f"{len(errors)} errors:\n  " +
                  "\n  ".join(str(e) for e in errors))
        err.errors = list(errors)
        return err


class PVError(KamhttpError):
    """A pseudo-variable name cannot be parsed, or names a read-only variable."""


def _clip(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
