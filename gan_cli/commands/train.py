"""`gan train`: compose model, loss, data and optimizer, train, and leave pictures, TensorBoard events
and checkpoints in the run directory."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from gan_cli import build, checkpoint, compiling, distributed, files, limits
from gan_cli.commands import hydra_context
from gan_cli.diagnose.live import Watch
from gan_cli.distributed import World
from gan_cli.errors import UserError, first_line
from gan_cli.latent import seeded_latents
from gan_cli.loop import FitResult, Run, Schedule, fit
from gan_cli.metrics.evaluator import Settings, lower_is_better
from gan_cli.data.batch import input_shape_of

log = logging.getLogger(__name__)

GROUPS = ("algorithm", "model", "loss", "data", "optimizer")
SCATTER_POINTS = 1024  # a scatter plot of 2-D data needs more points than an image grid has tiles


def run(cfg: DictConfig, run_dir: Path) -> dict[str, float] | float:
    choices, overrides = hydra_context()
    state = None
    check_run_dir(run_dir, cfg.resume)
    if cfg.resume:
        state = checkpoint.load(cfg.resume, trust=cfg.trust)
        cfg = resumed_config(state, cfg.resume, overrides)
        choices = state.get("choices", choices)
    cfg.train = validate(cfg)  # typed, with the defaults of keys newer than the run being resumed
    world, dev = distributed.join(cfg.device, build.device)
    try:
        return _train(cfg, run_dir, state, choices, overrides, world, dev)
    finally:
        distributed.leave()


def _train(cfg: DictConfig, run_dir: Path, state: dict | None, choices: dict, overrides: list[str], world: World,
           dev: torch.device) -> dict[str, float] | float:
    if not world.main:
        logging.getLogger("gan_cli").setLevel(logging.WARNING)  # rank 0 speaks for the world
    torch.manual_seed(cfg.seed)  # the same initial weights on every rank
    parts = build.parts(cfg, dev)
    if world.size > 1:
        torch.manual_seed(cfg.seed + world.rank)  # dropout and the like differ per rank, as per sample
        if dev.type == "cuda":  # batch statistics over the world's batch; SyncBatchNorm is CUDA-only
            parts.models = {name: nn.SyncBatchNorm.convert_sync_batchnorm(m) for name, m in parts.models.items()}
        log.info("data parallel: %d processes, batch %d each (%d in all)", world.size, cfg.train.batch_size,
                 world.size * cfg.train.batch_size)

    steps = total_steps(cfg.train, len(parts.data))
    if state is not None and steps <= state["step"]:
        raise UserError(f"resume: the checkpoint is at step {state['step']} and train.steps={steps} asks for no more; "
                        f"give train.steps above {state['step']} to train further")
    if world.main:
        for partial in files.partial_files(run_dir / "checkpoints"):
            partial.unlink()  # a checkpoint write cut short by a killed run: never a readable checkpoint
            log.info("removed %s, left by a run that was killed while writing it", partial)
    n_fixed = cfg.train.num_samples if parts.data.modality.images else max(cfg.train.num_samples, SCATTER_POINTS)
    # the fixed noise, its samples and their picture are held at every sample step
    z_dim = getattr(parts.G, "z_dim", 0)  # a translation's G takes images, not z
    limits.check_memory(n_fixed * (z_dim + 3 * math.prod(parts.data.shape)) * limits.FLOAT,
                        f"train.num_samples={n_fixed} samples of {parts.data.modality.describe(parts.data.shape)} "
                        f"need", "lower train.num_samples (tiles of each sample grid)", " for the sample grids")
    algorithm = build.algorithm(cfg, parts)
    if cfg.train.compile:
        compiling.compile_networks(algorithm, dev)
    fixed = seeded_latents(n_fixed, z_dim, cfg.seed, algorithm.num_classes)
    dtype = build.precision(cfg.train.precision, dev)
    if cfg.train.precision == "auto":
        log.info("train.precision=auto: %s on %s", "bf16 (native on this device)" if dtype else
                 "fp32 (this device has no native bf16)", dev)
    run = Run(algorithm, parts.data, Schedule(steps, cfg.train.batch_size, dtype),
              run_dir, dev, cfg.seed, fixed, OmegaConf.to_container(cfg, resolve=True), choices, world)
    callbacks = build.callbacks(cfg, detectors=watch(cfg), hparams=hparams(choices, overrides),
                                **evaluation(cfg, parts.data, dev, world))
    if state is not None:
        run.load_state_dict(state, cfg.resume)
        log.info("resumed %s at step %d", cfg.resume, run.step)
        before = state.get("world_size", 1)
        if before != world.size:
            log.info("the run had %d processes and now has %d: the global batch is %d instead of %d, and the "
                     "data order goes on from batch %d of the new size", before, world.size,
                     world.size * cfg.train.batch_size, before * cfg.train.batch_size, run.data_position)
    params = {name: sum(p.numel() for p in m.parameters()) / 1e6 for name, m in algorithm.models.items()}
    log.info("run directory: %s", run_dir)
    log.info("%s: %s parameters, %d samples, %d steps of batch %d on %s", parts.data.name,
             " and ".join(f"{name} {n:.2f}M" for name, n in params.items()), len(parts.data), steps,
             cfg.train.batch_size, dev)
    result = fit(run, callbacks)
    last = result.last
    shown = [f"{k} {last[k]:.3f}" for k in ("loss/d", "loss/g") if k in last]  # pix2pix's L1 ablation trains no D
    log.info("done at step %d: %s%.0f img/s", result.step, "".join(f"{s}, " for s in shown),
             last.get("perf/img_per_s", math.nan))
    if result.stopped_by is not None:
        log.warning("stopped early by train.stop_on: %s since step %d", result.stopped_by.kind,
                    result.stopped_by.start)
    log.info("samples: %s", run_dir / "samples")
    log.info("checkpoint: %s", result.checkpoint)
    log.info("curves: tensorboard --logdir %s", run_dir)
    if world.main:
        record(run_dir, result, overrides)
    if result.best is not None:  # what a sweeper (Optuna) optimises: the best value the run reached
        log.info("best %s: %.4g at step %d (checkpoints/best.pt)", *result.best)
        return result.best[1]
    return last


def check_run_dir(run_dir: Path, resume: str | None) -> None:
    """A new run never writes over another run's checkpoints; resuming a run into its own directory does
    (hydra.run.dir=<run> resume=<run>/checkpoints/last.pt, as a requeued SLURM job would)."""
    kept = run_dir / "checkpoints"
    if not any(kept.glob("*.pt")):
        return
    if resume and Path(resume).expanduser().resolve().parent == kept.resolve():
        return
    raise UserError(f"hydra.run.dir={run_dir} already holds a run's checkpoints; continue that run with "
                    f"resume={kept / 'last.pt'}, or choose a new directory")


def watch(cfg: DictConfig) -> Watch | None:
    """gan diagnose's detectors over the run as it logs, with the thresholds of conf/thresholds/."""
    if not cfg.train.watch or "thresholds" not in cfg:  # runs from before the watch resume without it
        return None
    return Watch(OmegaConf.to_container(cfg.thresholds, resolve=True), OmegaConf.to_container(cfg, resolve=True),
                 cfg.train.stop_on)


