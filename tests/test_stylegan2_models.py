"""StyleGAN2's networks (gan_cli/models/stylegan2.py): demodulation, truncation, the moving average of W,
style mixing, the mapping depth, shapes per side, reproducible sampling, and D's double backward (R1)."""

import pytest
import torch
from torch.testing import assert_close

from gan_cli.errors import UserError
from gan_cli.models import stylegan2
from gan_cli.models.equalized import EqualizedLinear

Z = 16
TINY = dict(width=4, max_width=16, mapping_layers=2)  # a few thousand weights: quick on one CPU thread


def tiny_g(shape=(1, 28, 28), **kw) -> stylegan2.Generator:
    return stylegan2.Generator(z_dim=Z, shape=shape, **{**TINY, **kw})


def per_channel_variance(out: torch.Tensor) -> torch.Tensor:
    """(N, O, H, W) -> (O,), away from the zero-padded border where fewer inputs reach an output."""
    return out[:, :, 1:-1, 1:-1].transpose(0, 1).flatten(1).var(dim=1)


def test_demodulation_gives_unit_variance_outputs():
    torch.manual_seed(0)
    x = torch.randn(8, 64, 32, 32)  # (N, I, H, W), unit variance
    weight = torch.randn(16, 64, 3, 3)
    styles = torch.rand(8, 64) * 3 + 0.1  # random per sample and input channel
    out = stylegan2.modulated_conv2d(x, weight, styles)
    assert_close(per_channel_variance(out), torch.ones(16), atol=0.1, rtol=0)
    # without demodulation the variance is sum_ik (s_i w_ijk)^2, about 64 * 9 * E[s^2] here, not 1
    raw = stylegan2.modulated_conv2d(x, weight, styles, demodulate=False)
    expected = (weight[None] * styles[:, None, :, None, None]).square().sum(dim=(2, 3, 4)).mean(0)  # (O,)
    assert_close(per_channel_variance(raw), expected, rtol=0.1, atol=0)
    assert not torch.allclose(per_channel_variance(raw), torch.ones(16), atol=0.1)


def test_truncation_to_zero_gives_the_average_image():
    torch.manual_seed(0)
    G = tiny_g().eval()
    G.w_avg.copy_(torch.randn(Z))  # any mean, not only the initial zeros
    z = torch.randn(4, Z)
    x = G(z, truncation=0.0)
    for row in x[1:]:
        assert_close(row, x[0])
    x = G(z, truncation=1.0)
    assert not torch.allclose(x[1], x[0])
    w = torch.randn(4, G.num_ws, Z)
    assert_close(G.truncate(w, 0.7), G.w_avg + 0.7 * (w - G.w_avg))


def test_w_avg_follows_the_lerp_in_training_and_stays_in_eval():
    torch.manual_seed(0)
    G = tiny_g(w_avg_beta=0.9)  # default style_mixing 0.9: the second z's w must not move w_avg
    G.w_avg.copy_(torch.randn(Z))
    before = G.w_avg.clone()
    z = torch.randn(6, Z)
    with torch.no_grad():
        w = G.mapping(z)  # mapping alone does not touch w_avg
    assert_close(G.w_avg, before)
    G.train()(z)
    assert_close(G.w_avg, 0.9 * before + 0.1 * w.mean(0))  # lerp(mean w, w_avg, beta), by hand
    moved = G.w_avg.clone()
    G.eval()(z)
    assert_close(G.w_avg, moved)


@pytest.mark.parametrize("k", [1, 3, 8])
def test_mapping_has_the_requested_depth(k):
    G = tiny_g(mapping_layers=k)
    assert sum(isinstance(m, EqualizedLinear) for m in G.mapping_net.modules()) == k
    assert G.mapping(torch.randn(3, Z)).shape == (3, Z)


def test_mapping_needs_a_layer():
    with pytest.raises(UserError, match="model.g.mapping_layers=0"):
        tiny_g(mapping_layers=0)


def test_w_dim_zero_means_z_dim_and_lr_multiplier_scales_the_mapping():
    assert tiny_g().w_dim == Z
    G = tiny_g(w_dim=24, mapping_lr_multiplier=0.01)
    assert G.w_dim == 24 and G.mapping(torch.randn(2, Z)).shape == (2, 24)
    first = G.mapping_net[1]
    assert_close(first.weight.std() * 0.01, torch.tensor(1.0), atol=0.1, rtol=0)  # N(0, 1 / 0.01^2) stored


