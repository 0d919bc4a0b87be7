"""`lepton bench`: the workloads of BENCHMARKS.md measured side by side with NumPy and the peers.

    from lepton.bench import run, format_table
    print(format_table(run(only="W1,W5", peers="none", quick=True)))

workloads.py  the workloads (Lepton model, NumPy float32, float64 reference, inputs)
check.py      is a result right (against the float64 reference)
peers.py      PyTorch eager, torch.compile, jax.jit, onnxruntime (onnx_graphs.py builds ONNX)
runners.py    a framework as "prepare a workload, call it"; NumPy and Lepton
timing.py     check, warm-up, median
worker.py     one framework in its own process
harness.py    runs the workers, with timeouts
report.py     the table
"""
from .harness import Report, run, write_json
from .report import format_table
from .check import check, verify
from .workloads import WORKLOADS, Workload, select

__all__ = ["Report", "run", "write_json", "format_table", "WORKLOADS", "Workload", "check",
           "verify", "select"]
