"""algorithm=gan: k discriminator updates, then one generator update; the warm-up; labels for a
conditional pair; the generator's moving average for sampling."""

from __future__ import annotations

import torch

from gan_cli import build
from gan_cli.algorithms.gan import GAN
from gan_cli.latent import seeded_latents
from gan_cli.loop import Run, Schedule, fit
from tests.helpers import TINY, compose_config


def _gan_run(tmp_path, *overrides: str, steps: int = 3) -> Run:
    cfg = compose_config(overrides=[*TINY, *overrides])
    torch.manual_seed(0)
    parts = build.parts(cfg, torch.device("cpu"))
    algorithm = build.algorithm(cfg, parts)
    return Run(algorithm, parts.data, Schedule(steps, cfg.train.batch_size), tmp_path, torch.device("cpu"), 0,
               seeded_latents(4, parts.G.z_dim, 0, algorithm.num_classes), {})


def test_k_discriminator_updates_then_one_generator_update_after_the_warm_up(tmp_path):
    run = _gan_run(tmp_path, "train.d_steps=3", "train.d_warmup=5")
    assert isinstance(run.algorithm, GAN) and [(p.name, p.repeat) for p in run.algorithm.phases] == [("d", 3), ("g", 1)]
    fit(run, [])
    assert run.data_position == 5 + 3 * 3  # the warm-up's batches, then k per step: only D draws real data
    g_steps = int(run.algorithm.optimizers["G"].state_dict()["state"][0]["step"])
    d_steps = int(run.algorithm.optimizers["D"].state_dict()["state"][0]["step"])
    assert (g_steps, d_steps) == (3, 5 + 9)


def test_a_conditional_pair_gets_labels_and_the_ema_samples(tmp_path):
    run = _gan_run(tmp_path, "model=cdcgan", "model.g.width=8", "model.d.width=8", "train.ema=0.5")
    assert run.algorithm.num_classes == 10 and run.fixed.y is not None  # data=fake has 10 classes
    fit(run, [])
    G, sampler = run.algorithm.models["G"], run.algorithm.sampler
    assert sampler is not G and sampler is run.algorithm.ema.module
    assert not torch.equal(next(G.parameters()), next(sampler.parameters()))
