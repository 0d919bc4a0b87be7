"""max_pool2d_grad's vectorised path (windows abutting along the width, no overlap, no
padding: codegen/pool_grad.py) against the NumPy reference, exactly: ties, NaN and -inf
windows, row tails, uncovered rows and columns, both register files on any host."""
import itertools

import numpy as np
import pytest

from lepton.compile import CompileResult
from lepton.compiler.codegen import gemm
from lepton.compiler.codegen.grad_kernels import _Windows
from lepton.compiler.codegen.pool_grad import vector_max_pool_grad_fits
from lepton.ir import Graph, interpret
from lepton.ir.types import TensorType, float32, float64

SHAPES = [(2, 3, 8, 8), (1, 2, 33, 35), (2, 1, 5, 70), (1, 1, 4, 2), (1, 2, 16, 32),
          (1, 1, 3, 18)]
WINDOWS = [((2, 2), (2, 2)), ((1, 2), (1, 2)), ((3, 2), (3, 2)), ((2, 2), (3, 2)),
           ((1, 1), (1, 1)), ((2, 1), (4, 1)),
           ((3, 3), (2, 2)), ((2, 2), (2, 3))]   # the last two: the scalar path


def _graph(t, shape, kernel, stride):
    n, c, h, w = shape
    ho, wo = (h - kernel[0]) // stride[0] + 1, (w - kernel[1]) // stride[1] + 1
    g = Graph("pool_grad")
    x, dy = g.input(TensorType(t, shape)), g.input(TensorType(t, (n, c, ho, wo)))
    g.set_outputs([g.add("max_pool2d_grad", [x, dy], kernel=kernel, stride=stride,
                         padding=(0, 0))])
    return g, (n, c, ho, wo)


@pytest.mark.parametrize("wide", [False, True], ids=["avx2", "avx512"])
@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_max_pool_grad_matches_reference_exactly(wide, dt, monkeypatch):
    monkeypatch.setattr(gemm, "_wide_registers", lambda: wide)
    monkeypatch.setenv("LEPTON_CACHE", "0")     # the other width's code is not on disk
    rng = np.random.default_rng(3)
    t = float32 if dt == np.float32 else float64
    vector = 0
    for shape, (kernel, stride) in itertools.product(SHAPES, WINDOWS):
        if kernel[0] > shape[2] or kernel[1] > shape[3]:
            continue
        g, dy_shape = _graph(t, shape, kernel, stride)
        x = rng.integers(-2, 3, shape).astype(dt)        # many ties: the first maximum wins
        x[0, 0, 0, :3] = np.nan                          # a NaN wins its window
        x[-1, -1, -2:, -3:] = -np.inf                    # an all -inf window
        dy = rng.standard_normal(dy_shape).astype(dt)
        (got,) = CompileResult(g, None, None).executable(x, dy)
        (want,) = interpret(g, x, dy)
        np.testing.assert_array_equal(got, want, err_msg=f"{shape} {kernel} {stride}")
        vector += vector_max_pool_grad_fits(_Windows(g.outputs[0], shape), t)
    assert vector > 20     # most cases took the vector path
