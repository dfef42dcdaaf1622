"""One line for every wrong type: config values are checked against the types their component declares
(its signature is its schema), and sizes against the component's own ranges, before anything is built."""

from __future__ import annotations

from typing import Literal, Optional, Union

import pytest

from gan_cli.typecheck import describe, fits
from tests.helpers import TINY, gan_here, one_line_error


@pytest.mark.parametrize("value,hint,ok", [
    (3, int, True), (True, int, False), ("abc", int, False), (3, float, True), (2.5, int, False),
    (None, Optional[int], True), ("x", Optional[int], False), (True, bool, True), ("maybe", bool, False),
    ([0.5, 0.9], tuple[float, float], True), ([0.5], tuple[float, float], False), ([1, "a"], list[int], False),
    ("batch", Literal["batch", "none"], True), ("bn", Literal["batch", "none"], False),
    (1e-4, Union[float, "torch.Tensor"], True), ([1, 2], int, False),
])
def test_values_against_annotations(value, hint, ok):
    assert fits(value, hint) is ok


def test_descriptions_say_what_a_value_must_be():
    assert describe(int) == "an integer" and describe(bool) == "true or false"
    assert describe(Optional[int]) == "an integer or null"
    assert describe(tuple[float, float]) == "a list of 2 (a number, a number)"


@pytest.mark.parametrize("overrides,message", [
    (["model.z_dim=abc"], "model.z_dim=abc must be an integer"),
    (["model.g.width=abc"], "model.g.width=abc must be an integer"),
    (["model.d.width=[1,2]"], "model.d.width=[1, 2] must be an integer"),
    (["model.d.spectral_norm=maybe"], "model.d.spectral_norm=maybe must be true or false"),
    (["optimizer.g.betas=[0.5]"], "optimizer.g.betas=[0.5] must be a list of 2"),
    (["model.g.width=0"], "model.g.width=0 must be a positive integer"),
    (["model=mlp", "model.g.hidden=0"], "model.g.hidden=0 must be a positive integer"),
    (["model=mlp", "model.d.dropout=1.5"], "model.d.dropout=1.5 must be a probability"),
    (["loss=wgan", "loss.clip=-1"], "loss.clip=-1 must be positive"),
    (["loss=wgan_gp", "loss.gp_weight=ten"], "loss.gp_weight=ten must be a number"),
])
def test_wrong_types_and_sizes_are_one_line(tmp_path, overrides, message):
    tiny = [o for o in TINY if not (o.startswith("model.") and any(x.startswith("model=") for x in overrides))]
    one_line_error(gan_here("train", *tiny, *overrides, cwd=tmp_path), message)
    assert list(tmp_path.iterdir()) == []
