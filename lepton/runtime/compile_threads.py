"""Independent LLVM modules compiled at the same time, one per compile thread.

    results = compile_all([(ir, level), ...], width, threads=2)   # [(object code, optimised IR)]

llvmlite takes one process-wide lock around every call into LLVM, so plain threads would only
take turns. LLVM itself allows concurrent work in distinct contexts: here each job parses its
module into an LLVM context of its own, and optimises and emits it with a target machine of its
own, so a compile thread touches nothing another thread uses, and its calls skip llvmlite's lock
(`_Lock` lets a compile thread through while it runs a job; every other thread still takes it).
The object code is the same bytes `jit.compile_object` makes for the module. With one thread, or
where llvmlite's lock is not what this expects (another llvmlite), the jobs run one after another
in the caller's thread.
"""
from __future__ import annotations

import functools
import threading
from concurrent.futures import ThreadPoolExecutor

import llvmlite.binding as llvm
from llvmlite.binding import ffi

from . import jit

_job = threading.local()     # .running: this thread is compiling a job of its own


class _Lock:
    """Stands in for llvmlite's lock: passes a thread that is running a job, else takes it."""

    def __init__(self, real):
        self._real = real

    def acquire(self, *args, **kwargs):
        return True if getattr(_job, "running", False) else self._real.acquire(*args, **kwargs)

    def release(self):
        if not getattr(_job, "running", False):
            self._real.release()


@functools.cache
def _unlockable() -> bool:
    """Installs `_Lock` in front of llvmlite's lock (once); False when it is not there."""
    outer = getattr(getattr(ffi, "lib", None), "_lock", None)
    real = getattr(outer, "_lock", None)
    if not (hasattr(real, "acquire") and hasattr(real, "release")):
        return False
    outer._lock = _Lock(real)
    return True


def compile_all(jobs: list[tuple[str, int]], width: int | None = None,
                threads: int = 1) -> list[tuple[bytes, str]]:
    """Each (LLVM IR text, optimisation level) compiled for the host preferring `width`-bit
    vectors: (object code, optimised IR) in the order of `jobs`. The biggest start first."""
    if threads <= 1 or len(jobs) <= 1 or not _unlockable():
        return [jit.compile_object(ir, level, width) for ir, level in jobs]
    jit._init()
    order = sorted(range(len(jobs)), key=lambda i: -len(jobs[i][0]))
    with ThreadPoolExecutor(min(threads, len(jobs)), thread_name_prefix="lepton-llvm") as pool:
        done = dict(zip(order, pool.map(lambda i: _compile(*jobs[i], width), order)))
    return [done[i] for i in range(len(jobs))]


def _compile(ir: str, level: int, width: int | None) -> tuple[bytes, str]:
    """One job in a compile thread: its own context and target machine (made under the lock),
    then LLVM without it."""
    context, tm = llvm.create_context(), jit.new_target_machine(width)
    mod = None
    _job.running = True
    try:
        mod = llvm.parse_assembly(ir, context)
        mod.triple, mod.data_layout = tm.triple, str(tm.target_data)
        mod.verify()
        jit.optimize(mod, level, tm)
        obj = tm.emit_object(mod)
        # llvmlite prints a module under the "C" locale, setting and restoring the process's
        # locale around it: two threads printing at once could leave "C" behind (Python's
        # text I/O then defaults to ASCII), so printing takes llvmlite's lock like any thread
        _job.running = False
        return obj, str(mod)
    finally:
        if mod is not None:
            mod.close()
        context.close()
        tm.close()
        _job.running = False
