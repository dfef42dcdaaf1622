"""StyleGAN2 (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN"), after the
authors' PyTorch code (NVlabs/stylegan2-ada-pytorch, training/networks.py), in plain PyTorch.

G: a mapping network z -> w (8 equalized-LR linear layers, learning rate x0.01), a learned constant
input, and per resolution modulated/demodulated 3x3 convolutions (section 2.2) with noise inputs; the
"skip" architecture (config E/F, section 4.1) sums toRGB outputs upsampled from every resolution, the
"resnet" one has residual blocks and one toRGB. D: a residual network (config E/F) ending in minibatch
standard deviation, a 3x3 conv and two linear layers. Equalized learning rate everywhere
(gan_cli/models/equalized.py).

Resampling is the official [1,3,3,1] FIR filter, done with depthwise F.conv2d (no custom CUDA ops).
The official code fuses it with the conv (a transposed conv then the filter in G, the filter then a
strided conv in D); filter and conv commute, so up-then-conv and conv-then-down compute the same up to
the one-pixel border.

Sides are base * 2^n with base 4 or 7 and n >= 2, as in DCGAN: 28 (7 -> 14 -> 28), 32, 64 (from 4x4).
Channels: `width` at the output resolution, doubled at each coarser one, at most `max_width`."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from gan_cli.errors import UserError
from gan_cli.models.dcgan import upsampling_plan
from gan_cli.models.equalized import HE_GAIN, EqualizedConv2d, EqualizedLinear, PixelNorm
from gan_cli.models.layers import refuse_negative, require_positive, square_image
from gan_cli.models.minibatch import MinibatchStdDev

ARCHITECTURES_G = ("skip", "resnet")
ARCHITECTURES_D = ("resnet", "skip", "orig")
NOISE_SEED = 0  # of the eval-mode noise maps: fixed, so two builds (and `gan sample`) agree
SQRT_HALF = math.sqrt(0.5)  # residual sums are scaled by 1/sqrt(2) to keep unit variance (section 4.1)


def lrelu(x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
    """The official "lrelu": leaky ReLU(0.2) times sqrt(2), which keeps the second moment of N(0, 1)
    inputs near 1, times an extra gain (sqrt(1/2) on a residual branch)."""
    return F.leaky_relu(x, 0.2) * (HE_GAIN * gain)


class ScaledLeakyReLU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return lrelu(x)


def fir_filter() -> torch.Tensor:
    """The [1,3,3,1] low-pass filter as a normalised 4x4 kernel (outer product), (4, 4)."""
    f = torch.tensor([1.0, 3.0, 3.0, 1.0])
    f = f[:, None] * f[None, :]
    return f / f.sum()


def upsample2d(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, 2H, 2W): zeros between pixels, then the filter times 4 (the official
    upfirdn2d.upsample2d). Away from the border this is exactly bilinear upsampling."""
    c = x.shape[1]
    return F.conv_transpose2d(x, (f * 4).expand(c, 1, 4, 4), stride=2, padding=1, groups=c)


