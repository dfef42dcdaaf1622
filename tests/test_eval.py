"""gan eval: the measuring path with a small Inception-shaped network (no downloads), the real command
on toy-ring checkpoints and over a sweep, and each kind of bad input."""

import json
import pickle

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn
from torch.testing import assert_close

from gan_cli import checkpoint
from gan_cli.commands import eval as eval_command
from gan_cli.data.source import TensorData, to_unit_range
from gan_cli.metrics import distances, evaluator, features
from tests.helpers import TINY, compose_config, gan

TOY = ["experiment=gan_toy_ring", "train.steps=60", "train.batch_size=64", "train.log_every=20",
       "train.sample_every=0", "train.checkpoint_every=0", "device=cpu"]


class TinyInception(nn.Module):
    """Inception's interface, randomly initialised and small: 3-channel images in, pool features and
    1008 logits out."""

    name = "inception"

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Conv2d(3, 16, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten())
        self.fc = nn.Linear(64, 1008)

    def forward(self, x):
        f = self.body(x.expand(-1, 3, -1, -1))
        return f, self.fc(f)


def _cfg(**over):
    cfg = compose_config("eval", [f"{k}={v}" for k, v in over.items()])
    return cfg


def test_fid_kid_is_through_the_measuring_path_match_direct_computation(tmp_path):
    g = torch.Generator().manual_seed(0)
    data = TensorData("blobs", torch.randint(0, 256, (400, 1, 12, 12), generator=g, dtype=torch.uint8))
    cfg = _cfg(n=300, kid_subsets=5, kid_subset_size=100)
    net = TinyInception()
    fake = torch.rand(300, 1, 12, 12, generator=g) * 2 - 1
    out = evaluator.measure(eval_command.settings(cfg), net, data, fake, ["fid", "kid", "is"], torch.device("cpu"), tmp_path)
    # the reference: 300 training samples drawn with seed 0, through the same network
    idx = torch.randperm(400, generator=torch.Generator().manual_seed(0))[:300]
    with torch.no_grad():
        real_f, _ = net(to_unit_range(data.samples[idx]))
        fake_f, fake_logits = net(fake)
    assert_close(out["fid"], distances.frechet_distance(real_f, fake_f))
    assert_close((out["kid"], out["kid_std"]), distances.kid(real_f, fake_f, 5, 100, cfg.seed))
    assert_close((out["is"], out["is_std"]), distances.inception_score(fake_logits))
    assert len(list(tmp_path.glob("blobs_1x12x12_inception_n300_*.pt"))) == 1  # cached for next time
    # the training samples themselves score FID 0
    same = evaluator.measure(eval_command.settings(cfg), net, data, to_unit_range(data.samples[idx]), ["fid"], torch.device("cpu"), tmp_path)
    assert_close(same["fid"], 0.0, atol=1e-6, rtol=0)


def test_class_metrics_from_the_classifier_logits(tmp_path):
    # a classifier that calls every sample class 2 with certainty: one class covered, KL = log 3
    class Sure(nn.Module):
        name = "toy_cnn"

        def forward(self, x):
            logits = torch.zeros(len(x), 3)
            logits[:, 2] = 20.0
            return x.flatten(1)[:, :4], logits

    data = TensorData("toy", torch.zeros(30, 1, 2, 2, dtype=torch.uint8), torch.arange(30) % 3, num_classes=3)
    data.samples[:, 0, 0, 0] = torch.arange(30, dtype=torch.uint8)  # distinct rows: a proper covariance
    data.samples[:, 0, 1, 1] = (torch.arange(30) * 7 % 11).to(torch.uint8)
    data.samples[:, 0, 0, 1] = (torch.arange(30) * 5 % 13).to(torch.uint8)
    data.samples[:, 0, 1, 0] = (torch.arange(30) * 3 % 17).to(torch.uint8)
    out = evaluator.measure(eval_command.settings(_cfg(n=30)), Sure(), data, to_unit_range(data.samples),
                                ["classes_covered", "class_kl", "confident_share"], torch.device("cpu"), tmp_path)
    assert out["classes_covered"] == 1 and out["confident_share"] == 1.0
    assert_close(out["class_kl"], float(torch.log(torch.tensor(3.0))))


@pytest.fixture(scope="module")
def toy_checkpoint(tmp_path_factory):
    run = tmp_path_factory.mktemp("toy") / "run"
    gan("train", *TOY, f"hydra.run.dir={run}", cwd=run.parent, check=True)
    return run / "checkpoints" / "last.pt"


