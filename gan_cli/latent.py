"""Latent vectors that depend only on (seed, index): the same on every device and batch size; G's
images of them (`generate`, the one way every command and measure draws samples); and the arithmetic
on them (means, signed sums, paths) that `gan latent-arithmetic` draws."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from gan_cli.errors import UserError


BLOCK = 64  # rows drawn together; each block has its own generator


def seeded_z(n: int, z_dim: int, seed: int, device: torch.device | str = "cpu") -> Tensor:
    """z_i ~ N(0, I) for i < n: z_i depends on (seed, i, z_dim) only, not on n, nor on the device.

    torch's CPU normal sampler fills tensors in vectorised chunks, so the first rows of randn(6, d)
    differ from randn(3, d) under the same seed. Drawing fixed-size blocks, each from its own
    generator, on the CPU, makes a prefix stable: sample 3 of seed 0 is the same in every command."""
    blocks = [z_block(seed, b, z_dim) for b in range((n + BLOCK - 1) // BLOCK)]
    return torch.cat(blocks)[:n].to(device) if blocks else torch.empty(0, z_dim, device=device)


def z_block(seed: int, block: int, z_dim: int) -> Tensor:
    """Rows block * BLOCK to (block + 1) * BLOCK - 1 of seed's z sequence, from a generator of their own
    (so a command that streams can draw any rows without the ones before them)."""
    return torch.randn(BLOCK, z_dim, generator=torch.Generator().manual_seed(seed * 1_000_003 + block))


@dataclass
class Latents:
    """What a generator is asked for: z (N, z_dim), labels (N,) for a conditional model, and how many
    tiles a row of their picture holds."""

    z: Tensor
    y: Tensor | None = None
    nrow: int | None = None

    def to(self, device: torch.device | str) -> "Latents":
        return Latents(self.z.to(device), None if self.y is None else self.y.to(device), self.nrow)


def seeded_latents(n: int, z_dim: int, seed: int, num_classes: int | None = None,
                   label: int | None = None) -> Latents:
    """n seeded latents. Conditional, with a label: n of that class. Conditional, without one: one row
    per class, ceil(n / classes) tiles each, column j holding the same z_j in every row (style held,
    class varied)."""
    if not num_classes:
        return Latents(seeded_z(n, z_dim, seed))
    if label is not None:
        return Latents(seeded_z(n, z_dim, seed), torch.full((n,), label, dtype=torch.long))
    per_class = -(-n // num_classes)
    z = seeded_z(per_class, z_dim, seed).repeat(num_classes, 1)
    return Latents(z, torch.arange(num_classes).repeat_interleave(per_class), per_class)


def total(n: int, num_classes: int | None, label: int | None = None) -> int:
    """How many latents seeded_latents(n, ...) holds: a conditional model without a label draws whole
    rows, one per class."""
    return -(-n // num_classes) * num_classes if num_classes and label is None else n


def latent_rows(start: int, stop: int, n: int, z_dim: int, seed: int, num_classes: int | None = None,
                label: int | None = None) -> tuple[Tensor, Tensor | None]:
    """Rows start:stop of seeded_latents(n, z_dim, seed, num_classes, label), drawing only the blocks of
    seeded_z they need (z_block)."""
    rows = torch.arange(start, stop)
    y = None
    if num_classes and label is None:  # one row per class, column j holding z_j in every row
        per_class = -(-n // num_classes)
        rows, y = rows % per_class, rows // per_class
    elif num_classes:
        y = torch.full((stop - start,), label, dtype=torch.long)
    blocks = (rows // BLOCK).unique()  # sorted
    drawn = [z_block(seed, b, z_dim) for b in blocks.tolist()]
    table = torch.cat(drawn) if drawn else torch.empty(0, z_dim)
    z = table[torch.searchsorted(blocks, rows // BLOCK) * BLOCK + rows % BLOCK]
    return z, y


# -- G's images of latents -----------------------------------------------------------------------------

def generate(G: nn.Module, n: int, seed: int, batch_size: int, device: torch.device | str,
             label: int | None = None, whole_rows: bool = False, truncation: float = 1.0) -> Tensor:
    """G's images of the seed's latents, on the CPU, as generate_batches draws them: n of them (a
    conditional G without label= gets the classes in turn), or with whole_rows=True every row of
    seeded_latents (n rounded up to whole rows of classes, as `gan sample` shows them)."""
    return _joined(generate_batches(G, n, seed, batch_size, device, label, whole_rows, truncation))


def generate_batches(G: nn.Module, n: int, seed: int, batch_size: int, device: torch.device | str,
                     label: int | None = None, whole_rows: bool = False,
                     truncation: float = 1.0) -> Iterator[tuple[int, Tensor]]:
    """(index of the first, images) batch by batch: each batch's latents are drawn as it is made
    (latent_rows), so a caller that lets each batch go holds one batch, however large n is.
    truncation: psi of the truncation trick (1: off; other values need require_style(G, ..., "truncate"))."""
    count = total(n, G.num_classes, label) if whole_rows else n
    yield from _batches(G, count, batch_size, device,
                        lambda start, stop: latent_rows(start, stop, n, G.z_dim, seed, G.num_classes, label),
                        _forward(G, truncation))


def render(G: nn.Module, latents: Latents, batch_size: int, device: torch.device | str,
           truncation: float = 1.0, space: str = "z") -> Tensor:
    """G's images of given latents (N, ...), on the CPU, batch_size at a time. space="w": latents.z holds
    w vectors (N, w_dim) of a style-based G, drawn by its synthesis network (as_ws) instead of G(z)."""
    y = latents.y
    draw = (lambda w, _: G.synthesis(as_ws(G, w))) if space == "w" else _forward(G, truncation)
    return _joined(_batches(G, len(latents.z), batch_size, device,
                            lambda start, stop: (latents.z[start:stop], None if y is None else y[start:stop]), draw))


def render_mix(G: nn.Module, z_coarse: Tensor, z_fine: Tensor, crossover: int, batch_size: int,
               device: torch.device | str, truncation: float = 1.0) -> Tensor:
    """Style mixing (Karras et al. 2019, figure 3): image i takes the w of z_coarse[i] for G's style
    layers [0, crossover) and of z_fine[i] for the rest (G.mix), on the CPU, batch_size at a time."""
    return _joined(_batches(G, len(z_coarse), batch_size, device,
                            lambda start, stop: (z_coarse[start:stop], z_fine[start:stop]),
                            lambda a, b: G.mix(a, b, crossover, truncation=truncation)))


def _forward(G: nn.Module, truncation: float) -> Callable[[Tensor, Tensor | None], Tensor]:
    """G(z, y), with the truncation trick when psi != 1 (only a style-based G takes truncation=)."""
    if truncation == 1:
        return lambda z, y: G(z, y)
    return lambda z, y: G(z, y, truncation=truncation)


def _batches(G: nn.Module, count: int, batch_size: int, device: torch.device | str,
             rows: Callable[[int, int], tuple[Tensor | None, ...]],
             draw: Callable[..., Tensor]) -> Iterator[tuple[int, Tensor]]:
    """draw(*rows(start, stop)) (the tensors moved to device), batch_size at a time: in eval mode (so no
    image depends on the others in its batch) and without gradients, G's own mode restored before
    each batch is handed on."""
    was_training = G.training
    for start in range(0, count, batch_size):
        inputs = [None if t is None else t.to(device) for t in rows(start, min(start + batch_size, count))]
        G.eval()
        try:
            with torch.no_grad():
                images = draw(*inputs).cpu()
        finally:
            G.train(was_training)
        yield start, images


# -- style-based generators (StyleGAN2): W, the intermediate latent space ------------------------------

def require_style(G: nn.Module, setting: str, *methods: str) -> None:
    """Refuse `setting` (as the user typed it: 'truncation=0.7') on a generator without a mapping network
    z -> w and the other `methods` it needs (truncate, mix, synthesis), in one line."""
    if not all(callable(getattr(G, m, None)) for m in ("mapping", *methods)):
        key = setting.split("=")[0]
        raise UserError(f"{setting} needs a style-based generator with a mapping network (model=stylegan2); "
                        f"this checkpoint's G is {type(G).__module__}.{type(G).__qualname__}: drop {key}=")


def to_w(G: nn.Module, z: Tensor) -> Tensor:
    """z (N, z_dim) -> w = G.mapping(z) (N, w_dim), on the CPU, without gradients."""
    with torch.no_grad():
        return G.mapping(z.to(next(G.parameters()).device)).cpu()


def as_ws(G: nn.Module, w: Tensor) -> Tensor:
    """(N, w_dim) -> (N, num_ws, w_dim): the same w for every style layer, as G(z) without mixing."""
    return w[:, None].expand(-1, G.num_ws, -1)


def _joined(batches: Iterator[tuple[int, Tensor]]) -> Tensor:
    return torch.cat([images for _, images in batches])


# -- arithmetic and paths (Radford et al. 2016, section 6.3) ------------------------------------------

NOISE_STREAM = 1_000_002  # the last block a seed's seeded_z could use: reaching it takes 64 million z


def seeded_noise(n: int, z_dim: int, seed: int) -> Tensor:
    """n draws of N(0, I) for seed s, from a stream of their own, so they never repeat one of the z."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + NOISE_STREAM)
    return torch.randn(n, z_dim, generator=g)


