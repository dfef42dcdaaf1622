"""Data for image-to-image translation: aligned pairs for pix2pix (PairedData), two unaligned domains for
CycleGAN (UnpairedData), and their loaders.

Both hold their images in memory as uint8, like TensorData, and stream seeded, resumable batches in
[-1, 1]: Batch.inputs are the A side (what G translates), Batch.images the B side (what D judges; for
pairs also Batch.targets). pix2pix's jitter is built in: images are held at a load side L (data.load_size,
286 for pix2pix's 256 crops) and each sample gets a random R x R window (R = data.resolution) and, when
data.flip is on, a random horizontal flip. A pair's input and target share their window and their flip, or
they would no longer be aligned. Pictures and evaluation (first, draw, pairs, sides) take the centre window.

The built-in sets need no download beyond MNIST and Fashion-MNIST (`make data`):
- edges2mnist, edges2fashion: the input is a fixed edge operator applied to the image (`edge_map`): the
  Sobel gradient magnitude of the image read as [0, 1] (3x3 kernels [-1 0 1; -2 0 2; -1 0 1] and its
  transpose, replicate padding, channels averaged first), binarised: 255 where the magnitude is at least
  `threshold`, else 0. A full black-to-white step gives magnitude 4 on the two pixels beside it. The
  thresholds (THRESHOLDS) were picked by eye: 2.0 (half a full step) outlines MNIST's strokes thinly,
  where lower ones fill them; Fashion-MNIST's dark garments stand only about 0.3 above the black
  background, so it takes 1.0 to keep their outlines.
- mnist2digits: MNIST (A) against scikit-learn's bundled UCI optical digits (B, offline): two disjoint
  sources of the ten digits (other writers, another scanner, 8x8 pixels of 17 grey levels), framed the
  way MNIST frames its digits so that only the style differs: a 20x20 box centred in 28x28.
- paired_folder, unpaired_folder: pix2pix's and CycleGAN's folder layouts (translation_folders.py).
- super_resolution (super_resolution.py): pairs whose input is the target downsampled by 2 or 4, the A
  side smaller than the B side (PairedData's input_resolution).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor

from gan_cli import modality
from gan_cli.data import torchvision_sets, translation_folders
from gan_cli.data.batch import Batch
from gan_cli.data.source import TensorData, batches_per_epoch, epoch_order, to_unit_range
from gan_cli.errors import UserError

THRESHOLDS = {"MNIST": 2.0, "FashionMNIST": 1.0}  # the edge threshold of each built-in set (module docstring)
EDGE_NAMES = {"MNIST": "edges2mnist", "FashionMNIST": "edges2fashion"}
DIGITS_TRAIN = 0.8  # of the 1,797 UCI digits: 1,437 train, 360 test, by a fixed permutation
DIGITS_SPLIT_SEED = 0
CHUNK = 4096  # images per chunk of a load-time operation: bounds its float copy's memory


def sobel_magnitude(images: Tensor) -> Tensor:
    """uint8 (N, C, H, W) -> float (N, 1, H, W): the Sobel gradient magnitude of the channel mean in [0, 1]."""
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    kernels = torch.stack([kx, kx.T]).unsqueeze(1)  # (2, 1, 3, 3): d/dx and d/dy
    grey = images.float().mean(1, keepdim=True).div_(255)
    gradient = F.conv2d(F.pad(grey, (1, 1, 1, 1), mode="replicate"), kernels)
    return gradient.pow(2).sum(1, keepdim=True).sqrt_()


def edge_map(images: Tensor, threshold: float) -> Tensor:
    """uint8 (N, C, H, W) -> uint8 (N, 1, H, W) in {0, 255}: the edges the module docstring defines."""
    out = torch.empty(len(images), 1, *images.shape[2:], dtype=torch.uint8)
    for i in range(0, len(images), CHUNK):
        out[i:i + CHUNK] = (sobel_magnitude(images[i:i + CHUNK]) >= threshold).to(torch.uint8) * 255
    return out


def jitter(images: list[Tensor], side: int, flip: bool, generator: torch.Generator) -> list[Tensor]:
    """A random side x side window of each row, mirrored left-right at random when `flip`: one window and
    one flip per row, the same for every tensor in `images` (a pair's input and target). The windows are
    drawn on the CPU from `generator` and gathered on the images' own device in one torch.gather (several
    times quicker than advanced indexing or a loop over the rows). A tensor smaller than the others
    (super-resolution's inputs) can only be mirrored, not windowed: it gets the same flips, whole."""
    n, load, device = len(images[0]), max(x.shape[-1] for x in images), images[0].device
    if load == side and not flip:
        return images
    if load > side and any(x.shape[-1] != load for x in images):
        raise ValueError("a random window needs every tensor of a pair at one size")
    # only the n draws cross to the device: the (n, side * side) offsets are made there
    corner = (torch.randint(0, load - side + 1, (2, n), generator=generator) if load > side
              else torch.zeros(2, n, dtype=torch.long))
    mirror = torch.rand(n, 1, generator=generator) < 0.5 if flip else None
    top, left = corner.to(device)
    out = []
    for x in images:
        held = x.shape[-1]
        cut = side if held == load else held  # a smaller tensor: whole (load == side, so no window)
        steps = torch.arange(cut, device=device)
        window = (steps[:, None] * held + steps).view(1, -1)  # the flat offsets of the window at the top left
        if mirror is not None:
            window = torch.where(mirror.to(device), (steps[:, None] * held + steps.flip(0)).view(1, -1), window)
        flat = ((top * held + left)[:, None] + window).unsqueeze(1)  # (n, 1, cut * cut)
        out.append(x.reshape(n, x.shape[1], held * held).gather(2, flat.expand(-1, x.shape[1], -1))
                   .view(n, x.shape[1], cut, cut))
    return out


def _orders(n: int, batch_size: int, seed: int, start: int, device: torch.device,
            name: str) -> Iterator[tuple[int, Tensor]]:
    """(global batch index, sample indices) from batch `start` on, in TensorData.batches's order."""
    per_epoch = batches_per_epoch(n, batch_size, name)
    epoch, k = divmod(start, per_epoch)
    while True:
        order = epoch_order(n, seed, epoch).to(device)
        for i in range(k, per_epoch):
            yield epoch * per_epoch + i, order[i * batch_size:(i + 1) * batch_size]
        epoch, k = epoch + 1, 0


def _jitter_generator(seed: int, index: int, stream: int) -> torch.Generator:
    """The windows and flips of batch `index` of a stream: a function of (seed, index), so resuming at
    batch `start` redraws them. `stream` keeps an unpaired set's two sides apart; the offset keeps these
    seeds off epoch_order's (seed * 1_000_003 + epoch)."""
    return torch.Generator().manual_seed((seed * 1_000_003 + index) * 3 + stream + 7_919)


class _Translation:
    """What both kinds share: two domains of square uint8 images held at the load side, seen at `resolution`
    (the A side at `input_resolution` when it is smaller: super-resolution's inputs, held whole)."""

    paired: bool
    scale = 1.0  # DataSource protocol: images have no units of their own and no known modes
    centers: Tensor | None = None
    std: float | None = None

    def __init__(self, name: str, domain_a: TensorData, domain_b: TensorData, resolution: int, flip: bool,
                 num_classes: int | None, input_resolution: int | None = None):
        self.input_resolution = resolution if input_resolution is None else input_resolution
        for domain, side in ((domain_a, self.input_resolution), (domain_b, resolution)):
            h, w = domain.shape[1:]
            if h != w or h < side:
                raise ValueError(f"{domain.name}: images of {h}x{w} cannot give square {side}px crops")
        if self.input_resolution != resolution and (domain_a.shape[-1], domain_b.shape[-1]) != (
                self.input_resolution, resolution):
            raise ValueError(f"{name}: inputs of another size than the targets are held whole, not cropped")
        self.name, self.domain_a, self.domain_b = name, domain_a, domain_b
        self.resolution, self.flip, self.num_classes = resolution, flip, num_classes

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.domain_b.shape[0], self.resolution, self.resolution)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.domain_a.shape[0], self.input_resolution, self.input_resolution)

    @property
    def modality(self) -> modality.Modality:
        return modality.IMAGES

    def first(self, n: int) -> Tensor:
        return self._centre(self.domain_b.samples[:n])

    def draw(self, n: int, seed: int) -> Tensor:
        """n B-side images drawn without replacement, the same for the same seed: a reference set."""
        idx = torch.randperm(len(self.domain_b), generator=torch.Generator().manual_seed(seed))[:n]
        return self._centre(self.domain_b.samples[idx])

    def _centre(self, images: Tensor, side: int | None = None) -> Tensor:
        side = self.resolution if side is None else side
        top = (images.shape[-1] - side) // 2
        return to_unit_range(images[..., top:top + side, top:top + side].contiguous())

    def _side(self, domain: TensorData, n: int | None) -> tuple[Tensor, Tensor | None]:
        labels = None if domain.labels is None else domain.labels[:n]
        side = self.input_resolution if domain is self.domain_a else self.resolution
        return self._centre(domain.samples[:n], side), labels


