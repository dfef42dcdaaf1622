"""pix2pix's and CycleGAN's folder layouts, read whole into uint8 tensors (N, C, L, L) for translation.py.

pix2pix (read_paired), either of its two layouts:
- combined: ROOT/<split>/ holds images with A and B side by side (width = 2 x height, A on the left), as
  pix2pix's own data sets ship (facades, maps, edges2shoes);
- two folders: ROOT/A/<split>/ and ROOT/B/<split>/ (what pix2pix's combine_A_and_B.py reads), or ROOT/A/ and
  ROOT/B/ without split folders, when every split reads the same images; A/x.png pairs with B/x.<any ext>.
CycleGAN (read_unpaired): ROOT/trainA/ and ROOT/trainB/ (testA/, testB/ for split=test), unaligned.
Each loader recognises the other's layout and names the config that reads it.

Every image is decoded as data=folder decodes it (folder.decode: 8-bit grey or RGB, transparency onto
black, EXIF orientation applied) and resized, bicubic and ignoring its aspect ratio as pix2pix does, to
a square of the load side. Where data=folder skips a file it cannot read with a warning, these loaders
refuse in one line naming it: the whole set is decoded up front, so the user learns at once, and a pair
that silently lost a member would shrink the set unnoticed. Hidden files (.DS_Store) are ignored.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import torch
from torch import Tensor

from gan_cli.data.folder import EXTENSIONS, decode
from gan_cli.errors import UserError, first_line

log = logging.getLogger(__name__)

MEMORY_LIMIT = 4 * 10**9  # bytes of decoded pixels: beyond this a set belongs in a streaming loader
NAMED = 3  # file names a message lists before it only counts them
_UNPAIRED_SIDE = re.compile(r"(train|test|val)[AB]")


def paired_layouts(root: str, split: str) -> str:
    r = Path(root)
    return (f"{r / split}/ of images with A and B side by side (width = 2 x height), or {r / 'A' / split}/ and "
            f"{r / 'B' / split}/ (or {r / 'A'}/ and {r / 'B'}/) of images paired by file name")


def unpaired_layout(root: str, split: str) -> str:
    r = Path(root)
    return f"{r / (split + 'A')}/ and {r / (split + 'B')}/ of images, any number on each side"


USE_PAIRED = "this is pix2pix's paired layout: use data=paired_folder with algorithm=pix2pix"
USE_UNPAIRED = "this is CycleGAN's unpaired layout: use data=unpaired_folder with algorithm=cyclegan"


def read_paired(root: str, split: str, side: int, channels: int) -> tuple[Tensor, Tensor]:
    """The A and B images of pix2pix's folder `root`, row i of one paired with row i of the other."""
    path = _directory(root, "paired_folder", paired_layouts(root, split))
    if (path / "A").is_dir() and (path / "B").is_dir():
        return _read_two_folders(path, split, side, channels)
    if (path / split).is_dir():
        return _read_combined(path, split, side, channels)
    if any(_UNPAIRED_SIDE.fullmatch(p.name) for p in path.iterdir() if p.is_dir()):
        raise UserError(f"data.root={root} holds {_listing(path)}: {USE_UNPAIRED}")
    raise UserError(f"data.root={root} is in neither of pix2pix's layouts: it holds {_listing(path)}; expected "
                    f"{paired_layouts(root, split)}")


def read_unpaired(root: str, split: str, side: int, channels: int) -> tuple[Tensor, Tensor]:
    """The A and B images of CycleGAN's folder `root`, each side its own size."""
    layout = unpaired_layout(root, split)
    path = _directory(root, "unpaired_folder", layout)
    sides = path / f"{split}A", path / f"{split}B"
    if not any(d.is_dir() for d in sides) and _looks_paired(path, split):
        raise UserError(f"data.root={root} holds {_listing(path)}: {USE_PAIRED}")
    files = [_images_in(d, f"CycleGAN's layout is {layout}") for d in sides]
    _check_memory(root, sum(map(len, files)), channels, side)
    return _read_all(files[0], side, channels), _read_all(files[1], side, channels)


def _read_two_folders(path: Path, split: str, side: int, channels: int) -> tuple[Tensor, Tensor]:
    folders = path / "A", path / "B"
    if any((d / split).is_dir() for d in folders):
        folders = tuple(d / split for d in folders)
    elif split != "train":
        log.warning(f"{path}/A and {path}/B have no {split}/ folders: split={split} reads the same images as "
                    f"split=train")
    hint = f"pix2pix's two-folder layout pairs {folders[0]}/x.png with {folders[1]}/x.png"
    a, b = (_by_name(_images_in(d, hint)) for d in folders)
    only_a, only_b = sorted(a.keys() - b.keys()), sorted(b.keys() - a.keys())
    if only_a or only_b:
        raise UserError(f"{folders[0]} and {folders[1]} do not match by file name: {_some(only_a)} only in A, "
                        f"{_some(only_b)} only in B; pairs are A/x.png with B/x.png (any image extension): add "
                        f"the missing images or remove the extra ones")
    _check_memory(str(path), 2 * len(a), channels, side)
    out = torch.empty(2, len(a), channels, side, side, dtype=torch.uint8)
    for i, name in enumerate(sorted(a)):
        image_a, image_b = _open(a[name], channels), _open(b[name], channels)
        if image_a.size != image_b.size:
            raise UserError(f"{a[name]} is {_size(image_a)} but {b[name]} is {_size(image_b)}: the two images of "
                            f"a pair must be the same size; resize one to the other's")
        out[0, i], out[1, i] = _pixels(image_a, side), _pixels(image_b, side)
    return out[0], out[1]


