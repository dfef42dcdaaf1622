"""LAPGAN (Denton et al. 2015): the pyramid, the cascade, per-level training through the real command."""

from __future__ import annotations


import pytest
import torch
import torch.nn.functional as F

from gan_cli import checkpoint
from gan_cli.commands.diagnose import _each_d
from gan_cli.errors import UserError
from gan_cli.models.lapgan import Generator, down, pyramid, pyramid_sides, up
from tests.helpers import TINY, gan, logged, one_line_error

LAPGAN_TINY = [*TINY, "algorithm=lapgan", "model=lapgan", "model.g.coarse_hidden=16", "model.d.coarse_hidden=8",
               "train.log_every=1"]  # 16 px fake data: levels 16 and 8


def test_pyramid_sides_halve_down_to_7_or_8():
    assert pyramid_sides(28) == [28, 14, 7] and pyramid_sides(32) == [32, 16, 8]
    assert pyramid_sides(64) == [64, 32, 16, 8] and pyramid_sides(14) == [14, 7]
    for side in (30, 8, 7, 20):
        with pytest.raises(UserError, match="halve down to 7 or 8"):
            pyramid_sides(side)


def test_the_pyramid_adds_back_up_to_the_image():
    torch.manual_seed(0)
    x = torch.randn(2, 1, 28, 28)
    lows, highs = pyramid(x, 3)
    assert [h.shape[-1] for h in highs] == [28, 14, 7] and [l.shape[-1] for l in lows] == [28, 14]
    torch.testing.assert_close(highs[2], down(down(x)))  # the coarsest image: twice blurred and halved
    torch.testing.assert_close(lows[0], up(down(x)))  # 2x2 means, bilinearly expanded
    image = highs[2]
    for k in (1, 0):  # eq. 2 run on the real pyramid: I_k = u(I_{k+1}) + h_k
        image = up(image) + highs[k]
    torch.testing.assert_close(image, x)


def test_the_cascade_adds_each_level_high_pass_to_the_upsampled_coarser_image():
    torch.manual_seed(0)
    G = Generator(10, (1, 28, 28), width=8, coarse_hidden=16)
    assert G.z_dim == 10  # z is the coarsest level's
    z = torch.randn(3, 10)
    planes = G.noise_planes(z)
    assert [p.shape for p in planes] == [(3, 1, 28, 28), (3, 1, 14, 14)]
    steps = G.cascade(z)
    torch.testing.assert_close(steps[0][2], G.levels[2](z))
    for (_, _, coarser), (low, high, image) in zip(steps, steps[1:]):
        torch.testing.assert_close(low, up(coarser))
        torch.testing.assert_close(image, low + high)
    torch.testing.assert_close(steps[1][1], G.levels[1](planes[1], up(steps[0][2])))
    torch.testing.assert_close(G(z), steps[-1][2])


def test_a_sample_noise_planes_are_a_function_of_its_own_z():
    G = Generator(10, (1, 28, 28), width=8, coarse_hidden=16)
    z = torch.randn(3, 10)
    alone = G.noise_planes(z[1:2])
    together = G.noise_planes(z)
    for a, b in zip(alone, together):
        torch.testing.assert_close(a[0], b[1], rtol=0, atol=0)  # whatever the batch
    torch.testing.assert_close(G(z[1:2]), G(z)[1:2])
    first, second = together[0][0].flatten(), together[0][1].flatten()
    # another z, independent planes: their correlation is 0 within sampling error (784 values: sd 0.036)
    torch.testing.assert_close(torch.corrcoef(torch.stack([first, second]))[0, 1].item(), 0.0, rtol=0, atol=0.12)
    torch.testing.assert_close(first.std().item(), 1.0, rtol=0.1, atol=0)  # N(0, 1)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run = tmp_path_factory.mktemp("lapgan")
    gan("train", *LAPGAN_TINY, f"hydra.run.dir={run}", cwd=run, check=True)
    return run


def test_every_level_trains_and_logs_its_own_d(trained):
    rows = logged(trained)
    last = rows[-1]
    for side in (16, 8):
        assert {f"lapgan/{side}px/acc_real", f"lapgan/{side}px/acc_fake", f"lapgan/{side}px/loss_g"} <= last.keys()
    torch.testing.assert_close(last["acc/real"], (last["lapgan/16px/acc_real"] + last["lapgan/8px/acc_real"]) / 2)
    torch.testing.assert_close(last["loss/d"], last["lapgan/16px/loss_d"] + last["lapgan/8px/loss_d"])
    state = checkpoint.load(trained / "checkpoints" / "last.pt")
    assert any(k.startswith("levels.0.") for k in state["models"]["G"])  # one checkpoint, every level
    assert any(k.startswith("levels.1.") for k in state["models"]["D"])


