"""pix2pix's networks (Isola et al. 2017, "Image-to-Image Translation with Conditional Adversarial Networks",
section 3.2 and appendix 6.1.1), after the authors' PyTorch code (junyanz/pytorch-CycleGAN-and-pix2pix,
models/networks.py): the U-Net generator and the PatchGAN discriminator, which CycleGAN reuses.

Notation as the paper's: Ck is a 4x4 convolution with k filters, then norm, then an activation; CDk the
same with dropout 0.5. Every convolution has stride 2 unless said otherwise.

U-Net (UNetGenerator): encoder C64-C128-C256-C512-C512-C512-C512-C512 (LeakyReLU 0.2), decoder
CD512-CD512-CD512-C512-C256-C128-C64 (transposed convolutions, ReLU), then a transposed convolution to
the target's channels and tanh. Decoder layer i sees the concatenation of its predecessor's output with
the encoder's output at the same resolution (the skip connections), so its input has twice the channels.
Channels double per layer from `width` and stop at 8 * width. `depth` is the number of halvings: the
paper's 8 takes 256 x 256 down to 1 x 1; by default the net halves as often as the side allows (up to 8):
28 -> 2 (28 -> 14 -> 7), 32 -> 5, 64 -> 6, 256 -> 8. The paper's dropout is its noise source: "we apply
dropout at both training and test time", so it stays on in eval() mode (gan sample, gan eval), on the
min(3, depth - 1) innermost decoder layers. Batch norm keeps its running statistics in eval() mode.
As in the authors' code, neither the first nor the innermost encoder layer is normalised (batch norm of a
1 x 1 map of one image would zero it), and a convolution has a bias unless batch norm follows it. The
authors' code drops out on the 2nd to 4th innermost decoder layers, only at depth >= 6; this follows the
paper's text (the first three).

PatchGAN (PatchDiscriminator): C64-C128-C256-C512, the C512 with stride 1, then a stride-1 convolution to
one channel; 4x4 kernels, padding 1, LeakyReLU 0.2, no norm on C64. It returns one logit per patch,
(N, P, P), no sigmoid. `receptive_field` picks the depth (the authors' n_layers): 16 -> 1 (C64-C128-1),
34 -> 2, 70 -> 3 (the paper's default), 142 -> 4, 286 -> 5 (the paper's "ImageGAN" at 256 px: every
field covers the whole image, though the grid is still 6x6); 1 is the PixelGAN, 1x1 convolutions
C64-C128-1. Channels stop at 8 * width.
A conditional D (pix2pix: condition_shape set) sees cat([image, condition], dim=1); the authors' code
puts the condition first, which only matters for loading their weights.

The patch grid P x P, computed by the code (PatchDiscriminator.patches); "-" is a side the field cannot
take (the smallest it takes in the last column):

    receptive_field | 28 px | 32 px | 64 px | 256 px  | smallest side
    ----------------+-------+-------+-------+---------+--------------
                  1 | 28x28 | 32x32 | 64x64 | 256x256 |   1
                 16 | 12x12 | 14x14 | 30x30 | 126x126 |   6
                 34 |  5x5  |  6x6  | 14x14 |  62x62  |  12
                 70 |  1x1  |  2x2  |  6x6  |  30x30  |  24
                142 |   -   |   -   |  2x2  |  14x14  |  48
                286 |   -   |   -   |   -   |   6x6   |  96

so at 28 px, receptive_field=16 gives a 12x12 grid of 16x16 patches, and the paper's 70 gives a single
70x70 "patch" that covers the whole image and its padding. A field is the span of input pixels one logit
depends on; fields near the edges reach into the zero padding.

Initialisation: the authors' init_weights(net, "normal", 0.02): conv weights N(0, 0.02), norm weights
N(1, 0.02), biases 0 (dcgan.dcgan_init_). Norms: batch (pix2pix), instance (CycleGAN; affine=False and
no running statistics, torch's default and the authors'), none."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from gan_cli.errors import UserError
from gan_cli.models.dcgan import dcgan_init_
from gan_cli.models.layers import add_spectral_norm, require_positive

NORMS = ("batch", "instance", "none")
MAX_DEPTH = 8  # the paper's U-Net: 256 -> 1 in eight halvings
# receptive_field -> the authors' n_layers (0: their PixelDiscriminator, 1x1 convolutions)
FIELDS = {1: 0, 16: 1, 34: 2, 70: 3, 142: 4, 286: 5}


def check_norm(prefix: str, norm: str) -> None:
    if norm not in NORMS:
        raise UserError(f"{prefix}.norm={norm!r}: choose one of {', '.join(NORMS)}")


def norm2d(kind: str, channels: int) -> nn.Module:
    """The translation nets' norms. Instance norm as the authors': no affine weights, no running
    statistics (layers.norm_layer's has affine weights)."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels)
    return nn.Identity()


def image_dims(shape: Sequence[int]) -> tuple[int, int, int]:
    """(C, H, W) of an image shape, or of a batch's (N, C, H, W)."""
    shape = tuple(int(s) for s in shape)
    if len(shape) not in (3, 4):
        raise UserError(f"the image-to-image models take images (C, H, W), got data of shape {list(shape)}: "
                        f"use image data (e.g. data=folder)")
    return shape[-3:]  # type: ignore[return-value]


def size_text(shape: Sequence[int]) -> str:
    return "x".join(str(s) for s in image_dims(shape))


def next_multiple(side: int, m: int) -> int:
    return -(-side // m) * m


def auto_depth(side: int) -> int:
    """The most halvings (up to 8) that keep the side whole: 256 -> 8, 64 -> 6, 32 -> 5, 28 -> 2; 0 for
    an odd side."""
    depth = 0
    while depth < MAX_DEPTH and side % 2 ** (depth + 1) == 0:
        depth += 1
    return depth


def check_dropout(p: float) -> float:
    if not 0.0 <= p < 1.0:
        raise UserError(f"model.g.dropout={p} must be a probability in [0, 1) (pix2pix: 0.5, CycleGAN: 0)")
    return float(p)


def check_image(shape: Sequence[int], in_shape: tuple[int, int, int], multiple: int, net: str,
                smallest: int = 1) -> None:
    """A generator's check of an image to translate: in_shape's channels, square, the side a multiple of
    `multiple` and at least `smallest`."""
    c, h, w = image_dims(shape)
    what = f"this model ({net}, trained on {size_text(in_shape)} images)"
    if c != in_shape[0]:
        fix = {1: "convert it to grayscale", 3: "convert it to RGB"}.get(in_shape[0], f"give it {in_shape[0]} channels")
        raise UserError(f"{what} takes {in_shape[0]}-channel images; this one is {size_text(shape)}: {fix}")
    if h != w or h % multiple or h < smallest:
        at_least = f" and at least {smallest}" if smallest > multiple else ""
        raise UserError(f"{what} takes square images whose side is a multiple of {multiple}{at_least}; this one "
                        f"is {size_text(shape)}: resize it to {in_shape[1]}x{in_shape[2]}")


def conv_plan(receptive_field: int) -> list[tuple[int, int, int]]:
    """(kernel, stride, padding) of each convolution of the PatchGAN with this receptive field."""
    n_layers = FIELDS[receptive_field]
    if n_layers == 0:
        return [(1, 1, 0)] * 3
    return [(4, 2, 1)] * n_layers + [(4, 1, 1)] * 2


def grid_side(side: int, plan: Sequence[tuple[int, int, int]]) -> int:
    """The side of the output of these convolutions for an input of this side."""
    for kernel, stride, padding in plan:
        if side < 1:
            break
        side = (side + 2 * padding - kernel) // stride + 1
    return side


def smallest_side(receptive_field: int) -> int:
    """The smallest input side that leaves the PatchGAN with this field at least one logit."""
    return next(s for s in range(1, 1 << 16) if grid_side(s, conv_plan(receptive_field)) >= 1)


def receptive_field_of(net: nn.Module) -> int:
    """The side of the input square one output depends on, from a net's convolutions: r <- (r - 1) *
    stride + kernel, from the output back to the input."""
    r = 1
    for conv in reversed([m for m in net.modules() if isinstance(m, nn.Conv2d)]):
        r = (r - 1) * conv.stride[0] + conv.kernel_size[0]
    return r


class UNetGenerator(nn.Module):
    def __init__(self, shape: Sequence[int], in_shape: Sequence[int], width: int = 64, depth: int | None = None,
                 dropout: float = 0.5, norm: str = "batch"):
        """shape: (C, H, W) of the output, the target domain; in_shape: (C_in, H, W) of the input image.
        width: the first encoder layer's filters (paper: 64); depth: halvings (None: the most the side
        allows, up to the paper's 8); dropout: its probability on the innermost decoder layers, in
        training and in eval() mode alike (paper: 0.5); norm: batch (paper), instance or none."""
        super().__init__()
        require_positive("model.g", width=width)
        check_norm("model.g", norm)
        self.dropout = check_dropout(dropout)
        channels, side, side_w = image_dims(shape)
        in_channels = image_dims(in_shape)[0]
        if side != side_w:
            raise UserError(f"model.g: a U-Net takes square images; this data is {size_text(shape)}: "
                            f"set data.resolution to make it square")
        if tuple(image_dims(in_shape)[1:]) != (side, side_w):
            raise UserError(f"model.g: a U-Net's input and output images have one size; the input is "
                            f"{size_text(in_shape)} and the target {size_text(shape)}: resize them alike "
                            f"(data.resolution)")
        if depth is None:
            depth = auto_depth(side)
            if depth == 0:
                raise UserError(f"model.g: a U-Net halves the image at least once, so its side must be even; "
                                f"this data is {size_text(shape)}: set data.resolution={side + 1}")
        require_positive("model.g", depth=depth)
        self.shape, self.in_shape = tuple(image_dims(shape)), tuple(image_dims(in_shape))
        self.num_classes = None  # translates images; no class labels (sample and eval read this)
        self.depth = depth
        m = 2 ** depth
        if side % m:
            auto = auto_depth(side)
            fix = (f"model.g.depth={auto} or " if auto else "") + f"data.resolution={next_multiple(side, m)}"
            raise UserError(f"model.g: a U-Net of depth {depth} takes square images whose side is a multiple of "
                            f"{m}; this data is {size_text(shape)}: set {fix}")
        bias = norm != "batch"  # batch norm's shift makes a bias redundant
        ch = [min(width * 2 ** i, 8 * width) for i in range(depth)]  # the encoder's channels, outermost first
        downs = []
        for i in range(depth):  # (N, ch[i-1], s, s) -> (N, ch[i], s/2, s/2)
            first, innermost = i == 0, i == depth - 1
            normed = not first and not innermost
            layers: list[nn.Module] = [] if first else [nn.LeakyReLU(0.2)]
            layers.append(nn.Conv2d(in_channels if first else ch[i - 1], ch[i], 4, 2, 1, bias=bias or not normed))
            if normed:
                layers.append(norm2d(norm, ch[i]))
            downs.append(nn.Sequential(*layers))
        ups = []
        for j in range(depth):  # innermost first: (N, c_in, s, s) -> (N, c_out, 2s, 2s)
            level = depth - 2 - j  # the encoder layer whose output this one's output is concatenated with
            c_in = ch[-1] if j == 0 else 2 * ch[level + 1]
            if level >= 0:
                ups.append(nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(c_in, ch[level], 4, 2, 1, bias=bias),
                                         norm2d(norm, ch[level])))
            else:  # the outermost: to the target's channels
                ups.append(nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(c_in, channels, 4, 2, 1), nn.Tanh()))
        self.downs, self.ups = nn.ModuleList(downs), nn.ModuleList(ups)
        self.dropout_layers = min(3, depth - 1)  # the innermost decoder layers (ups[0], ups[1], ups[2])
        dcgan_init_(self)

    def check_input(self, shape: Sequence[int]) -> None:
        """Refuse, in one line, an input image (C, H, W) or batch (N, C, H, W) the net cannot take (gan
        sample input=...): other channels than in_shape's, or a side that is not a multiple of 2^depth.
        Other sizes than the training data's pass: the net is convolutional, and the paper runs it on
        larger images than it trained on."""
        check_image(shape, self.in_shape, 2 ** self.depth, f"a U-Net of depth {self.depth}")

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """x: (N, C_in, H, W) in [-1, 1] -> (N, C, H, W) in [-1, 1]. y is unused (the engine calls G(x, y))."""
        skips = []
        h = x
        for down in self.downs:
            h = down(h)
            skips.append(h)
        skips.pop()  # the innermost output goes on through the decoder only
        for j, up in enumerate(self.ups):
            h = up(h)
            if j < self.dropout_layers and self.dropout:
                h = F.dropout(h, self.dropout, training=True)  # the paper's noise: on at test time too
            if skips:
                h = torch.cat([skips.pop(), h], dim=1)  # (N, 2 c, s, s): the skip connection
        return h


