"""Any directory of images (searched recursively), resized and centre-cropped to a square side.

Every picture Pillow can open becomes 8-bit grey (L) or RGB pixels, whatever it was stored as:
- 16-bit grey (modes I;16, I;16B, I;16L, and I, read as 0..65535) is scaled down to 8 bits (value / 257,
  rounded), where Pillow's own conversion would clip everything above 255 to white;
- 32-bit float (mode F) is read as 0..1 when all its values lie there, else as 0..255 (see `_wide_to_l`);
- transparency is composited onto black: what an RGBA, LA, PA, RGBa or La picture, or a palette, grey or
  RGB one with a transparent colour, hides under alpha 0 never reaches training;
- palette (P), CMYK, YCbCr, HSV and bilevel pictures go through Pillow's own conversion; LAB, which Pillow
  cannot convert by itself, through its colour management (LAB -> sRGB);
- a photo's EXIF orientation is applied, so a portrait taken on a phone stands upright.

With data.cache=true (the config's default) every image is decoded once into a memory-mapped uint8 array
under data.cache_dir, which training reads as it reads data=mnist: see folder_cache. The pixels are the
same; what this module says of files that cannot be used holds for the streaming path (data.cache=false),
while the cache leaves such files out, naming them.

Files that cannot be used are skipped with a warning that names them, rather than stopping the run: one
bad file among thousands (an interrupted download, a stray text file) should not end a long training
run, and the warning still tells the user which file to fix.
- When the folder is loaded, every file's header is read (Image.open without decoding the pixels: about
  60 microseconds a file, 10 s for 200k images). Files that are not images are left out with one warning
  that counts them and names the first few; a folder with no image at all is a UserError naming it.
- A file whose header reads but whose pixels do not (a truncated PNG or JPEG) is found only when training
  decodes it. The warning names it, another file of the folder takes its place so batches keep their size
  (BatchNorm wants equal batches), and it is not tried again. Should it and the files tried in its place
  all fail, the UserError names it.
"""

from __future__ import annotations

import functools
import logging
import math
from pathlib import Path

import torch

from gan_cli.data.source import LoaderData, TensorData
from gan_cli.errors import UserError, first_line

log = logging.getLogger(__name__)

EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
NAMED = 5  # files a warning names before it only counts them
STAND_INS = 10  # files tried in place of one that does not decode before training stops


class ImageFiles(torch.utils.data.Dataset):
    def __init__(self, files: list[Path], resolution: int, channels: int):
        from torchvision.transforms import v2

        self.files = files
        self.channels = channels
        self.transform = v2.Compose([v2.PILToTensor(), v2.Resize(resolution, antialias=True),
                                     v2.CenterCrop(resolution)])
        # Files found not to decode, in shared memory: the DataLoader's workers inherit it, so a file one
        # worker found broken is skipped by every worker in every later epoch, with no second warning.
        self.broken = torch.zeros(len(files), dtype=torch.bool).share_memory_()
        # Stand-ins are taken a stride apart, coprime to the count so the walk reaches every file: spread
        # over the folder, they do not all come from the subfolder that a bad copy may have damaged whole.
        n = len(files)
        self.stride = max(1, round(n * 0.618))
        while math.gcd(self.stride, n) != 1:
            self.stride += 1

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        return self.decoded(i)[0], 0  # unlabelled

    def decoded(self, i: int) -> tuple[torch.Tensor, int]:
        """File i's pixels, uint8 (C, H, W), and the index of the file they came from: i, or the stand-in's
        when file i does not decode (data=attribute_folder reads that file's attributes with its pixels)."""
        n, stand_ins, reason = len(self.files), 0, "found broken earlier"
        for k in range(n):
            j = (i + k * self.stride) % n
            if self.broken[j]:
                continue
            try:
                return self._read(j), j
            except Exception as e:  # noqa: BLE001 - Pillow reports damaged data as OSError, SyntaxError,
                # struct.error, ValueError...: all mean this file cannot be used; the warning names the error
                self.broken[j] = True
                log.warning(f"{self.files[j]} does not decode ({type(e).__name__}: {first_line(e)}); another "
                            f"image of data.root takes its place in each batch: remove or replace the file")
                if j == i:
                    reason = f"{type(e).__name__}: {first_line(e)}"
                else:
                    stand_ins += 1
                if stand_ins == STAND_INS:
                    break
        tried = f"nor do the {stand_ins} files tried in its place" if stand_ins else "and no other file does"
        raise UserError(f"{self.files[i]} does not decode ({reason}), {tried}; check the images under data.root")

    def _read(self, j: int):
        from PIL import Image

        with Image.open(self.files[j]) as im:
            return self.transform(decode(im, self.channels))


