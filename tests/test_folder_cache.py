"""data=folder's cache (gan_cli.data.folder_cache): decoded once, read memory-mapped, rebuilt when the folder
changes, with the streaming path's pixels, and never at the cost of a file it did not write."""

from __future__ import annotations

import errno
import itertools
import logging
import os

import numpy as np
import pytest
import torch
from PIL import Image
from torch.testing import assert_close

from gan_cli.data import folder, folder_cache
from gan_cli.data.source import LoaderData
from gan_cli.errors import UserError
from tests.helpers import TINY_MODEL, assert_resumes_bit_exact, compose_config, gan, one_line_error

SIDE = 16


def _images(root, n: int = 24, mode: str = "RGB", fmt: str = "png", size=(20, 17), start: int = 0):
    """n smooth pictures with a little noise, not square (so they are resized and cropped)."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(start)
    yy, xx = np.mgrid[:size[1], :size[0]]
    for i in range(start, start + n):
        base = (xx * (3 + i) + yy * 5 + 40 * i) % 256
        a = np.stack([base, (base + 85) % 256, 255 - base], -1) + rng.integers(0, 20, (*base.shape, 3))
        im = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "RGB")
        (im if mode == "RGB" else im.convert(mode)).save(root / f"{i:03d}.{fmt}")
    return root


def _load(root, cache_dir, channels: int = 3, num_workers: int = 0, **kw):
    return folder.load(str(root), resolution=SIDE, channels=channels, num_workers=num_workers, cache=True,
                       cache_dir=str(cache_dir), **kw)


def _streamed(root, channels: int = 3) -> torch.Tensor:
    data = folder.load(str(root), resolution=SIDE, channels=channels, num_workers=0, cache=False)
    return torch.stack([data.dataset[i][0] for i in range(len(data))])


def _caches(cache_dir) -> list:
    return sorted(p.name for p in cache_dir.iterdir())


def _no_decoding(monkeypatch):
    def fail(self, file):
        raise AssertionError(f"decoded {file} again")

    monkeypatch.setattr(folder_cache.Decoder, "pixels", fail)


# --- built once, then reused; rebuilt when the folder changes ---------------------------------------------

def test_the_cache_is_built_once_then_read_without_decoding(tmp_path, monkeypatch):
    root, cache_dir = _images(tmp_path / "imgs"), tmp_path / "cache"
    first = _load(root, cache_dir)
    assert isinstance(first, folder_cache.CachedFolder) and first.shape == (3, SIDE, SIDE) and len(first) == 24
    assert first.samples.dtype == torch.uint8
    assert [name.endswith(".u8") and name.startswith("folder-") for name in _caches(cache_dir)] == [True]
    assert _caches(root) == [f"{i:03d}.png" for i in range(24)]  # nothing written among the images
    _no_decoding(monkeypatch)
    again = _load(root, cache_dir)
    assert again.cache == first.cache
    assert torch.equal(again.samples, first.samples)
    x = next(again.batches(8, torch.device("cpu"), seed=0)).images
    assert x.shape == (8, 3, SIDE, SIDE) and x.dtype == torch.float32 and -1 <= x.min() and x.max() <= 1


def test_the_cache_is_rebuilt_when_a_file_is_added_changed_or_removed(tmp_path):
    root, cache_dir = _images(tmp_path / "imgs", 10), tmp_path / "cache"
    first = _load(root, cache_dir)
    _images(root, 1, start=10)  # added
    added = _load(root, cache_dir)
    assert len(added) == 11 and added.cache != first.cache
    assert torch.equal(added.samples[:10], first.samples)
    Image.new("RGB", (20, 17), (255, 255, 255)).save(root / "003.png")  # rewritten
    changed = _load(root, cache_dir)
    assert changed.cache not in (first.cache, added.cache)
    assert (changed.samples[3] == 255).all() and torch.equal(changed.samples[4:], added.samples[4:])
    (root / "000.png").unlink()
    removed = _load(root, cache_dir)
    assert len(removed) == 10 and torch.equal(removed.samples, changed.samples[1:])
    assert len(_caches(cache_dir)) == 4  # older caches are left for the user to delete


def test_a_file_touched_with_the_same_size_gets_a_new_key(tmp_path):
    root = _images(tmp_path / "imgs", 3)
    files = folder.image_files(str(root), SIDE, 3, 0)
    key = folder_cache.cache_key(files, root, SIDE, 3)
    assert key == folder_cache.cache_key(files, root, SIDE, 3)
    assert key != folder_cache.cache_key(files, root, SIDE + 1, 3) != folder_cache.cache_key(files, root, SIDE, 1)
    st = files[1].stat()
    os.utime(files[1], ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    assert folder_cache.cache_key(files, root, SIDE, 3) != key


def test_workers_build_the_same_cache_as_the_training_process(tmp_path):
    root = _images(tmp_path / "imgs", 150)  # three chunks of work
    alone = _load(root, tmp_path / "a", num_workers=0)
    shared = _load(root, tmp_path / "b", num_workers=2)
    assert torch.equal(alone.samples, shared.samples)
    assert alone.cache.read_bytes() == shared.cache.read_bytes()


# --- the streaming path's pixels ----------------------------------------------------------------------------

def _mixed(root):
    """PNG and JPEG in grey and RGB (torchvision's decoder), with EXIF orientation, and the pictures that
    stay with Pillow: transparency, palette, 16-bit grey, CMYK, WebP, TIFF."""
    _images(root / "png_rgb", 4)
    _images(root / "png_l", 3, mode="L")
    _images(root / "jpg_rgb", 4, fmt="jpg", size=(40, 33))
    _images(root / "jpg_l", 3, mode="L", fmt="jpg")
    rgb = Image.open(root / "png_rgb" / "000.png").convert("RGB")
    exif = rgb.getexif()
    exif[0x0112] = 6  # EXIF Orientation: turn 90 degrees clockwise to show it
    (root / "exif").mkdir()
    rgb.save(root / "exif" / "turned.png", exif=exif.tobytes())
    rgb.save(root / "exif" / "turned.jpg", exif=exif.tobytes(), quality=95)
    other = root / "pillow"
    other.mkdir()
    rgba = np.asarray(rgb.convert("RGBA")).copy()
    rgba[:, :10, 3] = 0
    Image.fromarray(rgba, "RGBA").save(other / "rgba.png")
    rgb.quantize(colors=16).save(other / "palette.png")
    rgb.quantize(colors=16).save(other / "palette_transparent.png", transparency=0)
    Image.fromarray((np.asarray(rgb.convert("L")).astype(np.uint16) * 257)).save(other / "grey16.png")
    Image.fromarray(np.asarray(rgb.convert("CMYK"))[..., :4], "CMYK").save(other / "cmyk.jpg")
    rgb.save(other / "x.webp", lossless=True)
    rgb.save(other / "x.tiff")
    return root


@pytest.mark.parametrize("channels", [1, 3])
def test_cached_pixels_are_the_streaming_paths(tmp_path, monkeypatch, channels):
    root = _mixed(tmp_path / "imgs")
    seen = set()  # the files torchvision's decoder gave pixels for
    decode = folder_cache._torchvision_decode

    def spy(file, *args):
        x = decode(file, *args)
        if x is not None:
            seen.add(file.relative_to(root).as_posix())
        return x

    monkeypatch.setattr(folder_cache, "_torchvision_decode", spy)
    cached = _load(root, tmp_path / "cache", channels)
    streamed = _streamed(root, channels)
    assert len(cached) == len(streamed) == 23
    files = [f.relative_to(root).as_posix() for f in cached.files]
    jpeg = torch.tensor([f.endswith(".jpg") and "cmyk" not in f for f in files])
    assert_close(cached.samples[~jpeg], streamed[~jpeg], rtol=0, atol=0)  # PNG, and all that Pillow decodes: exact
    diff = (cached.samples[jpeg].int() - streamed[jpeg].int()).abs()
    assert diff.float().mean() < 0.5 and diff.max() <= 3, (diff.float().mean(), diff.max())  # IDCT rounding
    # torchvision decoded the PNGs and JPEGs, grey ones, or colour ones kept in colour; Pillow the rest
    expected = [f for f in files if f.startswith(("png_l/", "jpg_l/"))
                or channels == 3 and f.startswith(("png_rgb/", "jpg_rgb/", "exif/"))]
    assert sorted(seen) == expected


# --- files that cannot be used --------------------------------------------------------------------------------

def _truncate(path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def test_broken_files_are_left_out_and_named_in_every_run(tmp_path, caplog, monkeypatch):
    root, cache_dir = _images(tmp_path / "imgs", 8), tmp_path / "cache"
    noise = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)  # incompressible
    Image.fromarray(noise).save(root / "cut.png")
    Image.fromarray(noise).save(root / "cut.jpg")
    _truncate(root / "cut.png")
    _truncate(root / "cut.jpg")
    (root / "notes.jpg").write_text("text, not a picture")
    for run in ("build", "reuse"):
        if run == "reuse":
            _no_decoding(monkeypatch)
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            data = _load(root, cache_dir)
        assert len(data) == 8 and [f.name for f in data.files] == [f"{i:03d}.png" for i in range(8)]
        said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(said) == 2, said
        assert "notes.jpg" in said[0] and "not a readable image" in said[0]
        assert "cut.png" in said[1] and "cut.jpg" in said[1] and "2 images" in said[1], said[1]
    assert torch.equal(data.samples, _streamed(_images(tmp_path / "good", 8)))


def test_a_folder_where_no_file_decodes_is_one_line(tmp_path):
    root = tmp_path / "imgs"
    root.mkdir()
    for i in range(3):
        noise = np.random.default_rng(i).integers(0, 256, (64, 64), dtype=np.uint8)  # incompressible
        Image.fromarray(noise).save(root / f"cut_{i}.png")
        _truncate(root / f"cut_{i}.png")
    with pytest.raises(UserError, match=r"no image decodes: .*cut_0\.png") as e:
        _load(root, tmp_path / "cache")
    assert "\n" not in str(e.value)
    assert _caches(tmp_path / "cache") == []  # no temporary file left
    (root / "a.jpg").write_text("text")
    for f in root.glob("cut_*"):
        f.unlink()
    with pytest.raises(UserError, match="holds no readable image"):
        _load(root, tmp_path / "cache")


# --- the cache's files: ours only, written atomically -----------------------------------------------------------

@pytest.mark.parametrize("kind", ["foreign", "damaged"])
def test_a_file_at_the_caches_name_that_is_not_a_cache_is_left_in_place(tmp_path, caplog, kind):
    root, cache_dir = _images(tmp_path / "imgs", 6), tmp_path / "cache"
    key = folder_cache.cache_key(folder.image_files(str(root), SIDE, 3, 0), root, SIDE, 3)
    squatter = cache_dir / f"folder-{key}.u8"
    cache_dir.mkdir()
    if kind == "foreign":
        squatter.write_bytes(b"someone else's data")
    else:  # a cache cut short, as a full disk or a killed copy leaves one
        squatter.write_bytes(_load(root, tmp_path / "elsewhere").cache.read_bytes()[:-100])
    before = squatter.read_bytes()
    with caplog.at_level(logging.WARNING):
        data = _load(root, cache_dir)
    assert squatter.read_bytes() == before  # neither deleted nor overwritten
    assert data.cache == cache_dir / f"folder-{key}-1.u8" and len(data) == 6
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(said) == 1 and str(squatter) in said[0] and "left in place" in said[0], said
    assert _load(root, cache_dir).cache == data.cache  # found again under its own name


def test_an_interrupted_build_leaves_no_file(tmp_path, monkeypatch):
    root, cache_dir = _images(tmp_path / "imgs", 100), tmp_path / "cache"
    pixels = folder_cache.Decoder.pixels
    calls = itertools.count()

    def interrupted(self, file):
        if next(calls) == 70:  # in the second chunk: the first is already written
            raise KeyboardInterrupt
        return pixels(self, file)

    monkeypatch.setattr(folder_cache.Decoder, "pixels", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _load(root, cache_dir)
    assert _caches(cache_dir) == []


def test_a_full_disk_is_one_line_and_leaves_no_file(tmp_path, monkeypatch):
    root, cache_dir = _images(tmp_path / "imgs", 6), tmp_path / "cache"

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(folder_cache.os, "fsync", full)
    with pytest.raises(UserError, match="No space left on device") as e:
        _load(root, cache_dir)
    assert "\n" not in str(e.value) and "data.cache=false" in str(e.value)
    assert _caches(cache_dir) == []


def test_too_little_disk_is_refused_before_decoding(tmp_path, monkeypatch):
    root = _images(tmp_path / "imgs", 6)
    monkeypatch.setattr("gan_cli.limits.free_disk", lambda path: 1000)
    _no_decoding(monkeypatch)
    with pytest.raises(UserError, match="needs about .* on disk") as e:
        _load(root, tmp_path / "cache")
    assert "data.cache_dir" in str(e.value)


def test_a_cache_dir_inside_the_folder_or_not_a_folder_is_one_line(tmp_path):
    root = _images(tmp_path / "imgs", 4)
    with pytest.raises(UserError, match="lies inside data.root"):
        _load(root, root / "cache")
    (tmp_path / "file").write_text("a file, not a folder")
    with pytest.raises(UserError, match="data.cache_dir=.* cannot be made"):
        _load(root, tmp_path / "file" / "cache")
    assert _caches(root) == [f"{i:03d}.png" for i in range(4)]


# --- data.cache=false, and how training reads the cache ---------------------------------------------------------------

def test_cache_false_streams_as_before(tmp_path):
    root = _images(tmp_path / "imgs", 4)
    data = folder.load(str(root), resolution=SIDE, num_workers=0, cache=False, cache_dir=str(tmp_path / "cache"))
    assert type(data) is LoaderData and isinstance(data.dataset, folder.ImageFiles)
    assert not (tmp_path / "cache").exists()


def test_batches_resume_where_they_stopped(tmp_path):
    data = _load(_images(tmp_path / "imgs", 20), tmp_path / "cache")
    straight = list(itertools.islice(data.batches(4, torch.device("cpu"), seed=3), 12))  # two epochs and more
    resumed = list(itertools.islice(data.batches(4, torch.device("cpu"), seed=3, start=7), 5))
    for a, b in zip(straight[7:], resumed):
        assert torch.equal(a.images, b.images)


def test_a_cache_too_large_for_the_gpu_stays_on_the_host(tmp_path, monkeypatch):
    data = _load(_images(tmp_path / "imgs", 4), tmp_path / "cache")
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (data.samples.nbytes, 10**12))
    assert data.held_on(torch.device("cuda")) is data.samples  # no copy to the GPU attempted


def test_the_config_puts_caches_under_gan_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_CACHE_DIR", str(tmp_path / "c"))
    data = compose_config(overrides=["data=folder", f"data.root={tmp_path}"]).data
    assert data.cache is True and data.cache_dir == f"{tmp_path / 'c'}/folders"
    monkeypatch.delenv("GAN_CACHE_DIR")
    data = compose_config(overrides=["data=folder", f"data.root={tmp_path}"]).data
    assert data.cache_dir == "~/.cache/gan-cli/folders"


# --- the real command -----------------------------------------------------------------------------------------------

def test_training_builds_the_cache_once_and_resumes_bit_exact(tmp_path):
    root = _images(tmp_path / "imgs", 40, mode="L")
    cache_dir = tmp_path / "cache"
    args = ["data=folder", f"data.root={root}", f"data.resolution={SIDE}", "data.channels=1", "data.num_workers=0",
            f"data.cache_dir={cache_dir}", *TINY_MODEL, "train.steps=8"]
    straight = tmp_path / "straight"
    proc = gan("train", *args, f"hydra.run.dir={straight}", cwd=tmp_path, check=True)
    assert (straight / "checkpoints" / "last.pt").is_file()
    assert len(_caches(cache_dir)) == 1 and "decoded 40 images" in proc.stdout + proc.stderr
    assert_resumes_bit_exact(straight, tmp_path, args, stop=4, steps=8)  # two more runs, from the same cache
    assert len(_caches(cache_dir)) == 1


def test_an_unusable_cache_dir_is_one_line_from_the_command(tmp_path):
    root = _images(tmp_path / "imgs", 8, mode="L")
    proc = gan("train", "data=folder", f"data.root={root}", f"data.cache_dir={root}/c", *TINY_MODEL,
               f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    one_line_error(proc, "data.cache_dir", "inside data.root")
