"""Training runs in-process through commands.train.run on tiny real configs."""

import json
import math

import pytest
import torch
from PIL import Image

from gan_cli import checkpoint
from gan_cli.commands.train import run
from gan_cli.loop import Diverged
from tests.helpers import TINY, TINY_DATA, compose_config

METRICS = {"loss/d", "loss/g", "d/real", "d/fake", "acc/real", "acc/fake", "grad_norm/d", "grad_norm/g",
           "perf/img_per_s"}


def test_a_run_leaves_pictures_curves_and_checkpoints(tmp_path):
    run(compose_config(overrides=TINY), tmp_path)
    names = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    assert {"samples/real.png", "samples/step_0000002.png", "samples/step_0000004.png",
            "checkpoints/step_0000002.pt", "checkpoints/last.pt", "metrics.jsonl"} <= names
    assert any(n.startswith("events.out.tfevents") for n in names)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4] and all(set(r) == METRICS | {"step"} for r in rows)
    assert Image.open(tmp_path / "samples/step_0000004.png").size == (38, 38)  # 2x2 tiles of 16 + padding


def test_tensorboard_holds_the_fixed_metric_names(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run(compose_config(overrides=TINY), tmp_path)
    events = EventAccumulator(str(tmp_path)).Reload()
    assert METRICS <= set(events.Tags()["scalars"])
    assert {"samples/real", "samples/fake"} <= set(events.Tags()["images"])
    assert [e.step for e in events.Scalars("loss/d")] == [2, 4]


def test_checkpoint_describes_itself(tmp_path):
    run(compose_config(overrides=TINY), tmp_path)
    state = checkpoint.load(tmp_path / "checkpoints" / "last.pt")
    assert state["step"] == 4 and state["data_position"] == 4
    assert state["config"]["model"]["g"]["width"] == 8  # resolved and plain
    assert state["fixed"]["z"].shape == (4, 8) and state["fixed"]["y"] is None
    assert set(state["optimizers"]) == {"G", "D"} and state["data"]["shape"] == [1, 16, 16]


def test_k_discriminator_steps_per_generator_step(tmp_path):
    run(compose_config(overrides=TINY + ["train.d_steps=3"]), tmp_path)
    state = checkpoint.load(tmp_path / "checkpoints" / "last.pt")
    assert state["data_position"] == 12  # 4 generator steps x 3 real batches
    assert state["optimizers"]["D"]["state"][0]["step"] == 12
    assert state["optimizers"]["G"]["state"][0]["step"] == 4


def test_epochs_set_the_number_of_steps(tmp_path):
    run(compose_config(overrides=TINY + ["train.epochs=2"]), tmp_path)  # 64 samples / batch 8 = 8 per epoch
    assert checkpoint.load(tmp_path / "checkpoints" / "last.pt")["step"] == 16


def test_toy_ring_gets_a_scatter_plot(tmp_path):
    run(compose_config(overrides=["data=toy_ring", "data.n=512", "model=mlp", "model.g.hidden=16",
                                  "model.d.hidden=8", "model.d.pieces=2", "train.steps=2", "train.batch_size=16",
                                  "train.log_every=1", "train.sample_every=0", "device=cpu"]), tmp_path)
    assert Image.open(tmp_path / "samples" / "step_0000002.png").size == (512, 512)


def test_ema_weights_are_kept_and_used(tmp_path):
    run(compose_config(overrides=TINY + ["train.ema=0.9"]), tmp_path)
    state = checkpoint.load(tmp_path / "checkpoints" / "last.pt")
    assert int(state["ema"]["n_averaged"]) == 4
    g, ema = state["models"]["G"], state["ema"]
    assert not torch.equal(g["net.0.weight"], ema["module.net.0.weight"])


def test_nan_stops_training_and_keeps_the_last_good_checkpoint(tmp_path):
    cfg = compose_config(overrides=TINY + ["train.steps=8", "train.log_every=1",
                                           "loss._target_=tests.helpers.NaNAfter", "trust=[tests.helpers]",
                                           "+loss.after=3"])
    with pytest.raises(Diverged, match="at step 4.*last good checkpoint"):
        run(cfg, tmp_path)
    state = checkpoint.load(tmp_path / "checkpoints" / "last.pt", trust=["tests.helpers"])
    assert state["step"] == 2
    assert all(torch.isfinite(w).all() for w in state["models"]["G"].values() if w.is_floating_point())
    assert not (tmp_path / "checkpoints" / "step_0000004.pt").exists()


def test_conditional_run_draws_one_row_per_class(tmp_path):
    run(compose_config(overrides=TINY + ["model=cdcgan", "model.g.width=8", "model.d.width=8",
                                         "model.g.embed_dim=4", "train.num_samples=20"]), tmp_path)
    state = checkpoint.load(tmp_path / "checkpoints" / "last.pt")
    fixed = state["fixed"]
    assert fixed["nrow"] == 2 and fixed["y"].tolist() == [c for c in range(10) for _ in range(2)]
    assert torch.equal(fixed["z"][0], fixed["z"][2])  # column 0 holds the same z in every row
    # 10 rows of 2 tiles of 16 px with 2 px padding
    assert Image.open(tmp_path / "samples" / "step_0000004.png").size == (2 * 18 + 2, 10 * 18 + 2)


def test_discriminator_warm_up_runs_before_the_first_generator_step(tmp_path):
    run(compose_config(overrides=TINY + ["train.d_warmup=3"]), tmp_path)
    state = checkpoint.load(tmp_path / "checkpoints" / "last.pt")
    assert state["optimizers"]["D"]["state"][0]["step"] == 3 + 4
    assert state["optimizers"]["G"]["state"][0]["step"] == 4


# Tiny settings per model family, so that every model meets every loss for two steps on the CPU.
TINY_MODELS = {
    "dcgan": ["model.g.width=8", "model.d.width=8"],
    "cdcgan": ["model.g.width=8", "model.d.width=8", "model.g.embed_dim=4"],
    "sngan": ["model.g.width=8", "model.d.width=8", "data.resolution=16"],
    "mlp": ["model.g.hidden=16", "model.d.hidden=8", "model.d.pieces=2"],
    "cgan": ["model.g.hidden=16", "model.d.hidden=8", "model.d.pieces=2"],
}
LOSSES = ["minimax", "nonsaturating", "wgan", "wgan_gp", "lsgan", "hinge"]


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("model", sorted(TINY_MODELS))
def test_every_model_meets_every_loss(tmp_path, model, loss):
    data = TINY_DATA if model not in ("mlp", "cgan") else ["data=toy_ring", "data.n=64"]
    norm = ["model.d.norm=layer"] if loss == "wgan_gp" and "dcgan" in model else []
    overrides = data + [f"model={model}", f"loss={loss}", *TINY_MODELS[model], *norm, "model.z_dim=8",
                        "train.steps=2", "train.batch_size=8", "train.log_every=1", "train.sample_every=0",
                        "train.checkpoint_every=0", "train.num_samples=4", "device=cpu"]
    last = run(compose_config(overrides=overrides), tmp_path)
    assert all(math.isfinite(last[k]) for k in ("loss/d", "loss/g", "grad_norm/d", "grad_norm/g"))
    assert ("loss/gp" in last) == (loss == "wgan_gp")


def _folder_of_images(root):
    from PIL import Image

    root.mkdir(exist_ok=True)
    for i in range(8):
        Image.new("RGB", (20, 18), (30 * i, 0, 255 - 30 * i)).save(root / f"{i}.png")
    return root


# Every model meets every data set it can use (pairs with every loss are covered above): two steps each.
DATA = {
    "fake": ["data=fake", "data.n=16", "data.resolution=32"],
    "mnist": ["data=mnist", "data.resolution=32"],
    "fashion_mnist": ["data=fashion_mnist", "data.resolution=32"],
    "folder": ["data=folder", "data.resolution=32", "data.num_workers=0"],
    "toy_ring": ["data=toy_ring", "data.n=64"],
    "toy_grid": ["data=toy_grid", "data.n=64"],
}
VALID = [(m, d) for m in sorted(TINY_MODELS) for d in DATA
         if not (d.startswith("toy") and m not in ("mlp", "cgan"))     # 2-D points: fully connected only
         and not (d == "folder" and m in ("cgan", "cdcgan"))]          # no labels in a folder


@pytest.mark.parametrize("model,data", VALID, ids=[f"{m}-{d}" for m, d in VALID])
def test_every_model_meets_every_data_set(tmp_path, model, data, mnist_root):
    extra = [f"data.root={_folder_of_images(tmp_path / 'images')}"] if data == "folder" else []
    tiny = [o for o in TINY_MODELS[model] if not o.startswith("data.")]
    overrides = DATA[data] + extra + [f"model={model}", *tiny, "model.z_dim=8", "train.steps=2",
                                      "train.batch_size=8", "train.log_every=1", "train.sample_every=0",
                                      "train.checkpoint_every=0", "train.num_samples=4", "device=cpu"]
    last = run(compose_config(overrides=overrides), tmp_path / "run")
    assert math.isfinite(last["loss/d"]) and math.isfinite(last["loss/g"])


def test_bf16_autocast_follows_the_fp32_losses(tmp_path):
    """train.precision=bf16 computes the same function: over 50 steps from one seed its losses stay
    within bfloat16's tolerance of the fp32 run's (8 mantissa bits: about 0.4% per rounding)."""
    rows = {}
    for precision in ("fp32", "bf16"):
        out = tmp_path / precision
        out.mkdir()
        run(compose_config(overrides=[*TINY, "train.steps=50", "train.log_every=10", "train.sample_every=0",
                                      "train.checkpoint_every=0", f"train.precision={precision}"]), out)
        rows[precision] = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    for fp32, bf16 in zip(rows["fp32"], rows["bf16"]):
        for name in ("loss/d", "loss/g", "d/real", "d/fake"):
            torch.testing.assert_close(bf16[name], fp32[name], rtol=0.03, atol=0.01)
    assert rows["fp32"][-1]["loss/g"] != rows["bf16"][-1]["loss/g"]  # the bf16 path did run in bf16


def test_precision_auto_takes_bf16_only_where_the_cpu_computes_it_natively(monkeypatch):
    from gan_cli import build

    cpu = torch.device("cpu")
    for avx512_bf16, amx, want in ((False, False, None), (True, False, torch.bfloat16), (False, True, torch.bfloat16)):
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
        assert build.precision("auto", cpu) is want
        assert build.precision("bf16", cpu) is torch.bfloat16 and build.precision("fp32", cpu) is None  # as named
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported")  # a torch without the (private) probe: fp32
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    assert build.precision("auto", cpu) is None


def test_a_run_with_precision_auto_says_what_it_chose(tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    with caplog.at_level("INFO", logger="gan_cli"):
        run(compose_config(overrides=[*TINY, "train.precision=auto", "device=cpu"]), tmp_path)
    assert "train.precision=auto: fp32 (this device has no native bf16) on cpu" in caplog.text
    saved = checkpoint.load(tmp_path / "checkpoints" / "last.pt")
    assert saved["config"]["train"]["precision"] == "auto"  # a resume on another machine chooses again


def test_an_unknown_precision_is_refused(tmp_path):
    from gan_cli.errors import UserError

    with pytest.raises(UserError, match="train.precision=fp8 is not one of fp32, bf16 or auto"):
        run(compose_config(overrides=[*TINY, "train.precision=fp8"]), tmp_path)


def test_the_ema_ramps_its_half_life_up_with_the_steps():
    from torch import nn

    from gan_cli.algorithms.base import Algorithm

    G = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        G.weight.fill_(0.0)
    algorithm = Algorithm({"G": G}, {}, ema=0.999)
    algorithm.end_step(None)  # the first update copies G
    expected = 0.0
    for n, value in enumerate([1.0, 2.0, 3.0], start=1):
        with torch.no_grad():
            G.weight.fill_(value)
        algorithm.end_step(None)
        # half-life min(ln 0.5 / ln 0.999, 0.05 n) steps: beta = 0.5 ** (1 / (0.05 n))
        beta = 0.5 ** (1 / (0.05 * n))
        expected = beta * expected + (1 - beta) * value
        torch.testing.assert_close(algorithm.ema.module.weight.item(), expected)
    assert algorithm.ema.module.weight.item() > 2.99  # it follows G closely this early: 0.999 alone would give 0.006
