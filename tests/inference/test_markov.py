"""The exact Markov-chain MI that DRIML is checked against: enumeration against a closed form, its
decay rate against the second eigenvalue, and the sampler against the chain's statistics."""
import math

import numpy as np
import pytest

from pprl.inference.markov import (policy_kernel, sample_chain, second_eigenvalue, state_action_future_mi,
                                   stationary_distribution)


def lazy_uniform_chain(n: int, stay: float, actions: int = 2):
    """P_π = λ I + (1 − λ) 11ᵀ/n whatever the action (λ = (stay·n − 1)/(n − 1)): every non-unit
    eigenvalue is λ, the stationary law uniform, and I(S_t; S_{t+k}) has a closed form."""
    base = np.full((n, n), (1 - stay) / (n - 1))
    np.fill_diagonal(base, stay)
    P = np.repeat(base[:, None, :], actions, axis=1)
    policy = np.full((n, actions), 1.0 / actions)
    return P, policy, (stay * n - 1) / (n - 1)


@pytest.mark.parametrize("k", [1, 2, 3, 7])
def test_mi_matches_the_closed_form_of_a_lazy_uniform_chain(k):
    n = 5
    P, policy, lam = lazy_uniform_chain(n, stay=0.7)
    same = lam ** k + (1 - lam ** k) / n                 # P_π^k(s, s)
    other = (1 - lam ** k) / n                           # P_π^k(s, s'), s' ≠ s
    exact = math.log(n) + same * math.log(same) + (n - 1) * other * math.log(other)  # log n − H(row)
    assert state_action_future_mi(P, policy, k) == pytest.approx(exact, rel=1e-10)
    assert second_eigenvalue(policy_kernel(P, policy)) == pytest.approx(lam, rel=1e-10)


def test_actions_add_information_and_mi_decays_at_the_rate_of_the_second_eigenvalue():
    S = 6
    P = np.full((S, 2, S), 0.2 / S)
    for s in range(S):
        P[s, 0, (s + 1) % S] += 0.8
        P[s, 1, (s - 1) % S] += 0.8
    policy = np.array([[0.8, 0.2] if s % 2 == 0 else [0.3, 0.7] for s in range(S)])
    K = policy_kernel(P, policy)
    d = stationary_distribution(K)
    np.testing.assert_allclose(d @ K, d, atol=1e-12)
    mi = [state_action_future_mi(P, policy, k) for k in range(1, 41)]
    assert all(a > b > 0 for a, b in zip(mi, mi[1:]))
    # the state alone says less than state and action (the action picks the direction)
    blind = np.repeat(K[:, None, :], 2, axis=1)
    assert state_action_future_mi(blind, policy, 1) < mi[0] - 0.1
    # I ~ C |λ₂|^{2k} for large k: the log-slope between k = 30 and 40 is 2 log |λ₂|
    slope = (math.log(mi[39]) - math.log(mi[29])) / 10
    assert slope == pytest.approx(2 * math.log(second_eigenvalue(K)), rel=0.02)


def test_sampled_chains_have_the_stationary_law_and_the_kernel():
    P, policy, _ = lazy_uniform_chain(4, stay=0.6)
    states, actions = sample_chain(P, policy, steps=200, chains=100, seed=3)
    assert states.shape == actions.shape == (200, 100)
    counts = np.bincount(states.reshape(-1).numpy(), minlength=4) / states.numel()
    np.testing.assert_allclose(counts, 0.25, atol=0.01)
    stayed = (states[1:] == states[:-1]).float().mean().item()
    assert stayed == pytest.approx(0.6, abs=0.01)
    again, _ = sample_chain(P, policy, steps=200, chains=100, seed=3)
    assert (again == states).all()


def test_bad_input_is_one_clear_error():
    P, policy, _ = lazy_uniform_chain(3, stay=0.5)
    with pytest.raises(ValueError, match=r"policy must be \[S, A\]"):
        state_action_future_mi(P, policy[:, :1], 1)
    with pytest.raises(ValueError, match="rows must be probability distributions"):
        state_action_future_mi(P * 2, policy, 1)
    with pytest.raises(ValueError, match="k must be an integer >= 1"):
        state_action_future_mi(P, policy, 0)
    with pytest.raises(ValueError, match="start must be a probability vector over the 3 states"):
        state_action_future_mi(P, policy, 1, start=[1, 0])
