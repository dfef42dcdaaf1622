"""Pictures of samples: image grids, and scatter plots for 2-D data. Tensors in, (3, H, W) floats in
[0, 1] out, ready for a PNG or TensorBoard."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import Tensor

from gan_cli import files


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
    return _pixels(fig)


def curve(x: Tensor, mean: Tensor, std: Tensor, xlabel: str, ylabel: str, title: str) -> Tensor:
    """A measured curve, mean +- one std at each x, as a (3, H, W) picture."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.6), dpi=100)
    ax.plot(x, mean, "o-", c="tab:blue")
    ax.fill_between(x, mean - std, mean + std, color="tab:blue", alpha=0.2, linewidth=0)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    return _pixels(fig)


def _pixels(fig) -> Tensor:
    """A matplotlib figure's canvas as (3, H, W) in [0, 1]; the figure is closed."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.canvas.draw()
    rgba = torch.frombuffer(bytearray(fig.canvas.buffer_rgba()), dtype=torch.uint8)
    w, h = fig.canvas.get_width_height()
    plt.close(fig)
    return rgba.view(h, w, 4)[..., :3].permute(2, 0, 1).float() / 255


def save_png(image: Tensor, path: Path, fix: str = files.FIX) -> Path:
    """(3, H, W) in [0, 1] -> PNG, by files.atomic_write: readers never see half a file, and a failed
    write is one line naming it, ending with `fix`."""
    from torchvision.utils import save_image

    with files.atomic_write(path, fix) as tmp:
        save_image(image, tmp, format="PNG")  # the temporary name ends in .tmp: say which format
    return path


def tile_rows(rows: list[list[Tensor | None]], padding: int = 2) -> Tensor:
    """Rows of (C, H, W) images in [-1, 1] -> one grid as image_grid draws it, as wide as the longest
    row; None, and the end of a shorter row, are blank tiles (the padding's white)."""
    tiles = [t for row in rows for t in row if t is not None]
    if not tiles:
        raise ValueError("tile_rows needs at least one image")
    ncols = max(len(row) for row in rows)
    blank = torch.ones_like(tiles[0])
    flat = [blank if t is None else t for row in rows for t in [*row, *[None] * (ncols - len(row))]]
    return image_grid(torch.stack(flat), nrow=ncols, padding=padding)


def annotate(grid: Tensor, labels: list[str], nrow: int, tile: tuple[int, int], padding: int = 2) -> Tensor:
    """Write labels[i] into the top-left corner of tile i of an image_grid picture (3, H, W) in [0, 1];
    tiles run row by row, nrow to a row, each tile (height, width) pixels. Yellow on a black box reads
    on dark and light samples alike."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFont

    pixels = grid.mul(255).add(0.5).clamp(0, 255).to(torch.uint8)  # save_image's rounding: untouched pixels keep their value
    image = Image.fromarray(pixels.permute(1, 2, 0).contiguous().numpy())
    draw = ImageDraw.Draw(image)
    h, w = tile
    try:
        font = ImageFont.load_default(size=max(8, min(h, w) // 3))
    except TypeError:  # Pillow < 10.1: one fixed-size bitmap font
        font = ImageFont.load_default()
    ncols = min(nrow, len(labels))
    for i, text in enumerate(labels):
        x = padding + (i % ncols) * (w + padding)
        y = padding + (i // ncols) * (h + padding)
        _, _, right, bottom = draw.textbbox((x, y), str(text), font=font)
        draw.rectangle((x, y, right, bottom), fill=(0, 0, 0))
        draw.text((x, y), str(text), fill=(255, 255, 0), font=font)
    return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1).float() / 255
