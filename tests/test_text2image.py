"""Text-to-image, GAN-INT-CLS (Reed et al. 2016): captions, the matching-aware D's loss and GAN-INT by hand,
the refusals through the real command, and one short run from `gan train` to `gan sample text=`."""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F

from gan_cli import checkpoint
from gan_cli.algorithms.text2image import gan_cls_d_loss, gan_int_g_loss, interpolate
from gan_cli.attributes import captions
from gan_cli.attributes.captions import Captions, decode, encode
from tests.helpers import TINY, TINY_MODEL, gan, one_line_error

NAMES = ["thickness", "slant"]
# a real, tiny text-to-image run: 128 MNIST digits (measured once, then cached), narrow networks
T2I_TINY = [*TINY_MODEL, "algorithm=text2image", "model=text2image", "model.text_dim=16", "model.g.embed_dim=8",
            "model.g.hidden=16", "model.g.project_dim=8", "model.d.project_dim=8", "data=mnist", "data.limit=128",
            "data.attributes=[thickness,slant]", "algorithm.encoder_steps=5", "algorithm.encoder_batch=16"]


def words_of(name: str, value: int, form: str = "both") -> set[str]:
    w = captions.WORDING[name]
    tables = {"adjectives": w.adjectives, "phrases": w.phrases}
    return {p for key, t in tables.items() if form in ("both", key) for p in t[value]}


# -- captions -----------------------------------------------------------------------------------------

def test_each_template_says_the_digit_and_each_attribute_once():
    caps = Captions(NAMES)
    assert caps.text(7, (1, 1), template=1) == "a thick seven leaning right"
    assert caps.text(3, (0, 0), template=0) == "a thin upright three"
    assert caps.text(3, (1, 0), template=5) == "a three that is thick and upright"
    gen = torch.Generator().manual_seed(0)
    labels, values = torch.arange(10).repeat(40), torch.randint(2, (400, 2), generator=gen).float()
    for t in range(len(captions.TEMPLATES)):
        texts = decode(caps.tokens(labels, values, gen, templates=torch.full((400,), t)))
        for text, d, v in zip(texts, labels.tolist(), values.long().tolist()):
            assert f" {captions.DIGITS[d]}" in f" {text}", text
            for j, name in enumerate(NAMES):
                said = [p for p in words_of(name, v[j]) if re.search(rf"\b{p}\b", text)]
                assert said, (text, name, v[j])
                # never a word of the other value (upright is in "standing upright", hence whole phrases)
                other = [p for p in words_of(name, 1 - v[j]) if re.search(rf"\b{p}\b", text)]
                assert not other, (text, other)


def test_training_draws_only_the_training_templates_and_the_split_is_fixed():
    assert captions.HELD_OUT == (6, 7) and captions.TRAINING == (0, 1, 2, 3, 4, 5)
    caps = Captions(NAMES)
    gen = torch.Generator().manual_seed(1)
    n = 3000
    texts = decode(caps.tokens(torch.randint(10, (n,), generator=gen), torch.randint(2, (n, 2), generator=gen).float(),
                               gen))
    digit = "|".join(captions.DIGITS)
    phrase_start = "with|written|standing|held|leaning|slanted|tilted"
    # held-out 6: "the digit <d>" then phrases; held-out 7: "a handwritten <d>"
    assert not [t for t in texts if re.match(rf"the digit ({digit}) ({phrase_start})\b", t)]
    assert not [t for t in texts if re.match(rf"a handwritten ({digit})\b", t)]
    assert any(t.startswith("the digit") for t in texts) and any(t.startswith("a handwritten") for t in texts)
    assert len({t for t in texts}) > 500  # templates and synonyms vary


def test_token_ids_round_trip_through_strings():
    caps = Captions(NAMES)
    gen = torch.Generator().manual_seed(2)
    tokens = caps.tokens(torch.randint(10, (64,), generator=gen), torch.randint(2, (64, 2), generator=gen).float(), gen)
    again, unknown = encode(decode(tokens))
    assert unknown == []
    torch.testing.assert_close(again, tokens[:, :again.shape[1]], rtol=0, atol=0)
    assert not tokens[:, again.shape[1]:].any()  # only padding beyond the longest caption
    ids, unknown = encode(["A Thick, SEVEN leaning right!", "purple three"])
    assert decode(ids) == ["a thick seven leaning right", "three"] and unknown == ["purple"]


def test_a_mismatched_description_differs_in_exactly_one_field():
    caps = Captions(NAMES)
    gen = torch.Generator().manual_seed(3)
    labels, values = torch.randint(10, (500,), generator=gen), torch.randint(2, (500, 2), generator=gen).float()
    wrong_labels, wrong_values = caps.mismatched(labels, values, gen)
    changed = (wrong_labels != labels).long() + (wrong_values != values).long().sum(1)
    assert (changed == 1).all()
    assert set(wrong_values.unique().tolist()) <= {0.0, 1.0}
    assert 100 < (wrong_labels != labels).sum() < 240  # a third of them


