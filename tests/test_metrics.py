"""The data set's own classifier and the class report built on it."""

import pytest
import torch
from torch import nn

from gan_cli.data.source import TensorData
from gan_cli.metrics import classifier


class FixedProbabilities(nn.Module):
    """A 'classifier' that returns given logits, one row per image, so the test chooses its verdicts."""

    def __init__(self, logits):
        super().__init__()
        self.logits = logits

    def forward(self, x):
        return self.logits[: len(x)]


def test_class_report_counts_confident_classes_only():
    big = 10.0  # softmax of [10, 0, 0] gives 0.9999: confident
    logits = torch.tensor([[big, 0, 0]] * 50 + [[0, big, 0]] * 49 + [[0, 0.1, 0]] * 1)
    report = classifier.class_report(FixedProbabilities(logits), torch.zeros(100, 1, 4, 4), num_classes=3)
    assert report["class_counts"] == [50, 50, 0]  # argmax: the unsure image lands in class 1
    assert report["confident_counts"] == [50, 49, 0]
    torch.testing.assert_close(report["confident_share"], 0.99)
    assert report["classes_covered"] == 2 and report["classes_predicted"] == 2


def test_classifier_learns_a_separable_toy_problem(tmp_path):
    # two classes: dark and bright images; any working training loop separates them
    g = torch.Generator().manual_seed(0)
    dark = torch.randint(0, 60, (64, 1, 8, 8), generator=g, dtype=torch.uint8)
    bright = torch.randint(196, 256, (64, 1, 8, 8), generator=g, dtype=torch.uint8)
    data = TensorData("toy", torch.cat([dark, bright]), torch.tensor([0] * 64 + [1] * 64), num_classes=2)
    net = classifier.cached("toy", data, data, tmp_path)
    assert classifier.accuracy(net, data) == 1.0
    assert (tmp_path / "toy_cnn_affine_8px.pt").is_file()  # 128 images: a small set, trained jittered
    again = classifier.cached("toy", data, data, tmp_path)  # loaded, not retrained
    for a, b in zip(net.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)


def test_a_damaged_or_foreign_cached_classifier_is_one_error_and_is_left_alone(tmp_path):
    from gan_cli.errors import UserError

    data = TensorData("toy", torch.zeros(8, 1, 8, 8, dtype=torch.uint8), torch.zeros(8, dtype=torch.long), num_classes=2)
    path = tmp_path / "toy_cnn_affine_8px.pt"
    for content in (b"not a checkpoint", None):
        if content is None:  # readable tensors, but another network's
            torch.save({"weights": {"w": torch.zeros(2)}, "test_accuracy": 0.5}, path)
        else:
            path.write_bytes(content)
        before = path.read_bytes()
        with pytest.raises(UserError, match="is not a toy classifier this runner can read"):
            classifier.cached("toy", data, data, tmp_path)
        assert path.read_bytes() == before


def test_only_a_small_sets_classifier_trains_on_jittered_images(tmp_path, monkeypatch):
    data = TensorData("toy", torch.zeros(8, 1, 8, 8, dtype=torch.uint8), torch.zeros(8, dtype=torch.long), num_classes=2)
    seen = []
    monkeypatch.setattr(classifier, "train", lambda d, augment: seen.append(augment) or classifier.SmallCNN(1, 2))
    classifier.cached("toy", data, data, tmp_path)
    monkeypatch.setattr(classifier, "SMALL_SET", 8)
    classifier.cached("toy", data, data, tmp_path)
    assert seen == [True, False]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["toy_cnn_8px.pt", "toy_cnn_affine_8px.pt"]
    # a caller may insist on the jitter for a set above the threshold (bench/mnist2digits_baselines.py's
    # many-writer judge); it is then read back from the jittered file, not retrained
    (tmp_path / "toy_cnn_affine_8px.pt").unlink()
    classifier.cached("toy", data, data, tmp_path, augment=True)
    classifier.cached("toy", data, data, tmp_path, augment=True)
    assert seen == [True, False, True]
    assert (tmp_path / "toy_cnn_affine_8px.pt").is_file()


def test_random_affine_with_zero_bounds_is_the_identity_and_each_image_gets_its_own_draw():
    g = torch.Generator().manual_seed(0)
    images = torch.rand(4, 1, 8, 8, generator=g) * 2 - 1
    still = classifier.random_affine(images, g, degrees=0, scale=0, shear=0, shift=0)
    torch.testing.assert_close(still, images)
    blank = -torch.ones(2, 1, 8, 8)
    torch.testing.assert_close(classifier.random_affine(blank, g), blank)  # the background stays -1
    moved = classifier.random_affine(images[:2].repeat(8, 1, 1, 1), g)
    assert not torch.allclose(moved[0], moved[2])  # the same image, two draws


def test_mode_report_on_hand_placed_points():
    from gan_cli.metrics.toy import mode_report

    centers = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    std = 1.0
    points = torch.tensor(
        [[0.5, 0.5]] * 60            # mode 0, within 3 std (distance 0.71)
        + [[10.0, 2.9]] * 39         # mode 1, distance 2.9 <= 3
        + [[5.0, 5.0]] * 1           # between modes: 7.07 from each, low quality
    )
    r = mode_report(points, centers, std, min_share=0.01)
    assert r["mode_counts"] == [60, 39, 0]
    assert r["modes_covered"] == 2 and r["modes"] == 3
    torch.testing.assert_close(r["high_quality_share"], 0.99)
    # a mode needs min_share of ALL samples: 39 of 100 is enough at 30%, not at 40%
    assert mode_report(points, centers, std, min_share=0.4)["modes_covered"] == 1


def test_coverage_names_its_two_counts_of_classes_apart():
    """classes_covered counts confident samples only (gan eval's metric); classes_predicted every sample
    in its most likely class (gan diagnose's probe): noise spread over the classes covers none of them."""
    unsure = torch.tensor([[0.4, 0.3, 0.3]] * 30 + [[0.3, 0.4, 0.3]] * 30 + [[0.3, 0.3, 0.4]] * 40)
    r = classifier.coverage(unsure, 3)
    assert r["classes_predicted"] == 3 and r["classes_covered"] == 0 and r["confident_share"] == 0.0
    assert classifier.coverage(unsure, 3, min_share=0.35)["classes_predicted"] == 1  # only the 40% class
    assert classifier.covered(torch.tensor([5, 4, 0]), 100, 0.05) == 1  # at least 5 of 100


def test_reference_features_are_cached_beside_a_torchvision_set_and_in_the_user_cache_otherwise(tmp_path):
    from pathlib import Path

    from gan_cli.metrics.evaluator import default_cache
    from tests.helpers import compose_config

    mnist = compose_config(overrides=["data=mnist", f"data.root={tmp_path}"])
    folder = compose_config(overrides=["data=folder", f"data.root={tmp_path}"])
    assert default_cache(mnist) == tmp_path / "reference"
    assert default_cache(folder) == Path.home() / ".cache" / "gan-cli" / "reference"
