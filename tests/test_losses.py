"""Each objective against values computed by hand from its paper's formula."""

import math

import pytest
import torch
from torch.testing import assert_close

from gan_cli.errors import UserError
from gan_cli.losses import LSGAN, WGAN, WGANGP, Hinge, Minimax, NonSaturating
from gan_cli.models.dcgan import Discriminator


class LogitsAsD(torch.nn.Module):
    """A 'discriminator' whose logits are its input, so a test chooses D's outputs directly."""

    def forward(self, x, y=None):
        return x


def sigmoid(v):
    return 1 / (1 + math.exp(-v))


REAL = torch.tensor([0.0, 2.0, -1.0])
FAKE = torch.tensor([-1.0, 1.0, -3.0])


def test_discriminator_objective_is_the_negated_value_function():
    # V = E[log D(x)] + E[log(1 - D(G(z)))]; D minimises -V
    v = (sum(math.log(sigmoid(r)) for r in REAL.tolist()) / 3
         + sum(math.log(1 - sigmoid(f)) for f in FAKE.tolist()) / 3)
    for loss in (Minimax(), NonSaturating()):
        value, _ = loss.d_loss(LogitsAsD(), REAL, FAKE)
        assert_close(value, torch.tensor(-v))


def test_minimax_generator_minimises_log_one_minus_d():
    expected = sum(math.log(1 - sigmoid(f)) for f in FAKE.tolist()) / 3
    value, _ = Minimax().g_loss(LogitsAsD(), FAKE)
    assert_close(value, torch.tensor(expected))


def test_nonsaturating_generator_maximises_log_d():
    expected = -sum(math.log(sigmoid(f)) for f in FAKE.tolist()) / 3
    value, _ = NonSaturating().g_loss(LogitsAsD(), FAKE)
    assert_close(value, torch.tensor(expected))


def test_minimax_saturates_where_nonsaturating_does_not():
    # When D rejects a fake confidently (logit -10), d/dlogit log(1 - sigmoid) ~ -sigmoid(-10) ~ 4.5e-5,
    # while d/dlogit -log sigmoid ~ -(1 - sigmoid(-10)) ~ -1: the reason for the non-saturating form.
    grads = {}
    for loss in (Minimax(), NonSaturating()):
        f = torch.tensor([-10.0], requires_grad=True)
        loss.g_loss(LogitsAsD(), f)[0].backward()
        grads[type(loss).__name__] = f.grad.item()
    assert_close(torch.tensor(grads["Minimax"]), torch.tensor(-sigmoid(-10.0)))
    assert_close(torch.tensor(grads["NonSaturating"]), torch.tensor(-(1 - sigmoid(-10.0))))


def test_losses_stay_finite_for_confident_discriminators():
    huge = torch.tensor([200.0, -200.0])
    for loss in (Minimax(), NonSaturating()):
        d, _ = loss.d_loss(LogitsAsD(), huge, -huge)
        g, _ = loss.g_loss(LogitsAsD(), huge)
        assert torch.isfinite(d) and torch.isfinite(g)


def test_statistics_are_d_outputs_and_accuracies():
    _, stats = NonSaturating().d_loss(LogitsAsD(), REAL, FAKE)
    assert_close(stats["d/real"], torch.tensor(sum(sigmoid(r) for r in REAL.tolist()) / 3))
    assert_close(stats["d/fake"], torch.tensor(sum(sigmoid(f) for f in FAKE.tolist()) / 3))
    # real counted right when logit > 0: 2.0 only (0.0 is undecided, counted wrong)
    assert_close(stats["acc/real"], torch.tensor(1 / 3))
    # fake counted right when logit <= 0: -1 and -3
    assert_close(stats["acc/fake"], torch.tensor(2 / 3))


def mean(values):
    return sum(values) / len(values)


R, FK = REAL.tolist(), FAKE.tolist()


# -- WGAN, WGAN-GP, LSGAN, hinge: both players' values -------------------------------------------------

def test_wasserstein_critic_and_generator():
    # critic: E[D(G(z))] - E[D(x)];  G: -E[D(G(z))]. WGAN-GP's are the same once its penalty is weighted 0
    expected_d = mean(FK) - mean(R)
    expected_g = -mean(FK)
    for loss in (WGAN(), WGANGP(gp_weight=0.0)):
        d, _ = loss.d_loss(LogitsAsD(), REAL, FAKE)
        g, _ = loss.g_loss(LogitsAsD(), FAKE)
        assert_close(d, torch.tensor(expected_d))
        assert_close(g, torch.tensor(expected_g))


