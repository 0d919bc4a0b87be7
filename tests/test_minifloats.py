"""The 8- and 4-bit floats (float8_e4m3fn, float8_e4m3fnuz, float8_e5m2, float8_e5m2fnuz,
float4_e2m1fn) and the integers narrower than a byte (int4, uint4, int2, uint2): stored in a
byte, computed in float32 / int32 (lepton/ir/halfs.py), converted by integer arithmetic in
compiled code (lepton/compiler/codegen/minifloat.py, scalar.py) to the same bits as ml_dtypes'
`astype`, and ONNX's (saturating) Cast. Skipped without ml_dtypes (test_dtypes.py checks that
Lepton works without it).
"""
import numpy as np
import pytest

import lepton as lp
from lepton.ir import interpret, parse, print_graph
from lepton.ir.types import (DTYPES, FLOAT8, NARROW_INTS, FloatFormat, TensorType, bool_, dtype,
                             float4_e2m1fn, float8_e8m0fnu, float16, float32, float64, promote)

try:
    import ml_dtypes
except ImportError:
    ml_dtypes = None
needs_ml_dtypes = pytest.mark.skipif(ml_dtypes is None, reason="ml_dtypes is not installed")

rng = np.random.default_rng(8)
MINIFLOATS = FLOAT8 + (float8_e8m0fnu, float4_e2m1fn)
NEW = MINIFLOATS + NARROW_INTS
NAMES = {"f8e4m3fn": "float8_e4m3fn", "f8e4m3fnuz": "float8_e4m3fnuz", "f8e5m2": "float8_e5m2",
         "f8e5m2fnuz": "float8_e5m2fnuz", "f8e8m0fnu": "float8_e8m0fnu",
         "f4e2m1fn": "float4_e2m1fn", "i4": "int4",
         "u4": "uint4", "i2": "int2", "u2": "uint2"}


def _compiled_cast(x, dt):
    return lp.compile(lambda x: x.astype(dt))(x)


def _interpreted_cast(x, dt):
    return interpret(lp.trace(lambda x: x.astype(dt), x), x)[0]


def _bits(a):
    return np.asarray(a).view(np.uint8)


def _every(dt):
    """Every bit pattern of dt, one a byte."""
    return np.arange(1 << dt.bits, dtype=np.uint8).view(dt.np)


# -- types -----------------------------------------------------------------------------------
@needs_ml_dtypes
@pytest.mark.parametrize("dt", NEW, ids=str)
def test_names_numpy_types_and_formats(dt):
    long = NAMES[dt.name]
    assert dtype(dt.name) is dt and dtype(long) is dt and dtype(getattr(ml_dtypes, long)) is dt
    assert getattr(lp, long) is dt and getattr(lp.ir, long) is dt
    assert dt.itemsize == 1 and dt.is_narrow and not dt.is_half
    if dt.is_float:
        assert dt.is_small_float and dt.is_minifloat and not dt.is_narrow_int
        assert dt.fmt.max == float(ml_dtypes.finfo(dt.np).max) and dt.bits == dt.fmt.bits
    else:
        assert dt.is_int and dt.is_narrow_int and not dt.is_small_float
        assert dt.bits == ml_dtypes.iinfo(dt.np).bits
        assert dt.unsigned == (ml_dtypes.iinfo(dt.np).min == 0)
    assert not float32.is_narrow and float16.is_small_float and not float16.is_minifloat
    assert TensorType.parse(f"{dt.name}[2,3]") == TensorType(dt, (2, 3))


def test_format_largest_values():
    assert FloatFormat(4, 3, 7, "fn").max == 448
    assert FloatFormat(4, 3, 8, "fnuz").max == 240
    assert FloatFormat(5, 2, 15, "ieee").max == FloatFormat(5, 2, 16, "fnuz").max == 57344
    assert float16.fmt.max == 65504
    assert FloatFormat(2, 1, 1, "finite").max == 6


@needs_ml_dtypes
@pytest.mark.parametrize("dt", NEW, ids=str)
def test_promotion_is_ml_dtypes_numpy_promotion(dt):
    for other in DTYPES.values():
        want = np.promote_types(dt.np, other.np)
        if want == np.float64 and float64 not in (dt, other):
            assert promote(dt, other) == float32          # never float64 from narrower types
        else:
            assert promote(dt, other).np == want, other
        assert promote(other, dt) == promote(dt, other)
    assert promote(dt, bool_) == dt


