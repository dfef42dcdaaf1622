"""The update rules: k discriminator steps, then a generator step that leaves D untouched."""

import copy

import torch
from torch.testing import assert_close

from gan_cli.losses import NonSaturating
from gan_cli.models import mlp
from gan_cli.steps import discriminator_step, generator_step


def _pair():
    torch.manual_seed(0)
    G = mlp.Generator(z_dim=4, shape=(2,), hidden=16)
    D = mlp.Discriminator(shape=(2,), hidden=8, pieces=2, dropout=0.0)
    return G, D, torch.optim.SGD(G.parameters(), lr=0.1), torch.optim.SGD(D.parameters(), lr=0.1)


def _same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_discriminator_step_updates_d_only():
    G, D, opt_g, opt_d = _pair()
    G0, D0 = copy.deepcopy(G), copy.deepcopy(D)
    loss, stats = discriminator_step(G, D, NonSaturating(), opt_d, torch.randn(8, 2), torch.randn(8, 4))
    assert _same(G, G0) and not _same(D, D0)
    assert all(p.grad is None for p in G.parameters())
    assert set(stats) == {"d/real", "d/fake", "acc/real", "acc/fake", "grad_norm/d"}
    assert loss.requires_grad is False


def test_generator_step_updates_g_and_leaves_d_untouched():
    G, D, opt_g, opt_d = _pair()
    G0, D0 = copy.deepcopy(G), copy.deepcopy(D)
    _, stats = generator_step(G, D, NonSaturating(), opt_g, torch.randn(8, 4))
    assert _same(D, D0) and not _same(G, G0)
    assert all(p.grad is None for p in D.parameters())  # no gradient was even computed for D
    assert all(p.requires_grad for p in D.parameters())  # and D is trainable again afterwards
    assert set(stats) == {"grad_norm/g"}


def test_discriminator_step_is_one_sgd_step_on_the_d_objective():
    G, D, _, opt_d = _pair()
    real, z = torch.randn(8, 2), torch.randn(8, 4)
    expected = copy.deepcopy(D)
    fake = G(z).detach()
    NonSaturating().d_loss(expected, real, fake)[0].backward()
    with torch.no_grad():
        for p in expected.parameters():
            p -= 0.1 * p.grad
    discriminator_step(G, D, NonSaturating(), opt_d, real, z)
    for p, q in zip(D.parameters(), expected.parameters()):
        assert_close(p, q)


def test_grad_norm_is_the_l2_norm_of_all_gradients():
    G, D, _, opt_d = _pair()
    _, stats = discriminator_step(G, D, NonSaturating(), opt_d, torch.randn(8, 2), torch.randn(8, 4))
    # recompute by hand after the fact: the step leaves .grad in place
    expected = torch.sqrt(sum((p.grad ** 2).sum() for p in D.parameters()))
    assert_close(stats["grad_norm/d"], expected)
