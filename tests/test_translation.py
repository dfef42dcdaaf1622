"""pix2pix and CycleGAN: their objectives against hand computation, the image pool, the learning-rate
decay, the measures, then the real command on tiny folders: train, resume bit for bit, sample the user's
images, eval, diagnose, and each bad input in one line."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from gan_cli import checkpoint
from gan_cli.algorithms.cyclegan import CycleGAN, ImagePool
from gan_cli.algorithms.pix2pix import Pix2Pix
from gan_cli.algorithms.translation import groups_picture
from gan_cli.callbacks.lr_decay import factor
from gan_cli.data.source import TensorData
from gan_cli.data.translation import PairedData, UnpairedData
from gan_cli.distributed import World
from gan_cli.errors import UserError
from gan_cli.loop import Schedule
from gan_cli.losses import LSGAN, NonSaturating
from gan_cli.metrics.evaluator import Settings
from gan_cli.metrics.features import ClassifierFeatures
from gan_cli.metrics.translation import TranslationEvaluator
from tests.helpers import compose_config, gan, one_line_error

SMALL = ["model.g.width=4", "model.d.width=4", "model.d.receptive_field=16", "train.steps=4", "train.batch_size=4",
         "train.log_every=2", "train.sample_every=2", "train.checkpoint_every=2", "train.num_samples=4",
         "device=cpu", "data.resolution=16", "data.channels=1"]
PIX2PIX = ["algorithm=pix2pix", "model=pix2pix", *SMALL]
CYCLEGAN = ["algorithm=cyclegan", "model=cyclegan", "loss=lsgan", "model.g.blocks=1", *SMALL]


# -- stand-in networks whose outputs are known by hand ------------------------------------------------

class Scale(nn.Module):
    """x -> s x: a 'generator' of one parameter."""

    num_classes = None

    def __init__(self, s: float, channels: int = 1):
        super().__init__()
        self.s = nn.Parameter(torch.tensor(s))
        self.in_shape = (channels, 2, 2)

    def forward(self, x, y=None):
        return self.s * x


class Linear(nn.Module):
    """D(v[, c]) = u mean(v) + w mean(c) per sample: a (conditional) critic of two parameters."""

    def __init__(self, u: float, w: float = 0.0):
        super().__init__()
        self.u, self.w = nn.Parameter(torch.tensor(u)), nn.Parameter(torch.tensor(w))

    def forward(self, v, c=None):
        out = self.u * v.flatten(1).mean(1)
        return out if c is None else out + self.w * c.flatten(1).mean(1)


def fake_run(batch):
    return SimpleNamespace(next_batch=lambda: batch, schedule=Schedule(steps=1, batch_size=2),
                           world=World(), z_gen=torch.Generator().manual_seed(0))


X = torch.tensor([[[[0.2, -0.4], [0.6, -0.8]]], [[[1.0, 0.0], [-0.2, 0.4]]]])  # (2, 1, 2, 2)
Y = torch.tensor([[[[0.5, 0.5], [-0.5, 0.1]]], [[[0.3, -0.3], [0.9, -0.1]]]])


def test_pix2pix_losses_match_the_paper_by_hand():
    s, u, w, lam = 0.5, 0.8, -0.3, 100.0
    G, D = Scale(s), Linear(u, w)
    opts = {"G": torch.optim.SGD(G.parameters(), 0.1), "D": torch.optim.SGD(D.parameters(), 0.1)}
    alg = Pix2Pix({"G": G, "D": D}, opts, NonSaturating(), lambda_l1=lam)
    run = fake_run(SimpleNamespace(inputs=X, targets=Y, images=Y))
    d = alg.d_step(run)
    mean = lambda t: t.flatten(1).mean(1)  # noqa: E731
    real, fake = u * mean(Y) + w * mean(X), u * mean(s * X) + w * mean(X)
    # D: -log D(x, y) - log(1 - D(x, G(x))) = softplus(-real) + softplus(fake), halving left out (Adam)
    torch.testing.assert_close(d["loss/d"], F.softplus(-real).mean() + F.softplus(fake).mean())
    assert G.s.item() == s  # D's phase leaves G alone
    u1, w1 = D.u.item(), D.w.item()
    g = alg.g_step(run)
    # G, against the updated D, on the same G(x): -log D(x, G(x)) + lambda |y - G(x)|_1
    fake1 = u1 * mean(s * X) + w1 * mean(X)
    l1 = (Y - s * X).abs().mean()
    torch.testing.assert_close(g["pix2pix/l1"], l1)
    torch.testing.assert_close(g["loss/g"], F.softplus(-fake1).mean() + lam * l1)
    assert (D.u.item(), D.w.item()) == (u1, w1)  # G's phase leaves D alone


def test_pix2pix_without_the_adversarial_term_is_l1_alone_and_trains_no_d():
    G, D = Scale(0.5), Linear(0.8)
    opts = {"G": torch.optim.SGD(G.parameters(), 0.1), "D": torch.optim.SGD(D.parameters(), 0.1)}
    alg = Pix2Pix({"G": G, "D": D}, opts, NonSaturating(), lambda_l1=100.0, lambda_gan=0.0)
    assert [p.name for p in alg.phases] == ["g"]
    g = alg.g_step(fake_run(SimpleNamespace(inputs=X, targets=Y, images=Y)))
    torch.testing.assert_close(g["loss/g"], 100.0 * (Y - 0.5 * X).abs().mean())


def test_cyclegan_losses_match_the_paper_by_hand():
    s, t, ua, ub = 0.5, 1.5, 0.8, -0.6
    G, F_, D_A, D_B = Scale(s), Scale(t), Linear(ua), Linear(ub)
    opts = {"G": torch.optim.SGD([*G.parameters(), *F_.parameters()], 0.1),
            "D": torch.optim.SGD([*D_A.parameters(), *D_B.parameters()], 0.1)}
    alg = CycleGAN({"G": G, "F": F_, "D_A": D_A, "D_B": D_B}, opts, LSGAN(), lambda_cyc=10.0, lambda_id=0.5,
                   lambda_gan=2.0, pool_size=0)
    a, b = X, Y
    critics = (D_A.u.item(), D_B.u.item())
    g = alg.g_step(fake_run(SimpleNamespace(inputs=a, images=b)))
    mean = lambda v: v.flatten(1).mean(1)  # noqa: E731
    # least squares, Mao et al.'s 1/2 on G's side: 1/2 E[(D(fake) - 1)^2]
    gan = 0.5 * ((ub * mean(s * a) - 1) ** 2).mean() + 0.5 * ((ua * mean(t * b) - 1) ** 2).mean()
    cycle = (t * s * a - a).abs().mean() + (s * t * b - b).abs().mean()
    identity = (s * b - b).abs().mean() + (t * a - a).abs().mean()
    torch.testing.assert_close(g["cyclegan/gan"], gan)
    torch.testing.assert_close(g["cyclegan/cycle"], cycle)
    torch.testing.assert_close(g["cyclegan/identity"], identity)
    torch.testing.assert_close(g["loss/g"], 2.0 * gan + 10.0 * cycle + 10.0 * 0.5 * identity)
    assert (D_A.u.item(), D_B.u.item()) == critics  # the Ds are constants in G's phase
    s1, t1 = G.s.item(), F_.s.item()
    d = alg.d_step(fake_run(None))
    # each D: 1/2 E[(D(real) - 1)^2] + 1/2 E[D(fake)^2], on the same real batch and this step's fakes (no pool)
    loss_a = 0.5 * ((ua * mean(a) - 1) ** 2).mean() + 0.5 * ((ua * mean(t * b)) ** 2).mean()
    loss_b = 0.5 * ((ub * mean(b) - 1) ** 2).mean() + 0.5 * ((ub * mean(s * a)) ** 2).mean()
    torch.testing.assert_close(d["loss/d"], (loss_a + loss_b) / 2)
    torch.testing.assert_close(d["d/real"], (ua * mean(a).mean() + ub * mean(b).mean()) / 2)
    torch.testing.assert_close(d["d_a/d_real"], ua * mean(a).mean())
    assert (G.s.item(), F_.s.item()) == (s1, t1)  # the Ds' phase leaves the generators alone


def test_the_image_pool_fills_then_swaps_about_half():
    gen = torch.Generator().manual_seed(0)
    pool = ImagePool(4)
    first = torch.arange(4.0).view(4, 1, 1, 1)
    assert torch.equal(pool.query(first, gen), first) and torch.equal(pool.images, first)  # filling: as given
    swapped = 0
    for k in range(200):
        new = torch.full((1, 1, 1, 1), 100.0 + k)
        out = pool.query(new, gen)
        if not torch.equal(out, new):
            swapped += 1
            assert out.item() < 100.0 + k and (pool.images == new).any()  # an older image out, the new one kept
    assert 70 <= swapped <= 130  # probability 1/2 each, 200 draws
    assert torch.equal(ImagePool(0).query(first, gen), first)


def test_the_pools_travel_in_the_state_and_a_damaged_one_is_refused():
    nets = {"G": Scale(1.0), "F": Scale(1.0), "D_A": Linear(1.0), "D_B": Linear(1.0)}
    opts = {"G": torch.optim.SGD([nets["G"].s, nets["F"].s], 0.1), "D": torch.optim.SGD([nets["D_A"].u], 0.1)}
    alg = CycleGAN(nets, opts, LSGAN(), pool_size=3)
    alg.pools["A"].query(X, torch.Generator())
    again = CycleGAN(nets, opts, LSGAN(), pool_size=3)
    again.load_state_dict(alg.state_dict())
    assert torch.equal(again.pools["A"].images, X) and again.pools["B"].images is None
    for damaged in ("not images", torch.zeros(2, 3, 5, 5), torch.zeros(2, 1, 2, 2, dtype=torch.long)):
        with pytest.raises(UserError, match="image pool A is not a stack of 1x2x2 images"):
            again.load_state_dict({"pools": {"A": damaged}})


@pytest.mark.parametrize("kw, needle", [({"lambda_cyc": -1.0}, "lambda_cyc"), ({"pool_size": 2.5}, "pool_size"),
                                        ({"lambda_id": -0.5}, "lambda_id")])
def test_bad_cyclegan_settings_are_refused(kw, needle):
    nets = {"G": Scale(1.0), "F": Scale(1.0), "D_A": Linear(1.0), "D_B": Linear(1.0)}
    with pytest.raises(UserError, match=needle):
        CycleGAN(nets, {}, LSGAN(), **kw)


def test_identity_needs_domains_of_the_same_channels():
    nets = {"G": Scale(1.0, channels=1), "F": Scale(1.0, channels=3), "D_A": Linear(1.0), "D_B": Linear(1.0)}
    with pytest.raises(UserError, match="lambda_id=0"):
        CycleGAN(nets, {}, LSGAN())
    CycleGAN(nets, {}, LSGAN(), lambda_id=0.0)


def test_the_learning_rate_is_constant_then_falls_linearly_to_zero():
    assert [factor(s, 10, 20) for s in (0, 9, 10, 15, 19, 20)] == [1.0, 1.0, 1.0, 0.5, pytest.approx(0.1), 0.0]


def test_groups_picture_puts_each_group_side_by_side():
    cols = [torch.full((5, 1, 4, 4), v) for v in (-1.0, 0.0, 1.0)]
    grid = groups_picture(cols, per_row=2)  # 2 groups of 3 tiles a row, 3 rows; tiles 4 px + padding 2
    assert grid.shape == (3, 2 + 3 * 6, 2 + 6 * 6)
    torch.testing.assert_close(grid[:, 2:6, 2:6], torch.zeros(3, 4, 4))  # group 0, input: -1 -> black
    torch.testing.assert_close(grid[:, 2:6, 14:18], torch.ones(3, 4, 4))  # group 0, target: 1 -> white


# -- the measures ---------------------------------------------------------------------------------------

class Oracle(nn.Module):
    """A 'classifier' of 2-class images: features are the mean pixel, class 1 when it is positive."""

    def features(self, x):
        return torch.cat([x.flatten(1).mean(1, keepdim=True), x.flatten(1).std(1, keepdim=True)], 1)

    def head(self, f):
        return torch.stack([-f[:, 0], f[:, 0]], 1)


def test_paired_measures_against_hand_computation():
    from torchmetrics.functional.image import structural_similarity_index_measure

    n = 200
    labels = torch.arange(n) % 2
    sign = labels.float() * 2 - 1  # class 1 bright, class 0 dark
    y = (sign.view(n, 1, 1, 1) * 0.5 + 0.1 * torch.randn(n, 1, 12, 12, generator=torch.Generator().manual_seed(0)))
    to8 = lambda t: ((t.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)  # noqa: E731
    # the inputs are the targets themselves, so that G(x) = -x is every target's negative: pixel errors known
    test = PairedData("t", TensorData("A", to8(y), labels, 2), TensorData("B", to8(y), labels, 2), 12, False, 2)
    _, y_held, _ = test.pairs()
    ev = TranslationEvaluator(test, {"A": None, "B": ClassifierFeatures("t", Oracle())}, Settings(n=n, batch_size=64),
                              torch.device("cpu"))

    class Flip(nn.Module):  # every class flipped: bright <-> dark
        def forward(self, inp):
            return -inp

    out = ev({"AtoB": Flip()})
    torch.testing.assert_close(out["l1"], float((2 * y_held).abs().mean()))
    mse = ((y_held.clamp(-1, 1) - (-y_held).clamp(-1, 1)) / 2).pow(2).flatten(1).mean(1)
    torch.testing.assert_close(out["psnr"], float((10 * torch.log10(1 / mse)).mean()), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(out["ssim"], float(structural_similarity_index_measure(
        (1 - y_held.clamp(-1, 1)) / 2, (y_held + 1) / 2, data_range=1.0)))
    assert out["class_preserved"] == 0.0
    assert ev.names == ["fd_t_cnn", "class_preserved", "l1", "psnr", "ssim"]


def test_unpaired_measures_count_kept_labels_both_ways_and_the_cycle():
    n = 100
    labels = torch.arange(n) % 2
    bright = ((labels.float() * 2 - 1) * 100 + 128).to(torch.uint8).view(n, 1, 1, 1).expand(n, 1, 8, 8).contiguous()
    test = UnpairedData("t", TensorData("a", bright, labels, 2), TensorData("b", bright, labels, 2), 8, False)
    feats = {"A": ClassifierFeatures("a", Oracle()), "B": ClassifierFeatures("b", Oracle())}
    ev = TranslationEvaluator(test, feats, Settings(n=n, batch_size=32), torch.device("cpu"))

    class Half(nn.Module):  # keeps the sign (the class), halves the value: the cycle loses 3/4
        def forward(self, v):
            return v / 2

    out = ev({"AtoB": Half(), "BtoA": nn.Identity()})
    assert out["label_preserved_AtoB"] == 1.0 and out["label_preserved_BtoA"] == 1.0
    a = test.sides()[0][0]
    torch.testing.assert_close(out["cycle_l1_A"], float((a / 2 - a).abs().mean()))
    assert set(out) == {"fd_b_cnn", "label_preserved_AtoB", "fd_a_cnn", "label_preserved_BtoA", "cycle_l1_A",
                        "cycle_l1_B"}


# -- the real command, on folders of the projects' layouts ----------------------------------------------

def _images(folder: Path, n: int, size: tuple[int, int], seed: int, prefix: str = "") -> None:
    g = torch.Generator().manual_seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        pixels = torch.randint(0, 256, (size[1], size[0]), generator=g, dtype=torch.uint8)
        Image.fromarray(pixels.numpy(), "L").save(folder / f"{prefix}{i:03d}.png")


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    """pix2pix's A|B layout and CycleGAN's trainA/trainB/testA/testB, of random 16 px grey images."""
    root = tmp_path_factory.mktemp("folders")
    for split, n in (("train", 8), ("test", 8)):
        _images(root / "paired" / split, n, (32, 16), seed=1)  # A|B side by side: 32 wide, 16 high
        _images(root / "unpaired" / f"{split}A", n, (16, 16), seed=2)
        _images(root / "unpaired" / f"{split}B", n + 2, (16, 16), seed=3)
    _images(root / "inputs", 2, (16, 16), seed=4)
    return {"paired": root / "paired", "unpaired": root / "unpaired", "inputs": root / "inputs"}


@pytest.fixture(scope="module")
def trained(folders, tmp_path_factory) -> dict[str, Path]:
    """One tiny pix2pix and one tiny CycleGAN run, trained with the real command."""
    out = tmp_path_factory.mktemp("translation_runs")
    gan("train", *PIX2PIX, "data=paired_folder", f"data.root={folders['paired']}", "train.eval_every=2",
        "train.eval_n=8", f"hydra.run.dir={out / 'pix2pix'}", cwd=out, check=True)
    gan("train", *CYCLEGAN, "data=unpaired_folder", f"data.root={folders['unpaired']}", "train.lr_decay_start=2",
        f"hydra.run.dir={out / 'cyclegan'}", cwd=out, check=True)
    return {"pix2pix": out / "pix2pix", "cyclegan": out / "cyclegan"}


def test_pix2pix_trains_on_a_paired_folder_and_measures_itself(trained):
    run = trained["pix2pix"]
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert {"loss/d", "loss/g", "pix2pix/l1", "pix2pix/g_gan", "acc/real", "d/fake"} <= set(rows[-1])
    evals = [json.loads(line) for line in (run / "evals.jsonl").read_text().splitlines()]
    assert [e["step"] for e in evals] == [2, 4] and {"l1", "psnr", "ssim"} == set(evals[-1]) - {"step"}
    picture = Image.open(run / "samples" / "step_0000004.png")
    assert picture.size == (2 + 4 * 3 * 18, 2 + 1 * 18)  # 4 groups of input | output | target, 16 px tiles
    saved = checkpoint.load(run / "checkpoints" / "last.pt")
    assert saved["data"]["input_shape"] == [1, 16, 16] and set(saved["models"]) == {"G", "D"}


def test_cyclegan_trains_two_generators_and_decays_its_rates(trained):
    saved = checkpoint.load(trained["cyclegan"] / "checkpoints" / "last.pt")
    assert set(saved["models"]) == {"G", "F", "D_A", "D_B"} and set(saved["optimizers"]) == {"G", "D"}
    assert saved["optimizers"]["G"]["param_groups"][0]["lr"] == 0.0  # decayed to 0 at the last step
    middle = checkpoint.load(trained["cyclegan"] / "checkpoints" / "step_0000002.pt")
    assert middle["optimizers"]["D"]["param_groups"][0]["lr"] == pytest.approx(2e-4)  # step 2: the decay's start
    assert len(saved["algorithm"]["pools"]["A"]) == 16  # 4 steps of batch 4: the 50-image pool is not full yet
    rows = [json.loads(line) for line in (trained["cyclegan"] / "metrics.jsonl").read_text().splitlines()]
    assert {"cyclegan/cycle", "cyclegan/identity", "d_a/acc_real", "d_b/acc_fake", "acc/real"} <= set(rows[-1])


@pytest.mark.parametrize("kind, extra", [("pix2pix", []), ("cyclegan", [])])
def test_resume_is_bit_exact(kind, extra, folders, trained, tmp_path):
    base = PIX2PIX if kind == "pix2pix" else CYCLEGAN
    data = ["data=paired_folder", f"data.root={folders['paired']}"] if kind == "pix2pix" else \
        ["data=unpaired_folder", f"data.root={folders['unpaired']}", "train.lr_decay_start=2"]
    first = tmp_path / "first"
    gan("train", *base, *data, "train.steps=2", f"hydra.run.dir={first}", cwd=tmp_path, check=True)
    gan("train", f"resume={first}/checkpoints/last.pt", "train.steps=4", f"hydra.run.dir={tmp_path / 'second'}",
        cwd=tmp_path, check=True)
    straight = checkpoint.load(trained[kind] / "checkpoints" / "last.pt")
    resumed = checkpoint.load(tmp_path / "second" / "checkpoints" / "last.pt")
    for net, weights in straight["models"].items():
        for name, w in weights.items():
            assert torch.equal(w, resumed["models"][net][name]), f"{net}.{name}"


def test_sample_translates_a_folder_and_a_file(trained, folders, tmp_path):
    ckpt = trained["pix2pix"] / "checkpoints" / "last.pt"
    out = gan("sample", f"checkpoint={ckpt}", f"input={folders['inputs']}", f"out={tmp_path / 'o'}", cwd=tmp_path,
              check=True)
    assert "2 images translated AtoB" in out.stdout
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["000.png", "001.png"]
    assert Image.open(tmp_path / "o" / "000.png").size == (16, 16)
    gan("sample", f"checkpoint={ckpt}", f"input={folders['inputs'] / '000.png'}", f"out={tmp_path / 'g.png'}",
        cwd=tmp_path, check=True)
    assert Image.open(tmp_path / "g.png").size == (2 + 2 * 18, 2 + 18)  # input | output
    # CycleGAN: either way
    cyc = trained["cyclegan"] / "checkpoints" / "last.pt"
    for direction in ("AtoB", "BtoA"):
        gan("sample", f"checkpoint={cyc}", f"input={folders['inputs']}", f"direction={direction}",
            f"out={tmp_path / direction}", cwd=tmp_path, check=True)
        assert len(list((tmp_path / direction).iterdir())) == 2
    a, b = (torch.from_numpy(np.array(Image.open(tmp_path / d / "000.png"))) for d in ("AtoB", "BtoA"))
    assert not torch.equal(a, b)  # G and F are different networks


def test_eval_reports_the_measures_of_each_kind(trained, tmp_path):
    out = gan("eval", f"checkpoint={trained['pix2pix'] / 'checkpoints' / 'last.pt'}", "n=8", cwd=tmp_path, check=True)
    assert "against paired_folder's test split" in out.stdout
    record = json.loads((trained["pix2pix"] / "checkpoints" / "metrics.json").read_text())["last.pt"]
    assert set(record["metrics"]) == {"l1", "psnr", "ssim"} and 0 < record["metrics"]["ssim"] < 1
    gan("eval", f"checkpoint={trained['cyclegan'] / 'checkpoints' / 'last.pt'}", "n=8", cwd=tmp_path, check=True)
    record = json.loads((trained["cyclegan"] / "checkpoints" / "metrics.json").read_text())["last.pt"]
    assert set(record["metrics"]) == {"cycle_l1_A", "cycle_l1_B"}  # folders have no labels: no class measures


def test_diagnose_reads_a_translation_run_and_each_d(trained, tmp_path):
    gan("diagnose", f"run={trained['pix2pix']}", "min_points=2", cwd=tmp_path, check=True)
    out = gan("diagnose", f"run={trained['cyclegan']}", "min_points=2", cwd=tmp_path, check=True)
    report = json.loads((trained["cyclegan"] / "diagnosis.json").read_text())
    assert {"d_a/acc_real", "d_a/acc_fake", "d_b/acc_real", "d_b/acc_fake"} <= set(report["balance"])
    if report["verdict"] == "healthy":  # the verdict line names each D's accuracies beside their means
        assert "D_A" in out.stdout and "D_B" in out.stdout


def test_a_built_in_set_trains(tmp_path, mnist_root):
    run = tmp_path / "run"
    gan("train", "experiment=pix2pix_edges2mnist", "model.g.width=4", "model.d.width=4", "train.steps=2",
        "train.batch_size=4", "train.eval_every=0", "train.sample_every=2", "train.num_samples=4", "device=cpu",
        f"hydra.run.dir={run}", cwd=tmp_path, check=True)
    assert (run / "samples" / "step_0000002.png").is_file()


# -- bad input: one line, nothing left behind ----------------------------------------------------------

def test_data_of_the_wrong_kind_is_refused_before_anything_is_built(folders, tmp_path):
    paired, unpaired = (f"data.root={folders[k]}" for k in ("paired", "unpaired"))
    cases = [
        ([*PIX2PIX, "data=unpaired_folder", unpaired], "use algorithm=cyclegan"),
        ([*CYCLEGAN, "data=paired_folder", paired], "use algorithm=pix2pix"),
        (["data=paired_folder", paired, "data.resolution=16", "data.channels=1", "device=cpu"], "algorithm=pix2pix"),
        ([*PIX2PIX[:2], "data=fake", "data.resolution=16"], "holds single images"),
    ]
    for i, (args, needle) in enumerate(cases):
        run = tmp_path / f"run{i}"
        one_line_error(gan("train", *args, f"hydra.run.dir={run}", cwd=tmp_path), needle)
        assert not run.exists()


def test_sampling_mistakes_are_one_line(trained, folders, tmp_path):
    ckpt = f"checkpoint={trained['pix2pix'] / 'checkpoints' / 'last.pt'}"
    (tmp_path / "notes.png").write_text("not an image")
    os.mkfifo(tmp_path / "pipe")
    _images(tmp_path / "odd", 1, (18, 18), seed=5)
    cases = [
        ([ckpt], "input= is required"),
        ([ckpt, f"input={tmp_path / 'missing'}"], "does not exist"),
        ([ckpt, f"input={tmp_path / 'pipe'}"], "neither an image file nor a folder"),
        ([ckpt, f"input={tmp_path / 'notes.png'}"], "is not an image"),
        ([ckpt, f"input={tmp_path / 'odd'}"], "multiple of"),
        ([ckpt, f"input={folders['inputs']}", "direction=BtoA"], "translates one way"),
        ([f"checkpoint={trained['cyclegan'] / 'checkpoints' / 'last.pt'}", f"input={folders['inputs']}",
          "direction=sideways"], "not one of AtoB, BtoA"),
    ]
    for args, needle in cases:
        one_line_error(gan("sample", *args, f"out={tmp_path / 'out'}", cwd=tmp_path), needle)
        assert not (tmp_path / "out").exists()
    one_line_error(gan("latent-arithmetic", ckpt, cwd=tmp_path), "no z to add or walk")


def test_a_translation_checkpoint_without_its_input_shape_is_refused(trained, tmp_path):
    state = checkpoint.load(trained["pix2pix"] / "checkpoints" / "last.pt")
    state["data"]["input_shape"] = None  # as if written for noise: nothing says what G takes
    torch.save(state, tmp_path / "damaged.pt")
    for command in (["sample", "out=x.png"], ["eval"], ["latent-arithmetic"]):
        one_line_error(gan(command[0], f"checkpoint={tmp_path / 'damaged.pt'}", *command[1:], cwd=tmp_path),
                       "lacks data.input_shape")


def test_an_image_too_large_for_memory_is_refused_before_it_is_decoded(trained, folders, tmp_path, monkeypatch):
    from gan_cli import limits

    monkeypatch.setattr(limits, "available_memory", lambda: 1024)  # 1 KiB: not even a 16x16 image's activations fit
    out = gan("sample", f"checkpoint={trained['pix2pix'] / 'checkpoints' / 'last.pt'}", f"input={folders['inputs']}",
              f"out={tmp_path / 'out'}", cwd=tmp_path)
    one_line_error(out, "translating input 000.png (16x16) needs", "resize the image smaller")
    assert not (tmp_path / "out").exists()


def test_sample_never_writes_over_the_images_it_translates(trained, tmp_path):
    ckpt = f"checkpoint={trained['pix2pix'] / 'checkpoints' / 'last.pt'}"
    _images(tmp_path / "mine", 2, (16, 16), seed=8)
    before = {p.name: p.read_bytes() for p in (tmp_path / "mine").iterdir()}
    for out in (tmp_path / "mine", tmp_path / "mine" / "000.png"):  # the folder itself, or one input as a grid
        one_line_error(gan("sample", ckpt, f"input={tmp_path / 'mine'}", f"out={out}", "overwrite=true", cwd=tmp_path),
                       "would be written over the input")
    assert {p.name: p.read_bytes() for p in (tmp_path / "mine").iterdir()} == before


def test_sample_refuses_a_disk_too_full_for_its_translations(trained, folders, tmp_path, monkeypatch):
    from gan_cli import limits

    monkeypatch.setattr(limits, "free_disk", lambda path: 100)  # 100 bytes free
    one_line_error(gan("sample", f"checkpoint={trained['pix2pix'] / 'checkpoints' / 'last.pt'}",
                       f"input={folders['inputs']}", f"out={tmp_path / 'out'}", cwd=tmp_path),
                   "2 translated images need", "on disk")
    assert not (tmp_path / "out").exists()


def test_translation_options_are_refused_for_a_generator_of_noise(tiny_checkpoint, folders, tmp_path):
    one_line_error(gan("sample", f"checkpoint={tiny_checkpoint}", f"input={folders['inputs']}", cwd=tmp_path),
                   "drop input=")


@pytest.mark.parametrize("recipe, data", [("pix2pix_facades", "paired"), ("cyclegan_horse2zebra", "unpaired"),
                                          ("pix2pix_edges2fashion", None), ("cyclegan_mnist2digits", None)])
def test_the_recipes_compose_and_build(recipe, data, folders, mnist_root, tmp_path):
    from gan_cli import build

    overrides = [f"experiment={recipe}"]
    if data is not None:  # the papers' folders are the user's: stand-ins of the right layout, at 256 px
        root = tmp_path / data
        for split in ("train", "test"):
            if data == "paired":
                _images(root / split, 1, (512, 256), seed=6)
            else:
                for side in "AB":
                    _images(root / f"{split}{side}", 1, (256, 256), seed=7)
        overrides.append(f"data.root={root}")
    cfg = compose_config("train", overrides)
    parts = build.parts(cfg, torch.device("cpu"))
    algorithm = build.algorithm(cfg, parts)
    assert type(algorithm).__name__.lower() == recipe.split("_")[0]
