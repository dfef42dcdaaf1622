"""The deterministic autoencoder, a baseline the course sets against GANs: an encoder maps each image to a
code, a decoder maps it back, and both minimise a reconstruction error (L2, or the Bernoulli cross-entropy of
pixels in [0, 1]). It has no prior over codes, so it cannot sample by itself: its "samples" decode draws from
a Gaussian N(m, S) fitted to the codes of training images (mean and full covariance), refitted at every
checkpoint and at the end of training and kept in the checkpoint as tensors (CodeGaussianDecoder).

`Autoencoding` is what it shares with the VAE (gan_cli/algorithms/vae.py): an encoder "E" beside the decoder
"G" that `gan sample` rebuilds, one optimiser over both (optimizer.g), images only."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from gan_cli import elbo
from gan_cli.algorithms.base import Algorithm, Phase, Stats
from gan_cli.errors import UserError
from gan_cli.steps import autocast, update

if TYPE_CHECKING:
    from gan_cli.loop import Run

log = logging.getLogger(__name__)

ENCODE_BATCH = 500  # images per forward pass when the codes are fitted


class Autoencoding(Algorithm):
    inputs = ("z",)
    adversarial = False  # no discriminator: gan diagnose's detectors of the game do not apply
    encoder = "E"  # the network `gan sample input=` encodes the user's images with (reconstructions)
    optimized = {"G": ("E", "G")}  # one optimiser over the encoder and the decoder: optimizer.g

    @classmethod
    def networks(cls, shape, input_shape):
        return {"G": ("decoder", {"shape": shape}), "E": ("encoder", {"shape": shape})}

    @classmethod
    def check_data(cls, data) -> None:
        super().check_data(data)
        if not data.modality.images:
            raise UserError(f"algorithm={cls.__name__.lower()}'s encoder and decoder are convolutional and take images, "
                            f"and data={data.name} holds 2-D points: fit a Gaussian mixture to them instead "
                            f"(algorithm=gmm model=gmm, or experiment=gmm_toy_ring)")

    def __init__(self, models: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer], ema: float = 0.0):
        super().__init__(models, optimizers, ema)
        self.E, self.G = models["E"], models["G"]
        self.num_classes = None


def code_gaussian(codes: Tensor) -> tuple[Tensor, Tensor]:
    """The maximum-likelihood mean of codes (N, d) and the Cholesky factor L of their unbiased covariance
    (L L^T = S), in float64. A covariance that is singular (codes on a subspace, fewer codes than dimensions)
    gets the smallest diagonal jitter, from 1e-10 of its mean variance up, that makes it positive definite."""
    c = codes.double()
    mean = c.mean(dim=0)
    centred = c - mean
    cov = centred.T @ centred / max(len(c) - 1, 1)
    eye = torch.eye(cov.shape[0], dtype=cov.dtype, device=cov.device)
    scale = max(float(cov.diagonal().mean()), 1e-12)
    jitter = 0.0
    while True:
        L, info = torch.linalg.cholesky_ex(cov + jitter * eye)
        if int(info) == 0:
            return mean, L
        jitter = scale * 1e-10 if jitter == 0 else jitter * 10


class Autoencoder(Autoencoding):
    RECONSTRUCTIONS = ("l2", "bce")

    def __init__(self, models: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer],
                 reconstruction: str = "bce", fit_samples: int = 10000, fit_every: int = 0, ema: float = 0.0):
        """reconstruction: l2 (the squared error per image, in [0, 1] pixel units) or bce (the Bernoulli
        cross-entropy of [0, 1] pixels); fit_samples: training images whose codes the sampling Gaussian is
        fitted to; fit_every: steps between refits (the checkpoints'), besides the one at the end."""
        if reconstruction not in self.RECONSTRUCTIONS:
            raise UserError(f"algorithm.reconstruction={reconstruction}: choose l2 or bce")
        if ema:
            raise UserError(f"train.ema={ema}: the autoencoder samples through the Gaussian fitted to its encoder's "
                            f"codes, which an average of the decoder's past weights would not decode; train.ema works "
                            f"with algorithm=vae, whose prior is fixed")
        if fit_samples < 2:
            raise UserError(f"algorithm.fit_samples={fit_samples}: a covariance needs at least 2 codes (default 10000)")
        super().__init__(models, optimizers)
        if not callable(getattr(self.G, "set_code_gaussian", None)):
            raise UserError(f"algorithm=autoencoder samples by decoding a Gaussian fitted to its codes, and "
                            f"{type(self.G).__name__} has none to keep: use model=autoencoder")
        self.reconstruction, self.fit_samples, self.fit_every = reconstruction, fit_samples, fit_every
        self.fitted_step: int | None = None
        self.phases = [Phase("ae", self.step)]

    def reconstruction_error(self, logits: Tensor, pixels: Tensor) -> Tensor:
        """Per image (N,): the squared error of the decoder's mean, or the cross-entropy of its Bernoulli."""
        if self.reconstruction == "l2":
            return (torch.sigmoid(logits.float()) - pixels).pow(2).flatten(1).sum(dim=1)
        return -elbo.bernoulli_log_likelihood(logits, pixels)

    def step(self, run: Run) -> Stats:
        # min_{E, G}  E_x[ err(x, G(E(x))) ]
        x = run.next_batch().images
        with autocast(x, run.schedule.precision):
            logits = self.G.logits(self.E.encode(x))
        loss = self.reconstruction_error(logits, elbo.to_pixels(x)).mean()
        norm = update(self.optimizers["G"], loss, [self.E, self.G], run.world.average_gradients)
        return {"loss/ae": loss.detach(), "ae/recon": loss.detach(), "grad_norm/ae": norm}

    def end_step(self, run: Run) -> None:
        super().end_step(run)
        done = run.step + 1  # the loop counts this step after end_step
        if done == run.schedule.steps or (self.fit_every and done % self.fit_every == 0):
            self.fit_codes(run, done)

    def picture(self, run: Run, real: Tensor) -> tuple[Tensor, Tensor]:
        # a run stopped by its time budget ends before its scheduled last step: its final pictures and
        # checkpoint (written after them) still get codes fitted now
        if self.fitted_step != run.step:
            self.fit_codes(run, run.step)
        return super().picture(run, real)

    @torch.no_grad()
    def fit_codes(self, run: Run, step: int) -> None:
        """Fit N(m, S) to the codes of up to fit_samples training images (the encoder in eval mode, as it
        encodes at sampling time), and give it to the decoder."""
        x = run.data.draw(min(self.fit_samples, len(run.data)), run.seed)
        was = self.E.training
        self.E.eval()
        try:
            codes = torch.cat([self.E.encode(x[i:i + ENCODE_BATCH].to(run.device)).float()
                               for i in range(0, len(x), ENCODE_BATCH)])
        finally:
            self.E.train(was)
        mean, L = code_gaussian(codes)
        self.G.set_code_gaussian(mean.to(self.G.code_mean), L.to(self.G.code_scale_tril))
        self.fitted_step = step
        log.info("step %d: sampling Gaussian fitted to the codes of %d training images (mean norm %.3g, "
                 "mean variance %.3g)", step, len(codes), float(mean.norm()), float(L.pow(2).sum(1).mean()))
