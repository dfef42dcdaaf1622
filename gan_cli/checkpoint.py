"""Self-describing checkpoints: weights, optimiser states, step, RNG states, the fixed noise and the
resolved config that built the models, so `gan sample` and `resume=` need nothing but the path.

Everything inside is a tensor or a plain Python container, so loading uses `weights_only=True`: a
checkpoint from a stranger is data, never code.

The schema's keys are spelled here only: `Saved` names what the commands read (step, data shape,
scale, classes, config) and `load_generator` rebuilds G.
"""

from __future__ import annotations

import pickle
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gan_cli import targets
from gan_cli.modality import Modality
from gan_cli.modality import of as modality_of
from gan_cli.files import atomic_write, write_tensors
from gan_cli.errors import UserError, first_line

FORMAT = "gan-cli/1"


# What every gan-cli checkpoint holds (Trainer.state_dict), and the type each entry must have: a file with
# the marker but a missing or mistyped entry is refused in one line instead of failing deep in a command.
_SCHEMA: dict[str, tuple[type, ...]] = {
    "config": (dict,), "step": (int,), "data_position": (int,), "models": (dict,), "optimizers": (dict,),
    "rng": (dict,), "fixed": (dict,), "data": (dict,), "ema": (dict, type(None)),
}
_NESTED: dict[str, dict[str, tuple[type, ...]]] = {
    "models": {"G": (dict,)},  # every command needs G; the others are the algorithm's own (D, or more)
    "data": {"shape": (list, tuple), "scale": (int, float)},
    "fixed": {"z": (torch.Tensor,)},
    "rng": {"torch": (torch.Tensor,), "z": (torch.Tensor,)},
}


def save(path: Path, state: dict[str, Any]) -> None:
    """Write atomically: a crash mid-write leaves the previous file intact, never a truncated one, and a
    failed write (disk full, file size limit) leaves no partial file behind."""
    write_tensors(path, {"format": FORMAT, **state})


def copy(source: Path, path: Path) -> None:
    """Another name for a saved checkpoint (last.pt beside step_N.pt), atomic like save."""
    with atomic_write(path) as tmp:
        shutil.copyfile(source, tmp)


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


def is_checkpoint(path: Path) -> bool:
    """Whether path is a gan-cli checkpoint: a torch zip file whose data-only load has the format marker.
    Cheap: a file that does not start like a zip is not read further, and the tensors are mapped, not read."""
    try:
        with path.open("rb") as f:
            if f.read(4) != b"PK\x03\x04":
                return False
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - a file torch cannot read as data is not one of ours
        return False
    return isinstance(state, dict) and state.get("format") == FORMAT


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
        if key in ("models", "optimizers"):  # one state dict per named network or optimiser
            for name, entry in value.items():
                refuse(f"{key}.{name}", (dict,), entry)
    if "algorithm" in state:  # the algorithm's own state (BEGAN's k); absent in checkpoints from before it
        refuse("algorithm", (dict,), state["algorithm"])
    shapes = {"data shape": state["data"]["shape"]}
    if state["data"].get("input_shape") is not None:  # a translation's source images (pix2pix, CycleGAN)
        refuse("data.input_shape", (list, tuple), state["data"]["input_shape"])
        shapes["input shape"] = state["data"]["input_shape"]
    bad = [f"{what} {shape}" for what, shape in shapes.items()
           if not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in shape)]
    if state["step"] < 0 or bad:
        raise UserError(f"checkpoint={path} is damaged: " + ", ".join([f"step {state['step']}", *bad]))


_ABSENT = object()
_KINDS = {dict: "a mapping", list: "a list", tuple: "a list", int: "an integer", float: "a number",
          torch.Tensor: "a tensor", type(None): "null"}


def load_weights(module: nn.Module, weights: dict[str, torch.Tensor], path: str | Path, name: str) -> None:
    try:
        module.load_state_dict(weights)
    except RuntimeError as e:
        raise UserError(f"checkpoint={path} was written by a different {name} than the config builds "
                        f"({first_line(e)}); keep model.* as the run had it") from None



# -- reading one, for the commands ---------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Saved:
    """A loaded checkpoint as the commands read it. The schema's keys are spelled here and in load_generator
    only, so a command asks for `.step` or `.shape`, never for state["data"]["shape"]."""

    state: dict[str, Any]  # what load returns
    path: str | Path  # as the user gave it: messages name it so

    @classmethod
    def load(cls, path: str | Path, trust: Any = ()) -> "Saved":
        return cls(load(path, trust=trust), path)

    @property
    def step(self) -> int:
        return self.state["step"]

    @property
    def config(self) -> dict[str, Any]:
        """The resolved config that built the models (its trust= the command line's, see load)."""
        return self.state["config"]

    @property
    def shape(self) -> tuple[int, ...]:
        """One sample's shape: (C, H, W) for images, (2,) for 2-D points."""
        return tuple(self.state["data"]["shape"])

    @property
    def scale(self) -> float:
        """The data's units per unit of G's output (2-D points; 1 for images)."""
        return self.state["data"]["scale"]

    @property
    def modality(self) -> Modality:
        return modality_of(self.shape)

    @property
    def num_classes(self) -> int | None:
        """The classes a conditional G takes; None for an unconditional one."""
        return self.state["data"].get("num_classes")

    @property
    def input_shape(self) -> tuple[int, ...] | None:
        """The source images' shape of a translation model (pix2pix, CycleGAN); None for a generator of noise."""
        shape = self.state["data"].get("input_shape")
        return None if shape is None else tuple(shape)

    @property
    def translates(self) -> bool:
        """Whether the generator translates images (takes an image, not z)."""
        return self.input_shape is not None

    def generator(self, device: torch.device, ema: bool = True, name: str = "G") -> nn.Module:
        return load_generator(self.state, self.path, device, ema, name)


def load_generator(state: dict[str, Any], path: str | Path, device: torch.device, ema: bool = True,
                   name: str = "G") -> nn.Module:
    """Rebuild a generator (G, or another of the algorithm's networks: CycleGAN's F) from the config inside
    the checkpoint and load its weights (G's EMA ones when kept), in eval mode on `device`. Its
    `num_classes` is set (not None) for a conditional generator."""
    from omegaconf import OmegaConf

    from gan_cli import build  # not at the top: build assembles the engine (loop, callbacks), which imports this

    cfg = OmegaConf.create(state["config"])
    data = state["data"]
    G = build.generator(cfg, tuple(data["shape"]), data.get("num_classes"), data.get("input_shape"), name)
    if name not in state["models"]:
        raise UserError(f"checkpoint={path} is damaged or incomplete: it has no weights of network {name}")
    weights = state["models"][name]
    if ema and name == "G" and state.get("ema") is not None:  # an AveragedModel's state: module.* plus a counter
        weights = {k.removeprefix("module."): v for k, v in state["ema"].items() if k.startswith("module.")}
    load_weights(G, weights, path, "generator")
    return G.to(device).eval()
