"""Arrow record batches of a flat schema → a Parquet file, encoded by our own compiled kernels.

pyarrow's Parquet writer costs ≈0.21 CPU-s per million frames on the frames table even with
dictionaries, statistics and compression all off (benchmarks/bench_reader.py --writers): it
builds definition levels value by value, copies each fixed-size binary through a pointer, and
hashes dictionary values in a generic table. The frames table needs none of that generality:
every column is flat, so a definition level is exactly the Arrow validity bit (a bit-packed
run of width 1 *is* the validity bitmap), small integers have direct-lookup dictionaries, and
frame numbers and timestamps delta-pack to a few bits. This writer does only that and costs
≈0.06 CPU-s per million frames (pyarrow's: 0.26 with the options that suited the table best);
pyarrow and polars read its files back to the same Arrow table (tests/test_capture_pqwrite.py).

Layout (parquet-format, parquet.thrift): per record batch one row group, per column one
optional dictionary page and one data page (v1: definition levels with a 4-byte length, then
values), uncompressed unless the column is given zstd (level 1, every page of its chunk); the
footer is FileMetaData in Thrift's compact protocol, with the Arrow
schema under `ARROW:schema` (as pyarrow stores it) so that readers restore the exact types
(unsigned widths, fixed-size binary, dictionary strings).
"""

from __future__ import annotations

import base64
import os
from typing import Any

import numpy as np
import pyarrow as pa
import zstandard

from replay import __version__
from replay.capture import pqencode as k

# parquet.thrift enums
_BOOLEAN, _INT32, _INT64, _BYTE_ARRAY, _FLBA = 0, 1, 2, 6, 7
_REQUIRED, _OPTIONAL = 0, 1
_PLAIN, _RLE, _DELTA_BINARY_PACKED, _RLE_DICTIONARY = 0, 3, 5, 8
_DATA_PAGE, _DICTIONARY_PAGE = 0, 2
_UNCOMPRESSED, _ZSTD = 0, 6
_UTF8, _UINT_8, _UINT_16, _UINT_32, _UINT_64 = 0, 11, 12, 13, 14

# Thrift compact protocol type ids
_T_BOOL, _T_I8, _T_I16, _T_I32, _T_I64, _T_BIN, _T_LIST, _T_STRUCT = 1, 3, 4, 5, 6, 8, 9, 12

CREATED_BY = f"stack-replay version {__version__}"  # readers parse "<name> version <x.y.z>"
_MAX_DICT = 1 << 16  # dictionary entries per column chunk before falling back to plain
_HEAD = 64  # room for a data page header before its body in the scratch buffer

Fields = list[tuple[int, int, Any]]


def _uvar(out: bytearray, v: int) -> None:
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)


def _value(out: bytearray, kind: int, v: Any) -> None:
    if kind in (_T_I16, _T_I32, _T_I64):
        _uvar(out, (v << 1) ^ (v >> 63))  # zigzag
    elif kind == _T_I8:
        out.append(v & 0xFF)
    elif kind == _T_BIN:
        b = v.encode() if isinstance(v, str) else bytes(v)
        _uvar(out, len(b))
        out += b
    elif kind == _T_STRUCT:
        if isinstance(v, bytes):  # encoded already (a column chunk, a row group)
            out += v
        else:
            _struct(out, v)
    else:  # _T_LIST: (element kind, items)
        elem, items = v
        if len(items) < 15:
            out.append(len(items) << 4 | elem)
        else:
            out.append(0xF0 | elem)
            _uvar(out, len(items))
        for item in items:
            _value(out, elem, item)


def _struct(out: bytearray, fields: Fields) -> None:
    """A Thrift compact-protocol struct: (field id, type, value) in rising id order; None
    values are left out (optional fields)."""
    last = 0
    for fid, kind, v in fields:
        if v is None:
            continue
        t = (1 if v else 2) if kind == _T_BOOL else kind
        delta = fid - last
        if 0 < delta <= 15:
            out.append(delta << 4 | t)
        else:
            out.append(t)
            _uvar(out, (fid << 1) ^ (fid >> 63))
        if kind != _T_BOOL:
            _value(out, kind, v)
        last = fid
    out.append(0)


def _zz(v: int) -> bytes:
    """A zigzag varint (Thrift compact i16/i32/i64) as bytes."""
    out = bytearray()
    _uvar(out, (v << 1) ^ (v >> 63))
    return bytes(out)


