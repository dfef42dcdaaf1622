"""ProGAN, Karras et al. 2018 ("Progressive Growing of GANs for Improved Quality, Stability, and
Variation"): G and D start at the coarsest resolution (4x4, or 7x7 for 28 px data) and grow by a factor
of two per stage up to the data's. A new stage fades in: its output is blended with the previous stage's,
upsampled, by alpha rising from 0 to 1 (section 3, figure 2). Equalized learning rate and pixelwise
feature normalisation in G (section 4, gan_cli/models/equalized.py), and the minibatch standard deviation
in D's last block (section 3, gan_cli/models/minibatch.py).

Both networks are built whole, for the data's resolution, and `set_stage(stage, alpha)` says how much of
them runs (algorithm=progan sets it every step, from the images shown so far). G always returns images at
the data's resolution, the current stage's pixels repeated (nearest), and D always takes them and
takes one pixel of each block, which undoes the repetition exactly. So everything around
the two (pictures, evaluation, `gan sample`) sees ordinary images at every stage, and a checkpoint keeps
its stage (in each network's extra state) and samples as it trained.

Layers follow the authors' code (networks.py of tkarras/progressive_growing_of_gans): G's first block is a
dense layer from the pixel-normalised z to base x base maps (gain sqrt(2)/4) and a 3x3 conv; each later
block upsamples (nearest) and applies two 3x3 convs, each followed by leaky ReLU(0.2) and pixel norm; a
1x1 toRGB per stage, linear. D mirrors it with fromRGB 1x1, two 3x3 convs and a 2x average pool per block,
and its last block is minibatch stddev, a 3x3 conv, a base x base conv and a linear output."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from gan_cli.models.dcgan import upsampling_plan
from gan_cli.models.equalized import EqualizedConv2d, EqualizedLinear, PixelNorm
from gan_cli.models.layers import refuse_negative, require_positive, square_image
from gan_cli.models.minibatch import MinibatchStdDev


def lrelu() -> nn.Module:
    return nn.LeakyReLU(0.2)


def shown_at(x: torch.Tensor, resolution: int, alpha: float = 1.0) -> torch.Tensor:
    """Images as a stage of `resolution` sees them, at their own size: averaged down to it, and while the
    stage fades in (alpha < 1) blended with the previous stage's view, as the paper blends real images
    during a transition (appendix A.1), then repeated back up (nearest). (N, C, R, R) -> (N, C, R, R)."""
    side = x.shape[-1]
    low = F.avg_pool2d(x, side // resolution) if side > resolution else x
    if alpha < 1:
        low = torch.lerp(F.interpolate(F.avg_pool2d(low, 2), scale_factor=2.0, mode="nearest"), low, alpha)
    return F.interpolate(low, scale_factor=float(side // resolution), mode="nearest") if side > resolution else low


class Progressive(nn.Module):
    """What G and D share: the resolutions of the stages, and which of them runs now. The stage and alpha
    are plain numbers kept in the module's extra state, so that they travel with its weights into a
    checkpoint (an EMA copy's are set with the model's, never averaged)."""

    progressive = True

    def _plan(self, shape: Sequence[int], width: int, max_width: int) -> tuple[int, list[int], list[int]]:
        """(channels, resolutions, widths per stage), coarsest first; the finest stage has `width` channels,
        each coarser one twice as many, at most max_width (the paper: 512 channels up to 32x32)."""
        channels, side = square_image(shape, "progan")
        base, n = upsampling_plan(side, "progan")
        resolutions = [base * 2 ** i for i in range(n + 1)]
        widths = [min(width * 2 ** (n - i), max_width) for i in range(n + 1)]
        self.resolutions, self.stage, self.alpha = resolutions, n, 1.0  # fully grown until told otherwise
        return channels, resolutions, widths

    @property
    def resolution(self) -> int:
        """The side of the images the current stage makes or judges."""
        return self.resolutions[self.stage]

    def set_stage(self, stage: int, alpha: float = 1.0) -> None:
        if not 0 <= stage < len(self.resolutions) or not 0 <= alpha <= 1:
            raise ValueError(f"stage {stage} of {len(self.resolutions)}, alpha {alpha}")
        self.stage, self.alpha = stage, 1.0 if stage == 0 else float(alpha)

    def get_extra_state(self) -> dict[str, Any]:
        return {"stage": self.stage, "alpha": self.alpha}

    def set_extra_state(self, state: Any) -> None:
        # a crafted or damaged checkpoint: RuntimeError, which checkpoint.load_weights turns into one line
        if not (isinstance(state, dict) and isinstance(state.get("stage"), int)
                and isinstance(state.get("alpha"), float)):
            raise RuntimeError(f"progan stage {state!r} is not {{'stage': int, 'alpha': float}}")
        try:
            self.set_stage(state["stage"], state["alpha"])
        except ValueError as e:  # a stage this network does not have, or an alpha outside [0, 1] (NaN too)
            raise RuntimeError(f"progan stage out of range: {e}") from None


class Generator(Progressive):
    def __init__(self, z_dim: int, shape: Sequence[int], width: int = 32, max_width: int = 256):
        """width: channels of the finest stage, doubled per coarser stage up to max_width. Unconditional."""
        super().__init__()
        require_positive("model.g", z_dim=z_dim, width=width, max_width=max_width)
        channels, resolutions, widths = self._plan(shape, width, max_width)
        self.z_dim, self.num_classes = z_dim, None
        base, ch = resolutions[0], widths[0]
        self.norm = PixelNorm()
        # (N, z_dim) -> (N, ch, base, base); the authors' gain for this dense layer is sqrt(2) / 4
        self.dense = EqualizedLinear(z_dim, ch * base * base, gain=math.sqrt(2) / 4)
        self.first = nn.Sequential(lrelu(), PixelNorm(), EqualizedConv2d(ch, ch, 3), lrelu(), PixelNorm())
        # stage i: (N, widths[i-1], r/2, r/2) -> (N, widths[i], r, r)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Upsample(scale_factor=2.0, mode="nearest"),
                          EqualizedConv2d(widths[i - 1], widths[i], 3), lrelu(), PixelNorm(),
                          EqualizedConv2d(widths[i], widths[i], 3), lrelu(), PixelNorm())
            for i in range(1, len(resolutions)))
        self.to_rgb = nn.ModuleList(EqualizedConv2d(w, channels, 1, gain=1.0) for w in widths)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        base = self.resolutions[0]
        h = self.first(self.dense(self.norm(z)).view(len(z), -1, base, base))
        previous = h
        for block in self.blocks[:self.stage]:
            previous, h = h, block(h)
        image = self.to_rgb[self.stage](h)
        if self.alpha < 1:  # fading in: the previous stage's image, upsampled, gives way to this one's
            faded = F.interpolate(self.to_rgb[self.stage - 1](previous), scale_factor=2.0, mode="nearest")
            image = torch.lerp(faded, image, self.alpha)
        factor = self.resolutions[-1] // self.resolution
        return F.interpolate(image, scale_factor=float(factor), mode="nearest") if factor > 1 else image


class Discriminator(Progressive):
    def __init__(self, shape: Sequence[int], width: int = 32, max_width: int = 256, minibatch_stddev: int = 4):
        """width, max_width: as G's; minibatch_stddev: its group size (the paper: 4; 0 is off)."""
        super().__init__()
        require_positive("model.d", width=width, max_width=max_width)
        refuse_negative("model.d", minibatch_stddev=minibatch_stddev)
        channels, resolutions, widths = self._plan(shape, width, max_width)
        self.num_classes = None
        base, ch = resolutions[0], widths[0]
        self.from_rgb = nn.ModuleList(nn.Sequential(EqualizedConv2d(channels, w, 1), lrelu()) for w in widths)
        # stage i: (N, widths[i], r, r) -> (N, widths[i-1], r/2, r/2)
        self.blocks = nn.ModuleList(
            nn.Sequential(EqualizedConv2d(widths[i], widths[i], 3), lrelu(),
                          EqualizedConv2d(widths[i], widths[i - 1], 3), lrelu(), nn.AvgPool2d(2))
            for i in range(1, len(resolutions)))
        self.stddev = MinibatchStdDev(minibatch_stddev) if minibatch_stddev else None
        # (N, ch [+ 1], base, base) -> (N, ch): a 3x3 conv, then one over the whole base x base map
        self.last = nn.Sequential(EqualizedConv2d(ch + (1 if self.stddev else 0), ch, 3), lrelu(),
                                  EqualizedConv2d(ch, ch, base, padding=0), lrelu(), nn.Flatten())
        self.head = EqualizedLinear(ch, 1, gain=1.0)

    def features(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The last hidden layer, (N, widths[0]), which the linear head reads."""
        side = x.shape[-1]
        if side != self.resolutions[-1]:
            raise ValueError(f"progan D takes {self.resolutions[-1]} px images, got {side}")
        # one pixel of each block: G's images and the real ones as shown_at gives them are the stage's pixels
        # repeated, so this is their low-resolution image exactly, and, unlike averaging the block, it leaves
        # gradients with respect to the input at the stage's scale (averaging would divide their norm by the
        # block's side, and WGAN-GP's penalty, ||grad|| = 1, would then mean a Lipschitz constant of 8 at 4x4)
        factor = side // self.resolution
        x = x[..., ::factor, ::factor] if factor > 1 else x
        h = self.from_rgb[self.stage](x)
        if self.stage:
            h = self.blocks[self.stage - 1](h)
            if self.alpha < 1:  # fading in: the new block's view gives way to the previous stage's
                h = torch.lerp(self.from_rgb[self.stage - 1](F.avg_pool2d(x, 2)), h, self.alpha)
        for block in reversed(self.blocks[:self.stage - 1] if self.stage else []):
            h = block(h)
        return self.last(h if self.stddev is None else self.stddev(h))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.features(x, y)).flatten()
