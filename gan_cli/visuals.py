"""Pictures of samples: image grids, and scatter plots for 2-D data. Tensors in, (3, H, W) floats in
[0, 1] out, ready for a PNG or TensorBoard."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import Tensor


def image_grid(images: Tensor, nrow: int | None = None, padding: int = 2) -> Tensor:
    """(N, C, H, W) in [-1, 1] -> one (3, H', W') grid in [0, 1]; nrow images per row (default: square)."""
    from torchvision.utils import make_grid

    nrow = nrow or max(1, math.ceil(math.sqrt(len(images))))
    grid = make_grid(images.detach().float().cpu(), nrow=nrow, padding=padding, normalize=True,
                     value_range=(-1, 1), pad_value=1.0)
    return grid.expand(3, -1, -1) if grid.shape[0] == 1 else grid


def scatter(fake: Tensor | None, real: Tensor | None = None, scale: float = 1.0, size_px: int = 512) -> Tensor:
    """2-D points (N, 2) -> a scatter plot, real in grey under generated in orange, in the data's units."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(size_px / 100, size_px / 100), dpi=100)
    if real is not None:
        r = real.detach().float().cpu() * scale
        ax.scatter(r[:, 0], r[:, 1], s=4, c="0.6", alpha=0.5, label="real", linewidths=0)
    if fake is not None:
        f = fake.detach().float().cpu() * scale
        ax.scatter(f[:, 0], f[:, 1], s=4, c="tab:orange", alpha=0.7, label="generated", linewidths=0)
    lim = 1.05 * scale
    ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal")
    ax.legend(loc="upper right", fontsize=8, markerscale=3)
    fig.tight_layout()
    fig.canvas.draw()
    rgba = torch.frombuffer(bytearray(fig.canvas.buffer_rgba()), dtype=torch.uint8)
    w, h = fig.canvas.get_width_height()
    plt.close(fig)
    return rgba.view(h, w, 4)[..., :3].permute(2, 0, 1).float() / 255


def picture(samples: Tensor, real: Tensor | None = None, scale: float = 1.0, nrow: int | None = None) -> Tensor:
    """The natural picture of a batch: a grid for images, a scatter plot for 2-D points."""
    if samples.ndim == 2:
        return scatter(samples, real, scale)
    return image_grid(samples, nrow)


def save_png(image: Tensor, path: Path) -> Path:
    """(3, H, W) in [0, 1] -> PNG, written to a temporary name first so readers never see half a file."""
    from torchvision.utils import save_image

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    save_image(image, tmp)
    tmp.replace(path)
    return path
