"""pix2pix's U-Net and PatchGAN, CycleGAN's ResNet generator: shapes, the papers' architectural rules, the
PatchGAN's receptive field measured by backpropagation, and the one-line refusals of sizes they cannot take."""

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from gan_cli.errors import UserError
from gan_cli.models import cyclegan, pix2pix
from gan_cli.models.cyclegan import ResnetGenerator
from gan_cli.models.pix2pix import PatchDiscriminator, UNetGenerator


def image(n, c, side, seed=0):
    return torch.rand(n, c, side, side, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.mark.parametrize("side,depth", [(28, 2), (32, 5), (64, 6), (256, 8), (48, 4), (6, 1)])
def test_unet_depth_follows_the_side(side, depth):
    assert pix2pix.auto_depth(side) == depth


@pytest.mark.parametrize("side", [28, 32, 64])
@pytest.mark.parametrize("c_in,c_out", [(1, 3), (3, 1), (3, 3)])
def test_generators_translate_to_the_target_shape(side, c_in, c_out):
    for G in (UNetGenerator(shape=(c_out, side, side), in_shape=(c_in, side, side), width=8),
              ResnetGenerator(shape=(c_out, side, side), in_shape=(c_in, side, side), width=8, blocks=2)):
        out = G(image(2, c_in, side))
        assert out.shape == (2, c_out, side, side)
        assert out.min() >= -1 and out.max() <= 1  # tanh: the data's range
        assert G.in_shape == (c_in, side, side) and G.num_classes is None and not hasattr(G, "z_dim")


@pytest.mark.parametrize("side", [28, 32, 64])
@pytest.mark.parametrize("field", [1, 16, 34, 70])
def test_patch_grid_matches_patches(side, field):
    D = PatchDiscriminator(shape=(3, side, side), width=8, receptive_field=field)
    P = D.patches(side)
    assert D(image(2, 3, side)).shape == (2, P, P)
    assert P == pix2pix.grid_side(side, pix2pix.conv_plan(field))


def test_patch_grid_table_of_the_docstring():
    # the table in pix2pix's docstring, as the code computes it
    table = {1: [28, 32, 64, 256], 16: [12, 14, 30, 126], 34: [5, 6, 14, 62], 70: [1, 2, 6, 30],
             142: [None, None, 2, 14], 286: [None, None, None, 6]}
    for field, grids in table.items():
        for side, P in zip([28, 32, 64, 256], grids):
            got = pix2pix.grid_side(side, pix2pix.conv_plan(field))
            assert (got if got >= 1 else None) == P, (field, side)
    assert {f: pix2pix.smallest_side(f) for f in table} == {1: 1, 16: 6, 34: 12, 70: 24, 142: 48, 286: 96}
    rows = [line.split("|") for line in pix2pix.__doc__.splitlines() if line.split("|")[0].strip().isdigit()]
    doc = {int(r[0]): [int(c.split("x")[0]) if "x" in c else None for c in r[1:5]] for r in rows}
    assert doc == table


@pytest.mark.parametrize("field", [1, 16, 34, 70, 142, 286])
def test_receptive_field_from_the_layer_list(field):
    D = PatchDiscriminator(shape=(1, 384, 384), width=2, receptive_field=field)
    assert D.receptive_field == field == pix2pix.receptive_field_of(D.net)


@pytest.mark.parametrize("field,side", [(1, 32), (16, 128), (34, 128), (70, 128), (142, 256)])
def test_receptive_field_measured_by_backprop(field, side):
    torch.manual_seed(0)
    D = PatchDiscriminator(shape=(1, side, side), width=4, receptive_field=field, norm="none").double()
    x = torch.randn(1, 1, side, side, dtype=torch.float64, requires_grad=True)
    logits = D(x)
    P = logits.shape[-1]
    logits[0, P // 2, P // 2].backward()  # one logit: the centre patch
    rows, cols = (x.grad[0, 0] != 0).nonzero(as_tuple=True)
    assert rows.min() > 0 and cols.min() > 0 and rows.max() < side - 1 and cols.max() < side - 1  # not clipped
    assert rows.max() - rows.min() + 1 == field and cols.max() - cols.min() + 1 == field


def test_unet_layer_plan_follows_the_paper():
    G = UNetGenerator(shape=(3, 256, 256), in_shape=(3, 256, 256), width=64)
    assert G.depth == 8
    downs = [next(m for m in d if isinstance(m, nn.Conv2d)) for d in G.downs]
    ups = [next(m for m in u if isinstance(m, nn.ConvTranspose2d)) for u in G.ups]
    assert [c.out_channels for c in downs] == [64, 128, 256, 512, 512, 512, 512, 512]  # C64-...-C512
    assert [c.out_channels for c in ups] == [512, 512, 512, 512, 256, 128, 64, 3]  # CD512 x3, C512, ..., C64, out
    assert all(c.kernel_size == (4, 4) and c.stride == (2, 2) for c in downs + ups)
    # the skip connections: every decoder layer after the innermost sees its predecessor's output
    # concatenated with the encoder's output at that resolution
    assert [c.in_channels for c in ups] == [512] + [2 * c.out_channels for c in reversed(downs[:-1])]
    assert not any(isinstance(m, nn.BatchNorm2d) for m in G.downs[0])  # no norm on C64
    assert isinstance(G.downs[1][0], nn.LeakyReLU) and G.downs[1][0].negative_slope == 0.2
    assert isinstance(G.ups[0][0], nn.ReLU) and isinstance(G.ups[-1][-1], nn.Tanh)
    assert G.dropout_layers == 3


def test_unet_skip_connections_carry_the_input_past_the_bottleneck():
    torch.manual_seed(0)
    G = UNetGenerator(shape=(1, 28, 28), in_shape=(1, 28, 28), width=8, dropout=0.0).eval()
    assert G.depth == 2
    G.downs[-1].register_forward_hook(lambda module, args, out: torch.zeros_like(out))  # zero the bottleneck
    x = image(1, 1, 28)
    x2 = x.clone()
    x2[0, 0, 14, 14] += 1.0
    with torch.no_grad():
        diff = (G(x2) - G(x)).abs()[0, 0]
    assert diff[12:17, 12:17].sum() > 0  # the change reaches the output near the pixel, through the skip
    assert diff[:8, :8].sum() == 0  # and only near it: the outermost skip's path is local


def test_unet_dropout_is_noise_in_eval_mode_too():
    torch.manual_seed(0)
    x = image(2, 1, 32)
    noisy = UNetGenerator(shape=(1, 32, 32), in_shape=(1, 32, 32), width=8, dropout=0.5).eval()
    with torch.no_grad():
        assert not torch.equal(noisy(x), noisy(x))  # the paper's test-time dropout
    quiet = UNetGenerator(shape=(1, 32, 32), in_shape=(1, 32, 32), width=8, dropout=0.0).eval()
    with torch.no_grad():
        assert torch.equal(quiet(x), quiet(x))


def test_resnet_generator_follows_cyclegan():
    G = ResnetGenerator(shape=(3, 256, 256), in_shape=(3, 256, 256), width=64, blocks=9)
    blocks = [m for m in G.net if isinstance(m, cyclegan.ResnetBlock)]
    assert len(blocks) == 9
    convs = [m for m in G.net if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    assert [(c.kernel_size[0], c.stride[0], c.out_channels) for c in convs] == [
        (7, 1, 64), (3, 2, 128), (3, 2, 256), (3, 2, 128), (3, 2, 64), (7, 1, 3)]  # c7s1-64, d128, d256, u128, u64
    assert isinstance(G.net[0], nn.ReflectionPad2d) and isinstance(blocks[0].block[0], nn.ReflectionPad2d)
    norms = [m for m in G.modules() if isinstance(m, nn.InstanceNorm2d)]
    assert norms and all(not m.affine for m in norms)  # the authors' instance norm
    x = torch.randn(1, 256, 8, 8)
    assert_close(blocks[0](x), x + blocks[0].block(x))  # residual
    assert sum(p.numel() for p in G.parameters()) == 11_378_179  # the authors' 11.378 M


def test_patch_discriminator_follows_pix2pix():
    D = PatchDiscriminator(shape=(3, 256, 256), condition_shape=(3, 256, 256), width=64)
    convs = [m for m in D.net if isinstance(m, nn.Conv2d)]
    assert [(c.stride[0], c.out_channels) for c in convs] == [(2, 64), (2, 128), (2, 256), (1, 512), (1, 1)]
    assert all(c.kernel_size == (4, 4) and c.padding == (1, 1) for c in convs)
    assert isinstance(D.net[1], nn.LeakyReLU) and D.net[1].negative_slope == 0.2  # no norm on C64
    assert sum(isinstance(m, nn.BatchNorm2d) for m in D.modules()) == 3
    assert sum(p.numel() for p in D.parameters()) == 2_768_705  # the authors' 2.769 M
    assert D.patches(256) == 30  # the paper's 30x30 grid of 70x70 patches


def test_conditional_discriminator_sees_the_condition():
    torch.manual_seed(0)
    D = PatchDiscriminator(shape=(3, 32, 32), condition_shape=(1, 32, 32), width=8, receptive_field=16).eval()
    assert D.net[0].in_channels == 3 + 1
    x = image(2, 3, 32)
    a, b = D(x, image(2, 1, 32, seed=1)), D(x, image(2, 1, 32, seed=2))
    assert a.shape == (2, 14, 14) and not torch.equal(a, b)
    with pytest.raises(ValueError, match="condition image"):
        D(x)
    U = PatchDiscriminator(shape=(3, 32, 32), width=8, receptive_field=16).eval()  # CycleGAN's: y ignored
    assert U.net[0].in_channels == 3 and torch.equal(U(x), U(x, image(2, 1, 32)))


def test_norm_and_spectral_norm_options():
    D = PatchDiscriminator(shape=(1, 32, 32), width=8, norm="instance")
    assert any(isinstance(m, nn.InstanceNorm2d) for m in D.modules())
    D = PatchDiscriminator(shape=(1, 32, 32), width=8, norm="none")
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)) for m in D.modules())
    torch.manual_seed(0)
    D = PatchDiscriminator(shape=(1, 32, 32), width=8, norm="none", spectral_norm=True)
    for _ in range(30):  # the power iteration converges over forward passes in training mode
        D(torch.randn(4, 1, 32, 32))
    D.eval()
    for m in D.modules():
        if isinstance(m, nn.Conv2d):
            assert_close(torch.linalg.matrix_norm(m.weight.flatten(1), ord=2), torch.tensor(1.0), atol=0.05, rtol=0)
    assert D.receptive_field == 70 and D(torch.randn(1, 1, 32, 32)).shape == (1, 2, 2)


