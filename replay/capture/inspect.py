"""Capture files → what `replay inspect` prints: capinfos-like summaries, or one frame's layers."""

from __future__ import annotations

import json
from collections.abc import Sequence

from replay.capture import read_captures
from replay.capture.layers import frame_layers
from replay.capture.reader import FrameReader
from replay.capture.summary import render, summarize
from replay.errors import TraceError


def inspect_traces(paths: Sequence[str], *, as_json: bool = False) -> str:
    """Summary of each input (one JSON document with a list, or capinfos-style text blocks)."""
    cap = read_captures(paths)
    sums = []
    for info in cap.inputs:
        part = cap.table.slice(info.first_frame - 1, info.frames) if info.frames else cap.table.slice(0, 0)
        sums.append(summarize(part, info))
    if as_json:
        return json.dumps({"inputs": sums}, indent=2) + "\n"
    return "\n".join(render(s) for s in sums)


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
