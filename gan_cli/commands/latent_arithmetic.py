"""`gan latent-arithmetic checkpoint=PATH`: vector arithmetic and walks in G's latent space.

Radford et al. 2016 (section 6.3): the mean z of a few samples that share a visual concept, added to
and subtracted from other such means, moves the image along the concept; a path between two z gives
smooth transitions. Indices pick z from the seed's sequence, so index i of seed s is the z of tile i
of `gan sample seed=s annotate=true`.

space=w (a style-based G, model=stylegan2): the picked z are mapped to w = G.mapping(z) first, the
means, sums, noise and paths taken in W, and the figure drawn by G.synthesis; W is the space where
such a G's factors of variation are the more linear (Karras et al. 2019, section 4).

Everything is checked before anything is written: bad input leaves no run directory behind."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import torch
import torch.nn.functional as F
from omegaconf import DictConfig, ListConfig, OmegaConf
from torch import Tensor

from gan_cli import build, checkpoint, files, limits, visuals
from gan_cli.commands import check_seed, typed
from gan_cli.commands.sample import check_label
from gan_cli.errors import UserError, first_line
from gan_cli.latent import (BLOCK, PATHS, Latents, combine, lerp, parse_expr, render, require_style, seeded_noise,
                            seeded_z, to_w, walk)

MODES = ("arithmetic", "interpolate", "concept")
SPACES = ("z", "w")
# This command's own keys. The groups live under groups:, and `name=[...]` on the command line is short
# for `+groups.name=[...]` (shorthand below), so that `a=[3,17,40]` reads as the paper's example.
SETTINGS = frozenset({"checkpoint", "mode", "seed", "pool", "expr", "groups", "z_file", "noise", "noise_samples",
                      "from", "to", "steps", "path", "label", "label_from", "label_to", "ema", "device",
                      "batch_size", "space", "trust", "hydra", "concept", "strengths", "concept_pool",
                      "concept_share", "concept_rows", "concept_probe"})
INTERPOLATE_ONLY = ("from", "to", "label_from", "label_to")
FIGURES = {"arithmetic": "arithmetic", "interpolate": "interpolation", "concept": "concept"}  # mode -> the figure's file name
_OVERRIDE = re.compile(r"(?P<op>\+\+|\+|~)?(?P<key>[A-Za-z_][\w-]*(\.[\w-]+)*)(?P<rest>=.*|$)", re.S)


def shorthand(overrides: list[str]) -> list[str]:
    """The command line with `name=[...]` (or `+name=`, `~name`) for a name that is not a setting turned
    into `+groups.name=[...]`, and `groups.name=` into `+groups.name=` (groups: starts empty)."""
    out = []
    for o in overrides:
        m = None if o.startswith("-") else _OVERRIDE.fullmatch(o)
        if m is None or (not m["rest"] and m["op"] != "~"):  # a Hydra flag, or a flag's value (--cfg job)
            out.append(o)
            continue
        key, op = m["key"], m["op"] or "+"
        if key.startswith("groups."):
            name = key.removeprefix("groups.")
        elif "." not in key and key not in SETTINGS:
            name = key
        else:
            out.append(o)
            continue
        out.append(f"{op}groups.{name}{m['rest']}")
    return out


@dataclass
class LatentKeys:
    """The types of conf/latent_arithmetic.yaml's settings. from= and to= (an index or a list; `from` is
    no Python name) and the groups are checked where they are read, by _indices."""

    checkpoint: Optional[str]
    mode: str
    seed: int
    pool: int
    expr: str
    z_file: Optional[str]
    noise: float
    noise_samples: int
    steps: int
    path: Optional[str]
    label: Optional[int]
    label_from: Optional[int]
    label_to: Optional[int]
    ema: bool
    device: str
    batch_size: int
    groups: Dict[str, Any]
    space: str = "z"
    concept: Optional[str] = None
    strengths: List[float] = field(default_factory=lambda: [-2.0, -1.0, 0.0, 1.0, 2.0])
    concept_pool: int = 2000
    concept_share: float = 0.25
    concept_rows: int = 8
    concept_probe: int = 256


@dataclass
class Pool:
    """The z that indices pick from: the seed's first `pool`, or the rows of a z_file."""

    z: Tensor
    from_file: bool

    def pick(self, key: str, value: Any) -> tuple[Tensor, list[int]]:
        """The z that key=value (an index or a list of them) picks, and the indices as plain ints."""
        indices = _indices(key, value)
        n = len(self.z)
        for i in indices:
            if not 0 <= i < n:
                where = (f"z_file's {n} vectors; pick 0-{n - 1}" if self.from_file else
                         f"the seed's pool of {n}; raise pool= or pick 0-{n - 1}")
                raise UserError(f"{key}={_show(value)}: index {i} is outside {where}")
        return self.z[indices], indices


