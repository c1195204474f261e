"""Engine arrays → one StructRef the compiled engine takes by pointer.

Why not a namedtuple: numba passes a tuple of 27 arrays by value, so every non-inlined call copied
~190 machine words and incremented and decremented 27 reference counts (atomic `lock` ops); `perf`
on a 1M-frame UDP flood put over half of the engine loop's time in NRT_incref/NRT_decref, and type
inference re-resolved the 27-array tuple type at every call site. A StructRef is one pointer to a
refcounted struct: a call costs one pointer and one reference count.

The struct type is built here, outside the engine module, so numba's cache=True can find it
(numba issue #9030: a StructRef defined in the module that uses it misses the cache).
"""

from __future__ import annotations

from typing import Any

from llvmlite import ir
from numba import literal_unroll, njit, types
from numba.core import cgutils, imputils
from numba.core.datamodel import models
from numba.core.typing.templates import AttributeTemplate
from numba.experimental import structref
from numba.experimental.structref import _Utils
from numba.extending import infer_getattr, intrinsic, lower_getattr_generic, register_model


def _call_slots_not_zeroed_at_entry() -> None:
    """numba's call convention gives each call site a return-value slot and an exception-info
    slot on the caller's stack, and cgutils.alloca_once zero-fills every slot in the function's
    entry block. The return slot is zeroed again just before its call (CPUCallConv.call_function)
    and the exception slot is read only after the callee reported a user exception, which writes
    it; so the entry fill is dead work, but LLVM cannot remove it since the slots' addresses
    escape into the calls. The engine's step functions call dozens of non-inlined functions: the
    fills were a 0x318-byte prologue in nra_advance and 20-40 % of the samples of nra_advance,
    cpu_complete and l4_done_est on the UDP flood (perf, session 5). Here call_function gets
    the slots it allocates without the entry fill (alloca_once's zfill at the use site is kept);
    every other allocation is unchanged."""
    from numba.core import callconv, cgutils, debuginfo

    cls = callconv.CPUCallConv
    orig = cls.call_function
    if getattr(orig, "_slots_not_zeroed", False):
        return

    class _Cgutils:
        def __getattr__(self, name: str) -> Any:
            return getattr(cgutils, name)

        @staticmethod
        def alloca_once(builder: Any, ty: Any, size: Any = None, name: str = "",
                        zfill: bool = False) -> Any:
            if isinstance(size, int):
                size = ir.Constant(cgutils.intp_t, size)
            with debuginfo.suspend_emission(builder), builder.goto_entry_block():
                ptr = builder.alloca(ty, size=size, name=name)
            if zfill:
                builder.store(ty(None), ptr)
            return ptr

    shim = _Cgutils()

    def call_function(self: Any, *args: Any, **kwargs: Any) -> Any:
        # numba's own body runs unchanged; only its module-level cgutils is swapped for the call
        # (numba compiles under its global lock: nothing else lowers meanwhile)
        callconv.cgutils = shim
        try:
            return orig(self, *args, **kwargs)
        finally:
            callconv.cgutils = cgutils

    call_function._slots_not_zeroed = True  # type: ignore[attr-defined]
    cls.call_function = call_function


_call_slots_not_zeroed_at_entry()

I1 = types.Array(types.int64, 1, "C")
I2 = types.Array(types.int64, 2, "C")
I3 = types.Array(types.int64, 3, "C")
F1 = types.Array(types.float64, 1, "C")

# field name → array type (the arrays simulate.py builds; names as in layout.py's comments)
FIELDS: tuple[tuple[str, Any], ...] = (
    ("P", I1), ("cbase", I1), ("cpb", F1), ("pk", I2), ("po", I2), ("se", I2), ("sc", I2),
    ("cs", I2), ("qs", I2), ("ss", I2), ("ts", I2), ("lst", I3), ("ringbuf", I2), ("rxl", I2),
    ("gh", I3), ("gbc", I2), ("sockq", I1), ("wq", I2), ("tmsg", I2), ("acc", I3), ("accf", I3),
    ("rows", I2), ("ev", I2), ("ht", I1), ("hh", I1), ("hp", I1), ("misc", I1),
    # RPS / backlog (model/backlog.py): per-CPU backlog FIFO, per-CPU flow-limit history and
    # buckets, per-queue rps_map (length, cpus...), rps_sock_flow_table, per-queue rps_dev_flow
    # (cpu, last_qtail)
    ("bq", I2), ("flh", I2), ("rmap", I2), ("rsock", I1), ("rflow", I3),
    ("fq", I2), ("fx", I1),  # IP reassembly queues and their globals (layout.FQ_*, FX_*)
    ("tf", I2),  # per-flow TCP receive state (layout.TF_*)
    ("tofo", I1),  # per packet: the next packet in its flow's out-of-order queue (-1: none)
    ("rqf", I1),  # listen sockets: the flows of request socks in the order they were made
    ("hw", I3),  # the NIC's receive aggregation sessions per queue (layout.HW_*)
)
STATE_FIELDS = tuple(name for name, _ in FIELDS)


