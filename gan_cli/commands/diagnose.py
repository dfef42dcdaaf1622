"""`gan diagnose run=RUN_DIR`: name a run's failure mode, show the evidence, suggest the cures.

Reads the scalars the run logged (metrics.jsonl, or its TensorBoard events), samples from its kept
checkpoints to measure diversity over time, and writes diagnosis.json and diagnosis.png into the run
directory. Over a sweep's directory it gives one line per run."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from omegaconf import DictConfig, OmegaConf

from gan_cli import build, checkpoint, files
from gan_cli.diagnose import detectors, diversity, figure, samples, series
from gan_cli.commands import Column, check_seed, run_overrides, runs_table, typed
from gan_cli.errors import UserError, first_line

log = logging.getLogger(__name__)

FIX = "free disk space, or make the run's directory writable"  # diagnosis.json goes into it


@dataclass
class DiagnoseKeys:
    """The types of conf/diagnose.yaml's keys (thresholds= is a group of its own; trust= is checked with
    the config's _target_ values)."""

    run: Optional[str]
    min_points: int
    samples: int
    max_checkpoints: int
    seed: int
    device: str


def run(cfg: DictConfig, run_dir: Path) -> dict:
    cfg = typed(cfg, DiagnoseKeys)
    for key, least in (("min_points", 1), ("samples", 0), ("max_checkpoints", 1)):
        if cfg[key] < least:
            raise UserError(f"{key}={cfg[key]} must be at least {least}")
    check_seed(cfg.seed)
    if cfg.run is None:
        raise UserError("run= is required: a training run's directory, e.g. gan diagnose run=outputs/train/<date>/<time>")
    target = Path(cfg.run).expanduser()
    if not target.is_dir():
        raise UserError(f"run={cfg.run} is not a directory; give a run's directory (outputs/train/<date>/<time>)")
    if not _is_run(target):
        runs = sorted(p.parent for p in target.glob("*/metrics.jsonl"))
        if runs:
            return sweep(cfg, runs)
    report = diagnose(cfg, target)
    print(format_report(target, report))
    return report


def _is_run(path: Path) -> bool:
    return (path / "metrics.jsonl").is_file() or any(path.glob("events.out.tfevents.*"))


def run_config(path: Path, trust=()) -> dict:
    """The config the run was trained with: Hydra's record, or else its last checkpoint's."""
    saved = path / ".hydra" / "config.yaml"
    if saved.is_file():
        try:
            config = OmegaConf.to_container(OmegaConf.load(saved))
        except Exception as e:  # noqa: BLE001 - YAML, OmegaConf and OS errors alike: the record is unreadable
            config = f"{type(e).__name__}: {first_line(e)}"
        if isinstance(config, dict):
            return config
        # a damaged record costs the cures their numbers, not the verdict: fall back as for a missing one
        why = config if isinstance(config, str) else f"a YAML {type(config).__name__}, not a mapping"
        log.warning(f"{saved} is not a readable config ({why}); using the last checkpoint's, if any")
    last = path / "checkpoints" / "last.pt"
    return checkpoint.Saved.load(last, trust=trust).config if last.is_file() else {}


def diagnose(cfg: DictConfig, path: Path, draw: bool = True) -> dict:
    s = series.read(path)
    config = run_config(path, cfg.trust)
    t = OmegaConf.to_container(cfg.thresholds)
    # a divergence is plain at any length; every other verdict needs enough of the run to judge, except the
    # baselines': a Gaussian mixture's fit logs one row, and a VAE's KL is near 0 or not at any length
    needed = max(cfg.min_points, 1) if detectors.adversarial(config) else 1
    if len(s) < needed and not detectors.divergence(s, config, t["divergence"]):
        if s.skipped:  # too few because rows were damaged: that is the news, not the run's length
            raise UserError(f"{path / 'metrics.jsonl'} {s.problem}: the metrics file is corrupt ({s.skipped} "
                            f"unusable row{'s' if s.skipped > 1 else ''} skipped); the {len(s)} left are too "
                            f"few to judge (at least {cfg.min_points})")
        raise UserError(f"run={path} has {len(s)} logged intervals; judging needs at least {cfg.min_points} "
                        f"(train longer or lower train.log_every)")
    findings = detectors.detect(s, config, t)
    probes = []
    if cfg.samples > 0:
        probes = samples.measure(path, cfg.samples, cfg.seed, cfg.max_checkpoints, t["mode_collapse"],
                                 build.device(cfg.device), trust=cfg.trust)
        findings = sorted(findings + diversity.mode_collapse(probes, config, t["mode_collapse"]),
                          key=lambda f: (detectors.SEVERITY[f.severity], f.start))
    verdict = findings[0].kind if findings else "healthy"
    report = {
        "run": str(path), "verdict": verdict, "steps": [s.steps[0], s.steps[-1]], "log_intervals": len(s),
        "findings": [f.to_dict() for f in findings],
        "balance": detectors.balance(s, t["healthy"]["tail"]),
        "not_applicable": detectors.not_applicable(config),
        "diversity": {p.step: {"diversity": p.diversity, "duplicates": p.duplicates, "covered": p.covered,
                               "of": p.of} for p in probes},
    }
    files.write_text(path / "diagnosis.json", json.dumps(report, indent=2) + "\n", FIX)
    if draw:
        flagged = {f.end for f in findings}
        grids = [(p.step, p.grid) for p in probes if any(p.step >= f.start for f in findings)][:3] or \
            [(p.step, p.grid) for p in probes[-1:]]
        report["figure"] = str(figure.draw(s, findings, grids if flagged or probes else [], path / "diagnosis.png"))
    return report


