"""Any directory of images (searched recursively), resized and centre-cropped to a square side."""

from __future__ import annotations

from pathlib import Path

import torch

from gan_cli.data.source import LoaderData
from gan_cli.errors import UserError

EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


class ImageFiles(torch.utils.data.Dataset):
    def __init__(self, files: list[Path], resolution: int, channels: int):
        from torchvision.transforms import v2

        self.files = files
        self.mode = {1: "L", 3: "RGB"}[channels]
        self.transform = v2.Compose([v2.PILToTensor(), v2.Resize(resolution, antialias=True),
                                     v2.CenterCrop(resolution)])

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        from PIL import Image

        with Image.open(self.files[i]) as im:
            return self.transform(im.convert(self.mode)), 0  # uint8 (C, H, W); unlabelled


def load(root: str, resolution: int = 64, channels: int = 3, num_workers: int = 2) -> LoaderData:
    path = Path(root).expanduser()
    if not path.is_dir():
        raise UserError(f"data.root={root} is not a directory; point data=folder at a folder of images")
    if channels not in (1, 3):
        raise UserError(f"data.channels={channels}: choose 1 (grey) or 3 (RGB)")
    if resolution <= 0:
        raise UserError(f"data.resolution={resolution} must be a positive number of pixels")
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file())
    if not files:
        raise UserError(f"data.root={root} holds no images ({', '.join(sorted(EXTENSIONS))})")
    _check_readable(files[0])
    return LoaderData("folder", ImageFiles(files, resolution, channels), (channels, resolution, resolution),
                      num_workers=num_workers)


def _check_readable(file: Path) -> None:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(file) as im:
            im.verify()
    except (OSError, UnidentifiedImageError) as e:
        raise UserError(f"{file} is not a readable image ({e}); remove it from data.root") from None
