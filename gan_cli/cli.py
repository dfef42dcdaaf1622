"""`gan <command> [overrides...]`: picks the subcommand, hands the rest of argv to its Hydra main.

Each subcommand is a plain `run(cfg, run_dir)` in gan_cli.commands; this module only wraps it in
Hydra and turns bad input into one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from gan_cli.errors import UserError

EXIT_USER_ERROR = 2


class _JobFailed(BaseException):
    """Carries a job's exception past Hydra, which would otherwise catch and print it itself."""

    def __init__(self, error: Exception):
        super().__init__(error)
        self.error = error


@dataclass(frozen=True)
class Command:
    module: str  # a module with run(cfg, run_dir)
    config: str  # its primary config in conf/
    summary: str


COMMANDS = {
    "train": Command("gan_cli.commands.train", "train", "train a GAN (default: DCGAN on MNIST)"),
    "sample": Command("gan_cli.commands.sample", "sample", "draw images from a checkpoint"),
    "latent-arithmetic": Command("gan_cli.commands.latent_arithmetic", "latent_arithmetic",
                                 "vector arithmetic and interpolation in G's latent space"),
    "eval": Command("gan_cli.commands.eval", "eval", "measure sample quality: FID, KID, IS, precision/recall, class coverage"),
    "diagnose": Command("gan_cli.commands.diagnose", "diagnose", "name what went wrong in a run, with evidence and cures"),
    "report": Command("gan_cli.commands.report", "report", "a sweep at a glance: overrides, losses, metrics, verdicts"),
}


def usage() -> str:
    lines = ["usage: gan <command> [key=value ...] [hydra flags]", "", "commands:"]
    width = max(map(len, COMMANDS)) + 2
    lines += [f"  {name:<{width}}{c.summary}" for name, c in COMMANDS.items()]
    lines += [
        "",
        "Each command takes Hydra overrides, e.g. `gan train model=mlp loss=minimax`.",
        "`gan <command> --help` lists its config groups; `gan <command> --cfg job` prints its config.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        sys.exit(0 if argv else EXIT_USER_ERROR)
    name, overrides = argv[0], argv[1:]
    command = COMMANDS.get(name)
    if command is None:
        _fail(f"gan: unknown command '{name}'; choose one of: {', '.join(COMMANDS)} (see gan --help)")

    _register_resolvers()
    # Let Hydra's own errors reach us as exceptions, so we can print them as one line.
    os.environ["HYDRA_FULL_ERROR"] = "1"
    sys.argv = [f"gan {name}", *overrides]
    started = time.time()
    try:
        try:
            _hydra_main(name, command)()
        except _JobFailed as failed:
            raise failed.error from None
        except BaseException:
            if "-m" in overrides or "--multirun" in overrides:
                _discard_unfinished_sweeps(overrides, started)
            raise
    except UserError as e:
        _fail(f"gan {name}: error: {e}")
    except KeyboardInterrupt:
        _fail(f"gan {name}: interrupted", code=130)
    except Exception as e:  # noqa: BLE001 - only Hydra/OmegaConf errors are reworded; the rest re-raise
        if not _is_config_error(e):
            raise
        _fail(f"gan {name}: error: {_config_error_line(e)} (`gan {name} --cfg job` shows the config)")


def _register_resolvers() -> None:
    from omegaconf import OmegaConf

    def devices() -> int:  # GPUs on this machine, at least 1: parallel local jobs (conf/hydra/launcher/local.yaml)
        import torch

        return max(1, torch.cuda.device_count())

    if not OmegaConf.has_resolver("gan_devices"):
        OmegaConf.register_new_resolver("gan_devices", devices)


def _hydra_main(name: str, command: Command):
    import hydra
    from hydra.core.hydra_config import HydraConfig

    from gan_cli.paths import config_dir

    def task(cfg):
        run_dir = Path(HydraConfig.get().runtime.output_dir)
        run = importlib.import_module(command.module).run
        try:
            result = run(cfg, run_dir)
        except BaseException as e:
            _discard_unfinished(run_dir)
            if isinstance(e, Exception):
                raise _JobFailed(e) from e
            raise
        # a command that wrote its results elsewhere (eval, diagnose, report write beside the run they
        # read; under torchrun only rank 0 writes) leaves no directory of bare bookkeeping behind
        _discard_unfinished(run_dir)
        return result

    task.__name__ = name
    return hydra.main(config_path=config_dir(), config_name=command.config, version_base="1.3")(task)


def _discard_unfinished(run_dir: Path) -> None:
    """Remove a run directory that holds nothing but Hydra's bookkeeping.

    A run that failed before producing anything leaves no debris; one that wrote a checkpoint (or a
    directory that already held other files) is kept untouched.
    """
    if not run_dir.is_dir():
        return
    bookkeeping = {".hydra", "multirun.yaml"} | {p.name for p in run_dir.glob("*.log")}
    if {p.name for p in run_dir.iterdir()} <= bookkeeping:
        shutil.rmtree(run_dir, ignore_errors=True)
        # and the <task>/<date> levels above it when this run was all they held
        for parent in list(run_dir.parents)[:2]:
            if parent == Path.cwd() or any(parent.iterdir()):
                break
            parent.rmdir()


def _discard_unfinished_sweeps(overrides: list[str], since: float) -> None:
    """A sweep that failed before its first job leaves a directory holding only Hydra's multirun.yaml:
    remove the ones this command made (the hydra.sweep.dir given, or new ones under outputs/multirun)."""
    given = [o.split("=", 1)[1] for o in overrides if o.startswith("hydra.sweep.dir=")]
    candidates = [Path(g) for g in given] or list(Path("outputs", "multirun").glob("*/*"))
    for sweep in candidates:
        if (sweep.is_dir() and sweep.stat().st_ctime >= since - 1
                and {p.name for p in sweep.iterdir()} <= {"multirun.yaml"}):
            _discard_unfinished(sweep)


def _is_config_error(e: Exception) -> bool:
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    return isinstance(e, (HydraException, OmegaConfBaseException))


def _config_error_line(e: Exception) -> str:
    """Hydra's multi-line composition errors, folded into one line that keeps what matters."""
    text = str(e).strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    head = lines[0] if lines else type(e).__name__
    if "Available options in" in text:
        i = next(i for i, ln in enumerate(lines) if ln.startswith("Available options in"))
        options = []
        for ln in lines[i + 1 :]:
            if ln.startswith("Config search path"):
                break
            options.append(ln)
        head = f"{head}; {lines[i].rstrip(':')}: {', '.join(options)}"
    if re.search(r"Could not (find|load) 'hydra/(launcher|sweeper)/", text):
        return (f"{head.split(': Config search path')[0].rstrip('.')}; launchers and sweepers beyond basic are "
                f"Hydra plugins in the sweeps extra: pip install 'gan-cli[sweeps]' (joblib, submitit_slurm, optuna)")
    cause = e.__cause__
    if cause is not None and str(cause).strip():
        head = f"{head.rstrip('.')}: {str(cause).strip().splitlines()[0]}"
    elif len(lines) > 1 and not head.endswith(":") and "Available options" not in head:
        detail = lines[1]
        if not detail.startswith(("full_key", "object_type", "To append")):
            head = f"{head.rstrip('.')}: {detail}"
    return head


def _fail(message: str, code: int = EXIT_USER_ERROR) -> None:
    print(message, file=sys.stderr)
    sys.exit(code)


if __name__ == "__main__":
    main()
