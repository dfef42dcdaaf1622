"""Probes of a run's kept checkpoints: samples from each, their diversity and the classes (or toy modes)
they cover, for diversity.mode_collapse to judge."""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import OmegaConf
from torch import Tensor

from gan_cli import build, checkpoint
from gan_cli.commands.sample import generator_from
from gan_cli.data.source import to_unit_range
from gan_cli.diagnose.diversity import Probe, spread
from gan_cli.latent import seeded_latents


def probe(path: Path, state: dict, data, n: int, seed: int, t: dict, device: torch.device,
          classifier=None) -> Probe:
    G = generator_from(state, path, device)
    latents = seeded_latents(n, G.z_dim, seed, G.num_classes)
    with torch.no_grad():
        fake = G(latents.z.to(device), None if latents.y is None else latents.y.to(device)).cpu()
    diversity, duplicates = spread(fake, _real(data, n, seed), t)
    covered = of = counts = None
    if hasattr(data, "centers"):  # toy mixture: which component each sample is nearest to
        nearest = torch.cdist(fake.float() * data.scale, data.centers).argmin(dim=1)
        counts = torch.bincount(nearest, minlength=len(data.centers))
        covered, of = int((counts >= t["classes"] * n).sum()), len(data.centers)
    elif classifier is not None:
        with torch.no_grad():
            counts = torch.bincount(classifier(fake).argmax(1), minlength=data.num_classes)
        covered, of = int((counts >= t["classes"] * n).sum()), data.num_classes
    return Probe(state["step"], diversity, duplicates,
                 covered, of, None if counts is None else counts.tolist(), fake[:16])


def _real(data, n: int, seed: int) -> Tensor:
    """n real samples in [-1, 1], drawn at random (seeded) from the data set."""
    if not hasattr(data, "samples"):  # a folder read through a DataLoader: its first n
        return data.first(n)
    idx = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:n]
    return to_unit_range(data.samples[idx])


def checkpoints(run_dir: Path, most: int) -> list[Path]:
    """last.pt and up to most-1 periodic checkpoints, evenly spread over the run."""
    periodic = sorted((run_dir / "checkpoints").glob("step_*.pt"))
    if len(periodic) > most - 1:
        idx = [round(i * (len(periodic) - 1) / max(1, most - 2)) for i in range(most - 1)]
        periodic = [periodic[i] for i in sorted(set(idx))]
    last = run_dir / "checkpoints" / "last.pt"
    return periodic + ([last] if last.is_file() else [])


def measure(run_dir: Path, n: int, seed: int, most: int, t: dict, device: torch.device) -> list[Probe]:
    paths = checkpoints(run_dir, most)
    if not paths:
        return []
    first = checkpoint.load(paths[-1])
    cfg = OmegaConf.create(first["config"])
    data = build.data(cfg)
    net = build.classifier(cfg, data)
    probes, seen = [], set()
    for path in paths:
        state = checkpoint.load(path)
        if state["step"] in seen:  # last.pt repeats the final periodic checkpoint
            continue
        seen.add(state["step"])
        probes.append(probe(path, state, data, n, seed, t, device, net))
    return probes
