"""A small real job function and config resolver for testing the pipeline machinery on its own.

`toy_run` has run_traces's signature and writes a real run directory (replay.store.rundir) whose
numbers are easy to compute by hand from the trace and the config: frame i (0-based) is dropped
at the ring (rx_missed_errors) when i >= nic.rx / 64, otherwise delivered with latency
nic.rx-usecs * 1000 + (i % netdev_budget) * 100 + seed ns (all in wait_driver). A file that is not a
pcap raises TraceError, like the real reader.
"""

from __future__ import annotations

import copy
import os
import struct
import time
import tomllib
from pathlib import Path
from typing import Any

import dpkt
import numpy as np
import pyarrow as pa

from replay.errors import ConfigError, TraceError
from replay.runner import ReplayOptions, RunResult
from replay.store.rundir import write_run
from replay.store.schema import PACKETS_SCHEMA

DEFAULTS: dict[str, Any] = {
    "nic": {"rx": 512, "rx-usecs": 50},
    "sysctl": {"net.core.netdev_budget": 300},
    "costs": {"profile": "toy"},
}
PROFILE = {"name": "toy", "driver_ns": 100}


def toy_resolver(
    base: Path | None, overrides: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    cfg = copy.deepcopy(DEFAULTS)
    if base is not None:
        for sec, table in tomllib.loads(base.read_text()).items():
            cfg.setdefault(sec, {}).update(table)
    for k, v in overrides.items():
        if k.startswith("net."):
            sec, key = "sysctl", k
        else:
            sec, _, key = k.partition(".")
        if sec not in cfg or key not in cfg[sec]:
            raise ConfigError(f"unknown config key {k!r}")
        cfg[sec][key] = v
    rx = cfg["nic"]["rx"]
    if not (isinstance(rx, int) and 64 <= rx <= 8192 and rx & (rx - 1) == 0):
        raise ConfigError(f"nic.rx must be a power of two between 64 and 8192, got {rx}")
    return cfg, dict(PROFILE)


def read_wire_lens(path: Path) -> list[int]:
    data = path.read_bytes()
    if len(data) < 24 or data[:4] != b"\xd4\xc3\xb2\xa1":
        raise TraceError(str(path), "not a little-endian pcap file (bad magic)", 0)
    out, off = [], 24
    while off + 16 <= len(data):
        incl, orig = struct.unpack_from("<II", data, off + 8)
        out.append(orig)
        off += 16 + incl
    return out


def expected(n_frames: int, config: dict[str, Any], seed: int) -> tuple[int, int, list[int]]:
    """(delivered, dropped, latencies of delivered) as toy_run computes them."""
    ring = config["nic"]["rx"] // 64
    budget = config["sysctl"]["net.core.netdev_budget"]
    lat = [
        config["nic"]["rx-usecs"] * 1000 + (i % budget) * 100 + seed
        for i in range(min(n_frames, ring))
    ]
    return len(lat), max(0, n_frames - ring), lat


def toy_run(
    traces: list[Path],
    config: dict[str, Any],
    options: ReplayOptions,
    out_dir: Path,
    *,
    seed: int = 0,
    report: Path | None = None,
    command: str = "",
) -> RunResult:
    time.sleep(float(os.environ.get("TOY_SLEEP", "0")))
    if Path(traces[0]).name.startswith("crash"):  # a worker killed mid-job (OOM killer, segfault)
        os.kill(os.getpid(), 9)
    if Path(traces[0]).name.startswith("bug"):  # a bug in the model, not the user's mistake
        raise ZeroDivisionError("division by zero")
    lens = read_wire_lens(Path(traces[0]))
    n = len(lens) * options.loop
    delivered, dropped, lat = expected(n, config, seed)
    i = np.arange(n)
    ok = i < delivered
    wait = np.where(ok, np.array(lat + [0] * dropped, dtype=np.int64), 0)
    cols: dict[str, pa.Array] = {
        "frame": pa.array(i % max(1, len(lens)) + 1, pa.uint64()),
        "flow": pa.array(np.zeros(n), pa.uint32()),
        "loop": pa.array(i // max(1, len(lens)), pa.uint32()),
        "pkt": pa.array(i + 1, pa.uint64()),
        "outcome": pa.array(np.where(ok, "delivered", "dropped")).dictionary_encode(),
        "t_wire": pa.array(i * 1000, pa.int64()),
        "t_done": pa.array(i * 1000 + wait, pa.int64()),
        "wait_driver": pa.array(np.where(ok, wait, None), pa.int64()),  # ring drops never reach it
        "cpu_driver": pa.array(np.where(ok, 0, None), pa.int64()),
        "drop_stage": pa.array(
            [None if o else "driver" for o in ok], pa.string()
        ).dictionary_encode(),
        "drop_reason": pa.array(
            [None if o else "rx_missed_errors" for o in ok], pa.string()
        ).dictionary_encode(),
    }
    arrays = []
    for f in PACKETS_SCHEMA:
        a = cols.get(f.name, pa.nulls(n, f.type))
        arrays.append(a.cast(f.type))
    table = pa.Table.from_arrays(arrays, schema=PACKETS_SCHEMA)
    s = sorted(lat)

    def pct(q: float) -> int:
        return s[min(len(s) - 1, int(q * len(s)))] if s else 0

    summary = {
        "frames": len(lens),
        "packets": n,
        "received": n,
        "outcomes": {"delivered": delivered, "dropped": dropped, "consumed": 0, "ignored": 0},
        "drops": [{"stage": "driver", "reason": "rx_missed_errors", "count": dropped}]
        if dropped
        else [],
        "latency_ns": {
            "count": len(s),
            "mean": int(np.mean(s)) if s else 0,
            "p50": pct(0.5),
            "p90": pct(0.9),
            "p99": pct(0.99),
            "p999": pct(0.999),
            "max": s[-1] if s else 0,
        },
        "duration_ns": int(n * 1000),
        "cpu_busy_ns": [0],
    }
    run_json = {
        "tool": {"name": "stack-replay", "version": "0.1.0"},
        "command": command,
        "config": config,
        "costs": PROFILE,
        "replay": options.to_dict(),
        "seed": seed,
        "summary": summary,
        "counters": {},
    }
    write_run(out_dir, run_json, {"packets": table})
    if report is not None:
        report.write_text(f"<html><body>toy report {len(lens)} frames</body></html>\n")
    return RunResult(Path(out_dir), summary, [])


def write_pcap(path: Path, n: int, size: int = 100) -> Path:
    with path.open("wb") as f:
        w = dpkt.pcap.Writer(f)
        for i in range(n):
            w.writepkt(b"\x00" * size, ts=1.0 + i * 1e-5)
    return path


def patch_for_cli() -> None:
    """Make `replay pipeline` in this process use toy_run and toy_resolver (subprocess tests)."""
    import replay.pipeline.jobs as jobs
    import replay.runner as runner

    runner.run_traces = toy_run  # type: ignore[assignment]
    import replay.pipeline.sweep as sweep

    jobs.ConfigResolver = sweep.ConfigResolver = lambda: toy_resolver  # type: ignore[assignment,misc]
