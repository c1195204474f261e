"""Names of the engine's array slots: parameters, per-CPU/queue/socket/thread state, CPU slots.

The engine is one compiled loop over integer arrays; these module-level integers are compile-time
constants to numba. Everything that names a slot for people (symbols, stages, categories) lives
in `SLOTS` beside the numbers, so reports and the engine read one table.
"""

from __future__ import annotations

INF = 2**62

# ---- packet kinds (what the stack does with a received frame; decided by model/classify.py)
K_UDP = 0  # UDP datagram to a socket lookup
K_TCP = 1  # TCP segment with payload (or SYN/FIN) to a socket lookup
K_TCP_CTRL = 2  # pure ACK / RST without payload: consumed in tcp_v4_rcv
K_ICMP_ECHO = 3  # ICMP/ICMPv6 echo request: consumed, a reply sent
K_ICMP = 4  # other ICMP: consumed in icmp_rcv
K_ARP = 5  # ARP (and other non-IP the host handles, e.g. ND is ICMPv6): consumed by arp_rcv
K_NOPROTO = 6  # IP protocol nobody handles: IP_NOPROTO in ip_local_deliver
K_NONIP = 7  # ethertype nobody handles: UNHANDLED_PROTO in __netif_receive_skb_core
K_BADIP = 8  # malformed IP header: IP_INHDR in ip_rcv_core
K_TRUNC = 9  # truncated below the IP header's length: PKT_TOO_SMALL in ip_rcv_core
# TCP header with a data offset below 5 (the decoder's bad-tcp-offset): a fine IP packet that
# tcp_v4_rcv drops (PKT_TOO_SMALL, Tcp InErrs) after counting InSegs
K_BADTCP = 10
K_IGMP = 11  # IGMP (IPv4 protocol 2): igmp_rcv takes it (CONFIG_IP_MULTICAST), consumed
# to the host's MAC but another unicast IP (explicit [host] addresses with IPs and MACs): no
# local route, forwarding off: ip_error (IPv6 ip6_forward) drops it IP_INADDRERRORS in routing
K_NOTLOCAL = 12
# ICMP echo reply (ICMPv6 129): icmp_rcv / icmpv6_rcv -> ping_rcv, whose ping_lookup finds no
# ping socket (the model has none) -> dropped (NO_SOCKET from 5.19, P_R_PING)
K_ICMP_PING = 13

# ---- drop reasons (kernel names; ring drops named by the NIC counter)
DROP_REASONS = (
    "rx_missed_errors",
    "NO_SOCKET",
    "SOCKET_RCVBUFF",
    "UNHANDLED_PROTO",
    "IP_INHDR",
    "PKT_TOO_SMALL",
    "IP_NOPROTO",
    "NETFILTER_DROP",
    "CPU_BACKLOG",
    "SOCKET_BACKLOG",
    "PROTO_MEM",
    "NOT_SPECIFIED",  # veth: dev_kfree_skb_any of an skb the full ptr_ring refused; kfree_skb():
    # ip_defrag over ipfrag_high_thresh, an overlapping fragment
    "FRAG_REASM_TIMEOUT",  # ip_expire / ip6_frag_expire: the reassembly timer fired
    "FRAG_TOO_FAR",  # ip_frag_reinit: more than ipfrag_max_dist fragments from the peer between two
    "DUP_FRAG",  # inet_frag_queue_insert: IPFRAG_DUP
    "UDP_CSUM",  # __udp6_lib_rcv: a zero UDP checksum over IPv6 (RFC 8200 §8.1)
    "TCP_OLD_DATA",  # tcp_data_queue: end_seq <= rcv_nxt (a retransmission)
    "TCP_OLD_SEQUENCE",  # tcp_validate_incoming/tcp_sequence: end_seq before rcv_wup
    "TCP_OFO_DROP",  # tcp_ofo_queue: an out-of-order skb the filled gap already covers
    "TCP_OFOMERGE",  # tcp_data_queue_ofo: every byte already in the out-of-order queue
    "TCP_ZEROWINDOW",  # tcp_data_queue: in-order data while the advertised window is 0
    "TCP_OVERWINDOW",  # tcp_data_queue: out-of-order data starting at the window's right edge
    "TCP_INVALID_SEQUENCE",  # tcp_sequence: data starting beyond the window
    # listen sockets (model/engine.py "Listen sockets"), pruning
    "TCP_LISTEN_OVERFLOW",  # tcp_check_req: the accept queue is full (6.15+; NOT_SPECIFIED before)
    "TCP_FLAGS",  # tcp_rcv_state_process(LISTEN): an ACK no request or cookie matches (a RST sent)
    "TCP_RESET",  # tcp_rcv_state_process(LISTEN): a RST to a listener
    "TCP_OFO_QUEUE_PRUNE",  # tcp_prune_ofo_queue: an out-of-order skb freed to make room
    "OTHERHOST",  # ip_rcv_core / ip6_rcv_core: PACKET_OTHERHOST (a VLAN the host has no device for)
    # tcp_sequence (6.17+, 9ca48d616ed7): data ending beyond the window while the receive queue
    # holds data
    "TCP_INVALID_END_SEQUENCE",
    "IP_INADDRERRORS",  # ip_error / ip6_forward with forwarding off: not our address
)
R_RING, R_NOSOCK, R_RCVBUF, R_UNHANDLED, R_INHDR, R_TOOSMALL, R_NOPROTO, R_NF, R_BACKLOG, \
    R_SOCKBACKLOG, R_PROTOMEM, R_NOTSPEC, R_FRAG_TIMEOUT, R_FRAG_TOO_FAR, R_DUP_FRAG, \
    R_UDP_CSUM, R_TCP_OLD_DATA, R_TCP_OLD_SEQ, R_TCP_OFO_DROP, \
    R_TCP_OFOMERGE, R_TCP_ZEROWINDOW, R_TCP_OVERWINDOW, \
    R_TCP_INVALID_SEQ, R_TCP_LISTEN_OVERFLOW, R_TCP_FLAGS, R_TCP_RESET, \
    R_TCP_OFO_PRUNE, R_OTHERHOST, R_TCP_INVALID_END_SEQ, R_INADDR = range(len(DROP_REASONS))
R_NOT_SPECIFIED = R_NOTSPEC

# ---- stages (same order as replay.model.stages.STAGE_IDS)
S_DRIVER, S_GRO, S_NETIF, S_BACKLOG, S_IP, S_ROUTE, S_LOCAL, S_L4, S_COPY, S_APP = range(10)
N_ST = 10

# ---- outcomes
O_DELIVERED, O_DROPPED, O_CONSUMED, O_IGNORED = range(4)

