"""Fixtures shared by the tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import DATA_ROOT, TINY, gan


@pytest.fixture(scope="session")
def mnist_root() -> Path:
    """The real MNIST that `make data` prepares. Tests that need it fail, not skip, when it is missing."""
    if not (DATA_ROOT / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file():
        pytest.fail(f"MNIST is not prepared under {DATA_ROOT}: run `make data` first")
    return DATA_ROOT


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """One tiny trained run, shared by the tests that only read a checkpoint."""
    run_dir = tmp_path_factory.mktemp("tiny_run")
    gan("train", *TINY, f"hydra.run.dir={run_dir}", cwd=run_dir, check=True, process=True)  # the real entry point
    return run_dir / "checkpoints" / "last.pt"
