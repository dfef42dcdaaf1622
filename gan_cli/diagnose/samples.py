"""Probes of a run's kept checkpoints: samples from each, their diversity and the classes (or toy modes)
they cover, for diversity.mode_collapse to judge."""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import OmegaConf
from torch import Tensor

from gan_cli import build, checkpoint
from gan_cli.algorithms.translation import translate_all
from gan_cli.diagnose.diversity import Probe, spread
from gan_cli.latent import generate
from gan_cli.metrics.classifier import coverage, covered


def probe(saved: checkpoint.Saved, data, real: Tensor, seed: int, t: dict, device: torch.device,
          classifier=None) -> Probe:
    """Samples of one checkpoint (as many as `real` holds): their spread against `real`, and the
    classes (or toy modes) they cover, those holding t["classes"] of the samples: each sample counted in
    its most likely class (classifier.coverage's classes_predicted) or in its nearest mode."""
    n = len(real)
    G = saved.generator(device)
    if saved.translates:  # the translations of n training inputs, against n targets
        sources = data.pairs(n)[0] if data.paired else data.sides(n)[0][0]
        fake = translate_all(G, sources, n, device)
    elif getattr(G, "attributes", None) is not None:  # an attribute editor (AttGAN): n training images, edited
        from gan_cli.algorithms.attgan import edited_samples

        thres_int = float(saved.config.get("algorithm", {}).get("thres_int", 0.5))
        fake = edited_samples(G, data, n, seed, thres_int, device)
    elif getattr(G, "takes_text", False):  # text-to-image: captions of n training images
        from gan_cli.algorithms.text2image import captioned_samples

        fake = captioned_samples(G, data, n, seed, device)
    else:
        fake = generate(G, n, seed, n, device)
    diversity, duplicates = spread(fake, real, t)
    found = of = counts = None
    if data.centers is not None:  # toy mixture: which component each sample is nearest to
        nearest = torch.cdist(fake.float() * data.scale, data.centers).argmin(dim=1)
        tally = torch.bincount(nearest, minlength=len(data.centers))
        found, of, counts = covered(tally, n, t["classes"]), len(data.centers), tally.tolist()
    elif classifier is not None:
        with torch.no_grad():
            r = coverage(classifier(fake).softmax(1), data.num_classes, min_share=t["classes"])
        found, of, counts = r["classes_predicted"], data.num_classes, r["class_counts"]
    return Probe(saved.step, diversity, duplicates, found, of, counts, fake[:16])


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
    cfg = OmegaConf.create(checkpoint.Saved.load(paths[-1], trust=trust).config)
    data = build.data(cfg)
    net = build.classifier(cfg, data)
    real = data.draw(n, seed)  # one reference set for every checkpoint
    probes, seen = [], set()
    for path in paths:
        saved = checkpoint.Saved.load(path, trust=trust)
        if saved.step in seen:  # last.pt repeats the final periodic checkpoint
            continue
        seen.add(saved.step)
        probes.append(probe(saved, data, real, seed, t, device, net))
    return probes
