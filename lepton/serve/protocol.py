"""The Open Inference Protocol (KServe v2) message formats: model metadata, infer requests
decoded to NumPy arrays and checked against the model, and infer responses.

    request = decode_infer(body, header_length, model)   # BadRequest (a 4xx) on any problem
    body, headers = encode_infer(model, request, outputs)

JSON tensors carry "data" flat or nested in row-major order. The binary tensor data extension
(as Triton): with the header `Inference-Header-Content-Length: N` the body is N bytes of JSON
followed by the raw little-endian bytes of each input whose parameters hold `binary_data_size`;
outputs asked for with `"parameters": {"binary_data": true}` (or a request parameter
`"binary_data_output": true`) come back the same way.

JSON goes through orjson when it is installed (the [serve] extra has it): CPython's json turns
text into floats and back one Python object at a time, ~10x slower on a tensor of a few hundred
values; without orjson the standard library's json does the same work.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np

from .model import ServableModel, TensorSpec

try:
    import orjson
except ImportError:     # optional: the [serve] extra installs it
    orjson = None


def loads(text: bytes):
    """JSON text to Python objects (orjson when installed; ValueError on bad JSON)."""
    return orjson.loads(text) if orjson is not None else json.loads(text)


def dumps(obj) -> bytes:
    """Python objects to compact JSON text (orjson when installed)."""
    if orjson is not None:
        return orjson.dumps(obj)
    return json.dumps(obj, separators=(",", ":")).encode()

DATATYPES = {"BOOL": np.bool_, "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32,
             "UINT64": np.uint64, "INT8": np.int8, "INT16": np.int16, "INT32": np.int32,
             "INT64": np.int64, "FP16": np.float16, "FP32": np.float32, "FP64": np.float64}
_NAMES = {np.dtype(t): name for name, t in DATATYPES.items()}
HEADER_LENGTH = "inference-header-content-length"


class BadRequest(Exception):
    """A request the server refuses; status is the HTTP status (400, 404, 413)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def datatype(dtype: np.dtype) -> str:
    """The protocol's name of a NumPy dtype (FP32, INT64, BOOL, ...)."""
    try:
        return _NAMES[np.dtype(dtype)]
    except KeyError:
        raise ValueError(f"dtype {dtype} has no Open Inference Protocol datatype") from None


def _tensor_metadata(t: TensorSpec) -> dict:
    return {"name": t.name, "datatype": datatype(t.dtype), "shape": list(t.shape)}


def model_metadata(model: ServableModel) -> dict:
    return {"name": model.name, "versions": ["1"], "platform": model.platform,
            "inputs": [_tensor_metadata(t) for t in model.inputs],
            "outputs": [_tensor_metadata(t) for t in model.outputs]}


@dataclass
class InferRequest:
    """A checked request: the inputs in the model's order, the rows on the batch axis (None
    without one), the outputs asked for (indices) and which of them go back as binary."""
    id: str | None
    arrays: list[np.ndarray]
    rows: int | None
    outputs: list[int]
    binary: list[bool]


def _shape(entry: dict, name: str) -> tuple[int, ...]:
    shape = entry.get("shape")
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise BadRequest(f"input {name!r}: 'shape' must be a list of non-negative integers")
    return tuple(shape)


def _check_shape(t: TensorSpec, shape: tuple[int, ...]) -> None:
    if len(shape) != len(t.shape) or any(d != e for d, e in zip(shape, t.shape) if e != -1):
        raise BadRequest(f"input {t.name!r}: shape {list(shape)} does not match the model's "
                         f"{list(t.shape)}")
    if t.batch_axis is not None and shape[t.batch_axis] == 0:
        raise BadRequest(f"input {t.name!r}: no rows on the batch axis")


def _json_array(t: TensorSpec, data, shape: tuple[int, ...]) -> np.ndarray:
    try:
        a = np.asarray(data)
    except (ValueError, TypeError):
        raise BadRequest(f"input {t.name!r}: 'data' is not a (nested) list of numbers") from None
    accepted = {"b": "b", "i": "iu", "u": "iu", "f": "iuf"}[t.dtype.kind]
    if a.dtype.kind not in accepted and a.size:
        raise BadRequest(f"input {t.name!r}: 'data' holds {a.dtype.kind!r}-kind values, not "
                         f"{datatype(t.dtype)}")
    if a.size != math.prod(shape):
        raise BadRequest(f"input {t.name!r}: {a.size} values for shape {list(shape)}")
    return a.astype(t.dtype, copy=False).reshape(shape)


def _binary_array(t: TensorSpec, size, binary: memoryview, offset: int, shape) -> np.ndarray:
    count = math.prod(shape)
    if type(size) is not int or size != count * t.dtype.itemsize:
        raise BadRequest(f"input {t.name!r}: binary_data_size {size!r} is not "
                         f"{count * t.dtype.itemsize} bytes for shape {list(shape)}")
    if offset + size > len(binary):
        raise BadRequest(f"input {t.name!r}: the body ends inside its binary data")
    a = np.frombuffer(binary, t.dtype.newbyteorder("<"), count, offset)
    return a.astype(t.dtype).reshape(shape)


@dataclass(frozen=True)
class _Plan:
    """A binary request's JSON header, decoded and checked: where each input's bytes lie."""
    located: tuple[tuple[int, np.dtype, np.dtype, tuple[int, ...], int, int], ...]
    end: int                    # (index, dtype, little-endian dtype, shape, offset, count)
    id: str | None
    rows: int | None
    outputs: tuple[int, ...]
    binary: tuple[bool, ...]

    def decode(self, binary: memoryview, inputs: int) -> InferRequest:
        arrays: list = [None] * inputs
        for i, dtype, little, shape, offset, count in self.located:
            arrays[i] = np.frombuffer(binary, little, count, offset).astype(dtype).reshape(shape)
        return InferRequest(self.id, arrays, self.rows, list(self.outputs), list(self.binary))


