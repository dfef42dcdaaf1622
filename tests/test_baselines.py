"""The baselines the course sets against GANs: the VAE (Kingma & Welling 2014), the autoencoder whose samples
come from a Gaussian fitted to its codes, and scikit-learn's Gaussian mixture, all through the real runner."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from gan_cli import checkpoint, elbo
from gan_cli.algorithms.autoencoder import code_gaussian
from gan_cli.models.autoencoder import CodeGaussianDecoder, Decoder, Encoder
from tests.helpers import TINY_DATA, gan, logged, one_line_error

TRAIN = ["model.z_dim=4", "model.encoder.width=8", "model.decoder.width=8", "train.steps=4", "train.batch_size=8",
         "train.log_every=1", "train.sample_every=2", "train.checkpoint_every=2", "train.num_samples=4", "device=cpu"]
VAE_TINY = [*TINY_DATA, "algorithm=vae", "model=vae", *TRAIN]
AE_TINY = [*TINY_DATA, "algorithm=autoencoder", "model=autoencoder", *TRAIN]


# -- the ELBO's terms, by hand ---------------------------------------------------------------------------

def test_gaussian_kl_is_the_closed_form_of_kl_to_the_standard_normal():
    mu = torch.tensor([[0.0, 1.0, -2.0], [0.5, 0.0, 0.0]])
    logvar = torch.tensor([[0.0, math.log(4.0), -1.0], [0.0, 0.0, 0.0]])
    by_hand = torch.tensor([
        0.5 * ((0 + 1 - 1 - 0) + (1 + 4 - 1 - math.log(4.0)) + (4 + math.exp(-1) - 1 + 1)),
        0.5 * 0.25,
    ])
    torch.testing.assert_close(elbo.gaussian_kl(mu, logvar), by_hand)
    q = Normal(mu, (0.5 * logvar).exp())
    torch.testing.assert_close(elbo.gaussian_kl(mu, logvar), kl_divergence(q, Normal(0.0, 1.0)).sum(1))


def test_bernoulli_log_likelihood_sums_pixel_cross_entropies_per_image():
    logits = torch.tensor([[[0.0, 2.0], [-1.0, 3.0]]])[:, None]  # (1, 1, 2, 2)
    pixels = torch.tensor([[[1.0, 0.0], [0.25, 1.0]]])[:, None]
    p = torch.sigmoid(logits)
    by_hand = (pixels * p.log() + (1 - pixels) * (1 - p).log()).sum()
    torch.testing.assert_close(elbo.bernoulli_log_likelihood(logits, pixels), by_hand[None])
    torch.testing.assert_close(elbo.bernoulli_log_likelihood(torch.zeros(2, 1, 3, 3), torch.ones(2, 1, 3, 3)),
                               torch.full((2,), 9 * math.log(0.5)))


def test_gaussian_log_likelihood_is_a_sum_of_normal_log_densities():
    mean, pixels = torch.tensor([[0.2, 0.9, 0.5]]), torch.tensor([[0.0, 1.0, 0.5]])
    torch.testing.assert_close(elbo.gaussian_log_likelihood(mean, pixels, 0.1),
                               Normal(mean, 0.1).log_prob(pixels).sum(1))
    torch.testing.assert_close(elbo.to_pixels(torch.tensor([-1.0, 0.0, 1.0])), torch.tensor([0.0, 0.5, 1.0]))


def test_the_reparameterisation_carries_the_gradient_into_mu_and_sigma():
    mu = torch.tensor([0.3, -1.0], requires_grad=True)
    logvar = torch.tensor([0.0, math.log(0.25)], requires_grad=True)
    eps = torch.tensor([1.5, -2.0])
    z = elbo.reparameterise(mu, logvar, eps)
    torch.testing.assert_close(z, torch.tensor([0.3 + 1.5, -1.0 + 0.5 * -2.0]))
    z.sum().backward()
    torch.testing.assert_close(mu.grad, torch.ones(2))  # dz/dmu = 1
    torch.testing.assert_close(logvar.grad, 0.5 * (0.5 * logvar.detach()).exp() * eps)  # dz/dlogvar = sigma eps / 2


def test_the_reconstruction_alone_trains_the_encoder_through_the_sampled_z():
    """beta = 0: no KL term, so every gradient the encoder gets came through z = mu + sigma * eps."""
    torch.manual_seed(0)
    E, G = Encoder((1, 16, 16), 4, width=8), Decoder(4, (1, 16, 16), width=8)
    x = torch.rand(3, 1, 16, 16) * 2 - 1
    mu, logvar = E(x)
    logits = G.logits(elbo.reparameterise(mu, logvar, torch.randn_like(mu)))
    (-elbo.bernoulli_log_likelihood(logits, elbo.to_pixels(x)).mean()).backward()
    assert mu.shape == logvar.shape == (3, 4)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in E.head.parameters())


def test_the_decoder_mean_is_the_bernoulli_mean_in_image_units():
    torch.manual_seed(0)
    G = Decoder(4, (1, 16, 16), width=8).eval()
    z = torch.randn(5, 4)
    torch.testing.assert_close(torch.sigmoid(G.logits(z)), (G(z) + 1) / 2)
    assert G(z).shape == (5, 1, 16, 16) and G.z_dim == 4 and G.num_classes is None


# -- the autoencoder's Gaussian over codes ---------------------------------------------------------------

def test_the_code_gaussian_is_the_codes_mean_and_covariance():
    torch.manual_seed(0)
    codes = torch.randn(500, 3) @ torch.tensor([[2.0, 0.0, 0.0], [1.0, 0.5, 0.0], [0.0, -1.0, 0.3]]) + 4
    mean, L = code_gaussian(codes)
    c = codes.double()
    torch.testing.assert_close(mean, c.mean(0))
    by_hand = (c - c.mean(0)).T @ (c - c.mean(0)) / (len(c) - 1)
    torch.testing.assert_close(L @ L.T, by_hand)
    torch.testing.assert_close(L @ L.T, torch.cov(c.T))
    assert torch.equal(L, L.tril())


def test_codes_on_a_subspace_still_get_a_factor():
    codes = torch.randn(50, 1).repeat(1, 3)  # rank 1: a singular covariance
    mean, L = code_gaussian(codes)
    assert torch.isfinite(L).all()
    torch.testing.assert_close(L @ L.T, torch.cov(codes.double().T), atol=1e-6, rtol=1e-4)


def test_the_autoencoder_decoder_samples_through_the_fitted_gaussian():
    torch.manual_seed(0)
    G = CodeGaussianDecoder(3, (1, 16, 16), width=8).eval()
    mean, L = torch.tensor([1.0, -2.0, 0.5]), torch.tensor([[1.0, 0, 0], [0.5, 2.0, 0], [0.0, -1.0, 0.1]])
    G.set_code_gaussian(mean, L)
    z = torch.randn(4, 3)
    torch.testing.assert_close(G(z), G.decode(mean + z @ L.T))
    assert set(G.state_dict()) >= {"code_mean", "code_scale_tril"}  # saved with the weights, as tensors


# -- the real command: refusals -------------------------------------------------------------------------

def test_a_negative_beta_is_one_line_and_leaves_no_run(tmp_path):
    run = tmp_path / "run"
    line = one_line_error(gan("train", *VAE_TINY, "algorithm.beta=-0.5", f"hydra.run.dir={run}", cwd=tmp_path),
                          "algorithm.beta=-0.5", "0 or more")
    assert "Traceback" not in line and not run.exists()


def test_input_on_a_gan_checkpoint_is_one_line(tmp_path):
    from tests.helpers import TINY

    gan("train", *TINY, f"hydra.run.dir={tmp_path / 'gan'}", cwd=tmp_path, check=True)
    (tmp_path / "in").mkdir()
    _digit(tmp_path / "in" / "a.png")
    one_line_error(gan("sample", f"checkpoint={tmp_path / 'gan/checkpoints/last.pt'}", f"input={tmp_path / 'in'}",
                       cwd=tmp_path), "input=", "has no encoder", "algorithm=vae")


@pytest.mark.parametrize("family", [["algorithm=autoencoder", "model=autoencoder", *TRAIN],
                                    ["algorithm=gmm", "model=gmm", "device=cpu"]])
def test_an_average_of_weights_is_refused_where_it_means_nothing(tmp_path, family):
    one_line_error(gan("train", *TINY_DATA, *family, "train.ema=0.9", cwd=tmp_path), "train.ema=0.9")


def test_a_vae_on_points_is_one_line(tmp_path):
    one_line_error(gan("train", "algorithm=vae", "model=vae", "data=toy_ring", "train.steps=1", cwd=tmp_path),
                   "2-D points", "algorithm=gmm")


# -- the real command: one short run per family ---------------------------------------------------------

def _digit(path: Path, side: int = 16, colour: bool = False) -> None:
    from PIL import Image, ImageDraw

    im = Image.new("RGB" if colour else "L", (side, side))
    ImageDraw.Draw(im).ellipse((3, 2, side - 4, side - 3), outline="white", width=2)
    im.save(path)


def test_vae_trains_samples_from_the_prior_and_reconstructs_input(tmp_path):
    run = tmp_path / "vae"
    gan("train", *VAE_TINY, "train.ema=0.9", f"hydra.run.dir={run}", cwd=tmp_path, check=True)  # samples: the EMA's
    rows = logged(run)
    assert len(rows) == 4
    for row in rows:  # the bound, per image, in nats: recon and KL add up to -ELBO; beta 1: the loss is -ELBO
        assert row["vae/kl"] >= 0 and row["vae/recon"] > 0
        assert row["vae/elbo"] == pytest.approx(-(row["vae/recon"] + row["vae/kl"]), rel=1e-5)
        assert row["loss/vae"] == pytest.approx(-row["vae/elbo"], rel=1e-5)
    last = run / "checkpoints" / "last.pt"
    saved = checkpoint.load(last)
    assert set(saved["models"]) == {"G", "E"} and set(saved["optimizers"]) == {"G"} and saved["ema"] is not None
    gan("sample", f"checkpoint={last}", "n=6", f"out={tmp_path / 's.pt'}", cwd=tmp_path, check=True)
    drawn = torch.load(tmp_path / "s.pt", weights_only=True)
    assert drawn["samples"].shape == (6, 1, 16, 16) and drawn["z"].shape == (6, 4)
    arithmetic = tmp_path / "arithmetic"  # in the VAE's latent space, as for any G of z
    gan("latent-arithmetic", f"checkpoint={last}", "a=[1,2]", "b=[3]", "c=[4]", f"hydra.run.dir={arithmetic}",
        cwd=tmp_path, check=True)
    assert (arithmetic / "arithmetic.png").is_file()
    (tmp_path / "in").mkdir()
    _digit(tmp_path / "in" / "o.png")
    _digit(tmp_path / "in" / "c.png", colour=True)  # converted to the model's grey, as data=folder does
    proc = gan("sample", f"checkpoint={last}", f"input={tmp_path / 'in'}", f"out={tmp_path / 'rec'}", cwd=tmp_path,
               check=True)
    assert "2 images reconstructed" in proc.stdout
    assert sorted(p.name for p in (tmp_path / "rec").iterdir()) == ["c.png", "o.png"]
    gan("sample", f"checkpoint={last}", f"input={tmp_path / 'in'}", f"out={tmp_path / 'pairs.png'}", cwd=tmp_path,
        check=True)
    from PIL import Image

    assert Image.open(tmp_path / "pairs.png").size == (2 + 2 * 18, 2 + 2 * 18)  # a row per input: input | output
    _digit(tmp_path / "big.png", side=20)
    one_line_error(gan("sample", f"checkpoint={last}", f"input={tmp_path / 'big.png'}", cwd=tmp_path),
                   "20x20", "16x16")
    # four steps on noise images: the posterior has not left the prior yet, which is what collapse looks like
    report = gan("diagnose", f"run={run}", "samples=0", cwd=tmp_path, check=True).stdout
    assert "verdict: posterior collapse" in report and "ELBO" in report
    assert "not applicable: convergence failure, vanishing gradient, oscillation" in report
    assert "try: gan train algorithm.beta=0.25" in report and "model.d." not in report


def test_autoencoder_trains_fits_its_codes_and_samples(tmp_path):
    run = tmp_path / "ae"
    gan("train", *AE_TINY, f"hydra.run.dir={run}", cwd=tmp_path, check=True)
    assert all(row["ae/recon"] > 0 for row in logged(run))
    for name in ("step_0000002.pt", "last.pt"):  # refitted at each checkpoint, kept as tensors
        G = checkpoint.load(run / "checkpoints" / name)["models"]["G"]
        assert G["code_mean"].shape == (4,) and G["code_scale_tril"].shape == (4, 4)
        assert not torch.equal(G["code_scale_tril"], torch.eye(4))
    gan("sample", f"checkpoint={run / 'checkpoints/last.pt'}", "n=4", f"out={tmp_path / 's.png'}", cwd=tmp_path,
        check=True)
    (tmp_path / "in").mkdir()
    _digit(tmp_path / "in" / "o.png")
    proc = gan("sample", f"checkpoint={run / 'checkpoints/last.pt'}", f"input={tmp_path / 'in'}", cwd=tmp_path,
               check=True)
    assert "1 image reconstructed" in proc.stdout


# -- the Gaussian mixture ------------------------------------------------------------------------------

def _mixture_data(n: int = 3000) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, 3, generator=g) @ torch.tensor([[0.5, 0.2, 0.0], [0.0, 0.3, 0.1], [0.0, 0.0, 0.2]])
    b = torch.randn(n // 2, 3, generator=g) * 0.3 + torch.tensor([2.0, -1.0, 0.5])
    return torch.cat([a, b])


@pytest.mark.parametrize("covariance", ["full", "diag", "tied", "spherical"])
def test_the_mixture_samples_as_sklearn_samples_its_fit(covariance):
    from sklearn.mixture import GaussianMixture as EM

    from gan_cli.models.gmm import GaussianMixture

    x = _mixture_data()
    G = GaussianMixture((3,), components=2, covariance=covariance)
    stats = G.fit(x, seed=0)
    em = EM(n_components=2, covariance_type=covariance, reg_covar=1e-6, random_state=0).fit(x.double().numpy())
    torch.testing.assert_close(G.weights, torch.from_numpy(em.weights_).float())
    torch.testing.assert_close(G.means, torch.from_numpy(em.means_).float())
    assert stats["gmm/log_likelihood"] == pytest.approx(em.score(x.double().numpy()), rel=1e-6)
    n = 200_000
    mine = G(torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(1))).double()
    theirs = torch.from_numpy(em.sample(n)[0])
    assert G.z_dim == 4 and mine.shape == (n, 3)
    torch.testing.assert_close(mine.mean(0), theirs.mean(0), atol=0.02, rtol=0)
    torch.testing.assert_close(torch.cov(mine.T), torch.cov(theirs.T), atol=0.02, rtol=0)
    shares = torch.bincount(G.component(torch.randn(n)), minlength=2).double() / n  # k with probability pi_k
    torch.testing.assert_close(shares, torch.from_numpy(em.weights_), atol=0.01, rtol=0)


def test_a_mixture_sample_is_a_function_of_its_own_z():
    from gan_cli.models.gmm import GaussianMixture

    G = GaussianMixture((3,), components=2)
    G.fit(_mixture_data(), seed=0)
    z = torch.randn(5, G.z_dim)
    torch.testing.assert_close(G(z[2:3]), G(z)[2:3])
    images = GaussianMixture((1, 2, 2), components=1, covariance="diag")
    images.means.fill_(0.9)
    assert images(torch.full((3, 5), 3.0)).max() == 1.0  # pixels clipped to the data's [-1, 1]


def test_more_components_than_samples_is_one_line_and_leaves_no_run(tmp_path):
    run = tmp_path / "run"
    one_line_error(gan("train", "algorithm=gmm", "model=gmm", *TINY_DATA, "model.components=65", "device=cpu",
                       f"hydra.run.dir={run}", cwd=tmp_path), "model.components=65", "64 samples")
    assert not run.exists()


def test_a_mixture_too_large_for_memory_is_one_line(tmp_path):
    one_line_error(gan("train", "algorithm=gmm", "model=gmm", "data=fake", "data.resolution=64", "model.components=1000",
                       "device=cpu", cwd=tmp_path), "12288 dimensions", "in memory", "model.covariance=diag")


def test_gmm_fits_once_through_gan_train_and_samples_and_evaluates(tmp_path):
    run = tmp_path / "gmm"
    gan("train", "algorithm=gmm", "model=gmm", "data=toy_ring", "model.components=8", "model.max_samples=2000",
        "train.steps=50", "device=cpu", f"hydra.run.dir={run}", cwd=tmp_path, check=True)
    rows = logged(run)
    assert len(rows) == 1 and rows[0]["step"] == 1 and rows[0]["gmm/converged"] == 1.0  # one fit, not 50 steps
    last = run / "checkpoints" / "last.pt"
    saved = checkpoint.load(last)
    assert saved["step"] == 1 and saved["optimizers"] == {}
    assert saved["models"]["G"]["scale"].shape == (8, 2, 2) and saved["models"]["G"]["means"].shape == (8, 2)
    gan("sample", f"checkpoint={last}", "n=100", f"out={tmp_path / 's.png'}", cwd=tmp_path, check=True)
    proc = gan("eval", f"checkpoint={last}", "n=2000", "metrics=[modes_covered,high_quality_share]", cwd=tmp_path,
               check=True)
    assert "modes_covered       8" in proc.stdout
    images = tmp_path / "images"  # flattened small images
    gan("train", "algorithm=gmm", "model=gmm", *TINY_DATA, "model.components=3", "model.covariance=diag",
        "device=cpu", f"hydra.run.dir={images}", cwd=tmp_path, check=True)
    gan("sample", f"checkpoint={images / 'checkpoints/last.pt'}", "n=4", f"out={tmp_path / 'i.pt'}", cwd=tmp_path,
        check=True)
    drawn = torch.load(tmp_path / "i.pt", weights_only=True)["samples"]
    assert drawn.shape == (4, 1, 16, 16) and drawn.abs().max() <= 1
    resumed = tmp_path / "resumed"
    one_line_error(gan("train", f"resume={last}", "train.steps=60", f"hydra.run.dir={resumed}", cwd=tmp_path),
                   "resume=", "fitted once")
    assert not resumed.exists()
    report = gan("diagnose", f"run={run}", "samples=0", cwd=tmp_path, check=True).stdout  # one row is enough
    assert "verdict: healthy. One EM fit: log-likelihood" in report and "not applicable: convergence" in report


def test_posterior_collapse_is_kl_near_zero_at_the_end():
    from gan_cli.diagnose.detectors import detect, posterior_collapse
    from gan_cli.diagnose.series import Series

    t = {"kl": 0.5, "tail": 0.2}
    steps = list(range(10, 110, 10))
    config = {"algorithm": {"_target_": "gan_cli.algorithms.vae.VAE", "beta": 4.0}}
    healthy = Series(steps, {"vae/kl": [30.0] * 10, "vae/recon": [100.0] * 10})
    assert posterior_collapse(healthy, config, t) == []
    kl = [5, 3, 1, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01, 0.01]
    [found] = posterior_collapse(Series(steps, {"vae/kl": kl, "vae/recon": [100.0] * 10}), config, t)
    assert found.kind == "posterior_collapse" and found.start == 90 and found.cures == ["algorithm.beta=1"]
    # a VAE's loss/g is never logged: the oscillation detector would read NaNs as a swing if it were asked
    swinging = Series(steps * 4, {"vae/kl": [30.0] * 40, "loss/g": [1.0, 5.0] * 20})
    thresholds = {"oscillation": {"window": 10, "amplitude": 0.5, "growth": 2.0}, "posterior_collapse": t}
    assert detect(swinging, config, thresholds) == []
