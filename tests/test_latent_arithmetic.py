"""`gan latent-arithmetic` and `gan sample annotate=true`, end to end through the real command line, on
tiny checkpoints trained here. Tiles are 16 px with 2 px of padding: tile (r, c) starts at 2 + 18 * (r, c)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch.testing import assert_close

from gan_cli import checkpoint
from gan_cli.latent import seeded_noise, seeded_z
from gan_cli.models import dcgan
from tests.helpers import TINY, compose_config, gan

SIDE, PAD = 16, 2


def size(columns: int, rows: int) -> tuple[int, int]:
    """The pixel size (width, height) of a figure of rows x columns tiles."""
    return columns * (SIDE + PAD) + PAD, rows * (SIDE + PAD) + PAD


def tile(png: Path, row: int, col: int) -> torch.Tensor:
    """Tile (row, col) of a figure, (16, 16) in [0, 1] (the images are grey: one channel says it all)."""
    pixels = torch.from_numpy(np.asarray(Image.open(png).convert("RGB")).copy()).float() / 255
    y, x = PAD + row * (SIDE + PAD), PAD + col * (SIDE + PAD)
    return pixels[y:y + SIDE, x:x + SIDE, 0]


def drawn(G, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """What a figure shows for one z: G's image mapped from [-1, 1] to [0, 1], as image_grid does."""
    with torch.no_grad():
        return ((G(z[None], None if y is None else y[None])[0, 0] + 1) / 2).clamp(0, 1)


def same_tile(png: Path, row: int, col: int, expected: torch.Tensor) -> None:
    assert_close(tile(png, row, col), expected, atol=1 / 255, rtol=0)  # the PNG's 8-bit rounding


def load_G(path: Path):
    return checkpoint.load_generator(checkpoint.load(path), path, torch.device("cpu"))


def nothing_written(where: Path) -> bool:
    return not (where / "outputs").exists() or not any((where / "outputs").rglob("*"))


def vivid(path: Path, out: Path) -> Path:
    """A copy of a tiny checkpoint whose G's last layer is 300 times stronger. Four training steps leave
    every image within 0.005 of mid grey, too flat to tell one z's tile from another's at 8 bits; this
    one spreads them over most of [-1, 1]."""
    state = checkpoint.load(path)
    G = state["models"]["G"]
    last = [k for k, v in G.items() if v.ndim == 4][-1]
    G[last] = G[last] * 300
    checkpoint.save(out, {k: v for k, v in state.items() if k != "format"})
    return out


@pytest.fixture(scope="module")
def vivid_checkpoint(tmp_path_factory, tiny_checkpoint) -> Path:
    return vivid(tiny_checkpoint, tmp_path_factory.mktemp("vivid") / "vivid.pt")


@pytest.fixture(scope="module")
def conditional_checkpoint(tmp_path_factory) -> Path:
    """A tiny cdcgan, made vivid: one-hot labels in G, ten classes (data=fake has ten)."""
    run_dir = tmp_path_factory.mktemp("cond_run")
    gan("train", *TINY, "model=cdcgan", "model.g.width=8", "model.d.width=8", f"hydra.run.dir={run_dir}",
        cwd=run_dir, check=True)
    return vivid(run_dir / "checkpoints" / "last.pt", run_dir / "vivid.pt")


# -- arithmetic ----------------------------------------------------------------------------------------