# ---- cost slots (replay.model.costs.COST_KEYS order)
(C_DRIVER, C_GRO, C_GRO_MERGE, C_NETIF, C_IP, C_ROUTE, C_DEMUX, C_LOCAL, C_UDP, C_TCP, C_COPY,
 C_APP, C_HARDIRQ, C_SOFTIRQ, C_NRA, C_POLL, C_REFILL, C_DROP, C_NF_RULE, C_CONNTRACK, C_ICMP,
 C_SYSCALL, C_CONSUME, C_WAKEUP, C_CTXSW, C_TCPACK, L_DMA, L_WAKEUP, L_IPI, C_BACKLOG, C_BL_POLL,
 C_IPI_SEND, C_IPI_IRQ, C_TX, C_DEFRAG, C_REASM, C_CSUM, C_TUNNEL, C_EXTHDR,
 # listen sockets, receive-queue collapsing (model/engine.py "Listen sockets", "Pruning")
 C_CONNREQ, C_CHILD, C_ACCEPT, C_COLLAPSE,
 C_BUSY,
 # skb_attempt_defer_free: the free of a consumed skb (part of fixed.consume) that moves to the
 # allocating CPU's net_rx_action when deferred (model/engine.py "Deferred skb freeing")
 C_SKB_FREE,
 # tcp_v4_rcv of a segment whose socket the reader owns: tcp_add_backlog (engine.py "Socket
 # backlog")
 C_TCP_BL,
 # ip_route_use_hint: the route of a list-RX skb taken from the previous skb's (5.7+)
 C_ROUTE_HINT) = range(47)


# ---- parameter vector P
(P_NQ, P_NCPU, P_RING, P_REFILL, P_WEIGHT, P_BUDGET, P_BUDGET_J, P_BATCH, P_GRO, P_TICK,
 P_PHASE, P_MOD, P_USECS, P_FRAMES, P_GOTO_START, P_INLINE_ALWAYS, P_UDP618, P_SOFTIRQ_J,
 P_HZ1000, P_GRO_MAX, P_NF_PRE, P_NF_IN, P_CONNTRACK, P_NSOCK, P_NTHR, P_SLICE, P_SAMPLE_NS,
 P_RING_USABLE, P_EIRQ0, P_ECPU0, P_ETHR0, P_NF_DROP, P_CEXIT, P_GRO_FT, P_DEFER,
 P_ETMR0,
 # RPS / backlog / veth (model/backlog.py)
 P_RPS, P_MAXBL, P_BL_WEIGHT, P_FL_LOG, P_FL_HASH32, P_RFS_MASK, P_RPS_CPU_MASK, P_RFLOW_MASK,
 P_EIPI0, P_VETH, P_SENDER, P_BQCAP, P_AITR,
 # IP reassembly, TCP ACKs (breadth)
 P_FRAG_HI4, P_FRAG_HI6, P_FRAG_T4, P_FRAG_T6, P_FRAG_DIST, P_FRAG_QSIZE, P_FX_FIFO0, P_FX_NEXT0,
 P_TCP_ACKS, P_ATO,
 # threaded NAPI: sysfs threaded, the comm-table index of napi/<dev>-<id> of queue 0
 P_THREADED, P_NAPI_COMM0,
 # CFS (< 6.6) sysctl_sched_wakeup_granularity in ns; -1 under EEVDF (engine.py ttwu_preempt)
 P_WGRAN,
 # listen sockets (engine.py "Listen sockets"): tcp_syncookies, tcp_max_syn_backlog, the SYN-ACK
 # retransmission count (tcp_synack_retries), 1 when inet_csk_reqsk_queue_is_full compares with
 # > (6.13+) rather than >=, the drop reasons of a full accept queue at the handshake's ACK and
 # at a cookie's ACK; pruning: which tcp_can_ingest rule applies (RMEM_*)
 P_SYNCOOKIES, P_MAXSYN, P_SYNACK_RETRIES, P_REQQ_GT, P_R_LOVF, P_R_CKOVF, P_RMEM_RULE,
 P_ABORT_OVF,
 # busy polling (engine.py "Busy polling"): 1 if any socket busy-polls
 P_BUSY,
 # hardware receive aggregation (LRO / RSC / HW GRO, engine.py "Hardware aggregation"): the
 # entity of queue 0's session timer, the kind (HWA_*), the session timeout in ns (-1: the
 # queue's ITR interval), the segment and payload-byte limits, sessions per queue
 P_EHW0, P_HWAGG, P_HW_TMO, P_HW_MAXSEG, P_HW_MAXLEN, P_HW_NSESS,
 # net.core.skb_defer_max; 0 before 5.19 (no per-CPU defer lists) or when the sysctl is 0
 P_DEFER_MAX,
 # tcp_add_backlog's limit by kernel (TCPBL_*, engine.py "Socket backlog")
 P_TCP_BL_RULE,
 # ICMP output rate limits (engine.py "ICMP replies"): icmp_ratelimit in jiffies, icmp_ratemask,
 # icmp_msgs_per_sec, icmp_msgs_burst, the ICMPv6 per-host interval in jiffies after the route's
 # prefix scaling, the limiter's version (ICMP_RL_*), where the inet_peer token slots start in fx
 P_ICMP_RL, P_ICMP_MASK, P_ICMP_PPS, P_ICMP_BURST, P_ICMP6_TMO, P_ICMP_ORDER, P_ICMP_PEER0,
 # 1 if ip(6)_list_rcv_finish passes a route hint (5.7+, engine.py list_core)
 P_ROUTE_HINT,
 # host.cstate-residency-ns: an idle CPU pays P_CEXIT only after this long in its idle loop
 P_CRES,
 # receive-buffer autotuning (engine.py "Receive-buffer autotuning"): net.ipv4.tcp_moderate_rcvbuf,
 # tcp_rmem[2], the rule by kernel (DRS_*), net.ipv4.tcp_rcvbuf_low_rtt (6.19+), MAX_TCP_HEADER,
 # 1 when tcp_init_buffer_space runs tcp_fixup_rcvbuf (up to 4.19)
 P_MODRCV, P_TCP_RMEM2, P_DRS, P_LOW_RTT, P_MAX_TCP_HDR, P_TCP_FIXUP,
 # 1: tcp_sequence also checks end_seq (6.17+, 9ca48d616ed7 "tcp: do not accept packets beyond
 # window"), counting TcpExtBeyondWindow
 P_TCP_ENDSEQ,
 # deeper idle states (host.cstate-exit-ns / -residency-ns as lists): the second and third
 # state's exit latency and target residency; 0 exit: no such state (engine.py idle_exit)
 P_CEXIT2, P_CRES2, P_CEXIT3, P_CRES3,
 # 1: inet_gro_flush decides a fixed IP ID at the 2nd segment with or without DF (6.18+,
 # f095a358faf2 "net: gro: remove unnecessary df checks"); 0: only under DF
 P_GRO_ID_ANYDF,
 # the drop reason of an ICMP echo reply no ping socket takes (NO_SOCKET from 5.19, b384c95a861e
 # "net: icmp: add skb drop reasons to icmp protocol"; a plain kfree_skb, NOT_SPECIFIED, before)
 P_R_PING,
 # sk_sndbuf of an established TCP socket: tcp_init_buffer_space -> tcp_sndbuf_expand (simulate.py
 # _autotune_params), which tcp_add_backlog's limit reads
 P_TCP_SNDBUF,
 ) = range(102)
