"""Run directories of a fixed trace × config matrix → one digest per case; compare two trees' outputs.

An engine speed change must not change what a run writes. This script replays the bundled traces
and synthetic ones (made once with `replay synth`) through `replay run` under a fixed set of
configs that reach the engine's rules (1 and 4 CPUs, kernels 6.12 / 5.15 / 6.18, RPS + RFS,
threaded NAPI with busy polling, busy_read, -l 3, -x 2, mlx5 and its SHAMPO, veth, LRO, deferred
IRQs, recvmmsg batches, listen sockets, fragments, VXLAN, IPv6) and stores, per case, a digest of
every column of packets.parquet, cpu.parquet and events.parquet and of run.json's summary,
counters, host and apps. `counters.model.engine_events` (the engine's own event counts, which a
change that merges steps is meant to lower) is kept beside the digests but not compared.

    PYTHONPATH=$PWD python benchmarks/check_identical.py --write base.json    # before a change
    PYTHONPATH=$PWD python benchmarks/check_identical.py --compare base.json  # after it
    PYTHONPATH=$PWD python benchmarks/check_identical.py --compare base.json -k flood  # a subset

--compare prints one line per case (`same` or the columns / keys that differ) and exits 1 on any
difference. Traces and run directories go to --work (default /tmp/stack-replay-identical-<a
hash of this checkout's path>, so two worktrees never share one); the synthetic traces are made
once and reused (same options, same bytes).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

# name → replay synth arguments (each deterministic: --seed defaults to 1)
SYNTH: dict[str, list[str]] = {
    "flood200k.pcap": ["udp-flood", "--rate", "2Mpps", "--duration", "0.1", "--size", "64",
                       "--flows", "64"],
    "download.pcap": ["https-download", "--rate", "10G", "--duration", "0.05"],
    "fragments.pcap": ["fragments"],
    "vxlan.pcap": ["vxlan"],
    "reuseport.pcap": ["reuseport"],
    "syn-flood.pcap": ["syn-flood"],
    "conn-flood.pcap": ["conn-flood"],
    "mixed.pcap": ["mixed", "--duration", "0.1"],
    "tcp-ipv6.pcap": ["tcp-ipv6"],
}

BUNDLED = {name: REPO / "traces" / name
           for name in ("game-server.pcap", "gigabit-flood.pcap.gz", "https-download.pcap")}

ONE_CPU = ["host.cpus=1", "nic.combined=1"]
UDP_APP = ['app[0].match="udp dport 5001"', "app[0].cpu=1"]

# case name → (trace, replay run arguments)
CASES: dict[str, tuple[str, list[str]]] = {
    "game-server": ("game-server.pcap", []),
    "game-server-5.15": ("game-server.pcap", ["--set", "host.kernel=5.15"]),
    "game-server-x2": ("game-server.pcap", ["-x", "2"]),
    "gigabit-flood": ("gigabit-flood.pcap.gz", []),
    "gigabit-flood-1cpu": ("gigabit-flood.pcap.gz", [f"--set={s}" for s in ONE_CPU]),
    "gigabit-flood-adaptive": ("gigabit-flood.pcap.gz", ["--set", "nic.adaptive-rx=true"]),
    "https-download": ("https-download.pcap", []),
    "flood": ("flood200k.pcap", []),
    "flood-5.15": ("flood200k.pcap", ["--set", "host.kernel=5.15"]),
    "flood-1cpu": ("flood200k.pcap", [f"--set={s}" for s in ONE_CPU]),
    "flood-1cpu-5.15": ("flood200k.pcap", [f"--set={s}" for s in [*ONE_CPU, "host.kernel=5.15"]]),
    "flood-rps-rfs": ("flood200k.pcap", [f"--set={s}" for s in [
        "nic.combined=1", 'sysfs.rps_cpus=["1-3"]', "sysfs.rps_flow_cnt=256",
        "net.core.rps_sock_flow_entries=1024"]]),
    "flood-threaded-busy": ("flood200k.pcap", [f"--set={s}" for s in [
        "sysfs.threaded=true", "net.core.busy_read=50"]]),
    "flood-mlx5": ("flood200k.pcap", ["--set", "nic.driver=mlx5"]),
    "flood-veth": ("flood200k.pcap", [f"--set={s}" for s in ["nic.driver=veth", "nic.combined=1",
                                                             "host.cpus=2"]]),
    "flood-batch-work": ("flood200k.pcap", [f"--set={s}" for s in [
        *UDP_APP, "app[0].batch=8", "app[0].work-ns=300"]]),
    "flood-udp-gro": ("flood200k.pcap", [f"--set={s}" for s in [*UDP_APP, "app[0].udp-gro=true"]]),
    "flood-defer-irq": ("flood200k.pcap", [f"--set={s}" for s in [
        "sysfs.gro_flush_timeout=20000", "sysfs.napi_defer_hard_irqs=2"]]),
    "download": ("download.pcap", []),
    "download-busy-read": ("download.pcap", ["--set", "net.core.busy_read=50"]),
    "download-l3-6.18": ("download.pcap", ["-l", "3", "--set", "host.kernel=6.18"]),
    "download-lro": ("download.pcap", ["--set", "nic.large-receive-offload=true"]),
    "download-mlx5-hwgro": ("download.pcap", [f"--set={s}" for s in ["nic.driver=mlx5",
                                                                    "nic.rx-gro-hw=true"]]),
    "download-veth": ("download.pcap", [f"--set={s}" for s in ["nic.driver=veth", "nic.combined=1",
                                                               "host.cpus=2"]]),
    "fragments": ("fragments.pcap", []),
    "vxlan": ("vxlan.pcap", ["--set", 'tunnel[0].type="vxlan"']),
    "reuseport": ("reuseport.pcap", []),
    "syn-flood": ("syn-flood.pcap", []),
    "conn-flood-listen": ("conn-flood.pcap", [f"--set={s}" for s in [
        'app[0].match="tcp dport 80"', "app[0].listen=true", "app[0].accept-ns=2000"]]),
    "mixed": ("mixed.pcap", []),
    "tcp-ipv6": ("tcp-ipv6.pcap", []),
}

TABLES = ("packets", "cpu", "events")
RUN_KEYS = ("summary", "counters", "host", "apps", "config", "notes")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def trace_path(work: Path, name: str) -> Path:
    if name in BUNDLED:
        return BUNDLED[name]
    out = work / "traces" / name
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "replay", "synth", *SYNTH[name], "-o", str(out)]
        subprocess.run(cmd, check=True, cwd=REPO, env=_env(), stdout=subprocess.DEVNULL)
    return out


def _column_digest(col: Any) -> str:
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    h = hashlib.sha256(str(arr.type).encode())
    h.update(arr.is_valid().to_numpy(zero_copy_only=False).tobytes())
    if pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type) or \
            pa.types.is_boolean(arr.type):
        h.update(pc.fill_null(arr, pa.scalar(0, arr.type) if not pa.types.is_boolean(arr.type)
                              else False).to_numpy(zero_copy_only=False).tobytes())
    else:
        h.update(repr(arr.to_pylist()).encode())
    return h.hexdigest()[:16]


def _json_digest(v: Any) -> str:
    return hashlib.sha256(json.dumps(v, sort_keys=True).encode()).hexdigest()[:16]


def digest_run(run: Path) -> dict[str, Any]:
    import pyarrow.parquet as pq

    out: dict[str, Any] = {}
    for t in TABLES:
        table = pq.read_table(run / f"{t}.parquet")
        out[t] = {"rows": table.num_rows,
                  **{f: _column_digest(table.column(f)) for f in table.column_names}}
    meta = json.loads((run / "run.json").read_text())
    events = meta.get("counters", {}).get("model", {}).pop("engine_events", None)
    for k in RUN_KEYS:
        if k in meta:
            v = meta[k]
            out[k] = ({kk: _json_digest(vv) for kk, vv in v.items()} if isinstance(v, dict)
                      else _json_digest(v))
    out["engine_events"] = events
    return out


def run_case(work: Path, name: str) -> dict[str, Any]:
    trace, args = CASES[name]
    out = work / "runs" / name
    cmd = [sys.executable, "-m", "replay", "run", str(trace_path(work, trace)), *args, "-o",
           str(out)]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True)
    if p.returncode != 0:
        return {"error": (p.stderr.strip().splitlines() or ["?"])[-1]}
    d = digest_run(out)
    d["seconds"] = round(time.perf_counter() - t0, 2)
    return d


def _diff(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for k in sorted(set(a) | set(b)):
            if k in ("engine_events", "seconds"):
                continue
            out += _diff(a.get(k), b.get(k), f"{path}.{k}" if path else k)
        return out
    return [] if a == b else [path]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--write", type=Path, help="store the digests of every case here")
    g.add_argument("--compare", type=Path, help="compare every case with these stored digests")
    ap.add_argument("-k", default="", help="only cases whose name contains this")
    here = hashlib.sha256(str(REPO).encode()).hexdigest()[:8]
    ap.add_argument("--work", type=Path, default=Path(f"/tmp/stack-replay-identical-{here}"))
    a = ap.parse_args()
    names = [n for n in CASES if a.k in n]
    base = json.loads(a.compare.read_text()) if a.compare else {}
    res: dict[str, Any] = {}
    bad = 0
    for n in names:
        d = run_case(a.work, n)
        res[n] = d
        ev = d.get("engine_events")
        if a.compare:
            if n not in base:
                print(f"{n:24s} not in {a.compare}")
                continue
            diffs = _diff(base[n], d)
            ev0 = base[n].get("engine_events")
            evs = "" if ev == ev0 else f"  engine_events {ev0} -> {ev}"
            print(f"{n:24s} {'same' if not diffs else 'DIFFERS: ' + ', '.join(diffs[:12])}"
                  f"{evs}  ({d.get('seconds')} s)", flush=True)
            bad += bool(diffs)
        else:
            print(f"{n:24s} {d.get('error', 'ok')}  events {ev}  ({d.get('seconds')} s)",
                  flush=True)
    if a.write:
        old = json.loads(a.write.read_text()) if a.write.exists() and a.k else {}
        a.write.write_text(json.dumps({**old, **res}, indent=1, sort_keys=True))
    if a.compare:
        print(f"{len(names) - bad} of {len(names)} cases identical")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