@dataclass
class Figure:
    """What to draw: the latents (M, z_dim), or (M, w_dim) in space=w, with their labels (None, (M,) classes
    or (M, classes) soft labels), and rows of indices into them (None: a blank tile); plus what to save
    about it."""

    z: Tensor
    y: Tensor | None
    rows: list[list[int | None]]
    name: str
    latents: dict[str, Any] = field(default_factory=dict)
    request: dict[str, Any] = field(default_factory=dict)


def run(cfg: DictConfig, run_dir: Path) -> Path:
    cfg = typed(cfg, LatentKeys)
    if cfg.checkpoint is None:
        raise UserError("checkpoint= is required, e.g. gan latent-arithmetic "
                        "checkpoint=outputs/train/<date>/<time>/checkpoints/last.pt a=[3,17,40] b=[5,8,22] c=[1,9,30]")
    if cfg.concept is not None and cfg.mode == "arithmetic":  # concept= names its own mode
        cfg.mode = "concept"
    _check_settings(cfg)
    _check_outputs(run_dir, cfg.mode)
    saved = checkpoint.Saved.load(cfg.checkpoint, trust=cfg.trust)
    if saved.translates:
        raise UserError(f"checkpoint={cfg.checkpoint} is a translation model (pix2pix, CycleGAN): it maps images to "
                        f"images and has no z to add or walk; translate images with gan sample input=DIR")
    if not saved.modality.images:
        raise UserError(f"checkpoint={cfg.checkpoint}: this model makes 2-D points, not images; "
                        f"latent-arithmetic draws image grids")
    dev = build.device(cfg.device)
    G = saved.generator(dev, ema=cfg.ema)
    z_dim = getattr(G, "z_dim", None)
    if isinstance(z_dim, bool) or not isinstance(z_dim, int) or z_dim <= 0:
        raise UserError(f"checkpoint={cfg.checkpoint}: this checkpoint's generator has no latent input (no z_dim), "
                        f"so there is no z to add or walk")
    num_classes = saved.num_classes
    label = check_label(cfg.label, num_classes)
    embed = _space(cfg.space, G, num_classes)
    file_z, file_groups = _read_z_file(cfg.z_file, z_dim)
    _check_sizes(cfg, run_dir, z_dim, saved.shape, num_classes, label, file_z, file_groups)
    pool = Pool(file_z, True) if file_z is not None else Pool(seeded_z(cfg.pool, z_dim, cfg.seed), False)
    if cfg.mode == "concept":
        if file_z is not None or file_groups:
            raise UserError(f"z_file={cfg.z_file}: a concept direction is found from the seed's own samples; drop z_file=")
        if saved.shape[0] != 1:
            raise UserError(f"concept={cfg.concept}: Morpho-MNIST measures grey digits, and this model makes "
                            f"{saved.shape[0]}-channel images; concept= needs a model trained on digits (data=mnist)")
        figure, curve = concept(cfg, G, dev, z_dim, saved.shape, num_classes, label, embed)
    elif cfg.mode == "arithmetic":
        figure = arithmetic(cfg, pool, file_groups, num_classes, label, embed)
    else:
        if file_groups:
            raise UserError(f"z_file={cfg.z_file} holds named groups; mode=interpolate picks single z by index, "
                            f"from an (N, z_dim) tensor or `gan sample out=x.pt`'s file")
        figure = interpolation(cfg, pool, num_classes, label, embed)

    # -- everything is checked; from here on the run writes ------------------------------------------
    # eval mode: no image depends on its batch; space=w: figure.z holds w, drawn by G.synthesis
    images = render(G, Latents(figure.z, figure.y), cfg.batch_size, dev, space=cfg.space)
    image = visuals.tile_rows([[None if i is None else images[i] for i in row] for row in figure.rows])
    out = visuals.save_png(image, run_dir / f"{FIGURES[cfg.mode]}.png")
    files.write_tensors(run_dir / "latents.pt", figure.latents)
    request = {"mode": cfg.mode, "checkpoint": str(Path(cfg.checkpoint).expanduser().resolve()),
               "step": saved.step, "seed": cfg.seed, "pool": len(pool.z),
               "z_file": None if cfg.z_file is None else str(Path(cfg.z_file).expanduser().resolve()),
               "space": cfg.space, **figure.request}
    files.write_text(run_dir / "request.json", json.dumps(request, indent=2) + "\n")
    if cfg.mode == "concept":
        visuals.save_png(curve, run_dir / "concept_curve.png")
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(log_dir=str(run_dir)) as writer:
        writer.add_image(f"latent-arithmetic/{figure.name}", image, saved.step)
    print(f"{cfg.mode} (seed {cfg.seed}, step {saved.step}) -> {out}")
    return out


