"""StyleGAN2's modulated convolution two ways, on this machine: a grouped conv with each sample's own
modulated, demodulated weights (the paper code's fused path), against scaling the input's channels, one
shared conv, and scaling the output's (its unfused path, which gan_cli/models/stylegan2.py uses). Prints
the seconds of one training step (D's and G's updates' forward and backward, non-saturating loss) of
experiment=stylegan2_fashion32's networks with each, and their ratio.

    python bench/stylegan2_modconv.py [--batch 64] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time
from unittest import mock

import torch
import torch.nn.functional as F

from gan_cli.losses import NonSaturating
from gan_cli.models import stylegan2


def grouped(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, demodulate: bool = True) -> torch.Tensor:
    n, c_in, h, w = x.shape
    c_out, _, k, _ = weight.shape
    wt = weight[None] * styles[:, None, :, None, None]  # (N, O, I, k, k)
    if demodulate:
        wt = wt * torch.rsqrt(wt.square().sum(dim=(2, 3, 4), keepdim=True) + 1e-8)
    out = F.conv2d(x.reshape(1, n * c_in, h, w), wt.reshape(n * c_out, c_in, k, k), padding=k // 2, groups=n)
    return out.reshape(n, c_out, h, w)


def step_seconds(batch: int, repeats: int) -> float:
    torch.manual_seed(0)
    shape = (1, 32, 32)
    G = stylegan2.Generator(64, shape, mapping_layers=2).to(memory_format=torch.channels_last)
    D = stylegan2.Discriminator(shape).to(memory_format=torch.channels_last)
    z, x, loss = torch.randn(batch, 64), torch.randn(batch, *shape), NonSaturating()

    def step():
        loss.d_loss(D, x, G(z).detach())[0].backward()
        loss.g_loss(D, G(z))[0].backward()

    step()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    return (time.perf_counter() - start) / repeats


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    unfused = step_seconds(args.batch, args.repeats)
    with mock.patch.object(stylegan2, "modulated_conv2d", grouped):
        fused = step_seconds(args.batch, args.repeats)
    print(f"stylegan2 training step, batch {args.batch}, {torch.get_num_threads()} threads: grouped conv "
          f"{fused:.3f} s, unfused {unfused:.3f} s, {fused / unfused:.2f}x")


if __name__ == "__main__":
    main()
