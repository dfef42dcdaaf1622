"""Morpho-MNIST's measures of the real MNIST test digits: their spread, the first training digit against
the values Castro et al. released for it, and the cost of a digit with skimage's thinning (what
gan_cli/attributes/morpho.py uses) against the paper's medial axis.

    python bench/morpho_measures.py [--root data] [--timing 200]
"""

from __future__ import annotations

import argparse
import math
import os
import time

import numpy as np
import torch

from gan_cli.attributes import morpho

# The first training digit's measures, from the authors' released original/train-morpho.csv (quoted in
# their test suite, tests/test_measure.py)
RELEASED_FIRST = {"area": 107.3125, "length": 50.26650429449552, "thickness": 2.4606583773939543,
                  "slant": 0.23107446620980754, "width": 14.539571782767355, "height": 19.849053691610763}


def medial_axis_cost(images: np.ndarray) -> float:
    """Seconds a digit for the paper's skeleton (skimage's medial_axis) at the same 4x scale."""
    from skimage import morphology, transform

    start = time.perf_counter()
    for im in images:
        hires = transform.pyramid_expand(im / 255.0, upscale=morpho.SCALE, order=3)
        morphology.medial_axis(hires >= hires.min() + (hires.max() - hires.min()) / 2, return_distance=True, rng=0)
    return (time.perf_counter() - start) / len(images)


def main(argv: list[str] | None = None) -> None:
    import torchvision

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", default=os.environ.get("GAN_DATA_ROOT", "data"))
    p.add_argument("--timing", type=int, default=200, help="digits timed, one process")
    p.add_argument("--limit", type=int, default=None, help="test digits measured (default: all 10,000)")
    args = p.parse_args(argv)

    train = torchvision.datasets.MNIST(args.root, train=True)
    first = dict(zip(morpho.NAMES, morpho.measure_image(train.data[0].numpy()).tolist()))
    print("first training digit: measure, released, here, difference")
    for name in morpho.NAMES:
        r, h = RELEASED_FIRST[name], first[name]
        print(f"  {name:9s} {r:8.3f} {h:8.3f} {100 * (h - r) / r:+6.1f}%")

    sample = train.data[:args.timing].numpy()
    start = time.perf_counter()
    morpho.measure(train.data[:args.timing, None], workers=1)
    thinning = (time.perf_counter() - start) / args.timing
    medial = medial_axis_cost(sample)
    print(f"one process, {args.timing} digits: thinning + distance map {1000 * thinning:.1f} ms a digit, "
          f"medial axis alone {1000 * medial:.1f} ms ({medial / thinning:.1f}x)")

    test = torchvision.datasets.MNIST(args.root, train=False)
    images = test.data[:args.limit, None]
    start = time.perf_counter()
    values = morpho.measure(images, progress=True)
    print(f"{len(images)} test digits measured in {time.perf_counter() - start:.0f} s "
          f"({os.cpu_count()} processes)")
    print("measure     p5      p25     median  p75     p95")
    for i, name in enumerate(morpho.NAMES):
        v = values[:, i][~values[:, i].isnan()]
        if name == "slant":
            v = v * 180 / math.pi
        q = torch.quantile(v, torch.tensor([0.05, 0.25, 0.5, 0.75, 0.95]))
        unit = " (deg)" if name == "slant" else ""
        print(f"{name + unit:11s} " + " ".join(f"{x:7.2f}" for x in q.tolist()))


if __name__ == "__main__":
    main()
