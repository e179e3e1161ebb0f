"""The hand-over from SIP workers to kamhttp's HTTP processes, made before Kamailio forks.

One AF_UNIX datagram socket pair: every SIP worker writes to the same sending end (inherited),
every HTTP process reads from the same receiving end, so a job is one datagram (atomic
however many workers write at once) and goes to exactly one HTTP process.  Writes never
block: the sending buffer is the queue's bound, and :meth:`Handover.room` tells before a
transaction is suspended whether a job of that size fits.  A request body above
:data:`INLINE_BODY` travels in a memfd passed with the datagram (SCM_RIGHTS), so bodies of
any size (1 MiB and more) cost the queue a few hundred bytes.
"""
from __future__ import annotations

import array
import fcntl
import os
import socket
import struct
import termios

from .jobs import Job

INLINE_BODY = 32 * 1024
"""Request bodies up to this size travel inside the datagram; larger ones in a memfd."""

_MARGIN = 256 * 1024
"""Room kept free for the jobs of other workers between a room check and the write."""
DATAGRAM_MAX = 128 * 1024
"""The largest job datagram: an inline body, 48 KiB of URL and headers (the async functions'
bound) and the names, with room to spare; a larger one is refused, never truncated."""
_SO_SNDBUFFORCE = 32
_ANCILLARY = socket.CMSG_SPACE(4)


class Handover:
    """The two ends of the queue; ``size`` bytes of sending buffer bound it."""

    def __init__(self, size: int) -> None:
        self.sender, self.receiver = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        for sock in (self.sender, self.receiver):
            sock.setblocking(False)
            os.set_inheritable(sock.fileno(), True)
        try:                                  # beyond net.core.wmem_max (needs root)
            self.sender.setsockopt(socket.SOL_SOCKET, _SO_SNDBUFFORCE, size)
        except OSError:
            self.sender.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)
        self.capacity = self.sender.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
        self.scratch = bytearray(DATAGRAM_MAX)   # the receiving buffer, reused
        self.view = memoryview(self.scratch)

    def room(self, size: int) -> bool:
        """Whether a job of ``size`` bytes fits now (with room left for other writers)."""
        queued = struct.unpack("i", fcntl.ioctl(self.sender, termios.TIOCOUTQ, b"\0\0\0\0"))[0]
        return queued + size + _MARGIN <= self.capacity

    def put(self, job: Job) -> bool:
        """Queue ``job`` without waiting; False when the queue is full."""
        body = job.body
        fds: list[int] = []
        if body is not None and len(body) > INLINE_BODY:
            fd = os.memfd_create("kamhttp-body", os.MFD_CLOEXEC)
            try:
                os.write(fd, body)
                job.body = None
                data = job.encode()
                fds.append(fd)
                try:
                    self.sender.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                                  array.array("i", fds))])
                    return True
                except BlockingIOError:
                    return False
                finally:
                    job.body = body
            finally:
                os.close(fd)
        data = job.encode()
        if len(data) > DATAGRAM_MAX:
            return False
        try:
            self.sender.send(data)
            return True
        except BlockingIOError:
            return False

    def take(self) -> tuple[Job, bytes] | None:
        """The next job for this HTTP process and its encoding with the whole body (the
        datagram itself unless the body came in a memfd), or None when the queue is empty."""
        try:
            size, ancillary, _flags, _addr = self.receiver.recvmsg_into(
                (self.scratch,), _ANCILLARY)
        except BlockingIOError:
            return None
        data = bytes(self.view[:size])
        job = Job.decode(data)
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fd = array.array("i", payload[:4])[0]
                try:
                    job.body = _read_all(fd)
                finally:
                    os.close(fd)
                data = job.encode()
        return job, data


def _read_all(fd: int) -> bytes:
    size = os.fstat(fd).st_size
    os.lseek(fd, 0, os.SEEK_SET)
    chunks, left = [], size
    while left > 0:
        chunk = os.read(fd, left)
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def encoded_size(job: Job) -> int:
    """What ``job`` costs the queue: its datagram (a large body is not in it)."""
    body = job.body
    inline = len(body) if body is not None and len(body) <= INLINE_BODY else 0
    return 512 + inline + len(job.url) + len(job.hdrs or "")
