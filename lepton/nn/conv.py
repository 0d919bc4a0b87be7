"""Conv2d and the pooling layers (NCHW)."""
from __future__ import annotations

from ..frontends import nn_ops
from .init import _bias_init, _generator, _kaiming_uniform, _pair, _positive_int
from .module import Module


class Conv2d(Module):
    """2-d convolution of NCHW images: weight (out, in/groups, kh, kw), bias (out,).

        >>> conv = Conv2d(1, 8, 3, padding=1)    # x (N, 1, H, W) -> (N, 8, H, W)
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, *, rng=None):
        super().__init__()
        self.in_channels = _positive_int(in_channels, "Conv2d in_channels")
        self.out_channels = _positive_int(out_channels, "Conv2d out_channels")
        self.groups = _positive_int(groups, "Conv2d groups")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"Conv2d: in_channels ({in_channels}) and out_channels "
                             f"({out_channels}) must be divisible by groups ({groups})")
        self.kernel_size = _pair(kernel_size, "Conv2d kernel_size")
        self.stride = _pair(stride, "Conv2d stride")
        self.padding = _pair(padding, "Conv2d padding")
        self.dilation = _pair(dilation, "Conv2d dilation")
        fan_in = in_channels // groups * self.kernel_size[0] * self.kernel_size[1]
        g = _generator(rng)
        self.weight = _kaiming_uniform(
            g, (out_channels, in_channels // groups) + self.kernel_size, fan_in)
        self.bias = _bias_init(g, (out_channels,), fan_in) if bias else None

    def forward(self, x):
        return nn_ops.conv2d(x, self.weight, self.bias, stride=self.stride, padding=self.padding,
                             dilation=self.dilation, groups=self.groups)

    def extra_repr(self) -> str:
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        return s + ("" if self.bias is not None else ", bias=False")


class _Pool2d(Module):
    """A parameter-free 2-d pooling layer over `pool` (an nn_ops function)."""
    pool = None

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"

    def forward(self, x):
        return type(self).pool(x, self.kernel_size, self.stride, self.padding)


class MaxPool2d(_Pool2d):
    pool = staticmethod(nn_ops.max_pool2d)


class AvgPool2d(_Pool2d):
    pool = staticmethod(nn_ops.avg_pool2d)
