"""What travels between kamhttp's processes on the asynchronous path: the job and outcome
encodings, the hand-over queue (inline and memfd bodies, the bytes forwarded unchanged), and
a transfer process fed through its framed pipe with many jobs at once, against a real server."""
from __future__ import annotations

import dataclasses
import json
import os
import select

import pytest

import kamhttp
from kamhttp.aio.handover import INLINE_BODY, Handover
from kamhttp.aio.jobs import Job, Outcome
from kamhttp.aio import transfers
from kamhttp.aio.transfers import FrameReader, FrameWriter

pytestmark = pytest.mark.usefixtures("fresh_config")


def _distinct(cls: type) -> dict[str, object]:
    """A value per field, each different from its default and from the others."""
    values: dict[str, object] = {}
    for n, f in enumerate(dataclasses.fields(cls)):
        kind = f.type if isinstance(f.type, str) else f.type.__name__
        if kind.startswith("int"):
            values[f.name] = 1000 + n
        elif kind.startswith("bool"):
            values[f.name] = not f.default
        elif kind.startswith("bytes"):
            values[f.name] = f"{f.name}-bytes".encode()
        elif kind.startswith("list"):
            values[f.name] = [f.name.encode()]
        elif kind.startswith("dict"):
            values[f.name] = {f.name: float(n)}
        else:
            values[f.name] = f"{f.name}-text"
    return values


@pytest.mark.parametrize("cls", [Job, Outcome])
def test_every_field_survives_the_encoding(cls):
    item = cls(**_distinct(cls))
    assert cls.decode(item.encode()) == item


def test_an_inline_job_is_forwarded_as_the_datagram_itself():
    queue = Handover(1 << 20)
    job = Job(7, 8, "done", "$avp(r)", "con", "/path", body=b"x" * 100)
    assert queue.put(job)
    taken = queue.take()
    assert taken is not None
    assert taken[0] == job and taken[1] == job.encode()
    assert queue.take() is None


def test_a_large_body_travels_in_a_memfd_and_is_forwarded_whole():
    queue = Handover(1 << 20)
    body = bytes(range(256)) * (4 * INLINE_BODY // 256)      # 128 KiB, past the inline size
    job = Job(1, 2, "done", "$avp(r)", None, "http://127.0.0.1/", "PUT", body=body)
    assert queue.put(job)
    taken = queue.take()
    assert taken is not None
    got, forwarded = taken
    assert got.body == body and Job.decode(forwarded) == job
    assert len(forwarded) > len(body)                         # the body is in it now


class TransferProcess:
    """A transfer process forked as the HTTP process forks it, fed through its pipe."""

    def __init__(self) -> None:
        self.pid, mine = transfers.start()
        self.sock = mine
        self.writer, self.reader = FrameWriter(mine), FrameReader(mine)
        self.next_id = 1

    def run(self, *jobs: Job) -> list[Outcome]:
        """Send ``jobs`` at once; their outcomes in job order, each received exactly once."""
        ids = list(range(self.next_id, self.next_id + len(jobs)))
        self.next_id += len(jobs)
        for job_id, job in zip(ids, jobs):
            self.writer.add(job_id, job.encode())
        outcomes: dict[int, Outcome] = {}
        poller = select.epoll()
        poller.register(self.sock.fileno(), select.EPOLLIN | select.EPOLLOUT)
        for _ in range(10_000):                              # bounded: every job comes back
            if len(outcomes) == len(jobs) or not poller.poll(10):
                break
            self.writer.flush()
            if not self.writer.pending:
                poller.modify(self.sock.fileno(), select.EPOLLIN)
            frames = self.reader.read()
            assert frames is not None, "the transfer process closed its pipe"
            for job_id, payload in frames:
                assert job_id not in outcomes, f"job {job_id} answered twice"
                outcomes[job_id] = Outcome.decode(payload)
        poller.close()
        assert sorted(outcomes) == ids
        return [outcomes[job_id] for job_id in ids]

    def stop(self) -> None:
        self.sock.close()                                     # the transfer process ends
        assert os.waitpid(self.pid, 0)[1] == 0


def _job(connection: str, path: str, method: str | None = None, body: bytes | None = None
         ) -> Job:
    return Job(-1, 0, "", "$avp(r)", connection, path, method, "text/plain", body)


def test_a_transfer_process_answers_every_job_once(http_server):
    kamhttp.modparam("httpcon", f"api=>{http_server.url}")
    kamhttp.finalize()
    process = TransferProcess()
    try:
        outcomes = process.run(*(_job("api", f"/echo/{n}") for n in range(1, 151)))
    finally:
        process.stop()
    for n, outcome in enumerate(outcomes, 1):
        assert outcome.code == 200 and outcome.attempts_ok == 1
        assert json.loads(outcome.body)["path"] == f"/echo/{n}"
        assert outcome.timings["total"] > 0


def test_the_transfer_process_never_sends_a_post_twice(fault_server):
    """Issue 13.3 on the multi: the pooled connection fails under a POST before any answer:
    65, and the server saw it once; a PUT there is sent again."""
    kamhttp.modparam("keep_connections", 1)
    kamhttp.modparam("httpcon", f"api=>{fault_server.url}")
    kamhttp.finalize()
    process = TransferProcess()
    try:
        assert [o.code for o in process.run(_job("api", "/fault/stale"))] == [200]
        fault_server.clear()
        assert [o.code for o in process.run(_job("api", "/fault/stale", "POST", b"c"))] == [65]
        assert [r.method for r in fault_server.requests] == ["POST"]
        assert [o.code for o in process.run(_job("api", "/fault/stale"))] == [200]
        fault_server.clear()
        assert [o.code for o in process.run(_job("api", "/fault/stale", "PUT", b"c"))] == [200]
        assert [r.method for r in fault_server.requests] == ["PUT", "PUT"]
    finally:
        process.stop()


def test_the_transfer_process_sends_a_post_past_a_connection_closed_idle(fault_server):
    kamhttp.modparam("keep_connections", 1)
    kamhttp.modparam("httpcon", f"api=>{fault_server.url}")
    kamhttp.finalize()
    process = TransferProcess()
    try:
        fault_server.clear()
        assert [o.code for o in process.run(_job("api", "/fault/idle-close?ms=0"))] == [200]
        assert fault_server.wait_for(lambda: "idle-close: closed" in fault_server.errors)
        fault_server.clear()
        outcome, = process.run(_job("api", "/fault/idle-close?ms=0", "POST", b"cdr"))
        assert outcome.code == 200
        assert [r.method for r in fault_server.requests] == ["POST"]
    finally:
        process.stop()


def test_the_largest_inline_job_arrives_whole():
    """An inline body at its limit with URL and headers at theirs (48 KiB): one datagram
    larger than 64 KiB, taken whole."""
    queue = Handover(1 << 20)
    url = "http://127.0.0.1/" + "u" * (40 * 1024)
    job = Job(3, 4, "done", "$avp(r)", None, url, "POST", "text/plain", b"b" * INLINE_BODY,
              "X-Filler: " + "h" * (8 * 1024 - 20))
    assert queue.put(job)
    taken = queue.take()
    assert taken is not None and taken[0] == job
