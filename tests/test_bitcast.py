"""`lp.bitcast(x, dtype)`: the bits of each element read as another dtype of the same width
(NumPy's `x.view(dtype)`, jax.lax.bitcast_convert_type). Compiled code, the interpreter and
NumPy's view agree bit for bit on every supported pair, NaN payloads (signalling ones too),
-0, infinities and subnormals included, alone and fused with arithmetic; different widths and
bool as the target are refused naming the op; canonicalisation removes bitcasts to the same
dtype and folds a bitcast of a bitcast; constant folding keeps the bits.
"""
import numpy as np
import pytest

import lepton as lp
from lepton.compiler.passes.canonicalize import canonicalize
from lepton.compiler.passes.constant_fold import constant_fold
from lepton.ir import Graph, OpError, TensorType, interpret, parse, print_graph
from lepton.ir.types import DTYPES, bool_, float16, float32, float64, int32, uint8

try:
    import ml_dtypes
except ImportError:
    ml_dtypes = None

rng = np.random.default_rng(11)


def _width(d):
    return 8 if d == bool_ else d.bits


# the dtypes whose NumPy type exists here (the ml_dtypes ones need that package)
USABLE = [d for d in DTYPES.values() if d.np is not None]
PAIRS = [(a, b) for a in USABLE for b in USABLE
         if _width(a) == _width(b) and (b != bool_ or a == bool_)]
SOURCES = sorted({a for a, _ in PAIRS}, key=lambda d: d.name)


def patterns(d) -> np.ndarray:
    """Bit patterns of dtype d: all of them up to 16 bits; for 32 and 64 bits random ones and
    the special values (NaN payloads, signalling NaNs, -0, infinities, subnormals, extremes)."""
    if d == bool_:
        return np.array([False, True, True, False])
    if d.bits < 8:
        return np.arange(1 << d.bits, dtype=np.uint8).view(d.np)
    if d.bits <= 16:
        return np.arange(1 << d.bits, dtype=f"u{d.itemsize}").view(d.np)
    u = np.dtype(f"u{d.itemsize}")
    top = 1 << (d.bits - 1)
    exp = {32: 0x7F800000, 64: 0x7FF0000000000000}[d.bits]
    quiet = {32: 0x00400000, 64: 0x0008000000000000}[d.bits]
    special = [0, top, exp, top | exp, exp | quiet, top | exp | quiet, exp | 1, exp | 0x1234,
               exp | quiet | 0x5A5, top | exp | 0x77, 1, top | 1, exp - 1, top - 1, top,
               2 ** d.bits - 1]
    randoms = rng.integers(0, 2 ** 63, 997, dtype=np.uint64).astype(u)
    if d.bits == 64:
        randoms = randoms * np.uint64(2) + rng.integers(0, 2, 997, dtype=np.uint64)
    return np.concatenate([np.array(special, dtype=u), randoms]).view(d.np)


def _bits(a) -> np.ndarray:
    a = np.ascontiguousarray(a)
    return a.view(np.uint8)


def _same_bits(got, want):
    assert got.dtype == want.dtype and got.shape == want.shape
    assert np.array_equal(_bits(got), _bits(want))


def _same_values(got, want):
    """The same bits, but any NaN for a NaN: arithmetic on a NaN gives a NaN whose payload
    IEEE leaves open (a bitcast of it is then only known to be a NaN's bits)."""
    assert got.dtype == want.dtype and got.shape == want.shape
    nan = np.isnan(want.astype(np.float32) if want.dtype.itemsize < 4 else want)
    assert np.array_equal(np.isnan(got.astype(np.float32) if got.dtype.itemsize < 4 else got),
                          nan)
    assert np.array_equal(_bits(got[~nan]), _bits(want[~nan]))


