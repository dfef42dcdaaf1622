"""Draw a side-by-side of translation checkpoints on the same held-out test inputs: one row per input,
columns input | each checkpoint's output | target (pix2pix, SRGAN), or input | G(x) | F(G(x)) per checkpoint
(CycleGAN, both ways). An input smaller than its target (super-resolution) is shown upsampled to the target's
size by plain bicubic interpolation: bicubic | SRResNet | SRGAN | original, given an SRResNet checkpoint
(algorithm.pretrain_steps >= train.steps, or the pretraining's last checkpoint) and an SRGAN one. The
README's pix2pix, CycleGAN and SRGAN figures come from it.

    python docs/translation_grid.py OUT.png CKPT [CKPT ...] [--n 8] [--zoom 4]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from omegaconf import OmegaConf

from gan_cli import build, checkpoint, visuals
from gan_cli.algorithms.translation import translate_all
from gan_cli.commands.translate import translator_names
from gan_cli.data.super_resolution import upsample


def main(argv: list[str] | None = None) -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("out")
    args.add_argument("checkpoints", nargs="+")
    args.add_argument("--n", type=int, default=8, help="test inputs, one row each")
    args.add_argument("--zoom", type=int, default=4, help="pixel repeat, so that a browser's smoothing hides no detail")
    a = args.parse_args(argv)
    cpu = torch.device("cpu")
    saved = [checkpoint.Saved.load(p) for p in a.checkpoints]
    test = build.split(OmegaConf.create(saved[0].config), "test")
    torch.manual_seed(0)  # pix2pix's dropout is noise at test time too
    if test.paired:
        x, y, _ = test.pairs(a.n)
        columns = [upsample(x, y.shape[-2:]), *[translate_all(s.generator(cpu), x, a.n, cpu) for s in saved], y]
    else:
        (x, _), (b, _) = test.sides(a.n)
        columns = []
        for source, there, back in ((x, "AtoB", "BtoA"), (b, "BtoA", "AtoB")):
            columns.append(source)
            for s in saved:
                names = translator_names(s)
                forth = translate_all(s.generator(cpu, name=names[there]), source, a.n, cpu)
                columns += [forth, translate_all(s.generator(cpu, name=names[back]), forth, a.n, cpu)]
    rows = [[c[i] for c in columns] for i in range(len(columns[0]))]
    grid = visuals.tile_rows(rows)
    grid = grid.repeat_interleave(a.zoom, dim=1).repeat_interleave(a.zoom, dim=2)
    print(visuals.save_png(grid, Path(a.out)))


if __name__ == "__main__":
    main()
