"""Conv2d, ConvTranspose2d and the pooling layers (NCHW)."""
from __future__ import annotations

from ..frontends import nn_ops, upsampling
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


class ConvTranspose2d(Module):
    """Transposed 2-d convolution (the gradient of a Conv2d wrt its input), PyTorch's layer:
    weight (in, out/groups, kh, kw), bias (out,), both drawn as PyTorch does with fan_in =
    out/groups * kh * kw. `layer(x, output_size=None)`: output_size (the last two dims, or
    all four) picks the output_padding that gives that size, as PyTorch's.

        >>> up = ConvTranspose2d(8, 4, 4, stride=2, padding=1)   # (N, 8, H, W) -> (N, 4, 2H, 2W)
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 output_padding=0, groups: int = 1, bias: bool = True, dilation=1,
                 padding_mode: str = "zeros", *, rng=None):
        super().__init__()
        what = "ConvTranspose2d"
        self.in_channels = _positive_int(in_channels, f"{what} in_channels")
        self.out_channels = _positive_int(out_channels, f"{what} out_channels")
        self.groups = _positive_int(groups, f"{what} groups")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{what}: in_channels ({in_channels}) and out_channels "
                             f"({out_channels}) must be divisible by groups ({groups})")
        if padding_mode != "zeros":
            raise ValueError(f'{what}: only "zeros" padding_mode is supported, got '
                             f"{padding_mode!r}")
        self.padding_mode = padding_mode
        self.kernel_size = _pair(kernel_size, f"{what} kernel_size")
        self.stride = _pair(stride, f"{what} stride")
        self.padding = _pair(padding, f"{what} padding")
        self.output_padding = _pair(output_padding, f"{what} output_padding")
        self.dilation = _pair(dilation, f"{what} dilation")
        fan_in = out_channels // groups * self.kernel_size[0] * self.kernel_size[1]
        g = _generator(rng)
        self.weight = _kaiming_uniform(
            g, (in_channels, out_channels // groups) + self.kernel_size, fan_in)
        self.bias = _bias_init(g, (out_channels,), fan_in) if bias else None

    def _output_padding(self, x, output_size) -> tuple[int, int]:
        if output_size is None:
            return self.output_padding
        size = tuple(output_size)[-2:]
        pad = []
        for d in range(2):
            least = ((x.shape[2 + d] - 1) * self.stride[d] - 2 * self.padding[d]
                     + self.dilation[d] * (self.kernel_size[d] - 1) + 1)
            if not least <= size[d] < least + self.stride[d]:
                raise ValueError(f"ConvTranspose2d: output_size {tuple(output_size)} is not "
                                 f"reachable for input {tuple(x.shape)}: dim {d} must lie in "
                                 f"[{least}, {least + self.stride[d] - 1}]")
            pad.append(size[d] - least)
        return tuple(pad)

    def forward(self, x, output_size=None):
        return upsampling.conv_transpose2d(
            x, self.weight, self.bias, stride=self.stride, padding=self.padding,
            output_padding=self._output_padding(x, output_size), groups=self.groups,
            dilation=self.dilation)

    def extra_repr(self) -> str:
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        for name, default in (("padding", (0, 0)), ("output_padding", (0, 0)),
                              ("dilation", (1, 1))):
            if getattr(self, name) != default:
                s += f", {name}={getattr(self, name)}"
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
