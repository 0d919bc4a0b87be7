"""The ONNX op table: op type -> `Rule` (converter and accepted attributes), over the traced ops
of lepton.frontends (no IR op of its own). Neural-network converters live in neural.py.

    >>> TABLE["Relu"].fn(node)                  # -> lp.relu(node.x(0))
    >>> TABLE["Gemm"].attrs                     # ('alpha', 'beta', 'transA', 'transB')

Semantics follow the ONNX operator docs, per opset where they changed (Softmax's axis before 13;
Squeeze, Unsqueeze, Split, ReduceSum taking axes as inputs from 13, the other reductions
from 18; Clip's bounds as inputs from 11; Slice's from 10). Inputs that fix shapes (Reshape's
shape, Slice's starts...) are listed in each Rule's `consts`: they must be computable from
constants, or depend on graph inputs that the loader then specialises on their value; Gather's
indices may be computed. Op families live in their own modules: neural.py, elementwise.py,
indexing.py, integer.py, attention.py (also normalisations and losses), flex_attention.py,
recurrent.py, control.py, casts.py (Cast, CastLike, BitCast), quantize.py, optional.py,
misc.py. Ops of other domains than the default one name theirs in their Rule (FlexAttention:
ai.onnx.preview, Binarizer: ai.onnx.ml).
"""
from __future__ import annotations

import functools
import math

import numpy as np

from ...ir.types import float64, int64
from .. import nn_ops, ops, shapes
from ..tensor import Tensor, cast, constant
from . import (attention, casts, control, elementwise as ew, flex_attention, indexing, integer,
               misc, neural, optional, quantize, random_ops, recurrent, resample, sampling)
from .node import ONNX_DTYPES, Rule


# -- elementwise -------------------------------------------------------------------------------
def unary(f):
    return lambda n: f(n.x(0))


def binary(f):
    return lambda n: f(n.x(0), n.x(1))


def variadic(f):
    return lambda n: functools.reduce(f, n.xs())


def _float_truncated_quotient(a: Tensor, b: Tensor) -> Tensor:
    """a / b rounded toward zero for floats, through float64 and int64 (the cast truncates)."""
    q = ops.divide(cast(a, float64), cast(b, float64))
    return cast(cast(q, int64), a.dtype)


def div(n) -> Tensor:
    a, b = n.x(0), n.x(1)
    # integer Div truncates toward zero, as C and onnxruntime do (exact: integer.py)
    return ops.divide(a, b) if a.dtype.is_float else integer.truncated_divide(a, b)


def mod(n) -> Tensor:
    """fmod=1: C's fmod (the sign of a); fmod=0: Python's % (the sign of b)."""
    a, b = n.x(0), n.x(1)
    if not a.dtype.is_float:
        return integer.c_remainder(a, b) if n.attr("fmod", 0) else ops.remainder(a, b)
    if not n.attr("fmod", 0):                         # np.mod: a - floor(a / b) * b, and
        r = a - ew.floor(a / b) * b                   # a, or b, for an infinite b
        differ = (a != 0) & ((a < 0) != (b < 0))
        inf = constant(np.array(np.inf, a.dtype.np))
        return ops.where((ops.abs(b) == inf) & (ops.abs(a) < inf), ops.where(differ, b, a), r)
    return a - _float_truncated_quotient(a, b) * b


def pow_(n) -> Tensor:
    """Pow(X, Y): the result has X's type; Y may have another type."""
    a, b = n.x(0), n.x(1)
    e = n.maybe_const(1)
    if e is not None and e.size == 1 and e.ndim <= a.ndim:   # a constant exponent stays a
        # scalar (2 becomes square); it must not add dims by broadcasting
        e = e.reshape(()).item()
        if a.dtype.is_float:
            return ops.power(a, float(e))
        if float(e).is_integer() and e >= 0:
            return ops.power(a, int(e))
    if a.dtype.is_float:
        return ops.power(a, cast(b, a.dtype))
    return cast(ops.power(cast(a, float64), cast(b, float64)), a.dtype)


