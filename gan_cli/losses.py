"""GAN objectives. Each is one class; the loop only calls d_loss, g_loss and after_d_step.

Every objective also takes the stabilisers that act on the losses themselves, each off by default:
one-sided label smoothing and feature matching (Salimans et al. 2016), and the R1 and R2 gradient
penalties (Mescheder et al. 2018). An objective refuses, in one line, the ones its paper rules out.

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


def input_gradient(scores: Tensor, x: Tensor, what: str) -> Tensor:
    """The gradient of D's scores w.r.t. its input x (a leaf that requires grad), per sample, with its
    graph kept so that a penalty on it trains D. Refuses a D whose scores do not depend on x through
    differentiable operations (one that detaches or quantises its input): the penalty would be 0."""
    grad = None
    if scores.requires_grad:
        # the sum's gradient w.r.t. x_i is grad D(x_i), since sample i only enters term i
        (grad,) = torch.autograd.grad(scores.sum(), x, create_graph=True, allow_unused=True)
    if grad is None:
        raise UserError(f"{what} penalises the gradient of D's score with respect to its input, and this D's "
                        f"score has none (the model detaches or quantises its input): use a differentiable D, or "
                        f"drop {what}")
    return grad


def squared_norm(grad: Tensor) -> Tensor:
    """||g_i||^2 per sample, (N,)."""
    return grad.reshape(len(grad), -1).square().sum(dim=1)


class GANLoss:
    """Base class: D's statistics, the stabilisers of the losses, and the default hooks. Subclasses
    define the two objectives."""

    threshold = 0.0
    # whether G's objective loses its gradient when D rejects the fakes confidently: gan diagnose then
    # suggests the non-saturating objective as a cure
    saturates = False
    # whether D's output is the probability of "real", whose target one-sided label smoothing lowers
    smoothable = False
    smoothing_instead = ""  # where a loss that cannot be smoothed sets its real target instead
    # the stabilisers, off: an objective of one's own that never calls GANLoss.__init__ still works
    real_target, feature_matching, r1, r2 = 1.0, False, 0.0, 0.0

    def __init__(self, label_smoothing: float = 1.0, feature_matching: bool = False, r1: float = 0.0,
                 r2: float = 0.0):
        """label_smoothing: D's target for real samples (Salimans et al. 2016, 3.4: 0.9; fakes keep 0);
        feature_matching: G matches the mean of D's intermediate features on real data instead of its own
        objective (Salimans et al. 2016, 3.1); r1, r2: gamma of (gamma/2) E||grad D||^2 on real (R1) or
        generated (R2) samples (Mescheder et al. 2018)."""
        name = type(self).__name__.lower()
        if not 0.5 <= label_smoothing <= 1:
            raise UserError(f"loss.label_smoothing={label_smoothing} is D's target for real samples: a number in "
                            f"[0.5, 1] (Salimans et al. 2016: 0.9; 1 is off)")
        if label_smoothing != 1 and not self.smoothable:
            raise UserError(f"loss.label_smoothing applies to losses whose D outputs a probability (minimax, "
                            f"nonsaturating); loss={name} has no probability target to smooth{self.smoothing_instead}")
        for key, value in (("r1", r1), ("r2", r2)):
            if value < 0:
                raise UserError(f"loss.{key}={value} must be 0 (off) or positive (Mescheder et al. 2018: 10 on "
                                f"images, 0.1 to 1 on small data)")
        self.real_target, self.feature_matching, self.r1, self.r2 = label_smoothing, feature_matching, r1, r2

    @property
    def gradient_penalty_key(self) -> str:
        """The setting whose penalty differentiates D's input gradient (a double backward through D), or ""."""
        return "loss.r1" if self.r1 else "loss.r2" if self.r2 else ""

    def d_objective(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        raise NotImplementedError

    def g_objective(self, fake_logits: Tensor) -> Tensor:
        raise NotImplementedError

    def score(self, logits: Tensor) -> Tensor:
        return torch.sigmoid(logits)

    def d_loss(self, D: nn.Module, real: Tensor, fake: Tensor, y: Tensor | None = None) -> tuple[Tensor, Stats]:
        # the penalties differentiate D's scores w.r.t. its inputs: an input without a graph becomes a leaf
        # that requires grad (G's samples keep theirs when an unrolled D is differentiated through them)
        if self.r1 and not real.requires_grad:
            real = real.detach().requires_grad_(True)
        if self.r2 and not fake.requires_grad:
            fake = fake.detach().requires_grad_(True)
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
        # Mescheder et al. 2018, eq. 9: R1 = gamma/2 E_x ||grad_x D(x)||^2 (R2: the same at G's samples)
        for key, gamma, x, logits in (("r1", self.r1, real, real_logits), ("r2", self.r2, fake, fake_logits)):
            if gamma:
                penalty = squared_norm(input_gradient(logits, x, f"loss.{key}")).mean()
                stats[f"loss/{key}"] = penalty.detach()
                loss = loss + gamma / 2 * penalty
        return loss, stats

    def g_loss(self, D: nn.Module, fake: Tensor, y: Tensor | None = None,
               real: Tensor | None = None) -> tuple[Tensor, Stats]:
        """G's objective on its samples; with feature matching, the distance of the mean of D's features
        on them from the mean on `real` (a batch of data)."""
        if not self.feature_matching:
            return self.g_objective(D(fake, y)), {}
        # Salimans et al. 2016, 3.1: ||E_x f(x) - E_z f(G(z))||_2^2, f an intermediate layer of D (their
        # released code takes the mean absolute difference instead; the paper's square is used here)
        with torch.no_grad():  # the data's side is a target for G, not a function of its weights
            target = D.features(real, y).mean(dim=0)
        loss = (D.features(fake, y).mean(dim=0) - target).square().sum()
        return loss, {"loss/feature_matching": loss.detach()}

    def project(self, weight: Tensor) -> Tensor:
        """Where D's weights go after each update: themselves (WGAN clips them). Functional, so that an
        unrolled D (train.unrolled_steps) can take the same projection inside its graph."""
        return weight

    def after_d_step(self, D: nn.Module) -> None:
        """Called after every discriminator update: projects D's weights (WGAN's clipping)."""
        if type(self).project is not GANLoss.project:
            with torch.no_grad():
                for p in D.parameters():
                    p.copy_(self.project(p))

    def check(self, D: nn.Module) -> None:
        """Called once when the run is built; raises UserError if this objective cannot train D."""
        if self.feature_matching and not callable(getattr(D, "features", None)):
            raise UserError(f"loss.feature_matching=true matches D's intermediate features, and "
                            f"{type(D).__name__} exposes none (no features method): use model=dcgan, mlp or sngan, "
                            f"or drop loss.feature_matching")


class Minimax(GANLoss):
    """Goodfellow et al. 2014, the original two-player game:
    min_G max_D  E[log D(x)] + E[log(1 - D(G(z)))].
    G's side saturates: when D rejects fakes confidently, log(1 - D(G(z))) has almost no gradient."""

    saturates = True
    smoothable = True

    def d_objective(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        # -(log sigmoid(r) + log(1 - sigmoid(f))) = softplus(-r) + softplus(f)
        if self.real_target == 1:
            return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
        # one-sided label smoothing: the cross-entropy against target s for real samples,
        # -(s log sigmoid(r) + (1 - s) log(1 - sigmoid(r))); the fakes' target stays 0
        real = F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, self.real_target))
        return real + F.softplus(fake_logits).mean()

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

    def __init__(self, clip: float = 0.01, **stabilisers):
        if not clip > 0:
            raise UserError(f"loss.clip={clip} must be positive (paper: 0.01)")
        super().__init__(**stabilisers)
        self.clip = clip

    def project(self, weight: Tensor) -> Tensor:
        # clipping is a projection after the optimizer's step, not part of the gradient
        return weight.clamp(-self.clip, self.clip)