def test_weights_start_as_the_authors_init():
    torch.manual_seed(0)
    nets = [UNetGenerator(shape=(3, 64, 64), in_shape=(3, 64, 64), width=16),
            ResnetGenerator(shape=(3, 32, 32), in_shape=(3, 32, 32), width=16, blocks=2),
            PatchDiscriminator(shape=(3, 64, 64), width=16)]
    for net in nets:
        convs = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
        weights = torch.cat([m.weight.flatten() for m in convs])
        assert_close(weights.std(), torch.tensor(0.02), atol=1e-3, rtol=0)  # N(0, 0.02)
        assert abs(weights.mean()) < 1e-3
        assert all(torch.equal(m.bias, torch.zeros_like(m.bias)) for m in convs if m.bias is not None)
    bn = torch.cat([m.weight for m in nets[0].modules() if isinstance(m, nn.BatchNorm2d)])  # N(1, 0.02)
    assert_close(bn.mean(), torch.tensor(1.0), atol=5e-3, rtol=0)
    assert_close(bn.std(), torch.tensor(0.02), atol=5e-3, rtol=0)


# --- one-line refusals --------------------------------------------------------------------------------

def one_line(exc):
    """A UserError is one line that names the problem, then the fix after a colon."""
    text = str(exc.value)
    assert "\n" not in text and any(f": {verb} " in text for verb in ("set", "resize", "choose", "convert"))


