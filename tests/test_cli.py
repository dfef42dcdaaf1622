"""The real `gan` command, end to end, as a user runs it."""

import hashlib
from pathlib import Path

import pytest
import torch
from PIL import Image

from gan_cli import checkpoint
from gan_cli.paths import config_dir
from tests.helpers import TINY, TINY_MODEL, gan, one_line_error


def test_help_lists_working_subcommands(tmp_path):
    out = gan("--help", cwd=tmp_path)
    assert out.returncode == 0
    assert "train" in out.stdout and "sample" in out.stdout


def test_unknown_subcommand_prints_the_list(tmp_path):
    out = gan("trian", cwd=tmp_path)
    assert out.returncode == 2 and "unknown command 'trian'" in out.stderr
    assert "train, sample, latent-arithmetic" in out.stderr


def test_cfg_job_prints_the_composed_config(tmp_path):
    out = gan("train", "model=mlp", "--cfg", "job", cwd=tmp_path)
    assert out.returncode == 0 and "gan_cli.models.mlp.Generator" in out.stdout
    assert not (tmp_path / "outputs").exists()


def test_cfg_with_multirun_is_one_line(tmp_path):
    one_line_error(gan("train", "-m", "model=mlp", "--cfg", "job", cwd=tmp_path), "Only one of --run, --multirun",
                   "--cfg job` (without -m)")
    assert not (tmp_path / "outputs").exists() and not (tmp_path / "multirun").exists()


MODELS = ", ".join(sorted(p.stem for p in (Path(config_dir()) / "model").glob("*.yaml")))  # every conf/model option
BAD_TRAIN = [
    (["model=resnet9000"], f"Available options in 'model': {MODELS}"),
    (["train.stepz=3"], "Key 'stepz' is not in struct"),
    (["optimizer.d.lr=0"], "optimizer.d.lr=0 must be positive"),
    (["optimizer.g.lr=-1e-3"], "optimizer.g.lr=-0.001 must be positive"),
    (["train.batch_size=0"], "train.batch_size=0 must be positive"),
    (["train.steps=-5"], "train.steps=-5 must be positive"),
    (["train.batch_size=many"], "train.batch_size=many"),
    (["data.resolution=48"], "cannot produce 48x48"),
    (["resume=nowhere.pt"], "checkpoint=nowhere.pt does not exist"),
    (["optimizer.d.lr=bad"], "optimizer.d.lr=bad must be positive"),
    (["optimizer.g.betas=[0.5]"], "optimizer.g"),
]


@pytest.mark.parametrize("overrides,message", BAD_TRAIN, ids=[" ".join(o[0]) for o in BAD_TRAIN])
def test_bad_input_gets_one_line_and_leaves_nothing(tmp_path, overrides, message):
    out = gan("train", *TINY, *overrides, cwd=tmp_path)
    assert out.returncode == 2
    assert message in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert not (tmp_path / "outputs").exists() or not any((tmp_path / "outputs").rglob("*"))


def test_empty_image_folder_is_named(tmp_path):
    (tmp_path / "imgs").mkdir()
    out = gan("train", *TINY_MODEL, "data=folder", f"data.root={tmp_path / 'imgs'}", cwd=tmp_path)
    assert out.returncode == 2 and "holds no images" in out.stderr and "Traceback" not in out.stderr
    out = gan("train", *TINY_MODEL, "data=folder", cwd=tmp_path)
    assert out.returncode == 2 and "Missing mandatory value: data.root" in out.stderr
    assert not (tmp_path / "outputs").exists() or not any((tmp_path / "outputs").rglob("*"))


def test_train_then_sample_from_anywhere(tmp_path, tiny_checkpoint):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = gan("sample", f"checkpoint={tiny_checkpoint}", "n=9", "seed=3", "out=grid.png", cwd=elsewhere)
    assert out.returncode == 0, out.stderr
    assert Image.open(elsewhere / "grid.png").size == (56, 56)  # 3x3 tiles of 16 + 2 px padding
    gan("sample", f"checkpoint={tiny_checkpoint}", "n=5", "out=singles", cwd=elsewhere, check=True)
    assert sorted(p.name for p in (elsewhere / "singles").iterdir()) == [f"0000{i}.png" for i in range(5)]
    gan("sample", f"checkpoint={tiny_checkpoint}", "n=6", "seed=3", "out=s.pt", cwd=elsewhere, check=True)
    tensors = torch.load(elsewhere / "s.pt", weights_only=True)
    assert tensors["samples"].shape == (6, 1, 16, 16) and tensors["z"].shape == (6, 8)
    # the same seed gives the same z, whatever n: sample i of seed s is always the same
    again = gan("sample", f"checkpoint={tiny_checkpoint}", "n=3", "seed=3", "out=t.pt", cwd=elsewhere, check=True)
    assert again.returncode == 0
    torch.testing.assert_close(torch.load(elsewhere / "t.pt", weights_only=True)["samples"], tensors["samples"][:3])


def test_sample_writes_to_its_run_directory_by_default(tmp_path, tiny_checkpoint):
    out = gan("sample", f"checkpoint={tiny_checkpoint}", "n=4", cwd=tmp_path, check=True)
    written = list((tmp_path / "outputs" / "sample").rglob("samples.png"))
    assert len(written) == 1 and str(written[0].relative_to(tmp_path)) in out.stdout