def decode(im, channels: int):
    """A picture as Pillow opened it -> 8-bit L (channels=1) or RGB (channels=3), as the module says:
    16-bit and float scaled, transparency composited onto black, EXIF orientation applied."""
    from PIL import Image, ImageOps

    ImageOps.exif_transpose(im, in_place=True)  # in place: no copy of a picture that needs no turn
    if im.mode == "I" or im.mode.startswith("I;16") or im.mode == "F":
        im = _wide_to_l(im)
    if im.mode in ("RGBa", "La"):  # colours premultiplied by alpha: they already are the picture over black
        im = Image.merge(im.mode[0] if im.mode == "La" else "RGB", im.split()[:-1])
    elif im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info:
        black = Image.new("RGBA", im.size, (0, 0, 0, 255))
        im = Image.alpha_composite(black, im.convert("RGBA")).convert("RGB")
    elif im.mode == "LAB":
        from PIL import ImageCms

        im = ImageCms.applyTransform(im, _lab_to_srgb())
    return im.convert({1: "L", 3: "RGB"}[channels])


def _wide_to_l(im):
    """16- and 32-bit grey -> 8-bit L. Integers (I;16*, and I, which Pillow also gives 16-bit files) are
    0..65535: value / 257 rounded maps 65535 to 255 exactly; values outside are clipped. Floats have no
    single convention: 0..1 (float TIFFs from image editors, numpy's) when every value lies within it,
    else 0..255 (what Pillow's own convert("F") makes of an 8-bit picture), clipped; NaN reads as 0."""
    import numpy as np
    from PIL import Image

    a = np.asarray(im)
    if im.mode == "F":
        a = np.nan_to_num(a.astype(np.float64), nan=0.0, posinf=255.0, neginf=0.0)
        a = a * 255 if a.min() >= 0 and a.max() <= 1 else a
    else:
        a = a.astype(np.float64) / 257
    return Image.fromarray(np.clip(np.round(a), 0, 255).astype(np.uint8))


@functools.cache
def _lab_to_srgb():
    from PIL import ImageCms

    return ImageCms.buildTransform(ImageCms.createProfile("LAB"), ImageCms.createProfile("sRGB"), "LAB", "RGB")


def load(root: str, resolution: int = 64, channels: int = 3, num_workers: int = 2, cache: bool = False,
         cache_dir: str | None = None) -> LoaderData | TensorData:
    """cache: decode every image once into one array under cache_dir and train from it (data.cache, true in
    conf/data/folder.yaml; see folder_cache), else stream: decode each image again in every epoch, in
    num_workers DataLoader processes (this function's default, as before the cache)."""
    files = image_files(root, resolution, channels, num_workers)
    if cache:
        from gan_cli.data import folder_cache

        return folder_cache.load(files, root, resolution, channels, num_workers, cache_dir)
    return LoaderData("folder", ImageFiles(readable(files, root), resolution, channels),
                      (channels, resolution, resolution), num_workers=num_workers)


def image_files(root: str, resolution: int, channels: int, num_workers: int, data: str = "folder") -> list[Path]:
    """The image files under `root` by extension, sorted (their headers unread), once the settings that
    every folder loader shares are checked."""
    path = Path(root).expanduser()
    if not path.is_dir():
        raise UserError(f"data.root={root} is not a directory; point data={data} at a folder of images")
    if channels not in (1, 3):
        raise UserError(f"data.channels={channels}: choose 1 (grey) or 3 (RGB)")
    if resolution <= 0:
        raise UserError(f"data.resolution={resolution} must be a positive number of pixels")
    if num_workers < 0:
        raise UserError(f"data.num_workers={num_workers} cannot be negative: use 0 to decode in the training "
                        f"process, or a number of worker processes")
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file())
    if not files:
        raise UserError(f"data.root={root} holds no images ({', '.join(sorted(EXTENSIONS))}); put them there, or "
                        f"point data.root at the folder that holds them")
    return files


def readable(files: list[Path], root: str) -> list[Path]:
    """The files whose header Pillow can read; the others are named in one warning."""
    from PIL import Image

    kept, bad = [], []
    for file in files:
        try:
            with Image.open(file):
                kept.append(file)
        except Exception as e:  # noqa: BLE001 - whatever Pillow raises, the file is not an image it can open
            bad.append((file, f"{type(e).__name__}: {first_line(e)}"))
    if bad:
        warn_unreadable(bad, root, len(kept))
    return kept


def warn_unreadable(bad: list[tuple[Path, str]], root: str, kept: int = 1) -> None:
    """One warning naming the files (file, reason) that are not readable images; when no image is left
    (kept=0), the UserError saying so."""
    if not kept:
        file, reason = bad[0]
        raise UserError(f"data.root={root} holds no readable image: {file} is not a readable image ({reason})"
                        + (f", nor are the other {len(bad) - 1} files" if len(bad) > 1 else "")
                        + "; add images Pillow can open")
    more = f" and {len(bad) - NAMED} more" if len(bad) > NAMED else ""
    log.warning(f"data.root={root}: skipping {len(bad)} file{'s' if len(bad) > 1 else ''} that "
                f"{'are' if len(bad) > 1 else 'is'} not a readable image: "
                f"{', '.join(str(f) for f, _ in bad[:NAMED])}{more} (the first: {bad[0][1]})")
