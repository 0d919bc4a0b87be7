"""Autodiff: every VJP rule against central finite differences in float64 along random
directions (one table of ops), on the reference interpreter and compiled; pytrees, argnums,
integer inputs, zero gradients, second derivatives and Hessian-vector products; errors."""
import numpy as np
import pytest

import lepton as lp
from lepton.compiler.autodiff import GradientError, differentiate
from lepton.ir import Graph, TensorType, interpret

rng = np.random.default_rng(1234)


def R(*shape):
    return rng.standard_normal(shape)


def P(*shape):  # positive, away from 0
    return rng.uniform(0.5, 2.0, shape)


def away(*shape):  # magnitudes in [0.3, 2]: kinks (relu, abs, max) are far
    return rng.uniform(0.3, 2.0, shape) * rng.choice([-1.0, 1.0], shape)


IDX = np.array([2, 0, 2, 1], np.int64)
IDX2 = np.array([[1, 0], [3, 1], [1, 1]], np.int32)
LABELS = np.array([1, 0, 3, 3, 2], np.int64)
IGNORED = np.array([1, -100, 3, -100, 2], np.int64)
NEG_IDX = np.array([-1, 0, -4, 2, -1], np.int32)

# (id, fn, args): fn maps tensors to a tensor of any shape; every float argument is
# differentiated. Integer arguments (labels) ride along undifferentiated.
TABLE = [
    # elementwise, unary
    ("neg", lambda x: -x, [R(3, 4)]),
    ("abs", lp.abs, [away(3, 4)]),
    ("square", lp.square, [R(3, 4)]),
    ("relu", lp.relu, [away(3, 4)]),
    ("exp", lp.exp, [R(3, 4)]),
    ("log", lp.log, [P(3, 4)]),
    ("sqrt", lp.sqrt, [P(3, 4)]),
    ("rsqrt", lp.rsqrt, [P(3, 4)]),
    ("reciprocal", lp.reciprocal, [away(3, 4)]),
    ("tanh", lp.tanh, [R(3, 4)]),
    ("sigmoid", lp.sigmoid, [R(3, 4)]),
    ("erf", lp.erf, [R(3, 4)]),
    ("sin", lp.sin, [R(3, 4)]),
    ("cos", lp.cos, [R(3, 4)]),
    # elementwise, binary, with broadcasting both ways and 0-d operands
    ("add-bcast", lambda a, b: a + b, [R(3, 1), R(1, 4)]),
    ("sub-bcast", lambda a, b: a - b, [R(4), R(3, 4)]),
    ("mul-0d", lambda a, b: a * b, [R(3, 4), R()]),
    ("div-bcast", lambda a, b: a / b, [R(2, 3, 4), away(3, 1)]),
    ("pow", lambda a, b: a ** b, [P(3, 4), R(4)]),
    ("pow-const", lambda a: a ** 1.5 + 2.0 ** a, [P(3, 4)]),
    ("maximum", lp.maximum, [R(3, 4), R(4)]),
    ("minimum", lp.minimum, [R(3, 1), R(3, 4)]),
    ("where", lambda c, a, b: lp.where(c > 0, a, b), [R(3, 4), R(4), R(3, 1)]),
    ("clip", lambda x: lp.clip(x, -0.5, 0.7), [R(3, 4)]),
    ("cast-mask", lambda x: x * (x > 0).astype(lp.float64), [away(3, 4)]),
    # reductions
    ("sum-axis", lambda x: lp.sum(x, axis=1), [R(3, 4, 5)]),
    ("sum-keepdims", lambda x: lp.sum(x, axis=(0, 2), keepdims=True), [R(3, 4, 5)]),
    ("sum-all", lambda x: lp.sum(x) * x, [R(3, 4)]),
    ("mean", lambda x: lp.mean(x, axis=-1, keepdims=True), [R(3, 4)]),
    ("max", lambda x: lp.max(x, axis=1), [R(3, 4, 5)]),
    ("max-keepdims", lambda x: lp.max(x, axis=(0, 2), keepdims=True), [R(3, 4, 5)]),
    ("min", lambda x: lp.min(x, axis=0), [R(3, 4)]),
    ("prod", lambda x: lp.prod(x, axis=1), [R(3, 4)]),
    ("prod-zeros", lambda x: lp.prod(x * np.array([[1, 0, 1, 1], [0, 1, 0, 1], [1, 1, 1, 1]]),
                                     axis=1, keepdims=True), [R(3, 4)]),
    ("var", lambda x: lp.var(x, axis=0), [R(5, 3)]),
    ("logsumexp", lambda x: lp.logsumexp(x, axis=1), [R(3, 4)]),
    # shape ops
    ("reshape", lambda x: x.reshape(4, 6) * np.arange(24.0).reshape(4, 6), [R(2, 3, 4)]),
    ("transpose", lambda x, w=R(4, 2, 3): x.transpose(2, 0, 1) * w, [R(2, 3, 4)]),
    ("broadcast_to", lambda x: lp.broadcast_to(x, (2, 3, 4)), [R(3, 1)]),
    ("expand-squeeze", lambda x, w=R(3, 1, 4): lp.squeeze(lp.expand_dims(x, 1) * w, 1),
     [R(3, 4)]),
    ("slice", lambda x: x[1:, ::-2], [R(4, 7)]),
    ("slice-step", lambda x: x[::3, 1:6:2], [R(7, 8)]),
    ("index", lambda x: x[1] * x[:, 2], [R(3, 3)]),
    ("concatenate", lambda a, b: lp.concatenate([a, b, a], axis=1), [R(2, 3), R(2, 1)]),
    ("stack-split", lambda a: lp.stack(lp.split(a, [2, 4], axis=1), axis=0)[1:], [R(2, 6)]),
    ("take", lambda x: lp.take(x, IDX, axis=0), [R(3, 4)]),
    ("take-2d-idx", lambda x: lp.take(x, IDX2, axis=1), [R(2, 4, 3)]),
    ("fancy-index", lambda x: x[:, IDX], [R(2, 3)]),
    ("take-traced-negative", lambda x, i: lp.take(x, i, axis=1), [R(3, 4), NEG_IDX]),
    # linear algebra
    ("matmul", lambda a, b: a @ b, [R(3, 4), R(4, 5)]),
    ("matmul-batched", lambda a, b: a @ b, [R(2, 1, 3, 4), R(5, 4, 6)]),
    ("matmul-weight", lambda a, b: a @ b, [R(2, 3, 4), R(4, 5)]),
    ("matmul-vec", lambda a, b: a @ b, [R(4), R(4, 5)]),
    ("dot", lp.dot, [R(2, 3), R(4, 3, 2)]),
    # convolution and pooling
    ("conv2d", lambda x, w: lp.conv2d(x, w, padding=1), [R(2, 3, 5, 6), R(4, 3, 3, 3)]),
    ("conv2d-stride-pad", lambda x, w, b: lp.conv2d(x, w, b, stride=2, padding=1),
     [R(2, 3, 7, 6), R(4, 3, 3, 2), R(4)]),
    ("conv2d-dilation", lambda x, w: lp.conv2d(x, w, stride=(1, 2), padding=(2, 0),
                                                dilation=2), [R(1, 2, 7, 7), R(3, 2, 2, 3)]),
    ("conv2d-groups", lambda x, w: lp.conv2d(x, w, stride=(2, 1), padding=(0, 1), groups=2),
     [R(2, 4, 6, 5), R(6, 2, 3, 2)]),
    ("conv2d-1x1", lambda x, w: lp.conv2d(x, w), [R(2, 3, 4, 4), R(5, 3, 1, 1)]),
    ("conv2d-pad-beyond-taps", lambda x, w: lp.conv2d(x, w, stride=2, padding=(1, 2)),
     [R(1, 2, 5, 6), R(3, 2, 1, 2)]),
    ("conv_transpose2d", lambda x, w, b: lp.conv_transpose2d(x, w, b, stride=2, padding=1,
                                                             output_padding=1),
     [R(2, 3, 4, 3), R(3, 2, 3, 3), R(2)]),
    ("conv_transpose2d-groups-dilation", lambda x, w: lp.conv_transpose2d(
        x, w, stride=(1, 2), padding=(2, 0), groups=2, dilation=(2, 1)),
     [R(1, 4, 5, 4), R(4, 3, 3, 2)]),
    ("conv_transpose2d-output-padding-beyond-stride", lambda x, w: lp.conv_transpose2d(
        x, w, stride=1, output_padding=1, dilation=2), [R(1, 2, 3, 3), R(2, 2, 2, 2)]),
    ("interpolate-nearest", lambda x: lp.interpolate(x, scale_factor=(2, 1.5)), [R(1, 2, 3, 4)]),
    ("interpolate-bilinear", lambda x: lp.interpolate(x, size=(5, 7), mode="bilinear"),
     [R(2, 1, 3, 4)]),
    ("max_pool2d", lambda x: lp.max_pool2d(x, 2), [R(2, 3, 6, 4)]),
    ("max_pool2d-pad", lambda x: lp.max_pool2d(x, 3, stride=2, padding=1), [R(1, 2, 7, 6)]),
    ("max_pool2d-gaps", lambda x: lp.max_pool2d(x, 2, stride=3), [R(1, 2, 7, 8)]),
    ("avg_pool2d", lambda x: lp.avg_pool2d(x, 2), [R(2, 3, 6, 4)]),
    ("avg_pool2d-gaps", lambda x: lp.avg_pool2d(x, (2, 1), stride=(3, 2)), [R(1, 2, 7, 8)]),
    ("avg_pool2d-pad", lambda x: lp.avg_pool2d(x, (3, 2), stride=(2, 1), padding=1),
     [R(1, 2, 7, 6)]),
    # neural ops
    ("softmax", lambda x: lp.softmax(x, axis=-1), [R(3, 5)]),
    ("log_softmax", lambda x: lp.log_softmax(x, axis=0), [R(4, 3)]),
    ("layer_norm", lambda x, w, b: lp.layer_norm(x, w, b), [R(3, 6), R(6), R(6)]),
    ("gelu", lambda x: lp.gelu(x), [R(3, 4)]),
    ("gelu-tanh", lambda x: lp.gelu(x, approximate=True), [R(3, 4)]),
    ("cross_entropy", lp.cross_entropy, [R(5, 4), LABELS]),
    ("cross_entropy-ignore_index", lp.cross_entropy, [R(5, 4), IGNORED]),
]

