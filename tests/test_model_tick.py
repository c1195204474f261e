"""The scheduler tick ends a long user-space step → the other runnable task gets the CPU.

Two readers share CPU 0 (the IRQ's CPU too). Reader A's datagram arrives at 0 and A works 10 ms
on it in user space; reader B's datagram arrives at 1 ms and wakes B onto CPU 0. EEVDF (6.6+)
does not preempt A at the wake-up (B has no lag; RUN_TO_PARITY), but A's slice,
sysctl_sched_base_slice 0.75 ms x (1 + ilog2(2 CPUs)) = 1.5 ms, ends about 1.5 ms after A got
the CPU: the first scheduler tick after that (update_curr -> update_deadline -> resched_curr
with two entities queued) preempts A at the return to user mode, and B runs. Ticks fall at
multiples of 1/HZ (tick phase 0): 4 ms at HZ 250, 2 ms at HZ 1000. Without the tick A would
hold the CPU to 10 ms.
"""

from __future__ import annotations

import pytest

from tests.test_model_independent import pk, run

APPS = ['app[0].match="udp dport 9000"', "app[0].cpu=0", "app[0].work-ns=10000000",
        'app[1].match="udp dport 9001"', "app[1].cpu=0", "app[1].work-ns=1000",
        "host.cpus=2", "nic.combined=1", "host.tick-phase-ns=0"]  # fmt: skip


@pytest.mark.parametrize(("kernel", "hz", "tick"), [
    ("6.12", 250, 4_000_000), ("6.12", 1000, 2_000_000), ("5.15", 250, 4_000_000),
])  # fmt: skip
def test_tick_preempts_a_long_user_step(kernel: str, hz: int, tick: int) -> None:
    rows = [{"ts_ns": 0, "dport": 9000}, {"ts_ns": 1_000_000, "dport": 9001}]
    r = run(rows, *APPS, f'host.kernel="{kernel}"', f"host.hz={hz}")
    df = pk(r).sort("frame")
    a_done, b_done = df["t_done"].to_list()
    # B: its context switch, recvmsg and 1 us of work right after the tick (round costs:
    # well under 20 us), long before A's 10 ms
    assert tick <= b_done < tick + 20_000, b_done
    # A resumes after B and finishes its 10 ms of work: what it still had at the tick, later
    assert a_done > 10_000_000 and a_done < 10_000_000 + 40_000, a_done
    assert df["outcome"].to_list() == ["delivered", "delivered"]
