"""The op table: every op of the IR, by name. One explicit list, no registration by import."""
from .base import NONDIFF, OpDef, OpError, broadcast_shapes
from .control import CONTROL, REGIONS, TupleCotangent
from .elementwise import ELEMENTWISE
from .integer import INTEGER
from .linalg import LINALG, window_out
from .movement import MOVEMENT, slice_len
from .random import RANDOM
from .reduce import REDUCE

_ALL = MOVEMENT + ELEMENTWISE + INTEGER + REDUCE + LINALG + CONTROL + RANDOM
OPS: dict[str, OpDef] = {op.name: op for op in _ALL}
assert len(OPS) == len(_ALL), "duplicate op names"
_no_vjp = sorted(name for name, op in OPS.items() if op.vjp is None)
if _no_vjp:
    raise ImportError(f"ops without a VJP rule (give one, or vjp=NONDIFF): {_no_vjp}")

__all__ = ["OPS", "NONDIFF", "OpDef", "OpError", "REGIONS", "TupleCotangent", "broadcast_shapes",
           "window_out", "slice_len"]
