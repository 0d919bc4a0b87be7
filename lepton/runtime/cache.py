"""The on-disk cache of compiled code: object files keyed by structure, so a warm compile of a
model seen before skips lowering and LLVM (the slow part) and loads the code in a millisecond.

    cache = DiskCache.from_config()                 # None when disabled
    key = cache_key(canonical_ir_text)
    hit = cache.get(key)                            # -> (object bytes, metadata dict) or None
    cache.put(key, obj, {"scratch_bytes": 0, ...})

The key hashes the canonical IR text (no source locations), the target CPU and its features,
the preferred vector width, the llvmlite version and the source files of Lepton's compiler
(name, size and modification time), so a changed code generator never loads stale code.
Entries are written atomically; an unreadable entry is a miss, and so is an object whose bytes
are not the ones written (their hash is kept in the metadata). `cache.part("routines")` and
`cache.part("kernels")` are the subdirectories where the shared GEMM routines (routines.py)
and big kernels (kernel_cache.py) are kept one by one, so later models made of them skip LLVM
for them.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import pathlib
import tempfile

from .jit import target_key


@functools.cache
def compiler_fingerprint() -> str:
    """A hash of every source file of lepton/compiler and lepton/ir (they decide the code), each
    by its name, size and modification time, as Python validates its .pyc files: a stat per
    file (reading and hashing them all was most of a fresh process's warm compile)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    files, todo = [], [os.path.join(root, "compiler"), os.path.join(root, "ir")]
    while todo:     # (os.scandir: a third of os.walk's time, on a warm compile's path)
        for e in os.scandir(todo.pop()):
            if e.name.endswith(".py"):
                files.append(e)
            elif e.name != "__pycache__" and e.is_dir():
                todo.append(e.path)
    h = hashlib.sha256()
    for e in sorted(files, key=lambda e: e.path):
        st = e.stat()
        h.update(f"{e.path[len(root):]}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def cache_key(canonical_ir: str, flags: str = "O3", width: int | None = None) -> str:
    """The key of code compiled from `canonical_ir` with `flags` for vectors of `width` bits."""
    h = hashlib.sha256()
    for part in (canonical_ir, target_key(width), compiler_fingerprint(), flags):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


_DIGEST = "object_sha256"   # in an entry's metadata: the hash of its object file


class DiskCache:
    def __init__(self, directory: str):
        self.dir = pathlib.Path(directory)
        self._path = str(self.dir)

    @staticmethod
    def from_config(directory: str | None, enabled: bool) -> "DiskCache | None":
        return DiskCache(directory) if enabled and directory else None

    def part(self, name: str) -> "DiskCache":
        """The cache in the subdirectory `name` (e.g. the shared routines', routines.py)."""
        return DiskCache(str(self.dir / name))

    def __contains__(self, key: str) -> bool:
        return (self.dir / f"{key}.o").is_file() and (self.dir / f"{key}.json").is_file()

    def get(self, key: str) -> tuple[bytes, dict] | None:
        """The entry, or None; an object whose bytes are not the ones written (a damaged
        file: loading it could crash the process) is a miss too."""
        base = os.path.join(self._path, key)     # (plain paths: a warm compile gets ~11)
        try:
            with open(base + ".o", "rb") as f:
                obj = f.read()
            with open(base + ".json", "rb") as f:
                meta = json.loads(f.read())
        except (OSError, ValueError):
            return None
        if not isinstance(meta, dict) or meta.get(_DIGEST) != hashlib.sha256(obj).hexdigest():
            return None
        return obj, meta

    def put(self, key: str, obj: bytes, meta: dict) -> None:
        """Best effort: a cache that cannot be written is simply not used."""
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            self._write(f"{key}.o", obj)
            meta = {**meta, _DIGEST: hashlib.sha256(obj).hexdigest()}
            self._write(f"{key}.json", json.dumps(meta).encode())
        except OSError:
            pass

    def _write(self, name: str, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".tmp-")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, self.dir / name)
