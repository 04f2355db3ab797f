"""Image observations for small environments, drawn with numpy alone (no display, no GL), batched.

Mohamed & Rezende (2015) estimate empowerment from what the agent *sees* (images) rather than
from its state, and latent dynamics models (Levine's lecture, seed 004) learn from frames; these
renderers give such images many at once (one call for a batch of states, no loop over them):

* :func:`render_grid`: a gridworld with walls at intensity 0.5, the agent's cell at 1, free
  cells at 0; one block of ``cell_size`` × ``cell_size`` pixels per cell.
* :func:`render_pendulum`: a rod from the image's centre at angle θ (θ = 0 up, θ = π/2 right),
  the pixels whose centre lies within ``width / 2`` of the segment set to 1.
* :func:`render_mountain_car`: the Mountain Car track h(x) = 0.45 sin 3x + 0.55, the goal flag
  and the car (a disc on the track at its position).
* :func:`render_cartpole`: the track, the cart at x and the pole at θ.

:class:`PixelObservation` replaces an environment's observation by its image, and
:func:`with_pixels` adds frame stacking (``frames``; one image hides velocities). Registered
(``PIXEL_ENV_IDS`` in :mod:`pprl.rl.envs`), each taking ``size`` (or ``cell_size``) and ``frames``:

================================  ==============================  ===================
id                                observes                        image
================================  ==============================  ===================
pprl/GridRoomPixels-v0            pprl/GridRoom-v0                [1, 4·rows, 4·cols]
pprl/SparseMountainCarPixels-v0   pprl/SparseMountainCar-v0       [1, 32, 32]
pprl/CartPoleSwingUpPixels-v0     pprl/CartPoleSwingUp-v0         [1, 32, 32]
pprl/PendulumPixels-v0            Pendulum-v1                     [1, 32, 32]
================================  ==============================  ===================

Images are float32 in [0, 1], [C, H, W]; with ``frames = k`` the channels are k·C.
"""
from __future__ import annotations

import functools
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


def _segment_mask(size: int, start_row, start_col, d_row, d_col, width: float) -> np.ndarray:
    """``[..., size, size]`` bool: the pixels whose centre lies within ``width``/2 of the segment
    from (``start_row``, ``start_col``) to that point plus (``d_row``, ``d_col``) (all broadcast
    together, in pixels; pixel (i, j) covers [i, i+1) × [j, j+1), its centre is (i + ½, j + ½))."""
    start_row, start_col, d_row, d_col = (np.asarray(a, dtype=np.float64)[..., None, None]
                                          for a in np.broadcast_arrays(start_row, start_col, d_row, d_col))
    centres = np.arange(int(size), dtype=np.float64) + 0.5
    p_row, p_col = centres[:, None] - start_row, centres[None, :] - start_col  # relative to the start
    length2 = d_row ** 2 + d_col ** 2
    t = np.clip((p_row * d_row + p_col * d_col) / np.where(length2 > 0, length2, 1.0), 0.0, 1.0)
    dist2 = (p_row - t * d_row) ** 2 + (p_col - t * d_col) ** 2  # to the nearest point of the segment
    return dist2 <= (width / 2) ** 2


def _check_size(size) -> int:
    if isinstance(size, bool) or int(size) != size or size < 2:
        raise ValueError(f"size must be an integer >= 2, got {size!r}")
    return int(size)


def _direction(cos, sin) -> tuple[np.ndarray, np.ndarray]:
    """(cos θ, sin θ) broadcast together and scaled to unit length."""
    cos, sin = np.broadcast_arrays(np.asarray(cos, dtype=np.float64), np.asarray(sin, dtype=np.float64))
    norm = np.hypot(cos, sin)
    if not (np.isfinite(norm).all() and (norm > 0).all()):
        raise ValueError("cos and sin must be finite and not both 0")
    return cos / norm, sin / norm


