"""AttGAN: its three losses with their weights against hand computation, the tiling of the attributes into the
decoder, the edit codes and edit= grammar, then the real command: train a few steps on MNIST digits with
measured attributes, sample edits, and each bad input in one line."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from PIL import Image
from torch import nn
from torch.testing import assert_close

from gan_cli import checkpoint
from gan_cli.algorithms.attgan import AttGAN, code, edit_code, flip_codes, shuffled
from gan_cli.attributes.table import Attributes
from gan_cli.commands.edit import parse
from gan_cli.distributed import World
from gan_cli.errors import UserError
from gan_cli.loop import Schedule
from gan_cli.losses import WGANGP
from gan_cli.models.attgan import Discriminator, Generator, tile
from tests.helpers import assert_resumes_bit_exact, gan, one_line_error

NAMES = ("thickness", "slant")


# -- stand-in networks whose outputs are known by hand ------------------------------------------------

class ShiftG(nn.Module):
    """G(x, c) = s x + mean_i(c_i): one parameter, and a code that visibly moves the output."""

    attributes = NAMES

    def __init__(self, s: float):
        super().__init__()
        self.s = nn.Parameter(torch.tensor(s))
        self.register_buffer("thresholds", torch.zeros(len(NAMES)))

    def encode(self, x):
        return [x]

    def decode(self, zs, c):
        return self.s * zs[-1] + c.mean(dim=1)[:, None, None, None]

    def forward(self, x, c):
        return self.decode(self.encode(x), c)


class LinearD(nn.Module):
    """D(x) = u mean(x) per sample; C(x) = w mean(x) + bias, one logit per attribute."""

    attributes = NAMES

    def __init__(self, u: float, w: float, bias: tuple[float, float]):
        super().__init__()
        self.u, self.w = nn.Parameter(torch.tensor(u)), nn.Parameter(torch.tensor(w))
        self.bias = nn.Parameter(torch.tensor(bias))

    def forward(self, x, y=None):
        return self.u * x.mean(dim=(1, 2, 3))

    def classify(self, x):
        return self.w * x.mean(dim=(1, 2, 3))[:, None] + self.bias


X = torch.tensor([[[[0.2, -0.4], [0.6, -0.8]]], [[[1.0, 0.0], [-0.2, 0.4]]], [[[-0.6, 0.3], [0.1, 0.9]]]])
A = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])


def fake_run(batch, seed=0):
    return SimpleNamespace(next_batch=lambda: batch, schedule=Schedule(steps=1, batch_size=3), world=World(),
                           z_gen=torch.Generator().manual_seed(seed))


def attgan(G, D, **kw):
    opts = {"G": torch.optim.SGD(G.parameters(), 0.0), "D": torch.optim.SGD(D.parameters(), 0.0)}
    attributes = Attributes(NAMES, A.clone(), torch.tensor([0.5, 0.5]))
    return AttGAN({"G": G, "D": D}, opts, WGANGP(gp_weight=10.0), attributes, **kw)


def bce(logits, target):
    """-t log sigmoid(l) - (1 - t) log(1 - sigmoid(l)), the mean over samples and attributes."""
    p = torch.sigmoid(logits)
    return (-(target * p.log() + (1 - target) * (1 - p).log())).mean()


def test_codes_are_2a_minus_1_times_thres_int_and_b_is_the_batch_shuffled():
    assert_close(code(A, 0.5), torch.tensor([[0.5, -0.5], [-0.5, 0.5], [0.5, 0.5]]))
    b = shuffled(A, torch.Generator().manual_seed(3))
    order = torch.randperm(3, generator=torch.Generator().manual_seed(3))
    assert_close(b, A[order])  # the batch's own rows: the data's joint distribution of attributes


def test_d_loss_is_wgan_gp_plus_lambda3_times_c_on_real_images_by_hand():
    s, u, w, bias = 0.5, 0.8, -0.3, (0.1, -0.2)
    alg = attgan(ShiftG(s), LinearD(u, w, bias), lambda_cls_d=1.0)
    stats = alg.d_step(fake_run(SimpleNamespace(images=X, attributes=A)))
    b = A[torch.randperm(3, generator=torch.Generator().manual_seed(0))]
    fake = s * X + code(b, 0.5).mean(dim=1)[:, None, None, None]
    mean = lambda t: t.mean(dim=(1, 2, 3))  # noqa: E731
    # D is linear in the mean of its input: grad_x D = u / 4 per pixel, a norm of |u| / 2 at every interpolate
    gp = (abs(u) / 2 - 1) ** 2
    wasserstein = (u * mean(fake)).mean() - (u * mean(X)).mean()
    cls_d = bce(w * mean(X)[:, None] + torch.tensor(bias), A)
    assert_close(stats["attgan/cls_d"], cls_d)
    assert_close(stats["loss/gp"], torch.tensor(gp))
    assert_close(stats["loss/d"], wasserstein + 10 * gp + 1.0 * cls_d)
    alg3 = attgan(ShiftG(s), LinearD(u, w, bias), lambda_cls_d=3.0)  # lambda_3 scales C's part only
    assert_close(alg3.d_step(fake_run(SimpleNamespace(images=X, attributes=A)))["loss/d"],
                 wasserstein + 10 * gp + 3.0 * cls_d)


def test_g_loss_is_adversarial_plus_lambda2_cls_plus_lambda1_l1_by_hand():
    s, u, w, bias = 0.5, 0.8, -0.3, (0.1, -0.2)
    alg = attgan(ShiftG(s), LinearD(u, w, bias))  # the paper's lambda_1 = 100, lambda_2 = 10
    stats = alg.g_step(fake_run(SimpleNamespace(images=X, attributes=A), seed=5))
    b = A[torch.randperm(3, generator=torch.Generator().manual_seed(5))]
    mean = lambda t: t.mean(dim=(1, 2, 3))  # noqa: E731
    edited = s * X + code(b, 0.5).mean(dim=1)[:, None, None, None]
    rebuilt = s * X + code(A, 0.5).mean(dim=1)[:, None, None, None]
    adversarial = -(u * mean(edited)).mean()  # WGAN's G: -E[D(G(x, b))]
    cls_g = bce(w * mean(edited)[:, None] + torch.tensor(bias), b)
    rec = (X - rebuilt).abs().mean()
    assert_close(stats["attgan/rec"], rec)
    assert_close(stats["attgan/cls_g"], cls_g)
    assert_close(stats["attgan/adv_g"], adversarial)
    assert_close(stats["loss/g"], adversarial + 10 * cls_g + 100 * rec)
    alg2 = attgan(ShiftG(s), LinearD(u, w, bias), lambda_rec=7.0, lambda_cls_g=2.0)
    assert_close(alg2.g_step(fake_run(SimpleNamespace(images=X, attributes=A), seed=5))["loss/g"],
                 adversarial + 2 * cls_g + 7 * rec)
    # D is a constant in G's step: its weights get no gradient
    assert all(p.grad is None for p in alg.D.parameters())


def test_the_data_thresholds_go_into_g_before_its_average_is_made():
    G, D = ShiftG(1.0), LinearD(1.0, 1.0, (0.0, 0.0))
    opts = {"G": torch.optim.SGD(G.parameters(), 0.0), "D": torch.optim.SGD(D.parameters(), 0.0)}
    alg = AttGAN({"G": G, "D": D}, opts, WGANGP(),
                 Attributes(NAMES, A, torch.tensor([2.25, -0.1])), ema=0.999)
    assert_close(alg.G.thresholds, torch.tensor([2.25, -0.1]))
    assert_close(alg.sampler.thresholds, torch.tensor([2.25, -0.1]))


def test_tile_repeats_each_code_over_the_grid():
    c = torch.tensor([[0.5, -0.5], [-1.0, 2.0]])
    t = tile(c, 2, 3)
    assert t.shape == (2, 2, 2, 3)
    assert_close(t[1, 1], torch.full((2, 3), 2.0))
    assert_close(t[0, 0], torch.full((2, 3), 0.5))


def test_generator_takes_the_tiled_attributes_at_its_input_and_inject_layer_and_the_shortcut():
    G = Generator((1, 28, 28), ["thickness", "slant", "width"], width=4)
    assert G.depth == 3 and G.sides == [28, 14, 7, 3]
    seen = {}
    for i in (0, 1):
        G.dec[i].register_forward_pre_hook(lambda m, args, i=i: seen.__setitem__(i, args[0]))
    x, c = torch.randn(2, 1, 28, 28), torch.tensor([[0.5, -0.5, 1.0], [-0.5, 0.5, -1.0]])
    zs = G.encode(x)
    out = G.decode(zs, c)
    assert out.shape == (2, 1, 28, 28) and out.abs().max() <= 1
    # the decoder's input: the latent (16 channels at 3x3), then the attributes tiled over it
    assert_close(seen[0][:, :16], zs[-1])
    assert_close(seen[0][:, 16:], tile(c, 3, 3))
    # after the first decoder layer (16 channels at 7x7): the encoder's 7x7 map (8), then the attributes again
    assert seen[1].shape == (2, 16 + 8 + 3, 7, 7)
    assert_close(seen[1][:, 16:24], zs[1])
    assert_close(seen[1][:, 24:], tile(c, 7, 7))
    G32 = Generator((1, 32, 32), ["slant"], width=4)
    assert G32.sides == [32, 16, 8, 4] and G32(torch.randn(2, 1, 32, 32), torch.zeros(2, 1)).shape == (2, 1, 32, 32)


def test_discriminator_has_a_critic_score_and_one_logit_per_attribute():
    D = Discriminator((1, 28, 28), ["thickness", "slant", "width"], width=4, fc_dim=8)
    x = torch.randn(5, 1, 28, 28)
    assert D(x).shape == (5,) and D.classify(x).shape == (5, 3)
    WGANGP().check(D)  # no batch norm in the critic: the penalty is per sample
    with pytest.raises(UserError, match="batch norm"):
        WGANGP().check(Discriminator((1, 28, 28), ["slant"], width=4, norm="batch"))


def test_networks_need_named_attributes():
    for attributes, needle in ((None, "is null"), ([], "is empty")):
        with pytest.raises(UserError, match=needle):
            Generator((1, 28, 28), attributes)
        with pytest.raises(UserError, match=needle):
            Discriminator((1, 28, 28), attributes)


def test_edit_codes_keep_the_others_and_put_the_asked_at_the_slider():
    a = torch.tensor([[1.0, 0.0, 1.0]])
    flips = flip_codes(a, 0.5, 1.0)
    assert_close(flips[0], torch.tensor([[-1.0, -0.5, 0.5]]))
    assert_close(flips[1], torch.tensor([[0.5, 1.0, 0.5]]))
    assert_close(flip_codes(a, 0.5, 2.0)[2], torch.tensor([[0.5, -0.5, -2.0]]))
    e = parse("width=1, thickness-", ("thickness", "slant", "width"))
    assert_close(e.codes(a, 0.5, 1.5), torch.tensor([[0.5 - 1.5, -0.5, 1.5]]))
    assert_close(edit_code(a, a, torch.zeros_like(a, dtype=torch.bool), 0.5, 1.0), code(a, 0.5))


@pytest.mark.parametrize("text,needle", [("colour=1", "unknown attribute 'colour'; this model edits thickness, slant"),
                                         ("thickness=2", "is not name=0, name=1, name+ or name-"),
                                         ("thickness", "is not name=0"), ("", "is not name=0"),
                                         ("slant+,slant=0", "names slant twice")])
def test_edit_strings_that_are_refused(text, needle):
    with pytest.raises(UserError, match=needle.replace("+", r"\+")):
        parse(text, NAMES)


def test_train_refuses_data_without_attributes(tmp_path):
    proc = gan("train", "algorithm=attgan", "model=attgan", "loss=wgan_gp", "data=mnist", "data.limit=64",
               "train.steps=1", "device=cpu", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    one_line_error(proc, "set data.attributes=[")
    assert not (tmp_path / "run" / "checkpoints").exists()


# -- the real command ----------------------------------------------------------------------------------

TINY_ATTGAN = ["experiment=attgan_mnist", "data.limit=64", "data.attributes=[thickness,slant]",
               "model.g.width=4", "model.d.width=4", "model.d.fc_dim=8", "train.d_steps=1",
               "train.batch_size=8", "train.log_every=1", "train.sample_every=5", "train.checkpoint_every=5",
               "train.num_samples=4", "train.max_minutes=null", "device=cpu"]


@pytest.fixture(scope="module")
def attgan_run(tmp_path_factory, mnist_root):
    """gan train on 64 digits for ten steps, and three of the test digits as the user's PNG files."""
    from gan_cli.data.torchvision_sets import load

    root = tmp_path_factory.mktemp("attgan")
    gan("train", *TINY_ATTGAN, "train.steps=10", f"hydra.run.dir={root / 'run'}", cwd=root, check=True)
    digits = root / "digits"
    digits.mkdir()
    for i, image in enumerate(load("MNIST", str(mnist_root), split="test", limit=3).samples):
        Image.fromarray(image[0].numpy()).save(digits / f"d{i}.png")
    return root, root / "run" / "checkpoints" / "last.pt", digits


