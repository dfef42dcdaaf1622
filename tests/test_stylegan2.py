"""StyleGAN2's training (gan_cli/algorithms/stylegan2.py): lazy R1 against a hand computation on a linear
D, the optimisers' lazy adjustment, path-length regularisation, and the real command end to end."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gan_cli import checkpoint
from gan_cli.algorithms.stylegan2 import StyleGAN2
from gan_cli.losses import NonSaturating
from gan_cli.models.stylegan2 import modulated_conv2d
from tests.helpers import TINY, assert_resumes_bit_exact, gan, logged, one_line_error

STYLE_TINY = [*TINY, "algorithm=stylegan2", "model=stylegan2", "model.g.max_width=16", "model.d.max_width=16",
              "model.g.mapping_layers=2", "algorithm.r1_every=2", "algorithm.pl_weight=2", "algorithm.pl_every=3",
              "train.log_every=1", "train.ema=0.9"]


class Linear(nn.Module):
    """D(x) = <a, x> + b: its input gradient is a for every x, so R1 = ||a||^2 exactly."""

    def __init__(self):
        super().__init__()
        self.a = nn.Parameter(torch.tensor([1.0, -2.0, 0.5]))
        self.b = nn.Parameter(torch.tensor(0.3))

    def forward(self, x, y=None):
        return x @ self.a + self.b


class Constant(nn.Module):
    z_dim, num_classes = 2, None

    def forward(self, z, y=None):
        return torch.zeros(len(z), 3)


def test_lazy_r1_matches_a_hand_computation_on_a_linear_d():
    D = Linear()
    opt = torch.optim.SGD(D.parameters(), lr=0.1)
    algorithm = StyleGAN2({"G": Constant(), "D": D}, {"G": torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1),
                                                      "D": opt}, NonSaturating(), r1_gamma=0.5, r1_every=4)
    # the lazy adjustment: lr * 4/5 (SGD has no betas)
    torch.testing.assert_close(opt.param_groups[0]["lr"], 0.1 * 4 / 5)
    algorithm.last_real = (torch.randn(5, 3), None)
    run = SimpleNamespace(schedule=SimpleNamespace(precision=None), world=SimpleNamespace(average_gradients=None))
    stats = algorithm.d_r1(run)
    a = torch.tensor([1.0, -2.0, 0.5])
    torch.testing.assert_close(stats["loss/r1"], a.square().sum())  # ||a||^2 = 5.25
    # loss = gamma/2 * every * ||a||^2, gradient gamma * every * a; one SGD step at lr * 4/5
    torch.testing.assert_close(D.a.detach(), a - 0.08 * 0.5 * 4 * a)
    torch.testing.assert_close(D.b.detach(), torch.tensor(0.3))  # the bias does not move the input gradient


def test_lazy_phases_raise_adams_betas_to_c():
    D = Linear()
    opt = torch.optim.Adam(D.parameters(), lr=2e-3, betas=(0.0, 0.99))
    StyleGAN2({"G": Constant(), "D": D}, {"G": torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1), "D": opt},
              NonSaturating(), r1_every=16)
    c = 16 / 17
    torch.testing.assert_close(opt.param_groups[0]["lr"], 2e-3 * c)
    torch.testing.assert_close(opt.param_groups[0]["betas"][1], 0.99 ** c)


def test_the_unfused_modulated_conv_equals_per_sample_weights():
    torch.manual_seed(0)
    x, weight, styles = torch.randn(3, 4, 6, 6), torch.randn(5, 4, 3, 3), torch.randn(3, 4)
    for demodulate in (True, False):
        expected = []
        for i in range(3):  # the paper's eq. 1-3 for sample i, as its own conv
            w = weight * styles[i][None, :, None, None]
            if demodulate:
                w = w / torch.sqrt(w.square().sum(dim=(1, 2, 3), keepdim=True) + 1e-8)
            expected.append(F.conv2d(x[i:i + 1], w, padding=1))
        torch.testing.assert_close(modulated_conv2d(x, weight, styles, demodulate), torch.cat(expected))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run = tmp_path_factory.mktemp("stylegan2")
    gan("train", *STYLE_TINY, "train.steps=6", f"hydra.run.dir={run}", cwd=run, check=True)
    return run


def test_training_runs_the_lazy_phases_on_their_steps(trained):
    rows = logged(trained)
    # logged after steps 0..5: R1 on even steps, the path length on multiples of 3
    assert [r["step"] - 1 for r in rows if "loss/r1" in r] == [0, 2, 4]
    assert [r["step"] - 1 for r in rows if "loss/pl" in r] == [0, 3]
    state = checkpoint.load(trained / "checkpoints" / "last.pt")
    pl_mean = state["algorithm"]["pl_mean"]
    assert pl_mean.shape == () and pl_mean.item() > 0  # the running mean moved from 0
    assert state["models"]["G"]["w_avg"].abs().sum() > 0


def test_resume_is_bit_exact(trained, tmp_path):
    a, b = assert_resumes_bit_exact(trained, tmp_path, STYLE_TINY, stop=3, steps=6)
    assert torch.equal(a["algorithm"]["pl_mean"], b["algorithm"]["pl_mean"])


@pytest.mark.parametrize("overrides,needles", [
    (["algorithm=stylegan2", "algorithm.pl_weight=2"], ["algorithm.pl_weight=2", "model=stylegan2"]),
    (["algorithm=stylegan2", "loss.r1=1"], ["loss.r1=1", "algorithm=stylegan2"]),
    (["algorithm=stylegan2", "algorithm.r1_every=0"], ["algorithm.r1_every=0", "positive"]),
])
def test_impossible_settings_are_refused_in_one_line(tmp_path, overrides, needles):
    proc = gan("train", *TINY, *overrides, f"hydra.run.dir={tmp_path}/r", cwd=tmp_path)
    one_line_error(proc, *needles)
    assert not (tmp_path / "r").exists()


def test_eval_measures_truncated_samples_apart(tmp_path, mnist_root):
    run = tmp_path / "run"
    gan("train", "algorithm=stylegan2", "model=stylegan2", "model.g.width=8", "model.d.width=8", "model.g.max_width=16",
        "model.d.max_width=16", "model.z_dim=8", "model.g.mapping_layers=2", "train.steps=2", "train.batch_size=8",
        "train.sample_every=0", "device=cpu", f"hydra.run.dir={run}", cwd=tmp_path, check=True)
    ckpt = run / "checkpoints" / "last.pt"
    common = ["n=200", "metrics=[fd_mnist_cnn,recall_mnist_cnn]", f"cache_dir={tmp_path}/cache", "device=cpu"]
    gan("eval", f"checkpoint={ckpt}", *common, cwd=tmp_path, check=True)
    out = gan("eval", f"checkpoint={ckpt}", "truncation=0", *common, cwd=tmp_path, check=True)
    assert "truncation psi 0" in out.stdout
    record = json.loads((run / "checkpoints" / "metrics.json").read_text())
    assert set(record) == {"last.pt", "last.pt@truncation=0"} and record["last.pt@truncation=0"]["truncation"] == 0
    # psi = 0: one image, w_avg's, for every z: its neighbourhood radius is 0, so it recalls no real sample
    truncated, full = record["last.pt@truncation=0"]["metrics"], record["last.pt"]["metrics"]
    assert truncated["recall_mnist_cnn"] == 0 and truncated["fd_mnist_cnn"] != full["fd_mnist_cnn"]


@pytest.mark.parametrize("setting,needles", [("truncation=0.5", ["truncation=0.5", "model=stylegan2"]),
                                             ("truncation=1.5", ["truncation=1.5", "[0, 1]"])])
def test_eval_refuses_truncation_it_cannot_apply(tmp_path, tiny_checkpoint, setting, needles):
    proc = gan("eval", f"checkpoint={tiny_checkpoint}", setting, "n=10", cwd=tmp_path)
    one_line_error(proc, *needles)