class PairedData(_Translation):
    """pix2pix's data: aligned (input, target) pairs, row i of domain_a with row i of domain_b."""

    paired = True

    def __init__(self, name: str, domain_a: TensorData, domain_b: TensorData, resolution: int,
                 flip: bool = False, num_classes: int | None = None, input_resolution: int | None = None):
        """input_resolution: the A side's, when smaller than the targets' (super-resolution: held whole,
        mirrored with its target, never windowed); None: resolution."""
        if len(domain_a) != len(domain_b):
            raise ValueError(f"{name}: {len(domain_a)} inputs but {len(domain_b)} targets")
        super().__init__(name, domain_a, domain_b, resolution, flip, num_classes, input_resolution)

    def __len__(self) -> int:
        return len(self.domain_b)

    def batches(self, batch_size: int, device: torch.device, seed: int, start: int = 0) -> Iterator[Batch]:
        inputs, targets = self.domain_a.samples.to(device), self.domain_b.samples.to(device)
        labels = None if self.domain_b.labels is None else self.domain_b.labels.to(device)
        for index, idx in _orders(len(self), batch_size, seed, start, device, self.name):
            a, b = jitter([inputs[idx], targets[idx]], self.resolution, self.flip,
                          _jitter_generator(seed, index, 0))
            b = to_unit_range(b)
            yield Batch(images=b, labels=None if labels is None else labels[idx], inputs=to_unit_range(a),
                        targets=b)

    def pairs(self, n: int | None = None) -> tuple[Tensor, Tensor, Tensor | None]:
        """The first n pairs (all when None), centre windows in [-1, 1]: (inputs, targets, labels or None)."""
        a, labels = self._side(self.domain_a, n)
        return a, self._side(self.domain_b, n)[0], labels


