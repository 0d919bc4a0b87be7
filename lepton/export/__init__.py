"""`lp.export`: a model compiled ahead of time into a shared library with its weights inside,
and a C header, for programs without Python or Lepton (API.md "A model's life cycle").

    lp.export(model, "out/libmlp.so", (x,), name="mlp")    # writes out/libmlp.so, out/mlp.h
    # C:  #include "mlp.h"   ...   int rc = mlp_run(inputs, outputs);
    #     cc main.c -Iout -Lout -lmlp -lm -Wl,-rpath,out

The code is compiled for the CPU of the machine that exports (its instruction set extensions
included) and for one thread, so it needs only the C library and libm; callers may run it from
several threads at once. Linking uses the system C compiler driver (`$CC`, default `cc`); where
there is none, the object file `NAME.o` and the header are written and `LinkError` says how to
link them.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess

import numpy as np

from .. import config
from ..compile import CompiledFunction
from ..ir.graph import Graph
from ..io.tracing import trace_model
from ..tuning import host_vector_width
from .header import header_text
from .library import build_library


class LinkError(RuntimeError):
    """No C compiler driver to link the library: the object file and header are written."""


def export(fn_or_module, path, example_args, name: str = "model") -> str:
    """Writes the shared library `path` and the header NAME.h beside it; returns the header's
    path. Inputs and outputs of NAME_run are the flattened arguments and results, in order."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"name must be a C identifier, got {name!r}")
    fn = fn_or_module.fn if isinstance(fn_or_module, CompiledFunction) else fn_or_module
    t = trace_model(fn, example_args)
    graph = _bake(t.graph, len(t.signature.inputs), [a for _, a in t.weights])
    lib = build_library(graph, name, host_vector_width(config.current()))
    path = os.path.abspath(os.fspath(path))
    out_dir = os.path.dirname(path)
    os.makedirs(out_dir, exist_ok=True)
    header = os.path.join(out_dir, f"{name}.h")
    with open(header, "w") as f:
        f.write(header_text(name, t.signature, lib.errors))
    obj = os.path.join(out_dir, f"{name}.o")
    with open(obj, "wb") as f:
        f.write(lib.object)
    _link(obj, path, name)
    os.unlink(obj)
    return header


def _bake(g: Graph, n_args: int, weights: list[np.ndarray]) -> Graph:
    """g with its inputs after the first n_args replaced by constants holding `weights`."""
    out = Graph(g.name)
    env = {v: out.input(v.type, v.loc) for v in g.inputs[:n_args]}
    for v, a in zip(g.inputs[n_args:], weights):
        env[v] = out.add("constant", [], value=np.array(a))
    for v in g.nodes:
        if v.op != "input":
            env[v] = out.add(v.op, [env[x] for x in v.inputs], loc=v.loc, **v.attrs)
    out.set_outputs([env[o] for o in g.outputs])
    return out


def _link(obj: str, path: str, name: str) -> None:
    cc = os.environ.get("CC") or "cc"
    command = [cc, "-shared", "-o", path, obj, "-lm"]
    if shutil.which(cc) is None:
        raise LinkError(f"export {name}: no C compiler driver ({cc!r}) to link the shared "
                        f"library; wrote the object file {obj} and the header. Link it with: "
                        f"cc -shared -o {path} {obj} -lm")
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode:
        raise LinkError(f"export {name}: linking failed ({' '.join(command)}):\n"
                        f"{proc.stderr.strip()}")
