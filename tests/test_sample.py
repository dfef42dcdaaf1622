"""`gan sample`: no user file written over, sizes that fit, output streamed to a folder, one line for
every wrong type. In-process (tests.helpers.gan_here), on the shared tiny checkpoint (1x16x16, z_dim 8)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gan_cli import limits
from gan_cli.latent import seeded_latents
from tests.helpers import gan_here, one_line_error


def left_nothing(where: Path) -> bool:
    """No run directory (nor any file in one) left behind by a refused command."""
    return not (where / "outputs").exists() or not any((where / "outputs").rglob("*"))


def sample(tmp_path: Path, ckpt: Path, *args: str):
    return gan_here("sample", f"checkpoint={ckpt}", "device=cpu", *args, cwd=tmp_path)


# -- item 3: nothing written over --------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["grid.png", "s.pt"])
def test_an_existing_out_file_is_refused_unless_overwrite(tmp_path, tiny_checkpoint, name):
    mine = tmp_path / name
    mine.write_bytes(b"the user's own file")
    line = one_line_error(sample(tmp_path, tiny_checkpoint, "n=4", f"out={name}"),
                          f"out={name} exists", "overwrite=true", "another out=")
    assert "Traceback" not in line
    assert mine.read_bytes() == b"the user's own file"
    assert left_nothing(tmp_path)
    done = sample(tmp_path, tiny_checkpoint, "n=4", f"out={name}", "overwrite=true")
    assert done.returncode == 0, done.stderr
    assert mine.read_bytes() != b"the user's own file"


def test_the_checkpoint_is_never_written_over(tmp_path, tiny_checkpoint):
    ckpt = tmp_path / "last.pt"
    shutil.copyfile(tiny_checkpoint, ckpt)
    other = tmp_path / "other.pt"  # another gan-cli checkpoint, not the one sampled
    shutil.copyfile(tiny_checkpoint, other)
    before = ckpt.read_bytes()
    for out in (ckpt, other):
        one_line_error(sample(tmp_path, ckpt, "n=4", f"out={out}", "overwrite=true"),
                       f"out={out}", "checkpoint", "even with overwrite=true", "another out=")
        assert out.read_bytes() == before
    # the same file by another name (a relative path) is the same file
    one_line_error(sample(tmp_path, ckpt, "n=4", "out=./last.pt", "overwrite=true"), "is the checkpoint")
    assert ckpt.read_bytes() == before and left_nothing(tmp_path)


def test_a_folder_out_refuses_the_files_it_would_write_over(tmp_path, tiny_checkpoint):
    folder = tmp_path / "singles"
    folder.mkdir()
    (folder / "00002.png").write_bytes(b"mine")
    (folder / "00009.png").write_bytes(b"beyond n")  # n=5 writes 00000-00004: not in the way
    one_line_error(sample(tmp_path, tiny_checkpoint, "n=5", "out=singles"),
                   "out=singles already holds 1 of the 5 files", "00002.png", "overwrite=true")
    assert sorted(p.name for p in folder.iterdir()) == ["00002.png", "00009.png"]
    assert (folder / "00002.png").read_bytes() == b"mine" and left_nothing(tmp_path)
    assert sample(tmp_path, tiny_checkpoint, "n=5", "out=singles", "overwrite=true").returncode == 0
    assert sorted(p.name for p in folder.iterdir()) == [f"0000{i}.png" for i in range(5)] + ["00009.png"]
    assert (folder / "00009.png").read_bytes() == b"beyond n"


def test_a_checkpoint_inside_a_folder_out_is_kept_even_with_overwrite(tmp_path, tiny_checkpoint):
    folder = tmp_path / "singles"
    folder.mkdir()
    shutil.copyfile(tiny_checkpoint, folder / "00001.png")  # a checkpoint, whatever its name
    one_line_error(sample(tmp_path, tiny_checkpoint, "n=3", "out=singles", "overwrite=true"),
                   "00001.png is a gan-cli checkpoint")
    assert (folder / "00001.png").read_bytes() == tiny_checkpoint.read_bytes()
    assert sorted(p.name for p in folder.iterdir()) == ["00001.png"]


def test_the_default_out_in_a_reused_run_dir_is_not_written_over(tmp_path, tiny_checkpoint):
    run = tmp_path / "run"
    run.mkdir()
    (run / "samples.png").write_bytes(b"an earlier grid")
    one_line_error(sample(tmp_path, tiny_checkpoint, "n=4", f"hydra.run.dir={run}"), "samples.png exists")
    assert (run / "samples.png").read_bytes() == b"an earlier grid"


# -- item 8: sizes that fit, and a folder streamed -----------------------------------------------------------

def test_a_grid_that_cannot_fit_is_refused_with_the_estimate(tmp_path, tiny_checkpoint):
    line = one_line_error(sample(tmp_path, tiny_checkpoint, "n=1000000000000000", "out=grid.png"),
                          "n=1000000000000000 samples of 1x16x16 need about", "in memory for one .png grid",
                          "available", "lower n", "out=DIR")
    assert " PB " in line or " EB " in line, line
    one_line_error(sample(tmp_path, tiny_checkpoint, "n=1000000000000000", "out=s.pt"), "in memory for one .pt file")
    assert not (tmp_path / "grid.png").exists() and left_nothing(tmp_path)


def test_a_folder_that_cannot_fit_on_disk_is_refused(tmp_path, tiny_checkpoint):
    one_line_error(sample(tmp_path, tiny_checkpoint, "n=1000000000000000", "out=singles"),
                   "as single PNGs need about", "on disk", "free")
    assert not (tmp_path / "singles").exists() and left_nothing(tmp_path)


def test_a_folder_streams_where_a_grid_does_not_fit(tmp_path, tiny_checkpoint, monkeypatch):
    # 40 samples: a grid needs ~400 kB; a folder holds one batch of 8 at a time (~20 kB)
    monkeypatch.setattr(limits, "available_memory", lambda: 200_000)
    one_line_error(sample(tmp_path, tiny_checkpoint, "n=40", "batch_size=8", "out=grid.png"), "for one .png grid")
    done = sample(tmp_path, tiny_checkpoint, "n=40", "batch_size=8", "seed=5", "out=singles")
    assert done.returncode == 0, done.stderr
    monkeypatch.undo()
    assert sample(tmp_path, tiny_checkpoint, "n=40", "seed=5", "out=s.pt").returncode == 0
    samples = torch.load(tmp_path / "s.pt", weights_only=True)["samples"]
    for i in (0, 7, 8, 39):  # the same images as one pass over all 40: the same z, batch or not
        png = np.asarray(Image.open(tmp_path / "singles" / f"{i:05d}.png").convert("L")).astype(np.float32) / 255
        expected = ((samples[i, 0] + 1) / 2).clamp(0, 1).numpy()
        assert np.abs(png - expected).max() <= 1 / 255 + 1e-6
    assert len(list((tmp_path / "singles").iterdir())) == 40


def test_a_folder_is_written_batch_by_batch(tmp_path, tiny_checkpoint, monkeypatch):
    from gan_cli import checkpoint, visuals

    calls, saved = [], []
    build = checkpoint.load_generator

    def counting(*args, **kwargs):
        G = build(*args, **kwargs)
        G.register_forward_hook(lambda module, inputs, output: calls.append(len(output)))
        return G

    class Stop(Exception):
        pass

    def save_png(image, path, fix=None):
        saved.append(path)
        if len(saved) > 8:  # the first file of the second batch
            raise Stop
        return path

    monkeypatch.setattr(checkpoint, "load_generator", counting)
    monkeypatch.setattr(visuals, "save_png", save_png)
    with pytest.raises(Stop):
        sample(tmp_path, tiny_checkpoint, "n=40", "batch_size=8", "out=singles")
    assert calls == [8, 8]  # never more than one batch ahead of what is written


@pytest.mark.parametrize("n,label,classes,start,stop", [
    (200, None, None, 0, 200), (200, None, None, 60, 131), (30, None, 10, 0, 30), (25, None, 10, 7, 30),
    (12, 4, 10, 3, 12),
])
def test_streamed_latents_are_the_seeds_own(n, label, classes, start, stop):
    from gan_cli.latent import latent_rows

    whole = seeded_latents(n, 8, 3, classes, label)
    z, y = latent_rows(start, stop, n, 8, 3, classes, label)
    torch.testing.assert_close(z, whole.z[start:stop], rtol=0, atol=0)
    assert (y is None) == (whole.y is None)
    if y is not None:
        assert y.tolist() == whole.y[start:stop].tolist()


# -- item 10: one line for every wrong type ------------------------------------------------------------------

BAD = [
    (["n=abc"], "n=abc must be an integer"),
    (["n=[1,2]"], "n=[1,2] must be an integer"),
    (["n=1e9"], "n=1000000000.0 must be an integer"),
    (["n=0"], "n=0 must be positive"),
    (["batch_size=-1"], "batch_size=-1 must be positive"),
    (["nrow=-3"], "nrow=-3 must be at least 1"),
    (["nrow=0"], "nrow=0 must be at least 1"),
    (["nrow=abc"], "nrow=abc must be an integer or null"),
    (["ema=maybe"], "ema=maybe must be true or false"),
    (["annotate=2"], "annotate=2 must be true or false"),
    (["overwrite=please"], "overwrite=please must be true or false"),
    (["seed=abc"], "seed=abc must be an integer"),
    (["seed=-1"], "seed=-1 must be between 0 and"),
    (["label=abc"], "label=abc must be an integer or null"),
    (["out=[a,b]"], "out=[a,b] must be a string or null"),
    (["device=[cpu]"], "device=[cpu] must be a string"),
    (["checkpoint=[a]"], "checkpoint=[a] must be a string or null"),
]


@pytest.mark.parametrize("overrides,message", BAD, ids=[" ".join(o[0]) for o in BAD])
def test_a_wrong_type_is_one_line_and_leaves_nothing(tmp_path, tiny_checkpoint, overrides, message):
    given = any(o.startswith("checkpoint=") for o in overrides)
    args = overrides if given else [f"checkpoint={tiny_checkpoint}", *overrides]
    one_line_error(gan_here("sample", *args, cwd=tmp_path), message)
    assert left_nothing(tmp_path)
