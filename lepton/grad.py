"""`lp.grad` and `lp.value_and_grad`, as in JAX: functions that return the gradient of a scalar
function with respect to some of its arguments (pytrees of arrays).

    >>> df = lp.grad(lambda x, w: lp.sum(lp.tanh(x @ w)), argnums=1)
    >>> dw = df(x, w)                          # NumPy in, NumPy out: compiled, cached per signature
    >>> loss, grads = lp.value_and_grad(loss_fn)(params, x, labels)   # grads: a dict like params
    >>> lp.compile(df); lp.trace(df, x, w); lp.grad(lp.grad(f))       # all ordinary functions

How: called on NumPy arrays, the function compiles itself with `lp.compile`'s machinery (so it
caches per signature like any compiled function). Called inside a trace (on Tensors; this is
what compiling it does), it runs `fn` right there on fresh aliases of the differentiated
arguments and appends the gradient computed by `lepton.compiler.autodiff.backward` to the
graph being traced. A gradient is therefore ordinary IR in the caller's graph, so it can be
compiled, traced, and differentiated again (`grad(grad(f))`, or grad of a function calling
grad). Because fn runs in the caller's trace, it may also close over the caller's tensors
(`lp.grad(lambda x: lp.sum(lp.grad(f)(x) * v))(x)` is a Hessian-vector product), and the
aliases keep a value passed twice, or captured as well as passed, from being confused with the
argument being differentiated.

Rules: fn must return a scalar (a 0-d float tensor); the differentiated arguments' leaves must
be floats (pass integer data such as labels as other arguments); argnums is an int (the
gradient has that argument's pytree shape) or a tuple (a tuple of such gradients).
"""
from __future__ import annotations

import functools

from .compile import CompiledFunction, compile as _compile
from .compiler.autodiff import GradientError, backward, check_scalar_output
from .frontends.pytree import tree_flatten, tree_paths, tree_unflatten
from .frontends.tensor import Tensor, current_graph, graph_of, lift, value_in
from .frontends.trace import graph_name
from .ir.emit import Emitter

__all__ = ["grad", "value_and_grad", "GradientError"]


class GradFunction:
    """The function `grad` / `value_and_grad` return (module docstring)."""

    def __init__(self, fn, argnums, with_value: bool):
        if not callable(fn):
            raise TypeError(f"grad needs a function, got {type(fn).__name__}")
        if isinstance(fn, CompiledFunction):  # differentiate what it computes
            fn = fn.fn
        if isinstance(argnums, bool) or not isinstance(argnums, (int, tuple)) or (
                isinstance(argnums, tuple) and (not argnums or not all(
                    isinstance(a, int) and not isinstance(a, bool) for a in argnums))):
            raise TypeError(f"argnums must be an int or a non-empty tuple of ints, got "
                            f"{argnums!r}")
        if isinstance(argnums, tuple) and len(set(argnums)) != len(argnums):
            raise ValueError(f"argnums {argnums} repeats an argument")
        self.fn = fn
        self.argnums = argnums
        self.with_value = with_value
        self.fn_name = graph_name(fn)
        functools.update_wrapper(self, fn, updated=())
        self.__name__ = ("value_and_grad_" if with_value else "grad_") + self.fn_name
        self._compiled = None

    def __repr__(self) -> str:
        kind = "value_and_grad" if self.with_value else "grad"
        return f"<{kind} of {self.fn_name}, argnums={self.argnums}>"

    def __call__(self, *args):
        if current_graph() is None and not any(isinstance(x, Tensor)
                                               for x in tree_flatten(args)[0]):
            if self._compiled is None:
                self._compiled = _compile(self)
            return self._compiled(*args)
        return self._in_trace(args)

    # -- inspection of the compiled form (as lp.compile's functions offer) ----------------------
    def ir(self) -> str:
        return self._compiled_or_raise().ir()

    def stats(self) -> dict:
        return self._compiled_or_raise().stats()

    def _compiled_or_raise(self):
        if self._compiled is None:
            raise RuntimeError(f"{self.__name__} has not been compiled yet: call it on arrays")
        return self._compiled

    # -- the traced path -----------------------------------------------------------------------
    def _in_trace(self, args):
        nums = (self.argnums,) if isinstance(self.argnums, int) else self.argnums
        for k in nums:
            if not -len(args) <= k < len(args):
                raise GradientError(f"grad of {self.fn_name}: argnums={self.argnums} but "
                                    f"{self.fn_name} was called with {len(args)} arguments")
        nums = tuple(k % len(args) for k in nums)
        if len(set(nums)) != len(nums):
            raise ValueError(f"argnums {self.argnums} repeats an argument")
        args = list(args)
        wrt, trees = [], []
        for k in nums:
            leaves, tree = tree_flatten(args[k])
            paths = tree_paths(args[k])
            aliases = []
            for leaf, path in zip(leaves, paths):
                t = lift(leaf)
                host = graph_of(t)  # raises for a tensor of a finished or another trace
                if not t.dtype.is_float:
                    raise GradientError(
                        f"grad of {self.fn_name}: argument {k}{path} is {t.type}; only float "
                        "arguments can be differentiated (pass integer inputs such as labels "
                        "as arguments outside argnums)")
                # a fresh value standing for this argument only (see the module docstring)
                alias = host.add("reshape", [value_in(t, host)], shape=t.shape)
                aliases.append(Tensor(alias, host))
            wrt.extend(a.value for a in aliases)
            trees.append((tree, len(aliases)))
            args[k] = tree_unflatten(tree, aliases)
        host = current_graph()
        if host is None:
            graph_of(*tree_flatten(args)[0])  # names the leaked tensor
        start = len(host.nodes)
        result = self.fn(*args)
        if isinstance(result, (tuple, list, dict)):
            raise GradientError(f"grad of {self.fn_name}: {self.fn_name} must return a scalar "
                                f"(a 0-d float tensor), got a {type(result).__name__}")
        try:
            out = lift(result)
        except TypeError:
            raise GradientError(f"grad of {self.fn_name}: {self.fn_name} must return a scalar "
                                f"tensor, got {type(result).__name__}") from None
        check_scalar_output(out.value, f"{self.fn_name} (differentiated by grad)")
        grads = backward(Emitter(host), host.nodes[start:], out.value, wrt)
        tensors = [Tensor(v, host) for v in grads]
        per_arg, at = [], 0
        for tree, n in trees:
            per_arg.append(tree_unflatten(tree, tensors[at:at + n]))
            at += n
        g = per_arg[0] if isinstance(self.argnums, int) else tuple(per_arg)
        return (out, g) if self.with_value else g


def grad(fn, argnums=0) -> GradFunction:
    """The function computing the gradient of scalar-valued `fn` with respect to its argument
    `argnums` (an int, or a tuple: then a tuple of gradients). See the module docstring."""
    return GradFunction(fn, argnums, with_value=False)


def value_and_grad(fn, argnums=0) -> GradFunction:
    """Like `grad`, but the function returns (fn's value, the gradient)."""
    return GradFunction(fn, argnums, with_value=True)
