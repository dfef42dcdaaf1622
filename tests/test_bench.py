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
