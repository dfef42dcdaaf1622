"""The training loop: k discriminator steps, then one generator step; every N steps scalars, sample
pictures and checkpoints. It takes built objects and plain numbers, never a config."""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from gan_cli import checkpoint, visuals
from gan_cli.diagnose.detectors import Finding
from gan_cli.diagnose.live import Watch
from gan_cli.distributed import World
from gan_cli.errors import UserError, first_line
from gan_cli.latent import Latents
from gan_cli.losses import GANLoss
from gan_cli.meter import Meter
from gan_cli.steps import discriminator_step, generator_step

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Schedule:
    steps: int  # generator updates in all
    batch_size: int
    d_steps: int = 1  # discriminator updates per generator update (k in Goodfellow et al. 2014)
    d_warmup: int = 0  # discriminator updates before the first generator update
    log_every: int = 50
    sample_every: int = 500
    checkpoint_every: int = 1000
    eval_every: int = 0  # steps between evaluations of G by the distribution metrics; 0 is off
    precision: torch.dtype | None = None  # autocast dtype of the forward passes (bfloat16); None: fp32
    max_minutes: float | None = None  # wall-clock budget; the run stops cleanly when it is spent


class Diverged(UserError):
    """A loss became NaN or infinite; the run stopped and kept its last good checkpoint."""


def load_optimizer(opt: torch.optim.Optimizer, saved: dict[str, Any], path: str | Path, name: str) -> None:
    """A resumed optimizer: its state (Adam's moments, step counts) from the checkpoint, its hyperparameters
    (lr, betas, momentum, ...) from this run's config. torch's load_state_dict would restore the saved
    hyperparameters too, so `resume=... optimizer.g.lr=1e-4` would go on at the old rate."""
    configured = [{k: v for k, v in group.items() if k != "params"} for group in opt.param_groups]
    try:
        opt.load_state_dict(saved)
    except (ValueError, KeyError, RuntimeError) as e:
        raise UserError(f"resume={path}: {name} does not match the checkpoint's ({first_line(e)}); "
                        f"a resumed run keeps its optimizer") from None
    for group, hyper in zip(opt.param_groups, configured):
        changed = {k: (group.get(k), v) for k, v in hyper.items() if group.get(k) != v}
        for key, (old, new) in changed.items():
            log.info("resume: %s.%s %s -> %s", name, key, old, new)
        group.update(hyper)


