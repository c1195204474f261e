"""Capture timestamps + tcpreplay's speed options → when each frame's last bit reaches the NIC.

Virtual time, integer ns, replay start = 0. tcpreplay(1) semantics: `-x` scales the gaps
between packets, `-p` sends at a fixed packet rate, `-M` at a fixed data rate, `-t` back to back,
`-l` replays the capture again right after it ends, `-L` stops after N packets, `--duration` after
N seconds. Then the link serializes: a frame cannot start before the previous one ended, and the
wire carries what captures usually lack — the 4-byte FCS, 8 bytes of preamble and SFD and a
12-byte inter-frame gap — on top of a 60-byte minimum (so 64-byte frames at 1 GbE are
1,488,095 frames/s, KERNEL.md §6.1).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from replay.errors import ConfigError
from replay.runner import ReplayOptions

WIRE_OVERHEAD = 4 + 8 + 12  # FCS + preamble/SFD + inter-frame gap (IEEE 802.3)
MIN_FRAME = 60  # without FCS: shorter frames are padded


def replay_gaps(ts_ns: np.ndarray, wire_len: np.ndarray, opts: ReplayOptions) -> np.ndarray:
    """Gap before each frame (ns, float) under the replay options; gap[0] = 0."""
    n = len(ts_ns)
    gaps = np.zeros(n, dtype=np.float64)
    if n <= 1:
        return gaps
    chosen = [x for x in ("multiplier", "pps", "mbps", "topspeed") if getattr(opts, x)]
    if len(chosen) > 1:
        raise ConfigError(f"choose one of -x, -p, -M, -t (got {', '.join(chosen)}), as tcpreplay does")
    if opts.topspeed:
        return gaps
    if opts.pps is not None:
        if opts.pps <= 0:
            raise ConfigError(f"-p/--pps must be positive, got {opts.pps}")
        gaps[1:] = 1e9 / opts.pps
        return gaps
    if opts.mbps is not None:
        if opts.mbps <= 0:
            raise ConfigError(f"-M/--mbps must be positive, got {opts.mbps}")
        # tcpreplay paces by the previous packet's size at the requested rate
        gaps[1:] = wire_len[:-1].astype(np.float64) * 8 * 1e3 / opts.mbps
        return gaps
    d = np.diff(ts_ns).astype(np.float64)
    d[d < 0] = 0  # out-of-order timestamps: send at once, as tcpreplay does
    mult = 1.0 if opts.multiplier is None else float(opts.multiplier)
    if mult <= 0:
        raise ConfigError(f"-x/--multiplier must be positive, got {mult}")
    gaps[1:] = d / mult
    return gaps


@njit(cache=True)
def _serialize(start_ps, bits, speed_bps, out_ns):  # pragma: no cover - numba
    end = np.int64(0)
    for i in range(start_ps.shape[0]):
        s = start_ps[i]
        if s < end:
            s = end
        end = s + (bits[i] * np.int64(1_000_000_000_000)) // speed_bps
        out_ns[i] = end // 1000


@njit(cache=True)
def _serialize_ns(start_ns, dur_ns, out_ns):  # pragma: no cover - numba
    end = np.int64(0)
    for i in range(start_ns.shape[0]):
        s = start_ns[i]
        if s < end:
            s = end
        end = s + dur_ns[i]
        out_ns[i] = end


def schedule(
    ts_ns: np.ndarray,
    wire_len: np.ndarray,
    received: np.ndarray,
    opts: ReplayOptions,
    speed_bps: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(frame index, loop number, t_wire ns) of every replayed packet, in replay order.

    Frames not received by the host are replayed too (they keep the capture's timing) but do not
    occupy this host's link; their t_wire is -1.
    """
    loops = int(opts.loop or 1)
    if loops < 1:
        raise ConfigError(f"-l/--loop must be at least 1, got {loops}")
    n = len(ts_ns)
    gaps = replay_gaps(ts_ns, wire_len, opts)
    one = np.cumsum(gaps)
    span = one[-1] if n else 0.0
    if loops == 1:
        # one pass: no tiled copies (one + 0 * span is one: the span is finite)
        frame, loop, t_send = np.arange(n, dtype=np.int64), np.zeros(n, np.int64), one
    else:
        frame = np.tile(np.arange(n, dtype=np.int64), loops)
        loop = np.repeat(np.arange(loops, dtype=np.int64), n)
        # each loop starts right after the previous one's last packet (tcpreplay, no loopdelay)
        t_send = np.tile(one, loops) + loop * span
    if opts.limit is not None:
        if opts.limit < 1:
            raise ConfigError(f"-L/--limit must be at least 1, got {opts.limit}")
        frame, loop, t_send = frame[: opts.limit], loop[: opts.limit], t_send[: opts.limit]
    if opts.duration is not None:
        if opts.duration <= 0:
            raise ConfigError(f"--duration must be positive, got {opts.duration}")
        keep = t_send <= opts.duration * 1e9
        frame, loop, t_send = frame[keep], loop[keep], t_send[keep]
    rx = received[frame]
    t_wire = np.full(len(frame), -1, dtype=np.int64)
    if rx.any():
        ln = np.maximum(wire_len[frame[rx]].astype(np.int64), MIN_FRAME)
        bits = (ln + WIRE_OVERHEAD) * 8
        out = np.empty(int(rx.sum()), dtype=np.int64)
        t_rx = t_send[rx]
        if t_rx.max() < 9e15:
            # picoseconds keep the sub-ns serialization of fast links exact over ~2.5 hours
            start_ps = np.round(t_rx * 1000.0).astype(np.int64)
            _serialize(start_ps, bits, np.int64(speed_bps), out)
        else:
            # captures spanning days or years (clock jumps): ns steps, serialization rounded up
            start_ns = np.round(t_rx).astype(np.int64)
            ser = -(-(bits * 1_000_000_000) // speed_bps)
            _serialize_ns(start_ns, ser.astype(np.int64), out)
        t_wire[rx] = out
    return frame, loop, t_wire
