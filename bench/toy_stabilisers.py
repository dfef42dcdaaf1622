"""The stabilisers on the 8-Gaussian ring at the unrolled-GAN paper's length: modes covered (mean and
minimum over seeds) and the share of high-quality samples (gan_cli.metrics.toy), one row per recipe.

    python bench/toy_stabilisers.py [--steps 25000] [--seeds 0 1 2] [--rows nonsaturating unrolled_10 ...]
                                    [--jobs 2] [--results outputs/bench/toy_stabilisers]

Every run is the real command, `gan train experiment=gan_toy_ring seed=S <row's overrides>`. A run's
measures are kept in <results>/<row>/seed<S>/modes.json and a run that has them is not repeated, so the
table can be filled over several sittings; the table is printed from whatever is there. A run stopped part
way (a sitting that ended) keeps a checkpoint every 1,000 steps and goes on from the last one at the next
sitting, in its own directory: the runner's resume is bit-exact on the CPU, so a row of hours (unrolled 10,
minibatch discrimination) is measured as if it had run straight. Its minutes are the sum over its sittings,
each counted to the last checkpoint it kept; <run>/sittings.json says which CPU ran which steps. --jobs runs
that many single-threaded trainings at once: on the toy MLPs one thread runs about as fast as two
(measured on a 2-core Xeon: 34,000 against 30,000 samples/s), so two jobs nearly double the work done.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/folder_loader, run from anywhere
from folder_loader import cpu_name  # noqa: E402

from gan_cli.errors import UserError  # noqa: E402
from gan_cli.files import fresh_dir, write_text  # noqa: E402
from gan_cli.metrics.toy import checkpoint_report  # noqa: E402

WGAN_GP = ["loss=wgan_gp", "train.d_steps=5", "optimizer.g.betas=[0.0,0.9]", "optimizer.d.betas=[0.0,0.9]"]
ROWS = {
    "nonsaturating": [],
    "unrolled_5": ["train.unrolled_steps=5"],
    "unrolled_10": ["train.unrolled_steps=10"],
    "minibatch_discrimination": ["model.d.minibatch_discrimination=8"],
    "minibatch_stddev": ["model.d.minibatch_stddev=4"],
    "feature_matching": ["loss.feature_matching=true"],
    "r1": ["loss.r1=1.0"],
    "instance_noise": ["train.instance_noise=0.1"],
    "wgan_gp": WGAN_GP,
    "hinge": ["loss=hinge"],
}


CHECKPOINT_EVERY = 1000
OWNER = "toy_stabilisers"


def train(row: str, seed: int, steps: int, results: Path, checkpoint_every: int = CHECKPOINT_EVERY) -> dict:
    run_dir = results / row / f"seed{seed}"
    done = run_dir / "modes.json"
    if done.is_file():
        return read_result(done)
    log = run_dir / "sittings.json"
    kept = kept_steps(run_dir) if (run_dir / f".made-by-{OWNER}").is_file() else []
    if kept and log.is_file():
        sittings = close_last_sitting(read_sittings(log), kept[-1])
        start_step = step_of(kept[-1])
        cmd = ["train", f"resume={kept[-1]}", f"train.steps={steps}", f"hydra.run.dir={run_dir}"]
    else:
        fresh_dir(run_dir, OWNER)  # a run stopped before its first checkpoint starts again
        sittings, start_step = [], 0
        cmd = ["train", "experiment=gan_toy_ring", f"seed={seed}", f"train.steps={steps}", "train.sample_every=0",
               f"train.checkpoint_every={checkpoint_every}", "device=cpu", f"hydra.run.dir={run_dir}", *ROWS[row]]
    sittings.append({"cpu": cpu_name(), "from_step": start_step, "start": time.time()})
    write_text(log, json.dumps(sittings, indent=1))  # atomic: a kill mid-write leaves the old log whole
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "gan_cli", *cmd], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    if proc.returncode != 0:
        raise SystemExit(f"{row} seed {seed} failed: {proc.stderr.strip().splitlines()[-1:]}")
    sittings[-1].update(to_step=steps, minutes=(time.perf_counter() - start) / 60)
    write_text(log, json.dumps(sittings, indent=1))
    r = checkpoint_report(run_dir / "checkpoints" / "last.pt")
    r.update(row=row, seed=seed, steps=steps, minutes=sum(s["minutes"] for s in sittings), sittings=len(sittings))
    write_text(done, json.dumps(r))
    for step_file in (run_dir / "checkpoints").glob("step_*.pt"):  # kept for resuming only; last.pt stays
        step_file.unlink()
    print(f"{row} seed {seed}: {r['modes_covered']}/8 modes, {100 * r['high_quality_share']:.1f}% high quality, "
          f"{r['minutes']:.1f} min in {len(sittings)} sitting(s)", file=sys.stderr)
    return r


def step_of(checkpoint: Path) -> int:
    return int(checkpoint.stem.removeprefix("step_"))


def kept_steps(run_dir: Path) -> list[Path]:
    """The run's step checkpoints, by step; a file that only looks like one (step_x.pt) is not resumed from."""
    files = [p for p in (run_dir / "checkpoints").glob("step_*.pt") if p.stem.removeprefix("step_").isdigit()]
    return sorted(files, key=step_of)


