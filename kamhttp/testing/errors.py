"""The testing kit's errors: part of kamhttp's one exception tree, raised only by the kit."""
from __future__ import annotations

from ..errors import KamhttpError


class SipParseError(KamhttpError):
    """A SIP message text is malformed (testing kit): names the line and what is wrong."""


class KsrEmulationError(KamhttpError, AttributeError):
    """The testing kit's emulated KSR does not provide this function or pseudo-variable.

    An AttributeError too, so ``hasattr(KSR, name)`` answers False as inside Kamailio when a
    module is not loaded; calling it raises with the name and what is emulated instead.
    """


class ScriptError(KamhttpError):
    """A KEMI script cannot be loaded or started the way app_python3 would (testing kit)."""
