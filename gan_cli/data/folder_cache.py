"""data=folder's cache (data.cache=true): every image decoded once into one uint8 array on disk, which
training then reads memory-mapped, as data=mnist reads its tensor, so a step never waits for a decoder.

Opening, decoding, resizing and cropping a small PNG or JPEG costs about a millisecond, as much as a
64 px DCGAN step takes per image on two cores: streamed, the decoders would hold training back every
epoch. Here the first run over a folder decodes each file once, in data.num_workers processes (a
progress bar on a terminal), into `<data.cache_dir>/folder-<key>.u8`; every epoch, and every later run
over the same folder, reads that file.

The key is a sha256 over the cache's format version, data.resolution, data.channels and the folder's
sorted image paths (relative to data.root) with each file's size and modification time (ns). A file
added, removed or rewritten gives another key, hence a fresh cache; moving the folder whole keeps it.
An older cache stays where it is (the log says how many there are and how large): the cache folder is
the user's to clear.

Pixels are those of the streaming path (folder.ImageFiles): the same resize and centre crop of the same
decoded picture. PNG and JPEG files in 8-bit grey or RGB without transparency (nearly every data set) are
decoded by torchvision.io.decode_image (libpng, libjpeg-turbo; EXIF orientation applied), which gives
Pillow's pixels exactly for PNG and within a level or two for JPEG, whose decoders may round the inverse DCT
differently. Everything else (16-bit, float, transparency, palettes, CMYK, LAB, GIF, WebP, TIFF, BMP, and
grey made from colour, where Pillow's weights are the rule) goes through folder.decode, as when streamed;
so does any file torchvision's decoder refuses. torchvision 0.29 deprecates its decoders for TorchCodec:
should they go, folder.decode takes every file.
Files that are not images, or whose pixels do not decode, are left out of the array, named in one warning
each time the folder is loaded (the streaming path instead puts a stand-in in their place when training
meets them).

The file: MAGIC, a JSON header (format version, key, shape, the folder it was made from) padded to HEADER
bytes, the pixels (N, C, H, W) in row-major order, then a JSON trailer naming the files left out. A file
is taken for a cache only when its name is folder-<key>[-k].u8, its header reads, its version and key
match and its size is what the header says; any other file at such a name (damaged, or another program's)
is left untouched with a warning, and the cache is written under the next free name. It is written to a
temporary file beside it, flushed to the disk, then linked to a free name: a reader sees a whole cache or
none, and no existing file is ever replaced (os.link refuses a name that is taken, where os.replace would
overwrite it).
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from gan_cli import files as atomic
from gan_cli.data import folder
from gan_cli.data.source import TensorData
from gan_cli.errors import UserError, first_line
from gan_cli.limits import check_disk, human

log = logging.getLogger(__name__)

VERSION = 1  # of the file format and of the decoding: a change to either must give new keys
MAGIC = b"gan-cli folder cache\n"
HEADER = 4096  # bytes before the pixels: one page, so the array starts page-aligned
CHUNK = 64  # files a worker decodes per task: one tensor crosses the process boundary per chunk, not per file
NAMES = 100  # folder-<key>.u8, folder-<key>-1.u8, ...: names tried before giving up
UNREADABLE, BROKEN = "unreadable", "broken"  # why a file is left out: its header does not read; its pixels do not
FIX = ("set data.cache_dir to a writable folder with room, or data.cache=false to decode from data.root in every "
       "epoch instead")


def default_dir() -> str:
    """Where caches go when data.cache_dir is not given: as conf/data/folder.yaml says."""
    return str(Path(os.environ.get("GAN_CACHE_DIR", "~/.cache/gan-cli")) / "folders")


def load(files: list[Path], root: str, resolution: int, channels: int, num_workers: int,
         cache_dir: str | None = None) -> CachedFolder:
    """The images of `files` (folder.image_files of data.root) from their cache, built first if there is none."""
    path = Path(root).expanduser()
    directory = _directory(cache_dir or default_dir(), path)
    key = cache_key(files, path, resolution, channels)
    found = _find(directory, key, (channels, resolution, resolution))
    if found is None:
        found = _build(files, path, root, directory, key, resolution, channels, num_workers)
    else:
        log.info("data=folder: %d images of data.root=%s from the cache %s", found.header["shape"][0], root,
                 found.path)
    _warn_left_out(found.left_out, path, root)
    samples = torch.from_numpy(np.memmap(found.path, np.uint8, "c", HEADER, tuple(found.header["shape"])))
    names = {p.as_posix() for p, _, _ in found.left_out}
    kept = [f for f in files if _relative(f, path).as_posix() not in names]
    return CachedFolder(samples, kept, found.path)


class CachedFolder(TensorData):
    """data=folder read from its cache: TensorData over the memory-mapped array. files[i] is the file of
    sample i; cache is the cache's path."""

    def __init__(self, samples: Tensor, files: list[Path], cache: Path):
        super().__init__("folder", samples)
        self.files, self.cache = files, cache

    def held_on(self, device: torch.device) -> Tensor:
        """On a GPU when the array takes at most half its free memory (60,000 RGB images of 64 px: 0.7 GB);
        else on the host, memory-mapped, each batch gathered there and copied over."""
        if device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(device)
            if self.samples.nbytes > free // 2:
                log.info("data=folder: the cache (%s) is larger than half the GPU's free memory (%s): batches are "
                         "gathered on the host", human(self.samples.nbytes), human(free))
                return self.samples
        return self.samples.to(device)


