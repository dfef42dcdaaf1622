"""2-D mixtures of Gaussians, the standard test of mode coverage.

The ring (8 modes, radius 2, std 0.02) follows Metz et al. 2017 (unrolled GANs); the grid (25 modes at
{-4, -2, 0, 2, 4}^2, std 0.05) follows Srivastava et al. 2017 (VEEGAN). Each point is labelled by its
component. Points are stored divided by `scale` so that they lie in [-1, 1] like images do."""

from __future__ import annotations

import math

import torch

from gan_cli.data.source import TensorData
from gan_cli.errors import UserError


def ring_centers(modes: int = 8, radius: float = 2.0) -> torch.Tensor:
    angles = torch.arange(modes, dtype=torch.float64) * (2 * math.pi / modes)
    return (radius * torch.stack([angles.cos(), angles.sin()], dim=1)).float()  # (modes, 2)


def grid_centers(side: int = 5, spacing: float = 2.0) -> torch.Tensor:
    axis = (torch.arange(side, dtype=torch.float32) - (side - 1) / 2) * spacing
    return torch.cartesian_prod(axis, axis)  # (side^2, 2)


class Mixture(TensorData):
    """Points of a Gaussian mixture, labelled by component, that remember the components."""

    def __init__(self, name: str, centers: torch.Tensor, std: float, n: int, seed: int):
        if n <= 0 or std <= 0:
            raise UserError(f"data={name} needs data.n > 0 and data.std > 0 (got n={n}, std={std})")
        g = torch.Generator().manual_seed(seed)
        labels = torch.randint(len(centers), (n,), generator=g)
        points = centers[labels] + std * torch.randn(n, 2, generator=g)
        scale = 1.5 * float(centers.abs().max())
        super().__init__(name, points / scale, labels, num_classes=len(centers), scale=scale)
        self.centers, self.std = centers, std  # in the data's own units


def ring(modes: int = 8, radius: float = 2.0, std: float = 0.02, n: int = 50_000, seed: int = 0) -> Mixture:
    return Mixture("toy_ring", ring_centers(modes, radius), std, n, seed)


def grid(side: int = 5, spacing: float = 2.0, std: float = 0.05, n: int = 50_000, seed: int = 0) -> Mixture:
    return Mixture("toy_grid", grid_centers(side, spacing), std, n, seed)
