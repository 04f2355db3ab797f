"""``pprl/GridRoom-v0``: a walled gridworld with no reward, the test bed of empowerment as the only
drive (Mohamed & Rezende 2015, Sec. 5: an empowered agent moves to where it keeps the most options).

The dynamics are exactly those of :class:`pprl.empowerment.GridWorld` on the same ``layout``
(``#`` wall, anything else free): actions 0..4 = N, S, E, W, stay; a move into a wall stays put;
with probability ``slip`` the chosen action is replaced by one of the other four, uniformly,
drawn from the env's own ``np_random``. So the channel p(s'|s, a) the empowerment reward is
computed on is the environment's true kernel.

Default layout (:data:`ROOM_7X7`): a 7×7 open room surrounded by walls. There the K = 3 step
empowerment log(#cells reachable in 3 steps) is largest, log 25, only at the centre cell, and
smallest, log 10, at the four corners; a corner is where an episode starts by default.

Observation: the agent's (row, col) divided by (rows − 1, cols − 1) of the layout, float32 in
[0, 1]² (exactly invertible: :func:`obs_to_cells`). Reward: 0 on every step. Episodes never
terminate; the registration truncates them after 100 steps. ``info["cell"]`` is the index of the
agent's cell in ``GridWorld(layout).cells`` (row-major free cells).
"""
from __future__ import annotations

from typing import Sequence

import gymnasium as gym
import numpy as np

from ...empowerment.channels import ACTIONS, _MOVES

ROOM_7X7 = ("#########",
            "#.......#",
            "#.......#",
            "#.......#",
            "#.......#",
            "#.......#",
            "#.......#",
            "#.......#",
            "#########")


def free_cells(layout: Sequence[str]) -> list[tuple[int, int]]:
    """The free cells in row-major order: the state order of ``GridWorld(layout)``."""
    return [(r, c) for r, row in enumerate(layout) for c, ch in enumerate(row) if ch != "#"]


def cells_to_obs(rc: np.ndarray, layout: Sequence[str]) -> np.ndarray:
    """(row, col) pairs ``[..., 2]`` → observations in [0, 1]² (float32)."""
    scale = np.array([max(len(layout) - 1, 1), max(len(layout[0]) - 1, 1)], dtype=np.float64)
    return (np.asarray(rc, dtype=np.float64) / scale).astype(np.float32)


def obs_to_cells(obs, layout: Sequence[str]) -> np.ndarray:
    """Observations ``[N, 2]`` → cell indices ``[N]`` of ``GridWorld(layout)`` (int64); −1 where an
    observation is not the position of a free cell of ``layout`` (off the grid, on a wall, between
    grid points)."""
    obs = np.asarray(obs, dtype=np.float64).reshape(-1, 2)
    rows, cols = len(layout), len(layout[0])
    rc = obs * np.array([max(rows - 1, 1), max(cols - 1, 1)])
    rounded = np.rint(rc)
    index = np.full((rows, cols), -1, dtype=np.int64)
    for i, (r, c) in enumerate(free_cells(layout)):
        index[r, c] = i
    on_grid = (np.abs(rc - rounded) < 1e-3).all(1) & (rounded >= 0).all(1) \
        & (rounded[:, 0] < rows) & (rounded[:, 1] < cols)
    out = np.full(len(obs), -1, dtype=np.int64)
    r, c = rounded[on_grid].astype(np.int64).T
    out[on_grid] = index[r, c]
    return out


