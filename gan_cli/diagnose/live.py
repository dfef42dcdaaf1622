"""gan diagnose's detectors, live during `gan train`: fed each logged row of scalars and each batch of
fixed-noise samples, a Watch returns a failure the first time it shows, so the run can warn or stop."""

from __future__ import annotations

from collections.abc import Iterable

from torch import Tensor

from gan_cli.diagnose import detectors
from gan_cli.diagnose.diversity import Probe, mode_collapse, spread
from gan_cli.diagnose.series import Series
from gan_cli.errors import UserError

KINDS = ("divergence", "convergence_failure", "vanishing_gradient", "oscillation", "mode_collapse")


class Watch:
    def __init__(self, thresholds: dict, config: dict, stop_on: Iterable[str] = ()):
        self.stop_on = set(stop_on)
        unknown = sorted(self.stop_on - set(KINDS))
        if unknown:
            raise UserError(f"train.stop_on: {', '.join(unknown)} is not a finding; choose from {', '.join(KINDS)}")
        self.thresholds, self.config = thresholds, config
        self.series = Series([], {})
        self.probes: list[Probe] = []
        self.reported: list[detectors.Finding] = []

    def scalars(self, step: int, values: dict[str, float]) -> list[detectors.Finding]:
        s = self.series
        for name in values.keys() - s.values.keys():  # a name first logged now: NaN before
            s.values[name] = [float("nan")] * len(s.steps)
        s.steps.append(step)
        for name, column in s.values.items():
            column.append(float(values.get(name, float("nan"))))
        return self._new(detectors.detect(s, self.config, self.thresholds))

    def samples(self, step: int, fake: Tensor, real: Tensor) -> list[detectors.Finding]:
        """A diversity probe on the fixed-noise samples: no classifier, no extra forward pass."""
        t = self.thresholds["mode_collapse"]
        diversity, duplicates = spread(fake.float().cpu(), real.float().cpu(), t)
        self.probes.append(Probe(step, diversity, duplicates, None, None, None, fake[:0]))
        return self._new(mode_collapse(self.probes, self.config, t))

    def stops(self, finding: detectors.Finding) -> bool:
        return finding.kind in self.stop_on

    def _new(self, findings: list[detectors.Finding]) -> list[detectors.Finding]:
        seen = {f.kind for f in self.reported}
        # a finding that has already recovered is history by now: only an ongoing one is news
        new = [f for f in findings if f.kind not in seen and not f.recovered]
        self.reported += new
        return new
