"""What pix2pix and CycleGAN share: a generator that takes an image instead of z, data that comes as
pairs or as two domains, fixed source images for the sample pictures, and the `directions` that `gan sample
direction=` and `gan eval` read (which network translates which way)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from gan_cli import visuals
from gan_cli.algorithms.base import Algorithm, Stats
from gan_cli.errors import UserError
from gan_cli.steps import autocast, update
from gan_cli.data.batch import input_shape_of

if TYPE_CHECKING:
    from gan_cli.loop import Run

PER_ROW = 4  # groups (input | output | ...) per row of a sample picture


class Translation(Algorithm):
    inputs = ("image",)
    # the stabilisers inside the loss's D objective; G's side is the family's own (L1, cycle, identity)
    stabilisers = frozenset({"loss.label_smoothing", "loss.r1", "loss.r2"})
    paired = True  # whether the algorithm trains on aligned pairs (pix2pix) or on two domains (CycleGAN)
    upscales = False  # whether G's output is larger than its input (SRGAN) or of its size
    directions: dict[str, str] = {"AtoB": "G"}  # gan sample direction= -> the network that translates so
    _pair: tuple[Tensor, Tensor, Tensor] | None = None  # (x, y, G(x)) of this step, from D's phase to G's

    @classmethod
    def check_data(cls, data) -> None:
        name = cls.__name__.lower()
        if input_shape_of(data) is None:
            raise UserError(f"algorithm={name} translates images, and data={data.name} holds single images: use "
                            f"{'data=edges2mnist, edges2fashion or paired_folder' if cls.paired else 'data=mnist2digits or unpaired_folder'}"
                            f" (or experiment={name}_...)")
        if data.paired != cls.paired:
            other = "pix2pix" if data.paired else "cyclegan"
            raise UserError(f"data={data.name} is {'paired (pix2pix' if data.paired else 'unpaired (CycleGAN'}'s "
                            f"layout) and algorithm={name} trains on {'pairs' if cls.paired else 'two unaligned domains'}:"
                            f" use algorithm={other} model={other}, or {'an unpaired' if cls.paired else 'a paired'} data set")
        if tuple(input_shape_of(data)[1:]) != tuple(data.shape[1:]) and not cls.upscales:
            raise UserError(f"data={data.name} pairs small inputs with larger targets (super-resolution), and "
                            f"algorithm={name} translates at one size: use algorithm=srgan model=srgan")

    @property
    def translators(self) -> dict[str, nn.Module]:
        """direction -> the network that translates so (G's EMA when kept)."""
        return {d: self.sampler if name == self.generator else self.models[name] for d, name in self.directions.items()}

    def forward(self, run: Run) -> tuple[Tensor, Tensor, Tensor]:
        """The next batch of pairs and G's translations: (x, y, G(x)), shared by a step's D and G phases
        (pix2pix, SRGAN)."""
        batch = run.next_batch()
        x, y = batch.inputs, batch.targets
        with autocast(x, run.schedule.precision):
            fake = self.models[self.generator](x)
        return x, y, fake

    def take_pair(self, run: Run) -> tuple[Tensor, Tensor, Tensor]:
        """This step's (x, y, G(x)) as D's phase left it in self._pair, or a fresh one when D did not run."""
        pair = self._pair if self._pair is not None else self.forward(run)
        self._pair = None
        return pair

    def d_update(self, run: Run, real: Tensor, fake: Tensor, condition: Tensor | None) -> Stats:
        """One update of self.D by loss= on real images against G's translations (pix2pix's D also sees the
        input as its condition; SRGAN's none)."""
        with autocast(real, run.schedule.precision):
            loss_d, stats = self.loss.d_loss(self.D, real, fake.detach(), condition)
        stats["grad_norm/d"] = update(self.optimizers["D"], loss_d, [self.D], run.world.average_gradients)
        self.loss.after_d_step(self.D)
        return {"loss/d": loss_d.detach(), **stats}

    def sources(self, run: Run, n: int) -> list[Tensor]:
        """The picture's rows come from these fixed training images: the first n of each side."""
        raise NotImplementedError

    def translate(self, sources: list[Tensor]) -> list[Tensor]:
        """The columns of the picture, each (n, C, H, W): the sources and what the networks make of them."""
        raise NotImplementedError

    def picture(self, run: Run, real: Tensor) -> tuple[Tensor, Tensor]:
        n = min(len(run.fixed.z), PER_ROW * 4)
        sources = [x.to(run.device) for x in self.sources(run, n)]
        nets = [*self.models.values(), *([self.ema.module] if self.ema is not None else [])]
        modes = [m.training for m in nets]
        for m in nets:
            m.eval()
        # dropout-as-noise stays on in eval mode (pix2pix): a fixed seed keeps the pictures comparable from one
        # step to the next, and forking the RNG leaves the training stream as it was
        with torch.no_grad(), torch.random.fork_rng(devices=[run.device] if run.device.type == "cuda" else []):
            torch.manual_seed(run.seed)
            columns = self.translate(sources)
        for m, mode in zip(nets, modes):
            m.train(mode)
        return columns[1], groups_picture(columns)


def groups_picture(columns: list[Tensor], per_row: int = PER_ROW) -> Tensor:
    """Rows of groups (input | output | target, or x | G(x) | F(G(x))): column k of group i is columns[k][i]."""
    channels = max(c.shape[1] for c in columns)
    columns = [c.expand(-1, channels, -1, -1) if c.shape[1] != channels else c for c in columns]  # grey beside RGB
    tiles = torch.stack(columns, dim=1).flatten(0, 1)  # (n * len(columns), C, H, W), group by group
    return visuals.image_grid(tiles, per_row * len(columns))


def translate_all(G: nn.Module, x: Tensor, batch_size: int, device: torch.device) -> Tensor:
    """G's translations of x (N, C, H, W) in [-1, 1], batch by batch, on the CPU."""
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            out.append(G(x[i:i + batch_size].to(device)).float().cpu())
    return torch.cat(out) if out else x[:0]
