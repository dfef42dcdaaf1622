"""DCGAN (Radford et al. 2016): strided (transposed) convolutions instead of pooling, BatchNorm in both
nets except G's output and D's input layer, ReLU in G with Tanh at the end, LeakyReLU(0.2) in D, and
weights drawn from N(0, 0.02).

With num_classes set they are conditional (the `cdcgan` option): G concatenates the one-hot label (or
a learned embedding of it) to z; D is conditioned either by concatenating one-hot label maps to the
image (as Mirza & Osindero 2014 do for vectors) or by projection (Miyato & Koyama 2018:
logit + <embed(y), phi(x)>).

Options from Salimans et al. 2016 ("Improved Techniques for Training GANs") and Karras et al. 2018
(ProGAN), all off by default: G's batch norm may be virtual batch norm (norm=virtual_batch, section 3.4);
D may add minibatch discrimination (section 3.2) and ProGAN's minibatch standard deviation on its last
feature map (gan_cli/models/minibatch.py).

Resolution and channels follow the data. An image side must be base * 2^n with base 4 or 7 and n >= 2:
28 (MNIST: 7 -> 14 -> 28), 32 (CIFAR-10: 4 -> 8 -> 16 -> 32), 64 (4 -> ... -> 64, the paper's model)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from gan_cli.errors import UserError
from gan_cli.models.layers import (VirtualBatchNorm2d, add_spectral_norm, norm_layer, refuse_negative,
                                   require_positive, square_image, with_one_hot)
from gan_cli.models.minibatch import MinibatchDiscrimination, MinibatchStdDev

BASES = (4, 7)


def upsampling_plan(resolution: int, model: str = "dcgan") -> tuple[int, int]:
    """(base, n): the side of the first feature map and the number of stride-2 layers after it. `model`
    names the model= option whose networks follow this plan, for the message."""
    for base in BASES:
        n, side = 0, base
        while side < resolution:
            side, n = side * 2, n + 1
        if side == resolution and n >= 2:
            return base, n
    raise UserError(
        f"model={model} cannot produce {resolution}x{resolution} images; its sides are 4 or 7 times a "
        f"power of two, e.g. 28, 32, 64 (set data.resolution, or use model=mlp)"
    )


def dcgan_init_(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm, nn.InstanceNorm2d, VirtualBatchNorm2d)) \
                and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


G_NORMS = ("batch", "virtual_batch")
REFERENCE_SEED = 0  # of the virtual batch norm's reference batch: fixed, so two builds of one config agree


class Generator(nn.Module):
    def __init__(self, z_dim: int, shape: Sequence[int], width: int = 64, num_classes: int | None = None,
                 embed_dim: int = 0, norm: str = "batch", reference: int = 64):
        """norm: batch, or virtual_batch (Salimans et al. 2016, section 3.4): each sample normalised with
        the statistics of a fixed reference batch of `reference` latents plus its own, so that it does not
        depend on the rest of its batch. That costs a forward of the reference batch with every call."""
        super().__init__()
        require_positive("model.g", z_dim=z_dim, width=width, reference=reference)
        if embed_dim < 0:
            raise UserError(f"model.g.embed_dim={embed_dim}: 0 (one-hot labels) or a positive embedding size")
        if norm not in G_NORMS:
            raise UserError(f"model.g.norm={norm}: choose one of {', '.join(G_NORMS)}")
        channels, resolution = square_image(shape, "dcgan")
        base, n = upsampling_plan(resolution)
        self.z_dim = z_dim
        self.num_classes = num_classes
        self.norm = norm
        # embed_dim 0: the one-hot label itself, not a learned embedding
        self.embed = nn.Embedding(num_classes, embed_dim) if num_classes and embed_dim else None
        label_dim = (embed_dim or num_classes) if num_classes else 0
        bn = nn.BatchNorm2d if norm == "batch" else VirtualBatchNorm2d  # same places, same keys for gamma, beta
        ch = width * 2 ** (n - 1)
        # (N, z_dim [+ label_dim], 1, 1) -> (N, ch, base, base)
        layers: list[nn.Module] = [nn.ConvTranspose2d(z_dim + label_dim, ch, base, 1, 0, bias=False),
                                   bn(ch), nn.ReLU(True)]
        for _ in range(n - 1):  # (N, ch, s, s) -> (N, ch/2, 2s, 2s)
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False), bn(ch // 2), nn.ReLU(True)]
            ch //= 2
        # (N, width, res/2, res/2) -> (N, channels, res, res)
        layers += [nn.ConvTranspose2d(ch, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        if norm == "virtual_batch":
            # drawn once, from its own seeded generator (the global stream, and so every other layer's
            # initialisation, is the same as with batch norm), and kept as a buffer: it is saved with
            # the weights, so a checkpoint samples as it trained. Its labels, arange(N_ref) % classes,
            # follow from N_ref and are not stored (EMA would average an integer buffer, and round it).
            seeded = torch.Generator().manual_seed(REFERENCE_SEED)
            self.register_buffer("reference_z", torch.randn(reference, z_dim, generator=seeded))
            # the reference pass need go no further than the last VBN layer
            self.reference_depth = max(i for i, m in enumerate(layers) if isinstance(m, VirtualBatchNorm2d)) + 1
        dcgan_init_(self)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """y: class indices (N,), or a float (N, classes) "soft label", a mix of one-hot vectors that
        mixes the classes' embeddings alike (for walks from one label to another)."""
        if self.norm == "batch":
            return self.net(self._input(z, y))
        ref_z = self.reference_z
        ref_y = None
        if self.num_classes:  # classes spread evenly over the reference batch
            ref_y = torch.arange(len(ref_z), device=ref_z.device) % self.num_classes
        try:
            self.net[:self.reference_depth](self._input(ref_z, ref_y))  # each VBN keeps its moments
            return self.net(self._input(z, y))
        finally:
            for m in self.net:
                if isinstance(m, VirtualBatchNorm2d):
                    m.forget()

    def _input(self, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """(N, z_dim) and labels -> (N, z_dim [+ label_dim], 1, 1)."""
        if self.num_classes and y is not None and y.is_floating_point():
            label = y.to(z.dtype) if self.embed is None else y.to(z.dtype) @ self.embed.weight
            z = torch.cat([z, label], dim=1)
        elif self.embed is not None:
            z = torch.cat([z, self.embed(y)], dim=1)
        else:
            z = with_one_hot(z, y, self.num_classes)
        return z[:, :, None, None]


CONDITIONINGS = ("projection", "concat")


class Discriminator(nn.Module):
    def __init__(self, shape: Sequence[int], width: int = 64, norm: str = "batch",
                 spectral_norm: bool = False, num_classes: int | None = None, conditioning: str = "concat",
                 minibatch_discrimination: int = 0, minibatch_dims: int = 5, minibatch_stddev: int = 0):
        """minibatch_discrimination: kernels B of Salimans et al. 2016's minibatch discrimination (0: off),
        each of minibatch_dims (C) dimensions, on the flattened last feature map; its B outputs go through
        a Linear(B, 1) added to the head's logit, which is a linear layer on the concatenation [h, o].
        minibatch_stddev: group size of Karras et al. 2018's minibatch standard deviation (0: off), one
        more channel into the head, as in ProGAN. Both compare a sample with the rest of its batch."""
        super().__init__()
        require_positive("model.d", width=width, minibatch_dims=minibatch_dims)
        refuse_negative("model.d", minibatch_discrimination=minibatch_discrimination,
                        minibatch_stddev=minibatch_stddev)
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
        # none of these three registers anything when off: a default D has the keys it always had
        self.stddev = MinibatchStdDev(minibatch_stddev) if minibatch_stddev else None
        self.minibatch = (MinibatchDiscrimination(ch * base * base, minibatch_discrimination, minibatch_dims)
                          if minibatch_discrimination else None)
        self.minibatch_head = nn.Linear(minibatch_discrimination, 1) if minibatch_discrimination else None
        # (N, ch [+ 1], base, base) -> (N, 1, 1, 1)
        self.head = nn.Conv2d(ch + (1 if self.stddev else 0), 1, base, 1, 0)
        self.project = nn.Embedding(num_classes, ch) if num_classes and not self.concat else None
        dcgan_init_(self)
        if self.project is not None:
            # N(0, 0.02) like every other weight here: torch's N(0, 1) default, summed over channels and
            # positions, gives logits in the hundreds at the first step
            nn.init.normal_(self.project.weight, 0.0, 0.02)
        if spectral_norm:
            add_spectral_norm(self)

    def features(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """D's last hidden layer, (N, ch * base * base): the map the head reads, flattened, before any
        minibatch layer (feature matching compares its means, Salimans et al. 2016 section 3.1)."""
        return self._feature_map(x, y).flatten(1)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self._feature_map(x, y)
        logits = self.head(h if self.stddev is None else self.stddev(h)).flatten()  # (N,)
        if self.minibatch is not None:
            logits = logits + self.minibatch_head(self.minibatch.similarity(h.flatten(1))).squeeze(1)
        if self.project is not None:  # + <embed(y), sum over space of h>
            logits = logits + (self.project(y) * h.sum(dim=(2, 3))).sum(dim=1)
        return logits

    def _feature_map(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """(N, C, res, res) [and labels] -> (N, ch, base, base)."""
        if self.concat:  # one constant map per class: (N, C, H, W) -> (N, C + classes, H, W)
            maps = F.one_hot(y, self.num_classes).to(x.dtype)[:, :, None, None].expand(-1, -1, *x.shape[2:])
            x = torch.cat([x, maps], dim=1)
        return self.net(x)
