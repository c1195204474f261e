"""Hand-written frames tables for model tests: a few columns per packet, the rest defaulted."""

from __future__ import annotations

import ipaddress
from typing import Any

import pyarrow as pa

from replay.capture.schema import FRAMES_SCHEMA


def a16(text: str) -> bytes:
    a = ipaddress.ip_address(text)
    if a.version == 4:
        return b"\x00" * 10 + b"\xff\xff" + a.packed
    return a.packed


DEFAULTS: dict[str, Any] = {
    "wire_len": 60, "cap_len": 60, "dst_mac": bytes.fromhex("020000000001"),
    "src_mac": bytes.fromhex("020000000002"), "iface": 0, "linktype": 1, "vlan": None,
    "ethertype": 0x0800, "ip_version": 4, "src": "10.0.0.2", "dst": "10.0.0.1", "proto": 17,
    "sport": 4000, "dport": 9000, "tcp_flags": None, "tcp_seq": None, "tcp_ack": None,
    "payload_len": 18, "ip_id": 0, "ttl": 64, "ip_tos": 0, "ip_df": True, "ip_hlen": 20,
    "tcp_hlen": None, "l4_csum_zero": False, "tcp_opt_hash": None, "frag": 0, "tunnel": None,
    "inner_flow": None, "error": None,
}


def frames(rows: list[dict[str, Any]]) -> pa.Table:
    """rows: dicts with at least ts_ns; `src`/`dst` as text. `flow` is assigned densely."""
    cols: dict[str, list[Any]] = {f.name: [] for f in FRAMES_SCHEMA}
    flows: dict[tuple[Any, ...], int] = {}
    for i, r in enumerate(rows):
        d = {**DEFAULTS, **r}
        if d["proto"] == 6:
            for k, v in (("tcp_flags", 0x10), ("tcp_seq", 0), ("tcp_ack", 0), ("tcp_hlen", 20),
                         ("tcp_opt_hash", 0)):
                if d[k] is None:
                    d[k] = v
        src, dst = a16(d["src"]), a16(d["dst"])
        key = (src, dst, d["proto"], d["sport"], d["dport"])
        flow = flows.setdefault(key, len(flows))
        for f in FRAMES_SCHEMA:
            name = f.name
            if name == "frame":
                v = i + 1
            elif name == "flow":
                v = flow
            elif name in ("src", "dst"):
                v = src if name == "src" else dst
            else:
                v = d.get(name)
            cols[name].append(v)
    return pa.Table.from_pydict(cols, schema=FRAMES_SCHEMA)