def hparams(choices: dict[str, str], overrides: list[str]) -> dict[str, Any]:
    """The config group choices and the command line's key=value overrides, as TensorBoard hparams."""
    out: dict[str, Any] = {k: v for k, v in choices.items() if k in GROUPS}
    for override in overrides:
        key, _, value = override.partition("=")
        if key.startswith(("hydra", "+hydra")) or key in GROUPS:
            continue
        try:
            out[key.lstrip("+~")] = float(value)
        except ValueError:
            out[key.lstrip("+~")] = value
    return out


def record(run_dir: Path, result: FitResult, overrides: list[str]) -> None:
    """result.json: the run's overrides and where it ended, for sweep reports and other tools."""
    best = None if result.best is None else dict(zip(("metric", "value", "step"), result.best))
    out = {"overrides": overrides, "step": result.step, "final": result.last, "best": best,
           "stopped_by": None if result.stopped_by is None else result.stopped_by.kind}
    files.write_text(run_dir / "result.json", json.dumps(out, indent=2) + "\n")


def evaluation(cfg: DictConfig, data, dev: torch.device, world: World) -> dict[str, Any]:
    """gan eval's metrics every train.eval_every steps, and which of them keeps checkpoints/best.pt.
    Under torchrun rank 0 alone evaluates: the others get no evaluator (and train no classifier)."""
    if not cfg.train.eval_every:
        return {}
    if not world.main:
        return {"evaluator": None, "best_metric": cfg.train.eval_metric}
    settings = Settings(n=cfg.train.eval_n, seed=cfg.seed)
    if input_shape_of(data) is not None:  # a translation: measured on its test split
        translation = build.translation_evaluator(cfg, data, settings, dev)
        names, evaluator = translation.names, lambda algorithm: translation(algorithm.translators)
    else:
        measure, notes = build.evaluator(cfg, data, "auto", settings, dev)
        for note in notes:
            log.warning("%s", note)
        names, evaluator = [m for _, wanted in measure.spaces.values() for m in wanted], lambda algorithm: measure(algorithm.sampler)
    metric = names[0] if cfg.train.eval_metric == "auto" else cfg.train.eval_metric
    if metric not in names:
        raise UserError(f"train.eval_metric={metric} is not measured for this data; choose from {', '.join(names)}")
    return {"evaluator": evaluator, "best_metric": metric, "lower_is_better": lower_is_better(metric)}


def total_steps(train: DictConfig, n_samples: int) -> int:
    """train.epochs, when set, wins over train.steps: an epoch is one pass of D over the real data."""
    if train.epochs is None:
        return train.steps
    per_epoch = n_samples // train.batch_size
    return max(1, math.ceil(train.epochs * per_epoch / train.d_steps))


