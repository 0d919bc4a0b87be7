"""The vector width chosen per host: the decision (faster kept, no AVX-512 -> 256 unmeasured,
the JSON file read, written and survived when corrupt, LEPTON_VECTOR_WIDTH), and that each
width really changes the code: the target machine's features, the loop vectoriser's lanes and
the registers of the assembly, checked on an AVX-512 target machine without running its code."""
import json
import re
import threading

import numpy as np
import pytest
from llvmlite import ir

import lepton as lp
from kernels import scale_loop
from lepton import config, tuning
from lepton.compiler.codegen.gemm import emit_matmul
from lepton.compiler import stages
from lepton.ir.types import TensorType, float32
from lepton.runtime import jit
from lepton.runtime.vector_width import FILE_NAME, choose, has_avx512, width_features

AVX2 = "+avx,+avx2,+fma,-avx512f,-avx512bw"
AVX512 = "+avx,+avx2,+fma,+avx512f,+avx512bw,+avx512vl"
KEY = "rocketlake|" + AVX512 + "|llvmlite x"


def timings(seconds):
    """A measuring function returning `seconds` per width and recording its calls."""
    calls = []

    def measure(widths):
        calls.append(tuple(widths))
        return {w: seconds[w] for w in widths}
    measure.calls = calls
    return measure


def never(widths):
    raise AssertionError("measured where nothing needed measuring")


@pytest.mark.parametrize("seconds,expected", [({256: 2.0, 512: 1.0}, 512),
                                              ({256: 1.0, 512: 2.0}, 256),
                                              ({256: 1.0, 512: 1.0}, 256)])
def test_the_faster_width_is_kept(seconds, expected):
    measure = timings(seconds)
    assert choose(AVX512, KEY, measure) == expected
    assert measure.calls == [(256, 512)]


def test_no_avx512_means_256_without_measuring(tmp_path):
    assert choose(AVX2, KEY, never, cache_file=tmp_path / FILE_NAME) == 256
    assert choose("+neon,+fp-armv8", KEY, never) == 256
    assert not (tmp_path / FILE_NAME).exists()


def test_the_choice_is_written_then_read(tmp_path):
    path = tmp_path / "sub" / FILE_NAME
    assert choose(AVX512, KEY, timings({256: 3.0, 512: 1.0}), cache_file=path) == 512
    entry = json.loads(path.read_text())[KEY]
    assert entry["width"] == 512 and entry["seconds"] == {"256": 3.0, "512": 1.0}
    assert choose(AVX512, KEY, never, cache_file=path) == 512      # a later process reads it
    # another host sharing the directory measures for itself and keeps the first entry
    assert choose(AVX512, "icelake|x", timings({256: 1.0, 512: 2.0}), cache_file=path) == 256
    assert set(json.loads(path.read_text())) == {KEY, "icelake|x"}


def test_write_false_measures_but_does_not_write(tmp_path):
    path = tmp_path / FILE_NAME
    measure = timings({256: 2.0, 512: 1.0})
    assert choose(AVX512, KEY, measure, cache_file=path, write=False) == 512
    assert measure.calls and not path.exists()


@pytest.mark.parametrize("text", ["{not json", "[512]", json.dumps({KEY: {"width": 384}}),
                                  json.dumps({KEY: 512})])
def test_a_corrupt_file_is_ignored_and_rewritten(tmp_path, text):
    path = tmp_path / FILE_NAME
    path.write_text(text)
    measure = timings({256: 2.0, 512: 1.0})
    assert choose(AVX512, KEY, measure, cache_file=path) == 512
    assert measure.calls and json.loads(path.read_text())[KEY]["width"] == 512


def test_forcing_wins_without_measuring(tmp_path):
    path = tmp_path / FILE_NAME
    path.write_text(json.dumps({KEY: {"width": 512}}))
    assert choose(AVX512, KEY, never, forced=256, cache_file=path) == 256
    assert choose(AVX512, KEY, never, forced=512) == 512
    assert choose(AVX2, KEY, never, forced=256) == 256
    with pytest.raises(ValueError, match="LEPTON_VECTOR_WIDTH=512.*AVX-512"):
        choose(AVX2, KEY, never, forced=512)


@pytest.mark.parametrize("text", ["128", "1024", "wide", "512 bits"])
def test_config_rejects_other_values(monkeypatch, text):
    monkeypatch.setenv("LEPTON_VECTOR_WIDTH", text)
    with pytest.raises(ValueError, match="LEPTON_VECTOR_WIDTH"):
        config.current()


def test_config_reads_the_width(monkeypatch):
    monkeypatch.delenv("LEPTON_VECTOR_WIDTH", raising=False)
    assert config.current().vector_width is None
    for text, width in [("256", 256), (" 512", 512), ("", None)]:
        monkeypatch.setenv("LEPTON_VECTOR_WIDTH", text)
        assert config.current().vector_width == width


