"""data=folder decodes every picture Pillow can open into 8-bit pixels, and names the files it cannot use.

Each picture is built here with Pillow and read back through gan_cli.data.folder, as training reads it."""

from __future__ import annotations

import itertools
import logging

import numpy as np
import pytest
import torch
from PIL import Image
from torch.testing import assert_close

from gan_cli.data import folder
from gan_cli.errors import UserError
from tests.helpers import TINY_MODEL, gan_here, one_line_error

SIDE = 16  # every picture here is already SIDE x SIDE, so resizing leaves its pixels as they are


def _read(path, channels: int = 1) -> torch.Tensor:
    """The first (only) image of a folder as training sees it: uint8 (C, H, W)."""
    data = folder.load(str(path), resolution=SIDE, channels=channels, num_workers=0)
    x, _ = data.dataset[0]
    assert x.dtype == torch.uint8 and x.shape == (channels, SIDE, SIDE)
    return x


def _pixels(im: Image.Image, channels: int) -> torch.Tensor:
    """What Pillow itself makes of a picture, as uint8 (C, H, W)."""
    a = np.asarray(im.convert({1: "L", 3: "RGB"}[channels]))
    return torch.from_numpy(a.copy()).reshape(SIDE, SIDE, channels).permute(2, 0, 1)


def _good_images(root, n: int, mode: str = "L"):
    root.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        shape = (SIDE, SIDE) if mode == "L" else (SIDE, SIDE, 3)
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(root / f"good_{i:02d}.png")
    return root


def _truncated_png(path) -> None:
    """A PNG whose header is whole and whose pixel data stops half way: what an interrupted copy leaves."""
    noise = np.random.default_rng(1).integers(0, 256, (64, 64), dtype=np.uint8)  # incompressible
    Image.fromarray(noise, "L").save(path)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


# --- bit depths ---------------------------------------------------------------------------------------

GRADIENT = np.linspace(0, 65535, SIDE * SIDE).round().astype(np.uint16).reshape(SIDE, SIDE)


@pytest.mark.parametrize("fmt,mode", [("png", "I;16"), ("tiff", "I;16B"), ("tiff", "I")])
@pytest.mark.parametrize("channels", [1, 3])
def test_16_bit_grey_is_scaled_to_8_bits_not_saturated(tmp_path, fmt, mode, channels):
    a = GRADIENT.astype({"I;16": "<u2", "I;16B": ">u2", "I": "<i4"}[mode])
    im = Image.fromarray(a)
    assert im.mode == mode
    im.save(tmp_path / f"grad.{fmt}")
    x = _read(tmp_path, channels).int()
    expected = torch.from_numpy((GRADIENT / 257).round().astype(np.int32)).expand(channels, SIDE, SIDE)
    assert_close(x, expected, atol=1, rtol=0)  # today: everything above level 255 reads as white


def test_float_image_is_read_as_zero_to_one(tmp_path):
    a = np.linspace(0, 1, SIDE * SIDE, dtype=np.float32).reshape(SIDE, SIDE)
    Image.fromarray(a).save(tmp_path / "float.tiff")
    assert_close(_read(tmp_path).int(), torch.from_numpy((a * 255).round().astype(np.int32))[None], atol=1, rtol=0)


# --- transparency: composited onto black -----------------------------------------------------------------

HIDDEN, SHOWN = (255, 0, 255), (40, 200, 90)  # the colour under alpha 0, the colour at alpha 255


