"""What the label-preservation measures of data=mnist2digits give without CycleGAN: each domain's own
classifier (the ones gan eval uses, cached under data/classifiers) reading the other domain's test digits
untranslated, and MNIST rendered by hand the way the UCI digits were made (the digit's box averaged down
to 8x8 in 17 grey levels, then upsampled and framed as the loader frames the UCI digits). The README's
CycleGAN table compares against these rows.

    python bench/mnist2digits_baselines.py [--root data]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from gan_cli.data.translation import mnist2digits
from gan_cli.metrics import classifier as small_cnn


def kept(net, images: Tensor, labels: Tensor) -> float:
    """The share of images (in [-1, 1]) the classifier assigns to their label."""
    with torch.no_grad():
        predicted = torch.cat([net(images[i:i + 1000]).argmax(1) for i in range(0, len(images), 1000)])
    return float((predicted == labels).float().mean())


def uci_rendering(digits: Tensor, stretch: bool) -> Tensor:
    """MNIST digits (N, 1, 28, 28) in [0, 1] -> the UCI look, in [-1, 1]: the 20x20 box (or, stretched,
    each digit's own bounding box resized to fill it) averaged to 8x8, quantised to 17 levels (0..16),
    upsampled to 20x20 and framed in 28x28 as gan_cli/data/translation.py frames the UCI digits."""
    if stretch:
        boxes = []
        for img in digits[:, 0]:
            ys, xs = torch.nonzero(img > 0.1, as_tuple=True)
            crop = img[ys.min():ys.max() + 1, xs.min():xs.max() + 1][None, None]
            boxes.append(F.interpolate(crop, size=(32, 32), mode="bilinear", align_corners=False)[0])
        box = torch.stack(boxes)
    else:
        box = digits[..., 4:24, 4:24]
    small = (F.adaptive_avg_pool2d(box, 8).clamp(0, 1) * 16).round() / 16
    return F.pad(F.interpolate(small, size=(20, 20), mode="bilinear", align_corners=False), (4, 4, 4, 4)) * 2 - 1


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="data")
    args = parser.parse_args(argv)
    train, test = (mnist2digits(args.root, split=s) for s in ("train", "test"))
    cache = Path(args.root) / "classifiers"
    judge_a = small_cnn.cached("mnist", train.domain_a, test.domain_a, cache)
    judge_b = small_cnn.cached("digits", train.domain_b, test.domain_b, cache)
    (a, labels_a), (b, labels_b) = test.sides()
    print(f"test digits: {len(a)} MNIST (A), {len(b)} UCI (B)")
    print(f"untranslated, A to B (the UCI classifier on MNIST):     {kept(judge_b, a, labels_a):.1%}")
    print(f"untranslated, B to A (the MNIST classifier on UCI):     {kept(judge_a, b, labels_b):.1%}")
    pixels = test.domain_a.samples.float() / 255
    for stretch in (False, True):
        shown = "each digit stretched to its box" if stretch else "the 20x20 box"
        print(f"MNIST rendered as UCI ({shown}), the UCI classifier: "
              f"{kept(judge_b, uci_rendering(pixels, stretch), labels_a):.1%}")


if __name__ == "__main__":
    main()