# The ops gradients introduce, applied directly as IR: (id, op, float args, other args, attrs)
IR_TABLE = [
    ("pad", "pad", [R(3, 4)], [], dict(lo=(1, 0), hi=(0, 2), interior=(2, 1))),
    ("scatter_add", "scatter_add", [R(2, 4, 3)], [np.array([3, -1, 0, 3])],
     dict(axis=1, size=5)),
    ("avg_pool2d_grad", "avg_pool2d_grad", [R(1, 2, 4, 6)], [],
     dict(kernel=(3, 3), stride=(2, 1), padding=(1, 1), size=(7, 6))),
]
_X_POOL = R(1, 2, 7, 6)
IR_TABLE += [
    # x, then dy (short of the full 4x4 output in the second case)
    ("conv2d_weight_grad", "conv2d_weight_grad", [R(2, 4, 7, 6), R(2, 6, 4, 4)], [],
     dict(kernel=(3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2)),
    ("conv2d_weight_grad-short", "conv2d_weight_grad", [R(1, 3, 8, 8), R(1, 2, 3, 4)], [],
     dict(kernel=(3, 3), stride=(2, 2), padding=(1, 1), dilation=(1, 1), groups=1)),
]
IR_TABLE += [
    ("max_pool2d_grad", "max_pool2d_grad", [R(1, 2, 4, 6)], [_X_POOL],
     dict(kernel=(3, 3), stride=(2, 1), padding=(1, 1))),
    ("max_pool2d_select", "max_pool2d_select", [R(1, 2, 7, 6)], [_X_POOL],
     dict(kernel=(3, 3), stride=(2, 1), padding=(1, 1))),
]


def is_float(a) -> bool:
    return np.asarray(a).dtype.kind == "f"


def scalarized(fn, args):
    """fn's output weighted by a fixed random array and summed, so that every output element
    gets its own cotangent."""
    out = lp.trace(fn, *args).outputs[0]
    weight = R(*out.shape)

    def loss(*a):
        return lp.sum(fn(*a) * weight)
    loss.__name__ = "loss"
    return loss


def fd_check(f, args, grads, wrt, h=1e-5, rtol=2e-6, atol=1e-8, directions=2):
    """<grad, u> against (f(x + h u) - f(x - h u)) / 2h along random directions u."""
    for i, g in zip(wrt, grads):
        assert g.shape == np.shape(args[i]) and g.dtype == np.float64
        for _ in range(directions):
            u = R(*np.shape(args[i]))
            plus, minus = list(args), list(args)
            plus[i] = args[i] + h * u
            minus[i] = args[i] - h * u
            fd = (f(*plus) - f(*minus)) / (2 * h)
            an = float(np.sum(g * u))
            assert abs(fd - an) <= rtol * max(abs(an), abs(fd)) + atol, \
                f"argument {i}: analytic {an!r}, finite differences {fd!r}"


def interpreted(fn, args):
    g = lp.trace(fn, *args)
    return lambda *a: float(interpret(g, *a)[0])


@pytest.mark.parametrize("name,fn,args", TABLE, ids=[c[0] for c in TABLE])
def test_vjp_matches_finite_differences(name, fn, args):
    loss = scalarized(fn, args)
    g = lp.trace(loss, *args)
    wrt = [i for i, a in enumerate(args) if is_float(a)]
    dg = lp.ir.verify(differentiate(g, wrt))
    grads = interpret(dg, *args)
    fd_check(interpreted(loss, args), args, grads, wrt)


def _ir_graph(op, float_args, other_args, attrs):
    g = Graph(op)
    ins_other = [g.input(TensorType.of(a)) for a in other_args]
    ins = [g.input(TensorType.of(a)) for a in float_args]
    operands = ins_other + ins if op.startswith("max_pool") else ins + ins_other
    y = g.add(op, operands, **attrs)
    w = g.add("constant", [], value=R(*y.shape))
    g.set_outputs([g.add("sum", [g.add("mul", [y, w])], axes=tuple(range(len(y.shape))),
                         keepdims=False)])
    return g


@pytest.mark.parametrize("name,op,float_args,other_args,attrs", IR_TABLE,
                         ids=[c[0] for c in IR_TABLE])
def test_gradient_ops_vjp_matches_finite_differences(name, op, float_args, other_args, attrs):
    g = _ir_graph(op, float_args, other_args, attrs)
    args = other_args + float_args
    wrt = list(range(len(other_args), len(args)))
    grads = interpret(differentiate(g, wrt), *args)
    fd_check(lambda *a: float(interpret(g, *a)[0]), args, grads, wrt)


def _combined(cases):
    """One scalar function of (float args per case, other args per case): the sum of the
    cases' losses, so one compilation checks them all."""
    losses = [scalarized(fn, args) for _, fn, args in cases]
    floats = [[a for a in args if is_float(a)] for _, _, args in cases]
    others = [[a for a in args if not is_float(a)] for _, _, args in cases]
    kinds = [[is_float(a) for a in args] for _, _, args in cases]

    def total(fl, ot):
        s = 0.0
        for loss, f, o, k in zip(losses, fl, ot, kinds):
            fi, oi = iter(f), iter(o)
            s = s + loss(*[next(fi) if is_f else next(oi) for is_f in k])
        return s
    return total, floats, others


_SHAPES = [c[0] for c in TABLE].index("reshape")
GROUPS = {"elementwise-reductions": TABLE[:_SHAPES], "shapes-linalg-nn": TABLE[_SHAPES:]}


@pytest.mark.parametrize("group", list(GROUPS))
def test_compiled_gradients_match_interpreter(group):
    total, floats, others = _combined(GROUPS[group])
    df = lp.value_and_grad(total)
    value, got = df(floats, others)
    g = lp.trace(df, floats, others)
    leaves = [a for fl in floats for a in fl] + [a for ot in others for a in ot]
    want = interpret(g, *leaves)
    np.testing.assert_allclose(value, want[0], rtol=1e-9)
    got_leaves = [a for gl in got for a in gl]
    assert len(got_leaves) == len(want) - 1
    for (name, _, _), gl, wl in zip(GROUPS[group], got, _split(want[1:], floats)):
        for a, b in zip(gl, wl):
            np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-9, err_msg=name)


