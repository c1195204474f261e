"""Kernel symbols → Cai et al. cost categories, and callchains → receive-path stage ids.

Categories are those of Cai et al., SIGCOMM 2021 (KERNEL.md §6.4): data_copy, netdev, tcp/ip, skb,
mm, lock, sched, etc, plus `app` for the application's own user-space code. The exact names below
are the assignments of the paper's artifact (`symbol_mapping.tsv` in
github:Terabit-Ethernet/Understanding-network-stack-overheads-SIGCOMM-2021 @ 3ecebd78d217),
for the symbols a veth/UDP receive path on 6.18 shows; symbols that table does not list fall to
the prefix rules of KERNEL.md §6.4 (napi_*/gro → netdev, ip_*/tcp_*/udp_* → tcp/ip, kmem/slab/
page → mm, *spin_lock* → lock, schedule/wake/syscall entry → sched), and the rest to etc.
A few choices the table does not make are marked `# ours` with the reason.
"""

from __future__ import annotations

import re

CATEGORIES = ("data_copy", "netdev", "tcp/ip", "skb", "mm", "lock", "sched", "etc", "app")

EXACT: dict[str, str] = {
    # data_copy (artifact table)
    "skb_copy_datagram_iter": "data_copy", "__skb_datagram_iter": "data_copy",
    "_copy_to_iter": "data_copy", "_copy_from_iter_full": "data_copy",
    "simple_copy_to_iter": "data_copy", "copy_user_enhanced_fast_string": "data_copy",
    "copy_user_generic_unrolled": "data_copy", "__check_object_size": "data_copy",
    "check_stack_object": "data_copy", "__virt_addr_valid": "data_copy",
    "iov_iter_advance": "data_copy", "memcpy_erms": "data_copy", "memset_erms": "data_copy",
    "__memcpy": "data_copy",
    # ours: the 6.x names of the same user-copy routines
    "_copy_from_iter": "data_copy", "rep_movs_alternative": "data_copy",
    "_copy_to_user": "data_copy", "_copy_from_user": "data_copy", "memcpy_orig": "data_copy",
    "__check_heap_object": "data_copy", "check_heap_object": "data_copy",
    # netdev (artifact table)
    "__netif_receive_skb_core": "netdev", "__netif_receive_skb_one_core": "netdev",
    "__netif_receive_skb_list_core": "netdev", "netif_receive_skb_internal": "netdev",
    "netif_receive_skb_list_internal": "netdev", "process_backlog": "netdev",
    "enqueue_to_backlog": "netdev", "get_rps_cpu": "netdev", "net_rx_action": "netdev",
    "net_tx_action": "netdev", "dev_gro_receive": "netdev", "napi_gro_receive": "netdev",
    "inet_gro_receive": "netdev", "tcp4_gro_receive": "netdev", "tcp_gro_receive": "netdev",
    "skb_gro_receive": "netdev", "eth_type_trans": "netdev", "eth_header": "netdev",
    "__dev_queue_xmit": "netdev", "dev_queue_xmit": "netdev", "dev_hard_start_xmit": "netdev",
    "validate_xmit_skb": "netdev", "validate_xmit_skb_list": "netdev",
    "netdev_core_pick_tx": "netdev", "netdev_pick_tx": "netdev", "__napi_schedule": "netdev",
    "napi_schedule_prep": "netdev", "napi_complete_done": "netdev", "memcmp": "netdev",
    "__skb_flow_get_ports": "netdev", "skb_network_protocol": "netdev",
    "__cgroup_bpf_run_filter_skb": "netdev", "__skb_checksum": "netdev",
    # tcp/ip (artifact table; note it puts __netif_receive_skb there)
    "__netif_receive_skb": "tcp/ip", "ip_rcv": "tcp/ip", "ip_rcv_core": "tcp/ip",
    "ip_rcv_finish": "tcp/ip", "ip_rcv_finish_core": "tcp/ip", "ip_sublist_rcv": "tcp/ip",
    "ip_local_deliver": "tcp/ip", "ip_local_deliver_finish": "tcp/ip",
    "ip_protocol_deliver_rcu": "tcp/ip", "raw_local_deliver": "tcp/ip", "nf_hook_slow": "tcp/ip",
    "sock_recvmsg": "tcp/ip", "inet_recvmsg": "tcp/ip", "__sys_recvfrom": "tcp/ip",
    "sk_filter_trim_cap": "tcp/ip", "security_sock_rcv_skb": "tcp/ip", "sock_rfree": "tcp/ip",
    "__inet_lookup_established": "tcp/ip", "release_sock": "tcp/ip", "__release_sock": "tcp/ip",
    # skb (artifact table)
    "__alloc_skb": "skb", "__build_skb": "skb", "build_skb": "skb", "__build_skb_around": "skb",
    "__kfree_skb": "skb", "skb_release_all": "skb", "skb_release_data": "skb",
    "skb_release_head_state": "skb", "skb_free_head": "skb", "__skb_get_hash": "skb",
    "__skb_flow_dissect": "skb", "skb_clone": "skb", "__skb_clone": "skb",
    "__copy_skb_header": "skb", "skb_put": "skb", "skb_push": "skb", "skb_try_coalesce": "skb",
    "pskb_expand_head": "skb", "netif_skb_features": "skb", "__sk_mem_raise_allocated": "skb",
    # mm (artifact table)
    "kfree": "mm", "kfree_skbmem": "mm", "kmem_cache_alloc": "mm", "kmem_cache_alloc_node": "mm",
    "kmem_cache_free": "mm", "kmem_cache_free_bulk": "mm", "__kmalloc_reserve": "mm",
    "__kmalloc_node_track_caller": "mm", "___slab_alloc": "mm", "__slab_free": "mm",
    "page_frag_alloc": "mm", "page_frag_free": "mm", "ksize": "mm", "__ksize": "mm",
    # lock (artifact table)
    "lock_sock_nested": "lock", "native_queued_spin_lock_slowpath": "lock", "osq_lock": "lock",
    "rcu_all_qs": "lock",
    # sched (artifact table)
    "sock_def_readable": "sched", "__wake_up_common": "sched", "__wake_up_common_lock": "sched",
    "try_to_wake_up": "sched", "ttwu_do_wakeup": "sched", "__schedule": "sched",
    "schedule": "sched", "schedule_timeout": "sched", "sk_wait_data": "sched",
    "finish_task_switch": "sched", "__switch_to": "sched", "__switch_to_asm": "sched",
    "do_syscall_64": "sched", "entry_SYSCALL_64": "sched", "syscall_return_via_sysret": "sched",
    "__local_bh_enable_ip": "sched", "read_tsc": "sched", "update_curr": "sched",
    "enqueue_task_fair": "sched", "dequeue_task_fair": "sched", "pick_next_task_fair": "sched",
    "_cond_resched": "sched", "wait_woken": "sched", "woken_wake_function": "sched",
    # etc (artifact table)
    "__do_softirq": "etc", "csum_partial": "etc", "do_csum": "etc", "ktime_get": "etc",
    "__libc_recv": "etc", "llist_add_batch": "etc", "native_sched_clock": "etc",
}

