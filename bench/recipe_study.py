"""The recipe search's table: every trial of a `gan train -m experiment=tune_dcgan_mnist` sweep, best first,
with the measures of its one evaluation at the end of its 5-minute budget; and runs grouped by recipe
(seeds), as mean and spread.

    gan train -m experiment=tune_dcgan_mnist hydra.sweep.dir=outputs/studies/tune   # the study (sweeps extra)
    python bench/recipe_study.py outputs/studies/tune [--top 10]
    python bench/recipe_study.py --group old=outputs/studies/old/seed* --group new=outputs/studies/new/seed*

The README's table came from these commands; see "What the default run gives".
"""

from __future__ import annotations

import argparse
import glob
import json
import statistics
from pathlib import Path

# {space}: the data's classifier features, read from the runs (mnist_cnn, fashionmnist_cnn, ...)
COLUMNS = [("fd_{space}", "FD", "{:.1f}"), ("precision_{space}", "precision", "{:.2f}"),
           ("recall_{space}", "recall", "{:.2f}"), ("classes_covered", "classes", "{:.0f}"),
           ("confident_share", "confident", "{:.1%}")]
SHORT = {"model.g.width": "G", "model.d.width": "D", "train.batch_size": "batch", "optimizer.g.lr": "lr_G",
         "optimizer.d.lr": "lr_D", "tune.beta1": "b1", "tune.beta2": "b2", "loss": "loss",
         "model.d.spectral_norm": "SN", "train.ema": "ema", "train.precision": "prec", "train.compile": "compile"}


def trial(run: Path) -> dict:
    """A run's last evaluation, its step count and its overrides."""
    evals = [json.loads(line) for line in (run / "evals.jsonl").read_text().splitlines()]
    result = json.loads((run / "result.json").read_text())
    overrides = dict(o.split("=", 1) for o in result["overrides"]
                     if "=" in o and o.split("=", 1)[0] not in ("experiment", "data", "train.eval_metric"))
    last = evals[-1]
    space = next(k[3:] for k in last if k.startswith("fd_") and k.endswith("_cnn"))
    # the columns under their generic names, so that trials of one study and groups of seeds line up
    named = {key: last[key.format(space=space)] for key, _, _ in COLUMNS}
    return {"run": run.name, "steps": result["step"], **named, "overrides": overrides}


def shown(key: str, value: str) -> str:
    try:
        number = float(value)
    except ValueError:
        return f"{SHORT.get(key, key)} {value}"
    return f"{SHORT.get(key, key)} {number:.2g}" if "lr" in key else f"{SHORT.get(key, key)} {value}"


def study(sweep: Path, top: int) -> None:
    runs = sorted((trial(r) for r in sweep.iterdir() if (r / "evals.jsonl").is_file()),
                  key=lambda t: t["fd_{space}"])
    print(f"{len(runs)} trials in {sweep}, best first")
    print("| trial | steps | " + " | ".join(name for _, name, _ in COLUMNS) + " | setting |")
    print("|" + "---|" * (len(COLUMNS) + 3))
    for t in runs[:top]:
        cells = [fmt.format(t[key]) for key, _, fmt in COLUMNS]
        setting = ", ".join(shown(k, v) for k, v in t["overrides"].items())
        print(f"| {t['run']} | {t['steps']:,} | " + " | ".join(cells) + f" | {setting} |")


def groups(specs: list[str]) -> None:
    print("| recipe | seeds | steps | " + " | ".join(name for _, name, _ in COLUMNS) + " |")
    print("|" + "---|" * (len(COLUMNS) + 3))
    for spec in specs:
        label, pattern = spec.split("=", 1)
        runs = [trial(Path(p)) for p in sorted(glob.glob(pattern)) if (Path(p) / "evals.jsonl").is_file()]
        if not runs:
            print(f"| {label} | 0 | | " + " | ".join("" for _ in COLUMNS) + " |")
            continue

        def spread(key: str, fmt: str) -> str:
            values = [float(r[key]) for r in runs]
            mean = fmt.format(statistics.mean(values))
            return mean if len(values) == 1 else f"{mean} ({fmt.format(min(values))} to {fmt.format(max(values))})"

        print(f"| {label} | {len(runs)} | {spread('steps', '{:,.0f}')} | "
              + " | ".join(spread(key, fmt) for key, _, fmt in COLUMNS) + " |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("sweep", nargs="?", type=Path, help="a sweep directory (hydra.sweep.dir)")
    p.add_argument("--top", type=int, default=10)
    p.add_argument("--group", action="append", default=[], metavar="LABEL=GLOB",
                   help="runs of one recipe (one per seed), as a shell glob of run directories")
    a = p.parse_args()
    if a.sweep is None and not a.group:
        p.error("give a sweep directory, --group LABEL=GLOB, or both")
    if a.sweep is not None:
        study(a.sweep, a.top)
    if a.group:
        groups(a.group)


if __name__ == "__main__":
    main()