@needs_ml_dtypes
@pytest.mark.parametrize("dt", NEW, ids=str)
def test_ir_text_round_trip(dt):
    x = np.resize(_every(dt), 6)

    def f(a, b):
        c = lp.constant(np.array([1.5, -2.0, 0.0] if dt.is_float else [1, 0, 1], dt.np))
        return lp.where(a > b, a, c[:1]) * 2, a.astype(lp.float32), b.astype(lp.float16)

    g = lp.trace(f, x, x)
    text = print_graph(g)
    assert f"{dt.name}[6]" in text
    assert print_graph(parse(text)) == text


# -- every 8- or 4-bit pattern to float32, bit-exact --------------------------------------------
@needs_ml_dtypes
@pytest.mark.parametrize("dt", MINIFLOATS, ids=str)
def test_every_pattern_widens_exactly(dt):
    h = _every(dt)
    want = h.astype(np.float32)
    for got in (_compiled_cast(h, float32), _interpreted_cast(h, float32)):
        assert got.dtype == np.float32
        assert np.array_equal(got.view(np.uint32), want.view(np.uint32))   # NaNs' bits too
    got = _compiled_cast(h, float64)
    assert np.array_equal(got, h.astype(np.float64), equal_nan=True)
    assert np.array_equal(np.signbit(got), np.signbit(h.astype(np.float64)))


# -- float32 / float64 to 8- and 4-bit floats, bit-exact ---------------------------------------
def _edges(dt):
    """Ties between neighbours (and just past them), subnormals, the largest value and the
    overflow threshold, NaN, infinities and signed zeros."""
    v = np.sort(np.unique(_every(dt).astype(np.float64)))
    v = v[np.isfinite(v)]
    ties = (v[:-1] + v[1:]) / 2
    big = dt.fmt.max
    step = 2.0 ** (np.floor(np.log2(big)) - dt.fmt.man_bits)     # the last place at max
    out = [ties, np.nextafter(ties, np.inf), np.nextafter(ties, -np.inf),
           [0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, big, -big, big + step / 2,
            big + step, -(big + step), 2 * big, 1e30, -1e30, 1e-30, -1e-30, 1e-7, -1e-7]]
    return np.concatenate([np.asarray(o, np.float64) for o in out])


@needs_ml_dtypes
@pytest.mark.parametrize("dt", MINIFLOATS, ids=str)
@pytest.mark.parametrize("src", [float32, float64], ids=str)
def test_rounding_to_nearest_even_as_ml_dtypes(dt, src):
    """Random float32 bits (every exponent), random values around the format's range and the
    edges: the same bits as ml_dtypes, compiled and interpreted; from float64 rounded once."""
    random_bits = rng.integers(0, 2 ** 32, 100_000, dtype=np.uint64).astype(np.uint32)
    in_range = rng.standard_normal(100_000) * dt.fmt.max / 64
    with np.errstate(all="ignore"):   # signalling NaNs among the bits
        xs = [random_bits.view(np.float32).astype(np.float64), in_range, _edges(dt)]
    if src == float64:   # beyond a tie by less than float32 resolves: rounded once, away
        ties = _edges(dt)[:(1 << dt.bits) - 1]
        xs.append(ties * (1 + 2.0 ** -40))
    for x in xs:
        with np.errstate(all="ignore"):     # e8m0's edges pass float32's largest
            x = x.astype(src.np)
            want = x.astype(dt.np)
        for got in (_compiled_cast(x, dt), _interpreted_cast(x, dt)):
            assert got.dtype == dt.np
            bad = np.nonzero(_bits(got) != _bits(want))[0]
            assert bad.size == 0, (x[bad[:5]], _bits(got)[bad[:5]], _bits(want)[bad[:5]])


