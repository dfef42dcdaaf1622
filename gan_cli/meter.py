"""Running means of step statistics, kept on the device and read in one transfer per log interval."""

from __future__ import annotations

import torch
from torch import Tensor


class Meter:
    def __init__(self) -> None:
        self._sums: dict[str, Tensor] = {}
        self._counts: dict[str, int] = {}

    def add(self, stats: dict[str, Tensor]) -> None:
        for name, value in stats.items():
            value = value.detach().float()
            self._sums[name] = self._sums[name] + value if name in self._sums else value.clone()
            self._counts[name] = self._counts.get(name, 0) + 1

    def read(self, reduce=None) -> dict[str, float]:
        """The means since the last read, then start again. One host sync. `reduce` combines the stacked
        means across processes (the world's mean under torchrun)."""
        if not self._sums:
            return {}
        names = list(self._sums)
        values = torch.stack([self._sums[n] / self._counts[n] for n in names])
        values = (reduce(values) if reduce is not None else values).tolist()
        self._sums.clear()
        self._counts.clear()
        return dict(zip(names, values))
