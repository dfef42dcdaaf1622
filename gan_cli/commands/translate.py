"""`gan sample checkpoint=C input=DIR|FILE` for a translation model (pix2pix, CycleGAN, SRGAN): the user's
own images, translated one by one at their own size (the generators are fully convolutional; each says which
sizes and channels it takes). out= a folder gets one PNG per input under the input's name; out= a .png gets
one grid of input | output pairs, a row per input. A super-resolution model's outputs are its factor
(G.scale) larger than its inputs; in a grid the input is shown upsampled to the output's size by plain
bicubic interpolation, the floor the model is meant to beat."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from omegaconf import DictConfig

from gan_cli import checkpoint, limits, visuals
from gan_cli.data.folder import EXTENSIONS, decode
from gan_cli.data.super_resolution import upsample
from gan_cli.errors import UserError, first_line

FIX = "free disk space or give another out="


def run(cfg: DictConfig, saved: checkpoint.Saved, run_dir: Path, dev: torch.device) -> Path:
    directions = translator_names(saved)
    direction = cfg.direction
    if direction is None:
        direction = "AtoB"
    elif len(directions) == 1:
        raise UserError(f"direction={direction}: this checkpoint's model translates one way ({_algorithm(saved)}, "
                        f"A to B); drop direction=")
    elif direction not in directions:
        raise UserError(f"direction={direction} is not one of {', '.join(directions)}")
    if cfg.input is None:
        raise UserError(f"input= is required: this checkpoint translates images ({_algorithm(saved)}); give a "
                        f"folder of images or one image, e.g. gan sample checkpoint={cfg.checkpoint} input=photos/")
    sources = input_files(cfg.input)
    out = Path(cfg.out).expanduser() if cfg.out else run_dir / "translated"
    grid = out.suffix == ".png"
    targets = [out] if grid else [out / f"{p.stem}.png" for p in sources]
    check_out(cfg, out, targets, sources, grid)

    G = saved.generator(dev, ema=cfg.ema, name=directions[direction])
    channels = G.in_shape[0]
    scale = getattr(G, "scale", 1)  # a super-resolution G's factor; a translation keeps the size
    headers = [image_header(p) for p in sources]  # nothing is decoded before every check
    sizes = [(h, w) for _, h, w in headers]
    for p, shape in zip(sources, headers):
        try:
            G.check_input(shape)
        except UserError as e:
            raise UserError(f"input {p}: {e}") from None
    if grid and len(set(sizes)) > 1:
        raise UserError(f"out={cfg.out}: the inputs differ in size, and one .png grid needs one size; give a folder "
                        f"out= for one translated PNG per input")
    check_memory(G, sources, sizes, grid, scale)
    pngs = ([limits.png_bytes(*grid_size(sizes, scale))] if grid
            else [limits.file_blocks(limits.png_bytes(h * scale, w * scale)) for h, w in sizes])
    limits.check_disk(sum(pngs), out.parent if grid else out, f"{len(sources)} translated images need",
                      "free disk space, or give an out= on a disk with more room")

    # -- everything is checked; from here on the command translates and writes -------------------------
    torch.manual_seed(cfg.seed)  # pix2pix's dropout is noise at test time too: the seed fixes it
    if not grid:
        out.mkdir(parents=True, exist_ok=True)
    rows = []
    with torch.no_grad():
        for p in sources:  # one at a time: each image at its own size, and let go when written
            x = read(p, channels)
            y = G(x[None].to(dev)).float().cpu()[0]
            if grid:
                rows.append([_rgb(upsample(x[None], y.shape[-2:])[0], y.shape[0]), y])
            else:
                visuals.save_png(visuals.image_grid(y[None], nrow=1, padding=0), out / f"{p.stem}.png", fix=FIX)
    if grid:
        visuals.save_png(visuals.tile_rows(rows), out, fix=FIX)
    print(f"{len(sources)} image{'s' if len(sources) > 1 else ''} translated {direction} (step {saved.step}) -> {out}")
    return out


def check_memory(G: torch.nn.Module, sources: list[Path], sizes: list[tuple[int, int]], grid: bool,
                 scale: int = 1) -> None:
    """Refuse, before decoding, an image too large to translate here: the generator's activations grow
    with the input's pixels, at a rate measured on one image of the size it was trained at (every module's
    output counted, an upper bound); a grid also holds every input and output (scale^2 times the input's
    pixels each, the input shown at the output's size)."""
    c, h, w = G.in_shape
    counted = []
    hooks = [m.register_forward_hook(lambda _m, _i, o: counted.append(o.numel()) if torch.is_tensor(o) else None)
             for m in G.modules()]
    try:
        with torch.no_grad():
            G(torch.zeros(1, c, h, w, device=next(G.parameters()).device))
    finally:
        for hook in hooks:
            hook.remove()
    per_pixel = sum(counted) / (h * w)
    largest = max(range(len(sizes)), key=lambda i: sizes[i][0] * sizes[i][1])
    pixels = sizes[largest][0] * sizes[largest][1]
    # inputs and outputs, RGB at most, each at the output's size
    held = sum(a * b for a, b in sizes) * scale ** 2 * 8 * limits.FLOAT if grid else 0
    name = sources[largest].name
    limits.check_memory(int(per_pixel * pixels * limits.FLOAT) + held,
                        f"translating input {name} ({sizes[largest][1]}x{sizes[largest][0]}) needs",
                        "resize the image smaller" + (", or give a folder out= instead of a grid" if grid else ""))


def grid_size(sizes: list[tuple[int, int]], scale: int = 1) -> tuple[int, int]:
    """(height, width) of the input | output grid: a row of two tiles per input, each at the output's size
    (scale times the input's), 2 px padding."""
    h, w = sizes[0][0] * scale, sizes[0][1] * scale
    return 2 + len(sizes) * (h + 2), 2 + 2 * (w + 2)


def image_header(path: Path) -> tuple[int, int, int]:
    """(channels, height, width) from the file's header, or one line when it is not an image. Channels: 1 for
    grey (with or without alpha, 8 or 16 bits, a palette of greys), 3 for colour (alpha left out)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            w, h = im.size
            if im.mode in ("P", "PA"):
                palette = im.getpalette() or []
                grey = bool(palette) and all(r == g == b for r, g, b in zip(*[iter(palette)] * 3))
                channels = 1 if grey else 3
            else:
                channels = 1 if len([b for b in im.getbands() if b not in ("A", "a")]) == 1 else 3
    except Exception as e:  # noqa: BLE001 - whatever Pillow raises, the file is not an image it can read
        raise UserError(f"input {path} is not an image Pillow can read ({type(e).__name__}: {first_line(e)}); "
                        f"give PNG or JPEG files") from None
    return channels, h, w


def translator_names(saved: checkpoint.Saved) -> dict[str, str]:
    """direction -> network name, from the algorithm class the checkpoint's config names."""
    from omegaconf import OmegaConf

    from gan_cli import build

    return dict(build.algorithm_class(OmegaConf.create(saved.config)).directions)


def _algorithm(saved: checkpoint.Saved) -> str:
    return "algorithm=" + str(saved.config.get("algorithm", {}).get("_target_", "?")).rsplit(".", 1)[-1].lower()


def input_files(given: str) -> list[Path]:
    """input= as a list of image files: the file itself, or the images in a folder (not its subfolders),
    by name."""
    path = Path(given).expanduser()
    if not path.exists():
        raise UserError(f"input={given} does not exist; give a folder of images or one image")
    if path.is_file():
        return [path]
    if not path.is_dir():  # a pipe or a device: nothing to read images from, and reading could block
        raise UserError(f"input={given} is neither an image file nor a folder; give a folder of images or one image")
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in EXTENSIONS)
    if not files:
        raise UserError(f"input={given} holds no images ({', '.join(sorted(EXTENSIONS))}); give a folder of images "
                        f"or one image")
    stems = {}
    for p in files:
        if p.stem in stems:  # a.png and a.jpg would both be written as a.png
            raise UserError(f"input={given} holds {stems[p.stem].name} and {p.name}: their translations would both "
                            f"be {p.stem}.png; rename one")
        stems[p.stem] = p
    return files


