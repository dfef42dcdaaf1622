"""The training loop. Each step runs the algorithm's phases (gan_cli/algorithms/); everything around
the steps (logging, pictures, the live watch, evaluation, checkpoints, the time budget) is a callback
(gan_cli/callbacks/). `Run` is what they share: the step, the data stream, the noise stream, the
statistics, the run directory. It takes built objects and plain numbers, never a config."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from gan_cli import checkpoint, files
from gan_cli.algorithms.base import Algorithm
from gan_cli.data.batch import Batch, DataSource, input_shape_of
from gan_cli.distributed import World
from gan_cli.errors import UserError, first_line
from gan_cli.latent import Latents
from gan_cli.meter import Meter

if TYPE_CHECKING:
    from gan_cli.callbacks.base import Callback
    from gan_cli.diagnose.detectors import Finding

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Schedule:
    steps: int  # training steps in all (a step: every phase of the algorithm once)
    batch_size: int  # real samples per phase, per process
    precision: torch.dtype | None = None  # autocast dtype of the forward passes (bfloat16); None: fp32


class Diverged(UserError):
    """A loss became NaN or infinite; the run stopped and kept its last good checkpoint."""


@dataclass
class FitResult:
    """How a run ended: what callers read, instead of the loop's attributes."""

    step: int
    last: dict[str, float]  # the last logged statistics
    checkpoint: Path | None  # the last checkpoint written (or resumed from)
    best: tuple[str, float, int] | None  # (metric, value, step) of checkpoints/best.pt, when evaluated
    stopped_by: Finding | None  # the finding that stopped the run early (train.stop_on)


class Run:
    """The state of one training run, shared by the loop, the algorithm and the callbacks."""

    def __init__(self, algorithm: Algorithm, data: DataSource, schedule: Schedule, run_dir: Path,
                 device: torch.device, seed: int, fixed: Latents, config: dict[str, Any],
                 choices: dict[str, str] | None = None, world: World = World()):
        self.algorithm, self.data, self.schedule = algorithm, data, schedule
        self.run_dir, self.device, self.seed, self.world = run_dir, device, seed, world
        self.config = config  # resolved, plain: goes into every checkpoint
        self.choices = choices or {}  # which option of each config group built it (model: dcgan, ...)
        self.fixed = fixed.to(device)  # the noise (and labels) behind every sample picture
        self.z_gen = torch.Generator(device).manual_seed(seed + 1)  # a stream apart from the fixed noise
        self.step = 0
        self.data_position = 0  # global batches consumed; with the seed it fixes where the data stream is
        self.stats = Meter()  # the step statistics since the last log, on the device
        self.writer = None  # TensorBoard's SummaryWriter, on rank 0 while fit runs
        self.last_step = False  # this step ends the run (steps reached, budget spent): periodic work waits for the end
        self.leave = False  # a callback asks to leave the loop after this step
        self.stopped_by: Finding | None = None
        self.logged: dict[str, float] = {}  # the statistics of the last log interval
        self.pictured: tuple[Tensor, Tensor] | None = None  # the last picture's samples, and the real ones beside them
        self.best: tuple[str, float, int] | None = None
        self.last_checkpoint: Path | None = None
        self.last_checkpoint_step: int | None = None
        self.io_seconds = 0.0  # time the callbacks took since the last log, left out of the throughput
        self._bad_steps = torch.zeros((), dtype=torch.int64, device=device)
        self._batches = None

    # -- what phases draw -----------------------------------------------------------------------------

    def next_batch(self) -> Batch:
        """This process's slice of the next global batch: every rank draws the world's batch (same seed)
        and keeps rows [rank*B, (rank+1)*B)."""
        if self._batches is None:
            self._batches = self.data.batches(self.schedule.batch_size * self.world.size, self.device, self.seed,
                                              start=self.data_position)
        batch = next(self._batches)
        self.data_position += 1
        if self.world.size == 1:
            return batch
        n = len(batch) // self.world.size
        return batch.rows(self.world.rank * n, (self.world.rank + 1) * n)

    def z(self, n: int, z_dim: int) -> Tensor:
        """This rank's n rows of a global draw of N(0, I)."""
        return self.world.shard(torch.randn(n * self.world.size, z_dim, device=self.device, generator=self.z_gen))

    def labels(self, n: int, num_classes: int) -> Tensor:
        """This rank's n rows of a global draw of uniform class labels."""
        return self.world.shard(torch.randint(num_classes, (n * self.world.size,), device=self.device,
                                              generator=self.z_gen))

    # -- one step -------------------------------------------------------------------------------------

    def train_step(self) -> None:
        finite = []
        for phase in self.algorithm.phases:
            if self.step % phase.every:
                continue
            for _ in range(phase.repeat):
                stats = phase.run(self)
                self.stats.add(stats)
                finite += [torch.isfinite(v).all() for k, v in stats.items() if k.startswith("loss/")]
        if finite:  # counted on the device: no host sync per step; read with the other statistics
            self._bad_steps += (~torch.stack(finite).all()).long()
        self.algorithm.end_step(self)
        self.step += 1

    def at(self, every: int) -> bool:
        return every > 0 and self.step % every == 0

    def together(self, flag: bool, now: bool) -> bool:
        """A decision to leave the loop. Under torchrun every rank must leave at the same step, or the
        others would wait forever in the next collective: the ranks decide together, and only at steps
        where `now` holds (log and sample steps), so that other steps cost no communication."""
        if self.world.size == 1:
            return flag
        return now and bool(self.world.sum(torch.tensor(int(flag), device=self.device)) > 0)

    def check_finite(self) -> None:
        """Before anything is written: a NaN on any rank since the last check stops every rank."""
        bad = int(self.world.sum(self._bad_steps))
        if bad:
            first = self.step - bad + 1
            if self.last_checkpoint:
                advice = (f"the last good checkpoint is {self.last_checkpoint}; go on from it at a lower rate: "
                          f"gan train resume={self.last_checkpoint} optimizer.d.lr=... optimizer.g.lr=...")
            else:
                advice = "no checkpoint was written before it (try a lower optimizer.d.lr / optimizer.g.lr)"
            raise Diverged(f"a loss became NaN or infinite at step {first}; training stopped and {advice}")

    # -- checkpoints ----------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        a = self.algorithm
        return {
            "config": self.config,
            "choices": self.choices,
            "step": self.step,
            "data_position": self.data_position,
            "models": {name: m.state_dict() for name, m in a.models.items()},
            "ema": None if a.ema is None else a.ema.state_dict(),  # module.* weights + n_averaged
            "optimizers": {name: opt.state_dict() for name, opt in a.optimizers.items()},
            "algorithm": a.state_dict(),
            "rng": {"torch": torch.get_rng_state(), "z": self.z_gen.get_state(),
                    "cuda": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else None},
            "fixed": {"z": self.fixed.z.cpu(), "y": None if self.fixed.y is None else self.fixed.y.cpu(),
                      "nrow": self.fixed.nrow},
            "data": {"shape": list(self.data.shape), "scale": self.data.scale, "num_classes": a.num_classes,
                     "input_shape": _listed(input_shape_of(self.data))},
            "world_size": self.world.size,  # data_position counts global batches of world_size x batch_size
        }

    def load_state_dict(self, state: dict[str, Any], path: str | Path) -> None:
        a = self.algorithm
        for kind in ("models", "optimizers"):
            missing = sorted(set(getattr(a, kind)) - set(state[kind]))
            if missing:
                raise UserError(f"resume={path} has no {kind} {', '.join(missing)}: it was written by another "
                                f"algorithm than {type(a).__name__}; keep algorithm= as the run had it")
        for name, module in a.models.items():
            checkpoint.load_weights(module, state["models"][name], path, _NETWORK.get(name, name))
        if a.ema is not None and state.get("ema") is not None:
            checkpoint.load_weights(a.ema, state["ema"], path, "generator")
        for name, opt in a.optimizers.items():
            load_optimizer(opt, state["optimizers"][name], path, f"optimizer.{name.lower()}")
        a.load_state_dict(state.get("algorithm") or {})
        self.step, self.data_position = state["step"], state["data_position"]
        torch.set_rng_state(state["rng"]["torch"])
        self.z_gen.set_state(state["rng"]["z"])
        if self.device.type == "cuda" and state["rng"]["cuda"] is not None:
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        self.fixed = Latents(**state["fixed"]).to(self.device)
        self.last_checkpoint = Path(path)  # the last good one, until this run writes its own
        self.last_checkpoint_step = self.step

    def save(self, path: Path) -> None:
        checkpoint.save(path, self.state_dict())

    def result(self) -> FitResult:
        return FitResult(self.step, self.logged, self.last_checkpoint, self.best, self.stopped_by)


