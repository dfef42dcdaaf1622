"""SRGAN (Ledig et al. 2017, "Photo-Realistic Single Image Super-Resolution Using a Generative Adversarial
Network"): G upscales a low-resolution image x by 2 or 4 (SRResNet, gan_cli/models/srgan.py); D tells the
high-resolution originals y from G(x). G's objective is the perceptual loss (eqs. 3 to 6):

    l_SR = l_X + 10^-3 l_Gen,   l_X = mean (phi(y) - phi(G(x)))^2,   l_Gen = -log D(G(x))

phi is a frozen feature network: VGG19's relu5_4 in the paper (l_VGG/5.4, its feature maps rescaled by
1/12.75), here whichever build.content_network gives (VGG19 when its weights are at hand, else the data set's
own classifier, else the pixels themselves, which makes l_X the MSE). The adversarial objective is loss=
(non-saturating by default, the paper's -log D(G(x))).

Training, as the paper's: first `pretrain_steps` of G alone on the pixel MSE (that G is SRResNet, the paper's
MSE baseline, and SRGAN's initialisation), D untouched (both objectives are only measured, for the logs:
SRGAN.measure); then each step a D update on y against G(x), and a G
update on l_SR against the updated D, on the same G(x). The paper pretrains for 10^6 updates and trains SRGAN
for 2 x 10^5 (the last half at a tenth of the rate); a CPU run is a few thousand of each. The paper scales
its inputs to [0, 1] and its targets to [-1, 1]; here both are in [-1, 1], as every image in gan-cli."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import torch
from torch import Tensor, nn

from gan_cli.algorithms.base import Phase, Stats
from gan_cli.algorithms.translation import Translation
from gan_cli.data.batch import input_shape_of
from gan_cli.errors import UserError
from gan_cli.losses import GANLoss
from gan_cli.models.srgan import ContentNetwork, PixelContent
from gan_cli.steps import autocast, update

if TYPE_CHECKING:
    from gan_cli.loop import Run

DS = ("loss/d", "d/real", "d/fake", "acc/real", "acc/fake")  # D's statistics, of its phase


class SRGAN(Translation):
    paired = True
    upscales = True
    directions = {"AtoB": "G"}

    @classmethod
    def check_data(cls, data) -> None:
        shape = input_shape_of(data)
        if shape is None or not data.paired or tuple(shape[1:]) == tuple(data.shape[1:]):
            raise UserError(f"algorithm=srgan upscales images, and data={data.name} holds "
                            f"{'single images' if shape is None else 'image pairs of one size' if data.paired else 'two domains'}"
                            f": use data=super_resolution (or experiment=srgan_fashion)")

    @classmethod
    def networks(cls, shape, input_shape):
        return {"G": ("g", {"shape": shape, "in_shape": input_shape}), "D": ("d", {"shape": shape})}

    def __init__(self, models: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer], loss: GANLoss,
                 pretrain_steps: int = 1000, content: Literal["auto", "vgg19", "classifier", "mse"] = "auto",
                 vgg_weights: str | None = None, content_scale: float | None = None,
                 adversarial_weight: float = 1e-3, ema: float = 0.0,
                 content_network: ContentNetwork | None = None, log_every: int = 1):
        """pretrain_steps: steps of G on the pixel MSE alone before D enters (SRResNet); content, vgg_weights:
        which feature network the content loss uses (build.content_network reads them and builds it:
        content_network, the pixels when None); content_scale: the factor on the content loss's squared
        error (None: the network's own, 1/12.75^2 for VGG19 as the paper, 1 otherwise); adversarial_weight:
        the adversarial term's (paper: 10^-3); log_every: train.log_every, the steps between the measures of
        the adversarial objectives while G pretrains (0: once)."""
        if isinstance(pretrain_steps, bool) or not isinstance(pretrain_steps, int) or pretrain_steps < 0:
            raise UserError(f"algorithm.pretrain_steps={pretrain_steps} must be 0 or a positive number of steps")
        if not adversarial_weight >= 0:
            raise UserError(f"algorithm.adversarial_weight={adversarial_weight} must be 0 or positive (paper: 0.001)")
        if content_scale is not None and not content_scale > 0:
            raise UserError(f"algorithm.content_scale={content_scale} must be positive, or null for the content "
                            f"network's own (1/12.75^2 for VGG19)")
        super().__init__(models, optimizers, ema)
        self.G, self.D, self.loss = models["G"], models["D"], loss
        self.num_classes = None  # the pairs' labels are for evaluation only
        self.pretrain_steps, self.adversarial_weight = pretrain_steps, adversarial_weight
        self.content = content_network if content_network is not None else PixelContent()
        self.content_scale = self.content.scale if content_scale is None else float(content_scale)
        loss.check(self.D)
        self.log_every = log_every
        self._measured: Stats | None = None  # pretraining: this step's measures ({} on most steps; None: none yet)
        self.phases = [Phase("d", self.d_step), Phase("g", self.g_step)]

    def pretraining(self, run: Run) -> bool:
        return run.step < self.pretrain_steps

    def d_step(self, run: Run) -> Stats:
        # max_D  E[log D(y)] + E[log(1 - D(G(x)))]
        x, y, fake = self._pair = self.forward(run)
        if self.pretraining(run):
            # the first step of each log interval (and of this process): measured, not trained (below)
            due = self._measured is None or (self.log_every > 0 and run.step % self.log_every == 0)
            self._measured = self.measure(y, fake, run) if due else {}
            return {k: v for k, v in self._measured.items() if k in DS}
        return self.d_update(run, y, fake, None)

    def g_step(self, run: Run) -> Stats:
        x, y, fake = self.take_pair(run)
        mse = (fake.float() - y.float()).square().mean()
        if self.pretraining(run):
            # min_G  mean (y - G(x))^2                                     (SRResNet, eq. 4)
            stats = {k: v for k, v in (self._measured or {}).items() if k not in DS}
            stats["grad_norm/g"] = update(self.optimizers["G"], mse, [self.G], run.world.average_gradients)
            return {**stats, "srgan/mse": mse.detach()}
        # min_G  l_X + 10^-3 l_Gen = s mean (phi(y) - phi(G(x)))^2 - 10^-3 log D(G(x))    (eqs. 3, 5, 6)
        self.D.requires_grad_(False)  # D is a constant here: its weights get no gradient
        try:
            with autocast(x, run.schedule.precision):
                content = self.content_loss(fake, y)
                adversarial, _ = self.loss.g_loss(self.D, fake, None)
        finally:
            self.D.requires_grad_(True)
        loss_g = content + self.adversarial_weight * adversarial
        stats = {"srgan/mse": mse.detach(), "srgan/content": content.detach(), "srgan/adversarial": adversarial.detach()}
        stats["grad_norm/g"] = update(self.optimizers["G"], loss_g, [self.G], run.world.average_gradients)
        return {"loss/g": loss_g.detach(), **stats}

    def measure(self, y: Tensor, fake: Tensor, run: Run) -> Stats:
        """While G pretrains, D is not trained and G minimises the MSE; both objectives of the adversarial phase
        are measured instead, once per log interval, so that loss/d, loss/g and the accuracies are logged
        throughout (gan diagnose reads a gap as NaN, and a switch of loss/g from the MSE to l_SR as a swing).
        D runs in eval mode without gradients: nothing of it changes, batch norm's statistics included. Once
        per interval: a content network as large as VGG19 costs many times SRResNet's step."""
        was_training = self.D.training
        self.D.eval()
        try:
            with torch.no_grad(), autocast(y, run.schedule.precision):
                # the objectives alone: R1 and R2 penalise gradients that are not taken here
                real_logits, fake_logits = self.D(y).float(), self.D(fake.detach()).float()
                content = self.content_loss(fake.detach(), y)
        finally:
            self.D.train(was_training)
        loss = self.loss
        adversarial = loss.g_objective(fake_logits)
        return {"loss/d": loss.d_objective(real_logits, fake_logits),
                "d/real": loss.score(real_logits).mean(), "d/fake": loss.score(fake_logits).mean(),
                "acc/real": (real_logits > loss.threshold).float().mean(),
                "acc/fake": (fake_logits <= loss.threshold).float().mean(),
                "loss/g": content + self.adversarial_weight * adversarial,
                "srgan/content": content, "srgan/adversarial": adversarial}

    def content_loss(self, fake: Tensor, real: Tensor) -> Tensor:
        """content_scale * the mean squared difference of the content network's features of G(x) and y."""
        with torch.no_grad():  # the original's side is a target, not a function of G
            target = self.content(real.float())
        return self.content_scale * (self.content(fake.float()).float() - target.float()).square().mean()

    # -- pictures: bicubic | G(x) | original ----------------------------------------------------------------

    def sources(self, run: Run, n: int) -> list[Tensor]:
        x, y, _ = run.data.pairs(n)
        return [x, y]

    def translate(self, sources: list[Tensor]) -> list[Tensor]:
        from gan_cli.data.super_resolution import upsample

        x, y = sources
        return [upsample(x, y.shape[-2:]), self.sampler(x), y]