def downsample2d(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, H/2, W/2): the filter, then every second pixel (upfirdn2d.downsample2d)."""
    c = x.shape[1]
    return F.conv2d(F.pad(x, (1, 1, 1, 1)), f.expand(c, 1, 4, 4), stride=2, groups=c)


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor,
                     demodulate: bool = True) -> torch.Tensor:
    """Section 2.2, eq. 1-3: w'_ijk = s_i w_ijk, then w''_ijk = w'_ijk / sqrt(sum_ik w'_ijk^2 + 1e-8), so
    an output has unit standard deviation for unit-variance inputs. x (N, I, H, W), weight (O, I, k, k),
    styles (N, I) -> (N, O, H, W).

    Computed as the paper's code does when it does not fuse (fused_modconv=False): scale the input's
    channels by s, one ordinary conv for the whole batch, scale the output's channels by the
    demodulation coefficients 1 / sqrt(sum_i s_i^2 sum_k w_ijk^2 + 1e-8). The same numbers as a grouped
    conv with per-sample weights, and a training step 2.8x quicker on a 2-core Xeon, one thread
    (bench/stylegan2_modconv.py)."""
    k = weight.shape[-1]
    out = F.conv2d(x * styles[:, :, None, None].to(x.dtype), weight.to(x.dtype), padding=k // 2)
    if demodulate:
        # (N, I) @ (I, O): sum over input channels of s_i^2 times the kernel's squared norm per (o, i)
        coefficients = torch.rsqrt(styles.square() @ weight.square().sum(dim=(2, 3)).T + 1e-8)  # (N, O)
        out = out * coefficients[:, :, None, None].to(out.dtype)
    return out


class SynthesisLayer(nn.Module):
    """Modulated, demodulated 3x3 conv + noise * learned strength + bias, lrelu (official SynthesisLayer)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int,
                 noise_generator: torch.Generator):
        super().__init__()
        self.affine = EqualizedLinear(w_dim, in_channels, gain=1.0, bias_init=1.0)  # styles start near 1
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))  # demodulation sets the scale
        self.noise_strength = nn.Parameter(torch.zeros(()))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        # eval mode's noise, one map shared by the batch (the official noise_mode='const')
        self.register_buffer("noise_const", torch.randn(resolution, resolution, generator=noise_generator))

    def forward(self, x: torch.Tensor, w: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        """x (N, I, H, W), w (N, w_dim) -> (N, O, H, W)."""
        x = modulated_conv2d(x, self.weight, self.affine(w))
        if self.training:
            noise = torch.randn(x.shape[0], 1, *x.shape[2:], device=x.device, dtype=x.dtype)
        else:
            noise = self.noise_const
        return lrelu(x + noise * self.noise_strength + self.bias[:, None, None], gain)


class ToRGB(nn.Module):
    """Modulated 1x1 conv without demodulation, + bias, linear (official ToRGBLayer)."""

    def __init__(self, in_channels: int, img_channels: int, w_dim: int):
        super().__init__()
        self.affine = EqualizedLinear(w_dim, in_channels, gain=1.0, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(img_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(img_channels))
        self.weight_gain = 1 / math.sqrt(in_channels)  # equalized LR, on the styles as the official code does

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        return modulated_conv2d(x, self.weight, styles, demodulate=False) + self.bias[:, None, None]


class SynthesisBlock(nn.Module):
    """One resolution of G: (N, in, s/2, s/2) -> (N, out, s, s), and the running image (N, C, s, s).
    The first block (in_channels=0) starts from the learned constant and has one conv, the others two."""

    def __init__(self, in_channels: int, out_channels: int, img_channels: int, w_dim: int, resolution: int,
                 architecture: str, is_last: bool, noise_generator: torch.Generator):
        super().__init__()
        self.register_buffer("fir", fir_filter(), persistent=False)
        self.first, self.resnet = in_channels == 0, architecture == "resnet"
        if self.first:
            self.const = nn.Parameter(torch.randn(out_channels, resolution, resolution))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim, resolution, noise_generator)
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution, noise_generator)
        self.torgb = ToRGB(out_channels, img_channels, w_dim) if is_last or architecture == "skip" else None
        if self.resnet and not self.first:
            self.skip = EqualizedConv2d(in_channels, out_channels, 1, bias=False, gain=SQRT_HALF)
        self.num_conv = 1 if self.first else 2
        self.num_torgb = 0 if self.torgb is None else 1

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None,
                ws: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """ws (N, num_conv + num_torgb, w_dim): the toRGB's w is the next block's first (official)."""
        if self.first:
            x = self.conv1(self.const[None].expand(ws.shape[0], -1, -1, -1), ws[:, 0])
        else:
            up = upsample2d(x, self.fir)
            h = self.conv1(self.conv0(up, ws[:, 0]), ws[:, 1], gain=SQRT_HALF if self.resnet else 1.0)
            x = self.skip(up) + h if self.resnet else h
        if img is not None:
            img = upsample2d(img, self.fir)
        if self.torgb is not None:
            rgb = self.torgb(x, ws[:, self.num_conv])
            img = rgb if img is None else img + rgb
        return x, img


