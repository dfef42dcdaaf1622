"""Mode coverage on the 2-D Gaussian mixtures, computed exactly from the known components.

A sample is high quality when it lies within 3 standard deviations of some component's centre; a mode
is covered when at least 1% of all samples are high quality and nearest to it (the criteria of
Srivastava et al. 2017, VEEGAN)."""

from __future__ import annotations

import torch
from torch import Tensor

from gan_cli.metrics.classifier import covered


def mode_report(points: Tensor, centers: Tensor, std: float, min_share: float = 0.01,
                within_std: float = 3.0) -> dict:
    """points (N, 2) and centers (K, 2) in the data's own units."""
    distance, nearest = torch.cdist(points.float(), centers.float()).min(dim=1)
    good = distance <= within_std * std
    counts = torch.bincount(nearest[good], minlength=len(centers))
    return {
        "modes_covered": covered(counts, len(points), min_share),
        "modes": len(centers),
        "high_quality_share": float(good.float().mean()),
        "mode_counts": counts.tolist(),
    }


def checkpoint_report(path, n: int = 2000, seed: int = 12345) -> dict:
    """mode_report of n samples (seeded noise) from the generator of a toy mixture's checkpoint."""
    from omegaconf import OmegaConf

    from gan_cli import build, checkpoint
    from gan_cli.latent import seeded_z

    saved = checkpoint.Saved.load(path)
    data = build.data(OmegaConf.create(saved.config))
    G = saved.generator(torch.device("cpu"))
    with torch.no_grad():
        points = G(seeded_z(n, G.z_dim, seed)) * data.scale
    return mode_report(points, data.centers, data.std)
