"""The step statistics, as means over each log interval: to TensorBoard and to metrics.jsonl under the
same names (loss/d, d/real, acc/fake, grad_norm/g, perf/img_per_s, ...)."""

from __future__ import annotations

import json
import time

from gan_cli.callbacks.base import Callback


class Scalars(Callback):
    def __init__(self, every: int = 50):
        self.every = every  # steps between rows; 0 logs only the last step
        self.file = None

    def on_fit_start(self, run) -> None:
        if run.world.main:
            self.file = (run.run_dir / "metrics.jsonl").open("a")
        self.tick, self.tick_step = time.monotonic(), run.step
        run.io_seconds = 0.0

    def on_step_end(self, run) -> None:
        if not (run.at(self.every) or run.last_step):
            return
        values = run.stats.read(run.world.mean)
        run.check_finite()
        now = time.monotonic()
        seconds = max(now - self.tick - run.io_seconds, 1e-9)  # pictures and checkpoints are not training time
        values["perf/img_per_s"] = (run.step - self.tick_step) * run.schedule.batch_size / seconds * run.world.size
        self.tick, self.tick_step, run.io_seconds = now, run.step, 0.0
        if run.writer is not None:
            for name, value in values.items():
                run.writer.add_scalar(name, value, run.step)
            self.file.write(json.dumps({"step": run.step, **values}) + "\n")
            self.file.flush()
        run.logged = values

    def on_close(self, run) -> None:
        if self.file is not None:
            self.file.close()
