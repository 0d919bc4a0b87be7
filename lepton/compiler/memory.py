"""Memory planning: where every value of a graph lives at run time.

The native entry takes one array of buffer pointers, laid out as
`[inputs..., outputs..., constants..., workspace]`; a value lives at (slot, byte offset).
Inputs and constants live in their own arrays, `reshape` aliases its input (all buffers are
dense row-major), a kernel-computed graph output is written straight into the output array the
runtime allocates, and every other kernel result gets a 64-byte-aligned range of the workspace.
An output that is not computed by a kernel of its own (a graph input or constant returned as
is, a value returned twice) is copied by the runtime: `OutputSpec.source` says from where.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..ir.graph import Graph, Value

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
    scratch_bytes: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def workspace_slot(self) -> int:
        return self.n_inputs + self.n_outputs + len(self.constants)

    @property
    def workspace_bytes(self) -> int:
        return self.intermediate_bytes + self.scratch_bytes

    @property
    def scratch_offset(self) -> int:
        return self.intermediate_bytes


def plan_memory(g: Graph, materialized: set[Value] | None = None) -> MemoryPlan:
    """`materialized`: the values kernels write (fusion-group outputs); by default all."""
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
    offset = naive = 0
    ws = n_in + n_out + len(constants)
    for v in g.nodes:
        naive += align(v.type.nbytes) if v.op not in ("input", "constant", "reshape") else 0
        if v.op in ("input", "constant") or v in where or (
                materialized is not None and v not in materialized and v.op != "reshape"):
            continue
        r = storage_root(v)
        if r is not v:
            continue
        where[v] = (ws, offset)
        offset += align(v.type.nbytes)
    for v in g.nodes:  # aliases share their root's place
        if v.op == "reshape":
            where[v] = where[storage_root(v)]
    return MemoryPlan(n_in, n_out, constants, where, outputs, offset, naive)
