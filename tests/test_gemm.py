"""Matmul kernels against NumPy float64: packed GEMM edges and blocks, the few-rows path,
batch broadcasting, integers, the epilogue hook and the errors."""
import ctypes
import re

import numpy as np
import pytest
from llvmlite import ir

from kernels import call_kernel
from lepton import config
from lepton.runtime.jit import host_cpu, jit_compile
from lepton.runtime.vector_width import has_avx512
from lepton.tuning import host_vector_width
from lepton.compiler.codegen.gemm import Blocking, emit_matmul
from lepton.compiler.codegen.kernel import splat
from lepton.ir.types import TensorType, float32, float64, int32, int64


def aligned(nbytes):
    """A 64-byte aligned uint8 buffer (the scratch contract)."""
    raw = np.zeros(nbytes + 128, np.uint8)
    off = (-raw.ctypes.data) % 64
    return raw[off:off + max(nbytes, 64)]


def matmul(a, b, epilogue=None, blocking=None, trans_a=False, trans_b=False, width=None):
    """Emits, compiles and runs the kernel on a and b as stored (the transposed operand's last
    two axes swapped in memory when its flag is set); returns (result, Kernel, NativeLibrary)."""
    ta, tb = TensorType.of(a), TensorType.of(b)
    m = a.shape[-1] if trans_a else a.shape[-2]
    n = b.shape[-2] if trans_b else b.shape[-1]
    shape = np.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + (m, n)
    out = np.full(shape, 7, a.dtype)      # garbage the kernel must overwrite
    mod = ir.Module()
    k = emit_matmul(mod, "mm", ta, tb, TensorType.of(out), epilogue=epilogue, blocking=blocking,
                    trans_a=trans_a, trans_b=trans_b)
    ctx = [np.zeros(1, np.uint8)] if epilogue is not None else []   # the epilogue's context
    lib = call_kernel(mod, "mm", out, a, b, aligned(k.scratch_bytes), *ctx, width=width)
    return out, k, lib


def stored(x, trans):
    """x as the kernel reads it: with `trans`, a C-contiguous copy of its transpose."""
    return np.ascontiguousarray(np.swapaxes(x, -1, -2)) if trans else x


def matmul_t(a, b, trans_a, trans_b, **kw):
    """matmul of the logical operands a, b given to the kernel stored transposed per flag."""
    return matmul(stored(a, trans_a), stored(b, trans_b), trans_a=trans_a, trans_b=trans_b, **kw)


