"""gan diagnose's detectors, live (train.watch): each logged row and each picture's samples go through
the same detectors; a failure is a warning and TensorBoard text the first time it shows, and stops the
run when train.stop_on names it."""

from __future__ import annotations

import logging

from gan_cli.callbacks.base import Callback
from gan_cli.diagnose.detectors import Finding
from gan_cli.diagnose.live import Watch as Detectors

log = logging.getLogger(__name__)


class Watch(Callback):
    def __init__(self, detectors: Detectors | None = None, log_every: int = 50, sample_every: int = 500):
        """detectors: None turns the watch off; log_every and sample_every: the steps where the ranks of a
        torchrun world decide together whether to stop."""
        self.detectors, self.log_every, self.sample_every = detectors, log_every, sample_every
        self._logged = self._pictured = None

    def on_fit_start(self, run) -> None:
        self._logged, self._pictured = run.logged, run.pictured  # judge only what this run logs and draws

    def on_step_end(self, run) -> None:
        if self.detectors is None:
            return
        self._judge(run)
        if run.together(run.stopped_by is not None, run.at(self.log_every) or run.at(self.sample_every)):
            run.leave = True

    def on_fit_end(self, run) -> None:
        if self.detectors is not None:
            self._judge(run)

    def _judge(self, run) -> None:
        if run.logged is not self._logged:  # a new row since the last look
            self._logged = run.logged
            self._report(run, self.detectors.scalars(run.step, run.logged))
        pictured = run.pictured
        if pictured is not None and pictured is not self._pictured:
            self._pictured = pictured
            self._report(run, self.detectors.samples(run.step, *pictured))

    def _report(self, run, findings: list[Finding]) -> None:
        for f in findings:
            cures = "  |  ".join(f"gan train {c}" for c in f.cures)
            log.warning("step %d: %s since step %d: %s%s", run.step, f.kind.replace("_", " "), f.start, f.summary,
                        f"; try: {cures}" if cures else "")
            if run.writer is not None:
                run.writer.add_text(f"diagnose/{f.kind}", f"since step {f.start}: {f.summary}\n\ntry: `{cures}`",
                                    run.step)
            if run.stopped_by is None and self.detectors.stops(f):
                run.stopped_by = f
                log.warning("train.stop_on has %s: stopping at step %d", f.kind, run.step)