class WGANGP(Wasserstein):
    """Gulrajani et al. 2017: WGAN's objectives, with the Lipschitz bound enforced by a penalty on the
    critic's input gradient instead of weight clipping:
    L_D = E[D(G(z))] - E[D(x)] + lambda * E[(||grad_xhat D(xhat)||_2 - 1)^2],
    xhat = eps * x + (1 - eps) * G(z), eps ~ U[0, 1] per sample;  L_G = -E[D(G(z))].
    With `drift` = epsilon, ProGAN's term epsilon * E[D(x)^2] (Karras et al. 2018, appendix A.1) is added to
    L_D: it keeps the critic's values from drifting far from zero."""

    def __init__(self, gp_weight: float = 10.0, drift: float = 0.0, **stabilisers):
        for key, value, paper in (("gp_weight", gp_weight, "Gulrajani et al.: 10"), ("drift", drift, "ProGAN: 0.001")):
            if value < 0:
                raise UserError(f"loss.{key}={value} must be 0 or positive ({paper})")
        super().__init__(**stabilisers)
        self.gp_weight, self.drift = gp_weight, drift

    def d_objective(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        loss = super().d_objective(real_logits, fake_logits)
        return loss + self.drift * real_logits.square().mean() if self.drift else loss

    def check(self, D: nn.Module) -> None:
        super().check(D)
        # BatchNorm mixes the samples of a batch, so D(xhat_i) depends on the other xhat_j and the
        # per-sample gradient norm the penalty constrains is no longer the critic's (paper, section 4)
        if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in D.modules()):
            raise UserError("loss=wgan_gp needs a critic without batch norm (the penalty is per sample); "
                            "set model.d.norm=layer, instance or none")
        from gan_cli.models.minibatch import MinibatchDiscrimination

        # the same reason: each sample's score sums its closeness to every other sample of the batch.
        # The minibatch standard deviation is allowed: ProGAN trains it with this penalty, and it moves
        # each score by one statistic shared by its group
        if any(isinstance(m, MinibatchDiscrimination) for m in D.modules()):
            raise UserError("loss=wgan_gp and model.d.minibatch_discrimination cannot be combined: the penalty is per "
                            "sample and minibatch discrimination makes each score depend on the whole batch; use "
                            "model.d.minibatch_stddev=4 (as ProGAN does) or another loss")

    @property
    def gradient_penalty_key(self) -> str:
        return "loss=wgan_gp" if self.gp_weight else super().gradient_penalty_key

    def gradient_penalty(self, D: nn.Module, real: Tensor, fake: Tensor, y: Tensor | None = None) -> Tensor:
        """E[(||grad_xhat D(xhat)||_2 - 1)^2], unweighted."""
        # one eps per sample, broadcast over all of its features
        eps = torch.rand((real.shape[0],) + (1,) * (real.ndim - 1), device=real.device, dtype=real.dtype)
        # fake arrives detached from G, so xhat is a leaf we can differentiate D with respect to
        xhat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
        grad = input_gradient(D(xhat, y), xhat, "loss=wgan_gp")
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

    smoothing_instead = "; its real target is loss.b"

    def __init__(self, a: float = 0.0, b: float = 1.0, c: float = 1.0, **stabilisers):
        super().__init__(**stabilisers)
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
