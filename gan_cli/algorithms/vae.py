"""The variational autoencoder (Kingma & Welling 2014, "Auto-Encoding Variational Bayes"): an encoder gives a
Gaussian posterior q(z|x) = N(mu(x), diag(sigma(x)^2)), a decoder gives p(x|z), and both maximise the evidence
lower bound by the reparameterisation z = mu + sigma * eps (gan_cli/elbo.py):

    max_{E, G}  E_x[ E_q(z|x)[log p(x|z)] - beta KL(q(z|x) || N(0, I)) ]

beta = 1 is the paper's ELBO; beta > 1 is the beta-VAE (Higgins et al. 2017), which trades reconstruction for
a posterior closer to the prior. One eps per image per step, as the paper's L = 1 with minibatches of 100.
The decoder is the network `gan sample` rebuilds as G: sampling draws z ~ N(0, I) from the prior and shows
the decoder's mean E[x|z] (drawing pixels from the Bernoulli would add only salt-and-pepper noise).

Logged per image, in nats: vae/recon = -E_q[log p(x|z)] (one draw), vae/kl, vae/elbo = -(recon + kl), the
bound itself whatever beta is; loss/vae is the objective minimised, recon + beta kl."""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING

import torch
from torch import nn

from gan_cli import elbo
from gan_cli.algorithms.autoencoder import Autoencoding
from gan_cli.algorithms.base import Phase, Stats
from gan_cli.errors import UserError
from gan_cli.steps import autocast, update

if TYPE_CHECKING:
    from gan_cli.loop import Run


# log p(x|z) per image from the decoder's logits (gan_cli/models/autoencoder.py); sigma is the Gaussian's only
def bernoulli(logits, pixels, sigma: float):
    return elbo.bernoulli_log_likelihood(logits, pixels)


def gaussian(logits, pixels, sigma: float):
    return elbo.gaussian_log_likelihood(torch.sigmoid(logits.float()), pixels, sigma)


LIKELIHOODS = {"bernoulli": bernoulli, "gaussian": gaussian}


class VAE(Autoencoding):
    def __init__(self, models: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer],
                 beta: float = 1.0, likelihood: str = "bernoulli", sigma: float = 0.1, ema: float = 0.0):
        """beta: the weight of the KL term (1: the ELBO); likelihood: bernoulli or gaussian, of pixels in
        [0, 1]; sigma: the Gaussian's fixed standard deviation, in those units; ema: the decay of a moving
        average of the decoder's weights for sampling (0: off)."""
        if not (isinstance(beta, (int, float)) and math.isfinite(beta) and beta >= 0):
            raise UserError(f"algorithm.beta={beta} must be 0 or more: the weight of KL(q(z|x) || p(z)) in the loss "
                            f"(1 is the VAE's ELBO, above 1 a beta-VAE, 0 an autoencoder with noisy codes)")
        if likelihood not in LIKELIHOODS:
            raise UserError(f"algorithm.likelihood={likelihood}: choose bernoulli or gaussian")
        if not sigma > 0:
            raise UserError(f"algorithm.sigma={sigma} must be positive: the Gaussian likelihood's standard deviation "
                            f"in [0, 1] pixel units (e.g. 0.1)")
        super().__init__(models, optimizers, ema)
        if not getattr(self.E, "variational", False):
            raise UserError(f"algorithm=vae needs an encoder of a Gaussian posterior (mu and log-variance), and "
                            f"{type(self.E).__name__} gives one code: use model=vae")
        self.beta = float(beta)
        self.log_likelihood = functools.partial(LIKELIHOODS[likelihood], sigma=sigma)
        self.phases = [Phase("vae", self.step)]

    def step(self, run: Run) -> Stats:
        # min_{E, G}  -E_q(z|x)[log p(x|z)] + beta KL(q(z|x) || N(0, I)),  z = mu + sigma * eps
        x = run.next_batch().images
        with autocast(x, run.schedule.precision):
            mu, logvar = self.E(x)
            z = elbo.reparameterise(mu, logvar, run.z(len(x), self.G.z_dim))
            logits = self.G.logits(z)
        recon = -self.log_likelihood(logits, elbo.to_pixels(x)).mean()
        kl = elbo.gaussian_kl(mu, logvar).mean()
        loss = recon + self.beta * kl
        norm = update(self.optimizers["G"], loss, [self.E, self.G], run.world.average_gradients)
        return {"loss/vae": loss.detach(), "vae/recon": recon.detach(), "vae/kl": kl.detach(),
                "vae/elbo": -(recon + kl).detach(), "grad_norm/vae": norm}