def _split(flat, like):
    out, at = [], 0
    for fl in like:
        out.append(flat[at:at + len(fl)])
        at += len(fl)
    return out


def test_every_op_has_a_vjp_rule_or_is_marked_nondifferentiable():
    from lepton.ir.ops import NONDIFF, OPS
    assert all(op.vjp is not None for op in OPS.values())
    nondiff = {name for name, op in OPS.items() if op.vjp is NONDIFF}
    assert nondiff == {"input", "constant", "argmax", "lt", "le", "gt", "ge", "eq", "ne",
                       "stop_gradient", "check_index", "philox", "floordiv",
                       "bitwise_and", "bitwise_or", "bitwise_xor", "shl", "shr", "bitcast"}


# -- API: pytrees, argnums, integer inputs, zero gradients, errors -------------------------------
def mlp_loss(params, x, labels):
    h = lp.tanh(x @ params["w1"] + params["b1"])
    h = lp.layer_norm(h, params["ln"][0], params["ln"][1])
    return lp.cross_entropy(h @ params["w2"], labels)


def _mlp_params(dtype=np.float64):
    p = {"w1": R(6, 8), "b1": R(8), "ln": [1 + 0.1 * R(8), 0.1 * R(8)], "w2": R(8, 4)}
    return {k: ([a.astype(dtype) for a in v] if isinstance(v, list) else v.astype(dtype))
            for k, v in p.items()}


