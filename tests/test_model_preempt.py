"""CFS wake-up preemption → a reader's step cut mid-way and resumed (engine.py preempt_reader).

Costs from tests/data/round-costs.toml. Two readers share CPU 0, which also takes the queue's
IRQ: B (port 9001, 10 µs of work per datagram) and A (port 9000, 10 ms). B reads frame 1 at
t=0 and sleeps from ~15 µs; A starts 10 ms of work on frame 2 at ~0.1 ms; frame 3 for B comes
at 3 ms, while A works. The IRQ interrupts A; its softirq wakes B on the same CPU.
- 5.15 (CFS): B slept ~2.99 ms > the wake-up granularity (1 ms x (1 + ilog2(2)) = 2 ms):
  check_preempt_wakeup preempts A at the return from interrupt. B then takes exactly the path
  frame 1 took on an idle CPU (IRQ, softirq, wake-up, switch, copy, work): 14 750 ns from the
  wire. A resumes its cut work after B's switch in 1000 + copy and consume 200 + work 10 000 +
  the empty recvmsg 300 + the switch back 1000 = 12 500 ns later than without B.
- 6.12 (EEVDF): no wake-up preemption (RUN_TO_PARITY); A ran alone since ~0.1 ms, its slice
  (0.75 ms x (1 + ilog2(2)) = 1.5 ms) renewed at each tick meanwhile, so its deadline when B
  queues is ~3.1 ms: the next scheduler tick (4 ms at HZ 250, tick phase 0) preempts A
  (update_deadline -> resched_curr), B runs its frame, and A resumes 12 500 ns later than
  without B, as in the CFS case.
"""

from __future__ import annotations

import pytest

from tests.test_model_independent import pk, run


@pytest.mark.parametrize("kernel", ["5.15", "6.12"])
def test_local_wakeup_preempts_a_working_reader_on_cfs(kernel: str) -> None:
    rows = [{"ts_ns": 0, "dport": 9001}, {"ts_ns": 100_000, "dport": 9000},
            {"ts_ns": 3_000_000, "dport": 9001}]  # fmt: skip
    r = run(rows, "host.cpus=2", "nic.combined=1", f'host.kernel="{kernel}"',
            'app[0].match="udp dport 9000"', "app[0].cpu=0", "app[0].work-ns=10000000",
            'app[1].match="udp dport 9001"', "app[1].cpu=0", "app[1].work-ns=10000")  # fmt: skip
    df = pk(r).sort("frame")
    t_wire, t_done = df["t_wire"].to_list(), df["t_done"].to_list()
    assert df["cpu_app"].to_list() == [10_000, 10_000_000, 10_000]  # the cut work is all done
    first = t_done[0] - t_wire[0]
    a_alone = 10_107_367  # A's end if nothing cut its work
    assert t_done[1] == a_alone + 12_500
    if kernel == "5.15":
        assert t_done[2] - t_wire[2] == first
    else:
        # B: switch 1000, copy and consume 200, work 10 000 after the 4 ms tick
        assert t_done[2] == 4_000_000 + 1000 + 200 + 10_000
