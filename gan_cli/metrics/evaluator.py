"""Measuring a generator against the real training data, the same way for `gan eval` and for
evaluation during training (train.eval_every): samples, features in each space, the metrics."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from gan_cli.errors import UserError
from gan_cli.latent import generate
from gan_cli.metrics import classifier, distances, features

INCEPTION = ("fid", "kid", "is")
INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"  # torch-fidelity's download, in torch's hub cache
LOWER_IS_BETTER = ("fd_", "kid", "fid", "class_kl", "l1", "cycle_l1")  # the rest: higher is better


@dataclass(frozen=True)
class Settings:
    n: int = 10_000  # generated samples, and real ones for the reference
    seed: int = 0
    batch_size: int = 500
    k: int = 3  # precision and recall
    k_density: int = 5  # density and coverage
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    confident: float = 0.9
    min_share: float = 0.01
    truncation: float = 1.0  # psi of the truncation trick for a style-based G (1: off)


def lower_is_better(metric: str) -> bool:
    return metric.startswith(LOWER_IS_BETTER)


def metric_names(domain: nn.Module | None, data) -> dict[str, str]:
    """Every metric this data supports, and the feature space it is computed in."""
    names = {}
    if domain is not None:
        s = domain.name
        names.update({f"fd_{s}": s, f"kid_{s}": s, f"precision_{s}": s, f"recall_{s}": s,
                      f"density_{s}": s, f"coverage_{s}": s})
        if isinstance(domain, features.ClassifierFeatures):
            names.update({"classes_covered": s, "class_kl": s, "confident_share": s, f"is_{s}": s})
        if data.centers is not None:
            names.update({"modes_covered": s, "high_quality_share": s})
    if data.modality.images:
        names.update({m: "inception" for m in INCEPTION})
    return names


def select(asked, valid: dict[str, str], inception_weights: str | None, key: str = "metrics") -> list[str]:
    """`auto`: every metric of the data (Inception's only when its weights are at hand); else the
    names asked for, each checked."""
    if asked == "auto":
        at_hand = inception_weights is not None or (Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE).is_file()
        return [m for m, space in valid.items() if space != "inception" or at_hand]
    asked = [asked] if isinstance(asked, str) else list(asked)
    unknown = [m for m in asked if m not in valid]
    if unknown:
        raise UserError(f"{key}: {', '.join(map(str, unknown))} is not a metric for this checkpoint; "
                        f"choose from {', '.join(valid)}" + (" (or metrics=auto)" if key == "metrics" else ""))
    return asked


class Evaluator:
    """Draws samples from G and measures them in each feature space against cached reference features."""

    def __init__(self, data, spaces: dict[str, tuple[nn.Module, list[str]]], settings: Settings,
                 device: torch.device, cache: Path | None):
        self.data, self.spaces, self.s, self.device, self.cache = data, spaces, settings, device, cache

    def __call__(self, G: nn.Module) -> dict[str, float]:
        # G in eval mode, then as it was
        fake = generate(G, self.s.n, self.s.seed, self.s.batch_size, self.device, truncation=self.s.truncation)
        out = {}
        for extractor, wanted in self.spaces.values():
            out.update(measure(self.s, extractor.to(self.device), self.data, fake, wanted, self.device, self.cache))
        return out


def measure(st: Settings, extractor, data, fake: torch.Tensor, wanted: list[str], device: torch.device,
             cache: Path) -> dict[str, float]:
    s = extractor.name
    real_f = features.reference(extractor, data, st.n, 0, st.batch_size, device, cache)
    fake_f, logits = features.extract(extractor, fake, st.batch_size, device)
    out: dict[str, float] = {}
    want = set(wanted)
    inception = s == "inception"
    fd, kid, is_ = ("fid", "kid", "is") if inception else (f"fd_{s}", f"kid_{s}", f"is_{s}")
    if fd in want:
        out[fd] = distances.frechet_distance(real_f, fake_f)
    if kid in want:
        out[kid], out[f"{kid}_std"] = distances.kid(real_f, fake_f, st.kid_subsets, st.kid_subset_size, st.seed)
    if is_ in want:
        out[is_], out[f"{is_}_std"] = distances.inception_score(logits)
    if want & {f"precision_{s}", f"recall_{s}"}:
        out[f"precision_{s}"], out[f"recall_{s}"] = distances.precision_recall(real_f, fake_f, st.k)
    if want & {f"density_{s}", f"coverage_{s}"}:
        out[f"density_{s}"], out[f"coverage_{s}"] = distances.density_coverage(real_f, fake_f, st.k_density)
    if want & {"classes_covered", "class_kl", "confident_share"}:
        r = classifier.coverage(logits.softmax(1), data.num_classes, st.confident, st.min_share)
        out["classes_covered"] = r["classes_covered"]  # confident samples only: noise covers no class
        out["class_kl"] = distances.class_kl(torch.tensor(r["class_counts"]),
                                             torch.bincount(data.labels, minlength=data.num_classes))
        out["confident_share"] = r["confident_share"]
    if want & {"modes_covered", "high_quality_share"}:
        from gan_cli.metrics.toy import mode_report

        r = mode_report(fake.float() * data.scale, data.centers, data.std, st.min_share)
        out["modes_covered"], out["high_quality_share"] = r["modes_covered"], r["high_quality_share"]
    return out


def default_cache(config) -> Path:
    """<data.root>/reference for the torchvision sets; a user cache for folders and generated data."""
    root = config.data.get("root")
    if root and "dataset" in config.data:  # a torchvision set (data=mnist, cifar10, ...): its root is ours
        return Path(root).expanduser() / "reference"
    return Path.home() / ".cache" / "gan-cli" / "reference"
