"""train.lr_decay_start: every optimiser's rate held constant, then decayed linearly to zero at
train.steps (CycleGAN's and pix2pix's schedule: 100 epochs constant, 100 decaying). The rate is a function
of the step alone, so a resumed run goes on where it was; the decay is over train.steps, not over what a
train.max_minutes budget leaves."""

from __future__ import annotations

import logging

from gan_cli.callbacks.base import Callback

log = logging.getLogger(__name__)


def factor(step: int, start: int, steps: int) -> float:
    """The share of the configured rate at `step` (steps done so far)."""
    if step < start:
        return 1.0
    return max(0.0, 1.0 - (step - start) / max(steps - start, 1))


class LinearDecay(Callback):
    def __init__(self, start: int | None = None):
        self.start = start  # None: the rate stays constant
        self.base: list[list[float]] = []

    def on_fit_start(self, run) -> None:
        if self.start is None:
            return
        # the configured rates: a resumed optimizer has its config's rate back (loop.load_optimizer)
        self.base = [[group["lr"] for group in opt.param_groups] for opt in run.algorithm.optimizers.values()]
        log.info("learning rates constant until step %d, then linear decay to 0 at step %d", self.start,
                 run.schedule.steps)
        self.apply(run)

    def on_step_end(self, run) -> None:
        if self.start is not None:
            self.apply(run)

    def apply(self, run) -> None:
        share = factor(run.step, self.start, run.schedule.steps)
        for opt, rates in zip(run.algorithm.optimizers.values(), self.base):
            for group, rate in zip(opt.param_groups, rates):
                group["lr"] = rate * share
