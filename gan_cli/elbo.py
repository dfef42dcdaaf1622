"""The terms of the VAE's evidence lower bound (Kingma & Welling 2014, eq. 3 and appendix B), on plain
tensors, per image and in nats:

    ELBO(x) = E_q(z|x)[log p(x|z)] - KL(q(z|x) || N(0, I))   <=   log p(x)

with q(z|x) = N(mu, diag(sigma^2)) and z = mu + sigma * eps, eps ~ N(0, I) (the reparameterisation, which lets
the gradient of the expectation flow into mu and sigma). Likelihoods read pixels in [0, 1]: the runner's
images are in [-1, 1], and a Bernoulli needs probabilities."""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor


def to_pixels(x: Tensor) -> Tensor:
    """[-1, 1] images -> [0, 1] pixels."""
    return (x.float() + 1) / 2


def reparameterise(mu: Tensor, logvar: Tensor, eps: Tensor) -> Tensor:
    """z = mu + exp(logvar / 2) * eps: a sample of N(mu, diag(exp(logvar))) that is differentiable in mu and
    logvar, eps drawn apart (Kingma & Welling 2014, section 2.4)."""
    return mu + (0.5 * logvar).exp() * eps


def gaussian_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) per row, in closed form (appendix B):
    1/2 sum_j (mu_j^2 + sigma_j^2 - 1 - log sigma_j^2). (N, d) -> (N,)."""
    return 0.5 * (mu.float().pow(2) + logvar.float().exp() - 1 - logvar.float()).sum(dim=1)


def bernoulli_log_likelihood(logits: Tensor, pixels: Tensor) -> Tensor:
    """log p(x|z) = sum_i x_i log p_i + (1 - x_i) log(1 - p_i), p = sigmoid(logits), per image: (N, ...) -> (N,).
    Grey pixels in [0, 1] are taken as they are, as is standard on MNIST (a cross-entropy, not the likelihood of
    binarised digits)."""
    return -F.binary_cross_entropy_with_logits(logits.float(), pixels, reduction="none").flatten(1).sum(dim=1)


def gaussian_log_likelihood(mean: Tensor, pixels: Tensor, sigma: float) -> Tensor:
    """log N(x; mean, sigma^2 I) per image, sigma fixed, in [0, 1] pixel units: (N, ...) -> (N,)."""
    z = ((pixels - mean.float()) / sigma).flatten(1)
    return -(0.5 * z.pow(2) + math.log(sigma) + 0.5 * math.log(2 * math.pi)).sum(dim=1)
