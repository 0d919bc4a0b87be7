"""A runner turns a workload into a zero-argument call for one framework: NumPy, Lepton, and (in
peers.py) PyTorch eager, torch.compile, jax.jit and onnxruntime.

    >>> r = get_runner("numpy")
    >>> p = r.prepare(WORKLOADS["W5"], args)      # compile here, if the framework compiles
    >>> y = p.fetch(p.call())                     # a NumPy array, checked against the reference

`call` is what is timed: arguments are bound (and moved to the framework's own tensors) once in
`prepare`, and a lazy framework's call blocks until the result is ready.
"""
from __future__ import annotations

import importlib.util
import os
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .workloads import Workload


@dataclass(frozen=True)
class Prepared:
    call: Callable[[], Any]
    fetch: Callable[[Any], np.ndarray]
    warm_s: float | None = None       # a second compile of the same model (Lepton's disk cache)


class Runner:
    """One framework. Subclasses set `name` and implement `prepare`."""
    name = "?"
    modules: tuple[str, ...] = ()      # the Python modules it needs

    def unavailable(self) -> str | None:
        """Why this framework cannot run here (None: it can). Cheap: no heavy imports."""
        for m in self.modules:
            if importlib.util.find_spec(m) is None:
                return f"{m} is not installed"
        return None

    def setup(self) -> None:
        """Imports and one-thread settings; called once per process before any prepare."""

    def version(self) -> str:
        return ""

    def unsupported(self, workload: Workload) -> str | None:
        """Why this workload is not run by this framework (None: it is)."""
        return None

    def prepare(self, workload: Workload, args: tuple[np.ndarray, ...]) -> Prepared:
        raise NotImplementedError(f"{type(self).__name__}.prepare")


def _identity(x):
    return x


class NumpyRunner(Runner):
    """The NumPy column: the workload's own float32 NumPy implementation."""
    name = "NumPy"
    modules = ("numpy",)

    def version(self) -> str:
        return np.__version__

    def prepare(self, workload, args):
        impl = workload.numpy_impl
        return Prepared(lambda: impl(*args), _identity)


class LeptonRunner(Runner):
    """Lepton: `lp.compile(model, example_args=args)`, then calls of the compiled function."""
    name = "Lepton"
    modules = ("lepton",)

    def unavailable(self):
        import lepton
        if not callable(getattr(lepton, "compile", None)):
            return "lepton.compile is not available yet"
        return None

    def setup(self):
        import lepton
        self.lp = lepton
        # a cache of this run only: the first compile of a workload is cold, the second warm
        os.environ["LEPTON_CACHE_DIR"] = tempfile.mkdtemp(prefix="lepton-bench-")

    def version(self):
        return getattr(self.lp, "__version__", "")

    def prepare(self, workload, args):
        f = self.lp.compile(workload.model, example_args=tuple(args))
        t0 = time.perf_counter()
        self.lp.compile(workload.model, example_args=tuple(args))
        return Prepared(lambda: f(*args), to_numpy, warm_s=time.perf_counter() - t0)


def to_numpy(out):
    """A framework's result as NumPy: an array, or a tuple of arrays for several outputs."""
    if isinstance(out, (tuple, list)):
        return tuple(np.asarray(o) for o in out)
    return np.asarray(out)


def framework_names() -> list[str]:
    """Every framework, in table order: NumPy, the peers, Lepton."""
    from .peers import PEERS
    return ["NumPy", *PEERS, "Lepton"]


def get_runner(name: str) -> Runner:
    """The runner for a framework name (case-insensitive; peers also by alias, e.g. "ort")."""
    from .peers import PEERS, peer_name
    key = name.strip().lower()
    if key == "numpy":
        return NumpyRunner()
    if key == "lepton":
        return LeptonRunner()
    return PEERS[peer_name(name)]()
