"""The feature spaces the distribution metrics are computed in, and the real data's features in them,
extracted once per data set, split, resolution, extractor and sample count, and cached.

- `<data>_cnn`: the data set's own small classifier (metrics/classifier.py), 128 features and its
  class logits. Offline, and trained on the data it judges; its distances are never called FID.
- `inception`: Inception-v3 with the 2015 TensorFlow weights that FID, KID and IS are defined on,
  through torch-fidelity (its TF1-compatible resize to 299 px included).
- `points`: 2-D samples as they are, in the data's own units (the toy mixtures).
"""

from __future__ import annotations

import contextlib
import io
import logging
import weakref
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from gan_cli import files
from gan_cli.errors import UserError

log = logging.getLogger(__name__)


class ClassifierFeatures(nn.Module):
    def __init__(self, name: str, net: nn.Module):
        super().__init__()
        self.name, self.net = f"{name}_cnn", net

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        features = self.net.features(x)
        return features, self.net.head(features)


class PointFeatures(nn.Module):
    name = "points"

    def __init__(self, scale: float):
        super().__init__()
        self.scale = scale

    def forward(self, x: Tensor) -> tuple[Tensor, None]:
        return x * self.scale, None


class InceptionFeatures(nn.Module):
    """Pool features (2048) and logits of the reference Inception-v3, from images in [-1, 1]."""

    name = "inception"

    def __init__(self, weights: str | None = None):
        super().__init__()
        try:
            from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
        except ImportError:
            raise UserError("fid, kid and is need torch-fidelity (pip install torch-fidelity)") from None
        if weights is not None:
            path = Path(weights).expanduser()
            if not path.is_file():
                raise UserError(f"inception_weights={weights} is not a file")
            try:  # torch-fidelity loads with weights_only=False; a file that passes this holds data only
                with warnings.catch_warnings():  # torch's note on the pickle protocol: noise for a refused file
                    warnings.simplefilter("ignore")
                    torch.load(path, weights_only=True, map_location="cpu")
            except Exception as e:  # noqa: BLE001 - every way of failing means the same to the user
                raise UserError(f"inception_weights={weights} is not a weights file that loads as plain data "
                                f"({type(e).__name__})") from None
        said = io.StringIO()  # torch hub's download chatter: logged on success, dropped on failure
        try:
            with contextlib.redirect_stderr(said):
                self.net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"],
                                                       feature_extractor_weights_path=None if weights is None else str(path))
        except (OSError, RuntimeError) as e:  # URLError is an OSError
            raise UserError(f"the Inception-v3 weights could not be loaded ({type(e).__name__}: "
                            f"{str(e).splitlines()[0][:80]}); online they download once into torch's cache; "
                            f"offline, give inception_weights=PATH (weights-inception-2015-12-05-6726825d.pth "
                            f"from torch-fidelity's releases)") from None
        if said.getvalue().strip():
            log.info("%s", said.getvalue().strip())

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        pixels = ((x.float() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)  # as a saved PNG would hold
        features, logits = self.net(pixels)
        return features, logits


@torch.no_grad()
def extract(extractor: nn.Module, samples: Tensor, batch_size: int, device: torch.device) -> tuple[Tensor, Tensor | None]:
    """Features (N, D) and logits (N, K) or None, of samples in [-1, 1], in batches, returned on the CPU."""
    features, logits = [], []
    for i in range(0, len(samples), batch_size):
        f, y = extractor(samples[i:i + batch_size].to(device))
        features.append(f.float().cpu())
        if y is not None:
            logits.append(y.float().cpu())
    return torch.cat(features), torch.cat(logits) if logits else None


# the reference samples' digest by data source, then (n, seed): weak, so a source's entry goes with it
_DIGESTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def reference(extractor: nn.Module, data, n: int, seed: int, batch_size: int, device: torch.device,
              cache_dir: Path | None) -> Tensor:
    """Features of n training samples drawn without replacement (seeded), cached under a hash of the samples
    themselves: two folders of one name and size (data=folder's are all "folder") never share features,
    and a folder whose images changed gets new ones."""
    import hashlib

    n = min(n, len(data))
    samples = None
    digest = _DIGESTS.setdefault(data, {}).get((n, seed))
    if digest is None:  # once per data source and process: train.eval_every does not draw (decode) them again
        samples = data.draw(n, seed)
        digest = hashlib.sha256(samples.cpu().contiguous().view(torch.uint8).numpy().tobytes()).hexdigest()[:16]
        _DIGESTS[data][n, seed] = digest
    key = f"{data.name}_{'x'.join(map(str, data.shape))}_{extractor.name}_n{n}_{digest}.pt"
    path = cache_dir / key if cache_dir is not None else None
    if path is not None and path.is_file():
        return torch.load(path, weights_only=True)["features"]
    features, _ = extract(extractor, data.draw(n, seed) if samples is None else samples, batch_size, device)
    if path is not None:
        files.write_tensors(path, {"features": features}, "free disk space: the reference features are kept "
                                 "there to be reused (gan eval takes cache_dir= for another folder)")
        log.info("reference features cached: %s", path)
    return features
