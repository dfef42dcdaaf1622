"""Draw LAPGAN's cascade for a few samples (Denton et al. 2015, figure 3): one row per sample; for each
level, coarse to fine, the low-pass image it starts from, the high-pass image its G adds, and their sum.
The coarsest level has only its generated image. Every tile is shown at the data's resolution (pixels
repeated); high-pass tiles are stretched to their row's largest absolute value, grey being 0. The
README's LAPGAN figures come from it.

    python docs/lapgan_pyramid.py OUT.png CKPT [--n 4] [--seed 0] [--zoom 4]
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from gan_cli import checkpoint, visuals
from gan_cli.latent import seeded_z


def main(argv: list[str] | None = None) -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("out")
    args.add_argument("checkpoint")
    args.add_argument("--n", type=int, default=4, help="samples, one row each")
    args.add_argument("--seed", type=int, default=0)
    args.add_argument("--zoom", type=int, default=4, help="pixel repeat, so that a browser's smoothing hides no detail")
    a = args.parse_args(argv)
    G = checkpoint.Saved.load(a.checkpoint).generator(torch.device("cpu"))
    side = G.sides[0]
    with torch.no_grad():
        steps = G.cascade(seeded_z(a.n, G.z_dim, a.seed))

    def shown(x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, size=(side * a.zoom,) * 2, mode="nearest")

    columns = [shown(steps[0][2])]  # the coarsest image
    for low, high, image in steps[1:]:
        stretch = high.flatten(1).abs().amax(dim=1).clamp_min(1e-8)[:, None, None, None]
        columns += [shown(low), shown(high / stretch), shown(image)]
    tiles = torch.stack(columns, dim=1).flatten(0, 1)
    path = visuals.save_png(visuals.image_grid(tiles, nrow=len(columns)), a.out)
    print(f"{a.n} samples x {len(G.sides)} levels ({' -> '.join(f'{s}px' for s in reversed(G.sides))}) -> {path}")


if __name__ == "__main__":
    main()