def test_compile_honours_the_forced_width(monkeypatch):
    monkeypatch.setenv("LEPTON_VECTOR_WIDTH", "256")
    f = lp.compile(lambda x: lp.exp(x) + 1.0, example_args=(np.ones(64, np.float32),))
    assert f.stats()["vector_width"] == 256
    np.testing.assert_allclose(f(np.zeros(64, np.float32)), 2.0)
    monkeypatch.setenv("LEPTON_VECTOR_WIDTH", "512")
    g = lp.compile(lambda x: lp.exp(x) - 1.0)
    if has_avx512(jit.host_cpu()[1]):
        np.testing.assert_allclose(g(np.zeros(64, np.float32)), 0.0)
        assert g.stats()["vector_width"] == 512
    else:
        with pytest.raises(ValueError, match="LEPTON_VECTOR_WIDTH=512"):
            g(np.zeros(64, np.float32))


def test_the_host_choice_and_its_file(tmp_path, monkeypatch):
    monkeypatch.setenv("LEPTON_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("LEPTON_VECTOR_WIDTH", raising=False)
    width = tuning.host_vector_width(config.current())
    written = (tmp_path / FILE_NAME).exists()
    if has_avx512(jit.host_cpu()[1]):
        assert width in (256, 512) and written
    else:
        assert width == 256 and not written


def test_calibration_times_lepton_kernels():
    # on any host: the calibration kernels compile, run and give a time at the width it has
    seconds = tuning.measure((256,))
    assert set(seconds) == {256} and 0 < seconds[256] < 1


def test_measuring_inside_the_choice_does_not_deadlock():
    # host_vector_width measures under its lock, and measuring compiles, which asks the width
    done = []

    def choose_and_measure():
        with tuning._choosing:
            done.append(tuning.measure((256,)))
    t = threading.Thread(target=choose_and_measure, daemon=True)
    t.start()
    t.join(120)
    assert done, "measuring while choosing the width deadlocked"


def test_the_width_feature_only_where_there_is_a_choice():
    assert width_features(256, AVX512) == "+prefer-256-bit"
    assert width_features(512, AVX512) == "-prefer-256-bit"
    assert width_features(None, AVX512) == width_features(256, AVX2) == ""
    assert jit.machine_features(AVX512, 512) == AVX512 + ",-prefer-256-bit"
    assert jit.machine_features(AVX2, 256) == AVX2
    features = jit.host_cpu()[1]
    if has_avx512(features):
        assert jit.target_key(256) != jit.target_key(512)
    else:
        assert jit.target_key(256) == jit.target_key(None)


def gemm() -> ir.Module:
    mod = ir.Module()
    emit_matmul(mod, "mm", TensorType(float32, (64, 64)), TensorType(float32, (64, 64)),
                TensorType(float32, (64, 64)))
    return mod


def compiled_for(module, width: int) -> tuple[str, str]:
    """(optimised IR, assembly) of `module` for an AVX-512 CPU preferring `width`: only
    compiled, never run, so any x86-64 host can check it."""
    if not jit.llvm.get_default_triple().startswith("x86_64"):
        pytest.skip("the default target is not x86-64: no AVX-512 target machine to build")
    tm = jit.make_target_machine("skylake-avx512", AVX512, width)
    mod = jit.llvm.parse_assembly(str(module))
    mod.triple, mod.data_layout = tm.triple, str(tm.target_data)
    jit.optimize(mod, 3, tm)
    return str(mod), tm.emit_assembly(mod)


@pytest.mark.parametrize("width,lanes", [(256, 8), (512, 16)])
def test_each_width_changes_the_vectorised_loop(width, lanes):
    ir_text, asm = compiled_for(scale_loop(), width)
    assert f"<{lanes} x float>" in ir_text and f"<{2 * lanes} x float>" not in ir_text
    assert ("zmm" in asm) == (width == 512)


@pytest.mark.parametrize("width", [256, 512])
def test_the_hand_vectorised_gemm_keeps_512_bit_registers(width):
    # the preference steers LLVM's vectorisers; the GEMM is written with 16-lane vectors and
    # LLVM keeps explicit 512-bit types in zmm on an AVX-512 CPU whatever the preference
    _, asm = compiled_for(gemm(), width)
    assert re.search(r"vfmadd231ps\s[^\n]*%zmm", asm)


def lowered(fn, args) -> str:
    return stages.run(lp.trace(fn, *args), stages.Options(), until="lower").llvm_ir


@pytest.mark.parametrize("k", [0, 1], ids=["gelu", "layer_norm"])
def test_the_calibration_kernels_differ_by_width(k):
    # what the calibration times really is 256- against 512-bit code on an AVX-512 CPU
    fn, args = tuning._kernels()[k]
    text = lowered(fn, args)
    (ir256, asm256), (ir512, asm512) = compiled_for(text, 256), compiled_for(text, 512)
    assert "<8 x float>" in ir256 and "<16 x float>" not in ir256 and "zmm" not in asm256
    assert "<16 x float>" in ir512 and "zmm" in asm512
