"""One module per subcommand, each a plain `run(cfg, run_dir)` that tests can call without Hydra."""

from __future__ import annotations


def hydra_context() -> tuple[dict[str, str], list[str]]:
    """The config group choices and the command line's overrides, when running under Hydra."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return {}, []
    hc = HydraConfig.get()
    choices = {k: v for k, v in hc.runtime.choices.items() if not k.startswith("hydra") and v is not None}
    return choices, list(hc.overrides.task)
