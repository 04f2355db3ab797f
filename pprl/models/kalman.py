"""The exact log-likelihood of a linear-Gaussian state-space model by the Kalman filter.

    z_0 ~ N(m0, P0),   z_{t+1} = A z_t + B a_t + b + N(0, Q),   o_t = C z_t + d + N(0, R):

log p(o_{0:T−1} | a) = Σ_t log N(o_t; C m_{t|t−1} + d, C P_{t|t−1} Cᵀ + R), the prediction-error
decomposition (Kalman 1960; Harvey 1989, §3.4), with the predicted moments m_{t|t−1}, P_{t|t−1}
of the filter. The reference that the ELBO of a linear latent model must stay below
(:meth:`pprl.models.latent.LatentModel.linear_gaussian_parameters`). With T = 1 it is the marginal
likelihood of probabilistic PCA, o ~ N(C m0 + d, C P0 Cᵀ + R).
"""
from __future__ import annotations

import torch


def kalman_log_likelihood(obs: torch.Tensor, act: torch.Tensor, A, B, b, Q, C, d, R, m0, P0) -> torch.Tensor:
    """log p(o_{0:T−1} | a_{0:T−2}) per sequence for ``obs [N, T, n]``, ``act [N, T − 1, m]`` → ``[N]``,
    computed in float64 (batched over sequences; a loop over the T steps)."""
    obs, act = obs.double(), act.double()
    A, B, b, Q, C, d, R, m0, P0 = (x.detach().double() for x in (A, B, b, Q, C, d, R, m0, P0))
    N, T, n = obs.shape
    m = m0.expand(N, -1).clone()  # predicted mean m_{t|t−1}   [N, k]
    P = P0.clone()  # predicted covariance (the same for every sequence)
    total = torch.zeros(N, dtype=torch.float64, device=obs.device)
    for t in range(T):
        S = C @ P @ C.T + R  # innovation covariance
        L = torch.linalg.cholesky(S)
        e = obs[:, t] - (m @ C.T + d)  # innovations [N, n]
        w = torch.cholesky_solve(e.unsqueeze(-1), L).squeeze(-1)
        total += -0.5 * (e * w).sum(-1) - torch.log(torch.diagonal(L)).sum() - 0.5 * n * torch.log(
            torch.tensor(2 * torch.pi, dtype=torch.float64))
        K = torch.cholesky_solve(C @ P, L).T  # Kalman gain P Cᵀ S⁻¹  [k, n]
        m = m + w @ (C @ P)  # filtered mean m + P Cᵀ S⁻¹ e
        P = P - K @ C @ P
        P = 0.5 * (P + P.T)
        if t < T - 1:  # predict
            m = m @ A.T + act[:, t] @ B.T + b
            P = A @ P @ A.T + Q
    return total


def state_posterior(obs: torch.Tensor, act: torch.Tensor, A, B, b, Q, C, d, R, m0, P0):
    """The exact posterior p(z_{0:T−1} | o_{0:T−1}, a) of the same model, a Gaussian whose
    precision is block-tridiagonal: with z the stacked states (T·k numbers),

        J = Λ_prior + blockdiag(Cᵀ R⁻¹ C),   h = h_prior + [Cᵀ R⁻¹ (o_t − d)]_t,   z | o ~ N(J⁻¹ h, J⁻¹),

    Λ_prior, h_prior collecting the terms of log N(z_0; m0, P0) + Σ_t log N(z_t; A z_{t−1} + B a_{t−1}
    + b, Q). Solved densely (O((T k)³); meant as a reference for short sequences, the smoother's
    answer without its recursions). ``obs [N, T, n]``, ``act [N, T − 1, m]`` → means ``[N, T, k]`` and
    the joint covariance ``[T·k, T·k]`` (the same for every sequence), in float64."""
    obs, act = obs.double(), act.double()
    A, B, b, Q, C, d, R, m0, P0 = (x.detach().double() for x in (A, B, b, Q, C, d, R, m0, P0))
    N, T, _ = obs.shape
    k = A.shape[0]
    Qi, Ri, P0i = torch.linalg.inv(Q), torch.linalg.inv(R), torch.linalg.inv(P0)
    J = torch.zeros(T * k, T * k, dtype=torch.float64, device=obs.device)
    h = torch.zeros(N, T * k, dtype=torch.float64, device=obs.device)
    blk = [slice(t * k, (t + 1) * k) for t in range(T)]
    J[blk[0], blk[0]] += P0i
    h[:, blk[0]] += m0 @ P0i
    for t in range(1, T):  # −½ (z_t − A z_{t−1} − u_t)ᵀ Q⁻¹ (z_t − A z_{t−1} − u_t), u_t = B a_{t−1} + b
        u = act[:, t - 1] @ B.T + b  # [N, k]
        J[blk[t], blk[t]] += Qi
        J[blk[t - 1], blk[t - 1]] += A.T @ Qi @ A
        J[blk[t], blk[t - 1]] -= Qi @ A
        J[blk[t - 1], blk[t]] -= A.T @ Qi
        h[:, blk[t]] += u @ Qi
        h[:, blk[t - 1]] -= u @ Qi @ A
    for t in range(T):
        J[blk[t], blk[t]] += C.T @ Ri @ C
        h[:, blk[t]] += (obs[:, t] - d) @ Ri @ C
    cov = torch.cholesky_inverse(torch.linalg.cholesky(J))
    return (h @ cov).reshape(N, T, k), cov
