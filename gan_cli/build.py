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
from gan_cli.data.batch import input_shape_of


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


PRECISION = {"fp32": None, "bf16": torch.bfloat16}


def precision(name: str, dev: torch.device) -> torch.dtype | None:
    """train.precision -> the autocast dtype (None: fp32). auto takes bf16 only where the device computes it
    in hardware: a GPU with native bf16 (Ampere on), or a CPU with AVX512-BF16 or AMX. Elsewhere torch
    emulates bf16 with conversions around fp32 arithmetic, so autocast costs time rather than saving it."""
    if name != "auto":
        return PRECISION[name]
    if dev.type == "cuda":
        native = torch.cuda.is_bf16_supported(including_emulation=False)
    else:
        native = dev.type == "cpu" and any(getattr(torch.cpu, probe, lambda: False)()
                                           for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))
    return torch.bfloat16 if native else None


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

    from gan_cli.metrics import classifier as small_cnn

    if not data.num_classes or not data.modality.images or "split" not in cfg.data:
        return None
    cache = Path(cfg.data.root).expanduser() / "classifiers"
    if input_shape_of(data) is not None:  # a translation's outputs are judged in the targets' domain
        from gan_cli.metrics import translation

        judge = translation.classifiers(data, split(cfg, "test"), cache)["B"]
        return None if judge is None else judge.net
    # the data set's judge, cached by the data set's name: trained on the whole split whatever part of it
    # (data.limit) this run trains on, or a run on 64 digits would cache a 64-digit classifier for all
    if cfg.data.get("limit") is not None:
        data = split(cfg, cfg.data.split, whole=True)
    return small_cnn.cached(data.name, data, split(cfg, "test", whole=True), cache)


def split(cfg: DictConfig, name: str, whole: bool = False):
    """The data source of cfg.data with split=name (its test images, say). whole: all of the split
    (data.limit dropped) and without measured attributes, as the data set's classifier sees it."""
    from omegaconf import OmegaConf

    node = OmegaConf.create(OmegaConf.to_container(cfg.data))
    node.split = name
    if whole:
        for key, value in (("limit", None), ("attributes", []), ("thresholds", None)):
            if key in node:
                node[key] = value
    return instantiate(node, "data", trusted(cfg))


def translation_evaluator(cfg: DictConfig, data, settings, device: torch.device):
    """A translation model's measures (gan_cli/metrics/translation.py) on the test split of its data, in
    the feature spaces of each labelled domain's classifier (trained once, cached under <data.root>)."""
    from pathlib import Path

    from gan_cli.metrics import translation

    test = split(cfg, "test")
    features = translation.classifiers(data, test, Path(cfg.data.root).expanduser() / "classifiers")
    return translation.TranslationEvaluator(test, features, settings, device)


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


def algorithm_factory(cfg: DictConfig):
    """The algorithm= factory (a partial waiting for its networks and optimisers), and its class: the class
    says which networks it trains and from which model= keys (Algorithm.networks)."""
    import functools

    make = instantiate(cfg.algorithm, "algorithm", trusted(cfg))
    cls = make.func if isinstance(make, functools.partial) else make
    return make, cls


def algorithm_class(cfg: DictConfig) -> type[Algorithm]:
    """The algorithm class a config names; a config from before the algorithm group trained a GAN."""
    from gan_cli.algorithms.gan import GAN

    return algorithm_factory(cfg)[1] if "algorithm" in cfg else GAN


def network(cfg: DictConfig, name: str, shape: tuple[int, ...], input_shape: tuple[int, ...] | None,
            num_classes: int | None) -> nn.Module:
    """One of the algorithm's named networks ("G", "D", or CycleGAN's "F", "D_A", ...), built from the
    model= key the algorithm names for it, for data of these shapes."""
    specs = algorithm_class(cfg).networks(tuple(shape), None if input_shape is None else tuple(input_shape))
    if name not in specs:
        raise UserError(f"this config's algorithm has no network {name}; it trains {', '.join(specs)}")
    key, shapes = specs[name]
    if input_shape is None and any(v is None for v in shapes.values()):  # a translation without source images
        raise UserError(f"algorithm={cfg.algorithm._target_.rsplit('.', 1)[-1].lower()} translates images, and "
                        f"nothing gives the shape of its source images: train it on a paired or unpaired data set; "
                        f"a checkpoint that lacks data.input_shape is damaged")
    if key not in cfg.model:
        raise UserError(f"algorithm={cfg.algorithm._target_.rsplit('.', 1)[-1]} needs model.{key} (its network "
                        f"{name}), and this model= has none: use the model its experiment names")
    return instantiate(cfg.model[key], f"model.{key}", trusted(cfg), **shapes, **_labels(cfg, num_classes))


