"""A user's folder of images with a table of attributes per file (CelebA, or one's own), and optional
captions: data=attribute_folder. Each batch carries the chosen attributes binarised, as data=mnist's
Morpho-MNIST measures do, so AttGAN and text-to-image need not know which data they came from.

The table, in either layout, told apart by its first line:
- a CSV with a header: `file,attr1,attr2,...` (the first column's name is free; tabs also separate);
- CelebA's list_attr_celeba.txt: the image count, then the attribute names, then one whitespace-separated
  row per image (`000001.jpg -1 1 1 ...`).
A column whose values are all -1/1 or all 0/1 is binary as given (its threshold 0 or 0.5); any other is
continuous and binarised at its median, or at data.thresholds.

A row names a file by its path under data.root (`000001.jpg`, or `sub/x.png` for nested folders). When no
file has that exact path, one with the same path but another image extension answers: CelebA's PNG
copies keep the `.jpg` names of its table. The table and the folder must match: a row without its image,
or an image without a row, is a one-line error, since either means the table and the folder are not the
pair the user thinks. Hidden files (macOS's `._000001.jpg`) are not images here.

Pixels are read as data=folder reads them (folder.ImageFiles): the largest centred square (178x178 of
CelebA's aligned 178x218 faces, the crop of StarGAN and of PyTorch's DCGAN tutorial), resized to
data.resolution. A file whose header does not read is left out with a warning, its row with it.

Captions (data.captions, a CSV `file,caption` with a header, several rows per file allowed): every image
needs at least one. Each batch carries one caption per image in Batch.text, drawn afresh each epoch from a
generator seeded by (seed, epoch), so a resumed run draws what a straight one does.
"""

from __future__ import annotations

import csv
import difflib
import logging
import os
import warnings
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from gan_cli.attributes.table import Attributes
from gan_cli.data import folder
from gan_cli.data.batch import Batch
from gan_cli.data.source import LoaderData, to_unit_range
from gan_cli.errors import UserError

log = logging.getLogger(__name__)

LAYOUTS = ("a CSV with a header (file,attr1,attr2,...) or CelebA's list_attr_celeba.txt (the image count, the "
           "attribute names, then rows like `000001.jpg -1 1 ...`)")
_CAPTION_STREAM = 1 << 62  # keeps the caption draws' generator apart from epoch_order's for any seed below 2^42


def load(root: str, table: str, attributes: Sequence[str] | str | None = None,
         thresholds: Mapping[str, float] | None = None, captions: str | None = None, resolution: int = 64,
         channels: int = 3, num_workers: int = 2) -> AttributeFolder:
    """root: the folder of images; table: the attribute table (see the module); attributes: the columns to
    keep, in this order (None or []: all); thresholds: name -> value where a column is binarised; captions:
    a CSV of captions per file, or None."""
    files = [p for p in folder.image_files(root, resolution, channels, num_workers, "attribute_folder")
             if not p.name.startswith(".")]
    parsed = read_table(table)
    names = chosen(parsed, attributes, table)
    rows = match_rows(parsed, files, Path(root).expanduser(), root, table)
    texts = read_captions(captions, [files[i] for i in rows], Path(root).expanduser(), root) if captions else None
    kept = set(folder.readable([files[i] for i in rows], root))
    keep = [k for k, i in enumerate(rows) if files[i] in kept]
    columns = [parsed.names.index(n) for n in names]
    values = parsed.values[keep][:, columns]
    found = Attributes(names, values, cut(values, names, thresholds))
    log.info("data=attribute_folder: %d images, %s", len(keep), ", ".join(
        f"{n} above {t:g} in {p:.0%}" for n, t, p in zip(names, found.thresholds.tolist(), found.binary.mean(0).tolist())))
    return AttributeFolder(FileImages([files[rows[k]] for k in keep], resolution, channels),
                           (channels, resolution, resolution), num_workers, found,
                           None if texts is None else [texts[k] for k in keep])


class FileImages(folder.ImageFiles):
    """data=folder's images, returning each with the index of the file its pixels came from (a stand-in's
    when the asked file does not decode), so its attributes and captions are that file's."""

    def __getitem__(self, i: int):
        return self.decoded(i)


