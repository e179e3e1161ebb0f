"""HTTP authentication as a server checks it: Basic (RFC 7617) and Digest (RFC 7616, MD5,
qop=auth), enough for libcurl's implementations to pass and wrong credentials to fail."""
from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
import threading

REALM = "kamhttp"
USER = "alice"
PASSWORD = "s3cret"

_DIGEST_PARAM = re.compile(r'\s*([A-Za-z0-9_-]+)\s*=\s*("((?:[^"\\]|\\.)*)"|[^,\s]*)\s*,?')


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def basic_challenge() -> str:
    return f'Basic realm="{REALM}"'


def check_basic(authorization: str | None, user: str, password: str) -> bool:
    if not authorization or not authorization[:6].lower() == "basic ":
        return False
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return decoded == f"{user}:{password}"


def parse_digest(authorization: str) -> dict[str, str]:
    """The key=value parameters of a `Digest ...` credentials header."""
    params: dict[str, str] = {}
    text = authorization[7:]
    position = 0
    for _ in range(64):  # bounded: credentials carry a dozen parameters
        match = _DIGEST_PARAM.match(text, position)
        if not match or match.end() == position:
            break
        value = match.group(3) if match.group(3) is not None else match.group(2)
        params[match.group(1).lower()] = re.sub(r"\\(.)", r"\1", value)
        position = match.end()
    return params


class DigestRealm:
    """Issues nonces and checks Digest credentials against them."""

    def __init__(self) -> None:
        self._nonces: set[str] = set()
        self._lock = threading.Lock()
        self.opaque = secrets.token_hex(8)

    def challenge(self) -> str:
        nonce = secrets.token_hex(16)
        with self._lock:
            if len(self._nonces) > 10000:  # bounded memory over a long run
                self._nonces.clear()
            self._nonces.add(nonce)
        return (f'Digest realm="{REALM}", qop="auth", algorithm=MD5, nonce="{nonce}", '
                f'opaque="{self.opaque}"')

    def check(self, authorization: str | None, method: str, target: str,
              user: str, password: str) -> bool:
        if not authorization or authorization[:7].lower() != "digest ":
            return False
        params = parse_digest(authorization)
        with self._lock:
            known_nonce = params.get("nonce") in self._nonces
        if not known_nonce or params.get("username") != user or params.get("realm") != REALM:
            return False
        if params.get("uri") != target or params.get("algorithm", "MD5").upper() != "MD5":
            return False
        ha1 = _md5(f"{user}:{REALM}:{password}")
        ha2 = _md5(f"{method}:{params['uri']}")
        if params.get("qop") == "auth":
            expected = _md5(f"{ha1}:{params['nonce']}:{params.get('nc', '')}:"
                            f"{params.get('cnonce', '')}:auth:{ha2}")
        elif "qop" not in params:
            expected = _md5(f"{ha1}:{params['nonce']}:{ha2}")
        else:
            return False
        return secrets.compare_digest(expected, params.get("response", ""))
