"""CycleGAN's generator (Zhu et al. 2017, "Unpaired Image-to-Image Translation using Cycle-Consistent
Adversarial Networks", appendix 7.2; Johnson et al. 2016's network), after the authors' PyTorch code
(junyanz/pytorch-CycleGAN-and-pix2pix, models/networks.py, ResnetGenerator). Its discriminator is
pix2pix's PatchGAN, unconditional and with instance norm (gan_cli/models/pix2pix.py, PatchDiscriminator,
where a table gives its patch grid at 28, 32, 64 and 256 px).

Notation as the paper's: c7s1-k is a 7x7 convolution with stride 1 and k filters, then instance norm and
ReLU; dk a 3x3 convolution with stride 2, instance norm, ReLU; Rk a residual block of two 3x3
convolutions with k filters (conv, norm, ReLU, conv, norm, plus the input); uk a 3x3 transposed
convolution with stride 2 (output padding 1: the side doubles exactly), norm, ReLU. The generator is
c7s1-64, d128, d256, R256 x blocks, u128, u64, c7s1-C with tanh instead of norm and ReLU: the paper's 6
blocks at 128 px and below, 9 at 256. The 7x7 convolutions and those in the residual blocks pad by
reflection, as the authors' code. Instance norm as theirs: no affine weights, no running statistics.
The side must be a multiple of 4 (two halvings) and at least 8 (a residual block's reflection pad of 1
needs a map of side 2): 28 -> 7 x 7 in the residual blocks, 32 -> 8 x 8, 256 -> 64 x 64.

Channels: width, 2 width, 4 width (no cap). Initialisation: the authors' init_weights(net, "normal",
0.02) (dcgan.dcgan_init_). dropout: the authors' --no_dropout is the default for CycleGAN (0 here); when
set, nn.Dropout between a residual block's two convolutions, off in eval() mode (unlike pix2pix's U-Net,
whose dropout is noise)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from gan_cli.errors import UserError
from gan_cli.models.dcgan import dcgan_init_
from gan_cli.models.layers import require_positive
from gan_cli.models.pix2pix import (PatchDiscriminator, check_dropout, check_image, check_norm, image_dims, norm2d,
                                    size_text)

__all__ = ["ResnetGenerator", "ResnetBlock", "PatchDiscriminator"]

HALVINGS = 2  # d128, d256
SMALLEST = 8  # the residual blocks' reflection pad of 1 needs a 2 x 2 map: 8 / 2^2


class ResnetBlock(nn.Module):
    """Rk: x + (pad, conv3x3, norm, ReLU, [dropout], pad, conv3x3, norm)(x); (N, k, s, s) -> same."""

    def __init__(self, channels: int, norm: str, dropout: float, bias: bool):
        super().__init__()
        layers: list[nn.Module] = [nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, 1, 0, bias=bias),
                                   norm2d(norm, channels), nn.ReLU()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, 1, 0, bias=bias), norm2d(norm, channels)]
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class ResnetGenerator(nn.Module):
    def __init__(self, shape: Sequence[int], in_shape: Sequence[int], width: int = 64, blocks: int = 9,
                 norm: str = "instance", dropout: float = 0.0):
        """shape: (C, H, W) of the output domain; in_shape: (C_in, H, W) of the input domain. width: the
        first layer's filters (paper: 64); blocks: residual blocks (paper: 6 at 128 px, 9 at 256);
        norm: instance (paper), batch or none; dropout: inside each residual block (the authors'
        default for CycleGAN: none)."""
        super().__init__()
        require_positive("model.g", width=width, blocks=blocks)
        check_norm("model.g", norm)
        dropout = check_dropout(dropout)
        channels, side, side_w = image_dims(shape)
        in_channels = image_dims(in_shape)[0]
        if tuple(image_dims(in_shape)[1:]) != (side, side_w):
            raise UserError(f"model.g: a ResNet generator's input and output images have one size; the input is "
                            f"{size_text(in_shape)} and the target {size_text(shape)}: resize them alike "
                            f"(data.resolution)")
        m = 2 ** HALVINGS
        if side != side_w or side % m or side < SMALLEST:
            fix = max(SMALLEST, -(-side // m) * m)
            raise UserError(f"model.g: a ResNet generator (two stride-2 halvings) takes square images whose side is "
                            f"a multiple of {m} and at least {SMALLEST}; this data is {size_text(shape)}: set "
                            f"data.resolution={fix}")
        self.shape, self.in_shape = tuple(image_dims(shape)), tuple(image_dims(in_shape))
        self.num_classes = None  # translates images; no class labels (sample and eval read this)
        bias = norm != "batch"  # batch norm's shift makes a bias redundant
        # c7s1-64: (N, C_in, s, s) -> (N, width, s, s)
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, width, 7, 1, 0, bias=bias),
                                   norm2d(norm, width), nn.ReLU()]
        ch = width
        for _ in range(HALVINGS):  # d128, d256: (N, ch, s, s) -> (N, 2 ch, s/2, s/2)
            layers += [nn.Conv2d(ch, 2 * ch, 3, 2, 1, bias=bias), norm2d(norm, 2 * ch), nn.ReLU()]
            ch *= 2
        layers += [ResnetBlock(ch, norm, dropout, bias) for _ in range(blocks)]  # R256 x blocks
        for _ in range(HALVINGS):  # u128, u64: (N, ch, s, s) -> (N, ch/2, 2s, 2s)
            layers += [nn.ConvTranspose2d(ch, ch // 2, 3, 2, 1, output_padding=1, bias=bias), norm2d(norm, ch // 2),
                       nn.ReLU()]
            ch //= 2
        # c7s1-C with tanh: (N, width, s, s) -> (N, C, s, s)
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ch, channels, 7, 1, 0), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        dcgan_init_(self)

    def check_input(self, shape: Sequence[int]) -> None:
        """Refuse, in one line, an input image (C, H, W) or batch (N, C, H, W) the net cannot take (gan
        sample input=...): other channels than in_shape's, a side not a multiple of 4, or under 8. Other
        sizes than the training data's pass: the net is convolutional."""
        check_image(shape, self.in_shape, 2 ** HALVINGS, "a ResNet generator", smallest=SMALLEST)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """x: (N, C_in, H, W) in [-1, 1] -> (N, C, H, W) in [-1, 1]. y is unused (the engine calls G(x, y))."""
        return self.net(x)
