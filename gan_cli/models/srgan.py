"""SRGAN's networks (Ledig et al. 2017, "Photo-Realistic Single Image Super-Resolution Using a Generative
Adversarial Network", section 2.2 and figure 4), and the feature networks its content loss is measured in.

Generator (SRResNet): a 9x9 convolution and PReLU; B residual blocks, each conv3-BN-PReLU-conv3-BN plus its
input; a conv3-BN whose output is added to the first layer's (the long skip); log2(scale) upsampling blocks,
each a conv3 to 4x the channels, PixelShuffle(2) (Shi et al. 2016: (N, 4c, h, w) -> (N, c, 2h, 2w), channel
4k + 2i + j of a pixel goes to offset (i, j) of its 2x2 block) and PReLU; a 9x9 convolution to the image's
channels and tanh (outputs in [-1, 1] as every generator here). The paper: B = 16 blocks of 64 filters, x4.
PReLU has one slope per channel. A convolution followed by batch norm has no bias (the norm's shift is one).
The net is fully convolutional: `gan sample input=` upscales images of any size by the trained factor.

Discriminator: eight 3x3 convolutions with w, w, 2w, 2w, 4w, 4w, 8w, 8w filters and strides 1, 2, 1, 2, ...,
LeakyReLU 0.2, batch norm after every one but the first; then a dense layer of 16w units (the paper's 1024
for w = 64), LeakyReLU, and a dense layer to one logit (the paper's sigmoid is inside the loss). Four
stride-2 layers take 28 px to 2x2 (28 -> 14 -> 7 -> 4 -> 2), the paper's 96 px to 6x6.

Content networks (what the content loss compares G(x) and y in, each frozen):
- VGGContent: VGG19's relu5_4 (the paper's phi_5,4, "the feature map obtained by the 4th convolution, after
  activation, before the 5th maxpooling layer"), ImageNet weights; grey images are repeated to three channels
  and normalised with ImageNet's mean and standard deviation. Scaled by 1/12.75^2 (the paper rescales the
  feature maps by 1/12.75 "to obtain VGG losses of a scale that is comparable to the MSE loss").
- ClassifierContent: the data set's own small classifier (gan_cli/metrics/classifier.py), at its last
  convolutional layer after ReLU, the counterpart of relu5_4 in a net of two convolutions (64 channels at half
  the side). Not the 128 features after its dense layer: those are the space `gan eval`'s FD is measured in,
  and a model trained on them would be judged by its own objective.
- PixelContent: the pixels themselves, so the content loss is the MSE (the paper's SRGAN-MSE)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from gan_cli.errors import UserError
from gan_cli.models.layers import add_spectral_norm, require_positive
from gan_cli.models.pix2pix import image_dims, size_text

SCALES = (2, 4)
VGG_RELU5_4 = 36  # vgg19().features[:36] ends with relu5_4 (index 35), before the 5th max pooling
VGG_SCALE = 1 / 12.75 ** 2  # the paper's rescaling of the VGG feature maps by 1/12.75, on their squared error
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class ResidualBlock(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(width, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.PReLU(width),
                                  nn.Conv2d(width, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class Generator(nn.Module):
    def __init__(self, shape: Sequence[int], in_shape: Sequence[int], blocks: int = 16, width: int = 64):
        """shape: (C, H, W) of the high-resolution images; in_shape: (C, H/s, W/s) of the inputs, s = 2 or 4.
        blocks: residual blocks (paper: 16); width: filters of every convolution before the last (paper: 64)."""
        super().__init__()
        require_positive("model.g", blocks=blocks, width=width)
        channels, high, high_w = image_dims(shape)
        in_channels, low, low_w = image_dims(in_shape)
        scale = high // low if low and high % low == 0 else 0
        if scale not in SCALES or high_w != scale * low_w:
            raise UserError(f"model.g: SRResNet upscales by 2 or 4, and the data's targets ({size_text(shape)}) are "
                            f"not 2 or 4 times its inputs ({size_text(in_shape)}): use data=super_resolution with "
                            f"data.scale=2 or 4")
        self.shape, self.in_shape, self.scale = tuple(image_dims(shape)), tuple(image_dims(in_shape)), scale
        self.num_classes = None  # upscales images; no class labels (sample and eval read this)
        self.head = nn.Sequential(nn.Conv2d(in_channels, width, 9, 1, 4), nn.PReLU(width))  # (N, w, h, w)
        self.body = nn.Sequential(*[ResidualBlock(width) for _ in range(blocks)],
                                  nn.Conv2d(width, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width))
        ups: list[nn.Module] = []
        for _ in range(int(math.log2(scale))):  # (N, w, s, s) -> (N, 4w, s, s) -> (N, w, 2s, 2s)
            ups += [nn.Conv2d(width, 4 * width, 3, 1, 1), nn.PixelShuffle(2), nn.PReLU(width)]
        self.up = nn.Sequential(*ups)
        self.tail = nn.Conv2d(width, channels, 9, 1, 4)  # (N, C, sH, sW)

    def check_input(self, shape: Sequence[int]) -> None:
        """Refuse, in one line, an input image (C, H, W) or batch (N, C, H, W) of other channels than the
        training inputs' (gan sample input=...). Any size passes: the net is fully convolutional."""
        c = image_dims(shape)[0]
        if c != self.in_shape[0]:
            fix = {1: "convert it to grayscale", 3: "convert it to RGB"}.get(self.in_shape[0],
                                                                           f"give it {self.in_shape[0]} channels")
            raise UserError(f"this model (SRResNet x{self.scale}, trained on {size_text(self.in_shape)} inputs) takes "
                            f"{self.in_shape[0]}-channel images; this one is {size_text(shape)}: {fix}")

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """x: (N, C, h, w) in [-1, 1] -> (N, C, s h, s w) in [-1, 1]. y is unused (the engine calls G(x, y))."""
        h = self.head(x)
        h = h + self.body(h)  # the long skip over the residual blocks
        return torch.tanh(self.tail(self.up(h)))


