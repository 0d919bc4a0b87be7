"""Streaming a rows kernel's large arrays through memory: non-temporal stores of its big
outputs, and a prefetch of the next row of its big inputs.

A normal store to a line that is not in the cache first reads the line from memory (the
read-for-ownership), so writing an output of N bytes costs 2N of memory traffic, and the
output evicts from the last-level cache whatever was there (the kernel's own input, the
next call's). A non-temporal store writes the line to memory directly. For an output too big to
stay in the cache until it is read again that is pure gain: a layer_norm of 16 MiB reads 16 MiB
and writes 16 MiB instead of moving 48.

LLVM vectorises no loop holding a non-temporal store of unknown alignment (x86 has aligned
ones only), so the kernel computes a row's values into a small staging buffer on the stack
(as its vectorised loop wrote them to the output before) and `emit_stream_copy` moves the row
out: the elements up to the output's next 64-byte line one by one, whole lines with aligned
non-temporal vector stores, then the rest. The staging buffer stays in L1; copying it costs
a few cycles per line against the hundreds the line's memory traffic takes.

    if streams(y, row_elems):
        ... compute the row into buf ...
        emit_stream_copy(b, y_row_ptr, buf, row_elems, y.dtype)
    ...
    emit_store_fence(b)      # once, after the last streaming store of the function

A kernel that passes over each row several times (layer_norm: the mean, the variance, the
stores) reads memory only in the first pass, and the hardware prefetchers do not run a whole
row ahead: the memory sat idle while the later passes worked from L1. `emit_prefetch_row`, at
the start of each row, asks for the next one. Measured on layer_norm 4096x1024 (znver3, one
thread, reductions interleaved, ns per row): ~600 with neither, ~550 prefetching only, ~510
streaming only, ~345 both (the two together keep the memory busy with useful traffic only).
"""
from __future__ import annotations

import math

from llvmlite import ir

from ...ir.graph import Value
from ...ir.types import DType
from .loops import const, for_range, i64
from .scalar import mem_type

# An output this big streams: past about half a last-level cache (16-32 MiB on the hosts we
# measured, shared by every core) the lines written would be evicted before anyone read them,
# and their read-for-ownership is a third of a row kernel's traffic. Smaller outputs are
# likely still in the cache when the next kernel reads them: normal stores.
STREAM_MIN_BYTES = 8 << 20
# An input this big is prefetched a row ahead: bigger than the L2 of the hosts we measured, so it
# comes from L3 or memory (on 256 rows in L2 the prefetches cost ~10% of the kernel).
PREFETCH_MIN_BYTES = 2 << 20
# Rows are staged in L1 and prefetched whole: at most this big (the staging buffer, this row and
# the next share L1), and at least a few lines (too little whole-line middle to be worth it).
ROW_MAX_BYTES = 8 << 10
ROW_MIN_BYTES = 256
LINE = 64   # bytes of a cache line: the unit of an aligned non-temporal store


def streams(v: Value, row_elems: int) -> bool:
    """Whether a rows kernel stores the full output v (rows of row_elems elements, contiguous)
    with non-temporal stores."""
    size = v.dtype.itemsize
    return (math.prod(v.shape) * size >= STREAM_MIN_BYTES
            and ROW_MIN_BYTES <= row_elems * size <= ROW_MAX_BYTES)


def prefetches(x: Value, row_elems: int) -> bool:
    """Whether a rows kernel (with a reduction) prefetches the next row of the dense input x."""
    size = x.dtype.itemsize
    return (math.prod(x.shape) * size >= PREFETCH_MIN_BYTES
            and ROW_MIN_BYTES <= row_elems * size <= ROW_MAX_BYTES)


def _umin(b: ir.IRBuilder, x, y):
    return b.select(b.icmp_unsigned("<", x, y), x, y)


def emit_stream_copy(b: ir.IRBuilder, dst, src, n: int, dt: DType) -> None:
    """dst[0:n] = src[0:n] (pointers to dt's memory type): the whole 64-byte lines of dst with
    aligned non-temporal vector stores, the elements before and after them one by one (all
    of them when dst is not aligned to its element size)."""
    if n <= 0:
        return
    size = dt.itemsize
    elem = mem_type(dt)
    lanes = LINE // size
    vec = ir.VectorType(elem, lanes).as_pointer()
    addr = b.ptrtoint(dst, i64)
    to_line = b.udiv(b.and_(b.sub(const(0), addr), const(LINE - 1)), const(size))
    odd = b.icmp_unsigned("!=", b.and_(addr, const(size - 1)), const(0))
    head = b.select(odd, const(n), _umin(b, to_line, const(n)))
    lines = b.udiv(b.sub(const(n), head), const(lanes))
    end = b.add(head, b.mul(lines, const(lanes)))
    nontemporal = b.module.add_metadata([ir.Constant(ir.IntType(32), 1)])

    def scalars(lo, hi, name):
        with for_range(b, hi, start=lo, name=name, unroll=False, interleave=1) as i:
            b.store(b.load(b.gep(src, [i])), b.gep(dst, [i]))

    scalars(const(0), head, "sh")
    with for_range(b, end, start=head, step=lanes, name="sv") as i:
        v = b.load(b.bitcast(b.gep(src, [i]), vec), align=size)
        st = b.store(v, b.bitcast(b.gep(dst, [i]), vec), align=LINE)
        st.set_metadata("nontemporal", nontemporal)
    scalars(end, const(n), "st")


def emit_store_fence(b: ir.IRBuilder) -> None:
    """A full fence: non-temporal stores are weakly ordered, and this makes them visible before
    anything the function does after (its return, the thread pool's barrier). A portable
    `fence seq_cst`, once per call of a kernel body, with no target-specific intrinsic in the IR:
    on x86 LLVM emits a locked `or` to the stack (or mfence), and locked instructions complete
    all earlier stores, non-temporal ones included (Intel SDM vol. 3 8.1.2, AMD APM vol. 2
    7.4.2); dmb on AArch64."""
    b.fence("seq_cst")


def emit_prefetch_row(b: ir.IRBuilder, p, offset, row_elems: int, total: int, dt: DType) -> None:
    """Prefetches into L1 the row after the one at element `offset` of p (a dense buffer of
    `total` elements of dt, rows of row_elems; the last row for the last one), a line at a time:
    the rows kernel's later passes run from L1 while these loads are on their way."""
    ahead = b.add(offset, const(row_elems))
    last = const(total - row_elems)
    ahead = b.select(b.icmp_signed("<", ahead, last), ahead, last)
    i8p = ir.IntType(8).as_pointer()
    raw = b.bitcast(b.gep(p, [ahead]), i8p)
    i32 = ir.IntType(32)
    fn = b.module.globals.get("llvm.prefetch.p0i8")
    if fn is None:
        fn = ir.Function(b.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
                         "llvm.prefetch.p0i8")
    read, keep, data = ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)
    lines = -(-row_elems * dt.itemsize // LINE)
    with for_range(b, lines, name="pf", unroll=False) as i:
        b.call(fn, [b.gep(raw, [b.mul(i, const(LINE))]), read, keep, data])
