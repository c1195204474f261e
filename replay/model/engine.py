"""Arrival times + packet columns → per-packet stage times, CPU spans and kernel counters.

The discrete-event core, compiled with numba. Entities (the arrival stream, each queue's
interrupt timer, each CPU, each application thread's wake-up timer) sit in one indexed min-heap
keyed by (time, entity): ties break by entity number, so a run is deterministic. A CPU executes one
*step* at a time (a packet through driver+GRO, a GRO-normal batch through the list receive path, one
skb's local delivery and socket enqueue, a recvmsg, a copy, the application's work); a step's
effects that other CPUs can see (a socket enqueue, an IRQ re-arm, a wake-up) are applied at the
step's end, after every event of an earlier time has been processed.

Every function takes `S`, the engine state of model/state.py (one pointer; its fields are the
arrays whose slots layout.py names): a namedtuple of the same arrays cost over half the loop in
reference counts and compiled twice as slowly (the measurements are in state.py). Python calls
the entry points with the StructRef; run_loop hands everything it calls a StateView of it, which
is not reference counted (state.py: the counts on the StructRef were 18 % of the loop). The small helpers are
inline="always" (numba inlines their IR into the caller): 1.00 -> 0.82 s CPU on a 1M-frame UDP
flood at the same compile time; inlining every function instead compiled for over 6 minutes.

Every rule cites KERNEL.md (the reference beside the design); the section is given at each rule.
Simplifications are said where they are made:
- a hard IRQ that arrives while its CPU is in softirq context is handled at the end of the current
  step (at most one packet's work later), not mid-step; while the CPU runs a task it preempts at once.
- the scheduler is round-robin among runnable tasks of a CPU with a fixed slice (EEVDF's base
  slice); a woken reader preempts the current task only as wakeup_preempt decides for equal
  vruntimes at its sleep (ttwu_preempt), at the current task's next scheduling check.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from replay.model.layout import *
from replay.model.state import ctz, prefetch, state_view

# poll/NRA phases (cs[c, CS_PHASE])
PH_NEXT = 0  # pick the next NAPI of net_rx_action's list
PH_LOOP = 1  # the driver's RX clean loop
PH_PKT_DONE = 2  # a packet went through driver+GRO: maybe flush the GRO-normal batch
PH_FLUSH = 3  # gro_normal_list: the batch through the stack
PH_END_PARTIAL = 4  # work < weight: napi_complete_done
PH_END_FULL = 5  # work == weight: repoll
PH_AFTER = 6  # budget / time checks after a poll

# thread phases
TP_SYSCALL = 0
TP_COPY = 1
TP_WORK = 2
TP_BLOCK = 3
TP_RETRY = 4
TP_ACCEPTED = 5  # an accept() (and the app's work on the new connection) is done
TP_BUSY = 6  # busy polling: the top of __napi_busy_loop's loop (take the NAPI, poll or spin)
TP_BUSY_CHK = 7  # busy polling: the end of an iteration (loop_end, need_resched)
TP_BUSY_END = 8  # busy polling: the loop is over (busy_poll_stop done)
TP_BUSY_RESUME = 9  # busy polling: back after cond_resched

TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK, TCP_URG, TCP_ECE, TCP_CWR = 1, 2, 4, 8, 16, 32, 64, 128
SKB_STRUCT = 256  # SKB_DATA_ALIGN(sizeof(struct sk_buff)) on x86_64 (skbuff.h SKB_TRUESIZE)
INT_MAX_HALF = (2**31 - 1) >> 1


# ------------------------------------------------------------------------------------- heap


@njit(cache=True, inline="always")
def _less(ht, a, b):
    ta = ht[a]
    tb = ht[b]
    return ta < tb or (ta == tb and a < b)


@njit(cache=True, inline="always")
def _heap_fix(ht, hh, hp, e, t):
    """Set entity e's time to t and restore the heap (an indexed binary heap)."""
    ht[e] = t
    i = hp[e]
    n = hh.shape[0]
    # up
    while i > 0:
        p = (i - 1) >> 1
        if _less(ht, hh[i], hh[p]):
            a = hh[i]
            hh[i] = hh[p]
            hh[p] = a
            hp[hh[i]] = i
            hp[hh[p]] = p
            i = p
        else:
            break
    # down
    while True:
        l_ = 2 * i + 1
        if l_ >= n:
            break
        m = l_
        r = l_ + 1
        if r < n and _less(ht, hh[r], hh[l_]):
            m = r
        if _less(ht, hh[m], hh[i]):
            a = hh[i]
            hh[i] = hh[m]
            hh[m] = a
            hp[hh[i]] = i
            hp[hh[m]] = m
            i = m
        else:
            break


@njit(cache=True, inline="always")
def stays_top(ht, hh, e, t):
    """Does entity e, the heap's top, stay there with time t? (Both children come after (t, e).)
    A CPU's next step is most often set while its own event is the top: this check inline saves
    the call to heap_set (perf: 9 % of the loop on the UDP flood was heap_set)."""
    n = hh.shape[0]
    if n > 1:
        a = hh[1]
        if ht[a] < t or (ht[a] == t and a < e):
            return False
    if n > 2:
        b = hh[2]
        if ht[b] < t or (ht[b] == t and b < e):
            return False
    return True


@njit(cache=True)
def heap_fix(ht, hh, hp, e, t):
    _heap_fix(ht, hh, hp, e, t)


@njit(cache=True)
def heap_set(S, e, t):
    """heap_fix on the state's heap: one struct pointer per call instead of three arrays (each
    passed as seven machine words); the body is inlined here."""
    _heap_fix(S.ht, S.hh, S.hp, e, t)


# ------------------------------------------------------------------------------------- helpers


@njit(cache=True, inline="always")
def ring_next(i, n):
    """(i + 1) % n for 0 <= i < n, without the division (a 64-bit idiv per ring or socket queue
    step on the per-packet path)."""
    return i + 1 if i + 1 < n else 0


@njit(cache=True, inline="always")
def cost(S, k, nbytes):
    return S.cbase[k] + np.int64(S.cpb[k] * nbytes)


@njit(cache=True, inline="always")
def jiffies(S, t):
    return (t + S.P[P_PHASE]) // S.P[P_TICK]


@njit(cache=True, inline="always")
def emit_event(S, t, end, c, q, kind, value, detail):
    n = S.misc[M_NEV]
    if n < S.ev.shape[0]:
        S.ev[n, 0] = t
        S.ev[n, 1] = end
        S.ev[n, 2] = c
        S.ev[n, 3] = q
        S.ev[n, 4] = kind
        S.ev[n, 5] = value
        S.ev[n, 6] = detail
        S.misc[M_NEV] = n + 1


@njit(cache=True, inline="always")
def acc_mark(S, c, level, slot):
    """Record that the span at this level used accumulator slot `slot` (see flush_span)."""
    S.cs[c, CS_ACCM + 2 * level + (slot >> 6)] |= np.int64(1) << (slot & 63)


@njit(cache=True, inline="always")
def charge(S, c, level, slot, ns, frames):
    S.acc[c, level, slot] += ns
    S.accf[c, level, slot] += frames
    acc_mark(S, c, level, slot)


@njit(cache=True, inline="always")
def flush_span(S, c, level, start, end, ctx, comm):
    """Emit one cpu.parquet row per slot used in the span, then clear the accumulators.

    The slots are those charge() marked, in slot order as a scan of all N_SLOTS would give
    them: a span uses a handful of the 69 slots, and the scan was a tenth of the loop on the
    UDP flood (it runs once per recvmsg, hard IRQ and softirq)."""
    for w in range(2):
        m = S.cs[c, CS_ACCM + 2 * level + w]
        if m == 0:
            continue
        S.cs[c, CS_ACCM + 2 * level + w] = 0
        while m != 0:
            y = 64 * w + ctz(m)
            m &= m - 1
            ns = S.acc[c, level, y]
            fr = S.accf[c, level, y]
            if ns != 0 or fr != 0:
                n = S.misc[M_NROWS]
                if n < S.rows.shape[1]:
                    # column-major (field, row): each cpu.parquet column is one contiguous row
                    S.rows[0, n] = c
                    S.rows[1, n] = start
                    S.rows[2, n] = end
                    S.rows[3, n] = ctx
                    S.rows[4, n] = comm
                    S.rows[5, n] = y
                    S.rows[6, n] = ns
                    S.rows[7, n] = fr
                    S.misc[M_NROWS] = n + 1
                S.acc[c, level, y] = 0
                S.accf[c, level, y] = 0


@njit(cache=True, inline="always")
def level_of(S, c):
    x = S.cs[c, CS_X]
    if x == X_HARDIRQ:
        return 2
    if x == X_SOFTIRQ:
        return 1
    return 0


@njit(cache=True, inline="always")
def start_step(S, c, now, step, arg, dur):
    S.cs[c, CS_STEP] = step
    S.cs[c, CS_ARG] = arg
    S.cs[c, CS_NEXT] = now + dur
    S.cs[c, CS_BUSY] += dur
    e = S.P[P_ECPU0] + c
    if S.hh[0] == e and stays_top(S.ht, S.hh, e, now + dur):
        S.ht[e] = now + dur  # what heap_set does here: no entry moves
    else:
        heap_set(S, e, now + dur)


@njit(cache=True, inline="always")
def run_on(S, c, t2):
    """Is the step start_step just gave CPU c, ending at t2, the engine's very next event? Then
    the caller ends it itself, at once, instead of returning to run_loop, which would pop that
    same event next: c's entity is the heap's top (every other entity is later, or at t2 with a
    higher number), the next arrival is later (it wins a tie), and the output buffers have the
    room run_loop checks for. Same events in the same order, each still counted; what is saved is
    the return through cpu_complete, run_loop's dispatch and the call back down (run_loop 0.365
    -> 0.310 s user on the 1M-frame UDP flood: docs/design-notes.md, Speed, session 5). The
    caller checks first that the step's end takes the path it runs (cpu_complete's other
    branches: a deferred hard IRQ, a tick cut, NET_RX pending at a system call's end)."""
    if S.hh[0] != S.P[P_ECPU0] + c or t2 >= S.misc[M_TARR]:
        return False
    if S.misc[M_NROWS] + 4 * S.acc.shape[2] >= S.rows.shape[1] or \
            S.misc[M_NEV] + 64 >= S.ev.shape[0]:
        return False
    S.misc[5] += 1  # the step's end is a CPU event (counters.model.engine_events) as before
    S.cs[c, CS_STEP] = ST_NONE  # what cpu_complete does first
    return True


@njit(cache=True, inline="always")
def nra_run_on(S, c):
    """run_on for a step net_rx_action started: its end takes cpu_complete's last path (a hard
    IRQ that waited for the step, else nra_advance), so only with none waiting."""
    return S.cs[c, CS_HI_N] == 0 and run_on(S, c, S.cs[c, CS_NEXT])


@njit(cache=True, inline="always")
def cpu_stop(S, c):
    S.cs[c, CS_STEP] = ST_NONE
    S.cs[c, CS_NEXT] = INF
    heap_set(S, S.P[P_ECPU0] + c, INF)


# ------------------------------------------------------------------------ NIC: ring, moderation


@njit(cache=True, inline="always")
def moderation_arm(S, q, t):
    """A completion while the IRQ is enabled: when does the interrupt fire? (KERNEL.md §2, §3b)"""
    if S.qs[q, QS_IRQ_EN] == 0:
        return
    mode = S.P[P_MOD]
    usecs = S.qs[q, QS_ITR]  # per queue: adaptive moderation moves it
    if mode == 1:
        # Intel ITR: a minimum gap since the last interrupt; an idle queue fires on its first
        # packet; no packet-count trigger (ixgbe ignores rx-frames)
        if S.qs[q, QS_IRQ_T] == INF:
            fire = S.qs[q, QS_LAST_IRQ] + usecs
            if fire < t:
                fire = t
            S.qs[q, QS_IRQ_T] = fire
            heap_set(S, S.P[P_EIRQ0] + q, fire)
    elif mode == 2:
        # mlx5 EQE-based period: the period restarts at each event (interrupt), so it is a gap
        # since the last one, as ITR; the max-packets count (rx-frames) still fires early
        S.qs[q, QS_CNT] += 1
        fire = S.qs[q, QS_LAST_IRQ] + usecs
        if fire < t:
            fire = t
        if S.qs[q, QS_FRAMES] > 0 and S.qs[q, QS_CNT] >= S.qs[q, QS_FRAMES]:
            fire = t
        if fire < S.qs[q, QS_IRQ_T]:
            S.qs[q, QS_IRQ_T] = fire
            heap_set(S, S.P[P_EIRQ0] + q, fire)
    else:
        # ethtool_coalesce: fire rx-usecs after the first completion or at rx-frames completions;
        # usecs=0 and frames=0 (or 1) means no moderation (include/uapi/linux/ethtool.h:401-470)
        S.qs[q, QS_CNT] += 1
        if S.qs[q, QS_CNT] == 1:
            S.qs[q, QS_FIRST_T] = t
        frames = S.qs[q, QS_FRAMES]
        if frames > 0 and S.qs[q, QS_CNT] >= frames:
            fire = t
        elif usecs > 0:
            fire = S.qs[q, QS_FIRST_T] + usecs
        else:
            fire = t
        if fire < S.qs[q, QS_IRQ_T]:
            S.qs[q, QS_IRQ_T] = fire
            heap_set(S, S.P[P_EIRQ0] + q, fire)


@njit(cache=True, inline="always")
def _ixgbe_update_itr(S, q, rc, packets, nbytes, stale):
    """ixgbe_update_itr (ixgbe_main.c) for one ring container: the new value in the driver's own
    encoding, usecs | IXGBE_ITR_ADAPTIVE_LATENCY (0x80)."""
    cur = S.qs[q, QS_AITR_Q] >> 2  # q_vector->itr is usecs << 2
    if stale:
        # no update within 1-2 jiffies: too slow to measure (or NAPI already polls): latency mode
        return AITR_MIN_USECS | AITR_LATENCY
    if packets == 0:
        # nothing on this ring (the TX side of a receive-only vector): creep up by the minimum
        itr = min(cur + AITR_MIN_INC, AITR_MAX_USECS)
        return itr + (rc & AITR_LATENCY)
    if packets < 4 and nbytes < 9000:
        itr = AITR_LATENCY
    elif packets < 48:
        return min(cur + AITR_MIN_INC, AITR_MAX_USECS)
    elif packets < 96:
        return cur  # the "goldilocks" zone
    elif packets < 256:
        return max(S.qs[q, QS_AITR_Q] >> 3, AITR_MIN_USECS)
    else:
        itr = 0  # IXGBE_ITR_ADAPTIVE_BULK
    # adjust_by_size: ~ (170 * (size + 24)) / (size + 640), in 256ths
    avg = nbytes // packets
    if avg <= 60:
        avg = 5120
    elif avg <= 316:
        avg = avg * 40 + 2720
    elif avg <= 1084:
        avg = avg * 15 + 11452
    elif avg < 1968:
        avg = avg * 5 + 22420
    else:
        avg = 32256
    if itr & AITR_LATENCY:
        avg >>= 1
    if S.P[P_AITR] == 2:  # 2.5G/1G/10M links: capped and scaled by 64 instead of 256
        if avg > 8064:
            avg = 8064
        return itr + (avg + AITR_MIN_INC * 64 - 1) // (AITR_MIN_INC * 64) * AITR_MIN_INC
    return itr + (avg + AITR_MIN_INC * 256 - 1) // (AITR_MIN_INC * 256) * AITR_MIN_INC


@njit(cache=True, inline="always")
def ixgbe_set_itr(S, q, t):
    """ixgbe_set_itr, run by ixgbe_poll after napi_complete_done returned true and before the
    vector is re-enabled: both ring containers (the TX ring of the TxRx vector sends nothing in
    a receive replay) are updated from the packets and bytes cleaned since the last update, the
    smaller value wins, and EITR takes it with its 2 us resolution (ixgbe_write_eitr masks
    IXGBE_MAX_EITR = 0xFF8 off usecs << 2)."""
    j = jiffies(S, t)
    stale = j > S.qs[q, QS_AITR_NEXT]  # time_after(jiffies, ring_container->next_update)
    rx = _ixgbe_update_itr(S, q, S.qs[q, QS_AITR_RX], S.qs[q, QS_AITR_PK], S.qs[q, QS_AITR_BY],
                           stale)
    tx = _ixgbe_update_itr(S, q, S.qs[q, QS_AITR_TX], 0, 0, stale)
    S.qs[q, QS_AITR_RX] = rx
    S.qs[q, QS_AITR_TX] = tx
    S.qs[q, QS_AITR_NEXT] = j + 1  # next update should occur within the next jiffy
    S.qs[q, QS_AITR_PK] = 0
    S.qs[q, QS_AITR_BY] = 0
    new = (min(rx, tx) & ~AITR_LATENCY) << 2  # the latency flag takes part in the min
    if new != S.qs[q, QS_AITR_Q]:
        S.qs[q, QS_AITR_Q] = new
        S.qs[q, QS_ITR] = ((new & 0xFF8) >> 2) * 1000


@njit(cache=True, inline="always")
def _dim_diff(val, ref):
    """IS_SIGNIFICANT_DIFF (include/linux/dim.h): more than 10 % apart."""
    return ref != 0 and (100 * abs(val - ref)) // ref > 10


@njit(cache=True, inline="always")
def _dim_compare(S, q, ppms, bpms, epms):
    """net_dim_stats_compare: 1 better, -1 worse, 0 same (bytes, then packets, then events)."""
    pb = S.qs[q, QS_DIM_BPMS]
    pp = S.qs[q, QS_DIM_PPMS]
    pe = S.qs[q, QS_DIM_EPMS]
    if pb == 0:
        return 1 if bpms != 0 else 0
    if _dim_diff(bpms, pb):
        return 1 if bpms > pb else -1
    if pp == 0:
        return 1 if ppms != 0 else 0
    if _dim_diff(ppms, pp):
        return 1 if ppms > pp else -1
    if pe == 0:
        return 0
    if _dim_diff(epms, pe):
        return 1 if epms < pe else -1  # fewer interrupts for the same traffic is better
    return 0


@njit(cache=True, inline="always")
def _dim_step(S, q):
    """net_dim_step: 0 stepped, 1 on edge, 2 too tired."""
    if S.qs[q, QS_DIM_TIRED] == DIM_NUM_PROFILES * 2:
        return 2
    ts = S.qs[q, QS_DIM_TUNE]
    if ts == DIM_GOING_RIGHT:
        if S.qs[q, QS_DIM_IX] == DIM_NUM_PROFILES - 1:
            return 1
        S.qs[q, QS_DIM_IX] += 1
        S.qs[q, QS_DIM_SR] += 1
    elif ts == DIM_GOING_LEFT:
        if S.qs[q, QS_DIM_IX] == 0:
            return 1
        S.qs[q, QS_DIM_IX] -= 1
        S.qs[q, QS_DIM_SL] += 1
    S.qs[q, QS_DIM_TIRED] += 1
    return 0


@njit(cache=True, inline="always")
def _dim_park(S, q, tired):
    """dim_park_on_top / dim_park_tired (lib/dim/dim.c)."""
    S.qs[q, QS_DIM_SR] = 0
    S.qs[q, QS_DIM_SL] = 0
    if tired:
        S.qs[q, QS_DIM_TUNE] = DIM_PARKING_TIRED
    else:
        S.qs[q, QS_DIM_TIRED] = 0
        S.qs[q, QS_DIM_TUNE] = DIM_PARKING_ON_TOP


@njit(cache=True, inline="always")
def _dim_exit_parking(S, q):
    S.qs[q, QS_DIM_TUNE] = DIM_GOING_LEFT if S.qs[q, QS_DIM_IX] != 0 else DIM_GOING_RIGHT
    _dim_step(S, q)


@njit(cache=True)
def _net_dim_decision(S, q, ppms, bpms, epms):
    """net_dim_decision (lib/dim/net_dim.c): a hill climb over the five profiles on bytes/ms."""
    prev_state = S.qs[q, QS_DIM_TUNE]
    prev_ix = S.qs[q, QS_DIM_IX]
    ts = prev_state
    if ts == DIM_PARKING_ON_TOP:
        if _dim_compare(S, q, ppms, bpms, epms) != 0:
            _dim_exit_parking(S, q)
    elif ts == DIM_PARKING_TIRED:
        S.qs[q, QS_DIM_TIRED] -= 1
        if S.qs[q, QS_DIM_TIRED] == 0:
            _dim_exit_parking(S, q)
    else:
        if _dim_compare(S, q, ppms, bpms, epms) != 1:
            # dim_turn
            if ts == DIM_GOING_RIGHT:
                S.qs[q, QS_DIM_TUNE] = DIM_GOING_LEFT
                S.qs[q, QS_DIM_SL] = 0
            else:
                S.qs[q, QS_DIM_TUNE] = DIM_GOING_RIGHT
                S.qs[q, QS_DIM_SR] = 0
        ts = S.qs[q, QS_DIM_TUNE]
        # dim_on_top: one step back after several the other way
        if ts == DIM_GOING_RIGHT:
            top = S.qs[q, QS_DIM_SL] > 1 and S.qs[q, QS_DIM_SR] == 1
        else:
            top = S.qs[q, QS_DIM_SR] > 1 and S.qs[q, QS_DIM_SL] == 1
        if top:
            _dim_park(S, q, False)
        else:
            r = _dim_step(S, q)
            if r == 1:
                _dim_park(S, q, False)
            elif r == 2:
                _dim_park(S, q, True)
    if prev_state != DIM_PARKING_ON_TOP or S.qs[q, QS_DIM_TUNE] != DIM_PARKING_ON_TOP:
        S.qs[q, QS_DIM_PPMS] = ppms
        S.qs[q, QS_DIM_BPMS] = bpms
        S.qs[q, QS_DIM_EPMS] = epms
    return S.qs[q, QS_DIM_IX] != prev_ix


@njit(cache=True)
def mlx5e_handle_rx_dim(S, q, t):
    """mlx5e_napi_poll after napi_complete_done: net_dim with the sample (completion events,
    packets, bytes, now). After DIM_NEVENTS events it compares rates with the last measurement and
    may move one profile; mlx5e_rx_dim_work then modifies the CQ's moderation from a workqueue,
    taken here as done before the next completion ([ASSUMED]: a work item and one firmware
    command, microseconds against a 64-interrupt measurement)."""
    ev = S.qs[q, QS_IRQS]
    pk = S.qs[q, QS_AITR_PK]
    by = S.qs[q, QS_AITR_BY]
    if S.qs[q, QS_DIM_STATE] == DIM_MEASURE_IN_PROGRESS:
        nev = (ev - S.qs[q, QS_DIM_E0]) & 0xFFFF
        if nev < DIM_NEVENTS:
            return
        delta_us = (t - S.qs[q, QS_DIM_T0]) // 1000  # ktime_us_delta
        if delta_us > 0:  # dim_calc_stats refuses an empty interval
            ppms = ((pk - S.qs[q, QS_DIM_P0]) * 1000 + delta_us - 1) // delta_us  # DIV_ROUND_UP
            bpms = ((by - S.qs[q, QS_DIM_B0]) * 1000 + delta_us - 1) // delta_us
            epms = (DIM_NEVENTS * 1000 + delta_us - 1) // delta_us
            if _net_dim_decision(S, q, ppms, bpms, epms):
                ix = S.qs[q, QS_DIM_IX]
                if S.P[P_MOD] == 2:  # EQE-based period
                    S.qs[q, QS_ITR] = DIM_RX_EQE_USEC[ix] * 1000
                    S.qs[q, QS_FRAMES] = DIM_RX_EQE_PKTS[ix]
                else:
                    S.qs[q, QS_ITR] = DIM_RX_CQE_USEC[ix] * 1000
                    S.qs[q, QS_FRAMES] = DIM_RX_CQE_PKTS[ix]
                S.qs[q, QS_DIM_STATE] = DIM_START_MEASURE  # mlx5e_complete_dim_work
                return
    # DIM_START_MEASURE (or no decision): this sample starts the next measurement
    S.qs[q, QS_DIM_E0] = ev
    S.qs[q, QS_DIM_P0] = pk
    S.qs[q, QS_DIM_B0] = by
    S.qs[q, QS_DIM_T0] = t
    S.qs[q, QS_DIM_STATE] = DIM_MEASURE_IN_PROGRESS


@njit(cache=True, inline="always")
def irq_rearm(S, q, t):
    """napi_complete_done returned true: the driver re-enables the vector (KERNEL.md §3.3).
    Completions that arrived while it was masked raise it again under the moderation rule."""
    if S.P[P_VETH] != 0:
        veth_notify_rearm(S, q)
        return
    S.qs[q, QS_IRQ_EN] = 1
    S.qs[q, QS_ARMS] += 1
    S.qs[q, QS_CNT] = 0
    n = S.qs[q, QS_RING_N]
    if n > 0:
        # the earliest completion still in the ring counts as the first one
        first = S.pk[S.ringbuf[q, S.qs[q, QS_HEAD]], F_T_VIS]
        if S.P[P_MOD] != 1:
            S.qs[q, QS_CNT] = n - 1
            S.qs[q, QS_FIRST_T] = first
        moderation_arm(S, q, t)


@njit(cache=True, inline="always")
def arrival(S, i, t):
    """Packet i's descriptor write-back (last bit + DMA): take a posted buffer or be missed."""
    if S.P[P_VETH] != 0:
        sender_arrival(S, i, t)  # veth: no ring; the sending task takes it (KERNEL.md §3c)
        return
    q = S.pk[i, F_QUE]
    if S.P[P_HWAGG] != 0 and S.P[P_HWAGG] < HWA_SHAMPO and hw_receive(S, q, i, t):
        return  # merged into, or opened, a session of the NIC's receive aggregation
    # posted buffers = ring - 1 - in use - cleaned but not yet refilled (ixgbe_desc_unused keeps
    # one descriptor unused, ixgbe_main.c; refill in batches of IXGBE_RX_BUFFER_WRITE, ixgbe.h:143)
    # - those the NIC's open aggregation sessions hold
    free = S.P[P_RING_USABLE] - S.qs[q, QS_RING_N] - S.qs[q, QS_UNUSED] - S.qs[q, QS_HW_N]
    if free <= 0:
        # no buffer: the NIC drops it and counts rx_missed_errors (KERNEL.md §1 row 0); no skb exists
        S.po[i, O_OUTC] = O_DROPPED
        S.po[i, O_DSTAGE] = S_DRIVER
        S.po[i, O_DREASON] = R_RING
        S.po[i, O_TDONE] = S.pk[i, F_T_WIRE]
        S.se[i, S_DRIVER] = S.pk[i, F_T_WIRE]
        S.qs[q, QS_MISSED_DROP] += 1
        return
    S.ringbuf[q, S.qs[q, QS_TAIL]] = i
    S.qs[q, QS_TAIL] = ring_next(S.qs[q, QS_TAIL], S.ringbuf.shape[1])
    S.qs[q, QS_RING_N] += 1
    S.qs[q, QS_ACCEPTED] += 1
    S.qs[q, QS_BYTES] += S.pk[i, F_PLEN]
    if S.P[P_HWAGG] == HWA_SHAMPO:
        shampo_mark(S, q, i, t)  # the CQE's match / flush bits
    moderation_arm(S, q, t)
    if S.P[P_BUSY] != 0:
        bp_kick_queue(S, q, t)


# -------------------------------------------------------------------------- CPU: IRQ, softirq


@njit(cache=True, inline="always")
def napi_schedule(S, c, q, t):
    """____napi_schedule: add to the poll list; raise NET_RX unless inside net_rx_action (6.4+)."""
    if S.qs[q, QS_SCHED] != 0:
        S.qs[q, QS_MISSED] = 1  # napi_schedule_prep: NAPIF_STATE_MISSED (dev.c:6680)
        return
    S.qs[q, QS_SCHED] = 1
    if S.P[P_THREADED] != 0 and q < S.P[P_NQ]:
        napi_thread_wake(S, c, q, t)  # NAPI_STATE_THREADED: wake the kthread, no NET_RX (dev.c:4918)
        return
    S.lst[c, L_PL, S.cs[c, CS_PL_N]] = q
    S.cs[c, CS_PL_N] += 1
    # dev.c:4911: "If not called from net_rx_action() we have to raise NET_RX_SOFTIRQ";
    # before 6.4 it always raised (KERNEL.md §3.1, §3b)
    if not (S.P[P_GOTO_START] != 0 and S.cs[c, CS_IN_NRA] != 0):
        S.cs[c, CS_PENDING] = 1


@njit(cache=True, inline="always")
def comm_of_task(S, c, task):
    if task < 0:
        return c  # swapper/c
    if task >= S.P[P_NTHR] + S.P[P_NCPU]:
        return S.P[P_NAPI_COMM0] + (task - S.P[P_NTHR] - S.P[P_NCPU])  # napi/<dev>-<id>
    if task >= S.P[P_NTHR]:
        return S.P[P_NCPU] + (task - S.P[P_NTHR])  # ksoftirqd/c
    return 2 * S.P[P_NCPU] + S.ts[task, TS_APP]


@njit(cache=True, inline="always")
def hardirq_begin(S, c, q, t, ret):
    S.cs[c, CS_HI_RET] = ret
    S.cs[c, CS_HI_Q] = q
    S.cs[c, CS_X] = X_HARDIRQ
    S.cs[c, CS_SPAN2] = t
    # q >= P_NQ: an RPS IPI (the backlog pseudo-queue of this CPU)
    start_step(S, c, t, ST_HARDIRQ, q, S.cbase[C_IPI_IRQ] if q >= S.P[P_NQ] else S.cbase[C_HARDIRQ])


@njit(cache=True, inline="always")
def irq_fire(S, q, t):
    S.qs[q, QS_IRQ_T] = INF
    heap_set(S, S.P[P_EIRQ0] + q, INF)
    S.qs[q, QS_IRQ_EN] = 0  # masked until napi_complete_done (KERNEL.md §1 row 1, §3.6)
    S.qs[q, QS_LAST_IRQ] = t
    S.qs[q, QS_IRQS] += 1
    S.qs[q, QS_CNT] = 0
    c = S.qs[q, QS_CPU]
    emit_event(S, t, -1, c, q, E_IRQ, S.qs[q, QS_RING_N], D_NONE)
    deliver_irq(S, c, q, t)


@njit(cache=True, inline="always")
def napi_timer(S, q, t):
    """napi_watchdog, the gro_flush_timeout hrtimer (dev.c:7085): schedules the NAPI unless it
    is already scheduled. Its interrupt is a hard IRQ too, encoded as -(q + 1)."""
    heap_set(S, S.P[P_ETMR0] + q, INF)
    if S.qs[q, QS_SCHED] != 0:
        return
    S.qs[q, QS_PREFER] = 0  # test_and_set_bit(SCHED) won: clear_bit(PREFER_BUSY_POLL)
    S.qs[q, QS_TIMERS] += 1
    deliver_irq(S, S.qs[q, QS_CPU], -(q + 1), t)


@njit(cache=True, inline="always")
def idle_exit(S, c, t):
    """The exit latency an idle CPU c pays when woken at t: that of the deepest idle state
    whose target residency its time in the idle loop has reached, 0 before the first (it still
    polls). drivers/cpuidle/governors (menu, teo, haltpoll) pick the deepest state whose
    target_residency fits the idle time they predict; the model takes the idle time that
    actually followed as the prediction. States in increasing residency; an exit of 0: none."""
    idle = t - S.cs[c, CS_IDLE_T]
    if S.P[P_CEXIT3] > 0 and idle >= S.P[P_CRES3]:
        return S.P[P_CEXIT3]
    if S.P[P_CEXIT2] > 0 and idle >= S.P[P_CRES2]:
        return S.P[P_CEXIT2]
    if S.P[P_CEXIT] > 0 and idle >= S.P[P_CRES]:
        return S.P[P_CEXIT]
    return 0


@njit(cache=True, inline="always")
def deliver_irq(S, c, q, t):
    """A hard IRQ for CPU c (q: the queue, or -(q + 1) for its NAPI timer)."""
    x = S.cs[c, CS_X]
    task = S.cs[c, CS_TASK]
    if x == X_IDLE:
        ex = idle_exit(S, c, t)
        if ex > 0:
            # the CPU first leaves its idle state (cpuidle exit latency): not CPU work, so not
            # busy time; interrupts that come meanwhile wait like any during a hard IRQ
            S.cs[c, CS_X] = X_HARDIRQ
            S.cs[c, CS_HI_RET] = X_IDLE
            S.cs[c, CS_STEP] = ST_CEXIT
            S.cs[c, CS_ARG] = q
            S.cs[c, CS_NEXT] = t + ex
            heap_set(S, S.P[P_ECPU0] + c, t + ex)
            return
        hardirq_begin(S, c, q, t, X_IDLE)
    elif x == X_TASK and task < S.P[P_NTHR] and S.cs[c, CS_HS_KS] != HS_BUSY:
        # an application thread is interrupted at once; its step resumes later (not inside a
        # busy poll's napi->poll: handled like the softirq it runs, at the step's end)
        S.cs[c, CS_REM] = S.cs[c, CS_NEXT] - t
        S.cs[c, CS_RESUME_STEP] = S.cs[c, CS_STEP]
        S.cs[c, CS_RESUME_ARG] = S.cs[c, CS_ARG]
        hardirq_begin(S, c, q, t, X_TASK)
    else:
        # softirq / hardirq / ksoftirqd / a context switch on this CPU: handled when the current
        # step ends (see the module docstring)
        S.lst[c, L_HI, S.cs[c, CS_HI_N]] = q
        S.cs[c, CS_HI_N] += 1


@njit(cache=True, inline="always")
def take_deferred_irq(S, c, t, ret):
    """If hard IRQs waited for the current step, run the first now. True if one started."""
    if S.cs[c, CS_HI_N] == 0:
        return False
    q = S.lst[c, L_HI, 0]
    for k in range(1, S.cs[c, CS_HI_N]):
        S.lst[c, L_HI, k - 1] = S.lst[c, L_HI, k]
    S.cs[c, CS_HI_N] -= 1
    hardirq_begin(S, c, q, t, ret)
    return True


@njit(cache=True)
def softirq_begin(S, c, t, in_ks):
    """handle_softirqs(): restart limits MAX_SOFTIRQ_TIME and MAX_SOFTIRQ_RESTART (KERNEL.md §3.4)."""
    S.cs[c, CS_HS_END] = jiffies(S, t) + S.P[P_SOFTIRQ_J]
    S.cs[c, CS_HS_LEFT] = 10
    S.cs[c, CS_HS_KS] = in_ks
    S.cs[c, CS_NEED_RESCHED] = 0
    if in_ks == 0:
        S.cs[c, CS_X] = X_SOFTIRQ
        S.cs[c, CS_SPAN1] = t
        S.cs[c, CS_COMM1] = comm_of_task(S, c, S.cs[c, CS_TASK])
    charge(S, c, level_of(S, c), Y_SOFTIRQ, S.cbase[C_SOFTIRQ], 0)
    nra_begin(S, c, t, S.cbase[C_SOFTIRQ])


@njit(cache=True)
def nra_begin(S, c, t, extra):
    """net_rx_action() entry: budget, time limit in jiffies, splice the poll list (dev.c:7857)."""
    S.cs[c, CS_PENDING] = 0  # set_softirq_pending(0) before running the vector
    S.cs[c, CS_NETRX] += 1  # kstat_incr_softirqs_this_cpu (softirq.c:619)
    S.cs[c, CS_NRA] = 1
    S.cs[c, CS_NRA_T] = t
    S.cs[c, CS_NRA_POLLS] = 0
    S.cs[c, CS_BUDGET] = S.P[P_BUDGET]
    S.cs[c, CS_TLIMIT] = jiffies(S, t) + S.P[P_BUDGET_J]
    splice_poll_list(S, c)
    S.cs[c, CS_PHASE] = PH_NEXT
    charge(S, c, level_of(S, c), Y_NRA, S.cbase[C_NRA], 0)
    start_step(S, c, t, ST_NRA_ENTRY, 0, extra + S.cbase[C_NRA])


@njit(cache=True, inline="always")
def splice_poll_list(S, c):
    S.cs[c, CS_IN_NRA] = 1
    n = S.cs[c, CS_LL_N]
    for k in range(S.cs[c, CS_PL_N]):
        S.lst[c, L_LL, n] = S.lst[c, L_PL, k]
        n += 1
    S.cs[c, CS_LL_N] = n
    S.cs[c, CS_PL_N] = 0


@njit(cache=True)
def nra_exit(S, c, t, broke):
    """The tail of net_rx_action: remaining + newly scheduled + repoll go back (dev.c:7905-7920)."""
    if S.cs[c, CS_HS_KS] == HS_NAPI_THREAD:
        napi_thread_after(S, c, t, broke)
        return
    if S.cs[c, CS_HS_KS] == HS_BUSY:
        bp_after_poll(S, c, t)
        return
    if broke:
        n = 0
        tmp = S.lst[c, L_TMPQ]
        for k in range(S.cs[c, CS_LL_N]):
            tmp[n] = S.lst[c, L_LL, k]
            n += 1
        for k in range(S.cs[c, CS_PL_N]):
            tmp[n] = S.lst[c, L_PL, k]
            n += 1
        for k in range(S.cs[c, CS_RL_N]):
            tmp[n] = S.lst[c, L_RL, k]
            n += 1
        for k in range(n):
            S.lst[c, L_PL, k] = tmp[k]
        S.cs[c, CS_PL_N] = n
        S.cs[c, CS_LL_N] = 0
        S.cs[c, CS_RL_N] = 0
        if n > 0:
            S.cs[c, CS_PENDING] = 1  # __raise_softirq_irqoff(NET_RX_SOFTIRQ)
        else:
            S.cs[c, CS_IN_NRA] = 0
    S.cs[c, CS_NRA] = 0
    ctx = D_KSOFTIRQD if S.cs[c, CS_HS_KS] != 0 else D_SOFTIRQ
    emit_event(S, S.cs[c, CS_NRA_T], t, c, -1, E_NETRX, S.cs[c, CS_NRA_POLLS], ctx)
    softirq_after(S, c, t)


@njit(cache=True)
def softirq_after(S, c, t):
    """After a vector ran: restart, hand off to ksoftirqd, or leave softirq context."""
    if S.cs[c, CS_PENDING] != 0:
        # softirq.c: time_before(jiffies, end) && !need_resched() && --max_restart
        if jiffies(S, t) < S.cs[c, CS_HS_END] and S.cs[c, CS_NEED_RESCHED] == 0:
            S.cs[c, CS_HS_LEFT] -= 1
            if S.cs[c, CS_HS_LEFT] > 0:
                nra_begin(S, c, t, 0)
                return
        wakeup_softirqd(S, c, t)
    if S.cs[c, CS_HS_KS] != 0:
        ksoftirqd_after(S, c, t)
    else:
        softirq_leave(S, c, t)


