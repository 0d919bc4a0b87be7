"""Memory planning: where every value of a graph lives at run time.

The native entry takes one array of buffer pointers, laid out as
`[inputs..., outputs..., constants..., workspace]`; a value lives at (slot, byte offset).
Inputs and constants live in their own arrays, `reshape` aliases its input (all buffers are
dense row-major), a control op's tuple-typed value has no buffer but each `get` of it has one
(the op's kernel writes its result there: a get is never a copy), a kernel-computed graph
output is written straight into the output array the runtime allocates, and every other
kernel result gets a 64-byte-aligned range of one workspace arena. Buffers whose lifetimes (from the kernel writing them to the last kernel reading them)
do not overlap share bytes, and an elementwise kernel may write its output over an input that
dies there.
An output that is not computed by a kernel of its own (a graph input or constant returned as
is, a value returned twice) is copied by the runtime: `OutputSpec.source` says from where.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from ..ir.graph import Graph, Value
from ..ir.types import TupleType

ALIGN = 64


def align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def storage_root(v: Value) -> Value:
    """The value whose buffer `v` shares (reshapes are free views)."""
    while v.op == "reshape":
        v = v.inputs[0]
    return v


@dataclass(frozen=True)
class OutputSpec:
    """How the runtime produces output k: `("kernel",)` a fresh array the code writes into;
    `("input", i)`, `("constant", j)` or `("output", k)`: a copy of that array."""
    source: tuple


@dataclass
class MemoryPlan:
    n_inputs: int
    n_outputs: int
    constants: list[np.ndarray]
    where: dict[Value, tuple[int, int]]
    outputs: list[OutputSpec]
    intermediate_bytes: int
    naive_bytes: int
    notes: list[str] = field(default_factory=list)

    @property
    def workspace_slot(self) -> int:
        return self.n_inputs + self.n_outputs + len(self.constants)


class Step(NamedTuple):
    """One kernel of a schedule: the values it writes, those it reads, and the (output, input)
    pairs it may compute in place (it reads the input's element where it writes the output's)."""
    writes: list
    reads: list
    in_place: list = []


def schedule_of(groups) -> list[Step]:
    """The schedule of fusion groups in their order (fusion.Group: outputs, reads, in place)."""
    return [Step(grp.outputs, grp.reads(), grp.in_place_pairs()) for grp in groups]


def plan_memory(g: Graph, materialized: set[Value] | None = None,
                schedule: list[Step] | None = None) -> MemoryPlan:
    """`materialized`: the values kernels write (fusion-group outputs; by default all).
    `schedule`: the kernels in order (`Step`s, see schedule_of); buffers whose lifetimes do not
    overlap share workspace bytes."""
    n_in, n_out = len(g.inputs), len(g.outputs)
    where: dict[Value, tuple[int, int]] = {}
    for i, v in enumerate(g.inputs):
        where[v] = (i, 0)
    constants: list[np.ndarray] = []
    const_index: dict[Value, int] = {}
    for v in g.nodes:
        if v.op == "constant":
            const_index[v] = len(constants)
            where[v] = (n_in + n_out + len(constants), 0)
            constants.append(np.ascontiguousarray(v.attrs["value"]))
    outputs: list[OutputSpec] = []
    claimed: dict[Value, int] = {}
    input_index = {v: i for i, v in enumerate(g.inputs)}
    for k, o in enumerate(g.outputs):
        r = storage_root(o)
        if r in input_index:
            outputs.append(OutputSpec(("input", input_index[r])))
        elif r in const_index:
            outputs.append(OutputSpec(("constant", const_index[r])))
        elif r in claimed:
            outputs.append(OutputSpec(("output", claimed[r])))
        else:
            claimed[r] = k
            where[r] = (n_in + k, 0)
            outputs.append(OutputSpec(("kernel",)))
    # a tuple-typed value (a control op's) has no buffer: each `get` of it is a buffer its
    # op's kernel writes
    bufs = [v for v in g.nodes if v.op not in ("input", "constant", "reshape")
            and not isinstance(v.type, TupleType)]
    naive = sum(align(v.type.nbytes) for v in bufs)
    roots = [v for v in bufs if v not in where and (materialized is None or v in materialized)]
    offsets, size = _pack(roots, _lifetimes(g, roots, schedule), _in_place(schedule))
    ws = n_in + n_out + len(constants)
    for v, off in offsets.items():
        where[v] = (ws, off)
    for v in g.nodes:  # aliases share their root's place
        if v.op == "reshape":
            where[v] = where[storage_root(v)]
    return MemoryPlan(n_in, n_out, constants, where, outputs, size, naive)


def _lifetimes(g: Graph, roots, schedule) -> dict[Value, tuple[int, int]]:
    """For each buffer: the step that writes it and the last step that reads it (through
    reshapes too). Without a schedule every value is its own step."""
    if schedule is None:
        users = g.users()
        schedule = [Step([u for u in users[v] if u.op == "get"] if isinstance(v.type, TupleType)
                         else [v], list(v.inputs)) for v in g.nodes if v.opdef.kernel]
    step: dict[Value, int] = {}
    last: dict[Value, int] = {}
    for t, k in enumerate(schedule):
        for v in k.writes:
            step[v] = t
        for x in k.reads:
            last[storage_root(x)] = t
    return {v: (step[v], max(step[v], last.get(v, step[v]))) for v in roots}


def _in_place(schedule) -> dict[Value, Value]:
    """Output -> the input buffer its kernel may overwrite (it reads each element of the input
    at the very position it writes the output)."""
    return {o: x for k in schedule or [] for o, x in k.in_place}


def _pack(roots, life, donate) -> tuple[dict[Value, int], int]:
    """Greedy by size: each buffer at the lowest 64-byte-aligned offset that overlaps no placed
    buffer alive at the same time; a donated pair shares one place and one merged lifetime."""
    owner = {v: v for v in roots}
    taken = set()
    for o, x in donate.items():  # x must die exactly where o is written
        if o in owner and x in owner and x not in taken and life[x][1] == life[o][0]:
            owner[o] = x
            taken.add(x)
    span: dict[Value, list] = {}
    for v in roots:
        r = owner[v]
        lo, hi = life[v]
        s = span.setdefault(r, [lo, hi, 0])
        s[0], s[1], s[2] = min(s[0], lo), max(s[1], hi), max(s[2], align(v.type.nbytes))
    placed: list[tuple[int, int, int, int]] = []   # (first step, last step, offset, end)
    size = 0
    where: dict[Value, int] = {}
    for r, (lo, hi, n) in sorted(span.items(), key=lambda e: (-e[1][2], e[1][0])):
        off = 0
        # the placed buffers alive at some step of [lo, hi], by offset
        for o, e in sorted((o, e) for first, last, o, e in placed if first <= hi and lo <= last):
            if off + n <= o:
                break
            off = max(off, e)
        placed.append((lo, hi, off, off + n))
        where[r] = off
        size = max(size, off + n)
    return {v: where[owner[v]] for v in roots}, size