# -- arithmetic ----------------------------------------------------------------------------------------

def arithmetic(cfg: DictConfig, pool: Pool, file_groups: dict[str, Tensor], num_classes: int | None,
               label: int | None, embed: Callable[[Tensor], Tensor] | None = None) -> Figure:
    """One row per group: its exemplars, a blank, the image of its mean z (the means in one column).
    Then the result: its image, a blank, and noise_samples images of result + noise * N(0, I), which
    show whether the concept holds around the result or only at that one point. A conditional model
    without label= adds a row with the result in every class (style held, class varied).
    embed (space=w): z -> w, and the means, the sum and the noise are taken on the w."""
    terms = parse_expr(cfg.expr)
    signs: dict[str, int] = {}
    for sign, name in terms:  # 'a + a' counts a twice
        signs[name] = signs.get(name, 0) + sign
    picked, indices = _groups(cfg, list(signs), pool, file_groups)  # z, as picked
    groups = {name: embed(z) for name, z in picked.items()} if embed else picked
    result = combine(groups, signs)
    noisy = result + cfg.noise * seeded_noise(cfg.noise_samples, len(result), cfg.seed)

    z: list[Tensor] = []
    y: list[int] = []

    def add(vectors: Tensor, classes: list[int] | None = None) -> list[int]:
        first = len(z)
        z.extend(vectors)
        y.extend(classes or [label or 0] * len(vectors))  # conditional without label=: class 0
        return list(range(first, len(z)))

    rows: list[list[int | None]] = []
    widest = max(len(members) for members in groups.values())
    for members in groups.values():  # the means in one column, after a blank
        gap = [None] * (widest - len(members) + 1)
        rows.append([*add(members), *gap, *add(members.mean(dim=0, keepdim=True))])
    noisy_row = add(noisy)
    rows.append([*add(result[None]), *([None] if noisy_row else []), *noisy_row])
    sweep = num_classes is not None and label is None
    if sweep:
        rows.append(add(result[None].expand(num_classes, -1), list(range(num_classes))))
    latents = {"groups": picked, "signs": signs, "result": result, "noisy": noisy,
               "y": (label or 0) if num_classes else None}  # the class of the group and result tiles
    if embed:  # result and noisy are w; the groups stay z, so this file still serves as a z_file
        latents.update(space="w", w_groups=groups)
    request = {"expr": str(cfg.expr), "terms": [f"{'+' if s > 0 else '-'}{n}" for s, n in terms],
               "groups": {n: indices[n] for n in groups}, "noise": cfg.noise, "noise_samples": cfg.noise_samples,
               "label": label, "class_sweep": sweep}
    return Figure(torch.stack(z), torch.tensor(y) if num_classes else None, rows, "arithmetic", latents, request)


