"""Sampling a style-based generator (model=stylegan2) through the real `gan` commands: the truncation trick
(`gan sample truncation=`), the style-mixing grid (`gan sample mix=`) and arithmetic and walks in W
(`gan latent-arithmetic space=w`), each checked against the loaded G called by hand; and the one-line
refusals of each on a generator without a mapping network (the shared tiny dcgan checkpoint).

One tiny StyleGAN2 (1x16x16, z_dim = w_dim = 8, num_ws 6) is trained per module. Tiles are 16 px with
2 px of padding: tile (r, c) starts at 2 + 18 * (r, c)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.testing import assert_close

from gan_cli import checkpoint
from gan_cli.latent import lerp, seeded_noise, seeded_z
from tests.helpers import TINY, gan, one_line_error

SIDE, PAD, Z_DIM = 16, 2, 8
STYLE = ["model=stylegan2", "model.g.max_width=16", "model.d.max_width=16", "model.g.mapping_layers=2"]


@pytest.fixture(scope="module")
def style_checkpoint(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("style_run")
    gan("train", *TINY, *STYLE, f"hydra.run.dir={run_dir}", cwd=run_dir, check=True)
    return run_dir / "checkpoints" / "last.pt"


@pytest.fixture(scope="module")
def G(style_checkpoint):
    """The checkpoint's G, loaded as the commands load it (eval mode: its noise inputs are fixed)."""
    G = checkpoint.load_generator(checkpoint.load(style_checkpoint), style_checkpoint, torch.device("cpu"))
    assert G.num_ws == 6 and G.w_dim == Z_DIM and G.w_avg.abs().max() > 0  # training moved w_avg off 0
    return G


def sample(tmp_path: Path, ckpt: Path, *args: str, check: bool = False):
    return gan("sample", f"checkpoint={ckpt}", "device=cpu", *args, cwd=tmp_path, check=check)


def samples(path: Path) -> torch.Tensor:
    return torch.load(path, weights_only=True)["samples"]


def by_hand(G, w: torch.Tensor) -> torch.Tensor:
    """G's images of w (N, w_dim), the same w at every style layer."""
    with torch.no_grad():
        return G.synthesis(w[:, None].expand(-1, G.num_ws, -1))


