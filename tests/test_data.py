"""Data sources: ranges, shapes, labels, seeded and resumable batch streams, clear errors."""

import itertools

import pytest
import torch
from PIL import Image
from torch.testing import assert_close

from gan_cli.data import fake, folder, toy, torchvision_sets
from gan_cli.data.source import TensorData, epoch_order, to_unit_range
from gan_cli.errors import UserError


def test_pixels_map_to_unit_range():
    assert_close(to_unit_range(torch.tensor([0, 255, 128], dtype=torch.uint8)),
                 torch.tensor([-1.0, 1.0, 128 / 127.5 - 1]))


def test_epoch_order_is_a_seeded_permutation():
    a, b = epoch_order(10, seed=3, epoch=1), epoch_order(10, seed=3, epoch=1)
    assert torch.equal(a, b) and sorted(a.tolist()) == list(range(10))
    assert not torch.equal(a, epoch_order(10, seed=3, epoch=2))


def test_batch_stream_resumes_where_it_stopped():
    data = fake.random_images(n=40, channels=1, resolution=4)
    cpu = torch.device("cpu")
    straight = list(itertools.islice(data.batches(8, cpu, seed=1), 12))  # 5 per epoch: crosses 2 epochs
    resumed = list(itertools.islice(data.batches(8, cpu, seed=1, start=7), 5))
    for a, b in zip(straight[7:], resumed):
        assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)


def test_an_epoch_visits_every_sample_once():
    data = TensorData("t", torch.arange(12).float().view(12, 1) / 12, torch.arange(12))
    labels = torch.cat([b.labels for b in itertools.islice(data.batches(4, torch.device("cpu"), seed=0), 3)])
    assert sorted(labels.tolist()) == list(range(12))


def test_batch_larger_than_data_is_refused():
    data = fake.random_images(n=4)
    with pytest.raises(UserError, match="fewer than train.batch_size=8"):
        next(data.batches(8, torch.device("cpu"), seed=0))


def test_ring_has_eight_labelled_modes_on_radius_two():
    data = toy.ring(n=4000, seed=0)
    points = data.samples * data.scale
    centers = toy.ring_centers()
    assert data.shape == (2,) and data.num_classes == 8 and points.abs().max() < 1.0 * data.scale
    assert_close(centers.norm(dim=1), torch.full((8,), 2.0))
    dist = (points - centers[data.labels]).norm(dim=1)
    assert dist.max() < 0.02 * 6  # every point sits within 6 std of its own component
    assert torch.bincount(data.labels).min() > 400  # components drawn uniformly


def test_grid_has_25_modes():
    centers = toy.grid_centers()
    assert centers.shape == (25, 2)
    assert sorted(set(centers[:, 0].tolist())) == [-4.0, -2.0, 0.0, 2.0, 4.0]


def test_fake_images_have_the_asked_shape():
    data = fake.random_images(n=10, channels=3, resolution=8)
    assert data.shape == (3, 8, 8) and len(data) == 10 and data.samples.dtype == torch.uint8


def test_folder_reads_resizes_and_crops(tmp_path):
    (tmp_path / "sub").mkdir()
    Image.new("RGB", (40, 20), (255, 0, 0)).save(tmp_path / "a.png")
    Image.new("RGB", (20, 30), (0, 0, 255)).save(tmp_path / "sub" / "b.jpg")
    (tmp_path / "notes.txt").write_text("not an image")
    data = folder.load(str(tmp_path), resolution=16, channels=3, num_workers=0)
    assert len(data) == 2 and data.shape == (3, 16, 16)
    x = next(data.batches(2, torch.device("cpu"), seed=0)).images
    assert x.shape == (2, 3, 16, 16) and x.min() >= -1 and x.max() <= 1


def test_folder_errors_name_the_problem(tmp_path):
    with pytest.raises(UserError, match="holds no images"):
        folder.load(str(tmp_path))
    with pytest.raises(UserError, match="is not a directory"):
        folder.load(str(tmp_path / "missing"))
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(UserError, match="not a readable image"):
        folder.load(str(tmp_path))


def test_missing_dataset_without_download_names_make_data(tmp_path):
    with pytest.raises(UserError, match="make data"):
        torchvision_sets.load("MNIST", str(tmp_path), download=False)


def test_resize_keeps_uint8_and_content():
    images = torch.full((3, 1, 28, 28), 200, dtype=torch.uint8)
    out = torchvision_sets.resize(images, 32)
    assert out.shape == (3, 1, 32, 32) and out.dtype == torch.uint8 and (out == 200).all()


def test_real_mnist_loads_in_full(mnist_root):
    data = torchvision_sets.load("MNIST", str(mnist_root))
    assert len(data) == 60_000 and data.shape == (1, 28, 28) and data.num_classes == 10
    assert torch.bincount(data.labels).tolist()[:2] == [5923, 6742]  # the published class counts
    test = torchvision_sets.load("MNIST", str(mnist_root), split="test", resolution=32)
    assert len(test) == 10_000 and test.shape == (1, 32, 32)
