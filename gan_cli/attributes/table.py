"""A data set's measured attributes: Morpho-MNIST's measures of every image, computed once per split and
cached beside the data, kept both as values and binarised (above the threshold: 1)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from gan_cli import files
from gan_cli.attributes import morpho
from gan_cli.errors import UserError

log = logging.getLogger(__name__)


@dataclass
class Attributes:
    """The chosen measures of N images: values (N, k) in the measure's units, thresholds (k,) (the split's
    medians unless set), and binary (N, k) floats, 1 where the value is above its threshold."""

    names: tuple[str, ...]
    values: Tensor
    thresholds: Tensor

    @property
    def binary(self) -> Tensor:
        return (self.values > self.thresholds).float()


def check_names(names: Sequence[str], where: str = "data.attributes") -> tuple[str, ...]:
    names = tuple(str(n) for n in names)
    unknown = [n for n in names if n not in morpho.NAMES]
    if unknown:
        raise UserError(f"{where}: unknown attribute {unknown[0]!r}; the measured ones are {', '.join(morpho.NAMES)}")
    if len(set(names)) != len(names):
        raise UserError(f"{where}={list(names)} names an attribute twice")
    return names


def measured(images: Tensor, cache_dir: Path | None, key: str) -> Tensor:
    """(N, 6) measures (morpho.NAMES order) of uint8 (N, 1, H, W) images, read from cache_dir when an
    earlier run measured the very same images (the file's name holds a hash of their bytes)."""
    if images.ndim != 4 or images.shape[1] != 1 or images.dtype != torch.uint8:
        raise UserError(f"data.attributes: Morpho-MNIST measures grey digit images; {key} has images of shape "
                        f"{tuple(images.shape[1:])}; use data=mnist (or another grey set)")
    digest = hashlib.sha256(images.contiguous().numpy().tobytes()).hexdigest()[:16]
    path = None if cache_dir is None else Path(cache_dir) / f"{key}-{digest}.pt"
    if path is not None and path.is_file():
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
            if (isinstance(saved, dict) and tuple(saved.get("names", ())) == morpho.NAMES
                    and isinstance(saved.get("values"), Tensor) and saved["values"].shape == (len(images), len(morpho.NAMES))):
                return saved["values"].float()
        except Exception:  # noqa: BLE001 - a damaged cache is measured again, never trusted
            pass
        # not ours to replace: measure without caching, and say how to get the cache back
        log.warning("%s is not a cache of these images' measures: measuring again (delete it to cache anew)", path)
        path = None
    log.info("measuring %d images (Morpho-MNIST, once; cached in %s)", len(images), cache_dir)
    values = morpho.measure(images, progress=True)
    if path is not None:
        try:
            files.write_tensors(path, {"names": list(morpho.NAMES), "values": values})
        except (OSError, UserError) as e:  # a read-only data root still trains, it only measures each time
            log.warning("could not cache the measures in %s (%s)", path, e)
    return values


def attributes(images: Tensor, names: Sequence[str], cache_dir: Path | None, key: str,
               thresholds: Mapping[str, float] | None = None) -> Attributes:
    """The named measures of these images, binarised at `thresholds` (a name's value) or at the median."""
    names = check_names(names)
    thresholds = dict(thresholds or {})
    extra = [n for n in thresholds if n not in names]
    if extra:
        raise UserError(f"data.thresholds.{extra[0]} is not among data.attributes={list(names)}")
    values = measured(images, cache_dir, key)[:, [morpho.NAMES.index(n) for n in names]]
    if values.isnan().any():  # blank images have no stroke
        values = torch.where(values.isnan(), values.nanmedian(dim=0).values, values)
    cut = torch.tensor([float(thresholds[n]) if n in thresholds else values[:, i].median().item()
                        for i, n in enumerate(names)])
    return Attributes(names, values, cut)
