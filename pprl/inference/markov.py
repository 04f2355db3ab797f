r"""Exact mutual information of a finite Markov chain under a fixed stochastic policy: the
reference DRIML's InfoNCE estimates are checked against.

A controlled chain has S states, A actions, a kernel ``transition[s, a, s'] = p(s'|s, a)`` and a
policy ``policy[s, a] = π(a|s)``. Under π the states form a Markov chain with kernel

    P_π(s, s') = Σ_a π(a|s) p(s'|s, a),

and from S_t ~ d (by default the stationary distribution d = d P_π) the joint of the state,
the action and the state k steps later is

    p(s, a, s') = d(s) π(a|s) [p(·|s, a) P_π^{k−1}](s'),

so, enumerating all S·A·S triples,

    I([S_t, A_t]; S_{t+k}) = Σ p(s, a, s') log p(s, a, s') / (d(s) π(a|s) p_k(s')),
    p_k = d P_π^k   (= d when d is stationary).

For large k the chain forgets: I decays as |λ₂|^{2k} (the χ² divergence to independence is a sum
of squared eigen-components), λ₂ the second-largest eigenvalue modulus of P_π (:func:`second_eigenvalue`).
"""
from __future__ import annotations

import numpy as np
import torch

__all__ = ["policy_kernel", "stationary_distribution", "second_eigenvalue", "state_action_future_mi",
           "sample_chain"]


def _check(transition, policy) -> tuple[np.ndarray, np.ndarray]:
    P = np.asarray(transition, dtype=np.float64)
    pi = np.asarray(policy, dtype=np.float64)
    if P.ndim != 3 or P.shape[0] != P.shape[2]:
        raise ValueError(f"transition must be [S, A, S] with transition[s, a, s'] = p(s'|s, a), got shape {P.shape}")
    if pi.shape != P.shape[:2]:
        raise ValueError(f"policy must be [S, A] = {P.shape[:2]} with policy[s, a] = π(a|s), got shape {pi.shape}")
    for name, m in (("transition", P), ("policy", pi)):
        if (m < 0).any() or not np.allclose(m.sum(-1), 1.0, atol=1e-6):
            raise ValueError(f"{name} rows must be probability distributions (non-negative, summing to 1)")
    return P, pi


def _start(start, S: int, kernel: np.ndarray) -> np.ndarray:
    """The start law: stationary when None, else a checked probability vector of length S."""
    if start is None:
        return stationary_distribution(kernel)
    d = np.asarray(start, dtype=np.float64)
    if d.shape != (S,) or (d < 0).any() or not np.isclose(d.sum(), 1.0, atol=1e-6):
        raise ValueError(f"start must be a probability vector over the {S} states, got {np.asarray(start)!r}")
    return d


def policy_kernel(transition, policy) -> np.ndarray:
    """P_π[s, s'] = Σ_a π(a|s) p(s'|s, a), ``[S, S]``."""
    P, pi = _check(transition, policy)
    return np.einsum("sa,sat->st", pi, P)


def stationary_distribution(kernel) -> np.ndarray:
    """The d with d = d·kernel, Σ d = 1 (least squares on the stacked system; unique for an
    irreducible chain)."""
    K = np.asarray(kernel, dtype=np.float64)
    S = len(K)
    system = np.vstack([K.T - np.eye(S), np.ones((1, S))])
    rhs = np.zeros(S + 1)
    rhs[-1] = 1.0
    d = np.linalg.lstsq(system, rhs, rcond=None)[0]
    return np.clip(d, 0.0, None) / np.clip(d, 0.0, None).sum()


def second_eigenvalue(kernel) -> float:
    """|λ₂|: the second-largest eigenvalue modulus of a stochastic matrix, the rate at which the
    chain forgets its start."""
    moduli = np.sort(np.abs(np.linalg.eigvals(np.asarray(kernel, dtype=np.float64))))[::-1]
    return float(moduli[1]) if len(moduli) > 1 else 0.0


def state_action_future_mi(transition, policy, k: int, start=None) -> float:
    """I([S_t, A_t]; S_{t+k}) in nats by enumeration (module docstring); S_t ~ ``start``
    (default: the stationary distribution of P_π)."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    P, pi = _check(transition, policy)
    Ppi = np.einsum("sa,sat->st", pi, P)
    d = _start(start, len(P), Ppi)
    ahead = P @ np.linalg.matrix_power(Ppi, k - 1)          # [S, A, S]: p(s_{t+k} | s, a)
    joint = d[:, None, None] * pi[:, :, None] * ahead      # p(s, a, s')
    future = joint.sum((0, 1))                              # p_k(s')
    mask = joint > 0
    ratio = ahead / np.where(future > 0, future, 1.0)[None, None, :]
    return float((joint[mask] * np.log(ratio[mask])).sum())


def sample_chain(transition, policy, steps: int, chains: int, *, seed: int = 0, start=None) -> tuple[torch.Tensor, torch.Tensor]:
    """``chains`` independent runs of ``steps`` steps, S_0 ~ ``start`` (default stationary), a_t ~ π(·|s_t),
    s_{t+1} ~ p(·|s_t, a_t): states ``[steps, chains]`` and actions ``[steps, chains]`` (long),
    time-major like a learner's rollout, drawn from a private generator."""
    P, pi = _check(transition, policy)
    d = _start(start, len(P), np.einsum("sa,sat->st", pi, P))
    g = torch.Generator().manual_seed(seed)
    P_t, pi_t = torch.as_tensor(P), torch.as_tensor(pi)
    states = torch.empty(steps, chains, dtype=torch.long)
    actions = torch.empty(steps, chains, dtype=torch.long)
    s = torch.multinomial(torch.as_tensor(d).expand(chains, -1), 1, replacement=True, generator=g).squeeze(-1)
    for t in range(steps):
        a = torch.multinomial(pi_t[s], 1, generator=g).squeeze(-1)
        states[t], actions[t] = s, a
        s = torch.multinomial(P_t[s, a], 1, generator=g).squeeze(-1)
    return states, actions
