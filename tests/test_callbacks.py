"""Each callback on its own, around the tiny algorithm of test_loop.py."""

from __future__ import annotations

import json

import pytest
import torch

from gan_cli.callbacks.budget import TimeBudget
from gan_cli.callbacks.checkpoints import Checkpoints
from gan_cli.callbacks.evaluation import Evaluation
from gan_cli.callbacks.hparams import HParams
from gan_cli.callbacks.pictures import Pictures
from gan_cli.callbacks.scalars import Scalars
from gan_cli.callbacks.watch import Watch
from gan_cli.diagnose.detectors import Finding
from gan_cli.loop import Diverged, fit
from tests.test_loop import _run


def test_the_time_budget_ends_the_run_at_the_next_check_with_its_final_work(tmp_path):
    """One process checks the clock after every step (torchrun's ranks, every `every` steps, together)."""
    result = fit(_run(tmp_path, 100), [TimeBudget(max_minutes=1e-9, every=3), Scalars(every=0), Checkpoints(every=0)])
    assert result.step == 1 and torch.load(result.checkpoint, weights_only=True)["step"] == 1
    assert [json.loads(r)["step"] for r in (tmp_path / "metrics.jsonl").read_text().splitlines()] == [1]


def test_scalars_are_interval_means_with_the_throughput(tmp_path):
    run = _run(tmp_path, 4)
    fit(run, [Scalars(every=2)])
    rows = [json.loads(r) for r in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4] and all(r["perf/img_per_s"] > 0 for r in rows)
    assert run.result().last == {k: v for k, v in rows[-1].items() if k != "step"}


def test_no_checkpoint_is_written_after_a_nan(tmp_path):
    run = _run(tmp_path, 8)
    step = run.algorithm.fit_step

    def nan_from_step_3(r):
        stats = step(r)
        return {"loss/g": stats["loss/g"] * float("nan")} if r.step >= 3 else stats

    run.algorithm.phases[0] = run.algorithm.phases[0].__class__("fit", nan_from_step_3)
    with pytest.raises(Diverged, match="at step 4; training stopped and the last good checkpoint is"):
        fit(run, [Checkpoints(every=2)])
    assert torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)["step"] == 2
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["last.pt", "step_0000002.pt"]


@pytest.mark.parametrize("lower_is_better,best", [(True, (1.0, 4)), (False, (3.0, 2))])
def test_best_pt_follows_the_chosen_metric(tmp_path, lower_is_better, best):
    values = iter([3.0, 1.0, 2.0])
    run = _run(tmp_path, 6)
    result = fit(run, [Evaluation(every=2, evaluator=lambda G: {"m": next(values)}, best_metric="m",
                                  lower_is_better=lower_is_better)])
    assert result.best == ("m", *best)
    assert torch.load(tmp_path / "checkpoints" / "best.pt", weights_only=True)["step"] == best[1]
    assert [json.loads(r)["m"] for r in (tmp_path / "evals.jsonl").read_text().splitlines()] == [3.0, 1.0, 2.0]


def test_the_watch_stops_the_run_on_a_finding_it_was_told_to_stop_on(tmp_path):
    class Detectors:
        def scalars(self, step, values):
            return [Finding("divergence", "high", step, step, "a test finding")] if step >= 4 else []

        def samples(self, step, fake, real):
            return []

        def stops(self, finding):
            return True

    result = fit(_run(tmp_path, 10), [Scalars(every=2), Watch(Detectors(), log_every=2, sample_every=0)])
    assert result.step == 4 and result.stopped_by.kind == "divergence"


def test_pictures_draw_the_real_data_once_and_the_samples_every_n_steps(tmp_path):
    run = _run(tmp_path, 4)
    fit(run, [Pictures(every=3)])
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == ["real.png", "step_0000003.png",
                                                                         "step_0000004.png"]
    fake, real = run.pictured
    assert fake.shape == real.shape == (4, 1, 8, 8)


def test_hparams_go_to_tensorboard(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    fit(_run(tmp_path, 2), [Scalars(every=1), HParams({"lr": 5.0})])
    events = EventAccumulator(str(tmp_path)).Reload()
    assert "_hparams_/session_start_info" in events.PluginTagToContent("hparams")


def test_the_readmes_callback_plugs_in_from_the_command_line(tmp_path, user_package):
    """README, Extending: a callback of the user's own, added with +callbacks and trust=."""
    import re

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from tests.helpers import REPO, TINY, gan

    readme = (REPO / "README.md").read_text()
    code = re.search(r"```python\n# mypkg/callbacks.py\n(.*?)```", readme, re.S).group(1)
    user_package("callbacks", code)
    run = tmp_path / "run"
    gan("train", *TINY, "+callbacks.gap={_target_:mypkg.callbacks.ScoreGap,_partial_:true,every:2}", "trust=[mypkg]",
        f"hydra.run.dir={run}", cwd=tmp_path, check=True)
    gaps = [e.value for e in EventAccumulator(str(run)).Reload().Scalars("d/gap")]
    rows = [json.loads(r) for r in (run / "metrics.jsonl").read_text().splitlines()]
    torch.testing.assert_close(gaps, [r["d/real"] - r["d/fake"] for r in rows])