def clip(n) -> Tensor:
    """Bounds are attributes `min`/`max` before opset 11, optional inputs 1 and 2 after."""
    x = n.x(0)
    if n.opset < 11:
        return ops.clip(x, n.attr("min"), n.attr("max"))
    return ops.clip(x, n.opt(1), n.opt(2))


def leaky_relu(n) -> Tensor:
    x = n.x(0)
    return ops.where(x < 0, x * n.attr("alpha", 0.01), x)


def elu(n) -> Tensor:
    x = n.x(0)
    return ops.where(x > 0, x, n.attr("alpha", 1.0) * (ops.exp(x) - 1.0))


def hard_sigmoid(n) -> Tensor:
    x = n.x(0)
    return ops.clip(x * n.attr("alpha", 0.2) + n.attr("beta", 0.5), 0.0, 1.0)


def hard_swish(n) -> Tensor:
    x = n.x(0)
    return x * ops.clip(x * (1.0 / 6.0) + 0.5, 0.0, 1.0)


def mean_of(n) -> Tensor:
    xs = n.xs()
    return functools.reduce(ops.add, xs) / float(len(xs))


# -- reductions --------------------------------------------------------------------------------
def reduction(f):
    """ReduceX: axes from the attribute (older opsets) or input 1; none means all axes, or
    the identity with noop_with_empty_axes=1."""
    def rule(n) -> Tensor:
        x = n.x(0)
        axes = n.attr("axes")
        if axes is None:
            axes = n.ints(1)
        if not axes:
            if n.attr("noop_with_empty_axes", 0):
                return x
            axes = None
        return f(x, None if axes is None else tuple(axes), bool(n.attr("keepdims", 1)))
    return rule


def _mean(x, axes, keep):
    y = ops.mean(x, axes, keepdims=keep)
    return y if x.dtype.is_float else cast(y, x.dtype)


def _extreme(f, sign: int):
    """ReduceMax (sign -1) / ReduceMin (+1): over an empty axis ONNX gives the identity, the
    lowest (highest) value of the type: -inf / +inf, the integer bounds, False / True."""
    def reduce(x, axes, keep):
        ax = range(x.ndim) if axes is None else [shapes.norm_axis(a, x.ndim, "Reduce")
                                                for a in axes]
        if all(x.shape[a] for a in ax):
            return f(x, axes, keepdims=keep)
        shape = tuple(1 if a in ax else d for a, d in enumerate(x.shape) if keep or a not in ax)
        t = x.dtype.np
        if x.dtype.name == "bool":
            ident = sign > 0
        elif np.issubdtype(t, np.floating):
            ident = sign * np.inf
        else:
            ident = np.iinfo(t).max if sign > 0 else np.iinfo(t).min
        return constant(np.full(shape, ident, t))
    return reduce


REDUCTIONS = {
    "ReduceSum": lambda x, a, k: ops.sum(x, a, x.dtype, keepdims=k),
    "ReduceMean": _mean,
    "ReduceMax": _extreme(ops.max, -1),
    "ReduceMin": _extreme(ops.min, 1),
    "ReduceProd": lambda x, a, k: ops.prod(x, a, x.dtype, keepdims=k),
    "ReduceL1": lambda x, a, k: ops.sum(ops.abs(x), a, x.dtype, keepdims=k),
    "ReduceL2": lambda x, a, k: ops.sqrt(ops.sum(ops.square(x), a, keepdims=k)),
    "ReduceSumSquare": lambda x, a, k: ops.sum(ops.square(x), a, x.dtype, keepdims=k),
    "ReduceLogSumExp": lambda x, a, k: ops.logsumexp(x, a, keepdims=k),
    "ReduceLogSum": lambda x, a, k: ops.log(ops.sum(x, a, keepdims=k)),
}