@pytest.mark.parametrize("src", SOURCES, ids=str)
def test_every_pair_matches_numpy_view_compiled_and_interpreted(src):
    """One graph per source dtype, one output per target of its width; shaped (2, n/2) and
    transposed so the kernel also reads strided data."""
    x = patterns(src)
    x = x[: x.size // 2 * 2].reshape(2, -1)
    targets = [b for a, b in PAIRS if a == src]

    def f(x):
        return [lp.bitcast(x, t) for t in targets] + [lp.bitcast(x.T, t) for t in targets]

    got = lp.compile(f)(x)
    interpreted = interpret(lp.trace(f, x), x)
    want = [x.view(t.np) for t in targets] + [x.T.view(t.np) for t in targets]
    for g, i, w in zip(got, interpreted, want):
        _same_bits(g, w)
        _same_bits(i, w)


def test_zero_d_and_empty():
    f = lp.compile(lambda x: lp.bitcast(x, lp.uint32))
    _same_bits(f(np.float32(-0.0)), np.array(0x80000000, np.uint32))
    _same_bits(f(np.zeros((0, 3), np.float32)), np.zeros((0, 3), np.uint32))


def test_known_values():
    f = lp.compile(lambda x: (lp.bitcast(x, lp.int32), lp.bitcast(x.astype(lp.float64), lp.int64)))
    a, b = f(np.array([1.0, -2.0, np.inf], np.float32))
    assert a.tolist() == [0x3F800000, -0x40000000, 0x7F800000]
    assert b.tolist() == [0x3FF0000000000000, -0x4000000000000000, 0x7FF0000000000000]
    h = lp.compile(lambda x: lp.bitcast(x, lp.uint16))(np.array([1.0, -0.0], np.float16))
    assert h.tolist() == [0x3C00, 0x8000]
    c = lp.compile(lambda x: lp.bitcast(x, lp.uint8))(np.array([True, False]))
    assert c.tolist() == [1, 0] and c.dtype == np.uint8


def test_fused_with_arithmetic_before_and_after():
    """The classic fast inverse square root: float -> int bits, integer arithmetic, back to
    float, then float arithmetic; all in one elementwise kernel."""
    def f(x):
        y = x * 1.0                                           # float arithmetic before
        i = lp.right_shift(lp.bitcast(y, lp.int32), 1)
        r = lp.bitcast(0x5F3759DF - i, lp.float32)            # integer arithmetic between
        return r * (1.5 - 0.5 * x * r * r)                    # and float arithmetic after

    x = np.abs(rng.standard_normal((7, 13)).astype(np.float32)) + 0.01
    cf = lp.compile(f)
    got = cf(x)
    want = interpret(lp.trace(f, x), x)[0]
    _same_bits(got, want)
    np.testing.assert_allclose(got, 1 / np.sqrt(x), rtol=2e-3)
    i = (x * np.float32(1.0)).view(np.int32) >> 1
    r = (np.int32(0x5F3759DF) - i).view(np.float32)
    _same_bits(got, r * (np.float32(1.5) - np.float32(0.5) * x * r * r))
    assert cf.stats()["kernels"] == 1
    (group,) = cf.stats()["fused_groups"]
    assert group.count("bitcast") == 2


def test_fused_in_small_types():
    """A float16 sum's bits, a bfloat16 made from an int16, a bit-flip of the sign of floats."""
    def f(h, i, x):
        s = lp.bitcast(h + h, lp.int16) + 1
        b = lp.bitcast(i, lp.bfloat16) * 2
        neg = lp.bitcast(lp.bitwise_xor(lp.bitcast(x, lp.uint32), np.uint32(0x80000000)),
                         lp.float32)
        return s, b, neg, neg + 1
    h = patterns(float16)[::97]
    i = np.arange(-32768, 32768, 211, dtype=np.int16)
    x = patterns(float32)
    args = (h, i, x)
    got = lp.compile(f)(*args)
    want = interpret(lp.trace(f, *args), *args)
    _same_bits(got[0][~np.isnan(h)], want[0][~np.isnan(h)])   # h + h of a NaN: any NaN
    _same_values(got[1], want[1])
    _same_bits(got[2], want[2])
    _same_values(got[3], want[3])
    with np.errstate(all="ignore"):
        _same_bits(got[0][~np.isnan(h)], (h + h).view(np.int16)[~np.isnan(h)] + np.int16(1))
    _same_bits(got[2], (x.view(np.uint32) ^ np.uint32(0x80000000)).view(np.float32))


def test_float16_without_conversion_instructions(monkeypatch, tmp_path):
    """float16 as its bits (i16 registers) instead of LLVM `half`."""
    from lepton.compiler.codegen import scalar
    monkeypatch.setenv("LEPTON_CACHE_DIR", str(tmp_path))
    was = scalar.HARDWARE_HALVES
    scalar.set_hardware_halves(False)
    try:
        h = patterns(float16)
        f = lp.compile(lambda h: (lp.bitcast(h, lp.int16), lp.bitcast(lp.bitcast(h, lp.uint16)
                                                                      + 1, lp.float16)))
        a, b = f(h)
        _same_bits(a, h.view(np.int16))
        _same_bits(b, (h.view(np.uint16) + np.uint16(1)).view(np.float16))
    finally:
        scalar.set_hardware_halves(was)


def test_nan_payload_constants_keep_their_bits():
    """Constants (folded or not) holding signalling and quiet NaN payloads reach the output
    with their bits, inside kernels too."""
    bits = np.array([0x7F800001, 0xFFC00123, 0x7FA00000, 0x80000000], np.uint32)

    def f(x):
        c = lp.bitcast(lp.constant(bits), lp.float32)
        s = lp.bitcast(lp.constant(np.uint32(0x7F800005)), lp.float32)   # a splat
        return lp.where(x > 0, c, x), lp.where(x > 0, s, x), c
    x = np.array([1, -1, 2, 3], np.float32)
    got = lp.compile(f)(x)
    want = interpret(lp.trace(f, x), x)
    for g, w in zip(got, want):
        _same_bits(g, w)
    assert got[1].view(np.uint32)[0] == 0x7F800005
    assert got[0].view(np.uint32).tolist()[::2] == [0x7F800001, 0x7FA00000]


def test_kernels_differing_only_in_a_nan_payload_are_not_shared():
    """Kernels are keyed by structure, immediates included: NaNs of different payloads (or
    signs) are different keys."""
    payloads = [0x7F800005, 0x7F800007, 0xFF800005, 0x7FC00000]

    def f(x):
        return [lp.where(x > 0, lp.bitcast(lp.constant(np.uint32(p)), lp.float32), x)
                for p in payloads]
    x = np.array([1, -1], np.float32)
    for got, p in zip(lp.compile(f)(x), payloads):
        assert got.view(np.uint32)[0] == p and got[1] == -1


# -- refused ----------------------------------------------------------------------------------
@pytest.mark.parametrize("src,to", [(float32, float16), (float64, int32), (uint8, float16),
                                    (int32, lp.int8)], ids=str)
def test_different_widths_are_refused(src, to):
    x = np.zeros(3, src.np)
    with pytest.raises(ValueError, match=rf"bitcast from {src} \({_width(src)} bits\) to {to} "
                                         rf"\({_width(to)} bits\).*in op 'bitcast'"):
        lp.compile(lambda x: lp.bitcast(x, to))(x)


def test_sub_byte_widths_are_bits_not_bytes():
    if ml_dtypes is None:
        pytest.skip("ml_dtypes is not installed")
    with pytest.raises(ValueError, match=r"from i4 \(4 bits\) to u8 \(8 bits\)"):
        lp.trace(lambda x: lp.bitcast(x, lp.uint8), np.zeros(3, lp.int4.np))
    with pytest.raises(ValueError, match=r"from u2 \(2 bits\) to f4e2m1fn \(4 bits\)"):
        lp.trace(lambda x: lp.bitcast(x, lp.float4_e2m1fn), np.zeros(3, lp.uint2.np))


def test_bool_as_target_is_refused():
    with pytest.raises(OpError, match=r"bitcast from u8 to bool is refused.*in op 'bitcast'"):
        lp.trace(lambda x: lp.bitcast(x, lp.bool_), np.zeros(3, np.uint8))
    with pytest.raises(TypeError, match="unsupported dtype"):
        lp.trace(lambda x: lp.bitcast(x, np.complex64), np.zeros(3, np.float64))


def test_no_gradient_flows_through_a_bitcast():
    def loss(x):
        return lp.sum(lp.bitcast(lp.bitcast(x, lp.int32) + 1, lp.float32)) + lp.sum(x)
    g = lp.grad(loss)(np.ones(3, np.float32))
    np.testing.assert_array_equal(g, np.ones(3, np.float32))


# -- IR, canonicalisation, constant folding ------------------------------------------------------
def test_text_round_trip():
    g = lp.trace(lambda x: lp.bitcast(x, lp.uint32), np.zeros(3, np.float32))
    text = print_graph(g)
    assert "bitcast[dtype=u32]" in text
    assert print_graph(parse(text)) == text
    # a small constant holding NaNs with payloads or signs of their own prints its bytes
    bits = np.array([0x7F800001, 0xFFC00000, 0x7FC00000, 0x3F800000], np.uint32)
    g = Graph("k")
    g.set_outputs([g.add("constant", [], value=bits.view(np.float32))])
    back = parse(print_graph(g)).outputs[0].attrs["value"]
    _same_bits(back, bits.view(np.float32))
    g = Graph("k")
    g.set_outputs([g.add("constant", [], value=np.array([np.nan, 1], np.float32))])
    assert "value=[nan, 1.0]" in print_graph(g)


def _ops(g):
    return [v.op for v in g.nodes if v.op != "input"]


def test_bitcast_to_same_dtype_is_removed_and_bitcasts_compose():
    g = Graph("g")
    x = g.input(TensorType(float32, (4,)))
    same = g.add("bitcast", [x], dtype=float32)
    mid = g.add("bitcast", [same], dtype=int32)
    there = g.add("bitcast", [mid], dtype=lp.uint32)       # f32 -> i32 -> u32: f32 -> u32
    back = g.add("bitcast", [g.add("bitcast", [x], dtype=int32)], dtype=float32)   # x itself
    g.set_outputs([there, g.add("add", [back, x])])
    c = canonicalize(g)
    assert print_graph(c).count("bitcast") == 1
    (bc,) = [v for v in c.nodes if v.op == "bitcast"]
    assert bc.inputs[0] is c.inputs[0] and bc.dtype == lp.uint32
    assert _ops(c) == ["bitcast", "add"]
    a = patterns(float32)[:4]
    for got, want in zip(interpret(c, a), interpret(g, a)):
        _same_bits(got, want)


def test_constant_folding_keeps_the_bits():
    bits = np.array([0x7F800001, 0xFFC00123, 0x00000001, 0x80000000], np.uint32)
    g = Graph("g")
    k = g.add("constant", [], value=bits)
    g.set_outputs([g.add("bitcast", [k], dtype=float32)])
    f = constant_fold(g)
    assert _ops(f) == ["constant"]
    _same_bits(interpret(f)[0], bits.view(np.float32))