def format_report(path: Path, report: dict) -> str:
    lines = [f"run: {path} (steps {report['steps'][0]}-{report['steps'][1]}, {report['log_intervals']} log intervals)"]
    b = report["balance"]
    curve = _baseline_curve(b)
    if report["verdict"] == "healthy":
        div = list(report["diversity"].values())
        extra = f"; samples {100 * div[-1]['diversity']:.0f}% as diverse as real data" if div else ""
        if "began/m_global" in b:  # BEGAN's D has no accuracy: its convergence measure instead
            lines.append(f"verdict: healthy. M_global fell from {b['began/m_global_early']:.3g} to "
                         f"{b['began/m_global']:.3g} (from step {b['from_step']}), k {b['began/k']:.3g}{extra}")
        elif curve:  # the baselines have no D: their own curve instead
            lines.append(f"verdict: healthy. {curve[0].upper()}{curve[1:]}{extra}")
        else:
            per_d = "".join(f"; {name} {real} and {fake}" for name, real, fake in _each_d(b))
            lines.append(f"verdict: healthy. From step {b['from_step']} D is right on {100 * b['acc/real']:.0f}% of "
                         f"real and {100 * b['acc/fake']:.0f}% of fake samples (balance {b['balance']:.2f}{per_d}){extra}")
    else:
        lines.append(f"verdict: {report['verdict'].replace('_', ' ')}")
        if curve:
            lines.append(f"  {curve}")
        if _each_d(b):  # several Ds (CycleGAN's two, LAPGAN's levels): which one is out of balance
            lines.append(f"  each D from step {b['from_step']}, right on real / fake: "
                         + "; ".join(f"{name} {real} / {fake}" for name, real, fake in _each_d(b)))
    for f in report["findings"]:
        lines.append(f"- [{f['severity']}] {f['kind'].replace('_', ' ')}, steps {f['start']}-{f['end']}: {f['summary']}")
        if f["cures"]:
            lines.append("    try: " + "  |  ".join(f"gan train {c}" for c in f["cures"]))
    if report.get("not_applicable"):
        lines.append(f"not applicable: {', '.join(n.replace('_', ' ') for n in report['not_applicable'])}: these "
                     f"judge a discriminator and the game against it, and this run trains none")
    lines.append(f"written: {path / 'diagnosis.json'}" + (f", {report['figure']}" if report.get("figure") else ""))
    return "\n".join(lines)


def _baseline_curve(b: dict) -> str | None:
    """What a baseline run's own curve says (the VAE's ELBO, the autoencoder's reconstruction error, a Gaussian
    mixture's fit), or None for a GAN's run."""
    if "vae/elbo" in b:
        return (f"ELBO {b['vae/elbo_early']:.4g} -> {b['vae/elbo']:.4g} nats per image (from step {b['from_step']}: "
                f"reconstruction {b['vae/recon']:.4g}, KL {b['vae/kl']:.3g})")
    if "ae/recon" in b:
        return f"reconstruction error {b['ae/recon_early']:.4g} -> {b['ae/recon']:.4g} per image"
    if "gmm/log_likelihood" in b:
        return (f"one EM fit: log-likelihood {b['gmm/log_likelihood']:.4g} nats per sample, "
                f"{b['gmm/iterations']:.0f} iterations, {'converged' if b['gmm/converged'] else 'not converged'}")
    return None


def _each_d(balance: dict) -> list[tuple[str, str, str]]:
    """(name, accuracy on real, on fake) of each D of a run with several: D_A, or lapgan/28px."""
    names = [k.removesuffix("/acc_real") for k in balance if k.endswith("/acc_real") and k != "acc/real"]
    return [(d.upper() if "/" not in d else d, f"{100 * balance[d + '/acc_real']:.0f}%",
             f"{100 * balance[d + '/acc_fake']:.0f}%") for d in names]


def sweep(cfg: DictConfig, runs: list[Path]) -> dict:
    """One line per run of a sweep, the worst first."""
    rows = []
    for path in runs:
        try:
            report = diagnose(cfg, path, draw=False)
        except UserError as e:
            rows.append((3, path, "not judged", str(e)))
            continue
        top = report["findings"][0] if report["findings"] else None
        rank = detectors.SEVERITY[top["severity"]] if top else 2.5
        rows.append((rank, path, report["verdict"], top["summary"] if top else ""))
    overrides = {p: _overrides(p) for _, p, _, _ in rows}
    print(runs_table("the worst first", [Column("run", 4, ">"), Column("verdict", 20), Column("overrides", 40),
                                         Column("detail", cut=100)],
                     [[path.name, verdict, overrides[path], detail]
                      for _, path, verdict, detail in sorted(rows, key=lambda r: (r[0], str(r[1])))], heading=False))
    return {"runs": [{"run": str(p), "verdict": v, "detail": d} for _, p, v, d in rows]}


def _overrides(path: Path) -> str:
    """run_overrides, or "" with a warning when Hydra's record of them is damaged: a sweep's table should
    not fail on one run's bookkeeping."""
    try:
        return run_overrides(path)
    except Exception as e:  # noqa: BLE001 - YAML, OmegaConf and type errors alike: the record is unreadable
        log.warning(f"{path / '.hydra' / 'overrides.yaml'} is not readable ({type(e).__name__}: {first_line(e)})")
        return ""
