"""How long a recipe needs to reach an FD: the FD of the sampling G at every train.eval_every of one long run,
against its training minutes, for one or more recipes. A run with a budget only stops where a longer one goes
on (the rates and the EMA's ramp depend on the step alone), so one long run shows what every shorter budget
gives.

    gan train experiment=dcgan_mnist_5min train.max_minutes=25 train.eval_every=500 \\
        train.eval_metric=fd_mnist_cnn train.eval_n=2000 hydra.run.dir=outputs/studies/frontier_new_1core
    python bench/fd_frontier.py new=outputs/studies/frontier_new_1core old=outputs/studies/frontier_old_1core \\
        [--threshold 40] [--figure docs/img/fd_frontier_mnist.png]

Training minutes are steps at the run's median logged rate (perf/img_per_s, every train.log_every steps):
the evaluations themselves are not training time, and the interval that holds one logs a lower rate, which
the median leaves out.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from omegaconf import OmegaConf


def frontier(run: Path) -> dict:
    """A run's evaluations as (step, training minutes, FD), and its training rate in steps per minute."""
    evals = [json.loads(line) for line in (run / "evals.jsonl").read_text().splitlines()]
    rates = [row["perf/img_per_s"] for row in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
             if "perf/img_per_s" in row]
    batch = OmegaConf.load(run / ".hydra" / "config.yaml").train.batch_size
    per_minute = 60 * statistics.median(rates) / batch
    metric = next(k for k in evals[0] if k.startswith("fd_") and not k.endswith("_std"))
    points = [(e["step"], e["step"] / per_minute, e[metric]) for e in evals]
    return {"metric": metric, "steps_per_minute": per_minute, "points": points}


def summary(label: str, f: dict, threshold: float) -> str:
    step, minutes, best = min(f["points"], key=lambda p: p[2])
    below = next((p for p in f["points"] if p[2] < threshold), None)
    reached = (f"first below {threshold:g} at step {below[0]:,} ({below[1]:.1f} min)" if below
               else f"never below {threshold:g}")
    at5 = [p for p in f["points"] if p[1] <= 5]
    five = f"FD {at5[-1][2]:.1f} at step {at5[-1][0]:,} ({at5[-1][1]:.1f} min)" if at5 else "no evaluation by 5 min"
    return (f"{label}: {f['steps_per_minute']:.0f} steps/min; by 5 min: {five}; best {best:.1f} at step {step:,} "
            f"({minutes:.1f} min); {reached}")


def figure(runs: dict[str, dict], threshold: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=120)
    for label, f in runs.items():
        ax.plot([p[1] for p in f["points"]], [p[2] for p in f["points"]], marker=".", label=label)
    ax.axhline(threshold, color="grey", lw=0.8, ls="--")
    ax.axvline(5, color="grey", lw=0.8, ls=":")
    ax.set_yscale("log")
    ax.set_xlabel("training minutes")
    ax.set_ylabel(next(iter(runs.values()))["metric"])
    ax.legend()
    fig.tight_layout()
    with path.open("xb") as out:  # never overwrite a file this run did not make
        try:
            fig.savefig(out, format="png")
        except BaseException:  # a full disk or Ctrl-C mid-write leaves no half a figure behind
            path.unlink()
            raise


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", metavar="LABEL=RUN_DIR")
    p.add_argument("--threshold", type=float, default=40.0)
    p.add_argument("--figure", type=Path)
    a = p.parse_args()
    if a.figure is not None and a.figure.exists():
        p.error(f"--figure {a.figure} exists; give a new path")
    runs = {}
    for spec in a.runs:
        label, _, run = spec.partition("=")
        try:
            runs[label] = frontier(Path(run))
        except (OSError, ValueError, KeyError, StopIteration, statistics.StatisticsError) as e:
            p.error(f"{spec}: not a finished run with train.eval_every evaluations "
                    f"(evals.jsonl, metrics.jsonl, .hydra/config.yaml): {type(e).__name__}: {e}")
    for label, f in runs.items():
        print(f"| {label} | step | minutes | {f['metric']} |\n|---|---|---|---|")
        for step, minutes, fd in f["points"]:
            print(f"| | {step:,} | {minutes:.1f} | {fd:.1f} |")
    for label, f in runs.items():
        print(summary(label, f, a.threshold))
    if a.figure is not None:
        figure(runs, a.threshold, a.figure)


if __name__ == "__main__":
    main()
