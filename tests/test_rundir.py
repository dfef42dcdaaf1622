"""Run directories: the runner deletes only what it created, two runs never share a directory, and a
directory a live run holds is refused."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from gan_cli import rundir
from tests.helpers import TINY, gan_here, one_line_error

FAILS_AFTER_HYDRA = "model.z_dim=abc"  # passes Hydra's composition, refused by gan train once its directory exists


def _listing(path):
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


def test_a_failed_run_in_a_users_directory_deletes_nothing_of_theirs(tmp_path):
    users = tmp_path / "some" / "dir"
    users.mkdir(parents=True)
    (users / "server.log").write_text("the user's log\n")
    (users / "notes").mkdir()
    one_line_error(gan_here("train", *TINY, FAILS_AFTER_HYDRA, f"hydra.run.dir={users}", cwd=tmp_path), "z_dim")
    assert _listing(tmp_path) == ["some", "some/dir", "some/dir/notes", "some/dir/server.log"]
    assert (users / "server.log").read_text() == "the user's log\n"


def test_a_failed_run_in_the_working_directory_keeps_it(tmp_path):
    (tmp_path / "mine.txt").write_text("mine\n")
    one_line_error(gan_here("train", *TINY, FAILS_AFTER_HYDRA, "hydra.run.dir=.", cwd=tmp_path), "z_dim")
    assert _listing(tmp_path) == ["mine.txt"]


def test_commands_that_write_elsewhere_keep_the_users_files(tmp_path, tiny_checkpoint):
    run = tiny_checkpoint.parent.parent
    users = tmp_path / "dir"
    users.mkdir()
    (users / "server.log").write_text("the user's log\n")
    (users / "diagnose.log").write_text("the user's own diagnose.log\n")
    ok = gan_here("diagnose", f"run={run}", "min_points=1", "samples=0", f"hydra.run.dir={users}", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    one_line_error(gan_here("report", f"run={tmp_path}", f"hydra.run.dir={users}", cwd=tmp_path), "no training runs")
    assert _listing(users) == ["diagnose.log", "server.log"]
    assert (users / "diagnose.log").read_text().startswith("the user's own diagnose.log\n")


def test_a_failed_run_removes_the_directories_it_created_and_no_more(tmp_path):
    (tmp_path / "outputs").mkdir()
    one_line_error(gan_here("train", *TINY, FAILS_AFTER_HYDRA, "hydra.run.dir=outputs/a/b/c", cwd=tmp_path), "z_dim")
    assert _listing(tmp_path) == ["outputs"]


def test_timestamped_names_never_collide(tmp_path):
    """A name pattern that gives the same name twice (here: per year) still gives two directories."""
    pattern = "hydra.run.dir=runs/${now:%Y}"
    for _ in range(2):
        assert gan_here("train", *TINY, "train.steps=2", pattern, cwd=tmp_path).returncode == 0
    year = time.strftime("%Y")
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == [year, f"{year}_1"]
    assert all((tmp_path / "runs" / n / "checkpoints" / "last.pt").is_file() for n in (year, f"{year}_1"))


def test_two_runs_started_together_get_two_directories(tmp_path):
    args = [sys.executable, "-m", "gan_cli", "train", *TINY, "train.steps=2"]
    procs = [subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    assert all(p.wait(timeout=120) == 0 for p in procs), [p.stderr.read() for p in procs]
    runs = sorted((tmp_path / "outputs" / "train").glob("*/*/checkpoints/last.pt"))
    assert len(runs) == 2
    assert all(len((r.parent.parent / "metrics.jsonl").read_text().splitlines()) == 1 for r in runs)


@pytest.fixture()
def other_process():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc
    proc.kill()
    proc.wait()


def test_a_directory_held_by_a_live_run_is_refused_and_a_stale_lock_is_taken(tmp_path, other_process):
    import socket

    run = tmp_path / "run"
    run.mkdir()
    (run / rundir.LOCK).write_text(f"pid {other_process.pid} on {socket.gethostname()}")
    before = _listing(tmp_path)
    one_line_error(gan_here("train", *TINY, f"hydra.run.dir={run}", cwd=tmp_path),
                   f"hydra.run.dir={run} is in use by a running gan (pid {other_process.pid}")
    assert _listing(tmp_path) == before  # Hydra wrote nothing into the other run's directory
    other_process.kill()
    other_process.wait()
    assert gan_here("train", *TINY, f"hydra.run.dir={run}", cwd=tmp_path).returncode == 0
    assert not (run / rundir.LOCK).exists() and (run / "checkpoints" / "last.pt").is_file()


def test_a_new_run_never_writes_over_another_runs_checkpoints(tmp_path):
    run = tmp_path / "run"
    assert gan_here("train", *TINY, f"hydra.run.dir={run}", cwd=tmp_path).returncode == 0
    kept = (run / "checkpoints" / "last.pt").read_bytes()
    config = (run / ".hydra" / "config.yaml").read_text()
    one_line_error(gan_here("train", *TINY, "seed=1", f"hydra.run.dir={run}", cwd=tmp_path),
                   "already holds a run's checkpoints", f"resume={run / 'checkpoints' / 'last.pt'}")
    assert (run / "checkpoints" / "last.pt").read_bytes() == kept
    assert (run / ".hydra" / "config.yaml").read_text() == config  # Hydra's record of the run, untouched
    ok = gan_here("train", f"resume={run / 'checkpoints' / 'last.pt'}", "train.steps=6", f"hydra.run.dir={run}",
                  cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr


def test_an_unwritable_run_directory_is_one_line(tmp_path):
    (tmp_path / "a_file").write_text("")
    one_line_error(gan_here("train", *TINY, f"hydra.run.dir={tmp_path / 'a_file' / 'run'}", cwd=tmp_path),
                   "cannot be created")
    one_line_error(gan_here("sample", "checkpoint=x.pt", "hydra.run.dir=/proc/gan-run", cwd=tmp_path),
                   "hydra.run.dir=/proc/gan-run")
