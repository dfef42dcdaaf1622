"""One module per subcommand, each a plain `run(cfg, run_dir)` that tests can call without Hydra."""

from __future__ import annotations

from pathlib import Path


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