@needs_ml_dtypes
@pytest.mark.parametrize("dt", MINIFLOATS, ids=str)
def test_special_values(dt):
    x = np.array([np.nan, np.inf, -np.inf, -0.0, 1e6, -1e6], np.float32)
    got = _bits(_compiled_cast(x, dt))
    special = dt.fmt.special
    if special == "ieee":      # e5m2: NaN is quiet 0x7E, overflow is infinity
        assert list(got) == [0x7E, 0x7C, 0xFC, 0x80, 0x7C, 0xFC]
    elif special == "fn":      # e4m3fn: no infinity, NaN 0x7F with the sign
        assert list(got) == [0x7F, 0x7F, 0xFF, 0x80, 0x7F, 0xFF]
    elif special == "e8m0":    # powers of two: no sign, no zero, no infinity; NaN 0xFF
        assert list(got) == [0xFF, 0xFF, 0xFF, 0xFF, 147, 0xFF]      # 1e6 -> 2**20
    elif special == "fnuz":    # fnuz: one NaN (0x80), no -0
        assert list(got) == [0x80, 0x80, 0x80, 0x00, 0x80, 0x80]
    else:                      # float4_e2m1fn: saturates; NaN is a zero of the other sign
        assert list(got) == [0x8, 0x7, 0xF, 0x8, 0x7, 0xF]
        assert list(_bits(_compiled_cast(-x[:1], dt))) == [0x0]


# -- to and from every other dtype -------------------------------------------------------------
def _sample(src, dt):
    if src == bool_:
        return rng.random(300) < 0.5
    if src.is_narrow_int:
        return _every(src)
    if src.is_int:
        info = np.iinfo(src.np)
        return rng.integers(max(info.min, -100_000), min(info.max, 100_000), 3000,
                            dtype=src.np, endpoint=True)
    big = dt.fmt.max if dt.is_float else 2 ** dt.bits
    x = np.concatenate([rng.standard_normal(3000) * big / 4, rng.standard_normal(300) * 1e3,
                        [0.0, -0.0, np.inf, -np.inf, np.nan, big * 1.2, -big * 1.2, 7.99, 8,
                         -8.99, -9, 15.99, 16, -0.99, -1, 1.99, 2, -2.99, -3, 3.99, 4]])
    with np.errstate(all="ignore"):
        return x.astype(src.np)


def _range(d):
    if d == bool_:
        return 0, 1
    info = ml_dtypes.iinfo(d.np)
    return int(info.min), int(info.max)


@needs_ml_dtypes
@pytest.mark.parametrize("dt", NEW, ids=str)
@pytest.mark.parametrize("src", [d for d in DTYPES.values()], ids=str)
def test_casts_between_every_dtype(dt, src):
    """To a small float: rounded once (from integers, float16, bfloat16, other small floats);
    from it: exact (to integers: the values in their range; NaN and overflow there are
    unspecified). To a narrow integer: integers keep their low bits, floats truncate and out
    of range give 0 (ml_dtypes' rule); from it: exact."""
    x = _sample(src, dt)
    with np.errstate(all="ignore"):
        want = x.astype(dt.np)
    assert np.array_equal(_bits(_compiled_cast(x, dt)), _bits(want))
    h = _every(dt)
    wide = h.astype(np.float64)
    if (src.is_int or src == bool_) and dt.is_float:
        lo, hi = _range(src)
        h = h[np.isfinite(wide) & (wide >= lo) & (wide < float(hi) + 1)]   # 2**63: out
    if src.is_narrow_int or (src == bool_ and dt.is_int):   # wraps around: every value
        lo, hi = _range(src)
        h = h[(wide >= lo) & (wide <= hi)] if src == bool_ else h
    got = _compiled_cast(h, src)
    with np.errstate(all="ignore"):
        want = h.astype(src.np)
    assert got.dtype == want.dtype
    if src.is_narrow_int or src.is_minifloat:
        assert np.array_equal(_bits(got), _bits(want))
    elif src.is_float:
        g, w = got.astype(np.float64), want.astype(np.float64)
        assert np.array_equal(g, w, equal_nan=True)
        assert np.array_equal(np.signbit(g) | np.isnan(g), np.signbit(w) | np.isnan(w))
    else:
        assert np.array_equal(got, want)


