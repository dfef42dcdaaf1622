"""Morpho-MNIST's measures of a digit (Castro et al. 2019, "Morpho-MNIST: Quantitative Assessment and
Diagnostics for Representation Learning", section 3.1), taken from the image itself.

As in the paper, each image is upsampled 4x (bicubic) and binarised at half its intensity range; the
stroke is skeletonised with scikit-image's medial axis, which also gives each skeleton pixel's distance
to the background:
- area: stroke pixels;
- length: the skeleton's length, diagonal steps counting sqrt(2);
- thickness: twice the mean distance from the skeleton to the background (the stroke's mean width);
- slant: the horizontal shear of the image's second moments, arctan(-mu11 / mu02), in radians;
  positive leans right (/), negative left (\\);
- width and height: the sides of the slanted box that holds 98% of the ink (1% cut at each side).
Lengths are in pixels of the original image. A blank image has no stroke: its measures are NaN."""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch
from torch import Tensor

NAMES = ("area", "length", "thickness", "slant", "width", "height")
SCALE = 4  # the paper's upsampling: sub-pixel thickness needs more than 28 px across
_DIAGONAL = np.sqrt(2.0)


def measure_image(image: np.ndarray, threshold: float = 0.5, scale: int = SCALE, bound_frac: float = 0.02) -> np.ndarray:
    """The six measures (NAMES order) of one grey (H, W) image, ink bright on dark, any numeric dtype."""
    from scipy import ndimage
    from skimage import morphology, transform

    image = np.asarray(image, dtype=np.float64)
    if image.max() > 1.0:
        image = image / 255.0
    if image.max() - image.min() <= 0:
        return np.full(len(NAMES), np.nan)
    hires = transform.pyramid_expand(image, upscale=scale, order=3) if scale > 1 else image
    low, high = hires.min(), hires.max()
    binary = hires >= low + (high - low) * threshold
    skeleton = morphology.skeletonize(binary)
    distance = ndimage.distance_transform_edt(binary)
    if not skeleton.any():
        return np.full(len(NAMES), np.nan)
    area = binary.sum() / scale ** 2
    length = _skeleton_length(skeleton) / scale
    thickness = 2.0 * distance[skeleton].mean() / scale
    shear, left, right, top, bottom = _slanted_box(hires, bound_frac)
    slant = np.arctan(-shear)
    return np.array([area, length, thickness, slant, (right - left) / scale, (bottom - top) / scale])


def _skeleton_length(skeleton: np.ndarray) -> float:
    """Each skeleton pixel's links to its neighbours right, below-left, below and below-right (each
    link counted once): 1 for a side step, sqrt(2) for a diagonal one."""
    s = skeleton.astype(np.float64)
    right = (s[:, :-1] * s[:, 1:]).sum()
    down = (s[:-1, :] * s[1:, :]).sum()
    diagonals = (s[:-1, :-1] * s[1:, 1:]).sum() + (s[:-1, 1:] * s[1:, :-1]).sum()
    return float(right + down + _DIAGONAL * diagonals)


def _slanted_box(image: np.ndarray, frac: float) -> tuple[float, float, float, float, float]:
    """The horizontal shear of the image's moments, and the box (left, right along the sheared rows;
    top, bottom) that leaves frac / 2 of the ink outside on each side."""
    h, w = image.shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    mass = image.sum()
    cx, cy = (x * image).sum() / mass, (y * image).sum() / mass
    mu11 = (x * y * image).sum() / mass - cx * cy
    mu02 = (y * y * image).sum() / mass - cy * cy
    shear = mu11 / mu02
    # the ink's position along each sheared row, and its cumulative share left of each column edge t
    u = (x + 0.5 - shear * (y - cy)).ravel()
    order = np.argsort(u, kind="stable")
    cum = np.concatenate([[0.0], np.cumsum(image.ravel()[order])]) / mass
    edges = np.arange(w, dtype=np.float64)
    horizontal = cum[np.searchsorted(u[order], edges, side="left")]
    vertical = np.concatenate([[0.0], np.cumsum(image.sum(axis=1))[:-1]]) / mass
    half = frac / 2
    left, right = np.interp([half, 1 - half], horizontal, edges)
    top, bottom = np.interp([half, 1 - half], vertical, np.arange(h, dtype=np.float64))
    return shear, left, right, top, bottom


def _measure_chunk(images: np.ndarray) -> np.ndarray:
    return np.stack([measure_image(im) for im in images]) if len(images) else np.zeros((0, len(NAMES)))


def measure(images: Tensor | np.ndarray, workers: int | None = None, progress: bool = False) -> Tensor:
    """(N, len(NAMES)) float32 measures of N grey images: uint8 (N, [1,] H, W) in [0, 255], or float in
    [-1, 1] as G makes them. workers: processes (default: one per CPU; 1 measures in this process)."""
    x = torch.as_tensor(images).detach().cpu()
    if x.ndim == 4:
        if x.shape[1] != 1:
            raise ValueError(f"Morpho-MNIST measures grey images; got {x.shape[1]} channels")
        x = x[:, 0]
    x = x.numpy() if x.dtype == torch.uint8 else ((x.float().clamp(-1, 1) + 1) * 127.5).numpy()
    # a spawned worker takes seconds to start (it imports torch): worth it only for thousands of images
    workers = workers or (os.cpu_count() or 1 if len(x) >= 4096 else 1)
    chunks = np.array_split(x, max(1, min(len(x) // 256, workers * 8))) if len(x) else [x]
    if workers == 1 or len(chunks) == 1:
        parts = [_measure_chunk(c) for c in _progress(chunks, progress, len(x))]
    else:
        import multiprocessing

        # spawn, not fork: a forked copy of a process that has run torch's thread pools can hang
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            parts = list(_progress(pool.map(_measure_chunk, chunks), progress, len(x), len(chunks)))
    return torch.from_numpy(np.concatenate(parts).astype(np.float32))


def _progress(chunks, on: bool, images: int, total: int | None = None):
    if not on:
        return chunks
    from tqdm import tqdm

    return tqdm(chunks, total=total, desc=f"measuring {images} digits (Morpho-MNIST)", unit="chunk", leave=False)
