"""LAPGAN, Denton et al. 2015 ("Deep Generative Image Models using a Laplacian Pyramid of Adversarial
Networks"): a GAN per level of a Laplacian pyramid.

The pyramid (section 3.1): I_0 is the image, I_{k+1} = d(I_k) its blurred and halved version, down to the
coarsest level I_K of 7x7 or 8x8 (28 -> 14 -> 7, 32 -> 16 -> 8, 64 -> 32 -> 16 -> 8). Level k < K holds the
high-pass image h_k = I_k - u(I_{k+1}), the detail that the upsampled coarser level l_k = u(I_{k+1}) lacks.
d is a 2x2 box filter and decimation (average pooling) and u bilinear upsampling; the paper leaves its
filters open beyond "blurs and decimates" and "smooths and expands".

- Level K: a plain GAN on I_K, the MLP pair of the original GAN (the paper's CIFAR-10 model: fully
  connected G_3 and D_3 at 8x8).
- Level k < K: a conditional GAN. G_k(z_k, l_k) makes a high-pass image from l_k with the noise z_k as one
  more input plane (section 4.1: "a 4th color plane"); D_k(h, l_k) judges a high-pass image together with
  the low-pass image it goes with.

Sampling runs the cascade (eq. 2): I~_K = G_K(z_K), then I~_k = u(I~_{k+1}) + G_k(z_k, u(I~_{k+1})).

For the rest of the runner the cascade is one generator, `Generator(z)` with z the coarsest level's z_K:
each finer level's noise plane is drawn from a random generator seeded by the sample's own z_K, so one z
always gives one image, whatever its batch, and `gan sample`, `gan eval` and `gan latent-arithmetic` (whose
arithmetic then acts on z_K, the latent that sets an image's layout) work on it unchanged. Training draws
the planes from the run's noise stream instead (gan_cli/algorithms/lapgan.py). The discriminators are one
module too, `Discriminator.levels`."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_cli.errors import UserError
from gan_cli.models import mlp
from gan_cli.models.layers import require_positive, square_image

COARSEST = (7, 8)


def pyramid_sides(resolution: int) -> list[int]:
    """The sides of the pyramid's levels, finest first: halved until 7 or 8 (28 -> [28, 14, 7])."""
    sides = [resolution]
    while sides[-1] not in COARSEST and sides[-1] % 2 == 0 and sides[-1] > 8:
        sides.append(sides[-1] // 2)
    if sides[-1] not in COARSEST or len(sides) < 2:
        raise UserError(f"model=lapgan cannot build a pyramid for {resolution}x{resolution} images: a side must halve "
                        f"down to 7 or 8 pixels, e.g. 14, 16, 28, 32, 64 (set data.resolution)")
    return sides


def down(x: Tensor) -> Tensor:
    """d: blur (2x2 box) and decimate. (N, C, H, W) -> (N, C, H/2, W/2)."""
    return F.avg_pool2d(x, 2)


def up(x: Tensor) -> Tensor:
    """u: smooth and expand (bilinear). (N, C, H, W) -> (N, C, 2H, 2W)."""
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


def pyramid(images: Tensor, levels: int) -> tuple[list[Tensor], list[Tensor]]:
    """The Laplacian pyramid of images: (low-pass l_k for k < K, high-pass h_k for k < K, finest first),
    with the coarsest image I_K last in the second list: h_0, ..., h_{K-1}, I_K. Sums back exactly:
    I_k = l_k + h_k."""
    lows, highs, image = [], [], images
    for _ in range(levels - 1):
        coarse = down(image)
        low = up(coarse)
        lows.append(low)
        highs.append(image - low)
        image = coarse
    return lows, highs + [image]


class LevelGenerator(nn.Module):
    """G_k: (noise plane (N, 1, s, s), l_k (N, C, s, s)) -> a high-pass image (N, C, s, s), linear (a
    high-pass image is signed and small). Three 5x5 convolutions, ReLU between (section 4.1)."""

    def __init__(self, channels: int, width: int):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(channels + 1, width, 5, padding=2), nn.ReLU(True),
                                 nn.Conv2d(width, width, 5, padding=2), nn.ReLU(True),
                                 nn.Conv2d(width, channels, 5, padding=2))

    def forward(self, noise: Tensor, low: Tensor) -> Tensor:
        return self.net(torch.cat([low, noise], dim=1))


