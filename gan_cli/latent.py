"""Latent vectors that depend only on (seed, index): the same on every device and batch size."""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass
class Latents:
    """What a generator is asked for: z (N, z_dim), labels (N,) for a conditional model, and how many
    tiles a row of their picture holds."""

    z: Tensor
    y: Tensor | None = None
    nrow: int | None = None

    def to(self, device: torch.device | str) -> "Latents":
        return Latents(self.z.to(device), None if self.y is None else self.y.to(device), self.nrow)


def seeded_latents(n: int, z_dim: int, seed: int, num_classes: int | None = None,
                   label: int | None = None) -> Latents:
    """n seeded latents. Conditional, with a label: n of that class. Conditional, without one: one row
    per class, ceil(n / classes) tiles each, column j holding the same z_j in every row (style held,
    class varied)."""
    if not num_classes:
        return Latents(seeded_z(n, z_dim, seed))
    if label is not None:
        return Latents(seeded_z(n, z_dim, seed), torch.full((n,), label, dtype=torch.long))
    per_class = -(-n // num_classes)
    z = seeded_z(per_class, z_dim, seed).repeat(num_classes, 1)
    return Latents(z, torch.arange(num_classes).repeat_interleave(per_class), per_class)
