"""The ONNX backend node tests, run through `lp.from_onnx` (tests/test_onnx_node.py runs the
cases the committed table marks passed; tools/onnx_node_table.py writes that table).

The cases are the `onnx` package's: `onnx/backend/test/data/node/<case>/model.onnx` with
`test_data_set_<k>/input_<j>.pb, output_<j>.pb`. onnx >= 1.23 no longer ships that folder but
generates the same cases in memory (onnx.backend.test.case.node); they are then written once,
in the same layout, to a cache folder ($LEPTON_ONNX_NODE_DATA, else
~/.cache/lepton/onnx-node-<onnx version>) with `cases.json` naming each case's op type.

Outputs are compared as onnx's backend runner does (onnx.backend.test.runner): same count, same
shape, same dtype, then np.testing.assert_allclose with rtol=1e-3, atol=1e-7.

    >>> root = data_dir()
    >>> status, reason = run_case(root / "test_abs")     # ("passed", "") or ("failed", why)
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np

RTOL, ATOL = 1e-3, 1e-7     # onnx.backend.test.case.node.expect and the runner's defaults


def _onnx_dir() -> Path:
    import onnx
    return Path(onnx.__file__).parent


def data_dir() -> Path:
    """The folder of node cases, generated on first use when the onnx package has none."""
    shipped = _onnx_dir() / "backend" / "test" / "data" / "node"
    if shipped.is_dir() and any(shipped.iterdir()):
        return shipped
    import onnx
    root = Path(os.environ.get("LEPTON_ONNX_NODE_DATA") or
                Path.home() / ".cache" / "lepton" / f"onnx-node-{onnx.__version__}")
    if not (root / "cases.json").exists():
        generate(root)
    return root


def generate(root: Path) -> None:
    """Writes every node case of onnx.backend.test.case.node to root (cases.json last, so an
    interrupted run is redone)."""
    import warnings

    from onnx import numpy_helper
    from onnx.backend.test.case import node as node_cases
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = node_cases.collect_testcases(None)
    root.mkdir(parents=True, exist_ok=True)
    index, base_op = {}, None
    for case in cases:
        graph = case.model.graph
        if "_expanded" not in case.name:   # an expanded case follows the case it expands
            base_op = graph.node[0].op_type if len(graph.node) == 1 else _op_from_name(
                case.name, graph)
        index[case.name] = base_op
        d = root / case.name
        d.mkdir(exist_ok=True)
        (d / "model.onnx").write_bytes(case.model.SerializeToString())
        for k, (inputs, outputs) in enumerate(case.data_sets):
            ds = d / f"test_data_set_{k}"
            ds.mkdir(exist_ok=True)
            for kind, values, infos in (("input", inputs, graph.input),
                                        ("output", outputs, graph.output)):
                for j, (v, info) in enumerate(zip(values, infos)):
                    if info.type.HasField("sequence_type"):
                        proto = numpy_helper.from_list(v, info.name)
                    elif info.type.HasField("optional_type"):
                        proto = numpy_helper.from_optional(v, info.name)
                    elif info.type.HasField("map_type"):
                        proto = numpy_helper.from_dict(v, info.name)
                    elif hasattr(v, "SerializeToString"):
                        proto = v
                    else:
                        proto = numpy_helper.from_array(np.asarray(v), info.name)
                    (ds / f"{kind}_{j}.pb").write_bytes(proto.SerializeToString())
    (root / "cases.json").write_text(json.dumps(index, indent=0, sort_keys=True))


def _op_from_name(name: str, graph) -> str:
    """A multi-node case's op type: the node whose type the case's name starts with."""
    key = name[len("test_"):].replace("_", "").lower()
    for node in sorted(graph.node, key=lambda n: -len(n.op_type)):
        if key.startswith(node.op_type.lower()):
            return node.op_type
    return graph.node[-1].op_type


def op_types(root: Path) -> dict[str, str]:
    """case name -> the op type it tests."""
    index = root / "cases.json"
    if index.exists():
        return json.loads(index.read_text())
    import onnx
    out = {}
    for d in sorted(p for p in root.iterdir() if (p / "model.onnx").exists()):
        if "_expanded" not in d.name:
            g = onnx.load(str(d / "model.onnx")).graph
            out[d.name] = g.node[0].op_type if len(g.node) == 1 else _op_from_name(d.name, g)
    for d in sorted(p for p in root.iterdir() if "_expanded" in p.name):
        out[d.name] = out.get(re.sub(r"_expanded.*$", "", d.name), "?")
    return out


def case_names(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if (p / "model.onnx").exists())


def _read(path: Path, info):
    """One .pb as the runner reads it: a tensor as a NumPy array (other kinds: the proto)."""
    import onnx
    from onnx import numpy_helper
    data = path.read_bytes()
    if info.type.HasField("tensor_type"):
        t = onnx.TensorProto()
        t.ParseFromString(data)
        return numpy_helper.to_array(t)
    return None   # sequences, optionals, maps: Lepton refuses such graphs before reading data


def load_case(d: Path):
    """(model, [(inputs, expected outputs)]) of one case folder."""
    import onnx
    model = onnx.load(str(d / "model.onnx"))
    sets = []
    for ds in sorted(d.glob("test_data_set_*")):
        ins = [_read(ds / f"input_{j}.pb", info) for j, info in enumerate(model.graph.input)
               if (ds / f"input_{j}.pb").exists()]
        outs = [_read(ds / f"output_{j}.pb", info)
                for j, info in enumerate(model.graph.output)]
        sets.append((ins, outs))
    return model, sets


def compare(outputs, expected) -> None:
    """As onnx.backend.test.runner.Runner.assert_similar_outputs: count, shape, dtype, values."""
    np.testing.assert_equal(len(outputs), len(expected))
    for i, (out, ref) in enumerate(zip(outputs, expected)):
        out = np.asarray(out)
        np.testing.assert_array_equal(out.shape, ref.shape,
                                      err_msg=f"Output {i} has incorrect shape")
        np.testing.assert_equal(out.dtype, ref.dtype)
        np.testing.assert_allclose(out, ref, rtol=RTOL, atol=ATOL)


# Cases whose outputs are random draws (NumPy's generator made the expected values; ONNX
# leaves the generator to the runtime): only their count, shapes and dtypes can match.
RANDOM = re.compile(r"^test_(bernoulli|training_dropout(?!_zero_ratio)|random)")


def compare_random(outputs, expected) -> None:
    np.testing.assert_equal(len(outputs), len(expected))
    for i, (out, ref) in enumerate(zip(outputs, expected)):
        out = np.asarray(out)
        np.testing.assert_array_equal(out.shape, ref.shape,
                                      err_msg=f"Output {i} has incorrect shape")
        np.testing.assert_equal(out.dtype, ref.dtype)


def run(d: Path) -> None:
    """Loads, runs and checks one case; raises on any failure. Random cases (RANDOM) are
    checked for count, shape and dtype only."""
    import lepton as lp
    model, sets = load_case(d)
    f = lp.from_onnx(model)
    check = compare_random if RANDOM.match(d.name) else compare
    for ins, outs in sets:
        check(f(*ins), outs)


# -- why a case fails --------------------------------------------------------------------------
# the element types Lepton's core does not have (it has the 8- to 64-bit integers and floats)
_SMALL_DTYPES = ("FLOAT8", "INT4", "UINT4", "FLOAT4", "UINT2", "INT2", "COMPLEX", "STRING")


_REASONS = ((r"op (\w+)'s output shape depends on its input values",
             "data-dependent output shape ({})"),
            (r"op type (\w+) is not supported", "unsupported op {}"),
            (r"element type (\w+)", "dtype {} (core dtypes)"),
            (r"attribute '(\w+)'", "unsupported attribute {}"),
            (r"op (\w+) of domain '([\w.]+)'", "unsupported op {} (domain {})"))


def classify(exc: BaseException) -> str:
    """A short reason for a failure: 'unsupported op X', 'dtype X (core dtypes)', 'shape
    input', 'non-tensor type', 'attribute', 'mismatch', 'shape', or the error's first line."""
    msg = str(exc)
    if isinstance(exc, NotImplementedError):
        if "not a tensor" in msg:
            return "non-tensor type (sequence/optional)"
        if "depends on the graph's inputs" in msg:
            return "shape input"
        for pattern, reason in _REASONS:
            m = re.search(pattern, msg)
            if m:
                return reason.format(*m.groups())
        m = re.search(r"\(([A-Za-z]+)\): (.*)", msg)
        return f"unsupported: {m.group(2)[:70] if m else msg[:70]}".splitlines()[0]
    if isinstance(exc, AssertionError):
        if "incorrect shape" in msg:
            return "wrong shape"
        if "not equal" in msg and "dtype" in msg:
            return "wrong dtype"
        return "mismatch"
    first = (msg.splitlines() or [""])[0]
    return f"error {type(exc).__name__}: {first[:70]}"


def model_dtypes(d: Path) -> set[str]:
    """The element types of a case's graph inputs and outputs (ONNX names)."""
    import onnx
    from onnx import TensorProto
    g = onnx.load(str(d / "model.onnx")).graph
    out = set()
    for vi in list(g.input) + list(g.output):
        if vi.type.HasField("tensor_type"):
            out.add(TensorProto.DataType.Name(vi.type.tensor_type.elem_type))
        else:
            out.add("NON_TENSOR")
    return out


def run_case(d: Path) -> tuple[str, str]:
    """("passed", ""), ("random", why) for a random case whose shapes and dtypes match, or
    ("failed", reason); dtype reasons name a small dtype the model uses."""
    try:
        run(d)
        if RANDOM.match(d.name):
            return "random", "random values: count, shapes and dtypes match"
        return "passed", ""
    except Exception as e:  # noqa: BLE001 - every failure is reported, none stops the table
        reason = classify(e)
        if not reason.startswith(("dtype", "non-tensor")):
            small = sorted(t for t in model_dtypes(d) if t.startswith(_SMALL_DTYPES))
            if small:
                reason = f"dtype {small[0]} (core dtypes)"
        return "failed", reason