class LevelDiscriminator(nn.Module):
    """D_k: (h (N, C, s, s), l_k (N, C, s, s)) -> logits (N,): two 5x5 stride-2 convolutions with leaky
    ReLU and dropout, then a linear layer on the flattened map (the paper's D_1, D_2: two convs and a
    fully connected layer)."""

    def __init__(self, channels: int, side: int, width: int, dropout: float):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(2 * channels, width, 5, 2, 2), nn.LeakyReLU(0.2, True),
                                  nn.Dropout(dropout),
                                  nn.Conv2d(width, width, 5, 2, 2), nn.LeakyReLU(0.2, True), nn.Dropout(dropout),
                                  nn.Flatten())
        self.head = nn.Linear(width * math.ceil(side / 4) ** 2, 1)

    def features(self, high: Tensor, low: Tensor | None = None) -> Tensor:
        return self.body(torch.cat([high, low], dim=1))

    def forward(self, high: Tensor, low: Tensor | None = None) -> Tensor:
        return self.head(self.features(high, low)).squeeze(1)


class Generator(nn.Module):
    trained_by = "lapgan"  # level by level (gan_cli/algorithms/lapgan.py); build refuses another algorithm

    def __init__(self, z_dim: int, shape: Sequence[int], width: int = 32, coarse_hidden: int = 600):
        """z_dim: the coarsest level's z; width: channels of each finer level's G; coarse_hidden: units of the
        coarsest G's two ReLU layers."""
        super().__init__()
        require_positive("model.g", z_dim=z_dim, width=width, coarse_hidden=coarse_hidden)
        channels, resolution = square_image(shape, "lapgan")
        self.sides = pyramid_sides(resolution)  # finest first
        coarsest = self.sides[-1]
        self.z_dim, self.num_classes = z_dim, None
        # levels[k] for k < K make high-pass images; levels[K] the coarsest image
        self.levels = nn.ModuleList([LevelGenerator(channels, width) for _ in self.sides[:-1]]
                                    + [mlp.Generator(z_dim, (channels, coarsest, coarsest), coarse_hidden)])

    def noise_planes(self, z: Tensor) -> list[Tensor]:
        """Each finer level's noise plane (N, 1, s, s), finest first, for z_K (N, z_dim): sample i's planes come
        from a generator seeded by a hash of z_i's bytes, so they are a fixed function of z_i alone and, for
        different z, independent N(0, 1) draws."""
        planes: list[list[Tensor]] = [[] for _ in self.sides[:-1]]
        for row in z.detach().float().cpu():
            digest = hashlib.blake2b(row.numpy().tobytes(), digest_size=8).digest()
            generator = torch.Generator().manual_seed(int.from_bytes(digest, "little") >> 1)
            for k, side in enumerate(self.sides[:-1]):
                planes[k].append(torch.randn(1, side, side, generator=generator))
        return [torch.stack(p).to(z.device, z.dtype) for p in planes]

    def cascade(self, z: Tensor) -> list[tuple[Tensor, Tensor, Tensor]]:
        """Each level's (low-pass, generated high-pass, sum), coarsest first; the coarsest's low-pass and
        high-pass are zeros and its sum the generated I_K. The last sum is the sample."""
        noise = self.noise_planes(z) + [z]
        image = self.levels[-1](z)
        steps = [(torch.zeros_like(image), torch.zeros_like(image), image)]
        for k in reversed(range(len(self.sides) - 1)):
            low = up(image)
            high = self.levels[k](noise[k], low)
            image = low + high
            steps.append((low, high, image))
        return steps

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        return self.cascade(z)[-1][2]


class Discriminator(nn.Module):
    trained_by = "lapgan"

    def __init__(self, shape: Sequence[int], width: int = 32, coarse_hidden: int = 240, dropout: float = 0.5):
        """width: channels of each finer level's D; coarse_hidden: maxout units of the coarsest D;
        dropout: in every level's D."""
        super().__init__()
        require_positive("model.d", width=width, coarse_hidden=coarse_hidden)
        if not 0 <= dropout < 1:
            raise UserError(f"model.d.dropout={dropout} must be a probability in [0, 1)")
        channels, resolution = square_image(shape, "lapgan")
        self.sides = pyramid_sides(resolution)
        coarsest = self.sides[-1]
        self.num_classes = None
        self.levels = nn.ModuleList([LevelDiscriminator(channels, s, width, dropout) for s in self.sides[:-1]]
                                    + [mlp.Discriminator((channels, coarsest, coarsest), coarse_hidden,
                                                         dropout=dropout)])

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """The finest level's judgement of a whole image: its high-pass image given its low-pass one (what
        `gan diagnose`'s probes and anything else outside the algorithm see)."""
        lows, highs = pyramid(x, len(self.sides))
        return self.levels[0](highs[0], lows[0])
