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


def refuse_negative(prefix: str, **options: int) -> None:
    """Sizes where 0 means "off" (a minibatch layer's kernels or group size) and only a negative one is
    wrong."""
    for key, value in options.items():
        if value < 0:
            raise UserError(f"{prefix}.{key}={value} must be 0 (off) or a positive integer")


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


class VirtualBatchNorm2d(nn.Module):
    """Virtual batch normalisation, Salimans et al. 2016 section 3.4: each sample is normalised with the
    statistics of a reference batch, fixed once, together with its own, so that a sample's output no
    longer depends on the other samples of its batch. Per channel, with the reference's N_ref samples:
    mean = (N_ref * mean_ref + mean_i) / (N_ref + 1), likewise the mean of squares, var = meansq - mean^2
    (the moments of the reference batch with sample i added, as in OpenAI's VBN code), then gamma, beta.

    The owner runs the reference batch first: a call while no reference is held takes that batch's own
    moments as the reference (and normalises it with them, as batch norm would); later calls use them
    until `forget()`. The moments keep their graph, so gradients also flow through the reference pass, as
    in the paper. No running statistics: training and eval mode behave alike."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.reference: tuple[torch.Tensor, torch.Tensor, int] | None = None  # mean, meansq (C,), N_ref

    def forget(self) -> None:
        self.reference = None  # also lets go of the reference pass's graph

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out_dtype, x = x.dtype, x.float()  # moments in float32 under mixed precision, as batch norm takes them
        if self.reference is None:  # the reference batch: (N_ref, C, H, W) -> its moments, per channel
            mean, meansq = x.mean(dim=(0, 2, 3)), x.square().mean(dim=(0, 2, 3))
            self.reference = (mean, meansq, x.shape[0])
            mean, meansq = mean[None], meansq[None]  # (1, C)
        else:  # each sample's own spatial moments, (N, C), mixed with the reference's
            ref_mean, ref_meansq, n_ref = self.reference
            mean = (n_ref * ref_mean + x.mean(dim=(2, 3))) / (n_ref + 1)
            meansq = (n_ref * ref_meansq + x.square().mean(dim=(2, 3))) / (n_ref + 1)
        # clamp: meansq - mean^2 is a variance, >= 0, but the subtraction can round a hair below zero
        var = (meansq - mean.square()).clamp_min(0)
        h = (x - mean[:, :, None, None]) / torch.sqrt(var[:, :, None, None] + self.eps)
        return (h * self.weight[:, None, None] + self.bias[:, None, None]).to(out_dtype)
