"""Measures of a translation model on held-out test images, for `gan eval` and train.eval_every.

Paired (pix2pix), against each input's own target:
- `l1`: mean |G(x) - y| in [-1, 1] units, the quantity G's L1 term trains;
- `psnr` and `ssim`: per image on [0, 1] pixels, then averaged (torchmetrics: its SSIM is the reference
  11x11 Gaussian-window implementation of Wang et al. 2004, not one written here);
- `fd_<target>_cnn`: the Frechet distance between the outputs and the test targets in the target domain's
  classifier features (gan_cli/metrics/classifier.py), which says whether outputs look like the domain
  whatever their pixel error;
- `class_preserved`: the share of outputs the target domain's classifier assigns to the input's class;
- super-resolution (inputs smaller than their targets): each of these again, `bicubic_` prefixed, for the
  inputs upsampled by plain bicubic interpolation: the floor a model has to beat (measured once: it does not
  change from one evaluation to the next).
Unpaired (CycleGAN), in each direction: `fd_<domain>_cnn` against that domain's test images,
`label_preserved_AtoB` / `_BtoA` (the translation keeps the digit), and `cycle_l1_A` = |F(G(a)) - a|,
`cycle_l1_B` = |G(F(b)) - b|.

The class measures need labelled data; folders get the pixel and cycle measures only."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import Tensor, nn

from gan_cli.algorithms.translation import translate_all
from gan_cli.data.source import TensorData
from gan_cli.metrics import classifier as small_cnn
from gan_cli.metrics import distances
from gan_cli.metrics.evaluator import Settings
from gan_cli.metrics.features import ClassifierFeatures, extract

log = logging.getLogger(__name__)
BICUBIC = "bicubic_"  # the prefix of super-resolution's floor: the same measures of bicubic upsampling


def classifiers(train, test, cache_dir: Path) -> dict[str, ClassifierFeatures | None]:
    """Each domain's own classifier ("A", "B"), trained once on its training images and cached; None for a
    domain without labels. A paired set needs only its targets' (B)."""
    sides = ("B",) if train.paired else ("A", "B")
    out: dict[str, ClassifierFeatures | None] = {"A": None, "B": None}
    for side in sides:
        domain, held_out = getattr(train, f"domain_{side.lower()}"), getattr(test, f"domain_{side.lower()}")
        if domain.num_classes and domain.labels is not None:
            domain, held_out = (centred(d, train.resolution) for d in (domain, held_out))
            out[side] = ClassifierFeatures(domain.name, small_cnn.cached(domain.name, domain, held_out, cache_dir))
    return out


def centred(domain: TensorData, side: int) -> TensorData:
    """The domain's images as the measures see them: their centre side x side window (data held at a larger
    data.load_size for jitter is cropped to data.resolution)."""
    if domain.shape[-1] == side:
        return domain
    from torchvision.transforms.v2.functional import center_crop

    return TensorData(domain.name, center_crop(domain.samples, [side, side]), domain.labels, domain.num_classes)


