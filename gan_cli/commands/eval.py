"""`gan eval checkpoint=CKPT`: measure a generator's samples against the real training data.

Which metrics a checkpoint gets depends on its data: images of a labelled data set are judged in the
feature space of the data set's own classifier (offline, named `<data>_cnn`) and, when the Inception-v3
weights are at hand, by FID, KID and IS; the 2-D toy mixtures in their own coordinates and by their
known modes. Results go to metrics.json beside the checkpoint and to a table on the terminal; over a
sweep's directory, one row per run."""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from gan_cli import build, checkpoint
from gan_cli.commands.sample import generator_from
from gan_cli.commands import run_overrides
from gan_cli.errors import UserError
from gan_cli.latent import seeded_latents
from gan_cli.metrics import distances, features
from gan_cli.metrics.features import InceptionFeatures

log = logging.getLogger(__name__)

INCEPTION = ("fid", "kid", "is")
INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"  # torch-fidelity's download, in torch's hub cache
LOWER_IS_BETTER = ("fd_", "kid", "fid", "class_kl")


def run(cfg: DictConfig, run_dir: Path) -> dict:
    if cfg.checkpoint is None:
        raise UserError("checkpoint= is required: a checkpoint, a run directory or a sweep's directory, "
                        "e.g. gan eval checkpoint=outputs/train/<date>/<time>/checkpoints/last.pt")
    for key in ("n", "batch_size", "k", "k_density", "kid_subsets", "kid_subset_size"):
        if not (isinstance(cfg[key], int) and cfg[key] > 0):
            raise UserError(f"{key}={cfg[key]} must be a positive integer")
    target = Path(cfg.checkpoint).expanduser()
    if target.is_dir():
        last = target / "checkpoints" / "last.pt"
        if last.is_file():
            target = last
        else:
            runs = sorted(target.glob("*/checkpoints/last.pt"))
            if not runs:
                raise UserError(f"checkpoint={cfg.checkpoint} is a directory without checkpoints/last.pt, "
                                f"in it or in its runs; give a checkpoint, a run or a sweep directory")
            return sweep(cfg, runs)
    report = evaluate(cfg, target)
    print(format_table(report))
    return report["metrics"]


def evaluate(cfg: DictConfig, path: Path) -> dict:
    start = time.monotonic()
    state = checkpoint.load(path)
    config = OmegaConf.create(state["config"])
    data = build.data(config)
    dev = build.device(cfg.device)
    G = generator_from(state, path, dev, ema=cfg.ema)
    fake = _generate(G, cfg.n, cfg.seed, cfg.batch_size, dev)
    if tuple(fake.shape[1:]) != tuple(data.shape):
        raise UserError(f"{path} makes samples of shape {tuple(fake.shape[1:])}, but its data ({data.name}) loads "
                        f"as {tuple(data.shape)}: they cannot be compared; was data.resolution changed?")
    domain = _domain_space(config, data)
    valid = metric_names(domain, data)
    wanted = _wanted(cfg, valid, domain)
    if not wanted:
        raise UserError(f"{data.name} has no labels to train a classifier on, so only fid, kid and is apply, and "
                        f"the Inception-v3 weights are not at hand: give inception_weights=PATH, or "
                        f"metrics=[fid,kid,is] to download them (online)")
    cache = Path(cfg.cache_dir).expanduser() if cfg.cache_dir else _default_cache(config)
    results, notes, about = {}, [], {}
    domain_wanted = [m for m in wanted if valid[m] != "inception"]
    if domain_wanted:
        results.update(_measure(cfg, domain.to(dev), data, fake, domain_wanted, dev, cache))
        if hasattr(domain, "net") and hasattr(domain.net, "test_accuracy"):
            about[domain.name] = {"test_accuracy": domain.net.test_accuracy}
    inception_wanted = [m for m in wanted if valid[m] == "inception"]
    if inception_wanted:
        try:
            inception = InceptionFeatures(cfg.inception_weights).to(dev)
        except UserError as e:
            if not results:
                raise
            notes.append(f"{', '.join(inception_wanted)} skipped: {e}")
        else:
            results.update(_measure(cfg, inception, data, fake, inception_wanted, dev, cache))
    report = {"checkpoint": str(path), "step": state["step"], "n": cfg.n, "seed": cfg.seed, "data": data.name,
              "metrics": results, "features": about, "notes": notes,
              "seconds": round(time.monotonic() - start, 1)}
    _write(path.parent / "metrics.json", path.name, report)
    return report