def arg_reduce(sign: int):
    """ArgMax (sign 1) / ArgMin (-1, the ArgMax of -x); select_last_index searches the
    reversed axis."""
    def rule(n) -> Tensor:
        x = n.x(0)
        x = x if sign > 0 else -x
        axis = shapes.norm_axis(n.attr("axis", 0), x.ndim, n.op_type)
        keep = bool(n.attr("keepdims", 1))
        if not n.attr("select_last_index", 0):
            return ops.argmax(x, axis, keepdims=keep)
        rev = shapes.slice_axis(x, axis, slice(None, None, -1))
        return (x.shape[axis] - 1) - ops.argmax(rev, axis, keepdims=keep)
    return rule


# -- shapes ------------------------------------------------------------------------------------
def flatten(n) -> Tensor:
    x = n.x(0)
    axis = n.attr("axis", 1)
    axis = axis + x.ndim if axis < 0 else axis
    if not 0 <= axis <= x.ndim:
        n.invalid(f"axis {n.attr('axis')} is out of range for {x.type}")
    return x.reshape(math.prod(x.shape[:axis]), math.prod(x.shape[axis:]))


def reshape(n) -> Tensor:
    """0 copies the input's dim (unless allowzero=1), -1 is inferred."""
    x, shape = n.x(0), n.ints(1)
    if not n.attr("allowzero", 0):
        shape = tuple(x.shape[i] if s == 0 else s for i, s in enumerate(shape))
    return x.reshape(shape)


def transpose(n) -> Tensor:
    x = n.x(0)
    return ops.transpose(x, n.attr("perm"))


def _axes(n, i: int):
    """Axes given as attribute (before opset 13) or as input i."""
    axes = n.attr("axes")
    return tuple(axes) if axes is not None else n.ints(i)


def squeeze(n) -> Tensor:
    return ops.squeeze(n.x(0), _axes(n, 1))


def unsqueeze(n) -> Tensor:
    axes = _axes(n, 1)
    if axes is None:
        n.invalid("axes are required")
    return ops.expand_dims(n.x(0), axes)


def concat(n) -> Tensor:
    if n.attr("axis") is None:
        n.invalid("attribute 'axis' is required")
    return ops.concatenate(n.xs(), axis=n.attr("axis"))


