"""lp.export (API.md "A model's life cycle"): a shared library with the weights inside and a C
header; a C program compiled against it runs without Python, from two threads at once on
unaligned buffers, and computes what the Python model computes."""
import os
import shutil
import subprocess

import numpy as np
import pytest

import lepton as lp
from lepton.export import LinkError

rng = np.random.default_rng(3)
needs_cc = pytest.mark.skipif(shutil.which(os.environ.get("CC") or "cc") is None,
                              reason="no C compiler driver (cc) on this machine")


class Net(lp.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = lp.nn.Linear(12, 16)
        self.fc2 = lp.nn.Linear(16, 5)
        self.table = rng.standard_normal((7, 3)).astype(np.float32)

    def __call__(self, x, idx):
        return {"probs": lp.softmax(self.fc2(lp.gelu(self.fc1(x)))),
                "rows": lp.take(self.table, idx, axis=0), "same": x}


HARNESS = r"""
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "net.h"

static const size_t in_bytes[] = {net_INPUT0_BYTES, net_INPUT1_BYTES};
static const size_t out_bytes[] = {net_OUTPUT0_BYTES, net_OUTPUT1_BYTES, net_OUTPUT2_BYTES};
static const void *inputs[net_NUM_INPUTS];

typedef struct { void *outputs[net_NUM_OUTPUTS]; int rc; } job;

static void *work(void *arg) {      /* 200 calls, each into this thread's own outputs */
    job *j = arg;
    for (int r = 0; r < 200 && j->rc == 0; r++) j->rc = net_run(inputs, j->outputs);
    return NULL;
}

int main(int argc, char **argv) {
    char path[4096];
    for (int i = 0; i < net_NUM_INPUTS; i++) {
        char *p = malloc(in_bytes[i] + 1) + 1;          /* deliberately unaligned */
        snprintf(path, sizeof path, "%s/in%d.bin", argv[1], i);
        FILE *f = fopen(path, "rb");
        if (!f || fread(p, 1, in_bytes[i], f) != in_bytes[i]) return 10;
        fclose(f);
        inputs[i] = p;
    }
    job jobs[2];
    pthread_t threads[2];
    for (int t = 0; t < 2; t++) {
        jobs[t].rc = 0;
        for (int k = 0; k < net_NUM_OUTPUTS; k++)
            jobs[t].outputs[k] = (char *)malloc(out_bytes[k] + 3) + 3;   /* unaligned */
        pthread_create(&threads[t], NULL, work, &jobs[t]);
    }
    for (int t = 0; t < 2; t++) pthread_join(threads[t], NULL);
    printf("%d %d\n", jobs[0].rc, jobs[1].rc);
    if (jobs[0].rc || jobs[1].rc) return 1;
    for (int k = 0; k < net_NUM_OUTPUTS; k++) {
        if (memcmp(jobs[0].outputs[k], jobs[1].outputs[k], out_bytes[k])) return 20 + k;
        snprintf(path, sizeof path, "%s/out%d.bin", argv[1], k);
        FILE *f = fopen(path, "wb");
        fwrite(jobs[0].outputs[k], 1, out_bytes[k], f);
        fclose(f);
    }
    return 0;
}
"""


@needs_cc
def test_c_program_from_two_threads_matches_python(tmp_path):
    net = Net()
    x = rng.standard_normal((6, 12)).astype(np.float32)
    idx = np.array([0, 6, -1, 3], np.int64)
    header = lp.export(net, tmp_path / "lib" / "libnet.so", (x, idx), name="net")
    assert header == str(tmp_path / "lib" / "net.h")
    assert not (tmp_path / "lib" / "net.o").exists()
    text = (tmp_path / "lib" / "net.h").read_text()
    for line in ("#define net_NUM_INPUTS 2", "#define net_NUM_OUTPUTS 3",
                 "#define net_INPUT0_SHAPE {6, 12}", '#define net_INPUT1_DTYPE "int64"',
                 "typedef int64_t net_input1_t;", "#define net_OUTPUT1_SHAPE {4, 3}",
                 "int net_run(const void *const *inputs, void *const *outputs);"):
        assert line in text, line
    assert "index out of range" in text     # the take's check: status 1
    (tmp_path / "main.c").write_text(HARNESS)
    exe = tmp_path / "main"
    lib = tmp_path / "lib"
    subprocess.run([os.environ.get("CC") or "cc", "-O1", "-o", str(exe), str(tmp_path / "main.c"),
                    f"-I{lib}", f"-L{lib}", "-lnet", "-lm", "-lpthread", f"-Wl,-rpath,{lib}"],
                   check=True)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}   # no Python, no Lepton
    data = tmp_path / "data"
    data.mkdir()
    x.tofile(data / "in0.bin")
    idx.tofile(data / "in1.bin")
    run = subprocess.run([str(exe), str(data)], env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, (run.returncode, run.stdout, run.stderr)
    want = lp.compile(net)(x, idx)
    got = [np.fromfile(data / f"out{k}.bin", np.float32) for k in range(3)]
    np.testing.assert_allclose(got[0].reshape(6, 5), want["probs"], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(got[1].reshape(4, 3), want["rows"])
    np.testing.assert_array_equal(got[2].reshape(6, 12), x)

    np.array([0, 7, 1, 2], np.int64).tofile(data / "in1.bin")   # an index out of range
    bad = subprocess.run([str(exe), str(data)], env=env, capture_output=True, text=True,
                         timeout=300)
    assert bad.returncode == 1 and bad.stdout.split() == ["1", "1"], bad


def test_without_a_c_compiler_the_object_and_header_are_written(tmp_path, monkeypatch):
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    x = np.ones((2, 3), np.float32)
    w = np.full((3, 2), 0.5, np.float32)
    with pytest.raises(LinkError, match=r"cc -shared -o .*libtiny\.so .*tiny\.o -lm"):
        lp.export(lambda a: a @ w, tmp_path / "libtiny.so", (x,), name="tiny")
    assert (tmp_path / "tiny.o").stat().st_size > 0
    assert "int tiny_run(" in (tmp_path / "tiny.h").read_text()
    assert not (tmp_path / "libtiny.so").exists()


def test_bad_names_and_arguments(tmp_path):
    with pytest.raises(ValueError, match="C identifier"):
        lp.export(lambda a: a, tmp_path / "lib.so", (np.ones(2, np.float32),), name="my-model")
    with pytest.raises(TypeError, match="arrays only"):
        lp.export(lambda a, n: a, tmp_path / "lib.so", (np.ones(2, np.float32), "x"))


@needs_cc
def test_the_c_example_of_the_docs(tmp_path):
    """docs/deploying.md's main.c, built as the page says, prints row 0 of the model's result."""
    import re
    from pathlib import Path
    page = (Path(__file__).resolve().parent.parent / "docs" / "deploying.md").read_text()
    main_c = [b for b in re.findall(r"```c\n(.*?)```", page, re.S) if "int main" in b][0]
    x = (np.arange(4 * 20) % 7 / 7).astype(np.float32).reshape(4, 20)   # as main.c fills it
    fc = lp.nn.Linear(20, 6)
    lp.export(lambda a: lp.softmax(lp.relu(fc(a))), tmp_path / "out" / "libmlp.so", (x,),
              name="mlp")
    (tmp_path / "main.c").write_text(main_c)
    subprocess.run([os.environ.get("CC") or "cc", "-O2", "-o", "main", "main.c", "-Iout",
                    "-Lout", "-lmlp", "-lm", "-Wl,-rpath,$ORIGIN/out"], cwd=tmp_path, check=True)
    out = subprocess.run(["./main"], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")}, check=True)
    want = lp.compile(lambda a: lp.softmax(lp.relu(fc(a))))(x)[0]
    np.testing.assert_allclose([float(v) for v in out.stdout.split()], want, atol=1e-4)
