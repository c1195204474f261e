"""UDP datagrams on the namespace's sockets → per-message timestamps: the [[app]] as a process.

Run by the harness inside the namespace (`ip netns exec NS python -m replay.real.receiver ...`),
one process per [[app]]. It behaves as the app's config says:
  - `rcvbuf` is sk_rcvbuf (what the kernel charges truesize against), so the process asks for
    rcvbuf/2 with SO_RCVBUF (the kernel doubles it, net/core/sock.c sk_setsockopt), or with
    SO_RCVBUFFORCE when that exceeds net.core.rmem_max; when it equals rmem_default nothing is set;
  - `batch` > 1: one recvmmsg(2) per batch with MSG_WAITFORONE (block for the first message, take
    what else is queued, up to `batch`), called through ctypes since Python's socket module has no
    recvmmsg; `batch` = 1: one recvmsg(2) per message, also through ctypes;
  - `work-ns`: a busy spin of that many ns per message on CLOCK_MONOTONIC (exact by construction,
    no loop-count calibration needed);
  - `cpu`: os.sched_setaffinity before the first socket call; --priority nice (-20) or fifo
    (SCHED_FIFO 50) keeps other tasks on a shared machine from taking the CPU (the harness's
    choice, see harness.RealOptions.priority);
  - `name`: the process's comm (prctl PR_SET_NAME), so perf shows it as the Command.
Per message it records the tag (first 4 payload bytes, see rewrite.py), the kernel's arrival
stamp (SO_TIMESTAMPNS: taken when the skb entered the receive path, netif_rx on veth), the
read time (CLOCK_REALTIME right after the syscall returned; one per batch), the start of its work on
this message (later messages of a batch wait for the earlier ones) and the end of that work.
Every loop is
bounded: at most --max-messages, at most --deadline seconds, and once the harness has created
--stop-file (the sender is done) it stops after --idle seconds without a message; or on SIGTERM.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import os
import select
import signal
import socket
import struct
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

SO_RCVBUFFORCE = 33  # include/uapi/asm-generic/socket.h
SO_TIMESTAMPNS = 35  # SO_TIMESTAMPNS_OLD on x86_64; the cmsg type is the same number
MSG_WAITFORONE = 0x10000
MSG_DONTWAIT = 0x40
PR_SET_NAME = 15
CMSG_SPACE_TS = 32  # CMSG_SPACE(sizeof(struct timespec)) = 16 (header) + 16


class IoVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


class MsgHdr(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_void_p),
        ("namelen", ctypes.c_uint32),
        ("iov", ctypes.POINTER(IoVec)),
        ("iovlen", ctypes.c_size_t),
        ("control", ctypes.c_void_p),
        ("controllen", ctypes.c_size_t),
        ("flags", ctypes.c_int),
    ]


class MMsgHdr(ctypes.Structure):
    _fields_ = [("hdr", MsgHdr), ("len", ctypes.c_uint)]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.recvmmsg.argtypes = [ctypes.c_int, ctypes.POINTER(MMsgHdr), ctypes.c_uint, ctypes.c_int,
                           ctypes.c_void_p]
_libc.recvmsg.argtypes = [ctypes.c_int, ctypes.POINTER(MsgHdr), ctypes.c_int]
_libc.recvmsg.restype = ctypes.c_ssize_t


class Batch:
    """`n` message slots (data buffer, iovec, control buffer) reused for every call."""

    def __init__(self, n: int, bufsize: int) -> None:
        self.n, self.bufsize = n, bufsize
        self.data = (ctypes.c_char * (n * bufsize))()
        self.ctrl = (ctypes.c_char * (n * CMSG_SPACE_TS))()
        self.iov = (IoVec * n)()
        self.msgs = (MMsgHdr * n)()
        base, cbase = ctypes.addressof(self.data), ctypes.addressof(self.ctrl)
        for i in range(n):
            self.iov[i].base, self.iov[i].len = base + i * bufsize, bufsize
            h = self.msgs[i].hdr
            h.iov = ctypes.pointer(self.iov[i])
            h.iovlen = 1
            h.control = cbase + i * CMSG_SPACE_TS
            h.controllen = CMSG_SPACE_TS
        self.data_mv = memoryview(self.data).cast("B")
        self.ctrl_mv = memoryview(self.ctrl).cast("B")

    def recv(self, fd: int, flags: int) -> int:
        """Messages read into slots 0..k-1; 0 when none (timeout / would block)."""
        if self.n == 1:
            r = _libc.recvmsg(fd, ctypes.byref(self.msgs[0].hdr), flags)
            if r >= 0:
                self.msgs[0].len = r
                return 1
        else:
            r = _libc.recvmmsg(fd, self.msgs, self.n, flags | MSG_WAITFORONE, None)
            if r >= 0:
                return r
        e = ctypes.get_errno()
        if e in (11, 4):  # EAGAIN (SO_RCVTIMEO expired), EINTR (SIGTERM)
            return 0
        raise OSError(e, os.strerror(e))

    def kernel_ts(self, i: int) -> int:
        """The SCM_TIMESTAMPNS stamp of slot i in ns, or -1 when the kernel attached none."""
        h = self.msgs[i].hdr
        off = i * CMSG_SPACE_TS
        if h.controllen >= CMSG_SPACE_TS:
            _clen, level, typ = struct.unpack_from("=QiI", self.ctrl_mv, off)
            if level == socket.SOL_SOCKET and typ == SO_TIMESTAMPNS:
                sec, nsec = struct.unpack_from("=qq", self.ctrl_mv, off + 16)
                return sec * 1_000_000_000 + nsec
        return -1

    def reset(self, k: int) -> None:
        for i in range(k):
            self.msgs[i].hdr.controllen = CMSG_SPACE_TS  # the kernel writes back the used length


def open_socket(
    addr: str, port: int, rcvbuf: int, rmem_default: int, rmem_max: int
) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    if rcvbuf and rcvbuf != rmem_default:
        want = rcvbuf // 2  # sk_setsockopt stores 2 * val (sock.c: "double it")
        opt = socket.SO_RCVBUF if want <= rmem_max else SO_RCVBUFFORCE
        s.setsockopt(socket.SOL_SOCKET, opt, want)
    # bounded blocking: every call returns within 50 ms so the stop conditions are checked
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("=qq", 0, 50_000))
    s.bind((addr, port))
    return s


class Bounds:
    """The loop's stop conditions: the hard deadline, and once the harness has created the stop
    file (the sender is done), `idle` seconds without a message."""

    def __init__(self, a: argparse.Namespace) -> None:
        self.t_end = time.monotonic() + a.deadline
        self.idle = a.idle
        self.stop_file = Path(a.stop_file)
        self.last: float | None = None  # when the last message came
        self.stop_seen: float | None = None  # when the stop file was first seen

    def over(self) -> bool:
        mono = time.monotonic()
        return mono > self.t_end or (self.stop_seen is not None
                                     and mono - max(self.stop_seen, self.last or 0.0) > self.idle)

    def got(self) -> None:
        self.last = time.monotonic()

    def nothing(self) -> None:
        """A call or poll returned nothing (50 ms without a message): has the sender finished?"""
        if self.stop_seen is None and self.stop_file.exists():
            self.stop_seen = time.monotonic()


def compiled_loop(a: argparse.Namespace, socks: list[socket.socket], sk_rcvbuf: list[int],
                  ports: list[int], n_max: int, stopped: Callable[[], bool]) -> int:
    """The receive loop of main() with the calls and per-message records in fastloop.drain."""
    from replay.real import fastloop

    b = fastloop.Buffers(a.batch, a.bufsize)
    tag = np.full(n_max, -1, np.int64)
    port_i = np.zeros(n_max, np.int16)
    length = np.zeros(n_max, np.int32)
    t_kernel, t_read, t_start, t_done = (np.zeros(n_max, np.int64) for _ in range(4))
    recs = (tag, port_i, length, t_kernel, t_read, t_start, t_done)
    fds = [s.fileno() for s in socks]

    def drain(pi: int, flags: int, n: int, max_calls: int) -> tuple[int, int]:
        return fastloop.drain(fds[pi], pi, a.batch, flags, b.msgs, b.msgs.ctypes.data, b.ctrl,
                              b.data, a.bufsize, b.ts, b.ts.ctypes.data, a.work_ns, n, n_max,
                              max_calls, *recs)  # fmt: skip

    # compile before the harness is told the receiver is ready (numba cannot cache a function
    # that calls ctypes pointers): a zero-call drain types and compiles it
    drain(0, MSG_DONTWAIT, 0, 0)
    gc.collect()
    gc.disable()
    Path(a.ready).write_text(str(os.getpid()))
    poller = None
    if len(socks) > 1:
        poller = select.poll()
        for s in socks:
            poller.register(s.fileno(), select.POLLIN)
    n = 0
    bounds = Bounds(a)
    while not stopped() and n < n_max and not bounds.over():
        if poller is None:
            # up to 4096 calls per entry: the stop conditions above are checked between them
            n1, _e = drain(0, 0, n, 4096)
            got = n1 > n
            n = n1
        else:
            got = False
            for fd, _ev in poller.poll(50):
                n1, _e = drain(fds.index(fd), MSG_DONTWAIT, n, 1)
                got = got or n1 > n
                n = n1
        if got:
            bounds.got()
        else:
            bounds.nothing()
    save(a.out, recs, n, ports, sk_rcvbuf)
    for s in socks:
        s.close()
    return 0


def save(out: str, recs: tuple[np.ndarray, ...], n: int, ports: list[int],
         sk_rcvbuf: list[int]) -> None:
    tag, port_i, length, t_kernel, t_read, t_start, t_done = recs
    tmp = Path(out + ".tmp.npz")
    np.savez(tmp, tag=tag[:n], port=np.asarray(ports, np.int32)[port_i[:n]], len=length[:n],
             t_kernel=t_kernel[:n], t_read=t_read[:n], t_start=t_start[:n],
             t_done=t_done[:n],
             sk_rcvbuf=np.asarray(sk_rcvbuf, np.int64), ports=np.asarray(ports, np.int32))
    tmp.rename(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m replay.real.receiver")
    ap.add_argument("--addr", required=True)
    ap.add_argument("--ports", required=True, help="comma-separated UDP ports")
    ap.add_argument("--name", default="app0")
    ap.add_argument("--cpu", type=int, default=-1)
    ap.add_argument("--rcvbuf", type=int, default=0, help="sk_rcvbuf in bytes; 0: the default")
    ap.add_argument("--rmem-default", type=int, default=212992)
    ap.add_argument("--rmem-max", type=int, default=4194304)
    ap.add_argument("--work-ns", type=int, default=0)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--bufsize", type=int, default=65536)
    ap.add_argument("--max-messages", type=int, default=2_000_000)
    ap.add_argument("--deadline", type=float, default=60.0, help="seconds, hard limit")
    ap.add_argument("--idle", type=float, default=0.2,
                    help="once --stop-file exists: seconds without a message to stop")
    ap.add_argument("--stop-file", required=True, help="created by the harness when sending ends")
    ap.add_argument("--priority", choices=("normal", "nice", "fifo"), default="normal")
    ap.add_argument("--ready", required=True, help="file created once the sockets are bound")
    ap.add_argument("--out", required=True, help=".npz file of per-message records")
    ap.add_argument("--loop", choices=("compiled", "python"), default="compiled",
                    help="compiled: the calls and records in a numba loop (fastloop.py), the"
                    " receiver's own cost a few clock reads per message; python: the same loop"
                    " in Python (about 5 us of its own per message)")
    a = ap.parse_args(argv)

    libc = ctypes.CDLL(None)
    libc.prctl(PR_SET_NAME, a.name.encode()[:15], 0, 0, 0)
    if a.cpu >= 0:
        os.sched_setaffinity(0, {a.cpu})
    if a.priority == "nice":
        os.nice(-20)
    elif a.priority == "fifo":
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(50))
    stop = False

    def on_term(_sig: int, _frm: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)

    ports = [int(p) for p in a.ports.split(",") if p]
    socks = [open_socket(a.addr, p, a.rcvbuf, a.rmem_default, a.rmem_max) for p in ports]
    sk_rcvbuf = [s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) for s in socks]
    n_max = a.max_messages
    if a.loop == "compiled":
        return compiled_loop(a, socks, sk_rcvbuf, ports, n_max, lambda: stop)
    tag = np.full(n_max, -1, np.int64)
    port_i = np.zeros(n_max, np.int16)
    length = np.zeros(n_max, np.int32)
    t_kernel = np.zeros(n_max, np.int64)
    t_read = np.zeros(n_max, np.int64)
    t_start = np.zeros(n_max, np.int64)
    t_done = np.zeros(n_max, np.int64)
    batch = Batch(a.batch, a.bufsize)
    # no collector pauses inside the loop: the loop allocates nothing that forms cycles, and a
    # C or Rust receiver would not pause either
    gc.collect()
    gc.disable()
    Path(a.ready).write_text(str(os.getpid()))

    n = 0
    bounds = Bounds(a)
    poller = None
    if len(socks) > 1:
        poller = select.poll()
        for s in socks:
            poller.register(s.fileno(), select.POLLIN)
    fds = [s.fileno() for s in socks]
    work = a.work_ns
    clock = time.perf_counter_ns
    now_real = time.time_ns
    while not stop and n < n_max and not bounds.over():
        if poller is None:
            ready = [(0, fds[0], 0)]
        else:
            ready = [(fds.index(fd), fd, MSG_DONTWAIT) for fd, _ev in poller.poll(50)]
        if not ready:
            bounds.nothing()
        for pi, fd, flags in ready:
            k = batch.recv(fd, flags)
            if k == 0:
                bounds.nothing()
                continue
            tr = now_real()
            bounds.got()
            k = min(k, n_max - n)
            for i in range(k):
                ln = batch.msgs[i].len
                length[n] = ln
                port_i[n] = pi
                if ln >= 4:
                    tag[n] = struct.unpack_from("!I", batch.data_mv, i * batch.bufsize)[0]
                t_kernel[n] = batch.kernel_ts(i)
                t_read[n] = tr
                t_start[n] = now_real()
                if work:
                    e = clock() + work
                    while clock() < e:
                        pass
                t_done[n] = now_real()
                n += 1
            batch.reset(k)
    save(a.out, (tag, port_i, length, t_kernel, t_read, t_start, t_done), n, ports, sk_rcvbuf)
    for s in socks:
        s.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
