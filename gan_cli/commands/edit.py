"""`gan sample checkpoint=C input=DIR|FILE [edit=...] [intensity=...]` for an attribute editor (algorithm=attgan):
the user's images, their attributes measured and binarised as the training data's were (the thresholds travel
with G's weights), then decoded under the asked attributes.

edit= names targets: absolute ("thickness=1,slant=0": the attribute's code becomes (2t - 1) * intensity,
AttGAN's slider) or deltas ("slant+", "thickness-": the input's own code moved by +-intensity). The attributes
not named keep the input's own. out= a folder gets one edited PNG per input under the input's name; out= a
.png gets the edit grid, a row per input: input | reconstruction | [the asked edit |] each attribute flipped.
Without edit= the command draws the edit grid (default out: run dir/edits.png)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from gan_cli import checkpoint, limits, visuals
from gan_cli.algorithms.attgan import edit_code, edit_columns
from gan_cli.attributes import morpho
from gan_cli.commands import translate
from gan_cli.errors import UserError

FIX = "free disk space or give another out="
_ITEM = re.compile(r"\s*([A-Za-z_]\w*)\s*(?:=\s*([01])|([+-]))\s*")


def takes_edits(saved: checkpoint.Saved) -> bool:
    """Whether the checkpoint's algorithm edits attributes (its generator takes an image and attributes)."""
    from gan_cli import build

    return "attributes" in build.algorithm_class(OmegaConf.create(saved.config)).inputs


@dataclass(frozen=True)
class Edit:
    """What edit= asks, per attribute in the model's order: asked (absolute), its 0/1 target, or a shift."""

    asked: torch.Tensor  # (k,) bool: an absolute target
    targets: torch.Tensor  # (k,) 0./1.
    shift: torch.Tensor  # (k,) -1, 0 or +1: a delta

    def codes(self, attributes: torch.Tensor, thres_int: float, intensity: float) -> torch.Tensor:
        n = len(attributes)
        return edit_code(attributes, self.targets.expand(n, -1), self.asked.expand(n, -1), thres_int, intensity,
                         self.shift.expand(n, -1))


def parse(text: str, names: tuple[str, ...]) -> Edit:
    """edit= as targets per attribute, or one line naming what is wrong with it."""
    k = len(names)
    asked, targets, shift = torch.zeros(k, dtype=torch.bool), torch.zeros(k), torch.zeros(k)
    seen: set[str] = set()
    example = f'e.g. \'edit="{names[0]}=1{"," + names[1] + "=0" if k > 1 else ""}"\' or edit={names[-1]}+'
    for item in str(text).split(","):
        m = _ITEM.fullmatch(item)
        if m is None:
            raise UserError(f"edit={text}: {item.strip()!r} is not name=0, name=1, name+ or name-; {example}")
        name, value, sign = m.groups()
        if name not in names:
            raise UserError(f"edit={text}: unknown attribute {name!r}; this model edits {', '.join(names)}")
        if name in seen:
            raise UserError(f"edit={text} names {name} twice")
        seen.add(name)
        i = names.index(name)
        if sign is None:
            asked[i], targets[i] = True, float(value)
        else:
            shift[i] = 1.0 if sign == "+" else -1.0
    return Edit(asked, targets, shift)


def describe(text: str | None, intensity: float) -> str:
    slider = f", intensity {intensity:g}" if intensity != 1 else ""
    return (f"edit {text}" if text else "each attribute flipped") + slider


