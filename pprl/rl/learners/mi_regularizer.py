r"""The MI regulariser of MISA (Ma et al. 2022) and CQL's conservative penalty, as one estimator of a
log-partition with a declared proposal.

MISA lower-bounds I(S; A) of the data with the Q-function as the critic T = Q:

    dv:           I_DV  = E_D[Q(s, a)] − log E_{s~D} E_{a~π(·|s)} [e^{Q(s,a)}]
    conditional:  I_C   = E_D[Q(s, a)] − E_{s~D} log E_{a~π(·|s)} [e^{Q(s,a)}]
    nwj:          I_NWJ = E_D[Q(s, a)] − e^{−1} E_{s~D} E_{a~π(·|s)} [e^{Q(s,a)}]

(exact bounds on I(S; A) when the inner law is the data's action marginal p(a); MISA puts its
policy π there, so the regulariser keeps π and Q on the data's support). The inner expectation is
a Monte-Carlo average over N action samples per state (50 in the paper). With samples from a
proposal μ and a base measure ν (π for MISA), every inner term is importance-weighted,

    log E_ν[e^Q] ≈ logmeanexp_j [Q(s, a_j) + log ν(a_j) − log μ(a_j)],   a_j ~ μ,

and with ν = Lebesgue measure (``log_base = 0``) and CQL's mixture proposal (uniform actions,
π(·|s), π(·|s')), the conditional form's penalty −I_C is CQL(H)'s E_s log ∫ e^{Q(s,a)} da − E_D[Q]
(Kumar et al. 2020, eq. 4) up to the constant log(3N) (CQL's reference code takes a log-sum-exp over its
3N samples where this averages them): CQL is MISA with another proposal.

The policy's gradient of −log E_s E_π[e^Q] is E_{p̃}[∇ log π(a|s)] with p̃(s, a) ∝ p(s) π(a|s) e^{Q(s,a)}
(the log-partition's score identity); MISA draws from p̃ by MCMC (:mod:`pprl.inference.mcmc.gradient_mcmc`)
and weights states by their share of the partition for ``dv`` (equally for ``conditional``).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["log_partition", "mi_lower_bound", "state_weights", "BOUNDS"]

BOUNDS = ("dv", "conditional", "nwj")


def log_partition(q_samples: Tensor, log_base: Tensor | None = None, log_proposal: Tensor | None = None) -> Tensor:
    """Per-state log E_ν[e^{Q(s,a)}] ≈ logmeanexp_j (Q + log ν − log μ) over samples ``[N, B]``
    (``log_base`` / ``log_proposal`` None: ν = μ, plain averaging). Returns ``[B]``."""
    weighted = q_samples
    if log_base is not None:
        weighted = weighted + log_base
    if log_proposal is not None:
        weighted = weighted - log_proposal
    return torch.logsumexp(weighted, dim=0) - math.log(q_samples.shape[0])


def mi_lower_bound(q_data: Tensor, q_samples: Tensor, bound: str = "dv", log_base: Tensor | None = None,
                   log_proposal: Tensor | None = None) -> Tensor:
    """The bound's value (module docstring) from Q on the data's pairs ``[B]`` and on N sampled
    actions per data state ``[N, B]``, in nats; differentiable in both."""
    if bound not in BOUNDS:
        raise ValueError(f"unknown MI bound {bound!r}; allowed: {', '.join(BOUNDS)}")
    per_state = log_partition(q_samples, log_base, log_proposal)  # [B]
    if bound == "conditional":
        return q_data.mean() - per_state.mean()
    if bound == "dv":
        return q_data.mean() - (torch.logsumexp(per_state, 0) - math.log(len(per_state)))
    return q_data.mean() - math.exp(-1.0) * per_state.exp().mean()


def state_weights(q_samples: Tensor, bound: str = "dv") -> Tensor:
    """The multipliers w_s ``[B]`` with ∇_π (the bound's log-partition term) = Σ_s w_s E_{p̃(·|s)}[∇ log π(a|s)],
    Ẑ(s) = mean_j e^{Q(s,a_j)}: 1/B (``conditional``), Ẑ(s)/Σ_s' Ẑ(s') (``dv``), e^{−1} Ẑ(s)/B (``nwj``)."""
    if bound not in BOUNDS:
        raise ValueError(f"unknown MI bound {bound!r}; allowed: {', '.join(BOUNDS)}")
    B = q_samples.shape[1]
    log_z = log_partition(q_samples.detach())
    if bound == "conditional":
        return torch.full((B,), 1.0 / B, device=q_samples.device, dtype=q_samples.dtype)
    if bound == "dv":
        return torch.softmax(log_z, 0)
    return torch.exp(log_z - 1.0) / B
