"""How well a text-to-image checkpoint (algorithm=text2image) draws what its captions say, on held-out
caption templates (gan_cli/attributes/captions.py: HELD_OUT, never drawn in training), beside a training
template for comparison:
- digit match: the share of samples the data set's MNIST classifier (build.classifier, trained once and
  cached) puts in the caption's digit (chance 10%);
- attribute match: per attribute, the share whose Morpho-MNIST measure (morpho.measure) falls on the
  caption's side of the training split's threshold, the one the captions were binarised at (chance ~50%);
- the GAN-INT interpolation figure: rows of samples along beta from one caption's embedding to another's
  (the same z along a row), and the measured thickness along a thin -> thick path.

    OMP_NUM_THREADS=1 python bench/text2image_match.py <run>/checkpoints/last.pt [--n 25] [--out DIR]

Every description (10 digits x 2^k attribute values) is asked for n times per template, synonyms drawn
with a fixed seed; z are the seed's z_0 ... z_(n-1)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from omegaconf import OmegaConf

from gan_cli import build, checkpoint, visuals
from gan_cli.algorithms.text2image import captioned_rows
from gan_cli.attributes import captions, morpho
from gan_cli.latent import seeded_z


def descriptions(k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every (digit, attribute values) pair: labels (10 * 2^k,), values (10 * 2^k, k)."""
    combos = torch.tensor([[(c >> j) & 1 for j in range(k)] for c in range(2 ** k)], dtype=torch.float)
    labels = torch.arange(len(captions.DIGITS)).repeat_interleave(len(combos))
    return labels, combos.repeat(len(captions.DIGITS), 1)


@torch.no_grad()
def draw(G, tokens: torch.Tensor, z: torch.Tensor, batch: int = 500) -> torch.Tensor:
    return torch.cat([G(z[i:i + batch], tokens[i:i + batch]) for i in range(0, len(z), batch)])