# --- the key and the cache's file --------------------------------------------------------------------------

def cache_key(files: list[Path], path: Path, resolution: int, channels: int) -> str:
    """sha256 over the format version, the side, the channels, and each file's relative path, size and
    modification time (ns), in the order of `files` (sorted)."""
    h = hashlib.sha256(f"gan-cli folder cache {VERSION}\n{resolution}\n{channels}\n".encode())
    for f in files:
        st = f.stat()
        line = f"{_relative(f, path).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n"
        h.update(line.encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def _relative(file: Path, path: Path) -> Path:
    text, prefix = str(file), f"{path}{os.sep}"
    return Path(text[len(prefix):]) if text.startswith(prefix) else file.relative_to(path)  # slicing: 60k files fast


class Found:
    """A valid cache: its path, its header, and the files it left out ((relative path, why, reason))."""

    def __init__(self, path: Path, header: dict, left_out: list[tuple[Path, str, str]]):
        self.path, self.header, self.left_out = path, header, left_out


def _names(directory: Path, key: str):
    yield directory / f"folder-{key}.u8"
    for k in range(1, NAMES):
        yield directory / f"folder-{key}-{k}.u8"


def _find(directory: Path, key: str, shape: tuple[int, int, int]) -> Found | None:
    """The first valid cache of `key`; a file at one of its names that is not one is named in a warning
    and left in place."""
    for name in _names(directory, key):
        if not name.exists():
            return None
        found, problem = read_cache(name, key, shape)
        if found is not None:
            return found
        log.warning(f"{name} is not a cache of gan-cli's ({problem}); it is left in place and the cache goes under "
                    f"another name: delete it yourself if it is not needed")
    return None


def read_cache(name: Path, key: str | None = None, shape: tuple[int, int, int] | None = None
               ) -> tuple[Found | None, str]:
    """(the cache at `name`, "") when its header reads and matches `key` and `shape` (None: any), else
    (None, what is wrong)."""
    try:
        with open(name, "rb") as f:
            head = f.read(HEADER)
            size = os.fstat(f.fileno()).st_size
            if not head.startswith(MAGIC) or len(head) < HEADER:
                return None, "it does not start with a cache's header"
            header = json.loads(head[len(MAGIC):].decode())
            if header.get("version") != VERSION:
                return None, f"format version {header.get('version')}, not {VERSION}"
            if key is not None and header.get("key") != key:
                return None, "its key is another folder's"
            n, *rest = header["shape"]
            if n < 1 or len(rest) != 3 or (shape is not None and tuple(rest) != shape):
                return None, f"its shape {header['shape']} is not that of this folder's images"
            pixels = n * int(np.prod(rest))
            if size != HEADER + pixels + header["trailer"]:
                return None, f"it holds {size} bytes where its header says {HEADER + pixels + header['trailer']}"
            f.seek(HEADER + pixels)
            left_out = [(Path(p), why, reason) for p, why, reason in json.loads(f.read(header["trailer"]).decode())]
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        return None, f"{type(e).__name__}: {first_line(e)}"
    return Found(name, header, left_out), ""


def _directory(cache_dir: str, path: Path) -> Path:
    """data.cache_dir, made, and refused inside data.root: the user's image folder is never written to."""
    directory = Path(cache_dir).expanduser().absolute()
    inside = directory.resolve() == path.resolve() or path.resolve() in directory.resolve().parents
    if inside:
        raise UserError(f"data.cache_dir={cache_dir} lies inside data.root={path}: the cache is never written among "
                        f"the images; point data.cache_dir elsewhere")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"data.cache_dir={cache_dir} cannot be made ({e.strerror or first_line(e)}): {FIX}") from None
    return directory


# --- building it -----------------------------------------------------------------------------------------------

