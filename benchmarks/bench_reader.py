"""Reader speed, side by side in one run: our reader vs dpkt vs `tshark -T fields`.

On a generated capture (benchmarks/gen_capture.py: Ethernet/IPv4/TCP+UDP, 54-214-byte frames)
of --frames frames, as pcap, pcapng and gzip-compressed pcap, it times:

  ours      replay.capture.read_captures → the full frames table (every column): the default
            call (a regular file's sha256 is then computed on first use, apart from the
            decode), the same then asking for the sha256 (as `replay run` does), and
            sha256=False (no hashing at all: the same fields as dpkt)
  dpkt      dpkt.pcap.Reader + Ethernet/IP/TCP/UDP decode of the same fields, frame by frame
  tshark    tshark -r FILE -T fields with the same fields (written to /dev/null)
  gunzip    decompression alone of the .gz file, streamed in 1 MiB pieces, with zlib and with
            ISA-L (isal, what our reader uses when installed): the floor for the compressed rate

and prints frames/s and the ratios. With --scaling it also times `replay ingest` on N and 4N
frames (marginal cost per extra million, wall and CPU time of the child process) and with
--memory the peak RSS of `replay ingest` and `replay inspect` on N and 10N frames. --quick
shrinks everything for CI (N = 200k, dpkt on 20k frames, no tshark).

    python benchmarks/bench_reader.py [--frames 1000000] [--dir /tmp/bench] [--repeat 3]
        [--dpkt-frames N] [--no-tshark] [--scaling] [--memory] [--quick]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import shutil
import subprocess
import sys
import time
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from gen_capture import generate  # noqa: E402

try:
    from isal import isal_zlib
except ImportError:  # the reader falls back to zlib too
    isal_zlib = None

TSHARK_FIELDS = ["frame.time_epoch", "frame.len", "frame.cap_len", "eth.dst", "eth.src",
                 "eth.type", "ip.src", "ip.dst", "ip.proto", "ip.ttl", "ip.id", "tcp.srcport",
                 "tcp.dstport", "tcp.flags", "tcp.seq_raw", "tcp.ack_raw", "udp.srcport",
                 "udp.dstport"]  # fmt: skip


CPU: dict[str, float] = {}  # reader → best CPU seconds (all threads, and child processes)


def _cpu() -> float:
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + c.ru_utime + c.ru_stime


def _best(fn, repeat: int, name: str = "") -> float:
    """Best wall time of `repeat` runs; the best CPU time goes to CPU[name]. On a shared machine
    the CPU time is the steadier figure: other processes stretch wall time, not CPU time."""
    best = float("inf")
    for _ in range(repeat):
        t, c = time.perf_counter(), _cpu()
        fn()
        best = min(best, time.perf_counter() - t)
        CPU[name] = min(CPU.get(name, float("inf")), _cpu() - c)
    return best


def ours(path: Path, sha256: bool = True, use_hash: bool = False) -> int:
    from replay.capture import read_captures

    cap = read_captures([path], sha256=sha256)
    if use_hash:  # what `replay run` does: the digest goes into run.json
        assert len(cap.inputs[0].sha256) == 64
    return cap.table.num_rows


def dpkt_fields(path: Path, limit: int) -> int:
    """The reference: what a dpkt user writes to get the same columns."""
    import warnings

    import dpkt

    warnings.filterwarnings("ignore", message=".*deprecated")

    rows = []
    with open(path, "rb") as f:
        for k, (ts, buf) in enumerate(dpkt.pcap.UniversalReader(f)):
            if k >= limit:
                break
            eth = dpkt.ethernet.Ethernet(buf)  # ip.off below: the fragment field, as we read it
            ip = eth.data
            row = [int(ts * 1e9), len(buf), eth.dst, eth.src, eth.type]
            if isinstance(ip, dpkt.ip.IP):
                row += [ip.src, ip.dst, ip.p, ip.ttl, ip.id, ip.off, ip.tos]
                l4 = ip.data
                if isinstance(l4, dpkt.tcp.TCP):
                    row += [l4.sport, l4.dport, l4.flags, l4.seq, l4.ack, len(l4.opts)]
                    row.append(len(l4.data))
                elif isinstance(l4, dpkt.udp.UDP):
                    row += [l4.sport, l4.dport, l4.sum == 0, len(l4.data)]
            rows.append(row)
    return len(rows)


def tshark(path: Path) -> int:
    cmd = ["tshark", "-n", "-r", str(path), "-T", "fields"]
    for f in TSHARK_FIELDS:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, check=True)
    return out.stdout.count(b"\n")


def gunzip(path: Path, module=zlib) -> int:
    """Bare streaming decompression: 1 MiB reads, output discarded."""
    d = module.decompressobj(wbits=31)
    n = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            n += len(d.decompress(chunk))
    return n


_CHILD = """
import json, sys, threading, time
from replay.cli import main
cpu = {}  # thread name -> CPU seconds of that thread (time.thread_time at its end)
run = threading.Thread.run
def timed(self):
    try:
        run(self)
    finally:
        cpu[self.name] = cpu.get(self.name, 0.0) + time.thread_time()
