"""Captions of digits from their label and measured attributes ("a thick seven leaning right", "a thin
upright three"), for text-to-image (Reed et al. 2016, GAN-INT-CLS; gan_cli/algorithms/text2image.py).

A caption is built from a template and, for each attribute, one synonym of the word for its binarised
value: thick/bold/heavy above the threshold, thin/light/fine below it; slant: italic/slanted/sloping or
"leaning right" above, upright/straight/vertical below. An attribute's value is said either as an
adjective before the digit ("a thick three") or as a phrase after it ("a three with thick strokes").

Templates (TEMPLATES; `{adj}` is every attribute as an adjective in the data's order, `{adj_rev}` in
reverse, `{pred}` the adjectives joined by "and", `{post}` the phrases, `{adj_first}` / `{post_rest}` the
first attribute as an adjective and the others as phrases):
  0  a {adj} {digit}                       training
  1  a {adj_first} {digit} {post_rest}     training
  2  a {digit} {post}                      training
  3  the digit {digit} {pred}              training
  4  a handwritten {adj_rev} {digit}       training
  5  a {digit} that is {pred}              training
  6  the digit {digit} {post_rev}          held out
  7  a handwritten {digit} that is {pred_rev}   held out
The split is fixed (HELD_OUT): training draws templates 0-5 only; the held-out ones arrange words seen in
training in orders never seen, so a text encoder that read words one by one, not whole captions by
heart, still reads them (bench/text2image_match.py measures the samples of held-out captions).

Captions are made on the device at every step (Captions.tokens): each template is a row of slots, each
slot a row of a phrase table of token ids (a fixed word, the digit's word, or attribute j's word for its
value, in one of its synonyms), so a batch of captions is a few gathers, never a Python string per image.
Strings are for people only: `decode` for pictures, `encode` for `gan sample text=`.

Word-level tokens, not characters: the vocabulary is small (VOCABULARY, 60 words) and closed, every
word is a unit of meaning, and there are no misspellings to be robust to; a character-level encoder
(Reed et al.'s char-CNN-RNN) earns its depth on open vocabularies and costs steps we do not have here."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from gan_cli.errors import UserError

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


@dataclass(frozen=True)
class Wording:
    """An attribute's words: (below its threshold, above it), each a tuple of synonyms; `adjectives` go
    before the digit, `phrases` after it."""

    adjectives: tuple[tuple[str, ...], tuple[str, ...]]
    phrases: tuple[tuple[str, ...], tuple[str, ...]]


# Morpho-MNIST's measures (gan_cli/attributes/morpho.py): low value first, high second
WORDING = {
    "thickness": Wording((("thin", "light", "fine"), ("thick", "bold", "heavy")),
                         (("with thin strokes", "with fine strokes", "written lightly"),
                          ("with thick strokes", "with bold strokes", "written heavily"))),
    # slant is in radians, positive leaning right: below the threshold (the median, or 0) is upright
    "slant": Wording((("upright", "straight", "vertical"), ("italic", "slanted", "sloping")),
                     (("standing upright", "standing straight", "held upright"),
                      ("leaning right", "slanted right", "tilted right"))),
    "width": Wording((("narrow", "slim"), ("wide", "broad")),
                     (("drawn narrow", "written narrow"), ("drawn wide", "written wide"))),
    "height": Wording((("short", "squat"), ("tall", "high")),
                      (("drawn short", "written short"), ("drawn tall", "written tall"))),
    "area": Wording((("small", "little"), ("large", "big")),
                    (("with little ink", "drawn small"), ("with much ink", "drawn large"))),
    "length": Wording((("compact", "stubby"), ("long", "elongated")),
                      (("with short strokes", "with a short stroke"), ("with long strokes", "with a long stroke"))),
}

TEMPLATES = (
    "a {adj} {digit}",
    "a {adj_first} {digit} {post_rest}",
    "a {digit} {post}",
    "the digit {digit} {pred}",
    "a handwritten {adj_rev} {digit}",
    "a {digit} that is {pred}",
    "the digit {digit} {post_rev}",
    "a handwritten {digit} that is {pred_rev}",
)
HELD_OUT = (6, 7)  # template indices kept for testing: never drawn in training
TRAINING = tuple(i for i in range(len(TEMPLATES)) if i not in HELD_OUT)
PICTURE_TEMPLATE = 0  # the template of the training pictures' fixed captions

PAD = "<pad>"  # token 0: what short captions are filled up with


def _vocabulary() -> tuple[str, ...]:
    words: list[str] = []
    for text in [*TEMPLATES, *DIGITS, "and"]:
        words += [w for w in re.sub(r"\{\w+\}", " ", text).split()]
    for wording in WORDING.values():
        for synonyms in (*wording.adjectives, *wording.phrases):
            for phrase in synonyms:
                words += phrase.split()
    return (PAD, *dict.fromkeys(words))


VOCABULARY = _vocabulary()  # every word a caption can hold, in a fixed order: its index is its token id


def check_attributes(names: Sequence[str]) -> tuple[str, ...]:
    names = tuple(names)
    unknown = [n for n in names if n not in WORDING]
    if unknown:
        raise UserError(f"captions have no words for attribute {unknown[0]!r}; they describe "
                        f"{', '.join(WORDING)}")
    return names


# -- a template as slots ---------------------------------------------------------------------------------

WORD, DIGIT, ATTRIBUTE = 0, 1, 2  # a slot's kind: a fixed word, the digit's word, attribute j's word
ADJECTIVE, PHRASE = 0, 1


def slots(template: str, k: int) -> list[tuple[int, int, int]]:
    """One template for k attributes as (kind, word id or attribute index, form) slots."""
    order = list(range(k))
    parts: dict[str, list[tuple[int, int, int]]] = {
        "digit": [(DIGIT, 0, 0)],
        "adj": [(ATTRIBUTE, j, ADJECTIVE) for j in order],
        "adj_rev": [(ATTRIBUTE, j, ADJECTIVE) for j in reversed(order)],
        "post": [(ATTRIBUTE, j, PHRASE) for j in order],
        "post_rev": [(ATTRIBUTE, j, PHRASE) for j in reversed(order)],
        "adj_first": [(ATTRIBUTE, j, ADJECTIVE) for j in order[:1]],
        "post_rest": [(ATTRIBUTE, j, PHRASE) for j in order[1:]],
    }
    and_ = (WORD, VOCABULARY.index("and"), 0)
    for name, seq in (("pred", order), ("pred_rev", list(reversed(order)))):
        joined: list[tuple[int, int, int]] = []
        for i, j in enumerate(seq):
            joined += ([and_] if i else []) + [(ATTRIBUTE, j, ADJECTIVE)]
        parts[name] = joined
    out: list[tuple[int, int, int]] = []
    for piece in template.split():
        key = piece[1:-1] if piece.startswith("{") else None
        out += parts[key] if key is not None else [(WORD, VOCABULARY.index(piece), 0)]
    return out


class Captions:
    """The captions of one data set's attributes (names, in the batches' column order), as tensors on
    `device`. tokens(labels, attributes, generator) draws one caption per image: a training template and a
    synonym per attribute, uniformly."""

    def __init__(self, names: Sequence[str], device: torch.device | str = "cpu"):
        self.names = check_attributes(names)
        k = len(self.names)
        self.synonyms = max(len(s) for n in self.names for w in (WORDING[n].adjectives, WORDING[n].phrases) for s in w)
        self.phrase_len = max([1] + [len(p.split()) for n in self.names
                                     for w in (WORDING[n].adjectives, WORDING[n].phrases) for s in w for p in s])
        # the phrase table: a row per vocabulary word, per digit, then per (attribute, value, form, synonym)
        rows = [[i] for i in range(len(VOCABULARY))]
        self.digit_base = len(rows)
        rows += [[VOCABULARY.index(d)] for d in DIGITS]
        self.attribute_base = len(rows)
        count = torch.zeros(max(k, 1), 2, 2, dtype=torch.long)
        for j, name in enumerate(self.names):
            for value in (0, 1):
                for form, table in ((ADJECTIVE, WORDING[name].adjectives), (PHRASE, WORDING[name].phrases)):
                    words = table[value]
                    count[j, value, form] = len(words)
                    for s in range(self.synonyms):
                        rows.append([VOCABULARY.index(w) for w in words[s % len(words)].split()])
        table = torch.zeros(len(rows), self.phrase_len, dtype=torch.long)  # 0 is PAD
        for i, row in enumerate(rows):
            table[i, :len(row)] = torch.tensor(row)
        self.table, self.count = table.to(device), count.to(device)
        layouts = [slots(t, k) for t in TEMPLATES]
        width = max(len(s) for s in layouts)
        kind = torch.full((len(TEMPLATES), width), -1, dtype=torch.long)  # -1: an empty slot
        arg = torch.zeros(len(TEMPLATES), width, dtype=torch.long)
        form = torch.zeros(len(TEMPLATES), width, dtype=torch.long)
        for t, layout in enumerate(layouts):
            for s, (kd, a, f) in enumerate(layout):
                kind[t, s], arg[t, s], form[t, s] = kd, a, f
        self.kind, self.arg, self.form = kind.to(device), arg.to(device), form.to(device)
        self.training = torch.tensor(TRAINING, device=device)
        self.held_out = torch.tensor(HELD_OUT, device=device)
        self.length = width * self.phrase_len  # the longest caption's token count, padding included

    @property
    def device(self) -> torch.device:
        return self.table.device

    def tokens(self, labels: Tensor, attributes: Tensor, generator: torch.Generator | None = None,
               templates: Tensor | None = None) -> Tensor:
        """(N, length) token ids (PAD after the words) of one caption per image: labels (N,) digits,
        attributes (N, k) 0./1.; templates (N,) template indices, or None to draw training ones."""
        n = len(labels)
        dev = self.device
        if templates is None:
            pick = torch.randint(len(self.training), (n,), device=dev, generator=generator)
            templates = self.training[pick]
        kind, arg, form = self.kind[templates], self.arg[templates], self.form[templates]  # (N, S)
        j = arg.clamp(max=max(len(self.names), 1) - 1)
        value = attributes.long().gather(1, j) if len(self.names) else torch.zeros_like(j)
        count = self.count[j, value, form]
        synonym = (torch.rand(kind.shape, device=dev, generator=generator) * count).long().clamp(max=self.synonyms - 1)
        attr_row = self.attribute_base + ((j * 2 + value) * 2 + form) * self.synonyms + synonym
        row = torch.where(kind == WORD, arg, torch.where(kind == DIGIT, self.digit_base + labels.long()[:, None],
                                                         attr_row))
        row = torch.where(kind < 0, torch.zeros_like(row), row)  # an empty slot: PAD's own row
        words = self.table[row].flatten(1)  # (N, S * phrase_len), PADs in between
        # move the PADs to the end, keeping the words' order: a stable sort on "is padding"
        order = torch.sort((words == 0).to(torch.uint8), dim=1, stable=True).indices
        return words.gather(1, order)

    def mismatched(self, labels: Tensor, attributes: Tensor,
                   generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """A description that is not the image's: one field of (digit, each attribute), drawn uniformly,
        changed: another digit, or the attribute flipped. Returns (labels, attributes)."""
        n, k = len(labels), attributes.shape[1]
        dev = labels.device
        field = torch.randint(k + 1, (n,), device=dev, generator=generator)
        shift = torch.randint(1, len(DIGITS), (n,), device=dev, generator=generator)
        new_labels = torch.where(field == 0, (labels + shift) % len(DIGITS), labels)
        flip = torch.nn.functional.one_hot(field, k + 1)[:, 1:].to(attributes.dtype)
        return new_labels, (attributes - flip).abs()

    def text(self, label: int, values: Sequence[int], template: int = PICTURE_TEMPLATE) -> str:
        """A caption as a string, synonym 0 of every word: the fixed captions of pictures and the bench."""
        return decode(self._first_synonyms(label, values, template))[0]

    def _first_synonyms(self, label: int, values: Sequence[int], template: int) -> Tensor:
        layout = slots(TEMPLATES[template], len(self.names))
        words: list[str] = []
        for kind, arg, form in layout:
            if kind == WORD:
                words.append(VOCABULARY[arg])
            elif kind == DIGIT:
                words.append(DIGITS[label])
            else:
                wording = WORDING[self.names[arg]]
                words += (wording.adjectives if form == ADJECTIVE else wording.phrases)[int(values[arg])][0].split()
        return torch.tensor([[VOCABULARY.index(w) for w in words]])


def decode(tokens: Tensor, vocabulary: Sequence[str] = VOCABULARY) -> list[str]:
    """(N, L) token ids -> N captions, PAD dropped."""
    return [" ".join(vocabulary[i] for i in row if i != 0) for row in tokens.tolist()]


def encode(texts: Sequence[str], vocabulary: Sequence[str] = VOCABULARY) -> tuple[Tensor, list[str]]:
    """Captions -> (N, L) token ids (PAD-filled to the longest), and the words not in the vocabulary
    (dropped: a word-level encoder has no embedding for them). Case and punctuation are ignored."""
    index = {w: i for i, w in enumerate(vocabulary) if i != 0}
    rows, unknown = [], []
    for text in texts:
        words = re.findall(r"[a-z]+(?:-[a-z]+)*", str(text).lower())
        unknown += [w for w in words if w not in index]
        rows.append([index[w] for w in words if w in index])
    out = torch.zeros(len(rows), max([1] + [len(r) for r in rows]), dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, :len(row)] = torch.tensor(row, dtype=torch.long)
    return out, list(dict.fromkeys(unknown))
