"""train.compile: torch.compile'd networks train as the eager ones do, and those whose gradients are
differentiated again stay eager."""

import pytest
import torch

from gan_cli import compiling
from gan_cli.commands.train import run
from gan_cli.errors import UserError
from tests.helpers import TINY, compose_config, logged
from tests.test_stylegan2 import STYLE_TINY


def test_compiled_networks_give_the_eager_losses(tmp_path):
    import torch._dynamo

    rows = {}
    for compiled in (False, True):
        out = tmp_path / str(compiled)
        out.mkdir()
        torch._dynamo.reset()
        torch._dynamo.utils.counters.clear()
        run(compose_config(overrides=[*TINY, "train.steps=6", "train.log_every=1", "train.sample_every=3",
                                      "train.checkpoint_every=0", f"train.compile={compiled}"]), out)
        rows[compiled] = logged(out)
        graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
        assert (graphs > 0) == compiled  # the compiled run did go through torch.compile, the eager one did not
    assert len(rows[True]) == len(rows[False]) == 6
    for eager, compiled in zip(rows[False], rows[True]):
        for name in ("loss/d", "loss/g", "d/real", "d/fake", "grad_norm/d", "grad_norm/g"):
            # fused kernels sum in another order: float32 rounding, compounded over a few Adam steps
            torch.testing.assert_close(compiled[name], eager[name], rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("overrides,expected", [
    ([], {}),
    (["loss=wgan_gp", "model.d.norm=none"], {"D": "loss=wgan_gp"}),
    (["loss.r1=10"], {"D": "loss.r1"}),
    (["loss.r2=1"], {"D": "loss.r2"}),
    (["train.unrolled_steps=2"], {"D": "train.unrolled_steps"}),
    (["loss=lsgan"], {}),
], ids=["nonsaturating", "wgan_gp", "r1", "r2", "unrolled", "lsgan"])
def test_the_networks_whose_gradients_are_differentiated_again_are_named(overrides, expected):
    from gan_cli import build

    cfg = compose_config(overrides=[*TINY, *overrides])
    algorithm = build.algorithm(cfg, build.parts(cfg, torch.device("cpu")))
    assert algorithm.differentiated() == expected


@pytest.mark.parametrize("overrides,expected", [
    (["algorithm.r1_gamma=0", "algorithm.pl_weight=0"], {}),
    (["algorithm.r1_gamma=10", "algorithm.pl_weight=0"], {"D": "algorithm.r1_gamma"}),
    (["algorithm.r1_gamma=0", "algorithm.pl_weight=2"], {"G": "algorithm.pl_weight"}),
    (["algorithm.r1_gamma=10", "algorithm.pl_weight=2"], {"D": "algorithm.r1_gamma", "G": "algorithm.pl_weight"}),
], ids=["none", "r1", "path-length", "both"])
def test_stylegan2_names_its_lazy_regularisers(overrides, expected):
    from gan_cli import build

    cfg = compose_config(overrides=[*STYLE_TINY, *overrides])
    algorithm = build.algorithm(cfg, build.parts(cfg, torch.device("cpu")))
    assert algorithm.differentiated() == expected


def test_wgan_gp_compiles_g_and_leaves_its_critic_eager(caplog):
    from gan_cli import build

    cfg = compose_config(overrides=[*TINY, "loss=wgan_gp", "model.d.norm=none"])
    algorithm = build.algorithm(cfg, build.parts(cfg, torch.device("cpu")))
    with caplog.at_level("WARNING"):
        assert compiling.compile_networks(algorithm, torch.device("cpu")) == ["G"]
    assert "D stays eager: loss=wgan_gp differentiates its gradient again" in caplog.text


def test_compiling_on_the_cpu_without_a_cpp_compiler_is_one_line(monkeypatch):
    monkeypatch.setattr(compiling.shutil, "which", lambda name: None)
    with pytest.raises(UserError, match="needs a C.. compiler .* install g\\+\\+ .* or drop train.compile"):
        compiling.check_compiler(torch.device("cpu"))
