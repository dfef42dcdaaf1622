"""One discriminator update and one generator update. Everything returned stays on the device: the
loop reads statistics once per log interval, so no step waits on the host."""

from __future__ import annotations

from collections.abc import Callable

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
                       precision: torch.dtype | None = None, perturb: Perturb | None = None,
                       penalty: Penalty | None = None) -> tuple[Tensor, Stats]:
    """perturb: what D's inputs go through (instance noise); penalty: a term added to D's loss
    (historical averaging), as (name, value)."""
    # max_D  E_x[log D(x)] + E_z[log(1 - D(G(z)))]   (or the loss's own critic objective)
    with autocast(real, precision):
        with torch.no_grad():
            fake = G(z, y)  # G is a constant here: no graph through it
        if perturb is not None:
            real, fake = perturb(real), perturb(fake)
        loss_d, stats = loss.d_loss(D, real, fake, y)
    loss_d = _penalised(loss_d, stats, penalty, D)
    stats["grad_norm/d"] = update(opt, loss_d, [D], sync)  # data parallel: sync takes the world's mean gradient
    loss.after_d_step(D)
    return loss_d.detach(), stats


def generator_step(G: nn.Module, D: nn.Module, loss: GANLoss, opt: torch.optim.Optimizer,
                   z: Tensor, y: Tensor | None = None, sync=None,
                   precision: torch.dtype | None = None, real: Tensor | None = None, perturb: Perturb | None = None,
                   penalty: Penalty | None = None, unrolled: int | None = None,
                   d_opt: torch.optim.Optimizer | None = None) -> tuple[Tensor, Stats]:
    """real: a batch of data, for feature matching and an unrolled D; unrolled: G's objective against D
    after that many differentiable updates of D's optimiser d_opt (Metz et al. 2017)."""
    # min_G  E_z[log(1 - D(G(z)))]  (minimax)  or  max_G E_z[log D(G(z))]  (non-saturating)
    D.requires_grad_(False)  # D is a constant here: its weights get no gradient and stay untouched
    try:
        with autocast(z, precision):
            fake = G(z, y)
            if perturb is not None:
                fake = perturb(fake)
                real = None if real is None else perturb(real)
            judge = D if not unrolled else unroll(D, loss, d_opt, real, fake, y, unrolled)
            loss_g, stats = loss.g_loss(judge, fake, y, real)
        loss_g = _penalised(loss_g, stats, penalty, G)
        stats["grad_norm/g"] = update(opt, loss_g, [G], sync)
    finally:
        D.requires_grad_(True)
    return loss_g.detach(), stats


Perturb = Callable[[Tensor], Tensor]
Penalty = Callable[[nn.Module], tuple[str, Tensor]]


def _penalised(loss: Tensor, stats: Stats, penalty: Penalty | None, net: nn.Module) -> Tensor:
    if penalty is None:
        return loss
    name, value = penalty(net)
    stats[name] = value.detach()
    return loss + value


def unroll(D: nn.Module, loss: GANLoss, opt: torch.optim.Optimizer, real: Tensor, fake: Tensor,
           y: Tensor | None, k: int) -> Callable[..., Tensor]:
    """D after k updates on (real, fake), as a function of G's samples (Metz et al. 2017, eq. 5-6): each
    update is D's own optimiser's rule (Adam's from its current moments, as the paper's code does; any
    other optimiser a plain gradient step at its learning rate), written out differentiably, so that G's
    gradient through the returned D anticipates how D would answer its move. D itself is not changed."""
    # D's weights as new leaves: the graph runs back through the updates to fake, not into D's .grad
    params = {name: p.detach().requires_grad_(True) for name, p in D.named_parameters()}
    buffers = {name: b.clone() for name, b in D.named_buffers()}  # BatchNorm's running statistics stay D's own
    group = opt.param_groups[0]
    adam = isinstance(opt, torch.optim.Adam)
    moments = {}
    for (name, p) in D.named_parameters():
        state = opt.state.get(p, {})
        moments[name] = (state.get("exp_avg", torch.zeros_like(p)), state.get("exp_avg_sq", torch.zeros_like(p)),
                         float(state.get("step", 0)))

    def judge(x: Tensor, labels: Tensor | None = None) -> Tensor:
        return torch.func.functional_call(D, (params, buffers), (x, labels))

    for _ in range(k):
        loss_d, _ = loss.d_loss(judge, real, fake, y)
        grads = torch.autograd.grad(loss_d, list(params.values()), create_graph=True)
        for (name, p), g in zip(list(params.items()), grads):
            if group.get("weight_decay"):  # torch's Adam and SGD add it to the gradient (L2, not AdamW)
                g = g + group["weight_decay"] * p
            if adam:
                (beta1, beta2), (m, v, t) = group["betas"], moments[name]
                m, v, t = beta1 * m + (1 - beta1) * g, beta2 * v + (1 - beta2) * g * g, t + 1
                moments[name] = (m, v, t)
                # clamp, not sqrt(0): sqrt's derivative at 0 is infinite and would make G's gradient NaN
                denom = (v / (1 - beta2 ** t)).clamp_min(1e-30).sqrt() + group["eps"]
                p = p - group["lr"] * (m / (1 - beta1 ** t)) / denom
            else:
                p = p - group["lr"] * g
            params[name] = loss.project(p)
    return judge