N_P = 102
# P_DRS: tcp_rcv_space_adjust's rule. DRS_STEP_J: 4.9-4.12, the 25 % / 50 % steps, rcvmem per
# advmss, the clock in jiffies (tcp_time_stamp); DRS_STEP: 4.13-4.15, the same on the us clock
# (645f4c6f2ebd "tcp: switch rcv_rtt_est and rcvq_space to high resolution timestamps");
# DRS_GROW_MEM: 4.16-6.5, the proportional grow (c3916ad9320e "tcp: smoother receiver
# autotuning"); DRS_GROW_WIN: 6.6-6.15, tcp_space_from_win instead of rcvmem (dfa2f0483360 "tcp:
# get rid of sysctl_tcp_adv_win_scale"); DRS_SPACE: 6.16-6.17, tcp_rcvbuf_grow with rcvwin = 2 x
# space (65c5287892e9 "tcp: fix sk_rcvbuf overshoot" and its series); DRS_SPACE_GROW: 6.18, the
# slow-start grow back (aa251c84636c "tcp: fix too slow tcp_rcvbuf_grow() action"), the cached
# tcp_mstamp; DRS_LOW_RTT: 6.19+, net.ipv4.tcp_rcvbuf_low_rtt
DRS_STEP_J, DRS_STEP, DRS_GROW_MEM, DRS_GROW_WIN, DRS_SPACE, DRS_SPACE_GROW, DRS_LOW_RTT = range(7)
# P_TCP_BL_RULE: sk_add_backlog's limit for a TCP segment: rcvbuf + sndbuf (< 4.10),
# + 64 KiB headroom (4.10, c9c3321257e1 tcp_add_backlog), rcvbuf + sndbuf / 2 + 64 KiB (6.1, the
# signed-overflow fix), 2 * rcvbuf + sndbuf / 2 + 64 KiB capped at UINT_MAX (6.10, ec00ed472bdb)
TCPBL_SUM, TCPBL_64K, TCPBL_HALF_SND, TCPBL_TWICE_RCV = range(4)
# P_ICMP_ORDER: icmp_global_allow takes one credit per message (up to 5.9); takes 0-2 at random
# (5.10+, b38e7819cae9 "icmp: randomize the global rate limiter"), both before the per-host
# check; 6.11+ (8c2bd38b95f7 "icmp: change the order of rate limits") only tests the credit and
# icmp_global_consume takes 0-2 after the per-host check passed
ICMP_RL_ONE, ICMP_RL_RAND, ICMP_RL_HOSTFIRST = 0, 1, 2
# P_RMEM_RULE: tcp_try_rmem_schedule prunes when rmem > rcvbuf (up to 6.16 and again from 7.0),
# rmem + truesize > rcvbuf (6.17), rmem + skb->len > rcvbuf (6.18, 6.19)
RMEM_CLASSIC, RMEM_TRUESIZE, RMEM_LEN = range(3)
HWA_NONE, HWA_RSC, HWA_MLX5_LRO, HWA_SHAMPO = 0, 1, 2, 3  # P_HWAGG: ixgbe RSC, mlx5 LRO/HW-GRO

# ---- CPU contexts
X_IDLE, X_TASK, X_SOFTIRQ, X_HARDIRQ = range(4)
# contexts of a cpu.parquet row
CTX_NAMES = ("hardirq", "softirq", "ksoftirqd", "task")
CTXR_HARDIRQ, CTXR_SOFTIRQ, CTXR_KSOFTIRQD, CTXR_TASK = range(4)

# ---- per-CPU state cs[c, *]
(CS_X, CS_TASK, CS_NEXT, CS_STEP, CS_ARG, CS_REM, CS_PENDING, CS_IN_NRA, CS_NRA, CS_BUDGET,
 CS_TLIMIT, CS_POLLQ, CS_WORK, CS_PHASE, CS_HS_END, CS_HS_LEFT, CS_HS_KS, CS_NEED_RESCHED,
 CS_KS_STATE, CS_SLICE_END, CS_PL_N, CS_LL_N, CS_RL_N, CS_RQ_N, CS_HI_N, CS_HI_RET, CS_HI_Q,
 CS_SPAN0, CS_SPAN1, CS_SPAN2, CS_COMM1, CS_LSTEP, CS_LPOS, CS_POLL_T, CS_NRA_POLLS,
 CS_PROCESSED, CS_DROPPED, CS_SQUEEZE, CS_SQ_BUDGET, CS_SQ_TIME, CS_NETRX, CS_KS_WAKES,
 CS_BUSY, CS_NRA_T, CS_RESUME_STEP, CS_RESUME_ARG, CS_FLUSH_RET, CS_TMO, CS_KEEP_MASKED,
 # softnet_data of the backlog (model/backlog.py): input_pkt_queue + process_queue as one FIFO
 # (head, process_queue length, input_pkt_queue length), input_queue_head/tail counters (RFS),
 # received_rps, flow-limit count and history head, pending RPS IPIs, net_rx_action exit kind
 CS_BQ_HEAD, CS_BQ_NPROC, CS_BQ_NIN, CS_IQ_HEAD, CS_IQ_TAIL, CS_RPS_RECV, CS_FL_COUNT,
 CS_FL_HEAD, CS_IPI_N, CS_IPI_BROKE, CS_RPS_TC, CS_RPS_RF, CS_RPS_KEEP,
 CS_BP_MODE,  # busy polling: which napi->poll the poll machine runs (BP_ITER, BP_STOP)
 # deferred skb freeing (engine.py "Deferred skb freeing"): sd->defer_count, skbs waiting on
 # sd->defer_list and their free cost in ns, sd->defer_ipi_scheduled (the csd queued), an RPS
 # csd queued with the call-function IPI in flight, the kicks sent to this CPU, skbs deferred
 # to it in all
 CS_DEFER_N, CS_DEFER_NS, CS_DEFER_CSD, CS_RPS_CSD, CS_DEFER_KICKS, CS_DEFERRED,
 # CFS (< 6.6) wake-up preemption by ksoftirqd (engine.py wakeup_softirqd): when ksoftirqd last
 # went to sleep, and a preemption of the current reader due at the return from interrupt
 CS_KS_SLEEP_T, CS_WAKE_PREEMPT,
 CS_BP_BUDGET,  # busy polling: the budget of the napi->poll the poll machine runs
 CS_BP_SKIP,  # busy_poll_stop with prefer_busy_poll and the deferral armed: skip_schedule
 CS_TICK_REM,  # a reader's user-space step cut at a scheduler tick: the ns it still needs
 CS_IDLE_T,  # when the CPU last entered its idle loop (the idle-state residency rule)
 # which accumulator slots a span used, per level (hardirq/softirq/task) two 64-bit words of
 # slot bits: flush_span visits those slots instead of all N_SLOTS (engine.py charge); new
 # columns go before it
 CS_ACCM,
 ) = range(76)
