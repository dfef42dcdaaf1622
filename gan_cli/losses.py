"""GAN objectives. Each is one class; the loop only calls d_loss, g_loss and after_d_step.

D returns logits (N,). The probabilistic objectives (minimax, non-saturating) are written in logits
(softplus, never log(sigmoid(.))) so that they stay finite when D is confident; the others (WGAN,
WGAN-GP, LSGAN, hinge) use D's raw output as their paper does. `score` maps D's output to what the
literature calls D(x) for logging; `threshold` is the output above which D calls a sample real, for the
accuracies. `check` refuses, when the run is built, a D the objective cannot train.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_cli.errors import UserError

Stats = dict[str, Tensor]


class GANLoss:
    """Base class: D's statistics and the default hooks. Subclasses define the two objectives."""

    threshold = 0.0
    # whether G's objective loses its gradient when D rejects the fakes confidently: gan diagnose then
    # suggests the non-saturating objective as a cure
    saturates = False

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

    def check(self, D: nn.Module) -> None:
        """Called once when the run is built; raises UserError if this objective cannot train D."""


class Minimax(GANLoss):
    """Goodfellow et al. 2014, the original two-player game:
    min_G max_D  E[log D(x)] + E[log(1 - D(G(z)))].
    G's side saturates: when D rejects fakes confidently, log(1 - D(G(z))) has almost no gradient."""

    saturates = True

    def d_objective(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        # -(log sigmoid(r) + log(1 - sigmoid(f))) = softplus(-r) + softplus(f)
        return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()

    def g_objective(self, fake_logits: Tensor) -> Tensor:
        # log(1 - sigmoid(f)) = -softplus(f), minimised by G
        return -F.softplus(fake_logits).mean()


class NonSaturating(Minimax):
    """Goodfellow et al. 2014, section 3: the same D, but G maximises log D(G(z)) instead, which has the
    same fixed point and strong gradients early in training."""

    saturates = False

    def g_objective(self, fake_logits: Tensor) -> Tensor:
        # -log sigmoid(f) = softplus(-f)
        return F.softplus(-fake_logits).mean()


class Wasserstein(GANLoss):
    """Arjovsky et al. 2017: D is a critic f estimating the Wasserstein-1 distance,
    min_G max_{||f||_L <= 1}  E[f(x)] - E[f(G(z))],
    so the critic minimises E[f(G(z))] - E[f(x)] and G minimises -E[f(G(z))]. Subclasses say how the
    Lipschitz bound is kept."""

    def d_objective(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return fake_logits.mean() - real_logits.mean()

    def g_objective(self, fake_logits: Tensor) -> Tensor:
        return -fake_logits.mean()

    def score(self, logits: Tensor) -> Tensor:
        # the critic's value is unbounded and is not a probability: logged as it is
        return logits


class WGAN(Wasserstein):
    """Arjovsky et al. 2017: the Lipschitz bound enforced crudely, by clipping every weight of the
    critic to [-clip, clip] after each update."""

    def __init__(self, clip: float = 0.01):
        if not clip > 0:
            raise UserError(f"loss.clip={clip} must be positive (paper: 0.01)")
        self.clip = clip

    def after_d_step(self, D: nn.Module) -> None:
        # clipping is a projection after the optimizer's step, not part of the gradient
        with torch.no_grad():
            for p in D.parameters():
                p.clamp_(-self.clip, self.clip)


class WGANGP(Wasserstein):
    """Gulrajani et al. 2017: WGAN's objectives, with the Lipschitz bound enforced by a penalty on the
    critic's input gradient instead of weight clipping:
    L_D = E[D(G(z))] - E[D(x)] + lambda * E[(||grad_xhat D(xhat)||_2 - 1)^2],
    xhat = eps * x + (1 - eps) * G(z), eps ~ U[0, 1] per sample;  L_G = -E[D(G(z))]."""

    def __init__(self, gp_weight: float = 10.0):
        if gp_weight < 0:
            raise UserError(f"loss.gp_weight={gp_weight} must be 0 or positive (paper: 10)")
        self.gp_weight = gp_weight

    def check(self, D: nn.Module) -> None:
        # BatchNorm mixes the samples of a batch, so D(xhat_i) depends on the other xhat_j and the
        # per-sample gradient norm the penalty constrains is no longer the critic's (paper, section 4)
        if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in D.modules()):
            raise UserError("loss=wgan_gp needs a critic without batch norm (the penalty is per sample); "
                            "set model.d.norm=layer, instance or none")

    def gradient_penalty(self, D: nn.Module, real: Tensor, fake: Tensor, y: Tensor | None = None) -> Tensor:
        """E[(||grad_xhat D(xhat)||_2 - 1)^2], unweighted."""
        # one eps per sample, broadcast over all of its features
        eps = torch.rand((real.shape[0],) + (1,) * (real.ndim - 1), device=real.device, dtype=real.dtype)
        # fake arrives detached from G, so xhat is a leaf we can differentiate D with respect to
        xhat = (eps * real + (1 - eps) * fake.detach()).requires_grad_(True)
        # the sum's gradient w.r.t. xhat_i is grad D(xhat_i), since sample i only enters term i;
        # create_graph so the penalty itself can be differentiated w.r.t. D's weights
        (grad,) = torch.autograd.grad(D(xhat, y).sum(), xhat, create_graph=True)
        return ((torch.linalg.vector_norm(grad.reshape(len(grad), -1), dim=1) - 1) ** 2).mean()

    def d_loss(self, D: nn.Module, real: Tensor, fake: Tensor, y: Tensor | None = None) -> tuple[Tensor, Stats]:
        loss, stats = super().d_loss(D, real, fake, y)
        penalty = self.gradient_penalty(D, real, fake, y)
        stats["loss/gp"] = penalty.detach()
        return loss + self.gp_weight * penalty, stats


class LSGAN(GANLoss):
    """Mao et al. 2017, least squares GAN: D regresses its raw output onto b for real and a for fake,
    G pushes the fakes' output towards c:
    min_D 1/2 E[(D(x) - b)^2] + 1/2 E[(D(G(z)) - a)^2],   min_G 1/2 E[(D(G(z)) - c)^2].
    With b - c = 1 and b - a = 2 (a=-1, b=1, c=0) it minimises the Pearson chi^2 divergence; the paper's
    other coding, a=0, b=c=1 (G makes D call fakes real), is the default here."""

    def __init__(self, a: float = 0.0, b: float = 1.0, c: float = 1.0):
        self.a, self.b, self.c = a, b, c
        # halfway between the two targets: nearer b counts as "real"
        self.threshold = (a + b) / 2

    def d_objective(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return 0.5 * ((real_logits - self.b) ** 2).mean() + 0.5 * ((fake_logits - self.a) ** 2).mean()

    def g_objective(self, fake_logits: Tensor) -> Tensor:
        return 0.5 * ((fake_logits - self.c) ** 2).mean()

    def score(self, logits: Tensor) -> Tensor:
        # the regression target is the raw output, no sigmoid: logged on the same scale as a, b, c
        return logits


class Hinge(Wasserstein):
    """Lim & Ye 2017 (Geometric GAN); Miyato et al. 2018: a margin loss for D and WGAN's loss for G,
    min_D E[relu(1 - D(x))] + E[relu(1 + D(G(z)))],   min_G -E[D(G(z))].
    D stops being pushed once a sample is beyond the margin, unlike WGAN's unbounded critic."""

    def d_objective(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()