def test_train_then_sample_edits_end_to_end(attgan_run, mnist_root):
    from gan_cli.data.torchvision_sets import load

    root, ckpt, digits = attgan_run
    logged = (root / "run" / "metrics.jsonl").read_text()
    for name in ("attgan/rec", "attgan/cls_g", "attgan/cls_d", "loss/d", "loss/g", "loss/gp"):
        assert f'"{name}"' in logged
    assert (root / "run" / "samples" / "step_0000010.png").is_file()
    # the checkpoint carries the names and the training data's thresholds (its medians)
    saved = checkpoint.Saved.load(ckpt)
    G = saved.generator(torch.device("cpu"))
    data = load("MNIST", str(mnist_root), attributes=["thickness", "slant"], limit=64)
    assert G.attributes == ("thickness", "slant")
    assert_close(G.thresholds, data.attributes.thresholds)

    out = root / "edited"
    proc = gan("sample", f"checkpoint={ckpt}", f"input={digits}", 'edit="thickness=1,slant=0"', f"out={out}",
               cwd=root, check=True)
    assert "edited 3 images" in proc.stdout
    assert sorted(p.name for p in out.iterdir()) == ["d0.png", "d1.png", "d2.png"]
    assert Image.open(out / "d0.png").size == (28, 28)
    proc = gan("sample", f"checkpoint={ckpt}", f"input={digits}", "edit=slant+", "intensity=2",
               f"out={root / 'grid.png'}", cwd=root, check=True)
    # a row per input: input | reconstruction | the edit | thickness flipped | slant flipped, 28 px + 2 padding
    assert Image.open(root / "grid.png").size == (2 + 5 * 30, 2 + 3 * 30)
    # gan diagnose probes the kept checkpoints with edits of training digits (there is no z to sample)
    proc = gan("diagnose", f"run={root / 'run'}", cwd=root, check=True)
    assert "verdict:" in proc.stdout