def _groups(cfg: DictConfig, names: list[str], pool: Pool, file_groups: dict[str, Tensor]
            ) -> tuple[dict[str, Tensor], dict[str, list[int] | str]]:
    """Each named group's z (k, z_dim), from indices in the config or whole from the z_file; and what
    picked them (the indices, or 'z_file')."""
    given = {k: v for k, v in cfg.groups.items() if v is not None}
    groups: dict[str, Tensor] = {}
    picked: dict[str, list[int] | str] = {}
    for name in names:
        if name in given and name in file_groups:
            raise UserError(f"group {name} is given twice, as {name}= and in z_file={cfg.z_file}; drop one")
        if name in file_groups:
            groups[name], picked[name] = file_groups[name], "z_file"
        elif name in given:
            groups[name], picked[name] = pool.pick(name, given[name])
        else:
            raise UserError(f"expr={str(cfg.expr)!r} uses {name}, which is not given: add {name}=[i,j,...] with "
                            f"indices of z that share a concept")
    for key in given:  # most likely a group the user meant to add to the sum
        if key not in names:
            raise UserError(f"{key}={_show(given[key])} is given but expr={str(cfg.expr)!r} does not use it; "
                            f"add it to expr= or drop it")
    return groups, picked


# -- concept directions ----------------------------------------------------------------------------------

def concept(cfg: DictConfig, G: torch.nn.Module, dev: torch.device, z_dim: int, shape: tuple[int, ...],
            num_classes: int | None, label: int | None, embed: Callable[[Tensor], Tensor] | None
            ) -> tuple[Figure, Tensor]:
    """The direction of a measured attribute (gan_cli.concepts): G draws concept_pool samples of the seed,
    Morpho-MNIST measures them, and the mean latent of the top concept_share minus that of the bottom
    share is the direction. concept_probe new z (the seed's next ones) are moved along it by each strength
    and measured again: the curve says whether the direction is the concept. The figure: concept_rows of
    those z, one column per strength. Conditional models: the classes in turn, or label= for all."""
    from gan_cli import concepts
    from gan_cli.attributes import morpho

    column = morpho.NAMES.index(cfg.concept)
    total = cfg.concept_pool + cfg.concept_probe
    z = seeded_z(total, z_dim, cfg.seed)
    y = None
    if num_classes:
        y = torch.full((total,), label) if label is not None else torch.arange(total) % num_classes
    latents = embed(z) if embed else z

    def measured(v: Tensor, classes: Tensor | None) -> Tensor:
        return morpho.measure(render(G, Latents(v, classes), cfg.batch_size, dev, space=cfg.space))[:, column]

    pool, probe = latents[:cfg.concept_pool], latents[cfg.concept_pool:]
    y_pool, y_probe = (None, None) if y is None else (y[:cfg.concept_pool], y[cfg.concept_pool:])
    found = concepts.direction(pool, measured(pool, y_pool), cfg.concept_share)
    strengths = torch.tensor(list(cfg.strengths), dtype=torch.float32)
    moved = concepts.sweep(probe, found.vector, strengths)  # (S, P, d)
    values = measured(moved.flatten(0, 1), None if y_probe is None else y_probe.repeat(len(strengths)))
    values = values.view(len(strengths), -1)
    means = values.nanmean(dim=1)
    stds = (values - means[:, None]).pow(2).nanmean(dim=1).sqrt()
    rising = concepts.monotonic(means)
    for s, m in zip(strengths.tolist(), means.tolist()):
        print(f"strength {s:+.2f}: mean {cfg.concept} {m:.3f}")
    print(f"{cfg.concept} {'rises' if rising else 'does NOT rise'} monotonically along the direction "
          f"(groups of {found.count}: {found.low:.3f} low, {found.high:.3f} high)")

    rows_n = min(cfg.concept_rows, cfg.concept_probe)
    shown = moved[:, :rows_n].transpose(0, 1).flatten(0, 1)  # row r: probe z r at each strength
    shown_y = None if y_probe is None else y_probe[:rows_n].repeat_interleave(len(strengths))
    rows = [list(range(r * len(strengths), (r + 1) * len(strengths))) for r in range(rows_n)]
    latents_out = {"direction": found.vector, "strengths": strengths, "probe": probe[:rows_n],
                   "measured": values}
    if embed:
        latents_out["space"] = "w"
    request = {"concept": cfg.concept, "strengths": strengths.tolist(), "concept_pool": cfg.concept_pool,
               "concept_share": cfg.concept_share, "concept_probe": cfg.concept_probe,
               "group_means": {"low": found.low, "high": found.high, "count": found.count},
               "measured_mean": means.tolist(), "measured_std": stds.tolist(), "monotonic": rising, "label": label}
    unit = " (radians)" if cfg.concept == "slant" else ""
    picture = visuals.curve(strengths, means, stds, "strength along the direction", f"measured {cfg.concept}{unit}",
                            f"{cfg.concept}: mean of {cfg.concept_probe} samples per strength")
    return Figure(shown, shown_y, rows, "concept", latents_out, request), picture


