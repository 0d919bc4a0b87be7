"""Values a traced function reads without receiving them as arguments: captured arrays, modules'
parameters and Python scalars, the rule of torch.compile (API.md "Values a model reads").

    w = np.ones(3, np.float32)
    f = lp.compile(lambda x: x * w)
    f(x)            # multiplies by 1
    w[:] = 5        # in place: seen at the next call
    w = np.ones(3)  # rebound (even to another shape or dtype): seen too (a new signature)

Before a trace, `scan(fn)` walks what `fn` can reach: its closure cells, default arguments, the
globals its code names, and recursively the user functions, objects (`lp.nn.Module`s among them),
dicts, lists and tuples found there. Each NumPy array found gets a *source*: a function reading
it afresh from the same place (cell, global, attribute or item), so an array rebound there is
seen. During the trace, `Captures.lift(array)` turns an array the scan found into an input of
the graph (one per array, however often it is read); at each call `read()` fetches every
source's current array, without a copy, and tells when one changed shape or dtype (the caller
then traces again). Arrays the scan did not reach (built during the trace, or created by Lepton
itself) stay constants. Python scalars (int, float, bool, str) in cells, defaults and globals are
compile-time constants, guarded: `read()` reports a changed value as stale too, and so is a
module's `training` flag. A view of a found array (`w.T`) is read through the view: in-place
changes of w are seen, w rebound is not. NumPy arithmetic on a captured array (`w * 2`) runs
once, while tracing, as any Python code does: its result is a constant (write `lp.multiply(w,
2)` to have it computed at every call).

Code inside the lepton package, NumPy and the standard library is not scanned.
"""
from __future__ import annotations

import os
import sysconfig
import types

import numpy as np

_SCALARS = (bool, int, float, str)
_MAX_OBJECTS = 20000        # bounds a scan of a huge object graph (e.g. a data set in a list)
_LIBRARY_DIRS = tuple({os.path.join(os.path.abspath(p), "") for p in (
    sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"],
    sysconfig.get_paths()["platlib"], os.path.dirname(os.path.dirname(__file__)))})


class Source:
    """One place an array or scalar was found: `get()` reads it now, `name` says where."""
    __slots__ = ("get", "name")

    def __init__(self, get, name: str):
        self.get, self.name = get, name


def _user_code(code: types.CodeType) -> bool:
    path = code.co_filename
    return not path.startswith("<frozen") and not os.path.abspath(path).startswith(_LIBRARY_DIRS)


def _code_names(code: types.CodeType) -> set[str]:
    """The global and attribute names a code object (and the code nested in it) refers to."""
    names = set(code.co_names)
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            names |= _code_names(c)
    return names


def _dot(name: str, attr: str) -> str:
    return f"{name}.{attr}" if name else attr


def _cell(cell):
    return lambda: cell.cell_contents


def _key(d, k):
    return lambda: d[k]


def _attr(parent, name):
    return lambda: vars(parent())[name]


def _item(parent, k):
    return lambda: parent()[k]


def _fixed(x):
    return lambda: x


