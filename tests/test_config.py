"""Every option of every config group composes and builds; the composed keys are the documented ones."""

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from gan_cli import build
from gan_cli.errors import UserError
from gan_cli.paths import config_dir
from tests.helpers import DATA_ROOT, compose_config, installed


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (Path(config_dir()) / group).glob("*.yaml"))


def test_groups_hold_the_documented_options():
    assert options("model") == ["attgan", "autoencoder", "began", "cdcgan", "cgan", "cyclegan", "dcgan", "gmm", "lapgan",
                                "mlp", "pix2pix", "progan", "sngan", "srgan", "stylegan2", "text2image", "vae"]
    assert options("algorithm") == ["attgan", "autoencoder", "began", "cyclegan", "gan", "gmm", "lapgan", "pix2pix",
                                    "progan", "srgan", "stylegan2", "text2image", "vae"]
    assert options("loss") == ["hinge", "lsgan", "minimax", "nonsaturating", "wgan", "wgan_gp"]
    assert options("optimizer") == ["adam", "rmsprop", "sgd"]
    assert options("data") == ["attribute_folder", "cifar10", "edges2fashion", "edges2mnist", "fake", "fashion_mnist",
                               "folder", "mnist", "mnist2digits", "paired_folder", "super_resolution", "toy_grid", "toy_ring",
                               "unpaired_folder"]


def test_defaults_are_dcgan_nonsaturating_mnist_adam():
    cfg = compose_config()
    assert cfg.model.g._target_.endswith("dcgan.Generator")
    assert cfg.loss._target_.endswith("NonSaturating")
    assert cfg.data.dataset == "MNIST"
    assert cfg.optimizer.g.lr == 2e-4 and list(cfg.optimizer.g.betas) == [0.5, 0.999]
    for key in ("steps", "epochs", "max_minutes", "batch_size", "d_steps", "log_every", "sample_every",
                "checkpoint_every"):
        assert key in cfg.train
    assert {"seed", "device", "resume"} <= set(cfg)


# BEGAN's D: tests/test_began.py; the translation models (no z): tests/test_translation.py, tests/test_srgan.py;
# LAPGAN's pyramid, trained by its own algorithm only: tests/test_lapgan.py
# AttGAN's networks, built for the data's measured attributes: tests/test_attgan.py
# the baselines without a D (VAE, autoencoder, Gaussian mixture): tests/test_baselines.py
@pytest.mark.parametrize("model", [m for m in options("model")
                                   if m not in ("attgan", "began", "pix2pix", "cyclegan", "lapgan", "srgan",
                                                 "text2image", "vae", "autoencoder", "gmm")])
@pytest.mark.parametrize("loss", options("loss"))
@pytest.mark.parametrize("optimizer", options("optimizer"))
def test_every_model_loss_optimizer_builds(model, loss, optimizer):
    # WGAN-GP's critic must not use batch norm (tested below); the other norms all suit it
    norm = ["model.d.norm=layer"] if loss == "wgan_gp" and "dcgan" in model else []
    cfg = compose_config(overrides=[f"model={model}", f"loss={loss}", f"optimizer={optimizer}", "data=fake",
                                    "data.n=16", "data.resolution=16", *norm])
    parts = build.parts(cfg, torch.device("cpu"))
    y = torch.tensor([3, 7]) if parts.G.num_classes else None  # data=fake has 10 classes
    x = parts.G(torch.randn(2, cfg.model.z_dim), y)
    assert x.shape == (2, 3, 16, 16) and parts.D(x, y).shape == (2,)
    assert parts.optimizers["G"].param_groups[0]["lr"] == cfg.optimizer.g.lr


@pytest.mark.parametrize("model", ["cgan", "cdcgan"])
def test_conditional_models_need_labelled_data(tmp_path, model):
    from PIL import Image

    Image.new("RGB", (16, 16)).save(tmp_path / "a.png")
    cfg = compose_config(overrides=[f"model={model}", "data=folder", f"data.root={tmp_path}", "data.resolution=16"])
    with pytest.raises(UserError, match="needs labelled data"):
        build.parts(cfg, torch.device("cpu"))


def test_wgan_gp_refuses_a_batch_norm_critic_before_training():
    cfg = compose_config(overrides=["loss=wgan_gp", "data=fake", "data.n=16", "data.resolution=16"])
    with pytest.raises(UserError, match="model.d.norm=layer"):
        build.algorithm(cfg, build.parts(cfg, torch.device("cpu")))


@pytest.mark.parametrize("data", ["toy_ring", "toy_grid", "fake"])
def test_offline_data_options_build(data):
    source = build.data(compose_config(overrides=[f"data={data}"]))
    assert len(source) > 0 and source.num_classes is not None


