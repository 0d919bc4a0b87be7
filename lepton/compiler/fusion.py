"""The fusion partitioner: which values are computed together in one kernel (one loop nest).

A `matmul` or `conv2d` group is that op, possibly followed by an elementwise chain of its
output's shape (bias, activation, residual) applied in the GEMM's store (codegen/epilogue.py);
a matmul's operands that are transposes of the last two axes are read transposed in place.

A `rows` group is a loop nest over an iteration space `space` split at `split` into outer dims
O = space[:split] and inner dims I = space[split:]. Its members are elementwise ops and reductions
over exactly the inner dims (keepdims). A member is *full* (its shape is the space) or *row*
(its shape is O followed by ones): per outer index the kernel runs one inner loop per reduction
and one inner loop storing the full outputs, so softmax and layer_norm read their input from
memory once and write once. A purely elementwise chain is a rows group with no inner dims.
Every other op is a `single` group. Members used outside their group are its outputs; the
others never touch memory.

Groups grow greedily in reverse topological order: a value joins a group holding its users when
its shape fits the group's space and none of its other users leads back into that group (which
would make the groups depend on each other in a cycle). networkx orders the finished groups.

    groups = partition(g)     # [Group(kind="rows", members=[...], outputs=[...]), ...]
"""
from __future__ import annotations

from dataclasses import dataclass, field

import math

import networkx as nx

from ..ir.graph import Graph, Value
from ..ir.types import TupleType
from .views import broadcast_view



@dataclass(eq=False)
class Group:
    kind: str                        # "rows", "single", or "matmul"/"conv2d" with an epilogue
    members: list[Value]             # topological order once finished
    space: tuple[int, ...] = ()
    split: int = 0
    outputs: list[Value] = field(default_factory=list)

    @property
    def head(self) -> Value | None:
        """The matmul/conv2d of a `matmul`/`conv2d` group."""
        return next((m for m in self.members if m.op == self.kind), None)

    @property
    def reductions(self) -> list[Value]:
        return [v for v in self.members if v.opdef.kind == "reduce"]

    def is_row(self, v: Value) -> bool:
        return all(s == 1 for s in v.shape[self.split:])

    def reads(self) -> list[Value]:
        """The values this group's kernel reads from memory."""
        inside = set(self.members)
        return list(dict.fromkeys(x for m in self.members for x in m.inputs if x not in inside))

    def in_place_pairs(self) -> list[tuple[Value, Value]]:
        """(output, input) pairs where the kernel reads the input at exactly the element it
        writes to the output: a full output and a full input of the same size."""
        if self.kind != "rows":
            return []
        full_in = [x for x in self.reads() if tuple(x.shape) == self.space
                   and x.op not in ("input", "constant")]
        return [(o, x) for o in self.outputs if tuple(o.shape) == self.space
                for x in full_in if x.dtype.itemsize == o.dtype.itemsize]

    def describe(self) -> str:
        ops = "+".join(v.op for v in self.members)
        return f"{self.kind}[{ops}]"


def _fits(g: Group, shape, split: int) -> bool:
    """Whether `shape` is a full or row shape of g's space split at `split`."""
    sp = g.space
    return len(shape) == len(sp) and (tuple(shape) == sp or (
        tuple(shape[:split]) == sp[:split] and all(s == 1 for s in shape[split:])))


def _row_split(g: Group, shape) -> int | None:
    """The split at which `shape` is a row shape of g's space (trailing ones)."""
    if tuple(shape) == g.space:
        return g.split
    if len(shape) != len(g.space):
        return None
    j = len(shape)
    while j > 0 and shape[j - 1] == 1 and g.space[j - 1] != 1:
        j -= 1
    return j if tuple(shape[:j]) == g.space[:j] and all(s == 1 for s in shape[j:]) else None


def _row_reduction(v: Value) -> bool:
    """A reduction over `axes` (sum, prod, max, min; not argmax): it may end a rows group."""
    return v.opdef.kind == "reduce" and "axes" in v.opdef.attrs