def test_pytree_argument_integer_labels_compiled_and_interpreted():
    params, x, labels = _mlp_params(), R(5, 6), LABELS
    vg = lp.value_and_grad(mlp_loss)
    value, grads = vg(params, x, labels)
    assert set(grads) == set(params) and isinstance(grads["ln"], list) and len(grads["ln"]) == 2
    # the same through the interpreter on the traced gradient graph
    g = lp.trace(vg, params, x, labels)
    flat, tree = lp.frontends.pytree.tree_flatten((params, x, labels))
    want = interpret(g, *flat)
    got = lp.frontends.pytree.tree_flatten((value, grads))[0]
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    # against finite differences, leaf by leaf
    leaves, ptree = lp.frontends.pytree.tree_flatten(params)
    f = interpreted(lambda *ls: mlp_loss(lp.frontends.pytree.tree_unflatten(ptree, ls), x,
                                         labels), leaves)
    fd_check(f, leaves, lp.frontends.pytree.tree_flatten(grads)[0], range(len(leaves)))


def test_argnums_tuple_and_negative():
    a, b, c = R(3, 4), R(4), R(3, 1)

    def f(a, b, c):
        return lp.sum(lp.sin(a * b) * c)
    ga, gc = lp.grad(f, argnums=(0, -1))(a, b, c)
    np.testing.assert_allclose(ga, np.cos(a * b) * b * c, rtol=1e-12)
    np.testing.assert_allclose(gc, np.sin(a * b).sum(axis=1, keepdims=True), rtol=1e-12)
    (gb,) = lp.grad(f, argnums=(1,))(a, b, c)
    np.testing.assert_allclose(gb, (np.cos(a * b) * a * c).sum(axis=0), rtol=1e-12)


