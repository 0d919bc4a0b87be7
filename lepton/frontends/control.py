"""Control flow, traced into ops with regions (lepton/ir/ops/control.py), as in jax.lax:

    carry, ys = lp.scan(f, init, xs, length=None, reverse=False)   # f(carry, x) -> (carry, y)
    carry = lp.fori_loop(lower, upper, body, init)                 # body(i, carry) -> carry
    carry = lp.while_loop(cond_fn, body, init)                     # cond_fn(carry) -> bool[]
    out = lp.cond(pred, true_fn, false_fn, *operands)              # pred: a 0-d bool tensor

Carries, xs, ys and operands are pytrees of tensors (or arrays and numbers). Each body is traced
once, whatever the trip count; what it reads from enclosing traces becomes operands of the op
(see region.py). A carry must keep its structure and types: an error names the op, the leaf and
the user's line. Python numbers in `init` are weak (they take the dtype of what they meet, and
a body may return numbers for them). ys stack on a new leading axis; a scan with `reverse=True`
runs from the last x to the first and still stacks y[t] at t. `fori_loop`'s `i` is an i64 0-d
tensor running from lower to upper (Python ints); it is a scan over a counter, so it
differentiates like one. `while_loop` cannot be differentiated (its trip count is data).
"""
from __future__ import annotations

import numpy as np

from ..ir.types import TensorType, bool_
from .pytree import tree_flatten, tree_paths, tree_unflatten
from .region import trace_region, unify
from .trace import graph_name
from .tensor import Tensor, fail, graph_of, is_weak, lift, source_loc, value_in

__all__ = ["scan", "fori_loop", "while_loop", "cond"]


def _leaves(tree, what: str, op: str):
    leaves, treedef = tree_flatten(tree)
    graph_of(*leaves)  # inside a trace, no leaked tensors
    try:
        tensors = [lift(x) for x in leaves]
    except TypeError as e:
        fail(op, f"{what}: {e}", TypeError)
    return tensors, treedef, [is_weak(x) for x in leaves], tree_paths(tree)


def _check_carry(op, init_tree, init_types, paths, tree, leaves):
    """The carry a body returns must have init's structure and types."""
    if tree != init_tree:
        fail(op, f"the body returned a carry of structure {tree}, but init has {init_tree}",
             TypeError)
    for p, t, x in zip(paths, init_types, leaves):
        if x.type != t:
            fail(op, f"the carry changed type: carry{p} is {t} in init but the body returned "
                 f"{x.type}", TypeError)


def _op(host, name, operands, **attrs):
    loc = source_loc()
    return host.add(name, [value_in(t, host) for t in operands], loc=loc, **attrs)


def _results(host, v, first: int, n: int) -> list[Tensor]:
    return [Tensor(host.add("get", [v], loc=v.loc, index=first + k), host) for k in range(n)]


def _carry_dtypes(types):
    """Numbers a body returns for the carry take init's dtypes."""
    return lambda tree, leaves: [t.dtype for t in types] + [None] * (len(leaves) - len(types))


def scan(f, init, xs=None, length=None, reverse=False, *, _op_name="scan"):
    """jax.lax.scan: returns (final carry, ys). See the module docstring."""
    op = _op_name
    carry, init_tree, weak, paths = _leaves(init, "init", op)
    seqs, xs_tree, _, xpaths = _leaves(xs, "xs", op)
    host = graph_of(*carry, *seqs)
    for p, x in zip(xpaths, seqs):
        if x.ndim == 0:
            fail(op, f"xs{p} is a 0-d tensor; xs are scanned over their leading axis", TypeError)
    lengths = {x.shape[0] for x in seqs}
    if length is not None:
        lengths.add(int(length))
    if len(lengths) != 1:
        fail(op, "xs must share one leading length (and match length=), got "
             + ", ".join(f"xs{p}: {x.shape[0]}" for p, x in zip(xpaths, seqs))
             + (f", length={length}" if length is not None else "")
             if lengths else "xs is empty: give length=", ValueError)
    n = lengths.pop()
    types = [t.type for t in carry]
    slices = [TensorType(x.dtype, x.shape[1:]) for x in seqs]
    nk = len(carry)

    def body(*params):
        c = tree_unflatten(init_tree, params[:nk])
        x = tree_unflatten(xs_tree, params[nk:])
        out = f(c, x)
        if not isinstance(out, tuple) or len(out) != 2:
            fail(op, f"the body must return a pair (carry, y), got {type(out).__name__}",
                 TypeError)
        return out

    r = trace_region(body, types + slices, weak + [False] * len(seqs), graph_name(f),
                     lambda ps: ps, _carry_dtypes(types))
    out_tree = r.out_tree
    if out_tree.kind != "tuple" or len(out_tree.children) != 2:
        fail(op, "the body must return a pair (carry, y)", TypeError)
    c_tree, y_tree = out_tree.children
    _check_carry(op, init_tree, types, paths, c_tree, r.outputs[:c_tree.num_leaves])
    consts = [Tensor(v, host) for v in r.consts]
    v = _op(host, "scan", consts + carry + seqs, body=r.graph, length=n, reverse=bool(reverse),
            num_consts=len(consts), num_carry=nk)
    outs = _results(host, v, 0, len(r.graph.outputs))
    return tree_unflatten(init_tree, outs[:nk]), tree_unflatten(y_tree, outs[nk:])


