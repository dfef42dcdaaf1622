"""Limits of what `gan eval` and `gan latent-arithmetic` accept: sizes that fit this machine (estimated
in gan_cli/limits.py), values of the right type, and no user file written over. In-process
(tests.helpers.gan_here); `gan sample`'s side is in test_sample.py."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from gan_cli import limits
from gan_cli.errors import UserError
from tests.helpers import gan_here, one_line_error


def left_nothing(where: Path) -> bool:
    return not (where / "outputs").exists() or not any((where / "outputs").rglob("*"))


# -- the estimating helpers ------------------------------------------------------------------------------

@pytest.mark.parametrize("size,text", [
    (0, "0 B"), (512, "512 B"), (1000, "1.0 kB"), (3.136e12, "3.1 TB"), (20.4e9, "20 GB"), (9.96e9, "10 GB"),
    (1e30, "1e+12 EB"),
])
def test_human_sizes(size, text):
    assert limits.human(size) == text


def test_available_memory_and_free_disk_are_read(tmp_path):
    assert limits.available_memory() > 0
    assert limits.free_disk(tmp_path / "not" / "yet" / "made") == limits.free_disk(tmp_path) > 0


def test_available_memory_falls_back_to_sysconf(monkeypatch):
    real_open = open

    def no_meminfo(path, *args, **kwargs):
        if str(path) == "/proc/meminfo":
            raise OSError("no /proc here")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", no_meminfo)
    assert limits.available_memory() > 0


def test_memory_is_refused_above_half_of_what_is_available(monkeypatch):
    monkeypatch.setattr(limits, "available_memory", lambda: 20_000_000_000)
    limits.check_memory(9_000_000_000, "this needs", "lower it")
    with pytest.raises(UserError, match=r"^this needs about 11 GB in memory; this machine has 20 GB available "
                                        r"\(a job may use half\): lower it$"):
        limits.check_memory(11_000_000_000, "this needs", "lower it")


def test_disk_is_refused_above_the_free_space(tmp_path, monkeypatch):
    monkeypatch.setattr(limits, "free_disk", lambda path: 1_000_000)
    limits.check_disk(900_000, tmp_path, "these need", "fewer")
    with pytest.raises(UserError, match="these need about 2.0 MB on disk; .* has 1.0 MB free: fewer"):
        limits.check_disk(2_000_000, tmp_path / "new", "these need", "fewer")


# -- gan eval -------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def toy_checkpoint(tmp_path_factory) -> Path:
    """A toy-ring GAN (2-D points, 200 of them) trained for two steps, in this process: fd_points works on it."""
    run = tmp_path_factory.mktemp("toy") / "run"
    done = gan_here("train", "experiment=gan_toy_ring", "data.n=200", "train.steps=2", "train.batch_size=16",
                    "train.log_every=1", "train.sample_every=0", "train.checkpoint_every=0", "device=cpu",
                    f"hydra.run.dir={run}", cwd=run.parent)
    assert done.returncode == 0, done.stderr
    return run / "checkpoints" / "last.pt"


def evaluate(tmp_path, ckpt, *args):
    return gan_here("eval", f"checkpoint={ckpt}", "device=cpu", f"cache_dir={tmp_path / 'cache'}", *args, cwd=tmp_path)


def test_eval_of_more_samples_than_fit_is_refused_with_the_estimate(tmp_path, toy_checkpoint, tiny_checkpoint):
    record = toy_checkpoint.parent / "metrics.json"
    before = record.read_bytes() if record.exists() else None
    tiny_before = _contents(tiny_checkpoint.parent)
    one_line_error(evaluate(tmp_path, toy_checkpoint, "n=1000000000000", "metrics=[fd_points]"),
                   "n=1000000000000 samples (2-D points)", "need about", "in memory", "lower n")
    one_line_error(evaluate(tmp_path, tiny_checkpoint, "n=1000000000000", "metrics=[kid]"),
                   "n=1000000000000 samples of 1x16x16", "need about", "in memory", "lower n")
    one_line_error(evaluate(tmp_path, toy_checkpoint, "n=10000000", "kid_subset_size=10000000", "metrics=[kid_points]"),
                   "with kid_subset_size=10000000 need about 2.4 PB", "lower kid_subset_size")
    assert (record.read_bytes() if record.exists() else None) == before
    assert _contents(tiny_checkpoint.parent) == tiny_before and left_nothing(tmp_path)


def test_eval_says_when_n_is_more_than_the_data_holds(tmp_path, toy_checkpoint):
    done = evaluate(tmp_path, toy_checkpoint, "n=300", "metrics=[fd_points]")
    assert done.returncode == 0, done.stderr
    assert "the training split holds 200 samples, fewer than n=300: the reference uses all 200" in done.stdout
    report = json.loads((toy_checkpoint.parent / "metrics.json").read_text())["last.pt"]
    assert report["reference_n"] == 200 and report["n"] == 300


def test_eval_keeps_a_metrics_json_it_did_not_write(tmp_path, toy_checkpoint):
    ckpt = tmp_path / "ckpts" / "last.pt"
    ckpt.parent.mkdir()
    shutil.copyfile(toy_checkpoint, ckpt)
    mine = ckpt.parent / "metrics.json"
    for text in ("my notes, not JSON", '{"accuracy": 0.9}', "[1, 2]"):
        mine.write_text(text)
        one_line_error(evaluate(tmp_path, ckpt, "n=100", "metrics=[fd_points]"),
                       f"{mine} exists and is not gan eval's record", "move it or rename it")
        assert mine.read_text() == text
    assert sorted(p.name for p in ckpt.parent.iterdir()) == ["last.pt", "metrics.json"] and left_nothing(tmp_path)
    mine.unlink()  # gan eval's own record is added to, entry by entry
    assert evaluate(tmp_path, ckpt, "n=100", "metrics=[fd_points]").returncode == 0
    shutil.copyfile(ckpt, ckpt.parent / "best.pt")
    assert evaluate(tmp_path, ckpt.parent / "best.pt", "n=100", "metrics=[fd_points]").returncode == 0
    assert set(json.loads(mine.read_text())) == {"last.pt", "best.pt"}


EVAL_BAD = [
    (["n=abc"], "n=abc must be an integer"),
    (["n=0"], "n=0 must be positive"),
    (["batch_size=1.5"], "batch_size=1.5 must be an integer"),
    (["ema=maybe"], "ema=maybe must be true or false"),
    (["seed=abc"], "seed=abc must be an integer"),
    (["seed=-3"], "seed=-3 must be between 0 and"),
    (["device=[cpu]"], "device=[cpu] must be a string"),
    (["k=0"], "k=0 must be positive"),
    (["kid_subsets=[1]"], "kid_subsets=[1] must be an integer"),
    (["confident=abc"], "confident=abc must be a number"),
    (["confident=2"], "confident=2.0 must be a probability in (0, 1]"),
    (["min_share=-0.1"], "min_share=-0.1 must be a share in [0, 1]"),
    (["sort_by=[a]"], "sort_by=[a] must be a string or null"),
    (["inception_weights=[a]"], "inception_weights=[a] must be a string or null"),
]


@pytest.mark.parametrize("overrides,message", EVAL_BAD, ids=[" ".join(o[0]) for o in EVAL_BAD])
def test_eval_wrong_types_are_one_line(tmp_path, tiny_checkpoint, overrides, message):
    before = _contents(tiny_checkpoint.parent)  # shared with other tests, which may have evaluated it
    one_line_error(gan_here("eval", f"checkpoint={tiny_checkpoint}", *overrides, cwd=tmp_path), message)
    assert _contents(tiny_checkpoint.parent) == before and left_nothing(tmp_path)


def _contents(directory):
    return {p.name: p.read_bytes() for p in directory.iterdir()}


# -- gan latent-arithmetic ------------------------------------------------------------------------------------

def arithmetic(tmp_path, ckpt, *args):
    return gan_here("latent-arithmetic", f"checkpoint={ckpt}", "device=cpu", *args, cwd=tmp_path)


SIZES = [
    (["pool=100000000000", "a=[1]", "expr=a"], ["pool=100000000000 z of size 8 need about 3.2 TB", "lower pool="]),
    (["noise_samples=10000000000000", "a=[1]", "expr=a"],
     ["a figure of 2 x 10000000000002 tiles", "needs about", "in memory", "lower noise_samples="]),
    (["mode=interpolate", "from=1", "to=2", "steps=1000000000000"],
     ["a figure of 1 x 1000000000000 tiles", "lower steps="]),
    (["mode=interpolate", "from=[1,2]", "to=[3,4]", "steps=100000000000"],
     ["a figure of 2 x 100000000000 tiles", "fewer pairs"]),
]


@pytest.mark.parametrize("overrides,needles", SIZES, ids=["pool", "noise_samples", "steps", "pairs"])
def test_latent_arithmetic_sizes_that_cannot_fit_are_refused(tmp_path, tiny_checkpoint, overrides, needles):
    one_line_error(arithmetic(tmp_path, tiny_checkpoint, *overrides), *needles)
    assert left_nothing(tmp_path)


def test_latent_arithmetic_does_not_write_over_files_in_a_chosen_run_dir(tmp_path, tiny_checkpoint):
    run = tmp_path / "mine"
    run.mkdir()
    (run / "arithmetic.png").write_bytes(b"an earlier figure")
    (run / "notes.txt").write_text("kept")
    one_line_error(arithmetic(tmp_path, tiny_checkpoint, "a=[1]", "expr=a", f"hydra.run.dir={run}"),
                   f"{run / 'arithmetic.png'} exists", "hydra.run.dir")
    assert (run / "arithmetic.png").read_bytes() == b"an earlier figure"
    assert sorted(p.name for p in run.iterdir()) == ["arithmetic.png", "notes.txt"]
    # interpolation writes other names: the same directory takes it
    done = arithmetic(tmp_path, tiny_checkpoint, "mode=interpolate", "from=1", "to=2", "steps=3",
                      f"hydra.run.dir={run}")
    assert done.returncode == 0, done.stderr
    assert (run / "interpolation.png").is_file() and (run / "arithmetic.png").read_bytes() == b"an earlier figure"


LATENT_BAD = [
    (["ema=maybe", "a=[1]", "expr=a"], "ema=maybe must be true or false"),
    (["seed=abc", "a=[1]", "expr=a"], "seed=abc must be an integer"),
    (["seed=-1", "a=[1]", "expr=a"], "seed=-1 must be between 0 and"),
    (["pool=[3]", "a=[1]", "expr=a"], "pool=[3] must be an integer"),
    (["pool=0", "a=[1]", "expr=a"], "pool=0 must be at least 1"),
    (["batch_size=abc", "a=[1]", "expr=a"], "batch_size=abc must be an integer"),
    (["noise=abc", "a=[1]", "expr=a"], "noise=abc must be a number"),
    (["noise_samples=-1", "a=[1]", "expr=a"], "noise_samples=-1 must be at least 0"),
    (["device=[cpu]", "a=[1]", "expr=a"], "device=[cpu] must be a string"),
    (["expr=[a]", "a=[1]"], "expr=[a] must be a string"),
    (["mode=interpolate", "from=1", "to=2", "steps=abc"], "steps=abc must be an integer"),
    (["mode=interpolate", "from=1", "label_from=abc", "label_to=1"], "label_from=abc must be an integer or null"),
    (["label=1.5", "a=[1]", "expr=a"], "label=1.5 must be an integer or null"),
]


@pytest.mark.parametrize("overrides,message", LATENT_BAD, ids=[" ".join(o[0]) for o in LATENT_BAD])
def test_latent_arithmetic_wrong_types_are_one_line(tmp_path, tiny_checkpoint, overrides, message):
    one_line_error(arithmetic(tmp_path, tiny_checkpoint, *overrides), message)
    assert left_nothing(tmp_path)


def test_latent_arithmetic_keeps_group_keys_of_its_own(tmp_path, tiny_checkpoint):
    done = arithmetic(tmp_path, tiny_checkpoint, "+smiling=[1,2]", "a=[3]", "expr=smiling - a", "noise_samples=2",
                      f"hydra.run.dir={tmp_path / 'run'}")
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "run" / "request.json").read_text())["groups"] == {"smiling": [1, 2], "a": [3]}
