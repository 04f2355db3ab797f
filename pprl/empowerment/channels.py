"""Channels from action sequences to the state they lead to: p(s_K | s, a_{1:K}).

Empowerment E(s) = max_ω I(a_{1:K}; s_K | s) is the capacity of this channel (Klyubin et al. 2005;
Mohamed & Rezende 2015). A :class:`TabularChannel` holds a discrete MDP's one-step kernel
P[s, a, s'] and composes it over K steps exactly; :class:`GridWorld` builds that kernel from a map;
:class:`LinearGaussianChannel` is s' = A s + B a + N(0, σ² I), whose capacity under a power
constraint is water-filling (:func:`pprl.empowerment.exact.water_filling`).
"""
from __future__ import annotations

import torch

ACTIONS = ("N", "S", "E", "W", "stay")
_MOVES = {"N": (-1, 0), "S": (1, 0), "E": (0, 1), "W": (0, -1), "stay": (0, 0)}


class TabularChannel:
    """A discrete MDP's one-step kernel ``P [S, A, S]`` (rows sum to 1) on ``device``."""

    def __init__(self, kernel: torch.Tensor, device="cpu"):
        kernel = torch.as_tensor(kernel, dtype=torch.float64, device=device)
        if kernel.dim() != 3 or kernel.shape[0] != kernel.shape[2]:
            raise ValueError(f"the kernel must have shape [S, A, S], got {tuple(kernel.shape)}")
        if (kernel < 0).any() or not torch.allclose(kernel.sum(-1), torch.ones_like(kernel[..., 0]), atol=1e-9):
            raise ValueError("every row P[s, a, :] must be a probability distribution")
        self.kernel = kernel
        self.num_states, self.num_actions = kernel.shape[0], kernel.shape[1]

    def compose(self, horizon: int) -> torch.Tensor:
        """p(s_K | s, a_{1:K}) → ``[S, A^K, S]``; the K actions index the middle axis in
        row-major order (a_1 slowest). One batched matrix product per step."""
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        S, A = self.num_states, self.num_actions
        out = self.kernel  # [S, A^k, S]
        for _ in range(horizon - 1):
            # out[s, x, s'] P[s', a, s''] → [s, x, a, s'']
            out = torch.einsum("sxt,tau->sxau", out, self.kernel).reshape(S, -1, S)
        return out


class GridWorld(TabularChannel):
    """A gridworld from ``layout`` (strings; ``#`` wall, any other character free). Actions N, S,
    E, W, stay; a move into a wall or off the map stays put; with probability ``slip`` the chosen
    action is replaced by one of the other four, uniformly. States are the free cells in
    row-major order (:attr:`cells`)."""

    def __init__(self, layout: list[str], slip: float = 0.0, device="cpu"):
        if not layout or len({len(row) for row in layout}) != 1:
            raise ValueError("layout must be a non-empty list of equally long strings")
        if not 0 <= slip <= 1:
            raise ValueError(f"slip must be in [0, 1], got {slip}")
        self.layout, self.slip = list(layout), float(slip)
        self.cells = [(r, c) for r, row in enumerate(layout) for c, ch in enumerate(row) if ch != "#"]
        if not self.cells:
            raise ValueError("layout has no free cell")
        index = {cell: i for i, cell in enumerate(self.cells)}
        S, A = len(self.cells), len(ACTIONS)
        move = torch.zeros(S, A, S, dtype=torch.float64)
        for i, (r, c) in enumerate(self.cells):
            for a, name in enumerate(ACTIONS):
                dr, dc = _MOVES[name]
                move[i, a, index.get((r + dr, c + dc), i)] = 1.0
        others = (torch.ones(A, A, dtype=torch.float64) - torch.eye(A, dtype=torch.float64)) / (A - 1)
        mix = (1 - slip) * torch.eye(A, dtype=torch.float64) + slip * others  # chosen → executed action
        super().__init__(torch.einsum("ab,sbt->sat", mix, move), device=device)

    def grid(self, values: torch.Tensor) -> torch.Tensor:
        """Per-state ``values [S]`` as a map ``[rows, cols]`` (NaN on walls), for plotting."""
        out = torch.full((len(self.layout), len(self.layout[0])), float("nan"), dtype=torch.float64)
        for v, (r, c) in zip(values.detach().cpu().double(), self.cells):
            out[r, c] = v
        return out

    def render(self, states, cell_size: int = 4) -> torch.Tensor:
        """Images of the agent at ``states`` (indices ``[N]``) → float32 ``[N, 1, cell_size·rows,
        cell_size·cols]`` on the states' device: walls 0.5, the agent's cell 1, free cells 0
        (:func:`pprl.rl.envs.pixels.render_grid`). The ``observe`` of a pixel-based
        :class:`~pprl.empowerment.Empowerment`."""
        from ..rl.envs.pixels import render_grid  # the renderers live with the environments

        s = torch.as_tensor(states, dtype=torch.long)
        if s.dim() != 1 or (s.numel() and (s.min() < 0 or s.max() >= self.num_states)):
            raise ValueError(f"states must be indices [N] in [0, {self.num_states}), got {s.tolist()}")
        rc = torch.tensor(self.cells, dtype=torch.long)[s.cpu()].reshape(-1, 2).numpy()
        return torch.from_numpy(render_grid(self.layout, rc, cell_size)).to(s.device)