def _trailing(v: Value) -> int | None:
    """For a reduction over trailing axes, the first reduced axis."""
    axes = v.attrs["axes"]
    n = len(v.inputs[0].shape)
    if not axes or tuple(axes) != tuple(range(n - len(axes), n)):
        return None
    return n - len(axes)


def column_dims(head: Value) -> int:
    """How many trailing dims of a matmul's (1) or conv's (2) output form the GEMM's columns."""
    return 2 if head.op == "conv2d" else 1


def loadable(head: Value, x: Value) -> bool:
    """Whether an epilogue can read x per column vector of the head's output: constant along
    the columns, or walking them with unit stride."""
    view = broadcast_view(x.shape, head.shape)
    cd = column_dims(head)
    dense = tuple(math.prod(head.shape[len(head.shape) - cd + i + 1:]) for i in range(cd))
    return all(s == 0 for s in view.strides[-cd:]) or view.strides[-cd:] == dense


def _try_head(g: Group, v: Value, outputs: set, users) -> bool:
    """A matmul or conv2d becomes the head of an elementwise group of its own shape that holds
    all its users, when the group's only output has its shape and dtype and the epilogue can
    read every input of the chain per column vector (codegen/epilogue.py)."""
    if (g.kind != "rows" or g.reductions or g.split != len(g.space) or g.space != v.shape
            or v in outputs or not v.dtype.is_float
            or any(not m.opdef.epilogue or m.dtype != v.dtype for m in g.members)):
        return False
    inside = set(g.members)
    outs = [m for m in g.members if m in outputs or any(u not in inside for u in users[m])]
    if len(outs) != 1 or outs[0].shape != v.shape:
        return False
    if not all(loadable(v, x) for m in g.members for x in m.inputs
               if x not in inside and x is not v):
        return False
    g.kind = v.op
    g.members.append(v)
    return True


def _try_join(g: Group, v: Value) -> bool:
    if g.kind != "rows":
        return False
    if v.opdef.kind == "elementwise":
        j = _row_split(g, v.shape)
    elif _row_reduction(v) and v.attrs["keepdims"] and tuple(v.inputs[0].shape) == g.space:
        j = _trailing(v)
    else:
        return False
    if j is None or (j != g.split and g.split != len(g.space)):
        return False  # a second, different split would need another loop structure
    if j != g.split and not all(_fits(g, m.shape, j) for m in g.members):
        return False
    g.split = j
    g.members.append(v)
    return True


def _seed(v: Value) -> Group:
    if v.opdef.kind == "elementwise" and v.type.size > 0:
        return Group("rows", [v], tuple(v.shape), len(v.shape))
    if _row_reduction(v) and v.type.size > 0 and _trailing(v) is not None:
        x = v.inputs[0]
        if x.type.size > 0:
            return Group("rows", [v], tuple(x.shape), _trailing(v))
    if v.op in ("matmul", "conv2d"):
        return Group(v.op, [v], tuple(v.shape), len(v.shape))
    return Group("single", [v])


def _swaps_last_two(v: Value) -> bool:
    n = len(v.shape)
    return v.op == "transpose" and n >= 2 and v.attrs["perm"] == tuple(range(n - 2)) + (n - 1, n - 2)


def _try_operand(v: Value, users, group_of, outputs) -> Group | None:
    """A transpose of the last two axes read only by a matmul is read transposed by the GEMM
    itself (never copied to memory): it joins the matmul's group."""
    if not _swaps_last_two(v) or v in outputs or not users[v]:
        return None
    grp = group_of.get(users[v][0])
    if grp is None or grp.kind != "matmul" or any(u is not grp.head for u in users[v]):
        return None
    grp.members.append(v)
    return grp