class UnpairedData(_Translation):
    """CycleGAN's data: two domains of their own sizes, in independent orders; labels, where a side has
    them, serve evaluation only."""

    paired = False

    def __init__(self, name: str, domain_a: TensorData, domain_b: TensorData, resolution: int,
                 flip: bool = False):
        super().__init__(name, domain_a, domain_b, resolution, flip, None)

    def __len__(self) -> int:
        return max(len(self.domain_a), len(self.domain_b))

    def batches(self, batch_size: int, device: torch.device, seed: int, start: int = 0) -> Iterator[Batch]:
        # each side cycles over its own length in its own order (seeds seed and seed + 1), with its own jitter
        streams = [(domain.samples.to(device),
                    _orders(len(domain), batch_size, seed + s, start, device, f"{self.name} side {'AB'[s]}"))
                   for s, domain in enumerate((self.domain_a, self.domain_b))]
        while True:
            a, b = [self._jittered(samples, *next(stream), seed, 1 + s) for s, (samples, stream) in enumerate(streams)]
            yield Batch(images=b, inputs=a)

    def _jittered(self, samples: Tensor, index: int, idx: Tensor, seed: int, stream: int) -> Tensor:
        generator = _jitter_generator(seed, index, stream)
        return to_unit_range(jitter([samples[idx]], self.resolution, self.flip, generator)[0])

    def sides(self, n: int | None = None) -> tuple[tuple[Tensor, Tensor | None], tuple[Tensor, Tensor | None]]:
        """The first n images of each side (all when None), centre windows in [-1, 1], with their labels."""
        return self._side(self.domain_a, n), self._side(self.domain_b, n)


def load_side(resolution: int, load_size: int | None) -> int:
    """The side images are held at: data.load_size, or the resolution itself (no random window)."""
    if resolution <= 0:
        raise UserError(f"data.resolution={resolution} must be a positive number of pixels")
    if load_size is None:
        return resolution
    if load_size < resolution:
        raise UserError(f"data.load_size={load_size} is below data.resolution={resolution}: images are resized "
                        f"to load_size and a random window of resolution is cut from them; set data.load_size "
                        f">= {resolution} (pix2pix: 286 for 256), or null for no random window")
    return load_size


