"""The diagnosis figure: learning curves with the flagged ranges shaded, and sample grids from the
checkpoints nearest to the flagged steps."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from gan_cli import files, modality
from gan_cli.diagnose.detectors import Finding
from gan_cli.diagnose.series import Series

COLOURS = {"divergence": "tab:red", "convergence_failure": "tab:orange", "vanishing_gradient": "tab:purple",
           "oscillation": "tab:blue", "mode_collapse": "tab:green", "posterior_collapse": "tab:brown"}
PANELS = (("losses", ("loss/d", "loss/g"), False), ("D's view", ("d/real", "d/fake", "acc/real", "acc/fake"), False),
          ("BEGAN's equilibrium", ("began/m_global", "began/k"), False),  # its D has no accuracy to show
          ("the VAE's bound, per image (nats)", ("vae/elbo", "vae/recon", "vae/kl"), False),  # the baselines': no D
          ("reconstruction error, per image", ("ae/recon",), False),
          ("gradient norms", ("grad_norm/d", "grad_norm/g"), True))


def draw(series: Series, findings: list[Finding], grids: list[tuple[int, torch.Tensor]], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    logged = [(title, [n for n in names if any(math.isfinite(v) for v in series.get(n))], log_scale)
              for title, names, log_scale in PANELS]
    panels = [p for p in logged if p[1]] or logged[:1]  # a run logs what its algorithm computes
    rows = len(panels) + (1 if grids else 0)
    fig = plt.figure(figsize=(10, 2.6 * rows), dpi=100)
    for k, (title, names, log_scale) in enumerate(panels):
        ax = fig.add_subplot(rows, 1, k + 1)
        for name in names:
            ax.plot(series.steps, series.get(name), label=name, linewidth=1)
        named = set()
        for f in findings:  # one legend entry per kind, however many ranges it has
            label = f.kind.replace("_", " ") if k == 0 and f.kind not in named else None
            named.add(f.kind)
            ax.axvspan(f.start, max(f.end, f.start + 1), color=COLOURS.get(f.kind, "grey"), alpha=0.15, label=label)
        if log_scale:
            ax.set_yscale("log")
        ax.set_title(title, fontsize=9, loc="left")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="upper right", ncol=3)
    for j, (step, images) in enumerate(grids):
        ax = fig.add_subplot(rows, len(grids), (rows - 1) * len(grids) + j + 1)
        picture = modality.of(images.shape[1:]).picture(images, None, 1.0)
        ax.imshow(picture.permute(1, 2, 0).numpy())
        ax.set_title(f"samples at step {step}", fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    with files.atomic_write(path, "free disk space, or make the run's directory writable") as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png")
    plt.close(fig)
    return path