def mapped(G, z: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return G.mapping(z)


def pixels(png: Path) -> torch.Tensor:
    """A grey PNG as (H, W) in [0, 1]."""
    return torch.from_numpy(np.asarray(Image.open(png).convert("RGB")).copy()).float()[..., 0] / 255


def tile(png: Path, row: int, col: int) -> torch.Tensor:
    y, x = PAD + row * (SIDE + PAD), PAD + col * (SIDE + PAD)
    return pixels(png)[y:y + SIDE, x:x + SIDE]


def shown(image: torch.Tensor) -> torch.Tensor:
    """What a PNG shows of one image (1, H, W) in [-1, 1]: [0, 1], as image_grid maps it."""
    return ((image[0] + 1) / 2).clamp(0, 1)


def same_tile(png: Path, row: int, col: int, image: torch.Tensor | None) -> None:
    """Tile (row, col) shows image (None: a blank, white tile), to the PNG's 8-bit rounding."""
    expected = torch.ones(SIDE, SIDE) if image is None else shown(image)
    assert_close(tile(png, row, col), expected, atol=1 / 255, rtol=0)


def size(columns: int, rows: int) -> tuple[int, int]:
    return columns * (SIDE + PAD) + PAD, rows * (SIDE + PAD) + PAD


def nothing_written(where: Path) -> bool:
    return not (where / "outputs").exists() or not any((where / "outputs").rglob("*"))


# -- gan sample truncation= --------------------------------------------------------------------------------

def test_truncation_zero_draws_the_average_image_for_every_z(tmp_path, style_checkpoint, G):
    sample(tmp_path, style_checkpoint, "n=6", "out=plain.pt", check=True)
    sample(tmp_path, style_checkpoint, "n=6", "truncation=0", "out=mean.pt", check=True)
    plain, mean = samples(tmp_path / "plain.pt"), samples(tmp_path / "mean.pt")
    assert (plain[1:] - plain[0]).abs().amax() > 0.1  # without truncation the z draw different images
    for i in range(1, 6):
        assert_close(mean[i], mean[0])
    assert_close(mean[0], by_hand(G, G.w_avg[None])[0])  # the image of w_avg


def test_truncation_one_is_the_default_exactly(tmp_path, style_checkpoint):
    sample(tmp_path, style_checkpoint, "n=5", "out=default.pt", check=True)
    sample(tmp_path, style_checkpoint, "n=5", "truncation=1", "out=one.pt", check=True)
    assert_close(samples(tmp_path / "one.pt"), samples(tmp_path / "default.pt"), rtol=0, atol=0)


def test_truncation_half_is_each_w_halfway_to_the_average(tmp_path, style_checkpoint, G):
    sample(tmp_path, style_checkpoint, "n=5", "seed=3", "truncation=0.5", "out=half.pt", check=True)
    sample(tmp_path, style_checkpoint, "n=5", "seed=3", "out=plain.pt", check=True)
    sample(tmp_path, style_checkpoint, "n=5", "seed=3", "truncation=0", "out=mean.pt", check=True)
    saved = torch.load(tmp_path / "half.pt", weights_only=True)
    z = seeded_z(5, Z_DIM, seed=3)
    assert_close(saved["z"], z)  # the .pt keeps the z, not the truncated w
    w = mapped(G, z)
    expected = by_hand(G, G.w_avg + 0.5 * (w - G.w_avg))
    assert_close(saved["samples"], expected)
    for other in ("plain.pt", "mean.pt"):  # between the two: neither of them
        assert (saved["samples"] - samples(tmp_path / other)).abs().amax() > 0.01


def test_truncation_in_a_grid_and_a_folder_is_the_same_as_in_a_pt_file(tmp_path, style_checkpoint):
    args = ["n=4", "nrow=4", "truncation=0.7"]
    sample(tmp_path, style_checkpoint, *args, "out=t.pt", check=True)
    sample(tmp_path, style_checkpoint, *args, "out=t.png", check=True)
    sample(tmp_path, style_checkpoint, *args, "out=singles", check=True)
    sample(tmp_path, style_checkpoint, "n=4", "nrow=4", "out=plain.png", check=True)
    expected = samples(tmp_path / "t.pt")
    png = tmp_path / "t.png"
    assert Image.open(png).size == size(columns=4, rows=1)
    for i in range(4):
        same_tile(png, 0, i, expected[i])
        assert_close(pixels(tmp_path / "singles" / f"0000{i}.png"), shown(expected[i]), atol=1 / 255, rtol=0)
    assert (pixels(png) - pixels(tmp_path / "plain.png")).abs().amax() > 0.05  # truncation changed the grid


# -- gan sample mix= ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("mix,crossover,truncation", [("coarse", 2, 1.0), ("middle", 3, 1.0), ("fine", 4, 1.0),
                                                      ("1", 1, 1.0), ("coarse", 2, 0.5)])
def test_a_mixing_grid_has_its_sources_along_the_edges_and_their_mixes_inside(tmp_path, style_checkpoint, G, mix,
                                                                             crossover, truncation):
    out = sample(tmp_path, style_checkpoint, f"mix={mix}", "mix_rows=2", "mix_cols=3", "seed=1",
                 f"truncation={truncation}", "out=mix.png", check=True)
    png = tmp_path / "mix.png"
    assert str(png.name) in out.stdout and f"layers 0-{crossover - 1}" in out.stdout
    assert Image.open(png).size == size(columns=3 + 1, rows=2 + 1)
    z = seeded_z(5, Z_DIM, seed=1)
    z_a, z_b = z[:2], z[2:]  # rows: the seed's z 0-1; columns: z 2-4
    with torch.no_grad():
        a, b = G(z_a, truncation=truncation), G(z_b, truncation=truncation)
        cells = [[G.mix(z_a[i:i + 1], z_b[j:j + 1], crossover, truncation=truncation)[0] for j in range(3)]
                 for i in range(2)]
    same_tile(png, 0, 0, None)
    for j in range(3):
        same_tile(png, 0, j + 1, b[j])
    for i in range(2):
        same_tile(png, i + 1, 0, a[i])
        for j in range(3):
            same_tile(png, i + 1, j + 1, cells[i][j])
    # the cells are mixes: neither their row's image nor their column's
    assert (shown(cells[1][2]) - shown(a[1])).abs().amax() > 0.05
    assert (shown(cells[1][2]) - shown(b[2])).abs().amax() > 0.05


def test_a_mixing_grid_goes_to_the_run_dir_by_default(tmp_path, style_checkpoint):
    run = tmp_path / "run"
    sample(tmp_path, style_checkpoint, "mix=coarse", f"hydra.run.dir={run}", check=True)
    assert Image.open(run / "mixing.png").size == size(columns=6 + 1, rows=5 + 1)  # mix_rows=5, mix_cols=6
    assert not (run / "samples.png").exists()


