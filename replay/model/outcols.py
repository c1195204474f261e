"""Engine arrays → packets.parquet columns, in one compiled pass, as zero-copy Arrow arrays.

The engine keeps a packet's stage times row-major (se/sc[i, stage]: the packet's fields side by
side, which is what its loop touches); packets.parquet wants one column per stage. Doing the
transposition, the wait arithmetic and the scatter of received packets into the replayed-packet
rows with numpy masks cost ~1.4 s per million packets (one temporary per stage and mask, then
pyarrow turning boolean masks into bitmaps); one compiled pass writing contiguous columns and
validity bytes, handed to Arrow by buffer, costs a tenth of that (benchmarks/bench_run.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
from numba import njit

from replay.model import layout as L  # noqa: N812


@njit(cache=True, nogil=True)
def _fill(se, sc, po, que, rxmask, t_wire_all, ridx, wait, cpu, on, t_done, small, codes, small_ok,
          t3, t3_ok, skb):
    """One pass over the replayed packets (rows of rxmask; received ones in arrival order).

    small[k] (uint16): queue, cpu, app; codes[k] (int16): outcome, drop_stage, drop_reason;
    validity of both in small_ok[k] (k = 0..5, outcome never null); t3[k]: t_wire, t_irq, t_poll
    (validity t3_ok[k]). Null slots hold 0.
    wait/cpu/on[stage] and t_done as packets.parquet defines them (DESIGN.md "Run directory"):
    wait_S = end of S - end of the previous stage reached - cpu_S; t_done = the last end reached.
    """
    m = rxmask.shape[0]
    nst = se.shape[1]
    i = 0
    for j in range(m):
        if not rxmask[j]:
            codes[0, j] = L.O_IGNORED
            continue
        prev = t_wire_all[j]  # the packet's t_wire (pk's F_T_WIRE)
        for st in range(nst):
            e = se[i, st]
            if e >= 0:
                c = sc[i, st]
                wait[st, j] = e - prev - c
                cpu[st, j] = c
                on[st, j] = True
                prev = e
        t_done[j] = prev
        small[0, j] = que[i]
        small_ok[0, j] = True
        c = po[i, L.O_PCPU]
        if c >= 0:
            small[1, j] = c
            small_ok[1, j] = True
        outc = po[i, L.O_OUTC]
        codes[0, j] = outc
        a = po[i, L.O_PAPP]
        if a >= 0 and outc == L.O_DELIVERED:
            small[2, j] = a
            small_ok[2, j] = True
        d = po[i, L.O_DSTAGE]
        if d >= 0:
            codes[1, j] = d
            small_ok[4, j] = True
        d = po[i, L.O_DREASON]
        if d >= 0:
            codes[2, j] = d
            small_ok[5, j] = True
        t3[0, j] = t_wire_all[j]
        t3_ok[0, j] = True
        x = po[i, L.O_TIRQ]
        if x >= 0:
            t3[1, j] = x
            t3_ok[1, j] = True
        x = po[i, L.O_TPOLL]
        if x >= 0:
            t3[2, j] = x
            t3_ok[2, j] = True
        skb[j] = ridx[po[i, L.O_SKBH]] + 1
        i += 1


def _bitmap(valid: np.ndarray) -> tuple[pa.Buffer | None, int]:
    """Arrow validity bitmap of a bool array (None when nothing is null) and the null count."""
    nulls = int(valid.size - np.count_nonzero(valid))
    if nulls == 0:
        return None, 0
    return pa.py_buffer(np.packbits(valid, bitorder="little")), nulls


def arrow(values: np.ndarray, valid: np.ndarray | None = None, typ: pa.DataType | None = None
          ) -> pa.Array:
    """A contiguous numpy array (+ optional validity) as an Arrow array without a copy."""
    values = np.ascontiguousarray(values)
    typ = typ or pa.from_numpy_dtype(values.dtype)
    bm, nulls = (None, 0) if valid is None else _bitmap(valid)
    return pa.Array.from_buffers(typ, len(values), [bm, pa.py_buffer(values)], null_count=nulls)


def dict_array(codes: np.ndarray, names: list[str] | tuple[str, ...],
               valid: np.ndarray | None = None) -> pa.DictionaryArray:
    """Dictionary-encoded strings from integer codes (int16 indices, as the schemas say)."""
    idx = arrow(codes.astype(np.int16, copy=False), valid, pa.int16())
    return pa.DictionaryArray.from_arrays(idx, pa.array(list(names), pa.string()))


def packet_columns(S: Any, que: np.ndarray, rxmask: np.ndarray, t_wire_all: np.ndarray,
                   ridx: np.ndarray) -> dict[str, Any]:
    """The per-packet columns the engine decides, for every replayed packet (ignored ones null),
    from the engine's se/sc/po and each received packet's rx queue `que` (pk is not read: the
    caller frees it first, so that these columns reuse its memory):
    {"wait": (N_ST, m), "cpu": (N_ST, m), "on": (N_ST, m) bool, "t_done": (m,), "small": (3, m)
    uint16, "codes": (3, m) int16, "small_ok": (6, m) bool, "t3": (3, m), "t3_ok": (3, m) bool,
    "skb": (m,) uint64}."""
    m = len(rxmask)
    nst = S.se.shape[1]
    out = {
        "wait": np.zeros((nst, m), np.int64), "cpu": np.zeros((nst, m), np.int64),
        "on": np.zeros((nst, m), np.bool_), "t_done": np.zeros(m, np.int64),
        "small": np.zeros((3, m), np.uint16),
        "codes": np.zeros((3, m), np.int16), "small_ok": np.zeros((6, m), np.bool_),
        "t3": np.zeros((3, m), np.int64), "t3_ok": np.zeros((3, m), np.bool_),
        "skb": np.zeros(m, np.uint64),
    }
    _fill(S.se, S.sc, S.po, que, rxmask, t_wire_all.astype(np.int64, copy=False),
          ridx.astype(np.int64, copy=False), out["wait"], out["cpu"], out["on"], out["t_done"],
          out["small"], out["codes"], out["small_ok"], out["t3"], out["t3_ok"], out["skb"])
    return out