def test_sample_refuses_bad_edits_in_one_line_and_writes_nothing(attgan_run, tiny_checkpoint):
    root, ckpt, digits = attgan_run
    out = root / "nothing"
    for args, needle in ((["edit=colour+"], "unknown attribute 'colour'; this model edits thickness, slant"),
                         (['edit="thickness=2"'], "is not name=0, name=1, name+ or name-"),
                         (["edit=slant+", "label=3"], "label=3"), (["intensity=inf"], "finite"),
                         ([], "without edit= gan sample draws the edit grid")):
        one_line_error(gan("sample", f"checkpoint={ckpt}", f"input={digits}", *args, f"out={out}", cwd=root), needle)
    one_line_error(gan("sample", f"checkpoint={ckpt}", "edit=slant+", cwd=root), "input= is required")
    one_line_error(gan("eval", f"checkpoint={ckpt}", cwd=root), "bench/attgan_edits.py")
    proc = gan("train", *TINY_ATTGAN, "train.steps=10", "train.eval_every=1", f"hydra.run.dir={root / 'evaluated'}", cwd=root)
    one_line_error(proc, "train.eval_every=1", "bench/attgan_edits.py")
    assert not (root / "evaluated" / "checkpoints").exists()
    # a model without attributes: a DCGAN
    for arg in ("edit=thickness+", "intensity=2"):
        one_line_error(gan("sample", f"checkpoint={tiny_checkpoint}", arg, f"out={out}", cwd=root),
                       "has no attributes to edit")
    assert not out.exists()
    assert not any(p.name == "edits.png" for p in root.rglob("*.png"))


def test_sample_grid_without_edit(attgan_run):
    root, ckpt, digits = attgan_run
    proc = gan("sample", f"checkpoint={ckpt}", f"input={digits / 'd1.png'}", f"out={root / 'one.png'}", cwd=root,
               check=True)
    assert "input | reconstruction | thickness flipped | slant flipped" in proc.stdout
    assert Image.open(root / "one.png").size == (2 + 4 * 30, 32)


@pytest.mark.slow
def test_resume_is_bit_exact(attgan_run, tmp_path):
    """The shuffles of b come from the run's noise stream and the penalty's interpolates from torch's: both are
    in the checkpoint, so a resumed run ends as the straight one, thresholds included."""
    root, _, _ = attgan_run
    a, b = assert_resumes_bit_exact(root / "run", tmp_path, TINY_ATTGAN, stop=5, steps=10)
    assert torch.equal(a["models"]["G"]["thresholds"], b["models"]["G"]["thresholds"])