N_CS = 76 + 5  # CS_ACCM .. CS_ACCM + 5
BP_ITER, BP_STOP = 1, 2  # napi_poll in __napi_busy_loop's loop; busy_poll_stop's last poll

# ---- per-queue state qs[q, *]
(QS_CPU, QS_SCHED, QS_MISSED, QS_IRQ_EN, QS_IRQ_T, QS_LAST_IRQ, QS_RING_N, QS_UNUSED, QS_HEAD,
 QS_TAIL, QS_FIRST_T, QS_CNT, QS_RX_N, QS_RX_SEG, QS_GRO_N, QS_GRO_SEQ, QS_IRQS, QS_POLLS,
 QS_ARMS, QS_PKTS, QS_BEXH, QS_MISSED_DROP, QS_BYTES, QS_POLL_IRQ_T, QS_ACCEPTED, QS_DEFER,
 QS_TIMERS, QS_ITR, QS_AITR_Q, QS_AITR_RX, QS_AITR_TX, QS_AITR_NEXT, QS_AITR_PK,
 QS_AITR_BY, QS_FRAMES, QS_DIM_STATE, QS_DIM_TUNE, QS_DIM_IX, QS_DIM_SL, QS_DIM_SR, QS_DIM_TIRED,
 QS_DIM_E0, QS_DIM_P0, QS_DIM_B0, QS_DIM_T0, QS_DIM_PPMS, QS_DIM_BPMS, QS_DIM_EPMS,
 QS_THR,  # threaded NAPI: its kthread's state (NT_* below)
 QS_THR_SLEEP_T,  # when the kthread last went to sleep (CFS wake-up preemption)
 QS_BPRX,  # packets busy polling took (LINUX_MIB_BUSYPOLLRXPACKETS)
 # hardware aggregation: open sessions (each holds one descriptor), the earliest session
 # deadline armed, and the driver's counters: segments appended (ixgbe rsc_count, mlx5
 # lro_num_seg - 1 summed), aggregates of two or more (rsc_flush, lro_packets), their bytes
 QS_HW_N, QS_HW_TMR, QS_HW_AGG, QS_HW_FLUSH, QS_HW_BYTES,
 # mlx5 hardware GRO (SHAMPO): the skb the driver builds from matching CQEs (rq->hw_gro_data
 # ->skb; -1: none) and its last segment
 QS_SH_SKB, QS_SH_TAIL,
 QS_PREFER,  # NAPI_STATE_PREFER_BUSY_POLL (engine.py "Busy polling": prefer_busy_poll)
 ) = range(59)
N_QS = 59
NT_SLEEP, NT_RUNNABLE, NT_RUNNING = range(3)  # qs[q, QS_THR]
# ixgbe dynamic ITR constants (ixgbe.h: IXGBE_ITR_ADAPTIVE_*)
AITR_MIN_INC, AITR_MIN_USECS, AITR_MAX_USECS, AITR_LATENCY = 2, 10, 126, 0x80
# P_AITR: 0 fixed moderation, 1/2 ixgbe dynamic ITR (10G/100M, 2.5G/1G/10M), 3 net_dim (mlx5)
AITR_DIM = 3
# lib/dim (include/linux/dim.h): sample states, tuning states, DIM_NEVENTS, the profile tables
DIM_START_MEASURE, DIM_MEASURE_IN_PROGRESS = 0, 1
DIM_PARKING_ON_TOP, DIM_PARKING_TIRED, DIM_GOING_RIGHT, DIM_GOING_LEFT = range(4)
DIM_NEVENTS = 64
DIM_NUM_PROFILES = 5
DIM_RX_EQE_USEC = (1, 8, 64, 128, 256)  # lib/dim/net_dim.c NET_DIM_RX_EQE_PROFILES
DIM_RX_EQE_PKTS = (256, 256, 256, 256, 256)
DIM_RX_CQE_USEC = (2, 8, 16, 32, 64)  # NET_DIM_RX_CQE_PROFILES
DIM_RX_CQE_PKTS = (256, 128, 64, 64, 64)

# ---- GRO held-flow slots gh[q, slot, *] (8 buckets x 8 flows, gro.c MAX_GRO_SKBS/GRO_HASH_BUCKETS)
(GH_USED, GH_HEAD, GH_LAST, GH_CNT, GH_LEN, GH_NEXTSEQ, GH_MSS, GH_ACK, GH_FLAGS, GH_OPT, GH_TTL,
 GH_TOS, GH_DF, GH_ID0, GH_FIXED, GH_AGE, GH_FLOW, GH_ORDER, GH_HDR) = range(19)
N_GH = 19
# ---- hardware aggregation sessions hw[q, slot, *] (the NIC's RSC / LRO contexts of a queue)
(HW_USED, HW_HEAD, HW_LAST, HW_CNT, HW_LEN, HW_NEXTSEQ, HW_MSS, HW_ACK, HW_OPT, HW_FLOW,
 HW_DEADLINE, HW_TTL, HW_TOS, HW_DF, HW_ID0, HW_ORDER) = range(16)
N_HW = 16

# ---- per-socket state ss[s, *]
(SS_RMEM, SS_DEFICIT, SS_RCVBUF, SS_QN, SS_QHEAD, SS_QOFF, SS_QCAP, SS_PROTO, SS_WAITER,
 SS_INDGRAMS, SS_RCVBUFERR, SS_DROPS, SS_NTHR, SS_RR, SS_MAXQ, SS_READERQ, SS_SOCK_SAMPLE,
 # a TCP listener (model/engine.py "Listen sockets"): listening, sk_max_ack_backlog, the accept
 # queue (sk_ack_backlog), the SYN queue (inet_csk_reqsk_queue_len), when a SYN last met a full
 # SYN queue (tcp_synq_overflow; -1: never)
 SS_LISTEN, SS_MAXBL, SS_ACCQ, SS_SYNQ, SS_OVF_T,
 SS_LL_USEC,  # sk_ll_usec: SO_BUSY_POLL, else net.core.busy_read (0: no busy polling)
 SS_NAPI,  # sk_napi_id as the queue + 1 (0: none yet; sk_mark_napi_id / _once)
 SS_CONN,  # a connect()ed UDP socket (its napi id follows every skb, not only the first)
 SS_BP_BUDGET,  # sk_busy_poll_budget (SO_BUSY_POLL_BUDGET) or BUSY_POLL_BUDGET when it is 0
 SS_PREFER,  # sk_prefer_busy_poll (SO_PREFER_BUSY_POLL)
 SS_AUTOTUNE,  # 1: no SO_RCVBUF (SOCK_RCVBUF_LOCK clear): tcp_rcv_space_adjust / tcp_clamp_window may resize
 ) = range(28)