# Prefix / pattern rules, in order (KERNEL.md §6.4), for symbols the table does not list.
RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p), c)
    for p, c in (
        (r"copy_(to|from)_(user|iter)|^copy_page_|^memcpy|^memmove|^__memcpy|^memset", "data_copy"),
        (r"spin_(un)?lock|^_raw_|^queued_|^__raw_spin|^mutex_|^down_|^up_read|^up_write", "lock"),
        (r"^napi_|^__napi_|gro_|^netif_|^__netif_|^dev_|^__dev_|^veth_|^netdev_", "netdev"),
        (r"^ip_|^__ip_|^ipv4_|^tcp_|^__tcp_|^udp|^__udp|^inet_|^__inet|^nf_|^ipt_|^fib_|^icmp_",
         "tcp/ip"),
        (r"^sock_|^__sock_|^sk_|^__sk_|^raw_v4|^packet_", "tcp/ip"),
        (r"^skb_|^__skb_|^kfree_skb|^consume_skb|^__alloc_skb|^alloc_skb|^__kfree_skb", "skb"),
        (r"^kmem_|^__kmem_|^kmalloc|^__kmalloc|slab|^kfree|^page_|^__page_|^free_|^__free_|"
         r"alloc_pages|^get_page_from_freelist|^mem_cgroup|^memcg|^__memcg|^obj_cgroup", "mm"),
        (r"^schedule|^__schedule|wake_up|^try_to_wake|^ttwu|^enqueue_|^dequeue_|^pick_next|"
         r"^update_(curr|rq_clock)|^entry_SYSCALL|^do_syscall|^syscall_|^__x64_sys|^x64_sys|"
         r"^__sys_|^do_sys|^ksys_|^irqentry|^sysvec_|^asm_|^finish_task_switch|^__switch_to|"
         r"^pv_native_safe_halt|^default_idle|^cpuidle|^do_idle", "sched"),
    )
)


