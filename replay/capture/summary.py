"""Frames table + CaptureInput → a capinfos-like summary (dict for --json, text for people).

Numbers follow capinfos (wireshark-common) so that the two can be checked against each other:
duration = latest − earliest timestamp, "n/a" when any frame has no timestamp of its own (pcapng
Simple Packet Blocks), data size = sum of captured lengths, rates over the duration.
"""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime
from typing import Any

import polars as pl
import pyarrow as pa

from replay.capture.reader import CaptureInput

# pcap link type → Wireshark's encapsulation name (wiretap/wtap.c encap_table_base), so the
# output reads like capinfos's "File encapsulation".
LINKTYPE_NAMES = {
    0: ("null", "NULL/Loopback"),
    1: ("ether", "Ethernet"),
    6: ("tr", "Token Ring"),
    10: ("fddi", "FDDI"),
    12: ("rawip", "Raw IP"),
    14: ("rawip", "Raw IP"),
    101: ("rawip", "Raw IP"),
    105: ("ieee-802-11", "IEEE 802.11 Wireless LAN"),
    107: ("frelay", "Frame Relay"),
    108: ("loop", "OpenBSD loopback"),
    113: ("linux-sll", "Linux cooked-mode capture v1"),
    127: ("ieee-802-11-radiotap", "IEEE 802.11 plus radiotap radio header"),
    195: ("wpan", "IEEE 802.15.4 Wireless PAN"),
    228: ("rawip4", "Raw IPv4"),
    229: ("rawip6", "Raw IPv6"),
    274: ("ether-mpacket", "IEEE 802.3br mPackets"),
    276: ("linux-sll2", "Linux cooked-mode capture v2"),
}

_ETHERTYPES = {0x0806: "ARP", 0x8035: "RARP", 0x88CC: "LLDP", 0x888E: "EAPOL",
               0x8863: "PPPoE-D", 0x88F7: "PTP", 0x8847: "MPLS", 0x9000: "loopback"}  # fmt: skip
_PROTOS = {1: "ICMP", 2: "IGMP", 6: "TCP", 17: "UDP", 41: "IPv6", 4: "IPv4", 47: "GRE",
           50: "ESP", 51: "AH", 58: "ICMPv6", 89: "OSPF", 132: "SCTP", 136: "UDPLite",
           112: "VRRP"}  # fmt: skip


def linktype_name(lt: int) -> str:
    """Wireshark's description of a link type ("Ethernet")."""
    return LINKTYPE_NAMES.get(lt, (f"linktype-{lt}", f"link type {lt}"))[1]


def linktype_short(lt: int) -> str:
    """Wireshark's short encapsulation name ("ether"), as `capinfos -M -E` prints it."""
    return LINKTYPE_NAMES.get(lt, (f"linktype-{lt}", f"link type {lt}"))[0]


def _fmt_time(ns: int) -> str:
    sec, frac = divmod(ns, 1_000_000_000)
    return datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%d %H:%M:%S") + f".{frac:09d}"


def _addr(b: bytes | None) -> str:
    if b is None:
        return "-"
    a = ipaddress.IPv6Address(b)
    return str(a.ipv4_mapped) if a.ipv4_mapped is not None else str(a)


def _encapsulation(lts: list[int]) -> str:
    """capinfos: one encapsulation when every interface has the same, else per-packet."""
    names = {linktype_short(x) for x in lts}
    if not names:
        return "unknown"
    return names.pop() if len(names) == 1 else "per-packet"


_COLUMNS = ["ts_ns", "wire_len", "cap_len", "linktype", "ethertype", "ip_version", "proto",
            "flow", "src", "dst", "sport", "dport", "error"]  # fmt: skip