def partition(g: Graph) -> list[Group]:
    """Groups in an order that respects dependencies (each group after its inputs' groups)."""
    users = g.users()
    outputs = set(g.outputs)
    position = {v: i for i, v in enumerate(g.nodes)}
    group_of: dict[Value, Group] = {}
    groups: list[Group] = []
    for v in reversed(g.nodes):
        if not v.opdef.kernel:   # a source, a free view, a `get` (its control op's group)
            continue
        if isinstance(v.type, TupleType):  # a control op: a kernel of its own (control.py)
            group_of[v] = Group("control", [v])
            groups.append(group_of[v])
            continue
        target = _try_operand(v, users, group_of, outputs)
        if v.op in ("matmul", "conv2d"):
            (cand, *more) = _candidates(v, users[v], group_of) or [None]
            if cand is not None and not more and all(group_of.get(u) is cand for u in users[v]) \
                    and _try_head(cand, v, outputs, users):
                target = cand
        for cand in [] if target else _candidates(v, users[v], group_of):
            outside = [u for u in users[v] if group_of.get(u) is not cand]
            if _no_path_back(outside, cand, users, group_of) and _try_join(cand, v):
                target = cand
                break
        if target is None:
            target = _seed(v)
            groups.append(target)
        group_of[v] = target
    for v in g.nodes:
        if v.op == "get":
            group_of[v] = group_of[v.inputs[0]]
    for grp in groups:  # a matmul/conv2d head first (its transposed operands are read in place)
        grp.members.sort(key=lambda m: (m.op != grp.kind, position[m]))
        grp.outputs = [m for m in grp.members
                       if m in outputs or any(group_of.get(u) is not grp for u in users[m])]
        if grp.kind == "control":
            grp.outputs = [u for u in users[grp.members[0]] if u.op == "get"]
    return _ordered(groups, group_of, position)


def _candidates(v: Value, users: list[Value], group_of) -> list[Group]:
    """The rows groups of v's users, those holding most of its users first."""
    count: dict[int, list] = {}
    for u in users:
        grp = group_of.get(u)
        if grp is not None and grp.kind == "rows":
            count.setdefault(id(grp), [grp, 0])[1] += 1
    return [grp for grp, n in sorted(count.values(), key=lambda e: -e[1])]


def _no_path_back(outside: list[Value], grp: Group, users, group_of) -> bool:
    """Joining grp makes grp feed the groups of `outside`; that is a cycle if any of them
    reaches grp. Reachability is between groups: reaching one member of a group reaches the
    users of all its members (a group runs as one kernel).

    The search runs backwards from grp, over the groups feeding it: values get their groups in
    reverse topological order, so every value on a path from `outside` to grp has one (or is a
    free view or a `get`), and grp's feeders that have one lie between the value joining and
    grp: a few groups, where a forward search would walk the rest of the graph."""
    targets = {id(group_of[u]) for u in _through_views(outside, users, group_of)}
    if id(grp) in targets:     # through a view of the joining value
        return False
    if not targets:
        return True
    seen = {id(grp)}
    todo = [grp]
    while todo:
        h = todo.pop()
        for m in h.members:
            for x in m.inputs:
                while x.op in ("reshape", "get") and x not in group_of:
                    x = x.inputs[0]
                f = group_of.get(x)
                if f is None or id(f) in seen:
                    continue
                if id(f) in targets:
                    return False
                seen.add(id(f))
                todo.append(f)
    return True


def _through_views(values, users, group_of) -> list[Value]:
    """`values`, each ungrouped one (a reshape, a get) replaced by its users, recursively."""
    out, todo, seen = [], list(values), set()
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        seen.add(n)
        if n in group_of:
            out.append(n)
        else:
            todo.extend(users[n])
    return out


def _ordered(groups: list[Group], group_of, position) -> list[Group]:
    """A topological order of the groups (ties broken by their last member's position)."""
    deps = nx.DiGraph()
    key = {id(grp): max(position[m] for m in grp.members) for grp in groups}
    for grp in groups:
        deps.add_node(id(grp))
        for m in grp.members:
            for x in m.inputs:
                while x.op == "reshape":
                    x = x.inputs[0]
                src = group_of.get(x)
                if src is not None and src is not grp:
                    deps.add_edge(id(src), id(grp))
    by_id = {id(grp): grp for grp in groups}
    return [by_id[i] for i in nx.lexicographical_topological_sort(deps, key=key.__getitem__)]
