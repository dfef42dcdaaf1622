"""Fixtures shared by the tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import DATA_ROOT, TINY, gan


@pytest.fixture(scope="session", autouse=True)
def _cache_dir(tmp_path_factory):
    """data=folder's caches (conf/data/folder.yaml: ${oc.env:GAN_CACHE_DIR,...}) go under the session's
    temporary folder, never the user's ~/.cache."""
    old = os.environ.get("GAN_CACHE_DIR")
    os.environ["GAN_CACHE_DIR"] = str(tmp_path_factory.mktemp("gan_cache"))
    yield
    if old is None:
        os.environ.pop("GAN_CACHE_DIR", None)
    else:
        os.environ["GAN_CACHE_DIR"] = old


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


@pytest.fixture
def user_package(tmp_path, monkeypatch):
    """A fresh package `mypkg` of the user's own under tmp_path; returns a function that writes one module.

    Tests run `gan` in-process, so a `mypkg` imported by an earlier test would shadow this one:
    the fixture forgets it before and after.
    """
    import importlib
    import sys
    import textwrap

    def forget():
        for name in [m for m in sys.modules if m == "mypkg" or m.startswith("mypkg.")]:
            monkeypatch.delitem(sys.modules, name)

    forget()
    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))

    def write(module: str, code: str) -> None:
        (tmp_path / "mypkg" / f"{module}.py").write_text(textwrap.dedent(code))
        importlib.invalidate_caches()

    yield write
    forget()
