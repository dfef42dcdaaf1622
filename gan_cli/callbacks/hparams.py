"""TensorBoard's HParams tab: what sets this run apart in a sweep (its config group choices and
overrides), against its final losses and best metric."""

from __future__ import annotations

from typing import Any

from gan_cli.callbacks.base import Callback


class HParams(Callback):
    def __init__(self, hparams: dict[str, Any] | None = None):
        self.hparams = hparams

    def on_fit_end(self, run) -> None:
        if run.writer is None or not self.hparams:
            return
        metrics = {f"final/{k}": v for k, v in run.logged.items() if k in ("loss/d", "loss/g", "acc/real", "acc/fake")}
        if run.best is not None:
            metrics[f"best/{run.best[0]}"] = run.best[1]
        # run_name=".": into this run's own event file, not a subdirectory per call
        run.writer.add_hparams(self.hparams, metrics, run_name=".")
