"""Shapes, ranges and the papers' architectural rules for each model family."""

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from gan_cli.errors import UserError
from gan_cli.models import dcgan, mlp


@pytest.mark.parametrize("channels,side", [(1, 28), (3, 32), (3, 64), (1, 16)])
def test_dcgan_shapes_follow_the_data(channels, side):
    G = dcgan.Generator(z_dim=10, shape=(channels, side, side), width=8)
    D = dcgan.Discriminator(shape=(channels, side, side), width=8)
    x = G(torch.randn(5, 10))
    assert x.shape == (5, channels, side, side)
    assert x.min() >= -1 and x.max() <= 1  # tanh output, the data's range
    assert D(x).shape == (5,)


def test_dcgan_layer_plan_for_the_usual_sides():
    assert dcgan.upsampling_plan(28) == (7, 2)   # 7 -> 14 -> 28
    assert dcgan.upsampling_plan(32) == (4, 3)   # 4 -> 8 -> 16 -> 32
    assert dcgan.upsampling_plan(64) == (4, 4)   # the paper's 64x64 model


@pytest.mark.parametrize("side", [30, 8, 100])
def test_dcgan_rejects_sides_it_cannot_produce(side):
    with pytest.raises(UserError, match=f"{side}x{side}"):
        dcgan.Generator(z_dim=10, shape=(1, side, side))


def test_dcgan_follows_radford_guidelines():
    G = dcgan.Generator(z_dim=10, shape=(3, 32, 32), width=8)
    D = dcgan.Discriminator(shape=(3, 32, 32), width=8)
    g_layers, d_layers = list(G.net), list(D.net)
    assert isinstance(g_layers[-1], nn.Tanh) and not isinstance(g_layers[-2], nn.BatchNorm2d)
    assert isinstance(d_layers[1], nn.LeakyReLU) and d_layers[1].negative_slope == 0.2  # no BN on D's input
    assert not any(isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)) for m in D.modules())  # strided convs only
    assert sum(isinstance(m, nn.BatchNorm2d) for m in G.modules()) == 3
    convs = [m.weight for m in G.modules() if isinstance(m, nn.ConvTranspose2d)]
    std = torch.cat([w.flatten() for w in convs]).std()
    assert_close(std, torch.tensor(0.02), atol=2e-3, rtol=0)  # N(0, 0.02) initialisation


def test_discriminator_norm_options():
    for norm, kind in [("batch", nn.BatchNorm2d), ("instance", nn.InstanceNorm2d), ("layer", nn.GroupNorm)]:
        D = dcgan.Discriminator(shape=(1, 28, 28), width=8, norm=norm)
        assert any(isinstance(m, kind) for m in D.modules())
    D = dcgan.Discriminator(shape=(1, 28, 28), width=8, norm="none")
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.GroupNorm, nn.InstanceNorm2d)) for m in D.modules())
    with pytest.raises(UserError, match="unknown norm 'group'"):
        dcgan.Discriminator(shape=(1, 28, 28), norm="group")


@pytest.mark.parametrize("family", ["dcgan", "mlp"])
def test_spectral_norm_keeps_largest_singular_value_near_one(family):
    torch.manual_seed(0)
    D = (dcgan.Discriminator(shape=(1, 28, 28), width=8, spectral_norm=True) if family == "dcgan"
         else mlp.Discriminator(shape=(1, 28, 28), hidden=16, pieces=2, spectral_norm=True))
    for _ in range(30):  # the power iteration converges over forward passes in training mode
        D(torch.randn(4, 1, 28, 28))
    D.eval()
    for m in D.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            sigma = torch.linalg.matrix_norm(m.weight.flatten(1), ord=2)
            assert_close(sigma, torch.tensor(1.0), atol=0.05, rtol=0)


def test_mlp_follows_goodfellow_2014():
    G = mlp.Generator(z_dim=100, shape=(1, 28, 28))
    D = mlp.Discriminator(shape=(1, 28, 28))
    assert [m.out_features for m in G.modules() if isinstance(m, nn.Linear)] == [1200, 1200, 784]
    maxouts = [m for m in D.modules() if type(m).__name__ == "Maxout"]
    assert len(maxouts) == 2 and all(m.pieces == 5 and m.linear.out_features == 240 * 5 for m in maxouts)
    x = G(torch.randn(3, 100))
    assert x.shape == (3, 1, 28, 28) and D(x).shape == (3,)


def test_maxout_takes_the_max_over_pieces():
    from gan_cli.models.layers import Maxout

    m = Maxout(2, 1, pieces=3)
    with torch.no_grad():
        m.linear.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]]))
        m.linear.bias.zero_()
    assert_close(m(torch.tensor([[2.0, -5.0]])), torch.tensor([[3.0]]))  # max(2, -5, 3)


def test_mlp_handles_vector_data():
    G = mlp.Generator(z_dim=4, shape=(2,), hidden=16)
    D = mlp.Discriminator(shape=(2,), hidden=8, pieces=2)
    x = G(torch.randn(7, 4))
    assert x.shape == (7, 2) and D(x).shape == (7,)


@pytest.mark.parametrize("conditioning", ["projection", "concat"])
def test_conditional_dcgan_uses_the_label(conditioning):
    torch.manual_seed(0)
    G = dcgan.Generator(z_dim=10, shape=(1, 28, 28), width=8, num_classes=10)
    D = dcgan.Discriminator(shape=(1, 28, 28), width=8, num_classes=10, conditioning=conditioning).eval()
    G.eval()
    z = torch.randn(1, 10).repeat(2, 1)
    y = torch.tensor([3, 7])
    x = G(z, y)
    assert x.shape == (2, 1, 28, 28) and not torch.equal(x[0], x[1])  # same z, different class
    same_image = x[:1].repeat(2, 1, 1, 1)
    logits = D(same_image, y)
    assert logits.shape == (2,) and not torch.equal(logits[0], logits[1])  # same image, different class


def test_projection_adds_the_label_embedding_dot_features():
    D = dcgan.Discriminator(shape=(1, 16, 16), width=4, norm="none", num_classes=3, conditioning="projection").eval()
    x, y = torch.randn(2, 1, 16, 16), torch.tensor([0, 2])
    h = D.net(x)
    expected = D.head(h).flatten() + (D.project.weight[y] * h.sum(dim=(2, 3))).sum(1)
    assert_close(D(x, y), expected)


def test_conditional_mlp_concatenates_one_hot_labels():
    G = mlp.Generator(z_dim=4, shape=(2,), hidden=8, num_classes=3)
    D = mlp.Discriminator(shape=(2,), hidden=8, pieces=2, num_classes=3)
    assert G.net[0].in_features == 4 + 3 and D.net[0].linear.in_features == 2 + 3
    y = torch.tensor([0, 1, 2])
    assert G(torch.randn(3, 4), y).shape == (3, 2) and D(torch.randn(3, 2), y).shape == (3,)


def test_unconditional_generators_say_so():
    assert dcgan.Generator(z_dim=4, shape=(1, 16, 16)).num_classes is None
    assert mlp.Generator(z_dim=4, shape=(2,)).num_classes is None
