"""Fully connected G and D after Goodfellow et al. 2014 (the MNIST model of the original GAN paper):
G has two ReLU layers of 1200 units, D two maxout layers of 240 units x 5 pieces with dropout.

With num_classes set they are the conditional GAN of Mirza & Osindero 2014: the label, one-hot,
is concatenated to z at G's input and to x at D's input.

D may add, on its last hidden layer, Salimans et al. 2016's minibatch discrimination (section 3.2) and
Karras et al. 2018's minibatch standard deviation (gan_cli/models/minibatch.py); both are off by default."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from gan_cli.errors import UserError
from gan_cli.models.layers import Maxout, add_spectral_norm, refuse_negative, require_positive, with_one_hot
from gan_cli.models.minibatch import MinibatchDiscrimination, MinibatchStdDev


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
                 dropout: float = 0.5, spectral_norm: bool = False, num_classes: int | None = None,
                 minibatch_discrimination: int = 0, minibatch_dims: int = 5, minibatch_stddev: int = 0):
        """minibatch_discrimination: kernels B of Salimans et al. 2016's minibatch discrimination (0: off),
        each of minibatch_dims (C) dimensions; minibatch_stddev: group size of Karras et al. 2018's
        minibatch standard deviation (0: off). Both go on the last hidden layer's output and widen the
        final Linear's input, to hidden + B + 1: [h, o, stddev]."""
        super().__init__()
        require_positive("model.d", hidden=hidden, pieces=pieces, layers=layers, minibatch_dims=minibatch_dims)
        refuse_negative("model.d", minibatch_discrimination=minibatch_discrimination,
                        minibatch_stddev=minibatch_stddev)
        if not 0 <= dropout < 1:
            raise UserError(f"model.d.dropout={dropout} must be a probability in [0, 1)")
        self.num_classes = num_classes
        dims = [math.prod(shape) + (num_classes or 0)] + [hidden] * layers
        body: list[nn.Module] = []
        for d_in, d_out in zip(dims[:-1], dims[1:]):
            body += [Maxout(d_in, d_out, pieces), nn.Dropout(dropout)]
        # off, neither registers anything: a default D has the keys it always had
        self.minibatch = (MinibatchDiscrimination(hidden, minibatch_discrimination, minibatch_dims)
                          if minibatch_discrimination else None)
        self.stddev = MinibatchStdDev(minibatch_stddev) if minibatch_stddev else None
        body.append(nn.Linear(dims[-1] + minibatch_discrimination + (1 if self.stddev else 0), 1))
        self.net = nn.Sequential(*body)  # the hidden layers and the final Linear: checkpoints' net.* keys
        if spectral_norm:
            add_spectral_norm(self)

    def features(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The last maxout layer's output, after its dropout, (N, hidden), before any minibatch layer
        (feature matching compares its means, Salimans et al. 2016 section 3.1)."""
        return self.net[:-1](with_one_hot(x.flatten(1), y, self.num_classes))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        # (N, *shape [+ classes]) -> (N, hidden [+ B] [+ 1]) -> (N,) logits
        h = self.features(x, y)
        # both read the hidden layer itself, so the standard deviation is not taken over o's values too
        extra = [] if self.minibatch is None else [self.minibatch.similarity(h)]
        extra += [] if self.stddev is None else [self.stddev.statistic(h)]
        return self.net[-1](torch.cat([h, *extra], dim=1) if extra else h).squeeze(1)
