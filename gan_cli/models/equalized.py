"""The layers that ProGAN (Karras et al. 2018, section 4) and StyleGAN2 share.

Equalized learning rate: a weight is stored as w ~ N(0, 1) and used as w * c, with He's constant
c = gain / sqrt(fan_in) applied on every forward pass rather than once at initialisation. Adam's step is
invariant to a weight's scale, so without this a layer with a large fan-in learns relatively slower;
with it every layer learns at the same speed. `lr_multiplier` (StyleGAN's mapping network: 0.01) scales
both the stored weights' draw and their use, which divides their effective learning rate by it.

Pixelwise feature normalisation: each pixel's feature vector scaled to unit mean square, in place of
batch norm in G (section 4.2)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

HE_GAIN = math.sqrt(2)  # for (leaky) ReLU layers; a layer into a linear output uses gain 1


class EqualizedLinear(nn.Module):
    """y = x (w * c)^T + b * lr_multiplier, w ~ N(0, 1 / lr_multiplier^2), c = gain * lr_multiplier / sqrt(fan_in)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, gain: float = HE_GAIN,
                 lr_multiplier: float = 1.0, bias_init: float = 0.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full((out_features,), bias_init / lr_multiplier)) if bias else None
        self.scale = gain * lr_multiplier / math.sqrt(in_features)
        self.lr_multiplier = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias * self.lr_multiplier
        return F.linear(x, self.weight * self.scale, bias)


class EqualizedConv2d(nn.Module):
    """A 'same' convolution (odd kernel, stride 1) with the weight scaled by c = gain / sqrt(in * k * k)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
                 gain: float = HE_GAIN, padding: int | None = None):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.scale = gain / math.sqrt(in_channels * kernel_size * kernel_size)
        self.padding = kernel_size // 2 if padding is None else padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)


class PixelNorm(nn.Module):
    """b = a / sqrt(mean over channels of a^2 + 1e-8), per pixel: (N, C, ...) -> (N, C, ...)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + 1e-8)
