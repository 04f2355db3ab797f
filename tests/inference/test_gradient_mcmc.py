"""MALA and HMC draw from π(a) e^{Q(a)} for a Gaussian π and a quadratic Q, whose product is
Gaussian with precision Σ_π⁻¹ + P and mean (Σ_π⁻¹ + P)⁻¹ (Σ_π⁻¹ m + P c)."""
import pytest
import torch

from pprl.inference.mcmc.gradient_mcmc import SAMPLERS


@pytest.mark.parametrize("name", ["langevin", "hmc"])
def test_samples_of_a_gaussian_policy_tilted_by_a_quadratic_q_have_the_product_moments(name):
    m, s = torch.tensor([0.5, -1.0]), torch.tensor([1.0, 0.5])
    c, P = torch.tensor([2.0, 0.0]), torch.tensor([[1.0, 0.3], [0.3, 0.5]])

    def log_target(a):  # log N(a; m, diag s²) + Q(a), Q(a) = −½ (a − c)ᵀ P (a − c)
        d = a - c
        return -0.5 * (((a - m) / s) ** 2).sum(-1) - 0.5 * torch.einsum("...i,ij,...j->...", d, P, d)

    precision = torch.diag(1 / s ** 2) + P
    cov = torch.linalg.inv(precision)
    mean = cov @ (m / s ** 2 + P @ c)
    g = torch.Generator().manual_seed(0)
    init = m + s * torch.randn(4000, 2, generator=g)   # chains start at draws of π, as in MISA
    x, acceptance = SAMPLERS[name](log_target, init, steps=150, step_size=0.3, generator=g)
    assert 0.5 < float(acceptance.mean()) < 1.0
    torch.testing.assert_close(x.mean(0), mean, atol=0.05, rtol=0)
    torch.testing.assert_close(torch.cov(x.T), cov, atol=0.03, rtol=0.1)