@njit(cache=True, inline="always")
def wakeup_softirqd(S, c, t):
    if S.cs[c, CS_KS_STATE] == 0:
        S.cs[c, CS_KS_STATE] = 1  # runnable
        S.cs[c, CS_KS_WAKES] += 1
        emit_event(S, t, -1, c, -1, E_KSWAKE, 0, D_NONE)
        if S.cs[c, CS_HS_KS] == 0:
            cur = S.cs[c, CS_TASK]
            # CFS (< 6.6): wake_up_process -> check_preempt_wakeup against the reader this
            # softirq interrupted. place_entity puts the sleeper at max(its vruntime,
            # min_vruntime - sched_latency/2) (GENTLE_FAIR_SLEEPERS), so the reader's lead is
            # ksoftirqd's sleep, capped at sched_latency/2; over the wake-up granularity it
            # preempts: resched_curr, honoured at the return from interrupt (preempt_reader).
            # EEVDF (6.6+): the woken ksoftirqd has no lag, RUN_TO_PARITY keeps the reader
            # (P_WGRAN < 0: no preemption, as in ttwu_preempt)
            if cur >= 0 and cur < S.P[P_NTHR] and S.ts[cur, TS_KIND] == TK_READER and \
                    S.P[P_WGRAN] >= 0 and t - S.cs[c, CS_KS_SLEEP_T] > S.P[P_WGRAN]:
                S.cs[c, CS_WAKE_PREEMPT] = 1
            if S.cs[c, CS_RQ_N] == 0 and S.cs[c, CS_SLICE_END] <= t:
                # the current task ran alone past its deadline: update_deadline renewed its
                # slice at each tick (as in ttwu_preempt); the tick after this one may end it
                sl = S.P[P_SLICE]
                S.cs[c, CS_SLICE_END] += ((t - S.cs[c, CS_SLICE_END]) // sl + 1) * sl
            rq_push(S, c, S.P[P_NTHR] + c)


@njit(cache=True, inline="always")
def rq_push(S, c, task):
    S.lst[c, L_RQ, S.cs[c, CS_RQ_N]] = task
    S.cs[c, CS_RQ_N] += 1


@njit(cache=True, inline="always")
def rq_pop(S, c):
    task = S.lst[c, L_RQ, 0]
    for k in range(1, S.cs[c, CS_RQ_N]):
        S.lst[c, L_RQ, k - 1] = S.lst[c, L_RQ, k]
    S.cs[c, CS_RQ_N] -= 1
    return task


@njit(cache=True)
def softirq_leave(S, c, t):
    """Inline softirq done: back to the interrupted task, or schedule, or idle."""
    flush_span(S, c, 1, S.cs[c, CS_SPAN1], t, CTXR_SOFTIRQ, S.cs[c, CS_COMM1])
    task = S.cs[c, CS_TASK]
    if task >= 0 and S.cs[c, CS_WAKE_PREEMPT] != 0 and S.cs[c, CS_RQ_N] > 0:
        preempt_reader(S, c, task, t)
        return
    if task >= 0:
        S.cs[c, CS_X] = X_TASK
        # resume the preempted application step
        resume_task_step(S, c, t, S.cs[c, CS_RESUME_STEP], S.cs[c, CS_RESUME_ARG],
                         S.cs[c, CS_REM])
        return
    S.cs[c, CS_X] = X_IDLE
    S.cs[c, CS_IDLE_T] = t
    cpu_stop(S, c)
    schedule(S, c, t)


@njit(cache=True)
def tick_cut(S, c, t, end):
    """A reader's user-space step on CPU c runs from t to `end`. With another task runnable, the
    scheduler tick that finds the reader past its slice preempts it: EEVDF's update_curr ->
    update_deadline resched_curr()s when more than one entity is queued (6.6+; CFS:
    check_preempt_tick once the slice is used), and the return from that timer interrupt to
    user mode schedules (exit_to_user_mode_loop, TIF_NEED_RESCHED or the 6.13+ lazy flag alike).
    Returns the step's end: `end`, or that tick with the rest added to CS_TICK_REM. (A slice
    the reader used up alone was renewed when the other task was queued: ttwu_preempt,
    wakeup_softirqd.) Kernel steps (the system call, the copy) are not cut here: without full
    preemption they yield at the system call's end."""
    if S.cs[c, CS_RQ_N] == 0:
        return end
    x = max(t, S.cs[c, CS_SLICE_END])
    tk = S.P[P_TICK]
    r = (x + S.P[P_PHASE]) % tk  # jiffies(t) = (t + phase) // tick: ticks where r == 0
    cut = x if r == 0 else x + tk - r
    if cut >= end:
        return end
    S.cs[c, CS_TICK_REM] += end - cut
    return cut


@njit(cache=True)
def resume_task_step(S, c, t, step, arg, rem):
    """Back to the task's interrupted step with `rem` ns of it left (a reader's user-space step
    is cut again at a tick when another task is runnable now)."""
    end = t + rem
    if step == ST_WORK:
        end += S.cs[c, CS_TICK_REM]
        S.cs[c, CS_TICK_REM] = 0
        end = tick_cut(S, c, t, end)
    S.cs[c, CS_STEP] = step
    S.cs[c, CS_ARG] = arg
    S.cs[c, CS_NEXT] = end
    heap_set(S, S.P[P_ECPU0] + c, end)


@njit(cache=True)
def tick_recheck(S, c, t):
    """A task was queued on CPU c while its reader runs a user-space step (a remote wake-up):
    the tick may now cut that step."""
    if S.cs[c, CS_X] != X_TASK or S.cs[c, CS_STEP] != ST_WORK:
        return
    end = S.cs[c, CS_NEXT] + S.cs[c, CS_TICK_REM]
    S.cs[c, CS_TICK_REM] = 0
    new = tick_cut(S, c, t, end)
    if new != S.cs[c, CS_NEXT]:
        S.cs[c, CS_NEXT] = new
        heap_set(S, S.P[P_ECPU0] + c, new)


@njit(cache=True)
def preempt_reader(S, c, k, t):
    """The return from interrupt to reader k with a wake-up preemption due (exit_to_user_mode
    -> schedule on TIF_NEED_RESCHED; a kernel step of a preemptible kernel likewise): its
    interrupted step is cut where it stands, kept with the time it still needs, and resumed
    when the reader runs again (ST_CTXSW). The step's CPU time was charged when it began; only
    its end moves."""
    S.cs[c, CS_WAKE_PREEMPT] = 0
    S.ts[k, TS_PRE_STEP] = S.cs[c, CS_RESUME_STEP]
    S.ts[k, TS_PRE_ARG] = S.cs[c, CS_RESUME_ARG]
    S.ts[k, TS_PRE_REM] = S.cs[c, CS_REM] + S.cs[c, CS_TICK_REM]
    S.cs[c, CS_TICK_REM] = 0
    flush_span(S, c, 0, S.ts[k, TS_SPAN_T], t, CTXR_TASK, comm_of_task(S, c, k))
    S.ts[k, TS_STATE] = T_RUNNABLE
    rq_push(S, c, k)
    schedule(S, c, t)


@njit(cache=True)
def schedule(S, c, t):
    """The CPU is free: run the next runnable task (context switch first), or stay idle."""
    S.cs[c, CS_WAKE_PREEMPT] = 0
    if S.cs[c, CS_RQ_N] == 0:
        S.cs[c, CS_TASK] = -1
        S.cs[c, CS_X] = X_IDLE
        S.cs[c, CS_IDLE_T] = t
        cpu_stop(S, c)
        return
    task = rq_pop(S, c)
    S.cs[c, CS_TASK] = task
    S.cs[c, CS_X] = X_TASK
    S.cs[c, CS_SLICE_END] = t + S.P[P_SLICE]
    S.cs[c, CS_SPAN0] = t
    if task < S.P[P_NTHR]:
        S.ts[task, TS_STATE] = T_RUNNING
        S.ts[task, TS_SPAN_T] = t
    charge(S, c, 0, Y_CTXSW, S.cbase[C_CTXSW], 0)
    start_step(S, c, t, ST_CTXSW, task, S.cbase[C_CTXSW])


@njit(cache=True)
def ksoftirqd_after(S, c, t):
    """run_ksoftirqd returned: loop while softirqs are pending, yielding at the slice end."""
    if S.cs[c, CS_PENDING] != 0:
        if S.cs[c, CS_RQ_N] > 0 and t >= S.cs[c, CS_SLICE_END]:
            # cond_resched(): another task has waited a whole slice
            flush_span(S, c, 0, S.cs[c, CS_SPAN0], t, CTXR_KSOFTIRQD, S.P[P_NCPU] + c)
            rq_push(S, c, S.P[P_NTHR] + c)
            schedule(S, c, t)
            return
        softirq_begin(S, c, t, 1)
        return
    # nothing pending: ksoftirqd sleeps
    flush_span(S, c, 0, S.cs[c, CS_SPAN0], t, CTXR_KSOFTIRQD, S.P[P_NCPU] + c)
    S.cs[c, CS_KS_STATE] = 0
    S.cs[c, CS_KS_SLEEP_T] = t
    S.cs[c, CS_HS_KS] = 0
    schedule(S, c, t)


# ----------------------------------------------------------------------------- threaded NAPI
# sysfs threaded = 1 (net/core/dev.c, KERNEL.md §1 row 1, §2 "threaded"): ____napi_schedule of a
# NAPI with NAPI_STATE_THREADED sets NAPI_STATE_SCHED_THREADED and wake_up_process()es its
# kthread napi/<dev>-<napi_id> instead of raising NET_RX; napi_threaded_poll ->
# napi_threaded_poll_loop polls it under local_bh_disable with its own weight, no
# netdev_budget, no netdev_budget_usecs, no time_squeeze and no NET_RX count; a full-weight
# poll (repoll) loops after cond_resched(); local_bh_enable runs softirqs raised meanwhile
# (an RPS backlog) in the kthread's context. The kthread is a SCHED_OTHER task on the IRQ's
# CPU (it is woken there: a local wake-up, ttwu_queue_cond) and shares it with the readers and
# ksoftirqd under the same slice rule as they do.


@njit(cache=True, inline="always")
def napi_thread_wake(S, c, q, t):
    """wake_up_process(napi->thread): a no-op while it runs or is runnable (napi_thread_wait
    sees NAPI_STATE_SCHED_THREADED before it sleeps again)."""
    if S.qs[q, QS_THR] != NT_SLEEP:
        return
    S.qs[q, QS_THR] = NT_RUNNABLE
    if S.cs[c, CS_TASK] < 0:
        S.cs[c, CS_NEED_RESCHED] = 1  # wakeup_preempt of the idle task
    else:
        ttwu_preempt(S, c, S.qs[q, QS_THR_SLEEP_T], t, t)  # before the push: curr alone?
    rq_push(S, c, S.P[P_NTHR] + S.P[P_NCPU] + q)


@njit(cache=True)
def napi_thread_run(S, c, q, t):
    """One round of napi_threaded_poll_loop: local_bh_disable, __napi_poll(napi, &repoll) with
    the NAPI's weight; the poll machine of net_rx_action with one NAPI on its list, a budget and
    time limit that never end it, nothing counted for NET_RX."""
    S.qs[q, QS_THR] = NT_RUNNING
    S.cs[c, CS_X] = X_TASK
    S.cs[c, CS_HS_KS] = HS_NAPI_THREAD
    poll_one_napi(S, c, q, t)


@njit(cache=True, inline="always")
def poll_one_napi(S, c, q, t):
    """CPU c runs net_rx_action's poll machine on NAPI q alone, with a budget and time limit that
    never end it (napi_threaded_poll_loop, __napi_busy_loop): a zero-length step whose end runs
    nra_advance (calling it here would make the compiled functions recursive: nra_advance ->
    nra_exit -> napi_thread_after -> napi_thread_run)."""
    S.cs[c, CS_NRA] = 1
    S.cs[c, CS_NRA_T] = t
    S.cs[c, CS_NRA_POLLS] = 0
    S.cs[c, CS_BUDGET] = INF
    S.cs[c, CS_TLIMIT] = INF
    S.lst[c, L_LL, 0] = q
    S.cs[c, CS_LL_N] = 1
    S.cs[c, CS_PHASE] = PH_NEXT
    start_step(S, c, t, ST_NRA_ENTRY, 0, 0)


@njit(cache=True, inline="always")
def bh_enable_after_poll(S, c, t, resume_step, resume_arg):
    """The poll of poll_one_napi returned: local_bh_enable runs pending softirqs inline in the
    task's context (4.9-6.4: not while ksoftirqd is runnable, KERNEL.md §3.4), and the task
    resumes at resume_step after them. True if the softirqs started (the caller is done)."""
    S.cs[c, CS_NRA] = 0
    S.cs[c, CS_RL_N] = 0
    S.cs[c, CS_LL_N] = 0
    S.cs[c, CS_HS_KS] = 0
    if S.cs[c, CS_PENDING] != 0 and (S.P[P_INLINE_ALWAYS] != 0 or S.cs[c, CS_KS_STATE] == 0):
        S.cs[c, CS_REM] = 0
        S.cs[c, CS_RESUME_STEP] = resume_step
        S.cs[c, CS_RESUME_ARG] = resume_arg
        softirq_begin(S, c, t, 0)
        return True
    return False


@njit(cache=True)
def napi_thread_after(S, c, t, repoll):
    """__napi_poll returned (repoll: the poll used its whole weight): net_rps_action_and_irq_enable
    already sent RPS IPIs; local_bh_enable (bh_enable_after_poll), then napi_thread_next."""
    if bh_enable_after_poll(S, c, t, ST_NAPI_NEXT, 1 if repoll else 0):
        return
    napi_thread_next(S, c, 1 if repoll else 0, t)


@njit(cache=True)
def napi_thread_next(S, c, repoll, t):
    """The rest of napi_threaded_poll_loop / napi_threaded_poll: after a full-weight poll,
    cond_resched() (yield if another task has waited a whole slice) and poll again; after a
    completed poll, napi_thread_wait: poll again if the NAPI was rescheduled meanwhile (MISSED),
    else sleep until the next napi_schedule."""
    k = S.cs[c, CS_TASK]
    q = k - S.P[P_NTHR] - S.P[P_NCPU]
    S.cs[c, CS_X] = X_TASK
    if S.cs[c, CS_HI_N] > 0:
        # hard IRQs that waited for the softirq's last step: take them first, then come back
        # here through the poll machine's exit (an empty list; the repoll list holds q if the
        # poll used its weight)
        S.cs[c, CS_HS_KS] = HS_NAPI_THREAD
        S.cs[c, CS_NRA] = 1
        S.cs[c, CS_LL_N] = 0
        S.cs[c, CS_RL_N] = 0
        if repoll != 0:
            S.lst[c, L_RL, 0] = q
            S.cs[c, CS_RL_N] = 1
        S.cs[c, CS_PHASE] = PH_NEXT
        take_deferred_irq(S, c, t, X_TASK)
        return
    if repoll == 0:
        # napi_thread_wait polls again only on NAPI_STATE_SCHED_THREADED (set by
        # ____napi_schedule for it): a NAPI a busy poller took meanwhile (SCHED |
        # IN_BUSY_POLL, QS_SCHED 2) is not the kthread's to poll; it sleeps until
        # busy_poll_stop's __napi_schedule wakes it
        if S.qs[q, QS_SCHED] != 1:
            flush_span(S, c, 0, S.cs[c, CS_SPAN0], t, CTXR_TASK, comm_of_task(S, c, k))
            S.qs[q, QS_THR] = NT_SLEEP
            S.qs[q, QS_THR_SLEEP_T] = t
            schedule(S, c, t)
            return
    elif S.cs[c, CS_RQ_N] > 0 and t >= S.cs[c, CS_SLICE_END]:
        flush_span(S, c, 0, S.cs[c, CS_SPAN0], t, CTXR_TASK, comm_of_task(S, c, k))
        S.qs[q, QS_THR] = NT_RUNNABLE
        rq_push(S, c, k)
        schedule(S, c, t)
        return
    napi_thread_run(S, c, q, t)


# --------------------------------------------------------------------------------------- GRO


@njit(cache=True, inline="always")
def rx_add(S, q, head):
    """gro_normal_one: onto napi->rx_list, counted in segments (gro.h:538-545)."""
    n = S.qs[q, QS_RX_N]
    S.rxl[q, n] = head
    S.qs[q, QS_RX_N] = n + 1
    S.qs[q, QS_RX_SEG] += S.po[head, O_SKBCNT]


@njit(cache=True, inline="always")
def gro_complete(S, q, s):
    """A held flow leaves GRO (gro_complete) for the rx_list."""
    head = S.gh[q, s, GH_HEAD]
    S.gh[q, s, GH_USED] = 0
    S.gbc[q, s >> 3] -= 1
    S.qs[q, QS_GRO_N] -= 1
    rx_add(S, q, head)


@njit(cache=True)
def gro_flush(S, q, t, old_only):
    """napi_gro_flush: every bucket, oldest first; with old_only keep packets of this jiffy."""
    j = jiffies(S, t)
    for b in range(8):
        while S.gbc[q, b] > 0:
            oldest = -1
            best = INF
            for s in range(b * 8, b * 8 + 8):
                if S.gh[q, s, GH_USED] != 0 and S.gh[q, s, GH_ORDER] < best:
                    best = S.gh[q, s, GH_ORDER]
                    oldest = s
            if old_only and S.gh[q, oldest, GH_AGE] == j:
                break
            gro_complete(S, q, oldest)


@njit(cache=True, inline="always")
def single_skb(S, i):
    S.po[i, O_SKBH] = i
    S.po[i, O_SKBCNT] = 1
    S.po[i, O_SKBLEN] = S.pk[i, F_PAYLEN]
    S.po[i, O_SKBTRUE] = S.pk[i, F_TRUESIZE]


@njit(cache=True, inline="always")
def ip_gro_flush(S, q, s, i):
    """The IP header's say in a merge of packet i into held flow s: TTL, TOS and DF must match,
    and for IPv4 inet_gro_flush (gro.h:444-464) wants the IP ID fixed or incremented by one per
    segment. The fixed mode is decided at the 2nd segment (count == 1, ipid_offset 0): under
    DF only up to 6.17; from 6.18 with or without DF (f095a358faf2 "net: gro: remove
    unnecessary df checks": `if (count == 1 && !ipid_offset)`)."""
    flush = S.pk[i, F_TTL] != S.gh[q, s, GH_TTL] or S.pk[i, F_TOS] != S.gh[q, s, GH_TOS] \
        or S.pk[i, F_DF] != S.gh[q, s, GH_DF]
    if S.pk[i, F_V6] == 0:
        cnt = S.gh[q, s, GH_CNT]
        off = (S.pk[i, F_IPID] - S.gh[q, s, GH_ID0]) & 0xFFFF
        if cnt == 1 and (S.pk[i, F_DF] != 0 or S.P[P_GRO_ID_ANYDF] != 0) and off == 0:
            S.gh[q, s, GH_FIXED] = 1
        if S.gh[q, s, GH_FIXED] != 0:
            if off != 0:
                flush = True
        elif off != (cnt & 0xFFFF):
            flush = True
    return flush


@njit(cache=True)
def gro_hold_new(S, q, i, t, b):
    """Hold packet i as a new flow of bucket b; a full bucket first completes its oldest
    (gro.c:542-545, MAX_GRO_SKBS per bucket). Returns the flow's slot."""
    if S.gbc[q, b] >= 8:
        oldest = -1
        best = INF
        for s in range(b * 8, b * 8 + 8):
            if S.gh[q, s, GH_USED] != 0 and S.gh[q, s, GH_ORDER] < best:
                best = S.gh[q, s, GH_ORDER]
                oldest = s
        gro_complete(S, q, oldest)
    for s in range(b * 8, b * 8 + 8):
        if S.gh[q, s, GH_USED] == 0:
            S.gh[q, s, GH_USED] = 1
            S.gh[q, s, GH_HEAD] = i
            S.gh[q, s, GH_LAST] = i
            S.gh[q, s, GH_CNT] = 1
            S.gh[q, s, GH_LEN] = S.pk[i, F_PAYLEN]
            S.gh[q, s, GH_MSS] = S.pk[i, F_PAYLEN]
            S.gh[q, s, GH_TTL] = S.pk[i, F_TTL]
            S.gh[q, s, GH_TOS] = S.pk[i, F_TOS]
            S.gh[q, s, GH_DF] = S.pk[i, F_DF]
            S.gh[q, s, GH_ID0] = S.pk[i, F_IPID]
            S.gh[q, s, GH_FIXED] = 0
            S.gh[q, s, GH_AGE] = jiffies(S, t)
            S.gh[q, s, GH_FLOW] = S.pk[i, F_FLOWK]
            S.gh[q, s, GH_ORDER] = S.qs[q, QS_GRO_SEQ]
            S.gh[q, s, GH_HDR] = S.pk[i, F_HDRLEN]
            S.qs[q, QS_GRO_SEQ] += 1
            S.gbc[q, b] += 1
            S.qs[q, QS_GRO_N] += 1
            return s
    return -1


@njit(cache=True)
def udp_gro_receive(S, q, i, t):
    """udp4_gro_receive → udp_gro_receive_segment for a socket with UDP_GRO (net/ipv4/
    udp_offload.c): same 4-tuple and IP rules as TCP (gro_receive_network_flush); a datagram no
    longer than the first (gso_size) is appended; a shorter one is appended and completes the
    skb; a longer one completes the held skb and is held itself; UDP_GRO_CNT_MAX = 64 segments and
    gro_max_size complete it too. A zero checksum never reaches here (F_GRO_OK is 0)."""
    ln = S.pk[i, F_PAYLEN]
    b = S.pk[i, F_BUCKET]
    found = -1
    for s in range(b * 8, b * 8 + 8):
        if S.gh[q, s, GH_USED] != 0 and S.gh[q, s, GH_FLOW] == S.pk[i, F_FLOWK]:
            found = s
            break
    if found < 0:
        gro_hold_new(S, q, i, t, b)
        return S.cbase[C_GRO], False
    s = found
    flush = ip_gro_flush(S, q, s, i)
    cnt = S.gh[q, s, GH_CNT]
    mss = S.gh[q, s, GH_MSS]
    if ln > mss or flush or S.gh[q, s, GH_HDR] + S.gh[q, s, GH_LEN] + ln >= S.P[P_GRO_MAX]:
        # not merged: the held skb completes (pp = p); this one starts a new flow
        gro_complete(S, q, s)
        gro_hold_new(S, q, i, t, b)
        return S.cbase[C_GRO], False
    head = S.gh[q, s, GH_HEAD]
    S.po[S.gh[q, s, GH_LAST], O_SEGNEXT] = i
    S.gh[q, s, GH_LAST] = i
    S.gh[q, s, GH_CNT] = cnt + 1
    S.gh[q, s, GH_LEN] += ln
    S.po[i, O_SKBH] = head
    S.po[i, O_SKBCNT] = 0
    S.po[head, O_SKBCNT] += 1
    S.po[head, O_SKBLEN] += ln
    S.po[head, O_SKBTRUE] += S.pk[i, F_TRUESIZE] - SKB_STRUCT
    if ln != mss or cnt + 1 >= 64:  # UDP_GRO_CNT_MAX
        gro_complete(S, q, s)
    return S.cbase[C_GRO_MERGE], True


@njit(cache=True)
def gro_receive(S, q, i, t):
    """dev_gro_receive for packet i; returns its GRO cost. Rules: KERNEL.md §4 (tcp_gro_receive,
    inet_gro_receive, gro.c). Completed skbs go to the rx_list; held ones wait."""
    if S.po[i, O_SEGNEXT] < 0:
        single_skb(S, i)  # (a hardware aggregate already is its skb)
    if S.P[P_GRO] == 0:
        rx_add(S, q, i)  # netif_elide_gro -> GRO_NORMAL, still batched
        return 0, False
    if S.po[i, O_SKBCNT] > 1:
        return hw_skb_gro(S, q, i)
    k = S.pk[i, F_KIND]
    if k == K_UDP and S.pk[i, F_GRO_OK] != 0:
        return udp_gro_receive(S, q, i, t)
    if (k != K_TCP and k != K_TCP_CTRL) or S.pk[i, F_GRO_OK] == 0:
        # not TCP, or IPv4 with options / a fragment: flush -> GRO_NORMAL; plain UDP sockets get
        # no aggregation (udp_gro_receive "no GRO, be sure flush the current packet")
        rx_add(S, q, i)
        return S.cbase[C_GRO], False
    flags = S.pk[i, F_FLAGS]
    ln = S.pk[i, F_PAYLEN]
    fin_psh_etc = flags & (TCP_URG | TCP_PSH | TCP_RST | TCP_SYN | TCP_FIN)
    b = S.pk[i, F_BUCKET]
    found = -1
    for s in range(b * 8, b * 8 + 8):
        if S.gh[q, s, GH_USED] != 0 and S.gh[q, s, GH_FLOW] == S.pk[i, F_FLOWK]:
            found = s
            break
    if found >= 0:
        s = found
        flush = False
        if flags & TCP_CWR:
            flush = True
        if ((flags ^ S.gh[q, s, GH_FLAGS]) & ~(TCP_CWR | TCP_FIN | TCP_PSH)) & 0xFF:
            flush = True
        if S.pk[i, F_ACK] != S.gh[q, s, GH_ACK]:
            flush = True
        if S.pk[i, F_OPTH] != S.gh[q, s, GH_OPT]:
            flush = True  # any option byte differs, TSval included
        if ip_gro_flush(S, q, s, i):
            flush = True
        cnt = S.gh[q, s, GH_CNT]
        mss = S.gh[q, s, GH_MSS]
        if ln - 1 >= mss or ln == 0:  # (len - 1) >= mss, unsigned: a zero-length segment flushes
            flush = True
        if (S.gh[q, s, GH_NEXTSEQ] & 0xFFFFFFFF) != (S.pk[i, F_SEQ] & 0xFFFFFFFF):
            flush = True
        # skb_gro_receive: p->len + len >= gro_max_size (gro.c:112-114)
        if S.gh[q, s, GH_HDR] + S.gh[q, s, GH_LEN] + ln >= S.P[P_GRO_MAX]:
            flush = True
        if not flush:
            head = S.gh[q, s, GH_HEAD]
            S.po[S.gh[q, s, GH_LAST], O_SEGNEXT] = i
            S.gh[q, s, GH_LAST] = i
            S.gh[q, s, GH_CNT] = cnt + 1
            S.gh[q, s, GH_LEN] += ln
            S.gh[q, s, GH_NEXTSEQ] = (S.gh[q, s, GH_NEXTSEQ] + ln) & 0xFFFFFFFF
            S.gh[q, s, GH_FLAGS] |= flags & (TCP_FIN | TCP_PSH)
            S.po[i, O_SKBH] = head
            S.po[i, O_SKBCNT] = 0
            S.po[head, O_SKBCNT] += 1
            S.po[head, O_SKBLEN] += ln
            S.po[head, O_SKBTRUE] += S.pk[i, F_TRUESIZE] - SKB_STRUCT  # the merged skb's head is freed
            # out_check_final: a short segment or PSH/URG/RST/SYN/FIN completes the flow
            if ln < mss or fin_psh_etc != 0:
                gro_complete(S, q, s)
            return S.cbase[C_GRO_MERGE], True
        # the held flow is completed; the new segment is held or passed on
        gro_complete(S, q, s)
        if ln < 1 or fin_psh_etc != 0:
            rx_add(S, q, i)
            return S.cbase[C_GRO], False
    elif ln < 1 or fin_psh_etc != 0:
        # new flow: mss = 1 here, so only an empty segment or the flags flush (pure ACKs go up)
        rx_add(S, q, i)
        return S.cbase[C_GRO], False
    # hold as a new flow, with what the TCP rules compare next time
    s = gro_hold_new(S, q, i, t, b)
    S.gh[q, s, GH_NEXTSEQ] = (S.pk[i, F_SEQ] + ln) & 0xFFFFFFFF
    S.gh[q, s, GH_ACK] = S.pk[i, F_ACK]
    S.gh[q, s, GH_FLAGS] = flags
    S.gh[q, s, GH_OPT] = S.pk[i, F_OPTH]
    return S.cbase[C_GRO], False


# ---------------------------------------------------------------------- the stack, per batch


@njit(cache=True, inline="always")
def drop(S, i, stage, reason, t):
    S.po[i, O_OUTC] = O_DROPPED
    S.po[i, O_DSTAGE] = stage
    S.po[i, O_DREASON] = reason
    S.po[i, O_TDONE] = t


@njit(cache=True, inline="always")
def consume(S, i, t):
    S.po[i, O_OUTC] = O_CONSUMED
    S.po[i, O_TDONE] = t


# ------------------------------------------------------------------ IP reassembly (ip_defrag)
# net/ipv4/ip_fragment.c (ip_defrag, ip_frag_queue, ip_frag_reasm, ip_expire, ip_frag_too_far,
# ip_frag_reinit), net/ipv4/inet_fragment.c (inet_frag_find, inet_frag_queue_insert,
# inet_frag_destroy), net/ipv6/reassembly.c (ipv6_frag_rcv, ip6_frag_queue: the same machine
# with the Ip6 counters, ip6frag_time 60 s and no ipfrag_max_dist). Reassembly runs in
# ip_local_deliver (IPv4) / as the fragment header's protocol handler (IPv6): the `local` stage.


# ------------------------------------------------------------- TCP sequence space (tcp_input.c)
# Where tcp_rcv_established / tcp_data_queue take a data skb: in order (seq <= rcv_nxt < end_seq,
# a partial overlap trimmed), out of order (seq after rcv_nxt: tcp_data_queue_ofo), old data
# (end_seq <= rcv_nxt: tcp_data_queue's retransmit branch, TCP_OLD_DATA) or an old sequence
# (end_seq before rcv_wup: tcp_validate_incoming's tcp_sequence, TCP_OLD_SEQUENCE)
# The window adds: in-order data while the window is 0 (TCP_ZEROWINDOW), out-of-order data at
# the window's right edge (TCP_OVERWINDOW) or beyond it (tcp_sequence: TCP_INVALID_SEQUENCE);
# 6.17+ tcp_sequence also refuses data that ends beyond the window while the connection's receive
# queue is not empty (TCP_INVALID_END_SEQUENCE), before tcp_data_queue's checks
TQ_IN, TQ_OFO, TQ_OLD, TQ_OLDSEQ, TQ_ZW, TQ_OVERWIN, TQ_INVSEQ, TQ_INVEND = 0, 1, 2, 3, 4, 5, 6, 7


@njit(cache=True, inline="always")
def seqd(a, b):
    """a - b in sequence space: before(a, b) is seqd(a, b) < 0 (the signed 32-bit difference)."""
    d = (a - b) & 0xFFFFFFFF
    return d - 0x100000000 if d >= 0x80000000 else d


@njit(cache=True, inline="always")
def tcp_end_seq(S, h):
    """TCP_SKB_CB(skb)->end_seq of data skb h (a GRO skb: its segments are contiguous, as
    tcp_gro_receive flushes on a sequence gap). A FIN's extra 1 is left out."""
    return (S.pk[h, F_SEQ] + S.po[h, O_SKBLEN]) & 0xFFFFFFFF


@njit(cache=True)
def tcp_seq_class(S, f, h):
    """TQ_* of data skb h on flow f given the flow's rcv_nxt / rcv_wup (read only: the ACK
    decision at cost time and l4_done's queueing agree, a flow's skbs being handled in order)."""
    if S.tf[f, TF_HAVE_NXT] == 0:
        return TQ_IN
    end = tcp_end_seq(S, h)
    if seqd(end, S.tf[f, TF_WUP]) < 0:
        return TQ_OLDSEQ
    if seqd(end, S.tf[f, TF_NXT]) <= 0:
        return TQ_OLD
    if S.tf[f, TF_WND] < 0:
        return TQ_OFO if seqd(S.pk[h, F_SEQ], S.tf[f, TF_NXT]) > 0 else TQ_IN
    rwin = tcp_receive_window(S, f)
    beyond = seqd(S.pk[h, F_SEQ], S.tf[f, TF_NXT] + rwin)
    if beyond > 0:
        return TQ_INVSEQ
    if (S.P[P_TCP_ENDSEQ] != 0 and S.tf[f, TF_QN] > 0
            and seqd(end, S.tf[f, TF_NXT] + rwin) > 0):
        # tcp_sequence (6.17+): "Only accept this packet if receive queue is empty"
        return TQ_INVEND
    if seqd(S.pk[h, F_SEQ], S.tf[f, TF_NXT]) > 0:
        return TQ_OVERWIN if beyond == 0 else TQ_OFO
    return TQ_ZW if rwin == 0 else TQ_IN


@njit(cache=True, inline="always")
def tcp_receive_window(S, f):
    """tcp_receive_window: rcv_wup + rcv_wnd - rcv_nxt, at least 0."""
    w = S.tf[f, TF_WUP] + S.tf[f, TF_WND] - S.tf[f, TF_NXT]
    return w if w > 0 else 0


@njit(cache=True)
def tcp_select_window(S, f, s):
    """The window an ACK advertises (tcp_select_window / __tcp_select_window), simplified:
    tcp_space = tcp_win_from_space(sk_rcvbuf - sk_rmem_alloc) with half the memory counted as
    payload (tcp_adv_win_scale = 1 up to 6.6, TCP_DEFAULT_SCALING_RATIO from 6.7; the ratio 6.7+
    measures from len/truesize, rcv_ssthresh and window scaling are left out); 0 when the free
    space is below half the full space and below 1/16 of it or one rcv_mss; never shrinking what
    was offered (rcv_wup + rcv_wnd stays)."""
    rb = sk_rcvbuf(S, f, s)
    full = rb >> 1
    free = (rb - S.tf[f, TF_RMEM]) >> 1
    if free < 0:
        free = 0
    if free < (full >> 1) and (free < (full >> 4) or free < S.tf[f, TF_MSS]):
        free = 0
    cur = tcp_receive_window(S, f) if S.tf[f, TF_WND] >= 0 else 0
    return free if free > cur else cur


@njit(cache=True)
def tcp_ofo_reach(S, f, nxt):
    """tcp_ofo_queue's walk from rcv_nxt = nxt: (the rcv_nxt it reaches, the first packet left
    in the out-of-order queue or -1)."""
    k = S.tf[f, TF_OFO]
    while k >= 0 and seqd(S.pk[k, F_SEQ], nxt) <= 0:
        e = tcp_end_seq(S, k)
        if seqd(e, nxt) > 0:
            nxt = e
        k = S.tofo[k]
    return nxt, k


@njit(cache=True)
def tcp_ofo_free(S, s, k, t, reason):
    """An out-of-order skb dropped: its memory back to the socket (tcp_drop_reason)."""
    S.ss[s, SS_RMEM] -= S.po[k, O_SKBTRUE]
    S.tf[S.pk[k, F_FLOWK], TF_RMEM] -= S.po[k, O_SKBTRUE]
    S.ss[s, SS_DROPS] += 1  # tcp_drop_reason -> sk_drops_add
    drop(S, k, S_L4, reason, t)


@njit(cache=True)
def tcp_data_queue_ofo(S, c, f, h, s, t):
    """tcp_data_queue_ofo: skb h (seq after rcv_nxt) into flow f's out-of-order queue, kept sorted
    by seq. Returns l4_done's follow-up (cost, slot)."""
    if not tcp_try_rmem_schedule(S, c, f, s, h, t):
        # tcp_try_rmem_schedule failed even after tcp_prune_queue: TCPOFODrop, PROTO_MEM
        S.misc[M_TCPX + 1] += 1
        S.ss[s, SS_DROPS] += 1
        drop(S, h, S_L4, R_PROTOMEM, t)
        return S.cbase[C_DROP], Y_DROP_L4
    S.misc[M_TCPX + 0] += 1  # TCPOFOQueue, counted before the insertion
    seq = S.pk[h, F_SEQ]
    end = tcp_end_seq(S, h)
    prev = -1
    k = S.tf[f, TF_OFO]
    while k >= 0 and seqd(S.pk[k, F_SEQ], seq) <= 0:
        prev = k
        k = S.tofo[k]
    if prev >= 0 and seqd(tcp_end_seq(S, prev), end) >= 0:
        # every byte already queued: TCPOFOMerge, a D-SACK for it (tcp_dsack_set: seq after
        # rcv_nxt -> TCPDSACKOfoSent), SKB_DROP_REASON_TCP_OFOMERGE
        S.misc[M_TCPX + 2] += 1
        S.misc[M_TCPX + 5] += 1
        S.ss[s, SS_DROPS] += 1
        drop(S, h, S_L4, R_TCP_OFOMERGE, t)
        tcp_ofo_rcvbuf_grow(S, c, f, s, t)
        return S.cbase[C_DROP], Y_DROP_L4
    S.ss[s, SS_RMEM] += S.po[h, O_SKBTRUE]
    S.tf[f, TF_RMEM] += S.po[h, O_SKBTRUE]
    if prev >= 0 and S.pk[prev, F_SEQ] == seq:
        # same start, more bytes: rb_replace_node, the old skb dropped (TCPOFOMerge)
        pp = -1
        j = S.tf[f, TF_OFO]
        while j != prev:
            pp = j
            j = S.tofo[j]
        if pp >= 0:
            S.tofo[pp] = S.tofo[prev]
        else:
            S.tf[f, TF_OFO] = S.tofo[prev]
        S.misc[M_TCPX + 2] += 1
        tcp_ofo_free(S, s, prev, t, R_TCP_OFOMERGE)
        prev = pp
    # the skbs after it that it covers entirely go (TCPOFOMerge, TCP_OFOMERGE)
    while k >= 0 and seqd(tcp_end_seq(S, k), end) <= 0:
        nk = S.tofo[k]
        S.misc[M_TCPX + 2] += 1
        tcp_ofo_free(S, s, k, t, R_TCP_OFOMERGE)
        k = nk
    S.tofo[h] = k
    if prev >= 0:
        S.tofo[prev] = h
    else:
        S.tf[f, TF_OFO] = h
    tcp_ofo_rcvbuf_grow(S, c, f, s, t)
    return 0, -1


@njit(cache=True)
def tcp_ofo_flush(S):
    """Out-of-order skbs still waiting for their gap when the trace ends: freed when the socket
    goes (skb_rbtree_purge in tcp_disconnect / inet_csk_destroy_sock: kfree_skb, NOT_SPECIFIED),
    stamped at the time they were queued."""
    for f in range(S.tf.shape[0]):
        k = S.tf[f, TF_OFO]
        while k >= 0:
            drop(S, k, S_L4, R_NOTSPEC, S.se[k, S_L4])
            k = S.tofo[k]
        S.tf[f, TF_OFO] = -1


@njit(cache=True)
def tcp_rcv_ack(S, c, h, t):
    """The ACKs the receive path sends for skb h of an established connection (net/ipv4/
    tcp_input.c), as CPU in the l4 stage (tcp_send_ack) and Tcp OutSegs:
    - tcp_event_data_recv: the first data skb initialises the delayed-ACK engine with
      tcp_incr_quickack(TCP_MAX_QUICKACKS = 16) — known only when the handshake is in the trace;
      a connection already running is taken as out of quickack mode;
    - __tcp_ack_snd_check: ACK now when more than one full frame (rcv_mss, the largest segment
      seen: tcp_measure_rcv_mss) arrived since the last ACK — so every GRO skb of >= 2 MSS — or in
      quickack mode (each ACK sent uses one: tcp_dec_quickack_mode); else tcp_send_delayed_ack
      arms the delayed-ACK timer (ato = TCP_ATO_MIN = HZ/25), which sends one if nothing else
      did first (TcpExt DelayedACKs; the timer's CPU is not on the receive path and not charged);
    - a FIN is ACKed at once (ICSK_ACK_NOW); a received SYN-ACK gets the handshake's ACK, a SYN to
      a listener its SYN-ACK (tcp_v4_send_synack).
    - old data gets an ACK at once (quickack re-entered), an out-of-order segment at once for
      the first three per rcv_nxt (tcp_sack_compress), a segment that fills the gap at once.
    Not modelled: the receive-window condition of __tcp_ack_snd_check (taken as met), the
    compressed-SACK timer's ACK. (tcp_recvmsg's window update: tcp_cleanup_rbuf; a listener's
    SYN-ACKs and RSTs: tcp_listen_rcv.)"""
    if S.P[P_TCP_ACKS] == 0:
        return 0
    kd = S.pk[h, F_KIND]
    if (kd != K_TCP and kd != K_TCP_CTRL) or S.pk[h, F_SOCK] < 0:
        return 0
    if tcp_listen_pending(S, h):
        return 0  # a listener's handshake: tcp_listen_rcv sends the SYN-ACK or RST
    f = S.pk[h, F_FLOWK]
    if S.tf[f, TF_DELACK] >= 0 and t >= S.tf[f, TF_DELACK]:
        S.misc[M_TCPIN + 4] += 1  # the delayed ACK went out when its timer fired
        S.misc[M_TCPIN + 5] += 1
        S.tf[f, TF_UNACK] = 0
        S.tf[f, TF_DELACK] = -1
        S.tf[f, TF_WND] = tcp_select_window(S, f, S.pk[h, F_SOCK])
        S.tf[f, TF_WUP] = S.tf[f, TF_NXT]
    flags = S.pk[h, F_FLAGS]
    now = False
    if kd == K_TCP_CTRL:
        if (flags & TCP_SYN) != 0:
            S.tf[f, TF_QUICK] = -2  # the handshake: the first data skb will start quickack
            now = True
        elif (flags & TCP_FIN) != 0:
            now = True
    else:
        cls = tcp_seq_class(S, f, h)
        if cls >= TQ_OLD:
            # tcp_data_queue's retransmit branch / tcp_send_dupack: tcp_enter_quickack_mode(sk,
            # TCP_MAX_QUICKACKS) and an ACK at once (the window taken as >= 32 rcv_mss, so
            # tcp_incr_quickack reaches the 16)
            if cls < TQ_INVSEQ:  # tcp_send_dupack re-enters quickack for old data only
                S.tf[f, TF_QUICK] = 16
            now = True
        elif cls == TQ_OFO:
            # tcp_data_queue_ofo: inet_csk_schedule_ack; __tcp_ack_snd_check: at once in quickack
            # mode or with > rcv_mss unacked, else (out-of-order queue not empty)
            # tcp_sack_compress: the first TCP_FASTRETRANS_THRESH (3) for one rcv_nxt at once,
            # later ones wait for the compressed-SACK hrtimer (not modelled: not counted)
            if S.tf[f, TF_QUICK] > 0 or S.tf[f, TF_UNACK] > S.tf[f, TF_MSS]:
                now = True
            else:
                if S.tf[f, TF_CNXT] != S.tf[f, TF_NXT] or S.tf[f, TF_DUPS] < 0:
                    S.tf[f, TF_CNXT] = S.tf[f, TF_NXT]
                    S.tf[f, TF_DUPS] = 0
                if S.tf[f, TF_DUPS] < 3:
                    S.tf[f, TF_DUPS] += 1
                    now = True
        else:
            mss = S.pk[h, F_PAYLEN]
            if mss > S.tf[f, TF_MSS]:
                S.tf[f, TF_MSS] = mss
            if S.tf[f, TF_QUICK] == -2:
                S.tf[f, TF_QUICK] = 16
            elif S.tf[f, TF_QUICK] < 0:
                S.tf[f, TF_QUICK] = 0
            S.tf[f, TF_UNACK] += S.po[h, O_SKBLEN]
            if (S.tf[f, TF_UNACK] > S.tf[f, TF_MSS] or S.tf[f, TF_QUICK] > 0
                    or (flags & TCP_FIN) != 0):
                now = True
            elif S.tf[f, TF_OFO] >= 0 and tcp_ofo_reach(S, f, tcp_end_seq(S, h))[1] < 0:
                # tcp_data_queue: the gap filled and tcp_ofo_queue emptied the out-of-order
                # queue: ICSK_ACK_NOW (RFC 5681 4.2)
                now = True
            elif S.tf[f, TF_DELACK] < 0:
                S.tf[f, TF_DELACK] = t + S.P[P_ATO]
    if not now:
        return 0
    S.misc[M_TCPIN + 4] += 1
    S.tf[f, TF_ACKNOW] = 1  # rcv_wup moves to rcv_nxt once the segment is queued (l4_done)
    S.tf[f, TF_UNACK] = 0
    S.tf[f, TF_DELACK] = -1
    if S.tf[f, TF_QUICK] > 0:
        S.tf[f, TF_QUICK] -= 1
    d = S.cbase[C_TCPACK]
    charge(S, c, level_of(S, c), Y_TCP_ACK, d, 1)
    return d


@njit(cache=True)
def tcp_delack_flush(S):
    """Delayed-ACK timers still armed when the trace ends fire afterwards."""
    for f in range(S.tf.shape[0]):
        if S.tf[f, TF_DELACK] >= 0:
            S.misc[M_TCPIN + 4] += 1
            S.misc[M_TCPIN + 5] += 1
            S.tf[f, TF_DELACK] = -1


@njit(cache=True)
def tunnel_rcv(S, c, h):
    """A tunnel packet for this host's [[tunnel]]: ip_local_deliver, the outer handler (udp_rcv ->
    udp_queue_rcv_one_skb -> encap_rcv for VXLAN/GENEVE; gre_rcv for GRE), the decapsulation,
    gro_cells_receive, then the inner packet's second pass — gro_cell_poll's napi_gro_receive,
    __netif_receive_skb_core (softnet processed again), ip_rcv, routing, ip_local_deliver — and
    the inner protocol handler. Returns (local ns, l4 ns): everything after the outer local
    delivery is in the l4 stage. Simplifications: the gro_cells NAPI runs inline, not in a later
    poll; no inner GRO merging (the frames carry no inner TCP sequence). Its napi_schedule is
    kept for what it raises: before 6.4 NET_RX always (handle_softirqs then restarts, a second
    NET_RX run per tunnel frame), 6.4+ only outside net_rx_action."""
    lv = level_of(S, c)
    n = S.po[h, O_SKBCNT]
    dl = cost(S, C_LOCAL, S.po[h, O_SKBLEN])
    charge(S, c, lv, Y_LOCAL, dl, n)
    nf = S.P[P_NF_IN] * S.cbase[C_NF_RULE]
    if nf > 0:
        charge(S, c, lv, Y_NF_IN, nf, n)
        dl += nf
    tun = S.pk[h, F_TUN]
    d4 = 0
    if tun != TUN_GRE:
        d4 = cost(S, C_UDP, S.po[h, O_SKBLEN])
        charge(S, c, lv, Y_UDP, d4, n)
    dt = S.cbase[C_TUNNEL]
    charge(S, c, lv, Y_TUN_VXLAN if tun == TUN_VXLAN else Y_TUN_GENEVE if tun == TUN_GENEVE
           else Y_TUN_GRE, dt, n)
    d4 += dt
    S.po[h, O_SKBLEN] = S.pk[h, F_ILEN]
    ln = S.pk[h, F_ILEN]
    # gro_cells_receive -> napi_schedule(&cell->napi) -> ____napi_schedule: before 6.4 it raises
    # NET_RX_SOFTIRQ even inside net_rx_action, which polls the cell in handle_softirqs' next
    # round (dev.c 6.1 ____napi_schedule; 6.4+ "If not called from net_rx_action()")
    if not (S.P[P_GOTO_START] != 0 and S.cs[c, CS_IN_NRA] != 0):
        S.cs[c, CS_PENDING] = 1
    S.cs[c, CS_PROCESSED] += 1  # the inner skb enters __netif_receive_skb_core too
    if S.pk[h, F_IKIND] == K_ARP:
        # an inner non-IP frame (taken as ARP): gro_cell_poll, the core, arp_rcv
        for slot, k in ((Y_IN_GRO, C_GRO), (Y_IN_NETIF, C_NETIF), (Y_IN_ARP, C_IP)):
            d = cost(S, k, ln)
            charge(S, c, lv, slot, d, n)
            d4 += d
        S.pk[h, F_KIND] = K_ARP
        return dl, d4
    for slot, k in ((Y_IN_GRO, C_GRO), (Y_IN_NETIF, C_NETIF), (Y_IN_IP, C_IP),
                    (Y_IN_ROUTE, C_ROUTE), (Y_IN_LOCAL, C_LOCAL)):
        d = cost(S, k, ln)
        if slot == Y_IN_IP:
            d += S.P[P_NF_PRE] * S.cbase[C_NF_RULE]
        charge(S, c, lv, slot, d, n)
        d4 += d
    S.pk[h, F_KIND] = S.pk[h, F_IKIND]
    S.pk[h, F_SOCK] = S.pk[h, F_ISOCK]
    S.pk[h, F_CSUM] = CSUM_UNNECESSARY  # the NIC checked nothing inside; the inner UDP/TCP
    # checksum is validated by the inner GRO pass (gro_cells) when the outer was not: modelled free
    dx, d4i = l4_handler_cost(S, c, h, lv)
    return dl + dx, d4 + d4i


@njit(cache=True, inline="always")
def gro_csum(S, c, lv, i):
    """tcp4_gro_receive / udp4_gro_receive (and the v6 ones) validate the L4 checksum before
    anything else (skb_gro_checksum_validate): free for CHECKSUM_UNNECESSARY, a fold of skb->csum
    for CHECKSUM_COMPLETE, csum_partial over the payload for CHECKSUM_NONE — which then counts as
    CHECKSUM_UNNECESSARY for the rest of the path (skb_gro_incr_csum_unnecessary: "This saves work
    if we fallback to normal path"). Returns the extra GRO ns."""
    cs = S.pk[i, F_CSUM]
    if S.P[P_GRO] == 0 or (cs & CSUM_GRO_V) == 0 or (cs & CSUM_KIND) != CSUM_NONE:
        return 0
    d = cost(S, C_CSUM, S.pk[i, F_PAYLEN])
    charge(S, c, lv, Y_CSUM_GRO, d, 1)
    S.pk[i, F_CSUM] = (cs & ~CSUM_KIND) | CSUM_UNNECESSARY
    return d


@njit(cache=True, inline="always")
def copy_csum(S, c, h):
    """udp_recvmsg: skb_copy_and_csum_datagram_msg instead of skb_copy_datagram_msg when the
    checksum is still unverified (udp_skb_csum_unnecessary false): the copy also sums."""
    if S.pk[h, F_KIND] != K_UDP or (S.pk[h, F_CSUM] & CSUM_KIND) != CSUM_NONE:
        return 0
    d = cost(S, C_CSUM, S.po[h, O_SKBLEN])
    charge(S, c, 0, Y_CSUM_COPY, d, S.po[h, O_SKBCNT])
    return d


@njit(cache=True, inline="always")
def frag_arm(S, key, t):
    """mod_timer(&q->timer, jiffies + timeout): the queue's one timer, armed at creation (and
    again by ip_frag_reinit), never pushed back by later fragments (inet_frag_create)."""
    v6 = S.fq[key, FQ_V6]
    tj = S.P[P_FRAG_T6] if v6 != 0 else S.P[P_FRAG_T4]
    S.fq[key, FQ_EXP] = (jiffies(S, t) + tj) * S.P[P_TICK] - S.P[P_PHASE]
    S.fq[key, FQ_GEN] += 1
    hi = FX_FIFO6_T if v6 != 0 else FX_FIFO_T
    base = S.P[P_FX_FIFO0] + (S.P[P_FX_NEXT0] - S.P[P_FX_FIFO0]) // 2 * v6
    k = S.fx[hi]
    S.fx[base + 2 * k] = key
    S.fx[base + 2 * k + 1] = S.fq[key, FQ_GEN]
    S.fx[hi] = k + 1


@njit(cache=True)
def frag_flush(S, key, tdrop, reason):
    """inet_frag_queue_flush: free the queued fragments (memory back), each dropped with reason
    at tdrop; reason < 0 frees them as consumed (inet_frag_destroy without INET_FRAG_DROP frees
    with SKB_CONSUMED, e.g. after an overlap killed the queue)."""
    p = S.fq[key, FQ_HEAD]
    nx0 = S.P[P_FX_NEXT0]
    while p >= 0:
        if reason >= 0:
            if S.se[p, S_LOCAL] < tdrop:
                S.se[p, S_LOCAL] = tdrop  # it waited in the queue until then
            drop(S, p, S_LOCAL, reason, S.se[p, S_LOCAL])
        p = S.fx[nx0 + p]
    S.fx[FX_MEM6 if S.fq[key, FQ_V6] != 0 else FX_MEM4] -= S.fq[key, FQ_TRUE]
    S.fq[key, FQ_TRUE] = 0
    S.fq[key, FQ_HEAD] = -1
    S.fq[key, FQ_FLAGS] = 0
    S.fq[key, FQ_LEN] = 0
    S.fq[key, FQ_MEAT] = 0


@njit(cache=True, inline="always")
def frag_kill(S, key, tdrop, reason):
    """inet_frag_kill + inet_frag_destroy: the queue leaves the hash table; its fragments and
    its own struct (qsize) are freed."""
    frag_flush(S, key, tdrop, reason)
    S.fx[FX_MEM6 if S.fq[key, FQ_V6] != 0 else FX_MEM4] -= S.P[P_FRAG_QSIZE]
    S.fq[key, FQ_LIVE] = 0


@njit(cache=True)
def frag_expire(S, t):
    """ip_expire / ip6_frag_expire for every queue whose timer fired by t: ReasmFails and
    ReasmTimeout, the queued fragments dropped FRAG_REASM_TIMEOUT at the expiry. Timers are kept in
    arming order, which is expiry order (one timeout per IP version). The timer's own CPU cost
    (a TIMER softirq, an ICMP time exceeded when the first fragment came) is not charged."""
    for v6 in range(2):
        hk = FX_FIFO6_H if v6 != 0 else FX_FIFO_H
        tk = FX_FIFO6_T if v6 != 0 else FX_FIFO_T
        base = S.P[P_FX_FIFO0] + (S.P[P_FX_NEXT0] - S.P[P_FX_FIFO0]) // 2 * v6
        h = S.fx[hk]
        while h < S.fx[tk]:
            key = S.fx[base + 2 * h]
            if S.fq[key, FQ_LIVE] != 0 and S.fq[key, FQ_GEN] == S.fx[base + 2 * h + 1]:
                exp = S.fq[key, FQ_EXP]
                if exp > t:
                    break
                S.fx[FX_FAIL6 if v6 != 0 else FX_FAIL4] += 1
                S.fx[FX_TMO6 if v6 != 0 else FX_TMO4] += 1
                first = S.fq[key, FQ_FIRST]
                if (S.fq[key, FQ_FLAGS] & FQ_FIRST_IN) != 0 and first >= 0 \
                        and S.pk[first, F_IPEER] >= 0:
                    icmp_time_exceeded(S, first, exp)
                frag_kill(S, key, exp, R_FRAG_TIMEOUT)
            h += 1
        S.fx[hk] = h


@njit(cache=True, inline="always")
def frag_free(S, c, lv):
    """kfree_skb_reason of a fragment ip_defrag refuses."""
    charge(S, c, lv, Y_DROP_LOCAL, S.cbase[C_DROP], 1)
    return S.cbase[C_DROP]


@njit(cache=True)
def ip_defrag(S, c, h, t):
    """ip_local_deliver → ip_defrag for fragment h at t: (local ns, l4 ns). A fragment that does
    not complete its datagram ends here (consumed, or dropped with the kernel's reason); the one
    that completes it carries the reassembled datagram on to the protocol handler."""
    lv = level_of(S, c)
    dl = cost(S, C_LOCAL, S.po[h, O_SKBLEN])
    charge(S, c, lv, Y_LOCAL, dl, 1)
    dq, done = frag_queue(S, c, h, t, dl, lv, S_LOCAL)
    if not done:
        return dl + dq, 0
    # then LOCAL_IN and the protocol handler run on the whole datagram
    dx, d4 = l4_handler_cost(S, c, h, lv)
    return dl + dq + dx, d4


@njit(cache=True)
def frag_queue(S, c, h, t, d0, lv, stage):
    """ip_defrag's queue for fragment h, in a step from t that has spent d0 ns before it, as
    ip_local_deliver (stage S_LOCAL) or conntrack's PREROUTING hook (nf_defrag_ipv4, stage S_IP)
    calls it: (ns beyond d0, True when h completed and now carries the reassembled datagram). A
    fragment that does not complete it ends in `stage` (consumed, or dropped with the kernel's
    reason); the queue's timers count from t."""
    charge(S, c, lv, Y_DEFRAG, S.cbase[C_DEFRAG], 1)
    dl = S.cbase[C_DEFRAG]
    tend = t + d0 + dl
    frag_expire(S, t)
    key = S.pk[h, F_FRAGQ]
    v6 = S.pk[h, F_V6]
    fail = FX_FAIL6 if v6 != 0 else FX_FAIL4
    mem = FX_MEM6 if v6 != 0 else FX_MEM4
    S.fx[FX_REQ6 if v6 != 0 else FX_REQ4] += 1  # IPSTATS_MIB_REASMREQDS, every fragment
    hi = S.P[P_FRAG_HI6] if v6 != 0 else S.P[P_FRAG_HI4]
    # inet_frag_find: frag_mem_limit(fqdir) > high_thresh -> NULL, even for an existing queue;
    # ip_defrag then counts ReasmFails and kfree_skb()s the fragment (no specific reason)
    if hi == 0 or S.fx[mem] > hi:
        S.fx[fail] += 1
        dd = frag_free(S, c, lv)
        drop(S, h, stage, R_NOT_SPECIFIED, tend + dd)
        return dl + dd, False
    if S.fq[key, FQ_LIVE] == 0:
        # inet_frag_create: a new queue, its struct charged (f->qsize) and its timer armed
        S.fq[key, FQ_LIVE] = 1
        S.fq[key, FQ_HEAD] = -1
        S.fq[key, FQ_FLAGS] = 0
        S.fq[key, FQ_LEN] = 0
        S.fq[key, FQ_MEAT] = 0
        S.fq[key, FQ_TRUE] = 0
        S.fq[key, FQ_RID] = 0
        S.fq[key, FQ_FIRST] = -1
        S.fx[mem] += S.P[P_FRAG_QSIZE]
        frag_arm(S, key, t)
    if v6 == 0 and S.P[P_FRAG_DIST] > 0:
        # ip_frag_too_far: the peer (inet_peer of saddr) counts every fragment it sends us; more
        # than ipfrag_max_dist of them since this queue's last one -> ReasmFails and
        # ip_frag_reinit: the queued fragments dropped FRAG_TOO_FAR, the timer re-armed
        pr = FX_PEER0 + S.pk[h, F_PEER]
        S.fx[pr] += 1
        start = S.fq[key, FQ_RID]
        S.fq[key, FQ_RID] = S.fx[pr]
        if S.fq[key, FQ_HEAD] >= 0 and S.fx[pr] - start > S.P[P_FRAG_DIST]:
            S.fx[fail] += 1
            frag_flush(S, key, t, R_FRAG_TOO_FAR)
            S.fq[key, FQ_FIRST] = -1
            frag_arm(S, key, t)
    off = S.pk[h, F_FOFF]
    end = S.pk[h, F_FEND]
    bad = False
    if S.pk[h, F_FMF] == 0:
        # the final fragment: bits beyond it, or a different end, is corruption (discard_qp)
        if end < S.fq[key, FQ_LEN] or (
                (S.fq[key, FQ_FLAGS] & FQ_LAST_IN) != 0 and end != S.fq[key, FQ_LEN]):
            bad = True
        else:
            S.fq[key, FQ_FLAGS] |= FQ_LAST_IN
            S.fq[key, FQ_LEN] = end
    else:
        end &= ~7  # a non-final fragment is trimmed to a multiple of 8
        if end > S.fq[key, FQ_LEN]:
            if (S.fq[key, FQ_FLAGS] & FQ_LAST_IN) != 0:
                bad = True
            else:
                S.fq[key, FQ_LEN] = end
    if end <= off:
        bad = True
    if not bad:
        # inet_frag_queue_insert: inside an existing fragment -> IPFRAG_DUP (this one dropped,
        # the queue kept); any other overlap -> IPFRAG_OVERLAP (RFC 5722: the whole datagram)
        nx0 = S.P[P_FX_NEXT0]
        p = S.fq[key, FQ_HEAD]
        while p >= 0:
            po_ = S.pk[p, F_FOFF]
            pe = S.pk[p, F_FEND] if S.pk[p, F_FMF] == 0 else S.pk[p, F_FEND] & ~7
            if off < pe and end > po_:
                if off >= po_ and end <= pe:
                    dd = frag_free(S, c, lv)
                    drop(S, h, stage, R_DUP_FRAG, tend + dd)
                    return dl + dd, False
                S.fx[FX_OVL6 if v6 != 0 else FX_OVL4] += 1  # ReasmOverlaps
                bad = True
                break
            p = S.fx[nx0 + p]
    if bad:
        # discard_qp: inet_frag_kill + ReasmFails; this fragment kfree_skb()d; the queued ones
        # are freed by inet_frag_destroy as SKB_CONSUMED (no INET_FRAG_DROP): they stay consumed
        S.fx[fail] += 1
        frag_kill(S, key, tend, -1)
        dd = frag_free(S, c, lv)
        drop(S, h, stage, R_NOT_SPECIFIED, tend + dd)
        return dl + dd, False
    S.fx[S.P[P_FX_NEXT0] + h] = S.fq[key, FQ_HEAD]
    S.fq[key, FQ_HEAD] = h
    S.fq[key, FQ_MEAT] += end - off
    S.fq[key, FQ_TRUE] += S.pk[h, F_TRUESIZE]
    S.fx[mem] += S.pk[h, F_TRUESIZE]  # add_frag_mem_limit(skb->truesize)
    if off == 0:
        S.fq[key, FQ_FLAGS] |= FQ_FIRST_IN
        S.fq[key, FQ_FIRST] = h
        S.fq[key, FQ_SOCK] = S.pk[h, F_SOCK]
        S.fq[key, FQ_KIND] = S.pk[h, F_KIND]
        S.fq[key, FQ_L4HDR] = S.pk[h, F_FEND] - S.pk[h, F_PAYLEN]  # transport header bytes
    if S.fq[key, FQ_FLAGS] != (FQ_FIRST_IN | FQ_LAST_IN) or S.fq[key, FQ_MEAT] != S.fq[key, FQ_LEN]:
        consume(S, h, tend)  # -EINPROGRESS: held in the queue
        return dl, False
    # ip_frag_reasm: this fragment becomes the head of the datagram (inet_frag_reasm_prepare);
    # its truesize is the sum of the fragments'; ReasmOKs. The earlier fragments stay consumed.
    truesz = S.fq[key, FQ_TRUE]
    first = S.fq[key, FQ_FIRST]
    S.fq[key, FQ_TRUE] = 0
    S.fq[key, FQ_HEAD] = -1
    S.fx[mem] -= truesz + S.P[P_FRAG_QSIZE]
    S.fq[key, FQ_LIVE] = 0
    S.fx[FX_OK6 if v6 != 0 else FX_OK4] += 1
    charge(S, c, lv, Y_REASM, S.cbase[C_REASM], 1)
    dl += S.cbase[C_REASM]
    S.po[h, O_SKBLEN] = S.fq[key, FQ_LEN] - S.fq[key, FQ_L4HDR]
    S.po[h, O_SKBTRUE] = truesz
    S.po[h, O_FHEAD] = first
    S.pk[h, F_SOCK] = S.fq[key, FQ_SOCK]
    S.pk[h, F_KIND] = S.fq[key, FQ_KIND]
    # the datagram's source is every fragment's, but only the first's header said it is an echo
    # request (a later fragment's kind carries no type, so it got no inet_peer): icmp_echo's
    # reply to a datagram a later fragment completed goes to the first's peer
    S.pk[h, F_IPEER] = S.pk[first, F_IPEER]
    S.pk[h, F_CSUM] = S.pk[first, F_CSUM]  # the L4 header (and its checksum) is the first's
    return dl, True




@njit(cache=True)
def list_core(S, c, q, t):
    """netif_receive_skb_list_internal → __netif_receive_skb_list_core → ip_list_rcv →
    ip_list_rcv_finish: each stage over the whole batch in turn. Returns the step's duration."""
    lv = level_of(S, c)
    n = S.qs[q, QS_RX_N]
    now = t
    for k in range(n):
        h = S.rxl[q, k]
        d = cost(S, C_NETIF, S.po[h, O_SKBLEN])
        now += d
        S.se[h, S_NETIF] = now
        S.sc[h, S_NETIF] = d
        S.po[h, O_PCPU] = c
        charge(S, c, lv, Y_NETIF, d, S.po[h, O_SKBCNT])
        S.cs[c, CS_PROCESSED] += 1  # softnet processed: once per skb after GRO (dev.c:5956)
        if S.pk[h, F_VLAN] == VLAN_ROUND:
            # vlan_do_receive found the VLAN device: the skb moves to it and
            # __netif_receive_skb_core does `goto another_round`, counting processed again
            S.cs[c, CS_PROCESSED] += 1
        if S.pk[h, F_KIND] == K_NONIP:
            dd = S.cbase[C_DROP]
            now += dd
            S.se[h, S_NETIF] = now
            S.sc[h, S_NETIF] += dd
            charge(S, c, lv, Y_DROP_NETIF, dd, 1)
            drop(S, h, S_NETIF, R_UNHANDLED, now)
    for k in range(n):
        h = S.rxl[q, k]
        if S.po[h, O_OUTC] != -1:
            continue
        kd = S.pk[h, F_KIND]
        if kd == K_ARP:
            d = cost(S, C_IP, S.po[h, O_SKBLEN])
            now += d
            S.se[h, S_IP] = now
            S.sc[h, S_IP] = d
            charge(S, c, lv, Y_ARP, d, S.po[h, O_SKBCNT])
            consume(S, h, now)
            continue
        if S.pk[h, F_VLAN] == VLAN_OTHERHOST:
            # a non-zero VID without a VLAN device: __netif_receive_skb_core set pkt_type
            # PACKET_OTHERHOST (check_vlan_id); ip_rcv_core / ip6_rcv_core free it first thing,
            # before Ip InReceives (SKB_DROP_REASON_OTHERHOST)
            dd = S.cbase[C_DROP]
            charge(S, c, lv, Y_DROP_IP, dd, 1)
            now += dd
            S.se[h, S_IP] = now
            S.sc[h, S_IP] = dd
            drop(S, h, S_IP, R_OTHERHOST, now)
            continue
        d = cost(S, C_IP, S.po[h, O_SKBLEN])
        charge(S, c, lv, Y_IP, d, S.po[h, O_SKBCNT])
        S.misc[M_IPIN + (0)] += 1  # Ip InReceives, per skb (ip_rcv_core)
        if kd == K_BADIP or kd == K_TRUNC:
            # ip_rcv_core drops it before the PREROUTING hook
            dd = S.cbase[C_DROP]
            charge(S, c, lv, Y_DROP_IP, dd, 1)
            d += dd
            now += d
            S.se[h, S_IP] = now
            S.sc[h, S_IP] = d
            drop(S, h, S_IP, R_INHDR if kd == K_BADIP else R_TOOSMALL, now)
            S.misc[M_IPIN + (1 if kd == K_BADIP else 2)] += 1
            continue
        if S.P[P_CONNTRACK] != 0 and S.pk[h, F_FRAGQ] >= 0 and S.pk[h, F_V6] == 0:
            # nf_defrag_ipv4: conntrack's PREROUTING hook at priority NF_IP_PRI_CONNTRACK_DEFRAG
            # (-400, before raw, conntrack and every rule) gathers the fragments
            # (ipv4_conntrack_defrag -> nf_ct_ipv4_gather_frags -> ip_defrag(user
            # IP_DEFRAG_CONNTRACK_IN)): a fragment that does not complete its datagram is stolen
            # there, before routing and ip_local_deliver; the one that completes it goes on as
            # the whole datagram, no longer a fragment
            dq, done = frag_queue(S, c, h, now, d, lv, S_IP)
            d += dq
            if not done:
                now += d
                S.se[h, S_IP] = now
                S.sc[h, S_IP] = d
                continue
            S.pk[h, F_FRAGQ] = -1
        nf = S.P[P_NF_PRE] * S.cbase[C_NF_RULE]
        if nf > 0:
            charge(S, c, lv, Y_NF_PRE, nf, S.po[h, O_SKBCNT])
        ct = S.cbase[C_CONNTRACK] if S.P[P_CONNTRACK] != 0 else 0
        if ct > 0:
            charge(S, c, lv, Y_CT, ct, S.po[h, O_SKBCNT])
        d += nf + ct
        if S.P[P_NF_DROP] != 0:
            # the PREROUTING hook returns NF_DROP: kfree_skb with NETFILTER_DROP (KERNEL.md §1 row 7)
            dd = S.cbase[C_DROP]
            charge(S, c, lv, Y_DROP_IP, dd, 1)
            d += dd
            now += d
            S.se[h, S_IP] = now
            S.sc[h, S_IP] = d
            drop(S, h, S_IP, R_NF, now)
            continue
        now += d
        S.se[h, S_IP] = now
        S.sc[h, S_IP] = d
    # ip_list_rcv_finish / ip6_list_rcv_finish (5.7+, 02b24941619f / 197dbf24e360): the skb that
    # starts a run of one dst is kept as the route hint; a later skb with the hint's daddr (and
    # tos, ip_can_use_hint; IPv6 daddr alone, ip6_can_use_hint) takes its route from it
    # (ip_route_use_hint / skb_dst_copy) before early demux is tried. A local route's dst is the
    # nexthop's cached input route: one dst per daddr (F_RDST >> 8; its low byte is the tos).
    # Not modelled: policy routing / multipath (fib4_has_custom_rules, IPSKB_MULTIPATH: no
    # hint), a batch split into several ptype sublists (IPv4 and IPv6 interleaved)
    hint = -1
    cur = -1
    for k in range(n):
        h = S.rxl[q, k]
        if S.po[h, O_OUTC] != -1:
            continue
        rd = S.pk[h, F_RDST]
        if S.P[P_ROUTE_HINT] != 0 and hint >= 0 and S.pk[hint, F_RDST] == rd:
            d = cost(S, C_ROUTE_HINT, S.po[h, O_SKBLEN])
            charge(S, c, lv, Y_ROUTE_HINT, d, S.po[h, O_SKBCNT])
            now += d
            S.se[h, S_ROUTE] = now
            S.sc[h, S_ROUTE] = d
            if S.pk[h, F_KIND] == K_NOTLOCAL:
                now = route_inaddr(S, c, lv, h, now)
            continue
        if (rd >> 8) != cur:
            hint = h  # curr_dst != dst: ip_extract_route_hint
            cur = rd >> 8
        # early demux finds an established TCP socket and skips the FIB (KERNEL.md §1 row 8)
        # (ip_rcv_finish_core: never for a fragment, !ip_is_fragment(iph))
        if S.pk[h, F_KIND] == K_TCP and S.pk[h, F_SOCK] >= 0 and S.pk[h, F_FRAGQ] < 0:
            d = cost(S, C_DEMUX, S.po[h, O_SKBLEN])
            charge(S, c, lv, Y_DEMUX, d, S.po[h, O_SKBCNT])
        elif (S.pk[h, F_DEMUX] & 1) != 0:
            # udp_v4_early_demux: only a connected socket matches (__udp4_lib_demux_lookup wants
            # the full 4-tuple); its sk_rx_dst spares the FIB lookup
            d = cost(S, C_DEMUX, S.po[h, O_SKBLEN])
            charge(S, c, lv, Y_UDP_DEMUX, d, S.po[h, O_SKBCNT])
        else:
            d = cost(S, C_ROUTE, S.po[h, O_SKBLEN])
            charge(S, c, lv, Y_ROUTE, d, S.po[h, O_SKBCNT])
        now += d
        S.se[h, S_ROUTE] = now
        S.sc[h, S_ROUTE] = d
        if S.pk[h, F_KIND] == K_NOTLOCAL:
            now = route_inaddr(S, c, lv, h, now)
    return now - t


@njit(cache=True)
def route_inaddr(S, c, lv, h, now):
    """skb h is for the host's MAC but not its address: ip_route_input_slow (forwarding off:
    err = -EHOSTUNREACH, no_route) gives it a dst whose input is ip_error, which counts
    IPSTATS_MIB_INADDRERRORS and frees it IP_INADDRERRORS without an ICMP (`goto out` when
    !IN_DEV_FORWARD); IPv6: ip6_forward's `error:` likewise. Returns the time after the drop."""
    dd = S.cbase[C_DROP]
    charge(S, c, lv, Y_DROP_ROUTE, dd, 1)
    now += dd
    S.se[h, S_ROUTE] = now
    S.sc[h, S_ROUTE] += dd
    drop(S, h, S_ROUTE, R_INADDR, now)
    return now


@njit(cache=True)
def l4_cost(S, c, h):
    """ip_local_deliver + the protocol handler for skb h: (local ns, l4 ns); charges the CPU."""
    lv = level_of(S, c)
    dl = cost(S, C_LOCAL, S.po[h, O_SKBLEN])
    charge(S, c, lv, Y_LOCAL, dl, S.po[h, O_SKBCNT])
    if S.pk[h, F_EXT] > 0:
        # IPv6 extension headers: hop-by-hop in ip6_rcv_core, the others each a protocol
        # handler run by ip6_protocol_deliver_rcu's resubmit loop (net/ipv6/ip6_input.c)
        de = cost(S, C_EXTHDR, S.pk[h, F_EXT])
        charge(S, c, lv, Y_EXTHDR, de, S.po[h, O_SKBCNT])
        dl += de
    dx, d4 = l4_handler_cost(S, c, h, lv)
    return dl + dx, d4


@njit(cache=True)
def l4_handler_cost(S, c, h, lv):
    """After ip_local_deliver's own work (and reassembly): the LOCAL_IN rules and the protocol
    handler: (more local ns, l4 ns)."""
    dl = 0
    nf = S.P[P_NF_IN] * S.cbase[C_NF_RULE]
    if nf > 0:
        charge(S, c, lv, Y_NF_IN, nf, S.po[h, O_SKBCNT])
        dl += nf
    kd = S.pk[h, F_KIND]
    if kd == K_UDP:
        d4 = cost(S, C_UDP, S.po[h, O_SKBLEN])
        charge(S, c, lv, Y_UDP, d4, S.po[h, O_SKBCNT])
    elif kd == K_TCP or kd == K_TCP_CTRL:
        if backlogged(S, h):
            d4 = S.cbase[C_TCP_BL]  # tcp_v4_rcv up to tcp_add_backlog
            charge(S, c, lv, Y_TCP_BL, d4, S.po[h, O_SKBCNT])
        else:
            d4 = cost(S, C_TCP, S.po[h, O_SKBLEN])
            charge(S, c, lv, Y_TCP, d4, S.po[h, O_SKBCNT])
        if (S.pk[h, F_CSUM] & CSUM_KIND) == CSUM_NONE:
            # tcp_v4_rcv / tcp_rcv_established: tcp_checksum_complete over the segment when
            # neither the NIC nor GRO verified it (skb_csum_unnecessary false)
            dc = cost(S, C_CSUM, S.po[h, O_SKBLEN])
            charge(S, c, lv, Y_CSUM_L4, dc, S.po[h, O_SKBCNT])
            d4 += dc
    elif kd == K_IGMP:  # igmp_rcv (igmp_heard_query / _report), costed as UDP's handler
        d4 = cost(S, C_UDP, S.po[h, O_SKBLEN])
        charge(S, c, lv, Y_IGMP, d4, S.po[h, O_SKBCNT])
    elif kd == K_BADTCP:  # tcp_v4_rcv up to the data-offset check, then the drop
        d4 = S.cbase[C_DROP]
        charge(S, c, lv, Y_DROP_L4, d4, 1)
    elif kd == K_ICMP or kd == K_ICMP_ECHO or kd == K_ICMP_PING:
        # icmp_rcv / icmpv6_rcv (the echo's reply is sent in l4_done, under its limits)
        d4 = cost(S, C_UDP, S.po[h, O_SKBLEN])
        charge(S, c, lv, Y_ICMP_RCV, d4, S.po[h, O_SKBCNT])
    else:  # K_NOPROTO: dropped in ip_local_deliver
        d4 = 0
        dd = S.cbase[C_DROP]
        charge(S, c, lv, Y_DROP_LOCAL, dd, 1)
        dl += dd
    return dl, d4


@njit(cache=True, inline="always")
def sockq_push(S, s, h):
    """skb h at the tail of socket s's receive queue (its memory already charged)."""
    off = S.ss[s, SS_QOFF]
    cap = S.ss[s, SS_QCAP]
    pos = S.ss[s, SS_QHEAD] + S.ss[s, SS_QN]  # < 2 cap: head < cap, at most cap queued
    if pos >= cap:
        pos -= cap
    S.sockq[off + pos] = h
    S.ss[s, SS_QN] += 1
    if S.ss[s, SS_QN] > S.ss[s, SS_MAXQ]:
        S.ss[s, SS_MAXQ] = S.ss[s, SS_QN]
    S.po[h, O_PAPP] = s
    if S.pk[h, F_KIND] == K_TCP:
        S.tf[S.pk[h, F_FLOWK], TF_QN] += 1


@njit(cache=True)
def tcp_ack_sent(S, f, h):
    """An ACK that left for this segment (tcp_rcv_ack) advertised rcv_nxt: rcv_wup = rcv_nxt
    (tcp_select_window). Without the ACK model every segment is taken as ACKed."""
    if S.tf[f, TF_ACKNOW] != 0 or S.P[P_TCP_ACKS] == 0:
        S.tf[f, TF_WND] = tcp_select_window(S, f, S.pk[h, F_SOCK])
        S.tf[f, TF_WUP] = S.tf[f, TF_NXT]
    S.tf[f, TF_ACKNOW] = 0


@njit(cache=True)
def tcp_queued(S, s, h, t):
    """In-order skb h joined the receive queue: rcv_nxt = its end_seq, then tcp_ofo_queue moves
    the out-of-order skbs the gap held back (those it now covers entirely dropped:
    TCP_OFO_DROP) to the receive queue; they are delivered when the reader copies them."""
    f = S.pk[h, F_FLOWK]
    nxt = tcp_end_seq(S, h)
    # tcp_queue_rcv moved rcv_nxt; tcp_event_data_recv -> tcp_rcv_rtt_measure before tcp_ofo_queue
    S.tf[f, TF_NXT] = nxt
    tcp_rcv_rtt_measure(S, f, t)
    k = S.tf[f, TF_OFO]
    while k >= 0 and seqd(S.pk[k, F_SEQ], nxt) <= 0:
        nk = S.tofo[k]
        e = tcp_end_seq(S, k)
        if seqd(e, nxt) <= 0:
            tcp_ofo_free(S, s, k, t, R_TCP_OFO_DROP)
        else:
            sockq_push(S, s, k)  # its memory was charged when it entered the ofo queue
            nxt = e
        k = nk
    S.tf[f, TF_OFO] = k
    S.tf[f, TF_NXT] = nxt
    tcp_ack_sent(S, f, h)


@njit(cache=True)
def tcp_ctrl_seq(S, h):
    """rcv_nxt from a segment without data: a SYN (or SYN-ACK) sets it to ISN + 1
    (tcp_rcv_synsent_state_process / tcp_conn_request), an in-order FIN adds 1 (tcp_fin)."""
    f = S.pk[h, F_FLOWK]
    fl = S.pk[h, F_FLAGS]
    if (fl & TCP_SYN) != 0:
        S.tf[f, TF_HAVE_NXT] = 1
        S.tf[f, TF_NXT] = (S.pk[h, F_SEQ] + 1) & 0xFFFFFFFF
        S.tf[f, TF_WUP] = S.tf[f, TF_NXT]
        S.tf[f, TF_COPIED] = S.tf[f, TF_NXT]
        S.tf[f, TF_WND] = tcp_select_window(S, f, S.pk[h, F_SOCK])
    elif (fl & TCP_FIN) != 0 and S.tf[f, TF_HAVE_NXT] != 0 and S.pk[h, F_SEQ] == S.tf[f, TF_NXT]:
        S.tf[f, TF_NXT] = (S.tf[f, TF_NXT] + 1) & 0xFFFFFFFF
    S.tf[f, TF_ACKNOW] = 0


# ------------------------------------------------ Pruning (tcp_try_rmem_schedule, tcp_prune_queue)
# net/ipv4/tcp_input.c. No global TCP memory pressure is modelled (sk_rmem_schedule succeeds,
# tcp_under_memory_pressure is false): pruning starts when tcp_can_ingest fails. Each connection
# counts its own memory (tf[f, TF_RMEM], the kernel's socket per connection) against the
# [[app]]'s rcvbuf; its skbs sit in the app's one queue, and collapsing walks those of the
# segment's connection. Window clamping (tcp_clamp_window) is not modelled: the window
# follows the free space (tcp_select_window).
SKB_MAX_ORDER0 = 4096 - 320  # SKB_MAX_ORDER(0, 0): a page less SKB_DATA_ALIGN(skb_shared_info)


@njit(cache=True, inline="always")
def tcp_can_ingest(S, s, h):
    """Whether skb h fits its connection's receive memory (its sk_rcvbuf, sk_rcvbuf()) under
    host.kernel's rule (P_RMEM_RULE)."""
    f = S.pk[h, F_FLOWK]
    rmem = S.tf[f, TF_RMEM]
    rcvbuf = sk_rcvbuf(S, f, s)
    rule = S.P[P_RMEM_RULE]
    if rule == RMEM_TRUESIZE:
        return rmem + S.po[h, O_SKBTRUE] <= rcvbuf
    if rule == RMEM_LEN:
        return rmem + S.po[h, O_SKBLEN] <= rcvbuf
    return rmem <= rcvbuf


@njit(cache=True, inline="always")
def alloc_skb_truesize(n):
    """skb->truesize of alloc_skb(n) (skbuff.c __alloc_skb): a head of SKB_DATA_ALIGN(n) + 320
    (skb_shared_info) from the small-head cache (640) or kmalloc's size class, plus the 256 of
    struct sk_buff (SKB_TRUESIZE)."""
    head = (n + 63) // 64 * 64 + 320
    if head <= 640:
        return 640 + 256
    size = 1024
    while size < head:
        size *= 2
    return size + 256


@njit(cache=True)
def collapse_rows(S, s, rows, n):
    """tcp_collapse over rows[0:n] (contiguous skbs of one connection, in sequence order): from
    the first one that is bloated (tcp_win_from_space(truesize) = truesize / 2 > len) the bytes are
    copied into new skbs of up to SKB_MAX_ORDER(0, 0) bytes and the old skbs freed
    (TCPRcvCollapsed each); an skb with FIN or SYN ends the run. The model keeps each segment's row
    (the reader still reads it) and shares the new skbs' truesize out over them by length.
    Returns the CPU ns (stage.tcp_collapse: base per skb freed, per byte copied)."""
    j0 = -1
    for j in range(n):
        r = rows[j]
        if (S.pk[r, F_FLAGS] & (TCP_SYN | TCP_FIN)) != 0:
            return 0
        if (S.po[r, O_SKBTRUE] >> 1) > S.po[r, O_SKBLEN]:
            j0 = j
            break
    if j0 < 0:
        return 0
    j1 = j0
    nbytes = 0
    old = 0
    while j1 < n and (S.pk[rows[j1], F_FLAGS] & (TCP_SYN | TCP_FIN)) == 0:
        nbytes += S.po[rows[j1], O_SKBLEN]
        old += S.po[rows[j1], O_SKBTRUE]
        j1 += 1
    if nbytes == 0:
        return 0
    full = nbytes // SKB_MAX_ORDER0
    rest = nbytes - full * SKB_MAX_ORDER0
    new = full * alloc_skb_truesize(SKB_MAX_ORDER0) + (alloc_skb_truesize(rest) if rest > 0 else 0)
    given = 0
    for j in range(j0, j1):
        r = rows[j]
        share = new * S.po[r, O_SKBLEN] // nbytes if j < j1 - 1 else new - given
        given += share
        S.po[r, O_SKBTRUE] = share
    S.ss[s, SS_RMEM] += new - old
    S.tf[S.pk[rows[j0], F_FLOWK], TF_RMEM] += new - old
    S.misc[M_TCPL + TL_COLLAPSED] += j1 - j0
    d = (j1 - j0) * S.cbase[C_COLLAPSE] + int(S.cpb[C_COLLAPSE] * nbytes)
    return d


@njit(cache=True)
def tcp_collapse_queues(S, f, s):
    """tcp_collapse_ofo_queue (each run of contiguous out-of-order skbs of more than one skb or
    of at least SKB_MAX_ORDER(0, 0) bytes; tiny runs are skipped until they add up to
    sk_rcvbuf / 8), then tcp_collapse of the receive queue (copied_seq to rcv_nxt). Returns ns."""
    d = 0
    nofo = 0
    k = S.tf[f, TF_OFO]
    while k >= 0:
        nofo += 1
        k = S.tofo[k]
    rows = np.empty(max(nofo, S.ss[s, SS_QN]) + 1, np.int64)
    k = S.tf[f, TF_OFO]
    tiny = 0
    while k >= 0:
        n = 0
        end = tcp_end_seq(S, k)
        rtrue = 0
        while k >= 0 and (n == 0 or seqd(S.pk[k, F_SEQ], end) <= 0):
            rows[n] = k
            n += 1
            rtrue += S.po[k, O_SKBTRUE]
            e = tcp_end_seq(S, k)
            if seqd(e, end) > 0:
                end = e
            k = S.tofo[k]
        span = seqd(end, S.pk[rows[0], F_SEQ])
        if n > 1 or span >= SKB_MAX_ORDER0:
            d += collapse_rows(S, s, rows, n)
        else:
            tiny += rtrue
            if tiny > (sk_rcvbuf(S, f, s) >> 3):
                break
    n = 0
    off = S.ss[s, SS_QOFF]
    for i in range(S.ss[s, SS_QN]):
        r = S.sockq[off + (S.ss[s, SS_QHEAD] + i) % S.ss[s, SS_QCAP]]
        if S.pk[r, F_FLOWK] == f:
            rows[n] = r
            n += 1
    if n > 0:
        d += collapse_rows(S, s, rows, n)
    return d


@njit(cache=True)
def tcp_prune_ofo_queue(S, f, s, h, t):
    """tcp_prune_ofo_queue: free out-of-order skbs from the highest sequence down (not those
    before the incoming skb's seq), at least sk_rcvbuf / 8 at a time, until skb h fits
    (TCP_OFO_QUEUE_PRUNE; OfoPruned once). Returns whether any went."""
    n = 0
    k = S.tf[f, TF_OFO]
    while k >= 0:
        n += 1
        k = S.tofo[k]
    if n == 0:
        return False
    rows = np.empty(n, np.int64)
    k = S.tf[f, TF_OFO]
    for j in range(n):
        rows[j] = k
        k = S.tofo[k]
    goal = sk_rcvbuf(S, f, s) >> 3
    pruned = False
    for j in range(n - 1, -1, -1):
        k = rows[j]
        if seqd(S.pk[h, F_SEQ], S.pk[k, F_SEQ]) > 0:
            break  # the incoming skb would land last: stop
        pruned = True
        if j > 0:
            S.tofo[rows[j - 1]] = -1
        else:
            S.tf[f, TF_OFO] = -1
        goal -= S.po[k, O_SKBTRUE]
        tcp_ofo_free(S, s, k, t, R_TCP_OFO_PRUNE)
        if j == 0 or goal <= 0:
            if tcp_can_ingest(S, s, h):
                break
            goal = sk_rcvbuf(S, f, s) >> 3
    if pruned:
        S.misc[M_TCPL + TL_OFOPRUNED] += 1
    return pruned


@njit(cache=True)
def tcp_try_rmem_schedule(S, c, f, s, h, t):
    """tcp_try_rmem_schedule for data skb h of flow f on socket s: True when it may be queued.
    tcp_prune_queue (PruneCalled) clamps the window (tcp_clamp_window: an unlocked sk_rcvbuf
    follows sk_rmem_alloc), collapses the queues, then prunes the out-of-order queue, and
    gives up (RcvPruned) if the skb still does not fit. The collapsing's CPU is charged here (l4
    stage) and added to the step by l4_done (misc[M_XCOST])."""
    if tcp_can_ingest(S, s, h):
        return True
    classic = S.P[P_RMEM_RULE] == RMEM_CLASSIC
    if not classic and S.tf[f, TF_RMEM] == 0:
        # 972ca7a3bc9a (6.17): "Do nothing if our queues are empty", before PruneCalled
        return False
    S.misc[M_TCPL + TL_PRUNE] += 1
    # tcp_prune_queue: tcp_clamp_window when rmem >= rcvbuf (up to 6.16, 7.0+), when the skb
    # does not fit (6.17-6.19); an unlocked buffer moves to rmem, then the skb may fit
    if not classic or S.tf[f, TF_RMEM] >= sk_rcvbuf(S, f, s):
        tcp_clamp_window(S, c, f, s, t)
        if tcp_can_ingest(S, s, h):
            return True
    d = tcp_collapse_queues(S, f, s)
    if d > 0:
        charge(S, c, level_of(S, c), Y_COLLAPSE, d, 0)
        S.misc[M_XCOST] += d
    if tcp_can_ingest(S, s, h):
        return True
    tcp_prune_ofo_queue(S, f, s, h, t)
    if tcp_can_ingest(S, s, h):
        return True
    S.misc[M_TCPL + TL_RCVPRUNED] += 1
    return False


# ------------------------------------ Receive-buffer autotuning (tcp_rcv_space_adjust, DRS)
# net/ipv4/tcp_input.c, per host.kernel (P_DRS, layout.py DRS_*). A TCP socket starts at
# sk_rcvbuf = tcp_rmem[1] (tcp_init_sock; the [[app]]'s resolved rcvbuf) unless the program set
# SO_RCVBUF (SOCK_RCVBUF_LOCK: [[app]] rcvbuf-lock). Each connection is its own socket: its
# sk_rcvbuf is tf[f, TF_RCVBUF] (sk_rcvbuf() below), which every TCP rule reads (the window,
# tcp_can_ingest, pruning, the backlog limit).
# - tcp_init_buffer_space, once established: rcvq_space.space = the initial rcv_wnd (up to 4.19;
#   tcp_select_initial_window: tcp_full_space capped at TCP_DEFAULT_INIT_RCVWND = 10 segments of
#   the mss it was given), min(rcv_wnd, TCP_INIT_CWND x advmss) from 4.20 (041a14d26715 "tcp:
#   start receiver buffer autotuning sooner"; min3 with rcv_ssthresh from 5.10, equal here);
#   up to 4.19 also tcp_fixup_rcvbuf: sk_rcvbuf >= 2 x SKB_TRUESIZE(advmss + MAX_TCP_HEADER) x
#   tcp_default_init_rwnd (20), x 4 with tcp_moderate_rcvbuf, capped at tcp_rmem[2] (removed by
#   a337531b942b "tcp: up initial rmem to 128KB and SYN rwin to around 64KB", 4.20). A passive
#   flow's advmss loses its 12 timestamp bytes only after this until 6.16 (cd171461b90a).
# - tcp_rcv_rtt_measure (tcp_event_data_recv, per in-order data skb): the time rcv_nxt takes to
#   pass rcv_nxt + rcv_wnd as it stood when the measurement started; tcp_rcv_rtt_update keeps
#   the minimum of those samples (rcv_rtt_est.rtt_us << 3). The timestamp-based
#   tcp_rcv_rtt_measure_ts is not run: the frames table holds no TSval/TSecr, and the replayed
#   TSecr values echo the capture host's clock and its per-connection tsoffset, which the
#   replaying host does not share: tcp_rtt_tsopt_us's delta is then beyond INT_MAX / 1000 for all
#   but 2^31 / 1000 of the 2^32 values and the sample is dropped (returns -1).
# - tcp_rcv_space_adjust, after each skb tcp_recvmsg copies: nothing until one RTT estimate
#   (rtt >> 3) has passed since rcvq_space.time; then copied = copied_seq - rcvq_space.seq
#   (6.16+, 2da35e4b4df9's series: less rcv_nxt - copied_seq still queued); if it exceeds
#   rcvq_space.space the buffer may grow (tcp_rcvbuf_grow_rule) and space = copied; either way
#   a new measurement starts (seq = copied_seq, time = now; 6.18+: the cached tcp_mstamp of the
#   last segment processed, not refreshed).
# - tcp_rcvbuf_grow also runs after an out-of-order skb is queued (6.16+, "tcp: adjust rcvbuf in
#   presence of reorders"), with space unchanged and the out-of-order span added.
# - tcp_clamp_window (tcp_prune_queue) sets sk_rcvbuf = min(sk_rmem_alloc, tcp_rmem[2]) when it
#   is below tcp_rmem[2] and not locked: when rmem >= rcvbuf (up to 6.16, 7.0+; with one skb of
#   overshoot allowed that grows the buffer, and the skb then fits), or whenever the skb does not
#   fit (6.17-6.19, 1d2fbaad7cd8: that shrinks it; 972ca7a3bc9a returns first when rmem is 0).
# tcp_win_from_space / tcp_space_from_win use half the memory as window, as tcp_select_window
# here does (tcp_adv_win_scale = 1; the default scaling_ratio, not the one tcp_measure_rcv_mss
# measures from len / truesize).
SKB_SHINFO = 320  # SKB_DATA_ALIGN(sizeof(struct skb_shared_info)) on x86_64


@njit(cache=True, inline="always")
def sk_rcvbuf(S, f, s):
    """sk_rcvbuf of flow f's socket: its own once set, else the [[app]]'s (tcp_init_sock)."""
    v = S.tf[f, TF_RCVBUF]
    return v if v > 0 else S.ss[s, SS_RCVBUF]


@njit(cache=True, inline="always")
def tcp_clock(S, t):
    """tp->tcp_mstamp in the unit rcv_rtt_est and rcvq_space keep: us (4.13+, tcp_clock_us)
    or jiffies (tcp_time_stamp before)."""
    if S.P[P_DRS] == DRS_STEP_J:
        return jiffies(S, t)
    return t // 1000


@njit(cache=True)
def tcp_set_rcvbuf(S, c, f, s, v, why, t):
    """WRITE_ONCE(sk->sk_rcvbuf, v) for flow f, recorded as an events.parquet `rcvbuf` row."""
    S.tf[f, TF_RCVBUF] = v
    emit_event(S, t, -1, c, s, E_RCVBUF, v, why)


@njit(cache=True, inline="always")
def tcp_rcvmem(S, adv):
    """tcp_rcv_space_adjust up to 6.5: rcvmem = SKB_TRUESIZE(advmss + MAX_TCP_HEADER), raised
    by 128 until tcp_win_from_space(rcvmem) (space - space >> 1) holds one advmss."""
    m = adv + S.P[P_MAX_TCP_HDR] + SKB_STRUCT + SKB_SHINFO
    while m - (m >> 1) < adv:
        m += 128
    return m


@njit(cache=True)
def tcp_init_buffer_space(S, c, f, s, t):
    """tcp_init_buffer_space when flow f is established (once): rcvq_space and, up to 4.19,
    tcp_fixup_rcvbuf."""
    if S.tf[f, TF_RQ_T] >= 0:
        return
    adv = S.tf[f, TF_ADVMSS]
    ts12 = 12 if S.tf[f, TF_TS] != 0 else 0
    passive = S.tf[f, TF_PASSIVE] != 0
    rcvbuf = sk_rcvbuf(S, f, s)
    full = rcvbuf - (rcvbuf >> 1)  # tcp_full_space at the SYN
    if S.P[P_TCP_FIXUP] != 0:
        # tcp_select_initial_window: mss = advmss less the timestamp only when known (the
        # listener's tcp_openreq_init_rwin; the SYN has no ts_recent_stamp yet)
        mss0 = adv if passive else adv + ts12
        space = min(full, 10 * mss0)
        if S.ss[s, SS_AUTOTUNE] != 0:
            m = adv + ts12 if passive else adv  # a passive advmss keeps the 12 bytes here
            rwnd = 20 if m <= 1460 else max(1460 * 20 // m, 2)  # tcp_default_init_rwnd
            rcvmem = 2 * (m + S.P[P_MAX_TCP_HDR] + SKB_STRUCT + SKB_SHINFO) * rwnd
            if S.P[P_MODRCV] != 0:
                rcvmem <<= 2
            if rcvbuf < rcvmem:
                tcp_set_rcvbuf(S, c, f, s, min(rcvmem, S.P[P_TCP_RMEM2]), D_FIXUP, t)
    else:
        m = adv + ts12 if (passive and S.P[P_DRS] < DRS_SPACE) else adv
        space = min(min(full, 65535), 10 * m)
    S.tf[f, TF_RQ_SPACE] = space
    S.tf[f, TF_RQ_SEQ] = S.tf[f, TF_COPIED]
    S.tf[f, TF_RQ_T] = tcp_clock(S, t)
    S.tf[f, TF_MSTAMP] = tcp_clock(S, t)


@njit(cache=True)
def tcp_rcv_rtt_measure(S, f, t):
    """tcp_rcv_rtt_measure for an in-order data skb just queued (rcv_nxt already past it):
    a sample when rcv_nxt reached the sequence one window ahead of where the measurement
    started; tcp_rcv_rtt_update with win_dep keeps the minimum (0 samples count 1)."""
    if S.tf[f, TF_WND] < 0:
        return  # no window advertised yet: no measurement to start
    now = tcp_clock(S, t)
    if S.tf[f, TF_RTT_T] >= 0:
        if seqd(S.tf[f, TF_NXT], S.tf[f, TF_RTT_SEQ]) < 0:
            return
        d = now - S.tf[f, TF_RTT_T]
        if d <= 0:
            d = 1
        m = d << 3
        if S.tf[f, TF_RTT] == 0 or m < S.tf[f, TF_RTT]:
            S.tf[f, TF_RTT] = m
    S.tf[f, TF_RTT_SEQ] = (S.tf[f, TF_NXT] + S.tf[f, TF_WND]) & 0xFFFFFFFF
    S.tf[f, TF_RTT_T] = now


@njit(cache=True)
def tcp_ooo_span(S, f):
    """TCP_SKB_CB(tp->ooo_last_skb)->end_seq - tp->rcv_nxt (0: empty out-of-order queue)."""
    k = S.tf[f, TF_OFO]
    if k < 0:
        return 0
    while S.tofo[k] >= 0:
        k = S.tofo[k]
    return seqd(tcp_end_seq(S, k), S.tf[f, TF_NXT])


@njit(cache=True)
def tcp_rcvbuf_grow_rule(S, c, f, s, newval, why, t):
    """The buffer growth of tcp_rcv_space_adjust (up to 6.15) / tcp_rcvbuf_grow (6.16+) with
    copied = newval against rcvq_space.space; sets space = newval. Integer arithmetic as the
    kernel's (do_div, div_u64)."""
    old = S.tf[f, TF_RQ_SPACE]
    S.tf[f, TF_RQ_SPACE] = newval
    if S.P[P_MODRCV] == 0 or S.ss[s, SS_AUTOTUNE] == 0:
        return
    drs = S.P[P_DRS]
    adv = S.tf[f, TF_ADVMSS]
    cap = S.P[P_TCP_RMEM2]
    if drs <= DRS_STEP:
        # "If rate increased by 25 %, assume slow start, rcvwin = 3 * copied; if rate increased
        # by 50 %, assume sender can use 2x growth, rcvwin = 4 * copied"
        rcvwin = (newval << 1) + 16 * adv
        if newval >= old + (old >> 2):
            if newval >= old + (old >> 1):
                rcvwin <<= 1
            else:
                rcvwin += rcvwin >> 1
        rcvbuf = min(rcvwin // adv * tcp_rcvmem(S, adv), cap)
    elif drs <= DRS_GROW_WIN:
        # minimal window to cope with losses + 16 segments, plus "Accommodate for sender rate
        # increase (eg. slow start)": grow = rcvwin * (copied - space) / space, twice
        rcvwin = (newval << 1) + 16 * adv
        grow = rcvwin * (newval - old) // old if old > 0 else 0
        rcvwin += grow << 1
        if drs == DRS_GROW_MEM:
            rcvbuf = min(rcvwin // adv * tcp_rcvmem(S, adv), cap)
        else:
            rcvbuf = min(rcvwin << 1, cap)  # tcp_space_from_win
    else:
        rcvwin = newval << 1  # "DRS is always one RTT late"
        if drs == DRS_SPACE_GROW and old > 0:
            rcvwin += (rcvwin * (newval - old) // old) << 1
        elif drs == DRS_LOW_RTT:
            rtt_us = S.tf[f, TF_RTT] >> 3
            low = S.P[P_LOW_RTT]
            if rtt_us < low:
                rcvwin += rcvwin * rtt_us // low  # small RTT: grow by rcvwin * rtt / threshold
            elif old > 0:
                rcvwin += (rcvwin << 1) * (newval - old) // old
        rcvwin += tcp_ooo_span(S, f)
        rcvbuf = min(rcvwin << 1, cap)  # tcp_space_from_win
    if rcvbuf > sk_rcvbuf(S, f, s):
        tcp_set_rcvbuf(S, c, f, s, rcvbuf, why, t)


@njit(cache=True)
def tcp_rcv_space_adjust(S, c, f, s, h, t):
    """tcp_recvmsg copied data skb h of flow f at t: copied_seq moves to its end (a partly old
    skb adds only its new bytes; a connection's skbs are read in sequence order), then
    tcp_rcv_space_adjust."""
    e = tcp_end_seq(S, h)
    if seqd(e, S.tf[f, TF_COPIED]) > 0:
        S.tf[f, TF_COPIED] = e
    if S.tf[f, TF_RQ_T] < 0 or S.tf[f, TF_RTT] == 0:
        return  # no receiver RTT estimate yet
    drs = S.P[P_DRS]
    now = S.tf[f, TF_MSTAMP] if drs >= DRS_SPACE_GROW else tcp_clock(S, t)
    if now - S.tf[f, TF_RQ_T] < (S.tf[f, TF_RTT] >> 3):
        return
    copied = seqd(S.tf[f, TF_COPIED], S.tf[f, TF_RQ_SEQ])
    if drs >= DRS_SPACE:
        copied -= seqd(S.tf[f, TF_NXT], S.tf[f, TF_COPIED])  # inq: still in the receive queue
    if copied > S.tf[f, TF_RQ_SPACE]:
        tcp_rcvbuf_grow_rule(S, c, f, s, copied, D_DRS, t)
    S.tf[f, TF_RQ_SEQ] = S.tf[f, TF_COPIED]
    S.tf[f, TF_RQ_T] = now


@njit(cache=True)
def tcp_clamp_window(S, c, f, s, t):
    """tcp_clamp_window from tcp_prune_queue: sk_rcvbuf = min(sk_rmem_alloc, tcp_rmem[2]) when
    below tcp_rmem[2] and not locked (global TCP memory taken as below tcp_mem[0])."""
    rb = sk_rcvbuf(S, f, s)
    if S.ss[s, SS_AUTOTUNE] != 0 and rb < S.P[P_TCP_RMEM2]:
        nv = min(S.tf[f, TF_RMEM], S.P[P_TCP_RMEM2])
        if nv != rb:
            tcp_set_rcvbuf(S, c, f, s, nv, D_CLAMP, t)


@njit(cache=True)
def tcp_ofo_rcvbuf_grow(S, c, f, s, t):
    """The end of tcp_data_queue_ofo (6.16+): tcp_rcvbuf_grow with rcvq_space.space unchanged,
    so the out-of-order span is provisioned."""
    if S.P[P_DRS] >= DRS_SPACE and S.tf[f, TF_RQ_T] >= 0:
        tcp_rcvbuf_grow_rule(S, c, f, s, S.tf[f, TF_RQ_SPACE], D_DRS_OFO, t)


# --------------------------------------------- Listen sockets (tcp_conn_request, tcp_check_req)
# A [[app]] with listen = true is a listener: a SYN in the trace goes through tcp_conn_request
# (a request sock in the SYN queue, or a cookie when the queue is full), the handshake's last
# ACK through tcp_check_req / cookie_v4_check to a child socket on the accept queue, which the
# app's accept() drains. A flow whose SYN is not in the trace is taken as an established
# connection (its data goes to the app's socket as before). Not modelled: TIME_WAIT recycling
# (tcp_tw_isn), the SYN-ACK rate limit for retransmitted SYNs (tcp_oow_rate_limited), the
# halving of tcp_synack_retries for old requests in a half-full SYN queue (reqsk_timer_handler's
# young/old rule), TCP_DEFER_ACCEPT, Fast Open; the child shares the listener's receive queue.
SEC = 1_000_000_000
SYNCOOKIE_VALID = 120 * SEC  # TCP_SYNCOOKIE_VALID: cookies are checked for 2 min after an overflow


@njit(cache=True, inline="always")
def tcp_req_fire(S, k):
    """When a request's k-th timer runs, from its creation: TCP_TIMEOUT_INIT (1 s) doubling per
    timeout, each capped at TCP_RTO_MAX (120 s) (reqsk_timeout)."""
    t = 0
    for i in range(k):
        t += min(1 << i, 120) * SEC
    return t


@njit(cache=True, inline="always")
def tcp_req_retrans(S, t0, te):
    """SYN-ACK retransmissions of a request made at t0, by te: reqsk_timer_handler runs at
    t0 + 1, 3, 7, ... s (TCP_TIMEOUT_INIT doubling) and resends while num_timeout is below
    tcp_synack_retries."""
    n = 0
    for k in range(1, S.P[P_SYNACK_RETRIES] + 1):
        if t0 + tcp_req_fire(S, k) <= te:
            n += 1
    return n


@njit(cache=True)
def tcp_req_expire(S, t):
    """Requests whose timer gave up by t (after tcp_synack_retries resends, at
    t0 + 2^(retries+1) - 1 s) leave the SYN queue (inet_csk_reqsk_queue_drop_and_put), in the
    order they were made: the FIFO rqf holds (flow, t0, socket); entries of requests that
    completed or were reset are skipped."""
    life = tcp_req_fire(S, S.P[P_SYNACK_RETRIES] + 1)
    i = S.misc[M_RQH]
    while i < S.misc[M_RQT]:
        f = S.rqf[3 * i]
        t0 = S.rqf[3 * i + 1]
        if S.tf[f, TF_REQ] == RQ_SYNRECV and S.tf[f, TF_REQ_T] == t0:
            if t0 + life > t:
                break
            s = S.rqf[3 * i + 2]
            S.ss[s, SS_SYNQ] -= 1
            S.tf[f, TF_REQ] = RQ_GONE
            S.misc[M_TCPL + TL_SYNRETR] += S.P[P_SYNACK_RETRIES]
        i += 1
    S.misc[M_RQH] = i


@njit(cache=True)
def tcp_req_done(S, f, s, t, state):
    """The request of flow f leaves the SYN queue at t (a child made, or reset), with the
    SYN-ACK retransmissions its timer sent until then."""
    S.ss[s, SS_SYNQ] -= 1
    S.misc[M_TCPL + TL_SYNRETR] += tcp_req_retrans(S, S.tf[f, TF_REQ_T], t)
    S.tf[f, TF_REQ] = state


@njit(cache=True)
def tcp_conn_request(S, c, h, s, f, t):
    """tcp_conn_request for SYN h on listener s (tcp_input.c): cookies when the SYN queue is full
    (inet_csk_reqsk_queue_is_full: qlen > sk_max_ack_backlog from 6.13, >= before) or with
    tcp_syncookies = 2 (tcp_syn_flood_action: TCPReqQFullDoCookies; without cookies
    TCPReqQFullDrop and a drop); a drop when the accept queue is full (sk_acceptq_is_full:
    sk_ack_backlog > sk_max_ack_backlog: ListenOverflows); without cookies the last quarter of
    tcp_max_syn_backlog is kept for proven peers (none is taken as proven); every drop counts
    ListenDrops (tcp_listendrop). Otherwise a request sock joins the SYN queue, or a cookie is
    made (SyncookiesSent, tcp_synq_overflow), and a SYN-ACK leaves (Tcp OutSegs, in
    tcp_make_synack). The SYN itself is consumed either way (tcp_rcv_state_process's
    consume_skb). Returns the CPU ns, charged here."""
    sc = S.P[P_SYNCOOKIES]
    q = S.ss[s, SS_SYNQ]
    mx = S.ss[s, SS_MAXBL]
    full = q > mx if S.P[P_REQQ_GT] != 0 else q >= mx
    want = False
    ok = True
    if sc == 2 or full:
        if sc != 0:
            want = True
            S.misc[M_TCPL + TL_QF_COOKIE] += 1
        else:
            S.misc[M_TCPL + TL_QF_DROP] += 1
            ok = False
    if ok and S.ss[s, SS_ACCQ] > mx:
        S.misc[M_TCPL + TL_OVF] += 1
        ok = False
    ms = S.P[P_MAXSYN]
    if ok and not want and sc == 0 and ms - q < (ms >> 2):
        ok = False  # pr_drop_req: the last quarter of the backlog is for proven peers
    consume(S, h, t)
    if not ok:
        S.misc[M_TCPL + TL_DROPS] += 1
        S.tf[f, TF_REQ] = RQ_DROPPED
        return 0
    tcp_ctrl_seq(S, h)  # tcp_openreq_init: rcv_nxt = ISN + 1 (the child inherits it)
    S.tf[f, TF_QUICK] = -2  # the child's first data starts quickack (tcp_rcv_ack)
    S.tf[f, TF_REQ_T] = t
    if want:
        # cookie_init_sequence: tcp_synq_overflow, SyncookiesSent; no state is kept
        S.misc[M_TCPL + TL_CK_SENT] += 1
        S.ss[s, SS_OVF_T] = t
        S.tf[f, TF_REQ] = RQ_COOKIE
    else:
        # inet_csk_reqsk_queue_hash_add: the request sock in the SYN queue, its timer armed
        S.ss[s, SS_SYNQ] = q + 1
        i = S.misc[M_RQT]
        S.rqf[3 * i] = f
        S.rqf[3 * i + 1] = t
        S.rqf[3 * i + 2] = s
        S.misc[M_RQT] = i + 1
        S.tf[f, TF_REQ] = RQ_SYNRECV
    S.misc[M_TCPL + TL_SYNACK] += 1
    d = S.cbase[C_CONNREQ]
    charge(S, c, level_of(S, c), Y_CONNREQ, d, 1)
    return d


@njit(cache=True)
def tcp_child(S, c, h, s, f, t):
    """A child socket for flow f's handshake (tcp_v4_syn_recv_sock, inet_csk_reqsk_queue_add:
    sk_ack_backlog + 1), then tcp_child_process's sk_data_ready of the listener wakes an
    accept()er. Returns the CPU ns, charged here."""
    S.ss[s, SS_ACCQ] += 1
    S.tf[f, TF_REQ] = RQ_EST
    S.tf[f, TF_PASSIVE] = 1
    tcp_init_buffer_space(S, c, f, s, t)  # tcp_rcv_state_process(SYN_RECV): tcp_init_transfer
    lv = level_of(S, c)
    d = S.cbase[C_CHILD]
    charge(S, c, lv, Y_CHILD, d, 1)
    dw, yw = sock_wake(S, c, s, t + d)
    if dw > 0:
        charge(S, c, lv, yw, dw, 1)
    return d + dw


@njit(cache=True)
def tcp_listen_drop(S, c, h, t, reason, rst):
    """Segment h ends at a listener: dropped with `reason` (kfree_skb_reason), after a RST when
    `rst` (tcp_v4_send_reset: Tcp OutRsts, OutSegs). Returns the CPU ns, charged here."""
    lv = level_of(S, c)
    d = S.cbase[C_DROP]
    charge(S, c, lv, Y_DROP_L4, d, 1)
    if rst:
        S.misc[M_TCPL + TL_RST] += 1
        charge(S, c, lv, Y_ICMP_SEND, S.cbase[C_ICMP], 1)
        d += S.cbase[C_ICMP]
    S.ss[S.pk[h, F_SOCK], SS_DROPS] += 1
    drop(S, h, S_L4, reason, t)
    return d


@njit(cache=True)
def tcp_listen_rcv(S, c, h, s, t):
    """A TCP segment for listener s (tcp_v4_rcv's TCP_NEW_SYN_RECV and TCP_LISTEN branches).
    Returns (1, ns) when the segment ended here, (0, ns) when it goes on to the established
    path (an established child, or data on the handshake's last ACK after the child was made);
    ns is CPU already charged."""
    f = S.pk[h, F_FLOWK]
    fl = S.pk[h, F_FLAGS]
    syn = (fl & TCP_SYN) != 0
    ack = (fl & TCP_ACK) != 0
    rst = (fl & TCP_RST) != 0
    tcp_req_expire(S, t)
    st = S.tf[f, TF_REQ]
    if st == RQ_EST or (st == RQ_NONE and not syn):
        return 0, 0
    mx = S.ss[s, SS_MAXBL]
    if st == RQ_SYNRECV:
        # tcp_check_req on the request sock (tcp_minisocks.c)
        if syn and not ack and not rst and S.pk[h, F_SEQ] == ((S.tf[f, TF_NXT] - 1) & 0xFFFFFFFF):
            # the SYN again: inet_rtx_syn_ack (tcp_rtx_synack: RetransSegs, TCPSynRetrans,
            # OutSegs), and the SYN freed (NOT_SPECIFIED)
            S.misc[M_TCPL + TL_SYNRETR] += 1
            charge(S, c, level_of(S, c), Y_TCP_ACK, S.cbase[C_TCPACK], 1)
            return 1, S.cbase[C_TCPACK] + tcp_listen_drop(S, c, h, t, R_NOTSPEC, False)
        if rst or syn:
            # embryonic_reset: the request dropped (EmbryonicRsts), a RST for a SYN
            tcp_req_done(S, f, s, t, RQ_GONE)
            S.misc[M_TCPL + TL_EMBRST] += 1
            return 1, tcp_listen_drop(S, c, h, t, R_NOTSPEC, not rst)
        if not ack:
            return 1, tcp_listen_drop(S, c, h, t, R_NOTSPEC, False)
        if S.ss[s, SS_ACCQ] > mx:
            # tcp_v4_syn_recv_sock: sk_acceptq_is_full -> ListenOverflows, ListenDrops; the
            # request stays (inet_rsk(req)->acked) for the ACK's retransmission, or with
            # tcp_abort_on_overflow goes to embryonic_reset: a RST, the request dropped
            # (EmbryonicRsts)
            S.misc[M_TCPL + TL_OVF] += 1
            S.misc[M_TCPL + TL_DROPS] += 1
            ab = S.P[P_ABORT_OVF] != 0
            if ab:
                tcp_req_done(S, f, s, t, RQ_GONE)
                S.misc[M_TCPL + TL_EMBRST] += 1
            return 1, tcp_listen_drop(S, c, h, t, S.P[P_R_LOVF], ab)
        tcp_req_done(S, f, s, t, RQ_EST)
        d = tcp_child(S, c, h, s, f, t)
        if S.pk[h, F_KIND] == K_TCP_CTRL:
            consume(S, h, t + d)  # tcp_child_process: the ACK completes the handshake
            return 1, d
        return 0, d
    # the listener itself (tcp_v4_do_rcv, TCP_LISTEN)
    if not syn:
        if S.P[P_SYNCOOKIES] != 0 and ack and not rst and S.ss[s, SS_OVF_T] >= 0 \
                and t - S.ss[s, SS_OVF_T] <= SYNCOOKIE_VALID:
            # cookie_v4_check within TCP_SYNCOOKIE_VALID of an overflow (tcp_synq_no_recent_
            # overflow false): the ACK of a cookie SYN-ACK validates, any other fails
            if st != RQ_COOKIE:
                S.misc[M_TCPL + TL_CK_FAIL] += 1
            else:
                S.misc[M_TCPL + TL_CK_RECV] += 1
                if S.ss[s, SS_ACCQ] > mx:
                    S.misc[M_TCPL + TL_OVF] += 1
                    S.misc[M_TCPL + TL_DROPS] += 1
                    S.tf[f, TF_REQ] = RQ_DROPPED
                    return 1, tcp_listen_drop(S, c, h, t, S.P[P_R_CKOVF], False)
                d = tcp_child(S, c, h, s, f, t)
                if S.pk[h, F_KIND] == K_TCP_CTRL:
                    consume(S, h, t + d)
                    return 1, d
                return 0, d
        # tcp_rcv_state_process(TCP_LISTEN): an ACK gets a RST (TCP_FLAGS), a RST is dropped
        if rst:
            return 1, tcp_listen_drop(S, c, h, t, R_TCP_RESET, False)
        return 1, tcp_listen_drop(S, c, h, t, R_TCP_FLAGS, ack)
    if ack:
        return 1, tcp_listen_drop(S, c, h, t, R_TCP_FLAGS, True)  # a SYN-ACK to a listener
    if (fl & TCP_FIN) != 0 or rst:
        return 1, tcp_listen_drop(S, c, h, t, R_TCP_FLAGS, False)
    return 1, tcp_conn_request(S, c, h, s, f, t)


@njit(cache=True)
def tcp_req_flush(S):
    """Requests still in a SYN queue when the trace ends: their timers run after it, as
    reassembly and delayed-ACK timers do, by reqsk_timer_handler's rule: while the queue is more
    than half full (qlen * 2 > max(8, sk_max_ack_backlog)), each young request (one whose timer
    has not run yet) missing from twice the queue length takes one retry off
    tcp_synack_retries, down to 2 ("reserve half of room for young embrions"); a request whose
    timeouts reached the retries expires, else its SYN-ACK is resent (TCPSynRetrans). Timers run
    in time order (ties: in the order the requests were made). During the trace the requests'
    timers are taken without that rule (exact for traces under 7 s, when the first request could
    expire)."""
    n = S.pk.shape[0]
    t_end = S.pk[n - 1, F_T_VIS] if n > 0 else 0
    tcp_req_expire(S, t_end)
    R = S.P[P_SYNACK_RETRIES]
    h0 = S.misc[M_RQH]
    m = 0
    for i in range(h0, S.misc[M_RQT]):
        f = S.rqf[3 * i]
        if S.tf[f, TF_REQ] == RQ_SYNRECV and S.tf[f, TF_REQ_T] == S.rqf[3 * i + 1]:
            m += 1
    if m == 0:
        return
    live = np.empty(m, np.int64)
    fired = np.zeros(m, np.int64)
    young = np.zeros(S.ss.shape[0], np.int64)
    j = 0
    for i in range(h0, S.misc[M_RQT]):
        f = S.rqf[3 * i]
        t0 = S.rqf[3 * i + 1]
        if S.tf[f, TF_REQ] == RQ_SYNRECV and S.tf[f, TF_REQ_T] == t0:
            live[j] = i
            k = 0
            while k < R and t0 + tcp_req_fire(S, k + 1) <= t_end:
                k += 1
            fired[j] = k
            S.misc[M_TCPL + TL_SYNRETR] += k  # resent during the trace
            if k == 0:
                young[S.rqf[3 * i + 2]] += 1
            j += 1
    # the timer runs still to come: run k (k = timeouts so far) of request j at t0 + fire(k + 1)
    ne = 0
    for j in range(m):
        ne += R + 1 - fired[j]
    et = np.empty(ne, np.int64)
    ej = np.empty(ne, np.int64)
    ek = np.empty(ne, np.int64)
    e = 0
    for j in range(m):
        t0 = S.rqf[3 * live[j] + 1]
        for k in range(fired[j], R + 1):
            et[e] = t0 + tcp_req_fire(S, k + 1)
            ej[e] = j
            ek[e] = k
            e += 1
    # by time; the events were made in creation order, so a stable sort keeps ties in it
    order = np.argsort(et, kind="mergesort")
    done = np.zeros(m, np.bool_)
    for e in order:
        j = ej[e]
        if done[j]:
            continue
        k = ek[e]
        i = live[j]
        f = S.rqf[3 * i]
        s = S.rqf[3 * i + 2]
        q = S.ss[s, SS_SYNQ]
        mr = R
        if (q << 1) > max(8, S.ss[s, SS_MAXBL]):
            y = young[s] << 1
            while mr > 2:
                if q < y:
                    break
                mr -= 1
                y <<= 1
        if k >= mr:
            done[j] = True
            S.ss[s, SS_SYNQ] = q - 1
            S.tf[f, TF_REQ] = RQ_GONE
            if k == 0:
                young[s] -= 1
        else:
            S.misc[M_TCPL + TL_SYNRETR] += 1
            if k == 0:
                young[s] -= 1
    S.misc[M_RQH] = S.misc[M_RQT]


@njit(cache=True, inline="always")
def tcp_listen_pending(S, h):
    """At cost time: does segment h of a listener's flow take tcp_listen_rcv's handshake path
    instead of tcp_rcv_ack? (A SYN, or a segment while the handshake is not complete; data on
    the handshake's last ACK that will make a child is ACKed as the child's first data.)"""
    s = S.pk[h, F_SOCK]
    if s < 0 or S.ss[s, SS_LISTEN] == 0:
        return False
    f = S.pk[h, F_FLOWK]
    st = S.tf[f, TF_REQ]
    if (S.pk[h, F_FLAGS] & TCP_SYN) != 0:
        return st != RQ_EST
    if st == RQ_NONE or st == RQ_EST:
        return False
    makes_child = (st == RQ_SYNRECV or st == RQ_COOKIE) and S.ss[s, SS_ACCQ] <= S.ss[s, SS_MAXBL]
    return not (S.pk[h, F_KIND] == K_TCP and makes_child)


@njit(cache=True)
def tcp_cleanup_rbuf(S, c, k, h, t):
    """tcp_recvmsg's tcp_cleanup_rbuf after reading (last skb h of flow f): an ACK now when the
    window the read opened is at least twice the one advertised (__tcp_cleanup_rbuf: with
    2 * rcv_window_now <= window_clamp, __tcp_select_window's new window >= 2 * rcv_window_now),
    or when a delayed ACK is pending with more than one rcv_mss unacknowledged. window_clamp is
    taken as the full space (sk_rcvbuf / 2, as tcp_select_window). Returns the ACK's ns (0: none)."""
    if S.P[P_TCP_ACKS] == 0 or S.pk[h, F_KIND] != K_TCP:
        return 0
    f = S.pk[h, F_FLOWK]
    s = S.pk[h, F_SOCK]
    if S.tf[f, TF_DELACK] >= 0 and t >= S.tf[f, TF_DELACK]:
        # the delayed-ACK timer fired before this read (as tcp_rcv_ack finds it)
        S.misc[M_TCPIN + 4] += 1
        S.misc[M_TCPIN + 5] += 1
        S.tf[f, TF_UNACK] = 0
        S.tf[f, TF_DELACK] = -1
        S.tf[f, TF_WND] = tcp_select_window(S, f, s)
        S.tf[f, TF_WUP] = S.tf[f, TF_NXT]
    if S.tf[f, TF_WND] < 0:
        return 0
    now = S.tf[f, TF_DELACK] >= 0 and seqd(S.tf[f, TF_NXT], S.tf[f, TF_WUP]) > S.tf[f, TF_MSS]
    rwn = tcp_receive_window(S, f)
    rb = sk_rcvbuf(S, f, s)
    full = rb >> 1
    nw = 0
    if not now and 2 * rwn <= full:
        free = (rb - S.tf[f, TF_RMEM]) >> 1
        if free < 0:
            free = 0
        if free < (full >> 1) and (free < (full >> 4) or free < S.tf[f, TF_MSS]):
            free = 0
        nw = free
        if nw > 0 and nw >= 2 * rwn:
            now = True
    if not now:
        return 0
    # tcp_send_ack: Tcp OutSegs; the ACK advertises rcv_nxt and the new window; a pending
    # delayed ACK is cancelled (inet_csk_clear_xmit_timer in tcp_event_ack_sent)
    S.misc[M_TCPL + TL_RBUF_ACK] += 1
    if S.P[P_DRS] >= DRS_SPACE_GROW:
        S.tf[f, TF_MSTAMP] = tcp_clock(S, t)  # 6.18: tcp_mstamp_refresh before tcp_send_ack
    S.tf[f, TF_WND] = tcp_select_window(S, f, s)
    S.tf[f, TF_WUP] = S.tf[f, TF_NXT]
    S.tf[f, TF_UNACK] = 0
    S.tf[f, TF_DELACK] = -1
    if S.tf[f, TF_QUICK] > 0:
        S.tf[f, TF_QUICK] -= 1
    d = S.cbase[C_TCPACK]
    charge(S, c, 0, Y_RBUF_ACK, d, 1)
    return d



@njit(cache=True)
def l4_done(S, c, h, t):
    """End of local delivery + protocol handler for skb h: outcome and socket enqueue.
    Returns the cost of a follow-up (wake-up of the reader, or freeing a dropped skb) and its slot
    (-2: already charged). A TCP segment for a listener goes through tcp_listen_rcv first; the
    collapsing tcp_prune_queue did on the way is added to the follow-up."""
    kd = S.pk[h, F_KIND]
    if kd != K_TCP and kd != K_TCP_CTRL:
        return l4_done_est(S, c, h, t)  # no listener, no pruning: the UDP flood's path
    S.misc[M_XCOST] = 0
    pre = 0
    if S.po[h, O_OUTC] == -1:
        s = S.pk[h, F_SOCK]
        if s >= 0 and S.ss[s, SS_LISTEN] != 0:
            st, pre = tcp_listen_rcv(S, c, h, s, t)
            if st != 0:
                S.misc[M_IPIN + (4)] += 1  # Ip InDelivers
                S.misc[M_TCPIN + (0)] += 1  # Tcp InSegs
                return pre, -2
    d, slot = l4_done_est(S, c, h, t)
    extra = pre + S.misc[M_XCOST]
    if extra == 0:
        return d, slot
    if d > 0 and slot >= 0:
        charge(S, c, level_of(S, c), slot, d, 1)
    return extra + d, -2


@njit(cache=True)
def l4_done_est(S, c, h, t):
    """l4_done for everything but a listener's handshake."""
    if S.po[h, O_OUTC] != -1:
        return 0, -1  # a fragment that ended in ip_defrag (held, duplicate, dropped)
    kd = S.pk[h, F_KIND]
    if kd == K_ARP:
        consume(S, h, t)  # the inner ARP of a decapsulated frame, in arp_rcv
        return 0, -1
    if kd == K_NOPROTO:
        drop(S, h, S_LOCAL, R_NOPROTO, S.se[h, S_LOCAL])
        S.misc[M_IPIN + (3)] += 1
        if S.pk[h, F_IPEER] >= 0:
            # ip_protocol_deliver_rcu: InUnknownProtos, then icmp_send(ICMP_DEST_UNREACH,
            # ICMP_PROT_UNREACH) before kfree_skb_reason(IP_NOPROTO); the caller adds the cost
            # to the local stage
            return icmp_prot_unreach(S, c, h, t), -2
        return 0, -1
    S.misc[M_IPIN + (4)] += 1  # Ip InDelivers
    if kd == K_IGMP:
        consume(S, h, t)  # igmp_rcv ends in consume_skb for what it takes
        return 0, -1
    if kd == K_BADTCP:
        # tcp_v4_rcv: TCP_MIB_INSEGS ("Count it even if it's bad"), then th->doff < 5 ->
        # SKB_DROP_REASON_PKT_TOO_SMALL, bad_packet: TCP_MIB_INERRS; no RST
        S.misc[M_TCPIN + (0)] += 1
        drop(S, h, S_L4, R_TOOSMALL, t)
        return 0, -1
    if kd == K_ICMP_PING:
        # icmp_rcv: icmp_pointers[ICMP_ECHOREPLY].handler = ping_rcv (icmpv6_rcv likewise):
        # ping_lookup finds no ping socket -> SKB_DROP_REASON_NO_SOCKET -> kfree_skb_reason
        # (5.19+; a bool handler and kfree_skb before). InMsgs and the per-type count stay
        # (ICMPMSGIN_INC_STATS came first); no InErrors
        drop(S, h, S_L4, S.P[P_R_PING], t)
        return S.cbase[C_DROP], Y_DROP_L4
    if kd == K_ICMP_ECHO or kd == K_ICMP:
        consume(S, h, t)
        if kd == K_ICMP_ECHO:
            return icmp_echo_reply(S, c, h, t), -2
        return 0, -1
    if kd == K_TCP or kd == K_TCP_CTRL:
        S.misc[M_TCPIN + (0)] += 1  # Tcp InSegs, per skb (tcp_v4_rcv)
    if kd == K_UDP and (S.pk[h, F_CSUM] & CSUM_ZERO6) != 0:
        # __udp6_lib_rcv: a zero checksum is refused, with or without a socket, unless it set
        # UDP_NO_CHECK6_RX
        # (udp6_csum_zero_error -> csum_error: UDP_CSUM, Udp6InCsumErrors + InErrors)
        drop(S, h, S_L4, R_UDP_CSUM, t)
        return S.cbase[C_DROP], Y_DROP_L4
    s = S.pk[h, F_SOCK]
    if s < 0 and kd == K_UDP and (S.pk[h, F_DEMUX] & DEMUX_MCAST) != 0:
        # __udp4_lib_mcast_deliver (__udp6_lib_mcast_deliver) with no socket for the port:
        # kfree_skb (NOT_SPECIFIED) and Udp IgnoredMulti; no NoPorts, no ICMP
        drop(S, h, S_L4, R_NOTSPEC, t)
        return S.cbase[C_DROP], Y_DROP_L4
    if s < 0:
        drop(S, h, S_L4, R_NOSOCK, t)
        if kd == K_UDP:
            S.misc[M_UDPIN + (1)] += 1  # NoPorts, then icmp_send (rate-limited)
            return icmp_port_unreach(S, c, h, t), -2
        return S.cbase[C_ICMP], Y_ICMP_SEND  # TCP: a RST is sent
    if S.P[P_BUSY] != 0:
        bp_mark_napi(S, s, h)
    if kd == K_TCP_CTRL:
        tcp_ctrl_seq(S, h)
        f = S.pk[h, F_FLOWK]
        S.tf[f, TF_MSTAMP] = tcp_clock(S, t)  # tcp_rcv_established / _state_process refresh
        if (S.pk[h, F_FLAGS] & (TCP_SYN | TCP_ACK)) == (TCP_SYN | TCP_ACK):
            # tcp_rcv_synsent_state_process -> tcp_finish_connect -> tcp_init_transfer
            tcp_init_buffer_space(S, c, f, s, t)
        consume(S, h, t)  # a pure ACK ends in tcp_ack(); nothing is queued
        return 0, -1
    if backlogged(S, h):
        if S.tf[S.pk[h, F_FLOWK], TF_OWNER] != 0:
            return tcp_add_backlog(S, h, s, t)
        # the reader released the socket while this skb was on its way (the step began with
        # the socket owned): tcp_v4_do_rcv runs here after all, in this context
        S.po[h, O_HWM] &= ~HWM_BACKLOG
        lv = level_of(S, c)
        d4 = cost(S, C_TCP, S.po[h, O_SKBLEN])
        charge(S, c, lv, Y_TCP, d4, S.po[h, O_SKBCNT])
        d4 += tcp_rcv_ack(S, c, h, t + d4)
        dd, slot = l4_sock_rcv(S, c, h, s, t + d4)
        if dd > 0 and slot >= 0:
            charge(S, c, lv, slot, dd, 1)
        return d4 + max(dd, 0), -2
    return l4_sock_rcv(S, c, h, s, t)


@njit(cache=True)
def l4_sock_rcv(S, c, h, s, t):
    """The socket's part of l4_done for skb h: the receive-buffer checks (UDP) or
    tcp_rcv_established's data path (TCP), the enqueue and the wake-up. (cost, slot)."""
    kd = S.pk[h, F_KIND]
    rmem = S.ss[s, SS_RMEM]
    rcvbuf = S.ss[s, SS_RCVBUF]
    size = S.po[h, O_SKBTRUE]
    if kd == K_UDP:
        if S.P[P_UDP618] != 0:
            # 6.18+: drop if rmem + truesize > rcvbuf, except an empty queue accepts one unless
            # rcvbuf > INT_MAX >> 1 (KERNEL.md §1 row 10u, §3b)
            full = rmem + size > rcvbuf and (rcvbuf > INT_MAX_HALF or rmem != 0)
        else:
            full = rmem > rcvbuf  # up to 6.17: one skb of overshoot always fits (KERNEL.md §3b)
        if full:
            drop(S, h, S_L4, R_RCVBUF, t)
            S.misc[M_UDPIN + (2)] += 1  # InErrors
            S.misc[M_UDPIN + (3)] += 1  # RcvbufErrors
            S.ss[s, SS_DROPS] += 1
            return S.cbase[C_DROP], Y_DROP_L4
    else:
        f = S.pk[h, F_FLOWK]
        if S.tf[f, TF_HAVE_NXT] == 0:
            # no handshake in the trace: the first data segment sets rcv_nxt
            S.tf[f, TF_HAVE_NXT] = 1
            S.tf[f, TF_NXT] = S.pk[h, F_SEQ]
            S.tf[f, TF_WUP] = S.pk[h, F_SEQ]
            S.tf[f, TF_COPIED] = S.pk[h, F_SEQ]
        if S.tf[f, TF_RQ_T] < 0:
            tcp_init_buffer_space(S, c, f, s, t)  # established before the trace: taken as now
        S.tf[f, TF_MSTAMP] = tcp_clock(S, t)  # tcp_rcv_established: tcp_mstamp_refresh
        cls = tcp_seq_class(S, f, h)
        if cls >= TQ_ZW:
            # out of the window: out_of_window in tcp_data_queue (tcp_enter_quickack_mode, an
            # ACK at once) or tcp_validate_incoming's tcp_send_dupack for beyond it
            if cls == TQ_ZW:
                if seqd(S.pk[h, F_SEQ], S.tf[f, TF_NXT]) < 0:
                    S.misc[M_TCPX + 4] += 1  # the old head's D-SACK comes first
                S.misc[M_TCPX + 6] += 1  # TCPZeroWindowDrop
            elif cls >= TQ_INVSEQ and S.P[P_TCP_ENDSEQ] != 0:
                S.misc[M_TCPX + 8] += 1  # tcp_validate_incoming: LINUX_MIB_BEYOND_WINDOW
            S.ss[s, SS_DROPS] += 1
            drop(S, h, S_L4, R_TCP_ZEROWINDOW if cls == TQ_ZW else (
                R_TCP_OVERWINDOW if cls == TQ_OVERWIN else (
                    R_TCP_INVALID_SEQ if cls == TQ_INVSEQ else R_TCP_INVALID_END_SEQ)), t)
            tcp_ack_sent(S, f, h)
            return S.cbase[C_DROP], Y_DROP_L4
        if cls >= TQ_OLD:
            # all old: tcp_data_queue's retransmit branch (end_seq not after rcv_nxt) or, before
            # it, tcp_validate_incoming -> tcp_send_dupack (end_seq before rcv_wup); both count
            # DelayedACKLost and a D-SACK for the old block (tcp_dsack_set: seq before rcv_nxt ->
            # TCPDSACKOldSent; SACK taken as negotiated, net.ipv4.tcp_dsack = 1)
            S.misc[M_TCPX + 3] += 1
            S.misc[M_TCPX + 4] += 1
            S.ss[s, SS_DROPS] += 1
            drop(S, h, S_L4, R_TCP_OLD_DATA if cls == TQ_OLD else R_TCP_OLD_SEQ, t)
            tcp_ack_sent(S, f, h)
            return S.cbase[C_DROP], Y_DROP_L4
        if cls == TQ_OFO:
            r = tcp_data_queue_ofo(S, c, f, h, s, t)
            tcp_ack_sent(S, f, h)
            return r
        # tcp_data_queue: tcp_try_rmem_schedule (tcp_can_ingest, then tcp_prune_queue) failed:
        # PROTO_MEM and TCPRcvQDrop unless the receive queue is empty, which takes it anyway
        # (sk_forced_mem_schedule) (KERNEL.md §1 row 10t; the rule by version: P_RMEM_RULE)
        if not tcp_try_rmem_schedule(S, c, f, s, h, t) and S.tf[f, TF_QN] > 0:
            drop(S, h, S_L4, R_PROTOMEM, t)
            S.misc[M_TCPIN + (2)] += 1
            S.ss[s, SS_DROPS] += 1
            tcp_ack_sent(S, f, h)
            return S.cbase[C_DROP], Y_DROP_L4
        if seqd(S.pk[h, F_SEQ], S.tf[f, TF_NXT]) < 0:
            S.misc[M_TCPX + 4] += 1  # partly old: tcp_dsack_set(seq, rcv_nxt), the rest queued
    S.ss[s, SS_RMEM] += size
    if kd == K_TCP:
        S.tf[S.pk[h, F_FLOWK], TF_RMEM] += size
    sockq_push(S, s, h)
    if kd == K_TCP:
        tcp_queued(S, s, h, t)
    if S.misc[M_NEV] < S.ev.shape[0] and t - S.ss[s, SS_SOCK_SAMPLE] >= S.P[P_SAMPLE_NS]:
        S.ss[s, SS_SOCK_SAMPLE] = t
        emit_event(S, t, -1, c, s, E_SOCK, S.ss[s, SS_RMEM], D_NONE)
    if S.P[P_BUSY] != 0:
        bp_kick_sock(S, s, t)  # a busy-polling reader's loop_end sees the queue
    return sock_wake(S, c, s, t)


# ---- the socket backlog (KERNEL.md §1 row 10t). tcp_recvmsg holds lock_sock over its copies
# (sock_owned_by_user): a segment tcp_v4_rcv takes meanwhile goes to the socket's backlog
# (tcp_add_backlog, after its checksum), bounded by sk_backlog.len + sk_rmem_alloc against a
# limit that changed with the kernel (P_TCP_BL_RULE), else dropped with SOCKET_BACKLOG and
# TcpExt TCPBacklogDrop. release_sock -> __release_sock runs each queued skb's tcp_v4_do_rcv
# (tcp_rcv_established, its ACK) in the reader's context, Command = the reader. Here the owner
# is the reader thread copying one of the connection's skbs, from the copy of its first skb in a
# recvmsg to the end of that recvmsg's copies; a sleeping reader has released it
# (sk_wait_data). Not modelled: the coalescing of a segment into the backlog's tail
# (TCPBacklogCoalesce), backlogged pure ACKs (consumed at once), listeners' children.


@njit(cache=True, inline="always")
def backlogged(S, h):
    """Skb h went to its socket's backlog (po[h, O_HWM] is -1 until something sets it)."""
    m = S.po[h, O_HWM]
    return m > 0 and (m & HWM_BACKLOG) != 0


@njit(cache=True, inline="always")
def tcp_owned(S, h):
    """sock_owned_by_user for TCP data skb h's connection."""
    s = S.pk[h, F_SOCK]
    return (s >= 0 and S.ss[s, SS_LISTEN] == 0 and S.po[h, O_OUTC] == -1
            and S.tf[S.pk[h, F_FLOWK], TF_OWNER] != 0)


@njit(cache=True)
def tcp_add_backlog(S, h, s, t):
    """tcp_add_backlog -> sk_add_backlog(sk, skb, limit): (cost, slot) as l4_done returns."""
    f = S.pk[h, F_FLOWK]
    rcvbuf = sk_rcvbuf(S, f, s)
    rule = S.P[P_TCP_BL_RULE]
    # sk_sndbuf: tcp_init_sock's tcp_wmem[1] (16384) as tcp_sndbuf_expand raised it when the
    # connection was established (87040 for a 1460-byte MSS; P_TCP_SNDBUF)
    snd = S.P[P_TCP_SNDBUF]
    if rule == TCPBL_SUM:
        limit = rcvbuf + snd
    elif rule == TCPBL_64K:
        limit = rcvbuf + snd + 65536
    elif rule == TCPBL_HALF_SND:
        limit = rcvbuf + (snd >> 1) + 65536
    else:
        limit = min((rcvbuf << 1) + (snd >> 1) + 65536, 4294967295)
    # sk_rcvqueues_full: sk_backlog.len + sk_rmem_alloc > limit (this skb's truesize left out)
    if S.tf[f, TF_BLLEN] + S.tf[f, TF_RMEM] > limit:
        drop(S, h, S_L4, R_SOCKBACKLOG, t)
        S.misc[M_TCPX + 7] += 1  # TCPBacklogDrop
        S.ss[s, SS_DROPS] += 1
        return S.cbase[C_DROP], Y_DROP_L4
    S.tofo[h] = -1
    if S.tf[f, TF_BLT] >= 0:
        S.tofo[S.tf[f, TF_BLT]] = h
    else:
        S.tf[f, TF_BLH] = h
    S.tf[f, TF_BLT] = h
    S.tf[f, TF_BLLEN] += S.po[h, O_SKBTRUE]
    return 0, -1


@njit(cache=True)
def tcp_release_sock(S, c, k, n, t0):
    """release_sock at the end of reader k's copies of its n messages: for each connection it
    owns, __release_sock runs the backlogged skbs' tcp_v4_do_rcv in order, in the reader's
    context; each skb's l4 stage ends when its own turn does. Returns the CPU ns."""
    tot = 0
    for i in range(n):
        h = S.tmsg[k, i]
        if S.pk[h, F_KIND] != K_TCP:
            continue
        f = S.pk[h, F_FLOWK]
        if S.tf[f, TF_OWNER] != k + 1:
            continue
        S.tf[f, TF_OWNER] = 0
        b = S.tf[f, TF_BLH]
        S.tf[f, TF_BLH] = -1
        S.tf[f, TF_BLT] = -1
        S.tf[f, TF_BLLEN] = 0
        while b >= 0:
            nb = S.tofo[b]
            S.tofo[b] = -1
            d4 = cost(S, C_TCP, S.po[b, O_SKBLEN])  # tcp_v4_do_rcv -> tcp_rcv_established
            charge(S, c, 0, Y_TCP_DORCV, d4, S.po[b, O_SKBCNT])
            d4 += tcp_rcv_ack(S, c, b, t0 + tot + d4)
            dd, slot = l4_sock_rcv(S, c, b, S.pk[b, F_SOCK], t0 + tot + d4)
            if dd > 0 and slot >= 0:
                charge(S, c, 0, slot, dd, 1)
            d4 += max(dd, 0)
            tot += d4
            S.sc[b, S_L4] += d4
            S.se[b, S_L4] = t0 + tot
            if S.po[b, O_OUTC] == O_DROPPED or S.po[b, O_OUTC] == O_CONSUMED:
                S.po[b, O_TDONE] = t0 + tot
            b = nb
    return tot


@njit(cache=True, inline="always")
def sock_wake(S, c, s, t):
    """sk_data_ready -> sock_def_readable: wake a sleeping reader (KERNEL.md §1 row 11); a
    listener's when a child joins its accept queue. Returns (cost, slot)."""
    if S.ss[s, SS_WAITER] > 0:
        # exclusive wait: one reader is woken (__skb_wait_for_more_packets, inet_csk_wait_for_connect)
        k = S.wq[s, 0]
        for j in range(1, S.ss[s, SS_WAITER]):
            S.wq[s, j - 1] = S.wq[s, j]
        S.ss[s, SS_WAITER] -= 1
        ttwu(S, c, k, t + S.cbase[C_WAKEUP])
        return S.cbase[C_WAKEUP], Y_WAKE
    return 0, -1


# --------------------------------------------------------------------- the NAPI/NRA machine


@njit(cache=True)
def poll_end(S, c, q, t, complete):
    work = S.cs[c, CS_WORK]
    S.qs[q, QS_PKTS] += work
    if not complete:
        S.qs[q, QS_BEXH] += 1
    emit_event(S, S.cs[c, CS_POLL_T], t, c, q, E_POLL, work, D_COMPLETE if complete else D_WEIGHT)
    S.cs[c, CS_NRA_POLLS] += 1
    S.cs[c, CS_BUDGET] -= work
    S.cs[c, CS_POLLQ] = -1
    S.cs[c, CS_PHASE] = PH_AFTER


@njit(cache=True)
def nra_advance(S, c, t):
    """Decide and start the next step of net_rx_action on CPU c (zero-time transitions loop)."""
    while True:
        ph = S.cs[c, CS_PHASE]
        q = S.cs[c, CS_POLLQ]
        if ph == PH_NEXT:
            if S.cs[c, CS_DEFER_N] > 0 and S.cs[c, CS_HS_KS] != HS_BUSY:
                # for (;;) { skb_defer_free_flush(sd); ... } (dev.c net_rx_action; the napi
                # kthread's loop calls it too): a step, then this turn again with an empty list
                skb_defer_free_flush(S, c, t)
                return
            if S.cs[c, CS_LL_N] == 0:
                if S.cs[c, CS_RL_N] == 0:
                    S.cs[c, CS_IN_NRA] = 0
                    if S.P[P_GOTO_START] != 0 and S.cs[c, CS_PL_N] > 0 and \
                            S.cs[c, CS_HS_KS] < HS_NAPI_THREAD:
                        splice_poll_list(S, c)  # 6.4+: goto start (KERNEL.md §3.1)
                        continue
                    nra_exit_ipi(S, c, t, False)
                    return
                nra_exit_ipi(S, c, t, True)  # repoll waits for the next round
                return
            q = S.lst[c, L_LL, 0]
            for k in range(1, S.cs[c, CS_LL_N]):
                S.lst[c, L_LL, k - 1] = S.lst[c, L_LL, k]
            S.cs[c, CS_LL_N] -= 1
            if q >= S.P[P_NQ]:
                backlog_poll_start(S, c, q, t)
                return
            S.cs[c, CS_POLLQ] = q
            S.cs[c, CS_WORK] = 0
            S.cs[c, CS_POLL_T] = t
            S.qs[q, QS_POLLS] += 1
            # a busy poll's packets came without an interrupt: no t_irq
            S.qs[q, QS_POLL_IRQ_T] = S.qs[q, QS_LAST_IRQ] if S.cs[c, CS_HS_KS] != HS_BUSY else -1
            S.cs[c, CS_PHASE] = PH_LOOP
            d = S.cbase[C_POLL]
            charge(S, c, level_of(S, c), Y_POLL, d, 0)
            start_step(S, c, t, ST_POLL_START, q, d)
            if nra_run_on(S, c):
                t = S.cs[c, CS_NEXT]
                continue
            return
        elif ph == PH_LOOP:
            busy = S.cs[c, CS_HS_KS] == HS_BUSY
            wt = S.cs[c, CS_BP_BUDGET] if busy else S.P[P_WEIGHT]
            if S.P[P_HWAGG] == HWA_SHAMPO and S.qs[q, QS_SH_SKB] >= 0 and (
                    S.cs[c, CS_WORK] >= wt or S.qs[q, QS_RING_N] == 0
                    or S.pk[S.ringbuf[q, S.qs[q, QS_HEAD]], F_T_VIS] > t):
                # mlx5e_poll_rx_cq's end: the skb built from matching CQEs goes to GRO
                d = shampo_flush(S, c, q, t)
                S.cs[c, CS_PHASE] = PH_PKT_DONE
                start_step(S, c, t, ST_PKT, q, d)
                if nra_run_on(S, c):
                    t = S.cs[c, CS_NEXT]
                    continue
                return
            if S.cs[c, CS_WORK] >= wt and not busy and S.qs[q, QS_PREFER] != 0 and \
                    S.P[P_THREADED] == 0:
                prefer_exit_early(S, c, q, t)
                continue
            if S.cs[c, CS_WORK] >= wt:
                # the poll used its whole weight: __napi_poll flushes GRO (all when HZ < 1000,
                # only older than this jiffy when HZ >= 1000) and repolls (KERNEL.md §3.2); a
                # busy poll calls napi->poll itself, without that flush (__napi_busy_loop)
                if not busy:
                    gro_flush(S, q, t, S.P[P_HZ1000] != 0)
                S.cs[c, CS_FLUSH_RET] = PH_END_FULL
                S.cs[c, CS_PHASE] = PH_FLUSH
                S.cs[c, CS_LSTEP] = 0
                continue
            if S.qs[q, QS_UNUSED] >= S.P[P_REFILL]:
                S.qs[q, QS_UNUSED] = 0
                d = S.cbase[C_REFILL]
                charge(S, c, level_of(S, c), Y_REFILL, d, 0)
                start_step(S, c, t, ST_REFILL, q, d)
                if nra_run_on(S, c):
                    t = S.cs[c, CS_NEXT]
                    continue
                return
            if S.qs[q, QS_RING_N] > 0:
                i = S.ringbuf[q, S.qs[q, QS_HEAD]]
                if S.pk[i, F_T_VIS] <= t:
                    S.qs[q, QS_HEAD] = ring_next(S.qs[q, QS_HEAD], S.ringbuf.shape[1])
                    S.qs[q, QS_RING_N] -= 1
                    S.qs[q, QS_UNUSED] += 1
                    S.cs[c, CS_WORK] += 1
                    S.po[i, O_ACPU] = c  # napi_build_skb: skb->alloc_cpu = raw_smp_processor_id()
                    S.po[i, O_TIRQ] = S.qs[q, QS_POLL_IRQ_T]
                    S.po[i, O_TPOLL] = S.cs[c, CS_POLL_T]
                    S.qs[q, QS_AITR_PK] += 1  # q_vector->rx.total_packets / total_bytes
                    S.qs[q, QS_AITR_BY] += S.pk[i, F_PLEN]
                    dd = cost(S, C_DRIVER, S.pk[i, F_PLEN])
                    lv = level_of(S, c)
                    if S.P[P_VETH] != 0:
                        dd = 0  # veth_poll: the driver stage was veth_xmit's, in the sender
                    else:
                        charge(S, c, lv, Y_DRIVER, dd, 1)
                    if S.P[P_HWAGG] == HWA_SHAMPO:
                        # the driver appends the CQE to its hw_gro skb or starts one; GRO
                        # times come when that skb goes to GRO (shampo_flush)
                        dg = shampo_rx(S, c, q, i, t + dd)
                    else:
                        dg, merged = gro_receive(S, q, i, t + dd)
                        charge(S, c, lv, (Y_UDP_GRO if S.pk[i, F_KIND] == K_UDP else Y_GRO_MERGE)
                               if merged else Y_GRO, dg, 1)
                        dg += gro_csum(S, c, lv, i)
                        S.se[i, S_GRO] = t + dd + dg
                        S.sc[i, S_GRO] = dg
                    if S.P[P_VETH] == 0:
                        S.se[i, S_DRIVER] = t + dd
                        S.sc[i, S_DRIVER] = dd
                    S.cs[c, CS_PHASE] = PH_PKT_DONE
                    start_step(S, c, t, ST_PKT, i, dd + dg)
                    if nra_run_on(S, c):
                        t = S.cs[c, CS_NEXT]
                        continue
                    return
            # no completed descriptor: the driver is done -> napi_complete_done (KERNEL.md §3.3):
            # with work done, a held GRO packet arms gro_flush_timeout and the defer count is
            # reloaded; while the count lasts the IRQ stays masked and the timer re-polls
            if busy and S.cs[c, CS_BP_MODE] == BP_ITER:
                # NAPIF_STATE_IN_BUSY_POLL: napi_complete_done returns false at once (no GRO
                # flush, no re-arm); __napi_busy_loop then runs gro_normal_list
                S.cs[c, CS_FLUSH_RET] = PH_END_PARTIAL
                S.cs[c, CS_PHASE] = PH_FLUSH
                S.cs[c, CS_LSTEP] = 0
                continue
            complete_deferral(S, c, q, t, PH_END_PARTIAL)
            S.cs[c, CS_LSTEP] = 0
            continue
        elif ph == PH_PKT_DONE:
            if S.qs[q, QS_RX_SEG] >= S.P[P_BATCH]:
                S.cs[c, CS_FLUSH_RET] = PH_LOOP
                S.cs[c, CS_PHASE] = PH_FLUSH
                S.cs[c, CS_LSTEP] = 0
            else:
                S.cs[c, CS_PHASE] = PH_LOOP
            continue
        elif ph == PH_FLUSH:
            if S.qs[q, QS_RX_N] == 0:
                S.cs[c, CS_PHASE] = S.cs[c, CS_FLUSH_RET]
                continue
            if S.cs[c, CS_LSTEP] == 0 and q < S.P[P_NQ] and S.P[P_RPS] != 0:
                S.cs[c, CS_PHASE] = PH_RPS  # RPS before the list path (dev.c:6356)
                S.cs[c, CS_LPOS] = 0
                continue
            if S.cs[c, CS_LSTEP] != 1:
                S.cs[c, CS_LSTEP] = 1
                S.cs[c, CS_LPOS] = 0
                if q >= S.P[P_NQ]:
                    backlog_core_pre(S, q)
                d = list_core(S, c, q, t)
                if q >= S.P[P_NQ]:
                    backlog_core_post(S, c, q)
                start_step(S, c, t, ST_LISTCORE, q, d)
                if nra_run_on(S, c):
                    t = S.cs[c, CS_NEXT]
                    continue
                return
            pos = S.cs[c, CS_LPOS]
            n = S.qs[q, QS_RX_N]
            while pos < n and S.po[S.rxl[q, pos], O_OUTC] != -1:
                pos += 1
            if pos >= n:
                S.qs[q, QS_RX_N] = 0
                S.qs[q, QS_RX_SEG] = 0
                S.cs[c, CS_LSTEP] = 0
                S.cs[c, CS_PHASE] = S.cs[c, CS_FLUSH_RET]
                continue
            h = S.rxl[q, pos]
            S.cs[c, CS_LPOS] = pos + 1
            if S.pk[h, F_FRAGQ] >= 0:
                dl, d4 = ip_defrag(S, c, h, t)
            elif S.pk[h, F_TUN] != TUN_NONE:
                dl, d4 = tunnel_rcv(S, c, h)
            elif S.pk[h, F_KIND] == K_TCP and tcp_owned(S, h):
                # tcp_v4_rcv finds the socket owned by the reader: tcp_add_backlog; the rest
                # (and its ACK) comes at release_sock
                S.po[h, O_HWM] = max(S.po[h, O_HWM], 0) | HWM_BACKLOG  # (-1: never set)
                dl, d4 = l4_cost(S, c, h)
            else:
                dl, d4 = l4_cost(S, c, h)
                d4 += tcp_rcv_ack(S, c, h, t + dl + d4)
            S.se[h, S_LOCAL] = t + dl
            S.sc[h, S_LOCAL] = dl
            if S.pk[h, F_KIND] != K_NOPROTO and S.po[h, O_OUTC] == -1:
                S.se[h, S_L4] = t + dl + d4
                S.sc[h, S_L4] = d4
            start_step(S, c, t, ST_L4, h, dl + d4)
            if nra_run_on(S, c):
                t = S.cs[c, CS_NEXT]
                if l4_end(S, c, h, t):
                    if nra_run_on(S, c):  # the follow-up step l4_end started
                        t = S.cs[c, CS_NEXT]
                        continue
                    return
                if S.cs[c, CS_HI_N] == 0:
                    continue
                take_deferred_irq(S, c, t, X_SOFTIRQ if S.cs[c, CS_X] == X_SOFTIRQ else X_TASK)
            return
        elif ph == PH_END_PARTIAL:
            if S.cs[c, CS_HS_KS] == HS_BUSY and S.cs[c, CS_BP_MODE] == BP_ITER:
                S.qs[q, QS_BPRX] += S.cs[c, CS_WORK]  # the NAPI stays the busy poller's
                poll_end(S, c, q, t, True)
                continue
            # napi_complete_done (dev.c:6722-6788)
            if not napi_complete_clear(S, c, q, t) and S.cs[c, CS_KEEP_MASKED] == 0:
                if S.P[P_AITR] == AITR_DIM:
                    mlx5e_handle_rx_dim(S, q, t)
                elif S.P[P_AITR] != 0:
                    ixgbe_set_itr(S, q, t)
                irq_rearm(S, q, t)
            if S.P[P_BUSY] != 0 and S.qs[q, QS_SCHED] == 0:
                bp_kick_napi(S, q, t)  # a busy poller waiting for the NAPI may take it now
            poll_end(S, c, q, t, True)
            continue
        elif ph == PH_END_PREFER:
            prefer_complete(S, c, q, t)
            continue
        elif ph == PH_END_FULL:
            if S.cs[c, CS_HS_KS] != HS_BUSY:
                S.lst[c, L_RL, S.cs[c, CS_RL_N]] = q
                S.cs[c, CS_RL_N] += 1
            elif S.cs[c, CS_BP_MODE] == BP_ITER:
                S.qs[q, QS_BPRX] += S.cs[c, CS_WORK]
            elif S.P[P_THREADED] != 0:
                # __busy_poll_stop: rc == budget: __napi_schedule of a threaded NAPI wakes its
                # kthread (on the IRQ's CPU) instead of raising NET_RX here
                S.qs[q, QS_SCHED] = 0
                qc = S.qs[q, QS_CPU]
                napi_schedule(S, qc, q, t)
                if S.cs[qc, CS_X] == X_IDLE:
                    schedule(S, qc, t)
            elif S.cs[c, CS_BP_SKIP] != 0:
                # __busy_poll_stop(skip_schedule): flush old GRO packets, clear SCHED; the IRQ
                # stays masked and the watchdog armed by busy_poll_stop polls it later
                gro_flush(S, q, t, S.P[P_HZ1000] != 0)
                S.qs[q, QS_SCHED] = 0
                bp_kick_napi(S, q, t)
            else:
                # __busy_poll_stop: rc == budget: gro_normal_list (done) and __napi_schedule
                # on this CPU; local_bh_enable runs it here
                napi_list_add(S, c, q)
            poll_end(S, c, q, t, False)
            continue
        elif ph == PH_AFTER:
            b = S.cs[c, CS_BUDGET]
            if b <= 0 or jiffies(S, t) >= S.cs[c, CS_TLIMIT]:
                S.cs[c, CS_SQUEEZE] += 1  # softnet time_squeeze: budget or time (KERNEL.md §3.1)
                if b <= 0:
                    S.cs[c, CS_SQ_BUDGET] += 1
                    emit_event(S, t, -1, c, -1, E_SQUEEZE, 0, D_BUDGET)
                else:
                    S.cs[c, CS_SQ_TIME] += 1
                    emit_event(S, t, -1, c, -1, E_SQUEEZE, 0, D_TIME)
                nra_exit_ipi(S, c, t, True)
                return
            S.cs[c, CS_PHASE] = PH_NEXT
            continue
        elif ph == PH_BLOG:
            backlog_next(S, c, q, t)
            continue
        elif ph == PH_RPS:
            if rps_next(S, c, q, t):
                return
            continue
        elif ph == PH_IPI_EXIT:
            nra_exit(S, c, t, S.cs[c, CS_IPI_BROKE] != 0)
            return


# ------------------------------------------------------------------------ application threads


@njit(cache=True, inline="always")
def sock_dequeue(S, s):
    """__skb_recv_udp: read the reader queue; when it is empty, splice the receive queue in."""
    if S.ss[s, SS_QN] == 0:
        return -1
    if S.ss[s, SS_READERQ] == 0:
        S.ss[s, SS_READERQ] = S.ss[s, SS_QN]
    S.ss[s, SS_READERQ] -= 1
    off = S.ss[s, SS_QOFF]
    h = S.sockq[off + S.ss[s, SS_QHEAD]]
    S.ss[s, SS_QHEAD] = ring_next(S.ss[s, SS_QHEAD], S.ss[s, SS_QCAP])
    S.ss[s, SS_QN] -= 1
    return h


@njit(cache=True, inline="always")
def rmem_release(S, s, size):
    """udp_rmem_release: batched by forward_deficit >= sk_rcvbuf >> 2 or an empty reader queue
    (KERNEL.md §3b); TCP frees each skb's memory as it is read."""
    if S.ss[s, SS_PROTO] != 17:
        S.ss[s, SS_RMEM] -= size
        return
    S.ss[s, SS_DEFICIT] += size
    if S.ss[s, SS_DEFICIT] < (S.ss[s, SS_RCVBUF] >> 2) and S.ss[s, SS_READERQ] > 0:
        return
    S.ss[s, SS_RMEM] -= S.ss[s, SS_DEFICIT]
    S.ss[s, SS_DEFICIT] = 0


@njit(cache=True)
def thread_advance(S, k, c, t):
    """The reader's loop: recvmsg (or recvmmsg with MSG_WAITFORONE) → copy each → work each."""
    s = S.ts[k, TS_SOCK]
    while True:
        ph = S.ts[k, TS_PHASE]
        if ph == TP_SYSCALL or ph == TP_RETRY:
            if S.cs[c, CS_RQ_N] > 0 and t >= S.cs[c, CS_SLICE_END]:
                # slice used up and someone waits: round-robin
                flush_span(S, c, 0, S.ts[k, TS_SPAN_T], t, CTXR_TASK, comm_of_task(S, c, k))
                S.ts[k, TS_STATE] = T_RUNNABLE
                rq_push(S, c, k)
                schedule(S, c, t)
                return
            S.ts[k, TS_MSG_N] = 0
            S.ts[k, TS_MSG_I] = 0
            if S.ss[s, SS_LISTEN] != 0 and S.ss[s, SS_ACCQ] > 0:
                # accept4(): inet_csk_accept takes the oldest child off the accept queue
                # (sk_acceptq_removed), then the app's own work on the new connection; a
                # blocked accept that was woken has paid its syscall entry already
                S.ss[s, SS_ACCQ] -= 1
                d = S.cbase[C_ACCEPT] + (S.cbase[C_SYSCALL] if ph == TP_SYSCALL else 0)
                charge(S, c, 0, Y_ACCEPT, d, 0)
                w = S.ts[k, TS_ACCEPT]
                if w > 0:
                    charge(S, c, 0, Y_APP_ACCEPT, w, 0)
                S.ts[k, TS_PHASE] = TP_ACCEPTED
                start_step(S, c, t, ST_SYSCALL, k, d + w)
                return
            if S.ss[s, SS_QN] > 0:
                S.ts[k, TS_PHASE] = TP_COPY
                if ph == TP_SYSCALL:
                    d = S.cbase[C_SYSCALL]
                    S.ts[k, TS_RESUME] = d  # charged to the batch's first message (copy stage)
                    charge(S, c, 0, Y_RECV, d, 0)
                    start_step(S, c, t, ST_SYSCALL, k, d)
                    if task_run_on(S, c, ST_SYSCALL):
                        t = S.cs[c, CS_NEXT]
                        continue
                    return
                S.ts[k, TS_RESUME] = 0
                continue
            # nothing queued: busy poll (sk_can_busy_loop: sk_ll_usec set), else block in
            # __skb_wait_for_more_packets
            nxt = TP_BUSY if S.ss[s, SS_LL_USEC] > 0 else TP_BLOCK
            if ph == TP_SYSCALL:
                d = S.cbase[C_SYSCALL]
                charge(S, c, 0, Y_RECV_IDLE, d, 0)
                S.ts[k, TS_PHASE] = nxt
                S.ts[k, TS_BP_START] = -1
                start_step(S, c, t, ST_SYSCALL, k, d)
                return
            S.ts[k, TS_PHASE] = nxt
            S.ts[k, TS_BP_START] = -1
            continue
        elif ph >= TP_BUSY:
            if bp_step(S, k, c, t):
                return
            continue
        elif ph == TP_ACCEPTED:
            S.ts[k, TS_PHASE] = TP_SYSCALL
            flush_span(S, c, 0, S.ts[k, TS_SPAN_T], t, CTXR_TASK, comm_of_task(S, c, k))
            S.ts[k, TS_SPAN_T] = t
            continue
        elif ph == TP_BLOCK:
            if S.ss[s, SS_QN] > 0 or (S.ss[s, SS_LISTEN] != 0 and S.ss[s, SS_ACCQ] > 0):
                # data (or a connection) arrived during the syscall: no sleep
                S.ts[k, TS_PHASE] = TP_RETRY
                continue
            S.ts[k, TS_STATE] = T_SLEEP
            S.ts[k, TS_SLEEP_T] = t
            S.wq[s, S.ss[s, SS_WAITER]] = k
            S.ss[s, SS_WAITER] += 1
            flush_span(S, c, 0, S.ts[k, TS_SPAN_T], t, CTXR_TASK, comm_of_task(S, c, k))
            S.ts[k, TS_PHASE] = TP_RETRY
            schedule(S, c, t)
            return
        elif ph == TP_COPY:
            n = S.ts[k, TS_MSG_N]
            if n < S.ts[k, TS_BATCH] and S.ss[s, SS_QN] > 0:
                h = sock_dequeue(S, s)
                if S.pk[h, F_KIND] == K_TCP and S.tf[S.pk[h, F_FLOWK], TF_OWNER] == 0:
                    S.tf[S.pk[h, F_FLOWK], TF_OWNER] = k + 1  # lock_sock (tcp_recvmsg)
                if S.ss[s, SS_PROTO] == 6 or S.ss[s, SS_CONN] != 0:
                    # inet_recvmsg -> sock_rps_record_flow: sk_state == TCP_ESTABLISHED, which a
                    # connect()ed UDP socket is too (__ip4_datagram_connect), and UDP saves
                    # sk_rxhash when inet_daddr is set (__udp_queue_rcv_skb)
                    rfs_record(S, c, h)
                S.tmsg[k, n] = h
                S.ts[k, TS_MSG_N] = n + 1
                dcp = cost(S, C_COPY, S.po[h, O_SKBLEN])
                dco = S.cbase[C_CONSUME]
                charge(S, c, 0, Y_COPY, dcp, S.po[h, O_SKBCNT])
                if S.P[P_DEFER_MAX] > 0 and (S.ss[s, SS_PROTO] == 6 or S.P[P_UDP618] != 0):
                    dco = skb_attempt_defer_free(S, c, h, t)
                else:
                    charge(S, c, 0, Y_CONSUME, dco, S.po[h, O_SKBCNT])
                dcp += copy_csum(S, c, h)
                extra = S.ts[k, TS_RESUME] if n == 0 else 0
                if extra > 0:
                    S.accf[c, 0, Y_RECV] += S.po[h, O_SKBCNT]
                    acc_mark(S, c, 0, Y_RECV)
                S.sc[h, S_COPY] = dcp + dco + extra
                start_step(S, c, t, ST_COPY, h, dcp + dco)
                if task_run_on(S, c, ST_COPY):
                    t = S.cs[c, CS_NEXT]
                    task_step_end(S, c, k, ST_COPY, h, t)
                    continue
                return
            S.ts[k, TS_PHASE] = TP_WORK
            S.ts[k, TS_MSG_I] = 0
            if n > 0 and S.ss[s, SS_PROTO] == 6:
                h = S.tmsg[k, n - 1]
                d = tcp_cleanup_rbuf(S, c, k, h, t)
                if d > 0:
                    # the window-update ACK ends the recvmsg: part of its last skb's copy stage
                    S.sc[h, S_COPY] += d
                    S.se[h, S_COPY] += d
                # release_sock: the socket backlog gathered while the reader copied
                d += tcp_release_sock(S, c, k, n, t + d)
                if d > 0:
                    start_step(S, c, t, ST_SYSCALL, k, d)
                    return
            continue
        elif ph == TP_WORK:
            i = S.ts[k, TS_MSG_I]
            if i < S.ts[k, TS_MSG_N]:
                h = S.tmsg[k, i]
                # work-ns plus the profile's stage.app: the reader's own per-message cost (0 in
                # the published profiles; replay calibrate measures the harness's reader)
                d = S.ts[k, TS_WORK] + cost(S, C_APP, S.po[h, O_SKBLEN])
                charge(S, c, 0, Y_APP, d, S.po[h, O_SKBCNT])
                S.sc[h, S_APP] = d
                S.cs[c, CS_TICK_REM] = 0
                start_step(S, c, t, ST_WORK, h, tick_cut(S, c, t, t + d) - t)
                if task_run_on(S, c, ST_WORK):
                    t = S.cs[c, CS_NEXT]
                    task_step_end(S, c, k, ST_WORK, h, t)
                    continue
                return
            S.ts[k, TS_PHASE] = TP_SYSCALL
            flush_span(S, c, 0, S.ts[k, TS_SPAN_T], t, CTXR_TASK, comm_of_task(S, c, k))
            S.ts[k, TS_SPAN_T] = t
            continue
        return


@njit(cache=True, inline="always")
def ttwu(S, c, k, t):
    """try_to_wake_up of task k by CPU c, done at t: when k becomes runnable on its CPU.

    kernel/sched/core.c (6.x) ttwu_queue -> ttwu_queue_cond(p, cpu):
    - cpu == smp_processor_id(): false -> ttwu_do_activate on the local rq at once, no IPI;
      wakeup_preempt sets need_resched when the current task is the idle task, which then
      schedules as soon as the softirq ends (handle_softirqs stops restarting on need_resched);
    - !cpu_rq(cpu)->nr_running (the target runs its idle task, maybe inside a softirq): true ->
      __ttwu_queue_wakelist -> send_call_function_single_ipi: the IPI (latency.ipi), the exit
      latency of the idle state when the target sleeps in one (host.cstate-exit-ns), then the
      scheduler's part on the target (sched_ttwu_pending, the idle loop's exit to schedule:
      latency.wakeup);
    - otherwise (a busy CPU sharing the LLC, as all CPUs of the modelled single-socket host
      do): the waker enqueues on the remote rq under its lock, at once; the woken task waits
      for the target's next schedule point (the model's round-robin slice).
    """
    S.ts[k, TS_STATE] = T_WAKING
    tc = S.ts[k, TS_CPU]
    at = t
    if tc == c:
        if S.cs[c, CS_TASK] < 0:
            S.cs[c, CS_NEED_RESCHED] = 1  # the idle task yields to the woken task
        else:
            ttwu_preempt(S, c, S.ts[k, TS_SLEEP_T], t, t)
    elif S.cs[tc, CS_TASK] >= 0:
        # resched_curr -> smp_send_reschedule
        ipi = t + S.cbase[L_IPI]
        cur = S.cs[tc, CS_TASK]
        if ttwu_preempt(S, tc, S.ts[k, TS_SLEEP_T], t, ipi) and cur < S.P[P_NTHR] and \
                S.ts[cur, TS_KIND] == TK_READER:
            # the reschedule IPI interrupts the reader where it stands and the return from it
            # schedules (scheduler_ipi; exit_to_user_mode_loop on TIF_NEED_RESCHED): its step
            # is cut when the IPI arrives, when k is taken onto the run queue here (the kernel
            # enqueues k at once; the IPI's latency later it preempts)
            S.cs[tc, CS_WAKE_PREEMPT] = 1
            at = ipi
    elif S.cs[tc, CS_RQ_N] == 0:
        at = t + S.cbase[L_IPI] + S.cbase[L_WAKEUP]
        if S.cs[tc, CS_X] == X_IDLE:
            at += idle_exit(S, tc, t)
    heap_set(S, S.P[P_ETHR0] + k, at)


@njit(cache=True, inline="always")
def ttwu_preempt(S, c, sleep_t, t, at):
    """wakeup_preempt: does a task asleep since sleep_t (a reader, or a napi kthread), woken at
    t onto CPU c whose current task is another one, preempt it? Both are nice-0 SCHED_OTHER
    tasks; the rule is exact when the current task and the woken one (below: the reader) had
    equal vruntime when the reader went to sleep and the current one ran meanwhile:
    - EEVDF (6.6+, check_preempt_wakeup_fair -> pick_eevdf): the reader's lag at dequeue was 0,
      so place_entity puts it at the queue's average vruntime, where the current task, within
      its slice, is still eligible; RUN_TO_PARITY keeps it until its deadline: no preemption, the
      reader runs at the slice's end (the model's round-robin);
    - CFS (before 6.6, check_preempt_wakeup -> wakeup_preempt_entity): place_entity gives the
      reader max(its vruntime, min_vruntime - sched_latency/2), so curr's lead over it is the
      sleep s, capped at sched_latency/2 (> the granularity); it preempts when that exceeds
      sysctl_sched_wakeup_granularity (1 ms x (1 + ilog2(min(ncpus, 8))), the scaled default).
    A preemption (resched_curr; an IPI when c is another CPU, arriving at `at`) ends the current
    task's slice: it yields at its next scheduling check (a reader between system calls,
    ksoftirqd and the napi kthreads between polls); a reader interrupted by the softirq that
    woke the task on its own CPU is cut mid-step at the return from interrupt (preempt_reader).
    A remote wake-up's reschedule IPI cuts a reader's step at its arrival (ttwu). Returns True
    when the woken task preempts."""
    if S.cs[c, CS_RQ_N] == 0 and S.cs[c, CS_SLICE_END] <= t:
        # the current task ran alone past its deadline: update_deadline gave it a new slice each
        # time (EEVDF: deadline = vruntime + slice; renewed here at whole slices, not at ticks)
        sl = S.P[P_SLICE]
        S.cs[c, CS_SLICE_END] += ((t - S.cs[c, CS_SLICE_END]) // sl + 1) * sl
    g = S.P[P_WGRAN]
    if g < 0 or t - sleep_t <= g:
        return False
    if at < S.cs[c, CS_SLICE_END]:
        S.cs[c, CS_SLICE_END] = at
    cur = S.cs[c, CS_TASK]
    if at == t and S.cs[c, CS_X] == X_SOFTIRQ and cur >= 0 and cur < S.P[P_NTHR] and \
            S.ts[cur, TS_KIND] == TK_READER:
        # a local wake-up from the softirq on top of a reader: resched_curr is honoured at the
        # return from interrupt, mid-step (preempt_reader), not at the reader's next check
        S.cs[c, CS_WAKE_PREEMPT] = 1
    return True


@njit(cache=True, inline="always")
def thread_wake(S, k, t):
    """The woken reader becomes runnable on its CPU (ttwu's IPI and latencies are past)."""
    heap_set(S, S.P[P_ETHR0] + k, INF)
    c = S.ts[k, TS_CPU]
    S.ts[k, TS_STATE] = T_RUNNABLE
    rq_push(S, c, k)
    if S.cs[c, CS_TASK] < 0:
        S.cs[c, CS_NEED_RESCHED] = 1  # resched_curr of the idle task (a remote wake-up's IPI)
    if S.cs[c, CS_X] == X_IDLE:
        schedule(S, c, t)
        return
    tick_recheck(S, c, t)
    st = S.cs[c, CS_STEP]
    if S.cs[c, CS_WAKE_PREEMPT] != 0 and S.cs[c, CS_X] == X_TASK and \
            (st == ST_SYSCALL or st == ST_COPY or st == ST_WORK):
        # the softirq that woke k ended at this same instant, before k was on the run queue:
        # the preemption it decided cuts the reader's resumed step now
        S.cs[c, CS_REM] = S.cs[c, CS_NEXT] - t
        S.cs[c, CS_RESUME_STEP] = st
        S.cs[c, CS_RESUME_ARG] = S.cs[c, CS_ARG]
        preempt_reader(S, c, S.cs[c, CS_TASK], t)


# ---------------------------------------------------------------------------- step completion


@njit(cache=True, inline="always")
def l4_end(S, c, h, t):
    """The end of skb h's local delivery step (ST_L4) on CPU c at t: l4_done; True if it started
    the follow-up step (the reader's wake-up, or freeing a dropped skb)."""
    d, slot = l4_done(S, c, h, t)
    if d > 0:
        if slot >= 0:
            charge(S, c, level_of(S, c), slot, d, 1)
        if S.po[h, O_OUTC] == O_DROPPED and S.po[h, O_DSTAGE] == S_LOCAL:
            # the protocol unreachable of an IP_NOPROTO drop: ip_local_deliver's work
            S.sc[h, S_LOCAL] += d
            S.se[h, S_LOCAL] += d
            S.po[h, O_TDONE] = S.se[h, S_LOCAL]
            start_step(S, c, t, ST_WAKE, h, d)
            return True
        S.sc[h, S_L4] += d
        if S.po[h, O_OUTC] == O_DROPPED or S.po[h, O_OUTC] == O_CONSUMED:
            S.po[h, O_TDONE] = t + d
        S.se[h, S_L4] = t + d
        start_step(S, c, t, ST_WAKE, h, d)
        return True
    return False


@njit(cache=True, inline="always")
def task_step_end(S, c, k, step, h, t):
    """The end of reader k's system call, copy (skb h) or work (on skb h) step on CPU c at t:
    what happens before thread_advance goes on."""
    if step == ST_COPY:
        S.se[h, S_COPY] = t
        s = S.ts[k, TS_SOCK]
        rmem_release(S, s, S.po[h, O_SKBTRUE])
        if S.pk[h, F_KIND] == K_TCP:
            # tcp_recvmsg_locked: copied_seq moves, tcp_rcv_space_adjust; then
            # tcp_eat_recv_skb: the skb leaves its connection's receive queue and memory
            f = S.pk[h, F_FLOWK]
            tcp_rcv_space_adjust(S, c, f, s, h, t)
            S.tf[f, TF_RMEM] -= S.po[h, O_SKBTRUE]
            S.tf[f, TF_QN] -= 1
        if S.pk[h, F_KIND] == K_UDP:
            S.misc[M_UDPIN + (0)] += 1  # Udp InDatagrams at read time (udp.c:2118-2119)
    elif step == ST_WORK:
        S.se[h, S_APP] = t
        S.po[h, O_TDONE] = t
        S.po[h, O_OUTC] = O_DELIVERED
        S.ts[k, TS_MSG_I] += 1


@njit(cache=True, inline="always")
def task_run_on(S, c, step):
    """run_on for a reader's step: its end takes the path task_step_end + thread_advance unless
    the tick cut a work step or NET_RX waits at a system call's end (cpu_complete)."""
    if step == ST_WORK and S.cs[c, CS_TICK_REM] > 0:
        return False
    if step == ST_SYSCALL and S.cs[c, CS_PENDING] != 0 and (
            S.P[P_INLINE_ALWAYS] != 0 or S.cs[c, CS_KS_STATE] == 0):
        return False
    return run_on(S, c, S.cs[c, CS_NEXT])


@njit(cache=True)
def cpu_complete(S, c, t):
    """CPU c finished its step at t: apply its effects, then start the next step."""
    step = S.cs[c, CS_STEP]
    arg = S.cs[c, CS_ARG]
    S.cs[c, CS_STEP] = ST_NONE
    if step == ST_CEXIT:
        hardirq_begin(S, c, arg, t, X_IDLE)
        return
    if step == ST_HARDIRQ:
        q = arg if arg >= 0 else -arg - 1
        if arg >= S.P[P_NQ] + S.P[P_NCPU]:
            charge(S, c, 2, Y_DEFER_IRQ, S.cbase[C_IPI_IRQ], 0)
        elif arg >= S.P[P_NQ]:
            charge(S, c, 2, Y_IPI_IRQ, S.cbase[C_IPI_IRQ], 0)
        else:
            charge(S, c, 2, Y_IRQ if arg >= 0 else Y_TMR, S.cbase[C_HARDIRQ], 0)
        ret = S.cs[c, CS_HI_RET]
        comm = comm_of_task(S, c, S.cs[c, CS_TASK]) if ret != X_SOFTIRQ else S.cs[c, CS_COMM1]
        flush_span(S, c, 2, S.cs[c, CS_SPAN2], t, CTXR_HARDIRQ, comm)
        if arg >= S.P[P_NQ]:
            if arg < S.P[P_NQ] + S.P[P_NCPU]:
                rps_trigger_softirq(S, c, arg)
            if S.cs[c, CS_DEFER_CSD] != 0:
                # trigger_rx_softirq: __raise_softirq_irqoff(NET_RX_SOFTIRQ), then
                # smp_store_release(&sd->defer_ipi_scheduled, 0) (skbuff.c)
                S.cs[c, CS_DEFER_CSD] = 0
                S.cs[c, CS_PENDING] = 1
        else:
            napi_schedule(S, c, q, t)
        if take_deferred_irq(S, c, t, ret):
            return
        # irq_exit: run softirqs inline unless already in softirq context, or (4.9-6.4) while
        # ksoftirqd is runnable (KERNEL.md §3.4, §3b)
        if ret == X_SOFTIRQ:
            S.cs[c, CS_X] = X_SOFTIRQ
            nra_advance(S, c, t)
            return
        if ret == X_TASK and ((S.cs[c, CS_TASK] >= S.P[P_NTHR] and S.cs[c, CS_HS_KS] != 0)
                              or S.cs[c, CS_HS_KS] == HS_BUSY):
            # ksoftirqd or a napi kthread inside its poll, a busy poll: BH disabled, pending
            # work waits (HS_KS 0: a kthread just switched in, not yet in handle_softirqs)
            S.cs[c, CS_X] = X_TASK
            nra_advance(S, c, t)
            return
        if S.cs[c, CS_PENDING] != 0 and (S.P[P_INLINE_ALWAYS] != 0 or S.cs[c, CS_KS_STATE] == 0):
            softirq_begin(S, c, t, 0)
            return
        if ret == X_TASK:
            S.cs[c, CS_X] = X_TASK
            resume_task_step(S, c, t, S.cs[c, CS_RESUME_STEP], S.cs[c, CS_RESUME_ARG],
                             S.cs[c, CS_REM])
            return
        S.cs[c, CS_X] = X_IDLE
        S.cs[c, CS_IDLE_T] = t
        cpu_stop(S, c)
        schedule(S, c, t)
        return
    if step == ST_CTXSW:
        task = arg
        if task >= S.P[P_NTHR] + S.P[P_NCPU]:
            napi_thread_run(S, c, task - S.P[P_NTHR] - S.P[P_NCPU], t)
            return
        if task >= S.P[P_NTHR]:
            if S.cs[c, CS_HI_N] > 0:
                # hard IRQs that came during the switch to ksoftirqd (deliver_irq defers them
                # for a kthread): taken now, before smpboot_thread_fn enters run_ksoftirqd; the
                # IRQ's irq_exit runs softirqs inline when allowed (invoke_softirq: not
                # in_interrupt(); 4.9-6.4 not while ksoftirqd is runnable) and the switch then
                # completes again (a zero-length resume). Left waiting, a CPU whose ksoftirqd
                # found nothing to do went idle with the IRQ never taken: an RPS IPI was lost
                # with its backlog NAPI (SCHED set, on no list), and the packets with it.
                S.cs[c, CS_HS_KS] = 0
                S.cs[c, CS_REM] = 0
                S.cs[c, CS_RESUME_STEP] = ST_CTXSW
                S.cs[c, CS_RESUME_ARG] = task
                take_deferred_irq(S, c, t, X_TASK)
                return
            S.cs[c, CS_HS_KS] = 1
            if S.cs[c, CS_PENDING] == 0:
                # an inline softirq (irq_exit, 6.5+) did the work while ksoftirqd waited for the
                # CPU: smpboot_thread_fn sees ksoftirqd_should_run() false and sleeps again,
                # without handle_softirqs (no NET_RX count, no net_rx_action)
                ksoftirqd_after(S, c, t)
                return
            softirq_begin(S, c, t, 1)
            return
        if S.ts[task, TS_KIND] == TK_SENDER:
            sender_advance(S, task, c, t)
            return
        if S.ts[task, TS_PRE_STEP] != ST_NONE:
            # back after a preemption: the cut step runs its remaining time
            S.ts[task, TS_PRE_STEP], st = ST_NONE, S.ts[task, TS_PRE_STEP]
            resume_task_step(S, c, t, st, S.ts[task, TS_PRE_ARG], S.ts[task, TS_PRE_REM])
            return
        thread_advance(S, task, c, t)
        return
    if step == ST_NAPI_NEXT:
        napi_thread_next(S, c, arg, t)
        return
    if step == ST_BUSY or step == ST_BP_NEXT:
        k = S.cs[c, CS_TASK]
        if step == ST_BUSY:
            S.ts[k, TS_BP_SPIN] = 0
            S.ts[k, TS_PHASE] = TP_BUSY_CHK
        elif arg == BP_ITER:
            bp_spin(S, c, k, t, S.cbase[C_BUSY], 0, 1)  # the rest of the iteration
            return
        else:
            S.ts[k, TS_PHASE] = TP_BUSY_END
        thread_advance(S, k, c, t)
        return
    if step >= ST_TX:
        sender_complete(S, c, step, arg, t)
        return
    if step == ST_WORK and S.cs[c, CS_TICK_REM] > 0:
        # the tick found the reader past its slice with another task runnable (tick_cut): its
        # user-space step stops here and resumes with the rest when it runs again
        k = S.cs[c, CS_TASK]
        S.ts[k, TS_PRE_STEP] = ST_WORK
        S.ts[k, TS_PRE_ARG] = arg
        S.ts[k, TS_PRE_REM] = S.cs[c, CS_TICK_REM]
        S.cs[c, CS_TICK_REM] = 0
        flush_span(S, c, 0, S.ts[k, TS_SPAN_T], t, CTXR_TASK, comm_of_task(S, c, k))
        S.ts[k, TS_STATE] = T_RUNNABLE
        rq_push(S, c, k)
        schedule(S, c, t)
        return
    if step == ST_SYSCALL or step == ST_COPY or step == ST_WORK:
        k = S.cs[c, CS_TASK]
        if step == ST_SYSCALL and S.cs[c, CS_PENDING] != 0 and (
            S.P[P_INLINE_ALWAYS] != 0 or S.cs[c, CS_KS_STATE] == 0
        ):
            # the system call's spin_unlock_bh (__skb_recv_udp's reader queue; lock_sock /
            # release_sock for TCP) -> local_bh_enable -> do_softirq: NET_RX left pending (a
            # restart limit, need_resched) runs here in the reader's context, Command = the
            # reader; 4.9-6.4: not while ksoftirqd is runnable (do_softirq's ksoftirqd_running,
            # 4cd13c21b207, reverted in 6.5). Then the reader goes on (a zero-length resume).
            S.cs[c, CS_REM] = 0
            S.cs[c, CS_RESUME_STEP] = ST_CTXSW
            S.cs[c, CS_RESUME_ARG] = k
            softirq_begin(S, c, t, 0)
            return
        task_step_end(S, c, k, step, arg, t)  # the copy's or the work's effects
        thread_advance(S, k, c, t)
        return
    # ---- softirq-context steps (inline softirq or ksoftirqd)
    if step == ST_RPS:
        if rps_done(S, c, arg, t):
            return
    elif step == ST_L4 and l4_end(S, c, arg, t):
        return  # l4_end started the follow-up step
    ret = X_SOFTIRQ if S.cs[c, CS_X] == X_SOFTIRQ else X_TASK
    if take_deferred_irq(S, c, t, ret):
        return
    nra_advance(S, c, t)


# --------------------------------------------------------------------------------- main loop

PF_AHEAD = 8  # prefetch distance in packets (~40 events, a few microseconds of the loop)


@njit(cache=True, nogil=True)
def run_loop(state):
    # every function below gets the state as a StateView (model/state.py): no reference counts
    S = state_view(state)
    pk = S.pk
    hh = S.hh
    ht = S.ht
    misc = S.misc
    P = S.P
    n = pk.shape[0]
    nxt = misc[0]
    # arrivals come from the time-sorted packet array, not from the heap: entity 0 stays at INF
    # there and the next arrival is compared with the heap's top under the same (time, entity)
    # order, entity 0 first on a tie. Same event order; one heap update less per packet
    if ht[0] < INF:
        heap_set(S, 0, INF)
    t_arr = pk[nxt, F_T_VIS] if nxt < n else INF
    misc[M_TARR] = t_arr  # for run_on: a step that ends before it may run at once
    ecpu0 = P[P_ECPU0]
    ethr0 = P[P_ETHR0]
    etmr0 = P[P_ETMR0]
    eipi0 = P[P_EIPI0]
    ehw0 = P[P_EHW0]
    eirq0 = P[P_EIRQ0]
    while True:
        e = hh[0]
        t = ht[e]
        if t_arr <= t:
            e = 0
            t = t_arr
        if t >= INF:
            break
        if misc[M_NROWS] + 4 * S.acc.shape[2] >= S.rows.shape[1] or misc[M_NEV] + 64 >= S.ev.shape[0]:
            misc[0] = nxt
            return 1  # the caller grows the buffers and calls again
        if e == 0:
            misc[3] += 1
            if nxt + PF_AHEAD < n:
                # the row of a packet PF_AHEAD arrivals ahead: its 272 bytes (every 8th column
                # is one cache line, and the last) are in cache when it arrives
                for j in range(0, N_PK, 8):
                    prefetch(pk, nxt + PF_AHEAD, j)
                prefetch(pk, nxt + PF_AHEAD, N_PK - 1)
            arrival(S, nxt, t)
            nxt += 1
            t_arr = pk[nxt, F_T_VIS] if nxt < n else INF
            misc[M_TARR] = t_arr
        elif e < ecpu0:
            misc[4] += 1
            irq_fire(S, e - eirq0, t)
        elif e < ethr0:
            misc[5] += 1
            cpu_complete(S, e - ecpu0, t)
        else:
            misc[6] += 1
            if e < etmr0:
                thread_wake(S, e - ethr0, t)
            elif e < eipi0:
                napi_timer(S, e - etmr0, t)
            elif e < ehw0:
                ipi_fire(S, e - eipi0, t)
            else:
                hw_timer(S, e - ehw0, t)
    misc[0] = nxt
    return 0


@njit(cache=True)
def distribute(S):
    """Give every segment of a GRO super-skb the skb's stack stage times and a share of its CPU."""
    n = S.pk.shape[0]
    for h in range(n):
        cnt = S.po[h, O_SKBCNT]
        if cnt <= 1 or S.po[h, O_SKBH] != h:
            continue
        st0 = S_NETIF
        nx = S.po[h, O_SEGNEXT]
        if S.se[nx, S_DRIVER] < 0 and S.se[h, S_DRIVER] >= 0:
            # the NIC merged them (LRO / RSC): one descriptor, one driver and GRO step, shared
            st0 = S_DRIVER
            s = nx
            while s >= 0:
                S.po[s, O_TIRQ] = S.po[h, O_TIRQ]
                S.po[s, O_TPOLL] = S.po[h, O_TPOLL]
                s = S.po[s, O_SEGNEXT]
        for st in range(st0, N_ST):
            tot = S.sc[h, st]
            if S.se[h, st] < 0:
                continue
            base = tot // cnt
            rem = tot - base * cnt
            s = h
            k = 0
            while s >= 0:
                S.se[s, st] = S.se[h, st]
                S.sc[s, st] = base + (1 if k < rem else 0)
                s = S.po[s, O_SEGNEXT]
                k += 1
        s = S.po[h, O_SEGNEXT]
        while s >= 0:
            S.po[s, O_OUTC] = S.po[h, O_OUTC]
            S.po[s, O_DSTAGE] = S.po[h, O_DSTAGE]
            S.po[s, O_DREASON] = S.po[h, O_DREASON]
            S.po[s, O_TDONE] = S.po[h, O_TDONE]
            S.po[s, O_PAPP] = S.po[h, O_PAPP]
            S.po[s, O_PCPU] = S.po[h, O_PCPU]
            s = S.po[s, O_SEGNEXT]


# ----------------------------------------------------------- RPS / RFS, the backlog, veth
# Rules from net/core/dev.c (6.19; KERNEL.md §1 rows 5-5b, §3.5, §3c). The backlog NAPI of CPU c
# is the pseudo-queue P_NQ + c: it has a qs row and an rx_list row like a driver NAPI, so the
# poll list, net_rx_action's budget and repoll, and the stack after __netif_receive_skb_core are
# the ones driver NAPIs use. Its FIFO bq[c] holds process_queue (the first CS_BQ_NPROC entries
# from CS_BQ_HEAD) followed by input_pkt_queue (CS_BQ_NIN entries).

PH_BLOG = 7  # process_backlog: the next skb of process_queue, splice, or complete
PH_RPS = 8  # netif_receive_skb_list_internal: get_rps_cpu + enqueue_to_backlog per skb
PH_IPI_EXIT = 9  # the RPS IPIs were sent: leave net_rx_action
GOLDEN_RATIO_32 = 0x61C88647  # include/linux/hash.h
RPS_NO_CPU = 0xFFFF  # include/net/rps.h: an unset rps_dev_flow / rps_sock_flow_table entry


@njit(cache=True, inline="always")
def hash_32(v, bits):
    """include/linux/hash.h hash_32: (val * GOLDEN_RATIO_32) >> (32 - bits) in 32 bits."""
    return ((v * GOLDEN_RATIO_32) & 0xFFFFFFFF) >> (32 - bits)


@njit(cache=True, inline="always")
def napi_list_add(S, c, q):
    """____napi_schedule without the SCHED test (enqueue_to_backlog already set it, and
    rps_trigger_softirq does not test it): onto the poll list, NET_RX raised unless inside
    net_rx_action on 6.4+ (dev.c:4911, KERNEL.md §3.1)."""
    S.lst[c, L_PL, S.cs[c, CS_PL_N]] = q
    S.cs[c, CS_PL_N] += 1
    if not (S.P[P_GOTO_START] != 0 and S.cs[c, CS_IN_NRA] != 0):
        S.cs[c, CS_PENDING] = 1


@njit(cache=True)
def get_rps_cpu(S, q, h):
    """get_rps_cpu (dev.c:5057): (cpu or -1, rps_dev_flow index or -1) for skb h of queue q.

    RFS first: the rps_sock_flow_table entry must carry this hash's upper bits; the desired CPU
    (where the flow was last read) replaces the flow's current CPU only if that one is unset or
    offline, or its backlog head has passed the flow's last_qtail (no reordering, dev.c:5100-5133).
    Then RPS: map->cpus[reciprocal_scale(hash, map->len)] (dev.c:5146)."""
    ncpu = S.P[P_NCPU]
    hsh = S.pk[h, F_HASH]
    if S.P[P_RFS_MASK] >= 0 and S.P[P_RFLOW_MASK] >= 0:
        cmask = S.P[P_RPS_CPU_MASK]
        ident = S.rsock[hsh & S.P[P_RFS_MASK]]
        if ((ident ^ hsh) & ~cmask & 0xFFFFFFFF) == 0:
            nxt = ident & cmask
            rf = hsh & S.P[P_RFLOW_MASK]
            tcpu = S.rflow[q, rf, 0]
            if tcpu != nxt and (tcpu >= ncpu
                                or S.cs[tcpu, CS_IQ_HEAD] - S.rflow[q, rf, 1] >= 0):
                # set_rps_cpu: the flow moves; last_qtail = the new CPU's input_queue_head
                tcpu = nxt
                if nxt < ncpu:
                    S.rflow[q, rf, 1] = S.cs[nxt, CS_IQ_HEAD]
                S.rflow[q, rf, 0] = nxt
            if tcpu < ncpu:
                return tcpu, rf
    n = S.rmap[q, 0]
    if n > 0:
        return S.rmap[q, 1 + ((hsh * n) >> 32)], -1  # reciprocal_scale(hash, map->len)
    return -1, -1


@njit(cache=True, inline="always")
def flow_limit(S, c, h, qlen):
    """skb_flow_limit (dev.c:5282-5305), on the enqueuing CPU's table: once the target's queue
    holds max_backlog/2, a flow holding more than half of this CPU's last 128 enqueues is
    dropped (FLOW_LIMIT_HISTORY = 128, net/core/dev.h:16)."""
    if qlen < (S.P[P_MAXBL] >> 1):
        return False
    if S.flh[c, 0] == 0:
        return False  # this CPU is not in net.core.flow_limit_cpu_bitmap
    log = S.P[P_FL_LOG]
    hsh = S.pk[h, F_HASH]
    # 6.10+: hash_32(skb_get_hash(skb), fl->log_buckets); before: hash & (num_buckets - 1)
    nf = hash_32(hsh, log) if S.P[P_FL_HASH32] != 0 else hsh & ((1 << log) - 1)
    hd = S.cs[c, CS_FL_HEAD]
    old = S.flh[c, 1 + hd]
    S.flh[c, 1 + hd] = nf
    S.cs[c, CS_FL_HEAD] = (hd + 1) & 127
    if S.flh[c, 129 + old] > 0:
        S.flh[c, 129 + old] -= 1
    S.flh[c, 129 + nf] += 1
    if S.flh[c, 129 + nf] > 64:
        S.cs[c, CS_FL_COUNT] += 1  # softnet_stat flow_limit_count of the enqueuing CPU
        return True
    return False


@njit(cache=True)
def enqueue_to_backlog(S, c, h, tc, q, rf, t):
    """enqueue_to_backlog(skb, tc) run on CPU c (dev.c:5316): False if dropped (CPU_BACKLOG)."""
    qlen = S.cs[tc, CS_BQ_NIN]
    if qlen > S.P[P_MAXBL] or flow_limit(S, c, h, qlen):
        # numa_drop_add(&sd->drop_counters, 1) on the target's softnet_data: column 2 "dropped"
        S.cs[tc, CS_DROPPED] += 1
        S.po[h, O_PCPU] = c
        return False
    qb = S.P[P_NQ] + tc
    if qlen == 0 and S.qs[qb, QS_SCHED] == 0:
        S.qs[qb, QS_SCHED] = 1  # __test_and_set_bit(NAPI_STATE_SCHED, &sd->backlog.state)
        # napi_schedule_rps: a remote CPU goes on this CPU's rps_ipi_list, raising NET_RX here
        # unless inside net_rx_action (its end sends the IPIs); the local backlog is scheduled
        if tc != c:
            S.lst[c, L_RPSIPI, S.cs[c, CS_IPI_N]] = tc
            S.cs[c, CS_IPI_N] += 1
            # 6.5+ (87eff2ec57b6): nor inside napi_threaded_poll, which sends them itself
            # (P_INLINE_ALWAYS is exactly kernel >= 6.5)
            if not (S.P[P_GOTO_START] != 0 and S.cs[c, CS_IN_NRA] != 0) and not (
                    S.cs[c, CS_HS_KS] == HS_NAPI_THREAD and S.P[P_INLINE_ALWAYS] != 0):
                S.cs[c, CS_PENDING] = 1
        else:
            napi_list_add(S, c, qb)
    cap = S.bq.shape[1]
    S.bq[tc, (S.cs[tc, CS_BQ_HEAD] + S.cs[tc, CS_BQ_NPROC] + qlen) % cap] = h
    S.cs[tc, CS_BQ_NIN] = qlen + 1
    S.cs[tc, CS_IQ_TAIL] += 1  # rps_input_queue_tail_incr
    if rf >= 0:
        S.rflow[q, rf, 1] = S.cs[tc, CS_IQ_TAIL]  # rps_input_queue_tail_save(&rflow->last_qtail)
    return True


@njit(cache=True, inline="always")
def backlog_drop(S, c, h, t):
    """kfree_skb_reason(skb, SKB_DROP_REASON_CPU_BACKLOG): the free, as the backlog stage."""
    dd = S.cbase[C_DROP]
    charge(S, c, level_of(S, c), Y_DROP_BL, dd, 1)
    S.se[h, S_BACKLOG] = t + dd
    S.sc[h, S_BACKLOG] = dd
    drop(S, h, S_BACKLOG, R_BACKLOG, t + dd)
    return dd


@njit(cache=True)
def rps_send_ipis(S, c, t):
    """net_rps_send_ipi: one IPI per CPU on this CPU's rps_ipi_list, arriving after latency.ipi."""
    for k in range(S.cs[c, CS_IPI_N]):
        tc = S.lst[c, L_RPSIPI, k]
        S.cs[tc, CS_RPS_CSD] = 1
        e = S.P[P_EIPI0] + tc
        at = t + S.cbase[L_IPI]
        if at < S.ht[e]:
            heap_fix(S.ht, S.hh, S.hp, e, at)
    S.cs[c, CS_IPI_N] = 0


@njit(cache=True, inline="always")
def ipi_fire(S, tc, t):
    """The call-function IPI reaches CPU tc: a hard IRQ whose handler runs the queued csds:
    rps_trigger_softirq (the IRQ's code P_NQ + tc), else only a defer-list kick's
    trigger_rx_softirq (code P_NQ + P_NCPU + tc; the kick's csd also runs with an RPS IPI)."""
    heap_fix(S.ht, S.hh, S.hp, S.P[P_EIPI0] + tc, INF)
    rps = S.cs[tc, CS_RPS_CSD] != 0
    S.cs[tc, CS_RPS_CSD] = 0
    deliver_irq(S, tc, S.P[P_NQ] + tc if rps else S.P[P_NQ] + S.P[P_NCPU] + tc, t)


@njit(cache=True, inline="always")
def rps_trigger_softirq(S, c, qb):
    """____napi_schedule(sd, &sd->backlog); received_rps++ (dev.c, KERNEL.md §1 row 5a)."""
    napi_list_add(S, c, qb)
    S.cs[c, CS_RPS_RECV] += 1


# ------------------------------------------------------------------ Deferred skb freeing
# skb_attempt_defer_free (net/core/skbuff.c, 5.19+; TCP's tcp_eat_recv_skb from 5.19, UDP's
# skb_consume_udp from 6.18, KERNEL.md §3b): a consumed skb whose alloc_cpu is another CPU is
# not freed by the reader but put on that CPU's sd->defer_list, unless defer_count has reached
# skb_defer_max (then freed here). When defer_count before the add equals skb_defer_max >> 1
# ("Send an IPI every time queue reaches half capacity") and no kick is in flight
# (defer_ipi_scheduled), smp_call_function_single_async runs trigger_rx_softirq on the
# allocating CPU: NET_RX is raised there and its net_rx_action frees the list
# (skb_defer_free_flush at the top of every loop turn, which also resets defer_count).
# Simplifications: the free costs fixed.skb_free on either CPU; PREEMPT_RT's backlog-NAPI kick
# (use_backlog_threads) is not modelled.


@njit(cache=True)
def skb_attempt_defer_free(S, c, h, t):
    """The reader on CPU c consumes skb h: its free, here or deferred. Returns the reader's ns."""
    ac = S.po[h, O_ACPU]
    n = S.po[h, O_SKBCNT]
    dco = S.cbase[C_CONSUME]
    if ac < 0 or ac == c or S.cs[ac, CS_DEFER_N] >= S.P[P_DEFER_MAX]:
        charge(S, c, 0, Y_CONSUME, dco, n)  # nodefer: kfree_skb_napi_cache here
        return dco
    dfree = S.cbase[C_SKB_FREE]
    d = max(dco - dfree, 0)
    charge(S, c, 0, Y_CONSUME, d, n)
    kick = S.cs[ac, CS_DEFER_N] == (S.P[P_DEFER_MAX] >> 1)
    S.cs[ac, CS_DEFER_N] += 1
    S.cs[ac, CS_DEFER_NS] += dfree
    S.cs[ac, CS_DEFERRED] += 1
    if kick and S.cs[ac, CS_DEFER_CSD] == 0:
        # kick_defer_list_purge: cmpxchg(&sd->defer_ipi_scheduled, 0, 1), then
        # smp_call_function_single_async(cpu, &sd->defer_csd); one IPI carries every queued csd
        S.cs[ac, CS_DEFER_CSD] = 1
        S.cs[ac, CS_DEFER_KICKS] += 1
        ds = S.cbase[C_IPI_SEND]
        charge(S, c, 0, Y_DEFER_KICK, ds, 0)
        d += ds
        e = S.P[P_EIPI0] + ac
        at = t + d + S.cbase[L_IPI]
        if at < S.ht[e]:
            heap_fix(S.ht, S.hh, S.hp, e, at)
    return d


@njit(cache=True)
def skb_defer_free_flush(S, c, t):
    """skb_defer_free_flush(sd): take the whole defer list (defer_count = 0) and free each skb
    (napi_consume_skb), a step of fixed.skb_free per skb in net_rx_action's context."""
    d = S.cs[c, CS_DEFER_NS]
    S.cs[c, CS_DEFER_N] = 0
    S.cs[c, CS_DEFER_NS] = 0
    charge(S, c, level_of(S, c), Y_DEFER_FREE, d, 0)
    start_step(S, c, t, ST_NRA_ENTRY, 0, d)


@njit(cache=True)
def nra_exit_ipi(S, c, t, broke):
    """net_rx_action's tail: net_rps_action_and_irq_enable sends the pending IPIs (a step of
    fixed.ipi_send each), then the exit proper (dev.c:6569, KERNEL.md §3.1 step 4)."""
    n = S.cs[c, CS_IPI_N]
    if n == 0 or S.cs[c, CS_HS_KS] == HS_BUSY:
        nra_exit(S, c, t, broke)
        return
    d = n * S.cbase[C_IPI_SEND]
    charge(S, c, level_of(S, c), Y_IPI_SEND, d, 0)
    rps_send_ipis(S, c, t + d)
    S.cs[c, CS_IPI_BROKE] = 1 if broke else 0
    S.cs[c, CS_PHASE] = PH_IPI_EXIT
    start_step(S, c, t, ST_IPI, 0, d)


@njit(cache=True)
def backlog_poll_start(S, c, q, t):
    """__napi_poll of the backlog NAPI: process_backlog first sends IPIs still waiting."""
    S.cs[c, CS_POLLQ] = q
    S.cs[c, CS_WORK] = 0
    S.cs[c, CS_POLL_T] = t
    S.qs[q, QS_POLLS] += 1
    S.cs[c, CS_PHASE] = PH_BLOG
    lv = level_of(S, c)
    d = S.cbase[C_BL_POLL]
    charge(S, c, lv, Y_BL_POLL, d, 0)
    n = S.cs[c, CS_IPI_N]
    if n > 0:
        di = n * S.cbase[C_IPI_SEND]
        charge(S, c, lv, Y_IPI_SEND, di, 0)
        d += di
        rps_send_ipis(S, c, t + d)
    start_step(S, c, t, ST_POLL_START, q, d)


@njit(cache=True)
def backlog_next(S, c, q, t):
    """process_backlog (dev.c:6595): one skb of process_queue through __netif_receive_skb, the
    quota (dev_weight) check, the splice of input_pkt_queue, or the inline __napi_complete."""
    if S.cs[c, CS_WORK] >= S.P[P_BL_WEIGHT]:
        S.cs[c, CS_IQ_HEAD] += S.cs[c, CS_WORK]  # rps_input_queue_head_add(sd, work)
        S.cs[c, CS_PHASE] = PH_END_FULL  # work == weight: __napi_poll repolls it
        return
    if S.cs[c, CS_BQ_NPROC] > 0:
        h = S.bq[c, S.cs[c, CS_BQ_HEAD]]
        S.cs[c, CS_BQ_HEAD] = (S.cs[c, CS_BQ_HEAD] + 1) % S.bq.shape[1]
        S.cs[c, CS_BQ_NPROC] -= 1
        S.cs[c, CS_WORK] += 1
        S.rxl[q, 0] = h
        S.qs[q, QS_RX_N] = 1
        S.qs[q, QS_RX_SEG] = S.po[h, O_SKBCNT]
        S.cs[c, CS_FLUSH_RET] = PH_BLOG
        S.cs[c, CS_PHASE] = PH_FLUSH
        S.cs[c, CS_LSTEP] = 0
        return
    if S.cs[c, CS_BQ_NIN] == 0:
        S.qs[q, QS_SCHED] = 0  # napi->state &= NAPIF_STATE_THREADED: done, off the list
        S.cs[c, CS_IQ_HEAD] += S.cs[c, CS_WORK]
        poll_end(S, c, q, t, True)
        return
    S.cs[c, CS_BQ_NPROC] += S.cs[c, CS_BQ_NIN]  # skb_queue_splice_tail_init(input, process)
    S.cs[c, CS_BQ_NIN] = 0


@njit(cache=True)
def backlog_core_pre(S, q):
    """Before list_core runs the backlog's skb: keep the enqueue's netif times aside."""
    for k in range(S.qs[q, QS_RX_N]):
        h = S.rxl[q, k]
        S.se[h, S_BACKLOG] = S.se[h, S_NETIF]
        S.sc[h, S_BACKLOG] = S.sc[h, S_NETIF]


@njit(cache=True)
def backlog_core_post(S, c, q):
    """After list_core: its __netif_receive_skb_core work is the `backlog` stage (run by
    process_backlog on this CPU) and `netif` is again the enqueue on the producing CPU; the
    CPU charged moves to the backlog stage's slots so packets and cpu.parquet agree."""
    lv = level_of(S, c)
    for k in range(S.qs[q, QS_RX_N]):
        h = S.rxl[q, k]
        te = S.se[h, S_BACKLOG]
        ce = S.sc[h, S_BACKLOG]
        S.se[h, S_BACKLOG] = S.se[h, S_NETIF]
        S.sc[h, S_BACKLOG] = S.sc[h, S_NETIF]
        S.se[h, S_NETIF] = te
        S.sc[h, S_NETIF] = ce
        d = cost(S, C_NETIF, S.po[h, O_SKBLEN])
        f = S.po[h, O_SKBCNT]
        S.acc[c, lv, Y_NETIF] -= d
        S.accf[c, lv, Y_NETIF] -= f
        acc_mark(S, c, lv, Y_NETIF)
        charge(S, c, lv, Y_BL_CORE, d, f)
        if S.po[h, O_OUTC] == O_DROPPED and S.po[h, O_DSTAGE] == S_NETIF:
            S.po[h, O_DSTAGE] = S_BACKLOG
            dd = S.cbase[C_DROP]
            S.acc[c, lv, Y_DROP_NETIF] -= dd
            S.accf[c, lv, Y_DROP_NETIF] -= 1
            acc_mark(S, c, lv, Y_DROP_NETIF)
            charge(S, c, lv, Y_DROP_BL, dd, 1)


@njit(cache=True)
def rps_next(S, c, q, t):
    """netif_receive_skb_list_internal with rps_needed: each skb of the rx_list that get_rps_cpu
    steers leaves the list for enqueue_to_backlog (one step each); the rest stays for the list
    path. True if a step started."""
    pos = S.cs[c, CS_LPOS]
    n = S.qs[q, QS_RX_N]
    while pos < n:
        h = S.rxl[q, pos]
        pos += 1
        tc, rf = get_rps_cpu(S, q, h)
        if tc < 0:
            S.rxl[q, S.cs[c, CS_RPS_KEEP]] = h
            S.cs[c, CS_RPS_KEEP] += 1
            continue
        S.cs[c, CS_LPOS] = pos
        S.cs[c, CS_RPS_TC] = tc
        S.cs[c, CS_RPS_RF] = rf
        d = cost(S, C_BACKLOG, S.po[h, O_SKBLEN])
        charge(S, c, level_of(S, c), Y_RPS, d, S.po[h, O_SKBCNT])
        S.se[h, S_NETIF] = t + d
        S.sc[h, S_NETIF] = d
        start_step(S, c, t, ST_RPS, h, d)
        return True
    S.qs[q, QS_RX_N] = S.cs[c, CS_RPS_KEEP]
    S.cs[c, CS_RPS_KEEP] = 0
    S.cs[c, CS_LPOS] = 0
    if S.qs[q, QS_RX_N] == 0:
        S.qs[q, QS_RX_SEG] = 0
        S.cs[c, CS_PHASE] = S.cs[c, CS_FLUSH_RET]
    else:
        S.cs[c, CS_LSTEP] = 2  # the rest through __netif_receive_skb_list_core
        S.cs[c, CS_PHASE] = PH_FLUSH
    return False


@njit(cache=True)
def rps_done(S, c, h, t):
    """End of an ST_RPS step: the enqueue happens now; a drop frees the skb (a short step).
    True if a step started."""
    ok = enqueue_to_backlog(S, c, h, S.cs[c, CS_RPS_TC], S.cs[c, CS_POLLQ], S.cs[c, CS_RPS_RF], t)
    if ok:
        return False
    dd = backlog_drop(S, c, h, t)
    start_step(S, c, t, ST_WAKE, h, dd)
    return True


@njit(cache=True, inline="always")
def rfs_record(S, c, h):
    """sock_rps_record_flow at recvmsg of an established socket: the flow's desired CPU is the
    reader's (rps_record_sock_flow: hash's upper bits | cpu)."""
    if S.P[P_RFS_MASK] < 0:
        return
    hsh = S.pk[h, F_HASH]
    cm = S.P[P_RPS_CPU_MASK]
    S.rsock[hsh & S.P[P_RFS_MASK]] = (hsh & ~cm & 0xFFFFFFFF) | c


# ---- the veth sender (KERNEL.md §3c): a task on nic.sender-cpu that sends every packet:
# its own transmit work up to the tap (fixed.tx), veth_xmit (the driver stage), netif_rx ->
# enqueue_to_backlog (the netif stage), then rcu_read_unlock_bh -> local_bh_enable runs NET_RX
# in its context, so the receive path's Command is the sender's.


@njit(cache=True)
def sender_arrival(S, i, t):
    """Packet i is due (its tap time less the sender's own work): hand it to the sender."""
    k = S.P[P_SENDER]
    S.ts[k, TS_MSG_N] += 1
    S.qs[0, QS_ACCEPTED] += 1
    S.qs[0, QS_BYTES] += S.pk[i, F_PLEN]
    if S.ts[k, TS_STATE] != T_SLEEP:
        return
    c = S.ts[k, TS_CPU]
    if S.cs[c, CS_X] == X_IDLE and S.cs[c, CS_TASK] < 0 and S.cs[c, CS_RQ_N] == 0:
        # tcpreplay spins on its CPU between packets: no wake-up latency, no context switch
        S.cs[c, CS_TASK] = k
        S.cs[c, CS_X] = X_TASK
        S.cs[c, CS_SLICE_END] = t + S.P[P_SLICE]
        S.ts[k, TS_STATE] = T_RUNNING
        S.ts[k, TS_SPAN_T] = t
        sender_advance(S, k, c, t)
        return
    S.ts[k, TS_STATE] = T_RUNNABLE
    rq_push(S, c, k)
    if S.cs[c, CS_X] == X_IDLE:
        schedule(S, c, t)


@njit(cache=True)
def sender_advance(S, k, c, t):
    """The sender's loop: the next due packet's transmit work, or wait (spin) for one."""
    if S.cs[c, CS_RQ_N] > 0 and t >= S.cs[c, CS_SLICE_END]:
        flush_span(S, c, 0, S.ts[k, TS_SPAN_T], t, CTXR_TASK, comm_of_task(S, c, k))
        S.ts[k, TS_STATE] = T_RUNNABLE
        rq_push(S, c, k)
        schedule(S, c, t)
        return
    i = S.ts[k, TS_MSG_I]
    if i < S.ts[k, TS_MSG_N]:
        # the capture's tap time is ground truth for when the packet reached veth_xmit, so the
        # sender's own work (fixed.tx) ends there; a sender the model made late has no time left
        # for it (the real one did it within the captured gap)
        d = min(S.cbase[C_TX], max(0, S.pk[i, F_T_WIRE] - t))
        charge(S, c, 0, Y_TX, d, 1)
        start_step(S, c, t, ST_TX, i, d)
        return
    flush_span(S, c, 0, S.ts[k, TS_SPAN_T], t, CTXR_TASK, comm_of_task(S, c, k))
    S.ts[k, TS_STATE] = T_SLEEP
    schedule(S, c, t)


@njit(cache=True)
def sender_bh_enable(S, c, t):
    """local_bh_enable at the end of __dev_queue_xmit: do_softirq in the sender's context when
    NET_RX is pending (4.9-6.4: not while ksoftirqd is runnable, KERNEL.md §3.4, §3b)."""
    if S.cs[c, CS_PENDING] != 0 and (S.P[P_INLINE_ALWAYS] != 0 or S.cs[c, CS_KS_STATE] == 0):
        S.cs[c, CS_REM] = 0
        S.cs[c, CS_RESUME_STEP] = ST_TXNEXT
        S.cs[c, CS_RESUME_ARG] = 0
        softirq_begin(S, c, t, 0)
        return
    sender_advance(S, S.cs[c, CS_TASK], c, t)


@njit(cache=True)
def sender_complete(S, c, step, i, t):
    """The end of one of the sender's steps."""
    k = S.cs[c, CS_TASK]
    if step == ST_TX:
        # veth_xmit -> veth_forward_skb -> __netif_rx -> enqueue_to_backlog, or (GRO/XDP on the
        # peer) -> veth_xdp_rx into the ptr_ring
        single_skb(S, i)
        dd = cost(S, C_DRIVER, S.pk[i, F_PLEN])
        de = cost(S, C_BACKLOG, S.pk[i, F_PLEN]) if S.P[P_VETH] == 1 else 0
        S.po[i, O_ACPU] = c  # __alloc_skb in the sender's stack: skb->alloc_cpu
        charge(S, c, 0, Y_DRIVER, dd, 1)
        charge(S, c, 0, Y_RPS, de, 1)
        S.se[i, S_DRIVER] = t + dd
        S.sc[i, S_DRIVER] = dd
        if S.P[P_VETH] == 1:
            S.se[i, S_NETIF] = t + dd + de
            S.sc[i, S_NETIF] = de
        S.po[i, O_PCPU] = c
        start_step(S, c, t, ST_XMIT, i, dd + de)
    elif step == ST_XMIT:
        S.ts[k, TS_MSG_I] += 1
        if S.P[P_VETH] == 2:
            if veth_xdp_rx(S, c, i, t):
                sender_bh_enable(S, c, t)
            else:
                dd = S.cbase[C_DROP]
                charge(S, c, 0, Y_DROP_DRV, dd, 1)  # the driver stage, as packets.parquet has it
                S.sc[i, S_DRIVER] += dd
                S.se[i, S_DRIVER] = t + dd
                drop(S, i, S_DRIVER, R_NOTSPEC, t + dd)
                start_step(S, c, t, ST_TXFREE, i, dd)
            return
        # netif_rx_internal: get_rps_cpu, else this CPU (smp_processor_id())
        tc, rf = get_rps_cpu(S, 0, i)
        if tc < 0:
            tc = c
        if enqueue_to_backlog(S, c, i, tc, 0, rf, t):
            sender_bh_enable(S, c, t)
        else:
            dd = backlog_drop(S, c, i, t)
            start_step(S, c, t, ST_TXFREE, i, dd)
    elif step == ST_TXFREE:
        sender_bh_enable(S, c, t)
    else:  # ST_TXNEXT: back from the softirq
        sender_advance(S, k, c, t)


@njit(cache=True)
def veth_xdp_rx(S, c, i, t):
    """GRO or XDP on the peer (rq->napi set): veth_xdp_rx puts the skb on the queue's
    VETH_RING_SIZE (256) ptr_ring, then __veth_xdp_flush schedules its NAPI on this CPU unless
    rx_notify_masked (drivers/net/veth.c). A full ring refuses it: with veth's default noqueue
    there is no qdisc to push back on, so veth_xmit frees it (dev_kfree_skb_any). False if so."""
    q = S.pk[i, F_QUE]
    if S.qs[q, QS_RING_N] >= S.P[P_RING_USABLE]:
        return False
    R = S.ringbuf.shape[1]
    S.ringbuf[q, S.qs[q, QS_TAIL]] = i
    S.qs[q, QS_TAIL] = (S.qs[q, QS_TAIL] + 1) % R
    S.qs[q, QS_RING_N] += 1
    if S.qs[q, QS_IRQ_EN] != 0:  # !rx_notify_masked
        if S.qs[q, QS_SCHED] == 0:
            S.qs[q, QS_IRQ_EN] = 0  # rx_notify_masked = true
        napi_schedule(S, c, q, t)  # napi_schedule_prep (MISSED if running) + __napi_schedule
    return True


@njit(cache=True, inline="always")
def veth_notify_rearm(S, q):
    """veth_poll after napi_complete_done: rx_notify_masked = false (the sender's next
    __veth_xdp_flush schedules the NAPI again)."""
    S.qs[q, QS_IRQ_EN] = 1
    S.qs[q, QS_ARMS] += 1


# ------------------------------------------------------------------------------ busy polling
# A reader whose socket has sk_ll_usec (SO_BUSY_POLL, else net.core.busy_read at socket
# creation) and an empty receive queue calls sk_busy_loop -> napi_busy_loop(sk_napi_id,
# sk_busy_loop_end, ..., BUSY_POLL_BUDGET) before it sleeps (__skb_recv_udp; tcp_recvmsg).
# __napi_busy_loop (net/core/dev.c), per turn of its for(;;):
# - not yet owning the NAPI: if NAPIF_STATE_SCHED (an interrupt's softirq or another poller
#   has it) or IN_BUSY_POLL is set, nothing is polled this turn; else it takes SCHED and
#   IN_BUSY_POLL and keeps them across turns;
# - owning: napi->poll(napi, 8) (the driver's poll in process context, on the reader's CPU and
#   in its Command), then gro_normal_list; napi_complete_done returns false at once while
#   IN_BUSY_POLL is set, so the interrupt stays masked and held GRO packets stay held;
# - LINUX_MIB_BUSYPOLLRXPACKETS += the poll's work; local_bh_enable (pending softirqs run);
# - loop_end: the socket's queue is not empty, or sk_busy_loop_timeout: busy_loop_current_time
#   (local_clock() >> 10) after start + sk_ll_usec; need_resched: busy_poll_stop, cond_resched;
# - busy_poll_stop: clear MISSED and IN_BUSY_POLL, napi->poll once more (now napi_complete_done
#   may complete: GRO flush, IRQ re-armed); if it used the whole budget, __napi_schedule here.
# An interrupt that comes while the poller owns the NAPI finds SCHED set: napi_schedule_prep
# sets MISSED and the vector stays masked until busy_poll_stop's poll completes.
# Turns that poll nothing are one step (a spin) that ends at the first turn boundary at or
# after the event the loop would see (a descriptor for the owner, data in the queue, the NAPI
# released): bp_kick. The spin's CPU is charged per turn: napi_busy_loop (fixed.busy_loop) and,
# for the owner, the driver's poll (fixed.napi_poll). The budget of each napi->poll is the
# socket's sk_busy_poll_budget ([[app]] busy-poll-budget, SO_BUSY_POLL_BUDGET) or 8;
# SO_PREFER_BUSY_POLL: "preferred busy polling" below. Not modelled: poll()/select() busy
# polling.


@njit(cache=True, inline="always")
def bp_deadline(S, k, s):
    """The first ns at which sk_busy_loop_timeout holds: time_after(now, start + sk_ll_usec) in
    busy_loop_current_time() units (local_clock() >> 10, include/net/busy_poll.h)."""
    return ((S.ts[k, TS_BP_START] >> 10) + S.ss[s, SS_LL_USEC] + 1) << 10


@njit(cache=True, inline="always")
def bp_mark_napi(S, s, h):
    """sk_mark_napi_id (TCP, connected UDP: every skb) / sk_mark_napi_id_once (unconnected UDP:
    the first skb only), __udp_queue_rcv_skb and tcp_v4_do_rcv; the skb's napi_id is the NIC
    queue's NAPI that ran GRO on it."""
    if S.ss[s, SS_PROTO] == 17 and S.ss[s, SS_CONN] == 0 and S.ss[s, SS_NAPI] != 0:
        return
    S.ss[s, SS_NAPI] = S.pk[h, F_QUE] + 1


@njit(cache=True)
def bp_spin(S, c, k, t, p, pollns, m):
    """Turns of the busy loop that poll nothing, each p ns (pollns of it the driver's empty
    poll): m of them, or (m = 0) until the loop would time out or yield."""
    s = S.ts[k, TS_SOCK]
    p = max(p, 1)
    if m == 0:
        lim = bp_deadline(S, k, s)
        if S.cs[c, CS_RQ_N] > 0 and S.cs[c, CS_SLICE_END] < lim:
            lim = S.cs[c, CS_SLICE_END]  # need_resched() is checked at each turn's end
        m = max(1, (lim - t + p - 1) // p)
    charge(S, c, 0, Y_BUSY, m * (p - pollns), 0)
    if pollns > 0:
        charge(S, c, 0, Y_POLL, m * pollns, 0)
        S.qs[S.ts[k, TS_BP_OWN], QS_POLLS] += m
    S.ts[k, TS_BP_P] = p
    S.ts[k, TS_BP_POLLNS] = pollns
    S.ts[k, TS_BP_SPIN] = 1
    start_step(S, c, t, ST_BUSY, k, m * p)


@njit(cache=True, inline="always")
def bp_unspin(S, c, k, cut):
    """Take back the charges of the spin's turns that will not run (cut ns of them)."""
    p = S.ts[k, TS_BP_P]
    r = cut // p
    pn = S.ts[k, TS_BP_POLLNS]
    S.acc[c, 0, Y_BUSY] -= r * (p - pn)
    acc_mark(S, c, 0, Y_BUSY)
    if pn > 0:
        S.acc[c, 0, Y_POLL] -= r * pn
        acc_mark(S, c, 0, Y_POLL)
        S.qs[S.ts[k, TS_BP_OWN], QS_POLLS] -= r
    S.cs[c, CS_BUSY] -= cut


@njit(cache=True)
def bp_kick(S, k, t):
    """Something reader k's busy loop tests changed at t: its spin ends at the first turn
    boundary at or after t (the turn running at t sees it at its end or next start)."""
    if S.ts[k, TS_BP_SPIN] == 0:
        return
    c = S.ts[k, TS_CPU]
    if S.cs[c, CS_TASK] != k:
        return
    p = S.ts[k, TS_BP_P]
    if S.cs[c, CS_X] == X_TASK and S.cs[c, CS_STEP] == ST_BUSY:
        end = S.cs[c, CS_NEXT]
        cut = ((end - t) // p) * p if end > t else 0
        if cut > 0:
            bp_unspin(S, c, k, cut)
            S.cs[c, CS_NEXT] = end - cut
            heap_set(S, S.P[P_ECPU0] + c, end - cut)
    elif S.cs[c, CS_X] != X_TASK and S.cs[c, CS_RESUME_STEP] == ST_BUSY:
        # interrupted mid-spin: the turn under way finishes after the interruption
        rem = S.cs[c, CS_REM]
        cut = (rem // p) * p
        if cut > 0:
            bp_unspin(S, c, k, cut)
            S.cs[c, CS_REM] = rem - cut


@njit(cache=True)
def bp_kick_queue(S, q, t):
    """A descriptor of queue q became visible: its busy-polling owner polls next turn."""
    for k in range(S.P[P_NTHR]):
        if S.ts[k, TS_BP_OWN] == q:
            bp_kick(S, k, t)


@njit(cache=True)
def bp_kick_napi(S, q, t):
    """Queue q's NAPI left NAPI_STATE_SCHED: a busy loop waiting for it may take it."""
    for k in range(S.P[P_NTHR]):
        if S.ts[k, TS_BP_START] >= 0 and S.ts[k, TS_BP_OWN] < 0 and S.ts[k, TS_BP_Q] == q:
            bp_kick(S, k, t)


@njit(cache=True)
def bp_kick_sock(S, s, t):
    """Socket s's receive queue got an skb: its busy-polling readers' loop_end holds."""
    for k in range(S.P[P_NTHR]):
        if S.ts[k, TS_SOCK] == s:
            bp_kick(S, k, t)


@njit(cache=True)
def bp_poll(S, c, q, t, mode):
    """napi->poll(napi, BUSY_POLL_BUDGET) in the reader's context: the poll machine with one
    NAPI on its list, no netdev budget or time limit, mode BP_ITER (inside the loop) or BP_STOP
    (busy_poll_stop's last poll)."""
    S.cs[c, CS_HS_KS] = HS_BUSY
    S.cs[c, CS_BP_MODE] = mode
    S.cs[c, CS_RL_N] = 0
    poll_one_napi(S, c, q, t)


@njit(cache=True)
def bp_after_poll(S, c, t):
    """The busy poll's napi->poll returned (and gro_normal_list ran): local_bh_enable runs
    pending softirqs in the reader's context (4.9-6.4: not while ksoftirqd is runnable), then
    the loop goes on (ST_BP_NEXT)."""
    mode = S.cs[c, CS_BP_MODE]
    if bh_enable_after_poll(S, c, t, ST_BP_NEXT, mode):
        return
    start_step(S, c, t, ST_BP_NEXT, mode, 0)


@njit(cache=True)
def bp_iterate(S, c, k, t):
    """The top of a turn: take the NAPI if free, then poll it (a descriptor waits) or spin."""
    q = S.ts[k, TS_BP_Q]
    if S.ts[k, TS_BP_OWN] < 0:
        if S.qs[q, QS_SCHED] != 0:
            if S.ss[S.ts[k, TS_SOCK], SS_PREFER] != 0:
                S.qs[q, QS_PREFER] = 1  # set_bit(NAPI_STATE_PREFER_BUSY_POLL) before goto count
            bp_spin(S, c, k, t, S.cbase[C_BUSY], 0, 0)  # goto count: nothing polled
            return True
        # cmpxchg: SCHED | IN_BUSY_POLL, kept as 2 so that a napi kthread can tell the busy
        # poller's ownership from its own SCHED_THREADED one (napi_thread_next)
        S.qs[q, QS_SCHED] = 2
        S.ts[k, TS_BP_OWN] = q
    if S.qs[q, QS_RING_N] > 0:
        # napi_busy_loop's budget: READ_ONCE(sk->sk_busy_poll_budget) ?: BUSY_POLL_BUDGET
        # (sk_busy_loop, include/net/busy_poll.h; SO_BUSY_POLL_BUDGET, 5.11+)
        S.cs[c, CS_BP_BUDGET] = S.ss[S.ts[k, TS_SOCK], SS_BP_BUDGET]
        bp_poll(S, c, q, t, BP_ITER)
        return True
    bp_spin(S, c, k, t, S.cbase[C_POLL] + S.cbase[C_BUSY], S.cbase[C_POLL], 0)
    return True


@njit(cache=True)
def bp_step(S, k, c, t):
    """Reader k's busy-loop phases (TP_BUSY*). True if a step started or the reader left the
    CPU; False when the loop is over and thread_advance goes on (TP_RETRY / TP_BLOCK)."""
    s = S.ts[k, TS_SOCK]
    ph = S.ts[k, TS_PHASE]
    if ph == TP_BUSY:
        if S.ts[k, TS_BP_START] < 0:
            if S.ss[s, SS_QN] > 0:  # data came during the system call
                S.ts[k, TS_PHASE] = TP_RETRY
                return False
            if S.ss[s, SS_NAPI] == 0:  # no skb marked a napi id yet: sk_busy_loop returns
                S.ts[k, TS_PHASE] = TP_BLOCK
                return False
            S.ts[k, TS_BP_START] = t
            S.ts[k, TS_BP_Q] = S.ss[s, SS_NAPI] - 1
            S.ts[k, TS_BP_OWN] = -1
        return bp_iterate(S, c, k, t)
    if ph == TP_BUSY_CHK or ph == TP_BUSY_RESUME:
        end = S.ss[s, SS_QN] > 0 or t >= bp_deadline(S, k, s)
        if ph == TP_BUSY_RESUME:
            S.ts[k, TS_BP_YIELD] = 0
            if end:  # after cond_resched: "if (loop_end(...)) return"
                S.ts[k, TS_BP_START] = -1
                S.ts[k, TS_PHASE] = TP_BLOCK
                return False
            S.ts[k, TS_PHASE] = TP_BUSY
            return bp_iterate(S, c, k, t)
        yld = (not end) and S.cs[c, CS_RQ_N] > 0 and t >= S.cs[c, CS_SLICE_END]
        if not end and not yld:
            S.ts[k, TS_PHASE] = TP_BUSY
            return bp_iterate(S, c, k, t)
        S.ts[k, TS_BP_YIELD] = 1 if yld else 0
        q = S.ts[k, TS_BP_OWN]
        if q >= 0:
            # busy_poll_stop: clear MISSED and IN_BUSY_POLL, one more napi->poll
            S.qs[q, QS_MISSED] = 0
            S.ts[k, TS_PHASE] = TP_BUSY_END
            # busy_poll_stop's napi->poll(napi, budget) takes the loop's budget too (5.11+)
            S.cs[c, CS_BP_BUDGET] = S.ss[s, SS_BP_BUDGET]
            S.cs[c, CS_BP_SKIP] = 0
            if S.ss[s, SS_PREFER] != 0:
                bp_stop_prefer(S, c, q, t)
            bp_poll(S, c, q, t, BP_STOP)
            return True
    # TP_BUSY_END: the loop is over
    S.ts[k, TS_BP_OWN] = -1
    if S.ts[k, TS_BP_YIELD] != 0:
        flush_span(S, c, 0, S.ts[k, TS_SPAN_T], t, CTXR_TASK, comm_of_task(S, c, k))
        S.ts[k, TS_STATE] = T_RUNNABLE
        S.ts[k, TS_PHASE] = TP_BUSY_RESUME
        rq_push(S, c, k)
        schedule(S, c, t)
        return True
    S.ts[k, TS_BP_START] = -1
    S.ts[k, TS_PHASE] = TP_BLOCK
    return False


# ------------------------------------------------------------- hardware receive aggregation
# ethtool -K lro on (NETIF_F_LRO): the NIC merges in-order TCP segments of a flow into one
# receive buffer before it writes the descriptor back, so the ring, the driver's per-packet
# work and the stack see one skb of N segments. Modelled: ixgbe's RSC (82599 and later) and
# mlx5's LRO. A session opens at a TCP segment with data and only ACK set (PSH, FIN, SYN, RST,
# URG, CWR, or an empty segment: written back alone), takes one descriptor, and appends the
# flow's next segments while they continue its sequence with the same ACK, TCP options and IP
# TTL/TOS/DF and are no longer than the first (the merge rules tcp_gro_receive applies, taken
# as the NIC's); it is written back (the descriptor completes, moderation counts it) when a
# segment does not match (before that segment), at a PSH or short segment, at the size limit
# (P_HW_MAXSEG segments, P_HW_MAXLEN payload bytes), at its timer (mlx5: the LRO timeout, 32 us
# by default; ixgbe: the queue's ITR interval, at whose expiry 82599 closes its RSCs), or when
# a new flow needs a session and all P_HW_NSESS are open (the oldest goes). The skb reaches
# dev_gro_receive with gso_size set (ixgbe: ceil(len / append_cnt), mlx5: ceil(cqe_bcnt /
# lro_num_seg)); tcp_gro_receive flushes it (gso_size != the held mss, or len != count *
# gso_size at out_check_final), so software GRO completes a held skb of the same flow and
# passes the aggregate on; segments the NIC did not merge take software GRO as before.
# mlx5's hardware GRO (SHAMPO, rx-gro-hw) is below; bnxt's TPA is not modelled.


@njit(cache=True, inline="always")
def hw_find(S, q, f):
    for s in range(S.P[P_HW_NSESS]):
        if S.hw[q, s, HW_USED] != 0 and S.hw[q, s, HW_FLOW] == f:
            return s
    return -1


@njit(cache=True)
def hw_arm(S, q):
    """The session timer of queue q at its earliest deadline."""
    best = INF
    for s in range(S.P[P_HW_NSESS]):
        if S.hw[q, s, HW_USED] != 0 and S.hw[q, s, HW_DEADLINE] < best:
            best = S.hw[q, s, HW_DEADLINE]
    if best != S.qs[q, QS_HW_TMR]:
        S.qs[q, QS_HW_TMR] = best
        heap_set(S, S.P[P_EHW0] + q, best)


@njit(cache=True)
def hw_close(S, q, s, t):
    """Session s is written back at t: its descriptor completes with the whole aggregate."""
    head = S.hw[q, s, HW_HEAD]
    cnt = S.hw[q, s, HW_CNT]
    S.hw[q, s, HW_USED] = 0
    S.qs[q, QS_HW_N] -= 1
    if cnt > 1:
        S.qs[q, QS_HW_FLUSH] += 1  # ixgbe rsc_flush; mlx5 lro_packets
        # the aggregate's frame: the first segment's headers and every segment's payload
        S.qs[q, QS_HW_BYTES] += S.pk[head, F_PLEN] - S.pk[head, F_PAYLEN] + S.hw[q, s, HW_LEN]
    S.pk[head, F_T_VIS] = t  # the descriptor is visible from now
    R = S.ringbuf.shape[1]
    S.ringbuf[q, S.qs[q, QS_TAIL]] = head
    S.qs[q, QS_TAIL] = (S.qs[q, QS_TAIL] + 1) % R
    S.qs[q, QS_RING_N] += 1
    moderation_arm(S, q, t)
    if S.P[P_BUSY] != 0:
        bp_kick_queue(S, q, t)


@njit(cache=True)
def hw_receive(S, q, i, t):
    """Packet i reaches the NIC's aggregation at t. True if it joined or opened a session;
    False if it is written back alone (the caller's ring path)."""
    k = S.pk[i, F_KIND]
    if k != K_TCP and k != K_TCP_CTRL:
        return False
    f = S.pk[i, F_FLOWK]
    s = hw_find(S, q, f)
    ln = S.pk[i, F_PAYLEN]
    fl = S.pk[i, F_FLAGS]
    only_ack = (fl & ~(TCP_ACK | TCP_PSH)) == 0
    elig = k == K_TCP and S.pk[i, F_GRO_OK] != 0 and ln > 0 and only_ack
    if s >= 0:
        cnt = S.hw[q, s, HW_CNT]
        mss = S.hw[q, s, HW_MSS]
        if elig and (S.pk[i, F_SEQ] & 0xFFFFFFFF) == S.hw[q, s, HW_NEXTSEQ] \
                and S.pk[i, F_ACK] == S.hw[q, s, HW_ACK] and S.pk[i, F_OPTH] == S.hw[q, s, HW_OPT] \
                and S.pk[i, F_TTL] == S.hw[q, s, HW_TTL] and S.pk[i, F_TOS] == S.hw[q, s, HW_TOS] \
                and S.pk[i, F_DF] == S.hw[q, s, HW_DF] and ln <= mss \
                and S.hw[q, s, HW_LEN] + ln <= S.P[P_HW_MAXLEN]:
            head = S.hw[q, s, HW_HEAD]
            S.po[S.hw[q, s, HW_LAST], O_SEGNEXT] = i
            S.hw[q, s, HW_LAST] = i
            S.hw[q, s, HW_CNT] = cnt + 1
            S.hw[q, s, HW_LEN] += ln
            S.hw[q, s, HW_NEXTSEQ] = (S.hw[q, s, HW_NEXTSEQ] + ln) & 0xFFFFFFFF
            S.po[i, O_SKBH] = head
            S.po[i, O_SKBCNT] = 0
            S.po[head, O_SKBCNT] += 1
            S.po[head, O_SKBLEN] += ln
            S.po[head, O_SKBTRUE] += S.pk[i, F_TRUESIZE] - SKB_STRUCT
            S.qs[q, QS_HW_AGG] += 1  # ixgbe append_cnt; mlx5 lro_num_seg - 1
            S.qs[q, QS_BYTES] += ln
            if S.P[P_HWAGG] == HWA_MLX5_LRO:
                S.qs[q, QS_ACCEPTED] += 1  # mlx5 counts segments (stats->packets += n - 1)
            if (fl & TCP_PSH) != 0 or ln < mss or cnt + 1 >= S.P[P_HW_MAXSEG] \
                    or S.hw[q, s, HW_LEN] + mss > S.P[P_HW_MAXLEN]:
                hw_close(S, q, s, t)
                hw_arm(S, q)
            return True
        hw_close(S, q, s, t)  # written back before the segment that ends it
        hw_arm(S, q)
    if not elig or (fl & TCP_PSH) != 0:
        return False
    # a new session takes a descriptor (the caller drops the packet if none is posted)
    if S.P[P_RING_USABLE] - S.qs[q, QS_RING_N] - S.qs[q, QS_UNUSED] - S.qs[q, QS_HW_N] <= 0:
        return False
    if S.qs[q, QS_HW_N] >= S.P[P_HW_NSESS]:
        old = -1
        best = INF
        for x in range(S.P[P_HW_NSESS]):
            if S.hw[q, x, HW_USED] != 0 and S.hw[q, x, HW_ORDER] < best:
                best = S.hw[q, x, HW_ORDER]
                old = x
        hw_close(S, q, old, t)
    s = 0
    while S.hw[q, s, HW_USED] != 0:
        s += 1
    single_skb(S, i)
    S.hw[q, s, HW_USED] = 1
    S.hw[q, s, HW_HEAD] = i
    S.hw[q, s, HW_LAST] = i
    S.hw[q, s, HW_CNT] = 1
    S.hw[q, s, HW_LEN] = ln
    S.hw[q, s, HW_NEXTSEQ] = (S.pk[i, F_SEQ] + ln) & 0xFFFFFFFF
    S.hw[q, s, HW_MSS] = ln
    S.hw[q, s, HW_ACK] = S.pk[i, F_ACK]
    S.hw[q, s, HW_OPT] = S.pk[i, F_OPTH]
    S.hw[q, s, HW_FLOW] = f
    S.hw[q, s, HW_TTL] = S.pk[i, F_TTL]
    S.hw[q, s, HW_TOS] = S.pk[i, F_TOS]
    S.hw[q, s, HW_DF] = S.pk[i, F_DF]
    S.hw[q, s, HW_ORDER] = S.qs[q, QS_ACCEPTED]
    tmo = S.P[P_HW_TMO] if S.P[P_HW_TMO] >= 0 else S.qs[q, QS_ITR]
    S.hw[q, s, HW_DEADLINE] = t + tmo
    S.qs[q, QS_HW_N] += 1
    S.qs[q, QS_ACCEPTED] += 1
    S.qs[q, QS_BYTES] += S.pk[i, F_PLEN]
    hw_arm(S, q)
    return True


@njit(cache=True)
def hw_timer(S, q, t):
    """The aggregation timer of queue q: sessions whose deadline passed are written back,
    oldest first."""
    while True:
        old = -1
        best = INF
        for s in range(S.P[P_HW_NSESS]):
            if S.hw[q, s, HW_USED] != 0 and S.hw[q, s, HW_DEADLINE] <= t \
                    and S.hw[q, s, HW_DEADLINE] < best:
                best = S.hw[q, s, HW_DEADLINE]
                old = s
        if old < 0:
            break
        hw_close(S, q, old, t)
    S.qs[q, QS_HW_TMR] = -1  # force the re-arm
    hw_arm(S, q)


@njit(cache=True)
def hw_skb_gro(S, q, i):
    """dev_gro_receive of an LRO skb (gso_size set, NAPI_GRO_CB count = gso_segs): a held skb
    of the same flow is completed (same_flow, flush: pp = p) and the aggregate goes on."""
    b = S.pk[i, F_BUCKET]
    for s in range(b * 8, b * 8 + 8):
        if S.gh[q, s, GH_USED] != 0 and S.gh[q, s, GH_FLOW] == S.pk[i, F_FLOWK]:
            gro_complete(S, q, s)
            break
    rx_add(S, q, i)
    return S.cbase[C_GRO], False


# ---- mlx5 hardware GRO (nic.rx-gro-hw, SHAMPO; drivers/net/ethernet/mellanox/mlx5/core/en_rx.c)
# The NIC writes a CQE per packet at once (each its own completion for the ring and the
# interrupt moderation); a CQE carries `match` (the packet continues the session of the CQE
# before it on this RQ) and `flush` (the NIC closed the session with it).
# mlx5e_handle_rx_cqe_mpwrq_shampo keeps one skb (rq->hw_gro_data->skb): a CQE without match,
# or whose data would not fit (mlx5e_hw_gro_skb_has_enough_space: PAGE_SIZE * nr_frags +
# data_bcnt <= GRO_LEGACY_MAX_SIZE), sends the skb to napi_gro_receive first; a CQE starts an
# skb or is appended (NAPI_GRO_CB count++); flush sends it; the poll's end sends what is left.
# The skb has gso_size = the first segment's payload and count N, so tcp_gro_receive may merge
# it into a held skb of its flow (same gso_size, in sequence) and holds it unless
# len != N * gso_size or PSH/FIN/... (out_check_final). mlx5e_shampo_flush_skb counts skbs of
# N > 1 in rx_gro_skbs, N in rx_gro_packets, their bytes in rx_gro_bytes.


@njit(cache=True)
def shampo_mark(S, q, i, t):
    """The NIC's session for the CQE of packet i (one session per RQ: slot 0 of hw[q])."""
    k = S.pk[i, F_KIND]
    ln = S.pk[i, F_PAYLEN]
    fl = S.pk[i, F_FLAGS]
    elig = k == K_TCP and S.pk[i, F_GRO_OK] != 0 and ln > 0 \
        and (fl & ~(TCP_ACK | TCP_PSH)) == 0
    m = 0
    if not elig:
        S.hw[q, 0, HW_USED] = 0
        S.po[i, O_HWM] = 0
        return
    if S.hw[q, 0, HW_USED] != 0 and S.hw[q, 0, HW_FLOW] == S.pk[i, F_FLOWK] \
            and (S.pk[i, F_SEQ] & 0xFFFFFFFF) == S.hw[q, 0, HW_NEXTSEQ] \
            and S.pk[i, F_ACK] == S.hw[q, 0, HW_ACK] and S.pk[i, F_OPTH] == S.hw[q, 0, HW_OPT] \
            and S.pk[i, F_TTL] == S.hw[q, 0, HW_TTL] and S.pk[i, F_TOS] == S.hw[q, 0, HW_TOS] \
            and S.pk[i, F_DF] == S.hw[q, 0, HW_DF] and ln <= S.hw[q, 0, HW_MSS] \
            and t < S.hw[q, 0, HW_DEADLINE]:
        m = HWM_MATCH
        S.hw[q, 0, HW_CNT] += 1
        S.hw[q, 0, HW_NEXTSEQ] = (S.hw[q, 0, HW_NEXTSEQ] + ln) & 0xFFFFFFFF
    else:
        S.hw[q, 0, HW_USED] = 1
        S.hw[q, 0, HW_FLOW] = S.pk[i, F_FLOWK]
        S.hw[q, 0, HW_NEXTSEQ] = (S.pk[i, F_SEQ] + ln) & 0xFFFFFFFF
        S.hw[q, 0, HW_ACK] = S.pk[i, F_ACK]
        S.hw[q, 0, HW_OPT] = S.pk[i, F_OPTH]
        S.hw[q, 0, HW_TTL] = S.pk[i, F_TTL]
        S.hw[q, 0, HW_TOS] = S.pk[i, F_TOS]
        S.hw[q, 0, HW_DF] = S.pk[i, F_DF]
        S.hw[q, 0, HW_MSS] = ln
        S.hw[q, 0, HW_CNT] = 1
        S.hw[q, 0, HW_DEADLINE] = t + S.P[P_HW_TMO]
    if (fl & TCP_PSH) != 0 or ln < S.hw[q, 0, HW_MSS]:
        m |= HWM_FLUSH
        S.hw[q, 0, HW_USED] = 0
    S.po[i, O_HWM] = m


@njit(cache=True)
def shampo_gro(S, q, h, tail, t):
    """tcp_gro_receive for the driver's skb h of N > 1 segments (gso_size: its first's)."""
    n = S.po[h, O_SKBCNT]
    gso = S.pk[h, F_PAYLEN]
    ln = S.po[h, O_SKBLEN]
    fl = S.pk[h, F_FLAGS] | (S.pk[tail, F_FLAGS] & TCP_PSH)  # mlx5e_shampo_update_hdr
    fin_psh_etc = fl & (TCP_URG | TCP_PSH | TCP_RST | TCP_SYN | TCP_FIN)
    b = S.pk[h, F_BUCKET]
    for s in range(b * 8, b * 8 + 8):
        if S.gh[q, s, GH_USED] != 0 and S.gh[q, s, GH_FLOW] == S.pk[h, F_FLOWK]:
            flush = (fl & TCP_CWR) != 0 \
                or (((fl ^ S.gh[q, s, GH_FLAGS]) & ~(TCP_CWR | TCP_FIN | TCP_PSH)) & 0xFF) != 0 \
                or S.pk[h, F_ACK] != S.gh[q, s, GH_ACK] or S.pk[h, F_OPTH] != S.gh[q, s, GH_OPT] \
                or ip_gro_flush(S, q, s, h) or S.gh[q, s, GH_MSS] != gso \
                or (S.gh[q, s, GH_NEXTSEQ] & 0xFFFFFFFF) != (S.pk[h, F_SEQ] & 0xFFFFFFFF) \
                or S.gh[q, s, GH_HDR] + S.gh[q, s, GH_LEN] + ln >= S.P[P_GRO_MAX]
            if not flush:
                head = S.gh[q, s, GH_HEAD]
                S.po[S.gh[q, s, GH_LAST], O_SEGNEXT] = h
                S.gh[q, s, GH_LAST] = tail
                S.gh[q, s, GH_CNT] += n
                S.gh[q, s, GH_LEN] += ln
                S.gh[q, s, GH_NEXTSEQ] = (S.gh[q, s, GH_NEXTSEQ] + ln) & 0xFFFFFFFF
                S.gh[q, s, GH_FLAGS] |= fl & (TCP_FIN | TCP_PSH)
                x = h
                for _ in range(n):
                    S.po[x, O_SKBH] = head
                    x = S.po[x, O_SEGNEXT]
                S.po[head, O_SKBCNT] += n
                S.po[head, O_SKBLEN] += ln
                S.po[head, O_SKBTRUE] += S.po[h, O_SKBTRUE] - SKB_STRUCT
                S.po[h, O_SKBCNT] = 0
                if ln != n * gso or fin_psh_etc != 0:
                    gro_complete(S, q, s)
                return S.cbase[C_GRO_MERGE], True
            gro_complete(S, q, s)
            break
    if ln != n * gso or fin_psh_etc != 0:
        rx_add(S, q, h)  # out_check_final flushes it: up the stack as it is
        return S.cbase[C_GRO], False
    s = gro_hold_new(S, q, h, t, b)
    S.gh[q, s, GH_LAST] = tail
    S.gh[q, s, GH_CNT] = n
    S.gh[q, s, GH_LEN] = ln
    S.gh[q, s, GH_MSS] = gso
    S.gh[q, s, GH_NEXTSEQ] = (S.pk[h, F_SEQ] + ln) & 0xFFFFFFFF
    S.gh[q, s, GH_ACK] = S.pk[h, F_ACK]
    S.gh[q, s, GH_FLAGS] = fl
    S.gh[q, s, GH_OPT] = S.pk[h, F_OPTH]
    # the driver's inet_gro_flush decision for its own skb (mlx5e_shampo_update_ipv4_tcp_hdr:
    # second_ip_id): a fixed IP ID when the second segment's equals the first's under DF
    x = S.po[h, O_SEGNEXT]
    S.gh[q, s, GH_FIXED] = 1 if S.pk[h, F_DF] != 0 and S.pk[x, F_IPID] == S.pk[h, F_IPID] else 0
    return S.cbase[C_GRO], False


@njit(cache=True)
def shampo_flush(S, c, q, t):
    """mlx5e_shampo_flush_skb: the driver's skb to napi_gro_receive at t; returns GRO's cost.
    Every segment of it ends the gro stage then; the skb's head carries the cost."""
    h = S.qs[q, QS_SH_SKB]
    tail = S.qs[q, QS_SH_TAIL]
    S.qs[q, QS_SH_SKB] = -1
    n = S.po[h, O_SKBCNT]
    lv = level_of(S, c)
    if n > 1:
        S.qs[q, QS_HW_FLUSH] += 1  # rx_gro_skbs
        S.qs[q, QS_HW_AGG] += n  # rx_gro_packets
        # rx_gro_bytes: skb->data_len + skb_headlen(skb) * count: every segment's frame
        S.qs[q, QS_HW_BYTES] += S.po[h, O_SKBLEN] + n * (S.pk[h, F_PLEN] - S.pk[h, F_PAYLEN])
        dg, merged = shampo_gro(S, q, h, tail, t)
    else:
        dg, merged = gro_receive(S, q, h, t)
    charge(S, c, lv, Y_GRO_MERGE if merged else Y_GRO, dg, n)
    dg += gro_csum(S, c, lv, h)
    x = h
    for k in range(n):
        S.se[x, S_GRO] = t + dg
        S.sc[x, S_GRO] = dg if k == 0 else 0
        x = S.po[x, O_SEGNEXT]
    return dg


@njit(cache=True)
def shampo_rx(S, c, q, i, t):
    """mlx5e_handle_rx_cqe_mpwrq_shampo for packet i's CQE at t (after its driver work):
    returns the GRO cost of skbs it sent to napi_gro_receive."""
    dg = 0
    h = S.qs[q, QS_SH_SKB]
    m = S.po[i, O_HWM]
    ln = S.pk[i, F_PAYLEN]
    # 4096: PAGE_SIZE; each segment's data is one frag; 65536: GRO_LEGACY_MAX_SIZE
    if h >= 0 and ((m & HWM_MATCH) == 0 or 4096 * S.po[h, O_SKBCNT] + ln > 65536):
        dg += shampo_flush(S, c, q, t)
        h = -1
    if h < 0:
        single_skb(S, i)
        S.qs[q, QS_SH_SKB] = i
    else:
        S.po[S.qs[q, QS_SH_TAIL], O_SEGNEXT] = i
        S.po[i, O_SKBH] = h
        S.po[i, O_SKBCNT] = 0
        S.po[h, O_SKBCNT] += 1
        S.po[h, O_SKBLEN] += ln
        S.po[h, O_SKBTRUE] += S.pk[i, F_TRUESIZE] - SKB_STRUCT
    S.qs[q, QS_SH_TAIL] = i
    if (m & HWM_FLUSH) != 0:
        dg += shampo_flush(S, c, q, t + dg)
    return dg


# ---------------------------------------------------------------------------- ICMP replies
# The ICMP messages the receive path sends: a port unreachable for a UDP datagram no socket
# takes (__udp4_lib_rcv / __udp6_lib_rcv -> icmp_send / icmpv6_send, ICMP_DEST_UNREACH /
# ICMP_PORT_UNREACH, ICMPV6_DEST_UNREACH / ICMPV6_PORT_UNREACH) and an echo reply (icmp_echo ->
# icmp_reply; icmpv6_echo_reply). Both go through the two rate limits of net/ipv4/icmp.c:
# icmpv4_global_allow (icmp_global_allow: one token bucket for the host, IPv4 and IPv6 alike,
# net.ipv4.icmp_msgs_per_sec / icmp_msgs_burst) and icmpv4_xrlim_allow / icmpv6_xrlim_allow
# (inet_peer_xrlim_allow on the destination's inet_peer: net.ipv4.icmp_ratelimit,
# net.ipv6.icmp.ratelimit), each only for types in the ratemask (icmpv4_mask_allow: 0x1818 =
# dest unreachable, source quench, time exceeded, parameter problem; IPv6: every error type but
# packet too big, no informational type), so echo replies are not limited by default.

ICMP_SENT, ICMP_RL_GLOBAL, ICMP_RL_HOST = 0, 1, 2
XRLIM_BURST_FACTOR = 6  # net/ipv4/inetpeer.c


@njit(cache=True, inline="always")
def icmp_rand3(S):
    """get_random_u32_below(3) (prandom_u32_max(3) before 6.2): the 0-2 credits a message takes
    from the global bucket. The kernel's draw is random; ours is a splitmix64 stream seeded by
    host.random-seed, so a run repeats. (x * 3) >> 32 is the kernel's multiply-shift form."""
    z = np.uint64(S.misc[M_ICMP + IC_RNG]) + np.uint64(0x9E3779B97F4A7C15)
    S.misc[M_ICMP + IC_RNG] = np.int64(z)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return np.int64(((z >> np.uint64(32)) * np.uint64(3)) >> np.uint64(32))


@njit(cache=True)
def icmp_global_allow(S, j, hz):
    """icmp_global_allow at jiffy j; True when the global bucket lets the message through (the
    5.10-6.10 form also takes its credits here)."""
    m = M_ICMP
    order = S.P[P_ICMP_ORDER]
    credit = S.misc[m + IC_CREDIT]
    if order == ICMP_RL_HOSTFIRST:
        # 6.11+: a positive credit lets it through untouched; else refill from the stamp
        if credit > 0:
            return True
        delta = min(j - S.misc[m + IC_STAMP], hz)
        if delta < hz // 50:
            return False
        incr = S.P[P_ICMP_PPS] * delta // hz
        if incr == 0:
            return False
        S.misc[m + IC_STAMP] = j
        S.misc[m + IC_CREDIT] = min(credit + incr, S.P[P_ICMP_BURST])
        return True  # even when the credit stays <= 0 (icmp_global_consume drove it negative)
    # up to 6.10: refill (the stamp moves only when something was added), then take credits
    delta = min(j - S.misc[m + IC_STAMP], hz)
    incr = 0
    if delta >= hz // 50:
        incr = S.P[P_ICMP_PPS] * delta // hz
        if incr != 0:
            S.misc[m + IC_STAMP] = j
    credit = min(credit + incr, S.P[P_ICMP_BURST])
    ok = credit > 0
    if ok:
        take = icmp_rand3(S) if order == ICMP_RL_RAND else 1
        credit = max(credit - take, 0)
    S.misc[m + IC_CREDIT] = credit
    return ok


@njit(cache=True)
def inet_peer_xrlim_allow(S, p, j, timeout):
    """net/ipv4/inetpeer.c inet_peer_xrlim_allow on peer p (fx slots from P_ICMP_PEER0: made,
    rate_tokens, rate_last). A new peer (inet_getpeer) starts with no tokens and rate_last 60 s
    back, "enough high so that the first calls ... will be allowed to go through": up to
    XRLIM_BURST_FACTOR messages at once, then one per `timeout` jiffies."""
    b = S.P[P_ICMP_PEER0] + 3 * p
    if S.fx[b] == 0:
        S.fx[b] = 1
        S.fx[b + 1] = 0
        S.fx[b + 2] = j - 60 * (1_000_000_000 // S.P[P_TICK])
    token = S.fx[b + 1]
    delta = j - S.fx[b + 2]
    if delta != 0:
        S.fx[b + 2] = j
        token += delta
        if token > XRLIM_BURST_FACTOR * timeout:
            token = XRLIM_BURST_FACTOR * timeout
    ok = token >= timeout
    if ok:
        token -= timeout
    S.fx[b + 1] = token
    return ok


@njit(cache=True)
def icmp_xmit_allow(S, h, t, limited):
    """The rate limits an ICMP message answering skb h meets at time t (__icmp_send /
    icmp_reply / icmp6_send / icmpv6_echo_reply): ICMP_SENT, ICMP_RL_GLOBAL or ICMP_RL_HOST,
    counted as the kernel does (OutRateLimitGlobal, OutRateLimitHost, Icmp6OutRateLimitHost).
    `limited`: the type is in the ratemask (icmpv4_mask_allow / icmpv6_mask_allow false)."""
    if not limited:
        return ICMP_SENT
    hz = 1_000_000_000 // S.P[P_TICK]
    j = jiffies(S, t)
    if not icmp_global_allow(S, j, hz):
        S.misc[M_ICMP + IC_RL_GLOBAL] += 1
        return ICMP_RL_GLOBAL
    v6 = S.pk[h, F_V6] != 0
    timeout = S.P[P_ICMP6_TMO] if v6 else S.P[P_ICMP_RL]
    if not inet_peer_xrlim_allow(S, S.pk[h, F_IPEER], j, timeout):
        S.misc[M_ICMP + (IC_RL_HOST6 if v6 else IC_RL_HOST4)] += 1
        return ICMP_RL_HOST
    if S.P[P_ICMP_ORDER] == ICMP_RL_HOSTFIRST:
        S.misc[M_ICMP + IC_CREDIT] -= icmp_rand3(S)  # icmp_global_consume (may go negative)
    return ICMP_SENT


@njit(cache=True)
def icmp_port_unreach(S, c, h, t):
    """__udp4_lib_rcv's no-socket path after NoPorts: icmp_send(ICMP_DEST_UNREACH,
    ICMP_PORT_UNREACH) (IPv6: icmpv6_send(ICMPV6_DEST_UNREACH, ICMPV6_PORT_UNREACH)), then the
    drop. Returns the CPU ns of both, charged here: the message (fixed.icmp_reply, symbol
    icmp_send) when it leaves; a host-limited one pays icmp_route_lookup before the per-host
    test, taken as one routing lookup (stage.route's base, the input FIB lookup's cost); a
    globally limited one stops before any work of note."""
    lv = level_of(S, c)
    d = S.cbase[C_DROP]
    charge(S, c, lv, Y_DROP_L4, d, 1)
    if S.pk[h, F_IPEER] < 0:
        return d  # multicast/broadcast destination or a source that cannot be answered
    v6 = S.pk[h, F_V6] != 0
    # type 3 (IPv4) is in icmp_ratemask unless the sysctl says otherwise; ICMPv6's default
    # ratemask ("0-1,3-127") limits type 1
    return d + icmp_send_limited(S, c, lv, h, t, IC_UNREACH6 if v6 else IC_UNREACH4,
                                 Y_ICMP_SEND)


@njit(cache=True, inline="always")
def icmp_send_limited(S, c, lv, h, t, counter, slot):
    """A destination unreachable or parameter problem (types 3 and 4: rate-limited for ICMPv6,
    and type 3 for IPv4 while icmp_ratemask has its bit) answering h, through the limits;
    counted in misc[M_ICMP + counter] when it leaves. Returns the CPU ns, charged to `slot`:
    the message (fixed.icmp_reply) when it leaves; a host-limited one pays icmp_route_lookup
    before the per-host test (stage.route's base); a globally limited one nothing of note."""
    limited = True if S.pk[h, F_V6] != 0 else (S.P[P_ICMP_MASK] >> 3) & 1 != 0
    r = icmp_xmit_allow(S, h, t, limited)
    if r == ICMP_SENT:
        S.misc[M_ICMP + counter] += 1
        charge(S, c, lv, slot, S.cbase[C_ICMP], 1)
        return S.cbase[C_ICMP]
    if r == ICMP_RL_HOST:
        charge(S, c, lv, slot, S.cbase[C_ROUTE], 1)
        return S.cbase[C_ROUTE]
    return 0


@njit(cache=True)
def icmp_prot_unreach(S, c, h, t):
    """ip_protocol_deliver_rcu with no handler for the protocol and no raw socket: after
    InUnknownProtos, icmp_send(ICMP_DEST_UNREACH, ICMP_PROT_UNREACH) (IPv6
    ip6_protocol_deliver_rcu: icmpv6_send(ICMPV6_PARAMPROB, ICMPV6_UNK_NEXTHDR)), then
    kfree_skb_reason(IP_NOPROTO), whose cost local delivery already paid. Returns the CPU ns,
    charged here as icmp_port_unreach charges its message (symbol icmp_send, stage local)."""
    # type 3 is in icmp_ratemask (0x1818); ICMPv6's default ratemask ("0-1,3-127") limits type 4
    return icmp_send_limited(S, c, level_of(S, c), h, t,
                             IC_PARMPROB6 if S.pk[h, F_V6] != 0 else IC_UNREACH4, Y_ICMP_LOCAL)


@njit(cache=True)
def icmp_time_exceeded(S, h, t):
    """ip_expire / ip6frag_expire_frag_queue for a queue whose first fragment came
    (INET_FRAG_FIRST_IN): icmp_send(ICMP_TIME_EXCEEDED, ICMP_EXC_FRAGTIME) (IPv6
    icmpv6_send(ICMPV6_TIME_EXCEED, ICMPV6_EXC_FRAGTIME)) answering the head fragment h at the
    expiry t, through the usual limits. Its CPU (the TIMER softirq's) is not charged, as the
    rest of the timer's work."""
    v6 = S.pk[h, F_V6] != 0
    # type 11 is in icmp_ratemask (0x1818); ICMPv6's default ratemask limits type 3
    limited = True if v6 else (S.P[P_ICMP_MASK] >> 11) & 1 != 0
    if icmp_xmit_allow(S, h, t, limited) == ICMP_SENT:
        S.misc[M_ICMP + (IC_TIMEEXC6 if v6 else IC_TIMEEXC4)] += 1


@njit(cache=True)
def icmp_echo_reply(S, c, h, t):
    """icmp_echo -> icmp_reply (IPv6: icmpv6_echo_reply) for echo request h: the reply leaves
    unless a ratemask that includes echo reply (type 0; ICMPv6 129 is never limited by the
    default mask) stops it. Returns the CPU ns charged here."""
    if S.pk[h, F_IPEER] < 0:
        return 0  # icmp_echo_ignore_broadcasts (default 1) / a multicast echo
    v6 = S.pk[h, F_V6] != 0
    limited = False if v6 else (S.P[P_ICMP_MASK] & 1) != 0
    if icmp_xmit_allow(S, h, t, limited) != ICMP_SENT:
        return 0
    S.misc[M_ICMP + (IC_ECHOREP6 if v6 else IC_ECHOREP4)] += 1
    charge(S, c, level_of(S, c), Y_ICMP_SEND, S.cbase[C_ICMP], 1)
    return S.cbase[C_ICMP]


# ------------------------------------------------------------------- preferred busy polling
# SO_PREFER_BUSY_POLL (net/core/dev.c, 7fd3253a7de6 "net: Introduce preferred busy-polling",
# 5.11): a poller with sk_prefer_busy_poll that finds the NAPI scheduled (an interrupt's softirq
# owns it) sets NAPI_STATE_PREFER_BUSY_POLL; __napi_poll, when the driver used the whole
# weight, then exits early instead of repolling: napi_complete_done(n, work) — with
# napi_defer_hard_irqs and gro_flush_timeout that keeps the IRQ masked, arms napi_watchdog and
# clears SCHED, so the poller takes the NAPI at its next turn; otherwise (it returned true)
# napi_schedule(n) polls it again from the softirq. napi_complete_done and napi_watchdog clear
# the bit. busy_poll_stop of such a poller reloads defer_hard_irqs_count and, when both knobs
# are set, arms the watchdog before its last napi->poll: a completed poll then keeps the IRQ
# masked (the count it set), a full one skips __napi_schedule (skip_schedule). The IRQ thus
# stays off while the application keeps busy polling within gro_flush_timeout.

PH_END_PREFER = 20  # cs[c, CS_PHASE]: __napi_poll's early exit for PREFER_BUSY_POLL


@njit(cache=True)
def complete_deferral(S, c, q, t, ret):
    """napi_complete_done's deferral rules for a poll that did `CS_WORK`: a held GRO packet
    arms gro_flush_timeout; napi_defer_hard_irqs reloads with work and, while it lasts, keeps
    the IRQ masked on the timer. Then the GRO flush (with a timeout only packets of older
    jiffies go) and phase `ret`."""
    tmo = 0
    if S.cs[c, CS_WORK] > 0:
        if S.qs[q, QS_GRO_N] > 0:
            tmo = S.P[P_GRO_FT]
        S.qs[q, QS_DEFER] = S.P[P_DEFER]
    keep = 0
    if S.qs[q, QS_DEFER] > 0:
        S.qs[q, QS_DEFER] -= 1
        tmo = S.P[P_GRO_FT]
        if tmo != 0:
            keep = 1
    S.cs[c, CS_TMO] = tmo
    S.cs[c, CS_KEEP_MASKED] = keep
    gro_flush(S, q, t, tmo != 0)
    S.cs[c, CS_FLUSH_RET] = ret
    S.cs[c, CS_PHASE] = PH_FLUSH


@njit(cache=True)
def prefer_exit_early(S, c, q, t):
    """__napi_poll, work == weight and napi_prefer_busy_poll(n): napi_complete_done(n, work)
    (its deferral rules, as at the end of a partial poll), then PH_END_PREFER."""
    complete_deferral(S, c, q, t, PH_END_PREFER)
    S.cs[c, CS_LSTEP] = 0


@njit(cache=True, inline="always")
def napi_complete_clear(S, c, q, t):
    """napi_complete_done's common part (net/core/dev.c): its cmpxchg clears SCHED and
    PREFER_BUSY_POLL, the gro_flush_timeout watchdog is armed when a timeout applies, and a
    NAPI marked MISSED meanwhile is scheduled again at once. True when it was MISSED (the IRQ
    stays masked: the poll goes on)."""
    S.qs[q, QS_SCHED] = 0
    S.qs[q, QS_PREFER] = 0
    if S.cs[c, CS_TMO] != 0:
        heap_set(S, S.P[P_ETMR0] + q, t + S.cs[c, CS_TMO])
    if S.qs[q, QS_MISSED] != 0:
        S.qs[q, QS_MISSED] = 0
        napi_schedule(S, c, q, t)
        return True
    return False


@njit(cache=True)
def prefer_complete(S, c, q, t):
    """The rest of the early exit: the NAPI completes (SCHED and PREFER cleared, the watchdog
    armed with a timeout). napi_complete_done's true return (no deferral) -> napi_schedule(n):
    polled again from this softirq, the IRQ still masked (the driver, having used its weight,
    did not re-arm it). MISSED: napi_complete_done reschedules it itself (returns false)."""
    if not napi_complete_clear(S, c, q, t) and S.cs[c, CS_KEEP_MASKED] == 0:
        napi_schedule(S, c, q, t)
    if S.qs[q, QS_SCHED] == 0:
        bp_kick_napi(S, q, t)  # the poller that asked may take it now
    poll_end(S, c, q, t, False)


@njit(cache=True)
def bp_stop_prefer(S, c, q, t):
    """busy_poll_stop with NAPI_F_PREFER_BUSY_POLL: defer_hard_irqs_count reloaded; with a
    gro_flush_timeout too, napi_watchdog armed and skip_schedule set."""
    S.qs[q, QS_DEFER] = S.P[P_DEFER]
    if S.P[P_DEFER] != 0 and S.P[P_GRO_FT] != 0:
        heap_set(S, S.P[P_ETMR0] + q, t + S.P[P_GRO_FT])
        S.cs[c, CS_BP_SKIP] = 1