def generator(cfg: DictConfig, shape: tuple[int, ...], num_classes: int | None,
              input_shape: tuple[int, ...] | None = None, name: str = "G") -> nn.Module:
    return network(cfg, name, shape, input_shape, num_classes)


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


def optimizer(cfg: DictConfig, name: str, params) -> torch.optim.Optimizer:
    """The optimiser optimizer.<name> configures (g or d), over these parameters."""
    lr = cfg.optimizer[name].get("lr")
    # torch.optim accepts lr=0, a run that learns nothing
    if lr is not None and (isinstance(lr, bool) or not isinstance(lr, (int, float)) or lr <= 0):
        raise UserError(f"optimizer.{name}.lr={lr} must be positive")
    make = instantiate(cfg.optimizer[name], f"optimizer.{name}", trusted(cfg))
    try:
        return make(params)
    except Exception as e:  # noqa: BLE001 - torch.optim's own checks ("Invalid beta parameter ...")
        raise UserError(f"optimizer.{name}: {type(e).__name__}: {first_line(e)}") from None


@dataclass
class Parts:
    data: object
    models: dict[str, nn.Module]  # the algorithm's networks by name: G and D, or CycleGAN's G, F, D_A, D_B
    optimizers: dict[str, torch.optim.Optimizer]  # by name: G and D (each over the networks it updates)
    loss: GANLoss
    make: object  # the algorithm factory, waiting for the above

    @property
    def G(self) -> nn.Module:
        return self.models["G"]

    @property
    def D(self) -> nn.Module:
        return self.models["D"]


# the stabilisers and their "off" values: an algorithm names those it honours (Algorithm.stabilisers)
STABILISERS = {"loss.label_smoothing": 1.0, "loss.feature_matching": False, "loss.r1": 0.0, "loss.r2": 0.0,
               "train.unrolled_steps": None, "train.historical_averaging": 0.0, "train.instance_noise": 0.0}


def check_stabilisers(cfg: DictConfig, cls: type[Algorithm]) -> None:
    """Refuse a stabiliser the algorithm would silently ignore (BEGAN has no loss= to smooth)."""
    from omegaconf import OmegaConf

    for key, off in STABILISERS.items():
        value = OmegaConf.select(cfg, key, default=off)
        if value != off and key not in cls.stabilisers:
            takes = f"only {', '.join(sorted(cls.stabilisers))}" if cls.stabilisers else "none of the stabilisers"
            raise UserError(f"{key}={value} is not available with algorithm={cls.__name__.lower()}, which takes "
                            f"{takes}; algorithm=gan takes every one")


def parts(cfg: DictConfig, dev: torch.device) -> Parts:
    source = data(cfg)
    make, cls = algorithm_factory(cfg)
    cls.check_data(source)
    check_stabilisers(cfg, cls)
    # channels_last only changes conv weights' memory layout (NHWC): same function, faster kernels
    layout = torch.channels_last if cfg.train.channels_last else torch.preserve_format
    input_shape = input_shape_of(source)
    models = {name: network(cfg, name, source.shape, input_shape, source.num_classes).to(dev, memory_format=layout)
              for name in cls.networks(tuple(source.shape), input_shape)}
    for net in models.values():  # a model made for one algorithm's training (LAPGAN's pyramid of GANs)
        needs = getattr(net, "trained_by", None)
        if needs is not None and needs != cls.__name__.lower():
            raise UserError(f"{type(net).__module__.rsplit('.', 1)[-1]}'s networks are trained by algorithm={needs}, "
                            f"not algorithm={cls.__name__.lower()}: add algorithm={needs} (or experiment={needs}_mnist)")
    objective = loss(cfg)
    optimizers = {opt: optimizer(cfg, opt.lower(), [p for name in names for p in models[name].parameters()])
                  for opt, names in cls.optimized.items()}
    return Parts(source, models, optimizers, objective, make)


