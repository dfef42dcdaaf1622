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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from omegaconf import DictConfig, OmegaConf

from gan_cli import build, checkpoint, files, limits, modality
from gan_cli.commands import (Column, check_seed, format_number, run_overrides, runs_table, sorted_by, sorted_runs,
                              typed)
from gan_cli.errors import UserError
from gan_cli.latent import require_style
from gan_cli.metrics.evaluator import Settings, lower_is_better, select

log = logging.getLogger(__name__)

# Feature sizes per sample, for the memory estimate: Inception's pool features and logits (the largest
# space; its metrics may run whenever the data are images), the 2-D points' own coordinates.
INCEPTION_FLOATS = 2048 + 1008
POINT_FLOATS = 2
# distances._kth_neighbour and _balls hold a chunk of 2048 rows against every sample: distances (float32),
# the kth-value search's copy, and a bool mask
NEIGHBOUR_BYTES = 2048 * (4 + 4 + 1)
NEIGHBOUR_METRICS = ("precision_", "recall_", "density_", "coverage_")


@dataclass
class EvalKeys:
    """The types of conf/eval.yaml's keys (metrics: auto or names, checked against the data's own)."""

    checkpoint: Optional[str]
    metrics: Any
    n: int
    seed: int
    ema: bool
    device: str
    batch_size: int
    inception_weights: Optional[str]
    cache_dir: Optional[str]
    k: int
    k_density: int
    kid_subsets: int
    kid_subset_size: int
    confident: float
    min_share: float
    sort_by: Optional[str]
    truncation: float = 1.0


def validate(cfg: DictConfig) -> DictConfig:
    """The config typed and in range, or one line naming the first key that is not."""
    cfg = typed(cfg, EvalKeys)
    if cfg.checkpoint is None:
        raise UserError("checkpoint= is required: a checkpoint, a run directory or a sweep's directory, "
                        "e.g. gan eval checkpoint=outputs/train/<date>/<time>/checkpoints/last.pt")
    for key in ("n", "batch_size", "k", "k_density", "kid_subsets", "kid_subset_size"):
        if cfg[key] <= 0:
            raise UserError(f"{key}={cfg[key]} must be positive")
    check_seed(cfg.seed)
    if not 0 < cfg.confident <= 1:
        raise UserError(f"confident={cfg.confident} must be a probability in (0, 1]")
    if not 0 <= cfg.min_share <= 1:
        raise UserError(f"min_share={cfg.min_share} must be a share in [0, 1]")
    if not 0 <= cfg.truncation <= 1:
        raise UserError(f"truncation={cfg.truncation} is psi of the truncation trick: a number in [0, 1] (1 is off)")
    return cfg


def run(cfg: DictConfig, run_dir: Path) -> dict:
    cfg = validate(cfg)
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
                    min_share=cfg.min_share, truncation=cfg.truncation)


def evaluate(cfg: DictConfig, path: Path) -> dict:
    start = time.monotonic()
    record = path.parent / "metrics.json"
    _read_record(record)  # a metrics.json of the user's own is refused now, not after the measuring
    saved = checkpoint.Saved.load(path, trust=cfg.trust)
    from gan_cli.commands import edit

    if edit.takes_edits(saved):  # AttGAN edits given digits; its measures are the edits' (bench/attgan_edits.py)
        raise UserError(f"{path} is an attribute editor (algorithm=attgan), which makes no samples from noise to "
                        f"measure; measure its edits with python bench/attgan_edits.py --checkpoint {path}")
    check_memory(cfg, saved.shape, saved.config.get("model", {}).get("z_dim", 0))
    config = OmegaConf.create(saved.config)
    data = build.data(config)
    if saved.translates:
        return _record(record, path, saved, translation(cfg, config, saved, data), start)
    if saved.shape != tuple(data.shape):
        raise UserError(f"{path} makes samples of shape {saved.shape}, but its data ({data.name}) "
                        f"loads as {tuple(data.shape)}: they cannot be compared; was data.resolution changed?")
    dev = build.device(cfg.device)
    G = saved.generator(dev, ema=cfg.ema)
    if cfg.truncation != 1:
        require_style(G, f"truncation={cfg.truncation:g}", "truncate")
    evaluator, notes = build.evaluator(config, data, cfg.metrics, settings(cfg), dev, cfg.inception_weights,
                                       cfg.cache_dir)
    reference_n = min(cfg.n, len(data))  # what features.reference draws: the real side is capped by the data
    if reference_n < cfg.n:
        notes.append(f"the training split holds {len(data)} samples, fewer than n={cfg.n}: the reference uses all "
                     f"{len(data)}, the generated side {cfg.n}")
    results = evaluator(G)
    about = {name: {"test_accuracy": ext.net.test_accuracy} for name, (ext, _) in evaluator.spaces.items()
             if hasattr(getattr(ext, "net", None), "test_accuracy")}
    report = {"n": cfg.n, "reference_n": reference_n, "seed": cfg.seed, "data": data.name, "metrics": results,
              "features": about, "notes": notes}
    if cfg.truncation != 1:  # kept apart from the untruncated measures of the same checkpoint
        report["truncation"] = cfg.truncation
    return _record(record, path, saved, report, start)