class Generator(nn.Module):
    def __init__(self, z_dim: int, shape: Sequence[int], w_dim: int = 0, mapping_layers: int = 8,
                 width: int = 32, max_width: int = 256, architecture: str = "skip", style_mixing: float = 0.9,
                 w_avg_beta: float = 0.995, mapping_lr_multiplier: float = 0.01, num_classes: int | None = None):
        """w_dim 0: the same as z_dim. style_mixing: the probability that a training batch mixes two w
        (section 3.1 of Karras et al. 2019, "A Style-Based Generator Architecture"; theirs: 0.9)."""
        super().__init__()
        w_dim = w_dim or z_dim
        require_positive("model.g", z_dim=z_dim, w_dim=w_dim, mapping_layers=mapping_layers, width=width,
                         max_width=max_width)
        if architecture not in ARCHITECTURES_G:
            raise UserError(f"model.g.architecture={architecture}: choose one of {', '.join(ARCHITECTURES_G)}")
        for key, value, paper in (("style_mixing", style_mixing, 0.9), ("w_avg_beta", w_avg_beta, 0.995)):
            if not 0 <= value <= 1:
                raise UserError(f"model.g.{key}={value} must be a probability in [0, 1] (paper: {paper})")
        if mapping_lr_multiplier <= 0:
            raise UserError(f"model.g.mapping_lr_multiplier={mapping_lr_multiplier} must be positive (paper: 0.01)")
        _refuse_labels("g", num_classes)
        channels, resolution = square_image(shape, "stylegan2")
        base, n = upsampling_plan(resolution, "stylegan2")
        self.z_dim, self.w_dim, self.num_classes, self.resolution = z_dim, w_dim, None, resolution
        self.style_mixing, self.w_avg_beta = style_mixing, w_avg_beta

        # z (N, z_dim) -> normalised to unit second moment -> k x (linear, lrelu) -> w (N, w_dim)
        layers: list[nn.Module] = [PixelNorm()]
        for i in range(mapping_layers):
            layers += [EqualizedLinear(z_dim if i == 0 else w_dim, w_dim, gain=1.0,
                                       lr_multiplier=mapping_lr_multiplier), ScaledLeakyReLU()]
        self.mapping_net = nn.Sequential(*layers)
        self.register_buffer("w_avg", torch.zeros(w_dim))

        # (N, ch, base, base) constant -> ... -> (N, width, res, res), and the image (N, C, res, res)
        noise_generator = torch.Generator().manual_seed(NOISE_SEED)
        ch = [min(width * 2 ** (n - i), max_width) for i in range(n + 1)]  # channels at base * 2^i
        self.blocks = nn.ModuleList(
            SynthesisBlock(ch[i - 1] if i else 0, ch[i], channels, w_dim, base * 2 ** i, architecture,
                           i == n, noise_generator) for i in range(n + 1))
        self.num_ws = sum(b.num_conv for b in self.blocks) + 1  # + the last toRGB, as the official count

    def mapping(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """(N, z_dim) -> (N, w_dim). y is ignored: this G is unconditional."""
        return self.mapping_net(z)

    def truncate(self, w: torch.Tensor, psi: float) -> torch.Tensor:
        """The truncation trick in W (Karras et al. 2019, "A Style-Based Generator...", appendix B):
        w' = w_avg + psi (w - w_avg), for (N, w_dim) or (N, num_ws, w_dim)."""
        return self.w_avg + psi * (w - self.w_avg)

    def synthesis(self, ws: torch.Tensor) -> torch.Tensor:
        """(N, num_ws, w_dim) -> images (N, C, res, res), roughly in [-1, 1] (no tanh, as the paper)."""
        x = img = None
        i = 0
        for block in self.blocks:
            x, img = block(x, img, ws[:, i:i + block.num_conv + block.num_torgb])
            i += block.num_conv
        return img

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None, truncation: float = 1.0) -> torch.Tensor:
        w = self.mapping(z)  # (N, w_dim)
        if self.training:  # w_avg <- lerp(mean w, w_avg, beta): a moving average of W, for truncation
            self.w_avg.copy_(w.detach().mean(0).to(self.w_avg.dtype).lerp(self.w_avg, self.w_avg_beta))
        if truncation != 1:
            w = self.truncate(w, truncation)
        ws = w[:, None].expand(-1, self.num_ws, -1)  # (N, num_ws, w_dim)
        if self.training and self.style_mixing > 0:
            # the official training/loss.py: cutoff ~ U{1, ..., num_ws - 1}, or num_ws (no mixing) with
            # probability 1 - style_mixing, chosen on the device so that no step waits on a host sync;
            # so a second z is drawn and mapped on every training batch (w_avg not updated from it)
            cutoff = torch.randint(1, self.num_ws, (), device=z.device)
            cutoff = torch.where(torch.rand((), device=z.device) < self.style_mixing, cutoff, self.num_ws)
            w2 = self.mapping(torch.randn_like(z))
            if truncation != 1:
                w2 = self.truncate(w2, truncation)
            fine = torch.arange(self.num_ws, device=z.device)[None, :, None] >= cutoff  # (1, num_ws, 1)
            ws = torch.where(fine, w2[:, None], ws)
        return self.synthesis(ws)

    def mix(self, z_coarse: torch.Tensor, z_fine: torch.Tensor, crossover: int,
            truncation: float = 1.0) -> torch.Tensor:
        """Style mixing (Karras et al. 2019, figure 3): w of z_coarse for layers [0, crossover), of z_fine
        for [crossover, num_ws). Both (N, z_dim) -> images (N, C, res, res)."""
        if not 0 <= crossover <= self.num_ws:
            raise UserError(f"crossover={crossover} must be between 0 and num_ws={self.num_ws}")
        w1, w2 = (self.truncate(self.mapping(z), truncation) for z in (z_coarse, z_fine))
        ws = torch.cat([w1[:, None].expand(-1, crossover, -1),
                        w2[:, None].expand(-1, self.num_ws - crossover, -1)], dim=1)
        return self.synthesis(ws)


