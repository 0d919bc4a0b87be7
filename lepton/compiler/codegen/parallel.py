"""Kernels split across threads with libgomp's fork-join regions.

A parallel kernel is built in two functions: `name.body(args..., i64 lo, i64 hi)` does the
iterations [lo, hi) of its outermost loop, with the kernel's pointer arguments marked noalias as
usual; `name(args...)` runs the body once for [0, n) when one thread is enough, or calls
`GOMP_parallel` with an outlined function that gives each thread a contiguous chunk.

The thread count is fixed at compile time (it decides the blocking) but capped at each call by
the runtime's i32 `lepton_thread_cap` (lepton/runtime/threads.py), an external symbol the code
only reads: with a cap of 1 the body runs on the calling thread and libgomp is not entered at
all, which is what a forked child needs (libgomp's thread pool does not survive a fork: its
first parallel region there would wait forever for the parent's threads).

    body, b, args, lo, hi = begin_split(module, "k0", arg_types)
    ... emit the loops over [lo, hi) with b, then b.ret_void() ...
    finish_split(module, "k0", body, arg_types, n_outer, threads)

A region costs about 2 µs, so `worth_threads` keeps small kernels on one thread.
"""
from __future__ import annotations

from llvmlite import ir

from .loops import entry_alloca, for_range, i8, i32, i64, new_function

# Below this many elements of work a kernel stays on one thread (a region costs ~2 µs).
MIN_PARALLEL_ELEMENTS = 1 << 15

THREAD_CAP = "lepton_thread_cap"    # the runtime's cap on threads per region (module docstring)


def worth_threads(threads: int, elements: int, outer: int) -> int:
    """How many threads a kernel of `elements` work split along `outer` iterations gets."""
    if threads <= 1 or elements < MIN_PARALLEL_ELEMENTS or outer < 2:
        return 1
    return min(threads, outer)


def begin_split(module: ir.Module, name: str, arg_types, noalias: bool = True):
    """The body function and a builder at its entry: returns (fn, b, args, lo, hi)."""
    fn, b = new_function(module, f"{name}.body", list(arg_types) + [i64, i64], noalias=noalias)
    fn.linkage = "internal"
    return fn, b, list(fn.args[:-2]), fn.args[-2], fn.args[-1]


def finish_split(module: ir.Module, name: str, body: ir.Function, arg_types, n: int,
                 threads: int, noalias: bool = True) -> ir.Function:
    """The kernel `name(args...)`: the body over [0, n) on up to `threads` threads (fewer
    when the runtime's cap is lower)."""
    fn, b = new_function(module, name, list(arg_types), noalias=noalias)
    whole = list(fn.args) + [ir.Constant(i64, 0), ir.Constant(i64, n)]
    if threads <= 1:
        b.call(body, whole)
        b.ret_void()
        return fn
    cap = module.globals.get(THREAD_CAP) or ir.GlobalVariable(module, i32, THREAD_CAP)
    use = b.load(cap)
    use = b.select(b.icmp_signed("<", use, ir.Constant(i32, threads)), use,
                   ir.Constant(i32, threads))
    with b.if_else(b.icmp_signed("<=", use, ir.Constant(i32, 1))) as (alone, split):
        with alone:
            b.call(body, whole)
        with split:
            ctx_t = ir.LiteralStructType(list(arg_types))
            outlined = _outlined(module, name, body, ctx_t, n)
            ctx = entry_alloca(b, ctx_t)
            for k, a in enumerate(fn.args):
                b.store(a, b.gep(ctx, [ir.Constant(i32, 0), ir.Constant(i32, k)]))
            b.call(_declare(module, "GOMP_parallel", ir.VoidType(),
                            [outlined.type, i8.as_pointer(), i32, i32]),
                   [outlined, b.bitcast(ctx, i8.as_pointer()), use, ir.Constant(i32, 0)])
    b.ret_void()
    return fn


def _outlined(module, name, body, ctx_t, n: int) -> ir.Function:
    """`void name.omp(i8* ctx)`: this thread's chunk of [0, n) through the body."""
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [i8.as_pointer()]), f"{name}.omp")
    fn.linkage = "internal"
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    ctx = b.bitcast(fn.args[0], ctx_t.as_pointer())
    args = [b.load(b.gep(ctx, [ir.Constant(i32, 0), ir.Constant(i32, k)]))
            for k in range(len(ctx_t.elements))]
    tid = b.sext(b.call(_declare(module, "omp_get_thread_num", i32, []), []), i64)
    nth = b.sext(b.call(_declare(module, "omp_get_num_threads", i32, []), []), i64)
    total = ir.Constant(i64, n)
    chunk = b.udiv(b.add(total, b.sub(nth, ir.Constant(i64, 1))), nth)
    lo = _min(b, b.mul(tid, chunk), total)
    hi = _min(b, b.add(lo, chunk), total)
    b.call(body, args + [lo, hi])
    b.ret_void()
    return fn


def finish_items(module: ir.Module, name: str, fn: ir.Function, b: ir.IRBuilder, n_items: int,
                 threads: int, per_scratch: int, body, scratch_at: int = -1) -> int:
    """Completes `fn(...)` (b at its end), whose argument `scratch_at` is an i8* scratch:
    body(builder, i, args) for each item i < n_items on `threads` threads, args being fn's
    arguments with the scratch replaced by this thread's own per_scratch bytes. Returns the
    scratch bytes fn needs."""
    if threads <= 1:
        with for_range(b, n_items, name="item") as i:
            body(b, i, list(fn.args))
        b.ret_void()
        return per_scratch
    arg_types = [a.type for a in fn.args]
    inner, bb, args, lo, hi = begin_split(module, f"{name}.par", arg_types)
    mine = list(args)
    mine[scratch_at] = thread_scratch(bb, args[scratch_at], per_scratch)
    with for_range(bb, hi, start=lo, name="item") as i:
        body(bb, i, mine)
    bb.ret_void()
    par = finish_split(module, f"{name}.par", inner, arg_types, n_items, threads)
    par.linkage = "internal"
    b.call(par, list(fn.args))
    b.ret_void()
    return per_scratch * threads


def thread_scratch(b: ir.IRBuilder, scratch, per_thread: int):
    """This thread's part of a scratch buffer holding per_thread bytes for each thread (the
    thread number is 0 outside a parallel region)."""
    if per_thread == 0:
        return scratch
    tid = b.sext(b.call(_declare(b.module, "omp_get_thread_num", i32, []), []), i64)
    return b.gep(scratch, [b.mul(tid, ir.Constant(i64, per_thread))])


def _min(b, x, y):
    return b.select(b.icmp_signed("<", x, y), x, y)


def _declare(module: ir.Module, name: str, ret, args) -> ir.Function:
    return module.globals.get(name) or ir.Function(module, ir.FunctionType(ret, list(args)), name)