N_SS = 28

# ---- per-thread state ts[k, *]
(TS_CPU, TS_SOCK, TS_STATE, TS_BATCH, TS_WORK, TS_PHASE, TS_MSG_N, TS_MSG_I, TS_SPAN_T,
 TS_RESUME, TS_APP, TS_KIND,
 TS_SLEEP_T,  # when the reader last went to sleep (CFS wake-up preemption)
 TS_ACCEPT,  # [[app]] accept-ns: user-space work per accepted connection
 # busy polling: the loop's start (-1: not in one), the queue it owns (-1: none), a spin in
 # progress, its iteration period and the part of it that is the driver's poll, yield wanted
 TS_BP_START, TS_BP_OWN, TS_BP_SPIN, TS_BP_P, TS_BP_POLLNS, TS_BP_YIELD,
 TS_BP_Q,  # busy polling: the queue whose NAPI the loop polls (sk_napi_id at its start)
 # a step cut by a wake-up preemption (engine.py preempt_reader): the step (ST_NONE: none), its
 # argument and the ns it still has to run when the reader gets the CPU back
 TS_PRE_STEP, TS_PRE_ARG, TS_PRE_REM,
 ) = range(24)
N_TS = 24
TK_READER, TK_SENDER = 0, 1  # ts[k, TS_KIND]: an [[app]] reader, or the veth sender (tcpreplay)
T_SLEEP, T_WAKING, T_RUNNABLE, T_RUNNING = range(4)

# ---- steps a CPU executes (cs[c, CS_STEP])
(ST_NONE, ST_HARDIRQ, ST_NRA_ENTRY, ST_POLL_START, ST_REFILL, ST_PKT, ST_LISTCORE, ST_L4,
 ST_WAKE, ST_SYSCALL, ST_COPY, ST_WORK, ST_CTXSW, ST_CTXSW_KS, ST_CEXIT,
 # model/backlog.py: one skb through get_rps_cpu + enqueue_to_backlog; sending the RPS IPIs;
 # the veth sender's transmit up to the tap, veth_xmit, freeing a dropped skb, the resume point
 ST_RPS, ST_IPI, ST_TX, ST_XMIT, ST_TXFREE, ST_TXNEXT,
 # threaded NAPI: back from the softirqs local_bh_enable ran in the kthread (engine.py)
 ST_NAPI_NEXT,
 # busy polling: iterations of napi_busy_loop that find nothing; back from a busy poll
 ST_BUSY, ST_BP_NEXT) = range(24)
HS_NAPI_THREAD = 2  # cs[c, CS_HS_KS]: the poll runs in a napi/<dev>-<id> kthread
HS_BUSY = 3  # cs[c, CS_HS_KS]: the poll runs in a reader's busy poll (process context)
BUSY_POLL_BUDGET = 8  # include/net/busy_poll.h

