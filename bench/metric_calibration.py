"""Calibrate gan eval's offline MNIST metrics on sets whose quality a person can rank.

    python bench/metric_calibration.py [n=5000] [checkpoint.pt ...]

Each set of n images is measured against the same reference as `gan eval` (10,000 training images, in
the feature space of MNIST's cached classifier): held-out test images, the same with Gaussian noise,
blurred, a single digit class, and uniform noise; then any checkpoints given, through `gan eval`'s own
sampling. A good metric orders them as a person would.
"""

import sys
import time
from pathlib import Path

import torch
import torchvision.transforms.functional as TF
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from gan_cli import build, checkpoint
from gan_cli.commands import eval as gan_eval
from gan_cli.data.source import to_unit_range
from gan_cli.latent import generate
from gan_cli.metrics import evaluator, features
from gan_cli.paths import config_dir

SHOWN = ["fd_mnist_cnn", "kid_mnist_cnn", "precision_mnist_cnn", "recall_mnist_cnn", "density_mnist_cnn",
         "coverage_mnist_cnn", "classes_covered", "class_kl", "confident_share"]


def main() -> None:
    args = sys.argv[1:]
    n = int(args.pop(0).split("=")[1]) if args and args[0].startswith("n=") else 5000
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        train_cfg = compose("train", ["data=mnist"])
        cfg = compose("eval", ["n=10000", "kid_subset_size=1000"])
    data = build.data(train_cfg)
    domain = features.ClassifierFeatures(data.name, build.classifier(train_cfg, data))
    test_cfg = train_cfg.data.copy()
    test_cfg.split = "test"
    test = build.data(OmegaConf.create({"data": test_cfg}))
    g = torch.Generator().manual_seed(1)
    real = to_unit_range(test.samples[torch.randperm(len(test), generator=g)[:n]])
    reference = set(torch.randperm(len(data), generator=torch.Generator().manual_seed(0))[:10000].tolist())
    threes = [i for i in (data.labels == 3).nonzero().flatten().tolist() if i not in reference][:n]
    sets = {
        "test images": real,
        "test + noise 0.1": (real + 0.1 * torch.randn(real.shape, generator=g)).clamp(-1, 1),
        "test + noise 0.3": (real + 0.3 * torch.randn(real.shape, generator=g)).clamp(-1, 1),
        "test, blurred (sigma 1)": TF.gaussian_blur(real, kernel_size=7, sigma=1.0),
        "test, blurred (sigma 2)": TF.gaussian_blur(real, kernel_size=9, sigma=2.0),
        f"one class (3s, {len(threes)})": to_unit_range(data.samples[threes]),
        "uniform noise": torch.rand(real.shape, generator=g) * 2 - 1,
    }
    for path in args:
        saved = checkpoint.Saved.load(path)
        sets[f"{Path(path).parent.parent.name}/{Path(path).name} (step {saved.step})"] = generate(
            saved.generator(torch.device("cpu")), n, 0, 500, torch.device("cpu"))
    cache = evaluator.default_cache(train_cfg)
    print(f"reference: 10,000 MNIST training images; each set {n} images; features: mnist_cnn "
          f"(test accuracy {100 * domain.net.test_accuracy:.2f}%)")
    print("| set | " + " | ".join(SHOWN) + " | s |")
    print("|---" * (len(SHOWN) + 2) + "|")
    for name, images in sets.items():
        t = time.monotonic()
        m = evaluator.measure(gan_eval.settings(cfg), domain, data, images, SHOWN, torch.device("cpu"), cache)
        cells = [f"{m[k]:.3g}" if isinstance(m[k], float) else str(m[k]) for k in SHOWN]
        print(f"| {name} | " + " | ".join(cells) + f" | {time.monotonic() - t:.1f} |", flush=True)


if __name__ == "__main__":
    main()
