"""The two kinds of data source: a tensor held in memory (on the training device), and a torch Dataset
read through a DataLoader for collections too large to hold."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch import Tensor

from gan_cli import modality
from gan_cli.attributes.table import Attributes
from gan_cli.data.batch import Batch
from gan_cli.errors import UserError


def epoch_order(n: int, seed: int, epoch: int) -> Tensor:
    """The sample order of one epoch: a function of (seed, epoch) only, so a resumed run sees the same
    batches as an uninterrupted one without saving any sampler state."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g)


def to_unit_range(x: Tensor) -> Tensor:
    """uint8 pixels [0, 255] -> float [-1, 1]; float data is already in [-1, 1]."""
    return x.float().div_(127.5).sub_(1.0) if x.dtype == torch.uint8 else x


def batches_per_epoch(n: int, batch_size: int, name: str) -> int:
    if n < batch_size:
        raise UserError(f"data={name} has {n} samples, fewer than train.batch_size={batch_size}; "
                        f"lower train.batch_size")
    return n // batch_size  # the last incomplete batch is dropped, as BatchNorm wants equal batches


class TensorData:
    """A whole data set as one tensor: uint8 images (N, C, H, W) or float vectors (N, D) in [-1, 1].

    Held on the training device and indexed per batch: no workers, no host round trips (a subclass may hold
    it elsewhere: held_on)."""

    centers: Tensor | None = None  # no known modes (toy.Mixture has them)
    std: float | None = None

    def __init__(self, name: str, samples: Tensor, labels: Tensor | None = None,
                 num_classes: int | None = None, scale: float = 1.0, attributes: Attributes | None = None):
        if len(samples) == 0:
            raise UserError(f"data={name} holds no samples")
        self.name = name
        self.samples = samples
        self.labels = labels
        self.num_classes = num_classes
        self.scale = scale  # multiply samples by this to get the data's own units (toy mixtures)
        self.attributes = attributes  # measured attributes of every sample (data.attributes), or None

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.samples.shape[1:])

    @property
    def modality(self) -> modality.Modality:
        return modality.of(self.shape)

    def __len__(self) -> int:
        return len(self.samples)

    def batches(self, batch_size: int, device: torch.device, seed: int, start: int = 0) -> Iterator[Batch]:
        per_epoch = batches_per_epoch(len(self), batch_size, self.name)
        samples = self.held_on(device)
        held = samples.device  # the training device, but for a set too large for it (held_on)
        labels = None if self.labels is None else self.labels.to(held)
        binary = None if self.attributes is None else self.attributes.binary.to(held)
        epoch, k = divmod(start, per_epoch)
        while True:
            order = epoch_order(len(self), seed, epoch).to(held)
            for i in range(k, per_epoch):
                idx = order[i * batch_size:(i + 1) * batch_size]
                yield Batch(to_unit_range(samples[idx].to(device)),
                            None if labels is None else labels[idx].to(device),
                            attributes=None if binary is None else binary[idx].to(device))
            epoch, k = epoch + 1, 0

    def held_on(self, device: torch.device) -> Tensor:
        """The samples where batches index them: on the training device (data=folder's cache may keep a set
        too large for a GPU on the host)."""
        return self.samples.to(device)

    def first(self, n: int) -> Tensor:
        return to_unit_range(self.samples[:n])

    def draw(self, n: int, seed: int) -> Tensor:
        """n samples in [-1, 1] drawn without replacement, the same for the same seed: a reference set."""
        idx = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))[:n]
        return to_unit_range(self.samples[idx])


class LoaderData:
    """A torch Dataset of uint8 CHW tensors, streamed through a DataLoader with workers."""

    centers: Tensor | None = None  # no known modes
    std: float | None = None
    attributes: Attributes | None = None  # as TensorData's (data=attribute_folder sets them)

    def __init__(self, name: str, dataset: torch.utils.data.Dataset, shape: Sequence[int],
                 num_workers: int = 2, num_classes: int | None = None):
        if len(dataset) == 0:
            raise UserError(f"data={name} holds no samples")
        self.name = name
        self.dataset = dataset
        self._shape = tuple(shape)
        self.num_workers = num_workers
        self.num_classes = num_classes
        self.scale = 1.0

    @property
    def shape(self) -> tuple[int, ...]:
        return self._shape

    @property
    def modality(self) -> modality.Modality:
        return modality.of(self._shape)

    def __len__(self) -> int:
        return len(self.dataset)

    def batches(self, batch_size: int, device: torch.device, seed: int, start: int = 0) -> Iterator[Batch]:
        pin = device.type == "cuda"
        for _, x, y in self.loaded(batch_size, seed, start, pin):
            yield Batch(to_unit_range(x.to(device, non_blocking=pin)), y.to(device) if self.num_classes else None)

    def loaded(self, batch_size: int, seed: int, start: int, pin: bool) -> Iterator[tuple[int, Tensor, Tensor]]:
        """(epoch, x, y) of batch `start` onwards, as the DataLoader collates the dataset's pairs, on the host:
        a source whose dataset returns more than a label in y (attribute_folder: the file's index) builds
        its own Batch from them."""
        per_epoch = batches_per_epoch(len(self), batch_size, self.name)
        epoch, k = divmod(start, per_epoch)
        while True:
            order = epoch_order(len(self), seed, epoch)[k * batch_size:per_epoch * batch_size].tolist()
            loader = torch.utils.data.DataLoader(
                self.dataset, batch_size=batch_size, sampler=order, num_workers=self.num_workers,
                pin_memory=pin, drop_last=True, persistent_workers=False)
            try:
                for x, y in loader:
                    yield epoch, x, y
            except UserError as e:
                raise UserError(self._worker_message(e)) from None
            epoch, k = epoch + 1, 0

    def first(self, n: int) -> Tensor:
        return to_unit_range(torch.stack([self.dataset[i][0] for i in range(min(n, len(self)))]))

    def draw(self, n: int, seed: int) -> Tensor:
        """A reference set from a folder streamed from disk: its first n samples (the seed is unused)."""
        return self.first(n)

    @staticmethod
    def _worker_message(e: UserError) -> str:
        """A UserError raised in a DataLoader worker comes back with the worker's traceback as its text
        ("Caught UserError in DataLoader worker process 0. Original Traceback ... UserError: <message>"):
        the user gets only the one line the worker meant."""
        text = str(e)
        if not text.startswith(f"Caught {UserError.__name__} "):
            return text
        return text.rstrip().rsplit(f"{UserError.__name__}: ", 1)[-1]
