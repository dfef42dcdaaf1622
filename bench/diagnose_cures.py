"""The cures of `gan diagnose`, proven: each failure-gallery recipe is trained, diagnosed, then trained
again with every cure the diagnosis suggests and with each stabiliser that addresses its failure, and
diagnosed again. Prints a markdown table: recipe, cure, verdict after, and the recipe's key measure
before and after.

    python bench/diagnose_cures.py [--recipes collapse_demo failure_demo oscillation_demo]
                                   [--results outputs/bench/diagnose_cures] [--table-only]

Every run is the real command (`gan train experiment=<recipe> <cure>`, then `gan diagnose run=...`). A run
already diagnosed under --results is not repeated, so the table can be filled over several sittings.
The key measures: classes covered by the last checkpoint's samples (mode collapse), D's accuracy on real
and fake samples over the last 20% of the run (convergence failure), loss/g's smoothed swing relative to
its level in the second half (oscillation; the detector fires at 0.5)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from gan_cli.diagnose import series
from gan_cli.files import fresh_dir
from gan_cli.diagnose.detectors import oscillation

# the stabilisers each failure calls for, tried beside what diagnose suggests
CANDIDATES = {
    "collapse_demo": ["model.d.minibatch_discrimination=32", "model.d.minibatch_stddev=4",
                      "loss.feature_matching=true", "train.unrolled_steps=5"],
    "failure_demo": ["loss.label_smoothing=0.9", "train.instance_noise=0.1", "loss.r1=10"],
    "oscillation_demo": ["loss.r1=1", "train.instance_noise=0.1", "train.historical_averaging=0.01",
                         "train.unrolled_steps=5"],
}


def run(recipe: str, cure: str, results: Path) -> dict:
    """Train the recipe with the cure's overrides and diagnose it: the diagnosis, the key measure, minutes."""
    name = cure.replace(" ", "__").replace("/", "_").replace("=", "-") or "before"
    run_dir = results / recipe / name
    done = run_dir / "cure.json"
    if done.is_file():
        return json.loads(done.read_text())
    fresh_dir(run_dir, "diagnose_cures")  # a run of this bench stopped before it finished starts again
    start = time.perf_counter()
    train = subprocess.run([sys.executable, "-m", "gan_cli", "train", f"experiment={recipe}", *cure.split(),
                            "train.watch=false", f"hydra.run.dir={run_dir}"], capture_output=True, text=True)
    minutes = (time.perf_counter() - start) / 60
    if train.returncode != 0:
        out = {"recipe": recipe, "cure": cure, "verdict": stopped(train.stderr.strip().splitlines()[-1]),
               "findings": [], "measure": None, "minutes": minutes}
    else:
        diag = subprocess.run([sys.executable, "-m", "gan_cli", "diagnose", f"run={run_dir}"], capture_output=True,
                              text=True)
        if diag.returncode != 0:
            raise SystemExit(f"gan diagnose failed on {run_dir}: {diag.stderr.strip()[-500:]}")
        report = json.loads((run_dir / "diagnosis.json").read_text())
        out = {"recipe": recipe, "cure": cure, "verdict": verdict(report), "findings": report["findings"],
               "measure": measure(recipe, report, run_dir), "minutes": minutes}
    done.write_text(json.dumps(out))
    print(f"{recipe} {cure or '(before)'}: {out['verdict']}, {show(recipe, out['measure'])}, {minutes:.1f} min",
          file=sys.stderr)
    return out


def stopped(line: str) -> str:
    """The one line of a run that stopped: a NaN (the loop's Diverged) or a refusal."""
    import re

    nan = re.search(r"became NaN or infinite at step (\d+)", line)
    return f"diverged (NaN at step {nan.group(1)})" if nan else "refused: " + line.split(": error: ", 1)[-1]


def verdict(report: dict) -> str:
    """The findings that still hold at the end of the run (those recovered from are history)."""
    open_ = [f["kind"].replace("_", " ") for f in report["findings"] if not f.get("recovered")]
    return ", ".join(dict.fromkeys(open_)) or "healthy"


def measure(recipe: str, report: dict, run_dir: Path) -> dict:
    if recipe == "collapse_demo":
        last = report["diversity"][max(report["diversity"], key=int)]
        return {"covered": last["covered"], "of": last["of"], "diversity": last["diversity"]}
    if recipe == "failure_demo":
        return {"acc/real": report["balance"]["acc/real"], "acc/fake": report["balance"]["acc/fake"]}
    # the oscillation detector's amplitude, read even where it stays under the threshold
    always = {"window": 10, "amplitude": 0.0, "growth": 0.0}
    found = oscillation(series.read(run_dir), {}, always)
    return {"amplitude": found[0].evidence["amplitude"] if found else float("nan")}


def show(recipe: str, m: dict | None) -> str:
    if m is None:
        return "-"
    if recipe == "collapse_demo":
        return f"{m['covered']}/{m['of']} classes, diversity {m['diversity']:.2f}"
    if recipe == "failure_demo":
        return f"D right on {100 * m['acc/real']:.0f}% real, {100 * m['acc/fake']:.0f}% fake"
    return f"swing {100 * m['amplitude']:.0f}% of loss/g's level"


def cures_of(before: dict) -> list[str]:
    return list(dict.fromkeys(c for f in before["findings"] for c in f["cures"]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipes", nargs="+", default=list(CANDIDATES), choices=list(CANDIDATES))
    p.add_argument("--results", type=Path, default=Path("outputs/bench/diagnose_cures"))
    p.add_argument("--table-only", action="store_true", help="print the table of the runs already there")
    a = p.parse_args()
    rows = []
    for recipe in a.recipes:
        if a.table_only and not (a.results / recipe / "before" / "cure.json").is_file():
            continue
        before = run(recipe, "", a.results)
        tried = [(c, "diagnose") for c in cures_of(before)]
        tried += [(c, "stabiliser") for c in CANDIDATES[recipe] if c not in dict(tried)]
        rows.append((recipe, "(none)", "", before, before))
        for cure, source in tried:
            done = a.results / recipe / cure.replace(" ", "__").replace("/", "_").replace("=", "-") / "cure.json"
            if a.table_only and not done.is_file():
                continue
            rows.append((recipe, cure, source, before, run(recipe, cure, a.results)))
    print("| recipe | cure | from | verdict after | key measure before | after | minutes |")
    print("|---|---|---|---|---|---|---|")
    for recipe, cure, source, before, after in rows:
        v = stopped(after["verdict"]) if after["verdict"].startswith("refused: ") else after["verdict"]
        print(f"| `{recipe}` | `{cure}` | {source} | {v} | {show(recipe, before['measure'])} | "
              f"{show(recipe, after['measure'])} | {after['minutes']:.1f} |")


if __name__ == "__main__":
    main()
