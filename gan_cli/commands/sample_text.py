"""`gan sample checkpoint=C text="a thin upright three"`: a text-to-image generator's samples of captions
(algorithm=text2image). n samples per caption, the seed's z_0 ... z_(n-1) in every row, so a list of
captions (text=[a thin three,a thick three]) compares them on the same noise, one row each.

Words outside the model's vocabulary are dropped with a warning (the encoder has no embedding for them);
a caption with no known word is refused in one line, before anything is drawn or written."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from gan_cli import files, visuals
from gan_cli.attributes import captions
from gan_cli.errors import UserError
from gan_cli.latent import Latents, render, seeded_z

log = logging.getLogger(__name__)

FIX = "free disk space or give another out="


def texts_of(value) -> list[str]:
    """text= as a list of captions: one string, or a list of them; anything else is one line."""
    value = OmegaConf.to_container(value) if OmegaConf.is_config(value) else value
    items = [value] if isinstance(value, str) else value if isinstance(value, list) else None
    if not items or not all(isinstance(t, str) and t.strip() for t in items):
        raise UserError(f"text={value!r}: give a caption, e.g. text=\"a thin upright three\", or a list of them, "
                        f"text=\"[a thin upright three,a thick seven leaning right]\" (one row each)")
    return items


def tokens_of(texts: list[str], vocabulary: tuple[str, ...]) -> torch.Tensor:
    """Token ids (N, L) of the captions; unknown words dropped with a warning, a caption of none refused."""
    tokens, unknown = captions.encode(texts, vocabulary)
    empty = [t for t, row in zip(texts, tokens) if not row.any()]
    if empty:
        known = [w for w in vocabulary[1:] if w in captions.DIGITS][:3] + ["thick", "thin", "upright"]
        raise UserError(f"text={empty[0]!r} has no word this model knows; captions name a digit and its "
                        f"attributes in {len(vocabulary) - 1} words, e.g. {', '.join(known)}")
    if unknown:
        log.warning("text=: words not in the model's vocabulary were ignored: %s", ", ".join(unknown))
    return tokens


def check(cfg: DictConfig, G: nn.Module) -> list[str]:
    """The text= settings checked against the generator and the other keys, before anything is drawn."""
    reads_text = getattr(G, "takes_text", False)
    if cfg.text is None:
        raise UserError("this checkpoint's generator draws images of captions (algorithm=text2image): give "
                        "text=\"a thin upright three\", or a list, text=\"[a thin three,a thick three]\"")
    if not reads_text:
        raise UserError(f"text={cfg.text}: this checkpoint's generator does not read text; only text-to-image "
                        f"models (algorithm=text2image) take text=")
    for key, off in (("label", None), ("mix", None), ("truncation", 1.0)):
        if cfg.get(key, off) != off:
            raise UserError(f"{key}={cfg[key]} does not apply to a text-to-image generator, which the caption "
                            f"conditions: drop {key}=")
    for key, why in (("annotate", "column j holds the seed's z_j in every row"),
                     ("nrow", "each caption's n samples make one row")):
        if cfg.get(key):
            raise UserError(f"{key}={cfg[key]}: in a text-to-image grid {why}; drop {key}=")
    return texts_of(cfg.text)


def run(cfg: DictConfig, G: nn.Module, saved, out: Path, kind: str, dev: torch.device) -> Path:
    """Everything checked (the captions, the memory and disk the samples need, out= folder clashes) before
    the samples are drawn and written."""
    from gan_cli.commands.sample import check_folder, check_sizes

    texts = check(cfg, G)
    tokens = tokens_of(texts, G.vocabulary)
    count = cfg.n * len(texts)
    if kind == "folder":
        check_folder(cfg, out, count)
    check_sizes(cfg, out, kind, count, saved.shape, G.z_dim)
    return _draw(cfg, G, texts, tokens, saved.step, out, kind, dev)


def _draw(cfg: DictConfig, G: nn.Module, texts: list[str], tokens: torch.Tensor, step: int, out: Path, kind: str,
          dev: torch.device) -> Path:
    """Row r: caption r on the seed's z_0 ... z_(n-1)."""
    n, rows = cfg.n, len(texts)
    z = seeded_z(n, G.z_dim, cfg.seed).repeat(rows, 1)
    y = tokens.repeat_interleave(n, dim=0)
    samples = render(G, Latents(z, y), cfg.batch_size, dev)
    shown = [captions.decode(row[None], G.vocabulary)[0] for row in tokens]  # what the model read
    if kind == ".png":
        from gan_cli.algorithms.text2image import captioned_rows

        picture = captioned_rows(samples, shown, n)
        visuals.save_png(picture, out, fix=FIX)
    elif kind == ".pt":
        files.write_tensors(out, {"samples": samples, "z": z, "tokens": y, "text": [shown[i // n] for i in range(len(y))]},
                            fix=FIX)
    else:
        out.mkdir(parents=True, exist_ok=True)
        for i, image in enumerate(samples):
            visuals.save_png(visuals.image_grid(image[None], nrow=1, padding=0), out / f"{i:05d}.png", fix=FIX)
    print(f"{len(samples)} samples of {rows} caption{'s' if rows > 1 else ''} ({n} each; seed {cfg.seed}, step {step}) "
          f"-> {out}")
    for text in shown:
        print(f"  {text}")
    return out