def test_bad_receptive_field_lists_the_choices():
    with pytest.raises(UserError, match=r"model.d.receptive_field=50: choose one of 1, 16, 34, 70, 142, 286") as e:
        PatchDiscriminator(shape=(3, 64, 64), receptive_field=50)
    one_line(e)


@pytest.mark.parametrize("field,smallest,fits", [(70, 24, 34), (142, 48, 34), (286, 96, 34)])
def test_discriminator_refuses_an_image_too_small_for_its_field(field, smallest, fits):
    with pytest.raises(UserError, match=f"receptive_field={field} takes images of side at least {smallest}; "
                                        f"this data is 1x20x20: set model.d.receptive_field={fits}") as e:
        PatchDiscriminator(shape=(1, 20, 20), receptive_field=field)
    one_line(e)
    PatchDiscriminator(shape=(1, smallest, smallest), width=2, receptive_field=field)  # the smallest fits


def test_unet_refuses_a_side_its_depth_cannot_halve():
    with pytest.raises(UserError, match=r"a U-Net of depth 5 takes square images whose side is a multiple of 32; "
                                        r"this data is 1x28x28: set model.g.depth=2 or data.resolution=32") as e:
        UNetGenerator(shape=(1, 28, 28), in_shape=(1, 28, 28), depth=5)
    one_line(e)
    with pytest.raises(UserError, match=r"depth 6 .* multiple of 64; this data is 3x32x32: set model.g.depth=5 or "
                                        r"data.resolution=64"):
        UNetGenerator(shape=(3, 32, 32), in_shape=(3, 32, 32), depth=6)  # deeper than the size allows
    with pytest.raises(UserError, match=r"side must be even; this data is 1x27x27: set data.resolution=28"):
        UNetGenerator(shape=(1, 27, 27), in_shape=(1, 27, 27))
    with pytest.raises(UserError, match="square images; this data is 1x32x64"):
        UNetGenerator(shape=(1, 32, 64), in_shape=(1, 32, 64))
    with pytest.raises(UserError, match="the input is 1x64x64 and the target 1x32x32"):
        UNetGenerator(shape=(1, 32, 32), in_shape=(1, 64, 64))