def test_arithmetic_figure_latents_request_and_tensorboard(tmp_path, vivid_checkpoint):
    run = tmp_path / "run"
    out = gan("latent-arithmetic", f"checkpoint={vivid_checkpoint}", "seed=0", "a=[3,17,40]", "b=[5,8]",
              "c=[1,9,30]", "noise_samples=4", f"hydra.run.dir={run}", cwd=tmp_path, check=True)
    png = run / "arithmetic.png"
    assert str(png) in out.stdout
    # rows a, b, c: up to 3 exemplars, a blank, the mean (5 columns); the result, a blank, 4 noisy (6)
    assert Image.open(png).size == size(columns=6, rows=4)

    z = seeded_z(64, 8, seed=0)
    saved = torch.load(run / "latents.pt", weights_only=True)
    assert_close(saved["groups"]["a"], z[[3, 17, 40]])
    assert_close(saved["groups"]["b"], z[[5, 8]])
    mean = {"a": (z[3] + z[17] + z[40]) / 3, "b": (z[5] + z[8]) / 2, "c": (z[1] + z[9] + z[30]) / 3}
    result = mean["a"] - mean["b"] + mean["c"]
    assert_close(saved["result"], result)
    assert_close(saved["noisy"], result + 0.25 * seeded_noise(4, 8, seed=0))

    G = load_G(vivid_checkpoint)
    assert (drawn(G, z[3]) - drawn(G, z[17])).abs().max() > 0.1  # tiles of different z tell apart
    same_tile(png, 0, 0, drawn(G, z[3]))           # a's first exemplar
    same_tile(png, 1, 1, drawn(G, z[8]))           # b's second
    same_tile(png, 1, 2, torch.ones(SIDE, SIDE))   # b has two: blank, and the blank before the mean
    same_tile(png, 1, 4, drawn(G, mean["b"]))      # b's mean, in the means' column
    same_tile(png, 3, 0, drawn(G, result))         # the result first in its row
    same_tile(png, 3, 1, torch.ones(SIDE, SIDE))
    same_tile(png, 3, 5, drawn(G, saved["noisy"][3]))

    request = json.loads((run / "request.json").read_text())
    assert request["mode"] == "arithmetic" and request["seed"] == 0 and request["pool"] == 64
    assert request["groups"] == {"a": [3, 17, 40], "b": [5, 8], "c": [1, 9, 30]}
    assert request["terms"] == ["+a", "-b", "+c"] and request["step"] == 4
    assert request["checkpoint"] == str(vivid_checkpoint.resolve())

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run))
    events.Reload()
    assert events.Tags()["images"] == ["latent-arithmetic/arithmetic"]


def test_named_groups_and_their_signs(tmp_path, tiny_checkpoint):
    run = tmp_path / "run"
    gan("latent-arithmetic", f"checkpoint={tiny_checkpoint}", "+smiling=[2,4]", "a=[6]", "expr=-a + smiling + a - a",
        "noise_samples=0", f"hydra.run.dir={run}", cwd=tmp_path, check=True)
    z = seeded_z(64, 8, seed=0)
    saved = torch.load(run / "latents.pt", weights_only=True)
    assert saved["signs"] == {"a": -1, "smiling": 1}
    assert_close(saved["result"], (z[2] + z[4]) / 2 - z[6])
    # rows: a (1 exemplar, blank, mean), smiling (2, blank, mean), the result alone
    assert Image.open(run / "arithmetic.png").size == size(columns=4, rows=3)


def test_index_i_is_the_same_z_whatever_the_pool(tmp_path, tiny_checkpoint):
    small, large = tmp_path / "small", tmp_path / "large"
    gan("latent-arithmetic", f"checkpoint={tiny_checkpoint}", "seed=2", "pool=64", "a=[3,40]", "expr=a",
        f"hydra.run.dir={small}", cwd=tmp_path, check=True)
    gan("latent-arithmetic", f"checkpoint={tiny_checkpoint}", "seed=2", "pool=100", "a=[3,40]", "b=[70]",
        "expr=a - b", f"hydra.run.dir={large}", cwd=tmp_path, check=True)
    gan("sample", f"checkpoint={tiny_checkpoint}", "seed=2", "n=71", "out=s.pt", cwd=tmp_path, check=True)
    sampled = torch.load(tmp_path / "s.pt", weights_only=True)["z"]
    a_small = torch.load(small / "latents.pt", weights_only=True)["groups"]["a"]
    large_groups = torch.load(large / "latents.pt", weights_only=True)["groups"]
    assert_close(a_small, large_groups["a"])
    assert_close(a_small, sampled[[3, 40]])                  # the tiles of `gan sample seed=2`
    assert_close(large_groups["b"], sampled[[70]])           # past the first block of 64 too
    # z_file=gan sample's .pt: the indices pick its rows instead of the seed's pool
    picked = tmp_path / "picked"
    gan("latent-arithmetic", f"checkpoint={tiny_checkpoint}", "mode=interpolate", f"z_file={tmp_path / 's.pt'}",
        "seed=5", "from=70", "to=0", "steps=2", f"hydra.run.dir={picked}", cwd=tmp_path, check=True)
    assert_close(torch.load(picked / "latents.pt", weights_only=True)["path"][0], sampled[[70, 0]])


