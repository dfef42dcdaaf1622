"""The GAN of Goodfellow et al. 2014 and every objective that keeps its shape (loss=: minimax,
non-saturating, WGAN, WGAN-GP, LSGAN, hinge): k discriminator updates on real and generated samples,
then one generator update. Conditional (Mirza & Osindero 2014) when the generator takes labels."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import torch
from torch import nn

from gan_cli.algorithms.base import Algorithm, Phase, Stats
from gan_cli.errors import UserError
from gan_cli.losses import GANLoss
from gan_cli.steps import discriminator_step, generator_step

if TYPE_CHECKING:
    from gan_cli.loop import Run

log = logging.getLogger(__name__)


class GAN(Algorithm):
    inputs = ("z", "label")

    def __init__(self, models: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer], loss: GANLoss,
                 num_classes: int | None = None, d_steps: int = 1, d_warmup: int = 0, ema: float = 0.0):
        """num_classes: the label count of a conditional pair (None: unconditional); d_steps: k of
        Goodfellow et al.; d_warmup: D updates before G's first (a head start for D)."""
        if getattr(models["D"], "autoencoder", False):
            raise UserError(f"{type(models['D']).__name__} is an auto-encoder discriminator: it returns images, not "
                            f"the scores loss= needs; train it with algorithm=began (experiment=began_mnist)")
        super().__init__(models, optimizers, ema)
        self.G, self.D, self.loss = models["G"], models["D"], loss
        self.num_classes = num_classes
        self.d_warmup = d_warmup
        loss.check(self.D)  # e.g. WGAN-GP refuses a batch-norm critic, before any step is spent
        self.phases = [Phase("d", self.d_step, repeat=d_steps), Phase("g", self.g_step)]

    def begin(self, run: Run) -> None:
        if run.data_position < self.d_warmup:
            log.info("warming D up for %d updates before G's first", self.d_warmup - run.data_position)
        while run.data_position < self.d_warmup:
            run.stats.add(self.d_step(run))

    def d_step(self, run: Run) -> Stats:
        batch = run.next_batch()
        # a conditional D sees the fakes under the real batch's labels: the data's class balance
        y = batch.labels if self.num_classes else None
        loss_d, stats = discriminator_step(self.G, self.D, self.loss, self.optimizers["D"], batch.images,
                                           run.z(len(batch), self.G.z_dim), y, sync=run.world.average_gradients,
                                           precision=run.schedule.precision)
        return {"loss/d": loss_d, **stats}

    def g_step(self, run: Run) -> Stats:
        n = run.schedule.batch_size
        z = run.z(n, self.G.z_dim)
        y = run.labels(n, self.num_classes) if self.num_classes else None  # uniform classes
        loss_g, stats = generator_step(self.G, self.D, self.loss, self.optimizers["G"], z, y,
                                       sync=run.world.average_gradients, precision=run.schedule.precision)
        return {"loss/g": loss_g, **stats}
