"""ONNX's OptionalGetElement and OptionalHasElement on what Lepton's graphs carry: tensors.

Lepton refuses optional- and sequence-typed graph inputs (loader.py) and has no Optional op, so
an input that reaches these nodes is a tensor or is omitted:

    OptionalGetElement(x)    -> x          (the spec: a tensor input is returned as is)
    OptionalHasElement(x)    -> True       (a bool scalar)
    OptionalHasElement()     -> False      (no input, or an empty input name)
"""
from __future__ import annotations

import numpy as np

from ..tensor import Tensor, constant


def get_element(n) -> Tensor:
    return n.x(0)


def has_element(n) -> Tensor:
    if len(n.inputs) > 1:
        n.invalid(f"takes at most 1 input, got {len(n.inputs)}")
    return constant(np.array(n.opt(0) is not None))
