"""Detectors over the logged series. Each takes the series, the run's config (for cures phrased as
overrides) and its thresholds from conf/diagnose.yaml, and returns findings; none reads files."""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

from gan_cli import targets
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


R1 = "loss.r1=1"  # gamma 1, as measured on the gallery; Mescheder et al. 2018 take 10 on images


def wgan_gp(config: dict) -> str:
    """The WGAN-GP cure as overrides that the run's model takes: a critic with a norm= key (DCGAN's) must
    leave batch norm for the per-sample penalty; one without (the MLP) has none to leave."""
    return "loss=wgan_gp model.d.norm=layer" if "norm" in config.get("model", {}).get("d", {}) else "loss=wgan_gp"


def _saturates(config: dict) -> bool:
    """Whether the run's loss= class declares a saturating G objective (Minimax). Only a shipped class is
    imported: a run's config is someone's file."""
    target = config.get("loss", {}).get("_target_", "")
    if not isinstance(target, str) or not targets.allowed(target):
        return False
    from hydra.utils import get_class

    return bool(getattr(get_class(target), "saturates", False))


def divergence(s: Series, config: dict, t: dict) -> list[Finding]:
    # the VAE's and the autoencoder's objectives can blow up too; a Gaussian mixture's fit logs no loss
    for name in ("loss/d", "loss/g", "loss/vae", "loss/ae"):
        if name not in s.values:  # never logged (a damaged file's rows): nothing to judge, not a NaN
            continue
        values = s.get(name)
        bad = [i for i, v in enumerate(values) if not math.isfinite(v) or abs(v) > t["explode"]]
        if bad:
            i = bad[0]
            cures = (_halved_lr(config, "d") + _halved_lr(config, "g") + ["model.d.spectral_norm=true"]
                     if adversarial(config) else _halved_lr(config, "g"))  # one optimiser, optimizer.g
            return [Finding(
                "divergence", "high", s.steps[i], s.steps[-1],
                f"{name} became {values[i]:.3g} at step {s.steps[i]} (|loss| > {t['explode']:g} or not finite)",
                {"metric": name, "value": values[i]}, cures)]
    return []


