"""MISA's MI regulariser: with the optimal critic log p(a|s) − log p(a) of a linear-Gaussian behaviour
policy a = W s + ε its value is the exact I(S; A), and the 50-sample Monte-Carlo estimate lies
within its standard error; with CQL's proposal it is CQL(H)'s penalty, computed here as CQL's
reference code computes it."""
import math

import numpy as np
import pytest
import torch
from torch.distributions import MultivariateNormal

from pprl.rl.learners.continuous_nets import QNetwork, SquashedGaussianActor
from pprl.rl.learners.mi_regularizer import log_partition, mi_lower_bound, state_weights

W = torch.tensor([[1.0, 0.5, 0.0], [0.0, -0.8, 0.3]])  # a = W s + ε, s ~ N(0, I₃), ε ~ N(0, Σε)
NOISE = torch.tensor([[0.5, 0.1], [0.1, 0.3]])
EXACT = 0.5 * (torch.logdet(W @ W.T + NOISE) - torch.logdet(NOISE)).item()


def optimal_critic(s, a):
    """T(s, a) = log p(a|s) − log p(a): the density ratio, the bound's optimum."""
    return (MultivariateNormal(s @ W.T, NOISE).log_prob(a)
            - MultivariateNormal(torch.zeros(2), W @ W.T + NOISE).log_prob(a))


def draw(B, N, g):
    s = torch.randn(B, 3, generator=g)
    a = s @ W.T + torch.randn(B, 2, generator=g) @ torch.linalg.cholesky(NOISE).T
    marginal = torch.randn(N, B, 2, generator=g) @ torch.linalg.cholesky(W @ W.T + NOISE).T  # a_j ~ p(a)
    return optimal_critic(s, a), optimal_critic(s.expand(N, B, 3), marginal)


@pytest.mark.parametrize("bound", ["dv", "nwj", "conditional"])
def test_with_the_optimal_critic_the_bound_is_the_exact_mutual_information(bound):
    g = torch.Generator().manual_seed(0)
    # the conditional form takes a log inside each state: it needs many samples per state to be unbiased
    q_data, q_samples = draw(8_000, 1_000, g) if bound == "conditional" else draw(200_000, 4, g)
    critic_shift = 1.0 if bound == "nwj" else 0.0  # NWJ's optimum is 1 + log r
    value = mi_lower_bound(q_data + critic_shift, q_samples + critic_shift, bound)
    assert value.item() == pytest.approx(EXACT, abs=0.02)


@pytest.mark.parametrize("bound", ["dv", "nwj"])
def test_the_50_sample_monte_carlo_estimate_is_within_its_standard_error(bound):
    g = torch.Generator().manual_seed(1)
    shift = 1.0 if bound == "nwj" else 0.0
    estimates = []
    for _ in range(40):
        q_data, q_samples = draw(256, 50, g)  # a minibatch of 256 states, 50 action samples each
        estimates.append(mi_lower_bound(q_data + shift, q_samples + shift, bound).item())
    estimates = np.array(estimates)
    stderr = estimates.std(ddof=1) / math.sqrt(len(estimates))
    assert abs(estimates.mean() - EXACT) < 3 * stderr + 0.005, (estimates.mean(), EXACT, stderr)
    assert estimates.std() < 0.2  # one minibatch's estimate is already informative


def test_with_cqls_proposal_misa_is_the_cql_penalty():
    torch.manual_seed(0)  # the networks' initial weights only (this test draws its samples from g)
    obs_dim, act_dim, B, N = 4, 2, 32, 10
    actor = SquashedGaussianActor(obs_dim, act_dim, (16,), low=[-1.0] * act_dim, high=[1.0] * act_dim)
    q = QNetwork(obs_dim, act_dim, (16,))
    g = torch.Generator().manual_seed(0)
    s, s2 = torch.randn(B, obs_dim, generator=g), torch.randn(B, obs_dim, generator=g)
    a = torch.rand(B, act_dim, generator=g) * 2 - 1
    # CQL(H), as the reference implementation writes it (Kumar et al. 2020, Appendix F)
    random_actions = torch.rand(N, B, act_dim, generator=g) * 2 - 1
    random_density = math.log(0.5 ** act_dim)
    curr, curr_logp = actor.sample(s, g, num=N)
    nxt, next_logp = actor.sample(s2, g, num=N)
    cat_q = torch.cat([q(s, random_actions) - random_density, q(s, nxt) - next_logp.detach(),
                       q(s, curr) - curr_logp.detach()], 0)                      # [3N, B]
    cql_penalty = torch.logsumexp(cat_q, 0).mean() - q(s, a).mean()
    # MISA's conditional bound, base measure Lebesgue, the same samples as its proposal
    q_samples = torch.cat([q(s, random_actions), q(s, nxt), q(s, curr)], 0)
    log_proposal = torch.cat([torch.full((N, B), random_density), next_logp.detach(), curr_logp.detach()], 0)
    misa = mi_lower_bound(q(s, a), q_samples, "conditional", log_base=torch.zeros(()), log_proposal=log_proposal)
    torch.testing.assert_close(-misa + math.log(3 * N), cql_penalty)
    # and their gradients in Q's parameters agree too
    grads = [torch.autograd.grad(x, list(q.parameters()), retain_graph=True) for x in (-misa, cql_penalty)]
    for ga, gb in zip(*grads):
        torch.testing.assert_close(ga, gb)


def test_log_partition_and_state_weights():
    g = torch.Generator().manual_seed(0)
    q = torch.randn(50, 8, generator=g)
    torch.testing.assert_close(log_partition(q), torch.log(q.exp().mean(0)))
    for bound, total in (("dv", 1.0), ("conditional", 1.0)):
        assert state_weights(q, bound).sum().item() == pytest.approx(total)
    torch.testing.assert_close(state_weights(q, "nwj"), q.exp().mean(0) / math.e / 8)
    with pytest.raises(ValueError, match="unknown MI bound 'js'; allowed: dv, conditional, nwj"):
        mi_lower_bound(q[0], q, "js")