def test_captions_refuse_an_attribute_without_words():
    from gan_cli.errors import UserError

    with pytest.raises(UserError, match="no words for attribute 'colour'"):
        Captions(["thickness", "colour"])


# -- the objectives, by hand ---------------------------------------------------------------------------

def test_gan_cls_d_loss_is_algorithm_1():
    real, wrong, fake = torch.tensor([2.0, -1.0]), torch.tensor([0.5, 1.5]), torch.tensor([-3.0, 0.0])
    sig = torch.sigmoid
    # L_D = log D(x, h) + (log(1 - D(x, h^)) + log(1 - D(x^, h))) / 2, maximised; the loss is its negative
    by_hand = -(torch.log(sig(real)).mean() + (torch.log(1 - sig(wrong)).mean() + torch.log(1 - sig(fake)).mean()) / 2)
    torch.testing.assert_close(gan_cls_d_loss(real, wrong, fake), by_hand)


def test_gan_int_mixes_each_caption_with_the_previous_one_and_adds_its_term():
    h = torch.tensor([[1.0, 0.0], [0.0, 2.0], [4.0, 4.0]])
    torch.testing.assert_close(interpolate(h, 0.5), torch.tensor([[2.5, 2.0], [0.5, 1.0], [2.0, 3.0]]))
    torch.testing.assert_close(interpolate(h, 1.0), h)
    fake, mixed = torch.tensor([1.0, -2.0]), torch.tensor([0.0, 3.0])
    sig = torch.sigmoid
    by_hand = -torch.log(sig(fake)).mean() - 0.7 * torch.log(sig(mixed)).mean()
    torch.testing.assert_close(gan_int_g_loss(fake, mixed, 0.7), by_hand)
    torch.testing.assert_close(gan_int_g_loss(fake, None, 0.7), F.softplus(-fake).mean())


# -- through the real command ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained(tmp_path_factory, mnist_root):
    run = tmp_path_factory.mktemp("text2image")
    gan("train", *T2I_TINY, f"hydra.run.dir={run}", cwd=run, check=True)
    return run


def test_train_then_sample_a_caption(trained, tmp_path):
    state = checkpoint.load(trained / "checkpoints" / "last.pt")
    assert state["algorithm"]["attributes"] == NAMES and state["algorithm"]["thresholds"].shape == (2,)
    assert state["models"]["G"]["_extra_state"]["vocabulary"] == list(captions.VOCABULARY)
    before = checkpoint.load(trained / "checkpoints" / "step_0000002.pt")["models"]["G"]
    for key, weight in state["models"]["G"].items():  # frozen after its pre-training: GAN steps never move it
        if key.startswith("encoder."):
            torch.testing.assert_close(weight, before[key], rtol=0, atol=0)
    assert (trained / "samples" / "step_0000004.png").is_file()
    proc = gan("sample", f"checkpoint={trained}/checkpoints/last.pt", "text=[a thin upright three,a bold purple seven]",
               "n=3", f"out={tmp_path}/s.pt", "device=cpu", cwd=tmp_path, check=True)
    assert "a bold seven" in proc.stdout and "purple" in proc.stderr + proc.stdout  # the ignored word, named
    out = torch.load(tmp_path / "s.pt", weights_only=True)
    assert out["samples"].shape == (6, 1, 28, 28) and out["text"][3] == "a bold seven"
    G = checkpoint.Saved.load(trained / "checkpoints" / "last.pt").generator(torch.device("cpu"))
    with torch.no_grad():
        torch.testing.assert_close(out["samples"], G(out["z"], out["tokens"]))
    torch.testing.assert_close(out["z"][:3], out["z"][3:])  # the same z in every caption's row
    gan("sample", f"checkpoint={trained}/checkpoints/last.pt", "text=a thick seven leaning right", "n=4",
        f"out={tmp_path}/s.png", cwd=tmp_path, check=True)
    assert (tmp_path / "s.png").is_file()


@pytest.mark.parametrize("args,needles", [
    (["text=purple dog"], ["text='purple dog' has no word this model knows"]),
    ([], ["give text="]),
    (["text=a three", "label=3"], ["label=3 does not apply"]),
    (["text=[]"], ["text=[]"]),
    (["text=a three", "nrow=4"], ["nrow=4", "one row"]),
])
def test_bad_text_is_one_line_and_writes_nothing(trained, tmp_path, args, needles):
    proc = gan("sample", f"checkpoint={trained}/checkpoints/last.pt", *args, f"out={tmp_path}/x.png", cwd=tmp_path)
    one_line_error(proc, *needles)
    assert not (tmp_path / "x.png").exists()


def test_commands_that_give_no_caption_are_one_line(trained, tmp_path):
    proc = gan("latent-arithmetic", f"checkpoint={trained}/checkpoints/last.pt", "a=[1]", "b=[2]", "c=[3]", cwd=tmp_path)
    one_line_error(proc, "draws images of captions", "text=")


