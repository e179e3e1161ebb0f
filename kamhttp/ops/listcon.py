"""What the RPC command ``httpclient.listcon`` shows (spec 7.1), as valid JSON.

C sends one struct whose members are all named ``CONNECTION`` (duplicate JSON keys) and, for
USERNAME/PASSWORD, reads ``char*`` as ``str*``: garbage, invalid JSON or a crash (B8).  kamhttp
gives ``{"CONNECTION": [...]}`` with the fields of 7.1 in their order, the real USERNAME, the
PASSWORD masked (null when there is none), and TIMEOUT as the effective value (master's
fix-up: 0 becomes the final default).
"""
from __future__ import annotations

import json
from typing import Any

from ..config import Configuration
from ..config.connection import MASK
NO_CONNECTIONS = {"code": 500, "message": "No Connection Definitions"}
"""The fault C returns when no connection is defined [verified 5.6.3]."""


def listcon(config: Configuration) -> list[dict[str, Any]]:
    """One dict per connection, in listcon's order, fields in 7.1's order."""
    rows = []
    for name in config.order:
        conn = config.connections[name]
        rows.append({
            "NAME": conn.name,
            "SCHEMA": conn.schema,
            "URI": conn.url,
            "USERNAME": conn.username,
            "PASSWORD": None if conn.password is None else MASK,
            "FAILOVER": conn.failover,
            "TIMEOUT": config.settings.effective_timeout(conn.timeout),
        })
    return rows


def listcon_json(config: Configuration) -> str:
    """``{"CONNECTION": [...]}``, or the fault ``{"code": 500, "message": "No Connection
    Definitions"}`` when there is no connection."""
    rows = listcon(config)
    return json.dumps({"CONNECTION": rows} if rows else NO_CONNECTIONS, indent=2)