def test_float32_training_gradients_compiled():
    params, x = _mlp_params(np.float32), R(5, 6).astype(np.float32)
    labels = LABELS.astype(np.int32)
    grads = lp.grad(mlp_loss)(params, x, labels)
    assert grads["w1"].dtype == np.float32
    p64 = {k: ([a.astype(np.float64) for a in v] if isinstance(v, list) else
               v.astype(np.float64)) for k, v in params.items()}
    want = lp.grad(mlp_loss)(p64, x.astype(np.float64), labels)
    for k in params:
        for a, b in zip(np.atleast_1d(grads[k]) if k != "ln" else grads[k],
                        np.atleast_1d(want[k]) if k != "ln" else want[k]):
            np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5, err_msg=k)


def test_zero_gradients_and_nondifferentiable_ops():
    x, y = R(3, 4), R(4)

    def f(x, y):
        steps = lp.where(x > 0, 1.0, 0.0).astype(lp.float64)   # comparison: no gradient
        picked = lp.argmax(x, axis=1).astype(lp.float64)       # argmax: no gradient
        return lp.sum(steps) + lp.sum(picked) + lp.sum(y * y)
    gx, gy = lp.grad(f, argnums=(0, 1))(x, y)
    assert np.all(gx == 0) and gx.shape == x.shape
    np.testing.assert_allclose(gy, 2 * y)
    # an argument the result does not depend on at all
    g0 = lp.grad(lambda a, b: lp.sum(b), argnums=0)(x, y)
    assert g0.shape == x.shape and np.all(g0 == 0)
    # a constant result
    assert np.all(lp.grad(lambda a: 3.0)(np.float64(1.5)) == 0)


