"""DCGAN (Radford et al. 2016): strided (transposed) convolutions instead of pooling, BatchNorm in both
nets except G's output and D's input layer, ReLU in G with Tanh at the end, LeakyReLU(0.2) in D, and
weights drawn from N(0, 0.02).

With num_classes set they are conditional (the `cdcgan` option): G concatenates the one-hot label (or
a learned embedding of it) to z; D is conditioned either by concatenating one-hot label maps to the
image (as Mirza & Osindero 2014 do for vectors) or by projection (Miyato & Koyama 2018:
logit + <embed(y), phi(x)>).

Resolution and channels follow the data. An image side must be base * 2^n with base 4 or 7 and n >= 2:
28 (MNIST: 7 -> 14 -> 28), 32 (CIFAR-10: 4 -> 8 -> 16 -> 32), 64 (4 -> ... -> 64, the paper's model)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from gan_cli.errors import UserError
from gan_cli.models.layers import add_spectral_norm, norm_layer, require_positive, square_image, with_one_hot

BASES = (4, 7)


def upsampling_plan(resolution: int) -> tuple[int, int]:
    """(base, n): the side of the first feature map and the number of stride-2 layers after it."""
    for base in BASES:
        n, side = 0, base
        while side < resolution:
            side, n = side * 2, n + 1
        if side == resolution and n >= 2:
            return base, n
    raise UserError(
        f"model=dcgan cannot produce {resolution}x{resolution} images; its sides are 4 or 7 times a "
        f"power of two, e.g. 28, 32, 64 (set data.resolution, or use model=mlp)"
    )


def dcgan_init_(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm, nn.InstanceNorm2d)) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class Generator(nn.Module):
    def __init__(self, z_dim: int, shape: Sequence[int], width: int = 64, num_classes: int | None = None,
                 embed_dim: int = 0):
        super().__init__()
        require_positive("model.g", z_dim=z_dim, width=width)
        if embed_dim < 0:
            raise UserError(f"model.g.embed_dim={embed_dim}: 0 (one-hot labels) or a positive embedding size")
        channels, resolution = square_image(shape, "dcgan")
        base, n = upsampling_plan(resolution)
        self.z_dim = z_dim
        self.num_classes = num_classes
        # embed_dim 0: the one-hot label itself, not a learned embedding
        self.embed = nn.Embedding(num_classes, embed_dim) if num_classes and embed_dim else None
        label_dim = (embed_dim or num_classes) if num_classes else 0
        ch = width * 2 ** (n - 1)
        # (N, z_dim [+ label_dim], 1, 1) -> (N, ch, base, base)
        layers: list[nn.Module] = [nn.ConvTranspose2d(z_dim + label_dim, ch, base, 1, 0, bias=False),
                                   nn.BatchNorm2d(ch), nn.ReLU(True)]
        for _ in range(n - 1):  # (N, ch, s, s) -> (N, ch/2, 2s, 2s)
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch // 2),
                       nn.ReLU(True)]
            ch //= 2
        # (N, width, res/2, res/2) -> (N, channels, res, res)
        layers += [nn.ConvTranspose2d(ch, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        dcgan_init_(self)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """y: class indices (N,), or a float (N, classes) "soft label", a mix of one-hot vectors that
        mixes the classes' embeddings alike (for walks from one label to another)."""
        if self.num_classes and y is not None and y.is_floating_point():
            label = y.to(z.dtype) if self.embed is None else y.to(z.dtype) @ self.embed.weight
            z = torch.cat([z, label], dim=1)
        elif self.embed is not None:
            z = torch.cat([z, self.embed(y)], dim=1)
        else:
            z = with_one_hot(z, y, self.num_classes)
        return self.net(z[:, :, None, None])


CONDITIONINGS = ("projection", "concat")


class Discriminator(nn.Module):
    def __init__(self, shape: Sequence[int], width: int = 64, norm: str = "batch",
                 spectral_norm: bool = False, num_classes: int | None = None, conditioning: str = "concat"):
        super().__init__()
        require_positive("model.d", width=width)
        channels, resolution = square_image(shape, "dcgan")
        base, n = upsampling_plan(resolution)
        if conditioning not in CONDITIONINGS:
            raise UserError(f"model.d.conditioning={conditioning}: choose one of {', '.join(CONDITIONINGS)}")
        self.norm = norm
        self.num_classes = num_classes
        self.concat = num_classes if num_classes and conditioning == "concat" else 0  # label maps at the input
        ch = width
        # (N, channels [+ classes], res, res) -> (N, width, res/2, res/2); no normalisation on the input layer
        layers: list[nn.Module] = [nn.Conv2d(channels + self.concat, ch, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        for _ in range(n - 1):  # (N, ch, s, s) -> (N, 2ch, s/2, s/2)
            layers += [nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=norm == "none"), norm_layer(norm, ch * 2),
                       nn.LeakyReLU(0.2, True)]
            ch *= 2
        self.net = nn.Sequential(*layers)
        self.head = nn.Conv2d(ch, 1, base, 1, 0)  # (N, ch, base, base) -> (N, 1, 1, 1)
        self.project = nn.Embedding(num_classes, ch) if num_classes and not self.concat else None
        dcgan_init_(self)
        if self.project is not None:
            # N(0, 0.02) like every other weight here: torch's N(0, 1) default, summed over channels and
            # positions, gives logits in the hundreds at the first step
            nn.init.normal_(self.project.weight, 0.0, 0.02)
        if spectral_norm:
            add_spectral_norm(self)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.concat:  # one constant map per class: (N, C, H, W) -> (N, C + classes, H, W)
            maps = F.one_hot(y, self.num_classes).to(x.dtype)[:, :, None, None].expand(-1, -1, *x.shape[2:])
            x = torch.cat([x, maps], dim=1)
        h = self.net(x)
        logits = self.head(h).flatten()  # (N,)
        if self.project is not None:  # + <embed(y), sum over space of h>
            logits = logits + (self.project(y) * h.sum(dim=(2, 3))).sum(dim=1)
        return logits
