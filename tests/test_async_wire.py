"""What travels between kamhttp's processes on the asynchronous path: the job and outcome
encodings, the hand-over queue (inline and memfd bodies, the bytes forwarded unchanged), and
a transfer process fed through its framed pipe with many jobs at once, against a real server."""
from __future__ import annotations

import dataclasses
import json
import os
import select
import socket

import pytest

import kamhttp
from kamhttp.aio.handover import INLINE_BODY, Handover
from kamhttp.aio.jobs import Job, Outcome
from kamhttp.aio.transfers import FrameReader, FrameWriter, serve

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


def test_a_transfer_process_answers_every_job_once(http_server):
    kamhttp.modparam("httpcon", f"api=>{http_server.url}")
    kamhttp.finalize()
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    pid = os.fork()
    if pid == 0:                                              # the transfer process
        mine.close()
        try:
            serve(theirs)
        finally:
            os._exit(0)
    theirs.close()
    try:
        mine.setblocking(False)
        writer, reader = FrameWriter(mine), FrameReader(mine)
        jobs = {n: Job(-1, 0, "", "$avp(r)", "api", f"/echo/{n}") for n in range(1, 151)}
        for job_id, job in jobs.items():
            writer.add(job_id, job.encode())
        outcomes: dict[int, Outcome] = {}
        poller = select.epoll()
        poller.register(mine.fileno(), select.EPOLLIN | select.EPOLLOUT)
        for _ in range(10_000):                              # bounded: 150 jobs come back
            if len(outcomes) == len(jobs) or not poller.poll(10):
                break
            writer.flush()
            if not writer.pending:
                poller.modify(mine.fileno(), select.EPOLLIN)
            frames = reader.read()
            assert frames is not None, "the transfer process closed its pipe"
            for job_id, payload in frames:
                assert job_id not in outcomes, f"job {job_id} answered twice"
                outcomes[job_id] = Outcome.decode(payload)
        poller.close()
        assert sorted(outcomes) == sorted(jobs)
        for job_id, outcome in outcomes.items():
            assert outcome.code == 200 and outcome.attempts_ok == 1
            assert json.loads(outcome.body)["path"] == f"/echo/{job_id}"
            assert outcome.timings["total"] > 0
    finally:
        mine.close()                                          # the transfer process ends
        assert os.waitpid(pid, 0)[1] == 0


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
