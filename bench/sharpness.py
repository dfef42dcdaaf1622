"""How sharp a checkpoint's samples are, against real images of its data: the course's claim is that a VAE's
samples are blurrier than a GAN's, and `gan eval`'s distances do not say sharpness apart from the rest.

    python bench/sharpness.py [n=2000] checkpoint.pt [checkpoint.pt ...]

Two measures per image, on pixels in [0, 1], averaged over n samples (seed 0, the same z as `gan eval`'s) and
over n test images of the checkpoint's data: the variance of the Laplacian (Pech-Pacheco et al. 2000, the
usual focus measure) and the mean gradient magnitude (Sobel). Each is also given as a share of the real
images' value: 1 is as sharp as real data, under 1 blurrier.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from gan_cli import build, checkpoint
from gan_cli.latent import generate

LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])
SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]) / 8


def _filtered(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Each channel of (N, C, H, W) images in [-1, 1] as [0, 1] pixels, through a 3x3 kernel (valid part)."""
    pixels = (x.float() + 1) / 2
    c = pixels.shape[1]
    return F.conv2d(pixels, kernel.expand(c, 1, 3, 3), groups=c)


def laplacian_variance(x: torch.Tensor) -> float:
    return float(_filtered(x, LAPLACIAN).flatten(1).var(dim=1).mean())


def gradient_magnitude(x: torch.Tensor) -> float:
    gx, gy = _filtered(x, SOBEL_X), _filtered(x, SOBEL_X.T)
    return float((gx.pow(2) + gy.pow(2)).sqrt().flatten(1).mean(dim=1).mean())


def main() -> None:
    args = sys.argv[1:]
    n = int(args.pop(0).split("=")[1]) if args and args[0].startswith("n=") else 2000
    rows, real_done = [], set()
    for path in args:
        saved = checkpoint.Saved.load(path)
        cfg = OmegaConf.create(saved.config)
        data = build.data(cfg)
        name = data.name
        if name not in real_done:
            test = build.split(cfg, "test") if "split" in cfg.data else data
            real = test.draw(min(n, len(test)), 1)
            reference = (laplacian_variance(real), gradient_magnitude(real))
            rows.append((f"{name} test images", *reference, 1.0, 1.0))
            real_done.add(name)
        fake = generate(saved.generator(torch.device("cpu")), n, 0, 500, torch.device("cpu"))
        lap, grad = laplacian_variance(fake), gradient_magnitude(fake)
        rows.append((f"{Path(path).parent.parent.name} (step {saved.step})", lap, grad, lap / reference[0],
                     grad / reference[1]))
    print(f"{n} images each; pixels in [0, 1]")
    print(f"| {'set':40s} | Laplacian variance | gradient magnitude | Laplacian / real | gradient / real |")
    print("|---|---|---|---|---|")
    for label, lap, grad, lap_share, grad_share in rows:
        print(f"| {label:40s} | {lap:.4f} | {grad:.4f} | {lap_share:.2f} | {grad_share:.2f} |")


if __name__ == "__main__":
    main()
