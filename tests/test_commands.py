"""What the commands share: the table of a sweep's runs, and every file they write going through
files.atomic_write (a failed write is one line naming the file, and leaves nothing behind)."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import pytest

from gan_cli import files
from gan_cli.commands import Column, runs_table, sorted_by, sorted_runs
from tests.helpers import TINY, gan, gan_here, one_line_error


# -- the runs table ------------------------------------------------------------------------------------

def test_runs_table_lays_out_headings_numbers_and_the_last_column_unpadded():
    table = runs_table(sorted_by("fd", True), [Column("run", 4), Column("fd_mnist_cnn_long", 8, ">", cut=8),
                                               Column("overrides")],
                       [["0", 1.234567, "loss=a"], ["12", None, ""]])
    assert table.splitlines() == [
        "2 runs, sorted by fd (lower first):",
        "run   fd_mnist  overrides",
        "0        1.235  loss=a",
        "12           -  ",  # a missing number is -; an empty last cell still follows its two spaces
    ]


def test_runs_table_without_headings_and_with_right_aligned_names():
    table = runs_table("the worst first", [Column("run", 4, ">"), Column("verdict", 10), Column("detail", cut=5)],
                       [["3", "healthy", "0123456789"]], heading=False)
    assert table.splitlines() == ["1 runs, the worst first:", "   3  healthy     01234"]


def test_sorted_runs_puts_missing_and_non_finite_values_last_and_keeps_ties_in_order():
    rows = [("a", 2.0), ("b", None), ("c", float("nan")), ("d", 1.0), ("e", 2.0), ("f", float("inf"))]
    assert [r[0] for r in sorted_runs(rows, lambda r: r[1], lower_first=True)] == ["d", "a", "e", "b", "c", "f"]
    assert [r[0] for r in sorted_runs(rows, lambda r: r[1], lower_first=False)] == ["a", "e", "d", "b", "c", "f"]
    assert sorted_by("best/fid", False) == "sorted by best/fid (higher first)"


# -- every file a command writes -----------------------------------------------------------------------

def _full_disk_for(monkeypatch, name: str | None = None, folder: str | None = None) -> None:
    """os.replace fails (disk full) for a file of this name, or any file in a folder of this name: the
    last step of files.atomic_write."""
    real = os.replace

    def replace(src, dst):
        if Path(dst).name == name or Path(dst).parent.name == folder:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(files.os, "replace", replace)


def _no_partial_files(folder: Path) -> bool:
    return not [p for p in folder.rglob(".*.tmp")]


@pytest.mark.parametrize("out", ["s.png", "s.pt", "singles"])
def test_a_failed_write_of_gan_sample_is_one_line_naming_the_file(tmp_path, tiny_checkpoint, monkeypatch, out):
    target = "00001.png" if out == "singles" else out  # a folder keeps the files written before
    _full_disk_for(monkeypatch, target)
    proc = gan_here("sample", f"checkpoint={tiny_checkpoint}", "n=4", f"out={out}", cwd=tmp_path)
    written = f"{out}/{target}" if out == "singles" else out  # as out= gives it
    one_line_error(proc, f"could not write {written} (No space left on device)", "give another out=")
    assert not (tmp_path / written).exists() and _no_partial_files(tmp_path)


@pytest.mark.parametrize("name", ["arithmetic.png", "latents.pt", "request.json"])
def test_a_failed_write_of_gan_latent_arithmetic_is_one_line(tmp_path, tiny_checkpoint, monkeypatch, name):
    _full_disk_for(monkeypatch, name)
    run = tmp_path / "run"
    proc = gan_here("latent-arithmetic", f"checkpoint={tiny_checkpoint}", "a=[3]", "expr=a", "noise_samples=0",
                    f"hydra.run.dir={run}", cwd=tmp_path)
    one_line_error(proc, f"could not write {run / name} (No space left on device)")
    assert not (run / name).exists() and _no_partial_files(run)


@pytest.fixture()
def tiny_run(tmp_path, tiny_checkpoint) -> Path:
    """A copy of the tiny run, for a command to write into."""
    return Path(shutil.copytree(tiny_checkpoint.parent.parent, tmp_path / "sweep" / "0"))


def test_a_failed_write_of_gan_diagnose_is_one_line(tmp_path, tiny_run, monkeypatch):
    _full_disk_for(monkeypatch, "diagnosis.json")
    proc = gan_here("diagnose", f"run={tiny_run}", "samples=0", "min_points=1", cwd=tmp_path)
    one_line_error(proc, f"could not write {tiny_run / 'diagnosis.json'}", "make the run's directory writable")
    assert not (tiny_run / "diagnosis.json").exists() and _no_partial_files(tiny_run)


@pytest.mark.parametrize("name", ["report.csv", "report.html"])
def test_a_failed_write_of_gan_report_is_one_line(tmp_path, tiny_run, monkeypatch, name):
    _full_disk_for(monkeypatch, name)
    sweep = tiny_run.parent
    proc = gan_here("report", f"run={sweep}", "diagnose=false", cwd=tmp_path)
    one_line_error(proc, f"could not write {sweep / name}", "make the sweep's directory writable")
    assert not (sweep / name).exists() and _no_partial_files(sweep)


def test_a_failed_write_of_gan_eval_is_one_line_and_keeps_the_record(tmp_path, monkeypatch):
    run = tmp_path / "run"
    gan("train", "experiment=gan_toy_ring", "train.steps=4", "train.batch_size=64", "train.log_every=2",
        "device=cpu", f"hydra.run.dir={run}", cwd=tmp_path, check=True)
    ckpt = run / "checkpoints" / "last.pt"
    args = [f"checkpoint={ckpt}", "n=200", "metrics=[fd_points]", f"cache_dir={tmp_path / 'cache'}"]
    assert gan_here("eval", *args, cwd=tmp_path).returncode == 0
    record = (run / "checkpoints" / "metrics.json").read_bytes()
    _full_disk_for(monkeypatch, "metrics.json")
    one_line_error(gan_here("eval", *args, "seed=1", cwd=tmp_path),
                   f"could not write {run / 'checkpoints' / 'metrics.json'}")
    assert (run / "checkpoints" / "metrics.json").read_bytes() == record and _no_partial_files(run)


def test_a_failed_write_of_a_cache_is_one_line(tmp_path, monkeypatch):
    run = tmp_path / "run"
    gan("train", "experiment=gan_toy_ring", "train.steps=4", "train.batch_size=64", "train.log_every=2",
        "device=cpu", f"hydra.run.dir={run}", cwd=tmp_path, check=True)
    _full_disk_for(monkeypatch, folder="cache")
    proc = gan_here("eval", f"checkpoint={run / 'checkpoints' / 'last.pt'}", "n=200", "metrics=[fd_points]",
                    f"cache_dir={tmp_path / 'cache'}", cwd=tmp_path)
    one_line_error(proc, f"could not write {tmp_path / 'cache'}", "the reference features are kept there")
    assert _no_partial_files(tmp_path / "cache")


def test_a_file_planted_at_the_temporary_name_is_never_written_through(tmp_path, tiny_checkpoint):
    """atomic_write creates its temporary file new: a symlink left at `.s.png.tmp` leads nowhere."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / ".s.png.tmp").symlink_to(victim)
    proc = gan_here("sample", f"checkpoint={tiny_checkpoint}", "n=4", "out=s.png", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert victim.read_text() == "precious" and (tmp_path / ".s.png.tmp").is_symlink()
    assert (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG" and not (tmp_path / "s.png").is_symlink()


def test_a_bench_restarts_only_its_own_run_directories(tmp_path):
    """files.fresh_dir: a stopped run of the bench starts again; a folder it did not make is kept and refused."""
    import pytest

    from gan_cli.errors import UserError
    from gan_cli.files import fresh_dir

    run = fresh_dir(tmp_path / "row" / "seed0", "toy_stabilisers")
    (run / "metrics.jsonl").write_text("half a run\n")
    assert list(fresh_dir(run, "toy_stabilisers").iterdir()) == [run / ".made-by-toy_stabilisers"]
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "precious.txt").write_text("keep")
    with pytest.raises(UserError, match="was not made by toy_stabilisers"):
        fresh_dir(mine, "toy_stabilisers")
    assert (mine / "precious.txt").read_text() == "keep"
    gan("train", *TINY, f"hydra.run.dir={run}", cwd=tmp_path, check=True)  # gan train runs in it
    assert (run / "checkpoints" / "last.pt").is_file()
