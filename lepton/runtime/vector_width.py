"""Which SIMD width generated code prefers on this host: 256 or 512 bits.

    >>> choose("+avx2,-avx512f", "znver3|...", measure)           # no AVX-512: never measures
    256
    >>> choose("+avx2,+avx512f", key, measure, cache_file=path)   # measures once, then reads path
    512

LLVM tunes some AVX-512 CPUs (skylake-avx512, icelake, rocketlake...) to prefer 256-bit vectors,
because 512-bit code lowered the clock of early parts; for Lepton's kernels 512 bits were up to
1.7x faster on such a host, on others 256 may win. So on an AVX-512 host the choice is measured:
`measure` compiles the same kernels at each width and returns their seconds; the faster width is
kept, remembered in a small JSON file keyed by the host (CPU name, features, llvmlite version)
so later processes read it. Without AVX-512 there is nothing to choose. The chooser takes the
features, the measuring function and the file as arguments so tests can inject them.
"""
from __future__ import annotations

import json
import os
import pathlib
import tempfile
from typing import Callable

WIDTHS = (256, 512)
FILE_NAME = "vector_width.json"

# seconds per width for the same work; lepton/tuning.py measures Lepton's own kernels
Measure = Callable[[tuple[int, ...]], dict[int, float]]


def has_avx512(features: str) -> bool:
    """Whether an LLVM features string ("+avx2,-avx512f,...") enables AVX-512 Foundation."""
    return "+avx512f" in features.split(",")


def width_features(width: int | None, features: str) -> str:
    """The LLVM tuning feature that makes a target machine prefer `width`-bit vectors; "" where
    there is no choice (no AVX-512, or None: LLVM's own preference for the CPU)."""
    if width is None or not has_avx512(features):
        return ""
    return "+prefer-256-bit" if width == 256 else "-prefer-256-bit"


def choose(features: str, host_key: str, measure: Measure, *, forced: int | None = None,
           cache_file: str | os.PathLike | None = None, write: bool = True) -> int:
    """The vector width for this host. `forced` (LEPTON_VECTOR_WIDTH) wins without measuring;
    forcing 512 on a host without AVX-512 is a ValueError. Otherwise a host without AVX-512
    gets 256; one with it gets the width remembered for `host_key` in `cache_file`, or the
    faster under `measure` (then written there unless `write` is False). A tie keeps 256,
    LLVM's usual preference. An unreadable or malformed file is ignored (and rewritten)."""
    avx512 = has_avx512(features)
    if forced is not None:
        if forced not in WIDTHS:
            raise ValueError(f"LEPTON_VECTOR_WIDTH must be 256 or 512, got {forced!r}")
        if forced == 512 and not avx512:
            raise ValueError("LEPTON_VECTOR_WIDTH=512 needs a CPU with AVX-512 (avx512f); "
                             "this host has none: unset it or use 256")
        return forced
    if not avx512:
        return 256
    entries = _read(cache_file) if cache_file else {}
    known = entries.get(host_key)
    if isinstance(known, dict) and known.get("width") in WIDTHS:
        return known["width"]
    seconds = measure(WIDTHS)
    width = min(WIDTHS, key=lambda w: (seconds[w], w))
    if cache_file and write:
        entries[host_key] = {"width": width, "seconds": {str(w): seconds[w] for w in WIDTHS}}
        _write(pathlib.Path(cache_file), entries)
    return width


def _read(path) -> dict:
    try:
        data = json.loads(pathlib.Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write(path: pathlib.Path, entries: dict) -> None:
    """Atomic and best effort: a file that cannot be written means measuring again next time."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "w") as f:
            json.dump(entries, f, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except OSError:
        pass
