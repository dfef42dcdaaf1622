"""`gan sample checkpoint=PATH`: draw from a trained generator. The checkpoint alone is enough."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from gan_cli import build, checkpoint, visuals
from gan_cli.errors import UserError
from gan_cli.latent import Latents, seeded_latents

log = logging.getLogger(__name__)


def generator_from(state: dict[str, Any], path: str | Path, device: torch.device, ema: bool = True) -> nn.Module:
    """Rebuild G from the config inside the checkpoint and load its weights (the EMA ones when kept).
    Its `num_classes` is set (not None) for a conditional generator."""
    cfg = OmegaConf.create(state["config"])
    G = build.generator(cfg, tuple(state["data"]["shape"]), state["data"].get("num_classes"))
    weights = state["models"]["G"]
    if ema and state.get("ema") is not None:  # an AveragedModel's state: module.* plus a counter
        weights = {k.removeprefix("module."): v for k, v in state["ema"].items() if k.startswith("module.")}
    checkpoint.load_weights(G, weights, path, "generator")
    return G.to(device).eval()


def run(cfg: DictConfig, run_dir: Path) -> Path:
    if cfg.checkpoint is None:
        raise UserError("checkpoint= is required, e.g. gan sample checkpoint=outputs/train/<date>/<time>/checkpoints/last.pt")
    for key in ("n", "batch_size"):
        if cfg[key] <= 0:
            raise UserError(f"{key}={cfg[key]} must be positive")
    out = Path(cfg.out) if cfg.out else run_dir / "samples.png"
    if cfg.annotate and out.suffix != ".png":
        raise UserError(f"annotate=true writes on a .png grid, and out={cfg.out} is not one; "
                        f"drop annotate= or give out=<name>.png")
    state = checkpoint.load(cfg.checkpoint)
    if cfg.annotate and len(state["data"]["shape"]) != 3:
        raise UserError("annotate=true numbers image tiles; this model's samples are 2-D points (a scatter plot)")
    dev = build.device(cfg.device)
    G = generator_from(state, cfg.checkpoint, dev, ema=cfg.ema)
    latents = seeded_latents(cfg.n, G.z_dim, cfg.seed, G.num_classes, check_label(cfg.label, G.num_classes))
    with torch.no_grad():
        samples = torch.cat([G(z.to(dev), None if y is None else y.to(dev)).cpu()
                             for z, y in _chunks(latents, cfg.batch_size)])
    write(samples, latents, out, nrow=cfg.nrow or latents.nrow, scale=state["data"]["scale"],
          labels=z_indices(latents) if cfg.annotate else None)
    print(f"{len(samples)} samples (seed {cfg.seed}, step {state['step']}) -> {out}")
    return out


def check_label(label: int | None, num_classes: int | None) -> int | None:
    if label is None:
        return None
    if not num_classes:
        raise UserError(f"label={label}: this checkpoint's generator is not conditional; drop label=")
    if not (isinstance(label, int) and 0 <= label < num_classes):
        raise UserError(f"label={label} is not a class of this model: use 0 to {num_classes - 1}")
    return label


def _chunks(latents: Latents, size: int):
    for i in range(0, len(latents.z), size):
        yield latents.z[i:i + size], None if latents.y is None else latents.y[i:i + size]


def z_indices(latents: Latents) -> list[str]:
    """What to write on each tile: the index of its z in the seed's sequence, the number that picks it
    in `gan latent-arithmetic`. In class rows (conditional, no label) column j holds z_j in every row."""
    return [str(i % latents.nrow if latents.nrow else i) for i in range(len(latents.z))]


def write(samples: torch.Tensor, latents: Latents, out: Path, nrow: int | None, scale: float,
          labels: list[str] | None = None) -> None:
    """out.png: one grid (a scatter plot for 2-D data), with labels[i] written on tile i when given;
    out.pt: the tensors; any other path: a folder of single PNGs."""
    if out.suffix == ".png":
        picture = visuals.picture(samples, scale=scale, nrow=nrow)
        if labels is not None:
            side = nrow or math.ceil(math.sqrt(len(samples)))  # image_grid's default: a square grid
            picture = visuals.annotate(picture, labels, side, tuple(samples.shape[-2:]))
        visuals.save_png(picture, out)
    elif out.suffix == ".pt":
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp")
        torch.save({"samples": samples, "z": latents.z, "y": latents.y}, tmp)  # samples in [-1, 1], z ~ N(0, I)
        tmp.replace(out)
    elif samples.ndim == 4:
        for i, image in enumerate(samples):
            visuals.save_png(visuals.image_grid(image[None], nrow=1, padding=0), out / f"{i:05d}.png")
    else:
        raise UserError(f"out={out}: 2-D samples go to a .png scatter plot or a .pt file, not single images")
