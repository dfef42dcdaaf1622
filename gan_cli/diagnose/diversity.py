"""Mode collapse from samples: their spread against the real data's, near-duplicates, and the classes
(or toy modes) they fall into. Pure functions of tensors and numbers; samples.py gathers the probes."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from gan_cli.diagnose.detectors import R1, Finding, applicable, wgan_gp


@dataclass
class Probe:
    step: int
    diversity: float  # mean pairwise distance of samples / the same for real data
    duplicates: float  # share of samples with a near-duplicate among the others, beyond real data's own share
    covered: int | None  # classes or modes holding min_share of samples (None: no labels to judge)
    of: int | None
    counts: list[int] | None
    grid: Tensor  # a few samples, for the figure


def pairwise(x: Tensor) -> Tensor:
    flat = x.flatten(1).float()
    d = torch.cdist(flat, flat)
    d.fill_diagonal_(float("nan"))
    return d


def spread(fake: Tensor, real: Tensor, t: dict) -> tuple[float, float]:
    """Samples' mean pairwise distance as a share of real data's, and the share of samples with a
    near-duplicate beyond real data's own share (clustered data such as the toy mixtures has its own)."""
    d_fake, d_real = pairwise(fake), pairwise(real)
    real_mean = d_real.nanmean()
    near = t["duplicate_distance"] * real_mean

    def duplicated(d: Tensor) -> float:
        return float((d.nan_to_num(float("inf")).min(dim=1).values < near).float().mean())

    return float(d_fake.nanmean() / real_mean), max(0.0, duplicated(d_fake) - duplicated(d_real))


def mode_collapse(probes: list[Probe], config: dict, t: dict) -> list[Finding]:
    probes = [p for p in probes if p.step >= t["from_step"]]
    flags = [p.diversity < t["diversity"] or p.duplicates > t["duplicates"]
             or (p.covered is not None and p.covered < t["coverage"] * p.of) for p in probes]
    if not any(flags):
        return []
    first = flags.index(True)
    bad = [p for p, f in zip(probes, flags) if f]
    worst = min(bad, key=lambda p: p.diversity)
    covered = f", {worst.covered}/{worst.of} classes or modes covered" if worst.covered is not None else ""
    z_dim = config.get("model", {}).get("z_dim")
    # in the order of their measured effect (bench/diagnose_cures.py, README): on collapse_demo (z of one
    # dimension, 4/10 classes) a wider z made it healthy (9/10); feature matching reached 6/10, WGAN-GP 5/10;
    # spectral norm, minibatch stddev and unrolling 5 stayed at 3/10, minibatch discrimination at 5/10 let D
    # win outright. On oscillation_demo's collapsed ring, R1 made it healthy where a wider z did not
    cures = applicable(config, ([f"model.z_dim={max(2 * z_dim, 64)}"] if z_dim else [])
                       + [R1, "loss.feature_matching=true", wgan_gp(config)])
    return [Finding(
        "mode_collapse", "high" if flags[-1] else "medium", probes[first].step, bad[-1].step,
        f"at step {worst.step} samples are {100 * worst.diversity:.0f}% as diverse as real data, "
        f"{100 * worst.duplicates:.0f}% more have a near-duplicate than in real data{covered}",
        {"diversity": worst.diversity, "duplicates": worst.duplicates, "covered": worst.covered, "of": worst.of,
         "counts": worst.counts, "by_step": {p.step: round(p.diversity, 3) for p in probes}},
        cures, recovered=not flags[-1])]
