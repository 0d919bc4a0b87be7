"""Two rewrites of the scans a gradient makes (ir/ops/control.py `_scan_vjp`), so a backward loop
does only the work that must happen step by step.

Saved products. The backward body rematerialises the forward step from the carries the forward
scan stacked, matrix products included (an LSTM's h @ W_hh.T: a GEMM per step, the forward's
own). A matmul of the backward body that reads only its consts and xs, where every such xs is a
ys of one forward scan F (or an xs of F) and every const one of F's, is computed by F instead:
F's body gets a copy of the matmul (which CSE merges with the one F already computes) and
returns it as a new ys; the backward body reads it as a new xs. (JAX's `checkpoint_dots`
policy: products are saved, elementwise work is recomputed; a product's only reader, when it is
elementwise on step values, is saved in its place, as an LSTM's pre-activation xp_t + h @ W.T.)

Hoisted accumulations. A carry the body updates as `c + matmul(transpose(P), Q)` (optionally
transposed), with P and Q per-step values (xs, or ys the body returns) and c read nowhere else,
is a sum over steps of rank-K products: one GEMM over the stacked P and Q after the loop computes
it (K becomes length * K), and the loop no longer reads and writes the accumulator each step.
The weight gradient of a recurrence (dW_hh = sum_t dz_t^T h_t) is such a carry.

    g2 = scan_residuals(g, counts)   # counts["saved_products"], counts["hoisted_accumulations"]
"""
from __future__ import annotations

from collections import Counter

from ...ir.graph import Graph, Value
from ...ir.types import TensorType
from .constant_fold import splat_scalar
from .cse import cse
from .dce import dce

_MAX_ROUNDS = 16


def scan_residuals(g: Graph, counts: Counter | None = None) -> Graph:
    """A new graph with products saved by forward scans and accumulations hoisted out of
    scans (g itself when neither applies)."""
    for _ in range(_MAX_ROUNDS):
        g2 = _save_products(g, counts)
        if g2 is None:
            g2 = _hoist_accumulation(g, counts)
        if g2 is None:
            return g
        g = dce(g2)
    return g


# ---- helpers -----------------------------------------------------------------------------------

def _parts(scan: Value):
    a = scan.attrs
    return a["body"], a["num_consts"], a["num_carry"], a["length"]


def _clone(v: Value, env: dict) -> Value:
    ins = tuple(env.get(i, i) for i in v.inputs)
    return v if ins == v.inputs else Value(v.op, ins, v.attrs, v.type, v.loc)


def _body(name: str, inputs, nodes, outputs) -> Graph:
    b = Graph(name)
    b.inputs, b.nodes, b.outputs = list(inputs), list(nodes), list(outputs)
    return b


def _new_input(t: TensorType, loc) -> Value:
    return Value("input", (), {}, t, loc)


def _rebuild(g: Graph, emits: dict) -> Graph:
    """g with the values of `emits[v](out, env)` emitted where v stood; each returns the map of
    old values (v, its gets...) to their replacements, which later values read."""
    out = Graph(g.name)
    out.inputs = list(g.inputs)
    env: dict[Value, Value] = {}
    for v in g.nodes:
        if v in env:
            continue
        if v in emits:
            env.update(emits[v](out, env))
            continue
        w = _clone(v, env)
        out.nodes.append(w)
        env[v] = w
    out.outputs = [env.get(o, o) for o in g.outputs]
    return out


# ---- saved products ----------------------------------------------------------------------------

def _step_only(body: Graph, nc: int, nk: int) -> set:
    """The body's values that depend on no carry (consts, xs, and what is computed from them)."""
    carries = set(body.inputs[nc:nc + nk])
    dep = set(carries)
    for v in body.nodes:
        if any(i in dep for i in v.inputs):
            dep.add(v)
    return {v for v in body.nodes if v not in dep}


