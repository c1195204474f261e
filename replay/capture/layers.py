"""One frame's bytes → its protocol layers as text, decoded by dpkt (`replay inspect --frame N`).

The bulk reader decodes only the fields of the frames table; this is the detailed view of one
frame, where dpkt's per-packet objects cost nothing.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Any

import dpkt

from replay.capture.summary import linktype_name


def _top(lt: int, raw: bytes) -> Any:
    """The outermost dpkt object for link type lt (raw bytes when dpkt has no decoder)."""
    if lt == 1:
        return dpkt.ethernet.Ethernet(raw)
    if lt == 113:
        return dpkt.sll.SLL(raw)
    if lt == 276:
        return dpkt.sll2.SLL2(raw)
    if lt in (0, 108):
        return dpkt.loopback.Loopback(raw)
    if lt == 127:
        return dpkt.radiotap.Radiotap(raw)
    if lt == 105:
        return dpkt.ieee80211.IEEE80211(raw)
    if lt in (12, 14, 101, 228, 229):
        if raw and raw[0] >> 4 == 6:
            return dpkt.ip6.IP6(raw)
        return dpkt.ip.IP(raw)
    return raw


def _value(name: str, v: Any, obj: Any) -> str:
    if isinstance(v, bytes):
        if name in ("src", "dst") and len(v) in (4, 16):
            return dpkt.utils.inet_to_str(v)
        if len(v) == 6 and name in ("src", "dst", "addr1", "addr2", "addr3", "addr4"):
            return dpkt.utils.mac_to_str(v)
        return v.hex() if len(v) <= 32 else v[:32].hex() + f"… ({len(v)} bytes)"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v} (0x{v:x})"
    return repr(v)


def frame_layers(raw: bytes, lt: int) -> list[str]:
    """Indented lines: one header line per layer, then its fields."""
    lines = [f"Link type {lt} ({linktype_name(lt)}), {len(raw)} bytes captured"]
    warnings.simplefilter("ignore", DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*deprecated", category=UserWarning)
    try:
        obj: Any = _top(lt, raw)
    except (dpkt.UnpackError, dpkt.NeedData, ValueError, IndexError, KeyError) as e:
        return [
            *lines,
            f"  dpkt cannot decode it: {type(e).__name__}: {e}",
            f"  bytes: {raw.hex()}",
        ]
    depth = 0
    while isinstance(obj, dpkt.Packet):
        pad = "  " * depth
        hdr_len = len(obj) - len(obj.data) if isinstance(obj.data, bytes | dpkt.Packet) else len(obj)
        kind = f"{type(obj).__module__.split('.')[-1]}.{type(obj).__name__}"
        lines.append(f"{pad}{kind} ({hdr_len} bytes header)")
        for name, *_ in getattr(obj, "__hdr__", ()):
            if name.startswith("_"):
                continue
            try:
                lines.append(f"{pad}  {name} = {_value(name, getattr(obj, name), obj)}")
            except (AttributeError, ValueError):
                continue
        for prop in ("v", "hl", "mf", "df", "offset", "vlan_tags", "mpls_labels"):
            if prop in {h[0] for h in getattr(obj, "__hdr__", ())}:
                continue
            if hasattr(type(obj), prop) and isinstance(getattr(type(obj), prop), property):
                with contextlib.suppress(AttributeError, ValueError, TypeError):
                    lines.append(f"{pad}  {prop} = {getattr(obj, prop)!r}")
        obj = obj.data
        depth += 1
    if isinstance(obj, bytes) and obj:
        lines.append(f"{'  ' * depth}payload: {_value('data', obj, None)}")
    return lines
