"""Helpers: composing the real configs, and running the real `gan` command on tiny settings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir

from gan_cli.paths import config_dir

REPO = Path(__file__).resolve().parents[1]
DATA_ROOT = Path(os.environ.get("GAN_DATA_ROOT", REPO / "data")).resolve()

# Small enough to train a few steps in about a second on one CPU core.
TINY_DATA = ["data=fake", "data.n=64", "data.resolution=16", "data.channels=1"]
TINY = TINY_DATA + [
    "model.g.width=8", "model.d.width=8", "model.z_dim=8",
    "train.steps=4", "train.batch_size=8", "train.log_every=2", "train.sample_every=2",
    "train.checkpoint_every=2", "train.num_samples=4", "device=cpu",
]
TINY_MODEL = TINY[len(TINY_DATA):]  # for tests that pick their own data


def compose_config(name: str = "train", overrides: list[str] | None = None):
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        return compose(config_name=name, overrides=overrides or [])


def gan(*args: str, cwd: Path, check: bool = False, process: bool = False) -> subprocess.CompletedProcess:
    """Run the real command line, as a user would: `gan <args>`, by default through cli.main in this
    process (gan_here: the same code, without a second torch import), or with process=True in a fresh
    process of `python -m gan_cli`."""
    if process:
        # PYTHONPATH: so a config may name a test-only class (tests.helpers.NaNAfter)
        env = {**os.environ, "GAN_DATA_ROOT": str(DATA_ROOT), "PYTHONPATH": str(REPO)}
        proc = subprocess.run([sys.executable, "-m", "gan_cli", *args], cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=300)
    else:
        try:
            proc = gan_here(*args, cwd=cwd)
        except Exception:  # noqa: BLE001 - a traceback, as the process would print it before exiting with 1
            import traceback

            proc = subprocess.CompletedProcess(["gan", *args], 1, "", traceback.format_exc())
    if check and proc.returncode != 0:
        raise AssertionError(f"gan {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


def gan_here(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The same command line as `gan`, in this process: cli.main with its exit code, stdout and stderr.
    About ten times quicker than a fresh process (no torch import), for the many one-line-error cases;
    the tests that need a clean process use `gan(..., process=True)`."""
    import contextlib
    import io

    from gan_cli import cli

    out, err = io.StringIO(), io.StringIO()
    old_cwd, old_argv = Path.cwd(), sys.argv[:]
    old_root = os.environ.get("GAN_DATA_ROOT")
    os.environ["GAN_DATA_ROOT"] = str(DATA_ROOT)
    code = 0
    try:
        os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                cli.main(list(args))
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else 1
    finally:
        os.chdir(old_cwd)
        sys.argv = old_argv
        if old_root is None:
            os.environ.pop("GAN_DATA_ROOT", None)
        else:
            os.environ["GAN_DATA_ROOT"] = old_root
    return subprocess.CompletedProcess(["gan", *args], code, out.getvalue(), err.getvalue())


def logged(run: Path) -> list[dict]:
    """A run's metrics.jsonl, one dict per log interval."""
    import json

    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def assert_resumes_bit_exact(straight: Path, tmp_path: Path, args: list[str], stop: int, steps: int) -> dict:
    """Train `args` for `stop` steps, resume to `steps`, and check that every network (its weights and extra
    state), and the EMA when kept, ends as in `straight`, a run of `args` straight to `steps`, bit for bit
    on the CPU. Returns the two last checkpoints (straight's, the resumed one's) for further checks."""
    import torch

    from gan_cli import checkpoint

    first, resumed = tmp_path / "first", tmp_path / "resumed"
    gan("train", *args, f"train.steps={stop}", f"hydra.run.dir={first}", cwd=tmp_path, check=True)
    gan("train", f"resume={first}/checkpoints/last.pt", f"train.steps={steps}", f"hydra.run.dir={resumed}",
        cwd=tmp_path, check=True)
    a, b = (checkpoint.load(p / "checkpoints" / "last.pt") for p in (straight, resumed))
    assert b["step"] == steps
    pairs = [(f"{net}.{k}", w, b["models"][net][k]) for net in a["models"] for k, w in a["models"][net].items()]
    pairs += [(f"ema.{k}", w, b["ema"][k]) for k, w in (a.get("ema") or {}).items()]
    for name, x, y in pairs:
        assert torch.equal(x, y) if isinstance(x, torch.Tensor) else x == y, name
    return a, b


def one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> str:
    """Assert the command failed the way bad input should: exit code 2, one line on stderr naming what
    the needles say, no traceback. Returns the line."""
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and "Warning" not in ln and "warn(" not in ln]
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def _faulty_loss(after: int, fault, stabilisers: dict):
    """The default loss, whose generator objective goes through `fault` after `after` generator steps.
    `stabilisers`: the loss config's stabiliser keys (label_smoothing, r1, ...), as every loss takes them."""
    from gan_cli.losses import NonSaturating

    class _Faulty(NonSaturating):
        calls = 0

        def g_objective(self, fake_logits):
            type(self).calls += 1
            loss = super().g_objective(fake_logits)
            return fault(loss) if type(self).calls > after else loss

    return _Faulty(**stabilisers)


class NaNAfter:
    """A loss that turns NaN after `after` generator steps: divergence on demand, for the tests."""

    def __new__(cls, after: int, **stabilisers):
        return _faulty_loss(after, lambda loss: loss * float("nan"), stabilisers)


class CrashAfter:
    """A loss that raises after `after` generator steps, as a bug or a faulty data source would."""

    def __new__(cls, after: int, **stabilisers):
        def crash(loss):
            raise RuntimeError("a fault in the middle of training")

        return _faulty_loss(after, crash, stabilisers)


def installed(module: str) -> bool:
    """Whether an optional module can be imported (find_spec raises when its parent package is absent)."""
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False