def _read_combined(path: Path, split: str, side: int, channels: int) -> tuple[Tensor, Tensor]:
    folder = path / split
    files = _images_in(folder, f"pix2pix's combined layout keeps images of A and B side by side in {folder}/")
    _check_memory(str(folder), 2 * len(files), channels, side)
    out = torch.empty(2, len(files), channels, side, side, dtype=torch.uint8)
    for i, file in enumerate(files):
        image = _open(file, channels)
        w, h = image.size
        if w != 2 * h:
            raise UserError(f"{file} is {_size(image)}: in pix2pix's combined layout each image holds A and B "
                            f"side by side, so its width must be twice its height; fix or remove it, or keep A "
                            f"and B in separate folders paired by file name ({path / 'A' / split}/, "
                            f"{path / 'B' / split}/)")
        out[0, i], out[1, i] = _pixels(image.crop((0, 0, h, h)), side), _pixels(image.crop((h, 0, w, h)), side)
    return out[0], out[1]


def _read_all(files: list[Path], side: int, channels: int) -> Tensor:
    out = torch.empty(len(files), channels, side, side, dtype=torch.uint8)
    for i, file in enumerate(files):
        out[i] = _pixels(_open(file, channels), side)
    return out


def _directory(root: str, data: str, layout: str) -> Path:
    path = Path(root).expanduser()
    if not path.is_dir():
        raise UserError(f"data.root={root} is not a directory; point data={data} at a folder laid out as {layout}")
    return path


def _images_in(folder: Path, hint: str) -> list[Path]:
    """Every file of `folder` (hidden ones aside), which must all be images: sorted, for a fixed order."""
    if not folder.is_dir():
        raise UserError(f"{folder} is missing; {hint}")
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    if not any(p.suffix.lower() in EXTENSIONS for p in files):
        raise UserError(f"{folder} holds no images (it holds {_listing(folder)}); put the images there "
                        f"({', '.join(sorted(EXTENSIONS))}); {hint}")
    others = [p for p in files if p.suffix.lower() not in EXTENSIONS]
    if others:
        more = f", nor are {len(others) - 1} other files there" if len(others) > 1 else ""
        raise UserError(f"{others[0]} is not an image (not one of {', '.join(sorted(EXTENSIONS))}){more}: this "
                        f"loader reads every file of the folder, so move it out")
    return files


def _by_name(files: list[Path]) -> dict[str, Path]:
    named: dict[str, Path] = {}
    for file in files:
        if file.stem in named:
            raise UserError(f"{named[file.stem]} and {file} share the name {file.stem}: pairs are matched by file "
                            f"name, so rename or remove one")
        named[file.stem] = file
    return named


def _open(file: Path, channels: int):
    from PIL import Image

    try:
        with Image.open(file) as im:
            return decode(im, channels)  # a new, fully read image: the file can close
    except Exception as e:  # noqa: BLE001 - Pillow reports a bad file as OSError, SyntaxError, ValueError...
        raise UserError(f"{file} is not a readable image ({type(e).__name__}: {first_line(e)}); replace it or "
                        f"move it out of the folder") from None


def _pixels(image, side: int) -> Tensor:
    """A decoded picture -> uint8 (C, side, side), resized bicubic as pix2pix resizes."""
    import numpy as np
    from PIL import Image

    pixels = torch.from_numpy(np.array(image.resize((side, side), Image.Resampling.BICUBIC)))
    return pixels.unsqueeze(0) if pixels.ndim == 2 else pixels.permute(2, 0, 1)


def _check_memory(where: str, count: int, channels: int, side: int) -> None:
    size = count * channels * side * side
    if size > MEMORY_LIMIT:
        raise UserError(f"{where}: {count} images of {channels}x{side}x{side} would take {size / 1e9:.1f} "
                        f"GB of memory, over the {MEMORY_LIMIT / 1e9:.0f} GB this loader holds; lower "
                        f"data.load_size or data.resolution")


def _looks_paired(path: Path, split: str) -> bool:
    """Whether `path` is one of pix2pix's layouts: A/ and B/, or a split folder of side-by-side images."""
    from PIL import Image

    if (path / "A").is_dir() and (path / "B").is_dir():
        return True
    for folder in (path / split, path / "train"):
        first = next((p for p in sorted(folder.glob("*")) if p.suffix.lower() in EXTENSIONS), None)
        if first is not None:
            try:
                with Image.open(first) as im:  # the header only: its size
                    return im.width == 2 * im.height
            except Exception:  # noqa: BLE001 - unreadable: no evidence either way
                return False
    return False


def _listing(folder: Path) -> str:
    """What a folder holds, for a message: 'nothing', or its first entries (folders marked /)."""
    entries = sorted(p.name + ("/" if p.is_dir() else "") for p in folder.iterdir() if not p.name.startswith("."))
    if not entries:
        return "nothing"
    return ", ".join(entries[:NAMED]) + (f" and {len(entries) - NAMED} more" if len(entries) > NAMED else "")


def _some(names: list[str]) -> str:
    if not names:
        return "none"
    return f"{len(names)} ({', '.join(names[:NAMED])}{', ...' if len(names) > NAMED else ''})"


def _size(image) -> str:
    return f"{image.width}x{image.height}"
