"""BEGAN (Berthelot et al. 2017): the losses and k's controller against hand computation, then the real
command: training, resuming bit for bit, sampling, and gan diagnose's M_global judgement."""

import json
import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from gan_cli import checkpoint
from gan_cli.algorithms.began import BEGAN
from gan_cli.distributed import World
from gan_cli.errors import UserError
from gan_cli.loop import Schedule
from tests.helpers import TINY, assert_resumes_bit_exact, gan, one_line_error

BEGAN_TINY = [*TINY, "algorithm=began", "model=began", "model.d.embedding=8",
              "algorithm.k_0=0.5", "algorithm.lambda_k=0.01"]  # k starts mid-range and moves: resume must carry it


class Scale(nn.Module):
    """v -> a v: an auto-encoder whose reconstruction, and so L(v) = |1 - a| mean|v|, is known by hand."""

    autoencoder = True

    def __init__(self, a: float):
        super().__init__()
        self.a = nn.Parameter(torch.tensor(a))

    def forward(self, v, y=None):
        return self.a * v


class Reshape(nn.Module):
    """z -> b z as a (N, 1, 2, 2) image."""

    z_dim, num_classes = 4, None

    def __init__(self, b: float):
        super().__init__()
        self.b = nn.Parameter(torch.tensor(b))

    def forward(self, z, y=None):
        return self.b * z.view(len(z), 1, 2, 2)


def fake_run(x, zs):
    """What a phase reads from the loop's Run: the real batch, then each z in turn."""
    draws = iter(zs)
    return SimpleNamespace(next_batch=lambda: SimpleNamespace(images=x), z=lambda n, dim: next(draws),
                           schedule=Schedule(steps=1, batch_size=len(x)), world=World())


def make(a=0.5, b=2.0, lr=0.1, **kw):
    G, D = Reshape(b), Scale(a)
    opts = {"G": torch.optim.SGD(G.parameters(), lr), "D": torch.optim.SGD(D.parameters(), lr)}
    return BEGAN({"G": G, "D": D}, opts, **kw), G, D


def test_one_step_matches_the_paper_by_hand():
    gamma, lam, k0, a, b, lr = 0.5, 0.1, 0.3, 0.5, 2.0, 0.1
    alg, G, D = make(a, b, lr, gamma=gamma, lambda_k=lam, k_0=k0)
    x = torch.tensor([[[[0.2, -0.4], [0.6, -0.8]]], [[[1.0, 0.0], [-0.2, 0.4]]]])  # mean|x| = 0.45
    z_d = torch.tensor([[0.1, -0.2, 0.3, 0.0], [0.4, 0.0, -0.1, 0.1]])  # mean|z_D| = 0.15
    z_g = torch.tensor([[0.3, 0.3, -0.3, 0.1], [0.0, -0.2, 0.2, 0.2]])  # mean|z_G| = 0.2
    run = fake_run(x, [z_d, z_g])
    d = alg.d_step(run)
    # L(v) = |1 - a| mean|v|: L(x) = 0.5 * 0.45, L(G(z_D)) = 0.5 * 2 * 0.15
    l_real, l_fake_d = 0.5 * 0.45, 0.5 * 2 * 0.15
    torch.testing.assert_close(d["began/l_real"], torch.tensor(l_real))
    torch.testing.assert_close(d["loss/d"], torch.tensor(l_real - k0 * l_fake_d))
    # dL_D/da = -(mean|x| - k mean|G(z_D)|) for a < 1; SGD: a' = a - lr * dL_D/da
    grad_a = -(0.45 - k0 * 2 * 0.15)
    torch.testing.assert_close(d["grad_norm/d"], torch.tensor(abs(grad_a)))
    a1 = a - lr * grad_a
    torch.testing.assert_close(D.a.detach(), torch.tensor(a1))
    assert G.b.item() == b  # D's phase leaves G alone

    g = alg.g_step(run)
    l_fake = (1 - a1) * b * 0.2  # L(G(z_G)) under the updated D
    torch.testing.assert_close(g["loss/g"], torch.tensor(l_fake))
    torch.testing.assert_close(g["began/l_fake"], torch.tensor(l_fake))
    torch.testing.assert_close(g["grad_norm/g"], torch.tensor((1 - a1) * 0.2))  # dL_G/db = |1 - a'| mean|z_G|
    torch.testing.assert_close(G.b.detach(), torch.tensor(b - lr * (1 - a1) * 0.2))
    torch.testing.assert_close(D.a.detach(), torch.tensor(a1))  # G's phase leaves D alone
    # k_1 = clip(k_0 + lambda_k (gamma L(x) - L(G(z_G))), 0, 1);  M_global = L(x) + |gamma L(x) - L(G(z_G))|
    balance = gamma * l_real - l_fake
    torch.testing.assert_close(g["began/k"], torch.tensor(k0 + lam * balance))
    torch.testing.assert_close(g["began/m_global"], torch.tensor(l_real + abs(balance)))
    assert "acc/real" not in {**d, **g} and "d/real" not in {**d, **g}  # they mean nothing for BEGAN
    torch.testing.assert_close(alg.state_dict()["k"], torch.tensor(k0 + lam * balance))


