"""The common tutorial DCGAN (TensorFlow's DCGAN tutorial, ported to PyTorch) trained for a wall-clock
budget on MNIST, and judged by the same cached MNIST classifier as bench/sample_quality.py.

    python bench/tutorial_baseline.py [--minutes 5] [--batch 64] [--lr 2e-4]

The baseline that issue 2 measures the default `gan train` against: G = Dense(7*7*256) -> ConvT 128
(5x5, stride 1) -> ConvT 64 (stride 2) -> ConvT 1 (stride 2), BatchNorm and LeakyReLU; D = Conv 64 ->
Conv 128 (5x5, stride 2, LeakyReLU, dropout 0.3) -> Dense 1; Adam(lr, beta1 0.5).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from gan_cli.data.source import to_unit_range
from gan_cli.data.torchvision_sets import load
from gan_cli.latent import seeded_z
from gan_cli.metrics import classifier


def tutorial_models():
    G = nn.Sequential(
        nn.Linear(100, 7 * 7 * 256, bias=False), nn.BatchNorm1d(7 * 7 * 256), nn.LeakyReLU(0.3),
        nn.Unflatten(1, (256, 7, 7)),
        nn.ConvTranspose2d(256, 128, 5, 1, 2, bias=False), nn.BatchNorm2d(128), nn.LeakyReLU(0.3),
        nn.ConvTranspose2d(128, 64, 5, 2, 2, output_padding=1, bias=False), nn.BatchNorm2d(64), nn.LeakyReLU(0.3),
        nn.ConvTranspose2d(64, 1, 5, 2, 2, output_padding=1, bias=False), nn.Tanh())
    D = nn.Sequential(
        nn.Conv2d(1, 64, 5, 2, 2), nn.LeakyReLU(0.3), nn.Dropout(0.3),
        nn.Conv2d(64, 128, 5, 2, 2), nn.LeakyReLU(0.3), nn.Dropout(0.3),
        nn.Flatten(), nn.Linear(128 * 7 * 7, 1))
    return G, D


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=5.0)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--root", default="data")
    a = p.parse_args()
    torch.manual_seed(0)
    train = load("MNIST", a.root)
    test = load("MNIST", a.root, split="test")
    G, D = tutorial_models()
    opt_g = torch.optim.Adam(G.parameters(), a.lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), a.lr, betas=(0.5, 0.999))
    images, steps, deadline = train.samples, 0, time.monotonic() + 60 * a.minutes
    while time.monotonic() < deadline:
        real = to_unit_range(images[torch.randint(len(images), (a.batch,))])
        fake = G(torch.randn(a.batch, 100))
        loss_d = F.softplus(-D(real)).mean() + F.softplus(D(fake.detach())).mean()
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        loss_g = F.softplus(-D(fake)).mean()
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        steps += 1
    G.eval()
    net = classifier.cached("mnist", train, test, Path(a.root) / "classifiers")
    with torch.no_grad():
        fake = torch.cat([G(z) for z in seeded_z(2000, 100, 12345).split(500)])
    r = classifier.class_report(net, fake, 10)
    print(f"tutorial DCGAN, {a.minutes} min on the CPU: {steps} steps of batch {a.batch}")
    print(f"  {r['classes_covered']}/10 classes covered by confident samples, "
          f"{100 * r['confident_share']:.1f}% confidently recognised, confident per class {r['confident_counts']}")


if __name__ == "__main__":
    main()
