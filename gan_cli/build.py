"""The one place that turns config into objects (hydra.utils.instantiate). Everything built here takes
plain arguments, so models, losses and the loop also run without Hydra.

Before anything is imported or built, a config's `_target_` values are checked against gan-cli's own
components and the command line's `trust=` (gan_cli/targets.py), and its values against the types the
component declares (gan_cli/typecheck.py)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from omegaconf import DictConfig
from torch import nn

from gan_cli import targets
from gan_cli.algorithms.base import Algorithm
from gan_cli.errors import UserError, first_line
from gan_cli.losses import GANLoss
from gan_cli.typecheck import check_arguments


def instantiate(node: DictConfig, where: str, trust=(), **kwargs):
    """hydra.utils.instantiate of a checked node, with our own UserErrors passed through unwrapped.
    `trust`: the command line's trust= list (the root config's `trust`), never a checkpoint's."""
    from hydra.errors import InstantiationException
    from hydra.utils import get_object
    from hydra.utils import instantiate as hydra_instantiate
    from omegaconf import OmegaConf

    tree = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node
    targets.check(tree, trust, where)
    try:
        fn = get_object(tree[targets.KEY])
    except Exception as e:  # noqa: BLE001 - a trusted module that does not import, or a misspelt name
        raise UserError(f"{where}._target_={tree[targets.KEY]} cannot be loaded: {first_line(e)}") from None
    check_arguments(fn, {k: v for k, v in tree.items() if not (k.startswith("_") and k.endswith("_"))}, where)
    try:
        return hydra_instantiate(node, **kwargs)
    except InstantiationException as e:
        cause = e.__cause__
        while cause is not None and not isinstance(cause, UserError):
            cause = cause.__cause__
        if cause is not None:
            raise cause from None
        raise UserError(f"{where}: {first_line(e.__cause__ or e)}") from None


def device(name: str) -> torch.device:
    """'auto' picks the GPU when there is one; otherwise the named device."""
    if name == "auto":
        if not torch.cuda.is_available():
            return torch.device("cpu")
        # in a sweep with parallel local jobs, job k takes GPU k mod count so that two do not share one
        return torch.device("cuda", _job_number() % torch.cuda.device_count())
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise UserError(f"device={name} is not a device; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device={name} asked for a GPU but torch sees none; use device=cpu or device=auto")
    return dev


def _job_number() -> int:
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return 0
    num = HydraConfig.get().job.get("num")
    return int(num) if num is not None else 0


def data(cfg: DictConfig):
    return instantiate(cfg.data, "data", trusted(cfg))


def trusted(cfg: DictConfig) -> list[str]:
    """The modules the command line trusts beyond gan-cli's own (checkpoint.load puts the command line's
    list into a checkpoint's config, so this never reads a file's)."""
    trust = cfg.get("trust") or []
    return [trust] if isinstance(trust, str) else list(trust)


def classifier(cfg: DictConfig, data) -> nn.Module | None:
    """The data set's own classifier, for labelled images with a test split (the torchvision sets: their
    config has `split`): trained once on the training split (about a minute on a CPU), scored on the
    test split, cached under <data.root>/classifiers."""
    from pathlib import Path

    from omegaconf import OmegaConf

    from gan_cli.metrics import classifier as small_cnn

    if not data.num_classes or not data.modality.images or "split" not in cfg.data:
        return None
    test_cfg = cfg.data.copy()
    test_cfg.split = "test"
    test = instantiate(OmegaConf.create(OmegaConf.to_container(test_cfg)), "data", trusted(cfg))
    return small_cnn.cached(data.name, data, test, Path(cfg.data.root).expanduser() / "classifiers")


def evaluator(cfg: DictConfig, data, metrics, settings, device: torch.device, inception_weights: str | None = None,
              cache_dir: str | None = None, key: str = "metrics"):
    """An Evaluator for the metrics asked (`auto`, or names), in the data's own feature space (its
    classifier, or the points of 2-D data) and Inception's. Returns it and notes on what was skipped:
    Inception metrics whose weights cannot be had, when others remain."""
    from pathlib import Path

    from gan_cli.metrics import evaluator as ev
    from gan_cli.metrics import features

    net = classifier(cfg, data) if data.modality.images else None
    domain = (features.PointFeatures(data.scale) if not data.modality.images
              else features.ClassifierFeatures(data.name, net) if net is not None else None)
    valid = ev.metric_names(domain, data)
    wanted = ev.select(metrics, valid, inception_weights, key)
    if not wanted:
        raise UserError(f"{data.name} has no labels to train a classifier on, so only fid, kid and is apply, and "
                        f"the Inception-v3 weights are not at hand: give inception_weights=PATH, or "
                        f"metrics=[fid,kid,is] to download them (online)")
    spaces, notes = {}, []
    own = [m for m in wanted if valid[m] != "inception"]
    if own:
        spaces[domain.name] = (domain, own)
    inception = [m for m in wanted if valid[m] == "inception"]
    if inception:
        try:
            spaces["inception"] = (features.InceptionFeatures(inception_weights), inception)
        except UserError as e:
            if not spaces:
                raise
            notes.append(f"{', '.join(inception)} skipped: {e}")
    cache = Path(cache_dir).expanduser() if cache_dir else ev.default_cache(cfg)
    return ev.Evaluator(data, spaces, settings, device, cache), notes


