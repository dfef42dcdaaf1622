"""The runner's training step against the same step written as a bare PyTorch loop, same device, one run.

    python bench/step_overhead.py [--device cpu] [--width 64] [--batch 64] [--side 28] [--steps 200] [--precision bf16]

Both sides run the same algorithm (Goodfellow et al. 2014, Algorithm 1 with k = 1): a D update on a real
batch and G(z) with fresh z, then a G update with fresh z and D frozen, Adam(2e-4, 0.5, 0.999), the
same DCGAN, the same in-memory uint8 data. The runner's side is the real loop.fit (statistics
accumulated on the device and read every 50 steps, NaN watch, TensorBoard, progress bar); its own
img/s excludes the time spent writing sample grids and checkpoints. The bare side has none of that.
Rounds alternate between the two so that drifts of the machine hit both alike.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from gan_cli.data.fake import random_images
from gan_cli.data.source import to_unit_range
from gan_cli.latent import Latents, seeded_z
from gan_cli.algorithms.gan import GAN
from gan_cli.callbacks.budget import TimeBudget
from gan_cli.callbacks.evaluation import Evaluation
from gan_cli.callbacks.hparams import HParams
from gan_cli.callbacks.scalars import Scalars
from gan_cli.callbacks.watch import Watch
from gan_cli.loop import Run, Schedule, fit
from gan_cli.losses import NonSaturating
from gan_cli.models.dcgan import Discriminator, Generator


def models(side: int, width: int, device: torch.device, channels_last: bool):
    torch.manual_seed(0)
    layout = torch.channels_last if channels_last else torch.preserve_format
    G = Generator(100, (1, side, side), width).to(device, memory_format=layout)
    D = Discriminator((1, side, side), width).to(device, memory_format=layout)
    adam = lambda net: torch.optim.Adam(net.parameters(), lr=2e-4, betas=(0.5, 0.999))  # noqa: E731
    return G, D, adam(G), adam(D)


def bare(data, steps: int, batch: int, side: int, width: int, device: torch.device, channels_last: bool,
         precision: torch.dtype | None) -> float:
    G, D, opt_g, opt_d = models(side, width, device, channels_last)
    images = data.samples.to(device)
    per_epoch = len(images) // batch
    order = torch.randperm(len(images), device=device)

    def step(i: int) -> None:
        k = i % per_epoch
        real = to_unit_range(images[order[k * batch:(k + 1) * batch]])
        with torch.autocast(device.type, dtype=precision, enabled=precision is not None):
            with torch.no_grad():
                fake = G(torch.randn(batch, 100, device=device))
            loss_d = F.softplus(-D(real)).mean() + F.softplus(D(fake)).mean()
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        D.requires_grad_(False)
        with torch.autocast(device.type, dtype=precision, enabled=precision is not None):
            loss_g = F.softplus(-D(G(torch.randn(batch, 100, device=device)))).mean()
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        D.requires_grad_(True)
        opt_g.step()

    for i in range(10):  # warm-up
        step(i)
    _sync(device)
    t = time.perf_counter()
    for i in range(steps):
        step(i)
    _sync(device)
    return steps * batch / (time.perf_counter() - t)


def runner(data, steps: int, batch: int, side: int, width: int, device: torch.device, channels_last: bool,
           precision: torch.dtype | None) -> float:
    G, D, opt_g, opt_d = models(side, width, device, channels_last)
    gan = GAN({"G": G, "D": D}, {"G": opt_g, "D": opt_d}, NonSaturating())
    with tempfile.TemporaryDirectory() as tmp:
        run = Run(gan, data, Schedule(steps=steps + 50, batch_size=batch, precision=precision), Path(tmp), device,
                  seed=0, fixed=Latents(seeded_z(64, 100, 0)), config={})
        # the default callbacks but pictures and checkpoints, which the bare loop does not have
        fit(run, [TimeBudget(), Scalars(every=50), Evaluation(), Watch(), HParams()])
        rows = [json.loads(line) for line in (Path(tmp) / "metrics.jsonl").read_text().splitlines()]
    return statistics.median(r["perf/img_per_s"] for r in rows[1:])  # the first interval is warm-up


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--side", type=int, default=28)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--precision", nargs="+", choices=["fp32", "bf16"], default=["fp32"],
                   help="bf16: forward passes under autocast; give both to compare them in one run")
    a = p.parse_args()
    device = torch.device(a.device)
    data = random_images(n=4096, channels=1, resolution=a.side)
    sides = {"bare": bare, "runner": runner}
    layouts = {"NCHW": False, "channels_last": True}
    dtypes = {"fp32": None, "bf16": torch.bfloat16}
    results = {(s, lay, prec): [] for prec in a.precision for s in sides for lay in layouts}
    for _ in range(a.rounds):
        for (side, lay, prec), values in results.items():
            values.append(sides[side](data, a.steps, a.batch, a.side, a.width, device, layouts[lay], dtypes[prec]))
    print(f"DCGAN {a.side}x{a.side}, width {a.width}, batch {a.batch}, {a.steps} steps x {a.rounds} rounds on "
          f"{device} (torch {torch.__version__}, {torch.get_num_threads()} threads)")
    # Other work on the machine only ever slows a round down, so the best round is the estimate of
    # what the code costs (as timeit does); the rounds are printed to show the spread.
    best = {k: max(v) for k, v in results.items()}
    for (side, lay, prec), values in results.items():
        print(f"  {prec} {side:>6} {lay:<13}: best {best[side, lay, prec]:6.0f} img/s, median "
              f"{statistics.median(values):6.0f}  (rounds: {', '.join(f'{v:.0f}' for v in values)})")
    for prec in a.precision:
        for lay in layouts:
            b, r = best["bare", lay, prec], best["runner", lay, prec]
            print(f"  {prec} {lay}: runner / bare {r / b:.3f} (overhead {100 * (b / r - 1):+.1f}% time per step)")
        print(f"  {prec} channels_last / NCHW, runner: "
              f"{best['runner', 'channels_last', prec] / best['runner', 'NCHW', prec]:.2f}x")
    if len(a.precision) == 2:
        for lay in layouts:
            print(f"  runner {lay}: bf16 / fp32 {best['runner', lay, 'bf16'] / best['runner', lay, 'fp32']:.2f}x")


if __name__ == "__main__":
    main()