# -- interpolation -------------------------------------------------------------------------------------

def interpolation(cfg: DictConfig, pool: Pool, num_classes: int | None, label: int | None,
                  embed: Callable[[Tensor], Tensor] | None = None) -> Figure:
    """One row of `steps` images per (from, to) pair, along slerp or lerp. Conditional models: at
    label=, or one row per class; with label_from/label_to the label walks too (z held at from= when
    to= is not given). embed (space=w): the ends mapped to w, the path a straight line between them."""
    walk_label = cfg.label_from is not None or cfg.label_to is not None
    if walk_label:
        if cfg.label_from is None or cfg.label_to is None:
            raise UserError("a label walk needs both ends: give label_from= and label_to=")
        if not num_classes:
            raise UserError("label_from=/label_to=: this checkpoint's generator is not conditional; drop them")
        if label is not None:
            raise UserError("give label= (one class for every image) or label_from=/label_to= (a walk), not both")
        ends = [_class(key, cfg[key], num_classes) for key in ("label_from", "label_to")]
    if cfg["from"] is None or (cfg.to is None and not walk_label):
        raise UserError("mode=interpolate needs from= and to=, e.g. from=3 to=17 (or lists: from=[3,5] to=[17,2])")
    z_from, starts = pool.pick("from", cfg["from"])
    z_to, stops = (z_from, starts) if cfg.to is None else pool.pick("to", cfg.to)
    if len(stops) != len(starts):
        raise UserError(f"from={_show(cfg['from'])} and to={_show(cfg.to)}: give as many ends as starts, "
                        f"one pair per row")
    if embed:
        z_from, z_to = embed(z_from), embed(z_to)
    path = _path(cfg)
    paths = torch.stack([walk(a, b, cfg.steps, path) for a, b in zip(z_from, z_to)])  # (pairs, steps, z_dim or w_dim)

    t = torch.linspace(0, 1, cfg.steps)[:, None]
    if walk_label:  # a mix of two one-hot vectors; G mixes embeddings alike
        one_hot = F.one_hot(torch.tensor(ends), num_classes).float()
        per_row = [lerp(one_hot[0], one_hot[1], t)] * len(starts)
        rows_z = list(paths)
    elif num_classes and label is None:  # one row per class for each pair: the path held, the class varied
        rows_z = [p for p in paths for _ in range(num_classes)]
        per_row = [torch.full((cfg.steps,), k) for _ in paths for k in range(num_classes)]
    else:
        rows_z = list(paths)
        per_row = [torch.full((cfg.steps,), label)] * len(paths) if num_classes else None
    z = torch.cat(rows_z)
    y = None if per_row is None else torch.cat(per_row)
    rows = [list(range(r * cfg.steps, (r + 1) * cfg.steps)) for r in range(len(rows_z))]
    latents = {"path": torch.stack(rows_z), "y": None if y is None else y.view(len(rows_z), cfg.steps, *y.shape[1:])}
    if embed:
        latents["space"] = "w"  # the path's points are w
    request = {"pairs": [[a, b] for a, b in zip(starts, stops)], "steps": cfg.steps, "path": path,
               "label": label, "label_from": cfg.label_from, "label_to": cfg.label_to}
    return Figure(z, y, rows, "interpolation", latents, request)