# -- ops compute in float32 (int32) and convert once ---------------------------------------------
@needs_ml_dtypes
@pytest.mark.parametrize("dt", MINIFLOATS, ids=str)
def test_ops_compute_in_float32_and_round_each_result(dt):
    a = _every(dt)
    b = a[::-1].copy()
    f = lp.compile(lambda a, b: (a * b + a, lp.sqrt(lp.abs(a)), lp.sum(a[:64])), check=True)
    got = f(a, b)
    w = lambda v: v.astype(np.float32)  # noqa: E731
    with np.errstate(all="ignore"):
        want = ((w(a) * w(b)).astype(dt.np).astype(np.float32) + w(a)).astype(dt.np)
        root = np.sqrt(np.abs(w(a))).astype(dt.np)
        total = w(a[:64]).sum(dtype=np.float32).astype(dt.np)
    assert np.array_equal(_bits(got[0]), _bits(want))
    assert np.array_equal(_bits(got[1]), _bits(root))
    assert got[2].dtype == dt.np and np.array_equal(got[2].astype(np.float32),
                                                    total.astype(np.float32), equal_nan=True)


@needs_ml_dtypes
@pytest.mark.parametrize("dt", NARROW_INTS, ids=str)
def test_narrow_integer_ops_wrap_around_as_ml_dtypes(dt):
    """+ - * // % max, comparisons, negation: computed in int32, the low bits kept, which is
    ml_dtypes' own arithmetic (7 * 7 = 1 in int4); sums accumulate in int64 or uint64 (as
    int8's and uint8's)."""
    a = np.repeat(_every(dt), 1 << dt.bits)
    b = np.tile(_every(dt), 1 << dt.bits)
    nonzero = b.astype(np.int32) != 0
    f = lp.compile(lambda a, b: (a + b, a - b, a * b, a // b, a % b, lp.maximum(a, b), a < b,
                                 -a, lp.sum(a)), check=True)
    got = f(a, b)
    wide = lambda v: v.astype(np.int32)  # noqa: E731
    want = [a + b, a - b, a * b, wide(a) // np.where(nonzero, wide(b), 1),
            wide(a) % np.where(nonzero, wide(b), 1), np.maximum(a, b), a < b,
            (-wide(a)).astype(dt.np),      # ml_dtypes' -int4 gives int8; NumPy's rule keeps it
            wide(a).sum(dtype=np.int64)]
    for k, (g, w) in enumerate(zip(got, want)):
        total = np.dtype(np.uint64 if dt.unsigned else np.int64)
        assert g.dtype == {6: np.dtype(bool), 8: total}.get(k, dt.np), k
        if k in (3, 4):     # ml_dtypes has no // or % of its own: NumPy's on the values
            g, w = wide(g)[nonzero], wide(w.astype(dt.np))[nonzero]
        assert np.array_equal(np.asarray(g).astype(np.int64), np.asarray(w).astype(np.int64)), k


@needs_ml_dtypes
def test_movement_copies_bits():
    dt = lp.float8_e4m3fn
    x = _every(dt).reshape(16, 16)
    f = lp.compile(lambda x: lp.concatenate([x.T[::2], x[:3]], axis=0).reshape(-1))
    want = np.concatenate([x.T[::2], x[:3]], axis=0).reshape(-1)
    assert np.array_equal(_bits(f(x)), _bits(want))


@needs_ml_dtypes
def test_save_and_load_narrow_weights(tmp_path):
    """.npy cannot name ml_dtypes' types (float8_e5m2 even fails to load): weights are saved
    as their bits and viewed back by the manifest's dtype."""
    ws = [_every(dt) for dt in NEW]

    def f(x):
        return [(x[:w.size] + lp.broadcast_to(w, w.shape).astype(lp.float32)).astype(w.dtype)
                for w in ws]
    x = np.linspace(-3, 3, 256).astype(np.float32)
    path = str(tmp_path / "narrow.lepton")
    lp.save(f, path, (x,))
    m = lp.load_model(path)
    assert sorted(a.dtype.name for a in m._weights) == sorted(w.dtype.name for w in ws)
    for got, want in zip(m.predict(x), lp.compile(f)(x)):
        assert got.dtype == want.dtype and np.array_equal(_bits(got), _bits(want))