def test_z_file_groups_and_an_earlier_run(tmp_path, tiny_checkpoint):
    groups = {"a": torch.tensor([[1.0] * 8, [3.0] * 8]), "b": torch.arange(8.0)}  # a mean 2; b one z
    torch.save(groups, tmp_path / "groups.pt")
    first, again = tmp_path / "first", tmp_path / "again"
    gan("latent-arithmetic", f"checkpoint={tiny_checkpoint}", f"z_file={tmp_path / 'groups.pt'}", "expr=a - b",
        "noise_samples=0", f"hydra.run.dir={first}", cwd=tmp_path, check=True)
    result = torch.load(first / "latents.pt", weights_only=True)["result"]
    assert_close(result, torch.tensor([2.0, 1.0, 0.0, -1.0, -2.0, -3.0, -4.0, -5.0]))
    # an earlier run's latents.pt brings its groups back
    gan("latent-arithmetic", f"checkpoint={tiny_checkpoint}", f"z_file={first / 'latents.pt'}", "expr=b - a",
        "noise_samples=0", f"hydra.run.dir={again}", cwd=tmp_path, check=True)
    assert_close(torch.load(again / "latents.pt", weights_only=True)["result"], -result)


# -- interpolation -------------------------------------------------------------------------------------

def test_interpolation_one_row_per_pair(tmp_path, vivid_checkpoint):
    run = tmp_path / "run"
    gan("latent-arithmetic", f"checkpoint={vivid_checkpoint}", "mode=interpolate", "seed=0", "from=[3,5]",
        "to=[17,2]", "steps=6", f"hydra.run.dir={run}", cwd=tmp_path, check=True)
    png = run / "interpolation.png"
    assert Image.open(png).size == size(columns=6, rows=2)
    z = seeded_z(64, 8, seed=0)
    path = torch.load(run / "latents.pt", weights_only=True)["path"]
    assert path.shape == (2, 6, 8)
    assert_close(path[:, 0], z[[3, 5]])
    assert_close(path[:, -1], z[[17, 2]])
    G = load_G(vivid_checkpoint)
    same_tile(png, 0, 0, drawn(G, z[3]))
    same_tile(png, 1, 5, drawn(G, z[2]))
    same_tile(png, 1, 2, drawn(G, path[1, 2]))
    request = json.loads((run / "request.json").read_text())
    assert request["pairs"] == [[3, 17], [5, 2]] and request["steps"] == 6 and request["path"] == "slerp"


# -- sample annotate=true ------------------------------------------------------------------------------

def test_annotated_sample_grid(tmp_path, tiny_checkpoint):
    gan("sample", f"checkpoint={tiny_checkpoint}", "n=9", "out=plain.png", cwd=tmp_path, check=True)
    gan("sample", f"checkpoint={tiny_checkpoint}", "n=9", "annotate=true", "out=numbered.png", cwd=tmp_path,
        check=True)
    plain, numbered = Image.open(tmp_path / "plain.png"), Image.open(tmp_path / "numbered.png")
    assert numbered.size == plain.size == size(columns=3, rows=3)
    assert (np.asarray(plain) != np.asarray(numbered)).any()
    out = gan("sample", f"checkpoint={tiny_checkpoint}", "annotate=true", "out=s.pt", cwd=tmp_path)
    assert out.returncode == 2 and "annotate=true writes on a .png grid" in out.stderr
    assert not (tmp_path / "s.pt").exists()


# -- conditional models --------------------------------------------------------------------------------