class Summary:
    """Running totals of one input's frames, fed batch by batch (`add`), so that `replay
    inspect` holds one batch and the per-flow / per-protocol aggregates, never the capture."""

    def __init__(self) -> None:
        self.n = 0
        self.data = 0
        self.wire = 0
        self.first: int | None = None
        self.last: int | None = None
        self.by_lt: dict[int, int] = {}
        self.mix: dict[tuple[int, int | None, int | None], list[int]] = {}  # → [frames, bytes]
        self.errors: dict[str, int] = {}
        self.flows: pl.DataFrame | None = None  # per flow: frames, bytes, first 5-tuple

    def add(self, batch: pa.RecordBatch | pa.Table) -> None:
        df = pl.from_arrow(batch.select(_COLUMNS))
        assert isinstance(df, pl.DataFrame)
        if df.height == 0:
            return
        self.n += df.height
        self.data += int(df["cap_len"].sum())
        self.wire += int(df["wire_len"].sum())
        lo, hi = int(df["ts_ns"].min()), int(df["ts_ns"].max())  # type: ignore[arg-type]
        self.first = lo if self.first is None else min(self.first, lo)
        self.last = hi if self.last is None else max(self.last, hi)
        for lt, c in df.group_by("linktype").agg(pl.len()).rows():
            self.by_lt[lt] = self.by_lt.get(lt, 0) + c
        g = df.group_by(["ip_version", "proto", "ethertype"]).agg(pl.len(), pl.col("wire_len").sum())
        for v, p, et, c, b in g.rows():
            acc = self.mix.setdefault((v, p, et), [0, 0])
            acc[0] += c
            acc[1] += b
        for e, c in df.filter(pl.col("error").is_not_null()).group_by("error").agg(pl.len()).rows():
            self.errors[str(e)] = self.errors.get(str(e), 0) + c
        part = df.group_by("flow", maintain_order=True).agg(
            pl.len().cast(pl.Int64).alias("frames"),
            pl.col("wire_len").cast(pl.Int64).sum().alias("bytes"),
            *(pl.col(c).first() for c in ("src", "dst", "proto", "sport", "dport")),
        )
        if self.flows is None:
            self.flows = part
        else:  # earlier batches first: `first` keeps the flow's first frame's values
            self.flows = (
                pl.concat([self.flows, part])
                .group_by("flow", maintain_order=True)
                .agg(pl.col("frames").sum(), pl.col("bytes").sum(),
                     *(pl.col(c).first() for c in ("src", "dst", "proto", "sport", "dport")))
            )  # fmt: skip

    def result(self, info: CaptureInput, top_flows: int = 5) -> dict[str, Any]:
        """The numbers `replay inspect` prints for this input."""
        n = self.n
        timed = n > 0 and info.untimed_frames == 0
        first = self.first if timed else None
        last = self.last if timed else None
        dur_ns = (last - first) if first is not None and last is not None else None
        dur = dur_ns / 1e9 if dur_ns is not None else None
        def order(kv: tuple[tuple[int, int | None, int | None], list[int]]) -> tuple[int, int, int]:
            (v, p, _), (c, _) = kv
            return (-c, v, -1 if p is None else p)  # frames desc, then IP version, protocol

        rows = sorted(self.mix.items(), key=order)
        merged: dict[str, dict[str, Any]] = {}  # rows naming the same protocol (two ethertypes)
        for (v, p, et), (c, b) in rows:
            if v:
                name = f"IPv{v}/{_PROTOS.get(p, f'proto {p}')}"
            elif et is not None:
                name = _ETHERTYPES.get(et, f"ethertype 0x{et:04x}")
            else:
                name = "not IP"
            m = merged.setdefault(name, {"protocol": name, "frames": 0, "bytes": 0, "percent": 0.0})
            m["frames"] += c
            m["bytes"] += b
            m["percent"] = round(100.0 * m["frames"] / n, 2)
        mix = sorted(merged.values(), key=lambda m: (-m["frames"], m["protocol"]))
        flows = []
        nflows = 0
        if self.flows is not None:
            fl = self.flows.sort(["bytes", "flow"], descending=[True, False])
            nflows = fl.height
            for row in fl.head(top_flows).iter_rows(named=True):
                flows.append({
                    "flow": row["flow"], "frames": row["frames"], "bytes": row["bytes"],
                    "src": _addr(row["src"]), "dst": _addr(row["dst"]),
                    "proto": row["proto"], "sport": row["sport"], "dport": row["dport"],
                })  # fmt: skip
        errors = sorted(self.errors.items(), key=lambda ec: (-ec[1], ec[0]))
        lts = info.linktypes
        return {
            "file": info.path,
            "format": info.format,
            "compression": info.compression,
            "encapsulation": _encapsulation(lts),
            "linktypes": lts,
            "linktypes_in_use": dict(sorted(self.by_lt.items(), key=lambda kv: (-kv[1], kv[0]))),
            "interfaces": info.interfaces,
            "sections": info.sections,
            "frames": n,
            "file_size": info.bytes_stored,
            "data_size": self.data,
            "wire_size": self.wire,
            "duration_s": dur,
            "duration_ns": dur_ns,
            "first_ns": first,
            "last_ns": last,
            "data_byte_rate": self.data / dur if dur else None,
            "data_bit_rate": 8 * self.data / dur if dur else None,
            "avg_packet_size": self.data / n if n else None,
            "avg_packet_rate": n / dur if dur else None,
            "untimed_frames": info.untimed_frames,
            "sha256": info.sha256,
            "protocols": mix,
            "flows": nflows,
            "top_flows": flows,
            "decode_errors": dict(errors),
            "warnings": list(info.warnings),
        }


