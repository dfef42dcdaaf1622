"""AttGAN's networks (He et al. 2019, "AttGAN: Facial Attribute Editing by Only Changing What You Want"),
sized for 28 and 32 px digits.

G is an encoder-decoder (the paper's section 3): G_enc maps an image x^a to a latent z, G_dec decodes z under an
attribute vector into x-hat. The attributes are tiled over the latent's grid and concatenated to it at the
decoder's input, so every spatial position of the decoder sees them. The paper's experiments and the
authors' code settle on one shortcut layer (the encoder's second-deepest feature map concatenated after the
decoder's first layer: detail the bottleneck would lose, which a reconstruction loss of weight 100 asks
for) and one inject layer (the attributes tiled again at that layer, so the decoder cannot drown them in
the shortcut's many channels). More shortcuts sharpen reconstructions but weaken the edits (the paper's
comparison of shortcut and inject layers).

D and the attribute classifier C share a conv trunk and end in two heads (section 3 and the paper's network
table: D and C share their convolutions): the adversarial score and one logit per attribute.

Sizes: the paper's 128 px network has 5 stride-2 layers down to 4x4. Here the depth is the number of
halvings that leaves a side of 3 or 4: 28 -> 14 -> 7 -> 3 and 32 -> 16 -> 8 -> 4 (3 layers), 128 -> 4 (5,
the paper's). Widths double per layer from `width`, capped at 16 x width (the paper's 64 -> 1024)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from gan_cli.errors import UserError
from gan_cli.models.layers import norm_layer, require_positive


def tile(code: Tensor, height: int, width: int) -> Tensor:
    """(N, k) attribute codes -> (N, k, height, width): each attribute a constant plane, concatenated to
    feature maps so that a convolution sees the attributes at every position."""
    return code[:, :, None, None].expand(-1, -1, height, width)


def auto_depth(side: int) -> int:
    """Stride-2 halvings until the side is at most 4 (128 -> 5, the paper's; 28 and 32 -> 3)."""
    depth = 0
    while side > 4:
        side = (side - 2) // 2 + 1  # a 4x4 conv, stride 2, padding 1
        depth += 1
    return max(depth, 1)


def encoder_sides(side: int, depth: int) -> list[int]:
    """The side of the input and of each encoder layer's output: [28, 14, 7, 3] for 28 px, depth 3."""
    sides = [side]
    for _ in range(depth):
        sides.append((sides[-1] - 2) // 2 + 1)
    return sides


def _names(attributes: Sequence[str] | None, net: str) -> tuple[str, ...]:
    if attributes is None:  # data=attribute_folder's "every column": the networks' sizes need the names now
        raise UserError(f"model.{net}.attributes is null: AttGAN is built for named attributes; list them, e.g. "
                        f"data.attributes=[Smiling,Male]")
    names = tuple(str(a) for a in attributes)
    if not names:
        raise UserError(f"model.{net}.attributes is empty: AttGAN is built for the attributes it edits; name them in "
                        f"data.attributes=[...] (data=mnist: thickness, slant, ...; data=attribute_folder: the table's "
                        f"columns)")
    return names


def _square(shape: Sequence[int], net: str, depth: int | None) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise UserError(f"model=attgan edits images; this data has samples of shape {tuple(shape)}")
    c, h, w = (int(s) for s in shape)
    if h != w:
        raise UserError(f"model=attgan takes square images; this data's are {h}x{w}")
    if depth is not None:
        require_positive(f"model.{net}", depth=depth)
        if encoder_sides(h, depth)[-1] < 1 or h < 2 ** depth:
            raise UserError(f"model.{net}.depth={depth} halves a {h} px image to nothing; use at most "
                            f"{auto_depth(h)} (null picks it)")
    return c, h, w


class Generator(nn.Module):
    """x (N, C, H, W) in [-1, 1] and attribute codes (N, k) -> the edited image (N, C, H, W) in [-1, 1].

    `thresholds` (a buffer, saved with the weights) holds where the training data's measures were cut into
    0/1 attributes, so that `gan sample` binarises a user's image the way the training set was."""

    trained_by = "attgan"  # its attribute input and loss belong to algorithm=attgan
    num_classes = None  # no class labels: sample and eval read this

    def __init__(self, shape: Sequence[int], attributes: Sequence[str] | None, width: int = 32,
                 depth: int | None = None, shortcut_layers: int = 1, inject_layers: int = 1, norm: str = "batch"):
        """attributes: the names of the k attributes (data.attributes); width: filters of the first encoder
        layer (paper: 64); depth: stride-2 layers of the encoder and of the decoder (null: down to 3-4 px);
        shortcut_layers / inject_layers: decoder layers followed by the encoder's map of that size / by the
        tiled attributes again (paper: 1 and 1); norm: of every layer but the last (paper: batch)."""
        super().__init__()
        self.attributes = _names(attributes, "g")
        c, h, _ = _square(shape, "g", depth)
        require_positive("model.g", width=width)
        for key, value in (("shortcut_layers", shortcut_layers), ("inject_layers", inject_layers)):
            if value < 0:
                raise UserError(f"model.g.{key}={value} must be 0 or more (paper: 1)")
        self.depth = depth or auto_depth(h)
        self.in_shape = (c, h, h)
        k = len(self.attributes)
        # a decoder of n layers has n - 1 inner ones after which a shortcut or an injection can come
        self.shortcut_layers = min(shortcut_layers, self.depth - 1)
        self.inject_layers = min(inject_layers, self.depth - 1)
        self.sides = encoder_sides(h, self.depth)
        widths = [min(width * 2 ** i, 16 * width) for i in range(self.depth)]
        self.register_buffer("thresholds", torch.zeros(k))

        self.enc = nn.ModuleList()
        channels = c
        for out in widths:  # (N, C, H, W) -> (N, widths[i], sides[i + 1], sides[i + 1])
            self.enc.append(nn.Sequential(nn.Conv2d(channels, out, 4, 2, 1, bias=norm == "none"),
                                          norm_layer(norm, out), nn.LeakyReLU(0.2)))
            channels = out

        self.dec = nn.ModuleList()
        self.dec_norm = nn.ModuleList()
        channels = widths[-1] + k  # the latent and the tiled attributes
        for i in range(self.depth):
            last = i == self.depth - 1
            # decoder layer i mirrors encoder layer depth - 1 - i: widths[depth - 1 - i] as in the paper's
            # (1024 at the latent's side, then halving), the image's channels at the end
            out = c if last else min(width * 2 ** (self.depth - 1 - i), 16 * width)
            self.dec.append(nn.ConvTranspose2d(channels, out, 4, 2, 1, bias=last or norm == "none"))
            self.dec_norm.append(nn.Identity() if last else norm_layer(norm, out))
            channels = out
            if i < self.shortcut_layers:
                channels += widths[self.depth - 2 - i]
            if i < self.inject_layers:
                channels += k

    def encode(self, x: Tensor) -> list[Tensor]:
        """Every encoder layer's output, deepest last: the latent z and the maps the shortcuts take."""
        zs = []
        for layer in self.enc:
            x = layer(x)
            zs.append(x)
        return zs

    def decode(self, zs: list[Tensor], code: Tensor) -> Tensor:
        """The image that the latent (and its shortcut maps) make under attribute codes (N, k)."""
        code = code.to(zs[-1].dtype)
        h = torch.cat([zs[-1], tile(code, *zs[-1].shape[-2:])], dim=1)
        for i, (up, norm) in enumerate(zip(self.dec, self.dec_norm)):
            side = self.sides[self.depth - 1 - i]  # back to the encoder's side at this depth: 3 -> 7 -> 14 -> 28
            h = up(h, output_size=[side, side])
            if i == self.depth - 1:
                return torch.tanh(h)
            h = torch.relu(norm(h))
            if i < self.shortcut_layers:
                h = torch.cat([h, zs[self.depth - 2 - i]], dim=1)
            if i < self.inject_layers:
                h = torch.cat([h, tile(code, side, side)], dim=1)
        raise AssertionError("unreachable: the last decoder layer returns")

    def forward(self, x: Tensor, code: Tensor) -> Tensor:
        return self.decode(self.encode(x), code)

    def check_input(self, shape: Sequence[int]) -> None:
        """(channels, height, width) of an image the user gives: the training size only, since the
        thresholds and the decoder's output sizes are the training data's."""
        if tuple(shape[1:]) != self.in_shape[1:]:
            raise UserError(f"is {shape[2]}x{shape[1]}, and this model edits {self.in_shape[2]}x{self.in_shape[1]} "
                            f"images (its training size); resize it first")


class Discriminator(nn.Module):
    """A conv trunk shared by the critic D (forward: one score per image, for loss=) and the attribute
    classifier C (classify: one logit per attribute), as the paper's D and C share all convolutions."""

    trained_by = "attgan"

    def __init__(self, shape: Sequence[int], attributes: Sequence[str] | None, width: int = 32,
                 depth: int | None = None, fc_dim: int = 256, norm: str = "instance"):
        """width: filters of the first layer (paper: 64), doubling per layer; fc_dim: the hidden width of each
        head (paper: 1024); norm: of the conv layers. The authors' code uses instance norm; batch norm is
        refused by loss=wgan_gp, whose penalty is per sample."""
        super().__init__()
        self.attributes = _names(attributes, "d")
        c, h, _ = _square(shape, "d", depth)
        require_positive("model.d", width=width, fc_dim=fc_dim)
        depth = depth or auto_depth(h)
        layers, channels = [], c
        for i in range(depth):  # (N, C, H, W) -> (N, widths[-1], s, s), s = 3 at 28 px, 4 at 32 px
            out = min(width * 2 ** i, 16 * width)
            layers += [nn.Conv2d(channels, out, 4, 2, 1), norm_layer(norm, out), nn.LeakyReLU(0.2)]
            channels = out
        self.trunk = nn.Sequential(*layers, nn.Flatten())
        features = channels * encoder_sides(h, depth)[-1] ** 2
        # the authors' heads: FC(fc_dim)-LeakyReLU-FC(out), with no normalisation in the FC layers
        self.adversarial = nn.Sequential(nn.Linear(features, fc_dim), nn.LeakyReLU(0.2), nn.Linear(fc_dim, 1))
        self.classifier = nn.Sequential(nn.Linear(features, fc_dim), nn.LeakyReLU(0.2),
                                        nn.Linear(fc_dim, len(self.attributes)))

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """The critic's score (N,), the logit that loss= reads."""
        return self.adversarial(self.trunk(x)).squeeze(1)

    def classify(self, x: Tensor) -> Tensor:
        """C's logits (N, k): one per attribute, 'above its threshold'."""
        return self.classifier(self.trunk(x))