@pytest.mark.parametrize("data,name", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_prepared_data_options_build(data, name, mnist_root):
    if not (DATA_ROOT / name / "raw").is_dir():
        pytest.fail(f"{name} is not prepared under {DATA_ROOT}: run `make data`")
    source = build.data(compose_config(overrides=[f"data={data}", f"data.root={DATA_ROOT}"]))
    assert len(source) == 60_000 and source.shape == (1, 28, 28)


def test_cifar10_offline_names_the_fix(tmp_path):
    cfg = compose_config(overrides=["data=cifar10", f"data.root={tmp_path}", "data.download=false"])
    with pytest.raises(UserError, match="CIFAR10 is not under"):
        build.data(cfg)


def test_folder_option_builds(tmp_path):
    from PIL import Image

    for i in range(3):
        Image.new("RGB", (70, 64), (i * 80, 0, 0)).save(tmp_path / f"{i}.png")
    source = build.data(compose_config(overrides=["data=folder", f"data.root={tmp_path}", "data.num_workers=0"]))
    assert len(source) == 3 and source.shape == (3, 64, 64)


EXPERIMENTS = sorted(p.stem for p in (Path(config_dir()) / "experiment").glob("*.yaml"))


def test_the_paper_recipes_are_there():
    assert EXPERIMENTS == ["attgan_mnist", "autoencoder_mnist", "began_mnist", "cdcgan_mnist", "cgan_mnist", "collapse_demo",
                           "cyclegan_horse2zebra", "cyclegan_mnist2digits", "dcgan_cifar10", "dcgan_fashion_5min", "dcgan_mnist_5min", "failure_demo", "gan_mnist",
                           "gan_toy_ring", "gmm_mnist", "gmm_toy_ring", "lapgan_mnist", "lsgan_cifar10", "oscillation_demo", "pix2pix_edges2fashion", "pix2pix_edges2mnist",
                           "pix2pix_facades", "progan_fashion32", "sngan_cifar10", "srgan_fashion", "stylegan2_fashion32",
                           "text2image_mnist", "tune_dcgan_fashion", "tune_dcgan_mnist", "vae_mnist", "wgan_cifar10",
                           "wgan_gp_cifar10"]  # papers, gallery, searches and their 5-minute recipes, the baselines


def recipe_text(name: str) -> str:
    """An experiment's yaml, followed by those of the experiments its defaults list builds on."""
    path = Path(config_dir()) / "experiment" / f"{name}.yaml"
    text = path.read_text()
    for entry in OmegaConf.load(path).get("defaults", []):
        if isinstance(entry, str) and (path.parent / f"{entry}.yaml").is_file():
            text += recipe_text(entry)
    return text


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_recipe_composes_names_its_paper_and_builds(experiment):
    text = recipe_text(experiment)
    # each names its source paper
    assert "et al." in text or any(two in text for two in ("Mirza & Osindero", "Kingma & Welling", "Hinton & Salakhutdinov"))
    if "/hydra/sweeper" in text and not installed("hydra_plugins.hydra_optuna_sweeper"):
        from hydra.errors import MissingConfigException

        with pytest.raises(MissingConfigException, match="hydra/sweeper/optuna"):  # the sweeps extra is absent
            compose_config(overrides=[f"experiment={experiment}"])
        return
    cfg = compose_config(overrides=[f"experiment={experiment}"])
    assert cfg.data._target_  # the recipe's own data set
    if cfg.algorithm._target_.endswith(("Pix2Pix", "CycleGAN", "SRGAN")):
        # translation recipes need image pairs or two domains: built in tests/test_translation.py, and
        # super-resolution's in tests/test_srgan.py
        return
    if cfg.algorithm._target_.endswith("AttGAN"):  # edits measured attributes of real digits: tests/test_attgan.py
        return
    if cfg.algorithm._target_.endswith("Text2Image"):  # captions need measured attributes: tests/test_text2image.py
        return
    # the command line still wins over a recipe: swap in offline data of the recipe's kind
    offline = ["data=toy_ring"] if "toy" in experiment else ["data=fake", "data.n=64", "data.channels=1"]
    shape = "32" if "cifar" in experiment or "32" in experiment else "28"
    cfg = compose_config(overrides=[f"experiment={experiment}", *offline]
                         + ([] if "toy" in experiment else [f"data.resolution={shape}"]))
    parts = build.parts(cfg, torch.device("cpu"))
    if "z_dim" in cfg.model:  # a Gaussian mixture's z is its sample's size plus one (tests/test_baselines.py)
        assert parts.G.z_dim == cfg.model.z_dim


def test_recipes_carry_their_papers_hyperparameters():
    gp = compose_config(overrides=["experiment=wgan_gp_cifar10"])
    assert gp.loss.gp_weight == 10 and gp.train.d_steps == 5 and gp.model.d.norm == "layer"
    assert gp.optimizer.d.lr == 1e-4 and list(gp.optimizer.d.betas) == [0.0, 0.9]
    w = compose_config(overrides=["experiment=wgan_cifar10"])
    assert w.loss.clip == 0.01 and w.optimizer.d._target_ == "torch.optim.RMSprop" and w.optimizer.d.lr == 5e-5
    sn = compose_config(overrides=["experiment=sngan_cifar10"])
    assert sn.loss._target_.endswith("Hinge") and sn.model.d.spectral_norm and sn.train.d_steps == 5
    pro = compose_config(overrides=["experiment=progan_fashion32"])
    assert pro.loss._target_.endswith("WGANGP") and pro.loss.drift == 0.001 and pro.loss.gp_weight == 10
    assert pro.optimizer.g.lr == 1e-3 and list(pro.optimizer.g.betas) == [0.0, 0.99] and pro.train.ema == 0.999
    style = compose_config(overrides=["experiment=stylegan2_fashion32"])
    assert style.loss._target_.endswith("NonSaturating") and style.algorithm.r1_every == 16
    assert style.optimizer.d.lr == 2e-3 and list(style.optimizer.d.betas) == [0.0, 0.99]
    assert style.model.g.style_mixing == 0.9 and style.algorithm.pl_every == 4
    dc = compose_config(overrides=["experiment=dcgan_cifar10", "train.batch_size=32"])
    assert dc.train.batch_size == 32 and dc.model.g.width == 64  # overridable from the command line


def test_make_train_runs_a_recipe_that_exists_and_ends_on_a_wall_clock_budget():
    import re

    from tests.helpers import REPO

    recipe = re.search(r"^TRAIN_RECIPE \?= experiment=(\S+)$", (REPO / "Makefile").read_text(), re.M).group(1)
    assert recipe in EXPERIMENTS
    cfg = compose_config(overrides=[f"experiment={recipe}"])
    assert cfg.train.max_minutes == 5  # make train ends when the README says, on any machine