class DiscriminatorBlock(nn.Module):
    """(N, in, s, s) -> (N, out, s/2, s/2): conv3x3, conv3x3 then down; resnet adds a 1x1 skip of the
    downsampled input and scales both branches by sqrt(1/2). fromRGB here on the first block, or on
    every block for "skip" (which also carries the downsampled image)."""

    def __init__(self, in_channels: int, out_channels: int, img_channels: int, architecture: str, first: bool):
        super().__init__()
        self.register_buffer("fir", fir_filter(), persistent=False)
        self.architecture = architecture
        self.fromrgb = (EqualizedConv2d(img_channels, in_channels, 1, gain=1.0)
                        if first or architecture == "skip" else None)
        self.conv0 = EqualizedConv2d(in_channels, in_channels, 3, gain=1.0)
        self.conv1 = EqualizedConv2d(in_channels, out_channels, 3, gain=1.0)
        self.skip = (EqualizedConv2d(in_channels, out_channels, 1, bias=False, gain=SQRT_HALF)
                     if architecture == "resnet" else None)

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.fromrgb is not None:
            h = lrelu(self.fromrgb(img))
            x = h if x is None else x + h
            img = downsample2d(img, self.fir) if self.architecture == "skip" else None
        gain = SQRT_HALF if self.skip is not None else 1.0
        h = lrelu(downsample2d(self.conv1(lrelu(self.conv0(x))), self.fir), gain)
        return (self.skip(downsample2d(x, self.fir)) + h if self.skip is not None else h), img


class Discriminator(nn.Module):
    def __init__(self, shape: Sequence[int], width: int = 32, max_width: int = 256, architecture: str = "resnet",
                 minibatch_stddev: int = 4, num_classes: int | None = None):
        """minibatch_stddev: group size of the minibatch standard deviation (Karras et al. 2018; 0: off)."""
        super().__init__()
        require_positive("model.d", width=width, max_width=max_width)
        refuse_negative("model.d", minibatch_stddev=minibatch_stddev)
        if architecture not in ARCHITECTURES_D:
            raise UserError(f"model.d.architecture={architecture}: choose one of {', '.join(ARCHITECTURES_D)}")
        _refuse_labels("d", num_classes)
        channels, resolution = square_image(shape, "stylegan2")
        base, n = upsampling_plan(resolution, "stylegan2")
        self.num_classes, self.architecture = None, architecture
        ch = [min(width * 2 ** i, max_width) for i in range(n + 1)]  # channels at res / 2^i
        # (N, C, res, res) -> (N, ch[1], res/2, res/2) -> ... -> (N, ch[n], base, base)
        self.blocks = nn.ModuleList(DiscriminatorBlock(ch[i], ch[i + 1], channels, architecture, i == 0)
                                    for i in range(n))
        c = ch[n]
        self.fromrgb = EqualizedConv2d(channels, c, 1, gain=1.0) if architecture == "skip" else None
        # epilogue: (N, c [+1], base, base) -> conv -> (N, c * base^2) -> fc -> (N, c) -> out -> (N, 1)
        self.stddev = MinibatchStdDev(minibatch_stddev) if minibatch_stddev else None
        self.conv = EqualizedConv2d(c + (1 if self.stddev else 0), c, 3, gain=1.0)
        self.fc = EqualizedLinear(c * base * base, c, gain=1.0)
        self.out = EqualizedLinear(c, 1, gain=1.0)

    def features(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """D's last hidden layer, (N, c): the input of the final linear layer."""
        h, img = None, x
        for block in self.blocks:
            h, img = block(h, img)
        if self.fromrgb is not None:
            h = h + lrelu(self.fromrgb(img))
        if self.stddev is not None:
            h = self.stddev(h)
        return lrelu(self.fc(lrelu(self.conv(h)).flatten(1)))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """(N, C, res, res) -> logits (N,)."""
        return self.out(self.features(x)).flatten()


def _refuse_labels(net: str, num_classes: int | None) -> None:
    if num_classes is not None:
        raise UserError(f"model.{net}.num_classes={num_classes}: model=stylegan2 is unconditional here; "
                        f"drop model.conditional, or use model=cdcgan for class-conditional training")