def test_lsgan_regresses_onto_its_targets():
    a, b, c = -1.0, 1.0, 0.0  # the chi^2 coding, so no target is zero by accident
    expected_d = 0.5 * mean([(r - b) ** 2 for r in R]) + 0.5 * mean([(f - a) ** 2 for f in FK])
    expected_g = 0.5 * mean([(f - c) ** 2 for f in FK])
    loss = LSGAN(a=a, b=b, c=c)
    assert_close(loss.d_loss(LogitsAsD(), REAL, FAKE)[0], torch.tensor(expected_d))
    assert_close(loss.g_loss(LogitsAsD(), FAKE)[0], torch.tensor(expected_g))


def test_lsgan_defaults_are_the_zero_one_coding():
    expected_d = 0.5 * mean([(r - 1) ** 2 for r in R]) + 0.5 * mean([f ** 2 for f in FK])
    expected_g = 0.5 * mean([(f - 1) ** 2 for f in FK])
    assert_close(LSGAN().d_loss(LogitsAsD(), REAL, FAKE)[0], torch.tensor(expected_d))
    assert_close(LSGAN().g_loss(LogitsAsD(), FAKE)[0], torch.tensor(expected_g))


def test_hinge_discriminator_and_generator():
    # REAL = [0, 2, -1]: relu(1 - r) = [1, 0, 2];  FAKE = [-1, 1, -3]: relu(1 + f) = [0, 2, 0]
    expected_d = mean([max(0.0, 1 - r) for r in R]) + mean([max(0.0, 1 + f) for f in FK])
    assert_close(torch.tensor(expected_d), torch.tensor(1.0 + 2 / 3))  # the hand sum above, spelled out
    d, _ = Hinge().d_loss(LogitsAsD(), REAL, FAKE)
    g, _ = Hinge().g_loss(LogitsAsD(), FAKE)
    assert_close(d, torch.tensor(expected_d))
    assert_close(g, torch.tensor(-mean(FK)))


# -- WGAN-GP's gradient penalty -------------------------------------------------------------------------

class LinearCritic(torch.nn.Module):
    """D(x) = w.x + b: its input gradient is w everywhere, so ||grad D(xhat)|| = ||w|| whatever eps."""

    def __init__(self, w):
        super().__init__()
        self.linear = torch.nn.Linear(len(w), 1)
        with torch.no_grad():
            self.linear.weight.copy_(torch.tensor([w]))
            self.linear.bias.fill_(0.5)

    def forward(self, x, y=None):
        return self.linear(x).flatten()


X_REAL = torch.tensor([[1.0, 2.0], [-1.0, 0.5], [0.0, 3.0], [2.0, -2.0]])
X_FAKE = torch.tensor([[0.0, 0.0], [1.0, 1.0], [-2.0, 1.0], [0.5, 0.5]])


@pytest.mark.parametrize("w,penalty", [([0.6, 0.8], 0.0), ([1.8, 2.4], 4.0)])  # ||w|| = 1 and ||w|| = 3
def test_gradient_penalty_of_a_linear_critic(w, penalty):
    D = LinearCritic(w)
    wasserstein = mean([w[0] * x[0] + w[1] * x[1] + 0.5 for x in X_FAKE.tolist()]) \
        - mean([w[0] * x[0] + w[1] * x[1] + 0.5 for x in X_REAL.tolist()])
    loss, stats = WGANGP(gp_weight=10.0).d_loss(D, X_REAL, X_FAKE)
    assert_close(stats["loss/gp"], torch.tensor(penalty))  # unweighted (||w|| - 1)^2
    assert_close(loss, torch.tensor(wasserstein + 10.0 * penalty))
    assert not stats["loss/gp"].requires_grad