def models(cfg: DictConfig, shape: tuple[int, ...], num_classes: int | None) -> tuple[nn.Module, nn.Module]:
    """G and D for data of this shape; conditional models (model.conditional) also get the class count."""
    return (generator(cfg, shape, num_classes), instantiate(cfg.model.d, "model.d", trusted(cfg), shape=shape,
                                                             **_labels(cfg, num_classes)))


def generator(cfg: DictConfig, shape: tuple[int, ...], num_classes: int | None) -> nn.Module:
    return instantiate(cfg.model.g, "model.g", trusted(cfg), shape=tuple(shape), **_labels(cfg, num_classes))


def _labels(cfg: DictConfig, num_classes: int | None) -> dict:
    if not cfg.model.get("conditional", False):
        return {}
    if not num_classes:
        raise UserError(f"the model is conditional (model.conditional=true) and needs labelled data, but "
                        f"data={cfg.data.get('dataset', cfg.data._target_.rsplit('.', 1)[-1])} has no labels; "
                        f"use mnist, fashion_mnist, cifar10 or a toy mixture")
    return {"num_classes": num_classes}


def loss(cfg: DictConfig) -> GANLoss:
    return instantiate(cfg.loss, "loss", trusted(cfg))


def optimizers(cfg: DictConfig, G: nn.Module, D: nn.Module) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
    out = []
    for side, net in (("g", G), ("d", D)):
        lr = cfg.optimizer[side].get("lr")
        # torch.optim accepts lr=0, a run that learns nothing
        if lr is not None and (isinstance(lr, bool) or not isinstance(lr, (int, float)) or lr <= 0):
            raise UserError(f"optimizer.{side}.lr={lr} must be positive")
        make = instantiate(cfg.optimizer[side], f"optimizer.{side}", trusted(cfg))
        try:
            out.append(make(net.parameters()))
        except Exception as e:  # noqa: BLE001 - torch.optim's own checks ("Invalid beta parameter ...")
            raise UserError(f"optimizer.{side}: {type(e).__name__}: {first_line(e)}") from None
    return out[0], out[1]


@dataclass
class Parts:
    data: object
    G: nn.Module
    D: nn.Module
    loss: GANLoss
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer


def parts(cfg: DictConfig, dev: torch.device) -> Parts:
    source = data(cfg)
    G, D = models(cfg, source.shape, source.num_classes)
    # channels_last only changes conv weights' memory layout (NHWC): same function, faster kernels
    layout = torch.channels_last if cfg.train.channels_last else torch.preserve_format
    G, D = G.to(dev, memory_format=layout), D.to(dev, memory_format=layout)
    objective = loss(cfg)
    opt_g, opt_d = optimizers(cfg, G, D)
    return Parts(source, G, D, objective, opt_g, opt_d)


def algorithm(cfg: DictConfig, parts: Parts) -> Algorithm:
    """The training algorithm (algorithm=) over the built networks and optimisers. An algorithm takes
    what its __init__ names: the loss (loss=) and the label count of a conditional model."""
    make = instantiate(cfg.algorithm, "algorithm", trusted(cfg))
    return call_with(make, "algorithm", models={"G": parts.G, "D": parts.D},
                     optimizers={"G": parts.opt_g, "D": parts.opt_d}, loss=parts.loss,
                     num_classes=parts.data.num_classes if cfg.model.get("conditional", False) else None)


def callbacks(cfg: DictConfig, **context) -> list:
    """The callbacks of conf/callbacks/, in their order; each takes from `context` (the evaluator, the
    watch's detectors, the hparams) what its __init__ names. `callbacks.<name>=null` turns one off."""
    out = []
    for name, node in cfg.callbacks.items():
        if node is not None:
            out.append(call_with(instantiate(node, f"callbacks.{name}", trusted(cfg)), f"callbacks.{name}", **context))
    return out


def call_with(make, where: str, **available):
    """make(**the part of `available` its signature names): the runtime objects a config cannot hold."""
    import inspect

    try:
        accepted = inspect.signature(make).parameters
    except (TypeError, ValueError):  # a built object rather than a _partial_ factory
        return make
    if any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
        return make(**available)
    try:
        return make(**{k: v for k, v in available.items() if k in accepted})
    except TypeError as e:
        raise UserError(f"{where}: {first_line(e)}") from None