# -- checks and helpers --------------------------------------------------------------------------------

def _check_settings(cfg: DictConfig) -> None:
    """The ranges of the (typed) settings."""
    if cfg.mode not in MODES:
        raise UserError(f"mode={cfg.mode}: choose one of {', '.join(MODES)}")
    if cfg.mode == "concept":
        _check_concept(cfg)
        return
    if cfg.concept is not None:
        raise UserError(f"concept={cfg.concept} is its own mode (mode=concept); drop mode={cfg.mode} or concept=")
    for key in ("pool", "batch_size"):
        if cfg[key] < 1:
            raise UserError(f"{key}={cfg[key]} must be at least 1")
    check_seed(cfg.seed)
    if cfg.mode == "arithmetic":
        for key in INTERPOLATE_ONLY:
            if cfg[key] is not None:
                raise UserError(f"{key}= is for mode=interpolate; add mode=interpolate or drop {key}=")
        if cfg.noise_samples < 0:
            raise UserError(f"noise_samples={cfg.noise_samples} must be at least 0 (0: no noisy row)")
        if not cfg.noise >= 0:  # NaN too
            raise UserError(f"noise={cfg.noise} must be a number >= 0 (the std of the noise added to the result)")
    else:
        groups = [k for k, v in cfg.groups.items() if v is not None]
        if groups:
            raise UserError(f"{groups[0]}= is a group for mode=interpolate; mode=interpolate takes from= and to=")
        if cfg.steps < 2:
            raise UserError(f"steps={cfg.steps}: a path needs at least 2 steps, its two ends")
        if cfg.path is not None and cfg.path not in PATHS:
            raise UserError(f"path={cfg.path}: choose slerp or lerp")
    if cfg.space not in SPACES:
        raise UserError(f"space={cfg.space}: choose z (G's input) or w (a style-based G's intermediate latent space)")
    if cfg.space == "w" and cfg.mode == "interpolate" and cfg.path == "slerp":
        raise UserError("path=slerp follows the sphere where Gaussian z lie, and W is not Gaussian: with space=w paths "
                        "are straight lines; drop path= or give path=lerp")


def _check_concept(cfg: DictConfig) -> None:
    from gan_cli.attributes import morpho

    if cfg.concept is None:
        raise UserError(f"mode=concept needs concept=, a measure of the samples: one of {', '.join(morpho.NAMES)}")
    if cfg.concept not in morpho.NAMES:
        raise UserError(f"concept={cfg.concept} is not a measured attribute; choose one of {', '.join(morpho.NAMES)}")
    groups = [k for k, v in cfg.groups.items() if v is not None]
    for key in ("from", "to", "label_from", "label_to", *groups):
        if (cfg.groups.get(key) if key in groups else cfg[key]) is not None:
            raise UserError(f"{key}= is for mode={'arithmetic' if key in groups else 'interpolate'}; "
                            f"concept= finds its direction from the samples' measures")
    for key in ("concept_pool", "concept_probe", "concept_rows", "batch_size"):
        if cfg[key] < 1:
            raise UserError(f"{key}={cfg[key]} must be at least 1")
    if not 0 < cfg.concept_share <= 0.5:
        raise UserError(f"concept_share={cfg.concept_share}: the share of the pool in each group, high and low, "
                        f"must be in (0, 0.5]")
    if cfg.concept_pool * cfg.concept_share < 1:
        raise UserError(f"concept_pool={cfg.concept_pool} x concept_share={cfg.concept_share} leaves no sample in a "
                        f"group; raise concept_pool=")
    if not cfg.strengths or any(not math.isfinite(s) for s in cfg.strengths):
        raise UserError(f"strengths={list(cfg.strengths)}: give finite multiples of the direction, e.g. [-2,-1,0,1,2]")
    check_seed(cfg.seed)


