"""The stabilisers that act on the training step rather than on the objectives: historical averaging
(Salimans et al. 2016, 3.3) and annealed instance noise (Sonderby et al. 2017; Arjovsky & Bottou 2017).
The objectives' own (label smoothing, feature matching, R1, R2) are in gan_cli/losses.py; the unrolled
discriminator (Metz et al. 2017) is gan_cli/steps.unroll."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gan_cli.errors import UserError


class HistoricalAverage:
    """Salimans et al. 2016, 3.3: each player's loss gets lambda ||theta - (1/t) sum_i theta[i]||^2,
    theta[i] its parameters after its i-th update (the start counts as the first), a pull towards its own
    past that damps the orbiting of simultaneous gradient play. The average is a running mean, kept in
    the checkpoint, so a resumed run pulls towards the same past."""

    def __init__(self, weight: float, nets: dict[str, nn.Module]):
        if weight < 0:
            raise UserError(f"train.historical_averaging={weight:g} must be 0 (off) or positive")
        self.weight = weight
        self.count = {name: 1 for name in nets}
        self.mean = {name: [p.detach().clone() for p in net.parameters()] for name, net in nets.items()}

    def penalty(self, name: str):
        """The penalty on network `name`, as steps' (stat name, value) hook."""

        def term(net: nn.Module) -> tuple[str, Tensor]:
            value = sum(((p - m) ** 2).sum() for p, m in zip(net.parameters(), self.mean[name]))
            return f"loss/historical_{name.lower()}", self.weight * value

        return term

    @torch.no_grad()
    def record(self, name: str, net: nn.Module) -> None:
        """After an update of `net`: fold its new parameters into the running mean."""
        self.count[name] += 1
        for p, m in zip(net.parameters(), self.mean[name]):
            m.add_(p.detach() - m, alpha=1 / self.count[name])

    def state_dict(self) -> dict:
        return {"count": dict(self.count), "mean": {name: list(ms) for name, ms in self.mean.items()}}

    def load_state_dict(self, state: dict) -> None:
        """The saved average, checked against this run's networks first: a checkpoint is someone's file."""
        try:
            count = {name: int(state["count"][name]) for name in self.count}
            means = {name: list(state["mean"][name]) for name in self.mean}
            fits = all(c >= 1 for c in count.values()) and all(
                len(means[name]) == len(ms) and all(isinstance(s, Tensor) and s.shape == m.shape
                                                    for s, m in zip(means[name], ms))
                for name, ms in self.mean.items())
        except (KeyError, TypeError, ValueError):
            fits = False
        if not fits:
            raise UserError("the checkpoint's historical average (train.historical_averaging) does not fit this run's "
                            "networks: the file is damaged; resume from another checkpoint of the run")
        self.count = count
        for name, ms in self.mean.items():
            for m, saved in zip(ms, means[name]):
                m.copy_(saved)


class InstanceNoise:
    """Gaussian noise on every input D sees, real and generated alike, its standard deviation falling
    linearly from sigma to 0 over the run (Sonderby et al. 2017, 3.1; Arjovsky & Bottou 2017): the two
    distributions overlap early, so D cannot separate them perfectly and G's gradient stays informative.
    sigma is in D's input units (images and the toy mixtures both lie in [-1, 1])."""

    def __init__(self, sigma: float):
        if sigma < 0:
            raise UserError(f"train.instance_noise={sigma:g} must be 0 (off) or a positive standard deviation")
        self.sigma = sigma

    def at(self, step: int, steps: int, generator: torch.Generator):
        """The perturbation at `step` of `steps`: x + sigma_t N(0, I), drawn from `generator`."""
        sigma = self.sigma * max(0.0, 1.0 - step / max(steps, 1))

        def perturb(x: Tensor) -> Tensor:
            noise = torch.randn(x.shape, device=x.device, generator=generator).to(x.dtype)
            return x + sigma * noise

        return perturb
