"""Self-describing checkpoints: weights, optimiser states, step, RNG states, the fixed noise and the
resolved config that built the models, so `gan sample` and `resume=` need nothing but the path.

Everything inside is a tensor or a plain Python container, so loading uses `weights_only=True`: a
checkpoint from a stranger is data, never code.
"""

from __future__ import annotations

import os
import pickle
import shutil
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gan_cli.errors import UserError, first_line

FORMAT = "gan-cli/1"


def save(path: Path, state: dict[str, Any]) -> None:
    """Write atomically: a crash mid-write leaves the previous file intact, never a truncated one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as f:
        torch.save({"format": FORMAT, **state}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def copy(source: Path, path: Path) -> None:
    """Another name for a saved checkpoint (last.pt beside step_N.pt), atomic like save."""
    tmp = path.with_name(f".{path.name}.tmp")
    shutil.copyfile(source, tmp)
    os.replace(tmp, path)


def load(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    p = Path(path).expanduser()
    if not p.exists():
        raise UserError(f"checkpoint={path} does not exist; runs keep theirs in outputs/<task>/<date>/<time>/checkpoints/")
    if not p.is_file():
        raise UserError(f"checkpoint={path} is a directory; give the .pt file inside it, e.g. {p}/checkpoints/last.pt")
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
    return state


def load_weights(module: nn.Module, weights: dict[str, torch.Tensor], path: str | Path, name: str) -> None:
    try:
        module.load_state_dict(weights)
    except RuntimeError as e:
        raise UserError(f"checkpoint={path} was written by a different {name} than the config builds "
                        f"({first_line(e)}); keep model.* as the run had it") from None

