"""Random uint8 images of any shape: for tests and benchmarks that must not depend on a download."""

from __future__ import annotations

import torch

from gan_cli.data.source import TensorData
from gan_cli.errors import UserError


def random_images(n: int = 1024, channels: int = 3, resolution: int = 32, num_classes: int = 10,
                  seed: int = 0) -> TensorData:
    if min(n, channels, resolution, num_classes) <= 0:
        raise UserError(f"data=fake needs positive n, channels, resolution and num_classes "
                        f"(got {n}, {channels}, {resolution}, {num_classes})")
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, channels, resolution, resolution), generator=g, dtype=torch.uint8)
    labels = torch.randint(num_classes, (n,), generator=g)
    return TensorData("fake", images, labels, num_classes=num_classes)