# -- gan latent-arithmetic space=w -------------------------------------------------------------------------

def test_arithmetic_in_w(tmp_path, style_checkpoint, G):
    run = tmp_path / "run"
    gan("latent-arithmetic", f"checkpoint={style_checkpoint}", "space=w", "seed=0", "a=[3,17]", "b=[5]", "c=[1,9]",
        "noise_samples=2", f"hydra.run.dir={run}", cwd=tmp_path, check=True)
    png = run / "arithmetic.png"
    # rows a, b, c: up to 2 exemplars, a blank, the mean (4 columns); the result, a blank, 2 noisy (4)
    assert Image.open(png).size == size(columns=4, rows=4)
    z = seeded_z(64, Z_DIM, seed=0)
    w = mapped(G, z)
    mean = {"a": (w[3] + w[17]) / 2, "b": w[5], "c": (w[1] + w[9]) / 2}
    result = mean["a"] - mean["b"] + mean["c"]
    saved = torch.load(run / "latents.pt", weights_only=True)
    assert saved["space"] == "w"
    assert_close(saved["groups"]["a"], z[[3, 17]])       # the z as picked: the file still serves as z_file=
    assert_close(saved["w_groups"]["a"], w[[3, 17]])
    assert_close(saved["result"], result)
    assert_close(saved["noisy"], result + 0.25 * seeded_noise(2, Z_DIM, seed=0))
    # not the z arithmetic mapped: W is not a linear image of z
    z_result = (z[3] + z[17]) / 2 - z[5] + (z[1] + z[9]) / 2
    assert (mapped(G, z_result[None])[0] - result).abs().amax() > 0.01
    same_tile(png, 0, 0, by_hand(G, w[3:4])[0])          # a's first exemplar
    same_tile(png, 1, 3, by_hand(G, mean["b"][None])[0])  # b's mean, in the means' column
    same_tile(png, 3, 0, by_hand(G, result[None])[0])     # the result
    same_tile(png, 3, 3, by_hand(G, saved["noisy"][1:2])[0])
    request = json.loads((run / "request.json").read_text())
    assert request["space"] == "w" and request["groups"] == {"a": [3, 17], "b": [5], "c": [1, 9]}


def test_a_walk_in_w_is_a_straight_line(tmp_path, style_checkpoint, G):
    run = tmp_path / "run"
    gan("latent-arithmetic", f"checkpoint={style_checkpoint}", "space=w", "mode=interpolate", "from=3", "to=17",
        "steps=4", f"hydra.run.dir={run}", cwd=tmp_path, check=True)
    png = run / "interpolation.png"
    assert Image.open(png).size == size(columns=4, rows=1)
    w = mapped(G, seeded_z(64, Z_DIM, seed=0))
    expected = lerp(w[3], w[17], torch.linspace(0, 1, 4)[:, None])
    path = torch.load(run / "latents.pt", weights_only=True)["path"]
    assert_close(path[0], expected)
    for k in range(4):
        same_tile(png, 0, k, by_hand(G, expected[k:k + 1])[0])
    assert json.loads((run / "request.json").read_text())["path"] == "lerp"


# -- refusals: one line, nothing written -------------------------------------------------------------------

DCGAN = "this checkpoint's G is gan_cli.models.dcgan.Generator"
NEEDS = "needs a style-based generator with a mapping network (model=stylegan2)"
ON_DCGAN = [
    (["sample", "truncation=0.7"], ["truncation=0.7 " + NEEDS, DCGAN, "drop truncation="]),
    (["sample", "truncation=0.7", "out=singles"], ["truncation=0.7 " + NEEDS]),
    (["sample", "truncation=0", "out=s.pt"], ["truncation=0.0 " + NEEDS]),
    (["sample", "mix=coarse"], ["mix=coarse " + NEEDS, DCGAN]),
    (["latent-arithmetic", "space=w", "a=[1]", "expr=a"], ["space=w " + NEEDS, DCGAN, "drop space="]),
    (["latent-arithmetic", "space=w", "mode=interpolate", "from=1", "to=2"], ["space=w " + NEEDS]),
]


