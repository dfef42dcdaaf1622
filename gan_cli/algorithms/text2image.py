"""Text-to-image synthesis, GAN-INT-CLS (Reed et al. 2016, "Generative Adversarial Text to Image
Synthesis"), on digits captioned from their label and measured attributes (gan_cli/attributes/captions.py;
model=text2image has the networks).

Before the first step the text encoder phi is pre-trained on captions alone and frozen, as the paper's is
(Reed et al. pre-train a char-CNN-RNN on a joint embedding with images): a linear read-out of phi(t) must
name the digit and each attribute the caption states, and two captions of one description are pulled
together, over captions of the training templates (pretrain_encoder). What the caption says is known here
exactly, so this asks of phi what the paper's joint embedding gives: captions that describe the same
picture land together, whatever the template and synonyms, held-out templates included.

Each step, on a real batch x with its captions t (a training template and synonyms drawn per image):
- D (GAN-CLS, the matching-aware discriminator; Algorithm 1): three pairs, real image with matching text
  h = phi(t), real image with mismatched text h^ (`mismatch`), fake image x^ = G(z, h) with matching text;
  L_D = log D(x, h) + (log(1 - D(x, h^)) + log(1 - D(x^, h))) / 2, maximised.
- G (GAN-INT): log D(x^, h) + interpolation * log D(G(z', h_b), h_b), maximised (non-saturating, as the
  paper's code trains), h_b = beta h + (1 - beta) h' for h' the text of another image of the batch (beta 0.5).
  D never trains on the interpolations (there is no real image for them): G learns to satisfy D's matching
  judgement between captions, which fills the gaps of the text manifold.

Mismatched text: `mismatch=batch` (the default) is the paper's, the caption of another image of the batch
(rolled by one). With ten digits and two binary attributes it is the same description one time in forty
and differs in the digit nine times in ten. `mismatch=field` changes one field of the image's own
description instead (the digit, or one attribute flipped), so every mismatch is a real one and a third of
them differ only in one attribute; measured on MNIST in five CPU minutes it taught both the digit and
thickness less well than the paper's choice (README, "Text to image"), so it is the option, not the default.

The loss= group is not used: GAN-CLS's objective is the paper's own log-likelihood form (written in logits)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_cli import visuals
from gan_cli.algorithms.base import Algorithm, Phase, Stats
from gan_cli.attributes import captions
from gan_cli.errors import UserError
from gan_cli.steps import autocast, update

if TYPE_CHECKING:
    from gan_cli.loop import Run

log = logging.getLogger(__name__)

MISMATCH = ("field", "batch")


def gan_cls_d_loss(real: Tensor, wrong: Tensor, fake: Tensor) -> Tensor:
    """D's loss from its logits for (real image, matching text), (real image, mismatched text) and (fake
    image, matching text): the negative of Algorithm 1's L_D = log s_r + (log(1 - s_w) + log(1 - s_f)) / 2,
    with -log sigmoid(s) = softplus(-s) and -log(1 - sigmoid(s)) = softplus(s)."""
    return F.softplus(-real).mean() + (F.softplus(wrong).mean() + F.softplus(fake).mean()) / 2


def gan_int_g_loss(fake: Tensor, interpolated: Tensor | None, weight: float) -> Tensor:
    """G's loss from D's logits for its samples of matching text and of interpolated text: the
    non-saturating -log D(x^, h) - weight log D(G(z', h_b), h_b)."""
    loss = F.softplus(-fake).mean()
    return loss if interpolated is None else loss + weight * F.softplus(-interpolated).mean()


def interpolate(h: Tensor, beta: float) -> Tensor:
    """GAN-INT's embeddings beta h_i + (1 - beta) h_(i-1): each caption's with the previous image's."""
    return beta * h + (1 - beta) * h.roll(1, dims=0)


def fixed_rows(k: int) -> list[tuple[int, tuple[int, ...]]]:
    """The pictures' captions: every digit, its attribute values the bits of the digit (thin and upright
    for 0, thick for 1, slanted for 2, ...), so both values of each attribute appear."""
    return [(d, tuple((d >> j) & 1 for j in range(k))) for d in range(len(captions.DIGITS))]


class Text2Image(Algorithm):
    inputs = ("z", "text")
    stabilisers = frozenset()

    def __init__(self, models: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer],
                 interpolation: float = 1.0, beta: float = 0.5, mismatch: str = "batch", encoder_steps: int = 300,
                 encoder_batch: int = 64, encoder_lr: float = 1e-3, encoder_invariance: float = 1.0, ema: float = 0.0):
        """interpolation: weight of GAN-INT's term in G's loss (0: GAN-CLS alone); beta: the mix of two
        captions' embeddings; mismatch: batch or field (module docstring); encoder_steps, encoder_batch,
        encoder_lr: the text encoder's pre-training (Adam), before the first step of a new run;
        encoder_invariance: the weight, in it, of the pull between two captions of one description."""
        G, D = models["G"], models["D"]
        if not isinstance(getattr(G, "encoder", None), nn.Module) or getattr(D, "text_dim", None) is None:
            raise UserError(f"algorithm=text2image needs a generator with a text encoder and a matching-aware D, and "
                            f"{type(G).__name__} / {type(D).__name__} are not: use model=text2image (or "
                            f"experiment=text2image_mnist)")
        if mismatch not in MISMATCH:
            raise UserError(f"algorithm.mismatch={mismatch}: choose batch (another image's caption, the paper's) or "
                            f"field (one field of the image's own description changed)")
        if not 0 <= beta <= 1:
            raise UserError(f"algorithm.beta={beta} must be in [0, 1]: the share of the first caption's embedding")
        if interpolation < 0:
            raise UserError(f"algorithm.interpolation={interpolation} must be 0 (GAN-CLS alone) or positive")
        if encoder_steps < 0 or encoder_batch < 1 or encoder_lr <= 0 or encoder_invariance < 0:
            raise UserError(f"algorithm.encoder_steps={encoder_steps}, encoder_batch={encoder_batch}, "
                            f"encoder_lr={encoder_lr}, encoder_invariance={encoder_invariance}: steps 0 or more, a "
                            f"positive batch and rate, a weight 0 or more")
        super().__init__(models, optimizers, ema)
        self.G, self.D = G, D
        self.num_classes = None  # G takes captions, not labels: the fixed noise has none
        self.interpolation, self.beta, self.mismatch = interpolation, beta, mismatch
        self.encoder_steps, self.encoder_batch, self.encoder_lr = encoder_steps, encoder_batch, encoder_lr
        self.encoder_invariance = encoder_invariance
        G.encoder.requires_grad_(False)  # frozen, also on resume; the pre-training thaws it alone
        self.captions: captions.Captions | None = None
        self.thresholds: Tensor | None = None
        self._text: Tensor | None = None  # this step's phi(t), from D's phase to G's
        self.phases = [Phase("d", self.d_step), Phase("g", self.g_step)]

    @classmethod
    def check_data(cls, data) -> None:
        super().check_data(data)
        table = getattr(data, "attributes", None)
        if data.num_classes != len(captions.DIGITS) or table is None:
            lacks = ("no labels" if not data.num_classes else f"{data.num_classes} classes, not ten digits"
                     if data.num_classes != len(captions.DIGITS) else "no measured attributes")
            raise UserError(f"algorithm=text2image captions each digit from its label and measured attributes, and "
                            f"data={data.name} has {lacks}: use data=mnist data.attributes=[thickness,slant] "
                            f"(or experiment=text2image_mnist)")
        captions.check_attributes(table.names)

    # -- captions --------------------------------------------------------------------------------------

    def _setup(self, run: Run) -> captions.Captions:
        if self.captions is None:
            table = run.data.attributes
            self.captions = captions.Captions(table.names, run.device)
            self.thresholds = table.thresholds.detach().float().cpu().clone()
        return self.captions

    def encode(self, tokens: Tensor) -> Tensor:
        with torch.no_grad():
            return self.G.encoder(tokens)

    def begin(self, run: Run) -> None:
        self._setup(run)
        if self.encoder_steps:
            self.pretrain_encoder(run)

    def pretrain_encoder(self, run: Run) -> dict[str, float]:
        """phi pre-trained on captions of uniformly drawn descriptions (training templates only), then frozen:
        a linear read-out names the digit and the attributes of two captions of each description (their own
        templates and synonyms), and encoder_invariance pulls the two phi together, their squared distance over
        their mean squared norm. Reed et al.'s joint embedding brings the captions of one class together
        through the images; here the description is known, so they are brought together directly, and a
        held-out template lands by its description's captions, not by its word order's. Logs how well the
        read-out names held-out-template captions."""
        caps, enc, dev = self._setup(run), self.G.encoder, run.device
        k = len(caps.names)
        heads = nn.ModuleDict({"digit": nn.Linear(self.G.text_dim, len(captions.DIGITS)),
                               "attributes": nn.Linear(self.G.text_dim, max(k, 1))}).to(dev)
        opt = torch.optim.Adam([*enc.parameters(), *heads.parameters()], lr=self.encoder_lr)
        gen = run.z_gen

        def draw(n: int) -> tuple[Tensor, Tensor]:
            labels = torch.randint(len(captions.DIGITS), (n,), device=dev, generator=gen)
            return labels, torch.randint(2, (n, k), device=dev, generator=gen).float()

        def read(tokens: Tensor) -> tuple[Tensor, Tensor, Tensor]:
            phi = enc(tokens)
            return heads["digit"](phi), heads["attributes"](phi)[:, :k], phi

        def named(digit: Tensor, attrs: Tensor, labels: Tensor, values: Tensor) -> Tensor:
            return F.cross_entropy(digit, labels) + (F.binary_cross_entropy_with_logits(attrs, values) if k else 0)

        enc.requires_grad_(True)
        try:
            for _ in range(self.encoder_steps):
                labels, values = draw(self.encoder_batch)
                digit_a, attrs_a, phi_a = read(caps.tokens(labels, values, gen))
                digit_b, attrs_b, phi_b = read(caps.tokens(labels, values, gen))
                scale = (phi_a.detach().square().sum(1).mean() + phi_b.detach().square().sum(1).mean()) / 2
                pull = (phi_a - phi_b).square().sum(1).mean() / scale.clamp_min(1e-8)
                loss = (named(digit_a, attrs_a, labels, values) + named(digit_b, attrs_b, labels, values)
                        + self.encoder_invariance * pull)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        finally:
            enc.requires_grad_(False)
        with torch.no_grad():
            labels, values = draw(2000)
            held = caps.held_out[torch.randint(len(caps.held_out), (2000,), device=dev, generator=gen)]
            digit, attrs, _ = read(caps.tokens(labels, values, gen, templates=held))
            result = {"digit": (digit.argmax(1) == labels).float().mean().item(),
                      "attributes": ((attrs > 0).float() == values).float().mean().item() if k else 1.0}
        log.info("text encoder: pre-trained for %d steps on captions of the training templates, then frozen; on "
                 "held-out templates a linear read-out names the digit %.1f%% and the attributes %.1f%% right",
                 self.encoder_steps, 100 * result["digit"], 100 * result["attributes"])
        return result

    def _mismatched(self, run: Run, labels: Tensor, values: Tensor, text: Tensor) -> Tensor:
        if self.mismatch == "batch":
            return text.roll(1, dims=0)  # the paper's: another image's caption
        wrong_labels, wrong_values = self.captions.mismatched(labels, values, run.z_gen)
        return self.captions.tokens(wrong_labels, wrong_values, run.z_gen)

    # -- the phases ------------------------------------------------------------------------------------

    def d_step(self, run: Run) -> Stats:
        # max_D  log D(x, h) + (log(1 - D(x, h^)) + log(1 - D(G(z, h), h))) / 2
        caps = self._setup(run)
        batch = run.next_batch()
        x, labels, values = batch.images, batch.labels, batch.attributes
        text = caps.tokens(labels, values, run.z_gen)
        h, h_wrong = self.encode(text), self.encode(self._mismatched(run, labels, values, text))
        self._text = h
        with autocast(x, run.schedule.precision):
            with torch.no_grad():
                fake = self.G(run.z(len(batch), self.G.z_dim), h)
            # three forward passes, so that batch norm sees one kind of pair at a time (DCGAN's habit)
            s_real, s_wrong, s_fake = self.D(x, h), self.D(x, h_wrong), self.D(fake, h)
            loss = gan_cls_d_loss(s_real.float(), s_wrong.float(), s_fake.float())
        norm = update(self.optimizers["D"], loss, [self.D], run.world.average_gradients)
        with torch.no_grad():
            return {"loss/d": loss.detach(), "d/real": torch.sigmoid(s_real).mean(),
                    "d/wrong": torch.sigmoid(s_wrong).mean(), "d/fake": torch.sigmoid(s_fake).mean(),
                    "acc/real": (s_real > 0).float().mean(), "acc/wrong": (s_wrong <= 0).float().mean(),
                    "acc/fake": (s_fake <= 0).float().mean(), "grad_norm/d": norm}

    def g_step(self, run: Run) -> Stats:
        # max_G  log D(G(z, h), h) + interpolation * log D(G(z', h_b), h_b),  h_b = beta h + (1 - beta) h'
        h = self._text
        n = len(h)
        self.D.requires_grad_(False)  # D is a constant here
        try:
            with autocast(h, run.schedule.precision):
                s_fake = self.D(self.G(run.z(n, self.G.z_dim), h), h)
                s_int = None
                if self.interpolation:
                    h_b = interpolate(h, self.beta)
                    s_int = self.D(self.G(run.z(n, self.G.z_dim), h_b), h_b)
                loss = gan_int_g_loss(s_fake.float(), None if s_int is None else s_int.float(), self.interpolation)
            norm = update(self.optimizers["G"], loss, [self.G], run.world.average_gradients)
        finally:
            self.D.requires_grad_(True)
        stats = {"loss/g": loss.detach(), "grad_norm/g": norm}
        if s_int is not None:
            stats["d/interpolated"] = torch.sigmoid(s_int.detach()).mean()
        return stats

    # -- pictures and state ----------------------------------------------------------------------------

    def picture(self, run: Run, real: Tensor) -> tuple[Tensor, Tensor]:
        """A row per fixed caption (fixed_rows), the same z down each column, the caption beside its row."""
        caps = self._setup(run)
        rows = fixed_rows(len(caps.names))
        cols = max(1, len(run.fixed.z) // len(rows))
        texts = [caps.text(d, values) for d, values in rows]
        tokens = captions.encode(texts, self.sampler.vocabulary)[0].to(run.device)
        G = self.sampler
        was_training = G.training
        G.eval()
        with torch.no_grad():
            fake = G(run.fixed.z[:cols].repeat(len(rows), 1), tokens.repeat_interleave(cols, dim=0))
        G.train(was_training)
        return fake, captioned_rows(fake, texts, cols)

    def state_dict(self) -> dict[str, Any]:
        # the attributes the captions speak of and where they were binarised: what bench and sample judge by
        if self.captions is None:
            return {}
        return {"attributes": list(self.captions.names), "thresholds": self.thresholds}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        thresholds = state.get("thresholds")
        if isinstance(thresholds, Tensor):
            self.thresholds = thresholds.float().cpu()


def captioned_samples(G: nn.Module, data, n: int, seed: int, device: torch.device) -> Tensor:
    """G's samples (on the CPU) of captions of the data's first n images (a training template and synonyms
    drawn with `seed`), on the seed's z: what gan diagnose's probes judge a text-to-image run by."""
    from gan_cli.latent import Latents, render, seeded_z

    caps = captions.Captions(data.attributes.names)
    tokens = caps.tokens(data.labels[:n], data.attributes.binary[:n], torch.Generator().manual_seed(seed))
    return render(G, Latents(seeded_z(len(tokens), G.z_dim, seed), tokens), 500, device)


def captioned_rows(images: Tensor, texts: list[str], ncol: int, padding: int = 2) -> Tensor:
    """(R * ncol, C, H, W) images in [-1, 1], row by row, with texts[r] written left of row r, black on
    white: text-to-image's pictures of captions against samples. Returns (3, H', W') in [0, 1]."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFont

    grid = visuals.image_grid(images, nrow=ncol, padding=padding)
    h = images.shape[-2]
    try:
        font = ImageFont.load_default(size=max(10, h // 2))
    except TypeError:  # Pillow < 10.1: one fixed-size bitmap font
        font = ImageFont.load_default()
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    width = max(measure.textbbox((0, 0), text, font=font)[2] for text in texts) + 2 * padding + 4
    canvas = Image.new("RGB", (width + grid.shape[2], grid.shape[1]), (255, 255, 255))
    pixels = grid.mul(255).add(0.5).clamp(0, 255).to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
    canvas.paste(Image.fromarray(pixels), (width, 0))
    draw = ImageDraw.Draw(canvas)
    for r, text in enumerate(texts):
        top = padding + r * (h + padding)
        _, y0, _, y1 = draw.textbbox((0, 0), text, font=font)
        draw.text((padding + 2, top + (h - (y1 - y0)) // 2 - y0), text, fill=(0, 0, 0), font=font)
    return torch.from_numpy(np.asarray(canvas).copy()).permute(2, 0, 1).float() / 255
