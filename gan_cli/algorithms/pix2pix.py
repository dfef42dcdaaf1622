"""pix2pix (Isola et al. 2017, "Image-to-Image Translation with Conditional Adversarial Networks"): a
conditional GAN on aligned pairs (x, y). G translates x; D sees x together with an image, the real y or
G(x), and judges each patch (PatchGAN, gan_cli/models/pix2pix.py). G also pays an L1 distance to y:

    G* = arg min_G max_D  L_cGAN(G, D) + lambda L_L1(G)                           (eq. 4)
    L_cGAN = E[log D(x, y)] + E[log(1 - D(x, G(x)))],   L_L1 = E[|y - G(x)|_1]     (eqs. 1, 3)

lambda = 100 in the paper. The adversarial objective is loss= (non-saturating by default, as the paper's
code: G maximises log D(x, G(x))). algorithm.lambda_gan=0 is the paper's "L1 alone" ablation: D is then not
trained at all, since nothing reads it.

The paper halves D's objective "to slow down the rate at which D learns relative to G"; under Adam a
constant factor on a loss leaves the updates unchanged (Adam divides by the gradient's scale), so it is
left out. D's update comes first, on G(x) of this batch; then G's, against the updated D, on the same
G(x), as the paper's code does."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from gan_cli.algorithms.base import Phase, Stats
from gan_cli.algorithms.translation import Translation
from gan_cli.errors import UserError
from gan_cli.losses import GANLoss
from gan_cli.steps import autocast, update

if TYPE_CHECKING:
    from gan_cli.loop import Run


class Pix2Pix(Translation):
    paired = True
    directions = {"AtoB": "G"}

    @classmethod
    def networks(cls, shape, input_shape):
        return {"G": ("g", {"shape": shape, "in_shape": input_shape}),
                "D": ("d", {"shape": shape, "condition_shape": input_shape})}

    def __init__(self, models: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer], loss: GANLoss,
                 lambda_l1: float = 100.0, lambda_gan: float = 1.0, ema: float = 0.0, num_classes: int | None = None):
        """lambda_l1: the weight of L1 against the adversarial term (paper: 100); lambda_gan: the adversarial
        term's (1; 0 is the L1-only ablation)."""
        for key, value in (("lambda_l1", lambda_l1), ("lambda_gan", lambda_gan)):
            if not value >= 0:
                raise UserError(f"algorithm.{key}={value} must be 0 or positive (paper: lambda_l1=100, lambda_gan=1)")
        if lambda_l1 == 0 and lambda_gan == 0:
            raise UserError("algorithm.lambda_l1=0 and algorithm.lambda_gan=0 leave G nothing to learn; "
                            "keep one of them positive")
        super().__init__(models, optimizers, ema)
        self.G, self.D, self.loss = models["G"], models["D"], loss
        self.num_classes = None  # the pairs' labels are for evaluation only
        self.lambda_l1, self.lambda_gan = lambda_l1, lambda_gan
        loss.check(self.D)
        self.phases = ([Phase("d", self.d_step)] if lambda_gan > 0 else []) + [Phase("g", self.g_step)]

    def d_step(self, run: Run) -> Stats:
        # max_D  E[log D(x, y)] + E[log(1 - D(x, G(x)))]
        x, y, fake = self._pair = self.forward(run)
        return self.d_update(run, y, fake, x)

    def g_step(self, run: Run) -> Stats:
        # min_G  -E[log D(x, G(x))] + lambda E[|y - G(x)|_1]
        x, y, fake = self.take_pair(run)
        l1 = (y.float() - fake.float()).abs().mean()
        stats = {"pix2pix/l1": l1.detach()}
        loss_g = self.lambda_l1 * l1
        if self.lambda_gan > 0:
            self.D.requires_grad_(False)  # D is a constant here: its weights get no gradient
            try:
                with autocast(x, run.schedule.precision):
                    adversarial, _ = self.loss.g_loss(self.D, fake, x)
            finally:
                self.D.requires_grad_(True)
            stats["pix2pix/g_gan"] = adversarial.detach()
            loss_g = loss_g + self.lambda_gan * adversarial
        stats["grad_norm/g"] = update(self.optimizers["G"], loss_g, [self.G], run.world.average_gradients)
        return {"loss/g": loss_g.detach(), **stats}

    # -- pictures: input | output | target ---------------------------------------------------------------

    def sources(self, run: Run, n: int) -> list[Tensor]:
        x, y, _ = run.data.pairs(n)
        return [x, y]

    def translate(self, sources: list[Tensor]) -> list[Tensor]:
        x, y = sources
        return [x, self.sampler(x), y]
