"""Latent vectors that depend only on (seed, index): the same on every device and batch size."""

from __future__ import annotations

import torch
from torch import Tensor


BLOCK = 64  # rows drawn together; each block has its own generator


def seeded_z(n: int, z_dim: int, seed: int, device: torch.device | str = "cpu") -> Tensor:
    """z_i ~ N(0, I) for i < n: z_i depends on (seed, i, z_dim) only, not on n, nor on the device.

    torch's CPU normal sampler fills tensors in vectorised chunks, so the first rows of randn(6, d)
    differ from randn(3, d) under the same seed. Drawing fixed-size blocks, each from its own
    generator, on the CPU, makes a prefix stable: sample 3 of seed 0 is the same in every command."""
    blocks = []
    for b in range((n + BLOCK - 1) // BLOCK):
        g = torch.Generator().manual_seed(seed * 1_000_003 + b)
        blocks.append(torch.randn(BLOCK, z_dim, generator=g))
    return torch.cat(blocks)[:n].to(device) if blocks else torch.empty(0, z_dim, device=device)
