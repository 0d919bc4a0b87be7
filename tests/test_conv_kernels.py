"""conv2d and pooling kernels against the op table's NumPy references (in float64)."""
import numpy as np
import pytest
from llvmlite import ir

from kernels import call_kernel
from lepton.compiler.codegen.conv import emit_conv2d, emit_pool2d
from lepton.ir.ops import OPS
from lepton.ir.types import TensorType, float32, int32


def aligned(nbytes):
    raw = np.zeros(nbytes + 128, np.uint8)
    off = (-raw.ctypes.data) % 64
    return raw[off:off + max(nbytes, 64)]


def rand(shape, dtype, seed=0):
    return np.random.default_rng(seed + sum(shape)).standard_normal(shape).astype(dtype)


def conv(x, w, stride, padding, dilation, groups, epilogue=None):
    attrs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    out_t = OPS["conv2d"].infer([TensorType.of(x), TensorType.of(w)], attrs)
    out = np.full(out_t.shape, 7, x.dtype)
    m = ir.Module()
    k = emit_conv2d(m, "cv", TensorType.of(x), TensorType.of(w), out_t, stride, padding,
                    dilation, groups, epilogue=epilogue)
    ctx = [np.zeros(1, np.uint8)] if epilogue is not None else []   # the epilogue's context
    scratch = aligned(k.scratch_bytes + 256)
    scratch[k.scratch_bytes:] = 0xAB    # guard bytes: the kernel stays within its scratch
    call_kernel(m, "cv", out, x, w, scratch, *ctx)
    assert (scratch[k.scratch_bytes:] == 0xAB).all()
    ref = OPS["conv2d"].ref([x.astype(np.float64), w.astype(np.float64)], attrs)
    return out, ref


CONVS = [  # x shape, w shape, stride, padding, dilation, groups
    ((2, 3, 9, 11), (4, 3, 3, 3), (1, 1), (1, 1), (1, 1), 1),
    ((2, 4, 10, 9), (6, 2, 3, 2), (2, 1), (0, 1), (1, 2), 2),
    ((1, 8, 7, 7), (16, 8, 1, 1), (1, 1), (0, 0), (1, 1), 1),      # 1x1: no im2col
    ((1, 8, 7, 7), (16, 8, 1, 1), (2, 2), (0, 0), (1, 1), 1),      # strided 1x1
    ((3, 6, 12, 12), (6, 1, 5, 5), (2, 2), (2, 2), (1, 1), 6),     # depthwise
    ((1, 1, 5, 5), (1, 1, 5, 5), (1, 1), (0, 0), (1, 1), 1),       # 1x1 output
    ((2, 3, 30, 30), (40, 3, 3, 3), (3, 3), (1, 1), (2, 2), 1),
    ((1, 2, 40, 37), (70, 2, 3, 3), (1, 1), (4, 3), (1, 1), 1),    # wide rows, big padding, M > 64
    ((2, 1, 28, 28), (32, 1, 3, 3), (1, 1), (1, 1), (1, 1), 1),    # W7 conv1 (2 images)
    ((2, 32, 14, 14), (64, 32, 3, 3), (1, 1), (1, 1), (1, 1), 1),  # W7 conv2
]


@pytest.mark.parametrize("case", CONVS, ids=lambda c: f"{c[0]}*{c[1]}s{c[2]}p{c[3]}d{c[4]}g{c[5]}")
def test_conv2d_f32(case):
    xs, ws, *attrs = case
    out, ref = conv(rand(xs, np.float32), rand(ws, np.float32, 1), *attrs)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4 * np.sqrt(np.prod(ws[1:])))


def test_conv2d_f64():
    out, ref = conv(rand((2, 4, 9, 8), np.float64), rand((6, 2, 3, 3), np.float64, 1),
                    (2, 1), (1, 2), (1, 1), 2)
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)


def test_conv2d_epilogue_rows_are_image_major_channels():
    def epi(b, v, row, col, ctx):
        # v + 100*channel (row % O): a per-channel bias, as a fused conv+bias would do
        n = v.type.count
        ch = b.sitofp(b.urem(row, ir.Constant(row.type, 6)), v.type.element)
        bias = b.fmul(ch, ir.Constant(v.type.element, 100.0))
        vec = b.insert_element(ir.Constant(v.type, None), bias, ir.Constant(ir.IntType(32), 0))
        vec = b.shuffle_vector(vec, ir.Constant(v.type, None),
                               ir.Constant(ir.VectorType(ir.IntType(32), n), [0] * n))
        return b.fadd(v, vec)
    out, ref = conv(rand((3, 4, 6, 7), np.float32), rand((6, 2, 3, 3), np.float32, 1),
                    (1, 1), (1, 1), (1, 1), 2, epilogue=epi)
    ref = ref + 100.0 * np.arange(6).reshape(1, 6, 1, 1)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-3)


