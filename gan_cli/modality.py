"""What kind of sample a data set holds, and what follows from it: images are shown as grids and judged
in a classifier's or Inception's features; 2-D points are shown as scatter plots over the real data
and judged in their own coordinates. Code asks the modality instead of testing a tensor's ndim."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from gan_cli import visuals


class Modality:
    name: str
    images: bool  # whether samples are pictures (conv models, image grids, Inception, folders of PNGs)

    def picture(self, samples: Tensor, real: Tensor | None, scale: float, nrow: int | None = None) -> Tensor:
        """The picture of a batch of samples, (3, H, W) in [0, 1]."""
        raise NotImplementedError

    def real_picture(self, real: Tensor, scale: float) -> Tensor:
        raise NotImplementedError

    def reference_size(self, n: int) -> int:
        """How many real samples a picture of n generated ones is drawn against."""
        raise NotImplementedError

    def describe(self, shape: Sequence[int]) -> str:
        raise NotImplementedError


class Images(Modality):
    name, images = "images", True

    def picture(self, samples, real, scale, nrow=None):
        return visuals.image_grid(samples, nrow)

    def real_picture(self, real, scale):
        return visuals.image_grid(real)

    def reference_size(self, n):
        return n

    def describe(self, shape):
        return "x".join(map(str, shape))


class Points(Modality):
    name, images = "points", False
    SCATTER = 2048  # real points under a scatter plot: enough to show every mode's spread

    def picture(self, samples, real, scale, nrow=None):
        return visuals.scatter(samples, real, scale)

    def real_picture(self, real, scale):
        return visuals.scatter(None, real, scale)

    def reference_size(self, n):
        return self.SCATTER

    def describe(self, shape):
        return f"{shape[0]}-D points"


IMAGES, POINTS = Images(), Points()


def of(shape: Sequence[int]) -> Modality:
    """(C, H, W) samples are images; (D,) samples are points."""
    return IMAGES if len(shape) == 3 else POINTS