def test_cast_between_float_types():
    x = R(5)
    g = lp.grad(lambda x: lp.sum((x.astype(lp.float32) * 3).astype(lp.float64)))(x)
    assert g.dtype == np.float64 and np.all(g == 3)
    g = lp.grad(lambda x: lp.sum(lp.square(x.astype(lp.float64))))(x.astype(np.float32))
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, 2 * x.astype(np.float32), rtol=1e-6)


def test_errors_name_the_function():
    def vector_valued(x):
        return x * 2
    with pytest.raises(GradientError, match=r"vector_valued.*must return a scalar.*f64\[3\]"):
        lp.grad(vector_valued)(R(3))
    with pytest.raises(GradientError, match=r"argument 1.*i64\[5\].*only float"):
        lp.grad(lambda x, y: lp.sum(x), argnums=1)(R(3), LABELS)
    with pytest.raises(GradientError, match=r"argument 0\['k'\]"):
        lp.grad(lambda d: lp.sum(d["x"]))({"x": R(2), "k": np.arange(3)})
    with pytest.raises(GradientError, match="argnums=2 but"):
        lp.grad(lambda x, y: lp.sum(x), argnums=2)(R(3), R(3))
    with pytest.raises(GradientError, match="must return a scalar"):
        lp.grad(lambda x: (lp.sum(x), lp.sum(x)))(R(3))
    with pytest.raises(GradientError, match="must return a scalar"):
        lp.grad(lambda x: lp.sum(x).astype(lp.int64))(R(3))
    with pytest.raises(TypeError, match="argnums must be"):
        lp.grad(lambda x: x, argnums=1.0)
    with pytest.raises(GradientError, match="exactly one"):
        g = lp.trace(lambda x: (lp.sum(x), lp.sum(x)), R(3))
        differentiate(g)