def test_style_mixing_crossover_ends_give_either_latent():
    torch.manual_seed(0)
    G = tiny_g().eval()
    z1, z2 = torch.randn(3, Z), torch.randn(3, Z)
    assert_close(G.mix(z1, z2, crossover=G.num_ws), G(z1))
    assert_close(G.mix(z1, z2, crossover=0), G(z2))
    mixed = G.mix(z1, z2, crossover=G.num_ws // 2)
    assert not torch.allclose(mixed, G(z1)) and not torch.allclose(mixed, G(z2))
    with pytest.raises(UserError, match="crossover"):
        G.mix(z1, z2, crossover=G.num_ws + 1)


def test_training_mixes_styles_only_with_style_mixing_on():
    torch.manual_seed(0)
    z = torch.randn(3, Z)
    G = tiny_g(style_mixing=1.0).train()
    with torch.no_grad():
        ws = G.mapping(z)[:, None].expand(-1, G.num_ws, -1)
        # noise strengths start at 0, so the only randomness left in training is the mixing
        assert not torch.allclose(G(z), G.synthesis(ws))
        G.style_mixing = 0.0
        assert_close(G(z), G.synthesis(ws))


@pytest.mark.parametrize("shape", [(1, 28, 28), (1, 32, 32), (3, 64, 64)])
@pytest.mark.parametrize("architecture", ["skip", "resnet"])
def test_shapes_follow_the_data(shape, architecture):
    G = tiny_g(shape, architecture=architecture)
    D = stylegan2.Discriminator(shape, width=4, max_width=16, architecture=architecture)
    x = G(torch.randn(5, Z))
    assert x.shape == (5, *shape) and G.resolution == shape[1]
    # one w per modulated conv (1 at the base, 2 per upsampling) plus the last toRGB, as the official count
    assert G.num_ws == {28: 6, 32: 8, 64: 10}[shape[1]]
    assert G.synthesis(torch.randn(5, G.num_ws, Z)).shape == (5, *shape)
    assert D(x).shape == (5,) and D.features(x).shape == (5, 16)


def test_sides_and_options_it_cannot_build_are_refused():
    with pytest.raises(UserError, match="model=stylegan2 cannot produce 30x30"):
        tiny_g((1, 30, 30))
    with pytest.raises(UserError, match="model=stylegan2 needs square images"):
        stylegan2.Discriminator((1, 28, 32))
    with pytest.raises(UserError, match="model.g.architecture=orig"):
        tiny_g(architecture="orig")
    with pytest.raises(UserError, match="unconditional"):
        tiny_g(num_classes=10)
    with pytest.raises(UserError, match=r"model.g.style_mixing=1.5 must be a probability"):
        tiny_g(style_mixing=1.5)
    with pytest.raises(UserError, match="unconditional"):
        stylegan2.Discriminator((1, 28, 28), num_classes=10)


def test_eval_sampling_is_deterministic_and_training_noise_is_fresh():
    torch.manual_seed(0)
    G = tiny_g()
    with torch.no_grad():
        for m in G.modules():
            if isinstance(m, stylegan2.SynthesisLayer):
                m.noise_strength.fill_(1.0)  # noise that shows
    z = torch.randn(2, Z)
    G.eval()
    assert_close(G(z), G(z))
    G.train()
    G.style_mixing = 0.0
    assert not torch.allclose(G(z), G(z))


def test_builds_agree_under_one_seed_and_noise_maps_under_any():
    def build(seed):
        torch.manual_seed(seed)
        return tiny_g().state_dict()

    a, b, c = build(1), build(1), build(2)
    assert a.keys() == b.keys()
    for key in a:
        assert_close(a[key], b[key])
    noise = [k for k in a if k.endswith("noise_const")]
    assert len(noise) == 5  # one per modulated 3x3 conv: 7x7 once, 14x14 and 28x28 twice
    for key in noise:
        assert_close(a[key], c[key])  # drawn from their own seeded generator
    assert not torch.allclose(a["blocks.0.const"], c["blocks.0.const"])


def test_initialisation_is_the_official_one():
    G = tiny_g()
    layer = G.blocks[1].conv0
    assert_close(layer.affine(torch.zeros(1, Z)), torch.ones(1, layer.weight.shape[1]))  # bias_init 1
    assert_close(layer.noise_strength, torch.tensor(0.0))
    assert_close(layer.bias, torch.zeros_like(layer.bias))


@pytest.mark.parametrize("architecture", ["resnet", "skip", "orig"])
def test_discriminator_double_backward_for_r1(architecture):
    torch.manual_seed(0)
    D = stylegan2.Discriminator((3, 32, 32), width=4, max_width=16, architecture=architecture)
    x = torch.randn(6, 3, 32, 32, requires_grad=True)  # 6: groups of 3 for the stddev layer
    (grad,) = torch.autograd.grad(D(x).sum(), x, create_graph=True)
    grad.square().sum().backward()  # R1: the squared norm of D's input gradient, differentiated again
    # every weight but the last bias, which shifts all logits alike and so leaves the input gradient be
    missing = [name for name, p in D.named_parameters() if p.grad is None]
    assert missing == ["out.bias"]
    grads = [p.grad for p in D.parameters() if p.grad is not None]
    assert all(torch.isfinite(g).all() for g in grads)
    assert any(g.any() for g in grads)  # the penalty reaches D's weights


def test_discriminator_options():
    D = stylegan2.Discriminator((1, 28, 28), width=4, max_width=16, minibatch_stddev=0)
    assert D.stddev is None and D.conv.weight.shape[1] == 16
    D = stylegan2.Discriminator((1, 28, 28), width=4, max_width=16, minibatch_stddev=4)
    assert D.stddev.group_size == 4 and D.conv.weight.shape[1] == 17  # one more channel
    with pytest.raises(UserError, match="model.d.minibatch_stddev=-1"):
        stylegan2.Discriminator((1, 28, 28), minibatch_stddev=-1)