def convergence_failure(s: Series, config: dict, t: dict) -> list[Finding]:
    """D wins outright: it classifies nearly every real and fake sample right for a while."""
    real, fake = s.get("acc/real"), s.get("acc/fake")
    flags = [r >= t["accuracy"] and f >= t["accuracy"] for r, f in zip(real, fake)]
    findings = []
    for i, j in _runs(flags, s.steps, t["min_steps"]):
        recovered = j < len(s) - 1
        g = s.get("loss/g")
        # in the order of their measured effect (bench/diagnose_cures.py, README): on failure_demo (G 2
        # channels against D 32 at 5x its rate) only G's capacity cured it; D's rate at G's, z_dim 200,
        # spectral norm, label smoothing 0.9, instance noise 0.1 and R1 10 each left D right on 100% of both
        cures = []
        model = config.get("model", {})
        g_width, d_width = model.get("g", {}).get("width"), model.get("d", {}).get("width")
        if g_width and d_width and d_width > g_width:
            cures.append(f"model.g.width={d_width}")  # a generator narrower than its critic is outclassed
        elif g_width:
            cures.append(f"model.g.width={2 * g_width}")
        if _saturates(config):
            cures.append("loss=nonsaturating")
        if config.get("train", {}).get("d_steps", 1) > 1:
            cures.append("train.d_steps=1")
        if not g_width:  # no capacity to give: the textbook rebalancing, unproven on the gallery
            cures += _balanced_lr(config)
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
    cures = ["loss=nonsaturating"] if _saturates(config) else []
    cures += [wgan_gp(config)]
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
    if is_began(s):
        # BEGAN's loss/g is L(G(z)), which follows gamma L(x) down as D learns to reconstruct: a drift of
        # convergence, not a swing. began_convergence judges such a run by M_global instead
        return []
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
    # in the order of their measured effect on oscillation_demo (bench/diagnose_cures.py, README): R1
    # (Mescheder et al. 2018's cure for exactly this) made it healthy, swing 206% -> 1% of loss/g's level;
    # spectral norm 3%; half D's rate 53%. WGAN-GP diverged; half G's rate, instance noise, historical
    # averaging and unrolling 5 left it swinging
    cures = [R1, "model.d.spectral_norm=true"] + _halved_lr(config, "d")
    return [Finding(
        "oscillation", "medium", s.steps[n // 2], s.steps[-1],
        f"loss/g's {t['window']}-interval mean swings by {100 * amplitude:.0f}% of its level in the second half; "
        f"its spread in the last third is {growth:.1f}x the first third's",
        {"amplitude": amplitude, "growth": growth}, cures)]


M_GLOBAL = "began/m_global"


def is_began(s: Series) -> bool:
    """A BEGAN run (algorithm=began) logs M_global; its D reconstructs images and has no accuracy, so
    acc/real and acc/fake are absent (NaN) and the accuracy detectors stay silent on it."""
    return any(math.isfinite(v) for v in s.get(M_GLOBAL))


def _early_and_late(s: Series, early: float, tail: float) -> tuple[int, int, float, float]:
    """Rows in the first `early` and the last `tail` share of the run, and M_global's mean over each."""
    m = s.get(M_GLOBAL)
    a, b = max(1, int(len(s) * early)), max(1, int(len(s) * tail))
    return a, b, _mean(m[:a]), _mean(m[-b:])


def began_convergence(s: Series, config: dict, t: dict) -> list[Finding]:
    """BEGAN's own convergence judgement (Berthelot et al. 2017, section 3.4.1): M_global = L(x) +
    |gamma L(x) - L(G(z))| falls while the run converges and stalls or rises when it does not (mode
    collapse, k pinned at 0 or 1). A failure: over the last `tail` share of the run it is still above
    `share` of its level in the first `early` share."""
    if not is_began(s) or s.steps[-1] < t["min_steps"] or len(s) < 2:
        return []  # too early to judge: the live watch asks at every logged row from the first
    a, b, early, late = _early_and_late(s, t["early"], t["tail"])
    if not (math.isfinite(early) and math.isfinite(late)) or late <= t["share"] * early:
        return []
    k = _mean(s.get("began/k")[-b:])
    algorithm = config.get("algorithm", {})
    gamma = algorithm.get("gamma")
    cures = []
    if gamma and math.isfinite(k) and k <= t["k_pinned"]:
        # k at 0: G cannot bring L(G(z)) down to gamma L(x) even when D stops pushing the fakes away; a
        # higher gamma asks less of it (and buys diversity)
        cures.append(f"algorithm.gamma={min(1.0, gamma + 0.2):g}")
    elif gamma and math.isfinite(k) and k >= 1 - t["k_pinned"]:
        # k at 1: D pushes the fakes away as hard as it may and L(G(z)) stays under gamma L(x): lower gamma
        cures.append(f"algorithm.gamma={max(0.1, gamma - 0.2):g}")
    # the paper halves the learning rate whenever M_global stalls (section 4.1)
    cures += _halved_lr(config, "d") + _halved_lr(config, "g")
    trend = "rose" if late > early else "stalled"
    return [Finding(
        "convergence_failure", "high", s.steps[-b], s.steps[-1],
        f"M_global {trend}: {late:.3g} over the last {b} log intervals against {early:.3g} over the first {a} "
        f"({100 * late / early:.0f}%; a converging BEGAN run falls under {100 * t['share']:.0f}%); k {k:.3g}",
        {M_GLOBAL + "_early": early, M_GLOBAL: late, "began/k": k}, cures)]


KL = "vae/kl"


def posterior_collapse(s: Series, config: dict, t: dict) -> list[Finding]:
    """A VAE whose posterior q(z|x) has fallen onto the prior: KL(q(z|x) || p(z)) near 0 over the end of the
    run, so the codes say next to nothing about the image, the decoder learns to ignore z, and every sample is
    close to the average image (Bowman et al. 2016)."""
    kl = s.get(KL)
    if not any(math.isfinite(v) for v in kl):
        return []
    b = max(1, int(len(s) * t["tail"]))
    late = _mean(kl[-b:])
    if not late < t["kl"]:
        return []
    algorithm = config.get("algorithm", {})
    beta = algorithm.get("beta")
    cures = [f"algorithm.beta={beta / 4:g}"] if isinstance(beta, (int, float)) and beta > 0 else []
    sigma = algorithm.get("sigma")
    if algorithm.get("likelihood") == "gaussian" and isinstance(sigma, (int, float)):
        cures.append(f"algorithm.sigma={sigma / 2:g}")  # a sharper likelihood weighs reconstruction more than KL
    return [Finding(
        "posterior_collapse", "high", s.steps[-b], s.steps[-1],
        f"KL(q(z|x) || p(z)) is {late:.3g} nats per image over the last {b} log intervals (under {t['kl']:g}): "
        f"the codes carry almost nothing about the image, so the decoder ignores z",
        {KL: late, "vae/recon": _mean(s.get("vae/recon")[-b:])}, cures)]


SERIES_DETECTORS = (divergence, convergence_failure, vanishing_gradient, oscillation, began_convergence,
                    posterior_collapse)
# those that read a discriminator's accuracies, gradients or game: they judge only adversarial algorithms
ADVERSARIAL = (convergence_failure, vanishing_gradient, oscillation, began_convergence)


def _algorithm_class(config: dict):
    """The run's algorithm class when it is a shipped one (a run's config is someone's file), else None."""
    target = config.get("algorithm", {}).get("_target_", "")
    if not isinstance(target, str) or not targets.allowed(target):
        return None
    from hydra.utils import get_class

    return get_class(target)


def adversarial(config: dict) -> bool:
    """Whether the run's algorithm trains a generator against a discriminator (Algorithm.adversarial); the
    baselines (VAE, autoencoder, Gaussian mixture) do not. A run from before the algorithm group trained a GAN."""
    cls = _algorithm_class(config)
    return True if cls is None else bool(getattr(cls, "adversarial", True))


def not_applicable(config: dict) -> list[str]:
    """The detectors that do not apply to the run's algorithm, by name: the adversarial ones without a D."""
    return [] if adversarial(config) else [d.__name__ for d in ADVERSARIAL]


def detect(s: Series, config: dict, thresholds: dict) -> list[Finding]:
    findings = []
    skipped = not_applicable(config)
    for detector in SERIES_DETECTORS:
        t = thresholds.get(detector.__name__)
        if t is None or detector.__name__ in skipped:  # a run resumed from before this detector lacks its thresholds
            continue
        findings += detector(s, config, t)
    for f in findings:
        f.cures = applicable(config, f.cures)
    return sorted(findings, key=lambda f: (SEVERITY[f.severity], f.start))


def applicable(config: dict, cures: list[str]) -> list[str]:
    """The cures the run's algorithm would take: a stabiliser it refuses (feature matching with LAPGAN,
    whose levels have no loss of G's to replace) is not suggested. Only a shipped algorithm class is
    imported: a run's config is someone's file."""
    from gan_cli.build import STABILISERS

    cls = _algorithm_class(config)
    if cls is None:
        return cures
    takes = getattr(cls, "stabilisers", frozenset())
    cures = [c for c in cures if all(k not in STABILISERS or k in takes for k in (p.split("=")[0] for p in c.split()))]
    if not getattr(cls, "adversarial", True):  # no loss= and no D: WGAN-GP, R1, D's rate and norms are moot
        cures = [c for c in cures if not any(p.startswith(("loss=", "loss.", "model.d.", "optimizer.d."))
                                             for p in c.split())]
    return cures


def balance(s: Series, tail: float, early: float = 0.1) -> dict[str, float]:
    """D's accuracies over the last `tail` share of the run: the numbers behind a healthy verdict. For
    BEGAN, whose D has no accuracy, M_global's mean over the first `early` and the last `tail` share."""
    k = max(1, int(len(s) * tail))
    real, fake = _mean(s.get("acc/real")[-k:]), _mean(s.get("acc/fake")[-k:])
    out = {"acc/real": real, "acc/fake": fake, "balance": abs(real - fake), "from_step": s.steps[-k]}
    # a run with more than one D (CycleGAN's d_a and d_b, LAPGAN's lapgan/<side>px per level) logs each
    # one's accuracies beside their means
    for name in sorted(n for n in s.values if n.endswith("/acc_real") and n != "acc/real"):
        each = name.removesuffix("/acc_real")
        out[f"{each}/acc_real"] = _mean(s.get(name)[-k:])
        out[f"{each}/acc_fake"] = _mean(s.get(f"{each}/acc_fake")[-k:])
    if is_began(s):
        _, _, first, last = _early_and_late(s, early, tail)
        out.update({M_GLOBAL + "_early": first, M_GLOBAL: last, "began/k": _mean(s.get("began/k")[-k:])})
    # the baselines' own curves: the VAE's bound and its terms, the autoencoder's reconstruction error (early
    # and late, per image, in nats or squared [0, 1] pixels), a Gaussian mixture's single fit
    a = max(1, int(len(s) * early))
    for name in ("vae/elbo", "ae/recon"):
        if any(math.isfinite(v) for v in s.get(name)):
            out.update({f"{name}_early": _mean(s.get(name)[:a]), name: _mean(s.get(name)[-k:])})
    if any(math.isfinite(v) for v in s.get("vae/elbo")):
        out.update({"vae/recon": _mean(s.get("vae/recon")[-k:]), KL: _mean(s.get(KL)[-k:])})
    for name in ("gmm/log_likelihood", "gmm/iterations", "gmm/converged"):
        if any(math.isfinite(v) for v in s.get(name)):
            out[name] = s.get(name)[-1]
    return out
