r"""Gradient-based MCMC in torch, batched over independent chains: Metropolis-adjusted Langevin
(MALA) and Hamiltonian Monte Carlo with a Metropolis correction. MISA draws from
p̃(a|s) ∝ π(a|s) e^{Q(s,a)} with them, one chain per (state, sample) pair.

Randomness comes only from the ``generator`` passed in. ``log_prob(x) -> [...]`` is an unnormalised log density evaluated on a batch ``x [..., d]``; every
leading index is its own chain. Both samplers leave p ∝ e^{log_prob} invariant; ``steps`` is the
chain length (MISA's burn-in of 5 is short: the draws are then only approximately from p).

MALA (Roberts & Tweedie 1996): x' = x + (ε/2) ∇log p(x) + √ε ξ, accepted with probability
min(1, p(x') q(x|x') / (p(x) q(x'|x))), q(x'|x) = N(x + (ε/2)∇log p(x), ε I).
HMC (Neal 2011): momentum r ~ N(0, I), ``leapfrog_steps`` leapfrog steps of size ε on
H = −log p(x) + ½‖r‖², accepted with probability min(1, e^{−ΔH}).
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

__all__ = ["mala", "hmc", "SAMPLERS"]


def _value_and_grad(log_prob: Callable[[Tensor], Tensor], x: Tensor) -> tuple[Tensor, Tensor]:
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        value = log_prob(x)
        (grad,) = torch.autograd.grad(value.sum(), x)
    return value.detach(), grad.detach()


def _accept(log_ratio: Tensor, generator: torch.Generator) -> Tensor:
    u = torch.rand(log_ratio.shape, generator=generator, device=log_ratio.device)
    return torch.log(u) < log_ratio


def mala(log_prob: Callable[[Tensor], Tensor], init: Tensor, steps: int, step_size: float,
         generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """``steps`` MALA steps from ``init [..., d]``: (final states, mean acceptance rate per chain)."""
    x = init.detach()
    value, grad = _value_and_grad(log_prob, x)
    accepted = torch.zeros(x.shape[:-1], device=x.device)
    for _ in range(steps):
        noise = torch.randn(x.shape, generator=generator, device=x.device)
        proposal = x + 0.5 * step_size * grad + step_size ** 0.5 * noise
        p_value, p_grad = _value_and_grad(log_prob, proposal)
        forward = -(proposal - x - 0.5 * step_size * grad).square().sum(-1) / (2 * step_size)
        backward = -(x - proposal - 0.5 * step_size * p_grad).square().sum(-1) / (2 * step_size)
        ok = _accept(p_value - value + backward - forward, generator)
        x = torch.where(ok[..., None], proposal, x)
        value, grad = torch.where(ok, p_value, value), torch.where(ok[..., None], p_grad, grad)
        accepted += ok.float()
    return x, accepted / max(steps, 1)


def hmc(log_prob: Callable[[Tensor], Tensor], init: Tensor, steps: int, step_size: float,
        generator: torch.Generator, leapfrog_steps: int = 5) -> tuple[Tensor, Tensor]:
    """``steps`` HMC transitions (``leapfrog_steps`` each) from ``init [..., d]``: (final states,
    mean acceptance rate per chain)."""
    x = init.detach()
    value, grad = _value_and_grad(log_prob, x)
    accepted = torch.zeros(x.shape[:-1], device=x.device)
    for _ in range(steps):
        r0 = torch.randn(x.shape, generator=generator, device=x.device)
        q, r, g = x, r0 + 0.5 * step_size * grad, grad
        for i in range(leapfrog_steps):
            q = q + step_size * r
            q_value, g = _value_and_grad(log_prob, q)
            if i < leapfrog_steps - 1:
                r = r + step_size * g
        r = r + 0.5 * step_size * g
        log_ratio = (q_value - 0.5 * r.square().sum(-1)) - (value - 0.5 * r0.square().sum(-1))
        ok = _accept(log_ratio, generator)
        x = torch.where(ok[..., None], q, x)
        value, grad = torch.where(ok, q_value, value), torch.where(ok[..., None], g, grad)
        accepted += ok.float()
    return x, accepted / max(steps, 1)


SAMPLERS = {"langevin": mala, "hmc": hmc}