class GridRoomEnv(gym.Env):
    """A gridworld room (module docstring). ``start``: ``"corner"`` (the first free cell in
    row-major order, the top-left corner of a rectangular room), ``"random"`` (uniform over free
    cells at each reset) or a free cell ``[row, col]``."""

    metadata = {"render_modes": []}

    def __init__(self, layout: Sequence[str] | None = None, slip: float = 0.0, start="corner"):
        layout = list(ROOM_7X7 if layout is None else layout)
        if not layout or not all(isinstance(row, str) for row in layout) or len({len(r) for r in layout}) != 1:
            raise ValueError(f"layout must be a non-empty list of equally long strings, got {layout!r}")
        if not 0 <= slip <= 1:
            raise ValueError(f"slip must be in [0, 1], got {slip}")
        self.layout, self.slip = layout, float(slip)
        self.cells = free_cells(layout)
        if not self.cells:
            raise ValueError("layout has no free cell")
        self._index = {cell: i for i, cell in enumerate(self.cells)}
        if isinstance(start, str):
            if start not in ("corner", "random"):
                raise ValueError(f"start must be 'corner', 'random' or a free cell [row, col], got {start!r}")
        elif tuple(start) not in self._index:
            raise ValueError(f"start {start!r} is not a free cell of the layout")
        self.start = start if isinstance(start, str) else tuple(int(v) for v in start)
        self.observation_space = gym.spaces.Box(0.0, 1.0, shape=(2,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(len(ACTIONS))
        self._cell = self.cells[0]

    def _obs(self) -> np.ndarray:
        return cells_to_obs(np.array(self._cell), self.layout)

    def _info(self) -> dict:
        return {"cell": self._index[self._cell]}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if self.start == "corner":
            self._cell = self.cells[0]
        elif self.start == "random":
            self._cell = self.cells[int(self.np_random.integers(len(self.cells)))]
        else:
            self._cell = self.start
        return self._obs(), self._info()

    def step(self, action):
        a = int(action)
        if not 0 <= a < len(ACTIONS):
            raise ValueError(f"action must be in 0..{len(ACTIONS) - 1}, got {action!r}")
        if self.slip > 0 and self.np_random.random() < self.slip:  # one of the other four, uniformly
            a = (a + 1 + int(self.np_random.integers(len(ACTIONS) - 1))) % len(ACTIONS)
        dr, dc = _MOVES[ACTIONS[a]]
        target = (self._cell[0] + dr, self._cell[1] + dc)
        if target in self._index:
            self._cell = target
        return self._obs(), 0.0, False, False, self._info()


def visitation(obs, layout: Sequence[str]) -> np.ndarray:
    """Visit counts per free cell ``[S]`` (int64) of observations ``[N, 2]``."""
    cells = obs_to_cells(obs, layout)
    if (cells < 0).any():
        raise ValueError(f"{int((cells < 0).sum())} observations are no free cell of the layout")
    return np.bincount(cells, minlength=len(free_cells(layout)))


def plot_visitation(counts, empowerment, layout: Sequence[str], path, title: str = "visits") -> "Path":
    """A PNG at ``path``: the share of visits per cell (left) beside the empowerment map (right,
    nats), walls blank. ``counts`` and ``empowerment`` are per free cell ``[S]``."""
    from pathlib import Path

    from matplotlib.figure import Figure  # no pyplot: the caller's backend and figures stay untouched

    cells = free_cells(layout)
    counts, emp = np.asarray(counts, dtype=np.float64), np.asarray(empowerment, dtype=np.float64)
    if counts.shape != (len(cells),) or emp.shape != (len(cells),):
        raise ValueError(f"counts and empowerment must have one entry per free cell ({len(cells)}), got "
                         f"{counts.shape} and {emp.shape}")
    fig = Figure(figsize=(8.4, 3.8))
    for ax, values, label in zip(fig.subplots(1, 2), (counts / max(counts.sum(), 1), emp),
                                 (f"{title}: share of steps", "empowerment (nats)")):
        grid = np.full((len(layout), len(layout[0])), np.nan)
        for v, (r, c) in zip(values, cells):
            grid[r, c] = v
        image = ax.imshow(grid, cmap="viridis")
        fig.colorbar(image, ax=ax, shrink=0.85)
        ax.set(title=label, xticks=[], yticks=[])
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100, format="png")
    return path