def _transparent_rgba() -> Image.Image:
    """Left half: alpha 0 over a loud hidden colour; right half: opaque."""
    a = np.zeros((SIDE, SIDE, 4), dtype=np.uint8)
    a[:, :SIDE // 2] = (*HIDDEN, 0)
    a[:, SIDE // 2:] = (*SHOWN, 255)
    return Image.fromarray(a, "RGBA")


def _transparent_palette() -> Image.Image:
    im = Image.new("P", (SIDE, SIDE))
    im.putpalette([*HIDDEN, *SHOWN] + [0] * 3 * 254)
    im.paste(1, (SIDE // 2, 0, SIDE, SIDE))
    im.info["transparency"] = 0  # palette entry 0 (the hidden colour) is fully transparent
    return im


@pytest.mark.parametrize("kind", ["RGBA", "LA", "P"])
def test_transparent_areas_are_black_and_opaque_areas_keep_their_colour(tmp_path, kind):
    im = {"RGBA": _transparent_rgba, "LA": lambda: _transparent_rgba().convert("LA"),
          "P": _transparent_palette}[kind]()
    im.save(tmp_path / "t.png", **({"transparency": 0} if kind == "P" else {}))
    channels = 1 if kind == "LA" else 3
    x = _read(tmp_path, channels)
    shown = torch.tensor(SHOWN if channels == 3 else [Image.new("RGB", (1, 1), SHOWN).convert("L").getpixel((0, 0))])
    assert (x[:, :, :SIDE // 2] == 0).all(), x[:, 0, 0]  # today: the hidden colour shows through
    assert_close(x[:, :, SIDE // 2:].int(), shown.view(-1, 1, 1).expand(-1, SIDE, SIDE // 2).int(), atol=1, rtol=0)


@pytest.mark.parametrize("mode", ["PA", "RGBa", "La"])
def test_other_alpha_modes_are_composited_onto_black(mode):
    source = _transparent_palette() if mode == "PA" else _transparent_rgba().convert("LA" if mode == "La" else "RGBA")
    im = source.convert(mode)
    x = torch.from_numpy(np.asarray(folder.decode(im, 3)).copy()).permute(2, 0, 1)
    assert (x[:, :, :SIDE // 2] == 0).all()  # today (no decode): the hidden colour, or an unsupported mode
    expected = _pixels(source.convert("RGBA").convert("RGB"), 3)[:, :, SIDE // 2:]
    assert_close(x[:, :, SIDE // 2:], expected, atol=1, rtol=0)  # the opaque half keeps its colour


# --- palette and CMYK: what Pillow's own RGB conversion gives ------------------------------------------------

@pytest.mark.parametrize("channels", [1, 3])
def test_palette_image_matches_pillows_rgb(tmp_path, channels):
    rgb = Image.fromarray(np.random.default_rng(2).integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8), "RGB")
    rgb.quantize(colors=16).save(tmp_path / "p.png")
    with Image.open(tmp_path / "p.png") as im:
        assert im.mode == "P"
        expected = _pixels(im.convert("RGB"), channels)
    assert_close(_read(tmp_path, channels), expected, atol=1, rtol=0)


@pytest.mark.parametrize("fmt", ["jpeg", "tiff"])
def test_cmyk_image_matches_pillows_rgb(tmp_path, fmt):
    cmyk = np.random.default_rng(3).integers(0, 256, (SIDE, SIDE, 4), dtype=np.uint8)
    Image.fromarray(cmyk, "CMYK").save(tmp_path / f"c.{fmt}")
    with Image.open(tmp_path / f"c.{fmt}") as im:
        assert im.mode == "CMYK"
        expected = _pixels(im.convert("RGB"), 3)
    assert_close(_read(tmp_path, 3), expected, atol=1, rtol=0)


def test_exif_orientation_is_applied(tmp_path):
    a = np.zeros((SIDE, SIDE), dtype=np.uint8)
    a[:4] = 255  # stored with a bright top band; the camera says: turn 90 degrees clockwise to show it
    im = Image.fromarray(a)
    exif = im.getexif()
    exif[0x0112] = 6  # EXIF Orientation
    im.save(tmp_path / "turned.png", exif=exif.tobytes())
    x = _read(tmp_path)
    assert (x[0, :, -4:] == 255).all() and (x[0, :, :-4] == 0).all()  # the band on the right, as shown


# --- files that are not images, or break half way ------------------------------------------------------------

def test_a_non_image_is_left_out_with_one_warning_naming_it(tmp_path, caplog):
    root = _good_images(tmp_path / "imgs", 4)
    (root / "x.jpg").write_text("not a picture, only named like one")
    with caplog.at_level(logging.WARNING, logger="gan_cli.data.folder"):
        data = folder.load(str(root), resolution=SIDE, channels=1, num_workers=0)
    assert len(data) == 4
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "x.jpg" in warnings[0] and "1 file" in warnings[0], warnings
    x = next(data.batches(4, torch.device("cpu"), seed=0)).images  # today: UnidentifiedImageError here
    assert x.shape == (4, 1, SIDE, SIDE)


def test_a_folder_of_only_non_images_is_one_line_naming_the_folder(tmp_path):
    (tmp_path / "x.jpg").write_text("text")
    with pytest.raises(UserError, match="holds no readable image") as e:
        folder.load(str(tmp_path), num_workers=0)
    assert str(tmp_path) in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("num_workers", [0, 1])
def test_a_truncated_image_is_replaced_so_batches_stay_full(tmp_path, caplog, num_workers):
    root = _good_images(tmp_path / "imgs", 7)
    _truncated_png(root / "good_03_cut.png")
    data = folder.load(str(root), resolution=SIDE, channels=1, num_workers=num_workers)
    assert len(data) == 8  # its header reads fine: only decoding finds the damage
    with caplog.at_level(logging.WARNING, logger="gan_cli.data.folder"):
        batches = list(itertools.islice(data.batches(4, torch.device("cpu"), seed=0), 4))  # two epochs
    assert [len(b) for b in batches] == [4, 4, 4, 4]  # today: OSError (image file is truncated)
    if num_workers == 0:  # a worker's log records stay in the worker: only the in-process case shows them here
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "good_03_cut.png" in warnings[0], warnings  # once, not once per epoch


@pytest.mark.parametrize("num_workers", [0, 1])
def test_when_no_file_decodes_the_error_names_a_file_in_one_line(tmp_path, num_workers):
    root = tmp_path / "imgs"
    root.mkdir()
    for i in range(4):
        _truncated_png(root / f"cut_{i}.png")
    data = folder.load(str(root), resolution=SIDE, channels=1, num_workers=num_workers)
    with pytest.raises(UserError, match=r"cut_\d\.png") as e:
        next(data.batches(2, torch.device("cpu"), seed=0))
    assert "\n" not in str(e.value) and "Traceback" not in str(e.value), str(e.value)


def test_negative_num_workers_is_refused(tmp_path):
    _good_images(tmp_path, 1)
    with pytest.raises(UserError, match="data.num_workers=-1"):
        folder.load(str(tmp_path), num_workers=-1)


# --- the real command ---------------------------------------------------------------------------------------

def test_training_on_a_folder_with_broken_files_runs_and_names_them(tmp_path):
    root = _good_images(tmp_path / "imgs", 10)
    _truncated_png(root / "z_cut.png")  # after the first file: found only by the worker that decodes it
    (root / "notes.jpg").write_text("text, not a picture")
    proc = gan_here("train", "data=folder", f"data.root={root}", f"data.resolution={SIDE}", "data.channels=1",
                    "data.num_workers=0", *TINY_MODEL, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "run" / "checkpoints" / "last.pt").is_file()
    said = proc.stdout + proc.stderr
    assert "notes.jpg" in said and "z_cut.png" in said, said[-3000:]


def test_negative_num_workers_is_one_line(tmp_path):
    root = _good_images(tmp_path / "imgs", 8)
    proc = gan_here("train", "data=folder", f"data.root={root}", "data.num_workers=-1", *TINY_MODEL,
                    f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    one_line_error(proc, "data.num_workers")