def metric_names(domain, data) -> dict[str, str]:
    """Every metric this data supports, and the space it is computed in."""
    names = {}
    if domain is not None:
        s = domain.name
        names.update({f"fd_{s}": s, f"kid_{s}": s, f"precision_{s}": s, f"recall_{s}": s,
                      f"density_{s}": s, f"coverage_{s}": s})
        if isinstance(domain, features.ClassifierFeatures):
            names.update({"classes_covered": s, "class_kl": s, "confident_share": s, f"is_{s}": s})
        if hasattr(data, "centers"):
            names.update({"modes_covered": s, "high_quality_share": s})
    if len(data.shape) == 3:
        names.update({m: "inception" for m in INCEPTION})
    return names


def _wanted(cfg: DictConfig, valid: dict[str, str], domain) -> list[str]:
    if cfg.metrics == "auto":
        at_hand = cfg.inception_weights is not None or (Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE).is_file()
        return [m for m, space in valid.items() if space != "inception" or at_hand]
    asked = [cfg.metrics] if isinstance(cfg.metrics, str) else list(cfg.metrics)
    unknown = [m for m in asked if m not in valid]
    if unknown:
        raise UserError(f"metrics: {', '.join(map(str, unknown))} is not a metric for this checkpoint; "
                        f"choose from {', '.join(valid)} (or metrics=auto)")
    return asked


def _domain_space(config: DictConfig, data):
    """The data's own feature space: its cached classifier for a labelled torchvision set, the points
    themselves for 2-D data, none for an unlabelled folder of images."""
    if len(data.shape) == 1:
        return features.PointFeatures(data.scale)
    net = build.classifier(config, data)
    if net is not None:
        return features.ClassifierFeatures(data.name, net)
    return None


def _default_cache(config: DictConfig) -> Path:
    root = config.data.get("root")
    if root and str(config.data.get("_target_", "")).endswith("torchvision_sets.load"):
        return Path(root).expanduser() / "reference"
    return Path.home() / ".cache" / "gan-cli" / "reference"


def _generate(G, n: int, seed: int, batch_size: int, device: torch.device) -> torch.Tensor:
    """n samples; a conditional G gets every class equally (its rows of the seed's z)."""
    latents = seeded_latents(n, G.z_dim, seed, G.num_classes)
    z, y = latents.z[:n], None if latents.y is None else latents.y[:n]
    with torch.no_grad():
        return torch.cat([G(z[i:i + batch_size].to(device), None if y is None else y[i:i + batch_size].to(device)).cpu()
                          for i in range(0, n, batch_size)])


def _measure(cfg: DictConfig, extractor, data, fake: torch.Tensor, wanted: list[str], device: torch.device,
             cache: Path) -> dict[str, float]:
    s = extractor.name
    real_f = features.reference(extractor, data, cfg.n, 0, cfg.batch_size, device, cache)
    fake_f, logits = features.extract(extractor, fake, cfg.batch_size, device)
    out: dict[str, float] = {}
    want = set(wanted)
    inception = s == "inception"
    fd, kid, is_ = ("fid", "kid", "is") if inception else (f"fd_{s}", f"kid_{s}", f"is_{s}")
    if fd in want:
        out[fd] = distances.frechet_distance(real_f, fake_f)
    if kid in want:
        out[kid], out[f"{kid}_std"] = distances.kid(real_f, fake_f, cfg.kid_subsets, cfg.kid_subset_size, cfg.seed)
    if is_ in want:
        out[is_], out[f"{is_}_std"] = distances.inception_score(logits)
    if want & {f"precision_{s}", f"recall_{s}"}:
        out[f"precision_{s}"], out[f"recall_{s}"] = distances.precision_recall(real_f, fake_f, cfg.k)
    if want & {f"density_{s}", f"coverage_{s}"}:
        out[f"density_{s}"], out[f"coverage_{s}"] = distances.density_coverage(real_f, fake_f, cfg.k_density)
    if want & {"classes_covered", "class_kl", "confident_share"}:
        probs = logits.softmax(1)
        top, label = probs.max(1)
        sure = top >= cfg.confident
        counts = torch.bincount(label, minlength=data.num_classes)
        sure_counts = torch.bincount(label[sure], minlength=data.num_classes)
        # only confident samples cover a class: noise spread over every class covers none
        out["classes_covered"] = int((sure_counts >= cfg.min_share * len(fake)).sum())
        out["class_kl"] = distances.class_kl(counts, torch.bincount(data.labels, minlength=data.num_classes))
        out["confident_share"] = float(sure.float().mean())
    if want & {"modes_covered", "high_quality_share"}:
        from gan_cli.metrics.toy import mode_report

        r = mode_report(fake.float() * data.scale, data.centers, data.std, cfg.min_share)
        out["modes_covered"], out["high_quality_share"] = r["modes_covered"], r["high_quality_share"]
    return out


