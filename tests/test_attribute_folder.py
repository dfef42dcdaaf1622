"""data=attribute_folder: a folder of images with a table of attributes (a CSV, or CelebA's layout) and
optional captions; values, binarisation, batches aligned with their images, and one-line errors."""

import itertools

import pytest
import torch
from PIL import Image
from torch.testing import assert_close

from gan_cli.data import attribute_folder
from gan_cli.errors import UserError
from tests.helpers import TINY_MODEL, gan, one_line_error

N = 8
CPU = torch.device("cpu")


def grey(i: int) -> int:
    return 20 + 30 * i  # image i is this grey throughout: a batch row's pixels say which image it is


def celeba(root, n: int = N, ext: str = ".jpg"):
    """n images and list_attr_celeba.txt beside them: Smiling = -1/1 alternating, Male = 1 for the first half."""
    images = root / "img_align_celeba"
    images.mkdir(parents=True)
    for i in range(n):
        # 10x12, taller than wide as CelebA's 178x218; PNG whatever the name, so the grey stays exact
        Image.new("L", (10, 12), grey(i)).save(images / f"{i + 1:06d}{ext}", format="PNG")
    rows = "".join(f"{i + 1:06d}.jpg {1 if i % 2 else -1}  {1 if i < n // 2 else -1}\n" for i in range(n))
    (root / "list_attr_celeba.txt").write_text(f"{n}\nSmiling Male \n{rows}")
    return images, root / "list_attr_celeba.txt"


def captions(root, n: int = N):
    """Two captions per image, each naming it; one quoted with a comma."""
    lines = ["file,caption"]
    for i in range(n):
        lines += [f"{i + 1:06d}.jpg,face {i} smiling", f'{i + 1:06d}.jpg,"face {i}, another"']
    (root / "captions.csv").write_text("\n".join(lines) + "\n")
    return root / "captions.csv"


def load(images, table, **kw):
    return attribute_folder.load(str(images), str(table), resolution=kw.pop("resolution", 8), channels=1,
                                 num_workers=0, **kw)


