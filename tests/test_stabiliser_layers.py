"""The batch-aware layers of Salimans et al. 2016 (minibatch discrimination, virtual batch norm) and Karras
et al. 2018 (minibatch standard deviation), against numbers worked out by hand; D's features() for
feature matching; and old checkpoints' keys, kept when the options are off."""

import math

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from gan_cli import checkpoint
from gan_cli.errors import UserError
from gan_cli.models import dcgan, mlp, sngan
from gan_cli.models.layers import VirtualBatchNorm2d
from gan_cli.models.minibatch import MinibatchDiscrimination, MinibatchStdDev
from tests.helpers import TINY, gan, one_line_error

E = math.exp


# -- minibatch discrimination ---------------------------------------------------------------------------

F3 = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])  # three samples, A = 2 features


def test_minibatch_discrimination_one_kernel_of_two_dims():
    mbd = MinibatchDiscrimination(2, kernels=1, dims=2)
    with torch.no_grad():
        mbd.T.copy_(torch.eye(2))  # M_i = f_i, one kernel of C = 2
    # L1 distances: d(0,1) = 1, d(0,2) = 2, d(1,2) = 1 + 2 = 3; each sample also meets itself, at 0
    o = torch.tensor([[1 + E(-1) + E(-2)], [E(-1) + 1 + E(-3)], [E(-2) + E(-3) + 1]])
    assert_close(mbd(F3), torch.cat([F3, o], dim=1))


def test_minibatch_discrimination_kernels_are_consecutive_columns():
    mbd = MinibatchDiscrimination(2, kernels=2, dims=1)
    with torch.no_grad():
        mbd.T.copy_(torch.tensor([[2.0, 0.0], [0.0, 1.0]]))  # kernel 0 reads 2 * f[0], kernel 1 reads f[1]
    # kernel 0 sees 0, 2, 0: d(0,1) = 2, d(0,2) = 0, d(1,2) = 2; kernel 1 sees 0, 0, 2
    o = torch.tensor([[1 + E(-2) + 1, 1 + 1 + E(-2)],
                      [E(-2) + 1 + E(-2), 1 + 1 + E(-2)],
                      [1 + E(-2) + 1, E(-2) + E(-2) + 1]])
    assert_close(mbd(F3), torch.cat([F3, o], dim=1))
    assert_close(mbd.similarity(F3), o)


def test_minibatch_discrimination_starts_small_and_learns():
    mbd = MinibatchDiscrimination(100, kernels=8, dims=5)
    assert mbd.T.shape == (100, 40) and 0.015 < mbd.T.std() < 0.025
    mbd(torch.randn(6, 100)).sum().backward()
    assert mbd.T.grad is not None and mbd.T.grad.abs().sum() > 0


# -- minibatch standard deviation -----------------------------------------------------------------------

def _std(*values):
    """Population standard deviation with the layer's 1e-8, by hand."""
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / len(values) + 1e-8)


def test_minibatch_stddev_on_vectors_groups_strided_samples():
    x = torch.tensor([[0.0, 0.0], [1.0, 1.0], [2.0, 4.0], [1.0, 3.0]])
    # G = 2, N/G = 2 groups: samples {0, 2} and {1, 3} (the authors' reshape to (G, N/G, ...))
    s0 = (_std(0, 2) + _std(0, 4)) / 2  # (1 + 2) / 2
    s1 = (_std(1, 1) + _std(1, 3)) / 2  # (0 + 1) / 2, up to the 1e-8
    expected = torch.cat([x, torch.tensor([[s0], [s1], [s0], [s1]])], dim=1)
    assert_close(MinibatchStdDev(group_size=2)(x), expected)


