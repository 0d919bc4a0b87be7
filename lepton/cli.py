"""The `lepton` command line.

    lepton dump model.py:mlp --args "f32[64,784] f32[784,10]" [--llvm] [--stage before|after|all]
    lepton bench [--quick] [--only W1,W3] [--peers none|all|torch,jax,...] [--json out.json]
    lepton serve model.lepton [--name NAME] [--host 127.0.0.1] [--port 8000] [--max-batch 32]
                 [--max-delay-ms 2]

`dump` imports the file, traces NAME on zero arrays of the given types and prints the traced IR
(--stage before), the optimised IR that `lp.compile` built (--stage after) or both (all, the
default), and with --llvm the LLVM IR. A problem with the command's input (file, function,
type spec) prints one line naming it and exits with status 2; an error while tracing or compiling
the user's function prints one line and exits with status 1 (--traceback shows all of it).
"""
from __future__ import annotations

import argparse
import importlib.util
import re
import sys
from pathlib import Path

import numpy as np

from .ir.types import TensorType


class UsageError(Exception):
    """A problem with what the user asked for (exit status 2)."""


# ---- dump -------------------------------------------------------------------------------------

_SPEC = re.compile(r"\S+?\[[^\]]*\]|\S+")


def parse_specs(text: str) -> list[TensorType]:
    """Argument types from "f32[64,784] f32[784,10]" (commas or spaces between them; spaces
    inside the brackets are allowed; f32[] is 0-d).

    >>> parse_specs("f32[2, 3], i64[]")
    [f32[2,3], i64[]]
    """
    specs = []
    for token in _SPEC.findall(text.replace("],", "] ")):
        token = token.strip(",")
        if not token:
            continue
        try:
            specs.append(TensorType.parse(token))
        except (ValueError, TypeError) as e:
            raise UsageError(f"bad argument type {token!r}: {e}") from None
    return specs


