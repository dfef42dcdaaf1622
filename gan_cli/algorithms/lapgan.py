"""LAPGAN's training (Denton et al. 2015, section 3.2): each level of the Laplacian pyramid is its own
GAN, trained independently of the others on the pyramids of real images. Level k < K: D_k tells real
high-pass images h_k from G_k(z_k, l_k), both given the real low-pass image l_k; level K: a plain GAN on
the coarsest images. The objective of every level is loss= (gan_cli/models/lapgan.py has the networks).

`level=k` trains only level k (0 is the finest); the default trains every level, interleaved: each step
takes one real batch, builds its pyramid, and runs D_k's update then G_k's for every level in turn, so that
all levels see the same number of updates. Since the levels share no weights and no gradient, this is
the paper's independent training, on one clock."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from gan_cli.algorithms.base import Algorithm, Phase, Stats
from gan_cli.errors import UserError
from gan_cli.losses import GANLoss
from gan_cli.models.lapgan import pyramid
from gan_cli.steps import discriminator_step, generator_step

if TYPE_CHECKING:
    from gan_cli.loop import Run

log = logging.getLogger(__name__)

# the statistics averaged over the levels under their usual names, so that the detectors of `gan diagnose`
# and the progress bar read a LAPGAN run as any other; each level's own are logged as lapgan/<side>px/...
AVERAGED = ("d/real", "d/fake", "acc/real", "acc/fake", "grad_norm/d", "grad_norm/g")


class LAPGAN(Algorithm):
    stabilisers = frozenset({"loss.label_smoothing", "loss.r1", "loss.r2"})

    def __init__(self, models: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer], loss: GANLoss,
                 level: int | None = None, ema: float = 0.0):
        """level: the one level to train (0, the finest, to K, the coarsest), or None for all."""
        G, D = models["G"], models["D"]
        if not (callable(getattr(G, "cascade", None)) and hasattr(D, "levels")):
            raise UserError(f"algorithm=lapgan trains a pyramid of GANs, and {type(G).__name__} is not one: use "
                            f"model=lapgan (or experiment=lapgan_mnist)")
        levels = len(G.sides)
        if level is not None and not 0 <= level < levels:
            raise UserError(f"algorithm.level={level}: this pyramid ({' -> '.join(f'{s}px' for s in G.sides)}) has "
                            f"levels 0 (the finest) to {levels - 1} (the {G.sides[-1]}px images); null trains all")
        super().__init__(models, optimizers, ema)
        self.G, self.D, self.loss = G, D, loss
        self.num_classes = None
        self.levels = list(range(levels)) if level is None else [level]
        for k in self.levels:
            loss.check(D.levels[k])
        log.info("lapgan: training level%s %s of %s, %s", "s" if len(self.levels) > 1 else "",
                 ", ".join(f"{k} ({G.sides[k]}px)" for k in self.levels), " -> ".join(f"{s}px" for s in G.sides),
                 "interleaved: each step updates D_k, then G_k, of every level" if len(self.levels) > 1 else "alone")
        self._pyramid: tuple[list[Tensor], list[Tensor]] | None = None
        self.phases = [Phase("d", self.d_step), Phase("g", self.g_step)]

    def _noise(self, run: Run, k: int, n: int) -> Tensor:
        """Level k's noise: z_K for the coarsest, a plane (N, 1, s, s) for the others, from the run's stream
        (sampling draws the planes from z_K instead: Generator.noise_planes)."""
        if k == len(self.G.sides) - 1:
            return run.z(n, self.G.z_dim)
        side = self.G.sides[k]
        return run.z(n, side * side).view(n, 1, side, side)

    def _low(self, k: int) -> Tensor | None:
        lows, _ = self._pyramid
        return lows[k] if k < len(lows) else None  # the coarsest level has no low-pass condition

    def d_step(self, run: Run) -> Stats:
        # for each level: max_{D_k}  E[log D_k(h_k, l_k)] + E[log(1 - D_k(G_k(z_k, l_k), l_k))]
        batch = run.next_batch()
        self._pyramid = pyramid(batch.images, len(self.G.sides))
        highs = self._pyramid[1]
        per_level = {}
        for k in self.levels:
            per_level[k] = discriminator_step(self.G.levels[k], self.D.levels[k], self.loss, self.optimizers["D"],
                                              highs[k], self._noise(run, k, len(batch)), self._low(k),
                                              sync=run.world.average_gradients, precision=run.schedule.precision)
        return self._stats("d", per_level)

    def g_step(self, run: Run) -> Stats:
        # for each level: max_{G_k}  E[log D_k(G_k(z_k, l_k), l_k)] (non-saturating), l_k of the same real batch
        n = len(self._pyramid[1][0])
        per_level = {k: generator_step(self.G.levels[k], self.D.levels[k], self.loss, self.optimizers["G"],
                                       self._noise(run, k, n), self._low(k), sync=run.world.average_gradients,
                                       precision=run.schedule.precision)
                     for k in self.levels}
        return self._stats("g", per_level)

    def _stats(self, side: str, per_level: dict[int, tuple[Tensor, Stats]]) -> Stats:
        """loss/<side> summed over the levels, the AVERAGED names as means, and each level's own under
        lapgan/<side px>px/<name>."""
        out: Stats = {f"loss/{side}": torch.stack([loss for loss, _ in per_level.values()]).sum()}
        for k, (loss, stats) in per_level.items():
            prefix = f"lapgan/{self.G.sides[k]}px/"
            out[f"{prefix}loss_{side}"] = loss
            out.update({prefix + name.replace("/", "_"): value for name, value in stats.items()})
        for name in AVERAGED:
            values = [stats[name] for _, stats in per_level.values() if name in stats]
            if values:
                out[name] = torch.stack(values).mean()
        return out
