"""Image observations for small environments, drawn with numpy alone (no display, no GL), batched.

Mohamed & Rezende (2015) estimate empowerment from what the agent *sees* (images) rather than
from its state; these renderers give such images for a gridworld and for a pendulum, many at once:

* :func:`render_grid`: a gridworld with walls at intensity 0.5, the agent's cell at 1, free
  cells at 0; one block of ``cell_size`` × ``cell_size`` pixels per cell.
* :func:`render_pendulum`: a rod from the image's centre at angle θ (θ = 0 up, θ = π/2 right),
  the pixels whose centre lies within ``width / 2`` of the segment set to 1.

:class:`PixelObservation` replaces an environment's observation by its image; registered as
``pprl/GridRoomPixels-v0`` (:func:`make_grid_room_pixels`): ``pprl/GridRoom-v0`` seen as
``[1, 4·rows, 4·cols]`` images.
"""
from __future__ import annotations

from typing import Callable, Sequence

import gymnasium as gym
import numpy as np

from .grid_room import GridRoomEnv, obs_to_cells

FREE, WALL, AGENT = 0.0, 0.5, 1.0  # render_grid's intensities


def render_grid(layout: Sequence[str], cells_rc, cell_size: int = 4) -> np.ndarray:
    """Images of the gridworld ``layout`` (``#`` wall) with the agent at ``cells_rc`` (``[..., 2]``
    integer (row, col) pairs) → float32 ``[..., 1, cell_size·rows, cell_size·cols]`` in [0, 1]:
    walls :data:`WALL`, the agent's cell :data:`AGENT`, other cells :data:`FREE`."""
    if not layout or not all(isinstance(row, str) for row in layout) or len({len(r) for r in layout}) != 1:
        raise ValueError(f"layout must be a non-empty list of equally long strings, got {layout!r}")
    if int(cell_size) != cell_size or cell_size < 1:
        raise ValueError(f"cell_size must be a positive integer, got {cell_size!r}")
    rc = np.asarray(cells_rc)
    if rc.shape[-1:] != (2,) or not (np.issubdtype(rc.dtype, np.integer) or rc.size == 0):
        raise ValueError(f"cells_rc must be integer (row, col) pairs [..., 2], got shape {rc.shape} "
                         f"and dtype {rc.dtype}")
    batch, rc = rc.shape[:-1], rc.reshape(-1, 2).astype(np.int64)
    walls = np.array([[ch == "#" for ch in row] for row in layout])  # [rows, cols]
    rows, cols = walls.shape
    inside = (rc >= 0).all(1) & (rc[:, 0] < rows) & (rc[:, 1] < cols)
    if not inside.all():
        raise ValueError(f"cells outside the {rows}×{cols} layout: {rc[~inside][:5].tolist()}")
    if walls[rc[:, 0], rc[:, 1]].any():
        raise ValueError(f"cells on a wall: {rc[walls[rc[:, 0], rc[:, 1]]][:5].tolist()}")
    images = np.where(walls, WALL, FREE).astype(np.float32)[None].repeat(len(rc), 0)  # [N, rows, cols]
    images[np.arange(len(rc)), rc[:, 0], rc[:, 1]] = AGENT
    images = images.repeat(int(cell_size), 1).repeat(int(cell_size), 2)
    return images.reshape(*batch, 1, rows * int(cell_size), cols * int(cell_size))


def render_pendulum(cos, sin, size: int = 32, length: float | None = None, width: float | None = None) -> np.ndarray:
    """Images of a pendulum rod at angle θ given by ``cos θ``, ``sin θ`` (broadcast together; only
    their direction is used) → float32 ``[..., 1, size, size]`` of 0s and 1s.

    The rod runs from the image centre (size/2, size/2) to the tip at
    (row, col) = centre + ``length`` · (−cos θ, sin θ): θ = 0 points up, θ = π/2 right (the
    convention of gymnasium's Pendulum-v1, whose observation starts with cos θ, sin θ). A pixel is
    1 where its centre lies within ``width``/2 of the segment. Defaults: ``length`` = 3/8 · size,
    ``width`` = size/16.
    """
    if int(size) != size or size < 2:
        raise ValueError(f"size must be an integer >= 2, got {size!r}")
    cos, sin = np.broadcast_arrays(np.asarray(cos, dtype=np.float64), np.asarray(sin, dtype=np.float64))
    norm = np.hypot(cos, sin)
    if not (np.isfinite(norm).all() and (norm > 0).all()):
        raise ValueError("cos and sin must be finite and not both 0")
    length = 3 / 8 * size if length is None else float(length)
    width = size / 16 if width is None else float(width)
    if not (length > 0 and width > 0):
        raise ValueError(f"length and width must be > 0, got {length}, {width}")
    centre = size / 2
    d_row, d_col = (-length * cos / norm)[..., None, None], (length * sin / norm)[..., None, None]
    y = np.arange(int(size), dtype=np.float64) + 0.5 - centre  # pixel centres relative to the pivot
    p_row, p_col = y[:, None], y[None, :]  # [size, 1], [1, size]
    t = np.clip((p_row * d_row + p_col * d_col) / length ** 2, 0.0, 1.0)  # nearest point of the segment
    dist2 = (p_row - t * d_row) ** 2 + (p_col - t * d_col) ** 2  # [..., size, size]
    return (dist2 <= (width / 2) ** 2).astype(np.float32)[..., None, :, :]


class PixelObservation(gym.ObservationWrapper):
    """``env`` with its observation replaced by an image: ``render_fn`` maps a batch of the env's
    observations ``[N, *obs_shape]`` to images ``[N, *shape]``; the observation space becomes
    ``Box(0, 1, shape, float32)`` (``shape`` = [C, H, W])."""

    def __init__(self, env: gym.Env, render_fn: Callable[[np.ndarray], np.ndarray], shape: Sequence[int]):
        super().__init__(env)
        self.render_fn = render_fn
        self.observation_space = gym.spaces.Box(0.0, 1.0, shape=tuple(int(n) for n in shape), dtype=np.float32)

    def observation(self, observation):
        image = np.asarray(self.render_fn(np.asarray(observation)[None]), dtype=np.float32)
        if image.shape != (1, *self.observation_space.shape):
            raise ValueError(f"render_fn returned images of shape {image.shape[1:]}, the wrapper was told "
                             f"{self.observation_space.shape}")
        return image[0]


def make_grid_room_pixels(layout: Sequence[str] | None = None, slip: float = 0.0, start="corner",
                          cell_size: int = 4) -> PixelObservation:
    """``pprl/GridRoomPixels-v0``: :class:`~pprl.rl.envs.grid_room.GridRoomEnv` (same arguments)
    observed through :func:`render_grid`, images ``[1, cell_size·rows, cell_size·cols]``."""
    env = GridRoomEnv(layout, slip, start)
    cells = np.array(env.cells, dtype=np.int64)

    def render(obs: np.ndarray) -> np.ndarray:
        index = obs_to_cells(obs, env.layout)
        if (index < 0).any():
            raise ValueError(f"observations that are no free cell of the layout: {obs[index < 0][:5].tolist()}")
        return render_grid(env.layout, cells[index], cell_size)

    shape = render_grid(env.layout, cells[:1], cell_size).shape[1:]  # also checks cell_size
    return PixelObservation(env, render, shape)