def category(symbol: str, dso: str = "[kernel.kallsyms]") -> str:
    """The Cai et al. category of one sampled symbol (user code of the app is `app`)."""
    if dso != "[kernel.kallsyms]" and not dso.startswith("[kernel"):
        return "app"
    c = EXACT.get(symbol)
    if c is not None:
        return c
    base = symbol.split(".", 1)[0]  # gcc clones: finish_task_switch.isra.0
    c = EXACT.get(base)
    if c is not None:
        return c
    for pat, cat in RULES:
        if pat.search(base):
            return cat
    return "etc"


# Callchain frame → stage id (replay/model/stages.py ids). A sample belongs to the stage of the
# innermost (nearest the leaf) frame found here; frames above it in the chain are its callers.
STAGE_OF: dict[str, str] = {
    # the veth "driver": veth_xmit → veth_forward_skb → __dev_forward_skb (KERNEL.md §3c);
    # veth_poll / veth_xdp_rcv when GRO or XDP puts a NAPI on the peer
    **dict.fromkeys(("veth_xmit", "veth_forward_skb", "__dev_forward_skb", "____dev_forward_skb",
                     "veth_poll", "veth_xdp_rcv", "veth_xdp_rcv_skb", "eth_type_trans"), "driver"),
    **dict.fromkeys(("napi_gro_receive", "gro_receive_skb", "dev_gro_receive", "inet_gro_receive",
                     "udp4_gro_receive", "udp_gro_receive", "tcp4_gro_receive", "tcp_gro_receive",
                     "skb_gro_receive", "napi_gro_flush", "__napi_gro_flush_chain",
                     "gro_normal_list", "napi_complete_done"), "gro"),
    # __netif_rx → netif_rx_internal → (get_rps_cpu) → enqueue_to_backlog: the `netif` stage
    # as the model names it (the producing CPU's part; KERNEL.md §1 row 5a). process_backlog's
    # own work is per poll (no stage), and the core it runs is the `backlog` stage (stage_of)
    **dict.fromkeys(("__netif_rx", "netif_rx", "netif_rx_internal", "enqueue_to_backlog",
                     "get_rps_cpu"), "netif"),
    **dict.fromkeys(("__netif_receive_skb_core", "__netif_receive_skb", "netif_receive_skb",
                     "__netif_receive_skb_one_core", "__netif_receive_skb_list_core",
                     "netif_receive_skb_list_internal", "netif_receive_skb_internal"), "netif"),
    **dict.fromkeys(("ip_rcv", "ip_rcv_core", "ip_list_rcv", "ip_sublist_rcv"), "ip"),
    **dict.fromkeys(("ip_rcv_finish", "ip_rcv_finish_core", "ip_route_input_noref",
                     "ip_route_input_slow", "ip_route_input_rcu", "ip_route_use_hint",
                     "fib_table_lookup", "fib_validate_source", "__fib_validate_source",
                     "udp_v4_early_demux", "tcp_v4_early_demux", "ip_mkroute_input",
                     "ip_sublist_rcv_finish"), "route"),
    **dict.fromkeys(("ip_local_deliver", "ip_local_deliver_finish", "ip_protocol_deliver_rcu",
                     "raw_local_deliver", "ip_defrag"), "local"),
    **dict.fromkeys(("udp_rcv", "__udp4_lib_rcv", "udp_unicast_rcv_skb", "udp_queue_rcv_skb",
                     "udp_queue_rcv_one_skb", "__udp_queue_rcv_skb", "__udp_enqueue_schedule_skb",
                     "__udp4_lib_lookup", "udp4_lib_lookup2", "tcp_v4_rcv", "tcp_v4_do_rcv",
                     "tcp_rcv_established", "icmp_rcv", "sock_def_readable",
                     "__udp4_lib_mcast_deliver"), "l4"),
    **dict.fromkeys(("udp_recvmsg", "__skb_recv_udp", "skb_copy_datagram_iter",
                     "__skb_datagram_iter", "skb_consume_udp", "udp_rmem_release",
                     "inet_recvmsg", "sock_recvmsg", "____sys_recvmsg", "___sys_recvmsg",
                     "__sys_recvmsg", "do_recvmmsg", "__sys_recvmmsg", "__x64_sys_recvmmsg",
                     "__x64_sys_recvmsg", "__sys_recvfrom", "__x64_sys_recvfrom",
                     "tcp_recvmsg", "tcp_recvmsg_locked"), "copy"),
}