def match(G, caps: captions.Captions, net, thresholds: torch.Tensor, template: int, n: int, seed: int) -> dict:
    labels, values = descriptions(len(caps.names))
    labels, values = labels.repeat_interleave(n), values.repeat_interleave(n, dim=0)
    gen = torch.Generator().manual_seed(seed + template)
    tokens = caps.tokens(labels, values, gen, templates=torch.full((len(labels),), template))
    z = seeded_z(n, G.z_dim, seed).repeat(len(labels) // n, 1)
    fake = draw(G, tokens, z)
    with torch.no_grad():
        digit = torch.cat([net(fake[i:i + 1000]).argmax(1) for i in range(0, len(fake), 1000)])
    measured = morpho.measure(fake)[:, [morpho.NAMES.index(name) for name in caps.names]]
    said = (measured > thresholds).float()
    valid = ~measured.isnan().any(1)  # a blank sample has no stroke to measure
    out = {"template": captions.TEMPLATES[template], "example": captions.decode(tokens[:1])[0], "samples": len(fake),
           "digit_match": float((digit == labels).float().mean()),
           "measurable": float(valid.float().mean())}
    for j, name in enumerate(caps.names):
        out[f"{name}_match"] = float((said[valid, j] == values[valid, j]).float().mean())
    out["all_match"] = float(((digit == labels) & valid & (said == values).all(1)).float().mean())
    return out


def interpolation_figure(G, caps: captions.Captions, out: Path, seed: int, steps: int = 9) -> dict:
    """Rows of G(z, beta phi(t1) + (1 - beta) phi(t2)) for beta from 1 to 0, z fixed per row; and the mean
    measured thickness along the first row's path over 32 z (when thickness is captioned)."""
    k = len(caps.names)
    thick = caps.names.index("thickness") if "thickness" in caps.names else None

    def values(**kw) -> tuple[int, ...]:
        v = [0] * k
        for name, x in kw.items():
            if name in caps.names:
                v[caps.names.index(name)] = x
        return tuple(v)

    pairs = [((3, values()), (3, values(thickness=1))),
             ((4, values(thickness=1)), (4, values(thickness=1, slant=1))),
             ((1, values()), (7, values(thickness=1, slant=1))),
             ((0, values(slant=1)), (8, values()))]
    betas = torch.linspace(1, 0, steps)
    texts = [(caps.text(*a), caps.text(*b)) for a, b in pairs]
    z = seeded_z(len(pairs), G.z_dim, seed)
    rows = []
    with torch.no_grad():
        phis = [G.encoder(captions.encode([a, b], G.vocabulary)[0]) for a, b in texts]  # (2, text_dim) each
        for i, phi in enumerate(phis):
            h = betas[:, None] * phi[0] + (1 - betas[:, None]) * phi[1]  # GAN-INT's mix, beta from 1 to 0
            rows.append(G(z[i:i + 1].repeat(steps, 1), h))
        picture = captioned_rows(torch.cat(rows), [f"{a} -> {b}" for a, b in texts], steps)
    visuals.save_png(picture, out)
    result = {"figure": str(out), "betas": betas.tolist(), "rows": [f"{a} -> {b}" for a, b in texts]}
    if thick is not None:
        zz = seeded_z(32, G.z_dim, seed + 1)
        p = phis[0]
        with torch.no_grad():
            fakes = torch.cat([G(zz, (b * p[0] + (1 - b) * p[1])[None].repeat(len(zz), 1)) for b in betas])
        measured = morpho.measure(fakes)[:, morpho.NAMES.index("thickness")].view(steps, len(zz))
        result["thickness_along_row0"] = measured.nanmean(1).tolist()
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--n", type=int, default=25, help="samples per description and template")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="folder for the figure and results.json "
                        "(default: the run's bench/ folder)")
    parser.add_argument("--templates", type=int, nargs="+", default=[*captions.HELD_OUT, captions.TRAINING[0]])
    args = parser.parse_args(argv)
    saved = checkpoint.Saved.load(args.checkpoint)
    cfg = OmegaConf.create(saved.config)
    state = saved.state.get("algorithm") or {}
    if "thresholds" not in state:
        raise SystemExit(f"{args.checkpoint} is not a text2image checkpoint with its attributes' thresholds")
    names, thresholds = tuple(state["attributes"]), state["thresholds"].float()
    G = saved.generator(torch.device("cpu"))
    caps = captions.Captions(names)
    data = build.data(cfg)
    net = build.classifier(cfg, data)
    out = args.out or Path(args.checkpoint).resolve().parent.parent / "bench"
    out.mkdir(parents=True, exist_ok=True)
    results = {"checkpoint": str(args.checkpoint), "step": saved.step, "attributes": list(names),
               "thresholds": thresholds.tolist(), "n_per_description": args.n,
               "templates": {("held_out " if t in captions.HELD_OUT else "training ") + str(t):
                             match(G, caps, net, thresholds, t, args.n, args.seed) for t in args.templates}}
    results["interpolation"] = interpolation_figure(G, caps, out / "interpolation.png", args.seed)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"checkpoint {args.checkpoint} (step {saved.step}); attributes {', '.join(names)} at thresholds "
          f"{', '.join(f'{t:.3f}' for t in thresholds.tolist())}")
    cols = ["digit_match", *[f"{n}_match" for n in names], "all_match"]
    print(f"{'template':<52} {'samples':>7} " + " ".join(f"{c:>16}" for c in cols))
    for key, r in results["templates"].items():
        print(f"{key + ': ' + r['template']:<52} {r['samples']:>7} " + " ".join(f"{100 * r[c]:>15.1f}%" for c in cols))
    inter = results["interpolation"]
    if "thickness_along_row0" in inter:
        print(f"interpolation {inter['rows'][0]}: mean thickness along beta "
              + " ".join(f"{t:.2f}" for t in inter["thickness_along_row0"]))
    print(f"figure: {inter['figure']}; results: {out / 'results.json'}")


if __name__ == "__main__":
    main()
