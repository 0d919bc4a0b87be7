"""The structural key of a fusion group's kernel: groups with the same key are the same function
up to their buffers, so a graph of N identical blocks emits each block's kernels once and the
entry calls them N times with each block's own pointers.

    key = group_key(grp, noalias=True, threads=1)
    # rows space=(32, 64) split=1 noalias=True threads=1
    # 0: f32[32,64] = sub $0:f32[32,64], $1:f32[32,1]
    # 1: f32[32,64] = mul %0, #f32[]=0.5
    # out %1
    same = correspondence(template_group, grp)    # template's values -> grp's values

The key is the group's kind, space and split, its members in order (op, attributes, type) and
their wiring: an input inside the group by its member index, an external input by its number
in order of first use (with its type), a one-element constant that lowers to an immediate by
value. Every emitter derives its operand list from this structure alone, so two groups with one
key list corresponding operands at the same positions (`correspondence` maps one onto the other).
"""
from __future__ import annotations

import hashlib

from ...ir.graph import Value
from ...ir.printer import format_attr
from ..fusion import Group
from .fused import immediate


def group_key(grp: Group, noalias: bool = True, threads: int = 1) -> str:
    index = {m: i for i, m in enumerate(grp.members)}
    ext: dict[Value, int] = {}
    lines = [f"{grp.kind} space={grp.space} split={grp.split} noalias={noalias} "
             f"threads={threads}"]
    for i, m in enumerate(grp.members):
        refs = []
        for x in m.inputs:
            if x in index:
                refs.append(f"%{index[x]}")
            elif immediate(x) is not None:
                refs.append(f"#{x.type}={format_attr(x.attrs['value'])}")
            else:
                refs.append(f"${ext.setdefault(x, len(ext))}:{x.type}")
        attrs = ", ".join(f"{k}={format_attr(a)}" for k, a in m.attrs.items())
        lines.append(f"{i}: {m.type} = {m.op}[{attrs}] {', '.join(refs)}")
    lines.append("out " + ", ".join(f"%{index[o]}" for o in grp.outputs))
    return "\n".join(lines)


def key_hash(key: str) -> str:
    """A short stable name for a key (kernel function names, cache file names)."""
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def correspondence(template: Group, grp: Group) -> dict[Value, Value]:
    """Maps each member and external input of `template` to its counterpart in `grp` (the two
    groups have the same key)."""
    corr: dict[Value, Value] = {}
    for t, m in zip(template.members, grp.members):
        corr[t] = m
        for x, y in zip(t.inputs, m.inputs):
            corr.setdefault(x, y)
    return corr