def _write(path: Path, name: str, report: dict) -> None:
    """metrics.json beside the checkpoints: one entry per checkpoint file, written atomically."""
    kept = {}
    if path.is_file():
        try:
            kept = json.loads(path.read_text())
        except json.JSONDecodeError:
            log.warning("%s was not JSON; rewriting it", path)
    kept[name] = report
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(kept, indent=2) + "\n")
    tmp.replace(path)


def _fmt(value) -> str:
    if isinstance(value, int):
        return str(value)
    return f"{value:.4g}" if math.isfinite(value) else str(value)


def format_table(report: dict) -> str:
    lines = [f"{report['checkpoint']} (step {report['step']}), {report['n']} samples against {report['data']}'s "
             f"training split, {report['seconds']} s"]
    for space, facts in report["features"].items():
        lines.append(f"  {space}: the data set's classifier, test accuracy {100 * facts['test_accuracy']:.2f}%")
    width = max(map(len, report["metrics"]), default=0)
    metrics = report["metrics"]
    for name, value in metrics.items():
        if name.endswith("_std"):
            continue
        std = metrics.get(f"{name}_std")
        lines.append(f"  {name:<{width}}  {_fmt(value)}" + (f" +- {_fmt(std)}" if std is not None else ""))
    lines += [f"  note: {note}" for note in report["notes"]]
    lines.append(f"written: {Path(report['checkpoint']).parent / 'metrics.json'}")
    return "\n".join(lines)


def sweep(cfg: DictConfig, runs: list[Path]) -> dict:
    """One row per run of a sweep, sorted by a chosen metric (distances ascending, the rest descending)."""
    rows = []
    for path in runs:
        try:
            rows.append((path, evaluate(cfg, path)["metrics"], run_overrides(path.parent.parent)))
        except UserError as e:
            rows.append((path, {}, str(e)))
    columns = [c for c in dict.fromkeys(k for _, m, _ in rows for k in m) if not c.endswith("_std")]
    key = cfg.sort_by or (columns[0] if columns else None)
    if key is not None and key not in columns:
        raise UserError(f"sort_by={key} is not among the metrics measured: {', '.join(columns)}")
    sign = 1 if key is None or key.startswith(LOWER_IS_BETTER) else -1
    rows.sort(key=lambda r: (key not in r[1], sign * r[1].get(key, 0.0)))
    lines = [f"{len(runs)} runs, sorted by {key} ({'lower' if sign == 1 else 'higher'} first):",
             "  ".join(["run".ljust(4)] + [c[:14].rjust(14) for c in columns] + ["overrides"])]
    for path, metrics, extra in rows:
        cells = [_fmt(metrics[c]).rjust(14) if c in metrics else "-".rjust(14) for c in columns]
        lines.append("  ".join([path.parent.parent.name.ljust(4)] + cells + [extra]))
    print("\n".join(lines))
    return {"runs": [{"checkpoint": str(p), "metrics": m} for p, m, _ in rows], "sort_by": key}
