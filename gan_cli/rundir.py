"""Run directories: a fresh one for every run, a lock while a run uses one, and cleanup of only what
this process made.

Hydra names a run's directory by the second it started (outputs/train/<date>/<time>) and creates it
with exist_ok, so two runs started in the same second would share it, and a directory the user names
(hydra.run.dir=...) may hold their own files. This callback runs before Hydra writes anything:
- a timestamped name that is taken gets a suffix (_1, _2, ...), claimed with an atomic mkdir;
- a directory a live run holds (its `.gan.lock` names a running process) is refused;
- a directory that already holds another run's `.hydra` keeps it: Hydra's record is not rewritten;
- what was in the directory before is remembered, so that `discard_bare` removes only the bookkeeping
  this run added (`.hydra`, its log) and only directories this run created.
"""

from __future__ import annotations

import atexit
import errno
import os
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from gan_cli.errors import UserError

LOCK = ".gan.lock"


class Refused(BaseException):
    """A UserError raised inside a Hydra callback: Hydra turns a callback's Exception into a warning and
    goes on, so the error travels as a BaseException and cli.main unwraps it."""

    def __init__(self, error: UserError):
        super().__init__(error)
        self.error = error


@dataclass
class Claim:
    path: Path  # the directory, absolute
    created: Path | None  # the topmost directory this process created for it; None when it existed
    before: frozenset[str]  # names in it before this process wrote there
    locked: bool


_claims: dict[Path, Claim] = {}


class RunDirectory(Callback):
    """conf/*.yaml: hydra.callbacks.run_dir. Hydra calls these before it creates or writes the directory."""

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        _claim_dir(config.hydra.run, "hydra.run.dir", config)

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        _claim_dir(config.hydra.sweep, "hydra.sweep.dir", config)


def _claim_dir(node: DictConfig, key: str, config: DictConfig) -> None:
    try:
        raw = str(OmegaConf.to_container(node, resolve=False)["dir"])
        path = Path(str(node.dir)).expanduser().absolute()
        if "${now:" in raw and _is_main_rank():
            path, created = _fresh(path, key)
        else:
            created = _make(path, key)
        claim = claim_path(path, key, created)
    except UserError as e:
        raise Refused(e) from None
    with read_write(config.hydra), open_dict(config.hydra):
        node.dir = str(path)
        if (path / ".hydra").exists() and ".hydra" in claim.before and key == "hydra.run.dir":
            config.hydra.output_subdir = None  # another run's record: leave it as it is


def claim_path(path: Path, key: str, created: Path | None) -> Claim:
    """Take `path` for this process: check it is writable, lock it (unless another rank of a torchrun
    world holds it), and remember what it held."""
    path = path.absolute()
    if path in _claims:
        return _claims[path]
    if not os.access(path, os.W_OK | os.X_OK):
        raise UserError(f"{key}={path} is not writable; choose a directory you can write to")
    before = frozenset(p.name for p in path.iterdir())
    locked = _is_main_rank() and _lock(path, key)
    claim = _claims[path] = Claim(path, created, before, locked)
    return claim


def claim_job(run_dir: Path) -> Claim:
    """A job of a sweep: Hydra made its directory inside the claimed sweep directory. It is this process's
    own when its name was not in the sweep directory before the sweep began."""
    run_dir = run_dir.absolute()
    if run_dir in _claims:
        return _claims[run_dir]
    sweep = _claims.get(run_dir.parent)
    ours = sweep is not None and run_dir.name not in sweep.before
    claim = _claims[run_dir] = Claim(run_dir, run_dir if ours else None, frozenset() if ours else _everything(run_dir),
                                     _is_main_rank() and _lock(run_dir, "hydra.sweep.dir"))
    return claim


