"""MNIST, Fashion-MNIST and CIFAR-10 through torchvision's own classes, held in memory as uint8.

Users online get torchvision's download; offline, `make data` places MNIST and Fashion-MNIST where
torchvision looks (<root>/MNIST/raw, <root>/FashionMNIST/raw)."""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from gan_cli.attributes import table
from gan_cli.data.source import TensorData
from gan_cli.errors import UserError

log = logging.getLogger(__name__)

# Data sets that `make data` (python -m gan_cli.data.prepare) can install without internet.
OFFLINE = {"MNIST": "mnist", "FashionMNIST": "fashion_mnist"}
# The torchvision classes this loader reads (a train flag, .data and .targets). A name is looked up in
# torchvision.datasets, so it must be one of these: a config (or a checkpoint's) picks data, not code.
SUPPORTED = ("MNIST", "FashionMNIST", "KMNIST", "CIFAR10", "CIFAR100")


def load(dataset: str, root: str, resolution: int | None = None, split: str = "train",
         download: bool = True, attributes: Sequence[str] = (), thresholds: Mapping[str, float] | None = None,
         limit: int | None = None) -> TensorData:
    """dataset: a torchvision.datasets class name (MNIST, FashionMNIST, CIFAR10). attributes: Morpho-MNIST
    measures each batch carries, binarised at `thresholds` or the split's medians. limit: the first
    `limit` images only (a smaller set to measure and train on)."""
    import torchvision

    if dataset not in SUPPORTED:
        raise UserError(f"data.dataset={dataset} is not a data set this loader reads; choose one of "
                        f"{', '.join(SUPPORTED)}, or data=folder for a folder of images")
    cls = getattr(torchvision.datasets, dataset)
    ds = _open(cls, dataset, Path(root).expanduser(), split == "train", download)
    images = torch.as_tensor(ds.data)
    images = images.unsqueeze(1) if images.ndim == 3 else images.permute(0, 3, 1, 2)  # -> (N, C, H, W)
    if resolution and resolution != images.shape[-1]:
        images = resize(images, resolution)
    labels = torch.as_tensor(ds.targets, dtype=torch.long)
    if limit is not None:
        if limit < 1:
            raise UserError(f"data.limit={limit} must be at least 1 (or null for the whole split)")
        images, labels = images[:limit], labels[:limit]
    measures = None
    if attributes:
        key = f"{dataset.lower()}-{split}-{images.shape[-1]}px"
        measures = table.attributes(images, attributes, Path(root).expanduser() / "attributes", key, thresholds)
    elif thresholds:
        raise UserError(f"data.thresholds={dict(thresholds)} binarise data.attributes, which is empty; "
                        f"set data.attributes=[{','.join(thresholds)}]")
    return TensorData(dataset.lower(), images.contiguous(), labels, num_classes=len(ds.classes), attributes=measures)


def resize(images: torch.Tensor, side: int) -> torch.Tensor:
    """Resize a uint8 (N, C, H, W) batch once, at load time, with antialiasing."""
    if side <= 0:
        raise UserError(f"data.resolution={side} must be a positive number of pixels")
    out = torch.empty(len(images), images.shape[1], side, side, dtype=torch.uint8)
    for i in range(0, len(images), 4096):  # chunks bound the float copy's memory
        chunk = F.interpolate(images[i:i + 4096].float(), size=(side, side), mode="bilinear",
                              antialias=True, align_corners=False)
        out[i:i + 4096] = chunk.round_().clamp_(0, 255).to(torch.uint8)
    return out


def _open(cls, dataset: str, root: Path, train: bool, download: bool):
    try:
        return cls(str(root), train=train, download=False)
    except RuntimeError:
        pass  # not there yet
    offline = (f"`make data` prepares it offline (python -m gan_cli.data.prepare {OFFLINE[dataset]} "
               f"--root {root})" if dataset in OFFLINE else "place torchvision's files there by hand")
    if not download:
        raise UserError(f"{dataset} is not under {root} and data.download=false; {offline}")
    log.info("%s not under %s: downloading with torchvision", dataset, root)
    try:
        # torchvision prints each failed mirror to stdout; keep the terminal to our one line
        with contextlib.redirect_stdout(io.StringIO()):
            return cls(str(root), train=train, download=True)
    except Exception as e:  # noqa: BLE001 - any failure of the download means the same to the user
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UserError(f"{dataset} is not under {root} and the download failed ({reason}); "
                        f"{offline}, or set data.root") from None
