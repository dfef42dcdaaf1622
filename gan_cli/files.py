"""Writing files so that nothing is lost: every file the project writes (checkpoints, pictures, records,
caches, prepared data) goes through `atomic_write`, so a reader sees the old file or the new one, never
half of either, and a failed write is one line naming the path (WriteError)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import torch

from gan_cli.errors import UserError, first_line


class WriteError(UserError):
    """A file could not be written (disk full, file size limit, permissions); nothing was replaced."""


FIX = "free disk space or choose another hydra.run.dir"  # what a failed write asks of the user, unless told


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_MODE = 0o666 & ~_umask()  # what open() would give a new file: mkstemp's own 0600 would hide results from others


@contextlib.contextmanager
def atomic_write(path: Path, fix: str = FIX) -> Iterator[Path]:
    """Yields a temporary name (`.<name>.<random>.tmp` beside `path`, its folder made) to write in full; on
    leaving, it replaces `path` at once, so a reader sees the old file or the new one, never half of
    either. A failed write (disk full, file size limit, permissions) removes the temporary file and
    raises WriteError naming `path`, ending with `fix`, what the user can do about it.

    The temporary file is created new (mkstemp: O_EXCL, never through a symlink): a fixed name would
    write through whatever a stranger left there, `.s.png.tmp -> ~/thesis.tex` included."""
    path = Path(path)
    tmp: Path | None = None
    try:
        tmp = temp_beside(path)
        yield tmp
        os.replace(tmp, path)
    except (OSError, RuntimeError) as e:  # torch.save reports a failed write as a RuntimeError
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        reason = e.strerror if isinstance(e, OSError) and e.strerror else first_line(e)
        raise WriteError(f"could not write {path} ({reason}); the file that was there is untouched and no partial "
                        f"file is left: {fix}") from None
    except BaseException:  # Ctrl-C or SIGTERM mid-write: the loop saves again; leave no partial file behind
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise


def temp_beside(path: Path) -> Path:
    """A new empty file `.<name>.<random>.tmp` beside `path` (its folder made), with the mode open() would
    give it: where atomic_write, or a writer that publishes the file its own way, writes in full."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        os.chmod(name, _MODE)
    except OSError:
        os.unlink(name)
        raise
    return Path(name)


def write_text(path: Path, text: str, fix: str = FIX) -> Path:
    """A text file (JSON, HTML), written by atomic_write."""
    with atomic_write(path, fix) as tmp:
        tmp.write_text(text)
    return path


def write_tensors(path: Path, obj: Any, fix: str = FIX) -> Path:
    """torch.save(obj) by atomic_write, flushed to the disk before it replaces `path`."""
    with atomic_write(path, fix) as tmp, tmp.open("wb") as f:
        sink = _Sink(f)
        try:
            torch.save(obj, sink)
        except RuntimeError:
            if sink.error is not None:
                raise sink.error from None
            raise
        f.flush()
        os.fsync(f.fileno())
    return path


class _Sink:
    """The file torch.save writes to. torch's zip writer swallows the OSError of a failed write and then
    reports only a position mismatch; this keeps the error (EFBIG, ENOSPC) to name it."""

    def __init__(self, f):
        self.f, self.error = f, None

    def write(self, data) -> int:
        try:
            return self.f.write(data)
        except OSError as e:
            self.error = self.error or e
            raise

    def flush(self) -> None:
        self.f.flush()


def partial_files(directory: Path) -> list[Path]:
    """What a process killed while writing leaves: `.<name>.<random>.tmp` files of atomic_write (and the
    `.<name>.tmp` of releases before it)."""
    return sorted(directory.glob(".*.tmp")) if directory.is_dir() else []




def fresh_dir(path: Path, owner: str) -> Path:
    """An empty directory at `path` for a job of `owner` (a bench script) to run in. A directory left by an
    earlier, stopped job of the same owner (it holds the owner's mark) is removed first; any other
    existing directory is refused, since its files are not the job's to delete."""
    import shutil

    mark = path / f".made-by-{owner}"
    if path.exists():
        if not mark.is_file():
            raise UserError(f"{path} exists and was not made by {owner}: choose another results folder")
        shutil.rmtree(path)
    path.mkdir(parents=True)
    mark.touch()
    return path