def discard_bare(path: Path) -> None:
    """After a run that left no results here (it failed, or wrote them beside what it read): remove the
    bookkeeping it added (Hydra's `.hydra`, its log, its lock) and the directories it created, when they
    hold nothing else. Anything that was there before, or that anything else put there, stays."""
    claim = _claims.get(path.absolute())
    if claim is None or not claim.path.is_dir():
        return
    added = {p.name for p in claim.path.iterdir()} - claim.before
    bookkeeping = {".hydra", "multirun.yaml", LOCK} | {n for n in added if n.endswith(".log")}
    if not added <= bookkeeping:
        return
    release(claim.path)
    for name in added - {LOCK}:
        target = claim.path / name
        shutil.rmtree(target, ignore_errors=True) if target.is_dir() else target.unlink(missing_ok=True)
    if claim.created is None:
        return
    for directory in [claim.path, *claim.path.parents]:
        try:
            directory.rmdir()  # only when empty
        except OSError:
            break
        if directory == claim.created:
            break


def release(path: Path) -> None:
    claim = _claims.get(path.absolute())
    if claim is not None and claim.locked:
        lock = claim.path / LOCK
        if _owner(lock) == _me():
            lock.unlink(missing_ok=True)
        claim.locked = False


def claims() -> list[Path]:
    return list(_claims)


@atexit.register
def release_all() -> None:
    """The end of a command: its locks released, its claims forgotten (a next command in the same process,
    as in the tests, starts afresh)."""
    for path in list(_claims):
        release(path)
    _claims.clear()


def owner_of(path: Path) -> str | None:
    """The live process that holds `path`, as 'pid N on HOST', or None."""
    text = _owner(path / LOCK)
    return text if text and _alive(text) and text != _me() else None


def _fresh(path: Path, key: str) -> tuple[Path, Path | None]:
    """`path`, or path_1, path_2, ... : the first that this process creates itself (mkdir is atomic)."""
    created = _make(path.parent, key)
    for i in range(1000):
        candidate = path if i == 0 else path.with_name(f"{path.name}_{i}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        except OSError as e:
            raise UserError(f"cannot create the directory {candidate} ({e.strerror}); choose another with "
                            f"{key}=...") from None
        return candidate, created or candidate
    raise UserError(f"{path}: 1000 runs started in the same second already hold its names")


def _make(path: Path, key: str) -> Path | None:
    """mkdir -p, returning the topmost directory it created (None when the path existed)."""
    missing = [p for p in [path, *path.parents] if not p.exists()]
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"{key}={path} cannot be created ({e.strerror}); choose a directory you can write to") from None
    if not path.is_dir():
        raise UserError(f"{key}={path} is a file, not a directory")
    return missing[-1] if missing else None


def _lock(path: Path, key: str) -> bool:
    lock = path / LOCK
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _owner(lock)
            if holder and _alive(holder):
                raise UserError(f"{key}={path} is in use by a running gan ({holder}); choose another directory, "
                                f"or wait until that run ends (if it is gone, delete {lock})") from None
            lock.unlink(missing_ok=True)  # left by a run that was killed: its process is gone
            continue
        except OSError as e:
            raise UserError(f"{key}={path} is not writable ({e.strerror}); choose a directory you can write to") from None
        with os.fdopen(fd, "w") as f:
            f.write(_me())
        return True
    raise UserError(f"{key}={path}: another run took its lock at the same moment; choose another directory")


def _me() -> str:
    return f"pid {os.getpid()} on {socket.gethostname()}"


def _owner(lock: Path) -> str | None:
    try:
        return lock.read_text().strip() or None
    except OSError:
        return None


def _alive(holder: str) -> bool:
    """Whether the process a lock names still runs. On another host it cannot be told: assume it does."""
    try:
        _, pid, _, host = holder.split(" ", 3)
        pid_number = int(pid)
    except ValueError:
        return False
    if host != socket.gethostname():
        return True
    try:
        os.kill(pid_number, 0)
    except OSError as e:
        return e.errno == errno.EPERM  # it exists, owned by someone else
    return True


def _is_main_rank() -> bool:
    """Under torchrun every rank runs this; rank 0 alone owns the run directory (gan_cli/distributed.py)."""
    return os.environ.get("RANK", "0") == "0"


def _everything(path: Path) -> frozenset[str]:
    return frozenset(p.name for p in path.iterdir()) if path.is_dir() else frozenset()
