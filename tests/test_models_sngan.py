"""SNGAN's ResNet pair (Miyato et al. 2018): shapes, ranges, the residual plan, spectral norm, gradients."""

import math

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from gan_cli.errors import UserError
from gan_cli.models import sngan


def small_pair(shape, spectral_norm=True):
    return (sngan.Generator(z_dim=8, shape=shape, width=16),
            sngan.Discriminator(shape=shape, width=16, spectral_norm=spectral_norm))


@pytest.mark.parametrize("shape", [(3, 32, 32), (1, 32, 32), (3, 64, 64)])
def test_shapes_follow_the_data(shape):
    torch.manual_seed(0)
    G, D = small_pair(shape)
    assert G.z_dim == 8 and G.num_classes is None and D.num_classes is None  # unconditional for now
    x = G(torch.randn(4, 8))
    assert x.shape == (4, *shape)
    assert x.min() >= -1 and x.max() <= 1  # tanh output, the data's range
    assert D(x).shape == (4,)
    assert D(x, torch.zeros(4, dtype=torch.long)).shape == (4,)  # labels are accepted and ignored


@pytest.mark.parametrize("side,up,down", [(32, 3, 1), (64, 4, 2), (16, 2, 0)])
def test_residual_plan(side, up, down):
    G, D = small_pair((3, side, side))
    assert sum(isinstance(m, sngan.UpBlock) for m in G.modules()) == up  # 4 -> ... -> side
    assert sum(isinstance(m, sngan.FirstBlock) for m in D.modules()) == 1
    d_blocks = [m for m in D.modules() if isinstance(m, sngan.DBlock)]
    assert [b.downsample for b in d_blocks] == [True] * down + [False, False]
    assert all(isinstance(b.shortcut, nn.Identity) for b in d_blocks if not b.downsample)
    # the blocks leave an 8x8 map, as in the paper's 32x32 model
    assert D.blocks(torch.randn(2, 3, side, side)).shape == (2, 16, 8, 8)


@pytest.mark.parametrize("side", [28, 4, 48])
def test_rejects_sides_it_cannot_produce(side):
    for make in (lambda: sngan.Generator(z_dim=8, shape=(1, side, side)),
                 lambda: sngan.Discriminator(shape=(1, side, side))):
        with pytest.raises(UserError, match=f"{side}x{side}.*e.g. 32 or 64.*model=dcgan for 28"):
            make()


def test_rejects_vector_data():
    with pytest.raises(UserError, match="model=mlp"):
        sngan.Generator(z_dim=8, shape=(2,))


def test_discriminator_has_no_batch_norm():
    G, D = small_pair((3, 32, 32))
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.GroupNorm, nn.InstanceNorm2d)) for m in D.modules())
    assert sum(isinstance(m, nn.BatchNorm2d) for m in G.modules()) == 2 * 3 + 1  # two per block + output


def test_spectral_norm_is_on_every_layer_of_d_and_only_when_asked():
    def layers(net):
        return [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]

    _, D = small_pair((3, 32, 32), spectral_norm=True)
    assert all(torch.nn.utils.parametrize.is_parametrized(m, "weight") for m in layers(D))
    _, D = small_pair((3, 32, 32), spectral_norm=False)
    assert not any(torch.nn.utils.parametrize.is_parametrized(m) for m in layers(D))


def test_spectral_norm_keeps_largest_singular_value_near_one():
    torch.manual_seed(0)
    D = sngan.Discriminator(shape=(3, 32, 32), width=16, spectral_norm=True)
    with torch.no_grad():  # the power iteration still runs: it updates in training mode, not with grads
        for _ in range(30):  # it converges over forward passes
            D(torch.randn(2, 3, 32, 32))
    D.eval()
    layers = [m for m in D.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(layers) == 2 + 1 + 3 * 2 + 1 + 1  # first block, its shortcut, 3 blocks, 1 shortcut, linear
    for m in layers:
        sigma = torch.linalg.matrix_norm(m.weight.flatten(1), ord=2)
        assert_close(sigma, torch.tensor(1.0), atol=0.05, rtol=0)


def test_xavier_initialisation_gains():
    torch.manual_seed(0)
    G = sngan.Generator(z_dim=8, shape=(3, 32, 32), width=32)

    def xavier_std(w, gain):  # uniform(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out))
        fan_in, fan_out = w[0].numel(), w.shape[0] * w[0, 0].numel()
        return torch.tensor(gain * math.sqrt(2.0 / (fan_in + fan_out)))

    block = G.blocks[0]
    for w, gain in [(block.conv1.weight, math.sqrt(2)), (block.conv2.weight, math.sqrt(2)),
                    (block.shortcut.weight, 1.0), (G.linear.weight, 1.0)]:
        assert_close(w.std(), xavier_std(w, gain), rtol=0.05, atol=0)
    assert all(m.bias.abs().max() == 0 for m in G.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))


def test_gradient_reaches_the_first_layer_of_both_nets():
    torch.manual_seed(0)
    G, D = small_pair((3, 32, 32))
    D(G(torch.randn(4, 8))).sum().backward()
    # under spectral norm the trained parameter is the parametrization's `original`
    for first in (G.linear, D.blocks[0].conv1):
        params = list(first.parameters())
        assert params and all(p.grad is not None and p.grad.abs().sum() > 0 for p in params)
