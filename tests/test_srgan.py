"""SRGAN (Ledig et al. 2017): the low-resolution inputs against bicubic downsampling by hand, SRResNet's sizes
and pixel shuffle, the two phases of the objective against hand computation, the content networks, then the
real command on MNIST: train, eval (with bicubic's floor), sample the user's own images, and each bad input in
one line."""

from __future__ import annotations

import copy
import json
import logging
import urllib.error
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from gan_cli import build, checkpoint
from gan_cli.algorithms.srgan import SRGAN
from gan_cli.data.super_resolution import super_resolution
from gan_cli.data.translation import jitter
from gan_cli.distributed import World
from gan_cli.errors import UserError
from gan_cli.loop import Schedule
from gan_cli.losses import NonSaturating
from gan_cli.models.srgan import ClassifierContent, ContentNetwork, Discriminator, Generator, VGGContent
from tests.helpers import DATA_ROOT, compose_config, gan, one_line_error

# real MNIST at 28 px (its classifier is cached under data/classifiers), x4: 7 px inputs; tiny networks
SR = ["algorithm=srgan", "model=srgan", "data=super_resolution", "data.dataset=MNIST", "data.resolution=28",
      "data.scale=4", "algorithm.content=classifier", "algorithm.pretrain_steps=2", "model.g.blocks=1",
      "model.g.width=4", "model.d.width=4", "train.steps=4", "train.batch_size=4", "train.log_every=2",
      "train.sample_every=2", "train.checkpoint_every=2", "train.num_samples=4", "device=cpu"]


