"""The runner's training step against the same step written as a bare PyTorch loop, same device, one run,
eager and compiled (train.compile), in fp32 and bf16.

    python bench/step_overhead.py                  # make bench: about 2 minutes on 2 cores
    python bench/step_overhead.py --steps 200 --rounds 5 --layouts NCHW channels_last   # the long settings
    python bench/step_overhead.py --variants eager-fp32 compiled-fp32 [--device cpu] [--width 64] [--batch 64]

Both sides run the same algorithm (Goodfellow et al. 2014, Algorithm 1 with k = 1): a D update on a real
batch and G(z) with fresh z, then a G update with fresh z and D frozen, Adam(2e-4, 0.5, 0.999), the
same DCGAN, the same in-memory uint8 data. The runner's side is the real loop.fit (statistics
accumulated on the device and read every 50 steps, NaN watch, TensorBoard, progress bar); its own
img/s excludes the time spent writing sample grids and checkpoints. The bare side has none of that.
Rounds alternate between the two so that drifts of the machine hit both alike. A compiled variant compiles
G and D as train.compile does (gan_cli/compiling.py) on both sides; its first call, which compiles, is
timed apart and printed as the compile time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from gan_cli import compiling
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


def models(side: int, width: int, device: torch.device, channels_last: bool, compiled: bool = False):
    torch.manual_seed(0)
    layout = torch.channels_last if channels_last else torch.preserve_format
    G = Generator(100, (1, side, side), width).to(device, memory_format=layout)
    D = Discriminator((1, side, side), width).to(device, memory_format=layout)
    if compiled:
        compiling.check_compiler(device)
        G.compile()
        D.compile()
    adam = lambda net: torch.optim.Adam(net.parameters(), lr=2e-4, betas=(0.5, 0.999))  # noqa: E731
    return G, D, adam(G), adam(D)


def bare(data, steps: int, batch: int, side: int, width: int, device: torch.device, channels_last: bool,
         precision: torch.dtype | None, compiled: bool) -> tuple[float, float]:
    """(img/s, seconds of the 10 warm-up steps: where a compiled variant compiles)."""
    G, D, opt_g, opt_d = models(side, width, device, channels_last, compiled)
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

    t = time.perf_counter()
    for i in range(10):  # warm-up
        step(i)
    _sync(device)
    warm_up = time.perf_counter() - t
    t = time.perf_counter()
    for i in range(steps):
        step(i)
    _sync(device)
    return steps * batch / (time.perf_counter() - t), warm_up


def runner(data, steps: int, batch: int, side: int, width: int, device: torch.device, channels_last: bool,
           precision: torch.dtype | None, compiled: bool) -> tuple[float, float]:
    """(img/s, seconds of the first log interval: where a compiled variant compiles)."""
    G, D, opt_g, opt_d = models(side, width, device, channels_last)
    gan = GAN({"G": G, "D": D}, {"G": opt_g, "D": opt_d}, NonSaturating())
    if compiled:
        compiling.compile_networks(gan, device)  # as train.compile=true does
    with tempfile.TemporaryDirectory() as tmp:
        run = Run(gan, data, Schedule(steps=steps + 50, batch_size=batch, precision=precision), Path(tmp), device,
                  seed=0, fixed=Latents(seeded_z(64, 100, 0)), config={})
        # the default callbacks but pictures and checkpoints, which the bare loop does not have
        fit(run, [TimeBudget(), Scalars(every=50), Evaluation(), Watch(), HParams()])
        rows = [json.loads(line) for line in (Path(tmp) / "metrics.jsonl").read_text().splitlines()]
    first = rows[0]["perf/img_per_s"]
    return statistics.median(r["perf/img_per_s"] for r in rows[1:]), 50 * batch / first  # the first is warm-up


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


VARIANTS = {"eager-fp32": (False, None), "eager-bf16": (False, torch.bfloat16),
            "compiled-fp32": (True, None), "compiled-bf16": (True, torch.bfloat16)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--width", type=int, default=32, help="32: gan train's default DCGAN; the paper's is 64")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--side", type=int, default=28)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS),
                   help="eager or compiled (train.compile), fp32 or bf16 (train.precision)")
    p.add_argument("--layouts", nargs="+", choices=["NCHW", "channels_last"], default=["channels_last"],
                   help="channels_last is the runner's default (train.channels_last); give both to compare them")
    p.add_argument("--warm-cache", action="store_true",
                   help="keep Inductor's compiled kernels from earlier runs (a user's second run); by default a "
                        "fresh cache, so that the first compiled variant's first steps show a first run's compiling")
    a = p.parse_args()
    if not a.warm_cache:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="inductor-")
    device = torch.device(a.device)
    data = random_images(n=4096, channels=1, resolution=a.side)
    sides = {"bare": bare, "runner": runner}
    results = {(v, s, lay): [] for v in a.variants for s in sides for lay in a.layouts}
    warm = {}
    for _ in range(a.rounds):
        for (variant, side, lay), values in results.items():
            compiled, precision = VARIANTS[variant]
            speed, warm_up = sides[side](data, a.steps, a.batch, a.side, a.width, device, lay == "channels_last",
                                         precision, compiled)
            values.append(speed)
            warm.setdefault((variant, side, lay), warm_up)  # the first round's: compiling happens once a process
    print(f"DCGAN {a.side}x{a.side}, width {a.width}, batch {a.batch}, {a.steps} steps x {a.rounds} rounds on "
          f"{device} (torch {torch.__version__}, {torch.get_num_threads()} threads)")
    # Other work on the machine only ever slows a round down, so the best round is the estimate of
    # what the code costs (as timeit does); the rounds are printed to show the spread.
    best = {k: max(v) for k, v in results.items()}
    for (variant, side, lay), values in results.items():
        print(f"  {variant:<13} {side:>6} {lay:<13}: best {best[variant, side, lay]:6.0f} img/s, median "
              f"{statistics.median(values):6.0f}  (rounds: {', '.join(f'{v:.0f}' for v in values)}); "
              f"warm-up {warm[variant, side, lay]:.1f} s")
    base = a.variants[0]
    print("summary (runner against the bare loop; speed against the first variant, the runner's):")
    for variant in a.variants:
        for lay in a.layouts:
            b, r = best[variant, "bare", lay], best[variant, "runner", lay]
            print(f"  {variant:<13} {lay:<13}: runner overhead {100 * (b / r - 1):+5.1f}% time per step, "
                  f"{r:6.0f} img/s, {r / best[base, 'runner', lay]:.2f}x {base}, first 10 steps "
                  f"{warm[variant, 'bare', lay]:.1f} s")  # the bare side runs first: it pays the compiling
    if len(a.layouts) == 2:
        for variant in a.variants:
            print(f"  {variant} channels_last / NCHW, runner: "
                  f"{best[variant, 'runner', 'channels_last'] / best[variant, 'runner', 'NCHW']:.2f}x")


if __name__ == "__main__":
    main()
