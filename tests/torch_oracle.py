"""PyTorch as the oracle of a module: load a torch module's state_dict into a Lepton module,
and check that one SGD step on the same scalar loss leaves both with the same parameters.

    tm, m = torch.nn.Linear(3, 2), lp.nn.Linear(3, 2)
    load_torch(m, tm)
    sgd_step_matches_torch(m, tm, lambda out, t: lp.mean(out * t), (x,), target, lr=0.1)
"""
import numpy as np
import pytest

import lepton as lp


def load_torch(m, tm) -> None:
    """m gets tm's parameters, exactly as a user loads a torch state_dict."""
    m.load_parameters({k: v.detach().numpy() for k, v in tm.state_dict().items()})


def sgd_step_matches_torch(m, tm, loss, inputs, target, lr: float = 0.5, kwargs=None) -> None:
    """One lp.optim.SGD step and one torch.optim.SGD step on loss(model(*inputs, **kwargs),
    target), with `loss` written once for lp tensors and torch tensors (operators and .mean()
    / .sum() only) and kwargs NumPy arrays (constants of the step); asserts the same loss and
    the same parameters after the step."""
    import torch
    kwargs = kwargs or {}
    got = lp.optim.SGD(lr).step(m, lambda model, t, *xs: loss(model(*xs, **kwargs), t),
                                target, *inputs)
    opt = torch.optim.SGD(tm.parameters(), lr=lr)
    tl = loss(tm(*[torch.from_numpy(x) for x in inputs],
                 **{k: torch.from_numpy(v) for k, v in kwargs.items()}), torch.from_numpy(target))
    tl.backward()
    opt.step()
    assert got == pytest.approx(tl.item(), rel=1e-5)
    for name, v in tm.state_dict().items():
        np.testing.assert_allclose(m.parameters()[name], v.numpy(), rtol=1e-4, atol=1e-6,
                                   err_msg=name)
