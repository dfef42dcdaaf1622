"""The benchmark and figure scripts still import what they use: they run outside the suite (bench/ prints
numbers, it is not timed here), so a renamed helper would otherwise break them unseen."""

import runpy

import pytest

from tests.helpers import REPO

SCRIPTS = sorted([*(REPO / "bench").glob("*.py"), *(REPO / "docs").glob("*.py")])


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.name for p in SCRIPTS])
def test_the_script_imports_and_defines_main(script):
    namespace = runpy.run_path(str(script), run_name="imported_by_a_test")  # not __main__: nothing runs
    assert callable(namespace["main"])


def test_fd_frontier_converts_steps_to_training_minutes_at_the_median_rate(tmp_path):
    import json

    frontier = runpy.run_path(str(REPO / "bench" / "fd_frontier.py"), run_name="imported_by_a_test")
    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra" / "config.yaml").write_text("train:\n  batch_size: 100\n")
    # 1,000 img/s at batch 100 is 600 steps a minute; the slow row is an interval that held an evaluation
    rates = [1000.0, 1000.0, 250.0, 1000.0]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps({"step": 50 * (i + 1), "perf/img_per_s": r}) + "\n"
                                                    for i, r in enumerate(rates)))
    evals = [(600, 80.0), (1200, 45.0), (1800, 38.0), (2400, 39.0)]
    (tmp_path / "evals.jsonl").write_text("".join(json.dumps({"step": s, "fd_mnist_cnn": fd, "fd_mnist_cnn_std": 1.0})
                                                  + "\n" for s, fd in evals))
    f = frontier["frontier"](tmp_path)
    assert f["metric"] == "fd_mnist_cnn"
    assert f["steps_per_minute"] == pytest.approx(600.0)
    assert f["points"] == [(600, 1.0, 80.0), (1200, 2.0, 45.0), (1800, 3.0, 38.0), (2400, 4.0, 39.0)]
    line = frontier["summary"]("new", f, 40.0)
    assert "best 38.0 at step 1,800 (3.0 min)" in line and "first below 40 at step 1,800 (3.0 min)" in line
    assert "by 5 min: FD 39.0 at step 2,400 (4.0 min)" in line
    assert "never below 30" in frontier["summary"]("new", f, 30.0)


def test_toy_stabilisers_goes_on_from_a_stopped_sitting_as_if_it_had_run_straight(tmp_path):
    """A sitting that ended part way leaves step checkpoints; the next one resumes from the last and ends
    with the weights of an unbroken run, bit for bit, its minutes summed over the two sittings."""
    import json

    import torch

    from gan_cli import checkpoint

    bench = runpy.run_path(str(REPO / "bench" / "toy_stabilisers.py"), run_name="imported_by_a_test")
    row = "minibatch_discrimination"
    straight = bench["train"](row, 0, 4, tmp_path / "straight", checkpoint_every=2)
    assert straight["sittings"] == 1

    stopped = tmp_path / "stopped"
    bench["train"](row, 0, 2, stopped, checkpoint_every=2)
    run = stopped / row / "seed0"
    # what a sitting killed after step 2 leaves: its step file, no result, a sitting without an end
    (run / "modes.json").unlink()
    (run / "checkpoints" / "step_0000002.pt").write_bytes((run / "checkpoints" / "last.pt").read_bytes())
    sittings = json.loads((run / "sittings.json").read_text())
    del sittings[-1]["minutes"], sittings[-1]["to_step"]
    (run / "sittings.json").write_text(json.dumps(sittings))

    resumed = bench["train"](row, 0, 4, stopped, checkpoint_every=2)
    log = json.loads((run / "sittings.json").read_text())
    assert [(s["from_step"], s["to_step"]) for s in log] == [(0, 2), (2, 4)]
    assert resumed["sittings"] == 2
    torch.testing.assert_close(resumed["minutes"], sum(s["minutes"] for s in log))
    a, b = (checkpoint.load(d / row / "seed0" / "checkpoints" / "last.pt") for d in (tmp_path / "straight", stopped))
    assert b["step"] == 4
    for net in a["models"]:
        for key, w in a["models"][net].items():
            assert torch.equal(w, b["models"][net][key]), f"{net}.{key}"
    assert not list((run / "checkpoints").glob("step_*.pt"))  # only for resuming: gone once the run is done


@pytest.mark.parametrize("text", ["[1, 2]", "{\"modes_covered\": \"8\"}", "not json"])
def test_toy_stabilisers_names_a_damaged_result_in_one_line_and_keeps_it(tmp_path, text):
    import subprocess
    import sys

    done = tmp_path / "hinge" / "seed0" / "modes.json"
    done.parent.mkdir(parents=True)
    done.write_text(text)
    for extra in (["--table-only"], ["--rows", "hinge", "--seeds", "0"]):
        proc = subprocess.run([sys.executable, str(REPO / "bench" / "toy_stabilisers.py"), "--results", str(tmp_path),
                               *extra], capture_output=True, text=True, cwd=REPO)
        assert proc.returncode == 1
        assert proc.stderr.strip().splitlines() == [
            f"{done} is not this bench's record of a finished run; remove its run directory, {done.parent}, "
            f"to run it again from the start"]
        assert done.read_text() == text