def summarize(table: pa.Table, info: CaptureInput, top_flows: int = 5) -> dict[str, Any]:
    """The numbers `replay inspect` prints for one input (table: that input's frames)."""
    s = Summary()
    s.add(table)
    return s.result(info, top_flows)


def render(s: dict[str, Any]) -> str:
    """capinfos-style text of one summary."""
    na = "n/a"

    def num(v: float | None, fmt: str) -> str:
        return na if v is None else format(v, fmt)

    fmt = s["format"] + (f" ({s['compression']}-compressed)" if s["compression"] else "")
    lines = [
        f"File name:           {s['file']}",
        f"File type:           {fmt}",
        f"File encapsulation:  {s['encapsulation']}"
        + (f" ({linktype_name(s['linktypes'][0])})" if len(s["linktypes"]) == 1 else ""),
    ]
    if s["linktypes_in_use"]:
        lines.append("Encapsulation in use by packets (# of pkts):")
        for lt, c in s["linktypes_in_use"].items():
            lines.append(f"                     {linktype_name(lt)} ({c})  [link type {lt}]")
    if s["format"] == "pcapng":
        lines.append(f"Sections:            {s['sections']}")
    lines += [
        f"Number of interfaces: {s['interfaces']}",
        f"Number of packets:   {s['frames']}",
        f"File size:           {s['file_size']} bytes",
        f"Data size:           {s['data_size']} bytes",
        f"Capture duration:    {num(s['duration_s'], '.9f')} seconds",
        f"First packet time:   {na if s['first_ns'] is None else _fmt_time(s['first_ns'])}",
        f"Last packet time:    {na if s['last_ns'] is None else _fmt_time(s['last_ns'])}",
        f"Data byte rate:      {num(s['data_byte_rate'], '.2f')} bytes/sec",
        f"Data bit rate:       {num(s['data_bit_rate'], '.2f')} bits/sec",
        f"Average packet size: {num(s['avg_packet_size'], '.2f')} bytes",
        f"Average packet rate: {num(s['avg_packet_rate'], '.2f')} packets/sec",
        f"SHA256:              {s['sha256']}",
    ]
    if s["untimed_frames"]:
        lines.append(f"Packets without timestamp: {s['untimed_frames']} (pcapng Simple Packet Blocks)")
    if s["protocols"]:
        lines.append("Protocol mix (frames, % of frames, bytes on the wire):")
        for m in s["protocols"]:
            lines.append(f"  {m['protocol']:<20} {m['frames']:>10} {m['percent']:>7.2f}% {m['bytes']:>14}")
    lines.append(f"Flows:               {s['flows']}")
    for f in s["top_flows"]:
        ports = "" if f["sport"] is None else f" {f['sport']} → {f['dport']}"
        proto = "-" if f["proto"] is None else _PROTOS.get(f["proto"], str(f["proto"]))
        what = f"{f['src']} → {f['dst']} {proto}{ports}" if f["proto"] is not None else "not IP"
        lines.append(f"  flow {f['flow']:<6} {what}: {f['frames']} frames, {f['bytes']} bytes")
    if s["decode_errors"]:
        lines.append("Frames decoded only in part:")
        for e, c in s["decode_errors"].items():
            lines.append(f"  {e:<28} {c}")
    for w in s["warnings"]:
        lines.append(f"Warning: {w}")
    return "\n".join(lines) + "\n"
