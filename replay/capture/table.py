"""Decoded numpy columns → an Arrow record batch of FRAMES_SCHEMA, without copying the columns.

Each Arrow array is assembled from buffers: the numpy column as values, and a validity bitmap
computed for all nullable columns in one compiled pass over the `valid` bits (decode.bitmaps).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from replay.capture import codes as d
from replay.capture.schema import FRAMES_SCHEMA
from replay.capture.split import bitmaps

_TYPES = {f.name: f.type for f in FRAMES_SCHEMA}
_TUNNEL_DICT = pa.array(list(d.TUNNELS), pa.string())


class _Bits:
    """Validity bitmaps and set counts of every decode.V_* / B_* bit of one batch."""

    def __init__(self, valid: np.ndarray) -> None:
        n = valid.shape[0]
        self.n = n
        self.maps = np.zeros((d.NBITS, (n + 7) // 8), np.uint8)
        self.counts = np.zeros(d.NBITS, np.int64)
        bitmaps(valid, self.maps, self.counts)

    def buf(self, bit: int) -> pa.Buffer:
        return pa.py_buffer(self.maps[bit.bit_length() - 1])

    def nulls(self, bit: int) -> int:
        return self.n - int(self.counts[bit.bit_length() - 1])


def _arr(name: str, values: np.ndarray | pa.Buffer, bits: _Bits | None = None, bit: int = 0) -> pa.Array:
    typ = _TYPES[name]
    data = values if isinstance(values, pa.Buffer) else pa.py_buffer(values)
    n = bits.n if bits is not None else values.shape[0]  # type: ignore[union-attr]
    if bits is None or bits.nulls(bit) == 0:
        return pa.Array.from_buffers(typ, n, [None, data], null_count=0)
    return pa.Array.from_buffers(typ, n, [bits.buf(bit), data], null_count=bits.nulls(bit))


def _dict(name: str, codes: np.ndarray, dictionary: pa.Array) -> pa.Array:
    """int8 codes (−1 = null) → dictionary array."""
    codes = codes.astype(np.int8, copy=False)
    n = codes.shape[0]
    present = codes >= 0
    nulls = n - int(np.count_nonzero(present))
    bm = None if nulls == 0 else pa.py_buffer(np.packbits(present, bitorder="little"))
    idx = pa.Array.from_buffers(pa.int8(), n, [bm, pa.py_buffer(codes)], null_count=nulls)
    return pa.DictionaryArray.from_arrays(idx, dictionary)


def frames_batch(
    *,
    frame0: int,
    ts: np.ndarray,
    cap: np.ndarray,
    wire: np.ndarray,
    iface: np.ndarray,
    lt: np.ndarray,
    c: dict[str, np.ndarray],
    flow: np.ndarray,
    inner_flow: np.ndarray,
    error_codes: np.ndarray,
    error_dict: list[str],
) -> pa.RecordBatch:
    """One batch of the frames table; error_codes index error_dict (−1 = clean)."""
    n = ts.shape[0]
    b = _Bits(c["valid"])
    u32 = np.uint32
    cols = {
        "frame": _arr("frame", np.arange(frame0, frame0 + n, dtype=np.uint64)),
        "ts_ns": _arr("ts_ns", np.ascontiguousarray(ts)),
        "wire_len": _arr("wire_len", wire.astype(u32, copy=False)),
        "cap_len": _arr("cap_len", cap.astype(u32, copy=False)),
        "dst_mac": _arr("dst_mac", c["dmac"], b, d.V_DMAC),
        "src_mac": _arr("src_mac", c["smac"], b, d.V_SMAC),
        "iface": _arr("iface", iface.astype(u32, copy=False)),
        "linktype": _arr("linktype", lt.astype(np.uint16)),
        "vlan": _arr("vlan", c["vlan"], b, d.V_VLAN),
        "ethertype": _arr("ethertype", c["ethertype"], b, d.V_ETYPE),
        "ip_version": _arr("ip_version", c["ip_version"]),
        "src": _arr("src", c["src"], b, d.V_SRC),
        "dst": _arr("dst", c["dst"], b, d.V_DST),
        "proto": _arr("proto", c["proto"], b, d.V_IP),
        "sport": _arr("sport", c["sport"], b, d.V_PORTS),
        "dport": _arr("dport", c["dport"], b, d.V_PORTS),
        "tcp_flags": _arr("tcp_flags", c["tcp_flags"], b, d.V_TCP),
        "tcp_seq": _arr("tcp_seq", c["tcp_seq"], b, d.V_TCP),
        "tcp_ack": _arr("tcp_ack", c["tcp_ack"], b, d.V_TCP),
        "payload_len": _arr("payload_len", c["payload_len"]),
        "ip_id": _arr("ip_id", c["ip_id"], b, d.V_IPID),
        "ttl": _arr("ttl", c["ttl"], b, d.V_IP),
        "ip_tos": _arr("ip_tos", c["ip_tos"], b, d.V_IP),
        "ip_df": _arr("ip_df", b.buf(d.B_DF), b, d.V_DF),
        "ip_hlen": _arr("ip_hlen", c["ip_hlen"], b, d.V_IP),
        "tcp_hlen": _arr("tcp_hlen", c["tcp_hlen"], b, d.V_TCP),
        "l4_csum_zero": _arr("l4_csum_zero", b.buf(d.B_CSUM_ZERO), b, d.V_CSUM),
        "tcp_opt_hash": _arr("tcp_opt_hash", c["tcp_opt_hash"], b, d.V_TCP),
        "frag": _arr("frag", c["frag"]),
        "frag_off": _arr("frag_off", c["frag_off"], b, d.V_FRAG),
        "frag_mf": _arr("frag_mf", b.buf(d.B_MF), b, d.V_FRAG),
        "icmp_type": _arr("icmp_type", c["icmp_type"], b, d.V_ICMP),
        "tunnel": _dict("tunnel", c["tunnel"], _TUNNEL_DICT),
        "inner_flow": _arr("inner_flow", inner_flow, b, d.V_INNER),
        "inner_proto": _arr("inner_proto", c["inner_proto"], b, d.V_INNER),
        "inner_sport": _arr("inner_sport", c["inner_sport"], b, d.V_INNER),
        "inner_dport": _arr("inner_dport", c["inner_dport"], b, d.V_INNER),
        "flow": _arr("flow", flow),
        "error": _dict("error", error_codes, pa.array(error_dict, pa.string())),
    }
    return pa.RecordBatch.from_arrays([cols[f.name] for f in FRAMES_SCHEMA], schema=FRAMES_SCHEMA)
