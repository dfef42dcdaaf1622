"""GAN-INT-CLS's networks (Reed et al. 2016, "Generative Adversarial Text to Image Synthesis", section 3.1),
DCGAN-like and sized for 28 or 32 px digits; train them with algorithm=text2image.

- TextEncoder phi: word embeddings, a GRU, and the mean of its hidden states over the caption's words,
  then a linear layer to phi(t) (text_dim). Reed et al.'s char-CNN-RNN also averages its recurrent hidden
  units over time; words instead of characters because the captions' vocabulary is small and closed
  (gan_cli/attributes/captions.py says more). Like theirs, it is pre-trained and then frozen (by the
  algorithm), so G's and D's objectives never move the meaning of a caption under each other's feet.
- Generator: phi(t) compressed to project_dim (the paper: 128) by a fully connected layer and a leaky
  ReLU, concatenated to z, then DCGAN's generator. It holds the encoder, so a checkpoint's G samples from
  captions alone (`gan sample text=`), and the vocabulary, saved with its weights as a list of strings.
- Discriminator: DCGAN's strided convolutions down to the base feature map (7x7 at 28 px, 4x4 at 32 or 64);
  there phi(t), compressed the same way by D's own layer, is replicated spatially and concatenated in
  depth, then a 1x1 convolution with a leaky ReLU and a base x base convolution give the score. The paper
  concatenates at 4x4, which is its base at 64 px; MNIST's 28 px halve down to 7, where this one does.

G(z, y) takes y as token ids (N, L) long, or as phi(t) itself (N, text_dim) float: the embeddings the
algorithm interpolates for GAN-INT. D(x, h) takes phi(t) (N, text_dim)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from gan_cli.attributes.captions import VOCABULARY
from gan_cli.errors import UserError
from gan_cli.models.dcgan import Generator as DCGANGenerator
from gan_cli.models.dcgan import dcgan_init_, upsampling_plan
from gan_cli.models.layers import norm_layer, require_positive, square_image


class TextEncoder(nn.Module):
    def __init__(self, vocabulary_size: int, text_dim: int = 256, embed_dim: int = 64, hidden: int = 128):
        super().__init__()
        require_positive("model.g", text_dim=text_dim, embed_dim=embed_dim, hidden=hidden)
        self.embed = nn.Embedding(vocabulary_size, embed_dim, padding_idx=0)
        self.rnn = nn.GRU(embed_dim, hidden, batch_first=True)
        self.out = nn.Linear(hidden, text_dim)

    def forward(self, tokens: Tensor) -> Tensor:
        """(N, L) token ids, PAD (0) after the words -> phi(t) (N, text_dim)."""
        words = (tokens != 0).to(torch.float32)  # (N, L)
        hidden, _ = self.rnn(self.embed(tokens))  # (N, L, hidden); a state only sees the words before it
        mean = (hidden * words[:, :, None]).sum(1) / words.sum(1, keepdim=True).clamp_min(1)
        return self.out(mean)


def compression(text_dim: int, project_dim: int) -> nn.Sequential:
    """The paper's compression of phi(t): a fully connected layer to project_dim and a leaky ReLU (0.2)."""
    return nn.Sequential(nn.Linear(text_dim, project_dim), nn.LeakyReLU(0.2, True))


class Generator(nn.Module):
    trained_by = "text2image"  # build.parts refuses these networks under another algorithm
    takes_text = True  # `gan sample` draws it with text=, not labels
    num_classes = None

    def __init__(self, z_dim: int, shape: Sequence[int], width: int = 32, text_dim: int = 256, embed_dim: int = 64,
                 hidden: int = 128, project_dim: int = 128, vocabulary: Sequence[str] = VOCABULARY):
        super().__init__()
        require_positive("model.g", z_dim=z_dim, width=width, project_dim=project_dim)
        self.z_dim, self.text_dim = z_dim, text_dim
        self.vocabulary = tuple(vocabulary)
        self.encoder = TextEncoder(len(self.vocabulary), text_dim, embed_dim, hidden)
        self.project = compression(text_dim, project_dim)
        # (N, z_dim + project_dim) -> (N, C, H, W): DCGAN's generator on [z, compressed phi(t)]
        self.net = DCGANGenerator(z_dim + project_dim, shape, width)
        dcgan_init_(self.project)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        if y is None:
            raise UserError("this generator draws images of captions (algorithm=text2image), and this command gives it "
                            "none: draw it with gan sample checkpoint=... text=\"a thin upright three\"; "
                            "bench/text2image_match.py measures it")
        phi = y.to(z.dtype) if y.is_floating_point() else self.encoder(y)
        return self.net(torch.cat([z, self.project(phi)], dim=1))

    def get_extra_state(self) -> dict[str, Any]:
        # the words by token id, saved beside the weights (plain strings: the checkpoint stays data only)
        return {"vocabulary": list(self.vocabulary)}

    def set_extra_state(self, state: Any) -> None:
        words = state.get("vocabulary") if isinstance(state, dict) else None
        if not (isinstance(words, list) and len(words) == len(self.vocabulary) and all(isinstance(w, str) for w in words)):
            raise RuntimeError(f"the saved vocabulary does not fit this text encoder's {len(self.vocabulary)} words")
        self.vocabulary = tuple(words)


class Discriminator(nn.Module):
    trained_by = "text2image"
    num_classes = None

    def __init__(self, shape: Sequence[int], width: int = 32, norm: str = "batch", text_dim: int = 256,
                 project_dim: int = 128):
        super().__init__()
        require_positive("model.d", width=width, text_dim=text_dim, project_dim=project_dim)
        channels, resolution = square_image(shape, "text2image")
        base, n = upsampling_plan(resolution, "text2image")
        self.text_dim = text_dim
        ch = width
        # (N, C, res, res) -> (N, width, res/2, res/2); no normalisation on the input layer (DCGAN)
        layers: list[nn.Module] = [nn.Conv2d(channels, ch, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        for _ in range(n - 1):  # (N, ch, s, s) -> (N, 2ch, s/2, s/2), down to (N, ch, base, base)
            layers += [nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=norm == "none"), norm_layer(norm, ch * 2),
                       nn.LeakyReLU(0.2, True)]
            ch *= 2
        self.net = nn.Sequential(*layers)
        self.project = compression(text_dim, project_dim)
        # (N, ch + project_dim, base, base) -> (N, ch, base, base): the image's features and the text's, joined
        self.joint = nn.Sequential(nn.Conv2d(ch + project_dim, ch, 1, bias=norm == "none"), norm_layer(norm, ch),
                                   nn.LeakyReLU(0.2, True))
        self.head = nn.Conv2d(ch, 1, base, 1, 0)  # (N, ch, base, base) -> (N, 1, 1, 1)
        dcgan_init_(self)

    def forward(self, x: Tensor, h: Tensor) -> Tensor:
        """Images (N, C, H, W) and phi(t) (N, text_dim) -> the logits (N,) that image and text are a real,
        matching pair."""
        if h is None or not h.is_floating_point() or h.shape[-1] != self.text_dim:
            raise UserError(f"text2image's D judges an image with its caption's embedding phi(t) (N, {self.text_dim}); "
                            f"train it with algorithm=text2image")
        f = self.net(x)
        text = self.project(h.to(f.dtype))[:, :, None, None].expand(-1, -1, *f.shape[2:])
        return self.head(self.joint(torch.cat([f, text], dim=1))).flatten()