def test_sample_runs_the_cascade(trained, tmp_path):
    gan("sample", f"checkpoint={trained}/checkpoints/last.pt", "n=4", f"out={tmp_path}/s.pt", "device=cpu",
        cwd=tmp_path, check=True)
    samples = torch.load(tmp_path / "s.pt", weights_only=True)
    G = checkpoint.Saved.load(trained / "checkpoints" / "last.pt").generator(torch.device("cpu"))
    assert samples["samples"].shape == (4, 1, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(samples["samples"], G(samples["z"]))


def test_level_trains_that_level_alone(tmp_path):
    runs = {}
    for steps in (2, 4):
        runs[steps] = tmp_path / f"r{steps}"
        gan("train", *LAPGAN_TINY, "algorithm.level=1", f"train.steps={steps}", f"hydra.run.dir={runs[steps]}",
            cwd=tmp_path, check=True)
    a, b = (checkpoint.load(runs[s] / "checkpoints" / "last.pt")["models"]["G"] for s in (2, 4))
    assert all(torch.equal(a[k], b[k]) for k in a if k.startswith("levels.0."))  # the finest never moved
    assert not all(torch.equal(a[k], b[k]) for k in a if k.startswith("levels.1."))
    rows = logged(runs[4])
    assert "lapgan/8px/acc_real" in rows[-1] and "lapgan/16px/acc_real" not in rows[-1]


@pytest.mark.parametrize("overrides,needles", [
    (["algorithm=lapgan", "model=lapgan", "algorithm.level=2"], ["algorithm.level=2", "levels 0", "to 1"]),
    (["algorithm=lapgan"], ["algorithm=lapgan", "model=lapgan"]),
    (["model=lapgan"], ["lapgan's networks are trained by algorithm=lapgan", "not algorithm=gan"]),
    (["algorithm=lapgan", "model=lapgan", "data.resolution=20"], ["20x20", "7 or 8"]),
])
def test_impossible_settings_are_refused_in_one_line(tmp_path, overrides, needles):
    proc = gan("train", *TINY, *overrides, f"hydra.run.dir={tmp_path}/r", cwd=tmp_path)
    one_line_error(proc, *needles)
    assert not (tmp_path / "r").exists()


def test_diagnose_names_each_level_d():
    balance = {"acc/real": 0.7, "acc/fake": 0.5, "lapgan/16px/acc_real": 0.9, "lapgan/16px/acc_fake": 0.8,
               "lapgan/8px/acc_real": 0.5, "lapgan/8px/acc_fake": 0.2, "d_a/acc_real": 0.6, "d_a/acc_fake": 0.4}
    assert _each_d(balance) == [("lapgan/16px", "90%", "80%"), ("lapgan/8px", "50%", "20%"), ("D_A", "60%", "40%")]


def test_the_finest_d_judges_a_whole_image_through_its_pyramid():
    from gan_cli.models.lapgan import Discriminator

    torch.manual_seed(0)
    D = Discriminator((1, 16, 16), width=8, coarse_hidden=8).eval()
    x = torch.randn(2, 1, 16, 16)
    low = F.interpolate(F.avg_pool2d(x, 2), scale_factor=2.0, mode="bilinear", align_corners=False)
    torch.testing.assert_close(D(x), D.levels[0](x - low, low))


def test_diagnose_suggests_only_cures_the_algorithm_takes():
    from gan_cli.diagnose.detectors import applicable

    cures = ["model.z_dim=200", "loss.r1=1", "loss.feature_matching=true", "loss=wgan_gp"]
    lapgan = {"algorithm": {"_target_": "gan_cli.algorithms.lapgan.LAPGAN"}}
    assert applicable(lapgan, cures) == ["model.z_dim=200", "loss.r1=1", "loss=wgan_gp"]
    assert applicable({"algorithm": {"_target_": "gan_cli.algorithms.gan.GAN"}}, cures) == cures
    assert applicable({"algorithm": {"_target_": "os.system"}}, cures) == cures  # a stranger's target: not imported
