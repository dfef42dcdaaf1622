"""Self-describing checkpoints: weights, optimiser states, step, RNG states, the fixed noise and the
resolved config that built the models, so `gan sample` and `resume=` need nothing but the path.

Everything inside is a tensor or a plain Python container, so loading uses `weights_only=True`: a
checkpoint from a stranger is data, never code.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import shutil
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gan_cli import targets
from gan_cli.errors import UserError, first_line

FORMAT = "gan-cli/1"


class WriteError(UserError):
    """A checkpoint could not be written (disk full, file size limit, permissions); nothing was replaced."""

# What every gan-cli checkpoint holds (Trainer.state_dict), and the type each entry must have: a file with
# the marker but a missing or mistyped entry is refused in one line instead of failing deep in a command.
_SCHEMA: dict[str, tuple[type, ...]] = {
    "config": (dict,), "step": (int,), "data_position": (int,), "models": (dict,), "optimizers": (dict,),
    "rng": (dict,), "fixed": (dict,), "data": (dict,), "ema": (dict, type(None)),
}
_NESTED: dict[str, dict[str, tuple[type, ...]]] = {
    "models": {"G": (dict,), "D": (dict,)},
    "optimizers": {"G": (dict,), "D": (dict,)},
    "data": {"shape": (list, tuple), "scale": (int, float)},
    "fixed": {"z": (torch.Tensor,)},
    "rng": {"torch": (torch.Tensor,), "z": (torch.Tensor,)},
}


def save(path: Path, state: dict[str, Any]) -> None:
    """Write atomically: a crash mid-write leaves the previous file intact, never a truncated one, and a
    failed write (disk full, file size limit) leaves no partial file behind."""
    with _atomic(path) as tmp, tmp.open("wb") as f:
        sink = _Sink(f)
        try:
            torch.save({"format": FORMAT, **state}, sink)
        except RuntimeError:
            if sink.error is not None:
                raise sink.error from None
            raise
        f.flush()
        os.fsync(f.fileno())


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


def copy(source: Path, path: Path) -> None:
    """Another name for a saved checkpoint (last.pt beside step_N.pt), atomic like save."""
    with _atomic(path) as tmp:
        shutil.copyfile(source, tmp)


def partial_files(directory: Path) -> list[Path]:
    """What a process killed while writing leaves: `.<name>.tmp` files of _atomic."""
    return sorted(directory.glob(".*.tmp")) if directory.is_dir() else []


@contextlib.contextmanager
def _atomic(path: Path):
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        os.replace(tmp, path)
    except (OSError, RuntimeError) as e:  # torch.save reports a failed write as a RuntimeError
        tmp.unlink(missing_ok=True)
        reason = e.strerror if isinstance(e, OSError) and e.strerror else first_line(e)
        raise WriteError(f"could not write {path} ({reason}); the file that was there is untouched and no partial "
                        f"file is left: free disk space or choose another hydra.run.dir") from None
    except BaseException:  # Ctrl-C or SIGTERM mid-write: the loop saves again; leave no partial file behind
        tmp.unlink(missing_ok=True)
        raise


def load(path: str | Path, map_location: str | torch.device = "cpu", trust: Any = ()) -> dict[str, Any]:
    """A checkpoint's contents, refused in one line unless it is data only: weights_only unpickling, every
    entry present with its type, and a config naming only gan-cli's components or what `trust` (this
    command line's trust=, never the file's) allows. The config's own trust= is replaced by `trust`."""
    p = Path(path).expanduser()
    if not p.exists():
        raise UserError(f"checkpoint={path} does not exist; runs keep theirs in outputs/<task>/<date>/<time>/checkpoints/")
    if p.is_dir():
        raise UserError(f"checkpoint={path} is a directory; give the .pt file inside it, e.g. {p}/checkpoints/last.pt")
    if not p.is_file():
        raise UserError(f"checkpoint={path} is not a regular file (a device or a pipe); give a .pt file")
    try:
        with warnings.catch_warnings():  # torch's note on a stranger's pickle protocol: noise before our verdict
            warnings.simplefilter("ignore")
            state = torch.load(p, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        if "Weights only load failed" not in str(e):
            raise UserError(f"checkpoint={path} is unreadable: not a PyTorch file ({first_line(e)})") from None
        # the safe unpickler met code (a class or function to call), not only tensors and containers
        culprit = next((ln.strip() for ln in str(e).splitlines() if "Unsupported global" in ln), "code")
        raise UserError(f"checkpoint={path} holds more than weights and was refused for safety "
                        f"({culprit})") from None
    except Exception as e:  # noqa: BLE001 - zip, EOF, key and OS errors all mean a damaged file
        raise UserError(f"checkpoint={path} is unreadable: truncated or not a PyTorch file "
                        f"({type(e).__name__}: {first_line(e)})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise UserError(f"checkpoint={path} is not a gan-cli checkpoint (no '{FORMAT}' marker)")
    _check_schema(state, path)
    source = f"checkpoint={path}"
    targets.check_saved(state["config"], source)
    targets.check(state["config"], trust, source)
    state["config"]["trust"] = [trust] if isinstance(trust, str) else [str(t) for t in (trust or [])]
    return state


def _check_schema(state: dict[str, Any], path: str | Path) -> None:
    def refuse(key: str, want: tuple[type, ...], value: Any) -> None:
        if value is _ABSENT:
            raise UserError(f"checkpoint={path} is damaged or incomplete: it has no '{key}'")
        if not isinstance(value, want) or isinstance(value, bool):
            raise UserError(f"checkpoint={path} is damaged: '{key}' is a {type(value).__name__}, "
                            f"not {' or '.join(dict.fromkeys(_KINDS[t] for t in want))}")

    for key, want in _SCHEMA.items():
        value = state.get(key, _ABSENT)
        refuse(key, want, value)
        for sub, sub_want in _NESTED.get(key, {}).items():
            refuse(f"{key}.{sub}", sub_want, value.get(sub, _ABSENT))
    if state["step"] < 0 or not all(isinstance(n, int) and n > 0 for n in state["data"]["shape"]):
        raise UserError(f"checkpoint={path} is damaged: step {state['step']}, data shape {state['data']['shape']}")


_ABSENT = object()
_KINDS = {dict: "a mapping", list: "a list", tuple: "a list", int: "an integer", float: "a number",
          torch.Tensor: "a tensor", type(None): "null"}


def load_weights(module: nn.Module, weights: dict[str, torch.Tensor], path: str | Path, name: str) -> None:
    try:
        module.load_state_dict(weights)
    except RuntimeError as e:
        raise UserError(f"checkpoint={path} was written by a different {name} than the config builds "
                        f"({first_line(e)}); keep model.* as the run had it") from None