def read(path: Path, channels: int) -> torch.Tensor:
    """One image as the generator takes it: (C, H, W) in [-1, 1], C its input channels (grey or RGB)."""
    from PIL import Image
    from torchvision.transforms.v2.functional import pil_to_tensor

    try:
        with Image.open(path) as im:
            pixels = pil_to_tensor(decode(im, channels))
    except Exception as e:  # noqa: BLE001 - whatever Pillow raises, the file is not an image it can read
        raise UserError(f"input {path} is not an image Pillow can read ({type(e).__name__}: {first_line(e)}); "
                        f"give PNG or JPEG files") from None
    return pixels.float() / 127.5 - 1


def check_out(cfg: DictConfig, out: Path, targets: list[Path], sources: list[Path], grid: bool) -> None:
    """Nothing is written over unless overwrite=true, and never a checkpoint; a folder out= may hold other
    files."""
    shown = f"out={cfg.out}" if cfg.out else f"the default out= {out}"
    if grid and out.is_dir():
        raise UserError(f"{shown} is a folder; give a file name for a .png grid, or a folder without .png")
    if not grid and out.exists() and not out.is_dir():
        raise UserError(f"{shown} is a file; give a folder for one translated PNG per input, or out=<name>.png for a grid")
    blocker = limits.existing_ancestor(out.parent if grid else out)
    if not blocker.is_dir():
        raise UserError(f"{shown}: {blocker} is a file, not a folder; give another out=")
    clashes = [p for p in targets if p.exists() or p.is_symlink()]
    for p in clashes:
        if p.is_dir() or checkpoint.is_checkpoint(p):
            raise UserError(f"{shown}: {p} is {'a folder' if p.is_dir() else 'a gan-cli checkpoint'}; it is never "
                            f"written over, even with overwrite=true: give another out=")
        source = next((q for q in sources if p.exists() and os.path.samefile(p, q)), None)
        if source is not None:  # out= in the input folder: a translation would replace the image it came from
            raise UserError(f"{shown}: {p.name} would be written over the input {source}, even with "
                            f"overwrite=true; give an out= outside the input's folder")
    if clashes and not cfg.overwrite:
        raise UserError(f"{shown} already holds {clashes[0].name}{' and more' if len(clashes) > 1 else ''}, which this "
                        f"would write; give overwrite=true to replace, or another out=")


def _rgb(x: torch.Tensor, channels: int) -> torch.Tensor:
    return x.expand(channels, -1, -1) if x.shape[0] != channels else x
