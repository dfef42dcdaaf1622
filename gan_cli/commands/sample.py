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
from gan_cli.latent import seeded_z

log = logging.getLogger(__name__)


def generator_from(state: dict[str, Any], path: str | Path, device: torch.device, ema: bool = True) -> nn.Module:
    """Rebuild G from the config inside the checkpoint and load its weights (the EMA ones when kept)."""
    cfg = OmegaConf.create(state["config"])
    G = build.instantiate(cfg.model.g, "model.g", shape=tuple(state["data"]["shape"]))
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
    z = seeded_z(cfg.n, G.z_dim, cfg.seed)
    with torch.no_grad():
        samples = torch.cat([G(chunk.to(dev)).cpu() for chunk in z.split(cfg.batch_size)])
    out = Path(cfg.out) if cfg.out else run_dir / "samples.png"
    write(samples, z, out, nrow=cfg.nrow, scale=state["data"]["scale"])
    print(f"{cfg.n} samples (seed {cfg.seed}, step {state['step']}) -> {out}")
    return out


def write(samples: torch.Tensor, z: torch.Tensor, out: Path, nrow: int | None, scale: float) -> None:
    """out.png: one grid (a scatter plot for 2-D data); out.pt: the tensors; any other path: a folder
    of single PNGs."""
    if out.suffix == ".png":
        visuals.save_png(visuals.picture(samples, scale=scale, nrow=nrow), out)
    elif out.suffix == ".pt":
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp")
        torch.save({"samples": samples, "z": z}, tmp)  # samples in [-1, 1], z ~ N(0, I)
        tmp.replace(out)
    elif samples.ndim == 4:
        for i, image in enumerate(samples):
            visuals.save_png(visuals.image_grid(image[None], nrow=1, padding=0), out / f"{i:05d}.png")
    else:
        raise UserError(f"out={out}: 2-D samples go to a .png scatter plot or a .pt file, not single images")