def test_minibatch_stddev_on_maps_appends_a_constant_channel():
    x = torch.tensor([[[[0.0, 2.0]]], [[[2.0, 2.0]]]])  # (2, 1, 1, 2)
    s = (_std(0, 2) + _std(2, 2)) / 2  # averaged over the two positions
    out = MinibatchStdDev(group_size=4)(x)  # G = min(4, N) = 2: one group
    assert out.shape == (2, 2, 1, 2)
    assert_close(out[:, :1], x)
    assert_close(out[:, 1], torch.full((2, 1, 2), s))


@pytest.mark.parametrize("n,group,expected", [
    (6, 4, _std(0, 2, 4)),  # 4 does not divide 6: groups of 3, {0, 2, 4} and {1, 3, 5}
    (6, 6, _std(0, 1, 2, 3, 4, 5)),
    (6, 2, _std(0, 3)),  # {0, 3}, {1, 4}, {2, 5}
    (7, 4, _std(0)),  # 7 is prime: groups of one, whose deviation is 0
])
def test_minibatch_stddev_takes_the_largest_group_that_divides_the_batch(n, group, expected):
    x = torch.arange(n, dtype=torch.float32)[:, None]
    assert_close(MinibatchStdDev(group)(x)[:, 1], torch.full((n,), expected))


# -- virtual batch normalisation ------------------------------------------------------------------------

def test_virtual_batch_norm_mixes_the_reference_moments_with_the_sample_own():
    vbn = VirtualBatchNorm2d(1)
    ref = torch.tensor([[[[0.0, 2.0]]], [[[2.0, 4.0]]]])  # N_ref = 2: mean 2, mean of squares 24 / 4 = 6
    assert_close(vbn(ref), (ref - 2) / math.sqrt(2 + 1e-5))  # the reference: its own statistics, var 6 - 4
    x = torch.tensor([[[[1.0, 3.0]]]])  # its own mean 2, mean of squares 5
    # mean (2 * 2 + 2) / 3 = 2, mean of squares (2 * 6 + 5) / 3 = 17 / 3, var 17 / 3 - 4 = 5 / 3
    assert_close(vbn(x), (x - 2) / math.sqrt(5 / 3 + 1e-5))
    with torch.no_grad():
        vbn.weight.fill_(3.0)
        vbn.bias.fill_(-1.0)
    assert_close(vbn(x), 3 * (x - 2) / math.sqrt(5 / 3 + 1e-5) - 1)
    vbn.forget()
    assert vbn.reference is None


def _generator(norm, seed=0, **kw):
    torch.manual_seed(seed)
    return dcgan.Generator(z_dim=8, shape=(1, 16, 16), width=8, norm=norm, reference=16, **kw)


@pytest.mark.parametrize("norm", ["virtual_batch", "batch"])
def test_only_virtual_batch_norm_makes_a_sample_independent_of_its_batch(norm):
    G = _generator(norm).train()
    z = torch.randn(6, 8)
    alone, in_batch = G(z[:1])[0], G(z)[0]
    if norm == "virtual_batch":
        assert_close(alone, in_batch)
        assert_close(G.eval()(z)[0], in_batch)  # no running statistics: eval mode is the same function
    else:  # batch norm: the other five samples move sample 0, so the check above can fail
        assert (alone - in_batch).abs().max() > 1e-3


def test_virtual_batch_norm_replaces_every_batch_norm_and_nothing_else():
    bn, vbn = _generator("batch"), _generator("virtual_batch")
    assert sum(isinstance(m, nn.BatchNorm2d) for m in vbn.modules()) == 0
    assert [type(m) for m in vbn.net] == [VirtualBatchNorm2d if t is nn.BatchNorm2d else t
                                          for t in map(type, bn.net)]
    # the same initialisation draw for draw (gamma ~ N(1, 0.02) too): the reference z has its own generator
    for key, value in bn.state_dict().items():
        if key in vbn.state_dict():
            assert torch.equal(value, vbn.state_dict()[key]), key
    assert set(vbn.state_dict()) - set(bn.state_dict()) == {"reference_z"}