def test_gan_eval_on_a_toy_checkpoint_writes_metrics_json(toy_checkpoint, tmp_path):
    out = gan("eval", f"checkpoint={toy_checkpoint}", "n=2000", f"cache_dir={tmp_path}", cwd=tmp_path, check=True)
    report = json.loads((toy_checkpoint.parent / "metrics.json").read_text())["last.pt"]
    m = report["metrics"]
    assert set(m) >= {"fd_points", "kid_points", "precision_points", "recall_points", "density_points",
                      "coverage_points", "modes_covered", "high_quality_share"}
    assert 0 <= m["modes_covered"] <= 8 and 0 <= m["precision_points"] <= 1
    assert report["step"] == 60 and report["n"] == 2000
    assert "fd_points" in out.stdout and "modes_covered" in out.stdout
    assert not (tmp_path / "outputs" / "eval").exists()  # the results are beside the checkpoint: no empty dir
    # the run directory works as well as its checkpoint, and the same seed gives the same numbers
    again = gan("eval", f"checkpoint={toy_checkpoint.parent.parent}", "n=2000", "metrics=[fd_points]",
                f"cache_dir={tmp_path}", cwd=tmp_path, check=True)
    fd = json.loads((toy_checkpoint.parent / "metrics.json").read_text())["last.pt"]["metrics"]["fd_points"]
    assert fd == m["fd_points"] and "fd_points" in again.stdout


def test_gan_eval_over_a_sweep_sorts_the_runs(tmp_path):
    sweep = tmp_path / "sweep"
    gan("train", "-m", *TOY, "loss=nonsaturating,lsgan", f"hydra.sweep.dir={sweep}", cwd=tmp_path, check=True)
    out = gan("eval", f"checkpoint={sweep}", "n=500", "sort_by=modes_covered", f"cache_dir={tmp_path}",
              cwd=tmp_path, check=True)
    lines = [line for line in out.stdout.strip().splitlines() if not line.startswith("[")]  # not the log
    assert lines[0] == "2 runs, sorted by modes_covered (higher first):"
    modes = [json.loads((sweep / r / "checkpoints" / "metrics.json").read_text())["last.pt"]["metrics"]["modes_covered"]
             for r in ("0", "1")]
    first = lines[2].split()[0]
    assert modes[int(first)] == max(modes) and "loss=" in lines[2]


def test_reference_features_are_cached_and_reused(tmp_path):
    data = TensorData("pts", torch.randn(100, 2))
    ext = features.PointFeatures(2.0)
    a = features.reference(ext, data, 50, 0, 16, torch.device("cpu"), tmp_path)
    (path,) = tmp_path.glob("*.pt")
    torch.save({"features": a + 1}, path)  # a cached file is what the next call returns
    assert_close(features.reference(ext, data, 50, 0, 16, torch.device("cpu"), tmp_path), a + 1)


# -- bad input: one line each ------------------------------------------------------------------------------

