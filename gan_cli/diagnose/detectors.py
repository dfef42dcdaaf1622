"""Detectors over the logged series. Each takes the series, the run's config (for cures phrased as
overrides) and its thresholds from conf/diagnose.yaml, and returns findings; none reads files."""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

from gan_cli.diagnose.series import Series

SEVERITY = {"high": 0, "medium": 1, "low": 2}


@dataclass
class Finding:
    kind: str
    severity: str  # high, medium, low
    start: int  # first step of the range
    end: int  # last step of the range
    summary: str  # one line of evidence, in words and numbers
    evidence: dict[str, Any] = field(default_factory=dict)
    cures: list[str] = field(default_factory=list)  # `gan train` overrides, pasteable
    recovered: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _runs(flags: list[bool], steps: list[int], min_steps: int) -> list[tuple[int, int]]:
    """Index ranges [i, j] of consecutive True that span at least min_steps training steps. Each row
    sums up the steps since the row before, so a range starts where the row before it ended; steps,
    not log intervals, so that the same threshold means the same at any train.log_every."""
    out, start = [], None
    for i, f in enumerate(flags + [False]):
        if f and start is None:
            start = i
        elif not f and start is not None:
            if steps[i - 1] - (steps[start - 1] if start > 0 else 0) >= min_steps:
                out.append((start, i - 1))
            start = None
    return out