def _path(cfg: DictConfig) -> str:
    """path=, or by default slerp in z (Gaussian z keep their norm along it) and lerp in W: w = mapping(z)
    is not Gaussian, has no such sphere, and a straight line is the path StyleGAN's paper measures in W."""
    return cfg.path or ("lerp" if cfg.space == "w" else "slerp")


def _space(space: str, G: torch.nn.Module, num_classes: int | None) -> Callable[[Tensor], Tensor] | None:
    """space=w: the map z -> w = G.mapping(z) that arithmetic and interpolation apply to the picked z;
    refused on a G without a mapping network, and on a conditional one (whose w would need the class).
    space=z: None (the z as picked)."""
    if space == "z":
        return None
    require_style(G, f"space={space}", "synthesis")
    if num_classes:
        raise UserError(f"space={space}: this generator is conditional and its w depends on the class; use space=z")
    return lambda z: to_w(G, z)


def _check_outputs(run_dir: Path, mode: str) -> None:
    """The files this run writes must be new: a run directory the user names (hydra.run.dir=...) may
    hold an earlier run's figure, or files of their own, under the same names."""
    for name in (f"{FIGURES[mode]}.png", "latents.pt", "request.json", *(["concept_curve.png"] if mode == "concept" else [])):
        if (run_dir / name).exists():
            raise UserError(f"{run_dir / name} exists (an earlier run's, or yours) and is not written over: choose "
                            f"another hydra.run.dir, or leave it out for a new directory per run")


