"""Sub-sequences of episodes: the data of a latent dynamics model p(o_{0:L}, z_{0:L} | a_{0:L−1}).

:func:`to_sequences` cuts a stream of :class:`Transitions` into windows of L consecutive
transitions of one episode (the episode-end rules of :func:`pprl.data.windows.k_step_windows`), each
the L + 1 observations o_t … o_{t+L} and the L actions between them; :func:`split_episodes` holds
out whole episodes.
"""
from __future__ import annotations

import dataclasses
import math

from dataclasses import dataclass

import torch

from .transitions import Transitions
from .windows import _stride, episode_ends, window_index


@dataclass(frozen=True, eq=False)
class Sequences:
    """B sequences of T observations: ``obs [B, T, obs_dim]`` (images flattened), ``act [B, T − 1,
    act_dim]`` (``act[:, t]`` taken between ``obs[:, t]`` and ``obs[:, t + 1]``)."""

    obs: torch.Tensor
    act: torch.Tensor

    def __post_init__(self):
        if not isinstance(self.obs, torch.Tensor) or not isinstance(self.act, torch.Tensor):
            raise ValueError("Sequences.obs and .act must be torch tensors")
        if self.obs.dim() != 3 or self.act.dim() != 3:
            raise ValueError(f"Sequences.obs must be [B, T, obs_dim] and .act [B, T - 1, act_dim], got shapes "
                             f"{tuple(self.obs.shape)} and {tuple(self.act.shape)}")
        B, T = self.obs.shape[:2]
        if self.act.shape[:2] != (B, T - 1) or T < 1:
            raise ValueError(f"Sequences.act must be [B, T - 1, act_dim] for obs [B, T, ...] = "
                             f"{tuple(self.obs.shape)}, got {tuple(self.act.shape)}")

    def __len__(self) -> int:
        return self.obs.shape[0]

    @property
    def length(self) -> int:
        """T, the number of observations per sequence."""
        return self.obs.shape[1]

    @property
    def obs_dim(self) -> int:
        return self.obs.shape[2]

    @property
    def act_dim(self) -> int:
        return self.act.shape[2]

    def __getitem__(self, idx) -> "Sequences":
        if isinstance(idx, int):
            idx = slice(idx, idx + 1)
        return Sequences(self.obs[idx], self.act[idx])

    def to(self, device) -> "Sequences":
        return Sequences(self.obs.to(device), self.act.to(device))


def to_sequences(transitions: Transitions, length: int, *, hop: int = 1, stride: int | None = None,
                 check_continuity: bool = True) -> Sequences:
    """Every window of ``length`` = L consecutive transitions of one episode (starting every ``hop``-th
    valid start) → :class:`Sequences` with T = L + 1 observations. L = 0 gives each row's ``obs`` as a
    sequence of one observation. Episodes shorter than L give no window."""
    if isinstance(hop, bool) or not isinstance(hop, int) or hop < 1:
        raise ValueError(f"hop must be an integer >= 1, got {hop!r}")
    if isinstance(length, bool) or not isinstance(length, int) or length < 0:
        raise ValueError(f"length must be an integer >= 0, got {length!r}")
    if length == 0:
        obs = transitions.obs[::hop].unsqueeze(1)
        return Sequences(obs, transitions.act.new_zeros(obs.shape[0], 0, transitions.act_dim))
    index = window_index(transitions, length, stride=stride, check_continuity=check_continuity,
                         caller="to_sequences")[::hop]  # [W, L]
    obs = torch.cat([transitions.obs[index], transitions.next_obs[index[:, -1:]]], 1)
    return Sequences(obs, transitions.act[index])


def episode_ids(transitions: Transitions, *, stride: int | None = None, check_continuity: bool = True) -> torch.Tensor:
    """``[N]`` integer: the episode each row belongs to (episodes numbered per stream of a
    time-major vector-env layout, then made unique across streams)."""
    E = _stride(transitions, stride)
    ends = episode_ends(transitions, stride=E, check_continuity=check_continuity).long()
    ids = torch.empty_like(ends)
    for s in range(E):  # E streams (vector envs), not N transitions
        e = ends[s::E]
        ids[s::E] = (torch.cumsum(e, 0) - e) * E + s
    return ids


def split_episodes(transitions: Transitions, fraction: float, *, seed: int = 0, stride: int | None = None,
                   check_continuity: bool = True) -> tuple[Transitions, Transitions]:
    """(kept, held out): a random ``fraction`` of whole episodes held out (at least one when there
    are two or more). Row order is kept inside each part; seeded by ``seed`` alone."""
    if not 0 <= fraction < 1:
        raise ValueError(f"fraction must be in [0, 1), got {fraction!r}")
    if _stride(transitions, stride) != 1:
        raise ValueError("split_episodes keeps row order, not a vector-env layout: give one stream "
                         "(stride 1) or split each env's stream first")
    ids = episode_ids(transitions, stride=1, check_continuity=check_continuity)
    unique = torch.unique(ids)
    n_out = int(round(fraction * len(unique)))
    if fraction > 0 and len(unique) > 1:
        n_out = min(max(n_out, 1), len(unique) - 1)
    gen = torch.Generator().manual_seed(seed)
    held = unique[torch.randperm(len(unique), generator=gen)[:n_out].to(unique.device)]
    mask = torch.isin(ids, held)
    return transitions[~mask], transitions[mask]


def split_held_out(transitions: Transitions, fraction: float, *, seed: int = 0) -> tuple[Transitions, Transitions]:
    """(kept, held out) without cutting an episode or a vector env's stream: one stream →
    :func:`split_episodes`; E > 1 interleaved streams (``meta["num_envs"]``, rows t·E + i) → the
    last ⌈fraction·E⌉ streams held out whole (at least one, at most E − 1), each part keeping the
    time-major layout with its own ``num_envs``."""
    E = _stride(transitions, None)
    if E == 1:
        return split_episodes(transitions, fraction, seed=seed)
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction!r}")
    if len(transitions) % E:
        raise ValueError(f"{len(transitions)} rows are not a whole number of steps of {E} envs")
    k = min(max(math.ceil(fraction * E), 1), E - 1)
    env = torch.arange(len(transitions)) % E
    kept, held = transitions[env < E - k], transitions[env >= E - k]
    return (dataclasses.replace(kept, meta={**transitions.meta, "num_envs": E - k}),
            dataclasses.replace(held, meta={**transitions.meta, "num_envs": k}))
