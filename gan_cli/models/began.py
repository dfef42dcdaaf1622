"""BEGAN's networks (Berthelot et al. 2017, "BEGAN: Boundary Equilibrium Generative Adversarial Networks",
section 3.5 and figure 1). The discriminator is an auto-encoder: it returns its reconstruction of the
image, and the algorithm (gan_cli/algorithms/began.py) scores an image by how badly D reconstructs it.

Both nets are built from one block, two 3x3 convolutions each followed by an ELU:
- decoder (G, and D's second half): a fully connected layer maps the input vector (z for G, D's
  embedding h) to an n x base x base map; then blocks with nearest-neighbour x2 upsampling between them,
  n filters throughout; a last 3x3 convolution gives the image's channels;
- encoder (D's first half): a 3x3 convolution to n filters, then blocks with a stride-2 3x3 convolution
  between them that adds n filters at each halving (n, 2n, 3n, ...: the paper's linear growth); a fully
  connected layer maps the last map to the embedding h (no nonlinearity: the paper's "h").

The paper's first map is 8x8 (64x64 images: three doublings). Here the first map is the data's side
halved while it stays even and at least 7: 28 -> 7 (MNIST: 7 -> 14 -> 28), 32 -> 8, 64 -> 8, as in the
paper. No batch normalisation: the paper uses none, and L(v) is a per-sample score.

G's last convolution ends in `output`: tanh by default, the runner's image range [-1, 1]. The paper's
decoder ends linear, with the images clipped for display: `linear` does that (linear while training,
clamped in eval mode, which pictures, gan sample and gan eval use). `clamp_st` clamps with the gradient
of the identity (straight through). Why tanh (measured on MNIST, README "BEGAN"): with clamp_st, once
k grew and D began to reconstruct G's all-background images badly, G's values past the clamp, which D
never sees, ran away (G's gradient norm 0.9 to 3e5 in 300 steps); tanh bounds them, and gave more
varied samples than `linear` at 1,000 steps. D's decoder ends linear, as in the paper."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from gan_cli.errors import UserError
from gan_cli.models.layers import require_positive, square_image

MIN_BASE = 7  # the smallest first map: MNIST's 28 halves to 7 and stops (an odd side cannot halve)
MAX_BASE = 16  # a larger first map would put most of the weights in the fully connected layer


def halving_plan(resolution: int) -> tuple[int, int]:
    """(base, n): the side of the first (decoder) / last (encoder) map, and the number of x2 steps to the
    image's side. 28 -> (7, 2), 32 -> (8, 2), 64 -> (8, 3) as in the paper, 16 -> (8, 1)."""
    base, n = resolution, 0
    while base % 2 == 0 and base // 2 >= MIN_BASE:
        base, n = base // 2, n + 1
    if not MIN_BASE <= base <= MAX_BASE:
        raise UserError(f"model=began cannot make {resolution}x{resolution} images: their side must halve down to "
                        f"between {MIN_BASE} and {MAX_BASE}, e.g. 28, 32, 64, 128 (set data.resolution)")
    return base, n


class ClampStraightThrough(nn.Module):  # model.g.output=clamp_st
    """Values clamped to [-1, 1], with the gradient of the identity."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + (x.clamp(-1.0, 1.0) - x).detach()


class ClipWhenEval(nn.Module):  # model.g.output=linear
    """Linear while training, clamped to [-1, 1] in eval mode (pictures, gan sample, gan eval)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.training else x.clamp(-1.0, 1.0)


G_OUTPUTS = {"clamp_st": ClampStraightThrough, "tanh": nn.Tanh, "linear": ClipWhenEval}


def _block(in_ch: int, out_ch: int) -> list[nn.Module]:
    """Two 3x3 convolutions, each followed by an ELU (figure 1): same side in and out."""
    return [nn.Conv2d(in_ch, out_ch, 3, 1, 1), nn.ELU(), nn.Conv2d(out_ch, out_ch, 3, 1, 1), nn.ELU()]