def _fails(tmp_path, *args) -> str:
    out = gan("eval", *args, cwd=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    return out.stderr


def test_an_unknown_metric_lists_the_valid_ones(toy_checkpoint, tmp_path):
    err = _fails(tmp_path, f"checkpoint={toy_checkpoint}", "metrics=[fid_points]")
    assert "fid_points is not a metric for this checkpoint; choose from fd_points, kid_points" in err


def test_fewer_samples_than_feature_dimensions_says_why(toy_checkpoint, tmp_path):
    err = _fails(tmp_path, f"checkpoint={toy_checkpoint}", "n=2", "metrics=[fd_points]")
    assert "n=2 samples for a Frechet distance in 2 dimensions" in err and "not defined" in err


def test_a_checkpoint_that_does_not_match_its_data_is_refused(tmp_path):
    run = tmp_path / "run"
    gan("train", *TINY, f"hydra.run.dir={run}", cwd=tmp_path, check=True)
    state = checkpoint.load(run / "checkpoints" / "last.pt")
    state["config"]["data"]["resolution"] = 8  # G still makes 16x16
    checkpoint.save(tmp_path / "odd.pt", state)
    err = _fails(tmp_path, f"checkpoint={tmp_path / 'odd.pt'}")
    assert "makes samples of shape (1, 16, 16), but its data (fake) loads as (1, 8, 8)" in err


@pytest.mark.parametrize("weights,message", [
    ("missing", "is not a file"),
    ("code", "is not a weights file that loads as plain data"),
])
def test_inception_weights_that_are_not_usable(tiny_checkpoint, tmp_path, weights, message):
    path = tmp_path / "w.pth"
    if weights == "code":
        path.write_bytes(pickle.dumps(OmegaConf))  # a class, not tensors: refused before torch-fidelity sees it
    err = _fails(tmp_path, f"checkpoint={tiny_checkpoint}", "metrics=[fid]", f"inception_weights={path}")
    assert message in err


def test_no_metric_for_unlabelled_images_without_inception_weights(tiny_checkpoint, tmp_path):
    err = _fails(tmp_path, f"checkpoint={tiny_checkpoint}")
    assert "inception_weights=" in err


# -- evaluation during training --------------------------------------------------------------------------

def test_train_eval_every_logs_metrics_and_keeps_the_best_checkpoint(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    gan("train", *TOY, "train.eval_every=20", "train.eval_n=300", "train.eval_metric=high_quality_share",
        f"hydra.run.dir={run}", cwd=tmp_path, check=True)
    rows = [json.loads(line) for line in (run / "evals.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [20, 40, 60]
    best = max(rows, key=lambda r: r["high_quality_share"])  # higher is better; the first of equals is kept
    assert checkpoint.load(run / "checkpoints" / "best.pt")["step"] == best["step"]
    scalars = EventAccumulator(str(run)).Reload().Tags()["scalars"]
    assert {"metrics/fd_points", "metrics/modes_covered", "metrics/high_quality_share"} <= set(scalars)


def test_the_training_job_returns_its_best_metric_for_sweepers(tmp_path):
    from gan_cli.commands import train

    cfg = compose_config("train", [*TOY, "train.eval_every=30", "train.eval_n=300", "train.eval_metric=fd_points"])
    (tmp_path / "run").mkdir()
    best = train.run(cfg, tmp_path / "run")
    rows = [json.loads(line) for line in (tmp_path / "run" / "evals.jsonl").read_text().splitlines()]
    assert isinstance(best, float) and best == min(r["fd_points"] for r in rows)  # a distance: lower is better


def test_an_unknown_eval_metric_is_refused_before_training(tmp_path):
    out = gan("train", *TOY, "train.eval_every=20", "train.eval_metric=fid", f"hydra.run.dir={tmp_path / 'run'}",
              cwd=tmp_path)
    assert out.returncode == 2 and "train.eval_metric=fid is not measured for this data; choose from fd_points" in out.stderr
    assert not (tmp_path / "run").exists()


# -- the Inception path, with random weights in the reference network's shape (no download) --------------

@pytest.fixture(scope="module")
def random_inception_weights(tmp_path_factory):
    """A weights file for torch-fidelity's Inception-v3, randomly initialised: the real loading and
    forward code runs, only the numbers are meaningless."""
    from unittest import mock

    from torch_fidelity import feature_extractor_inceptionv3 as tf_inception

    with mock.patch.object(tf_inception, "load_state_dict_from_url", return_value={}), \
            mock.patch.object(tf_inception.FeatureExtractorInceptionV3, "load_state_dict"):
        torch.manual_seed(0)
        net = tf_inception.FeatureExtractorInceptionV3("random", ["2048", "logits_unbiased"])
    path = tmp_path_factory.mktemp("inception") / "random-inception.pth"
    torch.save(net.state_dict(), path)
    return path


def test_inception_features_from_a_weights_file(random_inception_weights):
    net = features.InceptionFeatures(str(random_inception_weights))
    gray = torch.rand(2, 1, 16, 16) * 2 - 1
    f, logits = net(gray)
    assert f.shape == (2, 2048) and logits.shape == (2, 1008)
    f_rgb, _ = net(gray.expand(-1, 3, -1, -1))  # a gray image is read as the same gray in RGB
    assert_close(f, f_rgb)


def test_gan_eval_runs_fid_kid_is_with_a_weights_file(tiny_checkpoint, random_inception_weights, tmp_path):
    out = gan("eval", f"checkpoint={tiny_checkpoint}", "metrics=[kid,is]", "n=6", "kid_subset_size=3",
              "kid_subsets=2", f"inception_weights={random_inception_weights}", f"cache_dir={tmp_path}",
              cwd=tmp_path, check=True)
    m = json.loads((tiny_checkpoint.parent / "metrics.json").read_text())["last.pt"]["metrics"]
    assert set(m) == {"kid", "kid_std", "is", "is_std"} and 1.0 <= m["is"] <= 1008
    assert "kid" in out.stdout


def test_two_sets_of_one_name_and_shape_never_share_cached_reference_features(tmp_path):
    """data=folder's sources are all named "folder": the cache is keyed by the drawn samples themselves."""
    from gan_cli.metrics import features

    g = torch.Generator().manual_seed(0)
    first, second = (TensorData("folder", torch.randint(0, 256, (50, 1, 12, 12), generator=g, dtype=torch.uint8))
                     for _ in range(2))
    net = TinyInception()
    got = [features.reference(net, data, 40, 0, 16, torch.device("cpu"), tmp_path) for data in (first, second)]
    for data, feats in zip((first, second), got):
        idx = torch.randperm(50, generator=torch.Generator().manual_seed(0))[:40]
        with torch.no_grad():
            assert_close(feats, net(to_unit_range(data.samples[idx]))[0])
    assert len(list(tmp_path.glob("folder_1x12x12_*.pt"))) == 2
    first.draw = None  # a second evaluation of the same source reads the cache without drawing (decoding) again
    again = features.reference(net, first, 40, 0, 16, torch.device("cpu"), tmp_path)
    assert_close(again, got[0])