def _build(files: list[Path], path: Path, root: str, directory: Path, key: str, resolution: int, channels: int,
           num_workers: int) -> Found:
    """Decode every file once into a new cache; returns it."""
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    image = channels * resolution * resolution
    check_disk(HEADER + len(files) * image, directory,
               f"data=folder's cache of {len(files)} images of {channels}x{resolution}x{resolution} needs", FIX)
    try:
        tmp = atomic.temp_beside(directory / f"folder-{key}.u8")
    except OSError as e:
        raise UserError(f"data.cache_dir={directory} is not writable ({e.strerror or first_line(e)}): {FIX}") from None
    # its own generator: the DataLoader draws its workers' seed from it, where it would otherwise draw from
    # torch's global one, and a run that builds the cache would start its networks from other weights than
    # one that finds it (resumes are compared bit for bit)
    loader = torch.utils.data.DataLoader(Decoder(files, resolution, channels), batch_size=None,
                                         num_workers=num_workers, generator=torch.Generator())
    left_out, n, started = [], 0, time.monotonic()
    try:
        with open(tmp, "r+b") as f:
            f.seek(HEADER)
            # disable=None: a bar on a terminal, none in pipes and log files (as training's)
            with logging_redirect_tqdm(), tqdm(total=len(files), unit="img", file=sys.stderr, disable=None,
                                               leave=False, mininterval=1.0, dynamic_ncols=True,
                                               desc="data=folder: decoding into the cache") as bar:
                for first, pixels, problems in loader:
                    f.write(pixels.numpy().data)
                    n += len(pixels)
                    left_out += [(_relative(files[first + j], path), why, reason) for j, why, reason in problems]
                    bar.update(len(pixels) + len(problems))
            if n == 0:
                _nothing_decodes(left_out, path, root)
            trailer = json.dumps([(p.as_posix(), why, reason) for p, why, reason in left_out]).encode()
            f.write(trailer)
            header = {"version": VERSION, "key": key, "shape": [n, channels, resolution, resolution],
                      "trailer": len(trailer), "files": len(files), "root": str(path.absolute())[:2000]}
            f.seek(0)
            f.write((MAGIC + json.dumps(header).encode()).ljust(HEADER, b" "))
            f.flush()
            os.fsync(f.fileno())
        found = _publish(tmp, directory, key, header, left_out)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        reason = e.strerror or first_line(e)
        if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise atomic.WriteError(f"could not write data=folder's cache in {directory} ({reason}); no partial file "
                                    f"is left: {FIX}") from None
        raise UserError(f"could not write data=folder's cache in {directory} ({reason}): {FIX}") from None
    except BaseException:  # Ctrl-C, SIGTERM, a UserError: no partial file is left behind
        tmp.unlink(missing_ok=True)
        raise
    seconds = time.monotonic() - started
    log.info("data=folder: decoded %d images of data.root=%s in %.1f s (%.0f img/s) into the cache %s (%s)", n, root,
             seconds, (n + len(left_out)) / max(seconds, 1e-9), found.path, human(found.path.stat().st_size))
    _mention_older(directory, found, path)
    return found


def _publish(tmp: Path, directory: Path, key: str, header: dict, left_out: list) -> Found:
    """Give the finished temporary file the first free cache name; a valid cache of the same key that
    another run published meanwhile is used instead, and the temporary file removed."""
    shape = tuple(header["shape"][1:])
    for name in _names(directory, key):
        try:
            os.link(tmp, name)
        except FileExistsError:
            found, _ = read_cache(name, key, shape)
            if found is not None:  # another run over the same folder finished first
                tmp.unlink()
                return found
            continue
        except OSError as e:  # a file system without hard links (FAT, some network mounts)
            if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK, errno.ENOSYS):
                raise
            if name.exists():
                continue
            os.replace(tmp, name)
            return Found(name, header, left_out)
        tmp.unlink()
        return Found(name, header, left_out)
    raise UserError(f"{directory} holds {NAMES} files named as caches of data.root that are not: clear them, or {FIX}")


def _mention_older(directory: Path, found: Found, path: Path) -> None:
    """Log the other caches of the same folder, which no run deletes."""
    older = [name for name in directory.glob("folder-*.u8") if name != found.path
             and (c := read_cache(name)[0]) is not None and c.header.get("root") == found.header["root"]]
    if older:
        size = sum(name.stat().st_size for name in older)
        log.info("data=folder: %d other cache%s of %s (made before its files changed, or at another data.resolution "
                 "or data.channels) remain in %s, %s in all: delete those no run needs", len(older),
                 "s" if len(older) > 1 else "", path, directory, human(size))


