"""Session-wide real servers on 127.0.0.1 (see tests/servers). Each fixture yields a server with
.url (no trailing slash), .host, .port, .requests (tests.servers.Request records) and .clear()."""
from __future__ import annotations

from typing import Iterator

import pytest

from tests import servers


@pytest.fixture(scope="session")
def http_server() -> Iterator[servers.HttpServer]:
    """Plain HTTP/1.1, keep-alive, the endpoints of tests/servers/app.py."""
    with servers.start_http_server() as server:
        yield server