def read_result(path: Path) -> dict:
    """A finished run's measures, as train() wrote them."""
    return read_record(path, "a finished run", lambda r: isinstance(r, dict)
                       and all(isinstance(r[k], int) for k in ("modes_covered", "seed", "steps"))
                       and all(isinstance(r[k], (int, float)) for k in ("high_quality_share", "minutes")))


def read_sittings(log: Path) -> list[dict]:
    return read_record(log, "sittings", lambda s: isinstance(s, list) and s and all(
        isinstance(x["start"], (int, float)) and isinstance(x["from_step"], int) for x in s))


def read_record(path: Path, what: str, valid) -> dict | list:
    """One of this bench's JSON records; a damaged or foreign one is one line, not a traceback."""
    try:
        record = json.loads(path.read_text())
        if valid(record):
            return record
    except (OSError, ValueError, TypeError, KeyError):
        pass
    raise UserError(f"{path} is not this bench's record of {what}; remove its run directory, {path.parent}, "
                    f"to run it again from the start")


def close_last_sitting(sittings: list[dict], last_kept: Path) -> list[dict]:
    """The sitting that stopped counts up to the checkpoint it last wrote; the steps after it are run again
    and their time is not counted twice."""
    last = sittings[-1]
    if "minutes" not in last:
        reached = step_of(last_kept)
        wrote = reached > last["from_step"]
        last.update(to_step=reached if wrote else last["from_step"],
                    minutes=max(0.0, last_kept.stat().st_mtime - last["start"]) / 60 if wrote else 0.0)
    return sittings


def table(results: Path, steps: int) -> str:
    lines = [f"8-Gaussian ring, experiment=gan_toy_ring, {steps} generator steps, 2,000 samples per run\n",
             "| recipe | overrides | seeds | modes covered per seed | mean (min) | high-quality samples, mean | "
             "minutes per run |",
             "|---|---|---|---|---|---|---|"]
    for row, extra in ROWS.items():
        runs = [read_result(p) for p in sorted((results / row).glob("seed*/modes.json"))]
        runs = [r for r in runs if r["steps"] == steps]
        if not runs:
            lines.append(f"| {row} | `{' '.join(extra) or '-'}` | none yet | | | | |")
            continue
        modes = [r["modes_covered"] for r in runs]
        lines.append(f"| {row} | `{' '.join(extra) or '-'}` | {', '.join(str(r['seed']) for r in runs)} | "
                     f"{', '.join(map(str, modes))} | {statistics.fmean(modes):.1f} ({min(modes)}) | "
                     f"{100 * statistics.fmean(r['high_quality_share'] for r in runs):.1f}% | "
                     f"{statistics.fmean(r['minutes'] for r in runs):.1f} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=25000)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--results", type=Path, default=Path("outputs/bench/toy_stabilisers"))
    p.add_argument("--table-only", action="store_true", help="print the table of the runs already there")
    a = p.parse_args()
    try:
        if not a.table_only:
            todo = [(row, seed) for row in a.rows for seed in a.seeds]
            with ThreadPoolExecutor(a.jobs) as pool:
                list(pool.map(lambda job: train(*job, a.steps, a.results), todo))
        print(table(a.results, a.steps))
    except UserError as e:  # a foreign results folder, a damaged record, a full disk: one line
        raise SystemExit(str(e)) from None


if __name__ == "__main__":
    main()
