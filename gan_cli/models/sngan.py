"""SNGAN's ResNet pair (Miyato et al. 2018, appendix B.4, Table 4; the same architecture as the ResNet of
Gulrajani et al. 2017's WGAN-GP on CIFAR-10): pre-activation residual blocks, nearest-neighbour
upsampling with batch norm in G, average pooling and no normalisation other than spectral norm in D,
global sum pooling before D's linear output.

An image side must be 4 * 2^n with n >= 1: G starts from a 4x4 map and each up-block doubles it
(32: 4 -> 8 -> 16 -> 32, the paper's CIFAR-10 model; 64: four up-blocks). D halves the side until the
map is 8x8, as in the paper's 32x32 model, then runs two blocks at that size; an 8x8 input ends at 4x4,
since D's first block always halves."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from gan_cli.errors import UserError
from gan_cli.models.layers import add_spectral_norm, require_positive, square_image

BASE = 4  # side of G's first feature map


def upsampling_plan(resolution: int) -> int:
    """n, the number of up-blocks that take G from 4x4 to resolution x resolution."""
    n, side = 0, BASE
    while side < resolution:
        side, n = side * 2, n + 1
    if side == resolution and n >= 1:
        return n
    raise UserError(
        f"model=sngan cannot produce {resolution}x{resolution} images; its sides are 4 times a power of "
        f"two, e.g. 32 or 64 (set data.resolution, or use model=dcgan for 28)"
    )


def _xavier(layer: nn.Conv2d | nn.Linear, gain: float = 1.0) -> nn.Module:
    # Gains follow the authors' Chainer code (pfnet-research/sngan_projection) and its common PyTorch
    # ports: sqrt(2) on the 3x3 convs inside residual branches, which always follow a ReLU that halves
    # the signal's second moment (He et al. 2015); 1 on shortcuts and the linear/output layers. Biases
    # start at zero as in Chainer. Under spectral norm D's gains cancel; they matter for G and for
    # spectral_norm=false.
    nn.init.xavier_uniform_(layer.weight, gain)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
    return layer


def _conv3x3(c_in: int, c_out: int) -> nn.Conv2d:
    return _xavier(nn.Conv2d(c_in, c_out, 3, 1, 1), math.sqrt(2))


def _conv1x1(c_in: int, c_out: int) -> nn.Conv2d:
    return _xavier(nn.Conv2d(c_in, c_out, 1, 1, 0))


def _up(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="nearest")  # (N, C, s, s) -> (N, C, 2s, 2s)


class UpBlock(nn.Module):
    """G's block: BN, ReLU, upsample, conv3x3, BN, ReLU, conv3x3; shortcut upsample, conv1x1.
    (N, c_in, s, s) -> (N, c_out, 2s, 2s)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(c_in), _conv3x3(c_in, c_out)
        self.bn2, self.conv2 = nn.BatchNorm2d(c_out), _conv3x3(c_out, c_out)
        self.shortcut = _conv1x1(c_in, c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(_up(F.relu(self.bn1(x))))
        h = self.conv2(F.relu(self.bn2(h)))
        return h + self.shortcut(_up(x))


class FirstBlock(nn.Module):
    """D's "optimized" first block: no ReLU before the first conv, since its input is the image, and the
    shortcut pools before its 1x1 conv, which is cheaper on the full-size map. (N, C, s, s) ->
    (N, c_out, s/2, s/2)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv1, self.conv2 = _conv3x3(c_in, c_out), _conv3x3(c_out, c_out)
        self.shortcut = _conv1x1(c_in, c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.avg_pool2d(self.conv2(F.relu(self.conv1(x))), 2)
        return h + self.shortcut(F.avg_pool2d(x, 2))


class DBlock(nn.Module):
    """D's block: ReLU, conv3x3, ReLU, conv3x3, [avgpool2]; shortcut conv1x1 then avgpool2 when it
    downsamples, identity otherwise. (N, c, s, s) -> (N, c, s/2, s/2) or (N, c, s, s)."""

    def __init__(self, channels: int, downsample: bool):
        super().__init__()
        self.downsample = downsample
        self.conv1, self.conv2 = _conv3x3(channels, channels), _conv3x3(channels, channels)
        self.shortcut = _conv1x1(channels, channels) if downsample else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # not in place: x is still needed by the shortcut
        h = self.conv2(F.relu(self.conv1(F.relu(x))))
        s = self.shortcut(x)
        if self.downsample:
            h, s = F.avg_pool2d(h, 2), F.avg_pool2d(s, 2)
        return h + s


class Generator(nn.Module):
    def __init__(self, z_dim: int, shape: Sequence[int], width: int = 256):
        super().__init__()
        require_positive("model.g", z_dim=z_dim, width=width)
        channels, resolution = square_image(shape, "sngan")
        n = upsampling_plan(resolution)
        self.z_dim = z_dim
        self.num_classes = None  # unconditional: build, train and sample read this; y is ignored
        self.width = width
        self.linear = _xavier(nn.Linear(z_dim, BASE * BASE * width))  # (N, z_dim) -> (N, 16 * width)
        self.blocks = nn.Sequential(*(UpBlock(width, width) for _ in range(n)))  # 4x4 -> res x res
        self.bn = nn.BatchNorm2d(width)
        self.out = _xavier(nn.Conv2d(width, channels, 3, 1, 1))  # (N, width, res, res) -> (N, C, res, res)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.linear(z).view(-1, self.width, BASE, BASE)  # (N, width, 4, 4)
        h = self.blocks(h)
        return torch.tanh(self.out(F.relu(self.bn(h))))


class Discriminator(nn.Module):
    def __init__(self, shape: Sequence[int], width: int = 128, spectral_norm: bool = True):
        super().__init__()
        require_positive("model.d", width=width)
        channels, resolution = square_image(shape, "sngan")
        n = upsampling_plan(resolution)
        self.num_classes = None  # unconditional, like G; y is ignored
        # the first block halves; n - 2 more halvings leave resolution / 2^(n-1) = 8
        blocks: list[nn.Module] = [FirstBlock(channels, width)]
        blocks += [DBlock(width, downsample=True) for _ in range(max(n - 2, 0))]
        blocks += [DBlock(width, downsample=False) for _ in range(2)]
        self.blocks = nn.Sequential(*blocks)  # (N, C, res, res) -> (N, width, 8, 8)
        self.linear = _xavier(nn.Linear(width, 1))
        if spectral_norm:
            add_spectral_norm(self)

    def features(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """What the final linear layer reads, (N, width): the last block's ReLU, summed over positions
        (feature matching compares its means, Salimans et al. 2016 section 3.1)."""
        # sum, not mean, over H and W, as in the authors' code; spectral norm bounds each layer, and the
        # sum lets the logit still grow with the evidence from every position
        return F.relu(self.blocks(x)).sum(dim=(2, 3))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.linear(self.features(x, y)).squeeze(1)  # (N,) logits