def test_celeba_layout_keeps_values_and_binarises_minus_one_one_at_zero(tmp_path):
    images, table = celeba(tmp_path)
    data = load(images, table, attributes=["Male", "Smiling"])
    a = data.attributes
    assert a.names == ("Male", "Smiling") and len(data) == N and data.shape == (1, 8, 8)
    assert_close(a.values[:, 1], torch.tensor([-1.0, 1.0] * (N // 2)))  # as given, in the asked order
    assert_close(a.thresholds, torch.zeros(2))
    assert_close(a.binary[:, 0], torch.tensor([1.0] * (N // 2) + [0.0] * (N // 2)))
    assert load(images, table).attributes.names == ("Smiling", "Male")  # default: every column


def test_csv_layout_binarises_zero_one_at_half_and_continuous_at_median_or_threshold(tmp_path):
    (tmp_path / "sub").mkdir()
    names = [f"sub/{i}.png" if i % 2 else f"{i}.png" for i in range(5)]  # rows name files under root
    for i, name in enumerate(names):
        Image.new("L", (8, 8), grey(i)).save(tmp_path / name)
    ages = [31.0, 20.0, 45.5, 26.0, 60.0]
    table = tmp_path.parent / "attrs.csv"
    table.write_text("file,Glasses,Age\r\n" + "".join(f"{n},{i % 2},{a}\r\n" for i, (n, a) in enumerate(zip(names, ages))))
    data = load(tmp_path, table)
    assert_close(data.attributes.thresholds, torch.tensor([0.5, 31.0]))
    assert_close(data.attributes.binary, torch.tensor([[0.0, 0], [1, 0], [0, 1], [1, 0], [0, 1]]))
    set_at = load(tmp_path, table, attributes=["Age"], thresholds={"Age": 25})
    assert_close(set_at.attributes.binary[:, 0], torch.tensor([1.0, 0, 1, 1, 1]))


def test_a_row_finds_its_image_under_another_extension(tmp_path):
    images, table = celeba(tmp_path, ext=".png")  # CelebA's PNG copies under the table's .jpg names
    assert len(load(images, table)) == N


def test_batches_carry_the_attributes_and_captions_of_their_own_images(tmp_path):
    images, table = celeba(tmp_path)
    data = load(images, table, captions=str(captions(tmp_path)), resolution=6)  # 10x12 -> crop 10x10 -> 6x6
    straight = list(itertools.islice(data.batches(4, CPU, seed=3), 8))  # 2 a epoch: 4 epochs
    seen = set()
    for b in straight:
        assert b.images.shape == (4, 1, 6, 6) and len(b.text) == 4
        which = [(round((v + 1) * 127.5) - 20) // 30 for v in b.images[:, 0, 0, 0].tolist()]
        assert_close(b.attributes, data.attributes.binary[which])
        assert [t.split(",")[0].split()[1] for t in b.text] == [str(i) for i in which]
        seen.update(b.text)
    assert len(seen) > N  # both captions of some image were drawn over the epochs
    again = list(itertools.islice(data.batches(4, CPU, seed=3, start=5), 3))  # resumed mid-epoch
    for a, b in zip(straight[5:], again):
        assert torch.equal(a.images, b.images) and torch.equal(a.attributes, b.attributes) and a.text == b.text
    other = list(itertools.islice(data.batches(4, CPU, seed=4), 8))
    assert any(a.text != b.text for a, b in zip(straight, other))


def test_a_stand_in_for_an_image_that_does_not_decode_brings_its_own_row(tmp_path):
    import numpy as np

    images, table = celeba(tmp_path)
    cut = images / "000003.jpg"  # header whole, pixels cut short: found only when decoded
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8), "L").save(cut, format="PNG")
    cut.write_bytes(cut.read_bytes()[:len(cut.read_bytes()) // 2])
    data = load(images, table, captions=str(captions(tmp_path)))
    for b in itertools.islice(data.batches(4, CPU, seed=0), 4):
        which = [(round((v + 1) * 127.5) - 20) // 30 for v in b.images[:, 0, 0, 0].tolist()]
        assert 2 not in which and [int(t.split(",")[0].split()[1]) for t in b.text] == which
        assert_close(b.attributes, data.attributes.binary[which])


def test_gan_train_runs_on_an_attribute_folder(tmp_path):
    images, table = celeba(tmp_path)
    proc = gan("train", "data=attribute_folder", f"data.root={images}", f"data.table={table}",
               f"data.captions={captions(tmp_path)}", "data.attributes=[Smiling]", "data.thresholds={Smiling:0}", "data.resolution=16",
               "data.channels=1", "data.num_workers=0", *TINY_MODEL, "train.steps=2", "train.batch_size=4",
               f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path, check=True)
    assert (tmp_path / "run" / "checkpoints" / "last.pt").is_file(), proc.stderr[-2000:]


def _edit(path, old: str, new: str):
    path.write_text(path.read_text().replace(old, new, 1))


# each: what to break, then what the one line must say
BAD = {
    "table_missing": (lambda r, t, c: t.unlink(), ["data.table=", "does not exist", "list_attr_celeba.txt"], {}),
    "row_without_image": (lambda r, t, c: (r / "000003.jpg").unlink(),
                          ["lists 1 file not under data.root", "000003.jpg, line 5", "remove their rows"], {}),
    "image_without_row": (lambda r, t, c: (Image.new("L", (4, 4)).save(r / "a.png"),
                                           Image.new("L", (4, 4)).save(r / "b.png")),
                          ["2 images under data.root", "no row in data.table", "the first: a.png"], {}),
    "unknown_attribute": (lambda r, t, c: None, ["unknown attribute 'smiling'", "did you mean Smiling",
                                                 "has Smiling, Male"], {"data.attributes": "[smiling]"}),
    "row_too_short": (lambda r, t, c: _edit(t, "000004.jpg 1  1", "000004.jpg 1"),
                      ["line 6 (000004.jpg) has 1 value where", "names 2 attributes"], {}),
    "not_a_number": (lambda r, t, c: _edit(t, "000002.jpg 1", "000002.jpg yes"),
                     ["line 4 (000002.jpg)", "'yes' under Smiling is not a number"], {}),
    "caption_of_no_image": (lambda r, t, c: c.write_text(c.read_text() + "999999.jpg,nobody\n"),
                            ["captions 1 file that data.table does not list", "999999.jpg, line 18"], {}),
    "image_without_caption": (lambda r, t, c: c.write_text("\n".join(c.read_text().splitlines()[:-2]) + "\n"),
                              ["1 image of data.root", "has no caption", "the first: 000008.jpg"], {}),
    "empty_folder": (lambda r, t, c: [p.unlink() for p in r.iterdir()], ["holds no images", "point data.root at the folder"], {}),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_input_is_one_line_through_gan_train(tmp_path, case):
    images, table = celeba(tmp_path)
    caps = captions(tmp_path)
    breaks, needles, extra = BAD[case]
    breaks(images, table, caps)
    proc = gan("train", "data=attribute_folder", f"data.root={images}", f"data.table={table}", f"data.captions={caps}",
               "data.num_workers=0", *(f"{k}={v}" for k, v in extra.items()), *TINY_MODEL, cwd=tmp_path)
    one_line_error(proc, *needles)


def test_a_caption_csv_without_header_is_named(tmp_path):
    images, table = celeba(tmp_path)
    caps = captions(tmp_path)
    caps.write_text(caps.read_text().split("\n", 1)[1])
    with pytest.raises(UserError, match="has no header.*add the line file,caption"):
        load(images, table, captions=str(caps))


@pytest.mark.parametrize("row, bad", [("x.png,1 2,", "'1 2' under a"), ("x.png,1,1abc", "'1abc' under b"),
                                      ("x.png,inf,1", "'inf' under a")])
def test_a_value_is_one_finite_number_never_split_or_shifted(tmp_path, row, bad):
    (tmp_path / "t.csv").write_text(f"file,a,b\n{row}\n")
    with pytest.raises(UserError, match=f"line 2 \\(x.png\\): {bad} is not a number"):
        attribute_folder.read_table(str(tmp_path / "t.csv"))
