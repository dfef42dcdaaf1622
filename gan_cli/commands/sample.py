"""`gan sample checkpoint=PATH`: draw from a trained generator. The checkpoint alone is enough.

A style-based generator (model=stylegan2) also takes truncation=psi (the truncation trick in W) and
mix= (the style-mixing grid of Karras et al. 2019, figure 3)."""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch
from omegaconf import DictConfig
from torch import nn

from gan_cli import build, checkpoint, files, limits, modality, visuals
from gan_cli.commands import check_seed, typed
from gan_cli.errors import UserError
from gan_cli.latent import (Latents, generate_batches, render, render_mix, require_style, seeded_latents,
                            seeded_z, total)

log = logging.getLogger(__name__)

FIX = "free disk space or give another out="  # what a failed write of out= asks of the user

# mix=<name>: the crossover k for a G of num_ws style layers; the row's z gives layers [0, k), the column's
# [k, num_ws). For StyleGAN2 at 16-64 px (num_ws 6-10: the 4x4 layer, two per finer resolution, the last toRGB)
# coarse leaves the rows the 4x4 and first 8x8 styles (layout), fine the columns only the last two
# (the finest resolution's colour and texture), middle splits the layers in half.
MIX = {"coarse": lambda num_ws: 2, "middle": lambda num_ws: num_ws // 2, "fine": lambda num_ws: num_ws - 2}


@dataclass
class SampleKeys:
    """The types of conf/sample.yaml's keys (trust= is checked with the config's _target_ values)."""

    checkpoint: Optional[str]
    n: int
    seed: int
    label: Optional[int]
    nrow: Optional[int]
    annotate: bool
    out: Optional[str]
    overwrite: bool
    ema: bool
    device: str
    batch_size: int
    input: Optional[str] = None
    direction: Optional[str] = None
    text: Any = None  # text-to-image: a caption or a list of them (gan_cli/commands/sample_text.py)
    truncation: float = 1.0
    mix: Optional[str] = None
    mix_rows: int = 5
    mix_cols: int = 6
    edit: Optional[str] = None
    intensity: float = 1.0


def validate(cfg: DictConfig) -> DictConfig:
    """The config typed and in range, or one line naming the first key that is not."""
    cfg = typed(cfg, SampleKeys)
    if cfg.checkpoint is None:
        raise UserError("checkpoint= is required, e.g. gan sample checkpoint=outputs/train/<date>/<time>/checkpoints/last.pt")
    for key in ("n", "batch_size"):
        if cfg[key] <= 0:
            raise UserError(f"{key}={cfg[key]} must be positive")
    if cfg.nrow is not None and cfg.nrow < 1:
        raise UserError(f"nrow={cfg.nrow} must be at least 1 (tiles per grid row), or null for a square grid")
    check_seed(cfg.seed)
    if not math.isfinite(cfg.intensity):
        raise UserError(f"intensity={cfg.intensity} must be a finite number: AttGAN's slider, 1 by default (0 leaves "
                        f"an edited attribute neutral, a negative one reverses the edit)")
    if not 0 <= cfg.truncation <= 1:  # NaN too
        raise UserError(f"truncation={cfg.truncation} must be in [0, 1]: psi of the truncation trick, 1 is off and "
                        f"0 draws the average image for every z (e.g. truncation=0.7)")
    if cfg.mix is not None:
        if cfg.mix not in MIX and not _integer(cfg.mix):
            raise UserError(f"mix={cfg.mix}: choose coarse, middle, fine, or a layer index k (the rows' z give the "
                            f"style layers before k, the columns' z the rest)")
        for key in ("mix_rows", "mix_cols"):
            if cfg[key] < 1:
                raise UserError(f"{key}={cfg[key]} must be at least 1 (source images along that side of the grid)")
    return cfg


def _integer(text: str) -> bool:
    return text.strip().lstrip("+-").isdigit()


def run(cfg: DictConfig, run_dir: Path) -> Path:
    cfg = validate(cfg)
    saved = checkpoint.Saved.load(cfg.checkpoint, trust=cfg.trust)
    from gan_cli.commands import edit

    if edit.takes_edits(saved):  # AttGAN: the user's images in, with the attributes to change
        return edit.run(cfg, saved, run_dir, build.device(cfg.device))
    for key, given in (("edit", cfg.edit is not None), ("intensity", cfg.intensity != 1)):
        if given:
            raise UserError(f"{key}={cfg[key]}: this checkpoint's model has no attributes to edit (only an attribute "
                            f"editor, algorithm=attgan, takes edit= and intensity=); drop {key}=")
    styles = [s for s, given in ((f"truncation={cfg.truncation}", cfg.truncation != 1),
                                 (f"mix={cfg.mix}", cfg.mix is not None)) if given]
    if saved.translates and styles:
        raise UserError(f"{styles[0]}: this checkpoint's generator translates images (pix2pix, CycleGAN) and has "
                        f"no z or styles to truncate or mix; drop {styles[0].split('=')[0]}=")
    if saved.translates:  # pix2pix, CycleGAN: the user's images in, not noise
        from gan_cli.commands import translate

        return translate.run(cfg, saved, run_dir, build.device(cfg.device))
    from gan_cli.commands import reconstruct

    if cfg.input is not None and reconstruct.encoder_name(saved) is not None:  # VAE, autoencoder: encode, decode
        return reconstruct.run(cfg, saved, run_dir, build.device(cfg.device))
    for key in ("input", "direction"):
        if cfg[key] is not None:
            raise UserError(f"{key}={cfg[key]}: this checkpoint's generator makes images from noise and has no encoder "
                            f"(translation models, pix2pix and CycleGAN, take input= and direction=; autoencoders, "
                            f"algorithm=vae or autoencoder, take input=); drop {key}=")
    out = Path(cfg.out).expanduser() if cfg.out else run_dir / ("mixing.png" if cfg.mix is not None else "samples.png")
    kind = out.suffix if out.suffix in (".png", ".pt") else "folder"
    if cfg.mix is not None:
        if kind != ".png":
            raise UserError(f"mix={cfg.mix} draws one .png grid and out={cfg.out} is "
                            f"{'a folder' if kind == 'folder' else 'a .pt file'}: give out=<name>.png")
        if cfg.annotate:
            raise UserError(f"annotate=true numbers the tiles of a sample grid; mix={cfg.mix}'s grid has its sources "
                            f"in the top row and the left column: drop annotate=")
    if cfg.annotate and kind != ".png":
        raise UserError(f"annotate=true writes on a .png grid, and out={cfg.out} is not one; "
                        f"drop annotate= or give out=<name>.png")
    check_out(cfg, out, kind)
    shape = saved.shape
    if cfg.annotate and not saved.modality.images:
        raise UserError("annotate=true numbers image tiles; this model's samples are 2-D points (a scatter plot)")
    if kind == "folder" and not saved.modality.images:
        raise UserError(f"out={cfg.out}: 2-D samples go to a .png scatter plot or a .pt file, not single images")
    dev = build.device(cfg.device)
    G = saved.generator(dev, ema=cfg.ema)
    if cfg.text is not None or getattr(G, "takes_text", False):  # text-to-image: captions, not labels
        from gan_cli.commands import sample_text

        return sample_text.run(cfg, G, saved, out, kind, dev)
    if cfg.truncation != 1:
        require_style(G, f"truncation={cfg.truncation}", "truncate")
    if cfg.mix is not None:
        require_style(G, f"mix={cfg.mix}", "mix")
        crossover = check_crossover(cfg.mix, G.num_ws)
        check_label(cfg.label, G.num_classes)  # refuses label= on an unconditional G
        check_mix_sizes(cfg, out, shape, G.z_dim)
        # -- everything is checked; from here on the command draws and writes the grid -----------------
        mixing(G, dev, out, cfg, crossover)
        print(f"{cfg.mix_rows} x {cfg.mix_cols} style mixes (mix={cfg.mix}: the rows' z give style layers "
              f"0-{crossover - 1}, the columns' z layers {crossover}-{G.num_ws - 1}; seed {cfg.seed}, "
              f"step {saved.step}) -> {out}")
        return out
    label = check_label(cfg.label, G.num_classes)
    count = total(cfg.n, G.num_classes, label)
    if kind == "folder":
        check_folder(cfg, out, count)
    check_sizes(cfg, out, kind, count, shape, G.z_dim)

    # -- everything is checked; from here on the command samples and writes ---------------------------
    if kind == "folder":
        stream(G, dev, out, cfg.n, cfg.seed, label, cfg.batch_size, cfg.truncation)
    else:
        latents = seeded_latents(cfg.n, G.z_dim, cfg.seed, G.num_classes, label)
        samples = render(G, latents, cfg.batch_size, dev, truncation=cfg.truncation)
        write(samples, latents, out, nrow=cfg.nrow or latents.nrow, scale=saved.scale,
              labels=z_indices(latents) if cfg.annotate else None)
    print(f"{count} samples (seed {cfg.seed}, step {saved.step}) -> {out}")
    return out


# -- nothing written over ------------------------------------------------------------------------------

def check_out(cfg: DictConfig, out: Path, kind: str) -> None:
    """Refuse an out= that exists (unless overwrite=true) and, even with overwrite=true, one that is a
    checkpoint: the one sampled, or any other gan-cli checkpoint. Also out= that cannot be written at
    all (a file where a folder is needed), so that no sampling is wasted on it."""
    shown = f"out={cfg.out}" if cfg.out else f"the default out= {out}"
    ckpt = Path(cfg.checkpoint).expanduser()
    if out.exists() and ckpt.exists() and os.path.samefile(out, ckpt):
        raise UserError(f"{shown} is the checkpoint being sampled; gan sample never writes over a checkpoint, "
                        f"even with overwrite=true: give another out=")
    blocker = limits.existing_ancestor(out if kind == "folder" else out.parent)
    if blocker != out.absolute() and not blocker.is_dir():
        raise UserError(f"{shown}: {blocker} is a file, not a folder; give another out=")
    if not out.exists():
        return
    if checkpoint.is_checkpoint(out):
        raise UserError(f"{shown} is a gan-cli checkpoint; gan sample never writes over one, even with "
                        f"overwrite=true: give another out=")
    if kind == "folder":
        if not out.is_dir():
            raise UserError(f"{shown} is a file; an out= without .png or .pt is a folder of single PNGs: "
                            f"give another out= (out=<name>.png for one grid)")
        return
    if out.is_dir():
        raise UserError(f"{shown} is a folder; give a file name for a {kind} file, e.g. out={out / ('samples' + kind)}")
    if not cfg.overwrite:
        raise UserError(f"{shown} exists; give overwrite=true to replace it, or another out=")


def check_folder(cfg: DictConfig, out: Path, count: int) -> None:
    """A folder out= may hold other files; refuse when it holds any of the 00000.png ... names this run
    writes (unless overwrite=true), and a checkpoint or a folder under one of them in any case."""
    if not out.is_dir():
        return
    clashes = sorted(p for p in out.iterdir() if _written(p.name, count))
    if not clashes:
        return
    kept = next((p for p in clashes if p.is_dir() or checkpoint.is_checkpoint(p)), None)
    if kept is not None:
        what = "a folder" if kept.is_dir() else "a gan-cli checkpoint"
        raise UserError(f"out={cfg.out}: {kept.name} is {what}, and gan sample would write a sample there; "
                        f"it is never written over, even with overwrite=true: give another out=")
    if not cfg.overwrite:
        raise UserError(f"out={cfg.out} already holds {len(clashes)} of the {count} files this would write "
                        f"({clashes[0].name}{', ...' if len(clashes) > 1 else ''}); give overwrite=true to replace "
                        f"them, or another out=")


def _written(name: str, count: int) -> bool:
    """Whether a folder out= of `count` samples writes a file of this name: f'{i:05d}.png' for i < count."""
    stem = name.removesuffix(".png")
    return stem != name and stem.isdigit() and int(stem) < count and f"{int(stem):05d}" == stem


# -- sizes ---------------------------------------------------------------------------------------------

def check_sizes(cfg: DictConfig, out: Path, kind: str, count: int, shape: tuple[int, ...], z_dim: int) -> None:
    """Refuse, before any sampling, what cannot fit: all the samples at once for a grid or a .pt file,
    one batch at a time for a folder (whose files must fit on its disk)."""
    pixels = math.prod(shape)
    each = limits.FLOAT * (pixels + z_dim) + 8  # a sample, its z and its label, as the command holds them
    asked = f"n={cfg.n}" + (f" ({count} samples, whole rows of classes)" if count != cfg.n else " samples")
    images = modality.of(shape).images
    what = f"{asked} of {'x'.join(map(str, shape))}" if images else f"{asked} (2-D points)"
    if kind == "folder":
        h, w = shape[-2:]
        batch = min(cfg.batch_size, count)
        limits.check_memory(2 * batch * each, f"batch_size={cfg.batch_size} samples of {'x'.join(map(str, shape))} "
                            f"need", "lower batch_size=")
        limits.check_disk(count * limits.file_blocks(limits.png_bytes(h, w)), out, f"{what} as single PNGs need",
                          "lower n, or give an out= folder on a disk with more room")
        return
    if kind == ".pt":
        limits.check_memory(count * each, f"{what} need", "lower n", purpose=" for one .pt file")
        limits.check_disk(count * each + 4096, out, f"{what} need", "lower n, or give out= on a disk with more room")
        return
    if images:  # the grid as make_grid builds it (and normalises a copy), then its 8-bit picture
        tile = 3 * (shape[1] + 2) * (shape[2] + 2)
        each += 2 * limits.FLOAT * tile + tile * (2 if cfg.annotate else 1)
        disk = count * tile + 4096
    else:  # a scatter plot: matplotlib keeps its own float64 copies of the points
        each += 64
        disk = 4 * 512 * 512
    limits.check_memory(count * each, f"{what} need", "lower n, or give out=DIR, which streams" if images
                        else "lower n", purpose=" for one .png grid" if images else " for one scatter plot")
    limits.check_disk(disk, out, f"{what} need", "lower n, or give out= on a disk with more room")


# -- a folder, batch by batch --------------------------------------------------------------------------

def stream(G: nn.Module, dev: torch.device, out: Path, n: int, seed: int, label: int | None, batch_size: int,
           truncation: float = 1.0) -> None:
    """Single PNGs, batch_size at a time: each batch is drawn, written, and let go, so n is bounded by
    the disk, not the memory. File i is the image of the seed's sample i, as in a grid or a .pt file."""
    out.mkdir(parents=True, exist_ok=True)
    for start, images in generate_batches(G, n, seed, batch_size, dev, label, whole_rows=True, truncation=truncation):
        for i, image in enumerate(images, start):
            visuals.save_png(visuals.image_grid(image[None], nrow=1, padding=0), out / f"{i:05d}.png", fix=FIX)


# -- style mixing (Karras et al. 2019, figure 3) --------------------------------------------------------

def check_crossover(mix: str, num_ws: int) -> int:
    """mix= as the layer k where the columns' styles take over: a name of MIX, or k itself in 1..num_ws-1
    (0 or num_ws would take every style from one side)."""
    if mix in MIX:
        return min(max(MIX[mix](num_ws), 1), num_ws - 1)
    k = int(mix)
    if not 1 <= k <= num_ws - 1:
        raise UserError(f"mix={mix}: this generator has {num_ws} style layers, so a crossover is 1 to {num_ws - 1} "
                        f"(the rows' z give the layers before it), or say coarse, middle or fine")
    return k


def check_mix_sizes(cfg: DictConfig, out: Path, shape: tuple[int, ...], z_dim: int) -> None:
    """Refuse a mixing grid that cannot fit, as check_sizes does a sample grid."""
    tiles = (cfg.mix_rows + 1) * (cfg.mix_cols + 1)
    tile = 3 * (shape[-2] + 2) * (shape[-1] + 2)
    each = limits.FLOAT * (math.prod(shape) + 2 * z_dim) + 2 * limits.FLOAT * tile + tile
    what = f"mix_rows={cfg.mix_rows} x mix_cols={cfg.mix_cols} ({tiles} tiles of {'x'.join(map(str, shape))}) need"
    limits.check_memory(tiles * each, what, "lower mix_rows= or mix_cols=", purpose=" for one .png grid")
    limits.check_disk(tiles * tile + 4096, out, what,
                      "lower mix_rows= or mix_cols=, or give out= on a disk with more room")


def mixing(G: nn.Module, dev: torch.device, out: Path, cfg: DictConfig, crossover: int) -> None:
    """The grid: a blank corner, the columns' images along the top (source B: the seed's z mix_rows to
    mix_rows + mix_cols - 1), the rows' down the left (source A: z 0 to mix_rows - 1), and in cell (i, j)
    G.mix(z_A[i], z_B[j], crossover): A's styles before the crossover, B's from it on."""
    rows, cols = cfg.mix_rows, cfg.mix_cols
    z = seeded_z(rows + cols, G.z_dim, cfg.seed)
    z_a, z_b = z[:rows], z[rows:]
    sources = render(G, Latents(z), cfg.batch_size, dev, truncation=cfg.truncation)  # A's, then B's
    cells = render_mix(G, z_a.repeat_interleave(cols, dim=0), z_b.repeat(rows, 1), crossover, cfg.batch_size, dev,
                       truncation=cfg.truncation)  # row-major: (i, j) at i * cols + j
    grid = [[None, *sources[rows:]], *([sources[i], *cells[i * cols:(i + 1) * cols]] for i in range(rows))]
    visuals.save_png(visuals.tile_rows(grid), out, fix=FIX)


def check_label(label: int | None, num_classes: int | None) -> int | None:
    if label is None:
        return None
    if not num_classes:
        raise UserError(f"label={label}: this checkpoint's generator is not conditional; drop label=")
    if not (isinstance(label, int) and 0 <= label < num_classes):
        raise UserError(f"label={label} is not a class of this model: use 0 to {num_classes - 1}")
    return label


def z_indices(latents: Latents) -> list[str]:
    """What to write on each tile: the index of its z in the seed's sequence, the number that picks it
    in `gan latent-arithmetic`. In class rows (conditional, no label) column j holds z_j in every row."""
    return [str(i % latents.nrow if latents.nrow else i) for i in range(len(latents.z))]


def write(samples: torch.Tensor, latents: Latents, out: Path, nrow: int | None, scale: float,
          labels: list[str] | None = None) -> None:
    """out.png: one grid (a scatter plot for 2-D data), with labels[i] written on tile i when given;
    out.pt: the tensors. A folder of single PNGs is stream()'s."""
    if out.suffix == ".png":
        picture = modality.of(samples.shape[1:]).picture(samples, None, scale, nrow)
        if labels is not None:
            side = nrow or math.ceil(math.sqrt(len(samples)))  # image_grid's default: a square grid
            picture = visuals.annotate(picture, labels, side, tuple(samples.shape[-2:]))
        visuals.save_png(picture, out, fix=FIX)
    elif out.suffix == ".pt":  # samples in [-1, 1], z ~ N(0, I)
        files.write_tensors(out, {"samples": samples, "z": latents.z, "y": latents.y}, fix=FIX)
    else:
        raise ValueError(f"{out}: write() takes a .png or .pt file; stream() writes a folder")
