"""A conv encoder and decoder sized like the DCGAN pair, for the VAE (Kingma & Welling 2014) and the plain
autoencoder: the encoder is DCGAN's discriminator trunk with a head of codes instead of a logit, the decoder
is DCGAN's generator. Both are the dcgan module's own classes, so a VAE and a GAN of one width compare
networks of one shape.

The decoder's output layer ends in tanh, as G's does: its pre-activation a gives the Bernoulli logits of
the pixels in [0, 1] as 2a, since sigmoid(2a) = (tanh(a) + 1) / 2. So forward(z) is the decoder's mean,
E[x | z], in G's [-1, 1] units, and `logits` is what a likelihood in [0, 1] pixel units reads."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from gan_cli.models import dcgan
from gan_cli.models.layers import require_positive


class Encoder(dcgan.Discriminator):
    def __init__(self, shape: Sequence[int], z_dim: int, width: int = 32, norm: str = "batch",
                 variational: bool = True):
        """variational: a Gaussian posterior q(z|x) = N(mu, diag(exp(logvar))) (the VAE's), or one code per
        image (the autoencoder's)."""
        super().__init__(shape, width=width, norm=norm)
        require_positive("model.encoder", z_dim=z_dim)
        self.z_dim, self.variational = z_dim, variational
        self.trained_by = "vae" if variational else "autoencoder"
        trunk = self.head  # (N, ch, base, base) -> (N, 1, 1, 1): D's logit, replaced by the codes
        # (N, ch, base, base) -> (N, z_dim [x 2], 1, 1)
        self.head = nn.Conv2d(trunk.in_channels, z_dim * (2 if variational else 1), trunk.kernel_size, 1, 0)
        dcgan.dcgan_init_(self.head)  # mu and logvar start near 0: q(z|x) near the prior at the first step

    def forward(self, x: Tensor, y: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """(N, C, H, W) -> (mu, logvar), each (N, z_dim); the autoencoder's (code, None)."""
        h = self.head(self.net(x)).flatten(1)
        if not self.variational:
            return h, None
        mu, logvar = h.chunk(2, dim=1)
        return mu, logvar

    def encode(self, x: Tensor) -> Tensor:
        """The code a reconstruction decodes: the posterior mean, or the autoencoder's code."""
        return self(x)[0]


class Decoder(dcgan.Generator):
    """DCGAN's generator as p(x|z): forward(z) = E[x|z] in [-1, 1]; logits(z) its Bernoulli logits in [0, 1]
    pixel units."""

    def __init__(self, z_dim: int, shape: Sequence[int], width: int = 32):
        super().__init__(z_dim, shape, width=width)
        self.trained_by = "vae"

    def decode(self, code: Tensor) -> Tensor:
        return super().forward(code)

    def logits(self, code: Tensor) -> Tensor:
        return 2 * self.net[:-1](self._input(code, None))  # the net without its tanh: see the module's note


class CodeGaussianDecoder(Decoder):
    """The autoencoder's decoder, which samples as a generator does: its codes have no prior, so a Gaussian
    N(m, S) fitted to the training codes stands in for one (Autoencoder.fit_codes), kept as buffers so that
    the checkpoint holds it as tensors. forward(z) with z ~ N(0, I) decodes m + L z, L L^T = S, so that
    `gan sample`, `gan eval` and `gan latent-arithmetic` treat it as any G of z; decode(code) takes a code
    itself (reconstructions)."""

    def __init__(self, z_dim: int, shape: Sequence[int], width: int = 32):
        super().__init__(z_dim, shape, width=width)
        self.trained_by = "autoencoder"
        self.register_buffer("code_mean", torch.zeros(z_dim))
        self.register_buffer("code_scale_tril", torch.eye(z_dim))  # N(0, I) until the first fit

    def set_code_gaussian(self, mean: Tensor, scale_tril: Tensor) -> None:
        self.code_mean.copy_(mean)
        self.code_scale_tril.copy_(scale_tril)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        return self.decode(self.code_mean + z @ self.code_scale_tril.T)

