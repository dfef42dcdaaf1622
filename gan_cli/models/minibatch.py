"""Layers that let D look at a whole batch at once, so that a generator that has collapsed onto a few
modes is told apart by the lack of variety among its samples, which no single sample shows:

- minibatch discrimination, Salimans et al. 2016 ("Improved Techniques for Training GANs", section 3.2):
  each sample's learned closeness to every sample of its batch, per kernel;
- minibatch standard deviation, Karras et al. 2018 ("Progressive Growing of GANs", section 3): one
  statistic, the features' standard deviation over a small group of samples, with no parameters.

Both append to the features they are given. They see the batch D is called on: in this runner real and
fake batches go through D separately, so a fake sample is compared with fake samples only, the paper's
"minibatches of only generated or only real samples"."""

from __future__ import annotations

import torch
from torch import nn


class MinibatchDiscrimination(nn.Module):
    """Salimans et al. 2016, section 3.2. For features f (N, A) and a learned tensor T (A, B*C):
    M_i = f_i T as B rows of C, c_b(i, j) = exp(-||M_i,b - M_j,b||_1), o(x_i)_b = sum_j c_b(i, j).
    (N, A) -> (N, A + B), [f, o].

    The sum runs over all j, i itself included, as the paper's formula has it; OpenAI's improved-gan code
    (mnist_svhn_cifar10/nn.py) leaves i out (it adds 1e6 to the diagonal's distance). The two differ by
    exactly 1 per kernel, a constant that the next layer's bias absorbs."""

    def __init__(self, in_features: int, kernels: int, dims: int = 5):
        super().__init__()
        self.kernels, self.dims = kernels, dims
        # N(0, 0.02), DCGAN's scale: the L1 distances start small, where exp(-d) still has a gradient;
        # torch's usual fan-in scale puts them near A * 0.8 / sqrt(A), and every pair but (i, i) then
        # starts at c ~ 0 with a vanishing gradient (OpenAI's code rescales T from a first batch for this)
        self.T = nn.Parameter(torch.randn(in_features, kernels * dims) * 0.02)

    def similarity(self, f: torch.Tensor) -> torch.Tensor:
        """o, the part appended: (N, A) -> (N, B)."""
        m = (f @ self.T).view(-1, self.kernels, self.dims).transpose(0, 1)  # (B, N, C)
        # ||M_i,b - M_j,b||_1 for every pair, per kernel: cdist's L1 kernel, 3x quicker forward and
        # backward than broadcasting an (N, N, B, C) difference (512 x 512 pairs x 32 kernels, 2-core CPU)
        dist = torch.cdist(m, m, p=1)  # (B, N, N)
        return torch.exp(-dist).sum(dim=2).T

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return torch.cat([f, self.similarity(f)], dim=1)


class MinibatchStdDev(nn.Module):
    """Karras et al. 2018, section 3: split the batch into groups of G samples, take each feature's standard
    deviation over its group, average it over features (and positions) to one number per group, and append
    it to each sample of the group as one more feature, or for (N, C, H, W) maps as one more constant
    channel: (N, F) -> (N, F + 1), (N, C, H, W) -> (N, C + 1, H, W).

    As in the authors' code (minibatch_stddev_layer): G = min(group_size, N); the groups are strided
    (sample i is in group i mod N/G, their reshape to (G, N/G, ...)); the standard deviation is the
    population one, sqrt(mean of squared deviations + 1e-8)."""

    def __init__(self, group_size: int = 4):
        super().__init__()
        self.group_size = group_size

    def statistic(self, x: torch.Tensor) -> torch.Tensor:
        """The part appended: (N, ...) -> (N, 1) for (N, F), (N, 1, H, W) for maps."""
        n = x.shape[0]
        # the authors' code needs N divisible by G; for a batch that is not (the last, short one, or N=6
        # with G=4) this takes the largest divisor of N that is at most G, so no sample is left out of a
        # group (at worst G=1, whose standard deviation is 0: the statistic then says nothing)
        g = next(d for d in range(min(self.group_size, n), 0, -1) if n % d == 0)
        y = x.float().reshape(g, n // g, *x.shape[1:])  # (G, M, ...)
        std = torch.sqrt(y.var(dim=0, unbiased=False) + 1e-8)  # (M, ...)
        s = std.flatten(1).mean(dim=1).to(x.dtype)  # (M,): one number per group
        s = s.repeat(g)  # (N,): sample i gets its group's, i mod M
        return s.view(n, 1, *([1] * (x.dim() - 2))).expand(n, 1, *x.shape[2:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.statistic(x)], dim=1)
