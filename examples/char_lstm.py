"""A 2-layer character-level LSTM language model, trained on this repository's own docs and
source (docs/*.md and lepton/**/*.py; nothing is downloaded), then sampled with lp.random.

    python examples/char_lstm.py [--steps 600] [--seq 16] [--batch 32] [--hidden 128] [--seed 0]

The last 10% of the text is held out. Prints the validation loss of the unigram model (each
character's frequency in the training text: the baseline) and the LSTM's, in nats per
character, then text sampled from the model. Each training step (forward over --seq steps,
backward, Adam) is one compiled graph; `lp.compile` unrolls the LSTM's scans today, so the first
step's compile grows with --seq (native loops in code generation will remove that). Sampling
runs a compiled one-character step: embedding, the LSTM on a sequence of length 1 with the state
carried between calls, the logits, and a draw by the Gumbel-max trick from an lp.random key
(argmax(logits / temperature - log(-log(u)))), a new key per character.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import time

import numpy as np

import lepton as lp

ROOT = pathlib.Path(__file__).resolve().parent.parent


def load_text(root: pathlib.Path = ROOT) -> str:
    files = sorted((root / "docs").glob("*.md")) + sorted((root / "lepton").rglob("*.py"))
    if not files:
        raise SystemExit(f"no docs/*.md or lepton/**/*.py under {root}")
    return "\n".join(f.read_text(encoding="utf-8") for f in files)


class CharLSTM(lp.nn.Module):
    def __init__(self, vocab: int, hidden: int = 128, embed: int = 32, layers: int = 2):
        super().__init__()
        self.embed = lp.nn.Embedding(vocab, embed)
        self.lstm = lp.nn.LSTM(embed, hidden, num_layers=layers)
        self.head = lp.nn.Linear(hidden, vocab)

    def forward(self, idx, state=None):          # idx (seq, batch) int64
        out, state = self.lstm(self.embed(idx), state)
        return self.head(out), state             # logits (seq, batch, vocab)


def loss_fn(model, x, y):
    logits, _ = model(x)
    return lp.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def windows(data: np.ndarray, starts: np.ndarray, seq: int):
    """Inputs and next-character targets, time-major (seq, batch)."""
    idx = starts[None, :] + np.arange(seq + 1)[:, None]
    w = data[idx]
    return w[:-1], w[1:]


def unigram_loss(train: np.ndarray, valid: np.ndarray, vocab: int) -> float:
    p = (np.bincount(train, minlength=vocab) + 1.0) / (len(train) + vocab)  # add-one
    return float(-np.log(p[valid]).mean())


def sampler(model: CharLSTM, temperature: float = 0.8):
    """A compiled step: (char (1, 1) int64, h, c, key) -> (next char, h, c)."""
    def step(idx, h, c, key):
        logits, (h, c) = model(idx, (h, c))
        u = lp.random.uniform(key, logits.shape)
        gumbel = -lp.log(-lp.log(lp.maximum(u, 1e-12)))
        return lp.argmax(logits / temperature + gumbel, axis=-1), h, c
    return lp.compile(step)


def generate(model: CharLSTM, chars: str, prompt: str, n: int, seed: int) -> str:
    lut = {ch: i for i, ch in enumerate(chars)}
    step = sampler(model)
    layers, hidden = model.lstm.num_layers, model.lstm.hidden_size
    h = np.zeros((layers, 1, hidden), np.float32)
    c = np.zeros_like(h)
    key = lp.random.key(seed)
    out = []
    nxt = None
    for i in range(len(prompt) + n):
        ch = prompt[i] if i < len(prompt) else chars[int(nxt[0, 0])]
        if i >= len(prompt):
            out.append(ch)
        key, k = lp.random.split(key)
        nxt, h, c = step(np.array([[lut.get(ch, 0)]], np.int64), h, c, k)
    return prompt + "".join(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--seq", type=int, default=16)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--sample", type=int, default=300, help="characters to sample")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    # Small kernels: one thread each is as fast and does not spin-wait on a busy machine.
    os.environ.setdefault("LEPTON_NUM_THREADS", "1")
    t0, c0 = time.perf_counter(), time.process_time()

    text = load_text()
    chars = "".join(sorted(set(text)))
    lut = {ch: i for i, ch in enumerate(chars)}
    data = np.array([lut[ch] for ch in text], np.int64)
    cut = int(0.9 * len(data))
    train, valid = data[:cut], data[cut:]
    vocab = len(chars)
    print(f"text: {len(text)} characters from docs/ and lepton/, vocabulary {vocab}")

    lp.nn.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    model = CharLSTM(vocab, args.hidden)
    opt = lp.optim.Adam(args.lr)
    # a fixed validation set: 16 batches of windows over the held-out text
    vstarts = rng.integers(0, len(valid) - args.seq - 1, (16, args.batch))
    evaluate = lp.compile(lambda x, y: loss_fn(model, x, y))

    def valid_loss():
        model.eval()
        loss = float(np.mean([evaluate(*windows(valid, s, args.seq)) for s in vstarts]))
        model.train()
        return loss

    baseline = unigram_loss(train, valid, vocab)
    for step in range(1, args.steps + 1):
        x, y = windows(train, rng.integers(0, len(train) - args.seq - 1, args.batch), args.seq)
        loss = opt.step(model, loss_fn, x, y)
        if step == 1:
            print(f"step 1 (compiles the training step): {time.perf_counter() - t0:.1f} s")
        if step % 200 == 0 or step == args.steps:
            print(f"step {step:5d}  train loss {loss:.3f}  validation loss {valid_loss():.3f}")
    final = valid_loss()
    print(f"validation loss (nats/char): unigram baseline {baseline:.3f}, LSTM {final:.3f}")
    print(f"time: {time.perf_counter() - t0:.1f} s, CPU {time.process_time() - c0:.1f} s "
          f"(compiles included)")
    print("--- sampled (temperature 0.8) ---")
    print(generate(model, chars, "def ", args.sample, args.seed))
    return 0 if final < baseline - 0.5 else 1


if __name__ == "__main__":
    raise SystemExit(main())
