"""LLVM IR text as llvmlite prints it, taken apart by function: what routines.py and
kernel_cache.py need to move functions into modules of their own.

    spans = definitions(text)                  # name -> (start, end) of `define ... { ... }`
    decl = declaration(text[s:e], "new.name")  # `declare` with the same types and attributes
    text = rename(text, {"old": "new"})        # every @"old" reference
    body, meta = local_metadata(body, metadata_of(text))
"""
from __future__ import annotations

import re

_DEFINE = re.compile(r'^define (?:internal )?[^@\n]*@"([^"]+)"\(', re.M)
DECLARE = re.compile(r'^(?:declare [^@\n]*@"([^"]+)"\(|@"([^"]+)" = external ).*$', re.M)
GLOBAL = re.compile(r'^@"([^"]+)" = .*$', re.M)
REF = re.compile(r'@"([^"]+)"')
_META_REF = re.compile(r"!(\d+)\b")
_META_DEF = re.compile(r"^!(\d+) = (.*)$", re.M)


def definitions(text: str) -> dict[str, tuple[int, int]]:
    """Each defined function's name -> the span of its definition (through its closing line)."""
    spans = {}
    for m in _DEFINE.finditer(text):
        spans[m[1]] = (m.start(), text.find("\n}\n", m.start()) + 3)
    return spans


def declarations(text: str) -> dict[str, str]:
    """Each declared function's or external global's name -> its line (`declare ...` or
    `@"name" = external global ...`)."""
    return {m[1] or m[2]: m[0] for m in DECLARE.finditer(text)}


def external(body: str) -> str:
    """A definition made callable from other modules."""
    return body.replace("define internal ", "define ", 1)


def declaration(body: str, symbol: str) -> str:
    """`declare` for a definition's header: its types and attributes, without argument names."""
    header = body[:body.index("\n")]
    head, _, rest = header.partition("(")
    args, _, attrs = rest.rpartition(")")
    ret = head.replace("define internal ", "", 1).replace("define ", "", 1)
    ret = ret[:ret.rindex("@")].strip()
    types = [re.sub(r'\s*%"?[^",]*"?$', "", a.strip()) for a in args.split(",")] if args else []
    return f'declare {ret} @"{symbol}"({", ".join(types)}) {attrs.strip()}\n'


def rename(text: str, symbols: dict[str, str]) -> str:
    if not symbols:
        return text
    return REF.sub(lambda m: f'@"{symbols.get(m[1], m[1])}"', text)


def metadata_of(text: str) -> dict[str, str]:
    """Numbered metadata node -> its definition."""
    return {m[1]: m[2] for m in _META_DEF.finditer(text)}


def local_metadata(body: str, metadata: dict[str, str]) -> tuple[str, str]:
    """(body, its metadata definitions) with the nodes it uses numbered 0, 1, ... in order of
    use, so a function's text does not depend on the module it was lowered in."""
    local: dict[str, str] = {}
    todo = _META_REF.findall(body)
    while todo:
        n = todo.pop(0)
        if n in metadata and n not in local:
            local[n] = str(len(local))
            todo += _META_REF.findall(metadata[n])

    def sub(m):
        return f"!{local.get(m[1], m[1])}"
    defs = "\n".join(f"!{local[n]} = {_META_REF.sub(sub, metadata[n])}" for n in local)
    return _META_REF.sub(sub, body), defs