def _map_into(f: Value, b: Value) -> dict:
    """B's body inputs (consts and xs) that have an equal value in F's body, step by step."""
    fb, fnc, fnk, fn = _parts(f)
    bb, bnc, bnk, bn = _parts(b)
    if fn != bn:
        return {}
    m = {}
    for i in range(bnc):
        o = b.inputs[i]
        if o in f.inputs[:fnc]:
            m[bb.inputs[i]] = fb.inputs[f.inputs.index(o)]
    fxs = list(f.inputs[fnc + fnk:])
    for j, o in enumerate(b.inputs[bnc + bnk:]):
        inp = bb.inputs[bnc + bnk + j]
        if o.op == "get" and o.inputs[0] is f and o.attrs["index"] >= fnk:
            m[inp] = fb.outputs[o.attrs["index"]]      # F's ys k is its body's output k
        elif o in fxs:
            m[inp] = fb.inputs[fnc + fnk + fxs.index(o)]
    return m


def _cone(v: Value, stop: set) -> list:
    """v and the values it reads back to `stop`, in an order where inputs come first."""
    seen, order = set(), []

    def visit(x):
        if x in seen or x in stop:
            return
        seen.add(x)
        for i in x.inputs:
            visit(i)
        order.append(x)
    visit(v)
    return order


def _save_products(g: Graph, counts) -> Graph | None:
    scans = [v for v in g.nodes if v.op == "scan"]
    for b in scans:
        bb, bnc, bnk, n = _parts(b)
        forwards = {o.inputs[0] for o in b.inputs[bnc + bnk:]
                    if o.op == "get" and o.inputs[0].op == "scan" and o.inputs[0] is not b}
        for f in forwards:
            m = _map_into(f, b)
            from_f = {bb.inputs[bnc + bnk + j] for j, o in enumerate(b.inputs[bnc + bnk:])
                      if o.op == "get" and o.inputs[0] is f}
            inputs = set(bb.inputs)
            step = _step_only(bb, bnc, bnk)
            users = bb.users()
            dots = []
            for v in bb.nodes:
                if v.op != "matmul" or v not in step:
                    continue
                cone = _cone(v, inputs)
                leaves = {i for x in cone for i in x.inputs if i in inputs}
                if not (leaves <= set(m) and leaves & from_f):
                    continue
                # the product's only reader, when elementwise on step values of its shape (an
                # LSTM's xp_t + h @ W.T), is saved instead: it fuses into the forward GEMM
                while len(users[v]) == 1 and v not in bb.outputs:
                    u = users[v][0]
                    if u.opdef.kind != "elementwise" or u.shape != v.shape or u not in step:
                        break
                    ucone = _cone(u, inputs)
                    uleaves = {i for x in ucone for i in x.inputs if i in inputs}
                    if not uleaves <= set(m):
                        break
                    v, cone = u, ucone
                dots.append((v, cone))
            if dots:
                return _apply_save(g, f, b, dots, m, counts)
    return None


def _apply_save(g, f, b, dots, m, counts) -> Graph:
    fb, fnc, fnk, n = _parts(f)
    bb, bnc, bnk, _ = _parts(b)
    # F's body also computes the products and returns them as ys
    env = dict(m)
    nodes = list(fb.nodes)
    extra = []
    for v, cone in dots:
        for x in cone:
            if x not in env:
                env[x] = Value(x.op, tuple(env.get(i, i) for i in x.inputs), x.attrs, x.type,
                               x.loc)
                nodes.append(env[x])
        extra.append(env[v])
    fbody = cse(_body(fb.name, fb.inputs, nodes, list(fb.outputs) + extra))
    first = len(f.type.types)
    # B's body reads them as xs
    new_ins = [_new_input(v.type, v.loc) for v, _ in dots]
    benv = {v: x for (v, _), x in zip(dots, new_ins)}
    bnodes = list(bb.inputs) + new_ins
    for v in bb.nodes:
        if v.op != "input" and v not in benv:
            w = _clone(v, benv)
            benv[v] = w
            bnodes.append(w)
    bbody = _body(bb.name, list(bb.inputs) + new_ins, bnodes,
                  [benv.get(o, o) for o in bb.outputs])

    def emit_f(out, env):
        ins = [env.get(i, i) for i in f.inputs]
        return {f: out.add("scan", ins, f.loc, **{**f.attrs, "body": fbody})}

    def emit_b(out, env):
        saved = [out.add("get", [env[f]], b.loc, index=first + k) for k in range(len(dots))]
        ins = [env.get(i, i) for i in b.inputs] + saved
        return {b: out.add("scan", ins, b.loc, **{**b.attrs, "body": bbody})}
    g = _rebuild(g, {f: emit_f, b: emit_b})
    if counts is not None:
        counts["saved_products"] += len(dots)
    return g


