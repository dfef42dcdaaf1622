"""BEGAN (Berthelot et al. 2017, "BEGAN: Boundary Equilibrium Generative Adversarial Networks"): D is an
auto-encoder (gan_cli/models/began.py) and scores an image v by its reconstruction loss

    L(v) = |v - D(v)|_1                         (section 3.1 with eta = 1: the mean over pixels here)

D learns to reconstruct real images and to fail on fakes, G to make fakes D reconstructs well; a
proportional controller keeps the two in equilibrium, E[L(G(z))] = gamma E[L(x)] (section 3.4):

    L_D = L(x) - k_t L(G(z_D))                  for D's weights
    L_G = L(G(z_G))                             for G's weights
    k_{t+1} = clip(k_t + lambda_k (gamma L(x) - L(G(z_G))), 0, 1)

gamma, the diversity ratio, trades sample diversity (high) for quality (low). The paper's measure of
convergence, M_global = L(x) + |gamma L(x) - L(G(z_G))|, falls as training goes right (section 3.4.1):
gan diagnose judges a BEGAN run by it, since D here has no accuracy to read.

The paper updates D and G from one forward pass; here D's update comes first (phase "d"), then G's
(phase "g", against the updated D), then k's, from L(x) of D's phase and L(G(z_G)) of G's."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from gan_cli.algorithms.base import Algorithm, Phase, Stats
from gan_cli.errors import UserError
from gan_cli.steps import autocast, update

if TYPE_CHECKING:
    from gan_cli.loop import Run


def reconstruction_loss(D: nn.Module, v: Tensor) -> Tensor:
    """L(v) per sample: the mean over pixels of |v - D(v)|, shape (N,). In float32 under bf16 autocast:
    the losses are small differences of values near +-1, which bfloat16's 8 bits of mantissa would blur."""
    return (v.float() - D(v).float()).abs().flatten(1).mean(dim=1)


class BEGAN(Algorithm):
    inputs = ("z",)

    def __init__(self, models: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer],
                 gamma: float = 0.5, lambda_k: float = 0.001, k_0: float = 0.0, ema: float = 0.0,
                 num_classes: int | None = None):
        """gamma: the diversity ratio E[L(G(z))] / E[L(x)] the controller holds (paper: 0.5, tried 0.3 to
        0.7); lambda_k: the controller's gain, k's learning rate (paper: 0.001); k_0: k's start (paper: 0);
        num_classes: set only for a conditional model, which BEGAN refuses."""
        if num_classes:
            raise UserError("algorithm=began trains an unconditional generator; the model is conditional "
                            "(model.conditional=true): use model=began")
        if not 0 < gamma <= 1:
            raise UserError(f"algorithm.gamma={gamma} must be in (0, 1]: the ratio of the fakes' reconstruction "
                            f"loss to the real images' (the paper uses 0.3 to 0.7)")
        if not getattr(models["D"], "autoencoder", False):
            raise UserError(f"algorithm=began needs an auto-encoder discriminator (one that declares autoencoder = "
                            f"True and returns its reconstruction), not {type(models['D']).__name__}: use model=began")
        if lambda_k < 0:
            raise UserError(f"algorithm.lambda_k={lambda_k} must be 0 or positive (the paper uses 0.001)")
        if not 0 <= k_0 <= 1:
            raise UserError(f"algorithm.k_0={k_0} must be in [0, 1] (k is clipped to it; the paper starts at 0)")
        super().__init__(models, optimizers, ema)
        self.G, self.D = models["G"], models["D"]
        self.num_classes = None  # the checkpoint records it; sample and eval then draw no labels
        self.gamma, self.lambda_k = gamma, lambda_k
        device = next(self.D.parameters()).device
        # k is a device scalar: reading it on the host every step would make each step wait for the device
        self.k = torch.tensor(float(k_0), device=device)
        self._l_real: Tensor | None = None  # L(x) of this step's D phase, for the k update after G's
        self.phases = [Phase("d", self.d_step), Phase("g", self.g_step)]

    def d_step(self, run: Run) -> Stats:
        # min_D  L(x) - k_t L(G(z_D))
        x = run.next_batch().images
        z = run.z(len(x), self.G.z_dim)
        with autocast(x, run.schedule.precision):
            with torch.no_grad():
                fake = self.G(z)  # G is a constant here: no graph through it
            # one pass over real and fake together: D has no batch statistics, so it is the same function
            losses = reconstruction_loss(self.D, torch.cat([x, fake.to(x.dtype)]))
        l_real, l_fake = losses[:len(x)].mean(), losses[len(x):].mean()
        loss_d = l_real - self.k * l_fake
        norm = update(self.optimizers["D"], loss_d, [self.D], run.world.average_gradients)
        self._l_real = l_real.detach()
        return {"loss/d": loss_d.detach(), "began/l_real": self._l_real, "grad_norm/d": norm}

    def g_step(self, run: Run) -> Stats:
        # min_G  L(G(z_G))
        z = run.z(run.schedule.batch_size, self.G.z_dim)
        self.D.requires_grad_(False)  # D is a constant here: its weights get no gradient
        try:
            with autocast(z, run.schedule.precision):
                loss_g = reconstruction_loss(self.D, self.G(z)).mean()
            norm = update(self.optimizers["G"], loss_g, [self.G], run.world.average_gradients)
        finally:
            self.D.requires_grad_(True)
        l_fake = loss_g.detach()
        k, m_global = self.update_k(self._l_real, l_fake, run.world.mean)
        return {"loss/g": l_fake, "began/l_fake": l_fake, "began/k": k, "began/m_global": m_global,
                "grad_norm/g": norm}

    def update_k(self, l_real: Tensor, l_fake: Tensor, mean=None) -> tuple[Tensor, Tensor]:
        """k_{t+1} = clip(k_t + lambda_k (gamma L(x) - L(G(z_G))), 0, 1); returns k_{t+1} and M_global.
        `mean` averages the balance over a torchrun world (World.mean), so that k stays the same on every
        rank, as if one process had seen the world's batch."""
        balance = self.gamma * l_real - l_fake
        if mean is not None:
            balance = mean(balance)
        self.k = (self.k + self.lambda_k * balance).clamp(0.0, 1.0)
        # M_global = L(x) + |gamma L(x) - L(G(z_G))|   (section 3.4.1)
        return self.k, l_real + balance.abs()

    def state_dict(self) -> dict[str, Any]:
        return {"k": self.k.detach().cpu().clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "k" not in state:
            return
        k = state["k"]
        if not (isinstance(k, torch.Tensor) and k.numel() == 1 and k.is_floating_point() and 0 <= float(k) <= 1):
            raise UserError(f"the checkpoint's BEGAN k is {k!r:.40}, not a number in [0, 1]: the file is damaged; "
                            f"resume from another checkpoint of the run")
        self.k = k.reshape(()).to(torch.float32).to(self.k.device)
