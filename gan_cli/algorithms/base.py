"""The interface every training algorithm implements (after stylegan2-ada's phases and mimicry's
per-model train_step): named networks and optimisers, a list of phases, and its own state."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from gan_cli.errors import UserError
from gan_cli.data.batch import input_shape_of

if TYPE_CHECKING:
    from gan_cli.loop import Run

EMA_RAMPUP = 0.05  # StyleGAN2-ADA's ema_rampup: the average's half-life is at most this share of the steps so far

Stats = dict[str, Tensor]  # device scalars under fixed names (loss/d, d/real, began/k, ...): read once per log interval


def ramped_ema(decay: float, rampup: float = EMA_RAMPUP):
    """The update of an exponential moving average of G's weights whose half-life, in steps, is
    min(ln 0.5 / ln decay, rampup * steps averaged so far), as StyleGAN2-ADA ramps its EMA up
    (training_loop.py). A fixed decay of 0.999 would still hold 47% of the initial, untrained weights after
    750 steps, the length of a short CPU run; ramped up, the average follows G closely at first and reaches
    the full decay after ln 0.5 / ln decay / rampup steps (13,860 for 0.999)."""
    half_life = math.log(0.5) / math.log(decay) if decay < 1 else math.inf

    def update(ema_params, params, n_averaged) -> None:
        beta = 0.5 ** (1 / max(min(half_life, float(n_averaged) * rampup), 1e-8))
        get_ema_multi_avg_fn(beta)(ema_params, params, n_averaged)

    return update


@dataclass(frozen=True)
class Phase:
    """One part of a training step: `run` does its forward and backward passes and its optimiser step,
    `repeat` times in a row (k discriminator updates), at steps where step % every == 0 (lazy
    regularisation: R1 every 16 steps)."""

    name: str
    run: Callable[[Run], Stats]
    repeat: int = 1
    every: int = 1


class Algorithm:
    """A family's training step. Subclasses set `phases` and implement them; the base keeps the networks,
    the optimisers, and an exponential moving average of the generator for sampling.

    Networks and optimisers are named ("G", "D"): the names key them in a checkpoint. `generator` names
    the network that `gan sample` rebuilds; `inputs` says what it takes (z, label, an image, text)."""

    generator = "G"
    inputs: tuple[str, ...] = ("z",)
    # optimiser name -> the networks it updates; optimizer.<name, lower case> configures it
    optimized: dict[str, tuple[str, ...]] = {"G": ("G",), "D": ("D",)}
    # the stabilisers (conf keys) this algorithm honours; any other one set is refused when the run is built
    stabilisers: frozenset[str] = frozenset()

    @classmethod
    def networks(cls, shape: tuple[int, ...], input_shape: tuple[int, ...] | None) -> dict[str, tuple[str, dict]]:
        """The networks this algorithm trains: name -> (the model= key that builds it, the shapes it is built
        for). shape: a sample's (what G makes, D judges); input_shape: a translation's source images."""
        return {"G": ("g", {"shape": shape}), "D": ("d", {"shape": shape})}

    @classmethod
    def check_data(cls, data) -> None:
        """Refuse, before anything is built, data this algorithm cannot train on: image pairs for a
        generator of noise, say."""
        if input_shape_of(data) is not None:
            kind = "pix2pix" if data.paired else "cyclegan"
            raise UserError(f"data={data.name} holds {'image pairs' if data.paired else 'two image domains'} for "
                            f"translation, and algorithm={cls.__name__.lower()} generates from noise: use "
                            f"algorithm={kind} model={kind} (or experiment={kind}_...)")

    def __init__(self, models: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer],
                 ema: float = 0.0):
        self.models, self.optimizers = models, optimizers
        G = models[self.generator]
        self.ema = AveragedModel(G, multi_avg_fn=ramped_ema(ema), use_buffers=True) if ema > 0 else None

    phases: list[Phase] = []

    def differentiated(self) -> dict[str, str]:
        """The networks whose gradients this algorithm differentiates again (a double backward: WGAN-GP's and
        R1's penalties, an unrolled D, StyleGAN2's path length), each with the setting that asks for it.
        train.compile leaves them eager: torch.compile's backward cannot itself be differentiated."""
        key = getattr(getattr(self, "loss", None), "gradient_penalty_key", "")
        return {name: key for name in self.optimized.get("D", ())} if key else {}

    @property
    def sampler(self) -> nn.Module:
        """The generator that pictures, evaluation and `gan sample` use: its EMA when one is kept."""
        return self.ema.module if self.ema is not None else self.models[self.generator]

    def picture(self, run: Run, real: Tensor) -> tuple[Tensor, Tensor]:
        """The sampler's samples of the fixed noise, and their picture (3, H, W) in [0, 1]: a grid of
        images, or 2-D points over `real`."""
        G = self.sampler
        was_training = G.training
        G.eval()
        with torch.no_grad():
            fake = G(run.fixed.z, run.fixed.y)
        G.train(was_training)
        modality = run.data.modality
        return fake, modality.picture(fake, None if modality.images else real, run.data.scale, nrow=run.fixed.nrow)

    def as_seen(self, real: Tensor) -> Tensor:
        """Real samples as D is shown them now: themselves, unless the algorithm changes what D sees during
        training (ProGAN: at the current stage's resolution)."""
        return real

    def view(self) -> str:
        """What pictures are tagged with besides the step: "" for most algorithms, ProGAN's current
        resolution ("16x16")."""
        return ""

    def begin(self, run: Run) -> None:
        """Before the first step of a new run (not on resume): a warm-up, say."""

    def end_step(self, run: Run) -> None:
        """After every step's phases."""
        if self.ema is not None:
            self.ema.update_parameters(self.models[self.generator])

    def state_dict(self) -> dict[str, Any]:
        """The algorithm's own state beyond networks and optimisers (BEGAN's k, an image pool), as tensors
        and plain containers: it goes into the checkpoint, which is loaded with weights_only=True."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass
