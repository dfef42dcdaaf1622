"""Latent vectors that depend only on (seed, index): the same on every device and batch size."""

from __future__ import annotations

import torch
from torch import Tensor


def seeded_z(n: int, z_dim: int, seed: int, device: torch.device | str = "cpu") -> Tensor:
    """z_i ~ N(0, I) for i < n, drawn on the CPU so that a seed names the same vectors everywhere."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, z_dim, generator=g).to(device)
