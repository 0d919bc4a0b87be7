"""The one place that reads Lepton's environment switches (read at each compile, not at import).

- LEPTON_DUMP=dir     write the IR before and after every pass, and the LLVM IR, into dir
- LEPTON_DEBUG=1      run the IR verifier after every pass
- LEPTON_CACHE_DIR    where compiled code is cached on disk (default ~/.cache/lepton)
- LEPTON_CACHE=0      do not use the disk cache
None of them changes generated code, so none enters the cache key.
"""
from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Config:
    dump_dir: str | None
    debug: bool
    cache_dir: str
    cache: bool


def current() -> Config:
    return Config(dump_dir=os.environ.get("LEPTON_DUMP") or None,
                  debug=os.environ.get("LEPTON_DEBUG", "") not in ("", "0"),
                  cache_dir=os.environ.get("LEPTON_CACHE_DIR")
                  or os.path.join(os.path.expanduser("~"), ".cache", "lepton"),
                  cache=os.environ.get("LEPTON_CACHE", "1") not in ("", "0"))
