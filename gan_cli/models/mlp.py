"""Fully connected G and D after Goodfellow et al. 2014 (the MNIST model of the original GAN paper):
G has two ReLU layers of 1200 units, D two maxout layers of 240 units x 5 pieces with dropout.

With num_classes set they are the conditional GAN of Mirza & Osindero 2014: the label, one-hot,
is concatenated to z at G's input and to x at D's input."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from gan_cli.errors import UserError
from gan_cli.models.layers import Maxout, add_spectral_norm, require_positive, with_one_hot


class Generator(nn.Module):
    def __init__(self, z_dim: int, shape: Sequence[int], hidden: int = 1200, layers: int = 2,
                 num_classes: int | None = None, tanh: bool = True):
        """tanh: end in tanh, for data in [-1, 1] such as images. Toy 2-D data wants a linear output
        (Metz et al. 2017): an unbounded critic can push samples into tanh's flat tails, where no
        gradient brings them back (README, "Measured: every loss on the 8-Gaussian ring")."""
        super().__init__()
        require_positive("model.g", z_dim=z_dim, hidden=hidden, layers=layers)
        self.z_dim = z_dim
        self.num_classes = num_classes
        self.shape = tuple(shape)
        dims = [z_dim + (num_classes or 0)] + [hidden] * layers
        body: list[nn.Module] = []
        for d_in, d_out in zip(dims[:-1], dims[1:]):
            body += [nn.Linear(d_in, d_out), nn.ReLU(inplace=True)]
        body += [nn.Linear(dims[-1], math.prod(self.shape))] + ([nn.Tanh()] if tanh else [])
        self.net = nn.Sequential(*body)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """y: class indices (N,), or a float (N, classes) "soft label" standing in for the one-hot
        vector (for walks from one label to another)."""
        # (N, z_dim [+ classes]) -> (N, *shape)
        soft = self.num_classes is not None and y is not None and y.is_floating_point()
        h = torch.cat([z, y.to(z.dtype)], dim=1) if soft else with_one_hot(z, y, self.num_classes)
        return self.net(h).view(-1, *self.shape)


class Discriminator(nn.Module):
    def __init__(self, shape: Sequence[int], hidden: int = 240, pieces: int = 5, layers: int = 2,
                 dropout: float = 0.5, spectral_norm: bool = False, num_classes: int | None = None):
        super().__init__()
        require_positive("model.d", hidden=hidden, pieces=pieces, layers=layers)
        if not 0 <= dropout < 1:
            raise UserError(f"model.d.dropout={dropout} must be a probability in [0, 1)")
        self.num_classes = num_classes
        dims = [math.prod(shape) + (num_classes or 0)] + [hidden] * layers
        body: list[nn.Module] = []
        for d_in, d_out in zip(dims[:-1], dims[1:]):
            body += [Maxout(d_in, d_out, pieces), nn.Dropout(dropout)]
        body.append(nn.Linear(dims[-1], 1))
        self.net = nn.Sequential(*body)
        if spectral_norm:
            add_spectral_norm(self)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        # (N, *shape [+ classes]) -> (N,) logits
        return self.net(with_one_hot(x.flatten(1), y, self.num_classes)).squeeze(1)