_NETWORK = {"G": "generator", "D": "discriminator"}  # how a load error names them


def _listed(shape) -> list[int] | None:
    return None if shape is None else list(shape)


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


def fit(run: Run, callbacks: list[Callback]) -> FitResult:
    """Steps until the schedule's end or a callback's stop; the callbacks, in order, after each step."""
    from torch.utils.tensorboard import SummaryWriter
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    if run.world.main:
        run.writer = SummaryWriter(log_dir=str(run.run_dir), flush_secs=30)
    try:
        for callback in callbacks:
            callback.on_fit_start(run)
        if run.step == 0:
            run.algorithm.begin(run)
        # disable=None: a bar on a terminal, none in pipes and log files
        with logging_redirect_tqdm(), tqdm(total=run.schedule.steps, initial=run.step, unit="step",
                                           disable=None if run.world.main else True, dynamic_ncols=True,
                                           mininterval=1.0) as bar:
            while run.step < run.schedule.steps:
                run.train_step()
                bar.update(1)
                run.last_step = run.step >= run.schedule.steps
                logged = run.logged
                for callback in callbacks:
                    started = time.monotonic()
                    callback.on_step_end(run)
                    run.io_seconds += time.monotonic() - started
                if run.logged is not logged:
                    bar.set_postfix({k: f"{run.logged[k]:.3g}" for k in ("loss/d", "loss/g", "d/real", "d/fake")
                                     if k in run.logged})
                if run.last_step or run.leave:
                    break
        for callback in callbacks:
            callback.on_fit_end(run)
    except KeyboardInterrupt as interruption:  # Ctrl-C, or SIGTERM (cli.Terminated): keep the work done so far
        for callback in callbacks:
            callback.on_interrupt(run)
        log.info("interrupted at step %d: checkpoint %s", run.step, run.last_checkpoint)
        interruption.step, interruption.checkpoint = run.step, run.last_checkpoint  # for cli's one line
        raise
    except (Diverged, files.WriteError):
        raise  # the last good checkpoint stays the last one; writing again would fail or keep NaN weights
    except Exception:
        for callback in callbacks:
            callback.on_exception(run)
        raise
    finally:
        for callback in callbacks:
            callback.on_close(run)
        if run.writer is not None:
            run.writer.close()
    return run.result()
