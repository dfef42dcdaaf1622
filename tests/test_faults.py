"""Signals and faults keep the work: SIGTERM stops like Ctrl-C (a checkpoint and a line), a full disk is
one line naming the path with no partial file and the last good checkpoint intact, leftovers of a
killed write are cleaned up, and a crash mid-run still leaves a checkpoint."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time

from gan_cli import checkpoint, files
from tests.helpers import DATA_ROOT, REPO, TINY, gan_here, one_line_error

LONG = [*TINY, "train.steps=100000", "train.log_every=1", "train.sample_every=0", "train.checkpoint_every=0"]


def _gan(*args, cwd, file_size_limit=None) -> subprocess.Popen:
    def limit():
        if file_size_limit is not None:  # `ulimit -f`: writes beyond it fail with EFBIG (Python ignores SIGXFSZ)
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))

    env = {**os.environ, "GAN_DATA_ROOT": str(DATA_ROOT), "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "gan_cli", *args], cwd=cwd, env=env, preexec_fn=limit,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_sigterm_stops_with_a_checkpoint_and_a_line(tmp_path):
    run = tmp_path / "run"
    proc = _gan("train", *LONG, f"hydra.run.dir={run}", cwd=tmp_path)
    deadline = time.monotonic() + 120
    while not ((run / "metrics.jsonl").is_file() and (run / "metrics.jsonl").read_text().count("\n") >= 3):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    state = checkpoint.load(run / "checkpoints" / "last.pt")
    assert 3 <= state["step"] < 100000
    assert lines[0] == (f"gan train: stopped by SIGTERM at step {state['step']}; checkpoint kept: "
                        f"{run / 'checkpoints' / 'last.pt'} (go on with gan train resume={run / 'checkpoints' / 'last.pt'})")


def test_a_full_disk_is_one_line_and_the_last_good_checkpoint_stays(tmp_path):
    run = tmp_path / "run"
    assert gan_here("train", *TINY, f"hydra.run.dir={run}", cwd=tmp_path).returncode == 0
    last = run / "checkpoints" / "last.pt"
    good = last.read_bytes()
    (run / "checkpoints" / ".last.pt.tmp").write_bytes(good[:1000])  # what a kill -9 mid-write leaves
    # every file may grow to half a checkpoint: logs and pictures fit, the next checkpoint does not
    proc = _gan("train", f"resume={last}", "train.steps=8", f"hydra.run.dir={run}", cwd=tmp_path,
                file_size_limit=len(good) // 2)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert f"could not write {run / 'checkpoints' / 'step_0000006.pt'} (File too large)" in lines[0]
    assert last.read_bytes() == good
    assert files.partial_files(run / "checkpoints") == []  # neither the old leftover nor a new one
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["last.pt", "step_0000002.pt"]


def test_a_crash_mid_run_still_leaves_a_checkpoint(tmp_path):
    run = tmp_path / "run"
    proc = _gan("train", *TINY, "train.steps=8", "train.checkpoint_every=0", "loss._target_=tests.helpers.CrashAfter",
                "+loss.after=5", "trust=[tests.helpers]", f"hydra.run.dir={run}", cwd=tmp_path)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1 and "a fault in the middle of training" in err  # a bug keeps its traceback
    assert checkpoint.load(run / "checkpoints" / "last.pt", trust=["tests.helpers"])["step"] == 5
    assert json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["step"] == 4


def test_nan_keeps_the_last_good_checkpoint_and_advises_resuming_from_it(tmp_path):
    run = tmp_path / "run"
    proc = gan_here("train", *TINY, "train.steps=8", "train.log_every=1", "loss._target_=tests.helpers.NaNAfter",
                    "+loss.after=3", "trust=[tests.helpers]", f"hydra.run.dir={run}", cwd=tmp_path)
    last = run / "checkpoints" / "last.pt"
    one_line_error(proc, "at step 4", f"last good checkpoint is {last}",
                   f"gan train resume={last} optimizer.d.lr=")
    assert checkpoint.load(last, trust=["tests.helpers"])["step"] == 2
