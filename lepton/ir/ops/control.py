"""Control flow as ops with regions (as in JAX and MLIR): `scan`, `while_loop`, `cond`, and
`get`, which reads one result of them.

A region is a `Graph` held in the op's attributes. It is self-contained: the values of the
enclosing graph that a body reads are explicit operands of the op (closure conversion at trace
time), so the outer graph's dataflow is explicit and the body is a graph every pass knows. An
op with several results has a `TupleType`; `get[index=k]` projects result k.

    scan[body, length, reverse, num_consts, num_carry]  consts..., init..., xs...
        body(consts..., carry..., x slices...) -> (carry..., y slices...)
        result (carry..., ys...), each y stacked on a new leading axis of `length`;
        `reverse` runs t = length-1 .. 0 (ys[t] still belongs to xs[t]), as jax.lax.scan.
    while_loop[cond, body, num_consts]  consts..., init...
        cond(consts..., carry...) -> bool[];  body(consts..., carry...) -> carry...
    cond[true_branch, false_branch]  pred, operands...
        both branches take the operands and return results of the same types.

    %4: (f32[3], f32[5,3]) = scan[length=5, reverse=False, num_consts=1, num_carry=1] %0, %1, %2
      body = graph @step(%0: f32[3], %1: f32[3], %2: f32[3]) { ... }

fori_loop is a scan with an integer counter as its first carry and no xs (see
lepton/frontends/control.py). VJP rules: scan's runs the body's transpose as a reverse scan
over carries the forward scan stacks (`_scan_vjp`), cond's is a cond of the branches' VJPs,
while_loop has none (its trip count is data) and raises GradientError.
"""
from __future__ import annotations

import numpy as np

from ..types import TensorType, TupleType, bool_
from .base import GradientError, OpDef


class TupleCotangent:
    """The cotangent of a tuple-typed value, as the `get`s reading it give it: index -> Value
    (a result nobody differentiated has none)."""

    def __init__(self, type: TupleType, parts: dict):
        self.type, self.parts = type, dict(parts)

    def plus(self, other: "TupleCotangent", e) -> "TupleCotangent":
        parts = dict(self.parts)
        for k, v in other.parts.items():
            parts[k] = v if k not in parts else e.add(parts[k], v)
        return TupleCotangent(self.type, parts)

    def get(self, e, k: int):
        """Result k's cotangent, zeros when none flowed."""
        return self.parts[k] if k in self.parts else e.zeros(self.type.types[k])


# -- type rules ----------------------------------------------------------------------------------
def _signature(region, name: str, expected: list, what: str) -> None:
    got = [v.type for v in region.inputs]
    if len(got) != len(expected):
        raise TypeError(f"region '{name}' takes {len(got)} inputs, the op gives it "
                        f"{len(expected)} ({what})")
    for i, (a, b) in enumerate(zip(got, expected)):
        if a != b:
            raise TypeError(f"region '{name}' input {i} is {a}, the op gives it {b} ({what})")


def _outputs(region, name: str, expected: list | None = None, what: str = "") -> list:
    got = [o.type for o in region.outputs]
    if any(not isinstance(t, TensorType) for t in got):
        raise TypeError(f"region '{name}' returns a tuple; regions return tensors")
    if expected is not None:
        for i, b in enumerate(expected):
            if i >= len(got) or got[i] != b:
                have = got[i] if i < len(got) else "nothing"
                raise TypeError(f"region '{name}' output {i} is {have}, expected {b} ({what})")
    return got


def _counts(attrs, n: int, *names) -> None:
    for k in names:
        if not isinstance(attrs[k], int) or isinstance(attrs[k], bool) or attrs[k] < 0:
            raise TypeError(f"{k} must be a non-negative int, got {attrs[k]!r}")
    if sum(attrs[k] for k in names) > n:
        raise TypeError(f"{' + '.join(names)} exceed the {n} operands")


def _scan_infer(types, a):
    _counts(a, len(types), "num_consts", "num_carry")
    if not isinstance(a["reverse"], bool):
        raise TypeError("reverse must be a bool")
    nc, nk, n = a["num_consts"], a["num_carry"], a["length"]
    carries, xs = list(types[nc:nc + nk]), types[nc + nk:]
    for i, x in enumerate(xs):
        if x.ndim == 0 or x.shape[0] != n:
            raise TypeError(f"xs operand {i} is {x}; its leading axis must be length={n}")
    _signature(a["body"], "body", list(types[:nc]) + carries +
               [TensorType(x.dtype, x.shape[1:]) for x in xs], "consts, carry, x slices")
    outs = _outputs(a["body"], "body", carries, "the carry must keep its type")
    return TupleType(tuple(carries) + tuple(TensorType(y.dtype, (n,) + y.shape)
                                            for y in outs[nk:]))


