"""`gan sample checkpoint=C input=DIR|FILE` for a model with an encoder (algorithm=vae, autoencoder): the user's
images encoded (the VAE's posterior mean, the autoencoder's code) and decoded. out= a folder gets one PNG per
input under the input's name; out= a .png gets one grid of input | reconstruction pairs, a row per input. The
files are read, checked and written as translations are (gan_cli/commands/translate.py)."""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from gan_cli import checkpoint, limits, visuals
from gan_cli.commands import translate
from gan_cli.errors import UserError

FIX = "free disk space or give another out="


def encoder_name(saved: checkpoint.Saved) -> str | None:
    """The network that encodes images, by the checkpoint's algorithm class (Autoencoding.encoder); None for
    a model without an encoder (a GAN)."""
    from gan_cli import build

    return getattr(build.algorithm_class(OmegaConf.create(saved.config)), "encoder", None)


def run(cfg: DictConfig, saved: checkpoint.Saved, run_dir: Path, dev: torch.device) -> Path:
    for key, given in (("direction", cfg.direction is not None), ("label", cfg.label is not None),
                       ("text", cfg.text is not None), ("annotate", cfg.annotate),
                       ("truncation", cfg.truncation != 1), ("mix", cfg.mix is not None)):
        if given:
            raise UserError(f"{key}={cfg[key]}: input= reconstructs your images through the encoder and decoder, which "
                            f"take no {key}; drop {key}=")
    sources = translate.input_files(cfg.input)
    out = Path(cfg.out).expanduser() if cfg.out else run_dir / "reconstructed"
    grid = out.suffix == ".png"
    targets = [out] if grid else [out / f"{p.stem}.png" for p in sources]
    translate.check_out(cfg, out, targets, sources, grid)
    channels, height, width = saved.shape
    for p in sources:  # nothing is decoded before every header is checked
        _, h, w = translate.image_header(p)  # grey or colour is converted to the model's, as data=folder does
        if (h, w) != (height, width):
            raise UserError(f"input {p} is {w}x{h}; this model encodes {width}x{height} images (its training data's): "
                            f"resize it")
    pixels = channels * height * width
    limits.check_memory((2 * len(sources) if grid else 2 * cfg.batch_size) * pixels * limits.FLOAT,
                        f"{len(sources)} images of {width}x{height} need", "give a folder out= instead of a grid"
                        if grid else "lower batch_size=")
    tile = limits.png_bytes(height, width)
    limits.check_disk(2 * len(sources) * tile if grid else len(sources) * limits.file_blocks(tile),
                      out.parent if grid else out, f"{len(sources)} reconstructions need",
                      "free disk space, or give an out= on a disk with more room")

    # -- everything is checked; from here on the command reconstructs and writes ------------------------
    E = saved.generator(dev, ema=False, name=encoder_name(saved))
    G = saved.generator(dev, ema=cfg.ema)
    if not grid:
        out.mkdir(parents=True, exist_ok=True)
    rows = []
    with torch.no_grad():
        for start in range(0, len(sources), cfg.batch_size):
            batch = sources[start:start + cfg.batch_size]
            x = torch.stack([translate.read(p, channels) for p in batch])
            y = G.decode(E.encode(x.to(dev))).float().cpu()
            for p, original, image in zip(batch, x, y):
                if grid:
                    rows.append([original, image])
                else:
                    visuals.save_png(visuals.image_grid(image[None], nrow=1, padding=0), out / f"{p.stem}.png",
                                     fix=FIX)
    if grid:
        visuals.save_png(visuals.tile_rows(rows), out, fix=FIX)
    print(f"{len(sources)} image{'s' if len(sources) > 1 else ''} reconstructed (encoded, then decoded; step "
          f"{saved.step}) -> {out}")
    return out