# ---- CPU accounting slots: (symbol, stage id or "", category). {driver...} filled per driver.
SLOTS: tuple[tuple[str, str, str], ...] = (
    ("{irq_symbol}", "", "netdev"),  # 0 hard IRQ handler
    ("handle_softirqs", "", "etc"),  # 1
    ("net_rx_action", "", "netdev"),  # 2
    ("{poll_symbol}", "", "netdev"),  # 3 driver ->poll fixed work, napi_complete_done
    ("{refill_symbol}", "", "mm"),  # 4 RX buffer refill
    ("{clean_symbol}", "driver", "netdev"),  # 5
    ("dev_gro_receive", "gro", "netdev"),  # 6
    ("tcp4_gro_receive", "gro", "netdev"),  # 7 merge into a held flow
    ("__netif_receive_skb_core", "netif", "netdev"),  # 8
    ("ip_rcv", "ip", "tcp/ip"),  # 9
    ("ip_route_input_noref", "route", "tcp/ip"),  # 10
    ("tcp_v4_early_demux", "route", "tcp/ip"),  # 11
    ("ip_local_deliver", "local", "tcp/ip"),  # 12
    ("__udp4_lib_rcv", "l4", "tcp/ip"),  # 13
    ("tcp_v4_rcv", "l4", "tcp/ip"),  # 14
    ("nft_do_chain", "ip", "tcp/ip"),  # 15 PREROUTING rules
    ("nft_do_chain", "local", "tcp/ip"),  # 16 INPUT rules
    ("nf_conntrack_in", "ip", "tcp/ip"),  # 17
    ("kfree_skb_reason", "netif", "mm"),  # 18 drops, per stage
    ("kfree_skb_reason", "ip", "mm"),  # 19
    ("kfree_skb_reason", "local", "mm"),  # 20
    ("kfree_skb_reason", "l4", "mm"),  # 21
    ("icmp_send", "l4", "tcp/ip"),  # 22 port unreachable / echo reply
    ("try_to_wake_up", "l4", "sched"),  # 23 sock_def_readable waking the reader
    ("{recv_symbol}", "copy", "tcp/ip"),  # 24 recvmsg with data
    ("{recv_symbol}", "", "sched"),  # 25 recvmsg that found nothing and slept
    ("skb_copy_datagram_iter", "copy", "data_copy"),  # 26
    ("{consume_symbol}", "copy", "mm"),  # 27
    ("__schedule", "", "sched"),  # 28 context switch
    ("app_work", "app", "app"),  # 29 user space
    ("arp_rcv", "ip", "tcp/ip"),  # 30
    ("icmp_rcv", "l4", "tcp/ip"),  # 31
    ("napi_watchdog", "", "netdev"),  # 32 the gro_flush_timeout hrtimer's interrupt
    # RPS / backlog / veth (model/backlog.py; Cai et al. put get_rps_cpu and enqueue_to_backlog
    # in netdev, KERNEL.md §6.4)
    ("enqueue_to_backlog", "netif", "netdev"),  # 33 get_rps_cpu + enqueue_to_backlog / netif_rx
    ("__netif_receive_skb_core", "backlog", "netdev"),  # 34 the same core, run by process_backlog
    ("process_backlog", "", "netdev"),  # 35 the backlog NAPI's per-poll work
    ("net_rps_send_ipi", "", "etc"),  # 36 smp_call_function_single_async per RPS IPI
    ("rps_trigger_softirq", "", "netdev"),  # 37 the IPI's handler on the target CPU (hard IRQ)
    ("{tx_symbol}", "", "etc"),  # 38 the veth sender's own transmit work up to veth_xmit
    ("kfree_skb_reason", "backlog", "mm"),  # 39 CPU_BACKLOG drops, and drops in the core
    ("ip_defrag", "local", "tcp/ip"),  # 40 a fragment into its reassembly queue (ipv6_frag_rcv)
    ("inet_frag_reasm_finish", "local", "tcp/ip"),  # 41 the datagram rebuilt from its fragments
    ("csum_partial", "gro", "etc"),  # 42 skb_gro_checksum_validate of a CHECKSUM_NONE skb
    ("csum_partial", "l4", "etc"),  # 43 tcp_checksum_complete (CHECKSUM_NONE, not done in GRO)
    ("skb_copy_and_csum_datagram", "copy", "data_copy"),  # 44 recvmsg checksumming as it copies
    ("udp_v4_early_demux", "route", "tcp/ip"),  # 45 a connected UDP socket's cached route
    ("udp_gro_receive_segment", "gro", "netdev"),  # 46 a datagram appended (socket UDP_GRO)
    # 47-54 a tunnel endpoint: the decapsulation, then the inner packet's second pass through the
    # stack (gro_cells NAPI, core, ip_rcv, routing, local delivery), all in the l4 stage
    ("vxlan_rcv", "l4", "tcp/ip"),  # 47
    ("geneve_udp_encap_recv", "l4", "tcp/ip"),  # 48
    ("gre_rcv", "l4", "tcp/ip"),  # 49
    ("gro_cell_poll", "l4", "netdev"),  # 50
    ("__netif_receive_skb_core", "l4", "netdev"),  # 51
    ("ip_rcv", "l4", "tcp/ip"),  # 52
    ("ip_route_input_noref", "l4", "tcp/ip"),  # 53
    ("ip_local_deliver", "l4", "tcp/ip"),  # 54
    ("arp_rcv", "l4", "tcp/ip"),  # 55 an inner ARP
    ("tcp_send_ack", "l4", "tcp/ip"),  # 56 an ACK (or SYN-ACK) the receive path sends
    ("ip6_protocol_deliver_rcu", "local", "tcp/ip"),  # 57 walking IPv6 extension headers
    ("kfree_skb_reason", "driver", "mm"),  # 58 veth: the skb a full ptr_ring refused
    # listen sockets (model/engine.py "Listen sockets"): a SYN's request or cookie and its
    # SYN-ACK; the child socket of a completed handshake; accept() and the app's work per
    # connection (no packet is read: outside the stages); receive-queue collapsing; the
    # window-update ACK tcp_cleanup_rbuf sends from recvmsg
    ("tcp_conn_request", "l4", "tcp/ip"),  # 59
    ("tcp_v4_syn_recv_sock", "l4", "tcp/ip"),  # 60
    ("inet_csk_accept", "", "tcp/ip"),  # 61
    ("app_work", "", "app"),  # 62 per accepted connection
    ("tcp_collapse", "l4", "data_copy"),  # 63
    ("tcp_send_ack", "copy", "tcp/ip"),  # 64 tcp_cleanup_rbuf's window update
    ("napi_busy_loop", "", "netdev"),  # 65 a busy-polling reader's loop (process context)
    # deferred skb freeing (engine.py "Deferred skb freeing"): the allocating CPU frees the
    # list in net_rx_action; the reader's kick (smp_call_function_single_async); the IPI's
    # handler on the allocating CPU (trigger_rx_softirq raises NET_RX)
    ("skb_defer_free_flush", "", "mm"),  # 66
    ("kick_defer_list_purge", "copy", "etc"),  # 67
    ("trigger_rx_softirq", "", "netdev"),  # 68
    # the socket backlog (engine.py "Socket backlog"): a segment whose connection the reader
    # owns is queued by tcp_add_backlog in the softirq; release_sock -> __release_sock runs its
    # tcp_v4_do_rcv (tcp_rcv_established) in the reader's context
    ("tcp_add_backlog", "l4", "tcp/ip"),  # 69
    ("tcp_v4_do_rcv", "l4", "tcp/ip"),  # 70
    ("ip_route_use_hint", "route", "tcp/ip"),  # 71 the route taken from a list-RX hint
    # 72 ip_protocol_deliver_rcu's protocol unreachable (IPv6: parameter problem) for an IP
    # protocol no handler takes, before the IP_NOPROTO drop: local delivery's work
    ("icmp_send", "local", "tcp/ip"),
    ("igmp_rcv", "l4", "tcp/ip"),  # 73 IGMP's handler (queries and reports: consumed)
    ("kfree_skb_reason", "route", "mm"),  # 74 ip_error's drop (K_NOTLOCAL)
)
N_SLOTS = len(SLOTS)
(Y_IRQ, Y_SOFTIRQ, Y_NRA, Y_POLL, Y_REFILL, Y_DRIVER, Y_GRO, Y_GRO_MERGE, Y_NETIF, Y_IP, Y_ROUTE,
 Y_DEMUX, Y_LOCAL, Y_UDP, Y_TCP, Y_NF_PRE, Y_NF_IN, Y_CT, Y_DROP_NETIF, Y_DROP_IP, Y_DROP_LOCAL,
 Y_DROP_L4, Y_ICMP_SEND, Y_WAKE, Y_RECV, Y_RECV_IDLE, Y_COPY, Y_CONSUME, Y_CTXSW, Y_APP, Y_ARP,
 Y_ICMP_RCV, Y_TMR, Y_RPS, Y_BL_CORE, Y_BL_POLL, Y_IPI_SEND, Y_IPI_IRQ, Y_TX,
 Y_DROP_BL, Y_DEFRAG, Y_REASM, Y_CSUM_GRO, Y_CSUM_L4, Y_CSUM_COPY,
 Y_UDP_DEMUX, Y_UDP_GRO, Y_TUN_VXLAN, Y_TUN_GENEVE, Y_TUN_GRE, Y_IN_GRO, Y_IN_NETIF, Y_IN_IP,
 Y_IN_ROUTE, Y_IN_LOCAL, Y_IN_ARP, Y_TCP_ACK, Y_EXTHDR, Y_DROP_DRV, Y_CONNREQ, Y_CHILD,
 Y_ACCEPT, Y_APP_ACCEPT, Y_COLLAPSE, Y_RBUF_ACK, Y_BUSY, Y_DEFER_FREE, Y_DEFER_KICK,
 Y_DEFER_IRQ, Y_TCP_BL, Y_TCP_DORCV, Y_ROUTE_HINT, Y_ICMP_LOCAL, Y_IGMP, Y_DROP_ROUTE) = range(N_SLOTS)
