"""What the label-preservation measures of data=mnist2digits give without CycleGAN: each domain's own
classifier (the ones gan eval uses, cached under data/classifiers) reading the other domain's test digits
untranslated, and MNIST rendered by hand the way the UCI digits were made (the digit's box averaged down
to 8x8 in 17 grey levels, then upsampled and framed as the loader frames the UCI digits). The README's
CycleGAN table compares against these rows.

The UCI judge that gan eval uses knows the UCI digits' 13 writers only, so it reads other people's digits
badly even in the UCI look. A second judge, "many writers", is trained (with the same jitter) on the UCI
training digits plus the first 20,000 MNIST training digits rendered the UCI way: it reads the UCI look
from tens of thousands of hands. It is a bench instrument, not a gan eval measure, since it has seen
source-domain (MNIST) digits, though never a test digit nor a translation.

    python bench/mnist2digits_baselines.py [--root data] [--checkpoint RUN/checkpoints/last.pt]

--checkpoint translates the 10,000 MNIST test digits with a CycleGAN's G and prints what both judges keep,
with the digits the many-writer judge most often reads as another.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from gan_cli.data.source import TensorData
from gan_cli.data.translation import mnist2digits
from gan_cli.metrics import classifier as small_cnn

MANY_WRITERS = 20_000  # MNIST training digits rendered as UCI for the second judge


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


def many_writers(train, test, cache: Path):
    """The second UCI-side judge (see the module docstring), trained once and cached beside gan eval's."""
    pixels = train.domain_a.samples[:MANY_WRITERS].float() / 255
    rendered = torch.cat([uci_rendering(pixels[i:i + 2000], stretch=True) for i in range(0, len(pixels), 2000)])
    as_uint8 = ((rendered + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    both = TensorData("digits_many_writers", torch.cat([train.domain_b.samples, as_uint8]),
                      torch.cat([train.domain_b.labels, train.domain_a.labels[:MANY_WRITERS]]), num_classes=10)
    return small_cnn.cached(both.name, both, test.domain_b, cache, augment=True)


def misread(net, images: Tensor, labels: Tensor, top: int = 4) -> list[tuple[int, int, float]]:
    """The most frequent misreadings: (true digit, digit read, share of that true digit), most frequent first."""
    with torch.no_grad():
        predicted = torch.cat([net(images[i:i + 1000]).argmax(1) for i in range(0, len(images), 1000)])
    counts = torch.zeros(10, 10)
    counts.index_put_((labels, predicted), torch.ones(len(labels)), accumulate=True)
    share = counts / counts.sum(1, keepdim=True)
    share.fill_diagonal_(0)
    worst = share.flatten().topk(top)
    return [(int(i) // 10, int(i) % 10, float(v)) for v, i in zip(worst.values, worst.indices)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="data")
    parser.add_argument("--checkpoint", type=Path, help="a CycleGAN checkpoint of data=mnist2digits")
    parser.add_argument("--figure", type=Path, help="with --checkpoint: a grid of the two most misread digits, "
                        "three rows each: MNIST test digits | G's translations | real UCI digits of that class")
    args = parser.parse_args(argv)
    if args.figure is not None and args.figure.exists():  # never overwrite a file this run did not make
        parser.error(f"--figure {args.figure} exists: remove it, or name a new file")
    train, test = (mnist2digits(args.root, split=s) for s in ("train", "test"))
    cache = Path(args.root) / "classifiers"
    judge_a = small_cnn.cached("mnist", train.domain_a, test.domain_a, cache)
    judges = {"UCI judge (gan eval's)": small_cnn.cached("digits", train.domain_b, test.domain_b, cache),
              "many-writer judge": many_writers(train, test, cache)}
    (a, labels_a), (b, labels_b) = test.sides()
    pixels = test.domain_a.samples.float() / 255
    print(f"test digits: {len(a)} MNIST (A), {len(b)} UCI (B)")
    print(f"untranslated, B to A (the MNIST classifier on UCI): {kept(judge_a, b, labels_b):.1%}")
    for name, judge in judges.items():
        print(f"{name}: UCI test digits {kept(judge, b, labels_b):.1%}; untranslated MNIST (A to B) "
              f"{kept(judge, a, labels_a):.1%}; MNIST rendered as UCI in the 20x20 box "
              f"{kept(judge, uci_rendering(pixels, False), labels_a):.1%}, each digit stretched to its box "
              f"{kept(judge, uci_rendering(pixels, True), labels_a):.1%}")
    if args.checkpoint:
        from gan_cli import checkpoint
        from gan_cli.algorithms.translation import translate_all
        from gan_cli.commands.translate import translator_names

        saved = checkpoint.Saved.load(args.checkpoint)
        G = saved.generator(torch.device("cpu"), name=translator_names(saved)["AtoB"])
        fake_b = translate_all(G.eval(), a, 500, torch.device("cpu"))
        for name, judge in judges.items():
            print(f"{args.checkpoint}, A to B, {name}: {kept(judge, fake_b, labels_a):.1%} kept; most misread "
                  f"(true->read, share of that digit): "
                  + ", ".join(f"{t}->{r} {v:.0%}" for t, r, v in misread(judge, fake_b, labels_a)))
        if args.figure:
            from torchvision.utils import save_image

            digits = [t for t, _, _ in misread(judges["many-writer judge"], fake_b, labels_a, top=2)]
            rows = [t[labels == d][:12] for d in digits for t, labels in ((a, labels_a), (fake_b, labels_a),
                                                                          (b, labels_b))]
            save_image(torch.cat(rows), args.figure, nrow=12, normalize=True, value_range=(-1, 1), pad_value=0.5)
            print(f"wrote {args.figure}: digits {digits}")


if __name__ == "__main__":
    main()
