"""train.max_minutes: a wall-clock budget. When it is spent the run ends cleanly, with its final
pictures, evaluation and checkpoint, as if that step had been the last."""

from __future__ import annotations

import logging
import math
import time

from gan_cli.callbacks.base import Callback

log = logging.getLogger(__name__)


class TimeBudget(Callback):
    def __init__(self, max_minutes: float | None = None, every: int = 50):
        """every: under torchrun, the steps at which the ranks look at the clock together (the log
        interval); a single process looks after every step."""
        self.max_minutes, self.every = max_minutes, every or 50
        self.deadline = math.inf

    def on_fit_start(self, run) -> None:
        if self.max_minutes:
            self.deadline = time.monotonic() + 60 * self.max_minutes

    def on_step_end(self, run) -> None:
        if run.together(time.monotonic() > self.deadline, run.at(self.every)) and not run.last_step:
            log.info("train.max_minutes=%s reached at step %d: stopping", self.max_minutes, run.step)
            run.last_step = True
