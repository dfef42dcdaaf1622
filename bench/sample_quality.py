"""Judge an MNIST / Fashion-MNIST checkpoint by the data set's own classifier (trained once, cached).

    python bench/sample_quality.py outputs/train/.../checkpoints/last.pt [n=2000]

Prints the classes covered (each holding >= 1% of samples, counting confident ones only), the share of samples the classifier
recognises with >= 0.9 confidence, and the class histogram. Real test images are scored alongside
as the ceiling.
"""

import sys

import torch
from omegaconf import OmegaConf

from gan_cli import build, checkpoint
from gan_cli.latent import seeded_z
from gan_cli.metrics import classifier


def main() -> None:
    path = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    saved = checkpoint.Saved.load(path)
    cfg = OmegaConf.create(saved.config)
    train_data = build.data(cfg)
    test_cfg = cfg.data.copy()
    test_cfg.split = "test"
    test_data = build.instantiate(test_cfg, "data")
    net = build.classifier(cfg, train_data)
    G = saved.generator(torch.device("cpu"))
    # a conditional G is asked for every class equally; its samples should then be of the asked class
    y = torch.arange(n) % G.num_classes if G.num_classes else None
    with torch.no_grad():
        fake = torch.cat([G(z, None if y is None else y[i:i + 500])
                          for i, z in zip(range(0, n, 500), seeded_z(n, G.z_dim, 12345).split(500))])
    real = classifier.class_report(net, test_data.first(n), train_data.num_classes)
    gen = classifier.class_report(net, fake, train_data.num_classes)
    print(f"checkpoint: {path} (step {saved.step})")
    for name, r in (("real test images", real), ("generated", gen)):
        print(f"{name:>17}: {r['classes_covered']}/{train_data.num_classes} classes covered by "
              f"confident samples ({r['classes_predicted']} by argmax), {100 * r['confident_share']:.1f}% "
              f"confidently recognised, confident per class {r['confident_counts']}")
    if y is not None:
        with torch.no_grad():
            agree = (net(fake).argmax(1) == y).float().mean()
        print(f"  conditional: {100 * float(agree):.1f}% of samples are classified as the label they were asked for")


if __name__ == "__main__":
    main()