class AttributeFolder(LoaderData):
    """Images streamed from disk, their Attributes (self.attributes), and their captions (self.captions:
    per image a tuple of one or more strings, or None), all in the same order."""

    def __init__(self, dataset: FileImages, shape: Sequence[int], num_workers: int, attributes: Attributes,
                 captions: list[tuple[str, ...]] | None = None):
        super().__init__("attribute_folder", dataset, shape, num_workers=num_workers)
        self.attributes = attributes
        self.captions = captions
        self._binary = attributes.binary
        self._counts = None if captions is None else torch.tensor([len(c) for c in captions])

    def batches(self, batch_size: int, device: torch.device, seed: int, start: int = 0) -> Iterator[Batch]:
        pin = device.type == "cuda"
        drawn = (None, None)  # (epoch, the caption index of every image in that epoch)
        for epoch, x, index in self.loaded(batch_size, seed, start, pin):
            text = None
            if self.captions is not None:
                if drawn[0] != epoch:
                    drawn = epoch, self.caption_draw(seed, epoch)
                text = [self.captions[j][drawn[1][j]] for j in index.tolist()]
            yield Batch(to_unit_range(x.to(device, non_blocking=pin)), attributes=self._binary[index].to(device),
                        text=text)

    def caption_draw(self, seed: int, epoch: int) -> list[int]:
        """Which of its captions each image shows in this epoch: a function of (seed, epoch) only."""
        g = torch.Generator().manual_seed((seed * 1_000_003 + epoch) ^ _CAPTION_STREAM)
        return (torch.rand(len(self._counts), generator=g) * self._counts).long().clamp_max(self._counts - 1).tolist()


@dataclass
class Table:
    names: tuple[str, ...]  # the attribute columns
    files: list[str]  # each row's file as written
    lines: list[int]  # each row's line in the file, for messages
    values: Tensor  # (rows, columns) float32


def read_table(table: str) -> Table:
    path = Path(table).expanduser()
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise UserError(f"data.table={table} {what}; point it at the attribute table of data.root: {LAYOUTS}")
    try:
        text = path.read_text(encoding="utf-8-sig")  # -sig: a spreadsheet's CSV often opens with a BOM
    except UnicodeDecodeError:
        raise UserError(f"data.table={table} is not a text file; expected {LAYOUTS}") from None
    lines = text.splitlines()
    first = next((k for k, line in enumerate(lines) if line.strip()), None)
    if first is None:
        raise UserError(f"data.table={table} is empty; expected {LAYOUTS}")
    head = lines[first].strip()
    if head.isdigit():
        return _read_celeba(table, lines, first)
    if "," in head or "\t" in head:
        return _read_csv(table, lines, first, "," if "," in head else "\t")
    raise UserError(f"data.table={table} is in neither layout (its first line is {head[:60]!r}); expected {LAYOUTS}")


def _read_celeba(table: str, lines: list[str], first: int) -> Table:
    count = int(lines[first])
    if first + 1 >= len(lines) or not lines[first + 1].split():
        raise UserError(f"data.table={table}: line {first + 2} should name the attributes, as list_attr_celeba.txt's "
                        f"second line does; the file is cut short")
    names = tuple(lines[first + 1].split())
    files, numbers, where = [], [], []
    for k in range(first + 2, len(lines)):
        fields = lines[k].split()
        if fields:
            files.append(fields[0])
            numbers.append(fields[1:])
            where.append(k + 1)
    if len(files) != count:
        log.warning("data.table=%s: its first line says %d images but it has %d rows; reading the rows",
                    table, count, len(files))
    return _table(table, names, files, numbers, where, split=True)


def _read_csv(table: str, lines: list[str], first: int, delimiter: str) -> Table:
    reader = csv.reader(lines[first:], delimiter=delimiter)
    header = [h.strip() for h in next(reader)]
    names = tuple(header[1:])
    if not names:
        raise UserError(f"data.table={table}: its header {delimiter.join(header)!r} names no attribute after the "
                        f"file column; the header is file,attr1,attr2,...")
    files, numbers, where = [], [], []
    for row in reader:
        if any(f.strip() for f in row):
            files.append(row[0].strip())
            numbers.append([f.strip() for f in row[1:]])
            where.append(first + reader.line_num)
    return _table(table, names, files, numbers, where)


