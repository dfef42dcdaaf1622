"""Which `_target_` values a config may name before build.py instantiates it.

hydra.utils.instantiate imports and calls whatever dotted path a `_target_` holds, at any depth of the
tree. A checkpoint carries the config that built it, so without this check a stranger's checkpoint
(which loads with weights_only=True and so looks like data) could name `builtins.open`, `shutil.copyfile`
or `torch.load(..., weights_only=False)` and run them. The rule: a config may name only the components
gan-cli ships (every `_target_` in its conf/), plus what the user trusts on this command line
(`trust=[mypkg]`). Trust never comes from a checkpoint. The check reads strings only: nothing is
imported before it passes, since importing a module already runs its code.
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from gan_cli.errors import UserError

KEY = "_target_"
_DOTTED = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
_NEVER_SUGGEST = frozenset(sys.stdlib_module_names) | {"torch", "torchvision", "hydra", "omegaconf", "numpy", "gan_cli"}


@functools.cache
def shipped() -> frozenset[str]:
    """Every `_target_` in the project's own config files (Hydra's launcher plugins excepted: Hydra itself
    builds those, and a training config never holds them)."""
    from omegaconf import OmegaConf

    from gan_cli.paths import config_dir

    root = Path(config_dir())
    found: set[str] = set()
    for path in root.rglob("*.yaml"):
        if path.relative_to(root).parts[0] == "hydra":
            continue
        tree = OmegaConf.to_container(OmegaConf.load(path))
        if isinstance(tree, dict):
            tree.pop("hydra", None)  # Hydra's own callbacks: Hydra builds them, never build.py
        found.update(value for _, value in _targets(tree))
    return frozenset(v for v in found if isinstance(v, str))


def allowed(target: str, trust: Iterable[str] = ()) -> bool:
    if target in shipped():
        return True
    return any(target == t or target.startswith(f"{t}.") for t in trust if t)


def check(tree: Any, trust: Iterable[str] | None, source: str) -> None:
    """Refuse, in one line, a tree naming any `_target_` that is neither shipped nor trusted.

    `source` says where the tree came from ("checkpoint=PATH", "the command line"); `trust` is the
    command line's own `trust=` list, never one read from a file."""
    trust = [trust] if isinstance(trust, str) else [str(t) for t in (trust or [])]  # trust=mypkg means [mypkg]
    for t in trust:
        if not _DOTTED.fullmatch(t):
            raise UserError(f"trust=[{t}] is not a module name (dotted Python identifiers, e.g. mypkg.models)")
        if t.split(".", 1)[0] in _NEVER_SUGGEST:  # "run my checkpoint with trust=[builtins]" is an attack
            raise UserError(f"trust=[{t}]: trust is for modules of your own; the standard library, torch and "
                            f"gan-cli itself are never trusted, since a config naming them can run anything")
    for where, value in _targets(tree):
        if not isinstance(value, str) or not _DOTTED.fullmatch(value):
            raise UserError(f"{source}: {where or 'the config'}._target_ is not a dotted Python name "
                            f"({str(value)[:60]!r}); refused")
        if not allowed(value, trust):
            root = value.split(".", 1)[0]
            # never suggest trusting the standard library or torch: that is where the dangerous calls live
            hint = ("" if root in _NEVER_SUGGEST else
                    f"; if it is your own code, allow it with trust=[{root}] (README, Safety)")
            raise UserError(f"{source}: {where or 'the config'} names _target_={value}, which is not one of gan-cli's "
                            f"own components, so nothing was built or run{hint}")


def check_saved(tree: Any, source: str) -> None:
    """A config saved in a checkpoint was resolved when it was written: an interpolation in it did not
    come from gan-cli, and resolving it would read the environment or other files."""
    for where, value in _strings(tree, ""):
        if "${" in value:
            raise UserError(f"{source}: {where} holds an interpolation ({value[:60]}), which a saved config never "
                            f"does; the checkpoint was refused")


def _targets(tree: Any, where: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(tree, dict):
        if KEY in tree:
            yield where, tree[KEY]
        for key, value in tree.items():
            yield from _targets(value, f"{where}.{key}" if where else str(key))
    elif isinstance(tree, (list, tuple)):
        for i, value in enumerate(tree):
            yield from _targets(value, f"{where}[{i}]")


def _strings(tree: Any, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(tree, str):
        yield where or "the config", tree
    elif isinstance(tree, dict):
        for key, value in tree.items():
            yield from _strings(key, where)
            yield from _strings(value, f"{where}.{key}" if where else str(key))
    elif isinstance(tree, (list, tuple)):
        for i, value in enumerate(tree):
            yield from _strings(value, f"{where}[{i}]")
