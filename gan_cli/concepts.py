"""Concept directions in a generator's latent space, found from a measured attribute instead of from
hand-picked exemplars.

Radford et al. (2016, section 6.3) average the z of a few samples that show a concept ("smiling
woman") and subtract the mean of those that do not. Here the concept is a Morpho-MNIST measure: the
generator's own samples are measured, and the direction is the mean z (or w) of the samples the measure
rates highest minus the mean of those it rates lowest. Whether the direction is the concept is then a
measurement too: moving new z along it should move the measure monotonically."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


@dataclass
class Direction:
    """The direction (d,) = mean(high) - mean(low), and the measure's mean in the two groups it came from."""

    vector: Tensor
    low: float
    high: float
    count: int  # latents in each group


def direction(latents: Tensor, measures: Tensor, share: float) -> Direction:
    """From latents (N, d) and their samples' measures (N,): the mean latent of the `share` of samples
    rated highest minus that of the `share` rated lowest. Samples the measure could not rate (NaN: no
    stroke) are left out."""
    rated = ~measures.isnan()
    latents, measures = latents[rated], measures[rated]
    count = max(1, int(share * len(measures)))
    if 2 * count > len(measures):
        raise ValueError(f"{len(measures)} rated samples cannot give two groups of {count}")
    order = measures.argsort()
    low, high = order[:count], order[-count:]
    return Direction(latents[high].mean(0) - latents[low].mean(0), measures[low].mean().item(),
                     measures[high].mean().item(), count)


def sweep(latents: Tensor, vector: Tensor, strengths: Tensor) -> Tensor:
    """(S, M, d): each of M latents moved by s * vector for each strength s (the strength-0 row is the
    latents themselves)."""
    return latents[None] + strengths[:, None, None] * vector


def monotonic(means: Tensor) -> bool:
    """Whether a curve rises at every step (nondecreasing), as a concept direction's measure should."""
    return bool((means.diff() >= 0).all())
