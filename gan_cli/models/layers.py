"""Small pieces shared by the model families."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrizations

from gan_cli.errors import UserError


def require_positive(prefix: str, **sizes: int) -> None:
    """Sizes of a network (widths, layer counts, z_dim) that must be at least 1: torch would build a
    zero-width layer without a word and train nothing."""
    for key, value in sizes.items():
        if value < 1:
            raise UserError(f"{prefix}.{key}={value} must be a positive integer")


def add_spectral_norm(net: nn.Module) -> nn.Module:
    """Miyato et al. 2018: divide each weight by its largest singular value, estimated by one power
    iteration per forward pass. Applied after initialisation, to every conv and linear layer."""
    for m in list(net.modules()):
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            parametrizations.spectral_norm(m)
    return net


class Maxout(nn.Module):
    """Goodfellow et al. 2013: the max over `pieces` affine maps; the 2014 GAN's discriminator unit."""

    def __init__(self, in_features: int, out_features: int, pieces: int):
        super().__init__()
        self.pieces = pieces
        self.linear = nn.Linear(in_features, out_features * pieces)

    def forward(self, x):
        # (N, out*pieces) -> (N, out, pieces) -> max over pieces -> (N, out)
        return self.linear(x).unflatten(1, (-1, self.pieces)).amax(dim=2)


# Feature normalisations a discriminator may use; WGAN-GP's critic must not use batch norm, since the
# penalty is defined per sample (Gulrajani et al. 2017, section 4).
NORMS = {
    "batch": nn.BatchNorm2d,
    "instance": lambda ch: nn.InstanceNorm2d(ch, affine=True),
    "layer": lambda ch: nn.GroupNorm(1, ch),
    "none": lambda ch: nn.Identity(),
}


def norm_layer(kind: str, channels: int) -> nn.Module:
    if kind not in NORMS:
        from gan_cli.errors import UserError

        raise UserError(f"unknown norm '{kind}'; choose one of: {', '.join(NORMS)}")
    return NORMS[kind](channels)


def with_one_hot(h: torch.Tensor, y: torch.Tensor | None, num_classes: int | None) -> torch.Tensor:
    """Concatenate one-hot labels to features (N, F) -> (N, F + classes); unconditional models pass
    num_classes=None and get h back."""
    if num_classes is None:
        return h
    if y is None:
        raise ValueError("a conditional model needs labels y")
    return torch.cat([h, F.one_hot(y, num_classes).to(h.dtype)], dim=1)


def square_image(shape, model: str) -> tuple[int, int]:
    """(channels, side) of square image data; convolutional models refuse anything else."""
    if len(shape) != 3 or shape[1] != shape[2]:
        from gan_cli.errors import UserError

        raise UserError(f"model={model} needs square images (C, H, W), got data of shape {list(shape)}; "
                        f"use model=mlp for vector data such as the toy mixtures")
    return shape[0], shape[1]
