"""K-step windows (s_t, a_t … a_{t+K−1}, s_{t+K}) cut from a stream of transitions without crossing
an episode boundary: the data of a K-step channel p(s_K | s, a_{1:K}) (empowerment, multi-step models)."""
from __future__ import annotations

import torch

from .transitions import Transitions


def k_step_windows(transitions: Transitions, horizon: int, *, stride: int | None = None,
                   check_continuity: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every window of ``horizon`` = K consecutive transitions of one episode, vectorised:
    ``(s [W, n], a [W, K, m], s_K [W, n])`` with s = obs of the first row, a the K rows' actions
    (a_1 first) and s_K = next_obs of the last row, windows ordered by their first row.

    Rows t and t + ``stride`` are consecutive steps of one stream; ``stride`` defaults to
    ``transitions.meta["num_envs"]`` (1 if absent), the time-major layout of :func:`pprl.data.collect`.
    An episode ends after row t when any of these holds, and a window may end on such a row but
    never pass it:

    * ``terminated[t]`` or ``truncated[t]`` (always respected; left out, the flags are all False);
    * ``next_obs[t]`` differs from ``obs[t + stride]`` in any coordinate (exact comparison): a reset
      that the flags do not record. On by default; ``check_continuity=False`` trusts the flags alone
      (for observations that are re-encoded between rows, so that equal states need not be equal floats);
    * row t + ``stride`` does not exist (the data end).
    """
    index = window_index(transitions, horizon, stride=stride, check_continuity=check_continuity,
                         caller="k_step_windows")
    return transitions.obs[index[:, 0]], transitions.act[index], transitions.next_obs[index[:, -1]]


def window_index(transitions: Transitions, horizon: int, *, stride: int | None = None,
                 check_continuity: bool = True, caller: str = "window_index") -> torch.Tensor:
    """The rows of every ``horizon``-transition window of one episode → ``[W, K]`` (row t + k·stride
    in column k), windows ordered by their first row; episode ends as in :func:`k_step_windows`."""
    if not isinstance(transitions, Transitions):
        raise ValueError(f"{caller} needs a Transitions object, got {type(transitions).__name__}")
    if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
        raise ValueError(f"horizon must be an integer >= 1, got {horizon!r}")
    E = _stride(transitions, stride)
    ends = episode_ends(transitions, stride=E, check_continuity=check_continuity)
    N, K, device = len(transitions), horizon, transitions.obs.device
    n_starts = max(N - (K - 1) * E, 0)
    index = torch.arange(n_starts, device=device).unsqueeze(1) + E * torch.arange(K, device=device)  # [W, K]
    return index[~ends[index[:, :K - 1]].any(-1)]


def _stride(transitions: Transitions, stride: int | None) -> int:
    E = transitions.meta.get("num_envs", 1) if stride is None else stride
    E = 1 if E is None else E
    if isinstance(E, bool) or not isinstance(E, int) or E < 1:
        raise ValueError(f"stride must be an integer >= 1 (rows t and t + stride are consecutive steps), got {E!r}")
    return E


def episode_ends(transitions: Transitions, *, stride: int | None = None,
                 check_continuity: bool = True) -> torch.Tensor:
    """``[N]`` bool: True where an episode ends after row t (the rules of :func:`k_step_windows`)."""
    E = _stride(transitions, stride)
    obs, nxt, N = transitions.obs, transitions.next_obs, len(transitions)
    has_next = torch.arange(N, device=obs.device) + E < N
    ends = transitions.terminated | transitions.truncated | ~has_next
    if check_continuity and N > E:
        ends[:N - E] |= (nxt[:N - E] != obs[E:]).any(-1)
    return ends
