"""Checkpoints: checkpoints/step_NNNNNNN.pt every N steps (last.pt an atomic copy of it), last.pt at the
end, on Ctrl-C or SIGTERM, and after a crash while the weights are still finite. Never after a NaN:
the last good checkpoint stays the last one."""

from __future__ import annotations

import logging

from gan_cli import checkpoint
from gan_cli.callbacks.base import Callback
from gan_cli.errors import UserError

log = logging.getLogger(__name__)


class Checkpoints(Callback):
    def __init__(self, every: int = 1000):
        self.every = every  # steps between kept checkpoints; 0: only last.pt at the end

    def on_step_end(self, run) -> None:
        if run.at(self.every) and not run.last_step:
            self.write(run, periodic=True)

    def on_fit_end(self, run) -> None:
        self.write(run, periodic=False)

    def on_interrupt(self, run) -> None:
        if run.world.main:
            self.write(run, periodic=False)

    def on_exception(self, run) -> None:
        if run.world.main and run.step > 0 and run.last_checkpoint_step != run.step:
            try:
                self.write(run, periodic=False)
                log.error("training failed at step %d; checkpoint %s kept", run.step, run.last_checkpoint)
            except UserError:  # NaN weights, or a write that fails too: the last good one stays
                pass

    def write(self, run, periodic: bool) -> None:
        run.check_finite()
        if not run.world.main:
            return
        directory = run.run_dir / "checkpoints"
        last = directory / "last.pt"
        if periodic:  # serialise once; last.pt is a copy of the step's file
            kept = directory / f"step_{run.step:07d}.pt"
            run.save(kept)
            checkpoint.copy(kept, last)
        else:
            run.save(last)
        run.last_checkpoint, run.last_checkpoint_step = last, run.step