def run(cfg: DictConfig, saved: checkpoint.Saved, run_dir: Path, dev: torch.device) -> Path:
    for key, given in (("label", cfg.label is not None), ("direction", cfg.direction is not None),
                       ("truncation", cfg.truncation != 1), ("mix", cfg.mix is not None)):
        if given:
            raise UserError(f"{key}={cfg[key]}: this checkpoint's generator edits the attributes of images "
                            f"(algorithm=attgan), with input=, edit= and intensity=; drop {key}=")
    if cfg.input is None:
        raise UserError(f"input= is required: this checkpoint edits the attributes of images (algorithm=attgan); give "
                        f"a folder of images or one image, e.g. gan sample checkpoint={cfg.checkpoint} input=digits/ "
                        f"edit=...")
    G = saved.generator(dev, ema=cfg.ema)
    names = tuple(G.attributes)
    unmeasured = [n for n in names if n not in morpho.NAMES]
    if unmeasured:  # a table's attributes (data=attribute_folder): nothing reads them off a new image
        raise UserError(f"this model edits {', '.join(names)}, read from its data's table, and gan sample measures "
                        f"only Morpho-MNIST's ({', '.join(morpho.NAMES)}) from an image, so {unmeasured[0]} of an "
                        f"input is unknown")
    edit = parse(cfg.edit, names) if cfg.edit is not None else None
    thres_int = float(saved.config.get("algorithm", {}).get("thres_int", 0.5))
    sources = translate.input_files(cfg.input)
    out = Path(cfg.out).expanduser() if cfg.out else run_dir / ("edited" if edit is not None else "edits.png")
    grid = out.suffix == ".png"
    if not grid and edit is None:
        raise UserError(f"out={cfg.out} is a folder, which gets the edited images of edit=; without edit= gan sample "
                        f"draws the edit grid: give out=<name>.png, or edit= (e.g. edit={names[0]}+)")
    targets = [out] if grid else [out / f"{p.stem}.png" for p in sources]
    translate.check_out(cfg, out, targets, sources, grid)
    channels = G.in_shape[0]
    for p in sources:  # nothing is decoded before every check
        shape = translate.image_header(p)
        try:
            G.check_input(shape)
        except UserError as e:
            raise UserError(f"input {p} {e}") from None
    h, w = G.in_shape[1:]
    columns = 2 + (edit is not None) + len(names)
    tile = 3 * (h + 2) * (w + 2)
    limits.check_memory(len(sources) * (columns * limits.FLOAT * channels * h * w + 3 * tile),
                        f"{len(sources)} inputs and their edits need", "give fewer inputs")
    png = limits.png_bytes(2 + len(sources) * (h + 2), 2 + columns * (w + 2)) if grid else None
    limits.check_disk(png if grid else len(sources) * limits.file_blocks(limits.png_bytes(h, w)),
                      out.parent if grid else out, f"{len(sources)} edited images need",
                      "free disk space, or give an out= on a disk with more room")
    x = torch.stack([translate.read(p, channels) for p in sources])
    attributes = measured(x, sources, names, G.thresholds.detach().cpu())

    # -- everything is checked; from here on the command edits and writes ------------------------------
    intensity = float(cfg.intensity)
    rows, edited = [], []
    with torch.no_grad():
        for i in range(0, len(x), cfg.batch_size):
            xb, ab = x[i:i + cfg.batch_size].to(dev), attributes[i:i + cfg.batch_size].to(dev)
            asked = [] if edit is None else [G(xb, edit.codes(ab, thres_int, intensity).to(dev)).float().cpu()]
            edited += asked
            if grid:
                cols = [c.float().cpu() for c in edit_columns(G, xb, ab, thres_int, intensity)]
                rows += [list(r) for r in zip(*cols[:2], *asked, *cols[2:])]
    if grid:
        visuals.save_png(visuals.tile_rows(rows), out, fix=FIX)
    else:
        out.mkdir(parents=True, exist_ok=True)
        for p, image in zip(sources, torch.cat(edited)):
            visuals.save_png(visuals.image_grid(image[None], nrow=1, padding=0), out / f"{p.stem}.png", fix=FIX)
    what = "edit grid of" if grid else "edited"
    order = ("input | reconstruction | " + ("edit | " if edit is not None else "")
             + " | ".join(f"{n} flipped" for n in names)) if grid else ""
    print(f"{what} {len(sources)} image{'s' if len(sources) > 1 else ''} ({describe(cfg.edit, intensity)}; "
          f"step {saved.step}){f'; columns: {order}' if order else ''} -> {out}")
    return out


def measured(x: torch.Tensor, sources: list[Path], names: tuple[str, ...], thresholds: torch.Tensor) -> torch.Tensor:
    """The inputs' 0/1 attributes: Morpho-MNIST's measures, cut at the training data's thresholds."""
    values = morpho.measure(x, workers=1)[:, [morpho.NAMES.index(n) for n in names]]
    blank = values.isnan().any(dim=1)
    if blank.any():
        p = sources[int(blank.nonzero()[0])]
        raise UserError(f"input {p} has no stroke to measure (a blank image), so its attributes are unknown; leave "
                        f"it out")
    return (values > thresholds).float()