def _warn_left_out(left_out: list[tuple[Path, str, str]], path: Path, root: str) -> None:
    unreadable = [(path / p, reason) for p, why, reason in left_out if why == UNREADABLE]
    if unreadable:
        folder.warn_unreadable(unreadable, root)
    broken = [(path / p, reason) for p, why, reason in left_out if why == BROKEN]
    if broken:
        more = f" and {len(broken) - folder.NAMED} more" if len(broken) > folder.NAMED else ""
        log.warning(f"data.root={root}: {len(broken)} image{'s' if len(broken) > 1 else ''} whose pixels do not decode "
                    f"{'are' if len(broken) > 1 else 'is'} left out of the cache: "
                    f"{', '.join(str(f) for f, _ in broken[:folder.NAMED])}{more} (the first: {broken[0][1]}); "
                    f"remove or replace {'them' if len(broken) > 1 else 'it'}")


def _nothing_decodes(left_out: list[tuple[Path, str, str]], path: Path, root: str) -> None:
    unreadable = [(path / p, reason) for p, why, reason in left_out if why == UNREADABLE]
    if len(unreadable) == len(left_out):
        folder.warn_unreadable(unreadable, root, kept=0)  # raises its UserError
    p, _, reason = next(item for item in left_out if item[1] == BROKEN)
    others = f", nor do the other {len(left_out) - 1} files" if len(left_out) > 1 else ""
    raise UserError(f"data.root={root}: no image decodes: {path / p} does not ({reason}){others}; check the images "
                    f"under data.root")


class Decoder(folder.ImageFiles):
    """The first pass: item c is chunk c of the files, decoded as (index of its first file, uint8 (n, C, H, W)
    of the files that decode, [(offset in the chunk, UNREADABLE or BROKEN, reason)] of those that do not)."""

    def __init__(self, files: list[Path], resolution: int, channels: int):
        super().__init__(files, resolution, channels)
        self.side = resolution

    def __len__(self) -> int:
        return -(-len(self.files) // CHUNK)

    def __getitem__(self, c: int):
        first = c * CHUNK
        pixels, problems = [], []
        for j, file in enumerate(self.files[first:first + CHUNK]):
            x, problem = self.pixels(file)
            if x is None:
                problems.append((j, *problem))
            else:
                pixels.append(x)
        out = torch.stack(pixels) if pixels else torch.empty(0, self.channels, self.side, self.side, dtype=torch.uint8)
        return first, out, problems

    def pixels(self, file: Path) -> tuple[Tensor | None, tuple[str, str] | None]:
        """One file's uint8 (C, H, W), as ImageFiles reads it, or (None, (why, reason))."""
        from PIL import Image

        try:
            im = Image.open(file)
        except Exception as e:  # noqa: BLE001 - whatever Pillow raises, the file is not an image it can open
            return None, (UNREADABLE, f"{type(e).__name__}: {first_line(e)}")
        with im:
            try:
                if fast(im, self.channels):
                    x = _torchvision_decode(file, 1 if im.mode == "L" else 3, self.channels)
                    if x is not None:
                        return self.transform(x), None
                return self.transform(folder.decode(im, self.channels)), None
            except Exception as e:  # noqa: BLE001 - as ImageFiles.decoded: any error means the file cannot be used
                return None, (BROKEN, f"{type(e).__name__}: {first_line(e)}")


def fast(im, channels: int) -> bool:
    """Whether torchvision's decoder gives this picture (as Pillow opened it, header only) folder.decode's
    pixels: an 8-bit grey or RGB PNG or JPEG without transparency, grey kept grey or made RGB (colour made
    grey stays with Pillow, whose weights are the rule)."""
    return (im.format in ("PNG", "JPEG") and "transparency" not in im.info
            and (im.mode == "L" or (im.mode == "RGB" and channels == 3)))


def _torchvision_decode(file: Path, stored: int, channels: int) -> Tensor | None:
    """uint8 (channels, H, W) by torchvision.io.decode_image, EXIF orientation applied, of a file Pillow
    opened with `stored` channels; None where the decoder is not available, or gives what folder.decode
    would not (a 16-bit PNG, which Pillow reads as 8-bit RGB)."""
    try:
        from torchvision.io import ImageReadMode, decode_image
    except ImportError:  # a torchvision without its decoders
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torchvision 0.29 points to TorchCodec on every call
        try:
            x = decode_image(str(file), ImageReadMode.UNCHANGED, apply_exif_orientation=True)
        except (RuntimeError, ValueError):  # refused or damaged: Pillow's path decides, and names the error
            return None
    if x.dtype != torch.uint8 or x.shape[0] != stored:
        return None
    return x.expand(channels, -1, -1).contiguous() if x.shape[0] == 1 else x
