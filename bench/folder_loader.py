"""data=folder's loader alone against the training step: streamed with Pillow, the cache's first pass, and
an epoch from the cache, on MNIST written out as PNGs and on 64 px JPEGs.

    python bench/folder_loader.py [--n 60000] [--n-jpeg 10000] [--workers 2] [--workdir DIR] [--steps 30]
    python bench/folder_loader.py --n 2000 --n-jpeg 1000 --steps 10        # a quick check, under a minute
    python bench/folder_loader.py --fed-steps 50                            # and the real loop fed by each source

Two folders, written into --workdir (default: a temporary folder, removed at the end; a given one keeps
its folders for the next run):
- mnist_png: the first --n MNIST training digits (from data/, `make data`) as 28x28 grey PNGs, read with
  data.channels=1 at 64 px (resized up, as data=folder resizes);
- jpeg64: --n-jpeg 64x64 RGB JPEGs (quality 90): MNIST digits upsampled to 64 px and tinted, the digit in
  one random colour over a background of another, so every picture has colour and real edges.
For each folder, img/s of:
  (a) one epoch streamed (data.cache=false): Pillow in --workers DataLoader processes, as before the cache;
  (b) the cache's first pass: every file decoded once (torchvision's decoders) in --workers processes and
      written to disk; (b') the same with Pillow only, to show what torchvision's decoders add;
  (c) one epoch from the cache (the better of two): TensorData's batches from the memory-mapped array, as
      training reads them;
  (d) the default DCGAN's training step (width 32, batch 64) at 64 px on this device, alone
      (bench/step_overhead.bare; its models are grey, the RGB folder's D and G differ in one layer each).
With --fed-steps N, then, on the grey folder, the real training loop fed by each source for N + 50 steps
(bench/step_overhead.runner; minutes at 64 px on a CPU): the streaming path's workers share the cores with
the step, which the loader's own img/s does not show.
Other work on the machine slows every figure, the more so torch's two-thread operations: run it alone.
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/step_overhead, run from anywhere
import step_overhead  # noqa: E402

from gan_cli.data import folder, folder_cache  # noqa: E402
from gan_cli.data.fake import random_images  # noqa: E402
from gan_cli.files import fresh_dir  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SIDE, BATCH, WIDTH = 64, 64, 32  # the default data.resolution, train.batch_size and DCGAN width


def mnist_digits(n: int) -> np.ndarray:
    import torchvision

    root = Path(os.environ.get("GAN_DATA_ROOT", REPO / "data"))
    return torchvision.datasets.MNIST(str(root), train=True, download=False).data[:n].numpy()


def _write_pngs(args) -> None:
    from PIL import Image

    out, first, digits = args
    for i, a in enumerate(digits, first):
        Image.fromarray(a).save(out / f"{i // 1000:02d}" / f"{i:05d}.png")


def upsampled(digits: np.ndarray) -> np.ndarray:
    """MNIST digits at SIDE px, float in [0, 1] (here, not in the writers: a process forked after torch's
    thread pool ran can hang in it)."""
    x = torch.from_numpy(digits)[:, None].float()
    return torch.nn.functional.interpolate(x, size=(SIDE, SIDE), mode="bilinear", antialias=True,
                                           align_corners=False)[:, 0].div_(255).clamp_(0, 1).numpy()


def _write_jpegs(args) -> None:
    from PIL import Image

    out, first, digits = args
    rng = np.random.default_rng(first)
    for i, a in enumerate(digits, first):
        fg, bg = rng.integers(0, 256, (2, 3))
        rgb = bg * (1 - a[..., None]) + fg * a[..., None]
        Image.fromarray(np.clip(rgb.round(), 0, 255).astype(np.uint8)).save(out / f"{i // 1000:02d}" / f"{i:05d}.jpg",
                                                                            quality=90)


def write_folder(out: Path, digits: np.ndarray, writer, workers: int) -> Path:
    """The folder of pictures, written once (in subfolders of 1000) and kept while it holds them all."""
    done = out / f".complete-{len(digits)}"
    if done.is_file():
        return out
    if out.exists():
        shutil.rmtree(out)
    for k in range(0, len(digits), 1000):
        (out / f"{k // 1000:02d}").mkdir(parents=True)
    tasks = [(out, k, digits[k:k + 1000]) for k in range(0, len(digits), 1000)]
    started = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(max(1, workers)) as pool:
        pool.map(writer, tasks)
    done.touch()
    print(f"  wrote {len(digits)} files into {out} in {time.perf_counter() - started:.0f} s", flush=True)
    return out


def epoch(data) -> tuple[float, float]:
    """(img/s, seconds) of one epoch of data.batches on the CPU, the images made float as training gets them."""
    per_epoch = len(data) // BATCH
    started = time.perf_counter()
    for batch in itertools.islice(data.batches(BATCH, torch.device("cpu"), seed=0), per_epoch):
        assert batch.images.dtype == torch.float32
    seconds = time.perf_counter() - started
    return per_epoch * BATCH / seconds, seconds


def first_pass(root: Path, cache: Path, channels: int, workers: int, pillow_only: bool = False):
    """(img/s, seconds, the source) of building the cache of root in a fresh folder."""
    fresh_dir(cache, "folder_loader")
    fast = folder_cache.fast
    if pillow_only:
        folder_cache.fast = lambda im, channels: False
    try:
        started = time.perf_counter()
        data = folder.load(str(root), SIDE, channels, workers, cache=True, cache_dir=str(cache))
        seconds = time.perf_counter() - started
    finally:
        folder_cache.fast = fast
    return len(data) / seconds, seconds, data


def measure(name: str, root: Path, channels: int, workers: int, workdir: Path, step: float, fed_steps: int) -> None:
    n = len(folder.image_files(str(root), SIDE, channels, workers))
    print(f"{name}: {n} files -> {channels}x{SIDE}x{SIDE}", flush=True)
    streamed = folder.load(str(root), SIDE, channels, workers, cache=False)
    a, a_s = epoch(streamed)
    print(f"  (a)  epoch streamed (Pillow, {workers} workers):     {a:8.0f} img/s ({a_s:.1f} s)", flush=True)
    b2, b2_s, _ = first_pass(root, workdir / "cache", channels, workers, pillow_only=True)
    print(f"  (b') first pass into the cache, Pillow only:   {b2:8.0f} img/s ({b2_s:.1f} s)", flush=True)
    b, b_s, _ = first_pass(root, workdir / "cache", channels, workers)
    print(f"  (b)  first pass into the cache (torchvision):  {b:8.0f} img/s ({b_s:.1f} s)", flush=True)
    started = time.perf_counter()
    cached = folder.load(str(root), SIDE, channels, workers, cache=True, cache_dir=str(workdir / "cache"))
    load_s = time.perf_counter() - started
    c, c_s = max(epoch(cached) for _ in range(2))  # the first also reads the pages: best of two, as timeit
    print(f"  (c)  epoch from the cache, best of 2:          {c:8.0f} img/s ({c_s:.2f} s; finding and "
          f"mapping the cache {load_s:.2f} s)", flush=True)
    print(f"  (d)  DCGAN step alone:                         {step:8.0f} img/s", flush=True)
    print(f"  cache epoch / streamed epoch: {c / a:.0f}x; first pass / streamed epoch: {b / a:.2f}x; "
          f"torchvision / Pillow first pass: {b / b2:.2f}x", flush=True)
    print(f"  loader / step: streamed {a / step:.2f}x, first pass {b / step:.2f}x, cache {c / step:.0f}x", flush=True)
    if fed_steps and channels == 1:
        memory = random_images(n=len(cached), channels=1, resolution=SIDE)
        cpu = torch.device("cpu")
        fed = {label: eager(step_overhead.runner, source, fed_steps, BATCH, SIDE, WIDTH, cpu, False, None)
               for label, source in [("in memory", memory), ("streamed", streamed), ("cache", cached)]}
        print(f"  training loop fed by each source ({fed_steps} + 50 steps, median img/s): "
              + ", ".join(f"{k} {v:.0f}" for k, v in fed.items()), flush=True)


def eager(fn, *args) -> float:
    """img/s of step_overhead's bare or runner, eager and fp32, whether it takes `compiled` and returns
    (img/s, warm-up seconds), or neither (as before train.compile)."""
    import inspect

    out = fn(*args, compiled=False) if "compiled" in inspect.signature(fn).parameters else fn(*args)
    return out[0] if isinstance(out, tuple) else out


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=60_000, help="MNIST digits written as PNGs (at most 60000)")
    p.add_argument("--n-jpeg", type=int, default=10_000, help="64 px RGB JPEGs (at most 60000)")
    p.add_argument("--workers", type=int, default=2, help="data.num_workers: decoding processes")
    p.add_argument("--workdir", type=Path, help="where the folders and caches go (default: a temporary folder)")
    p.add_argument("--steps", type=int, default=30, help="timed DCGAN steps for (d)")
    p.add_argument("--fed-steps", type=int, default=0,
                   help="timed steps (at least 50) of the training loop fed by each source; 0 skips it")
    a = p.parse_args()
    workdir = a.workdir or Path(tempfile.mkdtemp(prefix="folder_loader-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"{cpu_name()}, {os.cpu_count()} cores; torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"batch {BATCH}, {SIDE} px, {a.workers} workers; {workdir}", flush=True)
    try:
        digits = mnist_digits(max(a.n, a.n_jpeg))
        png = write_folder(workdir / "mnist_png", digits[:a.n], _write_pngs, a.workers)
        jpg = workdir / "jpeg64"
        if not (jpg / f".complete-{a.n_jpeg}").is_file():
            write_folder(jpg, upsampled(digits[:a.n_jpeg]), _write_jpegs, a.workers)
        step = eager(step_overhead.bare, random_images(n=4096, channels=1, resolution=SIDE), a.steps, BATCH, SIDE,
                     WIDTH, torch.device("cpu"), False, None)
        measure("mnist_png", png, 1, a.workers, workdir, step, a.fed_steps)
        measure("jpeg64", jpg, 3, a.workers, workdir, step, a.fed_steps)
    finally:
        if a.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            shutil.rmtree(workdir / "cache", ignore_errors=True)


if __name__ == "__main__":
    main()
