"""Probes of a run's kept checkpoints: samples from each, their diversity and the classes (or toy modes)
they cover, for diversity.mode_collapse to judge."""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import OmegaConf
from torch import Tensor

from gan_cli import build, checkpoint
from gan_cli.commands.sample import generator_from
from gan_cli.diagnose.diversity import Probe, spread
from gan_cli.metrics.evaluator import generate


def probe(path: Path, state: dict, data, real: Tensor, seed: int, t: dict, device: torch.device,
          classifier=None) -> Probe:
    """Samples of one checkpoint (as many as `real` holds): their spread against `real`, and the
    classes (or toy modes) they cover."""
    n = len(real)
    G = generator_from(state, path, device)
    fake = generate(G, n, seed, n, device)
    diversity, duplicates = spread(fake, real, t)
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


def checkpoints(run_dir: Path, most: int) -> list[Path]:
    """last.pt and up to most-1 periodic checkpoints, evenly spread over the run."""
    periodic = sorted((run_dir / "checkpoints").glob("step_*.pt"))
    if len(periodic) > most - 1:
        idx = [round(i * (len(periodic) - 1) / max(1, most - 2)) for i in range(most - 1)]
        periodic = [periodic[i] for i in sorted(set(idx))]
    last = run_dir / "checkpoints" / "last.pt"
    return periodic + ([last] if last.is_file() else [])


def measure(run_dir: Path, n: int, seed: int, most: int, t: dict, device: torch.device,
            trust=()) -> list[Probe]:
    paths = checkpoints(run_dir, most)
    if not paths:
        return []
    first = checkpoint.load(paths[-1], trust=trust)
    cfg = OmegaConf.create(first["config"])
    data = build.data(cfg)
    net = build.classifier(cfg, data)
    real = data.draw(n, seed)  # one reference set for every checkpoint
    probes, seen = [], set()
    for path in paths:
        state = checkpoint.load(path, trust=trust)
        if state["step"] in seen:  # last.pt repeats the final periodic checkpoint
            continue
        seen.add(state["step"])
        probes.append(probe(path, state, data, real, seed, t, device, net))
    return probes