def test_compile_and_trace_of_grad():
    f = lambda x, w: lp.sum(lp.tanh(x @ w))  # noqa: E731
    x, w = R(3, 4), R(4, 2)
    df = lp.grad(f, argnums=1)
    c = 1 - np.tanh(x @ w) ** 2
    np.testing.assert_allclose(lp.compile(df)(x, w), x.T @ c, rtol=1e-12)
    g = lp.trace(df, x, w)
    assert g.name == "grad_lambda" and "matmul" in str(g)
    assert lp.ir.parse(str(g)) == g
    np.testing.assert_allclose(interpret(g, x, w)[0], x.T @ c, rtol=1e-12)
    np.testing.assert_allclose(lp.grad(lp.compile(f), argnums=1)(x, w), x.T @ c, rtol=1e-12)
    # the compiled gradient is cached per signature
    df(x, w)
    df(x, w)
    assert len(df._compiled._cache) == 1


def test_same_value_passed_twice_and_nested_perturbations():
    x = R(3)
    # d/da sum(a * b) at a = b = x is b: the argument is an alias, not x itself
    inner = lp.grad(lambda a, b: lp.sum(a * b))
    np.testing.assert_allclose(lp.compile(lambda x: inner(x, x))(x), x)
    # d/dx [d/dy (x * y)](y = x) = d/dx x = 1, not 2
    outer = lp.grad(lambda x: lp.grad(lambda y: x * y)(x))
    np.testing.assert_allclose(outer(np.float64(0.7)), 1.0)


# -- second derivatives --------------------------------------------------------------------------
SMOOTH = [
    ("exp", lp.exp, R), ("log", lp.log, P), ("sqrt", lp.sqrt, P), ("rsqrt", lp.rsqrt, P),
    ("reciprocal", lp.reciprocal, P), ("tanh", lp.tanh, R), ("sigmoid", lp.sigmoid, R),
    ("erf", lp.erf, R), ("sin", lp.sin, R), ("cos", lp.cos, R), ("square", lp.square, R),
    ("pow", lambda x: x ** 2.5 + 1.5 ** x, P), ("div", lambda x: x / (1 + x * x), R),
    ("gelu", lp.gelu, R), ("gelu-tanh", lambda x: lp.gelu(x, approximate=True), R),
    ("softplus", lambda x: lp.log(1 + lp.exp(x)), R),
    ("poly", lambda x: x * x * x - 2 * x, R),
]


@pytest.mark.parametrize("name,fn,sample", SMOOTH, ids=[c[0] for c in SMOOTH])
def test_second_derivative_of_scalar_functions(name, fn, sample):
    x = np.float64(sample())
    d1 = lp.grad(fn)
    d2 = lp.trace(lp.grad(d1), x)
    first = lp.trace(d1, x)
    h = 1e-5
    fd = (interpret(first, x + h)[0] - interpret(first, x - h)[0]) / (2 * h)
    got = interpret(d2, x)[0]
    assert abs(got - fd) <= 1e-6 * max(1.0, abs(fd)), (got, fd)


def test_second_derivatives_compiled():
    """grad(grad(f)) compiled, for a sum of the smooth functions of one variable each."""
    xs = [np.float64(s()) for _, _, s in SMOOTH]

    def total(x):
        return sum(fn(x * 0 + xi) * (x - xi + 1) ** 2 for (_, fn, _), xi in zip(SMOOTH, xs))
    d2 = lp.grad(lp.grad(total))
    x0 = np.float64(0.3)
    first = lp.trace(lp.grad(total), x0)
    h = 1e-5
    fd = (interpret(first, x0 + h)[0] - interpret(first, x0 - h)[0]) / (2 * h)
    got = d2(x0)
    np.testing.assert_allclose(got, interpret(lp.trace(d2, x0), x0)[0], rtol=1e-9)
    assert abs(got - fd) <= 1e-6 * max(1.0, abs(fd)), (got, fd)