def test_the_reference_batch_is_fixed_and_saved():
    a, b = _generator("virtual_batch", seed=1), _generator("virtual_batch", seed=2)
    assert a.reference_z.shape == (16, 8) and torch.equal(a.reference_z, b.reference_z)  # whatever the seed
    with torch.no_grad():
        b.load_state_dict(a.state_dict())
        z = torch.randn(3, 8)
        assert_close(a(z), b(z))  # loaded weights and reference: the same samples
        b.reference_z.add_(1.0)
        assert not torch.allclose(a(z), b(z))  # the reference batch does set the normalisation
    assert all(m.reference is None for m in a.modules() if isinstance(m, VirtualBatchNorm2d))  # no graph kept


def test_gradients_flow_through_the_reference_pass():
    G = _generator("virtual_batch")
    G.reference_z.requires_grad_(True)  # a stand-in for the reference pass's graph, which the paper keeps
    G(torch.randn(2, 8)).square().sum().backward()
    assert G.reference_z.grad is not None and G.reference_z.grad.abs().sum() > 0


@pytest.mark.parametrize("embed_dim", [0, 4])
def test_conditional_generator_with_virtual_batch_norm(embed_dim):
    G = _generator("virtual_batch", num_classes=3, embed_dim=embed_dim).train()
    z, y = torch.randn(4, 8), torch.tensor([0, 1, 2, 0])
    assert_close(G(z[:1], y[:1])[0], G(z, y)[0])
    soft = torch.tensor([[0.5, 0.5, 0.0]]).repeat(4, 1)  # a walk between labels still works
    assert G(z, soft).shape == (4, 1, 16, 16)


def test_generator_refuses_unknown_norms_and_empty_references():
    with pytest.raises(UserError, match=r"model.g.norm=layer: choose one of batch, virtual_batch"):
        dcgan.Generator(z_dim=8, shape=(1, 16, 16), norm="layer")
    with pytest.raises(UserError, match=r"model.g.reference=0 must be a positive integer"):
        dcgan.Generator(z_dim=8, shape=(1, 16, 16), norm="virtual_batch", reference=0)


# -- the discriminators: features(), the minibatch options, old keys -------------------------------------

def _mlp(**kw):
    torch.manual_seed(0)
    return mlp.Discriminator(shape=(1, 16, 16), hidden=8, pieces=2, **kw)


def _dcgan(**kw):
    torch.manual_seed(0)
    return dcgan.Discriminator(shape=(1, 16, 16), width=8, **kw)  # 16 -> 8 -> 4: (N, 16, 4, 4) before the head


def test_features_are_what_the_last_layer_reads():
    x, y = torch.randn(5, 1, 16, 16), torch.tensor([0, 1, 2, 0, 1])
    D = _mlp().eval()  # no dropout noise between the two calls
    assert D.features(x).shape == (5, 8)
    assert_close(D(x), D.net[-1](D.features(x)).squeeze(1))
    D = _mlp(num_classes=3).eval()
    assert_close(D(x, y), D.net[-1](D.features(x, y)).squeeze(1))
    D = _dcgan().eval()
    assert D.features(x).shape == (5, 16 * 4 * 4)
    assert_close(D(x), D.head(D.features(x).view(5, 16, 4, 4)).flatten())
    D = _dcgan(num_classes=3).eval()  # concat: the label maps go in before the features
    assert_close(D(x, y), D.head(D.features(x, y).view(5, 16, 4, 4)).flatten())
    torch.manual_seed(0)
    D = sngan.Discriminator(shape=(3, 32, 32), width=8).eval()
    x = torch.randn(2, 3, 32, 32)
    assert D.features(x).shape == (2, 8)
    assert_close(D(x), D.linear(D.features(x)).squeeze(1))