assert N_SLOTS <= 128, "flush_span's slot masks (CS_ACCM) hold 2 x 64 slots per level"
TUN_NONE, TUN_VXLAN, TUN_GENEVE, TUN_GRE = range(4)

# ---- events.parquet kinds (engine codes)
# rcvbuf: a TCP connection's sk_rcvbuf changed (value: the new size, queue column: the socket;
# detail: which kernel function did it)
EV_KINDS = ("irq", "poll", "net_rx", "squeeze", "ksoftirqd_wake", "ring", "sock", "drop",
            "rcvbuf")
E_IRQ, E_POLL, E_NETRX, E_SQUEEZE, E_KSWAKE, E_RING, E_SOCK, E_DROP, E_RCVBUF = \
    range(len(EV_KINDS))
EV_DETAILS = ("", "complete", "weight", "budget", "time", "softirq", "ksoftirqd",
              "tcp_rcv_space_adjust", "tcp_data_queue_ofo", "tcp_fixup_rcvbuf", "tcp_clamp_window")
D_NONE, D_COMPLETE, D_WEIGHT, D_BUDGET, D_TIME, D_SOFTIRQ, D_KSOFTIRQD, D_DRS, D_DRS_OFO, \
    D_FIXUP, D_CLAMP = range(len(EV_DETAILS))

# ---- per-packet input columns pk[i, *] (one 2-D array keeps the engine's signature small)
PK_FIELDS = ("t_vis", "t_wire", "que", "plen", "paylen", "kind", "sock", "gro_ok", "flowk",
             "bucket", "seq", "ack", "flags", "opth", "ttl", "tos", "df", "ipid", "hdrlen",
             "truesize", "v6", "hash", "fragq", "foff", "fend", "fmf", "peer", "csum", "demux",
             "tun", "ikind", "isock", "ilen", "ext", "ipeer", "vlan", "rdst")
(F_T_VIS, F_T_WIRE, F_QUE, F_PLEN, F_PAYLEN, F_KIND, F_SOCK, F_GRO_OK, F_FLOWK, F_BUCKET, F_SEQ,
 F_ACK, F_FLAGS, F_OPTH, F_TTL, F_TOS, F_DF, F_IPID, F_HDRLEN, F_TRUESIZE, F_V6,
 F_HASH, F_FRAGQ, F_FOFF, F_FEND, F_FMF, F_PEER, F_CSUM, F_DEMUX, F_TUN, F_IKIND, F_ISOCK, F_ILEN,
 F_EXT, F_IPEER, F_VLAN, F_RDST) = range(37)
N_PK = 37
# ipeer: dense id of the source address (its inet_peer, IPv4 and IPv6 apart) that an ICMP error or
# echo reply to this frame would go to; -1 when none may be sent (a multicast or broadcast
# destination: __icmp_send's PACKET_HOST and RTCF_BROADCAST|MULTICAST tests, icmp6_send's
# multicast test; an unspecified or multicast IPv6 source, RFC 4443 2.4)
# vlan: VLAN_* (__netif_receive_skb_core's handling of the frame's 802.1Q tag, simulate.py
# _vlan_rx); rdst: a dense id of the route a hint can share (IPv4 daddr and tos, IPv6 daddr)
VLAN_NONE, VLAN_ROUND, VLAN_OTHERHOST = 0, 1, 2
# F_HASH: skb->hash (RPS, RFS, flow limit)
# ext: bytes of IPv6 extension headers before the transport header (the fragment header aside)
# demux: bit 0 for UDP to a connect()ed socket (udp_v4_early_demux finds it), DEMUX_MCAST for
# UDP to a broadcast or multicast address (__udp4_lib_mcast_deliver)
DEMUX_MCAST = 2
# tun: TUN_* of a packet this host decapsulates; ikind/isock/ilen: its inner packet
# csum: skb->ip_summed as the driver sets it (CSUM_*), + CSUM_GRO_V if GRO validates it
# (inet_gro_receive reaches tcp4/udp4_gro_receive: not a fragment, no IPv4 options),
# + CSUM_ZERO6 for a zero UDP checksum over IPv6
CSUM_NONE, CSUM_UNNECESSARY, CSUM_COMPLETE = 0, 1, 2
CSUM_KIND = 3
CSUM_GRO_V = 4
CSUM_ZERO6 = 8
# fragq: the reassembly key (saddr, daddr, id, protocol; IPv6 without the protocol) as a dense id,
# -1 if not a fragment; foff/fend: the fragment's byte range in the datagram; fmf: IP_MF;
# peer: dense id of the IPv4 source (its inet_peer, for ipfrag_max_dist), -1 for IPv6

# ---- per-packet outputs po[i, *]
PO_FIELDS = ("outc", "dstage", "dreason", "tirq", "tpoll", "tdone", "pcpu", "papp", "skbh",
             "segnext", "skbcnt", "skblen", "skbtrue", "fhead", "hwm", "acpu")
(O_OUTC, O_DSTAGE, O_DREASON, O_TIRQ, O_TPOLL, O_TDONE, O_PCPU, O_PAPP, O_SKBH, O_SEGNEXT,
 O_SKBCNT, O_SKBLEN, O_SKBTRUE, O_FHEAD, O_HWM, O_ACPU) = range(16)
N_PO = 16  # fhead: for a reassembled datagram, the packet that was its first fragment (offset 0)
# acpu: skb->alloc_cpu, the CPU whose driver (or the veth sender) built the skb (-1: none)
# hwm: the CQE's SHAMPO bits (mlx5 hardware GRO): HWM_MATCH the packet continues the session of
# the CQE before it, HWM_FLUSH the NIC closed the session with it
HWM_MATCH, HWM_FLUSH = 1, 2
# HWM_BACKLOG: tcp_v4_rcv found the segment's socket owned by the reader (lock_sock in
# tcp_recvmsg): it went to the socket backlog, its tcp_v4_do_rcv runs at release_sock
HWM_BACKLOG = 4

# ---- per-CPU lists lst[c, *, :]: poll list, net_rx_action's local list, repoll, run queue,
# hard IRQs waiting for the current step, scratch
L_PL, L_LL, L_RL, L_RQ, L_HI, L_TMPQ, L_RPSIPI = range(7)  # L_RPSIPI: this CPU's rps_ipi_list
N_LST = 7

