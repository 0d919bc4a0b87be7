"""The JIT engine: LLVM IR text -> optimised object code for the host CPU -> loaded functions.

    >>> lib = jit_compile(llvm_ir_text)
    >>> addr = lib.address("lepton_main")

Code goes through an object file (`compile_object`), which the disk cache can keep: loading one
back costs about a millisecond. Each `NativeLibrary` owns its MCJIT engine; dropping the object
frees the code.
"""
from __future__ import annotations

import ctypes.util
import functools
import os
import threading

import llvmlite
import llvmlite.binding as llvm

from .vector_width import width_features
from . import threads

_lock = threading.Lock()


@functools.cache
def _init() -> None:
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    threads.register_symbol()


@functools.cache
def host_cpu() -> tuple[str, str]:
    """(LLVM's name for the host CPU, its features string); asked of LLVM once per process
    (a few ms each time, and every cache key needs it)."""
    _init()
    return llvm.get_host_cpu_name(), llvm.get_host_cpu_features().flatten()


def machine_features(features: str, width: int | None) -> str:
    """The features string for a target machine preferring `width`-bit vectors (None: LLVM's
    own preference for the CPU)."""
    extra = width_features(width, features)
    return f"{features},{extra}" if extra and features else extra or features


def make_target_machine(cpu: str, features: str, width: int | None = None):
    """A target machine for the default triple, `cpu` and `features`, preferring `width`."""
    _init()
    target = llvm.Target.from_default_triple()
    return target.create_target_machine(cpu=cpu, features=machine_features(features, width),
                                        opt=3, reloc="default", codemodel="jitdefault")


def new_target_machine(width: int | None = None):
    """A target machine for the host CPU and its features, preferring `width`-bit vectors. An
    MCJIT engine takes ownership of (and frees) the one it is given, so each engine gets its
    own: it must match the one the code was compiled with."""
    return make_target_machine(*host_cpu(), width)


@functools.cache
def target_machine(width: int | None = None):
    """The shared host target machine for optimisation and assembly (never given to an engine)."""
    return new_target_machine(width)


def target_key(width: int | None = None) -> str:
    """Everything about the target that changes generated code (the CPU, its features and the
    preferred vector width, as given to the target machine): part of every cache key."""
    cpu, features = host_cpu()     # (the triple is the target machines': the default one)
    return f"{llvm.get_default_triple()}|{cpu}|{machine_features(features, width)}|" \
           f"llvmlite {llvmlite.__version__}"


# LLVM's pipeline for a model's own kernels: O2. On the kernels Lepton emits (scalar loop nests
# the loop vectoriser turns into vector code) O3 gave no faster code in interleaved A/B runs of
# the benchmark workloads, but up to 3.5x the LLVM time (a softmax: 0.13 s against 0.04 s).
# The shared GEMM routines (routines.py), the hot loops, are compiled at O3, once per host.
MODEL_LEVEL = 2
ROUTINE_LEVEL = 3


def optimize(mod: "llvm.ModuleRef", level: int = 3, tm=None) -> None:
    """Runs LLVM's O`level` pipeline tuned for `tm` (default: the host's)."""
    tm = tm or target_machine()
    pto = llvm.create_pipeline_tuning_options(speed_level=level)
    pto.loop_vectorization = level >= 2
    pto.slp_vectorization = level >= 2
    pto.loop_unrolling = level >= 2
    pb = llvm.create_pass_builder(tm, pto)
    pb.getModulePassManager().run(mod, pb)


@functools.cache
def openmp_available() -> bool:
    """Loads libgomp into the process (generated code calls GOMP_parallel); False when the
    system has none, and then every kernel runs on one thread."""
    _init()
    if "OMP_WAIT_POLICY" not in os.environ:
        # libgomp's idle threads spin ~300k iterations by default: on a shared or oversubscribed
        # machine that burns the cores other work needs (a 2-core CI box ran 8x slower); spin
        # briefly, then sleep. Read when libgomp loads, so it must be set first.
        os.environ.setdefault("GOMP_SPINCOUNT", "10000")
    path = ctypes.util.find_library("gomp") or "libgomp.so.1"
    try:
        llvm.load_library_permanently(path)
    except RuntimeError:
        return False
    threads.note_openmp_loaded()
    return True


def compile_object(llvm_ir: str, opt_level: int = 3,
                   width: int | None = None) -> tuple[bytes, str]:
    """Verifies, optimises and compiles LLVM IR text for the host preferring `width`-bit
    vectors (lepton/tuning.py chooses it; None: LLVM's preference): (object code, optimised IR)."""
    with _lock:
        mod = llvm.parse_assembly(llvm_ir)
        tm = target_machine(width)
        mod.triple, mod.data_layout = tm.triple, str(tm.target_data)
        mod.verify()
        optimize(mod, opt_level, tm)
        return tm.emit_object(mod), str(mod)


class NativeLibrary:
    """Loaded native code (an object file: freshly compiled or from the disk cache); keeps its
    engine, and so its code, alive."""

    def __init__(self, obj: bytes, optimized_ir: str | None = None, width: int | None = None,
                 extra: list[bytes] = ()):
        """`extra`: more objects loaded into the same engine (symbols of each resolve in all)."""
        self.object = obj
        self.optimized_ir = optimized_ir
        self.width = width      # the vector width the code was compiled for
        with _lock:
            self._engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""),
                                                      new_target_machine(width))
            for o in (*extra, obj):
                self._engine.add_object_file(llvm.ObjectFileRef.from_data(o))
            self._engine.finalize_object()

    def address(self, name: str) -> int:
        addr = self._engine.get_function_address(name)
        if not addr:
            raise KeyError(f"no function {name!r} in the compiled module")
        return addr

    def global_address(self, name: str) -> int:
        addr = self._engine.get_global_value_address(name)
        if not addr:
            raise KeyError(f"no global {name!r} in the compiled module")
        return addr

    def assembly(self) -> str:
        if self.optimized_ir is None:
            raise RuntimeError("loaded from the disk cache: no IR to print")
        return target_machine(self.width).emit_assembly(llvm.parse_assembly(self.optimized_ir))


def jit_compile(llvm_ir: str, opt_level: int = 3, width: int | None = None) -> NativeLibrary:
    return NativeLibrary(*compile_object(llvm_ir, opt_level, width), width)
