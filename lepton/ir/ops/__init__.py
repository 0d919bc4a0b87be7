"""The op table: every op of the IR, by name. One explicit list, no registration by import."""
from .base import OpDef, OpError, broadcast_shapes
from .elementwise import ELEMENTWISE
from .linalg import LINALG, window_out
from .movement import MOVEMENT, slice_len
from .reduce import REDUCE

OPS: dict[str, OpDef] = {op.name: op for op in MOVEMENT + ELEMENTWISE + REDUCE + LINALG}
assert len(OPS) == len(MOVEMENT + ELEMENTWISE + REDUCE + LINALG), "duplicate op names"

__all__ = ["OPS", "OpDef", "OpError", "broadcast_shapes", "window_out", "slice_len"]
