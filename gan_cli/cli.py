"""`gan <command> [overrides...]`: picks the subcommand, hands the rest of argv to its Hydra main.

Each subcommand is a plain `run(cfg, run_dir)` in gan_cli.commands; this module only wraps it in
Hydra and turns bad input into one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import os
import re
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

from gan_cli.errors import UserError

EXIT_USER_ERROR = 2
# Faults of the machine, not of the program: one line naming the path, like bad input
_DISK_ERRORS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS, errno.EACCES}


class _JobFailed(BaseException):
    """Carries a job's exception past Hydra, which would otherwise catch and print it itself."""

    def __init__(self, error: Exception):
        super().__init__(error)
        self.error = error


class _SweepJobFailed(Exception):
    """A sweep's job that failed on bad input: already reported in one line. A plain Exception, so Hydra
    records the job as failed and runs the next one (its convention for sweeps)."""


@dataclass
class _Sweep:
    jobs: int = 0
    failed: list[str] = field(default_factory=list)  # "job N (overrides)"


@dataclass(frozen=True)
class Command:
    module: str  # a module with run(cfg, run_dir), and shorthand(overrides) when it has a short syntax
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

    shorthand = getattr(importlib.import_module(command.module), "shorthand", None)
    if shorthand is not None:  # latent-arithmetic's a=[3,17,40] for +groups.a=[3,17,40]
        overrides = shorthand(overrides)
    _register_resolvers()
    # Let Hydra's own errors reach us as exceptions, so we can print them as one line.
    os.environ["HYDRA_FULL_ERROR"] = "1"
    sys.argv = [f"gan {name}", *overrides]
    sweep = _Sweep()
    from gan_cli import rundir

    previous = signal.signal(signal.SIGTERM, _terminated)  # SLURM and Kubernetes ask with SIGTERM: stop like Ctrl-C
    try:
        try:
            with _one_line_per_failed_job(sweep):
                _hydra_main(name, command, sweep, overrides)()
            if sweep.failed:  # a sweeper that records failed trials and goes on (Optuna) returns normally
                raise _SweepJobFailed()
        except (_JobFailed, rundir.Refused) as failed:
            raise failed.error from None
        finally:
            for path in list(rundir.claims()):  # a sweep that failed before its first job, a refused run
                rundir.discard_bare(path)
    except Terminated as e:
        _fail(f"gan {name}: stopped by SIGTERM{_kept(e)}", code=128 + signal.SIGTERM)
    except _SweepJobFailed:
        _fail(f"gan {name}: {len(sweep.failed)} of {sweep.jobs} jobs failed ({', '.join(sweep.failed)}); "
              f"the others ran to the end")
    except UserError as e:
        _fail(f"gan {name}: error: {e}")
    except KeyboardInterrupt as e:
        _fail(f"gan {name}: interrupted{_kept(e)}", code=130)
    except Exception as e:  # noqa: BLE001 - only Hydra/OmegaConf errors and disk faults are reworded
        if _is_config_error(e):  # before OSError: Hydra's MissingConfigException is an IOError too
            _fail(f"gan {name}: error: {_config_error_line(e, overrides)} (`gan {name} --cfg job` shows the config)")
        if isinstance(e, ValueError) and str(e).startswith("Only one of --run"):  # Hydra's check of its flags
            _fail(f"gan {name}: error: {e}; `gan {name} --cfg job` (without -m) prints the config of one run, "
                  f"`--cfg hydra` the sweeper's settings")
        if isinstance(e, OSError) and e.errno in _DISK_ERRORS:
            _fail(f"gan {name}: error: cannot write {e.filename or 'a file'}: {e.strerror}; free space, or choose "
                  f"another directory (hydra.run.dir=...)")
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
        rundir.release_all()


class Terminated(KeyboardInterrupt):
    """SIGTERM, delivered as an interruption: everything that keeps work on Ctrl-C (training's final
    checkpoint) keeps it on SIGTERM too."""


def _terminated(signum, frame) -> None:
    raise Terminated()


