"""Reads the text form of `printer.py` back into a Graph: `parse(str(g)) == g`."""
from __future__ import annotations

import ast
import base64
import re

import numpy as np

from .graph import Graph
from .types import DTYPES, TensorType, parse_type


class ParseError(ValueError):
    def __init__(self, msg: str, lineno: int, line: str):
        super().__init__(f"line {lineno}: {msg}: {line.strip()!r}")


_HEADER = re.compile(r"graph\s+@([\w.\-]+)\((.*)\)\s*\{$")
_VALUE = re.compile(r"(%\d+)\s*:\s*(\w+\[[\d,\s]*\]|\([^()]*\))\s*=\s*(\w+)")
_REGION = re.compile(r"(\w+)\s*=\s*(graph\s+@.*)$")
_NAMES = {"True": True, "False": False, "inf": float("inf"), "nan": float("nan"),
          **DTYPES}


def _literal(node):
    """Evaluates attribute syntax: numbers, strings, tuples, lists, True/False/inf/nan, dtypes."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name) and node.id in _NAMES:
        return _NAMES[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_literal(node.operand)
    if isinstance(node, ast.Tuple):
        return tuple(_literal(e) for e in node.elts)
    if isinstance(node, ast.List):
        return [_literal(e) for e in node.elts]
    raise ValueError(f"unexpected attribute syntax {ast.dump(node)}")


def _split_brackets(text: str) -> tuple[str, str]:
    """Splits '[...] rest' at the bracket matching the first one, skipping string literals."""
    depth, quote = 0, None
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth == 0:
                return text[1:i], text[i + 1:]
    raise ValueError("unbalanced brackets")


def _attrs(text: str, type: TensorType) -> dict:
    call = ast.parse(f"f({text})", mode="eval").body
    out = {kw.arg: _literal(kw.value) for kw in call.keywords}
    if "value" in out:  # constants: a nested literal or base64 bytes, typed by the line's type
        v = out["value"]
        if isinstance(v, str):
            arr = np.frombuffer(base64.b64decode(v), dtype=type.dtype.np.newbyteorder("<"))
        else:
            arr = np.array(v, dtype=type.dtype.np)
        out["value"] = arr.astype(type.dtype.np).reshape(type.shape)
    return out


def parse(text: str) -> Graph:
    """Parses one graph (regions nested in it included); errors name the line."""
    lines = [(n, l) for n, l in enumerate(text.splitlines(), 1) if l.strip()]
    if not lines:
        raise ParseError("empty text", 0, "")
    g, at = _graph(lines, 0, lines[0][1])
    if at != len(lines):
        raise ParseError("text after the graph's closing '}'", *lines[at])
    return g


def _graph(lines, at: int, head: str) -> tuple[Graph, int]:
    """The graph whose header (text `head`) is lines[at], and the index after its '}'."""
    n = lines[at][0]
    m = _HEADER.match(head.strip())
    if not m:
        raise ParseError("expected 'graph @name(%0: f32[..], ...) {'", n, lines[at][1])
    g = Graph(m.group(1))
    env = {}
    for param in filter(None, (p.strip() for p in re.split(r",\s*(?=%)", m.group(2)))):
        name, type_text = param.split(":", 1)
        env[name.strip()] = g.input(TensorType.parse(type_text))
    at += 1
    while at < len(lines):
        n, line = lines[at]
        at += 1
        s = line.strip()
        if s == "}":
            return g, at
        try:
            if s.startswith("return"):
                rest = s[len("return"):].split("#")[0]
                g.set_outputs([env[t.strip()] for t in rest.split(",") if t.strip()])
                continue
            m = _VALUE.match(s)
            if not m:
                raise ValueError("expected '%N: type = op[attrs] %a, %b'")
            name, type = m.group(1), parse_type(m.group(2))
            rest = s[m.end():]
            attrs = {}
            if rest.startswith("["):
                attr_text, rest = _split_brackets(rest)
                attrs = _attrs(attr_text, type)
            operands, _, loc = rest.partition("#")
            inputs = [env[t.strip()] for t in operands.split(",") if t.strip()]
            while at < len(lines) and _REGION.match(lines[at][1].strip()):
                r = _REGION.match(lines[at][1].strip())
                attrs[r.group(1)], at = _graph(lines, at, r.group(2))
            v = g.add(m.group(3), inputs, loc=loc.strip() or None, **attrs)
            if v.type != type:
                raise ValueError(f"declared type {type} but the op gives {v.type}")
            env[name] = v
        except ParseError:
            raise
        except (ValueError, KeyError, SyntaxError, TypeError) as e:
            raise ParseError(str(e), n, line) from None
    raise ParseError("missing closing '}'", lines[-1][0], lines[-1][1])