@pytest.mark.parametrize("build", [_mlp, _dcgan], ids=["mlp", "dcgan"])
@pytest.mark.parametrize("n", [8, 6])  # 6 with groups of 4: groups of 3
def test_minibatch_options_in_both_discriminators(build, n):
    D = build(minibatch_discrimination=4, minibatch_dims=3, minibatch_stddev=4)
    plain = build()
    x = torch.randn(n, 1, 16, 16)
    logits = D(x)
    assert logits.shape == (n,) and torch.isfinite(logits).all()
    assert D.features(x).shape == plain.features(x).shape  # taken before the minibatch layers
    logits.sum().backward()
    assert D.minibatch.T.grad.abs().sum() > 0
    assert D.minibatch.T.shape == (D.features(x).shape[1], 4 * 3)
    if build is _mlp:  # the final Linear reads [h, o, stddev]
        assert D.net[-1].in_features == 8 + 4 + 1
    else:  # one more channel into the head, and a Linear(B, 1) on o
        assert D.head.in_channels == 16 + 1 and D.minibatch_head.in_features == 4


@pytest.mark.parametrize("build", [_mlp, _dcgan], ids=["mlp", "dcgan"])
@pytest.mark.parametrize("option", ["minibatch_discrimination", "minibatch_stddev"])
def test_minibatch_options_let_the_batch_change_a_sample_logit(build, option):
    x = torch.randn(8, 1, 16, 16)
    plain = build(norm="none").eval() if build is _dcgan else build().eval()
    assert_close(plain(x[:4])[0], plain(x)[0])  # without them (and without batch norm), D is per sample
    D = build(**{option: 2}, **({"norm": "none"} if build is _dcgan else {})).eval()
    assert not torch.allclose(D(x[:4])[0], D(x)[0])


def test_dcgan_minibatch_discrimination_adds_a_linear_map_of_o_to_the_logit():
    D = _dcgan(minibatch_discrimination=3).eval()
    x = torch.randn(4, 1, 16, 16)
    h = D.features(x)
    o = D.minibatch.similarity(h)
    expected = D.head(h.view(4, 16, 4, 4)).flatten() + o @ D.minibatch_head.weight[0] + D.minibatch_head.bias
    assert_close(D(x), expected)


# state_dict keys of default discriminators and generator before these options existed (listed from the
# previous commit's models): old checkpoints must keep loading
OLD_KEYS = {
    "mlp": ["net.0.linear.bias", "net.0.linear.weight", "net.2.linear.bias", "net.2.linear.weight", "net.4.bias",
            "net.4.weight"],
    "dcgan": ["head.bias", "head.weight", "net.0.bias", "net.0.weight", "net.2.weight", "net.3.bias",
              "net.3.num_batches_tracked", "net.3.running_mean", "net.3.running_var", "net.3.weight"],
    "dcgan_projection": ["head.bias", "head.weight", "net.0.bias", "net.0.weight", "net.2.weight", "net.3.bias",
                         "net.3.num_batches_tracked", "net.3.running_mean", "net.3.running_var", "net.3.weight",
                         "project.weight"],
    "generator": ["net.0.weight", "net.1.bias", "net.1.num_batches_tracked", "net.1.running_mean",
                  "net.1.running_var", "net.1.weight", "net.3.weight", "net.4.bias", "net.4.num_batches_tracked",
                  "net.4.running_mean", "net.4.running_var", "net.4.weight", "net.6.weight"],
}


def test_defaults_keep_the_old_checkpoint_keys():
    built = {"mlp": _mlp(), "dcgan": _dcgan(), "dcgan_projection": _dcgan(num_classes=3, conditioning="projection"),
             "generator": dcgan.Generator(z_dim=8, shape=(1, 16, 16), width=8)}
    for name, model in built.items():
        assert sorted(model.state_dict()) == OLD_KEYS[name], name
    # minibatch stddev has no parameters; discrimination adds its T (and, in the DCGAN, its Linear)
    assert sorted(_mlp(minibatch_stddev=4).state_dict()) == OLD_KEYS["mlp"]
    assert set(_mlp(minibatch_discrimination=2).state_dict()) - set(OLD_KEYS["mlp"]) == {"minibatch.T"}
    assert set(_dcgan(minibatch_discrimination=2).state_dict()) - set(OLD_KEYS["dcgan"]) == {
        "minibatch.T", "minibatch_head.weight", "minibatch_head.bias"}


