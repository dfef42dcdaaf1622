"""Evaluation during training (train.eval_every): gan eval's metrics of the sampling generator, to
TensorBoard as metrics/<name> and to evals.jsonl; checkpoints/best.pt when the chosen metric improves."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from gan_cli.algorithms.base import Algorithm
from gan_cli.callbacks.base import Callback

log = logging.getLogger(__name__)


class Evaluation(Callback):
    def __init__(self, every: int = 0, evaluator: Callable[[Algorithm], dict[str, float]] | None = None,
                 best_metric: str | None = None, lower_is_better: bool = True):
        """evaluator: the measures of the algorithm's sampling networks; None on the ranks other than 0 of a
        torchrun world, which still join the NaN check around each evaluation; best_metric None turns the
        callback off."""
        self.every, self.evaluator = every, evaluator
        self.best_metric, self.lower_is_better = best_metric, lower_is_better

    def on_step_end(self, run) -> None:
        if self.best_metric is not None and run.at(self.every) and not run.last_step:
            self.evaluate(run)

    def on_fit_end(self, run) -> None:
        if self.best_metric is not None:
            self.evaluate(run)

    def evaluate(self, run) -> None:
        run.check_finite()  # on every rank: a collective under torchrun
        if self.evaluator is None:
            return
        values = self.evaluator(run.algorithm)
        for name, value in values.items():
            run.writer.add_scalar(f"metrics/{name}", value, run.step)
        with (run.run_dir / "evals.jsonl").open("a") as f:
            f.write(json.dumps({"step": run.step, **values}) + "\n")
        value = values[self.best_metric]
        best = run.best
        better = best is None or (value < best[1] if self.lower_is_better else value > best[1])
        shown = ", ".join(f"{k} {v:.4g}" for k, v in values.items() if not k.endswith("_std"))
        log.info("step %d: %s%s", run.step, shown,
                 f"; best {self.best_metric} so far: checkpoints/best.pt" if better else "")
        if better:
            run.best = (self.best_metric, value, run.step)
            run.save(run.run_dir / "checkpoints" / "best.pt")
