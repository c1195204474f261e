"""/proc counter files (text) → the run.json counters block, and the before/after difference.

Formats from KERNEL.md §7: /proc/net/softnet_stat is one line per online CPU of %08x fields
(column 1 processed, 2 dropped, 3 time_squeeze, 10 received_rps, 11 flow_limit_count, 13 the CPU
index on kernels that print it); /proc/softirqs has one row per softirq, one column per possible
CPU; /proc/net/snmp and /proc/net/netstat are pairs of lines (names, values) per group;
/proc/net/snmp6 is `name value` per line. softnet_stat and softirqs are host-wide (the
namespace does not split them), snmp/netstat/snmp6 are the namespace's own.
"""

from __future__ import annotations

from typing import Any

SOFTNET_COLS = {"processed": 0, "dropped": 1, "time_squeeze": 2, "received_rps": 9,
                "flow_limit_count": 10}

# what the contract's snmp block carries (DESIGN.md "Run directory"); the full groups are kept
# beside it under snmp_all so nothing the kernel printed is lost
SNMP_KEYS = {
    "Ip": ("InReceives", "InDelivers", "ReasmReqds", "ReasmOKs", "ReasmFails"),
    "Udp": ("InDatagrams", "NoPorts", "InErrors", "RcvbufErrors"),
    "Tcp": ("InSegs", "OutSegs"),
    "TcpExt": ("TCPBacklogDrop", "TCPRcvQDrop"),
}
SNMP6_KEYS = ("Udp6InDatagrams", "Udp6RcvbufErrors", "Ip6ReasmOKs")


def parse_softnet_stat(text: str) -> list[dict[str, int]]:
    """One dict per line; `cpu` is column 13 when the kernel prints it, else the line number."""
    rows = []
    for i, line in enumerate(text.split("\n")):
        f = line.split()
        if not f:
            continue
        v = [int(x, 16) for x in f]
        row = {"cpu": v[12] if len(v) >= 13 else i}
        for name, col in SOFTNET_COLS.items():
            row[name] = v[col] if col < len(v) else 0
        rows.append(row)
    return rows


def parse_softirqs(text: str) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    lines = text.strip("\n").split("\n")
    ncpu = len(lines[0].split()) if lines else 0
    for line in lines[1:]:
        name, _, rest = line.partition(":")
        vals = [int(x) for x in rest.split()][:ncpu]
        out[name.strip()] = vals
    return out


def parse_snmp(text: str) -> dict[str, dict[str, int]]:
    """/proc/net/snmp or /proc/net/netstat: header line then value line, per group."""
    out: dict[str, dict[str, int]] = {}
    lines = [ln for ln in text.split("\n") if ln.strip()]
    for names, values in zip(lines[0::2], lines[1::2], strict=False):
        g, _, ns = names.partition(":")
        g2, _, vs = values.partition(":")
        if g != g2:
            raise ValueError(f"snmp groups out of step: {g!r} then {g2!r}")
        out[g] = {k: int(v) for k, v in zip(ns.split(), vs.split(), strict=True)}
    return out


def parse_snmp6(text: str) -> dict[str, int]:
    out = {}
    for line in text.split("\n"):
        f = line.split()
        if len(f) == 2:
            out[f[0]] = int(f[1])
    return out


def diff(before: Any, after: Any) -> Any:
    """after - before, structure-preserving (dicts by key, lists by position; `cpu` kept)."""
    if isinstance(after, dict):
        return {k: (v if k == "cpu" else diff(before.get(k, 0) if isinstance(before, dict)
                                             else 0, v)) for k, v in after.items()}
    if isinstance(after, list):
        b = before if isinstance(before, list) else []
        return [diff(b[i] if i < len(b) else (0 if not isinstance(x, dict | list) else {}), x)
                for i, x in enumerate(after)]
    if isinstance(after, int) and isinstance(before, int):
        return after - before
    return after


def counters_block(d: dict[str, Any], link: dict[str, int]) -> dict[str, Any]:
    """A diffed snapshot → the contract's counters block (+ the complete groups under *_all)."""
    snmp_all: dict[str, dict[str, int]] = {**d["snmp"], **d["netstat"]}
    snmp = {g: {k: snmp_all.get(g, {}).get(k, 0) for k in keys} for g, keys in SNMP_KEYS.items()}
    return {
        "softnet_stat": d["softnet_stat"],
        "softirqs": {"NET_RX": d["softirqs"].get("NET_RX", []),
                     "NET_TX": d["softirqs"].get("NET_TX", [])},
        "interrupts": {},  # veth raises no interrupt (KERNEL.md §3c)
        "ethtool": link,
        "napi": [],
        "snmp": snmp,
        "snmp6": {k: d["snmp6"].get(k, 0) for k in SNMP6_KEYS},
        "snmp_all": snmp_all,
    }
