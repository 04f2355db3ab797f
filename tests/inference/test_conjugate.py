"""Variational families against the exact posterior of LinearGaussianDynamics."""
import pytest
import torch

import pprl
from tests.conftest import linear_system

MODEL = {"type": "linear_gaussian", "prior": {"weight_scale": 1.0}, "likelihood": {"noise_scale": 0.1}}
# Full-batch, many particles and a decaying step size so that the final iterate sits at the optimum.
SETTINGS = {"batch_size": 64, "num_particles": 32, "lr": 0.03, "lr_decay": 0.01, "steps": 1500, "init_scale": 0.1}


@pytest.fixture(scope="module")
def problem():
    train, test = linear_system(64, seed=1), linear_system(50, seed=2)
    model = pprl.build_model(MODEL, train.obs_dim, train.act_dim)
    model.fit_normalizer(train)
    return model, train, test, model.exact_posterior(train)


def predictive_moments(model, mean, cov, data):
    """Mean and variance of f(x; θ) = Wᵀ[x, 1] under θ ~ N(mean, cov), per input and output."""
    x = torch.cat([model.inputs(data.obs, data.act), torch.ones(len(data), 1)], -1)
    k, out = x.shape[1], model.obs_dim
    # f_j(x) = Σ_i x_i W[i, j] with θ[i*out + j] = W[i, j]:  f = A θ with A[(n, j), i*out+j] = x_n,i
    A = torch.zeros(len(data), out, k * out)
    for j in range(out):
        A[:, j, torch.arange(k) * out + j] = x
    return A @ mean, torch.einsum("njd,de,nje->nj", A, cov, A)


def fit_family(problem, family, **extra):
    model, train, _, _ = problem
    return pprl.fit(model, {"family": family, **SETTINGS, **extra}, train, seed=0, progress=False)


def test_full_rank_recovers_exact_predictive(problem):
    model, _, test, exact = problem
    post = fit_family(problem, "full_rank")
    q = post.guide.get_posterior()
    m_q, v_q = predictive_moments(model, q.mean, q.covariance_matrix, test)
    m_e, v_e = predictive_moments(model, exact.mean, exact.covariance_matrix, test)
    torch.testing.assert_close(m_q, m_e, rtol=0.05, atol=0.05 * float(v_e.sqrt().mean()))
    torch.testing.assert_close(v_q, v_e, rtol=0.05, atol=0.0)


def test_mean_field_recovers_mean_and_inverse_diagonal_precision(problem):
    """The mean-field optimum of KL(q ‖ p) has the exact mean and variances 1 / diag(Λ)."""
    _, _, _, exact = problem
    post = fit_family(problem, "mean_field", options={"local_reparam": False})
    loc, scale = post.guide.locs.theta.detach(), post.guide.scales.theta.detach()
    exact_sd = exact.covariance_matrix.diagonal().sqrt()
    torch.testing.assert_close(loc, exact.mean, rtol=0.1, atol=0.1 * float(exact_sd.mean()))
    torch.testing.assert_close(scale.square(), 1 / exact.precision_matrix.diagonal(), rtol=0.1, atol=0.0)


def test_mean_field_with_local_reparameterisation_agrees(problem):
    _, _, _, exact = problem
    post = fit_family(problem, "mean_field")
    scale = post.guide.scales.theta.detach()
    torch.testing.assert_close(scale.square(), 1 / exact.precision_matrix.diagonal(), rtol=0.1, atol=0.0)


def test_laplace_is_exact_for_a_linear_model(problem):
    """GGN = Hessian for a linear-Gaussian model, so the Laplace posterior is the exact one."""
    _, _, _, exact = problem
    post = fit_family(problem, "laplace", num_particles=1)
    q = post.guide.get_posterior()
    torch.testing.assert_close(q.mean, exact.mean, rtol=1e-2, atol=1e-3)
    torch.testing.assert_close(q.covariance_matrix, exact.covariance_matrix, rtol=1e-3, atol=1e-6)


def test_exact_posterior_matches_direct_formula(problem):
    """Cross-check the block assembly against the textbook formula for one output column."""
    model, train, _, exact = problem
    x = torch.cat([train.obs, train.act, torch.ones(len(train), 1)], -1).double()
    lam = torch.eye(x.shape[1], dtype=torch.float64) + x.T @ x / 0.1**2
    m = torch.linalg.solve(lam, x.T @ train.next_obs[:, 1].double() / 0.1**2)
    idx = torch.arange(x.shape[1]) * model.obs_dim + 1
    torch.testing.assert_close(exact.mean[idx].double(), m, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(exact.precision_matrix[idx][:, idx].double(), lam, rtol=1e-4, atol=1e-3)