class TranslationEvaluator:
    """Translates the first n test images of each side and measures the outputs (see the module's list)."""

    def __init__(self, test, features: dict[str, ClassifierFeatures | None], settings: Settings,
                 device: torch.device):
        self.test, self.features, self.s, self.device = test, features, settings, device
        self._real: dict[str, Tensor] = {}  # each feature space's features of the real test images
        self._floor: dict[str, float] | None = None  # super-resolution: bicubic upsampling's measures

    @property
    def names(self) -> list[str]:
        """The measures this data gets, in the order they are reported."""
        a, b = self.features["A"], self.features["B"]
        if self.test.paired:
            names = ([f"fd_{b.name}", "class_preserved"] if b is not None else []) + ["l1", "psnr", "ssim"]
            return names + ([f"{BICUBIC}{m}" for m in names] if self.upscales else [])
        out = []
        for net, key in ((b, "AtoB"), (a, "BtoA")):
            if net is not None:
                out += [f"fd_{net.name}", f"label_preserved_{key}"]
        return out + ["cycle_l1_A", "cycle_l1_B"]

    def __call__(self, generators: dict[str, nn.Module]) -> dict[str, float]:
        """generators: direction -> network ("AtoB": G, and "BtoA": F for CycleGAN)."""
        nets = list(generators.values())
        modes = [g.training for g in nets]
        for g in nets:
            g.eval()
        try:
            # a fixed seed: pix2pix's dropout stays on at test time, and the measures must not drift with it
            with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
                torch.manual_seed(self.s.seed)
                return self.paired(generators["AtoB"]) if self.test.paired else self.unpaired(generators)
        finally:
            for g, mode in zip(nets, modes):
                g.train(mode)

    @property
    def upscales(self) -> bool:
        """Whether the inputs are smaller than their targets (super-resolution)."""
        return tuple(self.test.input_shape[1:]) != tuple(self.test.shape[1:])

    def paired(self, G: nn.Module) -> dict[str, float]:
        x, y, labels = self.test.pairs(self.s.n)
        out = self.against(translate_all(G, x, self.s.batch_size, self.device), y, labels)
        if self.upscales:
            if self._floor is None:
                from gan_cli.data.super_resolution import upsample

                floor = self.against(upsample(x, y.shape[-2:]), y, labels)
                self._floor = {f"{BICUBIC}{k}": v for k, v in floor.items()}
            out.update(self._floor)
        return out

    def against(self, out_: Tensor, y: Tensor, labels: Tensor | None) -> dict[str, float]:
        """The paired measures of outputs against their targets y."""
        from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

        fake01, real01 = (out_.clamp(-1, 1) + 1) / 2, (y + 1) / 2
        out = {"l1": float((out_ - y).abs().mean()),
               "psnr": float(peak_signal_noise_ratio(fake01, real01, data_range=1.0, dim=(1, 2, 3))),
               "ssim": float(structural_similarity_index_measure(fake01, real01, data_range=1.0))}
        if self.features["B"] is not None:
            out.update(self.judged(self.features["B"], out_, y, labels, "class_preserved"))
        return out

    def unpaired(self, generators: dict[str, nn.Module]) -> dict[str, float]:
        (a, labels_a), (b, labels_b) = self.test.sides(self.s.n)
        G, F = generators["AtoB"], generators["BtoA"]
        fake_b = translate_all(G, a, self.s.batch_size, self.device)
        fake_a = translate_all(F, b, self.s.batch_size, self.device)
        out = {}
        if self.features["B"] is not None:
            out.update(self.judged(self.features["B"], fake_b, b, labels_a, "label_preserved_AtoB"))
        if self.features["A"] is not None:
            out.update(self.judged(self.features["A"], fake_a, a, labels_b, "label_preserved_BtoA"))
        out["cycle_l1_A"] = float((translate_all(F, fake_b, self.s.batch_size, self.device) - a).abs().mean())
        out["cycle_l1_B"] = float((translate_all(G, fake_a, self.s.batch_size, self.device) - b).abs().mean())
        return out

    def judged(self, net: ClassifierFeatures, fake: Tensor, real: Tensor, labels: Tensor | None,
               kept: str) -> dict[str, float]:
        """FD between outputs and the domain's real test images in its classifier's features, and the share
        of outputs it assigns to their source's class."""
        net = net.to(self.device)
        fake_f, logits = extract(net, fake, self.s.batch_size, self.device)
        if net.name not in self._real:  # the test images do not change between evaluations: extracted once
            self._real[net.name] = extract(net, real, self.s.batch_size, self.device)[0]
        real_f = self._real[net.name]
        out = {f"fd_{net.name}": distances.frechet_distance(real_f, fake_f)}
        if labels is not None:
            out[kept] = float((logits.argmax(1).cpu() == labels.cpu()).float().mean())
        return out