def _table(table: str, names: tuple[str, ...], files: list[str], numbers: list[list[str]], where: list[int],
           split: bool = False) -> Table:
    """split: the fields came from str.split, so none is empty or holds a space."""
    import numpy as np

    blank = [n for n in names if not n]
    if blank or len(set(names)) != len(names):
        twice = blank[0] if blank else next(n for n in names if names.count(n) > 1)
        raise UserError(f"data.table={table}: its header names {'an empty attribute' if blank else repr(twice) + ' twice'}; "
                        f"give every attribute column its own name")
    if not files:
        raise UserError(f"data.table={table} has a header but no rows; add one row per image of data.root")
    for line, file, row in zip(where, files, numbers):
        if len(row) != len(names):
            raise UserError(f"data.table={table} line {line} ({file}) has {_count(row, 'value')} where the header "
                            f"names {_count(names, 'attribute')}; give every row one value per attribute")
    # One parse of all the text (a second for CelebA's 8 million values, against 5 for numpy's per-string
    # conversion). It stops short at the first value that is not a number, which the loop below then finds;
    # an empty CSV field or one with a space inside would shift the values, so those take the loop at once.
    joined = [" ".join(row) for row in numbers]
    values = np.empty(0)
    if split or all(text.split() == row for text, row in zip(joined, numbers)):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # older numpy warns where it stops short
                values = np.fromstring(" ".join(joined), sep=" ")
        except ValueError:  # newer numpy raises there
            pass
    if values.size != len(files) * len(names) or not np.isfinite(values).all():
        for line, file, row in zip(where, files, numbers):
            for name, field in zip(names, row):
                try:
                    ok = np.isfinite(float(field))
                except ValueError:
                    ok = False
                if not ok:
                    raise UserError(f"data.table={table} line {line} ({file}): {field!r} under {name} is not a "
                                    f"number; attributes are 0/1, -1/1 or finite numbers: fix the value or drop the row")
        values = np.array([[float(f) for f in row] for row in numbers])  # what numpy alone did not parse
    values = values.reshape(len(files), len(names))
    return Table(names, files, where, torch.from_numpy(values).float())


def chosen(parsed: Table, attributes: Sequence[str] | str | None, table: str) -> tuple[str, ...]:
    names = ([attributes] if isinstance(attributes, str) else list(attributes or [])) or list(parsed.names)
    for n in names:
        if n not in parsed.names:
            near = difflib.get_close_matches(str(n), parsed.names, n=1, cutoff=0.6)
            near = near or [m for m in parsed.names if m.lower() == str(n).lower()]
            hint = f" (did you mean {near[0]}?)" if near else ""
            raise UserError(f"data.attributes: unknown attribute {n!r}{hint}; data.table={table} has "
                            f"{', '.join(parsed.names)}")
    if len(set(names)) != len(names):
        raise UserError(f"data.attributes={names} names an attribute twice")
    return tuple(str(n) for n in names)


def cut(values: Tensor, names: tuple[str, ...], thresholds: Mapping[str, float] | None) -> Tensor:
    """Each column's threshold: data.thresholds' value; else 0 for -1/1 columns, 0.5 for 0/1 ones, the median
    for continuous ones."""
    thresholds = dict(thresholds or {})
    extra = [n for n in thresholds if n not in names]
    if extra:
        raise UserError(f"data.thresholds.{extra[0]} is not among the chosen attributes ({', '.join(names)}); "
                        f"remove it or add it to data.attributes")
    out = []
    for i, n in enumerate(names):
        column = values[:, i]
        if n in thresholds:
            try:
                out.append(float(thresholds[n]))
            except (TypeError, ValueError):
                raise UserError(f"data.thresholds.{n}={thresholds[n]} must be a number") from None
        elif set(column.unique().tolist()) <= {-1.0, 1.0}:
            out.append(0.0)
        elif set(column.unique().tolist()) <= {0.0, 1.0}:
            out.append(0.5)
        else:
            out.append(column.median().item())
    return torch.tensor(out, dtype=torch.float32)