def _while_infer(types, a):
    _counts(a, len(types), "num_consts")
    carries = list(types[a["num_consts"]:])
    for name in ("cond", "body"):
        _signature(a[name], name, list(types), "consts, carry")
    if _outputs(a["cond"], "cond") != [TensorType(bool_, ())]:
        raise TypeError("region 'cond' must return one bool[]")
    if len(_outputs(a["body"], "body", carries, "the carry must keep its type")) != len(carries):
        raise TypeError("region 'body' must return exactly the carry")
    return TupleType(tuple(carries))


def _cond_infer(types, a):
    if types[0] != TensorType(bool_, ()):
        raise TypeError(f"the predicate must be bool[], got {types[0]}")
    for name in ("true_branch", "false_branch"):
        _signature(a[name], name, list(types[1:]), "operands")
    outs = _outputs(a["true_branch"], "true_branch")
    if _outputs(a["false_branch"], "false_branch", outs, "as true_branch's") != outs:
        raise TypeError("false_branch returns more results than true_branch")
    return TupleType(tuple(outs))


def _get_infer(types, a):
    (t,) = types
    if not isinstance(t, TupleType):
        raise TypeError(f"get reads a result of a tuple-typed op, got {t}")
    if not isinstance(a["index"], int) or not 0 <= a["index"] < len(t.types):
        raise TypeError(f"index={a['index']!r} out of range for {t}")
    return t.types[a["index"]]


# -- NumPy references: a Python loop calling the interpreter on the region ------------------------
def _run(region, args):
    from ..interpreter import interpret  # the interpreter imports this table
    return interpret(region, *args)


def _scan_ref(xs, a):
    nc, nk, n = a["num_consts"], a["num_carry"], a["length"]
    consts, carry, seqs = xs[:nc], list(xs[nc:nc + nk]), xs[nc + nk:]
    body = a["body"]
    ys = [np.empty((n,) + o.type.shape, o.type.dtype.np) for o in body.outputs[nk:]]
    for t in (range(n - 1, -1, -1) if a["reverse"] else range(n)):
        outs = _run(body, [*consts, *carry, *(s[t] for s in seqs)])
        carry = outs[:nk]
        for y, o in zip(ys, outs[nk:]):
            y[t] = o
    return tuple(np.array(c) for c in carry) + tuple(ys)


def _while_ref(xs, a):
    consts, carry = list(xs[:a["num_consts"]]), list(xs[a["num_consts"]:])
    while bool(_run(a["cond"], consts + carry)[0]):
        carry = _run(a["body"], consts + carry)
    return tuple(np.array(c) for c in carry)


def _cond_ref(xs, a):
    return tuple(_run(a["true_branch" if bool(xs[0]) else "false_branch"], xs[1:]))


# -- VJP rules -------------------------------------------------------------------------------------
def inline_region(dst, src, args):
    """Appends src's ops to graph dst with src's inputs bound to args; returns src's outputs."""
    from ..graph import Value
    env = dict(zip(src.inputs, args))
    for v in src.nodes:
        if v.op != "input":
            env[v] = Value(v.op, tuple(env[i] for i in v.inputs), v.attrs, v.type, v.loc)
            dst.nodes.append(env[v])
    return [env[o] for o in src.outputs]


def _floats(types) -> list[int]:
    return [i for i, t in enumerate(types) if t.dtype.is_float]


def _region_vjp(e, region, name: str, extra: list, seeded: list[int], wrt: list[int]):
    """A graph computing region's VJP: its inputs are region's, then `extra` (types of inputs
    the caller adds before the cotangents), then one cotangent per output index in `seeded`;
    its outputs are the cotangents of region's inputs at `wrt`. Returns (graph, its emitter,
    the cotangents, the extra inputs); the caller sets the outputs."""
    from ..emit import Emitter
    from ..graph import Graph
    g = Graph(name)
    args = [g.input(v.type) for v in region.inputs]
    more = [g.input(t) for t in extra]
    cts = [g.input(region.outputs[k].type) for k in seeded]
    outs = inline_region(g, region, args)
    sub = Emitter(g)
    seeds: dict = {}
    for k, c in zip(seeded, cts):
        seeds[outs[k]] = c if outs[k] not in seeds else sub.add(seeds[outs[k]], c)
    grads = e.backward(sub, list(g.nodes), seeds, [args[i] for i in wrt])
    return g, sub, grads, more


