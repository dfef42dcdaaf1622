"""The same runner on a CUDA device. Deselected by `make test` (CI has no GPU); `make test-all` runs
them where a GPU is present."""

import pytest
import torch

from gan_cli import build, checkpoint
from gan_cli.commands.train import run
from gan_cli.latent import seeded_z
from tests.helpers import TINY, compose_config

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def test_auto_picks_the_gpu():
    assert build.device("auto").type == "cuda"


def test_a_tiny_run_trains_on_the_gpu(tmp_path):
    run(compose_config(overrides=[o for o in TINY if not o.startswith("device=")] + ["device=auto"]), tmp_path)
    state = checkpoint.load(tmp_path / "checkpoints" / "last.pt")
    assert state["step"] == 4 and state["rng"]["cuda"] is not None


def test_seeded_z_is_the_same_on_every_device():
    torch.testing.assert_close(seeded_z(70, 5, seed=2, device="cuda").cpu(), seeded_z(70, 5, seed=2))
