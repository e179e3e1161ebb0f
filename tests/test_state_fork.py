"""Per-process state across fork: nothing exists before the first request, a child starts
clean, and the parent's connections survive whatever the child does (spec 6.7)."""
from __future__ import annotations

import gc
import os

import pytest

import kamhttp
from kamhttp.core import state


@pytest.fixture
def modparam():
    kamhttp.reset()
    yield kamhttp.modparam
    kamhttp.reset()


def in_child(body) -> int:
    """Run body() in a forked child; its return value (0..255) is the exit status."""
    pid = os.fork()
    if pid == 0:
        status = 99
        try:
            status = body()
        finally:
            os._exit(status)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def test_configuration_creates_no_state(http_server):
    def child() -> int:
        kamhttp.reset()
        kamhttp.modparam("keep_connections", 1)
        kamhttp.modparam("httpcon", f"api=>{http_server.url}")
        kamhttp.finalize()
        if state.peek() is not None:
            return 1
        if kamhttp.http_connect("api", "/code/200", "$var(r)") != 200:
            return 2
        return 0 if state.peek() is not None and "api" in state.peek().handles else 3
    assert in_child(child) == 0


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_child_starts_clean_and_leaves_the_parent_connection_alone(
        modparam, scheme, http_server, https_server):
    server = http_server if scheme == "http" else https_server
    modparam("cacert", https_server.ca_file)
    modparam("keep_connections", 1)
    modparam("httpcon", f"api=>{server.url}")
    assert kamhttp.http_connect("api", "/code/200", "$var(r)") == 200
    parent_port = server.requests[-1].client_port
    server.clear()

    def child() -> int:
        if state.peek() is not None:              # the inherited state was dropped
            return 1
        gc.collect()                              # the parent's handles must survive this
        if kamhttp.http_connect("api", "/code/200", "$var(r)") != 200:
            return 2
        return 0
    assert in_child(child) == 0
    [child_request] = server.requests
    assert child_request.client_port != parent_port
    assert kamhttp.http_connect("api", "/code/200", "$var(r)") == 200
    assert server.requests[-1].client_port == parent_port


def test_state_is_renewed_when_the_pid_changed(modparam, http_server):
    modparam("httpcon", f"api=>{http_server.url}")
    assert kamhttp.http_connect("api", "/code/200", "$var(r)") == 200
    inherited = state.peek()

    def child() -> int:
        # a fork the at-fork hook did not see (e.g. from C without PyOS_AfterFork_Child)
        state._state = inherited
        fresh = state.process_state()
        return 0 if fresh is not inherited and fresh.pid == os.getpid() and not fresh.handles \
            else 1
    assert in_child(child) == 0
