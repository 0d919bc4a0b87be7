"""The codegen has no x86-only path: every `lepton bench` workload graph (and sin/cos) lowers (as lp.compile
does, threaded and profiled variants included) and LLVM optimises it and emits object code for
an aarch64 target, with no x86 intrinsic anywhere in the IR."""
import functools

import llvmlite.binding as llvm
import numpy as np
import pytest

import lepton as lp
from lepton.bench.workloads import WORKLOADS
from lepton.compiler import stages

TRIPLE = "aarch64-unknown-linux-gnu"
EM_AARCH64 = 183    # e_machine of an ELF file for AArch64


@functools.cache
def aarch64_machine():
    llvm.initialize_all_targets()
    llvm.initialize_all_asmprinters()
    try:
        target = llvm.Target.from_triple(TRIPLE)
    except RuntimeError as e:   # a llvmlite built without AArch64: say so, do not pass silently
        pytest.fail(f"llvmlite has no AArch64 target: {e}")
    return target.create_target_machine(cpu="generic", features="+neon", opt=2, reloc="pic")


def lowered_ir(fn, args, threads: int, profile: bool) -> str:
    options = stages.Options(threads=threads, profile=profile)
    return stages.run(lp.trace(fn, *args), options, until="lower").llvm_ir


def sin_cos(x):    # vmath's sin/cos carry vector variants of the Payne-Hanek reduction
    return lp.sin(x) * lp.cos(x.astype(lp.float64))


CASES = {**{wid: (w.model, w.make_inputs) for wid, w in WORKLOADS.items()},
         "sin_cos": (sin_cos, lambda: (np.linspace(-1e9, 1e9, 999, dtype=np.float32),))}


@pytest.mark.parametrize("case", sorted(CASES))
def test_graph_emits_aarch64_object_code(case):
    tm = aarch64_machine()
    fn, make_inputs = CASES[case]
    text = lowered_ir(fn, make_inputs(), threads=2, profile=case == "W1")
    assert "llvm.x86" not in text
    mod = llvm.parse_assembly(text)
    mod.triple, mod.data_layout = TRIPLE, str(tm.target_data)
    mod.verify()
    pto = llvm.create_pipeline_tuning_options(speed_level=2)
    pto.loop_vectorization = pto.slp_vectorization = True
    pb = llvm.create_pass_builder(tm, pto)
    pb.getModulePassManager().run(mod, pb)
    assert "llvm.x86" not in str(mod)
    obj = tm.emit_object(mod)
    assert obj[:4] == b"\x7fELF" and int.from_bytes(obj[18:20], "little") == EM_AARCH64