def test_conditional_arithmetic_adds_a_class_sweep(tmp_path, conditional_checkpoint):
    swept, fixed = tmp_path / "swept", tmp_path / "fixed"
    args = [f"checkpoint={conditional_checkpoint}", "a=[1]", "b=[2]", "c=[3]", "noise_samples=2"]
    gan("latent-arithmetic", *args, f"hydra.run.dir={swept}", cwd=tmp_path, check=True)
    png = swept / "arithmetic.png"
    # a, b, c (3 columns), the result (4), then the result in each of the 10 classes
    assert Image.open(png).size == size(columns=10, rows=5)
    result = torch.load(swept / "latents.pt", weights_only=True)["result"]
    G = load_G(conditional_checkpoint)
    assert (drawn(G, result, torch.tensor(0)) - drawn(G, result, torch.tensor(9))).abs().max() > 0.05
    for k in (0, 4, 9):  # the same z, the class varied
        same_tile(png, 4, k, drawn(G, result, torch.tensor(k)))
    same_tile(png, 3, 0, drawn(G, result, torch.tensor(0)))  # without label=, the rest is class 0
    gan("latent-arithmetic", *args, "label=4", f"hydra.run.dir={fixed}", cwd=tmp_path, check=True)
    assert Image.open(fixed / "arithmetic.png").size == size(columns=4, rows=4)  # no sweep row
    same_tile(fixed / "arithmetic.png", 3, 0, drawn(G, result, torch.tensor(4)))


def test_conditional_walks_in_z_and_in_the_label(tmp_path, conditional_checkpoint):
    by_class, label_walk = tmp_path / "by_class", tmp_path / "label_walk"
    gan("latent-arithmetic", f"checkpoint={conditional_checkpoint}", "mode=interpolate", "from=3", "to=4",
        "steps=3", f"hydra.run.dir={by_class}", cwd=tmp_path, check=True)
    assert Image.open(by_class / "interpolation.png").size == size(columns=3, rows=10)  # one row per class

    gan("latent-arithmetic", f"checkpoint={conditional_checkpoint}", "mode=interpolate", "from=3",
        "label_from=1", "label_to=7", "steps=5", f"hydra.run.dir={label_walk}", cwd=tmp_path, check=True)
    png = label_walk / "interpolation.png"
    assert Image.open(png).size == size(columns=5, rows=1)
    saved = torch.load(label_walk / "latents.pt", weights_only=True)
    z3 = seeded_z(64, 8, seed=0)[3]
    assert_close(saved["path"][0], z3.expand(5, -1))  # no to=: z held
    one, seven = F.one_hot(torch.tensor(1), 10).float(), F.one_hot(torch.tensor(7), 10).float()
    assert_close(saved["y"][0, 0], one)
    assert_close(saved["y"][0, 2], 0.5 * one + 0.5 * seven)
    assert_close(saved["y"][0, 4], seven)
    G = load_G(conditional_checkpoint)
    same_tile(png, 0, 0, drawn(G, z3, torch.tensor(1)))
    same_tile(png, 0, 4, drawn(G, z3, torch.tensor(7)))
    same_tile(png, 0, 2, drawn(G, z3, 0.5 * one + 0.5 * seven))


# -- bad input -----------------------------------------------------------------------------------------

