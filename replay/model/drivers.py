"""Driver models: what a NIC driver decides (ring limits, moderation rule, RSS defaults, names).

Each row is read from the driver's source in the 6.19 tree (KERNEL.md §2 "Driver defaults",
§3b "Interrupt moderation differs by driver", §7 ethtool names). The engine takes only numbers from
here; reports take the names (IRQ names as /proc/interrupts shows them, perf symbols, ethtool -S).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Moderation rules (engine constants)
MOD_ETHTOOL = 0  # documented ethtool_coalesce rule: fire rx-usecs after the first completion,
#                  or at rx-frames completions (include/uapi/linux/ethtool.h:401-470)
MOD_ITR = 1  # Intel ITR: a minimum gap between interrupts; an idle queue fires on its first packet
MOD_MLX5_EQE = 2  # mlx5 EQE period mode: the period restarts at each event (interrupt)
MOD_MLX5_CQE = 3  # mlx5 CQE period mode: the period starts at the first completion (CQE)


@dataclass(frozen=True)
class Driver:
    name: str
    clean_symbol: str  # perf symbol of the RX clean loop (the `driver` stage)
    poll_symbol: str  # the NAPI ->poll() function (per-poll fixed work)
    irq_symbol: str  # the MSI-X handler
    irq_name: str  # /proc/interrupts action name, {q} = queue
    ring_default: int
    ring_min: int
    ring_max: int
    ring_multiple: int  # the driver rounds `ethtool -G rx` up to a multiple (0: power of two)
    max_queues: int
    max_usecs: int
    rss_table: int  # indirection table entries
    udp_l4_hash: bool  # default rx-flow-hash for UDP includes ports
    moderation: int
    refill_batch: int  # descriptors returned to the NIC at once
    ethtool_queue_fmt: str  # per-queue rx packet counter name
    # skb->ip_summed the driver sets for a TCP/UDP packet it checked (rx-checksumming on):
    # 1 CHECKSUM_UNNECESSARY (the NIC verified the L4 checksum; not for IP fragments, whose L4
    # checksum it cannot check), 2 CHECKSUM_COMPLETE (the NIC hands up the sum of the packet)
    rx_csum: int = 1
    # NETIF_F_LRO in the driver's hw_features (ethtool -K lro): ixgbe's RSC on 82599 and later
    # (ixgbe_probe: IXGBE_FLAG2_RSC_CAPABLE), mlx5's LRO (mlx5e_build_nic_netdev)
    lro: bool = False

    def round_ring(self, n: int) -> int:
        if self.ring_multiple == 0:
            p = 1
            while p < n:
                p <<= 1
            return p
        m = self.ring_multiple
        return (n + m - 1) // m * m


DRIVERS: dict[str, Driver] = {
    d.name: d
    for d in (
        # ixgbe_rx_checksum: CHECKSUM_UNNECESSARY when the descriptor says L4CS passed
        # ixgbe.h:50-60 (512 default, 64..8192, IXGBE_REQ_RX_DESCRIPTOR_MULTIPLE 8);
        # ITR max IXGBE_MAX_EITR>>2 = 1022 us; 128-entry RETA (ixgbe_main.c:4196-4204);
        # UDP hashed on L3 only unless ethtool -N (ixgbe_main.c:4410-4418);
        # IXGBE_RX_BUFFER_WRITE 16 (ixgbe.h:143); names from ixgbe_ethtool.c
        Driver("ixgbe", "ixgbe_clean_rx_irq", "ixgbe_poll", "ixgbe_msix_clean_rings",
               "eth0-TxRx-{q}", 512, 64, 8192, 8, 64, 1022, 128, False, MOD_ITR, 16,
               "rx_queue_{q}_packets", lro=True),
        # i40e.h:27-30 (512 default, 4096 max on X710); I40E_REQ_DESCRIPTOR_MULTIPLE 32;
        # HLUT 512 entries (i40e.h:218); I40E_RX_BUFFER_WRITE 32; ITR is a minimum gap too
        Driver("i40e", "i40e_clean_rx_irq", "i40e_napi_poll", "i40e_msix_clean_rings",
               "i40e-eth0-TxRx-{q}", 512, 64, 4096, 32, 64, 8160, 512, True, MOD_ITR, 32,
               "rx-{q}.packets"),
        # en.h:128 (log RQ size 10 -> 1024, 2^6..2^13, power of two); RQT max(256, ...);
        # 4-tuple UDP hash (en/rss.c); MLX5_MAX_COAL_TIME 4095 us; CQE period mode by default
        # on ConnectX-5 and later (en_main.c:4240-4248); WQE bulk of 8
        Driver("mlx5", "mlx5e_poll_rx_cq", "mlx5e_napi_poll", "mlx5e_completion_event",
               "mlx5_comp{q}@pci:0000:00:00.0", 1024, 64, 8192, 0, 256, 4095, 256, True,
               MOD_MLX5_CQE, 8, "rx{q}_packets",
               # mlx5e_handle_csum: CHECKSUM_COMPLETE (fragments included) unless the
               # no-csum-complete state is set; counted in rx_csum_complete (en_rx.c)
               rx_csum=2, lro=True),
        # veth (KERNEL.md §3c): no ring, IRQ or moderation; veth_xmit hands the skb to netif_rx
        # on the sending CPU, or (GRO/XDP on the peer) to a VETH_RING_SIZE = 256 ptr_ring per
        # queue polled by veth_poll. No RSS: the rx queue is the sender's tx queue. "ring" and
        # "usecs" limits below only keep the shared [nic] knobs valid; the engine ignores them.
        Driver("veth", "veth_xmit", "veth_poll", "", "", 256, 1, 1 << 20, 1, 4096, 100000, 1,
               True, MOD_ETHTOOL, 1, ""),
        # a driver with the documented generic ethtool_coalesce behaviour
        Driver("generic", "driver_clean_rx", "driver_poll", "driver_msix_irq",
               "eth0-rx-{q}", 512, 64, 8192, 1, 256, 100000, 128, True, MOD_ETHTOOL, 16,
               "rx_queue_{q}_packets"),
    )
}

def rss_table_size(drv: Driver, nch: int) -> int:
    """Entries of the RSS indirection table with `nch` channels. mlx5 (en/rqt.c mlx5e_rqt_size,
    v6.7 "net/mlx5e: Preparations for supporting larger number of channels"): max(
    MLX5E_INDIR_MIN_RQT_SIZE 256, roundup_pow_of_two(nch x MLX5E_UNIFORM_SPREAD_RQT_FACTOR 2)),
    the actual_table_size the hash indexes (mlx5e_rss_init / _modify_actual_size with the current
    channel count); capped by the device's log_max_rqt_size, not modelled. Before 6.7 the table
    was MLX5E_INDIR_RQT_SIZE = 256 with at most 128 channels: the same value. Others: fixed."""
    if drv.name == "mlx5":
        return max(drv.rss_table, 1 << max(0, (2 * nch - 1).bit_length()))
    return drv.rss_table


_SPEED_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([MG])?(?:b(?:it)?(?:/s|ps)?)?\s*$", re.IGNORECASE)


def parse_speed(speed: str | int | float) -> int:
    """Link speed in bit/s: "10G", "1G", "100M", or a number of Mbit/s (as ethtool reports it)."""
    if isinstance(speed, bool):
        raise ValueError(f"expected a speed like \"10G\", got {speed!r}")
    if isinstance(speed, int | float):
        bps = int(speed * 1_000_000)
    else:
        m = _SPEED_RE.match(str(speed))
        if not m:
            raise ValueError(f"expected a speed like \"10G\" or \"100M\", got {speed!r}")
        num = float(m.group(1))
        unit = (m.group(2) or "M").upper()
        bps = int(num * (1_000_000_000 if unit == "G" else 1_000_000))
    if not 1_000_000 <= bps <= 800_000_000_000:
        raise ValueError(f"a speed between 1M and 800G, got {speed!r}")
    return bps
