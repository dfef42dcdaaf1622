"""Batches and modalities: the shapes a data source declares, and what follows from them."""

from __future__ import annotations

import torch

from gan_cli import modality
from gan_cli.data.batch import Batch
from gan_cli.data.fake import random_images
from gan_cli.data.toy import ring


def test_a_batch_slices_every_field_it_holds():
    b = Batch(torch.arange(8.0).view(4, 2), torch.arange(4), text=["a", "b", "c", "d"])
    part = b.rows(1, 3)
    assert len(part) == 2 and part.labels.tolist() == [1, 2] and part.text == ["b", "c"]
    assert part.inputs is None and part.targets is None


def test_images_and_points_are_told_apart_by_shape_and_drawn_their_own_way():
    images, points = random_images(n=8, channels=1, resolution=8), ring(n=64)
    assert images.modality is modality.IMAGES and points.modality is modality.POINTS
    grid = images.modality.picture(images.first(4), None, 1.0, nrow=2)
    assert grid.shape[0] == 3 and grid.shape[1] == grid.shape[2]  # a 2x2 grid of 8x8 tiles with padding
    scatter = points.modality.picture(points.first(16), points.first(64), points.scale)
    assert scatter.shape[0] == 3 and 0 <= scatter.min() and scatter.max() <= 1
    assert points.modality.reference_size(64) == modality.Points.SCATTER and images.modality.reference_size(64) == 64
    assert images.modality.describe((1, 8, 8)) == "1x8x8" and points.modality.describe((2,)) == "2-D points"


def test_a_data_source_yields_batches():
    batch = next(random_images(n=16, channels=1, resolution=8).batches(4, torch.device("cpu"), seed=0))
    assert isinstance(batch, Batch) and batch.images.shape == (4, 1, 8, 8) and batch.labels.shape == (4,)
    assert -1 <= batch.images.min() and batch.images.max() <= 1