# frames that mark a softirq / hard-IRQ context when they sit in a callchain
SOFTIRQ_FRAMES = frozenset(("handle_softirqs", "__do_softirq", "do_softirq", "net_rx_action",
                            "run_ksoftirqd", "irq_exit_rcu", "__irq_exit_rcu"))
HARDIRQ_FRAMES = frozenset(("common_interrupt", "__common_interrupt", "handle_irq_event",
                            "__sysvec_apic_timer_interrupt", "hrtimer_interrupt",
                            "__sysvec_call_function_single", "handle_edge_irq"))
# a sample is on the receive path when its chain holds one of these (KERNEL.md §1, §3c)
RX_PATH_FRAMES = frozenset(STAGE_OF) | {"net_rx_action", "process_backlog"}
# the skb-processing frames that process_backlog calls: under it they are the `backlog` stage
CORE_FRAMES = frozenset(("__netif_receive_skb_core", "__netif_receive_skb",
                         "__netif_receive_skb_one_core", "netif_receive_skb"))
IDLE_FRAMES = frozenset(("do_idle", "cpuidle_enter", "default_idle", "pv_native_safe_halt",
                         "cpuidle_enter_state", "default_idle_call", "poll_idle"))


def stage_of(chain: list[str]) -> str | None:
    """Stage of a sample: the innermost frame of `chain` (leaf first) that names one."""
    for i, sym in enumerate(chain):
        base = sym.split(".", 1)[0]
        s = STAGE_OF.get(base)
        if s is not None:
            # __netif_receive_skb_core run by process_backlog (RPS, netif_rx/veth): the model's
            # `backlog` stage, which follows the enqueue (`netif`) in path order
            if base in CORE_FRAMES and any(x.split(".", 1)[0] == "process_backlog"
                                           for x in chain[i + 1:]):
                return "backlog"
            return s
    return None


def context_of(chain: list[str], comm: str) -> str:
    """hardirq | softirq | ksoftirqd | task: the innermost context marker in the chain."""
    for sym in chain:
        base = sym.split(".", 1)[0]
        if base in HARDIRQ_FRAMES:
            return "hardirq"
        if base in SOFTIRQ_FRAMES:
            return "ksoftirqd" if comm.startswith("ksoftirqd/") else "softirq"
    return "task"