threading.Thread.run = timed
sys.argv = ['replay', sys.argv[1], *sys.argv[2:]]
try:
    main()
except SystemExit:
    pass
cpu['main'] = time.thread_time()
# Peak RSS of this process's own memory: VmHWM. (ru_maxrss is not it: Linux carries it over
# exec from the forked parent, so every child reported the benchmark's own 496 MiB.)
hwm = next(int(x.split()[1]) for x in open('/proc/self/status') if x.startswith('VmHWM:'))
print(json.dumps([hwm, cpu]), file=sys.stderr)
"""


def _replay_child(
    command: str, args: list[str], repo: Path = REPO
) -> tuple[float, float, int, dict[str, float]]:
    """Wall time, CPU time (all threads), peak RSS (KiB) and CPU seconds per thread (main,
    frames-writer, blake3/sha256, decompress) of `python -m replay COMMAND ARGS` in a child
    process, with the `replay` package of `repo`."""
    env = dict(os.environ, PYTHONPATH=str(repo))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    # cwd: `python -c` puts the working directory first on sys.path, before PYTHONPATH
    p = subprocess.run([sys.executable, "-c", _CHILD, command, *args], env=env, cwd=repo,
                       capture_output=True, text=True, check=True)  # fmt: skip
    dt = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    rss, threads = json.loads(p.stderr.strip().splitlines()[-1])
    return dt, cpu, int(rss), threads


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=1_000_000)
    ap.add_argument("--dir", default="/tmp/stack-replay-bench")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dpkt-frames", type=int, default=None, help="dpkt on the first N frames only")
    ap.add_argument("--no-tshark", action="store_true")
    ap.add_argument("--scaling", action="store_true", help="replay ingest 1M vs 4M frames")
    ap.add_argument("--memory", action="store_true", help="peak RSS of ingest/inspect, N vs 10N frames")
    ap.add_argument("--quick", action="store_true", help="small sizes for CI: N=200k, no tshark")
    ap.add_argument("--only", choices=["scaling", "memory", "writers"], action="append", default=[],
                    help="run only these parts (repeatable), skipping the reader comparison")
    ap.add_argument("--baseline", default=None,
                    help="--scaling also for the replay package in this directory, interleaved")
    ap.add_argument("--writers", action="store_true",
                    help="the frames file's Parquet writer: ours (pqwrite) vs pyarrow's, same batches")
    a = ap.parse_args()
    if a.quick:
        a.frames, a.dpkt_frames, a.no_tshark, a.repeat = 200_000, 20_000, True, min(a.repeat, 2)
    d = Path(a.dir)
    d.mkdir(parents=True, exist_ok=True)
    n = a.frames
    pcap, pcapng, gz = d / f"bench-{n}.pcap", d / f"bench-{n}.pcapng", d / f"bench-{n}.pcap.gz"
    if not pcap.exists():
        generate(str(pcap), n)
    if not pcapng.exists():
        generate(str(pcapng), n, pcapng=True)
    if not gz.exists():
        with open(pcap, "rb") as src, gzip.open(gz, "wb", compresslevel=6) as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    print(f"capture: {n} frames, {pcap.stat().st_size / n:.1f} bytes/frame on disk (pcap); "
          f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    if not a.only:
        readers(a, n, pcap, pcapng, gz)
    if a.scaling or "scaling" in a.only:
        scaling(a, d, n, pcap)
    if a.memory or "memory" in a.only:
        memory(d, n, pcap)
    if a.writers or "writers" in a.only:
        writers(n, pcap, a.repeat, d)
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")


def readers(a: argparse.Namespace, n: int, pcap: Path, pcapng: Path, gz: Path) -> None:
    ours(pcap)  # compile / load the numba cache outside the timing
    k = min(n, a.dpkt_frames or n)
    dpkt_name = f"dpkt 1.9.8 frame by frame{'' if k == n else f' ({k} frames)'}"
    runs = [
        ("ours, pcap", n, lambda: ours(pcap), a.repeat),
        ("ours, pcap, then its sha256", n, lambda: ours(pcap, use_hash=True), a.repeat),
        ("ours, pcap, no sha256 (fields only, as dpkt)", n, lambda: ours(pcap, False), a.repeat),
        ("ours, pcapng", n, lambda: ours(pcapng), a.repeat),
        ("ours, pcap.gz", n, lambda: ours(gz), a.repeat),
        ("zlib gunzip alone, pcap.gz", n, lambda: gunzip(gz), a.repeat),
    ]
    if isal_zlib is not None:
        runs.append(("isal gunzip alone, pcap.gz", n, lambda: gunzip(gz, isal_zlib), a.repeat))
    runs += [
        (dpkt_name, k, lambda: dpkt_fields(pcap, k), 1),
    ]
    if not a.no_tshark and shutil.which("tshark"):
        runs.append(("tshark -T fields", n, lambda: tshark(pcap), 1))
    rows = [(name, frames, _best(fn, rep, name)) for name, frames, fn, rep in runs]
    wall = {name: t for name, _, t in rows}
    print(f"\n{'reader':<44} {'frames':>9} {'wall s':>8} {'Mframes/s':>10} {'CPU s':>8}"
          f" {'Mframes/CPU-s':>14} {'ours pcap is':>13}")  # fmt: skip
    r_ours = n / wall["ours, pcap"]
    for name, frames, t in rows:
        rate = frames / t
        cpu_rate = frames / CPU[name]
        print(f"{name:<44} {frames:>9} {t:>8.3f} {rate / 1e6:>10.3f} {CPU[name]:>8.3f}"
              f" {cpu_rate / 1e6:>14.3f} {r_ours / rate:>12.1f}x")  # fmt: skip
    r_dpkt = k / wall[dpkt_name]
    c_ours, c_dpkt = n / CPU["ours, pcap"], k / CPU[dpkt_name]
    nosha = "ours, pcap, no sha256 (fields only, as dpkt)"
    print(f"\nfields only (no sha256) vs dpkt: {n / wall[nosha] / r_dpkt:.0f}x by wall time, "
          f"{n / CPU[nosha] / c_dpkt:.0f}x by CPU time")  # fmt: skip
    ng = wall["ours, pcapng"] / wall["ours, pcap"]
    ngc = CPU["ours, pcapng"] / CPU["ours, pcap"]
    floor = "isal gunzip alone, pcap.gz" if isal_zlib is not None else "zlib gunzip alone, pcap.gz"
    gzr = wall["ours, pcap.gz"] / wall[floor]
    gzc = CPU["ours, pcap.gz"] / CPU[floor]
    gzz = wall["ours, pcap.gz"] / wall["zlib gunzip alone, pcap.gz"]
    h = "ours, pcap, then its sha256"
    print(f"read + sha256 vs dpkt: {n / wall[h] / r_dpkt:.0f}x by wall time, "
          f"{n / CPU[h] / c_dpkt:.0f}x by CPU time")  # fmt: skip
    print(f"\nours (default call) vs dpkt: {r_ours / r_dpkt:.0f}x by wall time, {c_ours / c_dpkt:.0f}x by CPU"
          f" time; pcapng/pcap time: {ng:.2f} (CPU {ngc:.2f})")  # fmt: skip
    print(f"pcap.gz / {floor.split(',')[0]}: {gzr:.2f} by wall time, {gzc:.2f} by CPU time; "
          f"pcap.gz / zlib gunzip alone: {gzz:.2f} by wall time")  # fmt: skip


def scaling(a: argparse.Namespace, d: Path, n: int, pcap: Path) -> None:
    """`replay ingest` on N and 4N frames in child processes, alternated; the marginal cost per
    extra million frames, (T(4N) − T(N)) / 3N, by wall and by CPU time, beside the target.
    With --baseline DIR the same for the `replay` package in DIR (e.g. an older commit's
    `git archive` with its numba cache warm), interleaved with ours."""
    big = d / f"bench-{4 * n}.pcap"
    if not big.exists():
        generate(str(big), 4 * n)
    repos = [("this tree", REPO)] + ([("baseline", Path(a.baseline))] if a.baseline else [])
    runs: dict[str, tuple[list, list]] = {name: ([], []) for name, _ in repos}
    for _ in range(a.repeat):
        for name, repo in repos:
            out = str(d / f"ingest-{name.replace(' ', '-')}.parquet")
            runs[name][0].append(_replay_child("ingest", [str(pcap), "-o", out], repo))
            runs[name][1].append(_replay_child("ingest", [str(big), "-o", out], repo))
    for name, _ in repos:
        print(f"\n[{name}]", end="")
        _marginal(a, n, *runs[name])


def _marginal(a: argparse.Namespace, n: int, r1: list, r4: list) -> None:
    t1, t4 = min(r[0] for r in r1), min(r[0] for r in r4)
    c1, c4 = min(r[1] for r in r1), min(r[1] for r in r4)
    per = 1e6 / (3 * n)  # per extra million frames
    mw, mc = (t4 - t1) * per, (c4 - c1) * per
    print(f" replay ingest (best of {a.repeat}): {n} frames {t1:.3f} s wall, {c1:.3f} CPU-s; "
          f"{4 * n} frames {t4:.3f} s wall, {c4:.3f} CPU-s")  # fmt: skip
    print(f"{'marginal cost per extra million frames':<40} {'wall s':>8} {'CPU s':>8} {'target':>8}")
    print(f"{'(T(4N) - T(N)) / 3N':<40} {mw:>8.3f} {mc:>8.3f} {0.15:>8.3f}   "
          f"met by wall: {'yes' if mw <= 0.15 else 'no'}, by CPU: {'yes' if mc <= 0.15 else 'no'}")
    # Per thread: with a free core for each, the wall time cannot go below the busiest
    # thread's CPU time, nor below the total CPU time over the cores.
    names = sorted(set().union(*(r[3] for r in r1 + r4)), key=lambda x: x != "main")
    per_thread = {
        t: (min(r[3].get(t, 0.0) for r in r4) - min(r[3].get(t, 0.0) for r in r1)) * per for t in names
    }
    cores = os.cpu_count() or 1
    floor = max(max(per_thread.values()), mc / cores)
    print("marginal CPU-s per extra million frames by thread: "
          + ", ".join(f"{t} {v:.3f}" for t, v in per_thread.items())
          + f"; wall floor with {cores} free cores: {floor:.3f} s")  # fmt: skip


def memory(d: Path, n: int, pcap: Path) -> None:
    big = d / f"bench-{10 * n}.pcap"
    if not big.exists():
        generate(str(big), 10 * n)
    out = str(d / "ingest.parquet")
    for cmd, extra in (("ingest", ["-o", out]), ("inspect", [])):
        r1 = _replay_child(cmd, [str(pcap), *extra])[2]
        r10 = _replay_child(cmd, [str(big), *extra])[2]
        print(f"replay {cmd} peak RSS: {n} frames {r1 / 1024:.0f} MiB, {10 * n} frames "
              f"{r10 / 1024:.0f} MiB (ratio {r10 / r1:.2f}, target ≤ 1.5)")  # fmt: skip


# pyarrow's ParquetWriter with the options that were the cheapest found for the frames table
# (replay/capture/ingest.py before pqwrite): zstd-1 only where an encoding leaves entropy,
# dictionaries where values repeat, statistics on three columns, delta-coded frame/ts_ns.
_NO_DICT = ("frame", "ts_ns", "ip_id", "tcp_seq", "tcp_ack")
_ZSTD = ("ts_ns", "ip_id", "tcp_seq", "tcp_ack")


def _pyarrow_options() -> dict:
    from replay.capture.schema import FRAMES_SCHEMA

    return {
        "compression": {c: ("zstd" if c in _ZSTD else "none") for c in FRAMES_SCHEMA.names},
        "compression_level": dict.fromkeys(_ZSTD, 1),
        "use_dictionary": [c for c in FRAMES_SCHEMA.names if c not in _NO_DICT],
        "write_statistics": ["frame", "ts_ns", "flow"],
        "column_encoding": {"frame": "DELTA_BINARY_PACKED", "ts_ns": "DELTA_BINARY_PACKED"},
        "write_batch_size": 1 << 16,
    }


def writers(n: int, pcap: Path, repeat: int, d: Path) -> None:
    """The frames file's writer alone, on the same batches in memory: CPU-s and MB per million
    frames, ours (pqwrite) against pyarrow's ParquetWriter with the best options found and with
    every option off (no dictionary, statistics or compression)."""
    import pyarrow.parquet as pq

    from replay.capture.ingest import PLAIN_COLUMNS, STATS_COLUMNS, ZSTD_COLUMNS
    from replay.capture.pqwrite import ParquetFileWriter
    from replay.capture.reader import FrameReader
    from replay.capture.schema import FRAMES_SCHEMA

    batches = list(FrameReader([pcap], sha256=False))
    out = d / "writer.parquet"

    def ours() -> None:
        with ParquetFileWriter(
            out, FRAMES_SCHEMA, plain=PLAIN_COLUMNS, stats=STATS_COLUMNS, zstd=ZSTD_COLUMNS
        ) as w:
            for b in batches:
                w.write_batch(b)

    def arrow(**opts) -> None:
        with pq.ParquetWriter(out, FRAMES_SCHEMA, **opts) as w:
            for b in batches:
                w.write_batch(b)

    plain = {"compression": "none", "use_dictionary": False, "write_statistics": False}
    rows = []
    for name, fn in (("ours (replay/capture/pqwrite.py)", ours),
                     ("pyarrow, best options found", lambda: arrow(**_pyarrow_options())),
                     ("pyarrow, no dictionary/statistics/compression", lambda: arrow(**plain))):  # fmt: skip
        _best(fn, repeat, name)
        rows.append((name, CPU[name], out.stat().st_size))
    print(f"\n{'frames file writer (same batches)':<48} {'CPU-s/M':>8} {'MB/M':>6} {'vs ours':>8}")
    for name, c, size in rows:
        print(f"{name:<48} {c * 1e6 / n:>8.3f} {size / n:>6.1f} {c / rows[0][1]:>7.1f}x")


if __name__ == "__main__":
    main()