def _finder(files: list[Path], path: Path):
    """name as a table writes it -> index into files, or None. A name without its exact file finds the one
    file with the same path and another extension (CelebA's PNG copies under its .jpg names)."""
    exact, stems = {}, defaultdict(list)
    prefix = f"{path}{os.sep}"
    for i, p in enumerate(files):
        text = str(p)  # slicing the string: relative_to took seconds on CelebA's 200k files
        key = text[len(prefix):].replace(os.sep, "/") if text.startswith(prefix) else p.relative_to(path).as_posix()
        exact[key] = i
        stems[_stem(key)].append(i)

    def find(name: str) -> int | None:
        name = name.replace("\\", "/").removeprefix("./")
        if name in exact:
            return exact[name]
        same = stems.get(_stem(name), [])
        return same[0] if len(same) == 1 else None

    return find


def _stem(key: str) -> str:
    base, ext = os.path.splitext(key)
    return base if ext.lower() in folder.EXTENSIONS else key


def match_rows(parsed: Table, files: list[Path], path: Path, root: str, table: str) -> list[int]:
    """The index into files of each row's image; refuses a table and a folder that do not match."""
    find = _finder(files, path)
    rows, missing, seen = [], [], {}
    for line, name in zip(parsed.lines, parsed.files):
        i = find(name)
        if i is None:
            missing.append((line, name))
        elif i in seen:
            raise UserError(f"data.table={table} lines {seen[i]} and {line} are both rows of {files[i]}; keep one row "
                            f"per image")
        else:
            seen[i] = line
            rows.append(i)
    unlisted = [p for i, p in enumerate(files) if i not in seen]
    problems = []
    if missing:
        line, name = missing[0]
        problems.append(f"data.table={table} lists {_count(missing, 'file')} not under data.root={root} (the first: "
                        f"{name}, line {line}): add the images or remove their rows")
    if unlisted:
        problems.append(f"{_count(unlisted, 'image')} under data.root={root} {'have' if len(unlisted) > 1 else 'has'} "
                        f"no row in data.table={table} (the first: {unlisted[0].relative_to(path).as_posix()}): add "
                        f"their rows or move them out of data.root")
    if problems:
        raise UserError("; and ".join(problems))
    return rows


def read_captions(captions: str, images: list[Path], path: Path, root: str) -> list[tuple[str, ...]]:
    """Each image's captions, in the order of `images`, from a CSV `file,caption` with a header."""
    source = Path(captions).expanduser()
    if not source.is_file():
        raise UserError(f"data.captions={captions} {'is a directory' if source.is_dir() else 'does not exist'}; "
                        f"point it at a CSV of captions (header file,caption; one row per caption), or set "
                        f"data.captions=null")
    try:
        lines = source.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError:
        raise UserError(f"data.captions={captions} is not a text file; expected a CSV file,caption") from None
    find = _finder(images, path)
    reader = csv.reader(lines)
    header = next(reader, None)
    if header is not None and header and find(header[0].strip()) is not None:
        raise UserError(f"data.captions={captions} has no header: its first line already names {header[0]}; add "
                        f"the line file,caption at the top")
    found: list[list[str]] = [[] for _ in images]
    stray = []
    for row in reader:
        if not any(f.strip() for f in row):
            continue
        # a caption's own unquoted commas split it into more fields: the file is the first, the rest is text
        name, text = row[0].strip(), ",".join(row[1:]).strip()
        if not text:
            raise UserError(f"data.captions={captions} line {reader.line_num} ({name}) has no caption; write "
                            f"file,caption on each line, or drop the line")
        i = find(name)
        if i is None:
            stray.append((reader.line_num, name))
        else:
            found[i].append(text)
    bare = [images[i] for i, texts in enumerate(found) if not texts]
    problems = []
    if stray:
        line, name = stray[0]
        problems.append(f"data.captions={captions} captions {_count(stray, 'file')} that data.table does not list "
                        f"under data.root={root} (the first: {name}, line {line}): fix the names or remove those lines")
    if bare:
        problems.append(f"{_count(bare, 'image')} of data.root={root} {'have' if len(bare) > 1 else 'has'} no caption "
                        f"in data.captions={captions} (the first: {bare[0].relative_to(path).as_posix()}): every image "
                        f"needs one or more")
    if problems:
        raise UserError("; and ".join(problems))
    return [tuple(texts) for texts in found]


def _count(items: Sequence, noun: str) -> str:
    return f"{len(items)} {noun}{'s' if len(items) != 1 else ''}"