def render_pendulum(cos, sin, size: int = 32, length: float | None = None, width: float | None = None) -> np.ndarray:
    """Images of a pendulum rod at angle θ given by ``cos θ``, ``sin θ`` (broadcast together; only
    their direction is used) → float32 ``[..., 1, size, size]`` of 0s and 1s.

    The rod runs from the image centre (size/2, size/2) to the tip at
    (row, col) = centre + ``length`` · (−cos θ, sin θ): θ = 0 points up, θ = π/2 right (the
    convention of gymnasium's Pendulum-v1, whose observation starts with cos θ, sin θ). A pixel is
    1 where its centre lies within ``width``/2 of the segment. Defaults: ``length`` = 3/8 · size,
    ``width`` = size/16.
    """
    size = _check_size(size)
    cos, sin = _direction(cos, sin)
    length = 3 / 8 * size if length is None else float(length)
    width = size / 16 if width is None else float(width)
    if not (length > 0 and width > 0):
        raise ValueError(f"length and width must be > 0, got {length}, {width}")
    centre = size / 2
    return _segment_mask(size, centre, centre, -length * cos, length * sin, width).astype(np.float32)[..., None, :, :]


# gymnasium's (Continuous_)MountainCar: positions [-1.2, 0.6], track height h(x) = 0.45 sin 3x + 0.55
MC_MIN_POSITION, MC_MAX_POSITION, MC_GOAL = -1.2, 0.6, 0.45
MC_VIEW_TOP = 1.5  # the height shown at row 0 (h ≤ 1, so the flag above the goal fits)
TRACK, FLAG, CART, CAR, POLE = 0.25, 0.5, 0.5, 1.0, 1.0  # intensities of the two renderers below


def _mc_height(x):
    return 0.45 * np.sin(3 * np.asarray(x, dtype=np.float64)) + 0.55


def render_mountain_car(position, size: int = 32, goal: float = MC_GOAL, car_radius: float | None = None,
                        antialias: int = 1) -> np.ndarray:
    """Images of gymnasium's Mountain Car at ``position`` (any shape) → float32 ``[..., 1, size, size]``.

    A point x of the track, height h(x) = 0.45 sin 3x + 0.55, is drawn at column
    u(x) = size · (x + 1.2) / 1.8 and row v(x) = size · (1 − h(x) / 1.5) (x ∈ [−1.2, 0.6] spans the
    width; row 0 is height 1.5). Three layers, the brightest wins where they overlap:

    * the track, :data:`TRACK`: pixel (i, j) where the curve crosses row i over the column's span
      [j, j+1), i.e. floor(min v) ≤ i ≤ floor(max v) over that span (a connected line);
    * the goal flag at x = ``goal``, :data:`FLAG`: a pole in column floor(u(goal)) whose pixel centres
      lie in [v(goal) − size/4, v(goal)), and a pennant of size/8 × size/8 to its right at the pole's top;
    * the car, :data:`CAR`: the pixels whose centre is within ``car_radius`` (default size/16) of
      (v(x) − r, u(x)), a disc resting on the track at x = ``position``. With ``antialias = s > 1``
      the car's layer is CAR × the fraction of each pixel's s × s sub-pixel centres inside the
      disc (its coverage), and the brighter layer still wins (on a track pixel a coverage below
      TRACK does not show), so a move of a fraction of a pixel changes the edge pixels' grey levels; with
      s = 1 the disc is all-or-nothing and the car's speed (at most 0.07 per step, 1.2 pixels at
      size 32) mostly hides between two frames.

    Velocity is not visible in one image (see :func:`with_pixels` for frame stacking).
    """
    size = _check_size(size)
    r = size / 16 if car_radius is None else float(car_radius)
    if not r > 0:
        raise ValueError(f"car_radius must be > 0, got {car_radius!r}")
    if isinstance(antialias, bool) or int(antialias) != antialias or antialias < 1:
        raise ValueError(f"antialias must be an integer >= 1, got {antialias!r}")
    s = int(antialias)
    x = np.asarray(position, dtype=np.float64)
    if not np.isfinite(x).all():
        raise ValueError("position must be finite")
    background = _mountain_car_background(size, float(goal))  # [size, size], shared by every image
    u = size * (x - MC_MIN_POSITION) / (MC_MAX_POSITION - MC_MIN_POSITION)
    v = size * (1 - _mc_height(x) / MC_VIEW_TOP) - r
    fine = _segment_mask(size * s, v * s, u * s, 0.0, 0.0, 2 * r * s)  # a disc: a segment of length 0
    coverage = fine.reshape(*fine.shape[:-2], size, s, size, s).mean((-3, -1)) if s > 1 else fine
    return np.maximum(np.float32(CAR) * coverage, background).astype(np.float32)[..., None, :, :]


