"""A Gaussian mixture, the classic explicit density the course sets against GANs: fitted by EM with
scikit-learn's GaussianMixture, sampled in torch, so that it is a "G" like any other.

    p(x) = sum_k pi_k N(x; mu_k, Sigma_k)

The fit keeps only tensors (the weights pi, the means mu and the Cholesky factors of the covariances), as
buffers: a checkpoint holds no pickled estimator and loads with weights_only=True. forward(z) draws from
the mixture with standard normal noise alone, so that sample i of seed s is always the same, as for any G:
z = (eps, v) of d + 1 dimensions, d the flattened sample's; the component k is the one whose share of the
cumulative weights holds u = Phi(v), uniform on [0, 1], and the sample is mu_k + L_k eps, L_k L_k^T = Sigma_k.

Images are fitted flattened, pixels in [-1, 1]; a sample's pixels are clipped to that range (a Gaussian has
no bounds, a pixel has)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from gan_cli import limits
from gan_cli.errors import UserError
from gan_cli.models.layers import require_positive

COVARIANCES = ("full", "diag", "tied", "spherical")


class GaussianMixture(nn.Module):
    trained_by = "gmm"
    num_classes = None

    def __init__(self, shape: Sequence[int], components: int = 10, covariance: str = "full",
                 max_samples: int = 10000, max_iter: int = 100, reg_covar: float = 1e-6, n_init: int = 1):
        """components: K; covariance: full, diag, tied (one Sigma shared by every component) or spherical
        (sigma_k^2 I); max_samples: training samples fitted at most; max_iter, reg_covar (added to each
        covariance's diagonal), n_init: scikit-learn's GaussianMixture's own."""
        super().__init__()
        require_positive("model", components=components, max_samples=max_samples, max_iter=max_iter, n_init=n_init)
        if covariance not in COVARIANCES:
            raise UserError(f"model.covariance={covariance}: choose one of {', '.join(COVARIANCES)}")
        if not reg_covar >= 0:
            raise UserError(f"model.reg_covar={reg_covar} must be 0 or more (scikit-learn's default: 1e-6)")
        self.shape = tuple(shape)
        self.dim = math.prod(self.shape)
        self.z_dim = self.dim + 1  # the sample's noise, then the component's
        self.images = len(self.shape) == 3
        self.components, self.covariance, self.max_samples = components, covariance, max_samples
        self.max_iter, self.reg_covar, self.n_init = max_iter, reg_covar, n_init
        k, d = components, self.dim
        # scikit-learn holds each covariance, its precision's Cholesky factor and a work copy in float64, and
        # the samples with their responsibilities; here the factors again, in float32
        per_cov = {"full": k * d * d, "tied": d * d, "diag": k * d, "spherical": k}[covariance]
        limits.check_memory(per_cov * (3 * 8 + limits.FLOAT) + max_samples * (d + k) * 8 * 2,
                            f"model.components={k} {covariance} covariances of {d} dimensions need",
                            "lower model.components or model.max_samples, or use model.covariance=diag")
        self.register_buffer("weights", torch.full((k,), 1 / k))
        self.register_buffer("means", torch.zeros(k, d))
        # the covariances' factors, by their shape rather than by name: (K or 1, d, d) lower-triangular
        # (full; tied: one), or (K, d or 1) standard deviations (diag; spherical: one per component)
        factor = {"full": torch.eye(d).repeat(k, 1, 1), "tied": torch.eye(d)[None],
                  "diag": torch.ones(k, d), "spherical": torch.ones(k, 1)}[covariance]
        self.register_buffer("scale", factor)

    @torch.no_grad()
    def fit(self, x: Tensor, seed: int) -> dict[str, float]:
        """EM on x (N, ...) flattened, by scikit-learn; the fitted parameters become the buffers. Returns the
        fit's mean log-likelihood per sample (nats), its BIC, EM's iterations and whether it converged."""
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.mixture import GaussianMixture as EM

        X = x.reshape(len(x), -1).double().cpu().numpy()
        if self.components > len(X):
            raise UserError(f"model.components={self.components} is more than the {len(X)} samples to fit: choose at "
                            f"most {len(X)} components, or raise model.max_samples")
        em = EM(n_components=self.components, covariance_type=self.covariance, max_iter=self.max_iter,
                reg_covar=self.reg_covar, n_init=self.n_init, random_state=seed)
        with warnings.catch_warnings():  # not converging is reported in the stats, and the run's log says so
            warnings.simplefilter("ignore", ConvergenceWarning)
            em.fit(X)
        cov = torch.from_numpy(em.covariances_)
        factor = {"full": lambda: torch.linalg.cholesky(cov), "tied": lambda: torch.linalg.cholesky(cov)[None],
                  "diag": lambda: cov.sqrt(), "spherical": lambda: cov.sqrt()[:, None]}[self.covariance]()
        self.weights.copy_(torch.from_numpy(em.weights_))
        self.means.copy_(torch.from_numpy(em.means_))
        self.scale.copy_(factor)
        return {"gmm/log_likelihood": float(em.score(X)), "gmm/bic": float(em.bic(X)),
                "gmm/iterations": float(em.n_iter_), "gmm/converged": float(em.converged_)}

    def component(self, v: Tensor) -> Tensor:
        """(N,) standard normal -> (N,) component indices, k with probability pi_k: inverse-CDF sampling of
        u = Phi(v)."""
        u = torch.special.ndtr(v.float())
        cumulative = self.weights.cumsum(0)
        return torch.searchsorted(cumulative, u).clamp(max=len(self.weights) - 1)  # rounding may leave sum(pi) < u

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        eps, k = z[:, :self.dim].float(), self.component(z[:, self.dim])
        x = self.means[k].clone()
        for c in k.unique().tolist():  # one matrix product per component drawn, not a (N, d, d) gather
            rows = k == c
            f = self.scale[c if len(self.scale) > 1 else 0]
            x[rows] += eps[rows] @ f.T if f.dim() == 2 else eps[rows] * f
        x = x.reshape(len(z), *self.shape)
        return x.clamp(-1, 1) if self.images else x
