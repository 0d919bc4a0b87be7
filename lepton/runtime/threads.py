"""The process-wide cap on the threads of one parallel region, read by generated code at each
region (`lepton_thread_cap`, see lepton/compiler/codegen/parallel.py), and what a fork does to it.

libgomp is not fork-safe: a child forked after its thread pool started inherits the pool's
bookkeeping but not its threads, so the child's first parallel region waits for them forever.
After a fork, once libgomp has been loaded into the parent, the child's cap is 1: its kernels
run on the calling thread and never enter libgomp (still correct, the same arithmetic per
element as far as thread count is concerned). Use the "spawn" or "forkserver" start method for
workers that should run kernels on several threads.

    register_symbol()          # once, before any compiled code is loaded (jit.py does it)
    cap()                      # the current cap (a large number unless forked)
"""
from __future__ import annotations

import ctypes
import os

import llvmlite.binding as llvm

from ..compiler.codegen.parallel import THREAD_CAP

_UNCAPPED = 1 << 30
_cap = ctypes.c_int32(_UNCAPPED)     # generated code reads it through its address
_openmp_loaded = False


def register_symbol() -> None:
    """Makes `lepton_thread_cap` resolve to the cap for code loaded from now on."""
    llvm.add_symbol(THREAD_CAP, ctypes.addressof(_cap))


def note_openmp_loaded() -> None:
    """Called when libgomp is loaded into this process: a later fork caps the child."""
    global _openmp_loaded
    _openmp_loaded = True


def cap() -> int:
    return _cap.value


def _after_fork_in_child() -> None:
    if _openmp_loaded:
        _cap.value = 1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