class Trainer:
    def __init__(self, G: nn.Module, D: nn.Module, loss: GANLoss, opt_g: torch.optim.Optimizer,
                 opt_d: torch.optim.Optimizer, data, schedule: Schedule, run_dir: Path,
                 device: torch.device, seed: int, fixed: Latents, config: dict[str, Any],
                 choices: dict[str, str] | None = None, ema_decay: float = 0.0, watch: Watch | None = None,
                 evaluator: Callable[[nn.Module], dict[str, float]] | None = None, best_metric: str | None = None,
                 lower_is_better: bool = True, world: World = World(), hparams: dict[str, Any] | None = None):
        self.G, self.D, self.loss, self.opt_g, self.opt_d = G, D, loss, opt_g, opt_d
        self.data, self.schedule, self.device, self.seed = data, schedule, device, seed
        self.run_dir = run_dir
        self.config = config  # resolved, plain: goes into every checkpoint
        self.choices = choices or {}  # which option of each config group built it (model: dcgan, ...)
        self.fixed = fixed.to(device)  # the noise (and labels) behind every sample picture
        self.z_dim = fixed.z.shape[1]
        self.num_classes = getattr(G, "num_classes", None)  # set for conditional generators
        self.z_gen = torch.Generator(device).manual_seed(seed + 1)  # a stream apart from the fixed noise
        self.ema = (AveragedModel(G, multi_avg_fn=get_ema_multi_avg_fn(ema_decay), use_buffers=True)
                    if ema_decay > 0 else None)
        self.step = 0
        self.data_position = 0  # real batches consumed; with the seed it fixes where the data stream is
        self.last_checkpoint: Path | None = None
        self.last_checkpoint_step: int | None = None
        self._bad_steps = torch.zeros((), dtype=torch.int64, device=device)
        self._io_seconds = 0.0
        self.watch = watch  # gan diagnose's detectors, run on what the loop logs
        self.stopped: Finding | None = None  # the finding that stopped the run (train.stop_on)
        self.evaluator, self.best_metric, self.lower_is_better = evaluator, best_metric, lower_is_better
        self.best: tuple[float, int] | None = None  # (value of best_metric, step) of checkpoints/best.pt
        self.world = world  # under torchrun: this process's rank; rank 0 alone writes
        self.hparams = hparams  # what distinguishes this run in a sweep, for TensorBoard's HParams tab
        self.writer = None
        self._real: Tensor | None = None  # see _real_reference

    # -- state ---------------------------------------------------------------------------------------

    @property
    def sampler(self) -> nn.Module:
        """The generator used for pictures and `gan sample`: its EMA when that is on."""
        return self.ema.module if self.ema is not None else self.G

    def state_dict(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "choices": self.choices,
            "step": self.step,
            "data_position": self.data_position,
            "models": {"G": self.G.state_dict(), "D": self.D.state_dict()},
            "ema": None if self.ema is None else self.ema.state_dict(),  # module.* weights + n_averaged
            "optimizers": {"G": self.opt_g.state_dict(), "D": self.opt_d.state_dict()},
            "rng": {"torch": torch.get_rng_state(), "z": self.z_gen.get_state(),
                    "cuda": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else None},
            "fixed": {"z": self.fixed.z.cpu(), "y": None if self.fixed.y is None else self.fixed.y.cpu(),
                      "nrow": self.fixed.nrow},
            "data": {"shape": list(self.data.shape), "scale": self.data.scale, "num_classes": self.num_classes},
            "world_size": self.world.size,  # data_position counts global batches of world_size x batch_size
        }

    def load_state_dict(self, state: dict[str, Any], path: str | Path) -> None:
        checkpoint.load_weights(self.G, state["models"]["G"], path, "generator")
        checkpoint.load_weights(self.D, state["models"]["D"], path, "discriminator")
        if self.ema is not None and state.get("ema") is not None:
            checkpoint.load_weights(self.ema, state["ema"], path, "generator")
        for name, opt in (("g", self.opt_g), ("d", self.opt_d)):
            load_optimizer(opt, state["optimizers"][name.upper()], path, f"optimizer.{name}")
        self.step, self.data_position = state["step"], state["data_position"]
        torch.set_rng_state(state["rng"]["torch"])
        self.z_gen.set_state(state["rng"]["z"])
        if self.device.type == "cuda" and state["rng"]["cuda"] is not None:
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        self.fixed = Latents(**state["fixed"]).to(self.device)
        self.last_checkpoint = Path(path)  # the last good one, until this run writes its own
        self.last_checkpoint_step = self.step

    # -- the loop ------------------------------------------------------------------------------------

    def fit(self) -> dict[str, float]:
        from torch.utils.tensorboard import SummaryWriter
        from tqdm import tqdm
        from tqdm.contrib.logging import logging_redirect_tqdm

        s = self.schedule
        if self.world.main:
            self.writer = SummaryWriter(log_dir=str(self.run_dir), flush_secs=30)
            self._metrics_file = (self.run_dir / "metrics.jsonl").open("a")
        if self.step == 0 and self.world.main:
            real = self.data.first(len(self.fixed.z))
            image = visuals.scatter(None, real, self.data.scale) if real.ndim == 2 else visuals.image_grid(real)
            self._write_picture("samples/real", image, self.run_dir / "samples" / "real.png")
        # every rank draws the same global batch and keeps its slice (gan_cli/distributed.py)
        batches = self.data.batches(s.batch_size * self.world.size, self.device, self.seed, start=self.data_position)
        meter = Meter()
        deadline = time.monotonic() + 60 * s.max_minutes if s.max_minutes else math.inf
        last = {}
        tick, tick_step = time.monotonic(), self.step
        if self.step == 0 and self.data_position < s.d_warmup:
            log.info("warming D up for %d updates before G's first", s.d_warmup - self.data_position)
            while self.data_position < s.d_warmup:
                self._d_update(batches, meter)
        try:
            # disable=None: a bar on a terminal, none in pipes and log files
            with logging_redirect_tqdm(), tqdm(total=s.steps, initial=self.step, unit="step",
                                               disable=None if self.world.main else True,
                                               dynamic_ncols=True, mininterval=1.0) as bar:
                while self.step < s.steps:
                    self._train_step(batches, meter)
                    bar.update(1)
                    at = lambda every: every > 0 and self.step % every == 0  # noqa: E731
                    out_of_time = self._together(time.monotonic() > deadline, at(s.log_every or 50))
                    done = self.step >= s.steps or out_of_time
                    if at(s.log_every) or done:
                        now = time.monotonic()
                        last = self._log(meter, (self.step - tick_step) * s.batch_size / max(
                            now - tick - self._io_seconds, 1e-9))
                        tick, tick_step, self._io_seconds = now, self.step, 0.0
                        bar.set_postfix({k: f"{last[k]:.3g}" for k in ("loss/d", "loss/g", "d/real", "d/fake")})
                    if at(s.sample_every) and not done:
                        self._timed(self._sample)
                    if at(s.eval_every) and not done and self.best_metric is not None:
                        self._timed(self._evaluate)
                    if at(s.checkpoint_every) and not done:
                        self._timed(self._checkpoint, periodic=True)
                    if self._together(self.stopped is not None, at(s.log_every) or at(s.sample_every)):
                        break
                    if out_of_time:
                        log.info("train.max_minutes=%s reached at step %d: stopping", s.max_minutes, self.step)
                        break
            self._sample()
            if self.best_metric is not None:
                self._evaluate()
            self._checkpoint(periodic=False)
            if self.world.main and self.hparams:
                self._record_hparams(last)
        except KeyboardInterrupt as interruption:  # Ctrl-C, or SIGTERM (cli.Terminated): keep the work done so far
            if self.world.main:
                self._checkpoint(periodic=False)
            log.info("interrupted at step %d: checkpoint %s", self.step, self.last_checkpoint)
            interruption.step, interruption.checkpoint = self.step, self.last_checkpoint  # for cli's one line
            raise
        except (Diverged, checkpoint.WriteError):
            raise  # the last good checkpoint stays the last one; writing again would fail or keep NaN weights
        except Exception:
            # anything else (a data loader's fault, a bug) ends the run, but not its work: a final
            # checkpoint of the weights, when they are still finite
            if self.world.main and self.step > 0 and self.last_checkpoint_step != self.step:
                try:
                    self._checkpoint(periodic=False)
                    log.error("training failed at step %d; checkpoint %s kept", self.step, self.last_checkpoint)
                except (Diverged, UserError):
                    pass
            raise
        finally:
            if self.world.main:
                self.writer.close()
                self._metrics_file.close()
        return last

    def _together(self, flag: bool, now: bool) -> bool:
        """A decision to leave the loop. Under torchrun every rank must leave at the same step, or the
        others would wait forever in the next collective: the ranks decide together, and only at steps
        where `now` holds (log and sample steps), so that other steps cost no communication."""
        if self.world.size == 1:
            return flag
        return now and bool(self.world.sum(torch.tensor(int(flag), device=self.device)) > 0)

    def _d_update(self, batches, meter: Meter) -> Tensor:
        real, labels = next(batches)
        real, labels = self.world.shard(real), self.world.shard(labels)
        self.data_position += 1
        # a conditional D sees the fakes under the real batch's labels: the data's class balance
        y = labels if self.num_classes else None
        loss_d, stats = discriminator_step(self.G, self.D, self.loss, self.opt_d, real, self._z(len(real)), y,
                                           sync=self.world.average_gradients, precision=self.schedule.precision)
        meter.add({"loss/d": loss_d, **stats})
        return loss_d

    def _train_step(self, batches, meter: Meter) -> None:
        for _ in range(self.schedule.d_steps):
            loss_d = self._d_update(batches, meter)
        n = self.schedule.batch_size
        loss_g, stats = generator_step(self.G, self.D, self.loss, self.opt_g, self._z(n), self._labels(n),
                                       sync=self.world.average_gradients, precision=self.schedule.precision)
        meter.add({"loss/g": loss_g, **stats})
        # counted on the device: no host sync per step; read with the other statistics
        self._bad_steps += (~(torch.isfinite(loss_d) & torch.isfinite(loss_g))).long()
        if self.ema is not None:
            self.ema.update_parameters(self.G)
        self.step += 1

    def _z(self, n: int) -> Tensor:
        """This rank's n rows of a global draw: every rank draws the world's z and keeps its slice."""
        return self.world.shard(torch.randn(n * self.world.size, self.z_dim, device=self.device, generator=self.z_gen))

    def _labels(self, n: int) -> Tensor | None:
        """Uniform class labels for the generator's update; None for an unconditional model."""
        if not self.num_classes:
            return None
        return self.world.shard(torch.randint(self.num_classes, (n * self.world.size,), device=self.device,
                                              generator=self.z_gen))

    # -- what the loop writes ------------------------------------------------------------------------

    def _check_finite(self) -> None:
        bad = int(self.world.sum(self._bad_steps))  # a NaN on any rank stops every rank
        if bad:
            first = self.step - bad + 1
            if self.last_checkpoint:
                advice = (f"the last good checkpoint is {self.last_checkpoint}; go on from it at a lower rate: "
                          f"gan train resume={self.last_checkpoint} optimizer.d.lr=... optimizer.g.lr=...")
            else:
                advice = "no checkpoint was written before it (try a lower optimizer.d.lr / optimizer.g.lr)"
            raise Diverged(f"a loss became NaN or infinite at step {first}; training stopped and {advice}")

    def _log(self, meter: Meter, img_per_s: float) -> dict[str, float]:
        values = meter.read(self.world.mean)
        self._check_finite()
        values["perf/img_per_s"] = img_per_s * self.world.size
        if self.world.main:
            for name, value in values.items():
                self.writer.add_scalar(name, value, self.step)
            self._metrics_file.write(json.dumps({"step": self.step, **values}) + "\n")
            self._metrics_file.flush()
        if self.watch is not None:
            self._report(self.watch.scalars(self.step, values))
        return values

    def _sample(self) -> None:
        self._check_finite()
        G = self.sampler
        was_training = G.training
        G.eval()
        with torch.no_grad():
            fake = G(self.fixed.z, self.fixed.y)
        G.train(was_training)
        if self.world.main:
            image = visuals.picture(fake, self._real_reference(fake) if fake.ndim == 2 else None, self.data.scale,
                                    nrow=self.fixed.nrow)
            path = self._write_picture("samples/fake", image, self.run_dir / "samples" / f"step_{self.step:07d}.png")
            log.info("step %d: samples in %s", self.step, path)
        if self.watch is not None:
            self._report(self.watch.samples(self.step, fake, self._real_reference(fake)[:len(fake)]))

    def _real_reference(self, fake: Tensor) -> Tensor:
        """The real samples pictures and the diversity probe compare against: read once, then reused
        (a folder data set would otherwise be read from disk at every picture)."""
        if self._real is None:
            self._real = self.data.first(2048 if fake.ndim == 2 else len(fake))  # 2-D: a scatter's worth
        return self._real

    def _report(self, findings: list[Finding]) -> None:
        """A failure the watch sees for the first time: a warning, TensorBoard text, and a stop if asked."""
        for f in findings:
            cures = "  |  ".join(f"gan train {c}" for c in f.cures)
            log.warning("step %d: %s since step %d: %s%s", self.step, f.kind.replace("_", " "), f.start, f.summary,
                        f"; try: {cures}" if cures else "")
            if self.writer is not None:
                self.writer.add_text(f"diagnose/{f.kind}", f"since step {f.start}: {f.summary}\n\ntry: `{cures}`",
                                     self.step)
            if self.stopped is None and self.watch.stops(f):
                self.stopped = f
                log.warning("train.stop_on has %s: stopping at step %d", f.kind, self.step)

    def _evaluate(self) -> None:
        """The distribution metrics of G (its EMA when kept) now; checkpoints/best.pt when the chosen one improves."""
        self._check_finite()  # on every rank: a collective under torchrun
        if self.evaluator is None:  # ranks other than 0: rank 0 evaluates for the world
            return
        values = self.evaluator(self.sampler)
        for name, value in values.items():
            self.writer.add_scalar(f"metrics/{name}", value, self.step)
        with (self.run_dir / "evals.jsonl").open("a") as f:
            f.write(json.dumps({"step": self.step, **values}) + "\n")
        value = values[self.best_metric]
        better = self.best is None or (value < self.best[0] if self.lower_is_better else value > self.best[0])
        log.info("step %d: %s%s", self.step, ", ".join(f"{k} {v:.4g}" for k, v in values.items() if not k.endswith("_std")),
                 f"; best {self.best_metric} so far: checkpoints/best.pt" if better else "")
        if better:
            self.best = (value, self.step)
            checkpoint.save(self.run_dir / "checkpoints" / "best.pt", self.state_dict())

    def _record_hparams(self, last: dict[str, float]) -> None:
        metrics = {f"final/{k}": v for k, v in last.items() if k in ("loss/d", "loss/g", "acc/real", "acc/fake")}
        if self.best is not None:
            metrics[f"best/{self.best_metric}"] = self.best[0]
        # run_name=".": into this run's own event file, not a subdirectory per call
        self.writer.add_hparams(self.hparams, metrics, run_name=".")

    def _write_picture(self, tag: str, image: Tensor, path: Path) -> Path:
        self.writer.add_image(tag, image, self.step)
        return visuals.save_png(image, path)

    def _checkpoint(self, periodic: bool) -> None:
        self._check_finite()
        if not self.world.main:
            return
        directory = self.run_dir / "checkpoints"
        last = directory / "last.pt"
        if periodic:  # serialise once; last.pt is a copy of the step's file
            kept = directory / f"step_{self.step:07d}.pt"
            checkpoint.save(kept, self.state_dict())
            checkpoint.copy(kept, last)
        else:
            checkpoint.save(last, self.state_dict())
        self.last_checkpoint, self.last_checkpoint_step = last, self.step

    def _timed(self, fn, *args, **kwargs) -> None:
        """Run sampling or checkpointing outside the throughput measurement."""
        t = time.monotonic()
        fn(*args, **kwargs)
        self._io_seconds += time.monotonic() - t