@structref.register
class StateType(types.StructRef):
    def preprocess_fields(self, fields: Any) -> Any:
        return tuple((name, types.unliteral(typ)) for name, typ in fields)


class StateProxy(structref.StructRefProxy):
    """The Python handle of the engine state (only passed back into compiled functions)."""


structref.define_boxing(StateType, StateProxy)
STATE_T = StateType(list(FIELDS))


class StateView(types.Type):
    """The engine state as the compiled loop passes it around: a plain pointer to the struct's
    fields, borrowed from the StructRef the caller holds (run_loop's argument, alive for the
    whole call), with the same attributes.

    Why: numba increments a StructRef argument's reference count when a function starts and
    decrements it at its last use (NRT_incref/NRT_decref: calls, atomic `lock` adds); its
    pruning pass removes the pair only when that last use is on every path, which in the
    engine's branchy functions it is not. On the 1M-frame UDP flood the pairs were 18 % of the
    loop's samples (perf), about three per event. A view has no meminfo: nothing is counted."""

    def __init__(self, struct_type: Any) -> None:
        self.struct_type = struct_type
        super().__init__(name=f"StateView({struct_type.name})")


@register_model(StateView)
class _StateViewModel(models.PrimitiveModel):
    def __init__(self, dmm: Any, fe_type: Any) -> None:
        payload = dmm.lookup(fe_type.struct_type.get_data_type()).get_value_type()
        super().__init__(dmm, fe_type, payload.as_pointer())


class BorrowedArray(types.Array):
    """An array field read through a StateView: the struct's own array, used without a
    reference of its own (the struct, alive for the whole engine call, holds one).

    Why: numba increments an array's reference count where a function reads it from the state
    and decrements it at the last use; its pruning pass removes the pair only when that last use
    is on every path, so in the engine's branchy functions about one NRT_incref/NRT_decref pair
    (calls, `lock` adds) per event remained, 8 % of the loop on the UDP flood (perf). Its data
    model has no meminfo member to count, so numba emits no calls for it. Slices and views of it
    are plain arrays (Array.copy), counted as usual against the struct's meminfo."""

    def __init__(self, dtype: Any, ndim: int, layout: str) -> None:
        super().__init__(dtype, ndim, layout, name=f"borrowed array({dtype}, {ndim}d, {layout})")


@register_model(BorrowedArray)
class _BorrowedArrayModel(models.ArrayModel):
    def has_nrt_meminfo(self) -> bool:
        return False

    def traverse(self, builder: Any) -> list[Any]:
        return []  # the NRT finds no meminfo inside: no incref/decref is emitted


def _borrowed(typ: Any) -> Any:
    return BorrowedArray(typ.dtype, typ.ndim, typ.layout) if isinstance(typ, types.Array) else typ


@infer_getattr
class _StateViewAttrs(AttributeTemplate):
    key = StateView

    def generic_resolve(self, typ: Any, attr: str) -> Any:
        t = typ.struct_type.field_dict.get(attr)
        return None if t is None else _borrowed(t)


@lower_getattr_generic(StateView)
def _state_view_getattr(context: Any, builder: Any, typ: Any, val: Any, attr: str) -> Any:
    data = context.make_helper(builder, typ.struct_type.get_data_type(), ref=val)
    # the field is returned as a BorrowedArray: the same value, no new reference (nothing to count)
    return imputils.impl_ret_borrowed(context, builder, _borrowed(typ.struct_type.field_dict[attr]),
                                      getattr(data, attr))


@intrinsic
def state_view(typingctx: Any, s: Any) -> Any:
    """The StateView of StructRef s (valid while s is alive)."""
    sig = StateView(s)(s)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return _Utils(context, builder, signature.args[0]).get_data_pointer(args[0])

    return sig, codegen