def split(n) -> list[Tensor]:
    """Sizes from the `split` attribute (< 13) or input, else n_outputs (or num_outputs,
    opset 18) parts, the last one smaller when the axis does not divide evenly."""
    x = n.x(0)
    axis = shapes.norm_axis(n.attr("axis", 0), x.ndim, "Split")
    dim = x.shape[axis]
    sizes = n.attr("split")
    if sizes is None:
        sizes = n.ints(1)
    if sizes is None:
        k = n.attr("num_outputs", n.n_outputs)
        chunk = -(-dim // k)
        sizes = [chunk] * (k - 1) + [dim - chunk * (k - 1)]
    sizes = [int(s) for s in sizes]
    if sum(sizes) != dim or min(sizes) < 0 or len(sizes) != n.n_outputs:
        n.invalid(f"cannot split axis {axis} of {x.type} into sizes {sizes} "
                  f"for {n.n_outputs} outputs")
    return ops.split(x, list(np.cumsum(sizes)[:-1]), axis)


def slice_(n) -> Tensor:
    """Python slicing per axis: ONNX clamps starts/ends exactly as slice.indices does."""
    x = n.x(0)
    if n.opset < 10:
        starts, ends, axes, steps = n.attr("starts"), n.attr("ends"), n.attr("axes"), None
    else:
        starts, ends, axes, steps = n.ints(1), n.ints(2), n.ints(3), n.ints(4)
    axes = range(len(starts)) if axes is None else axes
    steps = [1] * len(starts) if steps is None else steps
    if not len(starts) == len(ends) == len(axes) == len(steps):
        n.invalid("starts, ends, axes and steps must have the same length")
    key = [slice(None)] * x.ndim
    for a, b, e, s in zip(axes, starts, ends, steps):
        if s == 0:
            n.invalid("steps must not be 0")
        key[shapes.norm_axis(a, x.ndim, "Slice")] = slice(b, e, s)
    return x[tuple(key)]


def gather(n) -> Tensor:
    x, idx = n.x(0), n.x(1)
    const = n.maybe_const(1)   # constant indices are bounds-checked now
    return shapes.gather(x, idx if const is None else const, n.attr("axis", 0), "Gather")


def expand(n) -> Tensor:
    x = n.x(0)
    return ops.broadcast_to(x, np.broadcast_shapes(x.shape, n.ints(1)))


def tile(n) -> Tensor:
    """x repeated along each axis: x viewed as (1, d0, 1, d1...), broadcast to (r0, d0, r1,
    d1...) and flattened pairwise."""
    x, reps = n.x(0), n.ints(1)
    if len(reps) != x.ndim:
        n.invalid(f"repeats {list(reps)} do not match {x.type}")
    inter = tuple(v for d in x.shape for v in (1, d))
    big = tuple(v for r, d in zip(reps, x.shape) for v in (r, d))
    y = ops.broadcast_to(x.reshape(inter), big)
    return y.reshape(tuple(r * d for r, d in zip(reps, x.shape)))


def pad(n) -> Tensor:
    """Pad (constant, edge, reflect, wrap); negative pads crop. Edge/reflect/wrap gather
    along each axis with the index map np.pad gives an arange."""
    x = n.x(0)
    mode = n.attr("mode", "constant")
    if n.opset < 11:
        pads, value, axes = n.attr("pads"), n.attr("value", 0.0), None
    else:
        pads, axes = n.ints(1), n.ints(3)
        value = n.const(2)
        value = 0 if value is None or value.size == 0 else value.reshape(-1)[0].item()
    axes = list(range(x.ndim)) if axes is None else [shapes.norm_axis(a, x.ndim, "Pad")
                                                      for a in axes]
    if len(pads) != 2 * len(axes):
        n.invalid(f"pads must have {2 * len(axes)} entries, got {list(pads)}")
    lo, hi = [0] * x.ndim, [0] * x.ndim
    for k, a in enumerate(axes):
        lo[a], hi[a] = pads[k], pads[k + len(axes)]
    crop = tuple(slice(max(-a, 0), d - max(-b, 0)) for a, b, d in zip(lo, hi, x.shape))
    x = x[crop]
    lo, hi = [max(a, 0) for a in lo], [max(b, 0) for b in hi]
    if mode == "constant":
        y = neural.pad_zeros(x, lo, hi)
        if value != 0 and (any(lo) or any(hi)):
            # where the input lies, as a mask over the padded axes only (1 on the others)
            dims = [d if a or b else 1 for a, b, d in zip(lo, hi, x.shape)]
            inside = np.pad(np.ones(dims, bool), list(zip(lo, hi)))
            y = ops.where(inside, y, constant(np.array(value, y.dtype.np)))
        return y
    if mode not in ("edge", "reflect", "wrap"):
        n.invalid(f"unknown mode '{mode}'")
    for a in range(x.ndim):
        if lo[a] or hi[a]:
            x = ops.take(x, np.pad(np.arange(x.shape[a]), (lo[a], hi[a]), mode=mode), axis=a)
    return x


# -- creation ----------------------------------------------------------------------------------
_DTYPES = {d.np for d in ONNX_DTYPES.values()}


def constant_(n) -> Tensor:
    for key, dtype in (("value", None), ("value_float", np.float32), ("value_int", np.int64),
                       ("value_floats", np.float32), ("value_ints", np.int64)):
        if key in n.attrs:
            arr = np.asarray(n.attrs[key], dtype=dtype)
            if arr.dtype not in _DTYPES:
                n.unsupported(f"a constant of dtype {arr.dtype} is not supported")
            return constant(arr)
    n.invalid("needs one of the attributes value, value_float(s), value_int(s)")


def shape(n) -> Tensor:
    x = n.x(0)
    return constant(np.array(x.shape[n.attr("start", 0):n.attr("end", None)], np.int64))


def size(n) -> Tensor:
    return constant(np.array(n.x(0).size, np.int64))


def constant_of_shape(n) -> Tensor:
    value = n.attr("value")
    value = np.zeros((), np.float32) if value is None else np.asarray(value).reshape(())
    return ops.broadcast_to(constant(value), n.ints(0))


def range_(n) -> Tensor:
    start, limit, delta = (n.const(i).reshape(()) for i in range(3))
    if delta == 0:
        n.invalid("delta must not be 0")
    count = max(math.ceil((float(limit) - float(start)) / float(delta)), 0)
    return constant((start + delta * np.arange(count)).astype(start.dtype))


def identity(n) -> Tensor:
    return n.x(0)


# -- the table ---------------------------------------------------------------------------------
_POOL = ("auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "strides")
_REDUCE = ("axes", "keepdims", "noop_with_empty_axes")
_ARG = ("axis", "keepdims", "select_last_index")
_RNN = ("activation_alpha", "activation_beta", "activations", "clip", "direction",
        "hidden_size", "layout")

# a convolution's window attributes (Conv, ConvInteger, QLinearConv)
WINDOW = ("auto_pad", "dilations", "group", "kernel_shape", "pads", "strides")


TABLE: dict[str, Rule] = {
    # arithmetic and math
    "Add": Rule(binary(ops.add)), "Sub": Rule(binary(ops.subtract)),
    "Mul": Rule(binary(ops.multiply)), "Div": Rule(div), "Mod": Rule(mod, ("fmod",)),
    "Pow": Rule(pow_),
    # integer bits
    "BitShift": Rule(integer.bit_shift, ("direction",)),
    "BitwiseAnd": Rule(integer.bitwise(ops.bitwise_and)),
    "BitwiseOr": Rule(integer.bitwise(ops.bitwise_or)),
    "BitwiseXor": Rule(integer.bitwise(ops.bitwise_xor)),
    "BitwiseNot": Rule(integer.bitwise_not),
    "Neg": Rule(unary(ops.negative)), "Abs": Rule(unary(ops.abs)),
    "Exp": Rule(unary(ops.exp)), "Log": Rule(unary(ops.log)), "Sqrt": Rule(unary(ops.sqrt)),
    "Reciprocal": Rule(unary(ops.reciprocal)), "Tanh": Rule(unary(ops.tanh)),
    "Sigmoid": Rule(unary(ops.sigmoid)), "Erf": Rule(unary(ops.erf)),
    "Sin": Rule(unary(ops.sin)), "Cos": Rule(unary(ops.cos)),
    "Max": Rule(variadic(ops.maximum)), "Min": Rule(variadic(ops.minimum)),
    "Sum": Rule(variadic(ops.add)), "Mean": Rule(mean_of),
    "Clip": Rule(clip, ("min", "max")),
    # activations
    "Relu": Rule(unary(ops.relu)), "LeakyRelu": Rule(leaky_relu, ("alpha",)),
    "Elu": Rule(elu, ("alpha",)), "Softplus": Rule(unary(ew.softplus)),
    "HardSigmoid": Rule(hard_sigmoid, ("alpha", "beta")), "HardSwish": Rule(hard_swish),
    "Gelu": Rule(neural.gelu, ("approximate",)),
    "Softmax": Rule(neural.softmax(nn_ops.softmax), ("axis",)),
    "LogSoftmax": Rule(neural.softmax(nn_ops.log_softmax), ("axis",)),
    # comparisons and logic
    "Equal": Rule(binary(ops.equal)), "Less": Rule(binary(ops.less)),
    "LessOrEqual": Rule(binary(ops.less_equal)), "Greater": Rule(binary(ops.greater)),
    "GreaterOrEqual": Rule(binary(ops.greater_equal)),
    "Not": Rule(unary(ops.logical_not)), "And": Rule(binary(ops.logical_and)),
    "Or": Rule(binary(ops.logical_or)), "Xor": Rule(binary(ops.logical_xor)),
    "Where": Rule(lambda n: ops.where(n.x(0), n.x(1), n.x(2))),
    "Cast": Rule(casts.cast_, ("to", "saturate", "round_mode")),
    "CastLike": Rule(casts.cast_like, ("saturate", "round_mode")),
    "BitCast": Rule(casts.bit_cast, ("to",)),
    "QuantizeLinear": Rule(quantize.quantize_linear,
                           ("axis", "saturate", "block_size", "output_dtype", "precision")),
    "DequantizeLinear": Rule(quantize.dequantize_linear, ("axis", "block_size", "output_dtype")),
    "MatMulInteger": Rule(quantize.matmul_integer),
    "ConvInteger": Rule(quantize.conv_integer, WINDOW),
    "QLinearMatMul": Rule(quantize.qlinear_matmul),
    "QLinearConv": Rule(quantize.qlinear_conv, WINDOW),
    # linear algebra and neural networks
    "MatMul": Rule(binary(ops.matmul)),
    "Gemm": Rule(neural.gemm, ("alpha", "beta", "transA", "transB")),
    "Conv": Rule(neural.conv, WINDOW),
    "ConvTranspose": Rule(resample.conv_transpose, ("auto_pad", "dilations", "group",
                                                    "kernel_shape", "output_padding",
                                                    "output_shape", "pads", "strides")),
    "Resize": Rule(resample.resize, ("antialias", "axes", "coordinate_transformation_mode",
                                     "cubic_coeff_a", "exclude_outside", "extrapolation_value",
                                     "keep_aspect_ratio_policy", "mode", "nearest_mode"),
                   (1, 2, 3)),
    "Upsample": Rule(resample.upsample, ("mode", "scales"), (1,)),
    "MaxPool": Rule(neural.pool("max"), _POOL + ("storage_order",)),
    "AveragePool": Rule(neural.pool("avg"), _POOL + ("count_include_pad",)),
    "LpPool": Rule(neural.lp_pool, _POOL + ("p",)),
    "MaxUnpool": Rule(neural.max_unpool, ("kernel_shape", "pads", "strides"), (2,)),
    "GlobalAveragePool": Rule(neural.global_pool(ops.mean)),
    "GlobalMaxPool": Rule(neural.global_pool(ops.max)),
    "BatchNormalization": Rule(neural.batch_norm, ("epsilon", "momentum", "training_mode",
                                                   "spatial", "is_test", "consumed_inputs")),
    "LayerNormalization": Rule(neural.layer_norm, ("axis", "epsilon", "stash_type")),
    "Dropout": Rule(neural.dropout, ("ratio", "seed", "is_test"), (1, 2)),
    # reductions
    **{op: Rule(reduction(f), _REDUCE, (1,)) for op, f in REDUCTIONS.items()},
    "ArgMax": Rule(arg_reduce(1), _ARG), "ArgMin": Rule(arg_reduce(-1), _ARG),
    # shapes
    "Identity": Rule(identity), "Flatten": Rule(flatten, ("axis",)),
    "Reshape": Rule(reshape, ("allowzero",), (1,)), "Transpose": Rule(transpose, ("perm",)),
    "Squeeze": Rule(squeeze, ("axes",), (1,)),
    "Unsqueeze": Rule(unsqueeze, ("axes",), (1,)),
    "Concat": Rule(concat, ("axis",)), "Split": Rule(split, ("axis", "split", "num_outputs"), (1,)),
    "Slice": Rule(slice_, ("starts", "ends", "axes"), (1, 2, 3, 4)),
    "Gather": Rule(gather, ("axis",)), "Expand": Rule(expand, (), (1,)), "Tile": Rule(tile, (), (1,)),
    "Pad": Rule(pad, ("mode", "pads", "value"), (1, 2, 3)),
    # constants and shapes as values
    "Constant": Rule(constant_, ("value", "value_float", "value_floats", "value_int",
                                 "value_ints")),
    "Shape": Rule(shape, ("start", "end")), "Size": Rule(size),
    "ConstantOfShape": Rule(constant_of_shape, ("value",), (0,)),
    "Range": Rule(range_, (), (0, 1, 2)),

    # composed elementwise ops (elementwise.py)
    "Floor": Rule(unary(ew.floor)), "Ceil": Rule(unary(ew.ceil)),
    "Round": Rule(unary(ew.round_half_even)), "Sign": Rule(unary(ew.sign)),
    "IsNaN": Rule(unary(ew.isnan)),
    "IsInf": Rule(ew.isinf, ("detect_negative", "detect_positive")),
    "Tan": Rule(unary(ew.tan)), "Sinh": Rule(unary(ew.sinh)), "Cosh": Rule(unary(ew.cosh)),
    "Asin": Rule(unary(ew.asin)), "Acos": Rule(unary(ew.acos)), "Atan": Rule(unary(ew.atan)),
    "Asinh": Rule(unary(ew.asinh)), "Acosh": Rule(unary(ew.acosh)),
    "Atanh": Rule(unary(ew.atanh)),
    "Selu": Rule(ew.selu, ("alpha", "gamma")), "Celu": Rule(ew.celu, ("alpha",)),
    "ThresholdedRelu": Rule(ew.thresholded_relu, ("alpha",)),
    "Shrink": Rule(ew.shrink, ("bias", "lambd")), "Softsign": Rule(unary(ew.softsign)),
    "Mish": Rule(unary(ew.mish)), "Swish": Rule(ew.swish, ("alpha",)),
    "PRelu": Rule(ew.prelu),
    "Binarizer": Rule(ew.binarizer, ("threshold",), domain="ai.onnx.ml"),
    # gathers, scatters, masks (indexing.py)
    "GatherElements": Rule(indexing.gather_elements, ("axis",)),
    "GatherND": Rule(indexing.gather_nd, ("batch_dims",)),
    "ScatterElements": Rule(indexing.scatter_elements, ("axis", "reduction")),
    "ScatterND": Rule(indexing.scatter_nd, ("reduction",)),
    "Scatter": Rule(indexing.scatter_elements, ("axis",)),   # ScatterElements before opset 11
    "Trilu": Rule(indexing.trilu, ("upper",), (1,)),
    "TensorScatter": Rule(indexing.tensor_scatter, ("axis", "mode")),
    "Col2Im": Rule(indexing.col2im, ("dilations", "pads", "strides"), (1, 2)),
    "CumSum": Rule(indexing.cumsum, ("exclusive", "reverse"), (1,)),
    "TopK": Rule(indexing.topk, ("axis", "largest", "sorted"), (1,)),
    "Hardmax": Rule(indexing.hardmax, ("axis",)),
    "OneHot": Rule(indexing.one_hot, ("axis",), (1,)),
    "EyeLike": Rule(indexing.eye_like, ("dtype", "k")),
    "Einsum": Rule(indexing.einsum, ("equation",)),
    "DepthToSpace": Rule(indexing.depth_to_space, ("blocksize", "mode")),
    "SpaceToDepth": Rule(indexing.space_to_depth, ("blocksize", "mode")),
    # attention, normalisations, losses (attention.py)
    "Attention": Rule(attention.attention, (
        "is_causal", "kv_num_heads", "q_num_heads", "qk_matmul_output_mode", "scale",
        "softcap", "softmax_precision", "left_window_size", "right_window_size")),
    "FlexAttention": Rule(flex_attention.flex_attention, ("prob_mod", "scale", "score_mod",
                                                          "softmax_precision"),
                          domain="ai.onnx.preview"),
    "RMSNormalization": Rule(attention.rms_norm, ("axis", "epsilon", "stash_type")),
    "InstanceNormalization": Rule(attention.instance_norm, ("epsilon",)),
    "GroupNormalization": Rule(attention.group_norm, ("epsilon", "num_groups",
                                                      "stash_type")),
    "MeanVarianceNormalization": Rule(attention.mean_variance_norm, ("axes",)),
    "LpNormalization": Rule(attention.lp_norm, ("axis", "p")),
    "NegativeLogLikelihoodLoss": Rule(attention.nll_loss, ("ignore_index", "reduction")),
    "SoftmaxCrossEntropyLoss": Rule(attention.softmax_cross_entropy,
                                    ("ignore_index", "reduction")),
    # small ones (misc.py)
    "HannWindow": Rule(misc.window("hann"), ("output_datatype", "periodic"), (0,)),
    "HammingWindow": Rule(misc.window("hamming"), ("output_datatype", "periodic"), (0,)),
    "BlackmanWindow": Rule(misc.window("blackman"), ("output_datatype", "periodic"), (0,)),
    "CenterCropPad": Rule(misc.center_crop_pad, ("axes",), (1,)),
    "DFT": Rule(misc.dft, ("axis", "inverse", "onesided"), (1, 2)),
    "Det": Rule(misc.det),
    "MelWeightMatrix": Rule(misc.mel_weight_matrix, ("output_datatype",), (0, 1, 2, 3, 4)),
    "TfIdfVectorizer": Rule(misc.tfidf_vectorizer, (
        "max_gram_length", "max_skip_count", "min_gram_length", "mode", "ngram_counts",
        "ngram_indexes", "pool_int64s", "pool_strings", "weights")),
    "STFT": Rule(misc.stft, ("onesided",), (1, 3)),
    "CumProd": Rule(misc.cumprod, ("exclusive", "reverse"), (1,)),
    "ReverseSequence": Rule(misc.reverse_sequence, ("batch_axis", "time_axis")),
    "LRN": Rule(misc.lrn, ("alpha", "beta", "bias", "size")),
    "RotaryEmbedding": Rule(misc.rotary_embedding, ("interleaved", "num_heads",
                                                    "rotary_embedding_dim")),
    # random numbers on lp.random (random_ops.py)
    "RandomUniform": Rule(random_ops.random_uniform, ("dtype", "high", "low", "seed", "shape")),
    "RandomNormal": Rule(random_ops.random_normal, ("dtype", "mean", "scale", "seed", "shape")),
    "RandomUniformLike": Rule(random_ops.random_uniform_like, ("dtype", "high", "low", "seed")),
    "RandomNormalLike": Rule(random_ops.random_normal_like, ("dtype", "mean", "scale", "seed")),
    "Bernoulli": Rule(random_ops.bernoulli, ("dtype", "seed")),
    # sampling grids (sampling.py)
    "AffineGrid": Rule(sampling.affine_grid, ("align_corners",), (1,)),
    "DeformConv": Rule(sampling.deform_conv, ("dilations", "group", "kernel_shape",
                                              "offset_group", "pads", "strides")),
    "RoiAlign": Rule(sampling.roi_align, ("coordinate_transformation_mode", "mode",
                                          "output_height", "output_width", "sampling_ratio",
                                          "spatial_scale")),
    "GridSample": Rule(sampling.grid_sample, ("align_corners", "mode", "padding_mode")),
    # recurrent layers on lp.scan (recurrent.py)
    **{op: Rule(recurrent.recurrent, _RNN + extra) for op, extra in (
        ("RNN", ()), ("GRU", ("linear_before_reset",)), ("LSTM", ("input_forget",)))},
    # optionals holding tensors (optional.py)
    "OptionalGetElement": Rule(optional.get_element),
    "OptionalHasElement": Rule(optional.has_element),
    # control flow (control.py)
    "If": Rule(control.if_, ("then_branch", "else_branch")),
    "Loop": Rule(control.loop_, ("body",), (0, 1)),
    "Scan": Rule(control.scan_, ("body", "directions", "num_scan_inputs", "scan_input_axes",
                                 "scan_input_directions", "scan_output_axes",
                                 "scan_output_directions")),
}