def load_function(target: str):
    """The function NAME of FILE.py for a target "FILE.py:NAME" (NAME may be dotted)."""
    path_text, sep, name = target.rpartition(":")
    if not sep or not path_text or not name:
        raise UsageError(f"expected FILE.py:NAME, got {target!r}")
    path = Path(path_text)
    if not path.is_file():
        raise UsageError(f"file not found: {path_text}")
    module_name = "_lepton_dump_" + re.sub(r"\W", "_", path.stem)
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"cannot import {path_text}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.resolve().parent))   # so the file can import its neighbours
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        raise UsageError(f"importing {path_text} failed: {type(e).__name__}: {e}") from None
    finally:
        sys.path.pop(0)
    obj = module
    for part in name.split("."):
        if not hasattr(obj, part):
            raise UsageError(f"{path_text} has no function {name!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise UsageError(f"{path_text}:{name} is a {type(obj).__name__}, not a function")
    return obj


def dump(target: str, args: str, stage: str = "all", llvm: bool = False, out=None) -> None:
    """Prints the IR of target for the argument types `args` (see the module docstring)."""
    out = out or sys.stdout
    specs = parse_specs(args)
    fn = load_function(target)
    import lepton as lp
    zeros = [np.zeros(t.shape, dtype=t.dtype.np) for t in specs]
    if stage in ("before", "all"):
        traced = lp.trace(fn, *zeros)      # before the header: an error prints nothing else
        print("// traced IR", file=out)
        print(traced, file=out)
    if stage in ("after", "all") or llvm:
        f = lp.compile(fn, example_args=tuple(zeros))
        if stage in ("after", "all"):
            print("// optimised IR", file=out)
            print(f.ir(), file=out)
            stats = f.stats()
            print(f"// {stats['kernels']} kernels (fusion groups), {stats['threads']} thread(s)",
                  file=out)
            for name in stats["kernel_ops"]:
                print(f"//   {name}", file=out)
        if llvm:
            print("// LLVM IR", file=out)
            print(f.llvm_ir(), file=out)


# ---- bench ------------------------------------------------------------------------------------

def bench(opts) -> int:
    from .bench import format_table, run, select, write_json
    from .bench.harness import resolve_peers
    try:                        # names first, so a typo is one line and not a half-run
        select(opts.only)
        resolve_peers(opts.peers, opts.quick)
    except ValueError as e:
        raise UsageError(str(e)) from None

    def progress(msg):
        if sys.stderr.isatty():
            print(f"\r\033[K{msg}", end="", file=sys.stderr, flush=True)
    report = run(only=opts.only, peers=opts.peers, quick=opts.quick, timeout_s=opts.timeout,
                 progress=progress)
    if sys.stderr.isatty():
        print("\r\033[K", end="", file=sys.stderr, flush=True)
    print(format_table(report, markdown=opts.markdown))
    if opts.json:
        write_json(report, opts.json)
    return 0


# ---- serve ------------------------------------------------------------------------------------

def serve(opts) -> int:
    """Serves a saved model over the Open Inference Protocol (lepton.serve) until SIGTERM."""
    import lepton
    try:
        from .serve import from_loaded, serve as run
        import starlette  # noqa: F401  the [serve] extra, checked before loading the model
        import uvicorn  # noqa: F401
    except ImportError as e:
        raise UsageError(f"serving needs the [serve] extra (pip install 'lepton[serve]'): "
                         f"{e}") from None
    if opts.max_batch < 1 or opts.max_delay_ms < 0:
        raise UsageError("--max-batch must be at least 1 and --max-delay-ms not negative")
    try:
        loaded = lepton.load_model(opts.file)
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot load {opts.file}: {e}") from None
    model = from_loaded(loaded, name=opts.name or Path(opts.file).stem)
    run(model, host=opts.host, port=opts.port, max_batch=opts.max_batch,
        max_delay_ms=opts.max_delay_ms)
    return 0


# ---- main -------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="lepton", description="Lepton graph compiler tools")
    sub = ap.add_subparsers(dest="command", required=True)

    d = sub.add_parser("dump", help="print the traced, optimised and LLVM IR of a function")
    d.add_argument("target", help="FILE.py:NAME")
    d.add_argument("--args", required=True, help='argument types, e.g. "f32[64,784] f32[784]"')
    d.add_argument("--stage", choices=("before", "after", "all"), default="all",
                   help="traced IR (before), optimised IR (after), or both (default)")
    d.add_argument("--llvm", action="store_true", help="also print the LLVM IR")
    d.add_argument("--traceback", action="store_true", help="full traceback on errors")

    b = sub.add_parser("bench", help="run the benchmark workloads against NumPy and peers")
    b.add_argument("--quick", action="store_true",
                   help="fewer samples (same shapes); slow-compiling peers left out")
    b.add_argument("--only", default=None, help="workload ids, e.g. W1,W3 (call: overhead row)")
    b.add_argument("--peers", default=None,
                   help="none | all | a list of torch,torch.compile,jax,onnxruntime "
                        "(default: the installed ones; no torch.compile under --quick)")
    b.add_argument("--json", default=None, metavar="FILE", help="also write the results here")
    b.add_argument("--markdown", action="store_true", help="print a Markdown table")
    b.add_argument("--timeout", type=float, default=None,
                   help="seconds allowed per workload and framework (default 120, full 600)")

    s = sub.add_parser("serve", help="serve a saved model over HTTP (Open Inference Protocol)")
    s.add_argument("file", help="a .lepton file (or what lepton.load_model opens)")
    s.add_argument("--name", default=None, help="the model's name (default: the file's stem)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    s.add_argument("--max-batch", type=int, default=32,
                   help="most rows of concurrent requests batched into one call (1: off)")
    s.add_argument("--max-delay-ms", type=float, default=0.0,
                   help="how long a batch waits for more rows (default 0: it takes the "
                        "requests that queued while the previous batch ran)")
    return ap


def main(argv=None) -> int:
    opts = build_parser().parse_args(argv)
    if opts.command in ("bench", "serve"):
        try:
            return bench(opts) if opts.command == "bench" else serve(opts)
        except UsageError as e:
            print(f"lepton {opts.command}: error: {e}", file=sys.stderr)
            return 2
    try:
        dump(opts.target, opts.args, opts.stage, opts.llvm)
    except UsageError as e:
        print(f"lepton dump: error: {e}", file=sys.stderr)
        return 2
    except Exception as e:
        if opts.traceback:
            raise
        first = str(e).strip().splitlines()
        print(f"lepton dump: {type(e).__name__}: {first[0] if first else ''}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
