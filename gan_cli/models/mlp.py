"""Fully connected G and D after Goodfellow et al. 2014 (the MNIST model of the original GAN paper):
G has two ReLU layers of 1200 units, D two maxout layers of 240 units x 5 pieces with dropout."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from gan_cli.models.layers import Maxout, add_spectral_norm


class Generator(nn.Module):
    def __init__(self, z_dim: int, shape: Sequence[int], hidden: int = 1200, layers: int = 2,
                 bounded: bool = True):
        """bounded: end in tanh for data in [-1, 1] (images); linear output for unbounded data (toy 2-D)."""
        super().__init__()
        self.z_dim = z_dim
        self.shape = tuple(shape)
        dims = [z_dim] + [hidden] * layers
        body: list[nn.Module] = []
        for d_in, d_out in zip(dims[:-1], dims[1:]):
            body += [nn.Linear(d_in, d_out), nn.ReLU(inplace=True)]
        body.append(nn.Linear(dims[-1], math.prod(self.shape)))
        if bounded:
            body.append(nn.Tanh())
        self.net = nn.Sequential(*body)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(z).view(-1, *self.shape)  # (N, z_dim) -> (N, *shape)


class Discriminator(nn.Module):
    def __init__(self, shape: Sequence[int], hidden: int = 240, pieces: int = 5, layers: int = 2,
                 dropout: float = 0.5, spectral_norm: bool = False):
        super().__init__()
        dims = [math.prod(shape)] + [hidden] * layers
        body: list[nn.Module] = []
        for d_in, d_out in zip(dims[:-1], dims[1:]):
            body += [Maxout(d_in, d_out, pieces), nn.Dropout(dropout)]
        body.append(nn.Linear(dims[-1], 1))
        self.net = nn.Sequential(*body)
        if spectral_norm:
            add_spectral_norm(self)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x.flatten(1)).squeeze(1)  # (N, *shape) -> (N,) logits