def _kept(interruption: BaseException) -> str:
    """What an interrupted training run kept (loop.Trainer notes it on the interruption)."""
    step, path = getattr(interruption, "step", None), getattr(interruption, "checkpoint", None)
    if step is None:
        return ""
    if path is None:
        return f" at step {step}, before its first checkpoint"
    return f" at step {step}; checkpoint kept: {path} (go on with gan train resume={path})"


@contextlib.contextmanager
def _one_line_per_failed_job(sweep: _Sweep):
    """Hydra writes "Error executing job with overrides: [...]" to stderr when a sweeper collects a failed
    job. The task has already said which job failed and why, in one line: drop Hydra's repetition."""

    class Filtered:
        def __init__(self, stream):
            self.stream = stream

        def write(self, text: str) -> int:
            if sweep.failed and text.startswith("Error executing job with overrides:"):
                return len(text)
            return self.stream.write(text)

        def __getattr__(self, name):
            return getattr(self.stream, name)

    original = sys.stderr
    sys.stderr = Filtered(original)
    try:
        yield
    finally:
        sys.stderr = original


def _register_resolvers() -> None:
    from omegaconf import OmegaConf

    def devices() -> int:  # GPUs on this machine, at least 1: parallel local jobs (conf/hydra/launcher/local.yaml)
        import torch

        return max(1, torch.cuda.device_count())

    if not OmegaConf.has_resolver("gan_devices"):
        OmegaConf.register_new_resolver("gan_devices", devices)


def _hydra_main(name: str, command: Command, sweep: _Sweep, given: list[str]):
    import hydra
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import OmegaConf

    from gan_cli import rundir, targets
    from gan_cli.paths import config_dir

    def task(cfg):
        hc = HydraConfig.get()
        run_dir = Path(hc.runtime.output_dir)
        in_sweep = hc.mode == RunMode.MULTIRUN
        try:
            if in_sweep:
                sweep.jobs += 1
                rundir.claim_job(run_dir)
            # the command line (and any config file it composed) names only our components or trusted ones
            targets.check(OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False), cfg.get("trust"),
                          "the config")
            result = importlib.import_module(command.module).run(cfg, run_dir)
        except BaseException as e:
            rundir.discard_bare(run_dir)
            rundir.release(run_dir)
            if not isinstance(e, Exception):
                raise
            if in_sweep and (isinstance(e, UserError) or _is_config_error(e)):
                job = f"job {hc.job.num} ({' '.join(o for o in hc.overrides.task if o not in given) or 'no overrides'})"
                line = str(e) if isinstance(e, UserError) else _config_error_line(e, list(hc.overrides.task))
                print(f"gan {name}: {job}: error: {line}", file=sys.stderr)
                sweep.failed.append(job)
                raise _SweepJobFailed(line) from None  # Hydra records it and runs the next job
            raise _JobFailed(e) from e
        # a command that wrote its results elsewhere (eval, diagnose, report write beside the run they
        # read; under torchrun only rank 0 writes) leaves no directory of bare bookkeeping behind
        rundir.discard_bare(run_dir)
        rundir.release(run_dir)
        return result

    task.__name__ = name
    return hydra.main(config_path=config_dir(), config_name=command.config, version_base="1.3")(task)


def _is_config_error(e: Exception) -> bool:
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    return isinstance(e, (HydraException, OmegaConfBaseException))


def _config_error_line(e: Exception, overrides: list[str] = ()) -> str:
    """Hydra's multi-line composition errors, folded into one line that keeps what matters."""
    text = str(e).strip()
    unquoted = [o for o in overrides if not o.isascii() and not re.search(r"""=\s*['"]""", o)]
    if unquoted and re.search(r"token recognition error|mismatched input|NoViableAlt|no viable alternative", text):
        return (f"Hydra cannot parse {unquoted[0]}: characters beyond ASCII must be quoted, e.g. "
                f"""'{unquoted[0].split("=", 1)[0]}="{unquoted[0].split("=", 1)[-1]}"'""")
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