def test_gradient_penalty_carries_gradient_to_the_critic():
    # d/dw of the critic loss = d/dw [E[w.xf] - E[w.xr]] + lambda * 2 (||w|| - 1) w / ||w||
    w, lam = [1.8, 2.4], 10.0
    norm = math.hypot(*w)  # 3
    wasserstein_grad = [mean([x[i] for x in X_FAKE.tolist()]) - mean([x[i] for x in X_REAL.tolist()])
                        for i in range(2)]
    expected = [wasserstein_grad[i] + lam * 2 * (norm - 1) * w[i] / norm for i in range(2)]
    D = LinearCritic(w)
    WGANGP(gp_weight=lam).d_loss(D, X_REAL, X_FAKE)[0].backward()
    assert D.linear.weight.grad is not None
    assert_close(D.linear.weight.grad, torch.tensor([expected]))


def test_gradient_penalty_alone_has_the_papers_gradient():
    # the penalty term by itself: d/dw lambda * (||w|| - 1)^2 = lambda * 2 (||w|| - 1) w / ||w||
    w, lam = [1.8, 2.4], 10.0
    norm = math.hypot(*w)
    D = LinearCritic(w)
    (lam * WGANGP(gp_weight=lam).gradient_penalty(D, X_REAL, X_FAKE)).backward()
    assert_close(D.linear.weight.grad, torch.tensor([[lam * 2 * (norm - 1) * wi / norm for wi in w]]))


def test_wgan_gp_refuses_a_batch_norm_critic():
    with pytest.raises(UserError, match="model.d.norm=layer"):
        WGANGP().check(Discriminator(shape=(1, 28, 28), width=8, norm="batch"))
    WGANGP().check(Discriminator(shape=(1, 28, 28), width=8, norm="layer"))


def test_wgan_gp_does_not_clip():
    D = torch.nn.Linear(3, 2)
    with torch.no_grad():
        D.weight.fill_(0.5)
    WGANGP().after_d_step(D)
    assert_close(D.weight, torch.full((2, 3), 0.5))


# -- WGAN's weight clipping -----------------------------------------------------------------------------

def test_wgan_clips_every_critic_weight():
    D = torch.nn.Linear(3, 2)
    inside = [[0.005, -0.01, 0.0], [0.5, -2.0, 0.009]]
    with torch.no_grad():
        D.weight.copy_(torch.tensor(inside))
        D.bias.copy_(torch.tensor([-0.3, 0.002]))
    WGAN(clip=0.01).after_d_step(D)
    for p in D.parameters():
        assert p.min() >= -0.01 and p.max() <= 0.01
    # values already inside [-0.01, 0.01] are left as they were; the others land on the bound
    assert_close(D.weight, torch.tensor([[0.005, -0.01, 0.0], [0.01, -0.01, 0.009]]))
    assert_close(D.bias, torch.tensor([-0.01, 0.002]))


# -- statistics: each objective's own scale and threshold -----------------------------------------------

@pytest.mark.parametrize("loss", [WGAN(), WGANGP(gp_weight=0.0), Hinge()], ids=["wgan", "wgan_gp", "hinge"])
def test_critic_statistics_are_raw_outputs_with_threshold_zero(loss):
    _, stats = loss.d_loss(LogitsAsD(), REAL, FAKE)
    assert_close(stats["d/real"], torch.tensor(mean(R)))
    assert_close(stats["d/fake"], torch.tensor(mean(FK)))
    assert_close(stats["acc/real"], torch.tensor(1 / 3))  # only 2.0 > 0
    assert_close(stats["acc/fake"], torch.tensor(2 / 3))  # -1 and -3 <= 0


def test_lsgan_accuracy_threshold_is_halfway_between_its_targets():
    real, fake = torch.tensor([0.6, 0.4, 0.9, 0.5]), torch.tensor([0.4, 0.6, 0.1, 0.5])
    _, stats = LSGAN(a=0.0, b=1.0).d_loss(LogitsAsD(), real, fake)
    assert_close(stats["d/real"], torch.tensor(0.6))
    assert_close(stats["acc/real"], torch.tensor(2 / 4))  # 0.6, 0.9 above 0.5; 0.4 and 0.5 not
    assert_close(stats["acc/fake"], torch.tensor(3 / 4))  # 0.4, 0.1, 0.5 at or below 0.5
    # with the chi^2 coding the midpoint is 0: 0.4 is now counted real
    _, stats = LSGAN(a=-1.0, b=1.0, c=0.0).d_loss(LogitsAsD(), real, fake)
    assert_close(stats["acc/real"], torch.tensor(4 / 4))
