"""Concept directions from measured attributes: the direction by hand, and `gan latent-arithmetic
concept=` through the real command."""

from __future__ import annotations

import json

import pytest
import torch
from torch.testing import assert_close

from gan_cli import concepts
from tests.helpers import gan_here, one_line_error


def test_the_direction_is_the_top_groups_mean_minus_the_bottom_groups():
    latents = torch.tensor([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0], [3.0, -1.0], [4.0, 5.0], [5.0, 0.0],
                            [6.0, 6.0], [7.0, 7.0]])
    rated = torch.tensor([0.1, 0.4, 0.2, 0.9, float("nan"), 0.5, 0.3, 0.8])  # the NaN (no stroke) is left out
    found = concepts.direction(latents, rated, share=0.25)  # 7 rated: groups of 1
    assert found.count == 1
    assert_close(found.vector, latents[3] - latents[0])
    assert (found.low, found.high) == pytest.approx((0.1, 0.9))
    two = concepts.direction(latents, rated, share=0.3)  # groups of 2: {3, 7} high, {0, 2} low
    assert_close(two.vector, (latents[3] + latents[7]) / 2 - (latents[0] + latents[2]) / 2)


def test_a_sweep_moves_each_latent_by_each_strength():
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    moved = concepts.sweep(z, torch.tensor([2.0, -1.0]), torch.tensor([-1.0, 0.0, 0.5]))
    assert_close(moved, torch.tensor([[[-1.0, 1.0], [-2.0, 2.0]], [[1.0, 0.0], [0.0, 1.0]],
                                      [[2.0, -0.5], [1.0, 0.5]]]))
    assert concepts.monotonic(torch.tensor([1.0, 1.0, 2.0])) and not concepts.monotonic(torch.tensor([1.0, 0.9]))


def test_concept_writes_the_figure_the_curve_and_the_direction(tmp_path, tiny_checkpoint):
    run = tmp_path / "concept"
    proc = gan_here("latent-arithmetic", f"checkpoint={tiny_checkpoint}", "concept=thickness", "concept_pool=64",
                    "concept_probe=8", "concept_rows=3", "strengths=[-1,0,1]", f"hydra.run.dir={run}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for name in ("concept.png", "concept_curve.png", "latents.pt", "request.json"):
        assert (run / name).is_file(), name
    request = json.loads((run / "request.json").read_text())
    assert request["mode"] == "concept" and request["concept"] == "thickness"
    assert request["group_means"]["count"] == 16  # a quarter of the pool in each group
    assert request["group_means"]["high"] > request["group_means"]["low"]
    means = torch.tensor(request["measured_mean"])
    assert len(means) == 3 and request["monotonic"] == concepts.monotonic(means)
    saved = torch.load(run / "latents.pt", weights_only=True)
    assert saved["measured"].shape == (3, 8)
    assert_close(saved["measured"].nanmean(dim=1), means)
    assert saved["direction"].shape == (8,)  # the tiny model's z_dim
    from PIL import Image

    # three rows of three 16 px tiles, 2 px apart
    assert Image.open(run / "concept.png").size == (3 * 18 + 2, 3 * 18 + 2)


@pytest.mark.parametrize("overrides, needle", [
    (["concept=thick"], "concept=thick is not a measured attribute; choose one of area, length, thickness"),
    (["mode=concept"], "mode=concept needs concept="),
    (["concept=slant", "mode=interpolate"], "concept=slant is its own mode (mode=concept)"),
    (["concept=slant", "concept_share=0.7"], "concept_share=0.7"),
    (["concept=slant", "a=[1,2]"], "a= is for mode=arithmetic"),
    (["concept=slant", "strengths=[]"], "strengths=[]: give finite multiples"),
])
def test_bad_concept_settings_are_one_line(tmp_path, tiny_checkpoint, overrides, needle):
    run = tmp_path / "concept"
    proc = gan_here("latent-arithmetic", f"checkpoint={tiny_checkpoint}", *overrides, f"hydra.run.dir={run}",
                    cwd=tmp_path)
    one_line_error(proc, needle)
    assert not run.exists()
