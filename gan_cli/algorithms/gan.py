"""The GAN of Goodfellow et al. 2014 and every objective that keeps its shape (loss=: minimax,
non-saturating, WGAN, WGAN-GP, LSGAN, hinge): k discriminator updates on real and generated samples,
then one generator update. Conditional (Mirza & Osindero 2014) when the generator takes labels.

The stabilisers of the training step are options here: an unrolled D for G's update (Metz et al. 2017),
historical averaging (Salimans et al. 2016) and annealed instance noise (Sonderby et al. 2017); those of
the objectives (label smoothing, feature matching, R1, R2) come with the loss."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from gan_cli.algorithms.base import Algorithm, Phase, Stats
from gan_cli.algorithms.stabilisers import HistoricalAverage, InstanceNoise
from gan_cli.errors import UserError
from gan_cli.losses import GANLoss
from gan_cli.steps import discriminator_step, generator_step

if TYPE_CHECKING:
    from gan_cli.loop import Run

log = logging.getLogger(__name__)


class GAN(Algorithm):
    inputs = ("z", "label")
    stabilisers = frozenset({"loss.label_smoothing", "loss.feature_matching", "loss.r1", "loss.r2",
                             "train.unrolled_steps", "train.historical_averaging", "train.instance_noise"})

    def __init__(self, models: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer], loss: GANLoss,
                 num_classes: int | None = None, d_steps: int = 1, d_warmup: int = 0, ema: float = 0.0,
                 unrolled_steps: int | None = None, historical_averaging: float = 0.0, instance_noise: float = 0.0):
        """num_classes: the label count of a conditional pair (None: unconditional); d_steps: k of
        Goodfellow et al.; d_warmup: D updates before G's first (a head start for D); unrolled_steps: G's
        objective against D after that many more of its updates (None: off); historical_averaging: lambda
        of the penalty on both players; instance_noise: its starting standard deviation."""
        if getattr(models["D"], "autoencoder", False):
            raise UserError(f"{type(models['D']).__name__} is an auto-encoder discriminator: it returns images, not "
                            f"the scores loss= needs; train it with algorithm=began (experiment=began_mnist)")
        if unrolled_steps is not None and unrolled_steps < 1:
            raise UserError(f"train.unrolled_steps={unrolled_steps}: D's updates to unroll for G's must be at least 1 "
                            f"(Metz et al. 2017 use 5 and 10); null turns unrolling off")
        if unrolled_steps and loss.feature_matching:
            raise UserError("train.unrolled_steps and loss.feature_matching=true cannot be combined: both replace "
                            "G's objective (D's score k updates ahead, or the match of D's features now); "
                            "choose one")
        super().__init__(models, optimizers, ema)
        self.G, self.D, self.loss = models["G"], models["D"], loss
        self.num_classes = num_classes
        self.d_warmup = d_warmup
        self.unrolled = unrolled_steps
        self.history = HistoricalAverage(historical_averaging, {"G": self.G, "D": self.D}) \
            if historical_averaging else None
        self.noise = InstanceNoise(instance_noise) if instance_noise else None
        loss.check(self.D)  # e.g. WGAN-GP refuses a batch-norm critic, before any step is spent
        self.phases = [Phase("d", self.d_step, repeat=d_steps), Phase("g", self.g_step)]

    def differentiated(self) -> dict[str, str]:
        return {"D": "train.unrolled_steps"} if self.unrolled else super().differentiated()

    def begin(self, run: Run) -> None:
        if run.data_position < self.d_warmup:
            log.info("warming D up for %d updates before G's first", self.d_warmup - run.data_position)
        while run.data_position < self.d_warmup:
            run.stats.add(self.d_step(run))

    def d_step(self, run: Run) -> Stats:
        batch = run.next_batch()
        # a conditional D sees the fakes under the real batch's labels: the data's class balance
        y = batch.labels if self.num_classes else None
        self.last_real = (self.as_seen(batch.images), y)  # D's latest real batch (StyleGAN2's lazy R1 reuses it)
        loss_d, stats = discriminator_step(self.G, self.D, self.loss, self.optimizers["D"], self.last_real[0],
                                           run.z(len(batch), self.G.z_dim), y, sync=run.world.average_gradients,
                                           precision=run.schedule.precision, **self._stabilisers(run, "D"))
        if self.history is not None:
            self.history.record("D", self.D)
        return {"loss/d": loss_d, **stats}

    def g_step(self, run: Run) -> Stats:
        n = run.schedule.batch_size
        z = run.z(n, self.G.z_dim)
        real = None
        if self.loss.feature_matching or self.unrolled:  # both judge G's samples against a batch of data
            batch = run.next_batch()
            real, n = self.as_seen(batch.images), len(batch)
            z = z[:n]
            y = batch.labels if self.num_classes else None
        else:
            y = run.labels(n, self.num_classes) if self.num_classes else None  # uniform classes
        loss_g, stats = generator_step(self.G, self.D, self.loss, self.optimizers["G"], z, y,
                                       sync=run.world.average_gradients, precision=run.schedule.precision,
                                       real=real, unrolled=self.unrolled, d_opt=self.optimizers["D"],
                                       **self._stabilisers(run, "G"))
        if self.history is not None:
            self.history.record("G", self.G)
        return {"loss/g": loss_g, **stats}

    def _stabilisers(self, run: Run, name: str) -> dict[str, Any]:
        return {"perturb": None if self.noise is None else self.noise.at(run.step, run.schedule.steps, run.z_gen),
                "penalty": None if self.history is None else self.history.penalty(name)}

    def state_dict(self) -> dict[str, Any]:
        return {} if self.history is None else {"historical_average": self.history.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.history is not None and "historical_average" in state:
            self.history.load_state_dict(state["historical_average"])
