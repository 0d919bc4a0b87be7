"""Test helper: random graphs of elementwise, broadcast, reshape, transpose and reduction ops
over inputs and small constants, for property tests of the passes and of fusion."""
import numpy as np
from hypothesis import strategies as st

from lepton.ir import Graph, OpError, TensorType, float32

SHAPES = [(4, 6), (4, 1), (6,), (1, 6), ()]
CONSTS = [0.0, -0.0, 1.0, -1.0, 2.0, 0.5, 3.0]
UNARY = ["neg", "exp", "abs", "relu", "square", "tanh", "sigmoid"]
BINARY = ["add", "sub", "mul", "div", "maximum", "minimum", "pow"]


@st.composite
def random_graph(draw):
    """Elementwise, broadcast, reshape, transpose and reduction ops over inputs and small
    constants: the material the rules and folding work on."""
    g = Graph("random")
    values = [g.input(TensorType(float32, s)) for s in
              draw(st.lists(st.sampled_from(SHAPES), min_size=1, max_size=3))]
    for _ in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from(["const", "unary", "binary", "binary", "move", "reduce"]))
        x = draw(st.sampled_from(values))
        try:
            if kind == "const":
                c = draw(st.sampled_from(CONSTS))
                shape = draw(st.sampled_from([(), (1,), (1, 1), (6,)]))
                v = g.add("constant", [], value=np.full(shape, c, np.float32))
            elif kind == "unary":
                v = g.add(draw(st.sampled_from(UNARY)), [x])
            elif kind == "binary":
                name = draw(st.sampled_from(BINARY))
                y = draw(st.sampled_from(values))
                v = g.add(name, [x, y] if draw(st.booleans()) else [y, x])
            elif kind == "move":
                move = draw(st.sampled_from(["broadcast", "reshape", "transpose"]))
                if move == "broadcast":
                    v = g.add("broadcast_to", [x], shape=(4, 6))
                elif move == "reshape":
                    v = g.add("reshape", [x], shape=(1,) + x.shape)
                else:
                    v = g.add("transpose", [x], perm=tuple(reversed(range(len(x.shape)))))
            else:
                if not x.shape:
                    continue
                axis = draw(st.sampled_from(range(len(x.shape))))
                v = g.add(draw(st.sampled_from(["sum", "max"])), [x], axes=(axis,),
                          keepdims=draw(st.booleans()))
        except OpError:  # shapes that do not broadcast or reshape
            continue
        values.append(v)
    g.set_outputs(draw(st.lists(st.sampled_from(values), min_size=1, max_size=3)))
    return g
