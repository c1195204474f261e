"""The speed paths give exactly what the plain numpy formulas they replaced give.

host inference (classify.py), ICMP peers and route ids group addresses by hashing
(groupby.py) instead of np.unique over void keys; the multicast test, the wire times
(wire.py) and packets.parquet's columns (outcols.py) come from compiled passes instead of
numpy masks.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from replay.model import classify as C  # noqa: N812
from replay.model import wire
from replay.model.groupby import group_rows, key_bytes16
from replay.model.outcols import arrow, dict_array
from replay.runner import ReplayOptions


def _addresses(draw_rows: list[list[int]], width: int) -> np.ndarray:
    return np.array(draw_rows, dtype=np.uint8).reshape(-1, width)


# few distinct byte values so that rows repeat and ties happen
_byte = st.sampled_from([0, 1, 255, 0x7F, 0x80])


@settings(max_examples=80, deadline=None)
@given(st.lists(st.lists(_byte, min_size=16, max_size=16), min_size=1, max_size=40),
       st.data())
def test_bytes_per_address_matches_unique(rows: list[list[int]], data: st.DataObject) -> None:
    a = _addresses(rows, 16)
    nbytes = np.array(data.draw(st.lists(st.integers(0, 9000), min_size=len(a), max_size=len(a))),
                      dtype=np.int64)
    keys = np.ascontiguousarray(a).view(np.dtype((np.void, 16))).ravel()
    uniq, inv = np.unique(keys, return_inverse=True)
    sizes = np.bincount(inv.ravel(), weights=nbytes.astype(np.float64))
    ua = np.frombuffer(b"".join(u.tobytes() for u in uniq), np.uint8).reshape(-1, 16)
    got_ua, got_sizes, got_ids = C._bytes_per_address(a, nbytes)
    assert np.array_equal(got_ua, ua)
    assert np.array_equal(got_ids, inv.ravel())
    assert np.array_equal(got_sizes, sizes)
    assert ua[int(np.argmax(sizes))].tobytes() == got_ua[int(np.argmax(got_sizes))].tobytes()


@settings(max_examples=80, deadline=None)
@given(st.lists(st.lists(_byte, min_size=6, max_size=6), min_size=1, max_size=40))
def test_most_common_mac_matches_unique(rows: list[list[int]]) -> None:
    m = _addresses(rows, 6)
    u, c = np.unique(m.view(np.dtype((np.void, 6))).ravel(), return_counts=True)
    assert C._most_common_mac(m) == u[int(np.argmax(c))].tobytes()


@settings(max_examples=80, deadline=None)
@given(st.sampled_from([6, 16, 3]), st.data())
def test_rows_equal_matches_numpy(width: int, data: st.DataObject) -> None:
    rows = data.draw(st.lists(st.lists(_byte, min_size=width, max_size=width), min_size=1,
                              max_size=30))
    a = _addresses(rows, width)
    v = bytes(data.draw(st.sampled_from(rows)) if data.draw(st.booleans())
              else data.draw(st.lists(_byte, min_size=width, max_size=width)))
    assert np.array_equal(C._rows_equal(a, v), (a == np.frombuffer(v, np.uint8)).all(axis=1))


def test_arrow_arrays_equal_pyarrow_with_mask() -> None:
    vals = np.array([5, -1, 7, 0, 9], dtype=np.int64)
    valid = np.array([True, False, True, True, False])
    assert arrow(vals, valid).equals(pa.array(vals, mask=~valid))
    assert arrow(vals).equals(pa.array(vals))
    assert arrow(vals, np.ones(5, bool)).null_count == 0
    codes = np.array([1, 0, 2, 1], dtype=np.int64)
    ok = np.array([True, True, False, True])
    want = pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int16), mask=~ok),
                                          pa.array(["a", "b", "c"]))
    assert dict_array(codes, ("a", "b", "c"), ok).equals(want)
    assert dict_array(codes, ("a", "b", "c"), ok).to_pylist() == ["b", "a", None, "b"]


@settings(max_examples=80, deadline=None)
@given(st.lists(st.lists(_byte, min_size=16, max_size=16), min_size=1, max_size=40),
       st.sampled_from([(0, 16), (8, 16), (0, 6), (12, 16)]), st.data())
def test_group_rows_matches_unique(rows: list[list[int]], span: tuple[int, int],
                                   data: st.DataObject) -> None:
    a = _addresses(rows, 16)
    n = len(a)
    tag = np.array(data.draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)), np.uint8)
    sel = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)), bool)
    w = np.array(data.draw(st.lists(st.integers(0, 9000), min_size=n, max_size=n)), np.int64)
    b0, b1 = span
    ids, hi, lo, tags, sums = group_rows(a, b0, b1, tag=tag, sel=sel, weight=w)
    keyed = np.zeros((n, 17), np.uint8)  # the key bytes, right-aligned in 16, then the tag
    keyed[:, 16 - (b1 - b0) : 16] = a[:, b0:b1]
    keyed[:, 16] = tag
    kv = np.ascontiguousarray(keyed[sel]).view(np.dtype((np.void, 17))).ravel()
    if not sel.any():
        assert (ids == -1).all() and len(hi) == 0
        return
    uniq, inv = np.unique(kv, return_inverse=True)
    want_ids = np.full(n, -1, np.int64)
    want_ids[sel] = inv.ravel()
    assert np.array_equal(ids, want_ids)
    ub = np.frombuffer(b"".join(u.tobytes() for u in uniq), np.uint8).reshape(-1, 17)
    assert np.array_equal(key_bytes16(hi, lo), ub[:, :16])
    assert np.array_equal(tags, ub[:, 16])
    assert np.array_equal(sums, np.bincount(inv.ravel(), weights=w[sel]).astype(np.int64))


def _is_multicast_numpy(dst: np.ndarray, v4: np.ndarray) -> np.ndarray:
    m4 = v4 & ((dst[:, 12] >= 224) & (dst[:, 12] <= 239) | (dst[:, 12:] == 255).all(axis=1))
    return m4 | (~v4 & (dst[:, 0] == 0xFF))


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.lists(st.sampled_from([0, 1, 223, 224, 239, 240, 255]), min_size=16,
                                   max_size=16), st.booleans()), min_size=1, max_size=40))
def test_is_multicast_matches_numpy(rows: list[tuple[list[int], bool]]) -> None:
    dst = _addresses([r for r, _ in rows], 16)
    v4 = np.array([b for _, b in rows], bool)
    assert np.array_equal(C._is_multicast(dst, v4), _is_multicast_numpy(dst, v4))


def _schedule_numpy(ts_ns: np.ndarray, wire_len: np.ndarray, received: np.ndarray,
                    opts: ReplayOptions, speed_bps: int) -> tuple[np.ndarray, ...]:
    """wire.schedule as it was written with numpy masks (before the compiled pass)."""
    n, loops = len(ts_ns), int(opts.loop or 1)
    one = np.cumsum(wire.replay_gaps(ts_ns, wire_len, opts))
    span = one[-1] if n else 0.0
    frame = np.tile(np.arange(n, dtype=np.int64), loops)
    loop = np.repeat(np.arange(loops, dtype=np.int64), n)
    t_send = np.tile(one, loops) + loop * span
    if opts.limit is not None:
        frame, loop, t_send = frame[: opts.limit], loop[: opts.limit], t_send[: opts.limit]
    rx = received[frame]
    t_wire = np.full(len(frame), -1, dtype=np.int64)
    if rx.any():
        bits = (np.maximum(wire_len[frame[rx]].astype(np.int64), 60) + 24) * 8
        t_rx, end, out = t_send[rx], 0, []
        ps = t_rx.max() < 9e15
        start = np.round(t_rx * 1000.0 if ps else t_rx).astype(np.int64)
        for s, b in zip(start.tolist(), bits.tolist(), strict=True):
            s = max(s, end)
            end = s + (b * 10**12 // speed_bps if ps else -(-(b * 10**9) // speed_bps))
            out.append(end // 1000 if ps else end)
        t_wire[rx] = out
    return frame, loop, t_wire


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2 * 10**16), st.integers(20, 9000), st.booleans()),
                min_size=1, max_size=30),
       st.sampled_from([1, 3]), st.sampled_from([None, 5]), st.sampled_from([None, 0.5, 3.0]),
       st.sampled_from([10**9, 10**10, 800_000_000_000]))
def test_schedule_matches_numpy(frames: list[tuple[int, int, bool]], loops: int,
                                limit: int | None, mult: float | None, speed: int) -> None:
    ts = np.array(sorted(f[0] for f in frames), np.int64)
    ln = np.array([f[1] for f in frames], np.int64)
    rx = np.array([f[2] for f in frames], bool)
    opts = ReplayOptions(loop=loops, limit=limit, multiplier=mult)
    got = wire.schedule(ts, ln, rx, opts, speed)
    want = _schedule_numpy(ts, ln, rx, opts, speed)
    for g, w in zip(got, want, strict=True):
        assert np.array_equal(g, w)
