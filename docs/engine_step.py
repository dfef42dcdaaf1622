"""Draw docs/img/engine_step.png: one batch through one training step of a real checkpoint, as the
engine runs it (the data source's Batch, the algorithm's phases, the statistics the callbacks read).

    python docs/engine_step.py outputs/train/<date>/<time>/checkpoints/last.pt [docs/img/engine_step.png]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from gan_cli import build, checkpoint, visuals  # noqa: E402
from gan_cli.latent import seeded_latents  # noqa: E402
from gan_cli.loop import Run, Schedule  # noqa: E402

N = 8  # samples shown


def main(path: str, out: str = "docs/img/engine_step.png") -> None:
    state = checkpoint.load(path)
    cfg = OmegaConf.create(state["config"])
    cpu = torch.device("cpu")
    parts = build.parts(cfg, cpu)
    algorithm = build.algorithm(cfg, parts)
    with tempfile.TemporaryDirectory() as tmp:
        run = Run(algorithm, parts.data, Schedule(1, N), Path(tmp), cpu, 0, seeded_latents(N, parts.G.z_dim, 0), {})
        run.load_state_dict(state, path)
        G, D = algorithm.models["G"], algorithm.models["D"]
        # what phase d will see: replay its draws on copies of the streams, then run the phases for real
        batches = parts.data.batches(N, cpu, run.seed, start=run.data_position)
        batch = next(batches)
        z_gen = torch.Generator().set_state(run.z_gen.get_state())
        z = torch.randn(N, G.z_dim, generator=z_gen)
        with torch.no_grad():  # in training mode, as the phase sees them (batch norm on this batch)
            fake = G(z, None)
            real_score, fake_score = torch.sigmoid(D(batch.images, None)), torch.sigmoid(D(fake, None))
        stats = {}
        for phase in algorithm.phases:
            for _ in range(phase.repeat):
                stats.update({k: float(v) for k, v in phase.run(run).items()})

    fig = plt.figure(figsize=(13, 4.2), dpi=110)
    grid = fig.add_gridspec(2, 4, width_ratios=[1.2, 1.2, 1.25, 1.15], hspace=0.45, wspace=0.25)
    for row, (images, scores, title) in enumerate([(batch.images, real_score, "Batch.images: real x"),
                                                   (fake, fake_score, "G(z): z ~ run.z(n, z_dim)")]):
        ax = fig.add_subplot(grid[row, 0:2])
        ax.imshow(visuals.image_grid(images, nrow=N).permute(1, 2, 0))
        ax.set_title(f"{title}", fontsize=10, loc="left")
        ax.set_xticks([(i + 0.5) * (images.shape[-1] + 2) for i in range(N)],
                      [f"{s:.2f}" for s in scores.tolist()], fontsize=8)
        ax.set_yticks([])
        ax.set_xlabel("D's score (sigmoid of its logit)", fontsize=8)
    ax = fig.add_subplot(grid[:, 2])
    ax.axis("off")
    ax.text(0, 1, "algorithm=gan, one step\n\n"
                  "phase d (x train.d_steps):\n  run.next_batch() -> Batch\n  run.z(n) -> G(z), no grad\n"
                  "  loss.d_loss(D, x, G(z))\n  backward, opt_d.step()\n\n"
                  "phase g:\n  run.z(n) -> G(z)\n  loss.g_loss(D, G(z))\n  (D frozen)\n  backward, opt_g.step()\n\n"
                  "end_step: EMA of G", va="top", family="monospace", fontsize=8.5)
    ax = fig.add_subplot(grid[:, 3])
    ax.axis("off")
    shown = "\n".join(f"  {k:<12} {v:8.3f}" for k, v in stats.items())
    ax.text(0, 1, f"statistics, on the device:\n{shown}\n\n"
                  "-> callbacks, in order:\n  budget, scalars (TensorBoard,\n  metrics.jsonl), pictures,\n"
                  "  evaluation (best.pt),\n  checkpoints, watch, hparams", va="top", family="monospace", fontsize=8.5)
    chosen = " ".join(f"{k}={v}" for k, v in state.get("choices", {}).items() if k in ("model", "loss", "data"))
    fig.suptitle(f"One batch through one training step: {chosen}, at step {state['step']}", fontsize=11)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, bbox_inches="tight")
    print(out)


if __name__ == "__main__":
    main(*sys.argv[1:])
