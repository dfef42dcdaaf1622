"""Data for super-resolution (SRGAN, Ledig et al. 2017): pairs of a low-resolution input and its
high-resolution original, made from a torchvision set as the paper makes them from ImageNet: "obtained by
applying a Gaussian filter to I_HR followed by a downsampling operation with downsampling factor r" (section
2.1; its experiments downsample with bicubic, r = 4). Here: torch's bicubic interpolation with antialiasing
(F.interpolate(mode="bicubic", antialias=True), whose widened kernel is the low-pass filter), rounded to 8-bit
pixels like any image a user would hand `gan sample input=`.

The targets (Batch.images, Batch.targets) are the data set's images at data.resolution; the inputs
(Batch.inputs) are resolution / scale pixels a side. Labels are kept for evaluation only (class kept, the
classifier's FD). No random window: the paper's 96 px crops of large photos have no counterpart in a 28 px
image, which is whole; data.flip mirrors an input together with its target (bicubic downsampling commutes
with the mirror, so the pair stays aligned)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from gan_cli.data import torchvision_sets
from gan_cli.data.source import TensorData
from gan_cli.data.translation import CHUNK, PairedData, _split
from gan_cli.errors import UserError

SCALES = (2, 4)  # SRGAN's upsampling blocks double the side each: x2, x4 (the paper's)


def check_scale(scale: int, key: str = "data.scale") -> None:
    if scale not in SCALES:
        raise UserError(f"{key}={scale}: choose 2 or 4 (the generator doubles the side once per pixel-shuffle "
                        f"block; the paper's factor is 4)")


def low_side(resolution: int, scale: int) -> int:
    """The inputs' side; one line when the scale does not divide the resolution."""
    check_scale(scale)
    if resolution <= 0:
        raise UserError(f"data.resolution={resolution} must be a positive number of pixels")
    if resolution % scale or resolution < scale:
        near = sorted({max(scale, resolution // scale * scale), -(-resolution // scale) * scale})
        raise UserError(f"data.resolution={resolution} cannot be divided by data.scale={scale}: the inputs would be "
                        f"{resolution / scale:g} px a side; set data.resolution={' or '.join(map(str, near))} "
                        f"(a multiple of {scale})")
    return resolution // scale


def downsample(images: Tensor, side: int) -> Tensor:
    """uint8 (N, C, H, W) -> uint8 (N, C, side, side): bicubic with antialiasing, rounded and clamped to [0, 255],
    in chunks that bound the float copy's memory."""
    out = torch.empty(len(images), images.shape[1], side, side, dtype=torch.uint8)
    for i in range(0, len(images), CHUNK):
        small = F.interpolate(images[i:i + CHUNK].float(), size=(side, side), mode="bicubic", antialias=True,
                              align_corners=False)
        out[i:i + CHUNK] = small.round_().clamp_(0, 255).to(torch.uint8)
    return out


def upsample(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Images in [-1, 1] (N, C, h, w) -> (N, C, *size) by plain bicubic interpolation, clamped to [-1, 1]:
    the floor a super-resolution model must beat, and the input as the pictures show it."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x.float(), size=tuple(size), mode="bicubic", align_corners=False).clamp_(-1, 1)


def super_resolution(dataset: str = "FashionMNIST", root: str = "data", split: str = "train", resolution: int = 28,
                     scale: int = 4, flip: bool = False, download: bool = True) -> PairedData:
    """Pairs (bicubic downsampling by `scale`, the image at `resolution`) of a torchvision set's split."""
    side = low_side(resolution, scale)
    images = torchvision_sets.load(dataset, root, resolution, _split(split), download)
    inputs = TensorData(f"{images.name}_x{scale}_inputs", downsample(images.samples, side), images.labels,
                        images.num_classes)
    return PairedData(f"{images.name}_x{scale}", inputs, images, resolution, flip, images.num_classes,
                      input_resolution=side)
