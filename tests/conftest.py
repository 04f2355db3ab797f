"""Shared fixtures: small synthetic linear systems and cached Pendulum-v1 transitions."""
import pytest
import torch

import pprl

def linear_system(n: int, obs_dim: int = 2, act_dim: int = 1, noise: float = 0.1, seed: int = 0) -> pprl.Transitions:
    """s' = A s + B a + c + ε with ε ~ N(0, noise²): data whose posterior is exactly Gaussian."""
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(n, obs_dim, generator=g)
    act = torch.rand(n, act_dim, generator=g) * 2 - 1
    W = torch.randn(obs_dim + act_dim + 1, obs_dim, generator=g) * 0.7
    x = torch.cat([obs, act, torch.ones(n, 1)], -1)
    next_obs = x @ W + noise * torch.randn(n, obs_dim, generator=g)
    return pprl.Transitions(obs, act, next_obs, torch.zeros(n), torch.zeros(n, dtype=torch.bool),
                            torch.zeros(n, dtype=torch.bool))


@pytest.fixture(scope="session")
def pendulum():
    """6,000 random-policy Pendulum-v1 transitions split 5,000 / 1,000."""
    data = pprl.collect("Pendulum-v1", 6000, seed=0)
    return data[:5000], data[5000:]


@pytest.fixture
def single_thread():
    """Run a test with one torch thread (restored afterwards). The networks in these tests are
    small; on a shared 2-core machine torch's intra-op threads spin-wait and made runs 10–60×
    slower under load. Use with ``pytestmark = pytest.mark.usefixtures("single_thread")``."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