@pytest.mark.parametrize("build", [_mlp, _dcgan], ids=["mlp", "dcgan"])
@pytest.mark.parametrize("key,value,message", [
    ("minibatch_discrimination", -1, "model.d.minibatch_discrimination=-1 must be 0 (off) or a positive integer"),
    ("minibatch_stddev", -4, "model.d.minibatch_stddev=-4 must be 0 (off) or a positive integer"),
    ("minibatch_dims", 0, "model.d.minibatch_dims=0 must be a positive integer"),
])
def test_bad_minibatch_options_are_refused(build, key, value, message):
    with pytest.raises(UserError) as e:
        build(**{key: value})
    assert str(e.value) == message


# -- the real command line ------------------------------------------------------------------------------

def test_train_with_every_option_then_sample(tmp_path):
    run_dir = tmp_path / "run"
    gan("train", *TINY, "model.d.minibatch_discrimination=4", "model.d.minibatch_stddev=2",
        "model.g.norm=virtual_batch", "model.g.reference=8", "train.ema=0.9", f"hydra.run.dir={run_dir}",
        cwd=tmp_path, check=True)
    last = run_dir / "checkpoints" / "last.pt"
    state = checkpoint.load(last)
    g = state["models"]["G"]
    assert g["reference_z"].shape == (8, 8) and "minibatch.T" in state["models"]["D"]
    assert torch.equal(state["ema"]["module.reference_z"], g["reference_z"])  # averaging a constant keeps it
    for n in ("6", "3"):
        gan("sample", f"checkpoint={last}", f"n={n}", "seed=3", f"out=s{n}.pt", cwd=tmp_path, check=True)
    six, three = (torch.load(tmp_path / f"s{n}.pt", weights_only=True)["samples"] for n in (6, 3))
    assert six.shape == (6, 1, 16, 16)
    assert_close(three, six[:3])


def test_train_mlp_on_the_ring_with_minibatch_layers(tmp_path):
    run_dir = tmp_path / "run"
    gan("train", "data=toy_ring", "data.n=256", "model=mlp", "model.g.hidden=16", "model.d.hidden=8",
        "model.d.pieces=2", "model.d.minibatch_discrimination=4", "model.d.minibatch_stddev=4", "train.steps=2",
        "train.batch_size=16", "train.log_every=1", "train.sample_every=0", "device=cpu",
        f"hydra.run.dir={run_dir}", cwd=tmp_path, check=True)
    assert (run_dir / "checkpoints" / "last.pt").is_file()


def test_cdcgan_takes_the_options_too(tmp_path):
    run_dir = tmp_path / "run"
    gan("train", *TINY, "model=cdcgan", "model.d.minibatch_stddev=4", "model.g.norm=virtual_batch",
        "model.g.reference=10", "train.steps=2", f"hydra.run.dir={run_dir}", cwd=tmp_path, check=True)
    assert (run_dir / "checkpoints" / "last.pt").is_file()


@pytest.mark.parametrize("override,message", [
    ("model.d.minibatch_stddev=-1", "model.d.minibatch_stddev=-1 must be 0 (off)"),
    ("model.g.norm=group", "model.g.norm=group: choose one of batch, virtual_batch"),
    ("model.d.minibatch_discrimination=many", "model.d.minibatch_discrimination=many must be an integer"),
])
def test_bad_options_get_one_line(tmp_path, override, message):
    one_line_error(gan("train", *TINY, override, cwd=tmp_path), message)