def _mean(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return statistics.fmean(finite) if finite else math.nan


def _lr(config: dict, side: str) -> float | None:
    return config.get("optimizer", {}).get(side, {}).get("lr")


def _halved_lr(config: dict, side: str) -> list[str]:
    lr = _lr(config, side)
    return [f"optimizer.{side}.lr={lr / 2:g}"] if lr else []


def _balanced_lr(config: dict) -> list[str]:
    """D learning faster than G: give it G's rate (halving alone rarely rebalances); else halve it."""
    d, g = _lr(config, "d"), _lr(config, "g")
    return [f"optimizer.d.lr={g:g}"] if d and g and d > g else _halved_lr(config, "d")


def _loss(config: dict) -> str:
    return config.get("loss", {}).get("_target_", "").rsplit(".", 1)[-1]


def divergence(s: Series, config: dict, t: dict) -> list[Finding]:
    for name in ("loss/d", "loss/g"):
        if name not in s.values:  # never logged (a damaged file's rows): nothing to judge, not a NaN
            continue
        values = s.get(name)
        bad = [i for i, v in enumerate(values) if not math.isfinite(v) or abs(v) > t["explode"]]
        if bad:
            i = bad[0]
            return [Finding(
                "divergence", "high", s.steps[i], s.steps[-1],
                f"{name} became {values[i]:.3g} at step {s.steps[i]} (|loss| > {t['explode']:g} or not finite)",
                {"metric": name, "value": values[i]},
                _halved_lr(config, "d") + _halved_lr(config, "g") + ["model.d.spectral_norm=true"])]
    return []


def convergence_failure(s: Series, config: dict, t: dict) -> list[Finding]:
    """D wins outright: it classifies nearly every real and fake sample right for a while."""
    real, fake = s.get("acc/real"), s.get("acc/fake")
    flags = [r >= t["accuracy"] and f >= t["accuracy"] for r, f in zip(real, fake)]
    findings = []
    for i, j in _runs(flags, s.steps, t["min_steps"]):
        recovered = j < len(s) - 1
        g = s.get("loss/g")
        cures = _balanced_lr(config)
        if _loss(config) == "Minimax":
            cures.append("loss=nonsaturating")
        model = config.get("model", {})
        g_width, d_width = model.get("g", {}).get("width"), model.get("d", {}).get("width")
        if g_width and d_width and d_width > g_width:
            # a generator narrower than its critic is outclassed, whatever the learning rates: the
            # failure_demo recipe (G 2 channels, D 32) recovers at G's width 32, not at 4 or a lower D lr
            cures.insert(0, f"model.g.width={d_width}")
        elif g_width:
            cures.append(f"model.g.width={2 * g_width}")
        if config.get("train", {}).get("d_steps", 1) > 1:
            cures.append("train.d_steps=1")
        findings.append(Finding(
            "convergence_failure", "medium" if recovered else "high", s.steps[i], s.steps[j],
            f"D right on {100 * _mean(real[i:j + 1]):.0f}% of real and {100 * _mean(fake[i:j + 1]):.0f}% of fake "
            f"samples for {j - i + 1} log intervals; loss/d {_mean(s.get('loss/d')[i:j + 1]):.3g}, "
            f"loss/g {g[i]:.3g} -> {g[j]:.3g}" + ("; recovered after" if recovered else "; not recovered"),
            {"acc/real": _mean(real[i:j + 1]), "acc/fake": _mean(fake[i:j + 1]),
             "loss/d": _mean(s.get("loss/d")[i:j + 1]), "loss/g_start": g[i], "loss/g_end": g[j]},
            cures, recovered))
    return findings


def vanishing_gradient(s: Series, config: dict, t: dict) -> list[Finding]:
    """G's gradient near zero while D rejects the fakes: the saturating minimax loss early on."""
    grad, fake = s.get("grad_norm/g"), s.get("acc/fake")
    peak = max((v for v in grad if math.isfinite(v)), default=math.nan)
    if not math.isfinite(peak) or peak <= 0:
        return []
    flags = [g < t["ratio"] * peak and f >= t["accuracy"] for g, f in zip(grad, fake)]
    cures = ["loss=nonsaturating"] if _loss(config) == "Minimax" else []
    cures += ["loss=wgan_gp model.d.norm=layer"]
    return [Finding(
        "vanishing_gradient", "high" if j == len(s) - 1 else "medium", s.steps[i], s.steps[j],
        f"grad_norm/g {_mean(grad[i:j + 1]):.3g}, under {100 * t['ratio']:g}% of its peak {peak:.3g}, while D "
        f"rejects {100 * _mean(fake[i:j + 1]):.0f}% of fakes",
        {"grad_norm/g": _mean(grad[i:j + 1]), "peak": peak, "acc/fake": _mean(fake[i:j + 1])},
        cures, j < len(s) - 1)
        for i, j in _runs(flags, s.steps, t["min_steps"])]


def _smooth(values: list[float], window: int) -> list[float]:
    return [_mean(values[max(0, i - window + 1):i + 1]) for i in range(len(values))]


def oscillation(s: Series, config: dict, t: dict) -> list[Finding]:
    """Losses that swing with a large long-term amplitude, or whose swing grows (spirals outward)."""
    g = s.get("loss/g")
    n = len(g)
    if n < 3 * t["window"]:
        return []
    half = g[n // 2:]
    smooth = _smooth(half, t["window"])[t["window"] - 1:]
    scale = _mean([abs(v) for v in half]) or 1.0
    amplitude = (max(smooth) - min(smooth)) / scale
    third = n // 3
    early, late = g[:third], g[-third:]
    growth = (statistics.pstdev(late) / statistics.pstdev(early)) if statistics.pstdev(early) > 0 else 0.0
    if amplitude < t["amplitude"] and growth < t["growth"]:
        return []
    cures = ["loss=wgan_gp model.d.norm=layer", "model.d.spectral_norm=true"]
    cures += _halved_lr(config, "d") + _halved_lr(config, "g")
    return [Finding(
        "oscillation", "medium", s.steps[n // 2], s.steps[-1],
        f"loss/g's {t['window']}-interval mean swings by {100 * amplitude:.0f}% of its level in the second half; "
        f"its spread in the last third is {growth:.1f}x the first third's",
        {"amplitude": amplitude, "growth": growth}, cures)]


SERIES_DETECTORS = (divergence, convergence_failure, vanishing_gradient, oscillation)


def detect(s: Series, config: dict, thresholds: dict) -> list[Finding]:
    findings = []
    for detector in SERIES_DETECTORS:
        findings += detector(s, config, thresholds[detector.__name__])
    return sorted(findings, key=lambda f: (SEVERITY[f.severity], f.start))


def balance(s: Series, tail: float) -> dict[str, float]:
    """D's accuracies over the last `tail` share of the run: the numbers behind a healthy verdict."""
    k = max(1, int(len(s) * tail))
    real, fake = _mean(s.get("acc/real")[-k:]), _mean(s.get("acc/fake")[-k:])
    return {"acc/real": real, "acc/fake": fake, "balance": abs(real - fake), "from_step": s.steps[-k]}
