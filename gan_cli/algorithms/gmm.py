"""A Gaussian mixture fitted by EM (gan_cli/models/gmm.py), run by `gan train` as any algorithm: its one
phase fits the mixture once, on up to model.max_samples training samples drawn with the run's seed, and then
ends the run, whatever train.steps says (EM is one fit, not steps). The loop, the callbacks and the checkpoint
are the engine's own: the run logs one row (the fit's log-likelihood), draws its samples, and writes
checkpoints/last.pt, which `gan sample` and `gan eval` read as any G's."""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING

import torch
from torch import nn

from gan_cli.algorithms.base import Algorithm, Phase, Stats
from gan_cli.errors import UserError

if TYPE_CHECKING:
    from gan_cli.loop import Run

log = logging.getLogger(__name__)


class GMM(Algorithm):
    inputs = ("z",)
    adversarial = False  # no discriminator: gan diagnose's detectors of the game do not apply
    optimized: dict[str, tuple[str, ...]] = {}  # EM needs no optimiser

    @classmethod
    def networks(cls, shape, input_shape):
        return {"G": ("g", {"shape": shape})}

    def __init__(self, models: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer], data,
                 ema: float = 0.0):
        """data: the training set, whose size bounds the components (refused now, before the run writes)."""
        if ema:
            raise UserError(f"train.ema={ema}: a Gaussian mixture is fitted once, so there are no steps to average; "
                            f"drop train.ema")
        super().__init__(models, optimizers)
        self.G = models["G"]
        if not callable(getattr(self.G, "fit", None)):
            raise UserError(f"algorithm=gmm fits a Gaussian mixture by EM, and {type(self.G).__name__} is not one: "
                            f"use model=gmm")
        self.num_classes = None
        self.samples = min(self.G.max_samples, len(data))
        if self.G.components > self.samples:
            raise UserError(f"model.components={self.G.components} is more than the {self.samples} samples to fit "
                            f"(data={data.name} has {len(data)}, model.max_samples={self.G.max_samples}): a mixture "
                            f"needs at least one sample per component; lower model.components")
        self.phases = [Phase("fit", self.fit)]

    def load_state_dict(self, state) -> None:
        # called on resume= only, before the run writes anything
        raise UserError("resume=: a Gaussian mixture is fitted once and its checkpoint is already complete; there is "
                        "nothing to continue (a new gan train with the same seed fits the same mixture)")

    def fit(self, run: Run) -> Stats:
        x = run.data.draw(self.samples, run.seed)
        log.info("fitting %d components (%s covariances) by EM to %d samples of %s", self.G.components,
                 self.G.covariance, len(x), run.data.name)
        stats = self.G.fit(x, run.seed)
        log.info("EM: log-likelihood %.4g nats per sample, %d iterations%s", stats["gmm/log_likelihood"],
                 stats["gmm/iterations"], "" if stats["gmm/converged"] else " (not converged: raise model.max_iter)")
        if run.schedule.steps != run.step + 1:
            log.info("a mixture is fitted once: the run ends here, at step %d, not at train.steps=%d", run.step + 1,
                     run.schedule.steps)
            run.schedule = dataclasses.replace(run.schedule, steps=run.step + 1)
        return {name: torch.tensor(value, device=run.device) for name, value in stats.items()}