class _Scan:
    def __init__(self):
        self.arrays: dict[int, tuple[Source, np.ndarray]] = {}
        self.scalars: list[tuple[Source, object]] = []
        self.seen: set[int] = set()

    def value(self, x, get, name: str, depth: int) -> None:
        """Records x (read by `get`) if it is an array, or walks into it."""
        if isinstance(x, np.ndarray):
            self.arrays.setdefault(id(x), (Source(get, name), x))
        elif isinstance(x, _SCALARS) or x is None:
            pass
        elif id(x) in self.seen or len(self.seen) > _MAX_OBJECTS or depth > 12:
            return
        else:
            self.seen.add(id(x))
            self.container(x, get, name, depth + 1)

    def container(self, x, get, name: str, depth: int) -> None:
        if isinstance(x, dict):
            for k, v in list(x.items()):
                self.value(v, _item(get, k), f"{name}[{k!r}]", depth)
        elif isinstance(x, (list, tuple)):
            for i, v in enumerate(x):
                self.value(v, _item(get, i), f"{name}[{i}]", depth)
        elif isinstance(x, types.FunctionType):
            self.function(x, depth)
        elif isinstance(x, types.MethodType):
            self.value(x.__self__, _fixed(x.__self__), name.rsplit(".", 1)[0], depth)
            self.function(x.__func__, depth)
        elif isinstance(x, types.ModuleType):
            pass  # only the attributes code names (see `function`)
        elif isinstance(x, type):
            pass
        elif hasattr(x, "__dict__") and not type(x).__module__.startswith(("numpy", "builtins")):
            # Lepton's own objects are walked only where they hold user state: a Module's
            # attributes, the `fn` of a compiled or differentiated function.
            own = type(x).__module__.startswith("lepton.")
            state = getattr(x, "_lepton_state", False)
            if state and type(getattr(x, "training", None)) is bool:  # a module's mode
                self.scalars.append((Source(lambda: get().training, _dot(name, "training")),
                                     x.training))
            for k, v in list(vars(x).items()):
                if not own or state or k == "fn":
                    self.value(v, _attr(get, k), _dot(name, k), depth)
            call = getattr(type(x), "__call__", None)
            if isinstance(call, types.FunctionType):  # a callable object's own code
                self.function(call, depth)
            fwd = getattr(type(x), "forward", None)
            if isinstance(fwd, types.FunctionType):   # a Module's forward
                self.function(fwd, depth)

    def function(self, fn: types.FunctionType, depth: int) -> None:
        code = fn.__code__
        if not _user_code(code) or id(code) in self.seen:
            return
        self.seen.add(id(code))
        label = fn.__name__.replace("<lambda>", "lambda")
        for var, cell in zip(code.co_freevars, fn.__closure__ or ()):
            try:
                v = cell.cell_contents
            except ValueError:
                continue
            self.entry(v, _cell(cell), var, depth)
        for i, v in enumerate(fn.__defaults__ or ()):
            self.entry(v, _item(_fixed(fn.__defaults__), i),
                       f"default argument {i} of {label}", depth)
        g = fn.__globals__
        for n in sorted(_code_names(code)):
            if n not in g:
                continue
            v = g[n]
            if isinstance(v, types.ModuleType):
                self.module(v, code, depth)
            else:
                self.entry(v, _key(g, n), f"global {n}", depth)

    def entry(self, v, get, name: str, depth: int) -> None:
        """A variable of user code: a scalar there is guarded, anything else walked."""
        if isinstance(v, _SCALARS):
            self.scalars.append((Source(get, name), v))
        else:
            self.value(v, get, name, depth)

    def module(self, mod: types.ModuleType, code, depth: int) -> None:
        """`mod.NAME` for the names the code uses, when mod is the user's own module."""
        path = getattr(mod, "__file__", None)
        if not path or os.path.abspath(path).startswith(_LIBRARY_DIRS):
            return
        d = vars(mod)
        for n in sorted(_code_names(code)):
            if n in d and not isinstance(d[n], (types.ModuleType, type)):
                self.entry(d[n], _key(d, n), f"{mod.__name__}.{n}", depth)


class _Identity:
    """Hashes and compares an object by identity, and keeps it alive (so its id stays its)."""
    __slots__ = ("obj",)

    def __init__(self, obj):
        self.obj = obj

    def __hash__(self) -> int:
        return id(self.obj)

    def __eq__(self, other) -> bool:
        return isinstance(other, _Identity) and other.obj is self.obj


def function_key(fn):
    """A cache key equal for function objects that compute the same thing: the same code
    reading the same closure cells, globals and defaults (a lambda made anew in a training
    loop); the object itself for anything else."""
    if not isinstance(fn, types.FunctionType):
        return fn
    cells = tuple(_Identity(c) for c in fn.__closure__ or ())  # cells do not hash
    key = (fn.__code__, cells, _Identity(fn.__globals__), fn.__defaults__)
    try:
        hash(key)
    except TypeError:  # an unhashable default argument
        return fn
    return key


