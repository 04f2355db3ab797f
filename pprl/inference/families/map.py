"""``map``: q(θ) = δ(θ − θ̂) (Pyro's ``AutoDelta``), the maximum a posteriori estimate. Its
"ELBO" is the log joint log p(y, θ̂); it has no spread, so no information gain."""
from __future__ import annotations

import torch
from pyro.infer.autoguide import AutoDelta

from .base import Family, assign, register_family
from .gaussian import INIT


@register_family
class MAP(Family):
    name = "map"
    elbos = ("plain",)
    point_estimate = True
    has_density = False

    def _build_guide(self, model):
        return AutoDelta(model, init_loc_fn=INIT)

    @property
    def theta(self) -> torch.Tensor:
        return self.guide.theta

    def sample(self, num_samples, generator=None):
        return self.theta.expand(num_samples, -1)

    def num_params(self):
        return self.model.param_dim

    def mean(self):
        return self.theta

    def log_q(self, theta):
        raise ValueError("log q(θ) is undefined for the 'map' family: a point mass has no density")

    def regularizer(self, theta):
        """−log p(θ̂): with it the "ELBO" is the log joint of the point estimate."""
        return -self.model.prior().log_prob(self.theta.detach())

    def affine_transform(self, a, c):
        with torch.no_grad():
            assign(self.guide, "theta", a * self.theta + c)