def thrift(fields: Fields) -> bytes:
    out = bytearray()
    _struct(out, fields)
    return bytes(out)


class _Column:
    """How one Arrow field is stored: physical type, annotations, value encoding."""

    def __init__(self, field: pa.Field, plain: bool, stats: bool, zstd: bool = False) -> None:
        t = field.type
        self.name = field.name
        self.zstd = zstd  # pages compressed with zstd level 1
        self.optional = field.nullable
        self.stats = stats
        self.type_length: int | None = None
        self.logical: Fields | None = None
        self.converted: int | None = None
        self.table: np.ndarray | None = None  # dict_direct's lookup table
        self.prefixes: dict[tuple[int, ...], bytes] = {}  # encoded constant metadata fields
        self.plain = plain
        if t in (pa.uint8(), pa.uint16(), pa.uint32()):
            width = t.bit_width
            self.physical, self.kind = _INT32, f"u{width}"
            self.logical = [(10, _T_STRUCT, [(1, _T_I8, width), (2, _T_BOOL, False)])]
            self.converted = {8: _UINT_8, 16: _UINT_16, 32: _UINT_32}[width]
            self.np = {8: np.uint8, 16: np.uint16, 32: np.uint32}[width]
            if width < 32:
                self.table = np.full(1 << width, -1, np.int32)
        elif t in (pa.uint64(), pa.int64()):
            self.physical, self.kind = _INT64, "i64"
            self.np = np.uint64 if t == pa.uint64() else np.int64
            if t == pa.uint64():
                self.logical = [(10, _T_STRUCT, [(1, _T_I8, 64), (2, _T_BOOL, False)])]
                self.converted = _UINT_64
        elif t == pa.bool_():
            self.physical, self.kind = _BOOLEAN, "bool"
        elif pa.types.is_fixed_size_binary(t):
            self.physical, self.kind, self.type_length = _FLBA, "flba", t.byte_width
            w = t.byte_width
            self.word = next(d for d, s in ((np.uint64, 8), (np.uint32, 4), (np.uint16, 2), (np.uint8, 1))
                             if w % s == 0)  # fmt: skip
        elif pa.types.is_dictionary(t) and t.index_type in (pa.int8(), pa.int16()) \
                and t.value_type == pa.string():
            # int8 indices: the frames table; int16: the run directory's tables (store/schema.py)
            self.physical, self.kind = _BYTE_ARRAY, "dict"
            self.np = np.int8 if t.index_type == pa.int8() else np.int16
            self.logical = [(1, _T_STRUCT, [])]
            self.converted = _UTF8
        else:
            raise TypeError(f"pqwrite: column {field.name!r} of type {t} is not supported")

    def schema_element(self) -> Fields:
        return [
            (1, _T_I32, self.physical),
            (2, _T_I32, self.type_length),
            (3, _T_I32, _OPTIONAL if self.optional else _REQUIRED),
            (4, _T_BIN, self.name),
            (6, _T_I32, self.converted),
            (10, _T_STRUCT, self.logical),
        ]


def _levels(n: int, nulls: int, valid: np.ndarray | None) -> bytes:
    """Definition levels (width 1) of n values as a hybrid run, with its 4-byte length."""
    out = bytearray()
    if nulls == 0 or nulls == n:
        _uvar(out, n << 1)  # one RLE run of 1s (all present) or 0s (all null)
        out.append(0 if nulls else 1)
    else:
        groups = (n + 7) // 8
        _uvar(out, groups << 1 | 1)
        out += memoryview(valid)[:groups]  # type: ignore[index]
    return len(out).to_bytes(4, "little") + out


def _bw(entries: int) -> int:
    return max(1, (entries - 1).bit_length())


