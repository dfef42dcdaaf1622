"""AttGAN (He et al. 2019, "AttGAN: Facial Attribute Editing by Only Changing What You Want"): an
encoder-decoder G edits an image x^a with attributes a into x-hat^b with attributes b, trained by three
parts (the paper's section 3, training formulation):

    min_G   lambda_1 L_rec + lambda_2 L_cls_g + L_adv_g
    min_D,C lambda_3 L_cls_c + L_adv_d
    L_rec   = E |x^a - G_dec(G_enc(x^a), a)|_1          the reconstruction under its own attributes
    L_cls_g = E BCE(C(G_dec(G_enc(x^a), b)), b)         the edit must carry the asked attributes
    L_cls_c = E BCE(C(x^a), a)                          C learns the attributes on real images only

with lambda_1 = 100, lambda_2 = 10, lambda_3 = 1 (its experiments). L_adv is WGAN-GP in the paper
(loss=wgan_gp, whose penalty is on D's score only) with five critic updates per G update in the authors'
code. The L1 and the cross-entropies are means over pixels and over attributes, as the authors' code takes
them: the paper writes the classification loss as a sum over attributes, but its weights are those of the
code, and a sum would scale lambda_2 and lambda_3 with the number of attributes.

The target attributes b of a batch are a shuffled copy of its own a (the authors' code: tf.random_shuffle(a)),
so b follows the data's joint distribution of attributes. The decoder takes each attribute as
(2b - 1) * thres_int, thres_int = 0.5 (the authors' first code): at test time an edited attribute's code is
scaled to (2b - 1) * intensity, beyond the training range for intensity > thres_int, which is AttGAN's
slider (their test_int). The reconstruction keeps a at (2a - 1) * thres_int."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_cli.algorithms.base import Algorithm, Phase, Stats
from gan_cli.algorithms.translation import groups_picture
from gan_cli.data.batch import input_shape_of
from gan_cli.errors import UserError
from gan_cli.losses import GANLoss
from gan_cli.steps import autocast, update

if TYPE_CHECKING:
    from gan_cli.attributes.table import Attributes
    from gan_cli.loop import Run

ROWS = 8  # inputs in a training picture; each row shows two of them side by side


# -- the parts of the objective, on plain tensors -------------------------------------------------------

def code(attributes: Tensor, thres_int: float) -> Tensor:
    """0/1 attributes (N, k) -> the decoder's input, (2a - 1) * thres_int: -thres_int or +thres_int."""
    return (2 * attributes - 1) * thres_int


