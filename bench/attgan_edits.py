"""How well an AttGAN checkpoint edits MNIST test digits, judged by measuring its outputs (Morpho-MNIST) rather
than by its own classifier C, which it was trained to please:

- edit success, per attribute: the share of flips (the attribute asked to 1 - a, the others kept) whose output's
  measure lands past the threshold on the asked side, split by direction (0 -> 1, 1 -> 0);
- others kept: the share of the attributes not asked whose binarised measure did not change;
- identity kept: the share of edits that the data set's MNIST classifier still assigns to the input's digit
  (its label);
- reconstruction L1 (G under the input's own attributes), and as floors the same shares for the reconstruction
  (how often an attribute crosses its threshold without being asked: digits near the median do).

    python bench/attgan_edits.py --checkpoint outputs/.../checkpoints/last.pt [--n 1000] [--intensity 0.5,1,2]
"""

from __future__ import annotations

import argparse
import json
import os

import torch


def measures(images: torch.Tensor, names: tuple[str, ...]) -> torch.Tensor:
    """(N, k) Morpho-MNIST measures of these images, in one process (the bench shares its CPU)."""
    from gan_cli.attributes import morpho

    return morpho.measure(images, workers=1)[:, [morpho.NAMES.index(n) for n in names]]


@torch.no_grad()
def predict(net: torch.nn.Module, images: torch.Tensor, batch: int = 500) -> torch.Tensor:
    return torch.cat([net(images[i:i + batch]).argmax(1) for i in range(0, len(images), batch)])


@torch.no_grad()
def decode(G: torch.nn.Module, x: torch.Tensor, codes: torch.Tensor, batch: int = 250) -> torch.Tensor:
    return torch.cat([G(x[i:i + batch], codes[i:i + batch]) for i in range(0, len(x), batch)])


def evaluate(G: torch.nn.Module, x: torch.Tensor, labels: torch.Tensor, classifier: torch.nn.Module,
             thres_int: float, intensities: list[float]) -> dict:
    """The measures above for test digits x (N, 1, H, W) in [-1, 1] with their labels."""
    from gan_cli.algorithms.attgan import code, flip_codes

    names, cut = tuple(G.attributes), G.thresholds.detach().cpu()
    values = measures(x, names)
    keep = ~values.isnan().any(dim=1)  # a blank digit has no stroke to measure
    x, labels, values = x[keep], labels[keep], values[keep]
    a = (values > cut).float()
    rebuilt = decode(G, x, code(a, thres_int))
    rec_binary = (measures(rebuilt, names) > cut).float()
    out = {"n": len(x), "attributes": list(names), "thresholds": cut.tolist(),
           "rec_l1": (x - rebuilt).abs().mean().item(),
           "identity_input": (predict(classifier, x) == labels).float().mean().item(),
           "identity_rec": (predict(classifier, rebuilt) == labels).float().mean().item(),
           "rec_crossed": {n: (rec_binary[:, i] != a[:, i]).float().mean().item() for i, n in enumerate(names)},
           "edits": {}}
    for intensity in intensities:
        row = {}
        for i, (name, codes) in enumerate(zip(names, flip_codes(a, thres_int, intensity))):
            edited = decode(G, x, codes)
            binary = (measures(edited, names) > cut).float()
            hit = binary[:, i] == 1 - a[:, i]
            others = [j for j in range(len(names)) if j != i]
            row[name] = {
                "success": hit.float().mean().item(),
                "success_up": hit[a[:, i] == 0].float().mean().item(),  # asked 0 -> 1
                "success_down": hit[a[:, i] == 1].float().mean().item(),
                "others_kept": (binary[:, others] == a[:, others]).float().mean().item() if others else float("nan"),
                "identity": (predict(classifier, edited) == labels).float().mean().item(),
            }
        out["edits"][str(intensity)] = row
    return out


def main(argv: list[str] | None = None) -> None:
    from omegaconf import OmegaConf

    from gan_cli import build, checkpoint

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--n", type=int, default=1000, help="MNIST test digits edited (the first n)")
    p.add_argument("--intensity", default="1", help="comma-separated slider values (AttGAN's test_int), e.g. 0.5,1,2")
    p.add_argument("--root", default=os.environ.get("GAN_DATA_ROOT"), help="data.root (default: the checkpoint's)")
    p.add_argument("--json", default=None, help="also write the numbers to this file")
    args = p.parse_args(argv)
    torch.set_grad_enabled(False)

    saved = checkpoint.Saved.load(args.checkpoint)
    G = saved.generator(torch.device("cpu"))
    cfg = OmegaConf.create(saved.config)
    cfg.data.attributes, cfg.data.thresholds = [], {}  # the digits only: G carries its own thresholds
    if args.root:
        cfg.data.root = args.root
    train = build.data(cfg)
    classifier = build.classifier(cfg, train)
    cfg.data.limit = args.n
    test = build.split(cfg, "test")
    x = test.first(len(test))
    thres_int = float(saved.config["algorithm"].get("thres_int", 0.5))
    intensities = [float(v) for v in args.intensity.split(",")]
    result = evaluate(G, x, test.labels, classifier, thres_int, intensities)
    result["checkpoint"], result["step"] = str(args.checkpoint), saved.step

    print(f"{result['n']} MNIST test digits, checkpoint step {saved.step}; thresholds "
          + ", ".join(f"{n} {t:.3g}" for n, t in zip(result["attributes"], result["thresholds"])))
    print(f"reconstruction L1 {result['rec_l1']:.4f}; classifier's digit kept: inputs {result['identity_input']:.1%}, "
          f"reconstructions {result['identity_rec']:.1%}")
    print("reconstructions past the threshold unasked (the floor): "
          + ", ".join(f"{n} {v:.1%}" for n, v in result["rec_crossed"].items()))
    print(f"{'intensity':>9} {'attribute':>10} {'success':>8} {'0->1':>6} {'1->0':>6} {'others kept':>11} "
          f"{'digit kept':>10}")
    for intensity, row in result["edits"].items():
        for name, m in row.items():
            print(f"{intensity:>9} {name:>10} {m['success']:8.1%} {m['success_up']:6.1%} {m['success_down']:6.1%} "
                  f"{m['others_kept']:11.1%} {m['identity']:10.1%}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
