"""`lp.load_model`: a `.lepton` file (or an ONNX model) as a model with `predict`.

    m = lp.load_model("model.lepton")          # a path, a binary file object, a URL fsspec
    m = lp.load_model("memory://m.lepton")     # opens, or bytes; "x.onnx": through lp.from_onnx
    y = m.predict(x)

Everything in the file is checked at load, so a bad file fails here with a ValueError that
says what is wrong (not a zip, not Lepton's manifest, a newer format version, a missing or
corrupt member, IR that does not parse or verify, weights that do not match the graph, a graph
that does not match the signature). A missing file raises FileNotFoundError. Nothing from the
file is executed: graphs are parsed by Lepton's IR parser and weights read by
`numpy.load(allow_pickle=False)`.
"""
from __future__ import annotations

import io

import numpy as np

from ..ir.parser import parse
from ..ir.types import ML_DTYPES_NAMES as _ML_DTYPES, TensorType, dtype as to_dtype
from ..ir.verifier import verify
from .archive import read_archive
from .model import LoadedModel
from .signature import Signature
from .sources import read_bytes


def load_model(source):
    """The model stored at `source` (see the module docstring)."""
    data, label = read_bytes(source)
    if label.lower().endswith(".onnx"):
        from .onnx_model import OnnxModel
        return OnnxModel(data, label)
    manifest, members = read_archive(data, label)
    try:
        sig = Signature.from_json(manifest["signature"])
    except ValueError as e:
        raise ValueError(f"{label}: {e}") from None
    weights = [_weight(w, members, label) for w in manifest["weights"]]
    graphs = {}
    for entry in manifest["graphs"]:
        b = entry.get("batch")
        if (b is None) != (sig.batch_axis is None) or (b is not None and (
                type(b) is not int or b < 1)):
            raise ValueError(f"{label}: bad batch size {b!r} for graph {entry['file']}")
        g = _graph(members[entry["file"]], f"{label}: {entry['file']}")
        _match(g, sig, b, weights, f"{label}: {entry['file']}")
        graphs[b] = g
    if not graphs or (sig.batch_axis is not None and set(graphs) != {
            1 << k for k in range(max(graphs).bit_length())}):
        raise ValueError(f"{label}: the file's graphs ({sorted(graphs, key=str)}) are not "
                         f"one fixed-shape graph or the size classes 1, 2, 4, ...")
    return LoadedModel(manifest["name"], sig, graphs, weights)


def _weight(entry: dict, members: dict, label: str) -> tuple[str, np.ndarray]:
    where = f"{label}: weight {entry.get('name')!r} ({entry['file']})"
    try:
        a = np.load(io.BytesIO(members[entry["file"]]), allow_pickle=False)
        name = entry.get("dtype")
        if a.dtype.kind in "uV" and name != a.dtype.name and name in _ML_DTYPES:
            a = a.view(to_dtype(name).np)   # saved as their bits (older files: voids)
        to_dtype(a.dtype)
    except (ValueError, TypeError, OSError, EOFError) as e:
        raise ValueError(f"{where}: not a readable .npy array of a Lepton dtype ({e})") from None
    if list(a.shape) != entry.get("shape") or a.dtype.name != entry.get("dtype"):
        raise ValueError(f"{where}: the array is {a.dtype}{list(a.shape)}, the manifest says "
                         f"{entry.get('dtype')}{entry.get('shape')}")
    a.flags.writeable = False
    return str(entry.get("name")), a


def _graph(raw: bytes, where: str):
    try:
        return verify(parse(raw.decode()))
    except UnicodeDecodeError as e:
        raise ValueError(f"{where}: the IR is not UTF-8 text ({e})") from None
    except ValueError as e:    # ParseError, VerifyError, OpError
        raise ValueError(f"{where}: the IR does not parse: {e}") from None


def _match(g, sig: Signature, batch: int | None, weights: list, where: str) -> None:
    """The graph's inputs must be the signature's inputs (at this batch size) then the
    weights; its outputs the signature's outputs."""
    def fixed(spec):
        return TensorType(to_dtype(spec.dtype), tuple(batch if n is None else n
                                                       for n in spec.shape))
    want_in = [("input " + s.name, fixed(s)) for s in sig.inputs] + \
              [("weight " + n, TensorType.of(a)) for n, a in weights]
    if len(g.inputs) != len(want_in):
        raise ValueError(f"{where}: the graph has {len(g.inputs)} inputs, but the signature "
                         f"and the weights give {len(want_in)} ({len(sig.inputs)} inputs, "
                         f"{len(weights)} weights)")
    for (name, t), v in zip(want_in, g.inputs):
        if v.type != t:
            raise ValueError(f"{where}: {name} is {t}, but the graph takes {v.type} there "
                             f"(the weights do not match the graph)" if name.startswith("weight")
                             else f"{where}: {name} is {t} in the signature, but the graph "
                             f"takes {v.type}")
    want_out = [fixed(s) for s in sig.outputs]
    got_out = [v.type for v in g.outputs]
    if got_out != want_out:
        raise ValueError(f"{where}: the graph returns ({', '.join(map(str, got_out))}), the "
                         f"signature says ({', '.join(map(str, want_out))})")