def shuffled(attributes: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """The target attributes b: the batch's own rows in a random order (the authors' code)."""
    order = torch.randperm(len(attributes), device=attributes.device, generator=generator)
    return attributes[order]


def reconstruction_loss(x: Tensor, reconstructed: Tensor) -> Tensor:
    """L_rec: the mean absolute difference per pixel."""
    return (x.float() - reconstructed.float()).abs().mean()


def classification_loss(logits: Tensor, attributes: Tensor) -> Tensor:
    """L_cls: binary cross-entropy of C's logits (N, k) against 0/1 attributes, the mean over both."""
    return F.binary_cross_entropy_with_logits(logits.float(), attributes.float())


def edit_code(attributes: Tensor, targets: Tensor, asked: Tensor, thres_int: float, intensity: float,
              shift: Tensor | None = None) -> Tensor:
    """The decoder's codes for an edit at test time: the attributes not asked keep the input's own code
    (2a - 1) * thres_int; an asked one is (2t - 1) * intensity for its 0/1 target t, or, where `shift` (-1, 0,
    +1 per attribute) is given and nonzero, the input's own code moved by shift * intensity (a delta,
    "slant+")."""
    own = code(attributes, thres_int)
    absolute = (2 * targets - 1) * intensity
    out = torch.where(asked, absolute, own)
    if shift is not None:
        out = torch.where(shift != 0, own + shift * intensity, out)
    return out


def flip_codes(attributes: Tensor, thres_int: float, intensity: float) -> list[Tensor]:
    """One code per attribute i: attribute i flipped (1 - a_i) at the slider's intensity, the rest kept."""
    out = []
    for i in range(attributes.shape[1]):
        asked = torch.zeros_like(attributes, dtype=torch.bool)
        asked[:, i] = True
        out.append(edit_code(attributes, 1 - attributes, asked, thres_int, intensity))
    return out


@torch.no_grad()
def edit_columns(G: nn.Module, x: Tensor, attributes: Tensor, thres_int: float, intensity: float = 1.0) -> list[Tensor]:
    """The edit grid's columns, each (N, C, H, W): the inputs, their reconstructions, and one column per
    attribute flipped."""
    zs = G.encode(x)
    return [x, G.decode(zs, code(attributes, thres_int)),
            *(G.decode(zs, c) for c in flip_codes(attributes, thres_int, intensity))]


@torch.no_grad()
def edited_samples(G: nn.Module, data, n: int, seed: int, thres_int: float, device: torch.device,
                   batch_size: int = 256) -> Tensor:
    """The first n training images decoded under a seeded shuffle of their attributes, as G's training edits
    them: the samples gan diagnose's probes judge, on the CPU."""
    x, a = data.first(n), data.attributes.binary[:n]
    b = shuffled(a, torch.Generator().manual_seed(seed))
    return torch.cat([G(x[i:i + batch_size].to(device), code(b[i:i + batch_size], thres_int).to(device)).float().cpu()
                      for i in range(0, len(x), batch_size)])


# -- the algorithm -------------------------------------------------------------------------------------

class AttGAN(Algorithm):
    inputs = ("image", "attributes")
    # those inside the loss's D objective; G's objective is AttGAN's own (no feature matching)
    stabilisers = frozenset({"loss.label_smoothing", "loss.r1", "loss.r2"})

    @classmethod
    def networks(cls, shape, input_shape):
        return {"G": ("g", {"shape": shape}), "D": ("d", {"shape": shape})}

    @classmethod
    def check_data(cls, data) -> None:
        if input_shape_of(data) is not None:
            raise UserError(f"data={data.name} holds image pairs or two domains for translation, and algorithm=attgan "
                            f"edits the attributes of single images: use data=mnist data.attributes=[thickness,slant]")
        if getattr(data, "attributes", None) is None:
            raise UserError(f"algorithm=attgan edits attributes, and data={data.name} carries none: set "
                            f"data.attributes=[...] (e.g. data=mnist data.attributes=[thickness,slant,width])")

    def __init__(self, models: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer], loss: GANLoss,
                 attributes: Attributes | None = None, lambda_rec: float = 100.0, lambda_cls_g: float = 10.0,
                 lambda_cls_d: float = 1.0, thres_int: float = 0.5, d_steps: int = 5, ema: float = 0.0,
                 eval_every: int = 0):
        """attributes: the data's (names, thresholds); lambda_rec, lambda_cls_g, lambda_cls_d: the paper's
        lambda_1, lambda_2, lambda_3 (100, 10, 1); thres_int: the magnitude of an attribute's code in training
        (0.5); d_steps: critic updates per G update (the authors' code: 5); eval_every: train.eval_every, refused
        (gan eval's metrics measure samples from noise)."""
        if eval_every:
            raise UserError(f"train.eval_every={eval_every}: gan eval's metrics measure a generator of noise, and "
                            f"algorithm=attgan edits given images; drop it and measure the edits after training "
                            f"with python bench/attgan_edits.py --checkpoint <run>/checkpoints/last.pt")
        if attributes is None:
            raise UserError("algorithm=attgan edits attributes, and this data carries none: set data.attributes=[...] "
                            "(e.g. data=mnist data.attributes=[thickness,slant,width])")
        for key, value, paper in (("lambda_rec", lambda_rec, 100), ("lambda_cls_g", lambda_cls_g, 10),
                                  ("lambda_cls_d", lambda_cls_d, 1)):
            if not value >= 0:
                raise UserError(f"algorithm.{key}={value} must be 0 or positive (paper: {paper})")
        if not 0 < thres_int <= 1:
            raise UserError(f"algorithm.thres_int={thres_int} must be in (0, 1] (the authors': 0.5)")
        if d_steps < 1:
            raise UserError(f"algorithm.d_steps={d_steps} must be at least 1 (the authors' code: 5)")
        G, D = models["G"], models["D"]
        for name, net in (("G", G), ("D", D)):
            if tuple(getattr(net, "attributes", ())) != tuple(attributes.names):
                raise UserError(f"model's {name} edits attributes {list(getattr(net, 'attributes', ()))} and the data "
                                f"carries {list(attributes.names)}: use model=attgan, which takes data.attributes")
        with torch.no_grad():  # before the EMA copies G: the cut points travel with G's weights into checkpoints
            G.thresholds.copy_(attributes.thresholds.to(G.thresholds))
        super().__init__(models, optimizers, ema)
        self.G, self.D, self.loss = G, D, loss
        self.names = tuple(attributes.names)
        self.num_classes = None
        self.lambda_rec, self.lambda_cls_g, self.lambda_cls_d = lambda_rec, lambda_cls_g, lambda_cls_d
        self.thres_int = thres_int
        self.fixed_attributes = attributes.binary  # the rows of the training pictures read their first few
        loss.check(D)
        self.phases = [Phase("d", self.d_step, repeat=d_steps), Phase("g", self.g_step)]

    def d_step(self, run: Run) -> Stats:
        # min_D,C  L_adv_d(x^a, G(x^a, b)) + lambda_3 BCE(C(x^a), a)
        batch = run.next_batch()
        x, a = batch.images, batch.attributes
        b = shuffled(a, run.z_gen)
        with autocast(x, run.schedule.precision):
            with torch.no_grad():  # G is a constant here
                fake = self.G(x, code(b, self.thres_int))
            adversarial, stats = self.loss.d_loss(self.D, x, fake)
            cls = classification_loss(self.D.classify(x), a)
        loss_d = adversarial + self.lambda_cls_d * cls
        stats["grad_norm/d"] = update(self.optimizers["D"], loss_d, [self.D], run.world.average_gradients)
        self.loss.after_d_step(self.D)
        return {"loss/d": loss_d.detach(), "attgan/cls_d": cls.detach(), **stats}

    def g_step(self, run: Run) -> Stats:
        # min_G  L_adv_g(G(x^a, b)) + lambda_2 BCE(C(G(x^a, b)), b) + lambda_1 |x^a - G(x^a, a)|_1
        batch = run.next_batch()
        x, a = batch.images, batch.attributes
        b = shuffled(a, run.z_gen)
        self.D.requires_grad_(False)  # D and C are constants here: their weights get no gradient
        try:
            with autocast(x, run.schedule.precision):
                zs = self.G.encode(x)  # one encoding for both decodings, as the authors' code
                edited = self.G.decode(zs, code(b, self.thres_int))
                rebuilt = self.G.decode(zs, code(a, self.thres_int))
                adversarial, _ = self.loss.g_loss(self.D, edited)
                cls = classification_loss(self.D.classify(edited), b)
            rec = reconstruction_loss(x, rebuilt)
            loss_g = adversarial + self.lambda_cls_g * cls + self.lambda_rec * rec
            grad = update(self.optimizers["G"], loss_g, [self.G], run.world.average_gradients)
        finally:
            self.D.requires_grad_(True)
        return {"loss/g": loss_g.detach(), "attgan/adv_g": adversarial.detach(), "attgan/cls_g": cls.detach(),
                "attgan/rec": rec.detach(), "grad_norm/g": grad}

    # -- pictures: input | reconstruction | each attribute flipped ---------------------------------------

    def picture(self, run: Run, real: Tensor) -> tuple[Tensor, Tensor]:
        n = min(ROWS, len(run.data))
        x = run.data.first(n).to(run.device)
        a = self.fixed_attributes[:n].to(run.device)
        G = self.sampler
        was_training = G.training
        G.eval()
        columns = edit_columns(G, x, a, self.thres_int)
        G.train(was_training)
        # the judged samples are the edits (what G makes that is not a copy), the picture every column
        return torch.cat(columns[2:]), groups_picture([c.cpu() for c in columns], per_row=2)
