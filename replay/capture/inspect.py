"""Capture files → what `replay inspect` prints: capinfos-like summaries, or one frame's layers."""

from __future__ import annotations

import json
from collections.abc import Sequence

from replay.capture.layers import frame_layers
from replay.capture.reader import FrameReader
from replay.capture.summary import Summary, render
from replay.errors import TraceError


def inspect_traces(paths: Sequence[str], *, as_json: bool = False) -> str:
    """Summary of each input (one JSON document with a list, or capinfos-style text blocks).

    Streams: each batch is folded into its input's running Summary and dropped, so memory holds
    one batch plus per-flow totals however long the capture is."""
    reader = FrameReader(paths)
    sums: list[Summary] = []
    for batch in reader:
        while len(sums) < len(reader.inputs):  # the batch belongs to the latest input opened
            sums.append(Summary())
        sums[-1].add(batch)
    while len(sums) < len(reader.inputs):  # inputs without frames
        sums.append(Summary())
    docs = [s.result(info) for s, info in zip(sums, reader.inputs, strict=True)]
    if as_json:
        return json.dumps({"inputs": docs}, indent=2) + "\n"
    return "\n".join(render(s) for s in docs)


def inspect_frame(paths: Sequence[str], n: int, *, as_json: bool = False) -> str:
    """Layers of frame n (1-based across all inputs), decoded by dpkt."""
    reader = FrameReader(paths, keep_frame=n)
    total = 0
    for batch in reader:
        total += batch.num_rows
        if reader.kept is not None:
            break
    if reader.kept is None:
        raise TraceError(", ".join(paths), f"there is no frame {n} (the input has {total} frames)")
    raw, lt, ts, wire, iface = reader.kept
    if as_json:
        doc = {"frame": n, "linktype": lt, "ts_ns": ts, "wire_len": wire, "cap_len": len(raw),
               "iface": iface, "bytes": raw.hex(), "layers": frame_layers(raw, lt)}  # fmt: skip
        return json.dumps(doc, indent=2) + "\n"
    head = f"Frame {n}: {len(raw)} bytes captured, {wire} on the wire, ts_ns {ts}, interface {iface}"
    return "\n".join([head, *frame_layers(raw, lt)]) + "\n"