def edges(dataset: str, root: str, split: str = "train", resolution: int = 28, load_size: int | None = None,
          flip: bool = False, threshold: float | None = None, download: bool = True) -> PairedData:
    """edges2mnist / edges2fashion: pairs (edge map, image) of a torchvision set; threshold None takes
    the set's own (THRESHOLDS)."""
    if dataset not in EDGE_NAMES:
        raise UserError(f"data.dataset={dataset} has no edges set; choose one of {', '.join(EDGE_NAMES)}")
    images = torchvision_sets.load(dataset, root, load_side(resolution, load_size), _split(split), download)
    threshold = THRESHOLDS[dataset] if threshold is None else threshold
    if threshold <= 0:
        raise UserError(f"data.threshold={threshold} would mark every pixel an edge; use a positive Sobel "
                        f"magnitude (a full black-to-white step is 4; {dataset}'s default is {THRESHOLDS[dataset]})")
    outlines = TensorData("edges", edge_map(images.samples, threshold), images.labels, images.num_classes)
    return PairedData(EDGE_NAMES[dataset], outlines, images, resolution, flip, images.num_classes)


def mnist2digits(root: str, split: str = "train", resolution: int = 28, load_size: int | None = None,
                 flip: bool = False, download: bool = True) -> UnpairedData:
    """MNIST (A) and the UCI optical digits (B) of the same split: see the module docstring."""
    side = load_side(resolution, load_size)
    mnist = torchvision_sets.load("MNIST", root, side, _split(split), download)
    images, labels = _uci_digits(split)
    if side != images.shape[-1]:
        images = torchvision_sets.resize(images, side)
    digits = TensorData("digits", images, labels, num_classes=10)
    return UnpairedData("mnist2digits", mnist, digits, resolution, flip)


def _uci_digits(split: str) -> tuple[Tensor, Tensor]:
    """scikit-learn's 1,797 8x8 digits (values 0..16) of one split, as uint8 (N, 1, 28, 28) framed as MNIST."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise UserError("data=mnist2digits reads scikit-learn's bundled digits: pip install scikit-learn") from None
    digits = load_digits()
    order = torch.randperm(len(digits.images), generator=torch.Generator().manual_seed(DIGITS_SPLIT_SEED))
    cut = int(len(order) * DIGITS_TRAIN)
    idx = order[:cut] if split == "train" else order[cut:]
    small = torch.as_tensor(digits.images, dtype=torch.float32)[idx].unsqueeze(1) * (255 / 16)
    # upsampling: nothing to antialias; MNIST's digits fill a 20x20 box centred in the 28x28 frame
    box = F.interpolate(small, size=(20, 20), mode="bilinear", align_corners=False, antialias=False)
    framed = F.pad(box, (4, 4, 4, 4))
    return framed.round_().clamp_(0, 255).to(torch.uint8), torch.as_tensor(digits.target, dtype=torch.long)[idx]


def paired_folder(root: str, split: str = "train", resolution: int = 256, load_size: int | None = None,
                  flip: bool = True, channels: int = 3, direction: str = "AtoB") -> PairedData:
    """pix2pix's folders (translation_folders.read_paired); direction=BtoA translates B into A."""
    if direction not in ("AtoB", "BtoA"):
        raise UserError(f"data.direction={direction}: choose AtoB (translate the A images into the B ones) or BtoA")
    a, b = translation_folders.read_paired(root, split, load_side(resolution, load_size), _channels(channels))
    if direction == "BtoA":
        a, b = b, a
    return PairedData("paired_folder", TensorData("A", a), TensorData("B", b), resolution, flip)


def unpaired_folder(root: str, split: str = "train", resolution: int = 256, load_size: int | None = None,
                    flip: bool = True, channels: int = 3) -> UnpairedData:
    """CycleGAN's folders (translation_folders.read_unpaired): root/<split>A and root/<split>B."""
    a, b = translation_folders.read_unpaired(root, split, load_side(resolution, load_size), _channels(channels))
    return UnpairedData("unpaired_folder", TensorData("A", a), TensorData("B", b), resolution, flip)


def _channels(channels: int) -> int:
    if channels not in (1, 3):
        raise UserError(f"data.channels={channels}: choose 1 (grey) or 3 (RGB)")
    return channels


def _split(split: str) -> str:
    if split not in ("train", "test"):
        raise UserError(f"data.split={split}: the built-in sets have a train and a test split; choose one")
    return split