class ParquetFileWriter:
    """Writes batches of `schema` (flat: uint8/16/32/64, int64, bool, fixed-size binary,
    dictionary<int8 or int16, string>) to `path`, one row group per batch.

    plain: columns whose values are (nearly) all distinct, written plain rather than trying a
    dictionary; stats: columns given min/max statistics; zstd: columns whose pages are
    compressed with zstd level 1."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        schema: pa.Schema,
        *,
        plain: tuple[str, ...] = (),
        stats: tuple[str, ...] = (),
        zstd: tuple[str, ...] = (),
    ) -> None:
        self.schema = schema
        self.columns = [_Column(f, f.name in plain, f.name in stats, f.name in zstd) for f in schema]
        self.zstd = zstandard.ZstdCompressor(level=1) if zstd else None  # releases the GIL
        # unbuffered: each page is one write from our buffer, with no copy into Python's
        self.f = open(path, "wb", buffering=0)  # noqa: SIM115 (closed by close())
        self.f.write(b"PAR1")
        self.pos = 4
        self.rows = 0
        self.row_groups: list[bytes] = []  # RowGroup structs, encoded
        self.raw_size = 0
        self.kv: dict[str, str] = {"ARROW:schema": base64.b64encode(schema.serialize()).decode()}
        self.scratch = np.empty(0, np.uint8)

    # -- context manager / pyarrow-like API ---------------------------------------------------

    def __enter__(self) -> ParquetFileWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()
        else:
            self.f.close()

    def add_key_value_metadata(self, kv: dict[str, str]) -> None:
        self.kv.update(kv)

    def replace_schema_metadata(self, metadata: dict[bytes, bytes]) -> None:
        """The Arrow schema's own metadata (what readers restore on the table), settable until
        close(): it only goes into the footer, so a writer whose batches are all written can
        still be given metadata known later (the run directory's config, after the replay)."""
        schema = self.schema.with_metadata(metadata)
        self.kv["ARROW:schema"] = base64.b64encode(schema.serialize()).decode()

    def write_batch(self, batch: pa.RecordBatch) -> None:
        n = batch.num_rows
        if n == 0:
            return
        start = self.pos
        chunks = []
        self.raw_size = 0  # the row group's size uncompressed, added up by _page/_data_page
        for col, arr in zip(self.columns, batch.columns, strict=True):
            if arr.offset:
                arr = pa.concat_arrays([arr])  # buffers that start at the first value
            chunks.append(self._column(col, arr))
        self.row_groups.append(thrift([
            (1, _T_LIST, (_T_STRUCT, chunks)),
            (2, _T_I64, self.raw_size),
            (3, _T_I64, n),
            (5, _T_I64, start),
            (6, _T_I64, self.pos - start),
            (7, _T_I16, len(self.row_groups)),
        ]))  # fmt: skip
        self.rows += n

    def close(self) -> None:
        if self.f.closed:
            return
        root = [(4, _T_BIN, "schema"), (5, _T_I32, len(self.columns))]
        meta = thrift([
            (1, _T_I32, 2),
            (2, _T_LIST, (_T_STRUCT, [root, *(c.schema_element() for c in self.columns)])),
            (3, _T_I64, self.rows),
            (4, _T_LIST, (_T_STRUCT, self.row_groups)),
            (5, _T_LIST, (_T_STRUCT, [[(1, _T_BIN, key), (2, _T_BIN, v)] for key, v in self.kv.items()])),
            (6, _T_BIN, CREATED_BY),
            # TypeDefinedOrder for every column: min/max compare as the logical type says
            # (unsigned for the uint columns)
            (7, _T_LIST, (_T_STRUCT, [[(1, _T_STRUCT, [])] for _ in self.columns])),
        ])  # fmt: skip
        self.f.write(meta)
        self.f.write(len(meta).to_bytes(4, "little") + b"PAR1")
        self.f.close()

    # -- one column chunk ---------------------------------------------------------------------

    def _buf(self, size: int) -> np.ndarray:
        if self.scratch.shape[0] < size:
            self.scratch = np.empty(max(size, 2 * self.scratch.shape[0]), np.uint8)
        return self.scratch

    def _page(self, col: _Column, kind: int, body: memoryview | bytes, header: Fields) -> None:
        """Write one page (header, then body, compressed if the column says so)."""
        raw = len(body)
        if col.zstd and self.zstd is not None:
            body = self.zstd.compress(body)
        head = thrift([(1, _T_I32, kind), (2, _T_I32, raw), (3, _T_I32, len(body)), *header])
        self.f.write(head + body)
        self.pos += len(head) + len(body)
        self.raw_size += len(head) + raw

    def _data_page(self, col: _Column, out: np.ndarray, end: int, n: int, encoding: int) -> None:
        """Write out[_HEAD:end] as a data page of n values: its header goes into the room left
        before the body, so the page is one write with no copy. The header in Thrift's compact
        protocol, spelled out (this runs once per column per batch): type, both sizes, then
        DataPageHeader(num_values, encoding, RLE definition and repetition levels)."""
        tail = b"\x2c\x15" + _zz(n) + b"\x15" + _zz(encoding) + b"\x15\x06\x15\x06\x00\x00"
        raw = end - _HEAD
        if col.zstd and self.zstd is not None:
            body = self.zstd.compress(memoryview(out)[_HEAD:end])
            head = b"\x15\x00\x15" + _zz(raw) + b"\x15" + _zz(len(body)) + tail
            self.f.write(head + body)
            self.pos += len(head) + len(body)
            self.raw_size += len(head) + raw
            return
        zs = _zz(raw)
        head = b"\x15\x00\x15" + zs + b"\x15" + zs + tail
        h0 = _HEAD - len(head)
        out[h0:_HEAD] = np.frombuffer(head, np.uint8)
        self.f.write(memoryview(out)[h0:end])
        self.pos += end - h0
        self.raw_size += end - h0

    def _column(self, col: _Column, arr: pa.Array) -> bytes:
        """Write one column chunk; returns its ColumnChunk metadata, encoded."""
        n = len(arr)
        nulls = arr.null_count
        bufs = arr.buffers()
        valid = np.frombuffer(bufs[0], np.uint8) if nulls else None
        m = n - nulls
        levels = _levels(n, nulls, valid) if col.optional else b""
        start, raw_start = self.pos, self.raw_size
        dict_off = None
        encodings = [_RLE]
        stats = None
        # The kernels do not check bounds, so the buffer holds the worst case: 16 bytes a value
        # (plain 16-byte addresses; hybrid runs of 16-bit indices stay under 5) and, for
        # DELTA_BINARY_PACKED, 32 deltas of 64 bits for each of a 128-value block's 4
        # miniblocks (the padding of a short last block included) with its 14-byte header.
        delta = 1038 * (n // 128 + 1) if col.kind == "i64" else 0
        out = self._buf(_HEAD + len(levels) + 17 * n + 64 + delta)
        out[_HEAD : _HEAD + len(levels)] = np.frombuffer(levels, np.uint8)
        pos = _HEAD + len(levels)
        if col.kind == "dict":  # the dictionary page even when every value is null: readers
            # then get the Arrow dictionary back as it was
            dictionary: pa.Array = arr.dictionary
            codes = np.frombuffer(bufs[1], col.np)[:n]
            if nulls:
                packed = np.empty(n, col.np)
                k.compact(codes, valid, packed)
                codes = packed[:m]
            dict_off = self.pos
            self._dictionary_page(col, _plain_strings(dictionary), len(dictionary))
            bw = _bw(len(dictionary))
            out[pos] = bw
            pos = k.hybrid(codes, m, bw, out, pos + 1)
            encoding = _RLE_DICTIONARY
            encodings.append(_PLAIN)
        elif m == 0:  # all null: levels only
            encoding = _PLAIN
        elif col.kind == "bool":
            bits = np.frombuffer(bufs[1], np.uint8)
            nb = (m + 7) // 8
            if nulls:
                k.compact_bits(bits, valid, n, out[pos : pos + nb])
            else:
                out[pos : pos + nb] = bits[:nb]
            pos += nb
            encoding = _PLAIN
        else:
            if col.kind == "flba":
                w = col.type_length or 0
                raw = np.frombuffer(bufs[1], np.uint8)[: n * w].view(col.word).reshape(n, -1)
                if nulls:
                    packed2 = np.empty_like(raw)
                    k.compact_rows(raw, valid, packed2)
                    raw = packed2[:m]
                vals = raw
            else:
                vals = np.frombuffer(bufs[1], col.np)[:n]
                if nulls:
                    packed1 = np.empty(n, col.np)
                    k.compact(vals, valid, packed1)
                    vals = packed1[:m]
            if col.stats:
                stats = [(3, _T_I64, nulls), (5, _T_BIN, _plain_value(col, vals.max())),
                         (6, _T_BIN, _plain_value(col, vals.min()))]  # fmt: skip
            if col.kind == "i64":
                pos = k.delta_binary_packed(vals.view(np.int64), out, pos)
                encoding = _DELTA_BINARY_PACKED
            else:
                entries, idx = self._dictionary(col, vals)
                if entries is None:
                    pos = _plain_into(col, vals, out, pos)
                    encoding = _PLAIN
                else:
                    dict_off = self.pos
                    self._dictionary_page(col, _plain_values(col, entries), len(entries))
                    bw = _bw(len(entries))
                    out[pos] = bw
                    pos = k.hybrid(idx, m, bw, out, pos + 1)
                    encoding = _RLE_DICTIONARY
                    encodings.append(_PLAIN)
        data_off = self.pos
        self._data_page(col, out, pos, n, encoding)
        encodings.append(encoding)
        size, raw_size = self.pos - start, self.raw_size - raw_start
        # The ColumnChunk, encoded here: its constant fields (type, encodings, path, codec)
        # once per column and set of encodings; then the sizes and offsets (Thrift compact
        # field headers: delta << 4 | type, i64 = 6, struct = 12).
        key = tuple(sorted(set(encodings)))
        prefix = col.prefixes.get(key)
        if prefix is None:
            prefix = col.prefixes[key] = thrift([
                (1, _T_I32, col.physical),
                (2, _T_LIST, (_T_I32, list(key))),
                (3, _T_LIST, (_T_BIN, [col.name])),
                (4, _T_I32, _ZSTD if col.zstd else _UNCOMPRESSED),
            ])[:-1]  # fmt: skip
        meta = bytearray(b"\x26\x00\x1c")  # file_offset (2) = 0, meta_data (3):
        meta += prefix
        meta += b"\x16" + _zz(n) + b"\x16" + _zz(raw_size) + b"\x16" + _zz(size) + b"\x26" + _zz(data_off)
        last = 9
        if dict_off is not None:
            meta += b"\x26" + _zz(dict_off)
            last = 11
        if stats is not None:
            meta.append((12 - last) << 4 | _T_STRUCT)
            meta += thrift(stats)
        meta += b"\x00\x00"  # end of ColumnMetaData, of ColumnChunk
        return bytes(meta)

    def _dictionary_page(self, col: _Column, body: bytes, entries: int) -> None:
        self._page(col, _DICTIONARY_PAGE, body, [(7, _T_STRUCT, [(1, _T_I32, entries), (2, _T_I32, _PLAIN)])])

    def _dictionary(self, col: _Column, vals: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
        """(dictionary entries, each value's entry number), or (None, _) to write plain."""
        m = vals.shape[0]
        idx = np.empty(m, np.int32)
        if col.plain:
            return None, idx
        if col.kind in ("u8", "u16"):  # a lookup table indexed by value
            assert col.table is not None
            entries = np.empty(col.table.shape[0], col.np)
            nd, _ = k.dict_direct(vals, vals.view(np.uint8), False, col.table, entries, idx)
            return entries[:nd], idx
        if vals.ndim == 1 and int(vals.max()) < 1 << 16:
            # lengths, flow ids, interfaces: values that fit a 64k lookup table index it
            # directly (0.3 ns a value against 4 for hashing)
            if col.table is None:
                col.table = np.full(1 << 16, -1, np.int32)
            entries = np.empty(min(m, 1 << 16), col.np)
            nd, _ = k.dict_direct(vals, vals.view(np.uint8), False, col.table, entries, idx)
            return entries[:nd], idx
        keys = vals.reshape(m, 1) if vals.ndim == 1 else vals
        max_dict = min(_MAX_DICT, max(16, m // 4))
        slots = np.full(1 << (2 * max_dict - 1).bit_length(), -1, np.int32)
        entries = np.empty((max_dict, keys.shape[1]), keys.dtype)
        nd = k.dict_hash(keys, slots, entries, idx, max_dict)
        if nd < 0:
            return None, idx
        return entries[:nd], idx


def _plain_values(col: _Column, vals: np.ndarray) -> bytes:
    """PLAIN encoding of non-null values: INT32 as 4 little-endian bytes, INT64 as 8, fixed-size
    binary as its bytes."""
    if col.physical == _INT32:
        return vals.astype(np.uint32, copy=False).tobytes()  # little-endian hosts only (x86, arm)
    return np.ascontiguousarray(vals).tobytes()


def _plain_into(col: _Column, vals: np.ndarray, out: np.ndarray, pos: int) -> int:
    """_plain_values written straight into out[pos:] (one copy)."""
    if col.physical == _INT32 and vals.dtype != np.uint32:
        end = pos + 4 * vals.shape[0]
        out[pos:end].view(np.uint32)[:] = vals
        return end
    raw = np.ascontiguousarray(vals).reshape(-1).view(np.uint8)
    out[pos : pos + raw.shape[0]] = raw
    return pos + raw.shape[0]


def _plain_value(col: _Column, v: Any) -> bytes:
    return _plain_values(col, np.asarray([v], col.np))


def _plain_strings(dictionary: pa.Array) -> bytes:
    out = bytearray()
    for s in dictionary.to_pylist():
        b = s.encode()
        out += len(b).to_bytes(4, "little") + b
    return bytes(out)
