"""The arithmetic of `gan latent-arithmetic` on known vectors, its figures, and soft labels in G."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from gan_cli import visuals
from gan_cli.errors import UserError
from gan_cli.latent import (combine, generate, generate_batches, lerp, parse_expr, render, seeded_latents,
                             seeded_noise, seeded_z, slerp, walk)
from gan_cli.models import dcgan, mlp


# -- paths ---------------------------------------------------------------------------------------------

def test_slerp_ends_are_the_inputs():
    a, b = seeded_z(2, 16, seed=5)
    assert_close(slerp(a, b, 0.0), a)
    assert_close(slerp(a, b, 1.0), b)
    points = walk(a, b, 7, "slerp")
    assert points.shape == (7, 16)
    assert_close(points[0], a)
    assert_close(points[-1], b)


def test_slerp_of_orthogonal_unit_vectors_at_the_middle():
    a, b = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0])
    # omega = pi/2: sin(pi/4) / sin(pi/2) = 1/sqrt(2) of each; the straight line would give 0.5 of each
    assert_close(slerp(a, b, 0.5), torch.tensor([1 / math.sqrt(2), 1 / math.sqrt(2), 0.0]))
    # a third of the way: the angle pi/6 from a, so (cos pi/6, sin pi/6, 0)
    assert_close(slerp(a, b, 1 / 3), torch.tensor([math.sqrt(3) / 2, 0.5, 0.0]))


def test_slerp_keeps_unit_norm_where_lerp_cuts_the_corner():
    a, b = torch.tensor([0.6, 0.8, 0.0]), torch.tensor([0.0, 0.6, 0.8])
    assert_close(walk(a, b, 11, "slerp").norm(dim=1), torch.ones(11))
    # the straight line's middle, (0.3, 0.7, 0.4), has norm sqrt(0.74)
    assert_close(walk(a, b, 3, "lerp")[1].norm(), torch.tensor(math.sqrt(0.74)))


def test_slerp_of_parallel_vectors_is_the_straight_line():
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([3.0, 0.0])  # no single great circle: lerp
    assert_close(slerp(a, b, 0.5), torch.tensor([2.0, 0.0]))
    assert_close(slerp(a, a, 0.25), a)  # the same vector twice stays put, no 0/0


def test_lerp():
    a, b = torch.tensor([1.0, 2.0]), torch.tensor([3.0, -2.0])
    assert_close(lerp(a, b, 0.5), torch.tensor([2.0, 0.0]))
    assert_close(lerp(a, b, 0.25), torch.tensor([1.5, 1.0]))
    assert_close(walk(a, b, 5, "lerp")[:, 0], torch.tensor([1.0, 1.5, 2.0, 2.5, 3.0]))


# -- sums ----------------------------------------------------------------------------------------------

def test_combine_takes_signed_means():
    groups = {"a": torch.tensor([[1.0, 0.0], [3.0, 0.0]]),               # mean (2, 0)
              "b": torch.tensor([[0.0, 1.0], [0.0, 3.0], [0.0, 2.0]]),   # mean (0, 2)
              "c": torch.tensor([[1.0, 1.0]])}                           # mean (1, 1)
    assert_close(combine(groups, {"a": 1, "b": -1, "c": 1}), torch.tensor([3.0, -1.0]))
    assert_close(combine(groups, {"a": -1, "b": 1}), torch.tensor([-2.0, 2.0]))
    assert_close(combine(groups, {"a": 2, "c": -1}), torch.tensor([3.0, -1.0]))  # 'a + a - c'


@pytest.mark.parametrize("expr,terms", [
    ("a - b + c", [(1, "a"), (-1, "b"), (1, "c")]),
    ("-a+b", [(-1, "a"), (1, "b")]),
    ("+smiling_woman - neutral_woman + neutral_man", [(1, "smiling_woman"), (-1, "neutral_woman"), (1, "neutral_man")]),
    ("a", [(1, "a")]),
])
def test_parse_expr(expr, terms):
    assert parse_expr(expr) == terms


@pytest.mark.parametrize("expr,message", [
    ("", "names no group"),
    ("a b", "'a b' needs a + or - between them"),
    ("a + - b", "two signs in a row"),
    ("a -", "ends in a sign"),
    ("a * b", "'*' is neither + nor - nor a group name"),
    ("2a", "'2' is neither"),
])
def test_parse_expr_refuses_bad_sums(expr, message):
    with pytest.raises(UserError) as refused:
        parse_expr(expr)
    assert message in str(refused.value)


def test_noise_is_seeded_and_apart_from_the_z():
    assert_close(seeded_noise(4, 8, seed=3), seeded_noise(4, 8, seed=3))
    assert not torch.equal(seeded_noise(4, 8, seed=3), seeded_noise(4, 8, seed=4))
    assert not torch.equal(seeded_noise(4, 8, seed=3), seeded_z(4, 8, seed=3))


# -- figures -------------------------------------------------------------------------------------------

def test_tile_rows_pads_short_rows_and_blanks_with_white():
    img = -torch.ones(1, 4, 4)  # black
    grid = visuals.tile_rows([[img, None, img], [img]])
    assert grid.shape == (3, 2 * (4 + 2) + 2, 3 * (4 + 2) + 2)  # 2 rows x 3 columns of 4 px, 2 px padding
    assert_close(grid[:, 2:6, 2:6], torch.zeros(3, 4, 4))     # row 0, column 0: the image
    assert_close(grid[:, 2:6, 8:12], torch.ones(3, 4, 4))     # row 0, column 1: None
    assert_close(grid[:, 8:12, 14:18], torch.ones(3, 4, 4))   # row 1, column 2: past the row's end


def test_annotate_writes_in_the_tile_corners_only():
    grid = visuals.image_grid(torch.zeros(6, 1, 30, 30), nrow=3)  # mid grey tiles, white padding
    labelled = visuals.annotate(grid, [str(i) for i in range(6)], nrow=3, tile=(30, 30))
    assert labelled.shape == grid.shape
    changed = (labelled - grid).abs().amax(dim=0) > 2 / 255
    for row in range(2):
        for col in range(3):
            y, x = 2 + row * 32, 2 + col * 32
            assert changed[y:y + 12, x:x + 12].any(), (row, col)   # the number, top left
            assert not changed[y + 15:y + 30, x:x + 30].any()       # the lower half untouched


# -- soft labels: a float (N, classes) label mixes the classes' one-hot vectors or embeddings ------------

@pytest.mark.parametrize("make", [
    lambda: dcgan.Generator(8, (1, 16, 16), width=8, num_classes=10),
    lambda: dcgan.Generator(8, (1, 16, 16), width=8, num_classes=10, embed_dim=4),
    lambda: mlp.Generator(8, (1, 16, 16), hidden=32, num_classes=10),
], ids=["dcgan-one-hot", "dcgan-embedding", "mlp"])
def test_a_one_hot_float_label_is_the_class(make):
    torch.manual_seed(0)
    G = make().eval()
    z, y = seeded_z(4, 8, seed=0), torch.tensor([0, 3, 7, 9])
    with torch.no_grad():
        assert_close(G(z, F.one_hot(y, 10).float()), G(z, y))


def test_a_half_and_half_label_mixes_the_embeddings():
    torch.manual_seed(0)
    G = dcgan.Generator(8, (1, 16, 16), width=8, num_classes=10, embed_dim=4).eval()
    z = seeded_z(1, 8, seed=0)
    soft = 0.5 * F.one_hot(torch.tensor([1]), 10).float() + 0.5 * F.one_hot(torch.tensor([3]), 10).float()
    mixed = 0.5 * (G.embed.weight[1] + G.embed.weight[3])
    with torch.no_grad():
        by_hand = G.net(torch.cat([z, mixed[None]], dim=1)[:, :, None, None])
        assert_close(G(z, soft), by_hand)
        assert not torch.allclose(G(z, soft), G(z, torch.tensor([1])))


# -- generate: G's images of the seed's latents, the one way every command draws samples -----------------

def test_generate_is_the_seeds_latents_in_any_batch_size():
    torch.manual_seed(0)
    G = mlp.Generator(8, (2,), hidden=16, num_classes=3, tanh=False)
    whole = seeded_latents(10, 8, seed=4, num_classes=3)  # 4 per class: 12 rows
    with torch.no_grad():
        expected = G(whole.z, whole.y)
    assert_close(generate(G, 10, 4, 3, "cpu"), expected[:10])  # n of them: the classes in turn
    assert_close(generate(G, 10, 4, 5, "cpu", whole_rows=True), expected)  # whole rows, as gan sample shows
    assert_close(render(G, whole, 7, "cpu"), expected)
    assert [start for start, _ in generate_batches(G, 10, 4, 4, "cpu")] == [0, 4, 8]


def test_generate_runs_g_in_eval_mode_without_gradients_and_gives_it_back_as_it_was():
    G = dcgan.Generator(8, (1, 16, 16), width=8)  # batch norm: in train mode an image depends on its batch
    G.train()
    one = generate(G, 6, 0, 1, "cpu")
    assert G.training
    assert_close(generate(G, 6, 0, 6, "cpu"), one)
    for _, images in generate_batches(G, 6, 0, 2, "cpu"):
        assert torch.is_grad_enabled() and not images.requires_grad  # no_grad does not leak to the caller