def pool(kind, x, kernel, stride, padding):
    attrs = dict(kernel=kernel, stride=stride, padding=padding)
    op = OPS[f"{kind}_pool2d"]
    out_t = op.infer([TensorType.of(x)], attrs)
    out = np.full(out_t.shape, 7, x.dtype)
    m = ir.Module()
    k = emit_pool2d(m, "pl", kind, TensorType.of(x), out_t, kernel, stride, padding)
    assert k.scratch_bytes == 0
    call_kernel(m, "pl", out, x, aligned(0))
    return out, op.ref([x.astype(np.float64)], attrs)


POOLS = [  # x shape, kernel, stride, padding
    ((2, 3, 28, 28), (2, 2), (2, 2), (0, 0)),    # W7
    ((1, 2, 9, 11), (3, 3), (2, 2), (1, 1)),
    ((1, 2, 10, 7), (3, 2), (1, 2), (1, 1)),
    ((2, 1, 5, 5), (5, 5), (1, 1), (2, 2)),      # every window touches the padding
    ((1, 1, 4, 6), (1, 1), (1, 1), (0, 0)),
    ((1, 3, 33, 40), (3, 3), (3, 2), (0, 1)),    # long interior rows, uneven edges
    ((1, 2, 6, 40), (3, 3), (1, 1), (1, 1)),     # stride 1: full vectors and a masked rest
    ((1, 2, 20, 31), (3, 3), (2, 3), (1, 1)),    # stride 3: the scalar interior
]


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("case", POOLS, ids=lambda c: f"{c[0]}k{c[1]}s{c[2]}p{c[3]}")
@pytest.mark.parametrize("dt", [np.float32, np.float64], ids=["f32", "f64"])
def test_pool(kind, case, dt):
    xs, *attrs = case
    out, ref = pool(kind, rand(xs, dt), *attrs)
    np.testing.assert_allclose(out, ref, rtol=1e-6, atol=1e-6)


def test_max_pool_propagates_nan():
    x = rand((1, 1, 4, 4), np.float32)
    x[0, 0, 1, 1] = np.nan
    out, ref = pool("max", x, (2, 2), (2, 2), (0, 0))
    assert np.isnan(out[0, 0, 0, 0]) and not np.isnan(out[0, 0, 1, 1])
    np.testing.assert_array_equal(np.isnan(out), np.isnan(ref))


def test_errors():
    f, i = TensorType(float32, (1, 2, 5, 5)), TensorType(int32, (1, 2, 5, 5))
    with pytest.raises(ValueError):      # wrong output shape
        emit_conv2d(ir.Module(), "c", f, TensorType(float32, (3, 2, 3, 3)),
                    TensorType(float32, (1, 3, 5, 5)), (1, 1), (0, 0), (1, 1), 1)
    with pytest.raises(ValueError):      # channels do not match groups
        emit_conv2d(ir.Module(), "c", f, TensorType(float32, (4, 2, 3, 3)),
                    TensorType(float32, (1, 4, 3, 3)), (1, 1), (0, 0), (1, 1), 2)
    with pytest.raises(ValueError):
        emit_pool2d(ir.Module(), "p", "min", f, TensorType(float32, (1, 2, 2, 2)), (2, 2), (2, 2), (0, 0))
    with pytest.raises(TypeError):
        emit_pool2d(ir.Module(), "p", "max", i, TensorType(int32, (1, 2, 2, 2)), (2, 2), (2, 2), (0, 0))
    with pytest.raises(ValueError):
        emit_pool2d(ir.Module(), "p", "max", f, TensorType(float32, (1, 2, 3, 3)), (2, 2), (2, 2), (0, 0))