def algorithm(cfg: DictConfig, parts: Parts) -> Algorithm:
    """The training algorithm (algorithm=) over the built networks and optimisers. An algorithm takes
    what its __init__ names: the loss (loss=), the label count of a conditional model, the data's measured
    attributes (AttGAN), the data source itself (a Gaussian mixture's fit) and SRGAN's content network (built
    only for an algorithm that names it)."""
    def device_of_g() -> torch.device:
        return next(iter(parts.G.parameters()), torch.zeros(())).device

    return call_with(parts.make, "algorithm", models=parts.models, optimizers=parts.optimizers, loss=parts.loss,
                     num_classes=parts.data.num_classes if cfg.model.get("conditional", False) else None,
                     # Lazy: only for an algorithm that names them, never through a **options catch-all
                     attributes=Lazy(lambda: getattr(parts.data, "attributes", None)), data=Lazy(lambda: parts.data),
                     content_network=Lazy(lambda: content_network(cfg, parts.data, device_of_g())))


def content_network(cfg: DictConfig, data, device: torch.device) -> nn.Module:
    """The frozen feature network of SRGAN's content loss (gan_cli/models/srgan.py), by algorithm.content:
    vgg19 (VGG19's relu5_4: algorithm.vgg_weights, or torchvision's weights from torch's cache or its
    download), classifier (the data set's own, trained once and cached under <data.root>/classifiers), mse
    (the pixels), or auto: the first of these three at hand. Logs one line naming the one used."""
    import logging
    from pathlib import Path

    from gan_cli.metrics import translation
    from gan_cli.models import srgan

    log = logging.getLogger(__name__)
    kind = cfg.algorithm.get("content", "auto")
    if kind not in ("auto", "vgg19", "classifier", "mse"):
        raise UserError(f"algorithm.content={kind}: choose auto, vgg19, classifier or mse")
    if kind in ("classifier", "mse") and cfg.algorithm.get("vgg_weights") is not None:
        raise UserError(f"algorithm.vgg_weights={cfg.algorithm.vgg_weights} is read with algorithm.content=vgg19 or "
                        f"auto, and this run has algorithm.content={kind}: drop one of them")
    why = ""
    if kind in ("auto", "vgg19"):
        try:
            net = srgan.VGGContent(*srgan.vgg_weights(cfg.algorithm.get("vgg_weights")))
            log.info("content loss: %s", net.description)
            return net.to(device)
        except srgan.NoWeights as e:
            if kind == "vgg19":
                raise
            why = f" (VGG19's weights are not at hand: {e.reason}; algorithm.vgg_weights=PATH gives them)"
    if kind in ("auto", "classifier"):
        judge = (translation.classifiers(data, split(cfg, "test"), Path(cfg.data.root).expanduser() / "classifiers")["B"]
                 if data.num_classes and "split" in cfg.data else None)
        if judge is not None:
            net = srgan.ClassifierContent(judge.name, judge.net)
            log.info("content loss: %s%s", net.description, why)
            return net.to(device)
        if kind == "classifier":
            raise UserError(f"algorithm.content=classifier needs the data's own classifier, and data={data.name} has "
                            f"no labels to train one; use algorithm.content=vgg19 or mse")
        why = f"{why[:-1]}; no labelled data for a classifier)" if why else " (no labelled data for a classifier)"
    net = srgan.PixelContent()
    log.info("content loss: %s%s", net.description, why)
    return net.to(device)


def callbacks(cfg: DictConfig, **context) -> list:
    """The callbacks of conf/callbacks/, in their order; each takes from `context` (the evaluator, the
    watch's detectors, the hparams) what its __init__ names. `callbacks.<name>=null` turns one off."""
    out = []
    for name, node in cfg.callbacks.items():
        if node is not None:
            out.append(call_with(instantiate(node, f"callbacks.{name}", trusted(cfg)), f"callbacks.{name}", **context))
    return out


class Lazy:
    """A value of call_with's made only for a signature that names it (a feature network worth building
    only for the algorithm that uses it)."""

    def __init__(self, make):
        self.make = make


def call_with(make, where: str, **available):
    """make(**the part of `available` its signature names): the runtime objects a config cannot hold. A Lazy
    value is made when named, and left out of a **kwargs catch-all."""
    import inspect

    try:
        accepted = inspect.signature(make).parameters
    except (TypeError, ValueError):  # a built object rather than a _partial_ factory
        return make
    named = {k: v.make() if isinstance(v, Lazy) else v for k, v in available.items() if k in accepted}
    if any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
        return make(**{**{k: v for k, v in available.items() if not isinstance(v, Lazy)}, **named})
    try:
        return make(**named)
    except TypeError as e:
        raise UserError(f"{where}: {first_line(e)}") from None
