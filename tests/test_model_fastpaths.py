"""The speed paths give exactly what the plain numpy formulas they replaced give.

host inference (classify.py) groups addresses by hashing instead of np.unique over void keys;
packets.parquet columns come from one compiled pass (outcols.py) instead of numpy masks.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from replay.model import classify as C  # noqa: N812
from replay.model.outcols import arrow, dict_array


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