def test_k_is_clipped_to_0_and_1_and_restored():
    up, _, _ = make(k_0=0.999, lambda_k=1.0, gamma=1.0)
    k, m = up.update_k(torch.tensor(0.5), torch.tensor(0.1))  # balance +0.4: 1.399 clipped
    assert k.item() == 1.0
    torch.testing.assert_close(m, torch.tensor(0.9))
    down, _, _ = make(k_0=0.001, lambda_k=1.0, gamma=0.5)
    assert down.update_k(torch.tensor(0.2), torch.tensor(0.3))[0].item() == 0.0  # balance -0.2
    down.load_state_dict(up.state_dict())
    assert down.k.item() == 1.0 and up.state_dict()["k"].device.type == "cpu"


@pytest.mark.parametrize("kw,needle", [({"gamma": 0.0}, "algorithm.gamma=0.0"), ({"lambda_k": -1.0}, "lambda_k"),
                                       ({"k_0": 2.0}, "algorithm.k_0=2.0"), ({"num_classes": 10}, "unconditional")])
def test_bad_settings_are_refused_in_one_line(kw, needle):
    with pytest.raises(UserError, match=needle):
        make(**kw)


@pytest.mark.parametrize("overrides,needle", [(["algorithm=began"], "needs an auto-encoder discriminator"),
                                               (["model=began"], "train it with algorithm=began")])
def test_a_discriminator_of_the_wrong_kind_is_refused_before_training(tmp_path, overrides, needle):
    """BEGAN's D returns images and a GAN's returns scores: either with the other algorithm is one line."""
    run = tmp_path / "run"
    one_line_error(gan("train", *TINY, *overrides, f"hydra.run.dir={run}", cwd=tmp_path), needle)
    assert not run.exists()


def test_k_moves_by_the_worlds_mean_balance():
    """Under torchrun every rank applies the world's mean of gamma L(x) - L(G(z)), so k stays one number."""
    alg, _, _ = make(k_0=0.5, lambda_k=0.1, gamma=0.5)
    world_mean = lambda balance: balance * 0 + 0.2  # the other ranks' balances make the mean 0.2
    k, m = alg.update_k(torch.tensor(0.4), torch.tensor(0.1), world_mean)
    torch.testing.assert_close(k, torch.tensor(0.5 + 0.1 * 0.2))
    torch.testing.assert_close(m, torch.tensor(0.4 + 0.2))


def test_models_fit_every_runner_resolution():
    from gan_cli.models.began import Discriminator, Generator

    for side, channels in ((28, 1), (32, 3), (64, 3)):
        G, D = Generator(8, (channels, side, side), width=4), Discriminator((channels, side, side), 4, 8)
        x = G(torch.randn(2, 8))
        assert x.shape == (2, channels, side, side) and x.abs().max() <= 1 and G.num_classes is None
        assert D(x).shape == x.shape
    with pytest.raises(UserError, match="cannot make 34x34"):  # 34 halves to 17: a 17x17 first map is too big
        Generator(8, (1, 34, 34))
    with pytest.raises(UserError, match="model.d.width=0"):
        Discriminator((1, 28, 28), width=0)


@pytest.mark.parametrize("output", ["tanh", "linear", "clamp_st"])
def test_every_generator_output_draws_pictures_in_range_and_starts_at_its_bias(output):
    from gan_cli.models.began import Generator

    G = Generator(8, (1, 28, 28), width=4, output=output, out_bias=-1.0)
    assert G.decoder.net[-2].bias.item() == -1.0  # the last convolution's
    G.eval()  # pictures, gan sample and gan eval draw in eval mode: `linear` is clipped there
    x = G(torch.randn(16, 8))
    assert x.abs().max() <= 1
    G.train()
    x = G(torch.randn(16, 8, requires_grad=True))
    x.sum().backward()  # every output passes a gradient back to G
    assert all(p.grad is not None for p in G.parameters())


def test_an_unknown_generator_output_is_refused():
    from gan_cli.models.began import Generator

    with pytest.raises(UserError, match="model.g.output='sigmoid'"):
        Generator(8, (1, 28, 28), output="sigmoid")

@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """One tiny BEGAN run of 6 steps, shared by the tests that read it."""
    run = tmp_path_factory.mktemp("began") / "straight"
    gan("train", *BEGAN_TINY, "train.steps=6", f"hydra.run.dir={run}", cwd=run.parent, check=True)
    return run