@njit(cache=True)
def _new(P, cbase, cpb, pk, po, se, sc, cs, qs, ss, ts, lst, ringbuf, rxl, gh, gbc, sockq, wq,
         tmsg, acc, accf, rows, ev, ht, hh, hp, misc, bq, flh, rmap, rsock, rflow, fq, fx, tf, tofo,
         rqf, hw):
    S = structref.new(STATE_T)
    S.P = P
    S.cbase = cbase
    S.cpb = cpb
    S.pk = pk
    S.po = po
    S.se = se
    S.sc = sc
    S.cs = cs
    S.qs = qs
    S.ss = ss
    S.ts = ts
    S.lst = lst
    S.ringbuf = ringbuf
    S.rxl = rxl
    S.gh = gh
    S.gbc = gbc
    S.sockq = sockq
    S.wq = wq
    S.tmsg = tmsg
    S.acc = acc
    S.accf = accf
    S.rows = rows
    S.ev = ev
    S.ht = ht
    S.hh = hh
    S.hp = hp
    S.misc = misc
    S.bq = bq
    S.flh = flh
    S.rmap = rmap
    S.rsock = rsock
    S.rflow = rflow
    S.fq = fq
    S.fx = fx
    S.tf = tf
    S.tofo = tofo
    S.rqf = rqf
    S.hw = hw
    return S


@njit(cache=True)
def set_buffers(S, rows, ev):
    """Swap in grown output buffers (cpu rows, events) between calls of the engine loop."""
    S.rows = rows
    S.ev = ev


@njit(cache=True)
def gather_rows(dst, srcs, cols, idx, psrcs, pcols):
    """dst[k, cols[m]] = srcs[m][idx[k]] for every per-frame source m, and dst[k, pcols[m]] =
    psrcs[m][k] for every per-packet one: the engine's packet matrix filled from columns of any
    integer/bool dtype in one pass, in blocks of rows that stay in cache (a pass per field over
    the whole (n, 37) matrix moved 37x its size through memory, and the per-packet columns
    written first touched every page of it on their own). 256 rows (74 KB of pk) stay in L2
    through the 37 passes: 0.078 s per million packets against 0.092 s with 2048-row blocks."""
    n = idx.shape[0]
    for b0 in range(0, n, 256):
        b1 = min(n, b0 + 256)
        for p in range(len(psrcs)):
            pj = pcols[p]
            col = psrcs[p]
            for k in range(b0, b1):
                dst[k, pj] = col[k]
        m = 0
        for src in literal_unroll(srcs):
            j = cols[m]
            for k in range(b0, b1):
                dst[k, j] = src[idx[k]]
            m += 1  # noqa: SIM113 (numba cannot enumerate a literal_unroll)


@njit(cache=True)
def init_outputs(po, skbh, skbcnt, skblen, skbtrue):
    """The per-packet output matrix before the replay, in one pass: every field -1 (not reached)
    but each packet's own skb (skbh = itself, one segment, no length or truesize yet)."""
    for k in range(po.shape[0]):
        for j in range(po.shape[1]):
            po[k, j] = -1
        po[k, skbh] = k
        po[k, skbcnt] = 1
        po[k, skblen] = 0
        po[k, skbtrue] = 0


@intrinsic
def prefetch(typingctx: Any, arr: Any, i: Any, j: Any) -> Any:
    """prefetch(arr, i, j): ask the CPU to bring the cache line of arr[i, j] in (x86 PREFETCHT0,
    llvm.prefetch read/high locality), no value read, never a fault. The engine uses it for the
    packet rows it will read a few arrivals later: a row is 272 bytes of a 270 MB matrix per
    million packets, read once at its arrival, and the miss on it was the loop's costliest load."""
    sig = types.void(arr, i, j)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        aty = signature.args[0]
        ary = context.make_array(aty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, aty, ary, [args[1], args[2]],
                                       wraparound=False)
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def ctz(typingctx: Any, x: Any) -> Any:
    """Trailing zero bits of a nonzero int64 (x86 TZCNT/BSF through llvm.cttz)."""
    sig = types.int64(types.int64)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        i64 = ir.IntType(64)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(i64, [i64, ir.IntType(1)]), "llvm.cttz.i64")
        return builder.call(fn, [args[0], ir.Constant(ir.IntType(1), 0)])

    return sig, codegen


def new_state(arrays: dict[str, Any]) -> StateProxy:
    """The struct over these arrays (shared, not copied: the engine writes into them)."""
    missing = [n for n in STATE_FIELDS if n not in arrays]
    if missing:
        raise KeyError(f"engine state lacks {missing}")
    return _new(*(arrays[n] for n in STATE_FIELDS))