def test_text_on_a_model_that_reads_none_is_one_line(tmp_path):
    gan("train", *TINY, f"hydra.run.dir={tmp_path}/dcgan", cwd=tmp_path, check=True)
    proc = gan("sample", f"checkpoint={tmp_path}/dcgan/checkpoints/last.pt", "text=a thin three", f"out={tmp_path}/x.png", cwd=tmp_path)
    one_line_error(proc, "does not read text")
    assert not (tmp_path / "x.png").exists()


FAKE = ["data=fake", "data.n=64", "data.resolution=16", "data.channels=1"]


@pytest.mark.parametrize("overrides,needles", [
    ([*FAKE, "algorithm=text2image", "model=text2image"],
     ["algorithm=text2image", "data=fake has no measured attributes", "data.attributes=[thickness,slant]"]),
    ([*FAKE, "data.num_classes=3", "algorithm=text2image", "model=text2image"], ["3 classes, not ten digits"]),
    (["algorithm=text2image", "model=dcgan", "data=mnist", "data.limit=128", "data.attributes=[thickness]"],
     ["use model=text2image"]),
    ([*FAKE, "model=text2image"], ["trained by algorithm=text2image"]),
    (["algorithm=text2image", "model=text2image", "data=mnist", "data.limit=128", "data.attributes=[slant]",
      "algorithm.mismatch=random"], ["algorithm.mismatch=random", "field", "batch"]),
])
def test_impossible_settings_are_refused_in_one_line(tmp_path, overrides, needles, mnist_root):
    proc = gan("train", *TINY_MODEL, *overrides, f"hydra.run.dir={tmp_path}/r", cwd=tmp_path)
    one_line_error(proc, *needles)
    assert not (tmp_path / "r").exists()


def test_mismatched_text_is_another_image_caption_or_one_field_changed():
    from types import SimpleNamespace

    from gan_cli.algorithms.text2image import Text2Image
    from gan_cli.models.text2image import Discriminator, Generator

    G, D = Generator(4, (1, 28, 28), width=4, text_dim=8, embed_dim=4, hidden=4, project_dim=4), \
        Discriminator((1, 28, 28), width=4, text_dim=8, project_dim=4)
    run = SimpleNamespace(z_gen=torch.Generator().manual_seed(0))
    labels, values = torch.tensor([1, 2, 3]), torch.tensor([[0.0, 1.0], [1.0, 1.0], [0.0, 0.0]])
    for mode in ("batch", "field"):
        algorithm = Text2Image({"G": G, "D": D}, {}, mismatch=mode)
        algorithm.captions = Captions(NAMES)
        text = algorithm.captions.tokens(labels, values, run.z_gen)
        wrong = algorithm._mismatched(run, labels, values, text)
        if mode == "batch":  # the paper's: the previous image's caption
            torch.testing.assert_close(wrong, text.roll(1, dims=0), rtol=0, atol=0)
        else:
            for caption, d, v in zip(decode(wrong), labels.tolist(), values.long().tolist()):
                same_digit = f" {captions.DIGITS[d]}" in f" {caption}"
                same = [bool([p for p in words_of(n, v[j]) if re.search(rf"\b{p}\b", caption)])
                        for j, n in enumerate(NAMES)]
                assert [same_digit, *same].count(False) == 1, caption


@pytest.mark.slow
def test_a_resumed_run_ends_as_a_straight_one(trained, tmp_path):
    from tests.helpers import assert_resumes_bit_exact

    assert_resumes_bit_exact(trained, tmp_path, T2I_TINY, stop=2, steps=4)


def test_diagnose_probes_samples_of_captions(trained):
    from omegaconf import OmegaConf

    from gan_cli import build
    from gan_cli.diagnose.samples import probe
    from tests.helpers import compose_config

    saved = checkpoint.Saved.load(trained / "checkpoints" / "last.pt")
    data = build.data(OmegaConf.create(saved.config))
    t = OmegaConf.to_container(compose_config(overrides=[]).thresholds.mode_collapse)
    found = probe(saved, data, data.draw(32, 0), 0, t, torch.device("cpu"))  # captions of 32 training images
    assert found.step == 4 and found.grid.shape == (16, 1, 28, 28)


def test_data_without_labels_is_refused_in_one_line(tmp_path):
    from PIL import Image

    for i in range(4):
        Image.new("L", (16, 16), i * 60).save(tmp_path / f"{i}.png")
    proc = gan("train", *TINY_MODEL, "data=folder", f"data.root={tmp_path}", "data.resolution=16",
               "algorithm=text2image", "model=text2image", f"hydra.run.dir={tmp_path}/r", cwd=tmp_path)
    one_line_error(proc, "has no labels", "data=mnist data.attributes=[thickness,slant]")
    assert not (tmp_path / "r").exists()