def by_hand_bicubic(images: torch.Tensor, factor: int) -> torch.Tensor:
    """Antialiased bicubic downsampling written out: each output pixel i of a side averages the input pixels j
    with weights k((j + 0.5 - (i + 0.5) factor) / factor), Keys' cubic kernel with a = -0.5 stretched by the
    factor (the antialiasing), the weights that fall inside the image renormalised to sum 1; rows, then
    columns; rounded to 8 bits."""
    def cubic(t: torch.Tensor, a: float = -0.5) -> torch.Tensor:
        t = t.abs()
        near = (a + 2) * t ** 3 - (a + 3) * t ** 2 + 1
        far = a * t ** 3 - 5 * a * t ** 2 + 8 * a * t - 4 * a
        return torch.where(t <= 1, near, torch.where(t < 2, far, torch.zeros_like(t)))

    n = images.shape[-1]
    centres = torch.arange(n // factor, dtype=torch.float64)[:, None] * factor + factor / 2
    weights = cubic((torch.arange(n, dtype=torch.float64)[None] + 0.5 - centres) / factor)
    weights = weights / weights.sum(1, keepdim=True)  # (n / factor, n)
    small = torch.einsum("ij,ncjk,lk->ncil", weights, images.double(), weights)
    return small.round().clamp(0, 255).to(torch.uint8)


def test_the_inputs_are_the_targets_downsampled_by_bicubic_by_hand(mnist_root):
    data = super_resolution("MNIST", str(mnist_root), "test", resolution=28, scale=4)
    assert data.shape == (1, 28, 28) and data.input_shape == (1, 7, 7) and len(data) == 10_000
    assert data.num_classes == 10 and torch.equal(data.domain_a.labels, data.domain_b.labels)
    hand = by_hand_bicubic(data.domain_b.samples[:64], 4)
    # torch's float arithmetic may round a pixel that sits on .5 the other way: at most one grey level apart
    torch.testing.assert_close(data.domain_a.samples[:64].int(), hand.int(), rtol=0, atol=1)
    assert (data.domain_a.samples[:64] != hand).float().mean() < 0.01
    # the batches pair each input with its own target, also when mirrored
    flipped = super_resolution("MNIST", str(mnist_root), "test", resolution=28, scale=2, flip=True)
    batch = next(flipped.batches(32, torch.device("cpu"), seed=0))
    assert batch.inputs.shape == (32, 1, 14, 14) and torch.equal(batch.images, batch.targets)
    targets = ((batch.targets + 1) * 127.5).round().to(torch.uint8)
    inputs = ((batch.inputs + 1) * 127.5).round().to(torch.uint8)
    torch.testing.assert_close(inputs.int(), by_hand_bicubic(targets, 2).int(), rtol=0, atol=1)
    # a pair is mirrored as one: input and target both, or neither
    small, big = flipped.domain_a.samples[:64], flipped.domain_b.samples[:64]
    a, b = jitter([small, big], 28, True, torch.Generator().manual_seed(0))
    turned = [torch.equal(b[i], big[i].flip(-1)) and not torch.equal(b[i], big[i]) for i in range(64)]
    assert 10 < sum(turned) < 54
    for i in range(64):
        assert torch.equal(a[i], small[i].flip(-1) if turned[i] else small[i])
        assert torch.equal(b[i], big[i].flip(-1) if turned[i] else big[i])


@pytest.mark.parametrize("scale", [2, 4])
def test_srresnet_upscales_by_its_factor_with_pixel_shuffle(scale):
    G = Generator((1, 8 * scale, 8 * scale), (1, 8, 8), blocks=2, width=4).eval()
    assert G.scale == scale
    assert G(torch.zeros(2, 1, 5, 7)).shape == (2, 1, 5 * scale, 7 * scale)  # any input size: fully convolutional
    shuffles = [m for m in G.up if isinstance(m, torch.nn.PixelShuffle)]
    assert len(shuffles) == {2: 1, 4: 2}[scale]
    # channel 4k + 2i + j of a pixel (h, w) goes to (2h + i, 2w + j) of channel k
    x = torch.arange(2 * 4 * 3 * 3, dtype=torch.float32).view(1, 8, 3, 3)
    out = shuffles[0](x)
    for k, i, j, h, w in [(0, 0, 0, 0, 0), (0, 1, 0, 2, 1), (1, 0, 1, 1, 2), (1, 1, 1, 2, 2)]:
        assert out[0, k, 2 * h + i, 2 * w + j] == x[0, 4 * k + 2 * i + j, h, w]
    with pytest.raises(UserError, match="upscales by 2 or 4"):
        Generator((1, 24, 24), (1, 8, 8))
    with pytest.raises(UserError, match="takes 1-channel images; this one is 3x5x5: convert it to grayscale"):
        G.check_input((3, 5, 5))


def test_the_discriminator_follows_the_paper():
    D = Discriminator((1, 28, 28), width=4)
    convs = [m for m in D.net if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [4, 4, 8, 8, 16, 16, 32, 32]
    assert [c.stride[0] for c in convs] == [1, 2] * 4 and all(c.kernel_size == (3, 3) for c in convs)
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in D.net) == 7  # after every conv but the first
    assert D.head[1].in_features == 32 * 2 * 2 and D.head[1].out_features == 64  # 28 -> 14 -> 7 -> 4 -> 2; 16w
    assert D(torch.zeros(3, 1, 28, 28)).shape == (3,)


# -- the objective against hand computation ---------------------------------------------------------------

class HalfPool(ContentNetwork):
    """A stand-in feature network known by hand: phi(v) = 3 avgpool2(v)."""

    scale = 0.25

    def forward(self, v):
        return 3 * F.avg_pool2d(v, 2)


def _algorithm(content=None, pretrain_steps=2, **kw):
    torch.manual_seed(0)
    G, D = Generator((1, 8, 8), (1, 4, 4), blocks=1, width=4), Discriminator((1, 8, 8), width=4)
    opts = {"G": torch.optim.SGD(G.parameters(), 0.1), "D": torch.optim.SGD(D.parameters(), 0.1)}
    return SRGAN({"G": G, "D": D}, opts, NonSaturating(), pretrain_steps=pretrain_steps, content_network=content, **kw)


def _run(step: int):
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(4, 1, 4, 4, generator=g) * 2 - 1, torch.rand(4, 1, 8, 8, generator=g) * 2 - 1
    batch = SimpleNamespace(inputs=x, targets=y, images=y)
    return SimpleNamespace(next_batch=lambda: batch, schedule=Schedule(steps=10, batch_size=4), world=World(),
                           step=step), x, y


def test_pretraining_trains_g_alone_on_the_pixel_mse():
    alg = _algorithm(content=HalfPool(), pretrain_steps=2)
    run, x, y = _run(step=1)  # the last pretraining step
    d_before = copy.deepcopy(alg.D.state_dict())
    twin = copy.deepcopy(alg.G)  # trained by hand on the MSE alone
    d = alg.d_step(run)
    assert all(torch.equal(v, alg.D.state_dict()[k]) for k, v in d_before.items())  # weights and BN statistics
    assert "grad_norm/d" not in d and set(d) == {"loss/d", "d/real", "d/fake", "acc/real", "acc/fake"}
    g = alg.g_step(run)
    mse = (twin(x) - y).square().mean()
    torch.testing.assert_close(g["srgan/mse"], mse.detach())
    # SRGAN's objectives are measured, not minimised (D in eval mode): loss/g means one thing all run long
    with torch.no_grad():
        fake = twin(x)
        D = copy.deepcopy(alg.D).eval()
        content = 0.25 * (3 * F.avg_pool2d(fake, 2) - 3 * F.avg_pool2d(y, 2)).square().mean()
        adversarial = F.softplus(-D(fake)).mean()
        real_logits, fake_logits = D(y), D(fake)
    torch.testing.assert_close(g["loss/g"], content + 1e-3 * adversarial)
    torch.testing.assert_close(g["srgan/content"], content)
    torch.testing.assert_close(d["loss/d"], F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean())
    opt = torch.optim.SGD(twin.parameters(), 0.1)
    opt.zero_grad()
    mse.backward()
    opt.step()
    for (name, p), q in zip(alg.G.named_parameters(), twin.parameters()):
        torch.testing.assert_close(p, q, msg=name)
    assert all(torch.equal(v, alg.D.state_dict()[k]) for k, v in d_before.items())


def test_pretraining_measures_once_per_log_interval_and_on_a_resumed_first_step():
    alg = _algorithm(content=HalfPool(), pretrain_steps=10, log_every=3)
    measured = []
    for step in (4, 5, 6, 7):  # a resumed process starts at step 4: measured then, and at 6, the interval's first
        run = _run(step)[0]
        d, g = alg.d_step(run), alg.g_step(run)
        assert ("loss/d" in d) == ("loss/g" in g) and "srgan/mse" in g
        measured.append("loss/g" in g)
    assert measured == [True, False, True, False]


def test_after_pretraining_g_pays_content_plus_a_thousandth_of_the_adversarial_term():
    alg = _algorithm(content=HalfPool(), pretrain_steps=2)
    assert alg.content_scale == 0.25 and alg.adversarial_weight == 1e-3  # the network's own scale; the paper's
    run, x, y = _run(step=2)
    d_before = copy.deepcopy(alg.D.state_dict())
    d = alg.d_step(run)
    assert "grad_norm/d" in d and not torch.equal(d_before["net.0.weight"], alg.D.net[0].weight)  # D trains now
    with torch.no_grad():  # G(x) of this step (G untouched by D's phase), against the updated D
        fake = alg.G(x)
        content = 0.25 * (3 * F.avg_pool2d(fake, 2) - 3 * F.avg_pool2d(y, 2)).square().mean()
        adversarial = F.softplus(-alg.D(fake)).mean()  # -log D(G(x)), non-saturating
    d_after = copy.deepcopy(alg.D.state_dict())
    g = alg.g_step(run)
    torch.testing.assert_close(g["srgan/content"], content)
    torch.testing.assert_close(g["srgan/adversarial"], adversarial)
    torch.testing.assert_close(g["loss/g"], content + 1e-3 * adversarial)
    torch.testing.assert_close(g["srgan/mse"], (fake - y).square().mean())
    for k, v in d_after.items():  # G's phase leaves D's weights alone
        if "running" not in k and "num_batches" not in k:
            assert torch.equal(v, alg.D.state_dict()[k]), k
    # content_scale overrides the network's own; without a network the content loss is the pixel MSE
    alg = _algorithm(content=HalfPool(), content_scale=2.0)
    assert alg.content_scale == 2.0
    mse = _algorithm()
    g = mse.g_step(_run(step=2)[0])
    torch.testing.assert_close(g["srgan/content"], g["srgan/mse"])


@pytest.mark.parametrize("kw, needle", [({"pretrain_steps": -1}, "pretrain_steps"),
                                        ({"adversarial_weight": -1.0}, "adversarial_weight"),
                                        ({"content_scale": 0.0}, "content_scale")])
def test_bad_srgan_settings_are_refused(kw, needle):
    with pytest.raises(UserError, match=needle):
        _algorithm(**kw)


# -- the content networks ---------------------------------------------------------------------------------

def _vgg_features_state() -> dict[str, torch.Tensor]:
    """Random weights in the layout of torchvision's vgg19 state dict (its features; the dense layers are left
    out, as VGGContent reads only the features)."""
    from torchvision.models import vgg19

    torch.manual_seed(0)
    with torch.device("meta"):
        features = vgg19().features
    features = features.to_empty(device="cpu")
    for m in features:
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.normal_(m.weight, std=0.05)
            torch.nn.init.zeros_(m.bias)
    return {f"features.{k}": v for k, v in features.state_dict().items()}


def test_vgg_content_is_relu5_4_of_imagenet_normalised_grey_repeated_to_rgb():
    state = _vgg_features_state()
    net = VGGContent(state, "test")
    x = torch.rand(2, 1, 32, 32) * 2 - 1
    out = net(x)
    assert out.shape == (2, 512, 2, 2) and not any(p.requires_grad for p in net.parameters())
    # by hand: [-1, 1] -> [0, 1], three equal channels, ImageNet's mean and std, then the 16 convs (4 blocks + 4)
    h = ((x + 1) / 2).repeat(1, 3, 1, 1)
    h = (h - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    convs = [int(k.split(".")[1]) for k in state if k.endswith(".weight")]
    for i in convs:
        h = F.relu(F.conv2d(h, state[f"features.{i}.weight"], state[f"features.{i}.bias"], padding=1))
        if i in (2, 7, 16, 25):  # the last conv of blocks 1 to 4: max pooling follows
            h = F.max_pool2d(h, 2)
    assert len(convs) == 16
    torch.testing.assert_close(out, h)
    net.train()
    assert not net.training  # a fixed measure stays in eval mode


def test_vgg_weights_from_a_file_or_the_fallback_is_logged(tmp_path, mnist_root, monkeypatch, caplog):
    path = tmp_path / "vgg19.pth"
    torch.save(_vgg_features_state(), path)
    cfg = compose_config("train", [*SR, "algorithm.content=auto", f"algorithm.vgg_weights={path}"])
    with caplog.at_level(logging.INFO, logger="gan_cli.build"):
        net = build.content_network(cfg, None, torch.device("cpu"))
    assert isinstance(net, VGGContent) and "content loss: VGG19 relu5_4" in caplog.text
    # auto without weights at hand (offline): the data set's own classifier, and the log line says why
    _offline(monkeypatch)
    cfg = compose_config("train", [*SR, "algorithm.content=auto"])
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="gan_cli.build"):
        net = build.content_network(cfg, build.data(cfg), torch.device("cpu"))
    assert isinstance(net, ClassifierContent)
    assert "content loss: the mnist_cnn classifier's last convolutional features (VGG19's weights are not at hand: " \
           "they are not in torch's cache and torchvision's download failed (URLError" in caplog.text
    assert net(torch.zeros(2, 1, 28, 28)).shape == (2, 64, 14, 14)


def _offline(monkeypatch):
    """torchvision's download as it fails without internet, whatever this machine's network and cache."""
    import torchvision.models._api as api

    def refuse(*args, **kwargs):
        raise urllib.error.URLError("offline (the test's stand-in)")

    monkeypatch.setattr(api, "load_state_dict_from_url", refuse)


# -- the real command ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained(tmp_path_factory, mnist_root) -> Path:
    """One tiny SRGAN run on MNIST x4 (two pretraining steps, two adversarial ones), with the real command."""
    out = tmp_path_factory.mktemp("srgan_run")
    gan("train", *SR, "train.eval_every=2", "train.eval_n=200", f"hydra.run.dir={out / 'run'}", cwd=out, check=True)
    return out / "run"


def test_srgan_trains_pretraining_first_and_measures_itself(trained):
    rows = [json.loads(line) for line in (trained / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4]
    every = {"loss/d", "d/real", "acc/real", "acc/fake", "loss/g", "srgan/mse", "srgan/content", "srgan/adversarial"}
    assert every <= set(rows[0]) and every <= set(rows[1])  # the same series from the first step on
    assert "grad_norm/d" not in rows[0] and "grad_norm/d" in rows[1]  # D trains only after the pretraining
    for row in rows:
        torch.testing.assert_close(row["loss/g"], row["srgan/content"] + 1e-3 * row["srgan/adversarial"])
    evals = [json.loads(line) for line in (trained / "evals.jsonl").read_text().splitlines()]
    names = {"fd_mnist_cnn", "class_preserved", "l1", "psnr", "ssim"}
    assert set(evals[-1]) - {"step"} == names | {f"bicubic_{m}" for m in names}
    assert evals[0]["bicubic_psnr"] == evals[-1]["bicubic_psnr"]  # the floor does not move
    picture = Image.open(trained / "samples" / "step_0000004.png")
    assert picture.size == (2 + 4 * 3 * 30, 2 + 1 * 30)  # 4 groups of bicubic | G(x) | original, 28 px tiles
    saved = checkpoint.load(trained / "checkpoints" / "last.pt")
    assert saved["data"]["input_shape"] == [1, 7, 7] and saved["data"]["shape"] == [1, 28, 28]
    assert "content" not in saved["models"]  # the frozen feature network is not part of the model
    assert "content loss: the mnist_cnn classifier's last convolutional features" in (trained / "train.log").read_text()


def test_eval_reports_psnr_ssim_fd_and_bicubics_floor(trained, tmp_path):
    from torchmetrics.functional.image import peak_signal_noise_ratio

    ckpt = trained / "checkpoints" / "last.pt"
    gan("eval", f"checkpoint={ckpt}", "n=200", "device=cpu", cwd=tmp_path, check=True)
    metrics = json.loads((trained / "checkpoints" / "metrics.json").read_text())["last.pt"]["metrics"]
    for m in ("psnr", "ssim", "fd_mnist_cnn", "l1", "class_preserved"):
        assert m in metrics and f"bicubic_{m}" in metrics
    assert 0 < metrics["ssim"] < 1 and 0 < metrics["bicubic_ssim"] < 1
    test = super_resolution("MNIST", str(DATA_ROOT), "test", 28, 4)
    x, y, _ = test.pairs(200)
    up = F.interpolate(x, size=(28, 28), mode="bicubic", align_corners=False).clamp(-1, 1)
    mse = ((up - y) / 2).square().flatten(1).mean(1)  # on [0, 1] pixels, per image
    torch.testing.assert_close(metrics["bicubic_psnr"], float((10 * torch.log10(1 / mse)).mean()), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(metrics["bicubic_l1"], float((up - y).abs().mean()))
    G = checkpoint.Saved.load(ckpt).generator(torch.device("cpu"))
    with torch.no_grad():
        fake = G(x).clamp(-1, 1)
    torch.testing.assert_close(metrics["psnr"], float(peak_signal_noise_ratio((fake + 1) / 2, (y + 1) / 2,
                                                                              data_range=1.0, dim=(1, 2, 3))))


def _pngs(folder: Path, sizes: list[tuple[int, int]], mode: str = "L") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(3)
    for i, (w, h) in enumerate(sizes):
        pixels = torch.randint(0, 256, (h, w, 3) if mode == "RGB" else (h, w), generator=g, dtype=torch.uint8)
        Image.fromarray(pixels.numpy(), mode).save(folder / f"{i:03d}.png")
    return folder


def test_sample_upscales_the_users_own_images(trained, tmp_path):
    ckpt = f"checkpoint={trained / 'checkpoints' / 'last.pt'}"
    mine = _pngs(tmp_path / "mine", [(7, 7), (9, 5)])  # (width, height): any size, not only the training one's
    out = gan("sample", ckpt, f"input={mine}", f"out={tmp_path / 'big'}", cwd=tmp_path, check=True)
    assert "2 images translated AtoB" in out.stdout
    assert Image.open(tmp_path / "big" / "000.png").size == (28, 28)
    assert Image.open(tmp_path / "big" / "001.png").size == (36, 20)
    # what G makes of the file, by hand
    G = checkpoint.Saved.load(trained / "checkpoints" / "last.pt").generator(torch.device("cpu"))
    x = torch.from_numpy(np.array(Image.open(mine / "000.png"))).float()[None, None] / 127.5 - 1
    with torch.no_grad():
        expected = ((G(x)[0, 0].clamp(-1, 1) + 1) * 127.5).round()
    written = torch.from_numpy(np.array(Image.open(tmp_path / "big" / "000.png"))).float()  # grey as RGB
    for channel in range(written.shape[-1]):
        torch.testing.assert_close(written[..., channel], expected, rtol=0, atol=1)
    # a grid: bicubic-upsampled input | output, at the output's size
    single = _pngs(tmp_path / "one", [(7, 7), (7, 7)])
    gan("sample", ckpt, f"input={single}", f"out={tmp_path / 'grid.png'}", cwd=tmp_path, check=True)
    assert Image.open(tmp_path / "grid.png").size == (2 + 2 * 30, 2 + 2 * 30)


# -- bad input: one line, nothing left behind ----------------------------------------------------------------

class _Payload:
    """A pickle that runs code when loaded: it would write a file."""

    def __init__(self, victim: Path):
        self.victim = victim

    def __reduce__(self):
        return eval, (f"__import__('pathlib').Path({str(self.victim)!r}).write_text('pwned') and {{}}",)


def test_bad_data_and_weights_are_one_line_and_leave_no_run(tmp_path, mnist_root, monkeypatch):
    victim = tmp_path / "victim.txt"
    torch.save({"weights": _Payload(victim)}, tmp_path / "code.pth")
    torch.save({"features.0.weight": torch.zeros(3)}, tmp_path / "other.pth")
    cases = [
        (["data.resolution=30"], "data.resolution=30 cannot be divided by data.scale=4", "28 or 32"),
        (["data.scale=3"], "data.scale=3: choose 2 or 4"),
        (["algorithm.vgg_weights=/missing/vgg19.pth", "algorithm.content=auto"],
         "algorithm.vgg_weights=/missing/vgg19.pth is not a file"),
        (["algorithm.vgg_weights=/missing/vgg19.pth"], "is read with algorithm.content=vgg19 or auto"),
        ([f"algorithm.vgg_weights={tmp_path / 'code.pth'}", "algorithm.content=vgg19"], "does not load as plain data",
         "run code is refused"),
        ([f"algorithm.vgg_weights={tmp_path / 'other.pth'}", "algorithm.content=auto"],
         "is not a state dict of torchvision's vgg19"),
        (["algorithm.content=vgg19"], "algorithm.content=vgg19: VGG19's ImageNet weights are not at hand",
         "download failed (URLError", "algorithm.vgg_weights=PATH"),
    ]
    _offline(monkeypatch)
    for i, (extra, *needles) in enumerate(cases):
        run = tmp_path / f"run{i}"
        one_line_error(gan("train", *SR, *extra, f"hydra.run.dir={run}", cwd=tmp_path), *needles)
        assert not run.exists()
    assert not victim.exists()  # the pickle's code never ran
    # pix2pix's U-Net on super-resolution's pairs, SRGAN on pairs of one size
    mismatches = [(["algorithm=pix2pix", "model=pix2pix", "data=super_resolution", "data.dataset=MNIST",
                    "model.d.receptive_field=16"], "pairs small inputs with larger targets (super-resolution)"),
                  (["algorithm=srgan", "model=srgan", "data=edges2mnist"], "algorithm=srgan upscales images")]
    for i, (args, needle) in enumerate(mismatches):
        run = tmp_path / f"mismatch{i}"
        one_line_error(gan("train", *args, "device=cpu", f"hydra.run.dir={run}", cwd=tmp_path), needle)
        assert not run.exists()


def test_sampling_refuses_images_of_the_wrong_channels(trained, tmp_path):
    rgb = _pngs(tmp_path / "rgb", [(7, 7)], mode="RGB")
    out = gan("sample", f"checkpoint={trained / 'checkpoints' / 'last.pt'}", f"input={rgb}", f"out={tmp_path / 'o'}",
              cwd=tmp_path)
    one_line_error(out, "input", "000.png", "SRResNet x4", "takes 1-channel images; this one is 3x7x7",
                   "convert it to grayscale")
    assert not (tmp_path / "o").exists()


def test_the_recipe_builds_x4_on_fashion_mnist(mnist_root):
    cfg = compose_config("train", ["experiment=srgan_fashion", "algorithm.content=mse"])
    assert cfg.data.scale == 4 and cfg.data.resolution == 28 and cfg.algorithm.adversarial_weight == 1e-3
    assert cfg.optimizer.g.lr == 1e-4 and list(cfg.optimizer.g.betas) == [0.9, 0.999]
    assert cfg.train.max_minutes is None
    parts = build.parts(cfg, torch.device("cpu"))
    algorithm = build.algorithm(cfg, parts)
    assert isinstance(algorithm, SRGAN) and parts.data.input_shape == (1, 7, 7)
    assert parts.G(torch.zeros(2, 1, 7, 7)).shape == (2, 1, 28, 28)
