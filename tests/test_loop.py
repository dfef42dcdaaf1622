"""The loop runs any algorithm: one defined here in a few lines goes through the real fit with every
default callback on, and resumes bit for bit."""

from __future__ import annotations

import json

import torch
from omegaconf import OmegaConf
from torch import nn

from gan_cli import build
from gan_cli.algorithms.base import Algorithm, Phase
from gan_cli.data.source import TensorData
from gan_cli.diagnose.live import Watch as Detectors
from gan_cli.latent import seeded_latents
from gan_cli.loop import Run, Schedule, fit
from tests.helpers import compose_config


class MeanImage(Algorithm):
    """A tiny algorithm: G (no D) learns the data's mean image by least squares on each real batch."""

    def __init__(self, G: nn.Module, lr: float = 5.0):
        super().__init__({"G": G}, {"G": torch.optim.SGD(G.parameters(), lr=lr)})
        self.num_classes = None
        self.phases = [Phase("fit", self.fit_step)]

    def fit_step(self, run) -> dict[str, torch.Tensor]:
        batch = run.next_batch()
        fake = self.models["G"](run.z(len(batch), self.models["G"].z_dim))
        loss = ((fake - batch.images.mean(0)) ** 2).mean()
        self.optimizers["G"].zero_grad()
        loss.backward()
        self.optimizers["G"].step()
        return {"loss/g": loss.detach()}


class Affine(nn.Module):
    """z -> a 1x8x8 image: enough of a generator for the loop."""

    def __init__(self, z_dim: int = 4):
        super().__init__()
        self.z_dim, self.num_classes = z_dim, None
        self.net = nn.Linear(z_dim, 64)

    def forward(self, z, y=None):
        return torch.tanh(self.net(z)).view(-1, 1, 8, 8)


def every_callback(evaluations: list[int]):
    """conf/callbacks/default.yaml with everything on, a step apart: the real build, the real classes."""
    cfg = compose_config(overrides=["train.log_every=2", "train.sample_every=2", "train.checkpoint_every=2",
                                    "train.eval_every=2", "train.max_minutes=60"])

    def evaluator(algorithm: Algorithm) -> dict[str, float]:  # the Evaluation callback hands it the algorithm
        G = algorithm.sampler
        evaluations.append(1)
        with torch.no_grad():
            return {"spread": float(G(torch.randn(16, G.z_dim)).std())}

    return build.callbacks(cfg, evaluator=evaluator, best_metric="spread", lower_is_better=True,
                           detectors=Detectors(OmegaConf.to_container(cfg.thresholds), {}, []), hparams={"lr": 0.1})


def _run(tmp_path, steps: int) -> Run:
    torch.manual_seed(0)
    data = TensorData("grey", torch.full((64, 1, 8, 8), 200, dtype=torch.uint8))  # every image the same grey
    return Run(MeanImage(Affine()), data, Schedule(steps=steps, batch_size=8), tmp_path, torch.device("cpu"),
               seed=0, fixed=seeded_latents(4, 4, 0), config={"note": "a test"})


def test_a_tiny_algorithm_runs_through_the_loop_with_every_callback(tmp_path):
    evaluations = []
    result = fit(_run(tmp_path, 6), every_callback(evaluations))
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4, 6] and rows[0]["loss/g"] > rows[1]["loss/g"] > rows[2]["loss/g"]
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == [
        "real.png", "step_0000002.png", "step_0000004.png", "step_0000006.png"]
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "best.pt", "last.pt", "step_0000002.pt", "step_0000004.pt"]
    assert len(evaluations) == 3 and len((tmp_path / "evals.jsonl").read_text().splitlines()) == 3
    assert result.step == 6 and result.last == {k: v for k, v in rows[-1].items() if k != "step"} and result.checkpoint == tmp_path / "checkpoints" / "last.pt"
    assert result.best[0] == "spread" and result.stopped_by is None
    saved = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)
    assert set(saved["models"]) == {"G"} and saved["step"] == 6 and saved["algorithm"] == {}


def test_a_tiny_algorithm_resumes_bit_for_bit(tmp_path):
    straight = _run(tmp_path / "a", 6)
    fit(straight, [])
    first = _run(tmp_path / "b", 3)
    fit(first, [])
    resumed = _run(tmp_path / "c", 6)
    resumed.load_state_dict(first.state_dict(), tmp_path / "b" / "state")
    fit(resumed, [])
    for a, b in zip(straight.algorithm.models["G"].parameters(), resumed.algorithm.models["G"].parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert resumed.data_position == straight.data_position == 6


def test_phases_repeat_and_run_every_nth_step(tmp_path):
    calls = []

    class Counting(MeanImage):
        def __init__(self):
            super().__init__(Affine())
            self.phases = [Phase("twice", lambda run: calls.append(("twice", run.step)) or {}, repeat=2),
                           Phase("lazy", lambda run: calls.append(("lazy", run.step)) or {}, every=3)]

    run = _run(tmp_path, 4)
    run.algorithm = Counting()
    fit(run, [])
    assert calls == [("twice", 0), ("twice", 0), ("lazy", 0), ("twice", 1), ("twice", 1), ("twice", 2),
                     ("twice", 2), ("twice", 3), ("twice", 3), ("lazy", 3)]