def rand(shape, dtype, seed=0):
    rng = np.random.default_rng(seed + len(shape) * 100 + sum(shape))
    if np.dtype(dtype).kind == "i":
        return rng.integers(-5, 6, shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def check(a, b, out, rtol):
    ref = np.matmul(a.astype(np.float64), b.astype(np.float64))
    scale = np.sqrt(a.shape[-1])        # error grows like sqrt(K) for random signs
    np.testing.assert_allclose(out, ref, rtol=rtol, atol=rtol * scale)


SHAPES = [  # (M, K, N): edges in every direction, matrix-vector, tall and tiny
    (7, 13, 5), (7, 5, 13), (1, 1, 1), (9, 1, 40), (1, 784, 512), (3, 100, 129),
    (70, 300, 47), (130, 33, 65), (256, 784, 512), (64, 288, 196), (200, 17, 16),
    (50, 37, 1), (33, 100, 5), (29, 16, 8), (1000, 1000, 1),    # few columns: dot products
    (32, 3136, 10), (8, 2000, 20),                              # narrow B, long K
    (20, 50, 1024), (3, 40, 1024),          # B rows 4 KiB apart: packed / still few rows
]


@pytest.mark.parametrize("mkn", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("dt", [np.float32, np.float64], ids=["f32", "f64"])
def test_float_shapes(mkn, dt):
    m, k, n = mkn
    a, b = rand((m, k), dt), rand((k, n), dt, 1)
    out, _, _ = matmul(a, b)
    check(a, b, out, 1e-4 if dt == np.float32 else 1e-11)


@pytest.mark.parametrize("mkn", [(77, 45, 100), (5, 9, 20), (3, 70, 3), (16, 31, 64)],
                         ids=lambda s: "x".join(map(str, s)))
def test_small_blocks_cover_every_loop(mkn):
    # tiny cache blocks force the packed path with several jc, pc and ic blocks plus edge tiles
    # (and tiles smaller than a register tile) on small problems
    m, k, n = mkn
    a, b = rand((m, k), np.float32), rand((k, n), np.float32, 1)
    out, kern, _ = matmul(a, b, blocking=Blocking(mr=8, nr=32, mc=16, kc=8, nc=64))
    check(a, b, out, 1e-4)
    assert kern.scratch_bytes > 0


@pytest.mark.parametrize("wide", [False, True], ids=["16-regs", "32-regs"])
def test_rows_tiles_for_either_register_file(monkeypatch, wide):
    # the few-rows path's register tile follows the vector register file (AVX2's 16 ymm or
    # AVX-512's 32 zmm), whatever this host has: every tile stays within the accumulator
    # budget, covers M and N with little waste, and gives right results
    from lepton.compiler.codegen import gemm
    monkeypatch.setattr(gemm, "_wide_registers", lambda: wide)
    budget = gemm.rows_accumulators()
    assert budget == (24 if wide else 6)
    for m, k, n in [(1, 784, 512), (32, 30, 784), (64, 288, 196), (14, 50, 70), (9, 70, 100),
                    (3, 100, 1000)]:
        s = gemm.GemmShape(float32, m, n, k, k, n, n)
        mr, nvec = gemm._rows_tile(s, gemm.default_blocking(float32).mr)
        assert mr * nvec <= budget and mr <= m
        vecs = -(-n // 16)
        assert (-(-m // mr) * mr - m) * 8 <= m and (-(-vecs // nvec) * nvec - vecs) * 8 <= vecs
        a, b = rand((m, k), np.float32), rand((k, n), np.float32, 1)
        out, _, _ = matmul(a, b)
        check(a, b, out, 1e-4)


@pytest.mark.parametrize("wide", [False, True], ids=["16-regs", "32-regs"])
@pytest.mark.parametrize("mkn,trans_a", [
    ((15, 784, 512), False),    # B rows 2 or 4 KiB apart, several K blocks of the panel
    ((9, 300, 33), False),      # a last row group of one row, a column edge
    ((23, 1031, 100), False),   # K blocks evened out, odd K, partial groups and columns
    ((64, 260, 47), False),
    ((13, 37, 1000), False),    # one K block, many column tiles
    ((30, 513, 70), True),      # A read through its transposed strides
    ((12, 5, 17), True),        # K shorter than the micro-kernel's unroll
], ids=lambda x: "x".join(map(str, x)) if isinstance(x, tuple) else ("at" if x else "a"))
@pytest.mark.parametrize("dt", [np.float32, np.float64], ids=["f32", "f64"])
def test_rows_shared_panel(monkeypatch, wide, mkn, trans_a, dt):
    # several row groups on the few-rows path: the first group copies each strip of B into
    # the panel the others read, with either register file's tile, against NumPy float64
    from lepton.compiler.codegen import gemm
    monkeypatch.setattr(gemm, "_wide_registers", lambda: wide)
    m, k, n = mkn
    s = gemm.GemmShape(float32 if dt == np.float32 else float64, m, n, k,
                       m if trans_a else k, n, n, trans_a)
    mr, _ = gemm._rows_tile(s, gemm.default_blocking(s.dtype).mr)
    assert gemm._rows_path(s) and m > mr
    a, b = rand((m, k), dt), rand((k, n), dt, 1)
    out, _, _ = matmul_t(a, b, trans_a, False)
    check(a, b, out, 1e-4 if dt == np.float32 else 1e-11)
    out, _, _ = matmul_t(a, b, trans_a, False, epilogue=index_epilogue)
    ref = a.astype(np.float64) @ b.astype(np.float64)
    ref = ref * 2 + np.arange(m)[:, None] * 1000 + np.arange(n)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-3)


def test_long_k_f32():
    a, b = rand((3, 5000), np.float32), rand((5000, 20), np.float32, 1)
    out, _, _ = matmul(a, b)
    check(a, b, out, 1e-4)


@pytest.mark.parametrize("sa,sb", [
    ((3, 1, 7, 5), (4, 5, 6)),      # both broadcast
    ((2, 3, 70, 9), (9, 33)),       # shared B: one tall GEMM
    ((70, 9), (2, 9, 33)),          # shared A
    ((2, 1, 4, 3), (1, 5, 3, 2)),
    ((1, 1, 8, 8), (8, 8)),
])
def test_batch_broadcasting(sa, sb):
    a, b = rand(sa, np.float32), rand(sb, np.float32, 1)
    out, _, _ = matmul(a, b)
    check(a, b, out, 1e-4)


@pytest.mark.parametrize("dt", [np.int32, np.int64])
def test_integers(dt):
    a, b = rand((2, 7, 13), dt), rand((13, 9), dt, 1)
    out, kern, _ = matmul(a, b)
    np.testing.assert_array_equal(out, np.matmul(a, b))
    assert kern.scratch_bytes == 0


def test_empty_contraction_gives_zeros():
    a, b = np.zeros((3, 0), np.float32), np.zeros((0, 4), np.float32)
    out, _, _ = matmul(a, b)
    np.testing.assert_array_equal(out, np.zeros((3, 4), np.float32))


def index_epilogue(builder, value, row, col, ctx):
    """value*2 + 1000*row + col, lane by lane: proves each value passes exactly once, with
    the right row and column."""
    t = value.type.element if isinstance(value.type, ir.VectorType) else value.type
    conv = builder.sitofp if isinstance(t, (ir.FloatType, ir.DoubleType)) else (
        lambda v, ty: builder.trunc(v, ty) if ty.width < 64 else v)
    idx = builder.add(builder.mul(row, ir.Constant(row.type, 1000)), col)
    if isinstance(value.type, ir.VectorType):
        n = value.type.count
        lanes = ir.Constant(ir.VectorType(idx.type, n), list(range(n)))
        idx = builder.add(splat(builder, idx, n), lanes)
        extra = conv(idx, ir.VectorType(t, n))
        two = ir.Constant(value.type, [2] * n) if isinstance(t, ir.IntType) else \
            ir.Constant(value.type, [2.0] * n)
    else:
        extra, two = conv(idx, t), ir.Constant(t, 2 if isinstance(t, ir.IntType) else 2.0)
    if isinstance(t, ir.IntType):
        return builder.add(builder.mul(value, two), extra)
    return builder.fadd(builder.fmul(value, two), extra)


@pytest.mark.parametrize("sa,sb,dt,blocking", [
    ((70, 300), (300, 47), np.float32, None),                 # packed, two K slices, edges
    ((77, 45), (45, 100), np.float32, Blocking(8, 32, 16, 8, 64)),
    ((5, 40), (40, 37), np.float64, None),                    # few-rows path, K slices
    ((2, 3, 4), (4, 5), np.float32, None),                    # rows count across the batch
    ((2, 3, 4), (2, 4, 5), np.float32, None),                 # batch loop
    ((2, 3, 4), (4, 5), np.int32, None),
    ((2, 21, 37), (37, 3), np.float32, None),                 # dot products: scalar values
])
def test_epilogue_sees_each_value_once(sa, sb, dt, blocking):
    a, b = rand(sa, dt), rand(sb, dt, 1)
    out, _, _ = matmul(a, b, epilogue=index_epilogue, blocking=blocking)
    ref = np.matmul(a.astype(np.float64), b.astype(np.float64))
    rows = np.arange(int(np.prod(ref.shape[:-1]))).reshape(ref.shape[:-1] + (1,))
    ref = ref * 2 + rows * 1000 + np.arange(ref.shape[-1])
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-3)


def test_uses_the_widest_vector_fma_the_host_has():
    # asks the host: the kernel's 16-lane vectors become zmm FMAs on an AVX-512 CPU at either
    # vector width (the width steers LLVM's vectorisers, not explicit vectors), ymm with AVX2
    features = host_cpu()[1]
    if "+avx2" not in features.split(",") or "+fma" not in features.split(","):
        pytest.skip("no AVX2 and FMA on this host: there are no x86 vector FMAs to look for")
    a, b = rand((100, 64), np.float32), rand((64, 64), np.float32, 1)
    out, _, lib = matmul(a, b, width=host_vector_width(config.current()))
    check(a, b, out, 1e-4)
    asm = lib.assembly()
    if has_avx512(features):
        assert re.search(r"vfmadd231ps\s[^\n]*%zmm", asm)
    else:
        assert re.search(r"vfmadd231ps\s[^\n]*%ymm", asm) and "zmm" not in asm


@pytest.mark.parametrize("ta,tb,to", [
    ((3, 4), (5, 6), (3, 6)),
    ((3, 4), (4, 6), (3, 7)),
    ((4,), (4, 6), (6,)),
])
def test_bad_types_raise(ta, tb, to):
    with pytest.raises(ValueError):
        emit_matmul(ir.Module(), "mm", TensorType(float32, ta), TensorType(float32, tb),
                    TensorType(float32, to))


def test_mixed_dtypes_raise():
    with pytest.raises(ValueError):
        emit_matmul(ir.Module(), "mm", TensorType(float32, (2, 2)), TensorType(float64, (2, 2)),
                    TensorType(float32, (2, 2)))
    with pytest.raises(ValueError):
        emit_matmul(ir.Module(), "mm", TensorType(int64, (2, 2)), TensorType(int64, (2, 2)),
                    TensorType(int32, (2, 2)))


# ---- transposed operands: op(a) @ op(b) with a stored (..., K, M) / b stored (..., N, K) ----

FLAGS = [(True, False), (False, True), (True, True)]
FLAG_IDS = ["ta", "tb", "ta_tb"]

T_SHAPES = [  # (M, K, N): every path for every flag combination
    (7, 13, 5), (5, 13, 7), (1, 1, 1), (9, 1, 40), (1, 300, 70), (3, 30, 2),   # tiny, K=1, 1xKxN
    (13, 50, 37), (16, 40, 100),                  # B^T with few rows: dot products in groups
    (50, 37, 1), (33, 100, 5), (200, 17, 8),      # few columns (A^T: C^T by the rows driver)
    (40000, 3, 2),                                # ... with a C^T beyond L2: one K slice
    (24, 70, 33), (70, 300, 47), (130, 33, 65),   # packed: edges in M and N, K tails
]


T_CASES = [(mkn, np.float32) for mkn in T_SHAPES] + [
    (mkn, np.float64) for mkn in [(7, 13, 5), (9, 1, 40), (13, 50, 37), (50, 37, 1), (70, 300, 47)]]


@pytest.mark.parametrize("mkn,dt", T_CASES, ids=lambda c: "x".join(map(str, c)) if
                         isinstance(c, tuple) else np.dtype(c).name)
@pytest.mark.parametrize("flags", FLAGS, ids=FLAG_IDS)
def test_transposed_shapes(mkn, dt, flags):
    m, k, n = mkn
    a, b = rand((m, k), dt), rand((k, n), dt, 1)
    out, _, _ = matmul_t(a, b, *flags)
    check(a, b, out, 1e-4 if dt == np.float32 else 1e-11)


@pytest.mark.parametrize("mkn", [(77, 45, 100), (5, 9, 20), (3, 70, 3), (16, 31, 64)],
                         ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("flags", FLAGS, ids=FLAG_IDS)
def test_transposed_small_blocks(mkn, flags):
    # several jc/pc/ic blocks: B^T packed by edge tiles (rows < nr, kc not a multiple of 16)
    m, k, n = mkn
    a, b = rand((m, k), np.float32), rand((k, n), np.float32, 1)
    out, _, _ = matmul_t(a, b, *flags, blocking=Blocking(mr=8, nr=32, mc=16, kc=8, nc=64))
    check(a, b, out, 1e-4)


@pytest.mark.parametrize("dt,mkn,blocking", [
    (np.float32, (1024, 37, 70), Blocking(mr=6, nr=32, mc=18, kc=8, nc=64)),  # a 4-row panel
    (np.float32, (1024, 20, 40), None),
    (np.float64, (512, 30, 24), None),
])
@pytest.mark.parametrize("trans_b", [False, True])
def test_transposed_a_with_4k_row_stride_is_packed(dt, mkn, blocking, trans_b):
    # A^T rows of 4 KiB: the packed path copies A's blocks into panels instead of reading
    # them in place (every k step of a micro-panel would map to one L1 set)
    m, k, n = mkn
    a, b = rand((m, k), dt), rand((k, n), dt, 1)
    out, kern, _ = matmul_t(a, b, True, trans_b, blocking=blocking)
    check(a, b, out, 1e-4 if dt == np.float32 else 1e-11)
    # the shared driver is told to pack A (its pack_a argument, then acc0, then row0)
    assert re.search(r'call void @"lepton\.gemm\.\w+\.drv\w+\.t[nt]"\(.*i32 1, i32 0, i64 %"row0"',
                     str(kern.fn.module))


def test_transposed_operands_are_not_copied_whole():
    # nn.Linear at batch 1 (x @ W^T) reads W as stored: no scratch at all
    a, w = rand((1, 300), np.float32), rand((70, 300), np.float32, 1)
    out, kern, _ = matmul(a, w, trans_b=True)
    check(a, w.T, out, 1e-4)
    assert kern.scratch_bytes == 0
    # x^T @ dy reads x in place; scratch only holds the packed block of B, as without trans_a
    x, dy = rand((64, 70), np.float32), rand((64, 300), np.float32, 1)
    out, kern, _ = matmul(x, dy, trans_a=True)
    check(x.T, dy, out, 1e-4)
    _, plain, _ = matmul(np.ascontiguousarray(x.T), dy)
    assert kern.scratch_bytes == plain.scratch_bytes


@pytest.mark.parametrize("sa,sb,flags", [
    ((3, 1, 7, 5), (4, 5, 6), (True, False)),       # both broadcast
    ((3, 1, 7, 5), (4, 5, 6), (False, True)),
    ((2, 3, 70, 9), (9, 33), (False, True)),        # shared B^T: one tall GEMM
    ((2, 3, 70, 9), (9, 33), (True, False)),        # shared B, A^T stack: a batch loop
    ((70, 9), (2, 9, 33), (True, True)),            # shared A
    ((2, 1, 4, 3), (1, 5, 3, 2), (True, True)),
])
def test_transposed_batch_broadcasting(sa, sb, flags):
    a, b = rand(sa, np.float32), rand(sb, np.float32, 1)
    out, _, _ = matmul_t(a, b, *flags)
    check(a, b, out, 1e-4)


@pytest.mark.parametrize("dt", [np.int32, np.int64])
@pytest.mark.parametrize("flags", FLAGS, ids=FLAG_IDS)
def test_transposed_integers(dt, flags):
    a, b = rand((2, 7, 13), dt), rand((13, 9), dt, 1)
    out, kern, _ = matmul_t(a, b, *flags)
    np.testing.assert_array_equal(out, np.matmul(a, b))
    assert kern.scratch_bytes == 0


@pytest.mark.parametrize("flags", FLAGS, ids=FLAG_IDS)
@pytest.mark.parametrize("mkn", [(3, 0, 4), (0, 5, 4), (3, 5, 0)], ids=["k0", "m0", "n0"])
def test_transposed_empty(flags, mkn):
    m, k, n = mkn
    a, b = np.ones((m, k), np.float32), np.ones((k, n), np.float32)
    out, _, _ = matmul_t(a, b, *flags)
    np.testing.assert_array_equal(out, np.zeros((m, n), np.float32))


@pytest.mark.parametrize("sa,sb,flags,dt,blocking", [
    ((70, 300), (300, 47), (True, False), np.float32, None),          # packed, A^T in place
    ((70, 300), (300, 47), (False, True), np.float32, None),          # packed, B^T packed
    ((77, 45), (45, 100), (True, True), np.float32, Blocking(8, 32, 16, 8, 64)),
    ((1024, 9), (9, 40), (True, False), np.float32, None),            # A^T packed (4 KiB rows)
    ((5, 40), (40, 37), (True, False), np.float64, None),             # few rows, A^T strides
    ((2, 3, 40), (40, 37), (False, True), np.float32, None),          # dot, swapped, batch rows
    ((13, 40), (40, 37), (False, True), np.float32, None),            # swapped dot in groups
    ((2, 21, 37), (37, 3), (False, True), np.float32, None),          # dot, B^T read in place
    ((21, 37), (37, 3), (True, False), np.float32, None),             # C^T, copied through it
    ((2, 3, 4), (4, 5), (True, True), np.int32, None),
])
def test_transposed_epilogue_sees_each_value_once(sa, sb, flags, dt, blocking):
    a, b = rand(sa, dt), rand(sb, dt, 1)
    out, _, _ = matmul_t(a, b, *flags, epilogue=index_epilogue, blocking=blocking)
    ref = np.matmul(a.astype(np.float64), b.astype(np.float64))
    rows = np.arange(int(np.prod(ref.shape[:-1]))).reshape(ref.shape[:-1] + (1,))
    ref = ref * 2 + rows * 1000 + np.arange(ref.shape[-1])
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("ta,tb,to,flags", [
    ((4, 3), (4, 6), (3, 6), (False, False)),       # would need trans_a
    ((3, 4), (6, 4), (3, 7), (False, True)),
    ((5, 3), (6, 4), (3, 6), (True, True)),         # K 5 vs 4
])
def test_transposed_bad_types_raise(ta, tb, to, flags):
    with pytest.raises(ValueError):
        emit_matmul(ir.Module(), "mm", TensorType(float32, ta), TensorType(float32, tb),
                    TensorType(float32, to), trans_a=flags[0], trans_b=flags[1])


@pytest.mark.parametrize("dt", [float32, float64], ids=["f32", "f64"])
@pytest.mark.parametrize("rows,cols", [(32, 40), (5, 13), (17, 3), (0, 5), (32, 0), (20, 16)])
def test_block_transpose_edges(dt, rows, cols):
    # the B^T packing primitive: dst rows c < cols get src column c, zeros past `rows` up to
    # rows_pad; nothing else in dst is written (sentinels survive), nothing outside is read
    from lepton.compiler.codegen.loops import const, new_function
    from lepton.compiler.codegen.transpose import emit_transpose
    lds, ldd, pad = 45, 40, 32
    mod = ir.Module()
    tr = emit_transpose(mod, "tr", dt, lds=lds, ldd=ldd, rows_pad=pad)
    fn, b = new_function(mod, "run", [tr.args[0].type] * 2)
    b.call(tr, [fn.args[0], fn.args[1], const(rows), const(cols)])
    b.ret_void()
    src = rand((max(rows, 1), lds), dt.np)
    dst = np.full((cols + 2, ldd), -7, dt.np)
    call_kernel(mod, "run", dst, src)
    want = np.full_like(dst, -7)
    want[:cols, :pad] = 0
    want[:cols, :rows] = src[:rows, :cols].T
    np.testing.assert_array_equal(dst, want)


def test_gemms_of_one_module_share_their_routines():
    # matmuls of different shapes (packed, and few rows with a column edge) call one shared
    # driver, micro-kernel and packing routine each: LLVM compiles those once per module (the
    # two few-rows shapes get the same register tile on any host: 12 and 18 rows, 4 vectors)
    shapes = [((128, 96), (96, 200)), ((70, 33), (33, 64)), ((12, 40), (40, 50)),
              ((18, 70), (70, 60))]
    mod = ir.Module()
    kernels, arrays = [], []
    for i, (sa, sb) in enumerate(shapes):
        a, b = rand(sa, np.float32, i), rand(sb, np.float32, i + 10)
        out = np.full((sa[0], sb[1]), 7, np.float32)
        kernels.append(emit_matmul(mod, f"mm{i}", TensorType.of(a), TensorType.of(b),
                                   TensorType.of(out)))
        arrays.append((a, b, out))
    text = str(mod)
    defined = re.findall(r'define internal void @"(lepton\.gemm\.[\w.]+)"', text)
    assert len(defined) == len(set(defined))
    assert sum(".drv" in d for d in defined) == 1 and sum(".rows" in d for d in defined) == 1
    # the packed tile; the rows tile (several row groups) reading B in place and copying it,
    # and reading the copy (the packed GEMM's micro-kernel when both tiles agree)
    from lepton.compiler.codegen import gemm
    blk = gemm.default_blocking(float32)
    mr, nvec = gemm._rows_tile(gemm.GemmShape(float32, 12, 50, 40, 40, 50, 50), blk.mr)
    rows_mk = {f"lepton.gemm.f32.mk{mr}x{nvec}.n{x}" for x in "cp"}
    packed_mk = f"lepton.gemm.f32.mk{blk.mr}x{blk.nr // 16}.np"
    assert {d for d in defined if ".mk" in d} == rows_mk | {packed_mk}
    lib = jit_compile(text)
    for i, (k, (a, b, out)) in enumerate(zip(kernels, arrays)):
        fn = ctypes.CFUNCTYPE(None, *[ctypes.c_void_p] * 4)(lib.address(f"mm{i}"))
        scratch = aligned(k.scratch_bytes)
        fn(out.ctypes.data, a.ctypes.data, b.ctypes.data, scratch.ctypes.data)
        check(a, b, out, 1e-4)


@pytest.mark.parametrize("shapes", [[(1, 1100), (1100, 1000), (1000,)],
                                    [(3, 1030), (1030, 1030), (1030,)],
                                    [(2, 1, 1100), (1100, 960), (960,)]],
                         ids=["matvec", "3 rows", "batched rows"])
def test_few_rows_split_their_columns_across_threads(shapes, monkeypatch):
    # too few rows to split: the columns go to the threads in blocks of whole register tiles
    # (the last one with the edge); the epilogue sees each output's own column (the bias)
    from lepton.runtime.jit import openmp_available
    if not openmp_available():
        pytest.skip("no libgomp on this system")
    import lepton as lp
    x, w, bias = (rand(s, np.float32, i) for i, s in enumerate(shapes))
    want = np.maximum(x.astype(np.float64) @ w + bias, 0)
    for threads in ("1", "2", "3"):
        monkeypatch.setenv("LEPTON_NUM_THREADS", threads)
        f = lp.compile(lambda x, w, b: lp.relu(x @ w + b))
        np.testing.assert_allclose(f(x, w, bias), want, rtol=1e-4, atol=1e-4)
        assert ("GOMP_parallel" in f.llvm_ir()) == (threads != "1")


def test_few_rows_of_a_transposed_a_split_their_columns(monkeypatch):
    # x^T @ w with few columns of x: the rows path reads A through its strides, per thread too
    from lepton.runtime.jit import openmp_available
    if not openmp_available():
        pytest.skip("no libgomp on this system")
    import lepton as lp
    x, w = rand((1100, 3), np.float32), rand((1100, 960), np.float32, 1)
    want = x.astype(np.float64).T @ w
    for threads in ("1", "2"):
        monkeypatch.setenv("LEPTON_NUM_THREADS", threads)
        f = lp.compile(lambda x, w: x.T @ w)
        np.testing.assert_allclose(f(x, w), want, rtol=1e-4, atol=1e-4)
        assert ("GOMP_parallel" in f.llvm_ir()) == (threads != "1")