class LinearGaussianChannel:
    """s' = A s + B a + ε, ε ~ N(0, σ² I): the K-step map from a_{1:K} is linear in the actions,
    G_K = [A^{K−1}B, …, AB, B], so its empowerment under E‖a_{1:K}‖² ≤ P does not depend on s."""

    def __init__(self, A: torch.Tensor, B: torch.Tensor, noise_std: float = 1.0):
        self.A, self.B = torch.as_tensor(A, dtype=torch.float64), torch.as_tensor(B, dtype=torch.float64)
        if self.A.dim() != 2 or self.A.shape[0] != self.A.shape[1] or self.B.shape[0] != self.A.shape[0]:
            raise ValueError(f"A must be [n, n] and B [n, m], got {tuple(self.A.shape)} and {tuple(self.B.shape)}")
        if not noise_std > 0:
            raise ValueError(f"noise_std must be > 0, got {noise_std}")
        self.noise_std = float(noise_std)

    def gain(self, horizon: int = 1) -> torch.Tensor:
        """G_K = [A^{K−1}B, …, AB, B] → ``[n, m·K]``. The noise accumulated over K steps,
        Σ_k A^k (A^k)ᵀ σ², is not white for K > 1; :meth:`noise_cov` gives it."""
        blocks, M = [], self.B
        for _ in range(horizon):
            blocks.insert(0, M)
            M = self.A @ M
        return torch.cat(blocks, 1)

    def noise_cov(self, horizon: int = 1) -> torch.Tensor:
        n = self.A.shape[0]
        cov, Ak = torch.zeros(n, n, dtype=torch.float64), torch.eye(n, dtype=torch.float64)
        for _ in range(horizon):
            cov = cov + Ak @ Ak.T
            Ak = self.A @ Ak
        return self.noise_std ** 2 * cov

    @property
    def obs_dim(self) -> int:
        return self.A.shape[0]

    @property
    def act_dim(self) -> int:
        return self.B.shape[1]

    def noise_shape(self, horizon: int) -> tuple[int, int]:
        """(draws, size) of the standard-normal noise of one K-step rollout: one per step."""
        return horizon, self.A.shape[0]

    def rollout(self, s: torch.Tensor, a: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """K steps for ``s [N, n]``, ``a [N, K, m]`` and standard-normal ``noise [N, K, n]``, the
        continuous-channel interface of :mod:`pprl.empowerment.continuous`."""
        for k in range(a.shape[1]):
            s = s @ self.A.T.to(s) + a[:, k] @ self.B.T.to(a) + self.noise_std * noise[:, k]
        return s

    def sample(self, s: torch.Tensor, a: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """One step for batches ``s [N, n]``, ``a [N, m]``."""
        noise = torch.randn(s.shape, dtype=s.dtype, device=s.device, generator=generator)
        return s @ self.A.T.to(s) + a @ self.B.T.to(a) + self.noise_std * noise
