"""One module per subcommand, each a plain `run(cfg, run_dir)` that tests can call without Hydra."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

Row = TypeVar("Row")


def hydra_context() -> tuple[dict[str, str], list[str]]:
    """The config group choices and the command line's overrides, when running under Hydra."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return {}, []
    hc = HydraConfig.get()
    choices = {k: v for k, v in hc.runtime.choices.items() if not k.startswith("hydra") and v is not None}
    return choices, list(hc.overrides.task)


def run_overrides(run_dir: Path) -> str:
    """The overrides a run was started with (Hydra's record), as one line: a sweep's distinguishing part."""
    from omegaconf import OmegaConf

    saved = run_dir / ".hydra" / "overrides.yaml"
    return " ".join(OmegaConf.load(saved)) if saved.is_file() else ""


def format_number(value) -> str:
    """A metric in a table: integers as they are, floats to 4 significant digits, a missing one as -."""
    if value is None:
        return "-"
    return str(value) if isinstance(value, int) else f"{value:.4g}"


# -- the table of a sweep's runs (gan eval, gan diagnose and gan report over a sweep) -------------------

@dataclass(frozen=True)
class Column:
    """A column of runs_table: its heading, its least width, its side ("<" left, ">" right) and how
    many characters of a cell (and of the heading) it shows, all when None."""

    title: str
    width: int = 0
    align: str = "<"
    cut: int | None = None

    def cell(self, value: Any, last: bool = False) -> str:
        text = value if isinstance(value, str) else format_number(value)
        text = text[:self.cut] if self.cut is not None else text
        return text if last and self.align == "<" else f"{text:{self.align}{self.width}}"  # no trailing blanks


def runs_table(order: str, columns: Sequence[Column], rows: Sequence[Sequence[Any]], heading: bool = True) -> str:
    """'<N> runs, <order>:', the columns' headings (unless heading=False), then a line per row; a cell is
    a string as it is, or a number by format_number; two spaces between columns."""
    def line(cells: Sequence[Any]) -> str:
        return "  ".join(c.cell(v, last=i == len(columns) - 1) for i, (c, v) in enumerate(zip(columns, cells)))

    lines = [f"{len(rows)} runs, {order}:"]
    if heading:
        lines.append(line([c.title for c in columns]))
    return "\n".join(lines + [line(r) for r in rows])


def sorted_by(key: str | None, lower_first: bool) -> str:
    """sorted_runs' order in runs_table's first line."""
    return f"sorted by {key} ({'lower' if lower_first else 'higher'} first)"


def sorted_runs(rows: Sequence[Row], value: Callable[[Row], Any], lower_first: bool) -> list[Row]:
    """rows by value(row), lower or higher first; a row without a finite number last, ties in their order."""
    def key(row: Row) -> tuple[bool, float]:
        v = value(row)
        finite = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        return (not finite, (v if lower_first else -v) if finite else 0.0)

    return sorted(rows, key=key)


def typed(cfg, schema: type):
    """cfg with the keys `schema` (a dataclass) names checked against their types, and converted as
    OmegaConf converts ('5' to 5); the first value that does not fit is refused in one line naming
    key=value and what it must be. Other keys (latent-arithmetic's groups) are left alone. A command
    calls this first, before it loads or writes anything; ranges are its own check."""
    import typing

    from omegaconf import OmegaConf, open_dict
    from omegaconf.errors import ValidationError

    from gan_cli.errors import UserError
    from gan_cli.typecheck import describe

    hints = typing.get_type_hints(schema)
    given = {k: cfg[k] for k in hints if k in cfg}

    def refuse(key: str, value) -> UserError:
        shown = _shown(OmegaConf.to_container(value) if OmegaConf.is_config(value) else value)
        return UserError(f"{key}={shown} must be {describe(hints[key])}")

    for key, value in given.items():  # OmegaConf takes 2, -1 and 'yes' as true: a switch is true or false
        if hints[key] in (bool, typing.Optional[bool]) and not isinstance(value, (bool, type(None))):
            raise refuse(key, value)
    try:
        checked = OmegaConf.merge(OmegaConf.structured(schema), given)
    except ValidationError as e:
        key = str(e.full_key).split(".")[0].split("[")[0]
        raise refuse(key, given.get(key, e.value)) from None
    out = cfg.copy()
    with open_dict(out):
        for key in given:
            out[key] = checked[key]
    return out


def _shown(value) -> str:
    """A value as typed on the command line: [1,2] and {a:1}, not [1, 2]; true, not True."""
    from gan_cli.typecheck import show

    if isinstance(value, (list, tuple)):
        return "[" + ",".join(map(_shown, value)) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{_shown(v)}" for k, v in value.items()) + "}"
    return show(value)


def check_seed(seed: int) -> None:
    """A seed that every z stream takes: latent.seeded_z seeds block b with seed * 1_000_003 + b (up to
    NOISE_STREAM), and torch takes seeds in [0, 2**64)."""
    from gan_cli.errors import UserError
    from gan_cli.latent import NOISE_STREAM

    top = (2**64 - 1 - NOISE_STREAM) // 1_000_003
    if not 0 <= seed <= top:
        raise UserError(f"seed={seed} must be between 0 and {top}")
