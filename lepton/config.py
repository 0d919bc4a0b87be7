"""The one place that reads Lepton's environment switches (read at each compile, not at import).

- LEPTON_DUMP=dir     write the IR before and after every pass, and the LLVM IR, into dir
- LEPTON_DEBUG=1      run the IR verifier after every pass
- LEPTON_CACHE_DIR    where compiled code is cached on disk (default ~/.cache/lepton)
- LEPTON_CACHE=0      do not use the disk cache
- LEPTON_NUM_THREADS  threads a kernel may use (default: the CPUs this process may run on, and
                      no more than its cgroup's CPU quota allows, see cgroup.py)
- LEPTON_COMPILE_THREADS  LLVM modules compiled at once (default: as LEPTON_NUM_THREADS's
                      default, at most 8; LEPTON_NUM_THREADS does not change it)
- LEPTON_VECTOR_WIDTH=256|512  force the SIMD width on an AVX-512 host (default: measured once)
The thread count and the vector width change generated code; both are part of the cache key.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from .cgroup import cpu_limit


@dataclass(frozen=True)
class Config:
    dump_dir: str | None
    debug: bool
    cache_dir: str
    cache: bool
    threads: int
    compile_threads: int
    vector_width: int | None     # None: chosen per host (lepton/tuning.py)


def current() -> Config:
    cpus = _cpus()
    return Config(dump_dir=os.environ.get("LEPTON_DUMP") or None,
                  debug=os.environ.get("LEPTON_DEBUG", "") not in ("", "0"),
                  cache_dir=os.environ.get("LEPTON_CACHE_DIR")
                  or os.path.join(os.path.expanduser("~"), ".cache", "lepton"),
                  cache=os.environ.get("LEPTON_CACHE", "1") not in ("", "0"),
                  threads=_threads("LEPTON_NUM_THREADS", cpus),
                  compile_threads=_threads("LEPTON_COMPILE_THREADS", min(8, cpus)),
                  vector_width=_vector_width(os.environ.get("LEPTON_VECTOR_WIDTH", "")))


def _vector_width(text: str) -> int | None:
    if not text.strip():
        return None
    if text.strip() in ("256", "512"):
        return int(text)
    raise ValueError(f"LEPTON_VECTOR_WIDTH must be 256 or 512 (bits), got {text!r}")


def _threads(name: str, default: int) -> int:
    text = os.environ.get(name, "")
    if not text.strip():
        return default
    try:
        return max(1, int(text))
    except ValueError:
        raise ValueError(f"{name} must be a positive integer, got {text!r}") from None


def _cpus() -> int:
    """The CPUs this process may run on, and no more than its cgroup's CPU quota allows."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 1
    return min(cpus, cpu_limit() or cpus)