def _record(record: Path, path: Path, saved: checkpoint.Saved, report: dict, start: float) -> dict:
    report = {"checkpoint": str(path), "step": saved.step, **report, "seconds": round(time.monotonic() - start, 1)}
    psi = report.get("truncation")
    _write(record, path.name if psi is None else f"{path.name}@truncation={psi:g}", report)
    return report


def translation(cfg: DictConfig, config: DictConfig, saved: checkpoint.Saved, data) -> dict:
    """A translation model's measures on the test split of its data (gan_cli/metrics/translation.py)."""
    from gan_cli.commands.translate import translator_names

    dev = build.device(cfg.device)
    evaluator = build.translation_evaluator(config, data, settings(cfg), dev)
    wanted = select(cfg.metrics, {m: "translation" for m in evaluator.names}, None)
    generators = {d: saved.generator(dev, ema=cfg.ema, name=net) for d, net in translator_names(saved).items()}
    results = {k: v for k, v in evaluator(generators).items() if k in wanted}
    test = evaluator.test
    # each direction translates the first n test images of its source side, all of them when fewer
    held = {side: len(getattr(test, f"domain_{side.lower()}")) for side in ("A", "B")}
    used = {side: min(cfg.n, count) for side, count in held.items()}
    notes = []
    if test.paired and used["A"] < cfg.n:
        notes.append(f"the test split holds {held['A']} pairs, fewer than n={cfg.n}: all of them are used")
    elif not test.paired and min(used.values()) < cfg.n:
        notes.append(f"the test split holds {held['A']} A and {held['B']} B images: {used['A']} are translated A to "
                     f"B and {used['B']} B to A, and each direction's FD is against the {used['B']} and {used['A']} "
                     f"of its target side")
    about = {f.name: {"test_accuracy": f.net.test_accuracy} for f in evaluator.features.values() if f is not None}
    return {"n": used["A"], "reference_n": used["B"] if not test.paired else used["A"], "seed": cfg.seed,
            "data": data.name, "against": "test split", "metrics": results, "features": about, "notes": notes}


def check_memory(cfg: DictConfig, shape: tuple[int, ...], z_dim: Any) -> None:
    """Refuse an n whose samples, features and distance matrices cannot fit, before the data is loaded.
    Per sample: the generated one and its z, the real one drawn for the reference (at most n), the
    features of both in the largest space that may run, and the neighbour metrics' rows of distances;
    and KID's three m x m kernel matrices (float64), m = min(kid_subset_size, n)."""
    pixels = math.prod(shape)
    z = z_dim if isinstance(z_dim, int) and not isinstance(z_dim, bool) else 0
    images = modality.of(shape).images
    floats = 2 * pixels + z + 2 * (INCEPTION_FLOATS if images else POINT_FLOATS)
    asked = cfg.metrics if isinstance(cfg.metrics, str) else ",".join(map(str, cfg.metrics))
    neighbours = asked == "auto" or any(name in asked for name in NEIGHBOUR_METRICS)
    kid = asked == "auto" or "kid" in asked
    m = min(cfg.kid_subset_size, cfg.n)
    per_sample = cfg.n * (limits.FLOAT * floats + (NEIGHBOUR_BYTES if neighbours else 0))
    kernels = 3 * 8 * m * m if kid else 0
    what = (f"n={cfg.n} samples of {'x'.join(map(str, shape))}" if images
            else f"n={cfg.n} samples (2-D points)")
    if kernels > per_sample:
        what, fix = f"{what} with kid_subset_size={cfg.kid_subset_size} need", "lower kid_subset_size (1000 is usual)"
    else:
        what, fix = f"{what} (generated and real, their features and distances) need", "lower n (10000 is usual)"
    limits.check_memory(per_sample + kernels, what, fix)


def _read_record(path: Path) -> dict:
    """metrics.json's entries ({} when there is none yet). A file that is not gan eval's record (not
    JSON, or not one report per checkpoint) is the user's: refused, never rewritten. gan eval writes
    it atomically, so a half-written one is never its own."""
    if not path.exists():
        return {}
    try:
        kept = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        kept = None
    if not isinstance(kept, dict) or not all(isinstance(v, dict) and "metrics" in v for v in kept.values()):
        raise UserError(f"{path} exists and is not gan eval's record (one report per checkpoint, as JSON), so it "
                        f"is not written over: move it or rename it, then run gan eval again")
    return kept


def _write(path: Path, name: str, report: dict) -> None:
    """metrics.json beside the checkpoints: one entry per checkpoint file, written atomically."""
    kept = _read_record(path)
    kept[name] = report
    files.write_text(path, json.dumps(kept, indent=2) + "\n")


def format_table(report: dict) -> str:
    lines = [f"{report['checkpoint']} (step {report['step']}), {report['n']} samples against {report['data']}'s "
             f"{report.get('against', 'training split')}, {report['seconds']} s"
             + (f", truncation psi {report['truncation']:g}" if "truncation" in report else "")]
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
    lower_first = key is None or lower_is_better(key)
    rows = sorted_runs(rows, lambda r: r[1].get(key), lower_first)
    print(runs_table(sorted_by(key, lower_first),
                     [Column("run", 4), *[Column(c, 14, ">", cut=14) for c in columns], Column("overrides")],
                     [[path.parent.parent.name, *[metrics.get(c) for c in columns], extra]
                      for path, metrics, extra in rows]))
    return {"runs": [{"checkpoint": str(p), "metrics": m} for p, m, _ in rows], "sort_by": key}
