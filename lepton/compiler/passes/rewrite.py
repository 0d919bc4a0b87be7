"""The pattern-rewrite driver: local rewrites are data, a list of `Rule(name, pattern, rewrite)`
applied by one driver, bottom-up, to a fixed point.

    RULES = [Rule("mul-by-one", op("mul", var("x"), const("c", 1)), lambda b, x, c: x)]
    g2 = rewrite(g, RULES, counts)          # counts: a Counter, gets {"mul-by-one": 2}

Patterns: `op(names, *inputs, commute=False)` matches a value whose op is one of `names` (a str
or a collection) and, when inputs are given, whose inputs match them (`commute=True` also tries
a binary op's inputs swapped); `var("x")` matches any value and binds it to `x` (a name bound
twice must be the same value); `const("c")` matches a constant and `const("c", 1)` a one-element
constant equal to 1. `name=` on `op` binds the matched value itself; `having=`/`only=` ops
that some/every input must have, for rules that inspect their inputs in code. A `RuleSet`
indexes rules by root op and caches, per (op, input ops), the rules that can match, so each
value is matched in full only against those.

A rewrite `fn(b, **bindings)` returns the replacement Value, or None to decline. It builds new
values with `b.op(...)`/`b.const(...)` (see `Builder`); those are simplified by the same rules
as they are made, and the matched value's inputs are already simplified, so one bottom-up walk
reaches the fixed point (rules look at a value and its producers, never at its users). A
replacement applies only if it has the matched value's type (TensorType): a rule never changes
a shape or dtype, so e.g. `x * 1` with x broadcast by the constant is left alone. The result
graph is new (unchanged Values are shared, never mutated) and holds only the values its
outputs need, plus all inputs.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from ...ir.graph import Graph, Value
from ...ir import halfs
from ...ir.ops import OPS, REGIONS
from .regions import map_regions

# Bottom-up simplification nests only as deep as one rule's output feeds the next rule; a
# deeper nest means two rules undo each other.
MAX_DEPTH = 64


class RewriteError(RuntimeError):
    pass


@dataclass(frozen=True)
class Pat:
    ops: Optional[frozenset]            # None: any op
    inputs: Optional[tuple]             # None: any inputs
    name: Optional[str] = None          # binds the matched value
    test: Optional[Callable] = None     # extra predicate on the value
    commute: bool = False
    having: Optional[frozenset] = None  # some input's op is one of these
    only: Optional[frozenset] = None    # every input's op is one of these


def _names(ops) -> frozenset | None:
    if ops is None:
        return None
    names = frozenset([ops] if isinstance(ops, str) else ops)
    unknown = names - set(OPS)
    if unknown:
        raise ValueError(f"pattern names unknown ops {sorted(unknown)}")
    return names


def op(names, *inputs: Pat, name: str | None = None, commute: bool = False,
       having=None, only=None) -> Pat:
    """`having`/`only`: ops that some/every input must have (a cheap filter for rules that
    look at the inputs themselves)."""
    return Pat(_names(names), tuple(inputs) if inputs else None, name, None, commute,
               _names(having), _names(only))


def var(name: str) -> Pat:
    return Pat(None, None, name)


def const(name: str | None = None, value=None) -> Pat:
    """A constant; with `value`, a one-element constant equal to it."""
    if value is None:
        return Pat(frozenset(["constant"]), None, name)
    return Pat(frozenset(["constant"]), None, name,
               lambda v: v.type.size == 1 and v.attrs["value"].reshape(()).item() == value)


@dataclass(frozen=True)
class Rule:
    name: str
    pattern: Pat
    rewrite: Callable[..., Optional[Value]]


def match(p: Pat, v: Value, env: dict) -> dict | None:
    """The bindings extending env under which p matches v, or None."""
    if p.ops is not None and v.op not in p.ops:
        return None
    if p.test is not None and not p.test(v):
        return None
    if p.name is not None:
        bound = env.get(p.name)
        if bound is None:
            env = {**env, p.name: v}
        elif bound is not v:
            return None
    ins = v.inputs
    if p.having is not None and not any(i.op in p.having for i in ins):
        return None
    if p.only is not None and not all(i.op in p.only for i in ins):
        return None
    if p.inputs is None:
        return env
    if len(ins) != len(p.inputs):
        return None
    out = _match_all(p.inputs, ins, env)
    if out is None and p.commute and len(ins) == 2:
        out = _match_all(p.inputs, (ins[1], ins[0]), env)
    return out


def _match_all(pats, values, env):
    for q, x in zip(pats, values):
        env = match(q, x, env)
        if env is None:
            return None
    return env


def _may_match(p: Pat, input_ops: tuple) -> bool:
    """Whether p can match a value whose inputs have `input_ops`, judged by op names alone."""
    if p.having is not None and not any(o in p.having for o in input_ops):
        return False
    if p.only is not None and not all(o in p.only for o in input_ops):
        return False
    if p.inputs is None:
        return True
    if len(p.inputs) != len(input_ops):
        return False

    def fits(ops):
        return all(q.ops is None or o in q.ops for q, o in zip(p.inputs, ops))
    return fits(input_ops) or (p.commute and len(input_ops) == 2 and fits(input_ops[::-1]))


class RuleSet:
    """Rules indexed for the driver: by the root's op, then (cached) by the ops of the root's
    inputs, so a value is matched in full only against rules that can apply to it."""

    def __init__(self, rules: list[Rule]):
        self.rules = list(rules)
        self._by_op: dict[str, list[Rule]] = {}
        for r in self.rules:
            if r.pattern.ops is None:
                raise ValueError(f"rule {r.name}: the pattern's root must name its ops")
            for name in r.pattern.ops:
                self._by_op.setdefault(name, []).append(r)
        self._cache: dict[tuple, list[Rule]] = {}

    def candidates(self, v: Value) -> list[Rule]:
        key = (v.op, tuple([i.op for i in v.inputs]))
        found = self._cache.get(key)
        if found is None:
            found = [r for r in self._by_op.get(v.op, ()) if _may_match(r.pattern, key[1])]
            self._cache[key] = found
        return found


class Builder:
    """What a rewrite sees as `b`: the matched value `b.root`, and constructors whose results
    are simplified and placed in the new graph, located at the root's source line."""

    def __init__(self, rules: RuleSet, nodes: list, counts: Counter):
        self._rules = rules
        self._nodes = nodes
        self._counts = counts
        self._active: list[str] = []  # names of the rules whose rewrite is running
        self.root: Value | None = None

    def op(self, name: str, *inputs: Value, **attrs) -> Value:
        loc = self.root.loc if self.root is not None else None
        v = Value(name, inputs, {}, None, loc)  # type: ignore[arg-type]
        v.attrs, v.type = OPS[name].check(inputs, attrs, loc)
        return self.finish(v)

    def const(self, value, dtype=None) -> Value:
        """A constant holding a read-only copy of `value` (cast to `dtype`, a DType, if given)."""
        arr = np.array(value, dtype=None if dtype is None else dtype.np, copy=True, order="C")
        arr.flags.writeable = False
        return self.op("constant", value=arr)

    def eval(self, name: str, *arrays: np.ndarray, **attrs) -> np.ndarray:
        """Runs op `name`'s NumPy reference now (for rules that compute new constants)."""
        with np.errstate(all="ignore"):
            return np.asarray(halfs.reference(OPS[name], list(arrays), attrs))

    def finish(self, v: Value) -> Value:
        """v (whose inputs are final) simplified: the replacement a rule gives, else v itself,
        appended to the new graph."""
        rules = self._rules.candidates(v)
        if rules:
            saved = self.root
            if len(self._active) > MAX_DEPTH:
                raise RewriteError(
                    f"rewrite rules do not terminate: more than {MAX_DEPTH} nested rewrites "
                    f"(at {v.op} {v.type}{' from ' + v.loc if v.loc else ''}); rules "
                    f"rewriting: {', '.join(sorted(set(self._active)))}")
            try:
                for rule in rules:
                    env = match(rule.pattern, v, {})
                    if env is None:
                        continue
                    self.root = v
                    self._active.append(rule.name)
                    r = rule.rewrite(self, **env)
                    self._active.pop()
                    self.root = saved
                    if r is not None and r is not v and r.type == v.type:
                        self._counts[rule.name] += 1
                        return r
            finally:
                self.root = saved
        self._nodes.append(v)
        return v


