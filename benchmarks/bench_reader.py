"""Reader speed, side by side in one run: our reader vs dpkt vs `tshark -T fields`.

On a generated capture (benchmarks/gen_capture.py: Ethernet/IPv4/TCP+UDP, 54-214-byte frames)
of --frames frames, as pcap, pcapng and gzip-compressed pcap, it times:

  ours      replay.capture.read_captures → the full frames table (every column): the default
            call (a regular file's sha256 is then computed on first use, apart from the
            decode), the same then asking for the sha256 (as `replay run` does), and
            sha256=False (no hashing at all: the same fields as dpkt)
  dpkt      dpkt.pcap.Reader + Ethernet/IP/TCP/UDP decode of the same fields, frame by frame
  tshark    tshark -r FILE -T fields with the same fields (written to /dev/null)
  gunzip    zlib decompression alone of the .gz file (the floor for the compressed rate)

and prints frames/s and the ratios. With --scaling it also times `replay ingest` on 1M and 4M
frames (marginal cost per extra million) and with --memory the peak RSS of `replay ingest` on
1M and 10M frames.

    python benchmarks/bench_reader.py [--frames 1000000] [--dir /tmp/bench] [--repeat 3]
        [--dpkt-frames N] [--no-tshark] [--scaling] [--memory]
"""

from __future__ import annotations

import argparse
import gzip
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


def gunzip(path: Path) -> int:
    d = zlib.decompressobj(wbits=31)
    n = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            n += len(d.decompress(chunk))
    return n


def _ingest_child(paths: list[str], out: str) -> tuple[float, int]:
    """Wall time and peak RSS (KiB) of `python -m replay ingest` in a child process."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    t = time.perf_counter()
    code = (
        "import resource, sys; from replay.cli import main;"
        "sys.argv=['replay','ingest',*sys.argv[1:]];"
        "\ntry:\n main()\nexcept SystemExit: pass\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)"
    )
    p = subprocess.run([sys.executable, "-c", code, *paths, "-o", out], env=env,
                       capture_output=True, text=True, check=True)  # fmt: skip
    dt = time.perf_counter() - t
    return dt, int(p.stderr.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=1_000_000)
    ap.add_argument("--dir", default="/tmp/stack-replay-bench")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dpkt-frames", type=int, default=None, help="dpkt on the first N frames only")
    ap.add_argument("--no-tshark", action="store_true")
    ap.add_argument("--scaling", action="store_true", help="replay ingest 1M vs 4M frames")
    ap.add_argument("--memory", action="store_true", help="peak RSS of ingest, 1M vs 10M frames")
    a = ap.parse_args()
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
    gzr = wall["ours, pcap.gz"] / wall["zlib gunzip alone, pcap.gz"]
    h = "ours, pcap, then its sha256"
    print(f"read + sha256 vs dpkt: {n / wall[h] / r_dpkt:.0f}x by wall time, "
          f"{n / CPU[h] / c_dpkt:.0f}x by CPU time")  # fmt: skip
    print(f"\nours (default call) vs dpkt: {r_ours / r_dpkt:.0f}x by wall time, {c_ours / c_dpkt:.0f}x by CPU"
          f" time; pcapng/pcap time: {ng:.2f}; pcap.gz/gunzip-alone time: {gzr:.2f}")  # fmt: skip
    if a.scaling:
        big = d / "bench-4000000.pcap"
        if not big.exists():
            generate(str(big), 4_000_000)
        out = str(d / "ingest.parquet")
        t1 = min(_ingest_child([str(pcap)], out)[0] for _ in range(a.repeat))
        t4 = min(_ingest_child([str(big)], out)[0] for _ in range(a.repeat))
        marginal = (t4 - t1) / 3
        print(f"\nreplay ingest: 1M frames {t1:.3f} s, 4M frames {t4:.3f} s; marginal "
              f"cost {marginal:.3f} s per extra million (whole 1M run: {t1:.3f} s)")  # fmt: skip
    if a.memory:
        big = d / "bench-10000000.pcap"
        if not big.exists():
            generate(str(big), 10_000_000)
        out = str(d / "ingest.parquet")
        _, r1 = _ingest_child([str(pcap)], out)
        _, r10 = _ingest_child([str(big)], out)
        print(f"\nreplay ingest peak RSS: 1M frames {r1 / 1024:.0f} MiB, "
              f"10M frames {r10 / 1024:.0f} MiB (ratio {r10 / r1:.2f})")  # fmt: skip


if __name__ == "__main__":
    main()
