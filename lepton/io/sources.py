"""Where a model file is read from or written to: a local path, a binary file object, or a URL
that fsspec opens (`s3://bucket/m.lepton`, `memory://m.lepton`; the optional [remote] extra).

    data, label = read_bytes("memory://m.lepton")     # label names it in error messages
    write_bytes("model.lepton", data)                 # a local file is replaced atomically
"""
from __future__ import annotations

import os
import re
import tempfile

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")


def is_url(s: str) -> bool:
    return bool(_URL.match(s)) and not s.startswith("file://")


def label_of(source) -> str:
    if hasattr(source, "read") or hasattr(source, "write"):
        return str(getattr(source, "name", "<file object>"))
    return os.fspath(source)


def _fsspec():
    try:
        import fsspec
    except ImportError:
        raise ImportError("reading or writing a model at a URL needs fsspec: "
                          "pip install 'lepton[remote]' (or pip install fsspec)") from None
    return fsspec


def read_bytes(source) -> tuple[bytes, str]:
    """The whole content of `source` and a label for messages; FileNotFoundError when absent."""
    label = label_of(source) if not isinstance(source, bytes) else "<bytes>"
    if isinstance(source, (bytes, bytearray)):
        return bytes(source), label
    if hasattr(source, "read"):
        data = source.read()
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError(f"{label}: open the file in binary mode ('rb')")
        return bytes(data), label
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"expected a path, a URL or a binary file object, got "
                        f"{type(source).__name__}")
    path = os.fspath(source)
    if is_url(path):
        with _fsspec().open(path, "rb") as f:
            return f.read(), label
    with open(path.removeprefix("file://"), "rb") as f:
        return f.read(), label


def write_bytes(dest, data: bytes) -> None:
    if hasattr(dest, "write"):
        dest.write(data)
        return
    path = os.fspath(dest)
    if is_url(path):
        with _fsspec().open(path, "wb") as f:
            f.write(data)
        return
    path = path.removeprefix("file://")
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), prefix=".lepton-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)   # mkstemp's 0600 would hide the model from other users
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
