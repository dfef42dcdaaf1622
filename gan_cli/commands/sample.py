"""`gan sample checkpoint=PATH`: draw from a trained generator. The checkpoint alone is enough."""

from __future__ import annotations

import logging
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
    state = checkpoint.load(cfg.checkpoint)
    dev = build.device(cfg.device)
    G = generator_from(state, cfg.checkpoint, dev, ema=cfg.ema)
    latents = seeded_latents(cfg.n, G.z_dim, cfg.seed, G.num_classes, check_label(cfg.label, G.num_classes))
    with torch.no_grad():
        samples = torch.cat([G(z.to(dev), None if y is None else y.to(dev)).cpu()
                             for z, y in _chunks(latents, cfg.batch_size)])
    out = Path(cfg.out) if cfg.out else run_dir / "samples.png"
    write(samples, latents, out, nrow=cfg.nrow or latents.nrow, scale=state["data"]["scale"])
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


def write(samples: torch.Tensor, latents: Latents, out: Path, nrow: int | None, scale: float) -> None:
    """out.png: one grid (a scatter plot for 2-D data); out.pt: the tensors; any other path: a folder
    of single PNGs."""
    if out.suffix == ".png":
        visuals.save_png(visuals.picture(samples, scale=scale, nrow=nrow), out)
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
