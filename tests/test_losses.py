"""Each objective against values computed by hand from its paper's formula."""

import math

import torch
from torch.testing import assert_close

from gan_cli.losses import Minimax, NonSaturating


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