# -- helpers for rewrites ------------------------------------------------------------------------
def value_of(c: Value) -> np.ndarray:
    return c.attrs["value"]


def is_scalar_const(v: Value) -> bool:
    return v.op == "constant" and v.type.size == 1


def scalar_of(b, v: Value) -> Value:
    """A 0-d value holding the one element of v."""
    if v.type.ndim == 0:
        return v
    if v.op == "constant":
        return b.const(value_of(v).reshape(()))
    return b.op("reshape", v, shape=())


def splat(b, scalar: Value, shape) -> Value:
    """The 0-d `scalar` broadcast to `shape` (itself for shape ())."""
    shape = tuple(shape)
    return scalar if shape == () else b.op("broadcast_to", scalar, shape=shape)


def rewrite(g: Graph, rules: RuleSet | list[Rule], counts: Counter | None = None) -> Graph:
    """g with `rules` applied to a fixed point; counts[rule name] += applications. Build the
    RuleSet once (module level) so its match cache lives across graphs."""
    ruleset = rules if isinstance(rules, RuleSet) else RuleSet(rules)
    out = Graph(g.name)
    out.inputs = list(g.inputs)
    b = Builder(ruleset, out.nodes, counts if counts is not None else Counter())
    new: dict[Value, Value] = {}  # original value -> its replacement in `out`
    for v in g.nodes:
        if v.op == "input":
            out.nodes.append(v)
            new[v] = v
            continue
        ins = tuple([new[i] for i in v.inputs])
        # tuples of Values compare by identity; a changed input means a rebuilt value
        w = v if ins == v.inputs else Value(v.op, ins, v.attrs, v.type, v.loc)
        if v.op in REGIONS:  # the rules run inside loop bodies and branches too
            w = map_regions(w, lambda r: rewrite(r, ruleset, counts))
        new[v] = b.finish(w)
    out.outputs = [new[o] for o in g.outputs]
    return prune(out)


def prune(g: Graph) -> Graph:
    """Drops the values no output needs (inputs stay); returns g itself (a graph the caller
    just built) so no copy is made."""
    live = set(g.outputs)
    for v in reversed(g.nodes):
        if v in live:
            live.update(v.inputs)
    g.nodes = [v for v in g.nodes if v in live or v.op == "input"]
    return g
