"""CycleGAN (Zhu et al. 2017, "Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial
Networks"): two domains A and B with no pairs. G: A -> B and F: B -> A, each judged by a discriminator of
its target domain (D_B, D_A), and tied together by cycle consistency (section 3):

    L = L_GAN(G, D_B) + L_GAN(F, D_A) + lambda_cyc L_cyc + lambda_id L_id               (eq. 3, section 5.2)
    L_cyc = E_a[|F(G(a)) - a|_1] + E_b[|G(F(b)) - b|_1]                                 (eq. 2)
    L_id  = E_b[|G(b) - b|_1] + E_a[|F(a) - a|_1]       (identity: keeps colours; lambda_id = 0.5 lambda_cyc)

The adversarial objective is loss= (the paper's least squares: loss=lsgan). loss=lsgan's G objective carries
Mao et al.'s factor 1/2 and CycleGAN's has none, so the recipe's algorithm.lambda_gan=2 gives the paper's
balance between the adversarial and the cycle terms.

Each D learns from a history of 50 generated images rather than the latest batch only (Shrivastava et al.
2017, the paper's section 4): ImagePool. G and F share one optimiser, D_A and D_B another, as in the
paper's code; G's update comes first, then the Ds', on the same real batch."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from gan_cli.algorithms.base import Phase, Stats
from gan_cli.algorithms.translation import Translation
from gan_cli.errors import UserError
from gan_cli.losses import GANLoss
from gan_cli.steps import autocast, update

if TYPE_CHECKING:
    from gan_cli.loop import Run


class ImagePool:
    """Shrivastava et al. 2017: until the pool holds `size` images each new one is stored and returned;
    after that each new image, with probability 1/2, is swapped for a random stored one (which is returned
    instead) and otherwise returned as it is. size 0 turns the pool off."""

    def __init__(self, size: int = 50):
        self.size = size
        self.images: Tensor | None = None  # (k, C, H, W), k <= size

    def query(self, images: Tensor, generator: torch.Generator) -> Tensor:
        if self.size == 0:
            return images
        images = images.detach()
        out = []
        for image in images:
            stored = 0 if self.images is None else len(self.images)
            if stored < self.size:
                self.images = image[None].clone() if self.images is None else torch.cat([self.images, image[None]])
                out.append(image)
                continue
            coin, index = torch.rand((), generator=generator, device=generator.device), \
                torch.randint(self.size, (), generator=generator, device=generator.device)
            # decided on the device (torch.where), not in Python: `if coin < 0.5` would wait for the GPU once
            # per image of every step
            swap, stored_image = coin < 0.5, self.images[index]
            out.append(torch.where(swap, stored_image, image))
            self.images[index] = torch.where(swap, image, stored_image)
        return torch.stack(out)


class CycleGAN(Translation):
    paired = False
    directions = {"AtoB": "G", "BtoA": "F"}
    optimized = {"G": ("G", "F"), "D": ("D_A", "D_B")}

    @classmethod
    def networks(cls, shape, input_shape):
        # shape: domain B's samples (what G makes); input_shape: domain A's (what F makes)
        return {"G": ("g", {"shape": shape, "in_shape": input_shape}),
                "F": ("g", {"shape": input_shape, "in_shape": shape}),
                "D_A": ("d", {"shape": input_shape}), "D_B": ("d", {"shape": shape})}

    def __init__(self, models: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer], loss: GANLoss,
                 lambda_cyc: float = 10.0, lambda_id: float = 0.5, lambda_gan: float = 1.0, pool_size: int = 50,
                 ema: float = 0.0, num_classes: int | None = None):
        """lambda_cyc: the cycle terms' weight (paper: 10); lambda_id: the identity terms' weight as a share of
        lambda_cyc (paper: 0.5; 0 turns them off); lambda_gan: the adversarial terms' weight; pool_size: the
        generated images each D's history holds (paper: 50; 0: the latest batch only)."""
        for key, value in (("lambda_cyc", lambda_cyc), ("lambda_id", lambda_id), ("lambda_gan", lambda_gan)):
            if not value >= 0:
                raise UserError(f"algorithm.{key}={value} must be 0 or positive (paper: lambda_cyc=10, lambda_id=0.5)")
        if isinstance(pool_size, bool) or not isinstance(pool_size, int) or pool_size < 0:
            raise UserError(f"algorithm.pool_size={pool_size} must be a whole number of images, 0 or more (paper: 50)")
        super().__init__(models, optimizers, ema)
        self.G, self.F, self.D_A, self.D_B = (models[k] for k in ("G", "F", "D_A", "D_B"))
        if lambda_id > 0 and self.G.in_shape[0] != self.F.in_shape[0]:
            raise UserError(f"the identity terms feed domain B to G and A to F, and the domains have {self.G.in_shape[0]}"
                            f" and {self.F.in_shape[0]} channels: set algorithm.lambda_id=0, or data.channels alike")
        self.loss = loss
        for D in (self.D_A, self.D_B):
            loss.check(D)
        self.num_classes = None
        self.lambda_cyc, self.lambda_id, self.lambda_gan = lambda_cyc, lambda_id, lambda_gan
        self.pools = {"A": ImagePool(pool_size), "B": ImagePool(pool_size)}
        self._last: tuple[Tensor, Tensor, Tensor, Tensor] | None = None  # (a, b, F(b), G(a)) for the Ds' phase
        self.phases = [Phase("g", self.g_step), Phase("d", self.d_step)]

    def g_step(self, run: Run) -> Stats:
        # min_{G,F}  L_GAN(G, D_B) + L_GAN(F, D_A) + lambda_cyc L_cyc + lambda_cyc lambda_id L_id
        batch = run.next_batch()
        a, b = batch.inputs, batch.images
        for D in (self.D_A, self.D_B):
            D.requires_grad_(False)  # the Ds are constants here: their weights get no gradient
        try:
            with autocast(a, run.schedule.precision):
                fake_b, fake_a = self.G(a), self.F(b)
                rec_a, rec_b = self.F(fake_b), self.G(fake_a)
                gan_b, _ = self.loss.g_loss(self.D_B, fake_b)
                gan_a, _ = self.loss.g_loss(self.D_A, fake_a)
                identity = (l1(self.G(b), b) + l1(self.F(a), a)) if self.lambda_id > 0 else torch.zeros((), device=a.device)
        finally:
            for D in (self.D_A, self.D_B):
                D.requires_grad_(True)
        cycle = l1(rec_a, a) + l1(rec_b, b)
        adversarial = gan_a + gan_b
        loss_g = self.lambda_gan * adversarial + self.lambda_cyc * cycle + self.lambda_cyc * self.lambda_id * identity
        norm = update(self.optimizers["G"], loss_g, [self.G, self.F], run.world.average_gradients)
        self._last = (a, b, fake_a.detach(), fake_b.detach())
        return {"loss/g": loss_g.detach(), "cyclegan/gan": adversarial.detach(), "cyclegan/cycle": cycle.detach(),
                "cyclegan/identity": identity.detach(), "grad_norm/g": norm}  # G and F together

    def d_step(self, run: Run) -> Stats:
        # min_{D_A}  L_D(a, pool(F(b)))  and  min_{D_B}  L_D(b, pool(G(a))), with one optimiser
        a, b, fake_a, fake_b = self._last
        fake_a, fake_b = self.pools["A"].query(fake_a, run.z_gen), self.pools["B"].query(fake_b, run.z_gen)
        with autocast(a, run.schedule.precision):
            loss_a, stats_a = self.loss.d_loss(self.D_A, a, fake_a)
            loss_b, stats_b = self.loss.d_loss(self.D_B, b, fake_b)
        norm = update(self.optimizers["D"], loss_a + loss_b, [self.D_A, self.D_B], run.world.average_gradients)
        for D in (self.D_A, self.D_B):
            self.loss.after_d_step(D)
        # the names gan diagnose and the live watch read are the two Ds' means; each D's own beside them
        stats: Stats = {"loss/d": (loss_a + loss_b).detach() / 2, "grad_norm/d": norm}
        for key in stats_a:
            stats[key] = (stats_a[key] + stats_b[key]) / 2
            stats[f"d_a/{key.replace('/', '_')}"], stats[f"d_b/{key.replace('/', '_')}"] = stats_a[key], stats_b[key]
        return stats

    # -- pictures: a | G(a) | F(G(a)) and b | F(b) | G(F(b)) -------------------------------------------

    def sources(self, run: Run, n: int) -> list[Tensor]:
        (a, _), (b, _) = run.data.sides(n)
        return [a, b]

    def translate(self, sources: list[Tensor]) -> list[Tensor]:
        a, b = sources
        fake_b, fake_a = self.G(a), self.F(b)
        return [a, fake_b, self.F(fake_b), b, fake_a, self.G(fake_a)]

    # -- the pools are part of the state: a resumed run goes on with the same history --------------------

    def state_dict(self) -> dict[str, Any]:
        return {"pools": {k: None if p.images is None else p.images.cpu().clone() for k, p in self.pools.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pools = state.get("pools") or {}
        device = next(self.D_A.parameters()).device
        shapes = {"A": tuple(self.G.in_shape), "B": tuple(self.F.in_shape)}  # pool A holds F's outputs, B G's
        for key, pool in self.pools.items():
            images = pools.get(key)
            if images is None:
                continue
            if not (isinstance(images, Tensor) and images.is_floating_point() and images.ndim == 4
                    and tuple(images.shape[1:]) == shapes[key] and len(images) <= max(pool.size, 1) * 2):
                raise UserError(f"the checkpoint's image pool {key} is not a stack of {'x'.join(map(str, shapes[key]))} "
                                f"images: the file is damaged; resume from another checkpoint of the run")
            pool.images = images.to(device)[:pool.size] if pool.size else None


def l1(x: Tensor, y: Tensor) -> Tensor:
    return (x.float() - y.float()).abs().mean()