class NoLatentGenerator(dcgan.Generator):
    """DCGAN's G without a z_dim: stands for a checkpoint of a model without a latent input."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        del self.z_dim


@pytest.fixture
def bad_files(tmp_path, tiny_checkpoint) -> Path:
    (tmp_path / "garbage.pt").write_bytes(b"not a tensor file")
    torch.save({"a": torch.zeros(2, 5)}, tmp_path / "wide.pt")  # z of size 5 for a z_dim=8 generator
    state = checkpoint.load(tiny_checkpoint)
    state["config"]["model"]["g"]["_target_"] = f"{__name__}.NoLatentGenerator"
    checkpoint.save(tmp_path / "no_latent.pt", {k: v for k, v in state.items() if k != "format"})
    return tmp_path


BAD = [
    (["a=[3,70]", "b=[1]", "c=[2]"], "a=[3,70]: index 70 is outside the seed's pool of 64; raise pool= or pick 0-63"),
    (["a=[3]", "b=[]", "c=[2]"], "b=[] is empty; give at least one index"),
    (["a=[3]", "b=[1]"], "uses c, which is not given: add c=[i,j,...]"),
    (["a=[3]", "expr=a - smiling"], "uses smiling, which is not given: add smiling=[i,j,...]"),
    (["a=[1]", "b=[2]", "expr=a b"], "'a b' needs a + or - between them"),
    (["a=[1]", "b=[2]", "c=[3]", "d=[4]"], "d=[4] is given but expr='a - b + c' does not use it"),
    (["a=[1]", "expr=a", "from=2"], "from= is for mode=interpolate"),
    (["mode=walk"], "mode=walk: choose one of arithmetic, interpolate"),
    (["mode=interpolate", "from=1", "to=2", "steps=1"], "steps=1: a path needs at least 2 steps"),
    (["mode=interpolate", "from=1", "to=2", "path=cubic"], "path=cubic: choose slerp or lerp"),
    (["mode=interpolate", "from=[1,2]", "to=[3]"], "give as many ends as starts"),
    (["mode=interpolate", "from=1", "label_from=0", "label_to=1"], "generator is not conditional"),
    (["z_file={tmp}/nowhere.pt", "a=[1]", "expr=a"], "z_file={tmp}/nowhere.pt does not exist"),
    (["z_file={tmp}/garbage.pt", "expr=a"], "z_file={tmp}/garbage.pt is unreadable"),
    (["z_file={tmp}/wide.pt", "expr=a"], "group a holds z of size 5, but this generator takes z_dim=8"),
    (["checkpoint={tmp}/no_latent.pt", "a=[1]", "expr=a", f"trust=[{__name__}]"],
     "this checkpoint's generator has no latent input"),
    (["checkpoint=null"], "checkpoint= is required"),
]


def _args(overrides, tmp, tiny_checkpoint):
    args = [o.format(tmp=tmp) for o in overrides]
    if not any(a.startswith("checkpoint=") for a in args):
        args.insert(0, f"checkpoint={tiny_checkpoint}")
    return args


@pytest.mark.parametrize("overrides,message", BAD, ids=[" ".join(o[0]) for o in BAD])
def test_bad_input_is_named_before_anything_is_written(bad_files, tiny_checkpoint, overrides, message):
    # in-process, so the whole table stays quick; the shell's side (one line, exit 2) is tested below
    from gan_cli.commands.latent_arithmetic import run, shorthand
    from gan_cli.errors import UserError

    cfg = compose_config("latent_arithmetic", shorthand(_args(overrides, bad_files, tiny_checkpoint)))
    run_dir = bad_files / "run"
    run_dir.mkdir()
    with pytest.raises(UserError) as err:
        run(cfg, run_dir)
    assert message.format(tmp=bad_files) in str(err.value)
    assert list(run_dir.iterdir()) == []


@pytest.mark.parametrize("overrides,message", [BAD[0], BAD[8], BAD[15]], ids=["index", "steps", "no-latent"])
def test_bad_input_from_the_shell_gets_one_line_and_leaves_nothing(bad_files, tiny_checkpoint, overrides, message):
    out = gan("latent-arithmetic", *_args(overrides, bad_files, tiny_checkpoint), cwd=bad_files)
    assert out.returncode == 2
    assert message.format(tmp=bad_files) in out.stderr, out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert nothing_written(bad_files)


def test_a_group_on_the_command_line_is_short_for_one_under_groups():
    """a=[3,17,40] and +smiling=[1] are +groups.a / +groups.smiling; settings and Hydra's flags pass through."""
    from gan_cli.commands.latent_arithmetic import shorthand

    given = ["a=[3,17,40]", "+smiling=[1]", "groups.b=[2]", "~c", "expr=a - smiling", "seed=3",
             "hydra.run.dir=x", "-m", "--cfg", "job", "hydra/launcher=basic", "from=1"]
    assert shorthand(given) == ["+groups.a=[3,17,40]", "+groups.smiling=[1]", "+groups.b=[2]", "~groups.c",
                                "expr=a - smiling", "seed=3", "hydra.run.dir=x", "-m", "--cfg", "job",
                                "hydra/launcher=basic", "from=1"]
    cfg = compose_config("latent_arithmetic", shorthand(["a=[3,17,40]", "+smiling=[1]"]))
    assert dict(cfg.groups) == {"a": [3, 17, 40], "smiling": [1]} and "a" not in cfg