def lerp(a: Tensor, b: Tensor, t: float | Tensor) -> Tensor:
    """The straight line from a (t=0) to b (t=1). A tensor t of shape (T, 1) gives T points (T, d)."""
    return a + (b - a) * t


def slerp(a: Tensor, b: Tensor, t: float | Tensor, eps: float = 1e-4) -> Tensor:
    """Spherical interpolation (Shoemake 1985; White 2016 for GAN latents): along the great circle
    through a and b's directions, by the angle between them, so a Gaussian z keeps the norm the
    generator was trained on, where the straight line would pass through the low-norm middle.

    The ends are a and b exactly; between unit vectors every point has norm 1. (Nearly) parallel or
    opposite vectors have no single such circle (sin of the angle ~ 0), and fall back to lerp."""
    t = torch.as_tensor(t, dtype=a.dtype, device=a.device)
    norms = a.norm(dim=-1, keepdim=True) * b.norm(dim=-1, keepdim=True)
    cos = ((a * b).sum(dim=-1, keepdim=True) / norms.clamp_min(1e-12)).clamp(-1.0, 1.0)
    omega = torch.arccos(cos)
    sin = torch.sin(omega)
    flat = sin < eps
    sin = torch.where(flat, torch.ones_like(sin), sin)  # keeps the unused branch free of 0/0
    arc = (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / sin
    return torch.where(flat, lerp(a, b, t), arc)


PATHS = {"slerp": slerp, "lerp": lerp}


def walk(a: Tensor, b: Tensor, steps: int, path: str = "slerp") -> Tensor:
    """steps points (steps, d) from a to b, both ends included, along slerp or lerp."""
    t = torch.linspace(0, 1, steps, dtype=a.dtype)[:, None]
    return PATHS[path](a, b, t)


def combine(groups: dict[str, Tensor], signs: dict[str, int]) -> Tensor:
    """sum over names of signs[name] * mean of groups[name] (k, d) over its k rows -> (d,).
    A name written twice in an expression counts twice: its sign is then +-2."""
    terms = [sign * groups[name].mean(dim=0) for name, sign in signs.items()]
    return torch.stack(terms).sum(dim=0)


_TOKEN = re.compile(r"\s*(?:([+-])|([A-Za-z_]\w*)|(\S))")


def parse_expr(expr: str) -> list[tuple[int, str]]:
    """'a - b + c' -> [(1, 'a'), (-1, 'b'), (1, 'c')]: names joined by + or -, the first optionally
    signed. Anything else (an empty sum, two names or two signs in a row, other symbols) is refused."""
    hint = "write names joined by + and -, e.g. expr='a - b + c'"
    text = str(expr) if expr is not None else ""
    terms: list[tuple[int, str]] = []
    sign: int | None = None
    for m in _TOKEN.finditer(text):
        op, name, other = m.groups()
        if other is not None:
            raise UserError(f"expr={text!r}: '{other}' is neither + nor - nor a group name; {hint}")
        if op is not None:
            if sign is not None:
                raise UserError(f"expr={text!r}: two signs in a row; {hint}")
            sign = 1 if op == "+" else -1
            continue
        if terms and sign is None:
            raise UserError(f"expr={text!r}: '{terms[-1][1]} {name}' needs a + or - between them; {hint}")
        terms.append((1 if sign is None else sign, name))
        sign = None
    if not terms:
        raise UserError(f"expr={text!r} names no group; {hint}")
    if sign is not None:
        raise UserError(f"expr={text!r} ends in a sign; {hint}")
    return terms