def _scan_vjp(e, out, ct):
    a = out.attrs
    body, nc, nk, n = a["body"], a["num_consts"], a["num_carry"], a["length"]
    ops = list(out.inputs)
    ctypes, ktypes = [v.type for v in ops[:nc]], [v.type for v in ops[nc:nc + nk]]
    ny = len(body.outputs) - nk
    fC, fk, fy = _floats(ctypes), _floats(ktypes), [nk + k for k in _floats(out.type.types[nk:])]
    fx = [nc + nk + i for i in _floats([v.type for v in ops[nc + nk:]])]
    # the forward scan again, also stacking the carries each step starts from (the residuals)
    from ..graph import Graph
    aug = Graph(body.name)
    aug.inputs, aug.nodes = list(body.inputs), list(body.nodes)
    aug.outputs = list(body.outputs) + list(body.inputs[nc:nc + nk])
    fwd = e.op("scan", *ops, body=aug, length=n, reverse=a["reverse"], num_consts=nc,
               num_carry=nk)
    residuals = [e.op("get", fwd, index=nk + ny + k) for k in range(nk)]
    # the step's transpose: carry (ct of carry, sums of the consts' cts), xs (residual, ct of y)
    g, sub, grads, acc = _region_vjp(e, body, body.name + ".vjp", [ctypes[j] for j in fC],
                                fk + fy, fC + [nc + k for k in fk] + fx)
    gC, gk, gx = grads[:len(fC)], grads[len(fC):len(fC) + len(fk)], grads[len(fC) + len(fk):]
    g.set_outputs(gk + [sub.add(x, y) for x, y in zip(acc, gC)] + gx)
    # reorder the transpose's inputs into scan order: consts, carries, then sliced xs
    args = g.inputs
    na = len(ops)
    primal, extra, cts = args[:na], args[na:na + len(fC)], args[na + len(fC):]
    g.inputs = (primal[:nc] + cts[:len(fk)] + extra + primal[nc:] + cts[len(fk):])
    g.nodes = g.inputs + [v for v in g.nodes if v.op != "input"]  # DCE prunes the rest
    ct_carry = [ct.get(e, k) for k in fk]
    ct_ys = [ct.get(e, k) for k in fy]
    zeros = [e.zeros(ctypes[j]) for j in fC]
    b = e.op("scan", *ops[:nc], *ct_carry, *zeros, *residuals, *ops[nc + nk:], *ct_ys, body=g,
             length=n, reverse=not a["reverse"], num_consts=nc, num_carry=len(fk) + len(fC))
    res = [None] * len(ops)
    for i, k in enumerate(fk):
        res[nc + k] = e.op("get", b, index=i)
    for i, j in enumerate(fC):
        res[j] = e.op("get", b, index=len(fk) + i)
    for i, x in enumerate(fx):
        res[x] = e.op("get", b, index=len(fk) + len(fC) + i)
    return tuple(res)


def _cond_vjp(e, out, ct):
    ops = list(out.inputs[1:])
    fo, fi = _floats(out.type.types), _floats([v.type for v in ops])
    branches = {}
    for name in ("true_branch", "false_branch"):
        g, _, grads, _ = _region_vjp(e, out.attrs[name], out.attrs[name].name + ".vjp", [], fo, fi)
        g.set_outputs(grads)
        branches[name] = g
    c = e.op("cond", out.inputs[0], *ops, *(ct.get(e, k) for k in fo), **branches)
    res = [None] * len(out.inputs)
    for i, k in enumerate(fi):
        res[1 + k] = e.op("get", c, index=i)
    return tuple(res)


def _while_vjp(e, out, ct):
    where = f" at {out.loc}" if out.loc else ""
    raise GradientError(f"cannot differentiate through while_loop{where}: its trip count "
                        "depends on data; use fori_loop or scan with a static trip count")


def _get_vjp(e, out, ct):
    return (TupleCotangent(out.inputs[0].type, {out.attrs["index"]: ct}),)


CONTROL = [
    OpDef("scan", "control", None, ("body", "length", "reverse", "num_consts", "num_carry"),
          _scan_infer, _scan_ref, vjp=_scan_vjp),
    OpDef("while_loop", "control", None, ("cond", "body", "num_consts"), _while_infer,
          _while_ref, vjp=_while_vjp),
    OpDef("cond", "control", None, ("true_branch", "false_branch"), _cond_infer, _cond_ref,
          vjp=_cond_vjp),
    # no kernel: its control op's kernel writes the result straight into the get's buffer
    OpDef("get", "control", 1, ("index",), _get_infer, lambda xs, a: xs[0][a["index"]],
          vjp=_get_vjp, kernel=False),
]
# the attributes of each op that are regions (printed as nested graphs after the op's line)
REGIONS = {"scan": ("body",), "while_loop": ("cond", "body"),
           "cond": ("true_branch", "false_branch")}