def _check_sizes(cfg: DictConfig, run_dir: Path, z_dim: int, shape: tuple[int, ...], num_classes: int | None,
                 label: int | None, file_z: Tensor | None, file_groups: dict[str, Tensor]) -> None:
    """Refuse, before any z is drawn, a pool or a figure that cannot fit in memory or on disk. The
    figure's size follows from the settings as arithmetic() and interpolation() lay it out."""
    if file_z is None:
        blocks = -(-cfg.pool // BLOCK) * BLOCK  # seeded_z draws whole blocks
        limits.check_memory(blocks * z_dim * limits.FLOAT, f"pool={cfg.pool} z of size {z_dim} need",
                            "lower pool= (indices run from 0 to pool - 1)")
    if cfg.mode == "concept":
        rows, cols = min(cfg.concept_rows, cfg.concept_probe), len(cfg.strengths)
        images = rows * cols
        measured = cfg.concept_pool + cfg.concept_probe * len(cfg.strengths)
        limits.check_memory(measured * limits.FLOAT * (math.prod(shape) + z_dim + 1),
                            f"concept_pool={cfg.concept_pool} and {len(cfg.strengths)} x concept_probe={cfg.concept_probe} "
                            f"samples to measure need", "lower concept_pool= or concept_probe=")
        fix = "lower concept_rows= or give fewer strengths="
    elif cfg.mode == "arithmetic":
        given = [v for v in cfg.groups.values() if v is not None]
        sizes = [len(v) if isinstance(v, ListConfig) else 1 for v in given] + [len(v) for v in file_groups.values()]
        sweep = bool(num_classes) and label is None
        rows = len(sizes) + 1 + sweep
        cols = max(max(sizes, default=1) + 2, 1 + (1 + cfg.noise_samples if cfg.noise_samples else 0),
                   num_classes if sweep else 0)
        images = sum(sizes) + len(sizes) + 1 + cfg.noise_samples + (num_classes if sweep else 0)
        fix = "lower noise_samples="
    else:
        pairs = len(cfg["from"]) if isinstance(cfg["from"], ListConfig) else 1
        walk_label = cfg.label_from is not None or cfg.label_to is not None
        rows = pairs * (num_classes if num_classes and label is None and not walk_label else 1)
        cols = cfg.steps
        images = rows * cols
        fix = "lower steps=" + (" or give fewer pairs" if pairs > 1 else "")
    pixels = math.prod(shape)
    tile = 3 * (shape[1] + 2) * (shape[2] + 2)
    # each image with its z and label, then per tile: tile_rows' stack, the grid and its normalised copy,
    # the 8-bit picture
    need = images * limits.FLOAT * (pixels + z_dim + 1) + rows * cols * (limits.FLOAT * (pixels + 2 * tile) + tile)
    what = f"a figure of {rows} x {cols} tiles ({images} images of {'x'.join(map(str, shape))}) needs"
    limits.check_memory(need, what, fix)
    limits.check_disk(rows * cols * tile + images * limits.FLOAT * z_dim + 65536, run_dir, what,
                      f"{fix}, or choose another hydra.run.dir")


def _indices(key: str, value: Any) -> list[int]:
    """An index or a list of them, from the config, as plain ints."""
    items = OmegaConf.to_container(value) if isinstance(value, ListConfig) else value
    items = items if isinstance(items, list) else [items]
    if not items:
        raise UserError(f"{key}=[] is empty; give at least one index")
    if any(isinstance(i, bool) or not isinstance(i, int) for i in items):
        raise UserError(f"{key}={_show(items)}: indices are whole numbers, e.g. {key}=[3,17,40]")
    return items


def _class(key: str, value: Any, num_classes: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < num_classes:
        raise UserError(f"{key}={value} is not a class of this model: use 0 to {num_classes - 1}")
    return value


def _show(value: Any) -> str:
    """A config value as the user typed it: [3,70], not [3, 70]."""
    items = OmegaConf.to_container(value) if isinstance(value, ListConfig) else value
    return "[" + ",".join(map(str, items)) + "]" if isinstance(items, list) else str(items)


def _read_z_file(path: str | None, z_dim: int) -> tuple[Tensor | None, dict[str, Tensor]]:
    """(rows the indices pick from, or None; named groups used whole) from a z_file, loaded as data only."""
    if path is None:
        return None, {}
    p = Path(path).expanduser()
    if not p.is_file():
        raise UserError(f"z_file={path} does not exist (or is not a file)")
    try:
        data = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - pickle, zip and OS errors all mean an unusable file
        raise UserError(f"z_file={path} is unreadable: not a PyTorch file of tensors ({first_line(e)})") from None
    expected = ("z_file={path} should hold an (N, z_dim) tensor, `gan sample out=x.pt`'s file, "
                "{{name: (k, z_dim) tensor}} groups, or an earlier run's latents.pt").format(path=path)
    if isinstance(data, dict) and isinstance(data.get("groups"), dict):  # an earlier arithmetic run's latents.pt
        data = data["groups"]
    elif isinstance(data, dict) and isinstance(data.get("z"), Tensor):  # gan sample out=x.pt
        data = data["z"]
    if isinstance(data, Tensor):
        return _vectors(path, "its tensor", data, z_dim, expected, rows=True), {}
    if not isinstance(data, dict) or not data:
        raise UserError(expected)
    return None, {str(k): _vectors(path, f"group {k}", v, z_dim, expected) for k, v in data.items()}


def _vectors(path: str, what: str, v: Any, z_dim: int, expected: str, rows: bool = False) -> Tensor:
    if not isinstance(v, Tensor) or not v.is_floating_point() or v.ndim not in ((2,) if rows else (1, 2)):
        raise UserError(expected)
    v = v.float().reshape(-1, v.shape[-1])
    if v.shape[1] != z_dim:
        raise UserError(f"z_file={path}: {what} holds z of size {v.shape[1]}, but this generator takes z_dim={z_dim}")
    if len(v) == 0:
        raise UserError(f"z_file={path}: {what} is empty; give at least one z")
    return v
