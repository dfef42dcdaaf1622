"""Resume applies what the user overrides, or refuses it in one line: optimizer hyperparameters take
effect, the architecture cannot change, and a run cannot resume to fewer steps than it has done."""

from __future__ import annotations

import torch

from gan_cli import checkpoint
from tests.helpers import gan_here, one_line_error


def test_resume_trains_at_the_overridden_learning_rate(tmp_path, tiny_checkpoint):
    run = tmp_path / "resumed"
    proc = gan_here("train", f"resume={tiny_checkpoint}", "train.steps=6", "optimizer.g.lr=1e-5",
                    "optimizer.d.betas=[0.0,0.9]", f"hydra.run.dir={run}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "resume: optimizer.g.lr 0.0002 -> 1e-05" in proc.stdout
    state = checkpoint.load(run / "checkpoints" / "last.pt")
    assert state["config"]["optimizer"]["g"]["lr"] == 1e-5
    torch.testing.assert_close(state["optimizers"]["G"]["param_groups"][0]["lr"], 1e-5)
    assert tuple(state["optimizers"]["D"]["param_groups"][0]["betas"]) == (0.0, 0.9)
    torch.testing.assert_close(state["optimizers"]["D"]["param_groups"][0]["lr"], 2e-4)  # not overridden: kept
    before = checkpoint.load(tiny_checkpoint)["optimizers"]["G"]["state"]
    assert int(state["optimizers"]["G"]["state"][0]["step"]) == int(before[0]["step"]) + 2  # Adam's moments went on


def test_resume_refuses_a_change_of_architecture(tmp_path, tiny_checkpoint):
    for override, shown in (("model.z_dim=7", "(model.z_dim=8)"), ("model.g.width=16", "(model.g.width=8)"),
                            ("+model.g.depth=3", "(model.g.depth=absent)")):
        one_line_error(gan_here("train", f"resume={tiny_checkpoint}", "train.steps=6", override, cwd=tmp_path),
                       f"resume: {override.lstrip('+')} changes the architecture", shown)
    same = gan_here("train", f"resume={tiny_checkpoint}", "train.steps=6", "model.z_dim=8",
                    f"hydra.run.dir={tmp_path / 'same'}", cwd=tmp_path)
    assert same.returncode == 0, same.stderr  # restating the run's own value is no change
    assert sorted(p.name for p in tmp_path.iterdir()) == ["same"]


def test_resume_refuses_steps_already_done(tmp_path, tiny_checkpoint):
    for steps in (4, 2):
        one_line_error(gan_here("train", f"resume={tiny_checkpoint}", f"train.steps={steps}", cwd=tmp_path),
                       "the checkpoint is at step 4", f"train.steps={steps} asks for no more")
    assert list(tmp_path.iterdir()) == []