@functools.lru_cache(maxsize=16)
def _mountain_car_background(size: int, goal: float) -> np.ndarray:
    """The track and the goal flag of :func:`render_mountain_car`, ``[size, size]`` float32 (read-only, cached)."""
    span = MC_MAX_POSITION - MC_MIN_POSITION
    j = np.arange(size)
    x_left, x_right = MC_MIN_POSITION + span * j / size, MC_MIN_POSITION + span * (j + 1) / size
    heights = [_mc_height(x_left), _mc_height(x_right)]
    for x_ext in (-np.pi / 6, np.pi / 6):  # h's interior extrema on [-1.2, 0.6] (3x = ∓π/2)
        inside = (x_left < x_ext) & (x_ext < x_right)
        heights.append(np.where(inside, _mc_height(x_ext), heights[0]))
    h = np.stack(heights)
    v_low, v_high = size * (1 - h.max(0) / MC_VIEW_TOP), size * (1 - h.min(0) / MC_VIEW_TOP)  # rows: top, bottom
    i = np.arange(size)[:, None]
    image = np.where((np.floor(v_low) <= i) & (i <= np.floor(v_high)), TRACK, 0.0)
    u_goal = size * (goal - MC_MIN_POSITION) / span
    v_goal = size * (1 - _mc_height(goal) / MC_VIEW_TOP)
    top = v_goal - size / 4
    row_c, col_c = i + 0.5, np.arange(size)[None, :] + 0.5
    pole = (j[None, :] == np.floor(u_goal)) & (top <= row_c) & (row_c < v_goal)
    pennant = (top <= row_c) & (row_c < top + size / 8) & (u_goal < col_c) & (col_c <= u_goal + size / 8)
    background = np.where(pole | pennant, FLAG, image).astype(np.float32)
    background.flags.writeable = False
    return background


def render_cartpole(x, cos, sin, size: int = 32, x_threshold: float = 3.0, pole_length: float | None = None,
                    width: float | None = None) -> np.ndarray:
    """Images of a cart-pole with the cart at ``x`` and the pole at angle θ given by ``cos θ``,
    ``sin θ`` (all broadcast together) → float32 ``[..., 1, size, size]``.

    The pivot (cart centre) is drawn at row size/2 and column u(x) = size/2 + x · (size/2 − L) /
    ``x_threshold``, L = ``pole_length`` (default size/4), so that a pole at either end of the track
    |x| ≤ ``x_threshold`` still fits in the image. Three layers, the brightest wins:

    * the track, :data:`TRACK`: the row below the cart, pixel centres in [size/2 + w/2, size/2 + w/2 + 1)
      with columns between u(−x_threshold) and u(x_threshold);
    * the cart, :data:`CART`: pixel centres within w/2 rows and size/16 columns of the pivot, w = ``width``
      (default size/16);
    * the pole, :data:`POLE`: pixel centres within w/2 of the segment from the pivot to
      pivot + L · (−cos θ, sin θ) — θ = 0 up, θ > 0 leaning towards +x, as in
      :class:`~pprl.rl.envs.cartpole_swingup.CartPoleSwingUpEnv` and gymnasium's CartPole.

    The pole is drawn longer than the track's scale (the physical pole is 1 m on a 6 m track) so
    that its angle is visible at small sizes. Velocities are not visible in one image.
    """
    size = _check_size(size)
    cos, sin = _direction(cos, sin)
    x, cos, sin = np.broadcast_arrays(np.asarray(x, dtype=np.float64), cos, sin)
    if not np.isfinite(x).all():
        raise ValueError("x must be finite")
    L = size / 4 if pole_length is None else float(pole_length)
    w = size / 16 if width is None else float(width)
    if not (L > 0 and w > 0 and x_threshold > 0):
        raise ValueError(f"pole_length, width and x_threshold must be > 0, got {L}, {w}, {x_threshold}")
    scale = (size / 2 - L) / float(x_threshold)
    u = size / 2 + x * scale
    centres = np.arange(size, dtype=np.float64) + 0.5
    row_c, col_c = centres[:, None], centres[None, :]
    track_row = (size / 2 + w / 2 <= row_c) & (row_c < size / 2 + w / 2 + 1)
    track = (track_row & (np.abs(col_c - size / 2) <= x_threshold * scale)).astype(np.float32) * TRACK
    cart = (np.abs(row_c - size / 2) <= w / 2) & (np.abs(col_c - u[..., None, None]) <= size / 16)
    pole = _segment_mask(size, size / 2, u, -L * cos, L * sin, w)
    image = np.where(pole, np.float32(POLE), np.where(cart, np.float32(CART), track))
    return image.astype(np.float32)[..., None, :, :]


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


