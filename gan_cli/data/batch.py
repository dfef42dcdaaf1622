"""What a data source hands a training step (Batch), and what every data source provides (DataSource)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields, replace
from typing import Protocol

import torch
from torch import Tensor

from gan_cli.modality import Modality


@dataclass
class Batch:
    """One batch of real data. Families read what they need: a GAN the images (and labels); an
    image-to-image model inputs and targets; text-to-image the captions."""

    images: Tensor  # (N, C, H, W) images or (N, D) points, in [-1, 1]: the real samples D sees
    labels: Tensor | None = None  # (N,) class indices of labelled data
    inputs: Tensor | None = None  # (N, C', H', W') source images of a translation or a super-resolution pair
    targets: Tensor | None = None  # (N, C, H, W) the paired targets of `inputs`
    text: list[str] | None = None  # N captions
    attributes: Tensor | None = None  # (N, k) 0./1. measured attributes, above their threshold (data.attributes)

    def __len__(self) -> int:
        return len(self.images)

    def rows(self, start: int, stop: int) -> Batch:
        """Rows start:stop of every field (a rank's slice of the world's batch under torchrun)."""
        return replace(self, **{f.name: None if getattr(self, f.name) is None else getattr(self, f.name)[start:stop]
                                for f in fields(self)})


class DataSource(Protocol):
    """A data set as the runner sees it: samples in [-1, 1] of one shape, optional integer labels, and an
    endless, seeded, resumable stream of shuffled batches."""

    name: str
    num_classes: int | None  # the label count of labelled data, None for unlabelled
    scale: float  # multiply samples by this for the data's own units (the toy mixtures)
    # a mixture with known components (the toy sets): their means in the data's own units and their
    # spread, by which metrics and probes count the modes covered; None for data without known modes
    centers: Tensor | None
    std: float | None

    @property
    def shape(self) -> tuple[int, ...]: ...

    # A translation's sources (gan_cli/data/translation.py) also declare `input_shape`, the images G takes,
    # and `paired`; other sources need not (input_shape_of reads it for every source).

    @property
    def modality(self) -> Modality: ...

    def __len__(self) -> int: ...

    def batches(self, batch_size: int, device: torch.device, seed: int, start: int = 0) -> Iterator[Batch]:
        """Batch `start` onwards of the seed's order; a function of (seed, position) only, so a resumed run
        sees what an uninterrupted one would."""

    def first(self, n: int) -> Tensor:
        """The first n samples, for pictures of real data."""

    def draw(self, n: int, seed: int) -> Tensor:
        """n samples, the same for the same seed: a reference set for metrics and probes."""


def input_shape_of(data) -> tuple[int, ...] | None:
    """The shape of the images a translation's G takes from this source; None for data a generator of noise
    learns (every source but the translation sets, a user's own included, which need not declare it)."""
    return getattr(data, "input_shape", None)
