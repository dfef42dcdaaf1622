"""The metric formulas against hand computation and known cases."""

import math

import pytest
import torch
from torch.testing import assert_close

from gan_cli.errors import UserError
from gan_cli.metrics import distances


def _sqrtm_psd(a: torch.Tensor) -> torch.Tensor:
    w, v = torch.linalg.eigh(a)
    return v @ torch.diag(w.clamp(min=0).sqrt()) @ v.T


def test_frechet_in_one_dimension_by_hand():
    # N(0, 1) against N(m, s^2): m^2 + 1 + s^2 - 2s
    m, s = 3.0, 2.0
    one = torch.ones(1, 1, dtype=torch.float64)
    fd = distances.frechet(torch.zeros(1, dtype=torch.float64), one, torch.full((1,), m, dtype=torch.float64), one * s**2)
    assert_close(fd, m**2 + 1 + s**2 - 2 * s)


def test_frechet_matches_the_symmetric_square_root_form():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(6, 6, generator=g, dtype=torch.float64), torch.randn(6, 6, generator=g, dtype=torch.float64)
    s1, s2 = a @ a.T + 0.1 * torch.eye(6), b @ b.T + 0.1 * torch.eye(6)
    mu1, mu2 = torch.randn(6, generator=g, dtype=torch.float64), torch.randn(6, generator=g, dtype=torch.float64)
    r1 = _sqrtm_psd(s1)
    direct = (mu1 - mu2).square().sum() + s1.trace() + s2.trace() - 2 * _sqrtm_psd(r1 @ s2 @ r1).trace()
    assert_close(distances.frechet(mu1, s1, mu2, s2), float(direct))


def test_identical_sets_give_zero_and_a_shift_gives_its_square():
    x = torch.randn(5000, 8, generator=torch.Generator().manual_seed(1))
    assert_close(distances.frechet_distance(x, x), 0.0, atol=1e-6, rtol=0)
    shift = torch.tensor([1.0, -2.0, 0, 0, 0.5, 0, 0, 0])
    assert_close(distances.frechet_distance(x, x + shift), float(shift.square().sum()), atol=1e-5, rtol=1e-5)


def test_fewer_samples_than_dimensions_is_refused_with_the_reason():
    with pytest.raises(UserError, match=r"n=10 samples .* in 16 dimensions: the covariance has rank at most n-1"):
        distances.frechet_distance(torch.randn(10, 16), torch.randn(100, 16))


def test_kid_by_hand():
    # d = 1, k(x, y) = (xy + 1)^3; X = {0, 1}, Y = {2, 3}: off-diagonal K_XX 1, K_YY 343, mean K_XY 93/4
    mean, std = distances.kid(torch.tensor([[0.0], [1.0]]), torch.tensor([[2.0], [3.0]]), subsets=3, subset_size=2)
    assert_close(mean, 1 + 343 - 2 * 93 / 4)
    assert std == 0.0  # every subset is the whole of both sets


def test_kid_is_unbiased_near_zero_for_one_distribution_and_grows_with_a_shift():
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(2000, 16, generator=g), torch.randn(2000, 16, generator=g)
    same, spread = distances.kid(x, y, subsets=20, subset_size=500)
    assert abs(same) < 3 * spread + 1e-4
    shifted, _ = distances.kid(x, y + 1.0, subsets=20, subset_size=500)
    assert shifted > 100 * max(abs(same), 1e-4)


def test_inception_score_bounds():
    k = 10
    sure = torch.eye(k).repeat(50, 1) * 50  # every sample certain, classes balanced: IS = K
    assert_close(distances.inception_score(sure, splits=1)[0], float(k), rtol=1e-6, atol=1e-6)
    unsure = torch.zeros(500, k)  # p(y|x) uniform: IS = 1
    assert_close(distances.inception_score(unsure, splits=5), (1.0, 0.0))
    one_class = torch.zeros(500, k)
    one_class[:, 3] = 50  # certain but all the same class: IS = 1
    assert_close(distances.inception_score(one_class, splits=1)[0], 1.0, rtol=1e-6, atol=1e-6)


def test_precision_recall_density_coverage_on_hand_placed_points():
    real = torch.tensor([[0.0], [1.0], [2.0], [3.0]])  # with k = 1 every real ball has radius 1
    fake = torch.tensor([[0.5], [10.0]])  # the first is in the balls of 0 and 1; the second in none
    precision, recall = distances.precision_recall(real, fake, k=1)
    # fake balls (k = 1): radius 9.5 around both, so every real sample is inside one
    assert_close((precision, recall), (0.5, 1.0))
    density, coverage = distances.density_coverage(real, fake, k=1)
    assert_close((density, coverage), (2 / (1 * 2), 2 / 4))


def test_precision_and_recall_tell_collapse_from_noise():
    g = torch.Generator().manual_seed(3)
    real = torch.randn(1000, 4, generator=g)
    collapsed = 0.05 * torch.randn(1000, 4, generator=g)  # all near the centre: precise, no recall
    p, r = distances.precision_recall(real, collapsed)
    assert p > 0.95 and r < 0.2
    wide = 4 * torch.randn(1000, 4, generator=g)  # everywhere: recall, little precision
    p, r = distances.precision_recall(real, wide)
    assert p < 0.3 and r > 0.9


def test_class_kl():
    balanced = torch.full((10,), 100)
    assert_close(distances.class_kl(balanced, balanced), 0.0)
    one = torch.zeros(10, dtype=torch.long)
    one[7] = 500
    assert_close(distances.class_kl(one, balanced), math.log(10))