class PatchDiscriminator(nn.Module):
    def __init__(self, shape: Sequence[int], condition_shape: Sequence[int] | None = None, width: int = 64,
                 receptive_field: int = 70, norm: str = "batch", spectral_norm: bool = False):
        """shape: (C, H, W) of the images it judges; condition_shape: (C', H, W) of pix2pix's input image,
        concatenated on channels (None: CycleGAN's unconditional D). width: the first layer's filters
        (paper: 64); receptive_field: a patch's side in pixels, one of 1, 16, 34, 70 (paper), 142, 286;
        norm: batch (pix2pix), instance (CycleGAN) or none; spectral_norm: Miyato et al. 2018, on
        every convolution."""
        super().__init__()
        require_positive("model.d", width=width)
        check_norm("model.d", norm)
        if receptive_field not in FIELDS:
            raise UserError(f"model.d.receptive_field={receptive_field}: choose one of "
                            f"{', '.join(map(str, FIELDS))} (paper: 70)")
        channels, side, side_w = image_dims(shape)
        if side != side_w:
            raise UserError(f"model.d: a PatchGAN takes square images; this data is {size_text(shape)}: "
                            f"set data.resolution to make it square")
        self.condition_channels = 0
        if condition_shape is not None:
            if tuple(image_dims(condition_shape)[1:]) != (side, side_w):
                raise UserError(f"model.d: the condition image {size_text(condition_shape)} and the image "
                                f"{size_text(shape)} must have one size: resize them alike (data.resolution)")
            self.condition_channels = image_dims(condition_shape)[0]
        self.shape = tuple(image_dims(shape))
        self.condition_shape = None if condition_shape is None else tuple(image_dims(condition_shape))
        self.num_classes = None
        bias = norm != "batch"
        c_in = channels + self.condition_channels
        n_layers = FIELDS[receptive_field]
        if n_layers == 0:  # PixelGAN: C64-C128-1 with 1x1 kernels
            layers: list[nn.Module] = [nn.Conv2d(c_in, width, 1, 1, 0), nn.LeakyReLU(0.2),
                                       nn.Conv2d(width, 2 * width, 1, 1, 0, bias=bias), norm2d(norm, 2 * width),
                                       nn.LeakyReLU(0.2), nn.Conv2d(2 * width, 1, 1, 1, 0)]
        else:
            layers = [nn.Conv2d(c_in, width, 4, 2, 1), nn.LeakyReLU(0.2)]  # no norm on C64
            ch = width
            for n in range(1, n_layers + 1):  # stride 2, and stride 1 for the last
                out = width * min(2 ** n, 8)
                layers += [nn.Conv2d(ch, out, 4, 2 if n < n_layers else 1, 1, bias=bias), norm2d(norm, out),
                           nn.LeakyReLU(0.2)]
                ch = out
            layers.append(nn.Conv2d(ch, 1, 4, 1, 1))  # (N, 1, P, P)
        self.net = nn.Sequential(*layers)
        self.receptive_field = receptive_field_of(self.net)
        assert self.receptive_field == receptive_field, (self.receptive_field, receptive_field)
        if self.patches(side) < 1:
            smallest = smallest_side(receptive_field)
            fits = max(f for f in FIELDS if smallest_side(f) <= side)
            raise UserError(f"model.d: a PatchGAN with receptive_field={receptive_field} takes images of side at "
                            f"least {smallest}; this data is {size_text(shape)}: set model.d.receptive_field="
                            f"{fits} (or less) or data.resolution={smallest}")
        dcgan_init_(self)
        if spectral_norm:
            add_spectral_norm(self)

    def patches(self, side: int) -> int:
        """P: the side of the logit grid for an input of this side (less than 1: too small)."""
        return grid_side(side, [(m.kernel_size[0], m.stride[0], m.padding[0]) for m in self.net
                                if isinstance(m, nn.Conv2d)])

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """x: (N, C, H, W) images; y: (N, C', H, W) condition images (a conditional D only; ignored
        otherwise). -> (N, P, P) logits, one per patch."""
        if self.condition_channels:
            if y is None:
                raise ValueError("a conditional PatchGAN needs the condition image y")
            x = torch.cat([x, y], dim=1)
        return self.net(x)[:, 0]
