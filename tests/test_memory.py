"""Memory planning: lifetimes share arena bytes, in-place writes, alignment, and results
unchanged by any of it."""
import numpy as np

import lepton as lp
from lepton.compile import CompileResult
from lepton.compiler.memory import ALIGN, plan_memory
from lepton.ir import Graph, TensorType, float32, interpret

rng = np.random.default_rng(3)


def chain_graph(n=6, shape=(64, 64)):
    """x -> matmul -> matmul -> ...: every intermediate dies at the next kernel."""
    g = Graph("chain")
    x = g.input(TensorType(float32, shape))
    w = g.input(TensorType(float32, (shape[1], shape[1])))
    v = x
    for _ in range(n):
        v = g.add("matmul", [v, w])
    g.set_outputs([v])
    return g


def test_dead_buffers_are_reused():
    g = chain_graph()
    res = CompileResult(g, None, None)
    p = res.plan
    one = 64 * 64 * 4
    assert p.naive_bytes == 6 * one
    assert p.intermediate_bytes == 2 * one  # two live at a time: the input and the output
    x = rng.standard_normal((64, 64)).astype(np.float32) / 8
    w = rng.standard_normal((64, 64)).astype(np.float32) / 8
    np.testing.assert_allclose(res.executable(x, w)[0], interpret(g, x, w)[0], rtol=1e-4,
                               atol=1e-6)


def test_offsets_are_aligned_and_live_buffers_disjoint():
    g = chain_graph(n=5, shape=(3, 5))
    res = CompileResult(g, None, None)
    ws = res.plan.workspace_slot
    spans = {v: (off, off + v.type.nbytes) for v, (slot, off) in res.plan.where.items()
             if slot == ws}
    assert all(off % ALIGN == 0 for off, _ in spans.values())
    order = [v for v in g.nodes if v in spans]
    for a, b in zip(order, order[1:]):  # a producer and its consumer are alive together
        assert spans[a][1] <= spans[b][0] or spans[b][1] <= spans[a][0]


def test_elementwise_kernel_writes_over_a_dying_input(monkeypatch):
    monkeypatch.setenv("LEPTON_CACHE", "0")  # the kernels are inspected: build them
    def f(x, w):
        h = x @ w                 # a workspace buffer that dies in the next kernel
        return lp.sum(lp.softmax(h) @ w, axis=0)
    x, w = rng.standard_normal((32, 16)).astype(np.float32), \
        rng.standard_normal((16, 16)).astype(np.float32) / 4
    c = lp.compile(f)
    got = c(x, w)
    e = np.exp(x @ w - (x @ w).max(axis=-1, keepdims=True))
    want = np.sum(e / e.sum(axis=-1, keepdims=True) @ w, axis=0)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    res = c._last
    (grp,) = [g for g in res.groups if "exp" in g.describe()]
    (o,), (x_in,) = grp.outputs, [x for x in grp.reads() if x.op != "constant"]
    assert res.plan.where[o] == res.plan.where[x_in]
    (k,) = [k for k in res.kernels if k.outputs == (o,)]
    define = [ln for ln in res.llvm_ir.splitlines() if f'@"{k.fn.name}"(' in ln][0]
    # the output and the input are the same memory: the kernel reads the input through the
    # output's pointer (codegen/fused.py), so every pointer argument may stay noalias
    assert define.count("noalias") == define.count("*")


def test_default_plan_without_schedule():
    g = chain_graph(n=3, shape=(2, 2))
    p = plan_memory(g)
    assert p.intermediate_bytes == 2 * ALIGN


def test_w8_transformer_block_arena_is_under_half_the_naive_plan():
    from lepton.bench.workloads import WORKLOADS
    w8 = WORKLOADS["W8"]
    s = lp.compile(w8.model, example_args=tuple(w8.make_inputs())).stats()
    assert 0 < s["intermediate_bytes"] < s["naive_intermediate_bytes"] / 2


def test_each_result_of_a_scan_is_the_buffer_of_its_get():
    def f(c, xs):
        (a, b), ys = lp.scan(lambda c, x: ((c[0] + x, c[1] * x), c[0] - x), (c, c), xs)
        return lp.exp(a) + b, ys
    c, xs = rng.standard_normal(8).astype(np.float32), rng.standard_normal((5, 8))
    res = CompileResult(lp.trace(f, c, xs.astype(np.float32)), None, None)
    (scan,) = [v for v in res.graph.nodes if v.op == "scan"]
    gets = [v for v in res.graph.nodes if v.op == "get"]
    assert scan not in res.plan.where and len(gets) == 3
    places = [res.plan.where[v] for v in gets]
    assert len(set(places)) == 3   # each result its own buffer, ys an output array's
    assert res.plan.where[gets[2]] == (2 + 1, 0)
    xs = xs.astype(np.float32)
    for want, got in zip(interpret(res.graph, c, xs), res.executable(c, xs)):
        np.testing.assert_allclose(got, want, rtol=1e-5)
