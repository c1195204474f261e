"""Flow ids → readable 5-tuples (`10.0.0.1:40000 > 10.0.0.2:27015 udp`), from frames.parquet.

Only the flows a report shows are looked up (a bounded list), so this never walks a whole run.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

import polars as pl

from replay.store.rundir import Run

PROTO_NAMES = {1: "icmp", 6: "tcp", 17: "udp", 58: "icmp6", 47: "gre", 132: "sctp"}


def ip_text(b: bytes | None) -> str:
    """16-byte address (IPv4 as ::ffff:a.b.c.d, frames contract) → text."""
    if b is None or len(b) != 16:
        return "?"
    ip = ipaddress.IPv6Address(b)
    return str(ip.ipv4_mapped) if ip.ipv4_mapped is not None else str(ip)


def flow_labels(run: Run, flows: Iterable[object]) -> dict[int, str]:
    """flow id → 'src:sport > dst:dport proto' from the first frame of the flow."""
    wanted = sorted({int(f) for f in flows if f is not None})  # type: ignore[call-overload]
    if not wanted or not (run.path / "frames.parquet").exists():
        return {}
    df = (
        run.scan("frames")
        .filter(pl.col("flow").is_in(wanted))
        .group_by("flow")
        .agg(pl.col("src", "dst", "proto", "sport", "dport", "ip_version").first())
        .collect()
    )
    out = {}
    for r in df.iter_rows(named=True):
        if not r["ip_version"]:
            out[r["flow"]] = f"flow {r['flow']} (not IP)"
            continue
        proto = PROTO_NAMES.get(r["proto"], str(r["proto"]))
        src, dst = ip_text(r["src"]), ip_text(r["dst"])
        if r["ip_version"] == 6:
            src, dst = f"[{src}]", f"[{dst}]"
        if r["sport"] is not None:
            src, dst = f"{src}:{r['sport']}", f"{dst}:{r['dport']}"
        out[r["flow"]] = f"{src} > {dst} {proto}"
    return out
