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
def _wire_times(t_send, frame, received, wire_len, speed_bps, t_wire):  # pragma: no cover
    """t_wire[i]: when packet i's last bit reaches the NIC, -1 if the host does not receive its
    frame. Each frame starts at its send time or when the previous one ended, whichever is later.

    One pass over the packets (the numpy form built eight n-row temporaries). Send times round
    half to even (np.rint, as np.round did) to picoseconds, which keep the sub-ns serialization
    of fast links exact over ~2.5 hours; captures spanning days or years (clock jumps) step in
    ns, each frame's serialization rounded up."""
    n = frame.shape[0]
    tmax = -np.inf
    for i in range(n):
        if received[frame[i]] and t_send[i] > tmax:
            tmax = t_send[i]
    ps = tmax < 9e15
    end = np.int64(0)
    for i in range(n):
        f = frame[i]
        if not received[f]:
            t_wire[i] = -1
            continue
        bits = (max(np.int64(wire_len[f]), MIN_FRAME) + WIRE_OVERHEAD) * 8
        if ps:
            s = np.int64(np.rint(t_send[i] * 1000.0))
            if s < end:
                s = end
            end = s + (bits * np.int64(1_000_000_000_000)) // speed_bps
            t_wire[i] = end // 1000
        else:
            s = np.int64(np.rint(t_send[i]))
            if s < end:
                s = end
            end = s - (-(bits * np.int64(1_000_000_000)) // speed_bps)
            t_wire[i] = end


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
    t_wire = np.empty(len(frame), dtype=np.int64)
    _wire_times(t_send, frame, np.ascontiguousarray(received, dtype=np.bool_), wire_len,
                np.int64(speed_bps), t_wire)
    return frame, loop, t_wire