@pytest.mark.parametrize("args,needles", ON_DCGAN, ids=[" ".join(a) for a, _ in ON_DCGAN])
def test_style_settings_on_a_generator_without_a_mapping_network(tmp_path, tiny_checkpoint, args, needles):
    command, *overrides = args
    one_line_error(gan(command, f"checkpoint={tiny_checkpoint}", "device=cpu", *overrides, cwd=tmp_path), *needles)
    assert nothing_written(tmp_path)
    assert not any(p.name in ("singles", "s.pt") for p in tmp_path.iterdir())


BAD = [
    (["sample", "truncation=1.5"], ["truncation=1.5 must be in [0, 1]", "truncation=0.7"]),
    (["sample", "truncation=-0.1"], ["truncation=-0.1 must be in [0, 1]"]),
    (["sample", "truncation=nan"], ["truncation=nan must be in [0, 1]"]),
    (["sample", "truncation=abc"], ["truncation=abc must be a number"]),
    (["sample", "mix=foo"], ["mix=foo: choose coarse, middle, fine, or a layer index"]),
    (["sample", "mix=6"], ["mix=6: this generator has 6 style layers, so a crossover is 1 to 5"]),
    (["sample", "mix=0"], ["mix=0: this generator has 6 style layers"]),
    (["sample", "mix=coarse", "out=m.pt"], ["mix=coarse draws one .png grid", "out=m.pt is a .pt file",
                                            "give out=<name>.png"]),
    (["sample", "mix=coarse", "out=folder"], ["out=folder is a folder"]),
    (["sample", "mix=coarse", "mix_rows=0"], ["mix_rows=0 must be at least 1"]),
    (["sample", "mix=coarse", "mix_cols=abc"], ["mix_cols=abc must be an integer"]),
    (["sample", "mix=coarse", "annotate=true", "out=m.png"], ["annotate=true", "drop annotate="]),
    (["sample", "mix=coarse", "mix_rows=100000000", "mix_cols=100000000"],
     ["mix_rows=100000000 x mix_cols=100000000", "lower mix_rows= or mix_cols="]),
    (["latent-arithmetic", "space=q", "a=[1]", "expr=a"], ["space=q: choose z", "or w"]),
    (["latent-arithmetic", "space=w", "mode=interpolate", "from=1", "to=2", "path=slerp"],
     ["path=slerp", "W is not Gaussian", "give path=lerp"]),
]


@pytest.mark.parametrize("args,needles", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_style_settings_are_one_line(tmp_path, style_checkpoint, args, needles):
    command, *overrides = args
    one_line_error(gan(command, f"checkpoint={style_checkpoint}", "device=cpu", *overrides, cwd=tmp_path), *needles)
    assert nothing_written(tmp_path)
    assert not any(tmp_path.iterdir()) or [p.name for p in tmp_path.iterdir()] == ["outputs"]


def test_an_existing_mixing_grid_is_not_written_over(tmp_path, style_checkpoint):
    mine = tmp_path / "mix.png"
    mine.write_bytes(b"the user's own file")
    one_line_error(sample(tmp_path, style_checkpoint, "mix=coarse", "out=mix.png"), "out=mix.png exists",
                   "overwrite=true")
    assert mine.read_bytes() == b"the user's own file"
    sample(tmp_path, style_checkpoint, "mix=coarse", "out=mix.png", "overwrite=true", check=True)
    assert Image.open(mine).size == size(columns=7, rows=6)


def test_a_concept_direction_in_w_is_found_and_applied_in_w(tmp_path, style_checkpoint, G):
    """concept= space=w: the pool and the probe are mapped to w, the direction is a difference of mean w,
    and tile (r, s) is G.synthesis of probe r's w moved by strength s times the direction."""
    run = tmp_path / "concept"
    proc = gan("latent-arithmetic", f"checkpoint={style_checkpoint}", "concept=thickness", "space=w",
               "concept_pool=32", "concept_probe=4", "concept_rows=2", "strengths=[0,2]", f"hydra.run.dir={run}",
               cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    saved = torch.load(run / "latents.pt", weights_only=True)
    assert saved["space"] == "w" and saved["direction"].shape == (Z_DIM,)
    w = mapped(G, seeded_z(36, Z_DIM, 0))
    assert_close(saved["probe"], w[32:34])
    png = run / "concept.png"
    assert Image.open(png).size == size(2, 2)
    for r in range(2):
        same_tile(png, r, 0, by_hand(G, w[32 + r:33 + r])[0])
        same_tile(png, r, 1, by_hand(G, w[32 + r:33 + r] + 2 * saved["direction"])[0])
