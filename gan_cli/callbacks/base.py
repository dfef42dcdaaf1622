"""The hooks the loop calls. Every rank calls them (some decisions, NaN and time, are taken by all ranks
together); rank 0 alone writes, and `run.writer` is None on the others."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gan_cli.loop import Run


class Callback:
    def on_fit_start(self, run: Run) -> None:
        """Before the first step (and before the algorithm's warm-up)."""

    def on_step_end(self, run: Run) -> None:
        """After each step. `run.last_step` is set on the step that ends the run: periodic work waits for
        on_fit_end then, which does it once more for the final state."""

    def on_fit_end(self, run: Run) -> None:
        """After the last step, in order: final pictures, evaluation, checkpoint."""

    def on_interrupt(self, run: Run) -> None:
        """Ctrl-C or SIGTERM: keep the work."""

    def on_exception(self, run: Run) -> None:
        """Any other failure but a NaN or a failed write: keep what can be kept."""

    def on_close(self, run: Run) -> None:
        """Always, last: close files."""
