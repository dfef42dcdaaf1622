"""The product's quality promise, measured: the default `gan train` on MNIST, 5 minutes on the CPU,
gives recognisable digits of all ten classes. Slow (about 7 minutes): `make test-all` runs it."""

import pytest
import torch
from omegaconf import OmegaConf

from gan_cli import checkpoint
from gan_cli.data.torchvision_sets import load
from gan_cli.latent import seeded_z
from gan_cli.metrics import classifier
from tests.helpers import gan


@pytest.mark.slow
def test_default_run_covers_all_ten_digits_in_five_minutes(tmp_path, mnist_root):
    gan("train", "train.max_minutes=5", "device=cpu", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path, check=True)
    path = tmp_path / "run" / "checkpoints" / "last.pt"
    state = checkpoint.load(path)
    assert OmegaConf.create(state["config"]).data.dataset == "MNIST"
    net = classifier.cached("mnist", load("MNIST", str(mnist_root)), load("MNIST", str(mnist_root), split="test"),
                            mnist_root / "classifiers")
    G = checkpoint.load_generator(state, path, torch.device("cpu"))
    with torch.no_grad():
        fake = torch.cat([G(z) for z in seeded_z(2000, G.z_dim, 12345).split(500)])
    report = classifier.class_report(net, fake, 10)
    assert report["classes_covered"] == 10, report
    assert report["confident_share"] > 0.5, report
