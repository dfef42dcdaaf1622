"""StyleGAN2's training (Karras et al. 2020, section 3.1 and appendix B; the authors' training/loss.py):
the GAN algorithm with its loss= (the paper: non-saturating logistic), plus two regularisers applied
lazily, as separate phases that run every k-th step with their weight multiplied by k:

- R1 on D (Mescheder et al. 2018): (gamma / 2) E_x ||grad_x D(x)||^2 on real images, every `r1_every`
  steps (paper: 16);
- path-length regularisation on G (section 3.2, optional): E_w,y (||J_w^T y||_2 - a)^2, with y ~ N(0, I)
  scaled by 1/sqrt(pixels) and a the running mean of the lengths, every `pl_every` steps (paper: 4,
  weight 2, on half batches).

Lazy regularisation changes what one optimiser step means, so, as in the paper's code, each optimiser
that takes a lazy phase has its learning rate scaled by c = k / (k + 1) and its betas raised to c."""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from gan_cli.algorithms.base import Phase, Stats
from gan_cli.algorithms.gan import GAN
from gan_cli.errors import UserError
from gan_cli.losses import GANLoss, input_gradient, squared_norm
from gan_cli.steps import autocast, update

if TYPE_CHECKING:
    from gan_cli.loop import Run

log = logging.getLogger(__name__)


class StyleGAN2(GAN):
    stabilisers = GAN.stabilisers - {"loss.r1", "train.unrolled_steps"}  # R1 is this algorithm's own, lazily

    def __init__(self, models: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer], loss: GANLoss,
                 r1_gamma: float = 10.0, r1_every: int = 16, pl_weight: float = 0.0, pl_every: int = 4,
                 pl_decay: float = 0.01, pl_batch_shrink: int = 2, **options):
        """r1_gamma: gamma of R1 (0 is off); r1_every: steps between its phases; pl_weight: weight of the
        path-length penalty (0 is off; the paper: 2); pl_every: steps between its phases; pl_decay: the
        rate of its running mean; pl_batch_shrink: the penalty's batch is the batch divided by this;
        options: the GAN algorithm's."""
        for key, value in (("r1_gamma", r1_gamma), ("pl_weight", pl_weight)):
            if value < 0:
                raise UserError(f"algorithm.{key}={value} must be 0 (off) or positive")
        for key, value in (("r1_every", r1_every), ("pl_every", pl_every), ("pl_batch_shrink", pl_batch_shrink)):
            if value < 1:
                raise UserError(f"algorithm.{key}={value} must be a positive integer (1: every step, unshrunk)")
        if not 0 < pl_decay <= 1:
            raise UserError(f"algorithm.pl_decay={pl_decay} must be in (0, 1] (paper: 0.01)")
        if pl_weight and not callable(getattr(models["G"], "synthesis", None)):
            raise UserError(f"algorithm.pl_weight={pl_weight} regularises a style-based G's synthesis network, and "
                            f"{type(models['G']).__name__} has none: use model=stylegan2, or algorithm.pl_weight=0")
        super().__init__(models, optimizers, loss, **options)
        self.r1_gamma, self.r1_every = r1_gamma, r1_every
        self.pl_weight, self.pl_every, self.pl_decay, self.pl_shrink = pl_weight, pl_every, pl_decay, pl_batch_shrink
        self.pl_mean = torch.zeros(())  # the running mean a of the path lengths, kept in the checkpoint
        self.phases = [self.phases[0]]  # D's main phase (k updates), then the lazy ones around G's
        if r1_gamma:
            self.phases.append(Phase("d_r1", self.d_r1, every=r1_every))
            _lazy(optimizers["D"], r1_every, "optimizer.d")
        self.phases.append(Phase("g", self.g_step))
        if pl_weight:
            self.phases.append(Phase("g_pl", self.g_pl, every=pl_every))
            _lazy(optimizers["G"], pl_every, "optimizer.g")

    def differentiated(self) -> dict[str, str]:
        return {**super().differentiated(), **({"D": "algorithm.r1_gamma"} if self.r1_gamma else {}),
                **({"G": "algorithm.pl_weight"} if self.pl_weight else {})}

    def d_r1(self, run: Run) -> Stats:
        real, y = self.last_real  # the batch D's main phase just saw, as in the paper's code
        real = real.detach().requires_grad_(True)
        with autocast(real, run.schedule.precision):
            scores = self.D(real, y)
        penalty = squared_norm(input_gradient(scores, real, "algorithm.r1_gamma")).mean()
        # gamma / 2 * E||grad||^2, times the interval: one lazy step stands for r1_every of them
        update(self.optimizers["D"], penalty * (self.r1_gamma / 2 * self.r1_every), [self.D],
               run.world.average_gradients)
        return {"loss/r1": penalty.detach()}

    def g_pl(self, run: Run) -> Stats:
        G = self.G
        n = max(1, run.schedule.batch_size // self.pl_shrink)
        ws = G.mapping(run.z(n, G.z_dim))[:, None, :].repeat(1, G.num_ws, 1)
        with autocast(ws, run.schedule.precision):
            images = G.synthesis(ws)
        # ||J_w^T y||: y ~ N(0, I) / sqrt(H * W) so the lengths do not grow with the resolution
        noise = torch.randn(images.shape, device=images.device, generator=run.z_gen) / math.sqrt(images[0, 0].numel())
        (grad,) = torch.autograd.grad((images * noise).sum(), ws, create_graph=True)
        lengths = grad.float().square().sum(dim=2).mean(dim=1).sqrt()
        mean = self.pl_mean.to(lengths.device).lerp(lengths.mean().detach(), self.pl_decay)
        self.pl_mean = mean
        penalty = (lengths - mean).square().mean()
        update(self.optimizers["G"], penalty * (self.pl_weight * self.pl_every), [G], run.world.average_gradients)
        return {"loss/pl": penalty.detach(), "stylegan2/pl_mean": mean}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "pl_mean": self.pl_mean.detach().cpu()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        mean = state.get("pl_mean")
        if mean is not None:
            if not (isinstance(mean, torch.Tensor) and mean.shape == () and mean.is_floating_point()
                    and torch.isfinite(mean)):
                raise UserError("the checkpoint's stylegan2 pl_mean is damaged: not a finite number")
            self.pl_mean = mean.clone()


def _lazy(opt: torch.optim.Optimizer, every: int, name: str) -> None:
    """The paper's code (training_loop.py): an optimiser whose regulariser runs every k steps takes
    lr * c and betas ** c, c = k / (k + 1), so that its effective steps match those of the unregularised
    objective."""
    c = every / (every + 1)
    for group in opt.param_groups:
        group["lr"] = group["lr"] * c
        if "betas" in group:
            group["betas"] = tuple(b ** c for b in group["betas"])
    log.info("lazy regularisation every %d steps: %s lr and betas scaled by %.4f as in StyleGAN2", every, name, c)