def glorot_init_(module: nn.Module) -> None:
    """Glorot & Bengio 2010 (normal) weights and zero biases, as TensorFlow's layers default to (the
    paper's and its reimplementations' framework). torch's default draws a third of that variance: then
    the 18 layers of D's auto-encoder, with no normalisation, shrink the signal, and on MNIST D sat at the
    per-pixel median, an all-background reconstruction (L1 0.27), for 500 steps at lr 1e-3; with this
    init its L1 reached 0.12 by then (measured)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_normal_(m.weight)
            nn.init.zeros_(m.bias)


class Decoder(nn.Module):
    """(N, in_dim) -> (N, channels, base * 2^n, base * 2^n), through `out`: G, and the second half of D."""

    def __init__(self, in_dim: int, channels: int, width: int, base: int, n: int, out: nn.Module):
        super().__init__()
        self.width, self.base = width, base
        self.fc = nn.Linear(in_dim, width * base * base)  # (N, in_dim) -> (N, n * base * base)
        layers: list[nn.Module] = []
        for _ in range(n):  # (N, n, s, s) -> (N, n, 2s, 2s)
            layers += _block(width, width) + [nn.Upsample(scale_factor=2, mode="nearest")]
        layers += _block(width, width)  # (N, n, res, res)
        layers += [nn.Conv2d(width, channels, 3, 1, 1), out]  # (N, channels, res, res)
        self.net = nn.Sequential(*layers)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(self.fc(h).view(len(h), self.width, self.base, self.base))


class Generator(nn.Module):
    def __init__(self, z_dim: int, shape: Sequence[int], width: int = 16, output: str = "tanh",
                 out_bias: float = 0.0):
        """z_dim: N_z (the paper sets it equal to D's embedding h, 64); width: n, the filters of every
        layer (the paper's n = 64; 16 here trains MNIST on a CPU in minutes); output: the last layer,
        tanh, linear or clamp_st (module docstring); out_bias: the last convolution's initial bias, where
        every pixel starts before `output` (the paper leaves initialisation open)."""
        super().__init__()
        require_positive("model.g", z_dim=z_dim, width=width)
        channels, resolution = square_image(shape, "began")
        self.z_dim = z_dim
        self.num_classes = None  # unconditional: sample and eval read this
        if output not in G_OUTPUTS:
            raise UserError(f"model.g.output={output!r}: use one of {', '.join(G_OUTPUTS)}")
        self.decoder = Decoder(z_dim, channels, width, *halving_plan(resolution), out=G_OUTPUTS[output]())
        glorot_init_(self)
        nn.init.constant_(self.decoder.net[-2].bias, out_bias)  # net[-2]: the last convolution

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        # z ~ N(0, I), the runner's noise for every generator (the paper draws z uniform in [-1, 1])
        return self.decoder(z)


class Discriminator(nn.Module):
    autoencoder = True  # returns a reconstruction, not a score: algorithm=began's, refused by algorithm=gan

    autoencoder = True  # returns a reconstruction, not a score: algorithm=began's, refused by algorithm=gan

    def __init__(self, shape: Sequence[int], width: int = 16, embedding: int = 64):
        """width: n, the encoder's first filters (n, 2n, 3n, ... after each halving) and every decoder
        layer's (paper: 64; 16 here); embedding: h, the size of the code between them (paper: 64)."""
        super().__init__()
        require_positive("model.d", width=width, embedding=embedding)
        channels, resolution = square_image(shape, "began")
        base, n = halving_plan(resolution)
        self.num_classes = None
        ch = width
        layers: list[nn.Module] = [nn.Conv2d(channels, ch, 3, 1, 1), nn.ELU()]  # (N, C, res, res) -> (N, n, res, res)
        for level in range(1, n + 1):  # (N, level*n, s, s) -> (N, (level+1)*n, s/2, s/2)
            layers += _block(ch, ch) + [nn.Conv2d(ch, width * (level + 1), 3, 2, 1), nn.ELU()]
            ch = width * (level + 1)
        layers += _block(ch, ch)  # (N, (n_halvings+1)*n, base, base)
        self.encoder = nn.Sequential(*layers, nn.Flatten(), nn.Linear(ch * base * base, embedding))  # -> (N, h)
        self.decoder = Decoder(embedding, channels, width, base, n, out=nn.Identity())  # (N, h) -> (N, C, res, res)
        glorot_init_(self)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The reconstruction of x, (N, C, H, W) in [-1, 1]: not logits. BEGAN's D scores an image by its
        reconstruction error, which the algorithm computes."""
        return self.decoder(self.encoder(x))