def with_pixels(env: gym.Env, render_fn: Callable[[np.ndarray], np.ndarray], shape: Sequence[int],
                frames: int = 1) -> gym.Env:
    """``env`` observed through ``render_fn`` (a :class:`PixelObservation`), with the last ``frames``
    images stacked along the channels: observations ``[frames·C, H, W]``, oldest first.

    One image shows positions but not velocities (the pendulum's θ̇, the car's speed), so a policy
    or a model that sees a single frame cannot tell a rising pendulum from a falling one: the
    state is not Markov in the image. Two frames carry the difference of positions, a velocity.
    The stack is gymnasium's ``FrameStackObservation`` (``padding_type="reset"``): at every episode
    start it is filled with copies of the reset image, so no frame of the previous episode leaks
    into the next and the apparent velocity at a reset is 0.
    """
    if isinstance(frames, bool) or not isinstance(frames, (int, np.integer)) or frames < 1:
        raise ValueError(f"frames must be an integer >= 1, got {frames!r}")
    env = PixelObservation(env, render_fn, shape)
    if frames == 1:
        return env
    C, H, W = env.observation_space.shape
    stacked = gym.wrappers.FrameStackObservation(env, int(frames), padding_type="reset")  # [frames, C, H, W]
    return _StackedChannels(stacked)