# ---- misc[*]: loop cursor, buffer fill levels, SNMP scratch
M_NXT, M_NROWS, M_NEV = 0, 1, 2
# misc[3:7]: events (arrivals, IRQ timers, CPU steps, other timers); misc[M_TARR]: the next
# arrival's time, kept by run_loop for run_on (engine.py)
M_TARR = 7
M_IPIN, M_UDPIN, M_TCPIN = 8, 16, 24
# M_TCPIN + 4: ACKs sent (Tcp OutSegs), + 5: of which by the delayed-ACK timer (TcpExt DelayedACKs)
# M_TCPX + 0: TCPOFOQueue, + 1: TCPOFODrop, + 2: TCPOFOMerge, + 3: DelayedACKLost,
# + 4: TCPDSACKOldSent, + 5: TCPDSACKOfoSent, + 6: TCPZeroWindowDrop, + 7: TCPBacklogDrop,
# + 8: BeyondWindow (6.17+)
M_TCPX = 32
# ---- per-flow TCP receive state tf[flow, *] (the receiving socket's view of one connection):
# NXT rcv_nxt (HAVE_NXT: known), WUP rcv_wup (rcv_nxt when the last ACK left), OFO the first
# packet of the out-of-order queue (-1: empty; each packet's successor in tofo[packet], sorted by
# seq), ACKNOW an ACK leaves after this segment, CNXT/DUPS tcp_sack_compress's
# compressed_ack_rcv_nxt and dup_ack_counter, WND rcv_wnd as the last ACK advertised it (-1:
# no ACK seen yet)
(TF_MSS, TF_UNACK, TF_QUICK, TF_DELACK, TF_NXT, TF_HAVE_NXT, TF_WUP, TF_OFO, TF_ACKNOW, TF_CNXT,
 TF_DUPS, TF_WND,
 # the handshake with a listener (RQ_* below) and when its request was made
 TF_REQ, TF_REQ_T,
 # the connection's own receive memory (sk_rmem_alloc: its skbs' truesize in the receive and
 # out-of-order queues) and receive-queue length: each connection is its own socket in the
 # kernel, with the [[app]]'s rcvbuf as its sk_rcvbuf
 TF_RMEM, TF_QN,
 # the socket backlog (engine.py "Socket backlog"): the reader thread + 1 that owns the
 # connection (lock_sock held over its copies), 0 if none; the backlog's first and last packet
 # (-1: empty; each packet's successor in tofo[packet]) and sk_backlog.len (truesize bytes)
 TF_OWNER, TF_BLH, TF_BLT, TF_BLLEN,
 # receive-buffer autotuning (engine.py "Receive-buffer autotuning"): the connection's own
 # sk_rcvbuf (0: not set yet, the [[app]]'s), copied_seq, rcvq_space (space, seq, time; time
 # -1: tcp_init_buffer_space not run yet), rcv_rtt_est (rtt << 3, seq, time; time -1: no
 # measurement started), the cached tcp_mstamp (6.18+), tp->advmss, 1 when the flow carries
 # the timestamp option, 1 when the host opened it passively (a listener's child)
 TF_RCVBUF, TF_COPIED, TF_RQ_SPACE, TF_RQ_SEQ, TF_RQ_T, TF_RTT, TF_RTT_SEQ, TF_RTT_T,
 TF_MSTAMP, TF_ADVMSS, TF_TS, TF_PASSIVE) = range(32)
N_TF = 32
# tf[f, TF_REQ]: no handshake seen (a connection from before the trace), a request sock in the
# SYN queue (NEW_SYN_RECV), a cookie SYN-ACK sent (no state kept), the child socket made
# (ESTABLISHED), the SYN dropped (no SYN-ACK), the request gone (expired or reset)
RQ_NONE, RQ_SYNRECV, RQ_COOKIE, RQ_EST, RQ_DROPPED, RQ_GONE = range(6)
# M_TCPL + k: ListenOverflows, ListenDrops, SyncookiesSent, SyncookiesRecv, SyncookiesFailed,
# TCPReqQFullDoCookies, TCPReqQFullDrop, SYN-ACKs sent, RSTs sent by a listener, TCPSynRetrans,
# EmbryonicRsts, PruneCalled, RcvPruned, OfoPruned, TCPRcvCollapsed, window-update ACKs from
# recvmsg (tcp_cleanup_rbuf)
M_TCPL = 48
(TL_OVF, TL_DROPS, TL_CK_SENT, TL_CK_RECV, TL_CK_FAIL, TL_QF_COOKIE, TL_QF_DROP, TL_SYNACK,
 TL_RST, TL_SYNRETR, TL_EMBRST, TL_PRUNE, TL_RCVPRUNED, TL_OFOPRUNED, TL_COLLAPSED,
 TL_RBUF_ACK) = range(16)
M_RQH, M_RQT = 64, 65  # head and tail of the request FIFO rqf (requests in the order made)
M_XCOST = 66  # scratch: CPU ns tcp_prune_queue spent collapsing within the current l4_done
# M_ICMP + k: ICMP output (engine.py "ICMP replies"): the global token bucket's credit and stamp
# (jiffies), the get_random_u32 stream, then counters: OutDestUnreachs (IPv4, IPv6),
# OutRateLimitGlobal (one counter for both: icmpv6_global_allow counts ICMP_MIB_RATELIMITGLOBAL),
# OutRateLimitHost (IPv4), Icmp6OutRateLimitHost, OutEchoReps (IPv4, IPv6), OutTimeExcds (IPv4,
# IPv6: the reassembly timer's), Icmp6OutParmProblems (an unknown next header)
M_ICMP = 68
(IC_CREDIT, IC_STAMP, IC_RNG, IC_UNREACH4, IC_UNREACH6, IC_RL_GLOBAL, IC_RL_HOST4, IC_RL_HOST6,
 IC_ECHOREP4, IC_ECHOREP6, IC_TIMEEXC4, IC_TIMEEXC6, IC_PARMPROB6) = range(13)
N_MISC = 84

# ---- IP reassembly queues fq[key, *] (one row per fragq key; a key has at most one live queue)
(FQ_LIVE, FQ_FLAGS, FQ_LEN, FQ_MEAT, FQ_TRUE, FQ_EXP, FQ_RID, FQ_HEAD, FQ_GEN, FQ_V6, FQ_SOCK,
 FQ_KIND, FQ_L4HDR, FQ_FIRST) = range(14)
N_FQ = 14
FQ_FIRST_IN, FQ_LAST_IN = 1, 2  # INET_FRAG_FIRST_IN, INET_FRAG_LAST_IN
# ---- fx[*]: reassembly globals; the inet_peer rid counters from FX_PEER0; the timer FIFOs of
# (key, generation) pairs from P_FX_FIFO0 (IPv4) and P_FX_FIFO0 + 2 * (fragments + 1) (IPv6);
# then each packet's next queued fragment from P_FX_NEXT0
(FX_MEM4, FX_MEM6, FX_FIFO_H, FX_FIFO_T, FX_REQ4, FX_OK4, FX_FAIL4, FX_TMO4, FX_REQ6, FX_OK6,
 FX_FAIL6, FX_TMO6, FX_OVL4, FX_OVL6, FX_FIFO6_H, FX_FIFO6_T) = range(16)
FX_PEER0 = 16  # IPv4 and IPv6 timers (30 s / 60 s) each keep a FIFO: each is in expiry order