class Discriminator(nn.Module):
    def __init__(self, shape: Sequence[int], width: int = 64, spectral_norm: bool = False):
        """shape: (C, H, W) of the high-resolution images it judges; width: the first layer's filters (paper:
        64; the dense layer has 16x); spectral_norm: Miyato et al. 2018 on every layer (not in the paper)."""
        super().__init__()
        require_positive("model.d", width=width)
        channels, side_h, side_w = image_dims(shape)
        self.shape, self.num_classes = tuple(image_dims(shape)), None
        layers: list[nn.Module] = []
        c = channels
        for i, (out, stride) in enumerate([(width * 2 ** (k // 2), 1 + k % 2) for k in range(8)]):
            layers.append(nn.Conv2d(c, out, 3, stride, 1, bias=i == 0))  # (N, out, ceil(s / stride), ...)
            if i:
                layers.append(nn.BatchNorm2d(out))
            layers.append(nn.LeakyReLU(0.2))
            c = out
            if stride == 2:
                side_h, side_w = (side_h + 1) // 2, (side_w + 1) // 2
        self.net = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(c * side_h * side_w, 16 * width), nn.LeakyReLU(0.2),
                                  nn.Linear(16 * width, 1))
        if spectral_norm:
            add_spectral_norm(self)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """x: (N, C, H, W) -> (N,) logits. y is ignored: SRGAN's D is unconditional."""
        return self.head(self.net(x))[:, 0]


# -- the content loss's feature networks -------------------------------------------------------------------

class ContentNetwork(nn.Module):
    """A frozen feature map phi; the content loss is scale * mean((phi(G(x)) - phi(y))^2)."""

    scale = 1.0  # the factor on the squared error that this network's features take by default
    description = ""

    def freeze(self) -> ContentNetwork:
        self.requires_grad_(False)
        return self.eval()

    def train(self, mode: bool = True) -> ContentNetwork:  # a fixed measure: batch norm or dropout never train
        return super().train(False)


class PixelContent(ContentNetwork):
    description = "pixel MSE (the paper's SRGAN-MSE)"

    def forward(self, x: Tensor) -> Tensor:
        return x


class ClassifierContent(ContentNetwork):
    def __init__(self, name: str, net: nn.Module):
        """net: a SmallCNN (gan_cli/metrics/classifier.py) trained on the data; its layers up to the last
        convolution's ReLU are kept."""
        super().__init__()
        convs = [i for i, m in enumerate(net.features) if isinstance(m, nn.Conv2d)]
        self.features = net.features[:convs[-1] + 2]  # ..., Conv2d, ReLU: (N, 64, H/2, W/2)
        self.description = f"the {name} classifier's last convolutional features"
        self.freeze()

    def forward(self, x: Tensor) -> Tensor:
        return self.features(x)


class VGGContent(ContentNetwork):
    scale = VGG_SCALE
    description = "VGG19 relu5_4"

    def __init__(self, weights: dict[str, Tensor], source: str):
        """weights: a state dict of torchvision's vgg19 (its `features.*` entries are read; the classifier's
        may be there or not); source: where they came from, for the one-line error."""
        super().__init__()
        from torchvision.models import vgg19

        with torch.device("meta"):  # no memory for the 120M weights of the dense layers, which are dropped
            features = vgg19().features[:VGG_RELU5_4]
        features = features.to_empty(device="cpu")
        wanted = {k: v for k, v in weights.items() if isinstance(k, str) and k.startswith("features.")
                  and k.split(".")[1].isdigit() and int(k.split(".")[1]) < VGG_RELU5_4}
        try:
            features.load_state_dict({k.removeprefix("features."): v for k, v in wanted.items()})
        except RuntimeError as e:
            missing = sorted(set(features.state_dict()) - {k.removeprefix("features.") for k in wanted})
            what = (f"it lacks features.{missing[0]}" + (f" and {len(missing) - 1} more" if len(missing) > 1 else "")
                    if missing else str(e).splitlines()[1 if len(str(e).splitlines()) > 1 else 0].strip()[:120])
            raise UserError(f"{source} is not a state dict of torchvision's vgg19 ({what}); give "
                            f"vgg19-dcbb9e9d.pth, torchvision's ImageNet weights") from None
        for m in features:
            if isinstance(m, nn.ReLU):
                m.inplace = False  # G's gradient flows through these maps
        self.features = features
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.freeze()

    def forward(self, x: Tensor) -> Tensor:
        x = (x + 1) / 2  # [-1, 1] -> [0, 1], what torchvision's ImageNet weights were trained on (normalised)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return self.features((x - self.mean) / self.std)


def vgg_weights(path: str | None) -> tuple[dict[str, Tensor], str]:
    """VGG19's ImageNet weights and where they came from: a file (loaded as plain data only), or torchvision's
    download into torch's cache (once; offline it fails). Raises UserError saying why they are not at hand."""
    import contextlib
    import io
    import warnings

    if path is not None:
        file = Path(path).expanduser()
        if not file.is_file():
            raise UserError(f"algorithm.vgg_weights={path} is not a file; give torchvision's vgg19-dcbb9e9d.pth, or "
                            f"algorithm.content=classifier to measure the content loss in the data's own classifier")
        try:
            with warnings.catch_warnings():  # torch's note on the pickle protocol: noise for a refused file
                warnings.simplefilter("ignore")
                weights = torch.load(file, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - every way of failing means the same to the user
            raise UserError(f"algorithm.vgg_weights={path} does not load as plain data ({type(e).__name__}): a "
                            f"file whose unpickling would run code is refused; give torchvision's vgg19-dcbb9e9d.pth "
                            f"(a state dict of tensors)") from None
        if not isinstance(weights, dict):
            raise UserError(f"algorithm.vgg_weights={path} holds a {type(weights).__name__}, not a state dict; give "
                            f"torchvision's vgg19-dcbb9e9d.pth")
        return weights, f"algorithm.vgg_weights={path}"
    from torchvision.models import VGG19_Weights

    said = io.StringIO()  # torch hub's download chatter (on stdout): dropped, so that a failure stays one line
    try:
        with contextlib.redirect_stdout(said), contextlib.redirect_stderr(said):
            weights = VGG19_Weights.IMAGENET1K_V1.get_state_dict(progress=False, map_location="cpu",
                                                                 weights_only=True)
    except Exception as e:  # noqa: BLE001 - URLError, a truncated download, a full disk: not at hand all the same
        reason = str(e).splitlines()[0][:80] if str(e) else ""
        raise NoWeights(f"they are not in torch's cache and torchvision's download failed "
                        f"({type(e).__name__}{': ' + reason if reason else ''})") from None
    return weights, "torchvision's download"


class NoWeights(UserError):
    """VGG19's weights are neither given nor to be had from torchvision; str(): why, in a few words."""

    def __init__(self, reason: str):
        super().__init__(f"algorithm.content=vgg19: VGG19's ImageNet weights are not at hand: {reason}; give "
                         f"algorithm.vgg_weights=PATH (torchvision's vgg19-dcbb9e9d.pth), or algorithm.content="
                         f"classifier to use the data set's own classifier")
        self.reason = reason