def weight_grad(x, dy, kernel, stride, padding, dilation, groups, threads=1):
    from lepton.compiler.codegen.conv_grad import emit_conv2d_weight_grad
    attrs = dict(kernel=kernel, stride=stride, padding=padding, dilation=dilation, groups=groups)
    out_t = OPS["conv2d_weight_grad"].infer([TensorType.of(x), TensorType.of(dy)], attrs)
    out = np.full(out_t.shape, 7, x.dtype)
    m = ir.Module()
    k = emit_conv2d_weight_grad(m, "dw", TensorType.of(x), TensorType.of(dy), out_t, stride,
                                padding, dilation, groups, threads)
    scratch = aligned(k.scratch_bytes + 256)
    scratch[k.scratch_bytes:] = 0xAB    # guard bytes: the kernel stays within its scratch
    call_kernel(m, "dw", out, x, dy, scratch)
    assert (scratch[k.scratch_bytes:] == 0xAB).all()
    ref = OPS["conv2d_weight_grad"].ref([x.astype(np.float64), dy.astype(np.float64)], attrs)
    return out, ref


WEIGHT_GRADS = [  # x shape, dy shape, kernel, stride, padding, dilation, groups
    ((2, 3, 9, 11), (2, 4, 9, 11), (3, 3), (1, 1), (1, 1), (1, 1), 1),
    ((3, 4, 10, 9), (3, 6, 4, 7), (3, 2), (2, 1), (0, 1), (1, 2), 2),
    ((2, 8, 7, 7), (2, 16, 7, 7), (1, 1), (1, 1), (0, 0), (1, 1), 1),      # 1x1
    ((3, 6, 12, 12), (3, 6, 6, 6), (5, 5), (2, 2), (2, 2), (1, 1), 6),     # depthwise
    ((2, 5, 13, 6), (2, 7, 4, 2), (3, 3), (3, 3), (1, 1), (2, 1), 1),      # stride 3, dilated
    ((1, 1, 5, 5), (1, 1, 1, 1), (5, 5), (1, 1), (0, 0), (1, 1), 1),       # one output pixel
    ((2, 3, 8, 8), (2, 5, 3, 4), (3, 3), (2, 2), (1, 1), (1, 1), 1),       # dy short of 4x4
    ((2, 3, 32, 32), (2, 32, 32, 32), (3, 3), (1, 1), (1, 1), (1, 1), 1),  # W11's conv1 (rows
    ((2, 32, 16, 16), (2, 64, 16, 16), (3, 3), (1, 1), (1, 1), (1, 1), 1),  # 4 KiB apart), conv2
    ((1, 20, 6, 7), (1, 70, 6, 7), (3, 3), (1, 1), (1, 1), (1, 1), 1),     # K < unroll edges
    # small images, several a GEMM: 7 per block, a last block of 6; all in one block; groups
    ((20, 3, 6, 7), (20, 4, 6, 7), (3, 3), (1, 1), (1, 1), (1, 1), 1),
    ((5, 16, 4, 4), (5, 24, 4, 4), (3, 3), (1, 1), (1, 1), (1, 1), 1),
    ((9, 6, 9, 5), (9, 4, 4, 3), (3, 2), (2, 2), (1, 1), (1, 2), 2),
    ((33, 2, 3, 3), (33, 3, 2, 2), (2, 2), (1, 1), (0, 0), (1, 1), 1),   # 2x2 pixels: 33 in one
]


@pytest.mark.parametrize("case", WEIGHT_GRADS,
                         ids=lambda c: f"{c[0]}-{c[1]}k{c[2]}s{c[3]}p{c[4]}d{c[5]}g{c[6]}")
def test_conv2d_weight_grad_f32(case):
    xs, ds, *attrs = case
    out, ref = weight_grad(rand(xs, np.float32), rand(ds, np.float32, 1), *attrs)
    terms = np.prod(ds) / ds[1]        # products summed into each dw element
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5 * terms)


def test_conv2d_weight_grad_channel_blocks():
    # with threads, a group's channels split into equal blocks, one item each (test_threads
    # runs the split kernel)
    from lepton.compiler.codegen.conv_grad import _channel_block
    big = 1 << 30
    assert _channel_block(32, 1, 2, big) == (16, 2)
    assert _channel_block(3, 1, 2, big) == (1, 2)       # 3 items on 2 threads
    assert _channel_block(7, 1, 4, big) == (1, 4)
    assert _channel_block(1, 6, 2, big) == (1, 2)       # depthwise: the groups are the items
    assert _channel_block(32, 1, 1, big) == (32, 1)
    assert _channel_block(32, 1, 2, 10) == (32, 1)      # too little work to split


@pytest.mark.parametrize("n", [2, 11])    # 40 pixels: one block of 2; blocks of 7 and 4
def test_conv2d_weight_grad_f64(n):
    out, ref = weight_grad(rand((n, 4, 9, 8), np.float64), rand((n, 6, 5, 8), np.float64, 1),
                           (3, 3), (2, 1), (1, 2), (1, 1), 2)
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)
