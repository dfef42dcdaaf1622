"""Progressive growing, Karras et al. 2018: the GAN algorithm (with its loss=, WGAN-GP and the drift term
in the paper) on model=progan's G and D, which start at the coarsest resolution and grow a stage at a time
as training shows them images.

The schedule counts real images shown, as the paper does: the first stage trains for `stable_images`,
each later one fades in over `fade_images` (alpha rising linearly from 0 to 1) and then trains for
`stable_images`; the last stage trains on to the end of the run. The stage follows from the step alone,
so a run resumed in the middle of a fade goes on exactly where it stopped (the networks' stage is also
in the checkpoint, for `gan sample`)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from gan_cli.algorithms.base import Phase, Stats
from gan_cli.algorithms.gan import GAN
from gan_cli.errors import UserError
from gan_cli.losses import GANLoss
from gan_cli.models.progan import shown_at

if TYPE_CHECKING:
    from gan_cli.loop import Run

log = logging.getLogger(__name__)


def stage_at(images: int, stages: int, fade: int, stable: int) -> tuple[int, float]:
    """(stage, alpha) after `images` real images: stage 0 for `stable` images, then per stage `fade`
    images of fade-in and `stable` at full weight, up to stage stages-1."""
    if images < stable or stages == 1:
        return 0, 1.0
    stage, into = divmod(images - stable, fade + stable)
    if stage + 1 >= stages:
        return stages - 1, 1.0
    return stage + 1, min(1.0, into / fade) if fade else 1.0


class ProGAN(GAN):
    def __init__(self, models: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer], loss: GANLoss,
                 fade_images: int = 800_000, stable_images: int = 800_000, reset_optimizers: bool = True,
                 **options):
        """fade_images, stable_images: real images shown per fade-in and per stable phase (the paper: 800k
        each); reset_optimizers: fresh optimiser moments when a stage begins, as the authors' code does
        (reset_opt_for_new_lod); options: the GAN algorithm's."""
        grows = [name for name in ("G", "D") if not getattr(models[name], "progressive", False)]
        if grows:
            raise UserError(f"algorithm=progan grows model=progan's networks, and this model's "
                            f"{' and '.join(grows)} cannot grow: use model=progan (or experiment=progan_fashion32)")
        if fade_images < 0 or stable_images < 1:
            raise UserError(f"algorithm.fade_images={fade_images} and algorithm.stable_images={stable_images}: "
                            f"images shown per fade-in (0 or more) and per stable phase (at least 1)")
        super().__init__(models, optimizers, loss, **options)
        self.fade, self.stable, self.reset = fade_images, stable_images, reset_optimizers
        self.stages = len(self.G.resolutions)
        self.phases = [Phase("grow", self.grow), *self.phases]

    def begin(self, run: Run) -> None:
        self.grow(run)  # D's warm-up (train.d_warmup) already trains at the first stage
        super().begin(run)

    def grow(self, run: Run) -> Stats:
        images = run.step * run.schedule.batch_size * run.world.size
        stage, alpha = stage_at(images, self.stages, self.fade, self.stable)
        if stage != self.G.stage:
            log.info("progan: %dx%d from step %d", *(2 * [self.G.resolutions[stage]]), run.step)
            if self.reset:
                for opt in self.optimizers.values():
                    opt.state.clear()
        for net in (self.G, self.D, *([] if self.ema is None else [self.ema.module])):
            net.set_stage(stage, alpha)
        return {"progan/resolution": torch.tensor(float(self.G.resolution), device=run.device),
                "progan/alpha": torch.tensor(alpha, device=run.device)}

    def as_seen(self, real: Tensor) -> Tensor:
        return shown_at(real, self.G.resolution, self.G.alpha)

    def view(self) -> str:
        return f"{self.G.resolution}x{self.G.resolution}"
