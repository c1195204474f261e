"""The harness's receiver loops on a loopback socket (no root, no namespace needed)."""

from __future__ import annotations

import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from replay.real import fastloop

ROOT = Path(__file__).resolve().parents[1]


def _socket() -> tuple[socket.socket, int]:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, 35, 1)  # SO_TIMESTAMPNS
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("=qq", 0, 50_000))
    s.bind(("127.0.0.1", 0))
    return s, s.getsockname()[1]


def _send(port: int, tags: range, size: int = 100) -> None:
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i in tags:
        tx.sendto(struct.pack("!I", i) + bytes(size - 4), ("127.0.0.1", port))
    tx.close()


def _drain(s: socket.socket, batch: int, work: int, n_max: int, max_calls: int = 1000):
    b = fastloop.Buffers(batch, 2048)
    recs = [np.full(n_max, -1, np.int64), np.zeros(n_max, np.int16), np.zeros(n_max, np.int32)]
    recs += [np.zeros(n_max, np.int64) for _ in range(4)]
    n, err = fastloop.drain(s.fileno(), 3, batch, 0, b.msgs, b.msgs.ctypes.data, b.ctrl, b.data,
                            2048, b.ts, b.ts.ctypes.data, work, 0, n_max, max_calls, *recs)  # fmt: skip
    return n, err, recs


@pytest.mark.parametrize("batch", [1, 8])
def test_compiled_loop_records_every_message(batch: int) -> None:
    s, port = _socket()
    _send(port, range(30), size=100)
    t0 = time.time_ns()
    n, err, (tag, pidx, length, t_kernel, t_read, t_start, t_done) = _drain(s, batch, 20_000, 100)
    s.close()
    assert n == 30
    assert err == 11  # EAGAIN: the 50 ms SO_RCVTIMEO ended the loop once the queue was empty
    assert tag[:n].tolist() == list(range(30))  # the first 4 payload bytes, big-endian
    assert (length[:n] == 100).all() and (pidx[:n] == 3).all()
    # SCM_TIMESTAMPNS: stamped when sent, before the reads began
    assert (t_kernel[:n] > 0).all() and (t_kernel[:n] <= t_read[:n]).all()
    assert (t_read[:n] >= t0 - 10**9).all()
    # work-ns is spun per message on CLOCK_MONOTONIC: at least 20 us between start and done
    assert ((t_done[:n] - t_start[:n]) >= 20_000).all()
    # later messages of a batch start after the earlier ones are done
    assert (t_start[1:n] >= t_done[: n - 1]).all()
    calls = len(np.unique(t_read[:n]))
    assert calls == 30 if batch == 1 else calls <= 30 // batch + 1


def test_compiled_loop_stops_at_its_bounds() -> None:
    s, port = _socket()
    _send(port, range(20))
    n, err, _ = _drain(s, 4, 0, 10)  # n_max 10
    assert (n, err) == (10, 0)
    n, err, _ = _drain(s, 1, 0, 100, max_calls=3)  # three calls, one message each
    assert (n, err) == (3, 0)
    s.close()


@pytest.mark.parametrize("loop", ["compiled", "python"])
def test_receiver_process(tmp_path: Path, loop: str) -> None:
    """`python -m replay.real.receiver` as the harness starts it, outside a namespace."""
    probe, port = _socket()
    probe.close()
    ready, stop, out = tmp_path / "ready", tmp_path / "stop", tmp_path / "out.npz"
    p = subprocess.Popen([sys.executable, "-m", "replay.real.receiver", "--addr", "127.0.0.1",
                          "--ports", str(port), "--batch", "4", "--work-ns", "1000",
                          "--stop-file", str(stop), "--ready", str(ready), "--out", str(out),
                          "--priority", "normal", "--deadline", "20", "--loop", loop],
                         cwd=ROOT, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 60
    while not ready.exists():
        assert p.poll() is None, p.stderr.read() if p.stderr else ""
        assert time.monotonic() < deadline
        time.sleep(0.05)
    # bursts of 50 (about 50 KB of truesize on loopback, well inside rmem_default) so that a
    # loaded machine delaying the reader cannot fill the buffer
    for k in range(10):
        _send(port, range(50 * k, 50 * k + 50))
        time.sleep(0.02)
    stop.write_text("")
    assert p.wait(timeout=30) == 0
    rec = np.load(out)
    assert sorted(rec["tag"].tolist()) == list(range(500))
    assert (rec["port"] == port).all() and (rec["len"] == 100).all()