@needs_ml_dtypes
@pytest.mark.parametrize("dt", [float4_e2m1fn, FLOAT8[2], NARROW_INTS[0]], ids=str)
def test_large_outputs_and_cached_constants_keep_their_dtype(dt, tmp_path, monkeypatch):
    """Outputs of 1 MiB and more come from the output pool, and the disk cache stores the
    constants the passes make: both kept ml_dtypes' types as voids ('|V1') before."""
    x = rng.standard_normal(1 << 21).astype(np.float32)
    y = _compiled_cast(x, dt)
    assert y.dtype == dt.np and np.array_equal(_bits(y), _bits(x.astype(dt.np)))
    monkeypatch.setenv("LEPTON_CACHE_DIR", str(tmp_path))
    w = np.resize(_every(dt), (8, 4))

    def f(v):
        return v + lp.transpose(lp.broadcast_to(w, w.shape)).astype(lp.float32)
    v = np.ones((4, 8), np.float32)
    cold = lp.compile(f, example_args=(v,), freeze=True)
    warm = lp.compile(f, example_args=(v,), freeze=True)
    assert warm.stats()["from_disk_cache"]
    assert np.array_equal(warm(v), cold(v)) and np.array_equal(cold(v), v + w.T.astype(np.float32))


# -- ONNX Cast with saturate -------------------------------------------------------------------
@needs_ml_dtypes
@pytest.mark.parametrize("saturate", [0, 1])
@pytest.mark.parametrize("to", ["FLOAT8E4M3FN", "FLOAT8E4M3FNUZ", "FLOAT8E5M2", "FLOAT8E5M2FNUZ",
                                "FLOAT4E2M1", "INT4", "UINT4", "INT2", "UINT2"])
@pytest.mark.parametrize("src", [np.float32, np.float16, np.float64])
def test_onnx_cast_saturate_as_the_reference(to, saturate, src):
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper
    from onnx.reference import ReferenceEvaluator
    elem = {np.float32: TensorProto.FLOAT, np.float16: TensorProto.FLOAT16,
            np.float64: TensorProto.DOUBLE}[src]
    node = helper.make_node("Cast", ["x"], ["y"], to=getattr(TensorProto, to),
                            saturate=saturate)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", elem, [None])],
                              [helper.make_tensor_value_info("y", getattr(TensorProto, to),
                                                             [None])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    x = np.concatenate([rng.standard_normal(2000) * 3e4, [0.0, -0.0, np.inf, -np.inf, np.nan,
                                                          239, 241, 447, 449, 470, 57343,
                                                          61439, 61440, 7e4, -7e4, 1e-9]])
    with np.errstate(all="ignore"):
        x = x.astype(src)
    with np.errstate(all="ignore"):
        (want,) = ReferenceEvaluator(model).run(None, {"x": x})
    (got,) = lp.from_onnx(model)(x)
    assert got.dtype == want.dtype
    assert np.array_equal(_bits(got), _bits(want))


@needs_ml_dtypes
@pytest.mark.parametrize("saturate", [0, 1])
@pytest.mark.parametrize("round_mode", ["up", "down", "nearest"])
@pytest.mark.parametrize("src", [np.float32, np.float16, np.float64])
def test_onnx_cast_to_e8m0_as_the_reference(round_mode, saturate, src):
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper
    from onnx.reference import ReferenceEvaluator
    elem = {np.float32: TensorProto.FLOAT, np.float16: TensorProto.FLOAT16,
            np.float64: TensorProto.DOUBLE}[src]
    node = helper.make_node("Cast", ["x"], ["y"], to=TensorProto.FLOAT8E8M0,
                            saturate=saturate, round_mode=round_mode)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", elem, [None])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT8E8M0,
                                                             [None])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 25)])
    bits = rng.integers(0, 2 ** 32, 50_000, dtype=np.uint64).astype(np.uint32)
    powers = 2.0 ** np.arange(-150, 129)
    with np.errstate(all="ignore"):
        x = np.concatenate([bits.view(np.float32).astype(np.float64), powers, powers * 1.5,
                            powers * 1.25, powers * 1.75, -powers, [0.0, -0.0, np.inf, -np.inf,
                                                                    np.nan, 3e38, 1.7e38]])
        x = x.astype(src)
        (want,) = ReferenceEvaluator(model).run(None, {"x": x})
    (got,) = lp.from_onnx(model)(x)
    assert got.dtype == want.dtype
    bad = np.nonzero(_bits(got) != _bits(want))[0]
    assert bad.size == 0, (x[bad[:5]], _bits(got)[bad[:5]], _bits(want)[bad[:5]])
