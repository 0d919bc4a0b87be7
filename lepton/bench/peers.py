"""The peers: each workload written idiomatically for PyTorch (eager and torch.compile), JAX
(jax.jit) and onnxruntime, all on one thread. Each is optional: a peer whose package is missing
reports why through `Runner.unavailable` and its column prints "-".

    >>> r = PEERS["jax"]()
    >>> r.setup()                                  # imports jax with XLA set to one thread
    >>> p = r.prepare(WORKLOADS["W4"], args)       # jit + AOT compile
    >>> y = p.fetch(p.call())

The harness runs each peer in its own process (see harness.py), so importing one framework never
changes another's threads or allocator.
"""
from __future__ import annotations

import math
import os

import numpy as np

from .runners import Prepared, Runner, to_numpy
from . import bn_cnn, lstm
from .workloads import LN_EPS, W3_A, W3_B, W6_LR, W8_HEADS, W10_BLOCKS, causal_mask


# ---- PyTorch ----------------------------------------------------------------------------------

def torch_models(torch) -> dict:
    """Workload id -> a function of torch tensors, written as a good PyTorch user would."""
    F = torch.nn.functional

    def mlp(x, w1, b1, w2, b2, w3, b3):
        h = torch.relu(torch.addmm(b1, x, w1))
        h = torch.relu(torch.addmm(b2, h, w2))
        return torch.addmm(b3, h, w3)

    def w3(x):
        return F.gelu(x * W3_A + W3_B, approximate="tanh") * 0.5 + x

    def w4(x, w, b):
        return F.layer_norm(x, (x.shape[-1],), w, b, LN_EPS)

    def w6(x, labels, w1, b1, w2, b2):
        # Functional SGD, as in the other frameworks: new parameter tensors, not in place.
        with torch.enable_grad():
            params = [p.detach().requires_grad_() for p in (w1, b1, w2, b2)]
            logits = torch.addmm(params[3], torch.relu(torch.addmm(params[1], x, params[0])),
                                 params[2])
            loss = F.cross_entropy(logits, labels)
            grads = torch.autograd.grad(loss, params)
        return (loss.detach(), *(p.detach() - W6_LR * g for p, g in zip(params, grads)))

    def w7(x, c1w, c1b, c2w, c2b, fw, fb):
        h = F.max_pool2d(torch.relu(F.conv2d(x, c1w, c1b, padding=1)), 2)
        h = F.max_pool2d(torch.relu(F.conv2d(h, c2w, c2b, padding=1)), 2)
        return torch.addmm(fb, h.flatten(1), fw)

    def w8(x, ln1_w, ln1_b, qkv_w, qkv_b, proj_w, proj_b, ln2_w, ln2_b,
           fc1_w, fc1_b, fc2_w, fc2_b, causal=True):
        t, d = x.shape
        qkv = torch.addmm(qkv_b, F.layer_norm(x, (d,), ln1_w, ln1_b, LN_EPS), qkv_w)
        q, k, v = qkv.view(t, 3, W8_HEADS, d // W8_HEADS).permute(1, 2, 0, 3)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        y = x + torch.addmm(proj_b, a.transpose(0, 1).reshape(t, d), proj_w)
        h = F.gelu(torch.addmm(fc1_b, F.layer_norm(y, (d,), ln2_w, ln2_b, LN_EPS), fc1_w),
                   approximate="tanh")
        return y + torch.addmm(fc2_b, h, fc2_w)

    def w10(x, *params):
        per = (len(params) - 2) // W10_BLOCKS
        for i in range(W10_BLOCKS):
            x = w8(x, *params[i * per:(i + 1) * per], causal=False)
        return F.layer_norm(x, (x.shape[-1],), params[-2], params[-1], LN_EPS)

    return {"W1": mlp, "W2": mlp, "W3": w3, "W4": w4, "W5": torch.matmul, "W6": w6, "W7": w7,
            "W8": w8, "W9": lstm.torch_step(torch), "W10": w10, "W11": bn_cnn.torch_step(torch),
            "call": lambda x: x + 1.0}


class TorchRunner(Runner):
    """PyTorch eager, one thread, autograd off."""
    name = "torch"
    modules = ("torch",)

    def setup(self):
        import torch
        torch.set_num_threads(1)
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:    # only allowed before the first parallel work; harmless then
            pass
        torch.set_grad_enabled(False)
        self.torch = torch
        self.models = torch_models(torch)

    def version(self):
        return self.torch.__version__

    def unsupported(self, workload):
        return None if workload.id in self.models else f"no {self.name} version"

    def _fn(self, workload):
        return self.models[workload.id]

    def prepare(self, workload, args):
        fn = self._fn(workload)
        targs = [self.torch.from_numpy(np.ascontiguousarray(a)) for a in args]
        return Prepared(lambda: fn(*targs), _torch_to_numpy)


def _torch_to_numpy(y):
    if isinstance(y, (tuple, list)):
        return tuple(t.numpy() for t in y)
    return y.numpy()


class TorchCompileRunner(TorchRunner):
    """torch.compile (inductor, default mode); prepare runs the first call, which compiles."""
    name = "torch.compile"

    def _fn(self, workload):
        return self.torch.compile(self.models[workload.id], dynamic=False)

    def prepare(self, workload, args):
        p = super().prepare(workload, args)
        p.call()
        return p


# ---- JAX --------------------------------------------------------------------------------------

def jax_models(jax) -> dict:
    """Workload id -> a function of jax arrays, written as a good JAX user would."""
    jnp, lax = jax.numpy, jax.lax

    def mlp(x, w1, b1, w2, b2, w3, b3):
        h = jax.nn.relu(x @ w1 + b1)
        h = jax.nn.relu(h @ w2 + b2)
        return h @ w3 + b3

    def layer_norm(x, w, b):
        mean = x.mean(axis=-1, keepdims=True)
        var = jnp.square(x - mean).mean(axis=-1, keepdims=True)
        return (x - mean) * lax.rsqrt(var + LN_EPS) * w + b

    def w3(x):
        return jax.nn.gelu(x * W3_A + W3_B, approximate=True) * 0.5 + x

    def w6_loss(params, x, labels):
        w1, b1, w2, b2 = params
        logits = jax.nn.relu(x @ w1 + b1) @ w2 + b2
        logp = jax.nn.log_softmax(logits, axis=-1)
        return -jnp.take_along_axis(logp, labels[:, None], axis=1).mean()

    def w6(x, labels, w1, b1, w2, b2):
        params = (w1, b1, w2, b2)
        loss, grads = jax.value_and_grad(w6_loss)(params, x, labels)
        return (loss, *(p - W6_LR * g for p, g in zip(params, grads)))

    def w7(x, c1w, c1b, c2w, c2b, fw, fb):
        def block(h, w, b):
            h = lax.conv_general_dilated(h, w, (1, 1), ((1, 1), (1, 1)),
                                         dimension_numbers=("NCHW", "OIHW", "NCHW"))
            h = jax.nn.relu(h + b[None, :, None, None])
            return lax.reduce_window(h, -jnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")
        h = block(block(x, c1w, c1b), c2w, c2b)
        return h.reshape(h.shape[0], -1) @ fw + fb

    def w8(x, ln1_w, ln1_b, qkv_w, qkv_b, proj_w, proj_b, ln2_w, ln2_b,
           fc1_w, fc1_b, fc2_w, fc2_b, causal=True):
        t, d = x.shape
        hd = d // W8_HEADS
        qkv = layer_norm(x, ln1_w, ln1_b) @ qkv_w + qkv_b
        q, k, v = qkv.reshape(t, 3, W8_HEADS, hd).transpose(1, 2, 0, 3)
        s = (q @ k.transpose(0, 2, 1)) * (1.0 / math.sqrt(hd))
        if causal:
            s = s + causal_mask(t)
        a = jax.nn.softmax(s, axis=-1) @ v
        y = x + a.transpose(1, 0, 2).reshape(t, d) @ proj_w + proj_b
        h = jax.nn.gelu(layer_norm(y, ln2_w, ln2_b) @ fc1_w + fc1_b, approximate=True)
        return y + h @ fc2_w + fc2_b

    def w10(x, *params):
        per = (len(params) - 2) // W10_BLOCKS
        for i in range(W10_BLOCKS):
            x = w8(x, *params[i * per:(i + 1) * per], causal=False)
        return layer_norm(x, params[-2], params[-1])

    return {"W1": mlp, "W2": mlp, "W3": w3, "W4": layer_norm, "W5": jnp.matmul, "W6": w6,
            "W7": w7, "W8": w8, "W9": lstm.jax_step(jax), "W10": w10,
            "W11": bn_cnn.jax_step(jax), "call": lambda x: x + 1.0}


# XLA's CPU backend: no Eigen thread pool and one intra-op thread.
_XLA_ONE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


class JaxRunner(Runner):
    """jax.jit, compiled ahead of time in prepare (lower + compile), arrays placed on the CPU."""
    name = "jax"
    modules = ("jax", "jaxlib")

    def setup(self):
        # Must be set before jax is imported; keep a user's own extra flags.
        flags = os.environ.get("XLA_FLAGS", "")
        if "intra_op_parallelism_threads" not in flags:
            os.environ["XLA_FLAGS"] = (flags + " " + _XLA_ONE_THREAD).strip()
        os.environ.setdefault("JAX_PLATFORMS", "cpu")
        import jax
        jax.devices()       # creates the CPU client and its thread pool now, during setup
        self.jax = jax
        self.models = jax_models(jax)

    def version(self):
        return self.jax.__version__

    def unsupported(self, workload):
        return None if workload.id in self.models else "no jax version"

    def prepare(self, workload, args):
        # Integer inputs (W6's labels) as int32: jax without x64 would narrow them anyway.
        jargs = [self.jax.device_put(a.astype(np.int32) if a.dtype == np.int64 else a)
                 for a in args]
        compiled = self.jax.jit(self.models[workload.id]).lower(*jargs).compile()
        return Prepared(lambda: self.jax.block_until_ready(compiled(*jargs)), to_numpy)


# ---- onnxruntime ------------------------------------------------------------------------------

class OrtRunner(Runner):
    """onnxruntime's CPU provider, one intra-op and one inter-op thread, all graph optimisations;
    the graphs come from onnx_graphs.py. Session creation is its compile time."""
    name = "onnxruntime"
    modules = ("onnxruntime", "onnx")

    def setup(self):
        import onnxruntime
        self.ort = onnxruntime

    def version(self):
        return self.ort.__version__

    def unsupported(self, workload):
        from .onnx_graphs import SUPPORTED
        return None if workload.id in SUPPORTED else "no ONNX graph"

    def prepare(self, workload, args):
        from .onnx_graphs import build
        ort = self.ort
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        model = build(workload, args)
        sess = ort.InferenceSession(model.SerializeToString(), opts,
                                    providers=["CPUExecutionProvider"])
        feeds = dict(zip(workload.arg_names, args))
        return Prepared(lambda: sess.run(None, feeds)[0], np.asarray)


PEERS: dict[str, type[Runner]] = {r.name: r for r in
                                  (TorchRunner, TorchCompileRunner, JaxRunner, OrtRunner)}
"""The peers by column name, in table order."""

_ALIASES = {"torch": "torch", "eager": "torch", "torch.compile": "torch.compile",
            "torch_compile": "torch.compile", "inductor": "torch.compile", "compile":
            "torch.compile", "jax": "jax", "jax.jit": "jax", "onnxruntime": "onnxruntime",
            "ort": "onnxruntime"}


def peer_name(name: str) -> str:
    """The column name of a peer given by name or alias ("ort" -> "onnxruntime")."""
    key = name.strip().lower()
    if key not in _ALIASES:
        raise ValueError(f"unknown peer {name!r}; known: {', '.join(PEERS)}")
    return _ALIASES[key]
