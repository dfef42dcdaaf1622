"""The distribution metrics, on features already extracted: Frechet distance (Heusel et al. 2017), KID
(Binkowski et al. 2018), Inception Score (Salimans et al. 2016), precision and recall (Kynkaanniemi et
al. 2019), density and coverage (Naeem et al. 2020). Each takes tensors and returns numbers; which
network made the features is the caller's business, and it names the result after that network."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from gan_cli.errors import UserError


def gaussian(features: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and covariance (n - 1 in the denominator, as numpy.cov and pytorch-fid) in float64."""
    x = features.double()
    if len(x) <= x.shape[1]:
        raise UserError(f"n={len(x)} samples for a Frechet distance in {x.shape[1]} dimensions: the covariance "
                        f"has rank at most n-1 < {x.shape[1]}, so the distance is not defined; use n > {x.shape[1]} "
                        f"(10000 is the convention)")
    return x.mean(0), torch.cov(x.T)


def frechet(mu1: Tensor, sigma1: Tensor, mu2: Tensor, sigma2: Tensor) -> float:
    """||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)). The trace of the square root is the sum of the
    square roots of the eigenvalues of S1 S2 (real and non-negative in exact arithmetic), as torchmetrics."""
    root_trace = torch.linalg.eigvals(sigma1 @ sigma2).sqrt().real.sum()
    return float((mu1 - mu2).square().sum() + sigma1.trace() + sigma2.trace() - 2 * root_trace)


def frechet_distance(real: Tensor, fake: Tensor) -> float:
    return frechet(*gaussian(real), *gaussian(fake))


def kid(real: Tensor, fake: Tensor, subsets: int = 100, subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Unbiased MMD^2 with the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3, averaged over random
    subsets of both sets (mean, standard deviation), as Binkowski et al. and torch-fidelity."""
    m = min(subset_size, len(real), len(fake))
    if m < 2:
        raise UserError(f"KID needs at least 2 samples per subset; got {m}")
    g = torch.Generator().manual_seed(seed)
    d = real.shape[1]
    values = []
    for _ in range(subsets):
        x = real[torch.randperm(len(real), generator=g)[:m]].double()
        y = fake[torch.randperm(len(fake), generator=g)[:m]].double()
        kxx, kyy, kxy = ((a @ b.T / d + 1) ** 3 for a, b in ((x, x), (y, y), (x, y)))
        mmd = ((kxx.sum() - kxx.diagonal().sum()) / (m * (m - 1)) + (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
               - 2 * kxy.mean())
        values.append(float(mmd))
    t = torch.tensor(values)
    return float(t.mean()), float(t.std()) if len(t) > 1 else 0.0


def inception_score(logits: Tensor, splits: int = 10) -> tuple[float, float]:
    """exp(E_x KL(p(y|x) || p(y))), over `splits` equal parts of the samples (mean, standard deviation)."""
    log_p = logits.double().log_softmax(1)
    scores = []
    for part in log_p.chunk(splits):
        log_py = part.exp().mean(0).log()
        scores.append(math.exp(float((part.exp() * (part - log_py)).sum(1).mean())))
    t = torch.tensor(scores)
    return float(t.mean()), float(t.std()) if len(t) > 1 else 0.0


def _kth_neighbour(x: Tensor, k: int, chunk: int = 2048) -> Tensor:
    """Distance from each row of x to its k-th nearest other row."""
    out = []
    for i in range(0, len(x), chunk):
        d = torch.cdist(x[i:i + chunk], x)
        out.append(d.kthvalue(k + 1, dim=1).values)  # the row itself is its own nearest, at 0
    return torch.cat(out)


def _balls(points: Tensor, centres: Tensor, radii: Tensor, chunk: int = 2048) -> tuple[Tensor, Tensor]:
    """For each point, how many balls (centre, radius) hold it; for each ball, whether any point is in it.
    In chunks, so 10k x 10k never sits in memory at once."""
    counts, hit = [], torch.zeros(len(centres), dtype=torch.bool)
    for i in range(0, len(points), chunk):
        inside = torch.cdist(points[i:i + chunk], centres) <= radii
        counts.append(inside.sum(1))
        hit |= inside.any(0)
    return torch.cat(counts), hit


def precision_recall(real: Tensor, fake: Tensor, k: int = 3) -> tuple[float, float]:
    """Precision: the share of fakes inside the real manifold (the union of balls around each real
    sample reaching its k-th nearest real neighbour); recall: the share of reals inside the fake one."""
    real, fake = real.float(), fake.float()
    precision = (_balls(fake, real, _kth_neighbour(real, k))[0] > 0).float().mean()
    recall = (_balls(real, fake, _kth_neighbour(fake, k))[0] > 0).float().mean()
    return float(precision), float(recall)


def density_coverage(real: Tensor, fake: Tensor, k: int = 5) -> tuple[float, float]:
    """Density: how many real-sample balls hold each fake, over k (1 on average when the sets match);
    coverage: the share of real balls that hold at least one fake. Balls as in precision_recall."""
    real, fake = real.float(), fake.float()
    counts, hit = _balls(fake, real, _kth_neighbour(real, k))
    return float(counts.sum() / (k * len(fake))), float(hit.float().mean())


def class_kl(predicted: Tensor, data_counts: Tensor) -> float:
    """KL(p_fake || p_data) of class histograms: 0 when the samples' classes have the data's balance,
    log(K) when they all fall in one of K balanced classes."""
    p = predicted.double() / predicted.sum()
    q = data_counts.double() / data_counts.sum()
    nz = p > 0
    return float((p[nz] * (p[nz] / q[nz]).log()).sum())