def test_training_logs_k_and_m_global_and_keeps_k(straight):
    rows = [json.loads(line) for line in (straight / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4, 6]
    for r in rows:
        assert {"loss/d", "loss/g", "began/k", "began/m_global", "began/l_real", "began/l_fake", "grad_norm/d",
                "grad_norm/g"} <= r.keys()
        assert not {"acc/real", "acc/fake", "d/real", "d/fake"} & r.keys()
    state = checkpoint.load(straight / "checkpoints" / "last.pt")
    k = state["algorithm"]["k"]
    assert k.shape == () and 0 <= k.item() <= 1 and k.item() != 0.5  # it moved from k_0
    assert state["config"]["algorithm"]["_target_"] == "gan_cli.algorithms.began.BEGAN"


def test_resume_is_bit_exact(straight, tmp_path):
    a, b = assert_resumes_bit_exact(straight, tmp_path, BEGAN_TINY, stop=3, steps=6)
    assert torch.equal(a["algorithm"]["k"], b["algorithm"]["k"])


def test_sample_draws_from_a_began_checkpoint(straight, tmp_path):
    out = gan("sample", f"checkpoint={straight}/checkpoints/last.pt", "n=4", f"out={tmp_path}/s.png", "device=cpu",
              cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "s.png").stat().st_size > 0


def write_run(run, m_global, k=0.05, every=500):
    """A BEGAN run's metrics.jsonl by hand (no acc/*, d/*), and the config its cures read."""
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "config.yaml").write_text(
        "algorithm: {_target_: gan_cli.algorithms.began.BEGAN, gamma: 0.5}\n"
        "optimizer: {d: {lr: 1.0e-4}, g: {lr: 1.0e-4}}\n")
    with (run / "metrics.jsonl").open("w") as f:
        for i, m in enumerate(m_global):
            f.write(json.dumps({"step": every * (i + 1), "loss/d": 0.1, "loss/g": 0.05 + 0.01 * math.sin(i),
                                "began/m_global": m, "began/k": k, "grad_norm/d": 1.0, "grad_norm/g": 1.0}) + "\n")


@pytest.mark.parametrize("shape", ["flat", "rising"])
def test_diagnose_names_a_began_run_whose_m_global_does_not_fall(tmp_path, shape):
    m = [0.2] * 20 if shape == "flat" else [0.2 + 0.01 * i for i in range(20)]
    write_run(tmp_path / "run", m, k=0.0)
    out = gan("diagnose", f"run={tmp_path / 'run'}", "samples=0", "min_points=3", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "verdict: convergence failure" in out.stdout and "M_global" in out.stdout
    # k pinned at 0: G cannot reach gamma L(x); a higher gamma asks less of it. And the paper's lr halving
    assert "algorithm.gamma=0.7" in out.stdout and "optimizer.d.lr=5e-05" in out.stdout
    report = json.loads((tmp_path / "run" / "diagnosis.json").read_text())
    assert [f["kind"] for f in report["findings"]] == ["convergence_failure"]


def test_diagnose_judges_a_falling_m_global_healthy(tmp_path):
    write_run(tmp_path / "run", [0.3 * 0.9 ** i for i in range(20)])  # the first 2 rows: mean 0.285
    out = gan("diagnose", f"run={tmp_path / 'run'}", "samples=0", "min_points=3", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "verdict: healthy. M_global fell from 0.285 to" in out.stdout and "nan" not in out.stdout
    b = json.loads((tmp_path / "run" / "diagnosis.json").read_text())["balance"]
    assert b["began/m_global"] < 0.5 * b["began/m_global_early"]


def test_the_watch_waits_before_judging_m_global():
    from gan_cli.diagnose import detectors
    from gan_cli.diagnose.series import Series
    from tests.helpers import compose_config
    from omegaconf import OmegaConf

    t = OmegaConf.to_container(compose_config("diagnose").thresholds)
    early = t["began_convergence"]["min_steps"] - 50
    flat = Series(list(range(50, early + 1, 50)), {"began/m_global": [0.2] * (early // 50), "loss/g": [0.1] * (early // 50)})
    assert detectors.detect(flat, {}, t) == []  # the first steps of every run look flat: not yet a verdict


@pytest.mark.parametrize("algorithm,needle", [({"k": "notanumber"}, "BEGAN k is 'notanumber'"),
                                              ({"k": torch.tensor(float("nan"))}, "BEGAN k is tensor(nan)"),
                                              ({"k": torch.tensor(2.0)}, "not a number in [0, 1]"),
                                              ([1], "'algorithm' is a list, not a mapping")])
def test_a_crafted_k_is_refused_in_one_line_on_resume(straight, tmp_path, algorithm, needle):
    state = torch.load(straight / "checkpoints" / "last.pt", weights_only=True)
    state["algorithm"] = algorithm
    torch.save(state, tmp_path / "bad.pt")
    run = tmp_path / "run"
    one_line_error(gan("train", f"resume={tmp_path / 'bad.pt'}", "train.steps=8", f"hydra.run.dir={run}",
                       cwd=tmp_path), needle)
    assert not run.exists()
