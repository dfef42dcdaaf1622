"""One discriminator update and one generator update. Everything returned stays on the device: the
loop reads statistics once per log interval, so no step waits on the host."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gan_cli.losses import GANLoss, Stats


def grad_norm(*modules: nn.Module) -> Tensor:
    """L2 norm of all of the modules' gradients together, as one device scalar."""
    grads = [p.grad for module in modules for p in module.parameters() if p.grad is not None]
    return torch.nn.utils.get_total_norm(grads) if grads else torch.zeros(())


def update(opt: torch.optim.Optimizer, loss: Tensor, nets: list[nn.Module], sync=None) -> Tensor:
    """One optimiser step on `loss`: its gradients (the world's mean under torchrun, through `sync`), their
    norm over `nets` together, the step. Returns the norm."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if sync is not None:
        for net in nets:
            sync(net)
    norm = grad_norm(*nets)
    opt.step()
    return norm


def autocast(x: Tensor, dtype: torch.dtype | None):
    """Forward passes in dtype (bfloat16: train.precision=bf16) where autocast deems it safe; off for None."""
    return torch.autocast(x.device.type, dtype=dtype, enabled=dtype is not None)


def discriminator_step(G: nn.Module, D: nn.Module, loss: GANLoss, opt: torch.optim.Optimizer,
                       real: Tensor, z: Tensor, y: Tensor | None = None, sync=None,
                       precision: torch.dtype | None = None) -> tuple[Tensor, Stats]:
    # max_D  E_x[log D(x)] + E_z[log(1 - D(G(z)))]   (or the loss's own critic objective)
    with autocast(real, precision):
        with torch.no_grad():
            fake = G(z, y)  # G is a constant here: no graph through it
        loss_d, stats = loss.d_loss(D, real, fake, y)
    stats["grad_norm/d"] = update(opt, loss_d, [D], sync)  # data parallel: sync takes the world's mean gradient
    loss.after_d_step(D)
    return loss_d.detach(), stats


def generator_step(G: nn.Module, D: nn.Module, loss: GANLoss, opt: torch.optim.Optimizer,
                   z: Tensor, y: Tensor | None = None, sync=None,
                   precision: torch.dtype | None = None) -> tuple[Tensor, Stats]:
    # min_G  E_z[log(1 - D(G(z)))]  (minimax)  or  max_G E_z[log D(G(z))]  (non-saturating)
    D.requires_grad_(False)  # D is a constant here: its weights get no gradient and stay untouched
    try:
        with autocast(z, precision):
            loss_g, stats = loss.g_loss(D, G(z, y), y)
        stats["grad_norm/g"] = update(opt, loss_g, [G], sync)
    finally:
        D.requires_grad_(True)
    return loss_g.detach(), stats