@dataclass
class TrainKeys:
    """The types of the train section; OmegaConf checks values against them (see conf/train.yaml).
    Keys added after the first release have defaults, so that older checkpoints still resume."""

    steps: int
    epochs: Optional[float]
    max_minutes: Optional[float]
    batch_size: int
    d_steps: int
    d_warmup: int
    ema: float
    log_every: int
    sample_every: int
    checkpoint_every: int
    num_samples: int
    channels_last: bool
    watch: bool = True
    stop_on: list[str] = field(default_factory=list)
    eval_every: int = 0
    eval_metric: str = "auto"
    eval_n: int = 2000
    precision: str = "fp32"
    compile: bool = False
    lr_decay_start: Optional[int] = None
    unrolled_steps: Optional[int] = None
    historical_averaging: float = 0.0
    instance_noise: float = 0.0


def validate(cfg: DictConfig) -> DictConfig:
    from omegaconf.errors import ValidationError

    try:
        t = OmegaConf.merge(OmegaConf.structured(TrainKeys), cfg.train)
        seed = int(cfg.seed)
    except ValidationError as e:
        raise UserError(f"train.{e.full_key}={e.value}: {first_line(e)}") from None
    except ValueError:
        raise UserError(f"seed={cfg.seed} must be an integer") from None
    if seed < 0:
        raise UserError(f"seed={seed} must be 0 or positive")
    z_dim = cfg.model.get("z_dim", 1)
    if isinstance(z_dim, bool) or not isinstance(z_dim, int):
        raise UserError(f"model.z_dim={z_dim} must be an integer (the latent dimension, e.g. 100)")
    positive = {"train.batch_size": t.batch_size, "train.d_steps": t.d_steps, "model.z_dim": z_dim,
                "train.num_samples": t.num_samples}
    positive["train.epochs" if t.epochs is not None else "train.steps"] = t.epochs if t.epochs is not None else t.steps
    if t.max_minutes is not None:
        positive["train.max_minutes"] = t.max_minutes
    for key, value in positive.items():
        if not value > 0:
            raise UserError(f"{key}={value} must be positive")
    if t.precision not in (*build.PRECISION, "auto"):
        raise UserError(f"train.precision={t.precision} is not one of {', '.join(build.PRECISION)} or auto")
    if t.eval_every and t.eval_n <= 1:
        raise UserError(f"train.eval_n={t.eval_n} must be at least 2 samples (10000 is gan eval's default)")
    for key in ("log_every", "sample_every", "checkpoint_every", "d_warmup", "eval_every"):
        if t[key] < 0:
            raise UserError(f"train.{key}={t[key]} must be 0 (off) or a positive number of steps")
    if t.lr_decay_start is not None and t.lr_decay_start < 0:
        # at or past train.steps is allowed: the first part of a run that a resume will lengthen
        raise UserError(f"train.lr_decay_start={t.lr_decay_start} must be a step, 0 or more, where the learning "
                        f"rates start to fall linearly to 0 at train.steps; null keeps them constant")
    if not 0 <= t.ema < 1:
        raise UserError(f"train.ema={t.ema} must be a decay in [0, 1) (0 turns the average off)")
    return t


def resumed_config(state: dict[str, Any], path: str, overrides: list[str]) -> DictConfig:
    """The run's own config, with this command line's plain key overrides on top (train.steps=..., say).
    Config group choices cannot change: a resumed run keeps its model, loss, data and optimizer."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import OverrideType

    cfg = OmegaConf.create(state["config"])
    _add_newer_groups(cfg)
    choices = state.get("choices", {})
    for override in OverridesParser.create().parse_overrides(overrides):
        key = override.key_or_group
        if key == "resume" or key.startswith("hydra"):
            continue
        value = override.value()
        if key.startswith("model."):
            before = OmegaConf.select(cfg, key, default=_MISSING)
            if before is _MISSING or value != before:
                raise UserError(f"resume: {key}={value} changes the architecture the checkpoint was trained with "
                                f"({key}={'absent' if before is _MISSING else before}); a resumed run keeps its "
                                f"model: drop the override, or start a new run")
            continue
        if key in GROUPS:
            if value != choices.get(key):
                raise UserError(f"resume: {key}={value} differs from the run's {key}={choices.get(key)}; "
                                f"a resumed run keeps its model, loss, data and optimizer")
            continue
        if override.type != OverrideType.ADD and OmegaConf.select(cfg, key, default=_MISSING) is _MISSING:
            raise UserError(f"resume: {key} is not in the config of {path}")
        OmegaConf.update(cfg, key, value, merge=True)
    cfg.resume = path
    return cfg


_MISSING = object()


def _add_newer_groups(cfg: DictConfig) -> None:
    """A checkpoint from before the algorithm and callbacks groups trained a GAN with the default
    callbacks: give its config those, so that it resumes as it ran."""
    missing = [g for g in ("algorithm", "callbacks") if g not in cfg]
    if not missing:
        return
    from hydra import compose

    defaults = compose("train")
    for group in missing:
        cfg[group] = OmegaConf.to_container(defaults[group], resolve=False)
