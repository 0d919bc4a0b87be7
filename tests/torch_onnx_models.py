"""Small PyTorch models of issue 11's list, exported to ONNX by torch.onnx.export.

Each entry of MODELS builds (module, example inputs); `export(name, opset, dynamo)` writes the
model to ONNX bytes. Used by tests/test_onnx_torch.py and tools/onnx_load_time.py.
"""
from __future__ import annotations

import io
import warnings

import numpy as np
import torch
from torch import nn


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 32), nn.GELU(),
                                 nn.Linear(32, 10))

    def forward(self, x):
        return self.net(x)


class CNN(nn.Module):
    """Conv + BatchNorm (eval) + ReLU + pools + a linear head."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1))
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        return self.head(torch.flatten(self.features(x), 1))


class ResBlock(nn.Module):
    """A ResNet basic block with a strided 1x1 projection shortcut."""

    def __init__(self, cin=8, cout=16):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=2, bias=False),
                                  nn.BatchNorm2d(cout))

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return torch.relu(y + self.down(x))


class LSTMModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(6, 12, num_layers=2, batch_first=True)
        self.head = nn.Linear(12, 3)

    def forward(self, x):
        y, (h, c) = self.lstm(x)
        return self.head(y[:, -1]), h, c


class BiGRU(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(6, 10, batch_first=True, bidirectional=True)

    def forward(self, x):
        y, h = self.gru(x)
        return y, h


class ConvAutoencoder(nn.Module):
    """Encoder: strided convs; decoder: ConvTranspose and a bilinear/nearest Resize."""

    def __init__(self):
        super().__init__()
        self.enc = nn.Sequential(nn.Conv2d(1, 8, 3, stride=2, padding=1), nn.ReLU(),
                                 nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU())
        self.dec1 = nn.ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=1)
        self.dec2 = nn.Conv2d(8, 1, 3, padding=1)

    def forward(self, x):
        y = torch.relu(self.dec1(self.enc(x)))
        y = nn.functional.interpolate(y, scale_factor=2, mode="bilinear", align_corners=False)
        y = nn.functional.interpolate(y, scale_factor=1, mode="nearest")
        return torch.sigmoid(self.dec2(y))


class GPTBlock(nn.Module):
    """Pre-norm causal self-attention + MLP, written out (q/k/v split, masked softmax)."""

    def __init__(self, d=32, heads=4, seq=8):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))
        self.register_buffer("mask", torch.tril(torch.ones(seq, seq, dtype=torch.bool)))

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / (d // self.heads) ** 0.5
        att = att.masked_fill(~self.mask[:t, :t], float("-inf")).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(b, t, d)
        x = x + self.proj(y)
        return x + self.mlp(self.ln2(x))


class Encoder(nn.Module):
    """nn.TransformerEncoder (2 layers; eval, so its fast path's math in the export)."""

    def __init__(self):
        super().__init__()
        layer = nn.TransformerEncoderLayer(32, 4, dim_feedforward=64, dropout=0.0,
                                           batch_first=True)
        self.enc = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)

    def forward(self, x):
        return self.enc(x)


def _r(*shape):
    return torch.randn(*shape)


MODELS = {
    "mlp": (MLP, lambda: (_r(4, 20),)),
    "cnn_batchnorm": (CNN, lambda: (_r(2, 3, 16, 16),)),
    "resnet_block": (ResBlock, lambda: (_r(2, 8, 12, 12),)),
    "lstm": (LSTMModel, lambda: (_r(3, 7, 6),)),
    "bigru": (BiGRU, lambda: (_r(2, 5, 6),)),
    "conv_autoencoder": (ConvAutoencoder, lambda: (_r(2, 1, 16, 16),)),
    "gpt_block": (GPTBlock, lambda: (_r(2, 8, 32),)),
    "transformer_encoder": (Encoder, lambda: (_r(2, 6, 32),)),
}


def build(name: str, seed: int = 0):
    """(module in eval mode with non-trivial BatchNorm statistics, example input tensors)."""
    torch.manual_seed(seed)
    cls, inputs = MODELS[name]
    m = cls()
    for mod in m.modules():   # BatchNorm statistics other than 0/1, so they matter
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.5, 0.5)
            mod.running_var.uniform_(0.5, 2.0)
            mod.weight.data.uniform_(0.5, 1.5)
            mod.bias.data.uniform_(-0.5, 0.5)
    return m.eval(), inputs()


def export(name: str, opset: int, dynamo: bool = False, seed: int = 0,
           dynamic_batch: bool = False):
    """(ONNX bytes, input arrays, torch's outputs as float32 arrays). dynamic_batch: the
    inputs' first axis is the symbolic dim "batch"."""
    m, args = build(name, seed)
    with torch.no_grad():
        want = m(*args)
    want = want if isinstance(want, tuple) else (want,)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            shapes = ({0: torch.export.Dim("batch")},) * len(args) if dynamic_batch else None
            prog = torch.onnx.export(m, args, dynamo=True, opset_version=opset,
                                     dynamic_shapes=shapes, verbose=False)
            data = prog.model_proto.SerializeToString()
        else:
            names = [f"x{i}" for i in range(len(args))]
            axes = {n: {0: "batch"} for n in names} if dynamic_batch else None
            torch.onnx.export(m, args, buf, dynamo=False, opset_version=opset,
                              do_constant_folding=True, input_names=names, dynamic_axes=axes)
            data = buf.getvalue()
    return (data, [a.numpy() for a in args],
            [np.asarray(w.detach().numpy(), np.float32) for w in want])