def fori_loop(lower, upper, body, init):
    """body(i, carry) -> carry for i in range(lower, upper) (Python ints): a scan over i."""
    for name, b in (("lower", lower), ("upper", upper)):
        if isinstance(b, Tensor) or not isinstance(b, (int, np.integer)) or isinstance(b, bool):
            fail("fori_loop", f"{name} must be a Python int (the trip count is static), got "
                 f"{type(b).__name__}", TypeError)

    def step(c, _):
        i, carry = c
        return (i + 1, body(i, carry)), None
    step.__name__ = graph_name(body)
    start = lift(np.array(int(lower), np.int64))
    (_, carry), _ = scan(step, (start, init), None, length=max(int(upper) - int(lower), 0),
                         _op_name="fori_loop")
    return carry


def while_loop(cond_fn, body, init):
    """Runs carry = body(carry) while cond_fn(carry) (a bool 0-d tensor) holds."""
    op = "while_loop"
    carry, init_tree, weak, paths = _leaves(init, "init", op)
    host = graph_of(*carry)
    types = [t.type for t in carry]
    unflatten = lambda ps: (tree_unflatten(init_tree, ps),)  # noqa: E731
    c = trace_region(cond_fn, types, weak, "cond", unflatten)
    if len(c.outputs) != 1 or c.outputs[0].type != TensorType(bool_, ()):
        fail(op, "cond_fn must return one bool 0-d tensor, got "
             + ", ".join(str(t.type) for t in c.outputs), TypeError)
    b = trace_region(body, types, weak, "body", unflatten, _carry_dtypes(types))
    _check_carry(op, init_tree, types, paths, b.out_tree, b.outputs)
    consts = [Tensor(v, host) for v in unify([c, b])]
    v = _op(host, "while_loop", consts + carry, cond=c.graph, body=b.graph,
            num_consts=len(consts))
    return tree_unflatten(init_tree, _results(host, v, 0, len(carry)))


def cond(pred, true_fn, false_fn, *operands):
    """true_fn(*operands) if pred else false_fn(*operands); both must return the same types."""
    op = "cond"
    p = lift(pred)
    if p.type != TensorType(bool_, ()):
        fail(op, f"the predicate must be a bool 0-d tensor, got {p.type}", TypeError)
    ops, tree, weak, _ = _leaves(operands, "operands", op)
    host = graph_of(p, *ops)
    types = [t.type for t in ops]
    unflatten = lambda ps: tree_unflatten(tree, ps)  # noqa: E731
    t = trace_region(true_fn, types, weak, "true_branch", unflatten)
    f = trace_region(false_fn, types, weak, "false_branch", unflatten,
                     lambda tr, leaves: [x.dtype for x in t.outputs][:len(leaves)])
    if t.out_tree != f.out_tree or [x.type for x in t.outputs] != [x.type for x in f.outputs]:
        fail(op, f"the branches return different types: true_fn gives {t.out_tree} of "
             f"{[str(x.type) for x in t.outputs]}, false_fn {f.out_tree} of "
             f"{[str(x.type) for x in f.outputs]}", TypeError)
    consts = [Tensor(v, host) for v in unify([t, f])]
    v = _op(host, "cond", [p] + consts + ops, true_branch=t.graph, false_branch=f.graph)
    return tree_unflatten(t.out_tree, _results(host, v, 0, len(t.outputs)))
