"""Image-to-image translation data: the edge operator, the joint jitter of pairs, resumable streams, the
built-in sets (edges2mnist, edges2fashion, mnist2digits), and pix2pix's and CycleGAN's folder layouts
with their one-line errors."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from PIL import Image
from torch.testing import assert_close

from gan_cli import build, modality
from gan_cli.data import torchvision_sets
from gan_cli.data.source import TensorData, to_unit_range
from gan_cli.data.translation import (PairedData, UnpairedData, edge_map, edges, mnist2digits, paired_folder,
                                      sobel_magnitude, unpaired_folder)
from gan_cli.errors import UserError
from tests.helpers import DATA_ROOT, compose_config

CPU = torch.device("cpu")


def built(data: str, *overrides: str):
    return build.data(compose_config("train", [f"data={data}", *overrides]))


# --- the edge operator --------------------------------------------------------------------------------


def test_sobel_magnitude_of_a_vertical_step_edge():
    # 0 | 0.2 between columns 2 and 3: the kernel's right column (1 + 2 + 1) times 0.2 on the two pixels
    # beside the step, zero elsewhere (replicate padding makes no edge at the border), nothing vertical
    image = torch.zeros(1, 1, 4, 6, dtype=torch.uint8)
    image[..., 3:] = 51
    expected = torch.zeros(1, 1, 4, 6)
    expected[..., 2:4] = 4 * 0.2
    assert_close(sobel_magnitude(image), expected)
    assert_close(sobel_magnitude(image.transpose(2, 3)), expected.transpose(2, 3))  # a horizontal one
    assert_close(sobel_magnitude(image.expand(1, 3, 4, 6)), expected)  # colour: the channel mean


def test_sobel_magnitude_of_a_dot_and_its_edge_map():
    image = torch.zeros(1, 1, 3, 3, dtype=torch.uint8)
    image[0, 0, 1, 1] = 255
    r = math.sqrt(2)  # a diagonal neighbour meets the dot under weight 1 of both kernels; a side one under 2
    assert_close(sobel_magnitude(image), torch.tensor([[[[r, 2, r], [2, 0, 2], [r, 2, r]]]]))
    assert edge_map(image, 1.5).tolist() == [[[[0, 255, 0], [255, 0, 255], [0, 255, 0]]]]


# --- jitter and streams, on pairs whose pixels say where they came from -------------------------------

L, R = 12, 8  # load side and crop side


def coded_pairs(n: int = 20, flip: bool = True, side: int = L, labels: bool = True) -> PairedData:
    """Input channel 0 is the pixel's position y * side + x, channel 1 the sample's number; the target
    holds 255 - position, the number, and 255 - number: aligned exactly when the two agree."""
    position = torch.arange(side * side, dtype=torch.uint8).view(1, side, side).expand(n, side, side)
    number = torch.arange(n, dtype=torch.uint8).view(n, 1, 1).expand(n, side, side)
    inputs = torch.stack([position, number], 1)
    targets = torch.stack([255 - position, number, 255 - number], 1)
    y = torch.arange(n) % 10 if labels else None
    return PairedData("coded", TensorData("a", inputs, y, 10), TensorData("b", targets, y, 10), R, flip,
                      10 if labels else None)


def pixels(x: torch.Tensor) -> torch.Tensor:
    return ((x + 1) * 127.5).round().long()


def window_of(position: torch.Tensor) -> tuple[int, int, bool]:
    """(top, left, mirrored) of a crop of the position code, checking that it is one R x R window."""
    flipped = bool(position[0, 0] > position[0, -1])
    top, left = divmod(int(position[0, -1 if flipped else 0]), L)
    steps = torch.arange(R)
    expected = (top + steps)[:, None] * L + left + (steps.flip(0) if flipped else steps)
    assert torch.equal(position, expected)
    return top, left, flipped


def test_a_pair_shares_its_crop_and_its_flip():
    data = coded_pairs()
    assert data.shape == (3, R, R) and data.input_shape == (2, R, R) and data.modality is modality.IMAGES
    windows = set()
    for batch in itertools.islice(data.batches(8, CPU, seed=0), 10):
        assert batch.images is batch.targets and batch.inputs.shape == (8, 2, R, R)
        a, b = pixels(batch.inputs), pixels(batch.targets)
        assert torch.equal(b[:, 0], 255 - a[:, 0]) and torch.equal(b[:, 1], a[:, 1])  # same window, same flip
        assert torch.equal(batch.labels, a[:, 1, 0, 0] % 10)  # and the pair's own label
        windows.update(window_of(p) for p in a[:, 0])
    assert {w[2] for w in windows} == {False, True}  # both flips happen
    assert len({w[:2] for w in windows}) > 10  # and many windows of the (L - R + 1)^2 = 25


def test_without_flip_or_load_size_the_images_come_whole():
    batch = next(coded_pairs(flip=False, side=R).batches(4, CPU, seed=0))
    assert torch.equal(pixels(batch.inputs[:, 0]), torch.arange(R * R).view(1, R, R).expand(4, R, R))


def fields(batch):
    return [x for x in (batch.images, batch.inputs, batch.labels) if x is not None]


@pytest.mark.parametrize("unpaired", [False, True])
def test_the_stream_is_a_function_of_seed_and_position(unpaired):
    data = coded_pairs()
    if unpaired:  # sides of their own sizes: 20 and 13 samples, 2 and 1 batches of 8 an epoch
        data = UnpairedData("u", data.domain_a, TensorData("b", data.domain_b.samples[:13]), R, flip=True)
    straight = list(itertools.islice(data.batches(8, CPU, seed=5), 6))
    resumed = next(data.batches(8, CPU, seed=5, start=3))
    for x, y in zip(fields(straight[3]), fields(resumed), strict=True):
        assert_close(x, y)
    other_seed = next(data.batches(8, CPU, seed=6, start=3))
    assert not torch.equal(straight[3].inputs, other_seed.inputs)


def test_unpaired_sides_cycle_over_their_own_lengths_in_their_own_orders():
    coded = coded_pairs(n=30, flip=False, side=R)
    data = UnpairedData("u", TensorData("a", coded.domain_a.samples[:10]), coded.domain_b, R)
    assert len(data) == 30 and data.shape == (3, R, R) and data.input_shape == (2, R, R) and not data.paired
    batches = list(itertools.islice(data.batches(5, CPU, seed=0), 6))
    assert all(b.labels is None and b.targets is None for b in batches)
    a = torch.cat([pixels(b.inputs[:, 1, 0, 0]) for b in batches])
    b = torch.cat([pixels(b.images[:, 1, 0, 0]) for b in batches])
    assert sorted(b.tolist()) == list(range(30))  # B: one epoch of 30
    assert sorted(a.tolist()) == sorted(list(range(10)) * 3)  # A: three epochs of 10
    assert not torch.equal(a[:10], b[:10])


def test_pictures_and_evaluation_take_the_centre_window():
    data = coded_pairs(n=6)
    top = (L - R) // 2
    centre = (top + torch.arange(R))[:, None] * L + top + torch.arange(R)
    inputs, targets, labels = data.pairs(4)
    assert inputs.shape == (4, 2, R, R) and targets.shape == (4, 3, R, R)
    assert torch.equal(pixels(inputs[:, 0]), centre.expand(4, R, R)) and labels.tolist() == [0, 1, 2, 3]
    assert_close(data.first(4), targets)
    assert len(data.pairs()[0]) == 6
    drawn = pixels(data.draw(3, seed=1)[:, 1, 0, 0])
    assert len(set(drawn.tolist())) == 3 and torch.equal(drawn, pixels(data.draw(3, seed=1)[:, 1, 0, 0]))
    unpaired = UnpairedData("u", data.domain_a, TensorData("b", data.domain_b.samples[:2]), R)
    (a, la), (b, lb) = unpaired.sides()
    assert a.shape == (6, 2, R, R) and b.shape == (2, 3, R, R) and la.tolist() == list(range(6)) and lb is None


def test_a_load_size_below_the_resolution_is_refused():
    with pytest.raises(UserError, match=r"data.load_size=20 is below data.resolution=28.*pix2pix: 286 for 256"):
        edges("MNIST", str(DATA_ROOT), load_size=20)


# --- the built-in sets --------------------------------------------------------------------------------


@pytest.mark.parametrize("dataset, name", [("MNIST", "edges2mnist"), ("FashionMNIST", "edges2fashion")])
def test_edges_sets_pair_each_image_with_its_edge_map(dataset, name):
    data = built(name, "data.split=test")
    images = torchvision_sets.load(dataset, str(DATA_ROOT), split="test")
    assert data.name == name and data.paired and data.num_classes == 10 and len(data) == 10_000
    assert data.shape == data.input_shape == (1, 28, 28)
    assert torch.equal(data.domain_b.samples, images.samples) and torch.equal(data.domain_b.labels, images.labels)
    threshold = {"MNIST": 2.0, "FashionMNIST": 1.0}[dataset]
    assert torch.equal(data.domain_a.samples, edge_map(images.samples, threshold))
    assert set(data.domain_a.samples.unique().tolist()) == {0, 255}
    inputs, targets, labels = data.pairs(8)
    assert torch.equal(labels, images.labels[:8]) and torch.equal(targets, to_unit_range(images.samples[:8]))


def test_edges_with_a_load_size_crop_to_the_resolution():
    data = edges("MNIST", str(DATA_ROOT), split="test", resolution=24, load_size=28, flip=True)
    batch = next(data.batches(16, CPU, seed=0))
    assert batch.inputs.shape == batch.images.shape == (16, 1, 24, 24) and data.first(2).shape == (2, 1, 24, 24)


def test_mnist2digits_sides_are_disjoint_sources_framed_alike():
    test = built("mnist2digits", "data.split=test")
    train = mnist2digits(str(DATA_ROOT))
    assert (len(train.domain_b), len(test.domain_b)) == (1437, 360) and len(train.domain_a) == 60_000
    assert train.shape == train.input_shape == (1, 28, 28) and train.num_classes is None and not train.paired
    assert (train.domain_a.name, train.domain_b.name) == ("mnist", "digits")
    for side in (train.domain_b, test.domain_b):
        assert set(side.labels.tolist()) == set(range(10)) and side.samples.dtype == torch.uint8
        frame = side.samples.clone()
        frame[..., 4:24, 4:24] = 0
        assert frame.max() == 0 and side.samples.max() == 255  # MNIST's framing: a 20x20 box in 28x28
    mnist = {bytes(x.numpy()) for x in train.domain_a.samples}
    assert not any(bytes(x.numpy()) in mnist for x in train.domain_b.samples)
    (a, la), (b, lb) = test.sides(4)
    assert a.shape == b.shape == (4, 1, 28, 28) and la is not None and lb is not None


# --- folders ------------------------------------------------------------------------------------------


def image(path, width: int, height: int, value: int = 0, mode: str = "L", right: int | None = None):
    """A PNG (or any PIL format, by extension) of one grey value; `right` paints the right half another."""
    pixels = np.full((height, width), value, dtype=np.uint8)
    if right is not None:
        pixels[:, width // 2:] = right
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).convert(mode).save(path)
    return path


def combined(root, n: int = 4, split: str = "train"):
    for i in range(n):
        image(root / split / f"{i}.png", 16, 8, value=10 * i, right=200 + i)


def two_folders(root, n: int = 4, split: str | None = "train"):
    for i in range(n):
        image(root / "A" / (split or "") / f"x{i}.png", 8, 8, value=10 * i)
        image(root / "B" / (split or "") / f"x{i}.bmp", 8, 8, value=200 + i)  # paired by name, not extension


def unpaired(root, a: int = 3, b: int = 5, split: str = "train"):
    for i in range(a):
        image(root / f"{split}A" / f"{i}.png", 8, 8, value=i)
    for i in range(b):
        image(root / f"{split}B" / f"{i}.jpg", 8, 8, value=100 + 10 * i)


def grey(x: torch.Tensor) -> list[int]:
    return pixels(x[:, 0, 0, 0]).tolist()


@pytest.mark.parametrize("layout", [combined, two_folders, lambda root: two_folders(root, split=None)],
                         ids=["combined", "A_B_split", "A_B_flat"])
def test_paired_folders_load_aligned_pairs(tmp_path, layout):
    layout(tmp_path)
    data = paired_folder(str(tmp_path), resolution=6, load_size=8, channels=1)
    assert len(data) == 4 and data.shape == data.input_shape == (1, 6, 6) and data.num_classes is None
    inputs, targets, labels = data.pairs()
    assert grey(inputs) == [0, 10, 20, 30] and grey(targets) == [200, 201, 202, 203] and labels is None
    for batch in itertools.islice(data.batches(2, CPU, seed=0), 4):  # jittered, still aligned
        assert [t - 200 for t in grey(batch.targets)] == [a // 10 for a in grey(batch.inputs)]
    swapped = paired_folder(str(tmp_path), resolution=8, channels=3, direction="BtoA")
    inputs, targets, _ = swapped.pairs()
    assert swapped.shape == (3, 8, 8) and grey(inputs) == [200, 201, 202, 203] and grey(targets) == [0, 10, 20, 30]


def test_unpaired_folder_loads_each_side(tmp_path):
    unpaired(tmp_path)
    unpaired(tmp_path, a=2, b=2, split="test")
    data = built("unpaired_folder", f"data.root={tmp_path}", "data.resolution=6", "data.load_size=8")
    assert (len(data.domain_a), len(data.domain_b), len(data)) == (3, 5, 5) and data.shape == (3, 6, 6)
    (a, _), (b, _) = data.sides()
    assert grey(a) == [0, 1, 2] and grey(b) == [100, 110, 120, 130, 140]
    test = unpaired_folder(str(tmp_path), split="test", resolution=8, channels=1)
    assert (len(test.domain_a), len(test.domain_b)) == (2, 2) and test.input_shape == (1, 8, 8)


def test_the_paired_folder_config_builds(tmp_path):
    combined(tmp_path, split="test")
    data = built("paired_folder", f"data.root={tmp_path}", "data.split=test", "data.resolution=8")
    assert data.name == "paired_folder" and len(data) == 4 and data.shape == (3, 8, 8)


def garbage(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not a picture")


# (how to spoil the folder, which loader, its arguments, what the message must say)
FOLDER_ERRORS = {
    "paired_root_missing": (lambda root: None, paired_folder, {"root": "nowhere"},
                            r"data.root=nowhere is not a directory; point data=paired_folder at .*side by side"),
    "unpaired_root_missing": (lambda root: None, unpaired_folder, {"root": "nowhere"},
                              r"data.root=nowhere is not a directory; point data=unpaired_folder at .*trainA/"),
    "neither_layout": (lambda root: image(root / "photos" / "1.png", 8, 8), paired_folder, {},
                       r"neither of pix2pix's layouts: it holds photos/; expected .*train/ of images with A and "
                       r"B side by side .*A/train/ and .*B/train/"),
    "other_split_only": (lambda root: combined(root, split="val"), paired_folder, {},
                         r"neither of pix2pix's layouts: it holds val/"),
    "cyclegan_layout_to_paired": (unpaired, paired_folder, {},
                                  r"this is CycleGAN's unpaired layout: use data=unpaired_folder with "
                                  r"algorithm=cyclegan"),
    "empty_split": (lambda root: (root / "train").mkdir(), paired_folder, {},
                    r"train holds no images \(it holds nothing\)"),
    "split_without_images": (lambda root: (garbage(root / "train" / "notes.txt"), (root / "train" / "sub").mkdir()),
                             paired_folder, {}, r"train holds no images \(it holds notes.txt, sub/\)"),
    "not_side_by_side": (lambda root: (combined(root), image(root / "train" / "9.png", 10, 8)), paired_folder, {},
                         r"9.png is 10x8: .*width must be twice its height"),
    "unequal_pair": (lambda root: (two_folders(root), image(root / "B" / "train" / "x1.bmp", 8, 6)),
                     paired_folder, {}, r"A/train/x1.png is 8x8 but .*B/train/x1.bmp is 8x6: .*same size"),
    "unmatched_names": (lambda root: (two_folders(root), image(root / "A" / "train" / "extra.png", 8, 8),
                                      (root / "B" / "train" / "x0.bmp").rename(root / "B" / "train" / "y0.bmp"),
                                      (root / "B" / "train" / "x1.bmp").rename(root / "B" / "train" / "y1.bmp")),
                        paired_folder, {}, r"do not match by file name: 3 \(extra, x0, x1\) only in A, "
                                           r"2 \(y0, y1\) only in B"),
    "duplicate_name": (lambda root: (two_folders(root), image(root / "A" / "train" / "x0.jpg", 8, 8)),
                       paired_folder, {}, r"x0.jpg and .*x0.png share the name x0|x0.png and .*x0.jpg share"),
    "empty_side": (lambda root: (two_folders(root), [p.unlink() for p in (root / "B" / "train").iterdir()]),
                   paired_folder, {}, r"B/train holds no images"),
    "missing_split_side": (lambda root: (two_folders(root), image(root / "B" / "other.png", 8, 8),
                                         [p.unlink() for p in (root / "B" / "train").iterdir()],
                                         (root / "B" / "train").rmdir()),
                           paired_folder, {}, r"B/train is missing; pix2pix's two-folder layout pairs"),
    "unreadable_image": (lambda root: (combined(root), garbage(root / "train" / "5.png")), paired_folder, {},
                         r"train/5.png is not a readable image \(UnidentifiedImageError"),
    "not_an_image": (lambda root: (two_folders(root), garbage(root / "A" / "train" / "README.md")), paired_folder,
                     {}, r"A/train/README.md is not an image .*move it out"),
    "too_big": (combined, paired_folder, {"load_size": 20_000},
                r"8 images of 3x20000x20000 would take 9.6 GB of memory, over the 4 GB .*lower data.load_size"),
    "bad_direction": (combined, paired_folder, {"direction": "AtoC"}, r"data.direction=AtoC: choose AtoB"),
    "bad_channels": (combined, paired_folder, {"channels": 4}, r"data.channels=4: choose 1 \(grey\) or 3"),
    "unpaired_missing_side": (lambda root: image(root / "trainA" / "0.png", 8, 8), unpaired_folder, {},
                              r"trainB is missing; CycleGAN's layout is .*trainA/ and .*trainB/"),
    "unpaired_empty_side": (lambda root: (unpaired(root), [p.unlink() for p in (root / "trainA").iterdir()]),
                            unpaired_folder, {}, r"trainA holds no images"),
    "unpaired_test_side_missing": (unpaired, unpaired_folder, {"split": "test"}, r"testA is missing"),
    "pix2pix_folders_to_unpaired": (two_folders, unpaired_folder, {},
                                    r"this is pix2pix's paired layout: use data=paired_folder with algorithm=pix2pix"),
    "pix2pix_combined_to_unpaired": (combined, unpaired_folder, {}, r"this is pix2pix's paired layout"),
}


@pytest.mark.parametrize("case", FOLDER_ERRORS)
def test_folder_errors_name_the_problem_and_the_fix(tmp_path, monkeypatch, case):
    spoil, loader, kwargs, message = FOLDER_ERRORS[case]
    spoil(tmp_path)
    monkeypatch.chdir(tmp_path)  # "nowhere" is relative: make sure it is not there
    with pytest.raises(UserError, match=message) as raised:
        loader(**{"root": str(tmp_path), "resolution": 8, **kwargs})
    assert "\n" not in str(raised.value)
