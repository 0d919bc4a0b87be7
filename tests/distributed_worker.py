"""What each rank runs in tests/test_distributed.py: `python tests/distributed_worker.py NAME`,
under `mpiexec -n 2` or alone (one rank). A check that fails raises, and the job aborts."""
import sys

import numpy as np

import lepton as lp
import lepton.distributed as dist

X = np.random.default_rng(0).standard_normal((24, 10)).astype(np.float32)
Y = np.random.default_rng(1).integers(0, 4, 24)


class Net(lp.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = lp.nn.Linear(10, 16)
        self.fc2 = lp.nn.Linear(16, 4)

    def __call__(self, x):
        return self.fc2(lp.tanh(self.fc1(x)))


class NetWithBuffer(Net):
    """A running mean of the inputs, updated in training mode as BatchNorm's statistics."""

    def __init__(self, start):
        super().__init__()
        self._running = np.asarray(start, np.float32)

    def buffers(self):
        return {"running": self._running}

    def __call__(self, x):
        self._assign("_running", lp.multiply(self._running, 0.9) + 0.1 * lp.mean(x, axis=0))
        return super().__call__(x)


def loss_fn(model, x, y):
    return lp.cross_entropy(model(x), y)


def train():
    """Two ranks on half batches each, from different initial parameters (the first step
    broadcasts rank 0's), against one process on the whole batch from rank 0's."""
    comm = dist.init()
    r, n = dist.rank(), dist.size()
    assert n == 2, n
    shard = slice(r * len(Y) // n, (r + 1) * len(Y) // n)
    runs = [(lambda: lp.optim.SGD(0.1, momentum=0.9), lambda: NetWithBuffer(np.full(10, r))),
            (lambda: lp.optim.Adam(1e-2), Net)]
    for make_opt, make_net in runs:
        lp.nn.manual_seed(100 + r)
        model = make_net()
        start = comm.bcast({k: v.copy() for k, v in model.parameters().items()}, root=0)
        opt = dist.DataParallel(make_opt())
        losses = [opt.step(model, loss_fn, X[shard], Y[shard]) for _ in range(4)]
        everyone = comm.gather((losses, model.parameters()), root=0)
        if isinstance(model, NetWithBuffer):  # each rank's own statistics, from rank 0's start
            running = np.zeros(10, np.float32)
            for _ in range(4):
                running = 0.9 * running + 0.1 * X[shard].mean(axis=0)
            np.testing.assert_allclose(model.buffers()["running"], running, rtol=1e-5, atol=1e-6)
        if r == 0:
            for other_losses, other in everyone[1:]:
                assert other_losses == losses, (other_losses, losses)
                for k, v in model.parameters().items():
                    assert np.array_equal(other[k], v), f"{k} differs between the ranks"
            ref = make_net()
            ref.load_parameters(start)
            ref_opt = make_opt()
            ref_losses = [ref_opt.step(ref, loss_fn, X, Y) for _ in range(4)]
            np.testing.assert_allclose(losses, ref_losses, rtol=1e-5)
            for k, v in ref.parameters().items():
                np.testing.assert_allclose(model.parameters()[k], v, rtol=1e-4, atol=1e-5,
                                           err_msg=k)
            assert losses[-1] < losses[0], losses
            print(f"OK {type(opt.optimizer).__name__} losses {losses}", flush=True)


def predict():
    """Uneven shards, fewer rows than ranks, a module and a plain callable, any dtype."""
    assert dist.size() == 2
    lp.nn.manual_seed(0)
    model = Net()
    f = lp.compile(model)
    for rows in (7, 1, 2):
        x = X[:rows] if dist.rank() == 0 else None
        y = dist.predict(model, x)
        if dist.rank() == 0:
            np.testing.assert_allclose(y, f(X[:rows]), rtol=1e-6, atol=1e-6)
        else:
            assert y is None
    for rows in (0, 5):
        x = np.arange(rows * 3).reshape(rows, 3) if dist.rank() == 0 else None
        y = dist.predict(lambda a: (a * 2 + dist.rank()).astype(np.float64), x)
        if dist.rank() == 0:
            expect = np.arange(rows * 3).reshape(rows, 3) * 2.0
            expect[rows - rows // 2:] += 1  # the last rows were computed on rank 1
            assert y.dtype == np.float64 and np.array_equal(y, expect), y
    dist.barrier()
    if dist.rank() == 0:
        print("OK predict", flush=True)


def fail():
    """Rank 1 raises while rank 0 waits in a barrier: the job must end, not hang."""
    dist.init()
    if dist.rank() == 1:
        raise ValueError("rank 1 fails on purpose")
    dist.barrier()
    print("rank 0 passed the barrier", flush=True)


def alone():
    """Without a launcher: one rank; DataParallel is the optimiser's own step."""
    assert (dist.size(), dist.rank()) == (1, 0)
    dist.barrier()
    lp.nn.manual_seed(0)
    a, b = Net(), Net()
    b.load_parameters(a.parameters())
    opt_a, opt_b = dist.DataParallel(lp.optim.Adam(1e-2)), lp.optim.Adam(1e-2)
    for _ in range(2):
        assert opt_a.step(a, loss_fn, X, Y) == opt_b.step(b, loss_fn, X, Y)
    for k, v in a.parameters().items():
        assert np.array_equal(v, b.parameters()[k]), k
    assert opt_a.steps == 2
    np.testing.assert_allclose(dist.predict(a, X), lp.compile(a)(X), rtol=1e-6, atol=1e-6)
    print("OK alone", flush=True)


if __name__ == "__main__":
    {"train": train, "predict": predict, "fail": fail, "alone": alone}[sys.argv[1]]()
