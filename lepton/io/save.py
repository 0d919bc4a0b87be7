"""`lp.save`: a model traced, optimised and written as one `.lepton` file (archive.py).

    lp.save(model, "model.lepton", (x,))                  # fixed shapes: x's
    lp.save(model, "model.lepton", (x,), batch_axis=0)    # any batch size along axis 0

The graph is saved optimised (the pass pipeline has run) but not lowered: loading compiles it
for the CPU it runs on. The arrays the model reads from its closure (a module's parameters) stay
inputs of the graph and are stored as `.npy` members, fed to the graph at every call.

With `batch_axis`, every input and output must have the batch along that axis, and the model
must treat the rows independently (as inference does: BatchNorm in eval mode, no reduction over
the batch). The graph is saved for each size class, the powers of two 1, 2, 4, ... up to
`max_batch` (default: the example's batch rounded up to a power of two, at least 64).
"""
from __future__ import annotations

import io

import numpy as np

from ..compile import CompiledFunction
from ..compiler.pipeline import run_pipeline
from ..frontends.pytree import tree_map
from ..ir.printer import print_graph
from .archive import FORMAT, FORMAT_VERSION, write_archive
from .sources import write_bytes
from .tracing import trace_model


def save(fn_or_module, path, example_args, batch_axis: int | None = None, *,
         max_batch: int | None = None) -> None:
    """Writes fn_or_module, traced on example_args, to `path` (a path, a binary file object
    or an fsspec URL); see the module docstring."""
    from .. import __version__
    fn = fn_or_module.fn if isinstance(fn_or_module, CompiledFunction) else fn_or_module
    example_args = tuple(example_args)
    if batch_axis is None:
        if max_batch is not None:
            raise ValueError("max_batch needs batch_axis")
        classes = {None: example_args}
    else:
        classes = _size_classes(example_args, batch_axis, max_batch)
    traced = {b: trace_model(fn, args, batch_axis) for b, args in classes.items()}
    first = next(iter(traced.values()))
    for b, t in traced.items():
        _check_class(t, b, first, batch_axis)
    members, graphs = {}, []
    for b, t in traced.items():
        member = "graphs/main.ir" if b is None else f"graphs/b{b}.ir"
        optimised, _ = run_pipeline(t.graph)
        members[member] = print_graph(optimised).encode()
        graphs.append({"batch": b, "file": member})
    weights = []
    for k, (name, a) in enumerate(first.weights):
        buf = io.BytesIO()
        a = np.ascontiguousarray(a)
        # ml_dtypes' types (bfloat16, float8, int4...) as their bits: .npy cannot name them
        np.save(buf, a.view(f"u{a.itemsize}") if a.dtype.isbuiltin == 2 else a,
                allow_pickle=False)
        members[f"weights/{k}.npy"] = buf.getvalue()
        weights.append({"name": name, "file": f"weights/{k}.npy", "shape": list(a.shape),
                        "dtype": a.dtype.name})
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "lepton_version": __version__,
                "name": first.graph.name, "signature": first.signature.to_json(),
                "max_batch": None if batch_axis is None else max(classes),
                "graphs": graphs, "weights": weights}
    buf = io.BytesIO()
    write_archive(buf, manifest, members)
    write_bytes(path, buf.getvalue())


def _size_classes(example_args: tuple, axis: int, max_batch: int | None) -> dict:
    """{size: arrays of example_args' shapes and dtypes with that batch} for each class."""
    if isinstance(axis, bool) or not isinstance(axis, int) or axis < 0:
        raise ValueError(f"batch_axis must be a non-negative int, got {axis!r}")
    sizes = set()

    def batch(a):
        a = np.asarray(a)
        if a.ndim <= axis:
            raise ValueError(f"batch_axis={axis}, but an example argument has shape "
                             f"{a.shape}: every input needs the batch along that axis")
        sizes.add(a.shape[axis])
        return a
    example_args = tree_map(batch, example_args)
    if len(sizes) > 1:
        raise ValueError(f"the example arguments disagree on the batch size along axis {axis}: "
                         f"{sorted(sizes)}")
    top = max_batch if max_batch is not None else max(64, *sizes)
    if top < 1:
        raise ValueError(f"max_batch must be at least 1, got {max_batch}")
    top = 1 << (top - 1).bit_length()
    out = {}
    for k in range(top.bit_length()):
        b = 1 << k
        out[b] = tree_map(lambda a: np.zeros(a.shape[:axis] + (b,) + a.shape[axis + 1:],
                                             a.dtype), example_args)
    return out


def _check_class(t, b, first, axis) -> None:
    """A size class's trace must read the same weights as the others and have the batch
    along `axis` of every output."""
    if [(n, a.shape, a.dtype) for n, a in t.weights] != \
            [(n, a.shape, a.dtype) for n, a in first.weights]:
        raise ValueError(f"{t.graph.name} reads other arrays at batch size {b} than at batch "
                         f"size 1: it cannot be saved with batch_axis")
    outs = t.graph.outputs
    if b is not None and (t.signature != first.signature or
                          any(len(v.shape) <= axis or v.shape[axis] != b for v in outs)):
        raise ValueError(f"{t.graph.name}: with batch_axis={axis} every output must have the "
                         f"batch along axis {axis}, but at batch size {b} the outputs are "
                         f"{', '.join(str(v.type) for v in outs)}")