@pytest.mark.parametrize("side,fix", [(30, 32), (6, 8), (4, 8)])
def test_resnet_refuses_a_side_not_a_multiple_of_4(side, fix):
    with pytest.raises(UserError, match=f"multiple of 4 and at least 8; this data is 3x{side}x{side}: "
                                        f"set data.resolution={fix}") as e:
        ResnetGenerator(shape=(3, side, side), in_shape=(3, side, side))
    one_line(e)


def test_check_input_refuses_images_the_generator_cannot_take():
    G = UNetGenerator(shape=(3, 32, 32), in_shape=(1, 32, 32), width=8)  # depth 5
    G.check_input((1, 32, 32))
    G.check_input((4, 1, 64, 64))  # a larger image: the net is convolutional
    with pytest.raises(UserError, match=r"U-Net of depth 5, trained on 1x32x32 images\) takes square images whose "
                                        r"side is a multiple of 32; this one is 1x28x28: resize it to 32x32") as e:
        G.check_input((1, 28, 28))
    one_line(e)
    with pytest.raises(UserError, match="takes 1-channel images; this one is 3x32x32: convert it to grayscale"):
        G.check_input((3, 32, 32))
    with pytest.raises(UserError, match="this one is 1x32x64"):
        G.check_input((1, 32, 64))
    R = ResnetGenerator(shape=(3, 28, 28), in_shape=(3, 28, 28), width=8, blocks=1)
    R.check_input((3, 36, 36))
    with pytest.raises(UserError, match=r"multiple of 4 and at least 8; this one is 3x30x30: resize it to 28x28"):
        R.check_input((3, 30, 30))
    with pytest.raises(UserError, match="convert it to RGB"):
        R.check_input((1, 28, 28))


def test_bad_norm_and_dropout_are_refused():
    with pytest.raises(UserError, match=r"model.d.norm='layer': choose one of batch, instance, none"):
        PatchDiscriminator(shape=(3, 32, 32), norm="layer")
    with pytest.raises(UserError, match=r"model.g.norm='group'"):
        ResnetGenerator(shape=(3, 32, 32), in_shape=(3, 32, 32), norm="group")
    with pytest.raises(UserError, match=r"model.g.dropout=1.0 must be a probability"):
        UNetGenerator(shape=(3, 32, 32), in_shape=(3, 32, 32), dropout=1.0)
    with pytest.raises(UserError, match=r"model.g.width=0 must be a positive integer"):
        UNetGenerator(shape=(3, 32, 32), in_shape=(3, 32, 32), width=0)
