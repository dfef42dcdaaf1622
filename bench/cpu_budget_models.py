"""The later families against the DCGAN default on the same CPU budget, each recipe trained by the real
command for its set's minutes, then measured by `gan eval` (the data's FD, precision, recall, classes
covered; StyleGAN2 also at each truncation psi of --psi). Prints one markdown table per set; the grids are
each run's samples/ (the last step_*.png).

    python bench/cpu_budget_models.py [--sets style lapgan] [--psi 1.0 0.7 0.5]
                                      [--results outputs/bench/cpu_budget_models] [--table-only]

Sets: `style`, ProGAN and StyleGAN2 against DCGAN on Fashion-MNIST at 32x32, 10 minutes each (issue 16);
`lapgan`, LAPGAN against DCGAN on MNIST and on Fashion-MNIST at 32x32, 5 minutes each (issue 17); `srgan`,
x4 super-resolution of Fashion-MNIST (7 -> 28 px), SRResNet (MSE alone) against SRGAN, 5 minutes each, with
plain bicubic upsampling as the floor (issue 17).
A recipe whose run finished under --results/<set> is not trained again, and an evaluation already in its
metrics.json is not repeated, so the tables can be filled over several sittings. The thread count is the
environment's (OMP_NUM_THREADS); it is printed with the tables, since the steps done depend on it."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from gan_cli.files import fresh_dir

FASHION32 = ["data=fashion_mnist", "data.resolution=32"]
GENERATION = ("fd_", "precision_", "recall_", "classes_covered")  # the data's own: fd_mnist_cnn, ...
SUPER_RESOLUTION = ("psnr", "ssim", "fd_", "class_preserved")
SETS = {  # name: (minutes, recipes, measures)
    "style": (10, {"dcgan": FASHION32, "progan": ["experiment=progan_fashion32"],
                   "stylegan2": ["experiment=stylegan2_fashion32"]}, GENERATION),
    "lapgan": (5, {"dcgan_mnist": [], "lapgan_mnist": ["experiment=lapgan_mnist"],
                   "dcgan_fashion32": FASHION32, "lapgan_fashion32": ["experiment=lapgan_mnist", *FASHION32]},
               GENERATION),
    "srgan": (5, {"srresnet": ["experiment=srgan_fashion", "algorithm.pretrain_steps=100000000"],
                  "srgan": ["experiment=srgan_fashion"]}, SUPER_RESOLUTION),
}


def gan(*args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "gan_cli", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"gan {' '.join(args)} failed: {proc.stderr.strip().splitlines()[-1:]}")
    return proc


def train(run: Path, overrides: list[str], minutes: float) -> None:
    if (run / "result.json").is_file():
        return
    fresh_dir(run, "cpu_budget_models")  # a run of this bench stopped before it finished starts again
    gan("train", *overrides, f"train.max_minutes={minutes}", "train.steps=1000000", "device=cpu",
        "train.checkpoint_every=0", f"hydra.run.dir={run}")


def key(psi: float) -> str:
    return "last.pt" if psi == 1 else f"last.pt@truncation={psi:g}"


def measured(run: Path, psi: float) -> dict | None:
    record = run / "checkpoints" / "metrics.json"
    return json.loads(record.read_text()).get(key(psi)) if record.is_file() else None


def evaluate(run: Path, psi: float) -> None:
    if measured(run, psi) is None:
        gan("eval", f"checkpoint={run}/checkpoints/last.pt", *([] if psi == 1 else [f"truncation={psi:g}"]),
            "device=cpu", f"hydra.run.dir={run}/eval/psi{psi:g}")


def table(name: str, results: Path, psis: list[float], fill: bool) -> str:
    minutes, recipes, measures = SETS[name]
    rows, header = [], None
    for recipe, overrides in recipes.items():
        run = results / name / recipe
        if fill:
            train(run, overrides, minutes)
        if not (run / "result.json").is_file():
            rows.append(f"| {recipe} | not run yet |")
            continue
        result = json.loads((run / "result.json").read_text())
        for psi in (psis if "stylegan2" in recipe else [1.0]):
            if fill:
                evaluate(run, psi)
            report = measured(run, psi)
            if report is None:
                continue
            metrics = report["metrics"]
            names = [next(m for m in metrics if m.startswith(prefix)) for prefix in measures]
            if "bicubic_psnr" in metrics and not any(r.startswith("| bicubic") for r in rows):  # the floor
                rows.append("| bicubic (no training) | 1 | | | " + " | ".join(f"{metrics['bicubic_' + m]:.3g}"
                                                                           for m in names) + " |")
            rows.append(f"| {recipe} | {psi:g} | {result['step']} | {result['final']['perf/img_per_s']:.0f} | "
                        + " | ".join(f"{metrics[m]:.3g}" for m in names) + " |")
            header = header or "| recipe | truncation | steps | img/s at the end | " + " | ".join(names) + " |"
    head = [f"{name}: {minutes} minutes of training each, {os.environ.get('OMP_NUM_THREADS', 'all')} threads; "
            f"gan eval n=10000\n"]
    if header:
        head += [header, "|" + "---|" * (header.count("|") - 1)]
    return "\n".join(head + rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", choices=list(SETS), default=list(SETS))
    parser.add_argument("--psi", type=float, nargs="+", default=[1.0, 0.7, 0.5])
    parser.add_argument("--results", type=Path, default=Path("outputs/bench/cpu_budget_models"))
    parser.add_argument("--table-only", action="store_true", help="print what is there; train nothing")
    args = parser.parse_args(argv)
    print("\n\n".join(table(name, args.results, args.psi, not args.table_only) for name in args.sets))


if __name__ == "__main__":
    main()
