"""connections / connok / connfail (spec 7.2) as totals over forked worker processes, readable
from outside the process tree."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import kamhttp
from kamhttp.ops import counters


@pytest.fixture
def modparam(http_server):
    kamhttp.reset()
    kamhttp.modparam("httpcon", f"api=>{http_server.url}")
    yield kamhttp.modparam
    kamhttp.reset()


def delta(before: dict[str, int]) -> tuple[int, int]:
    now = counters.totals()
    return now["connok"] - before["connok"], now["connfail"] - before["connfail"]


def test_ok_only_for_exactly_200(modparam, http_server, fault_server):
    before = counters.totals()
    assert kamhttp.http_connect("api", "/code/200", "$var(r)") == 200
    assert delta(before) == (1, 0)
    for status in (201, 204, 302, 404, 500):
        assert kamhttp.http_client_query(f"{http_server.url}/code/{status}",
                                         "$var(r)") == status
    assert delta(before) == (1, 5)
    assert kamhttp.http_client_query(fault_server.refused_url, "$var(r)") == 7
    assert delta(before) == (1, 6)


def test_minus_one_paths_are_not_counted(modparam):
    before = counters.totals()
    assert kamhttp.http_connect("missing", "/", "$var(r)") == -1
    assert kamhttp.http_client_query("", "$var(r)") == -1
    assert kamhttp.http_connect("api", "/", "$rm") == -1
    assert delta(before) == (0, 0)


def test_connections_counts_every_definition(modparam, tmp_path):
    section = tmp_path / "http_client.cfg"
    section.write_text("[fromfile]\nurl = http://127.0.0.1:1/\n")
    modparam("httpcon", "second=>http://127.0.0.1:1/")
    modparam("config_file", str(section))
    assert counters.totals()["connections"] == 3


def test_totals_summed_over_forked_workers(modparam, http_server):
    counters.prepare(1)                      # the main process, before it forks
    before = counters.totals()
    children = []
    for worker in range(2):
        pid = os.fork()
        if pid == 0:                         # a worker: 3 x 200 and worker+1 x 404
            code = 0
            try:
                for path in ["/code/200"] * 3 + ["/code/404"] * (worker + 1):
                    kamhttp.http_connect("api", path, "$var(r)")
            except BaseException:
                code = 1
            os._exit(code)
        children.append(pid)
    for pid in children:
        assert os.waitpid(pid, 0)[1] == 0
    assert delta(before) == (6, 3)
    assert counters.read(os.getpid()) == counters.totals()


def test_read_of_a_missing_store():
    with pytest.raises(FileNotFoundError):
        counters.read(2 ** 22 + 12345)


def test_operator_reads_the_totals_from_outside(modparam):
    assert kamhttp.http_connect("api", "/code/200", "$var(r)") == 200
    done = subprocess.run([sys.executable, "-m", "kamhttp", "counters", "--pid",
                           str(os.getpid())], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == counters.totals()
    missing = subprocess.run([sys.executable, "-m", "kamhttp", "counters", "--pid",
                              str(2 ** 22 + 12345)], capture_output=True, text=True, timeout=60)
    assert missing.returncode == 1 and "no kamhttp counters" in missing.stderr


def test_store_lock_keeps_forked_workers_apart():
    """Workers inherit the store's descriptor; its lock must still exclude them from each
    other, or two could claim the same slot and lose increments."""
    counters.prepare()
    store = counters._store
    with store.locked():
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:                                   # the worker: try without waiting
            try:
                got = counters._FileLock(store.fd).acquire(blocking=False)
                os.write(write_end, b"1" if got else b"0")
            finally:
                os._exit(0)
        os.close(write_end)
        answer = os.read(read_end, 1)
        os.close(read_end)
        os.waitpid(pid, 0)
    assert answer == b"0", "a forked worker took the lock the main process holds"
