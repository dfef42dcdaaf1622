"""A small CNN trained once per labelled image data set, deterministically, and cached.

It judges generated images in the data's own terms: which classes they cover and how many are
confidently recognisable. A domain measure that works offline; it is not FID and is never called so.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_cli import files
from gan_cli.errors import UserError, first_line
from gan_cli.data.source import TensorData, to_unit_range

log = logging.getLogger(__name__)

# Below this many training images the classifier sees each one randomly rotated, scaled, sheared and shifted
# (Simard et al. 2003). Without it, the net trained on scikit-learn's 1,437 UCI digits memorises their
# writers: it read its own held-out digits at 97.5% but MNIST's at 43%; with it, 99.2% and 79%. MNIST and
# Fashion-MNIST (60,000 each) are left as they were, so every measure taken with them stands.
SMALL_SET = 10_000


class SmallCNN(nn.Module):
    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, 32, 3, padding=1), nn.ReLU(True), nn.MaxPool2d(2),  # (N, 32, H/2, W/2)
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(True), nn.MaxPool2d(2),        # (N, 64, H/4, W/4)
            nn.AdaptiveAvgPool2d(7), nn.Flatten(),                                   # (N, 64*49)
            nn.Linear(64 * 49, 128), nn.ReLU(True),
        )
        self.head = nn.Linear(128, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


def train(data: TensorData, epochs: int = 3, batch_size: int = 128, seed: int = 0, min_updates: int = 1000,
          augment: bool = False) -> SmallCNN:
    """epochs over the data, or more for a small set (scikit-learn's 1,437 training digits), so that the net
    gets min_updates updates at least: three epochs of MNIST are 1,400."""
    torch.manual_seed(seed)
    jitter = torch.Generator().manual_seed(seed)
    epochs = max(epochs, -(-min_updates * batch_size // len(data)))
    net = SmallCNN(data.shape[0], data.num_classes)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    step = 0
    for epoch in range(epochs):
        for batch in data.batches(batch_size, torch.device("cpu"), seed):
            images = random_affine(batch.images, jitter) if augment else batch.images
            loss = F.cross_entropy(net(images), batch.labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if step >= (epoch + 1) * (len(data) // batch_size):
                break
    return net.eval()


def random_affine(images: Tensor, generator: torch.Generator, degrees: float = 15, scale: float = 0.15,
                  shear: float = 0.3, shift: float = 0.1) -> Tensor:
    """Each image (in [-1, 1]) rotated by up to `degrees`, scaled by 1 +- `scale`, sheared by up to `shear`
    and shifted by up to `shift` of its half-width, with its own draw; the background stays -1."""
    n = len(images)

    def uniform(bound: float) -> Tensor:
        return (torch.rand(n, generator=generator) * 2 - 1) * bound

    angle, size = uniform(degrees) * math.pi / 180, 1 + uniform(scale)
    cos, sin = torch.cos(angle) / size, torch.sin(angle) / size
    theta = torch.stack([torch.stack([cos, uniform(shear) - sin, uniform(shift)], 1),
                         torch.stack([sin, cos, uniform(shift)], 1)], 1)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images + 1, grid, align_corners=False) - 1


@torch.no_grad()
def accuracy(net: nn.Module, data: TensorData, batch_size: int = 1000) -> float:
    correct = 0
    for i in range(0, len(data), batch_size):
        x = to_unit_range(data.samples[i:i + batch_size])
        correct += int((net(x).argmax(1) == data.labels[i:i + batch_size]).sum())
    return correct / len(data)


def cached(name: str, train_data: TensorData, test_data: TensorData, cache_dir: Path,
           augment: bool | None = None) -> SmallCNN:
    """Load the classifier for `name`, or train it once and keep it in cache_dir. A small set's classifier
    trains on jittered images (augment=None: by size; a caller may insist), and its file says so: one trained
    before that rule is never read."""
    augment = len(train_data) < SMALL_SET if augment is None else augment
    path = cache_dir / f"{name}_cnn_{'affine_' if augment else ''}{train_data.shape[-1]}px.pt"
    net = SmallCNN(train_data.shape[0], train_data.num_classes)
    if path.is_file():
        try:  # weights_only: a file planted at the cache's name can hold tensors, never code
            saved = torch.load(path, weights_only=True)
            net.load_state_dict(saved["weights"])
            net.test_accuracy = float(saved["test_accuracy"])
        except Exception as e:  # noqa: BLE001 - unreadable, truncated or another net's: all one answer
            raise UserError(f"{path} is not a {name} classifier this runner can read ({first_line(e)}); move it "
                            f"away and the classifier is trained again in its place") from None
        return net.eval()
    log.info("training the %s classifier once (cached in %s)", name, path)
    net = train(train_data, augment=augment)
    acc = accuracy(net, test_data)
    log.info("%s classifier: test accuracy %.4f", name, acc)
    files.write_tensors(path, {"weights": net.state_dict(), "test_accuracy": acc},
                             "free disk space: the classifier is trained once and kept there")
    net.test_accuracy = acc
    return net


@torch.no_grad()
def class_report(net: nn.Module, images: Tensor, num_classes: int, confident: float = 0.9,
                 min_share: float = 0.01) -> dict:
    """How generated images (N, C, H, W) in [-1, 1] fall into the data's classes: coverage of the
    classifier's probabilities for them."""
    probs = torch.cat([net(images[i:i + 1000]).softmax(1) for i in range(0, len(images), 1000)])
    return coverage(probs, num_classes, confident, min_share)


def coverage(probs: Tensor, num_classes: int, confident: float = 0.9, min_share: float = 0.01) -> dict:
    """Which classes samples fall into, from the classifier's probabilities (N, classes). Two counts of
    classes, each by `covered` (at least min_share of all samples, 1%: the share issue 3 uses for toy
    modes), and each with its own name wherever it is reported:
    - classes_covered: counting only samples the classifier gives >= `confident`, so that noise spread
      over every class covers none (gan eval's metric of that name, the README's);
    - classes_predicted: counting every sample in its most likely class, however unsure (what gan
      diagnose's probe counts, with its own min_share)."""
    top, label = probs.max(1)
    counts = torch.bincount(label, minlength=num_classes)
    sure = top >= confident
    sure_counts = torch.bincount(label[sure], minlength=num_classes)
    return {
        "class_counts": counts.tolist(),
        "confident_counts": sure_counts.tolist(),
        "classes_covered": covered(sure_counts, len(probs), min_share),
        "classes_predicted": covered(counts, len(probs), min_share),
        "confident_share": float(sure.float().mean()),
    }


def covered(counts: Tensor, n: int, min_share: float) -> int:
    """How many classes (or modes) hold at least min_share of n samples, given each one's count."""
    return int((counts >= min_share * n).sum())