class _StackedChannels(gym.ObservationWrapper):
    """[frames, C, H, W] → [frames·C, H, W] (gymnasium's ReshapeObservation holds a lambda, which
    does not pickle; training checkpoints pickle their environments)."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        frames, C, H, W = env.observation_space.shape
        self.observation_space = gym.spaces.Box(0.0, 1.0, shape=(frames * C, H, W), dtype=np.float32)

    def observation(self, observation):
        return np.asarray(observation, dtype=np.float32).reshape(self.observation_space.shape)


# Renderers are partials of module-level functions, not closures, so the wrapped envs pickle (a
# training checkpoint saves its environments for an exact resume).
def _draw_grid(obs: np.ndarray, layout: tuple, cells: np.ndarray, cell_size: int) -> np.ndarray:
    index = obs_to_cells(obs, layout)
    if (index < 0).any():
        raise ValueError(f"observations that are no free cell of the layout: {obs[index < 0][:5].tolist()}")
    return render_grid(layout, cells[index], cell_size)


def _draw_mountain_car(obs: np.ndarray, size: int, goal: float, antialias: int = 1) -> np.ndarray:
    return render_mountain_car(obs[:, 0], size, goal, antialias=antialias)


def _draw_cartpole(obs: np.ndarray, size: int, x_threshold: float) -> np.ndarray:
    return render_cartpole(obs[:, 0], obs[:, 2], obs[:, 3], size, x_threshold)  # [x, ẋ, cos θ, sin θ, θ̇]


def _draw_pendulum(obs: np.ndarray, size: int) -> np.ndarray:
    return render_pendulum(obs[:, 0], obs[:, 1], size)  # [cos θ, sin θ, θ̇]


def _grid_room_renderer(env: GridRoomEnv, cell_size: int = 4):
    cells = np.array(env.cells, dtype=np.int64)
    render = functools.partial(_draw_grid, layout=tuple(env.layout), cells=cells, cell_size=cell_size)
    return render, render_grid(env.layout, cells[:1], cell_size).shape[1:]  # also checks cell_size


def _mountain_car_renderer(env, size: int = 32, antialias: int = 1):
    render = functools.partial(_draw_mountain_car, size=size, goal=float(env.goal_position), antialias=antialias)
    render(np.zeros((1, 2)))  # checks size and antialias
    return render, (1, _check_size(size), size)


def _cartpole_renderer(env, size: int = 32):
    return functools.partial(_draw_cartpole, size=size, x_threshold=float(env.x_threshold)), (1, _check_size(size), size)


def _pendulum_renderer(env, size: int = 32):
    return functools.partial(_draw_pendulum, size=size), (1, _check_size(size), size)


#: pixel env id → (the env id it renders, renderer factory). A factory takes the unwrapped base env
#: and the render keywords (``size``, or ``cell_size`` for the grid) and returns ``(render_fn, [C, H, W])``,
#: render_fn mapping the base env's observations ``[N, obs_dim]`` to images ``[N, C, H, W]``;
#: the wrapped envs and :func:`pprl.data.frames.collect_frames` both draw with it.
PIXEL_SOURCES = {
    "pprl/GridRoomPixels-v0": ("pprl/GridRoom-v0", _grid_room_renderer),
    "pprl/SparseMountainCarPixels-v0": ("pprl/SparseMountainCar-v0", _mountain_car_renderer),
    "pprl/CartPoleSwingUpPixels-v0": ("pprl/CartPoleSwingUp-v0", _cartpole_renderer),
    "pprl/PendulumPixels-v0": ("Pendulum-v1", _pendulum_renderer),
}


def make_grid_room_pixels(layout: Sequence[str] | None = None, slip: float = 0.0, start="corner",
                          cell_size: int = 4, frames: int = 1) -> gym.Env:
    """``pprl/GridRoomPixels-v0``: :class:`~pprl.rl.envs.grid_room.GridRoomEnv` (same arguments)
    observed through :func:`render_grid`, images ``[frames, cell_size·rows, cell_size·cols]``
    (``frames`` stacked as in :func:`with_pixels`)."""
    env = GridRoomEnv(layout, slip, start)
    return with_pixels(env, *_grid_room_renderer(env, cell_size), frames=frames)


def make_sparse_mountain_car_pixels(size: int = 32, frames: int = 1, antialias: int = 1, **env_kwargs) -> gym.Env:
    """``pprl/SparseMountainCarPixels-v0``: :class:`~pprl.rl.envs.sparse_mountain_car.SparseMountainCarEnv`
    (``env_kwargs`` go to it) observed through :func:`render_mountain_car` (``antialias``: its
    sub-pixel coverage), ``[frames, size, size]``."""
    from .sparse_mountain_car import SparseMountainCarEnv

    env = SparseMountainCarEnv(**env_kwargs)
    return with_pixels(env, *_mountain_car_renderer(env, size, antialias), frames=frames)


def make_cartpole_swingup_pixels(size: int = 32, frames: int = 1) -> gym.Env:
    """``pprl/CartPoleSwingUpPixels-v0``: :class:`~pprl.rl.envs.cartpole_swingup.CartPoleSwingUpEnv`
    observed through :func:`render_cartpole`, ``[frames, size, size]``."""
    from .cartpole_swingup import CartPoleSwingUpEnv

    env = CartPoleSwingUpEnv()
    return with_pixels(env, *_cartpole_renderer(env, size), frames=frames)


def make_pendulum_pixels(size: int = 32, frames: int = 1, **env_kwargs) -> gym.Env:
    """``pprl/PendulumPixels-v0``: gymnasium's Pendulum-v1 dynamics (``env_kwargs``, e.g. ``g``, go to
    its ``PendulumEnv``) observed through :func:`render_pendulum`, ``[frames, size, size]``."""
    from gymnasium.envs.classic_control.pendulum import PendulumEnv

    env = PendulumEnv(**env_kwargs)
    return with_pixels(env, *_pendulum_renderer(env, size), frames=frames)