# ---- hoisted accumulations ---------------------------------------------------------------------

def _transposed(v: Value) -> Value | None:
    return v.inputs[0] if v.op == "transpose" and v.attrs["perm"] == (1, 0) else None


def _accumulation(b: Value, k: int):
    """(P, Q, transposed) when carry k of scan b is c + [transpose](transpose(P) @ Q), with P
    and Q rank-2 per-step values and c read only there; else None."""
    bb, nc, nk, _ = _parts(b)
    c, out = bb.inputs[nc + k], bb.outputs[k]
    if out.op != "add" or c not in out.inputs or out.inputs[0] is out.inputs[1]:
        return None
    if sum(x is c for v in bb.nodes for x in v.inputs) != 1 or c in bb.outputs:
        return None
    x = out.inputs[1] if out.inputs[0] is c else out.inputs[0]
    outer = _transposed(x)
    mm = outer if outer is not None else x
    if mm.op != "matmul" or len(mm.shape) != 2:
        return None
    p, q = _transposed(mm.inputs[0]), mm.inputs[1]
    if p is None or len(q.shape) != 2 or len(p.shape) != 2:
        return None
    per_step = set(bb.inputs[nc + nk:]) | set(bb.outputs[nk:])
    if p not in per_step or q not in per_step:
        return None
    return p, q, outer is not None


def _hoist_accumulation(g: Graph, counts) -> Graph | None:
    for b in (v for v in g.nodes if v.op == "scan"):
        bb, nc, nk, n = _parts(b)
        for k in range(nk if n > 0 else 0):
            acc = _accumulation(b, k)
            if acc is not None:
                return _apply_hoist(g, b, k, *acc, counts)
    return None


def _apply_hoist(g, b, k, p, q, transposed, counts) -> Graph:
    bb, nc, nk, n = _parts(b)
    c = bb.inputs[nc + k]
    body = _body(bb.name, [x for x in bb.inputs if x is not c],
                 [x for x in bb.nodes if x is not c],
                 [o for i, o in enumerate(bb.outputs) if i != k])
    xs_in = list(bb.inputs[nc + nk:])
    ys_out = list(bb.outputs[nk:])

    def stacked(out, env, new_scan, v):
        if v in xs_in:      # an xs slice: the operand
            return env.get(b.inputs[nc + nk + xs_in.index(v)], b.inputs[nc + nk + xs_in.index(v)])
        return out.add("get", [new_scan], b.loc, index=nk - 1 + ys_out.index(v))

    def emit(out, env):
        ins = [env.get(i, i) for j, i in enumerate(b.inputs) if j != nc + k]
        new = out.add("scan", ins, b.loc, **{**b.attrs, "body": body, "num_carry": nk - 1})
        ps, qs = stacked(out, env, new, p), stacked(out, env, new, q)
        rows = n * p.shape[0]
        p2 = out.add("reshape", [ps], b.loc, shape=(rows, p.shape[1]))
        q2 = out.add("reshape", [qs], b.loc, shape=(rows, q.shape[1]))
        # sum_t P_t^T Q_t, or its transpose sum_t Q_t^T P_t: no transpose of the product
        left, right = (q2, p2) if transposed else (p2, q2)
        prod = out.add("matmul", [out.add("transpose", [left], b.loc, perm=(1, 0)), right],
                       b.loc)
        init = env.get(b.inputs[nc + k], b.inputs[nc + k])
        zero = splat_scalar(init)
        total = prod if zero is not None and not zero.any() else \
            out.add("add", [init, prod], b.loc)
        gets = {}
        for v in g.nodes:
            if v.op == "get" and v.inputs[0] is b:
                i = v.attrs["index"]
                gets[v] = total if i == k else out.add("get", [new], v.loc,
                                                       index=i - (i > k))
        return {b: new, **gets}
    g = _rebuild(g, {b: emit})
    if counts is not None:
        counts["hoisted_accumulations"] += 1
    return g