def scan(*roots, freeze: bool = False) -> "Captures":
    """The captures of a trace of callables/objects `roots` (the function, and any static
    arguments: a module passed as a static argument is read through it). With freeze, arrays
    read stay constants (only writes go through the captures)."""
    s = _Scan()
    for r in roots:
        s.value(r, _fixed(r), "", 0)
    return Captures(s.arrays, s.scalars, freeze)


class Captures:
    """The arrays a trace read from its closure (in the order they became graph inputs), the
    arrays it writes (`assign`) and the scalar guards; see the module docstring."""

    def __init__(self, found: dict, scalars: list, freeze: bool = False):
        self._found = found            # id(array) -> (Source, array); dropped after the trace
        self.sources: list[Source] = []
        self.types: list[tuple] = []   # (shape, dtype) of each source at the trace
        self.guards = [(src, type(v), v) for src, v in scalars]
        self.writes: list[Source] = []  # arrays written after each call, from the last outputs
        self._written: dict[int, tuple] = {}   # id(array) -> (Source, value) during the trace
        self._index: dict[int, object] = {}
        self._freeze = freeze

    def lift(self, x: np.ndarray, make_input):
        """The graph value standing for captured array x (its new value once the trace
        assigned it), or None when the scan did not find it (then it is a constant).
        `make_input(x)` adds an input of x's type."""
        v = self._index.get(id(x))
        if v is not None:
            return v
        hit = self._found.get(id(x))
        if hit is None or hit[1] is not x:
            hit = self._view_of_found(x)
        if hit is None or self._freeze:
            return None
        v = self._index[id(x)] = make_input(x)
        self.sources.append(hit[0])
        self.types.append((x.shape, x.dtype))
        return v

    def _view_of_found(self, x: np.ndarray):
        """(Source, x) for a view of a found array (`w.T`, `w[0]`): read through the view
        object itself, which sees in-place changes of w (not w rebound), or None."""
        base = x.base
        while isinstance(base, np.ndarray):
            hit = self._found.get(id(base))
            if hit is not None and hit[1] is base:
                src = Source(_fixed(x), f"a view of {hit[0].name}")
                self._found[id(x)] = (src, x)  # held for the trace: its id stays its own
                return src, x
            base = base.base
        return None

    def assign(self, x: np.ndarray, value) -> None:
        """Records that every call ends by writing graph value `value` into array x (in place),
        and makes later reads of x in this trace see `value`."""
        hit = self._found.get(id(x))
        src = hit[0] if hit is not None and hit[1] is x else Source(_fixed(x), "an array")
        self._written[id(x)] = (src, value)
        self._index[id(x)] = value

    def finish(self) -> list:
        """After the trace: the values to append to the graph's outputs (the writes, in order);
        keeps only what a call needs (no reference to unread arrays)."""
        self.writes = [src for src, _ in self._written.values()]
        values = [v for _, v in self._written.values()]
        self._found, self._index, self._written = {}, {}, {}
        return values

    def write(self, outs: list) -> None:
        """After a call: the written arrays' new values (the call's last outputs) into place."""
        for src, new in zip(self.writes, outs):
            dst = src.get()
            if type(dst) is not np.ndarray or dst.shape != new.shape or dst.dtype != new.dtype:
                raise ValueError(f"cannot write the new value of {src.name} "
                                 f"({new.dtype}{list(new.shape)}): it is now "
                                 f"{getattr(dst, 'dtype', type(dst).__name__)}"
                                 f"{list(getattr(dst, 'shape', ()))}")
            np.copyto(dst, new)

    def names(self) -> list[str]:
        return [s.name for s in self.sources]

    def read(self) -> list[np.ndarray] | None:
        """The captured arrays now, or None when one changed shape or dtype, was rebound to
        something else, or a guarded scalar changed: the trace no longer holds."""
        out = []
        try:
            for src, (shape, dt) in zip(self.sources, self.types):
                a = src.get()
                if type(a) is not np.ndarray or a.shape != shape or a.dtype != dt:
                    return None
                out.append(a)
            for src, t, v in self.guards:
                now = src.get()
                if type(now) is not t or (now != v and v == v):  # NaN stays NaN
                    return None
        except (KeyError, IndexError, ValueError, AttributeError, TypeError):
            return None
        return out


NO_CAPTURES = Captures({}, [])
