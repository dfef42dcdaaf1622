"""GAN objectives. Each is one class; the loop only calls d_loss, g_loss and after_d_step.

D returns logits (N,). Every objective here is written in logits (softplus, never log(sigmoid(.)))
so that it stays finite when D is confident. `score` maps logits to what the literature calls D(x)
for logging; `threshold` is the logit above which D calls a sample real, for the accuracies.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Stats = dict[str, Tensor]


class GANLoss:
    """Base class: D's statistics and the default hooks. Subclasses define the two objectives."""

    threshold = 0.0

    def d_objective(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        raise NotImplementedError

    def g_objective(self, fake_logits: Tensor) -> Tensor:
        raise NotImplementedError

    def score(self, logits: Tensor) -> Tensor:
        return torch.sigmoid(logits)

    def d_loss(self, D: nn.Module, real: Tensor, fake: Tensor, y: Tensor | None = None) -> tuple[Tensor, Stats]:
        # real and fake go through D separately, so BatchNorm sees single-source batches (DCGAN's habit)
        real_logits, fake_logits = D(real, y), D(fake, y)
        loss = self.d_objective(real_logits, fake_logits)
        with torch.no_grad():
            stats = {
                "d/real": self.score(real_logits).mean(),
                "d/fake": self.score(fake_logits).mean(),
                "acc/real": (real_logits > self.threshold).float().mean(),
                "acc/fake": (fake_logits <= self.threshold).float().mean(),
            }
        return loss, stats

    def g_loss(self, D: nn.Module, fake: Tensor, y: Tensor | None = None) -> tuple[Tensor, Stats]:
        return self.g_objective(D(fake, y)), {}

    def after_d_step(self, D: nn.Module) -> None:
        """Called after every discriminator update (WGAN clips weights here)."""


class Minimax(GANLoss):
    """Goodfellow et al. 2014, the original two-player game:
    min_G max_D  E[log D(x)] + E[log(1 - D(G(z)))].
    G's side saturates: when D rejects fakes confidently, log(1 - D(G(z))) has almost no gradient."""

    def d_objective(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        # -(log sigmoid(r) + log(1 - sigmoid(f))) = softplus(-r) + softplus(f)
        return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()

    def g_objective(self, fake_logits: Tensor) -> Tensor:
        # log(1 - sigmoid(f)) = -softplus(f), minimised by G
        return -F.softplus(fake_logits).mean()


class NonSaturating(Minimax):
    """Goodfellow et al. 2014, section 3: the same D, but G maximises log D(G(z)) instead, which has the
    same fixed point and strong gradients early in training."""

    def g_objective(self, fake_logits: Tensor) -> Tensor:
        # -log sigmoid(f) = softplus(-f)
        return F.softplus(-fake_logits).mean()
