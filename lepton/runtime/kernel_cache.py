"""Big kernels as object files of their own in the disk cache: a new model made of kernels
compiled before (a deeper stack of the same block, another model sharing its layers) skips
LLVM for them and compiles only its new kernels and its entry.

    model_ir, chunks = split_kernels(model_ir, kernel_names)
    objects = lookup(chunks, cache)        # None: not cached, compile it (and store it)
    lib = NativeLibrary(*compile_object(model_ir, ...), width, extra=objects)

A kernel is taken out of the model's module when its LLVM IR (with its helper functions,
`name.*`) has at least BIG characters and refers to nothing of the module but its helpers and
declarations (a control-flow kernel, which calls other kernels, stays). Its module defines it
and its helpers; the model's module declares it, and one engine loads both objects. The cache
key is the chunk's own text (its metadata numbered locally), so the same kernel in any model
is one entry. Without the disk cache the split is made only for compile threads to share
(compile_threads.py): on one thread one module compiles faster.
"""
from __future__ import annotations

from dataclasses import dataclass

from .cache import DiskCache, cache_key
from .irtext import REF, declaration, declarations, definitions, external, local_metadata, \
    metadata_of

BIG = 4000    # smaller kernels cost LLVM less than the ~4 ms a module of their own adds
SUBDIR = "kernels"   # of the disk cache's directory
compiled = 0         # kernels this process compiled on their own (the rest were loaded)


@dataclass(frozen=True)
class Chunk:
    name: str   # the kernel function
    ir: str     # a module defining it (external) and its helpers
    key: str    # its disk cache key


def split_kernels(llvm_ir: str, kernels, flags: str, width: int | None = None,
                  big: int = BIG) -> tuple[str, list[Chunk]]:
    """(the module with the big kernels declared instead of defined, their chunks)."""
    spans = definitions(llvm_ir)
    decls = declarations(llvm_ir)
    bodies = {n: llvm_ir[s:e] for n, (s, e) in spans.items()}
    refs = {n: set(REF.findall(b)) - {n} for n, b in bodies.items()}
    metadata = metadata_of(llvm_ir)
    moved: dict[str, set[str]] = {}
    for k in dict.fromkeys(kernels):
        if k not in bodies:
            continue
        members = {k} | {n for n in bodies if n.startswith(k + ".")}
        used = set().union(*(refs[m] for m in members)) - members
        others = {n for n in bodies if n not in members}
        if used - set(decls) or any(refs[n] & (members - {k}) for n in others) or \
                sum(len(bodies[m]) for m in members) < big:
            continue
        moved[k] = members
    if not moved:
        return llvm_ir, []
    chunks = []
    for k, members in moved.items():
        order = sorted(members, key=lambda n: spans[n])
        text = "".join(external(bodies[n]) if n == k else bodies[n] for n in order)
        text, meta = local_metadata(text, metadata)
        used = sorted(set().union(*(refs[m] for m in members)) - members)
        ir = "\n".join([decls[d] for d in used] + [text, meta])
        chunks.append(Chunk(k, ir, cache_key(ir, flags, width)))
    gone = set().union(*moved.values())
    parts, at = [], 0
    for n in sorted(gone, key=lambda n: spans[n]):
        s, e = spans[n]
        parts.append(llvm_ir[at:s])
        if n in moved:
            parts.append(declaration(bodies[n], n))
        at = e
    parts.append(llvm_ir[at:])
    return "".join(parts), chunks


def lookup(chunks: list[Chunk], cache: DiskCache) -> list[bytes | None]:
    """Each chunk's object code from the disk cache, None where it must be compiled."""
    cache = cache.part(SUBDIR)
    return [hit[0] if hit else None for hit in map(cache.get, (c.key for c in chunks))]


def store(chunks: list[Chunk], objects: list[bytes], cache: DiskCache) -> None:
    """Caches these chunks' freshly compiled objects."""
    global compiled
    cache = cache.part(SUBDIR)
    for c, obj in zip(chunks, objects):
        compiled += 1
        cache.put(c.key, obj, {"kernel": c.name})


def cached_objects(keys: list[str], cache: DiskCache) -> list[bytes] | None:
    """The objects of a cached model's kernels, or None when one is gone from the cache."""
    cache = cache.part(SUBDIR)
    objects = []
    for key in keys:
        hit = cache.get(key)
        if hit is None:
            return None
        objects.append(hit[0])
    return objects