@pytest.mark.parametrize("case,message", [
    ("missing", "does not exist"), ("truncated", "unreadable"), ("foreign", "not a gan-cli checkpoint"),
])
def test_sample_names_broken_checkpoints(tmp_path, tiny_checkpoint, case, message):
    path = tmp_path / "c.pt"
    if case == "truncated":
        path.write_bytes(tiny_checkpoint.read_bytes()[:1000])
    elif case == "foreign":
        torch.save({"weights": torch.zeros(2)}, path)
    out = gan("sample", f"checkpoint={path}", cwd=tmp_path)
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "outputs").exists() or not any((tmp_path / "outputs").rglob("*.png"))


def test_sample_without_checkpoint_says_so(tmp_path):
    out = gan("sample", cwd=tmp_path)
    assert out.returncode == 2 and "checkpoint= is required" in out.stderr


def _weights(path):
    state = checkpoint.load(path)
    return {**{f"G.{k}": v for k, v in state["models"]["G"].items()},
            **{f"D.{k}": v for k, v in state["models"]["D"].items()}}


def test_resume_continues_the_same_run(tmp_path):
    straight, first = tmp_path / "straight", tmp_path / "first"
    gan("train", *TINY, "train.steps=12", f"hydra.run.dir={straight}", cwd=tmp_path, check=True)
    gan("train", *TINY, "train.steps=6", f"hydra.run.dir={first}", cwd=tmp_path, check=True)
    resumed = tmp_path / "resumed"
    gan("train", f"resume={first}/checkpoints/last.pt", "train.steps=12", f"hydra.run.dir={resumed}",
        cwd=tmp_path, check=True)
    a, b = _weights(straight / "checkpoints" / "last.pt"), _weights(resumed / "checkpoints" / "last.pt")
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name  # bit for bit, on the CPU
    assert checkpoint.load(resumed / "checkpoints" / "last.pt")["step"] == 12


def test_resume_refuses_another_model_and_damages_nothing(tmp_path, tiny_checkpoint):
    before = hashlib.sha256(tiny_checkpoint.read_bytes()).hexdigest()
    out = gan("train", f"resume={tiny_checkpoint}", "model.g.width=16", "train.steps=8", cwd=tmp_path)
    assert out.returncode == 2 and "changes the architecture" in out.stderr and "Traceback" not in out.stderr
    out = gan("train", f"resume={tiny_checkpoint}", "model=mlp", cwd=tmp_path)
    assert out.returncode == 2 and "resume: model=mlp differs" in out.stderr
    assert hashlib.sha256(tiny_checkpoint.read_bytes()).hexdigest() == before
    assert not (tmp_path / "outputs").exists() or not any((tmp_path / "outputs").rglob("*.pt"))


def test_a_sweep_runs_every_combination(tmp_path):
    out = gan("train", "-m", *TINY, "train.steps=2", "loss=minimax,nonsaturating", "model.z_dim=2,4",
              f"hydra.sweep.dir={tmp_path / 'sweep'}", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    runs = sorted((tmp_path / "sweep").glob("*/checkpoints/last.pt"))
    assert len(runs) == 4
    seen = {(s["config"]["loss"]["_target_"].rsplit(".", 1)[1], s["config"]["model"]["z_dim"])
            for s in map(checkpoint.load, runs)}
    assert seen == {("Minimax", 2), ("Minimax", 4), ("NonSaturating", 2), ("NonSaturating", 4)}


def test_default_data_mnist_trains_end_to_end(tmp_path, mnist_root):
    out = gan("train", "model.g.width=8", "model.d.width=8", "train.steps=3", "train.batch_size=16",
              "train.log_every=1", "device=cpu", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "run directory:" in out.stdout and "checkpoints/last.pt" in out.stdout  # Hydra logs to stdout
    assert len(list((tmp_path / "outputs" / "train").glob("*/*/checkpoints/last.pt"))) == 1


def test_divergence_exits_nonzero_with_the_step(tmp_path):
    out = gan("train", *TINY, "train.steps=6", "train.log_every=1", "loss._target_=tests.helpers.NaNAfter",
              "trust=[tests.helpers]",
              "+loss.after=2", cwd=tmp_path)
    assert out.returncode == 2 and "became NaN or infinite at step 3" in out.stderr, out.stderr
    assert "last good checkpoint is" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.fixture(scope="module")
def conditional_checkpoint(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("cond_run")
    gan("train", *TINY, "model=cdcgan", "model.g.width=8", "model.d.width=8", f"hydra.run.dir={run_dir}",
        cwd=run_dir, check=True)
    return run_dir / "checkpoints" / "last.pt"


def test_conditional_sampling_by_label_and_by_class_rows(tmp_path, conditional_checkpoint):
    gan("sample", f"checkpoint={conditional_checkpoint}", "label=7", "n=10", "out=sevens.pt", cwd=tmp_path, check=True)
    sevens = torch.load(tmp_path / "sevens.pt", weights_only=True)
    assert sevens["samples"].shape == (10, 1, 16, 16) and sevens["y"].tolist() == [7] * 10
    gan("sample", f"checkpoint={conditional_checkpoint}", "n=30", "out=rows.png", cwd=tmp_path, check=True)
    assert Image.open(tmp_path / "rows.png").size == (3 * 18 + 2, 10 * 18 + 2)  # 10 classes x 3
    for label, message in [("12", "label=12 is not a class of this model: use 0 to 9"), ("-1", "label=-1")]:
        out = gan("sample", f"checkpoint={conditional_checkpoint}", f"label={label}", cwd=tmp_path)
        assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr


def test_label_on_an_unconditional_model_is_refused(tmp_path, tiny_checkpoint):
    out = gan("sample", f"checkpoint={tiny_checkpoint}", "label=3", cwd=tmp_path)
    assert out.returncode == 2 and "not conditional" in out.stderr
