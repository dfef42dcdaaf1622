"""ProGAN (Karras et al. 2018): the fade-in, equalized learning rate, pixel norm, the schedule, the drift
term, and the real command end to end, resumed in the middle of a fade."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from gan_cli import checkpoint
from gan_cli.algorithms.progan import stage_at
from gan_cli.losses import WGANGP
from gan_cli.models.equalized import EqualizedConv2d, EqualizedLinear, PixelNorm
from gan_cli.models.progan import Discriminator, Generator, shown_at
from tests.helpers import TINY, assert_resumes_bit_exact, gan, logged, one_line_error

# 16 px fake data: stages 4, 8, 16. Batch 8, so 16 images are 2 steps: stage 0 at steps 0-1, stage 1 fades
# in at steps 2-3 (alpha 0, 0.5) and is stable at 4-5, stage 2 fades in at 6-7 and trains on from 8.
PROGAN_TINY = [*TINY, "algorithm=progan", "model=progan", "loss=wgan_gp", "loss.drift=0.001",
               "algorithm.fade_images=16", "algorithm.stable_images=16", "train.ema=0.9", "train.log_every=1",
               "train.sample_every=1", "model.g.max_width=16", "model.d.max_width=16"]


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_at_alpha_0_a_new_stage_is_the_previous_one_upsampled(stage):
    torch.manual_seed(0)
    G, D = Generator(16, (3, 32, 32), width=8, max_width=32), Discriminator((3, 32, 32), width=8, max_width=32)
    # at alpha 0 both players deal in the previous stage's images (real ones too, through shown_at)
    z, x = torch.randn(4, 16), shown_at(torch.randn(4, 3, 32, 32), G.resolutions[stage - 1])
    outputs = []
    for s, alpha in ((stage, 0.0), (stage - 1, 1.0)):
        G.set_stage(s, alpha)
        D.set_stage(s, alpha)
        outputs.append((G(z), D(x)))
    (new_image, new_score), (old_image, old_score) = outputs
    torch.testing.assert_close(new_image, old_image)
    torch.testing.assert_close(new_score, old_score)
    G.set_stage(stage, 0.5)  # and half way, it is something else
    assert not torch.allclose(G(z), old_image)


def test_images_are_at_the_stage_resolution_repeated_up_to_the_data_size():
    torch.manual_seed(0)
    G = Generator(16, (1, 28, 28), width=8, max_width=32)
    assert G.resolutions == [7, 14, 28]
    G.set_stage(1, 1.0)
    image = G(torch.randn(2, 16))  # (2, 1, 28, 28), each 2x2 block one pixel of a 14x14 image
    assert image.shape == (2, 1, 28, 28)
    torch.testing.assert_close(image, F.interpolate(image[:, :, ::2, ::2], scale_factor=2.0, mode="nearest"))
    x = torch.randn(2, 1, 28, 28)
    # real images as stage 1 sees them, fully faded in: 2x2 means, repeated; half way: blended with 7x7's
    means = F.avg_pool2d(x, 2)
    torch.testing.assert_close(shown_at(x, 14), F.interpolate(means, scale_factor=2.0, mode="nearest"))
    coarse = F.interpolate(F.avg_pool2d(x, 4), scale_factor=4.0, mode="nearest")
    torch.testing.assert_close(shown_at(x, 14, 0.25), 0.75 * coarse + 0.25 * shown_at(x, 14))


def test_equalized_learning_rate_scales_weights_by_he_constant_at_run_time():
    torch.manual_seed(0)
    conv = EqualizedConv2d(8, 4, 3)
    x = torch.randn(2, 8, 5, 5)
    # stored N(0, 1); used times sqrt(2 / fan_in), fan_in = 8 * 3 * 3
    torch.testing.assert_close(conv(x), F.conv2d(x, conv.weight * math.sqrt(2 / 72), conv.bias, padding=1))
    with torch.no_grad():  # the constant is applied at every call, not folded into the weights once
        conv.weight.mul_(2.0)
    torch.testing.assert_close(conv(x), F.conv2d(x, conv.weight * math.sqrt(2 / 72), conv.bias, padding=1))
    big = EqualizedLinear(10_000, 10)
    torch.testing.assert_close(big.weight.std().item(), 1.0, rtol=0.02, atol=0)
    mapping = EqualizedLinear(4, 3, lr_multiplier=0.01, gain=1.0, bias_init=1.0)
    v = torch.randn(5, 4)
    torch.testing.assert_close(mapping(v), v @ (mapping.weight * 0.01 / 2).T + mapping.bias * 0.01)
    torch.testing.assert_close(mapping.bias * 0.01, torch.ones(3))


def test_pixel_norm_gives_each_pixel_unit_mean_square():
    x = torch.tensor([[[[3.0]], [[4.0]]]])  # one pixel, channels (3, 4): mean square 12.5
    torch.testing.assert_close(PixelNorm()(x), x / math.sqrt(12.5 + 1e-8))


def test_the_schedule_counts_images():
    # stable 100 at stage 0, then per stage fade 50, stable 100; three stages
    assert [stage_at(n, 3, 50, 100) for n in (0, 99, 100, 125, 150, 249, 250, 275, 10_000)] == [
        (0, 1.0), (0, 1.0), (1, 0.0), (1, 0.5), (1, 1.0), (1, 1.0), (2, 0.0), (2, 0.5), (2, 1.0)]
    assert stage_at(10_000, 1, 50, 100) == (0, 1.0)  # one stage: nothing to grow


def test_the_drift_term_matches_a_hand_computation():
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([0.5, -0.5])
    # E[D(G(z))] - E[D(x)] + 0.001 * E[D(x)^2] = 0 - 2 + 0.001 * 5
    torch.testing.assert_close(WGANGP(drift=0.001).d_objective(real, fake), torch.tensor(-2 + 0.005))
    torch.testing.assert_close(WGANGP().d_objective(real, fake), torch.tensor(-2.0))


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    run = tmp_path_factory.mktemp("progan")
    gan("train", *PROGAN_TINY, "train.steps=8", f"hydra.run.dir={run}", cwd=run, check=True)
    return run


def test_training_grows_and_logs_its_stage(straight):
    rows = logged(straight)
    assert [(r["step"], r["progan/resolution"], r["progan/alpha"]) for r in rows] == [
        (1, 4, 1.0), (2, 4, 1.0), (3, 8, 0.0), (4, 8, 0.5), (5, 8, 1.0), (6, 8, 1.0), (7, 16, 0.0), (8, 16, 0.5)]
    assert {"loss/d", "loss/g", "loss/gp"} <= rows[-1].keys()
    names = {p.name for p in (straight / "samples").iterdir()}
    assert {"real.png", "real_4x4.png", "real_8x8.png", "real_16x16.png", "step_0000008.png"} <= names
    state = checkpoint.load(straight / "checkpoints" / "last.pt")
    for weights in (state["models"]["G"], state["models"]["D"]):
        assert weights["_extra_state"] == {"stage": 2, "alpha": 0.5}
    assert state["ema"]["module._extra_state"] == {"stage": 2, "alpha": 0.5}


def test_resume_in_the_middle_of_a_fade_is_bit_exact(straight, tmp_path):
    _, resumed = assert_resumes_bit_exact(straight, tmp_path, PROGAN_TINY, stop=4, steps=8)
    # stopped half way through 8x8's fade-in (step 3's alpha, 0.5), it went on to 16x16's
    first = checkpoint.load(tmp_path / "first" / "checkpoints" / "last.pt")
    assert first["models"]["G"]["_extra_state"] == {"stage": 1, "alpha": 0.5}
    assert resumed["models"]["G"]["_extra_state"] == {"stage": 2, "alpha": 0.5}


def test_sample_draws_at_the_checkpoint_stage(straight, tmp_path):
    out = tmp_path / "s.pt"
    gan("sample", f"checkpoint={straight}/checkpoints/last.pt", "n=4", f"out={out}", "device=cpu", cwd=tmp_path,
        check=True)
    images = torch.load(out, weights_only=True)["samples"]
    assert images.shape == (4, 1, 16, 16)
    G = checkpoint.Saved.load(straight / "checkpoints" / "last.pt").generator(torch.device("cpu"))
    assert (G.stage, G.alpha) == (2, 0.5)


def test_progan_needs_growing_networks(tmp_path):
    proc = gan("train", *TINY, "algorithm=progan", f"hydra.run.dir={tmp_path}/r", cwd=tmp_path)
    one_line_error(proc, "algorithm=progan grows model=progan", "model=progan")
    assert not (tmp_path / "r").exists()


def test_the_critic_gradient_is_taken_at_the_stage_resolution():
    torch.manual_seed(0)
    D = Discriminator((1, 32, 32), width=8, max_width=16, minibatch_stddev=0)
    D.set_stage(0, 1.0)  # 4x4: each pixel of the stage is an 8x8 block of the input
    low = torch.randn(2, 1, 4, 4, requires_grad=True)
    (grad_low,) = torch.autograd.grad(D(F.interpolate(low, scale_factor=8.0)).sum(), low)
    high = F.interpolate(low.detach(), scale_factor=8.0).requires_grad_(True)
    (grad_high,) = torch.autograd.grad(D(high).sum(), high)
    # WGAN-GP's ||grad|| is the same whether taken at 4x4 or on the repeated 32x32 image
    torch.testing.assert_close(grad_high.flatten(1).norm(dim=1), grad_low.flatten(1).norm(dim=1))


@pytest.mark.parametrize("stage", [{"stage": 9, "alpha": 0.5}, {"stage": 1, "alpha": float("nan")}, "x"])
def test_a_crafted_stage_in_a_checkpoint_is_one_line(straight, tmp_path, stage):
    state = checkpoint.load(straight / "checkpoints" / "last.pt")
    state["models"]["G"]["_extra_state"] = stage
    state["ema"]["module._extra_state"] = stage
    crafted = tmp_path / "crafted.pt"
    torch.save(state, crafted)
    proc = gan("sample", f"checkpoint={crafted}", "n=2", f"out={tmp_path}/s.png", "device=cpu", cwd=tmp_path)
    one_line_error(proc, "crafted.pt", "generator")
    assert not (tmp_path / "s.png").exists()