def _convnet(params, x, labels):
    h = lp.conv2d(x, params["c1"], params["b1"], padding=1)
    h = lp.max_pool2d(lp.tanh(h), 2)
    h = lp.conv2d(h, params["c2"], stride=2, padding=1, groups=2)
    h = lp.avg_pool2d(lp.gelu(h), 2, padding=1)
    h = h.reshape(h.shape[0], -1)
    e = lp.take(params["emb"], labels, axis=0)       # an embedding lookup
    logits = lp.softmax(h @ params["fc"] + e, axis=-1) * 3
    return lp.cross_entropy(logits, labels) + lp.sum(lp.square(params["emb"][1:, ::2]))


def _convnet_args():
    params = {"c1": 0.5 * R(4, 2, 3, 3), "b1": R(4), "c2": 0.5 * R(4, 2, 3, 3),
              "fc": R(4 * 2 * 2, 3), "emb": R(3, 3)}
    return params, R(2, 2, 6, 6), np.array([2, 0])


def test_hessian_vector_product_closure_and_compiled():
    """hvp(p, v) = d/dp <grad f(p), v>, written as in JAX (the inner function closes over v),
    against finite differences of grad f along v; interpreted and compiled."""
    params, x, labels = _convnet_args()
    leaves, tree = lp.frontends.pytree.tree_flatten(params)
    v = lp.frontends.pytree.tree_unflatten(tree, [R(*a.shape) for a in leaves])
    f = lambda p: _convnet(p, x, labels)  # noqa: E731
    gf = lp.grad(f)

    def hvp(p, v):
        def dot(p):
            g = gf(p)
            return sum(lp.sum(g[k] * v[k]) for k in sorted(p))
        return lp.grad(dot)(p)
    got = lp.compile(hvp)(params, v)
    hv_graph = lp.trace(hvp, params, v)
    text = str(hv_graph)
    for op in ("pad", "scatter_add", "max_pool2d_grad", "max_pool2d_select", "avg_pool2d_grad",
               "conv2d_weight_grad"):
        assert f"= {op}[" in text, op
    assert lp.ir.parse(text) == hv_graph
    vl = lp.frontends.pytree.tree_flatten(v)[0]
    interp = interpret(hv_graph, *leaves, *vl)
    g_graph = lp.trace(gf, params)
    h = 1e-5
    plus = interpret(g_graph, *[a + h * d for a, d in zip(leaves, vl)])
    minus = interpret(g_graph, *[a - h * d for a, d in zip(leaves, vl)])
    for k, a, b, p_, m_ in zip(sorted(params), lp.frontends.pytree.tree_flatten(got)[0], interp,
                               plus, minus):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10, err_msg=k)
        # finite differences carry ~1e-7 of noise relative to the array's scale
        np.testing.assert_allclose(a, (p_ - m_) / (2 * h), rtol=1e-5,
                                   atol=1e-6 * np.abs(a).max(), err_msg=k)


def test_stop_gradient_blocks_the_gradient_and_softmax_needs_no_max_gradient():
    x = np.array([0.3, -1.2, 2.0], np.float64)
    g = lp.grad(lambda v: lp.sum(v * lp.stop_gradient(v)))(x)
    np.testing.assert_allclose(g, x)                  # d/dv (v * c) with c = v held fixed
    traced = lp.trace(lp.grad(lambda v: lp.sum(lp.log_softmax(v) * np.arange(3.0))), x)
    assert "max[" in str(traced) and "argmax" not in str(traced)
    assert str(traced).count("max[") == 1             # the forward's shift, no gradient of it