PLANS_KEPT = 1024


def decode_infer(body: bytes, header_length: str | None, model: ServableModel,
                 plans: dict | None = None) -> InferRequest:
    """The checked request in body (JSON, or JSON and binary tensors with header_length).

    plans, a dict kept by the caller for one model, remembers the JSON headers of requests
    whose inputs are all binary: a client sends the same header again and again (the values
    are in the binary part), and a header seen before skips the JSON and its checks."""
    binary = memoryview(b"")
    if header_length is not None:
        try:
            n = int(header_length)
        except ValueError:
            n = -1
        if not 0 <= n <= len(body):
            raise BadRequest(f"Inference-Header-Content-Length {header_length!r} is not a "
                             f"length within the body of {len(body)} bytes")
        body, binary = body[:n], memoryview(body)[n:]
        plan = plans.get(body) if plans is not None else None
        if plan is not None and plan.end <= len(binary):
            return plan.decode(binary, len(model.inputs))
    try:
        msg = loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise BadRequest(f"the body is not JSON: {e}") from None
    if not isinstance(msg, dict) or not isinstance(msg.get("inputs"), list):
        raise BadRequest("the request must be a JSON object with a list 'inputs'")
    specs = {t.name: i for i, t in enumerate(model.inputs)}
    arrays: list[np.ndarray | None] = [None] * len(model.inputs)
    offset, located = 0, []
    for entry in msg["inputs"]:
        name = entry.get("name") if isinstance(entry, dict) else None
        if name not in specs:
            raise BadRequest(f"unknown input {name!r}; model {model.name!r} takes "
                             f"{', '.join(specs)}")
        t = model.inputs[specs[name]]
        if arrays[specs[name]] is not None:
            raise BadRequest(f"input {name!r} given twice")
        if entry.get("datatype") != datatype(t.dtype):
            raise BadRequest(f"input {name!r}: datatype {entry.get('datatype')!r}, the model "
                             f"takes {datatype(t.dtype)}")
        shape = _shape(entry, name)
        _check_shape(t, shape)
        params = entry.get("parameters") or {}
        if isinstance(params, dict) and "binary_data_size" in params:
            size = params["binary_data_size"]
            arrays[specs[name]] = _binary_array(t, size, binary, offset, shape)
            located.append((specs[name], t.dtype, t.dtype.newbyteorder("<"), shape, offset,
                            math.prod(shape)))
            offset += size
        elif "data" in entry:
            arrays[specs[name]] = _json_array(t, entry["data"], shape)
        else:
            raise BadRequest(f"input {name!r} has no 'data'")
    missing = [t.name for t, a in zip(model.inputs, arrays) if a is None]
    if missing:
        raise BadRequest(f"missing input(s) {', '.join(missing)}")
    rows = {a.shape[t.batch_axis] for a, t in zip(arrays, model.inputs)
            if t.batch_axis is not None}
    if len(rows) > 1:
        raise BadRequest(f"the inputs' batch sizes differ: {sorted(rows)}")
    outputs, binary_out = _wanted_outputs(msg, model)
    rid = None if msg.get("id") is None else str(msg["id"])
    rows = rows.pop() if rows else None
    if plans is not None and header_length is not None and len(located) == len(arrays):
        if len(plans) >= PLANS_KEPT:
            plans.clear()
        plans[bytes(body)] = _Plan(tuple(located), offset, rid, rows, tuple(outputs),
                                   tuple(binary_out))
    return InferRequest(rid, arrays, rows, outputs, binary_out)


def _wanted_outputs(msg: dict, model: ServableModel) -> tuple[list[int], list[bool]]:
    params = msg.get("parameters") if isinstance(msg.get("parameters"), dict) else {}
    default_binary = params.get("binary_data_output") is True
    wanted = msg.get("outputs")
    if wanted is None:
        return list(range(len(model.outputs))), [default_binary] * len(model.outputs)
    names = {t.name: i for i, t in enumerate(model.outputs)}
    if not isinstance(wanted, list):
        raise BadRequest("'outputs' must be a list")
    outputs, binary = [], []
    for entry in wanted:
        name = entry.get("name") if isinstance(entry, dict) else None
        if name not in names:
            raise BadRequest(f"unknown output {name!r}; model {model.name!r} has "
                             f"{', '.join(names)}")
        p = entry.get("parameters") if isinstance(entry.get("parameters"), dict) else {}
        outputs.append(names[name])
        binary.append(p.get("binary_data", default_binary) is True)
    return outputs, binary


def encode_infer(model: ServableModel, request: InferRequest,
                 results: list[np.ndarray]) -> tuple[bytes, dict[str, str]]:
    """The response body and its headers for the model's results."""
    out, chunks = [], []
    for i, binary in zip(request.outputs, request.binary):
        a, t = results[i], model.outputs[i]
        entry = {"name": t.name, "datatype": datatype(a.dtype), "shape": list(a.shape)}
        if binary:
            raw = np.ascontiguousarray(a, a.dtype.newbyteorder("<")).tobytes()
            entry["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            entry["data"] = a.ravel().tolist()
        out.append(entry)
    msg = {"model_name": model.name, "model_version": "1", "outputs": out}
    if request.id is not None:
        msg["id"] = request.id
    text = dumps(msg)
    if not chunks:
        return text, {"content-type": "application/json"}
    return text + b"".join(chunks), {"content-type": "application/octet-stream",
                                     HEADER_LENGTH: str(len(text))}
