"""`gan eval checkpoint=CKPT`: measure a generator's samples against the real training data.

Which metrics a checkpoint gets depends on its data: images of a labelled data set are judged in the
feature space of the data set's own classifier (offline, named `<data>_cnn`) and, when the Inception-v3
weights are at hand, by FID, KID and IS; the 2-D toy mixtures in their own coordinates and by their
known modes. Results go to metrics.json beside the checkpoint and to a table on the terminal; over a
sweep's directory, one row per run."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from gan_cli import build, checkpoint
from gan_cli.commands.sample import generator_from
from gan_cli.commands import format_number, run_overrides
from gan_cli.errors import UserError
from gan_cli.metrics.evaluator import Settings, lower_is_better

log = logging.getLogger(__name__)


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


def settings(cfg: DictConfig) -> Settings:
    return Settings(n=cfg.n, seed=cfg.seed, batch_size=cfg.batch_size, k=cfg.k, k_density=cfg.k_density,
                    kid_subsets=cfg.kid_subsets, kid_subset_size=cfg.kid_subset_size, confident=cfg.confident,
                    min_share=cfg.min_share)


def evaluate(cfg: DictConfig, path: Path) -> dict:
    start = time.monotonic()
    state = checkpoint.load(path)
    config = OmegaConf.create(state["config"])
    data = build.data(config)
    if tuple(state["data"]["shape"]) != tuple(data.shape):
        raise UserError(f"{path} makes samples of shape {tuple(state['data']['shape'])}, but its data ({data.name}) "
                        f"loads as {tuple(data.shape)}: they cannot be compared; was data.resolution changed?")
    dev = build.device(cfg.device)
    G = generator_from(state, path, dev, ema=cfg.ema)
    evaluator, notes = build.evaluator(config, data, cfg.metrics, settings(cfg), dev, cfg.inception_weights,
                                       cfg.cache_dir)
    results = evaluator(G)
    about = {name: {"test_accuracy": ext.net.test_accuracy} for name, (ext, _) in evaluator.spaces.items()
             if hasattr(getattr(ext, "net", None), "test_accuracy")}
    report = {"checkpoint": str(path), "step": state["step"], "n": cfg.n, "seed": cfg.seed, "data": data.name,
              "metrics": results, "features": about, "notes": notes,
              "seconds": round(time.monotonic() - start, 1)}
    _write(path.parent / "metrics.json", path.name, report)
    return report


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
        lines.append(f"  {name:<{width}}  {format_number(value)}"
                     + (f" +- {format_number(std)}" if std is not None else ""))
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
    sign = 1 if key is None or lower_is_better(key) else -1
    rows.sort(key=lambda r: (key not in r[1], sign * r[1].get(key, 0.0)))
    lines = [f"{len(runs)} runs, sorted by {key} ({'lower' if sign == 1 else 'higher'} first):",
             "  ".join(["run".ljust(4)] + [c[:14].rjust(14) for c in columns] + ["overrides"])]
    for path, metrics, extra in rows:
        cells = [format_number(metrics.get(c)).rjust(14) for c in columns]
        lines.append("  ".join([path.parent.parent.name.ljust(4)] + cells + [extra]))
    print("\n".join(lines))
    return {"runs": [{"checkpoint": str(p), "metrics": m} for p, m, _ in rows], "sort_by": key}
