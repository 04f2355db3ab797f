"""The numpy renderers (exact pixels, batch = per item) and the pixel observation wrapper
(its space, its values, ``pprl/GridRoomPixels-v0``'s images tell the cells apart)."""
import math

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import pprl  # noqa: F401  (registers the environments)
from pprl.empowerment import GridWorld
from pprl.rl.envs.grid_room import ROOM_7X7, GridRoomEnv, cells_to_obs
from pprl.rl.envs.pixels import PixelObservation, make_grid_room_pixels, render_grid, render_pendulum


def test_render_grid_exact_pixels():
    layout = ["#..", "..."]
    image = render_grid(layout, [1, 2], cell_size=2)
    expected = np.array([[0.5, 0.5, 0, 0, 0, 0],
                         [0.5, 0.5, 0, 0, 0, 0],
                         [0, 0, 0, 0, 1, 1],
                         [0, 0, 0, 0, 1, 1]], dtype=np.float32)
    assert image.dtype == np.float32 and image.shape == (1, 4, 6)
    assert np.array_equal(image[0], expected)


def test_render_grid_batch_equals_per_item():
    cells = np.array([(r, c) for r in range(1, 8) for c in range(1, 8)])[[0, 5, 24, 48, 24]]
    batch = render_grid(ROOM_7X7, cells)
    assert batch.shape == (5, 1, 36, 36)
    for image, cell in zip(batch, cells):
        assert np.array_equal(image, render_grid(ROOM_7X7, cell))
    assert np.array_equal(batch[2], batch[4]) and not np.array_equal(batch[0], batch[1])
    grid_of_cells = render_grid(ROOM_7X7, cells.reshape(5, 1, 2))  # any batch shape
    assert grid_of_cells.shape == (5, 1, 1, 36, 36) and np.array_equal(grid_of_cells[:, 0], batch)


def test_render_grid_bad_cells():
    with pytest.raises(ValueError, match="wall"):
        render_grid(ROOM_7X7, [0, 0])
    with pytest.raises(ValueError, match="outside"):
        render_grid(ROOM_7X7, [[1, 1], [9, 1]])
    with pytest.raises(ValueError, match="integer"):
        render_grid(ROOM_7X7, [1.5, 1.0])


def test_gridworld_render_matches_render_grid():
    grid = GridWorld(["#....", ".....", "..#.."])
    images = grid.render([0, 5, 12])
    assert images.shape == (3, 1, 12, 20) and str(images.dtype) == "torch.float32"
    assert np.array_equal(images.numpy(), render_grid(grid.layout, np.array(grid.cells)[[0, 5, 12]]))
    with pytest.raises(ValueError, match="indices"):
        grid.render([13])


def test_render_pendulum_exact_pixels():
    # θ = 0: a rod 12 px long, 2 px wide, straight up from the centre (16, 16) of a 32×32 image
    up = np.zeros((32, 32), dtype=np.float32)
    up[3:17, 15:17] = 1
    # θ = π/2: the same rod pointing right
    right = np.zeros((32, 32), dtype=np.float32)
    right[15:17, 15:29] = 1
    images = render_pendulum([1.0, 0.0, -1.0], [0.0, 1.0, 0.0])
    assert images.shape == (3, 1, 32, 32) and images.dtype == np.float32
    assert np.array_equal(images[0, 0], up)
    assert np.array_equal(images[1, 0], right)
    down = np.zeros((32, 32), dtype=np.float32)
    down[15:29, 15:17] = 1
    assert np.array_equal(images[2, 0], down)  # θ = π
    assert np.array_equal(render_pendulum(2.0, 0.0)[0], up)  # only the direction counts


def test_render_pendulum_batch_equals_per_item():
    theta = np.linspace(-math.pi, math.pi, 7)
    batch = render_pendulum(np.cos(theta), np.sin(theta), size=24)
    assert batch.shape == (7, 1, 24, 24)
    for image, t in zip(batch, theta):
        assert np.array_equal(image, render_pendulum(math.cos(t), math.sin(t), size=24))
    assert all(image.sum() > 0 for image in batch)
    assert not np.array_equal(batch[1], batch[2])
    with pytest.raises(ValueError, match="not both 0"):
        render_pendulum(0.0, 0.0)


def test_wrapper_space_and_values():
    base = GridRoomEnv(start=[4, 2])
    env = PixelObservation(base, lambda obs: render_grid(ROOM_7X7, np.rint(obs * 8).astype(np.int64)),
                           (1, 36, 36))
    assert env.observation_space == gym.spaces.Box(0.0, 1.0, (1, 36, 36), np.float32)
    obs, info = env.reset(seed=0)
    assert obs.dtype == np.float32 and obs in env.observation_space
    assert np.array_equal(obs, render_grid(ROOM_7X7, [4, 2]))
    obs, *_ = env.step(2)  # E
    assert np.array_equal(obs, render_grid(ROOM_7X7, [4, 3]))
    bad = PixelObservation(GridRoomEnv(), lambda obs: np.zeros((1, 1, 8, 8)), (1, 36, 36))
    with pytest.raises(ValueError, match="shape"):
        bad.reset(seed=0)


@pytest.mark.filterwarnings("ignore:.*different from the unwrapped version")  # check_env on the wrapper itself
def test_grid_room_pixels_registered_and_distinct_per_cell():
    env = gym.make("pprl/GridRoomPixels-v0", start="random")
    assert env.spec.max_episode_steps == 100 and env.observation_space.shape == (1, 36, 36)
    check_env(make_grid_room_pixels(), skip_render_check=True)
    seen = {}
    obs, info = env.reset(seed=0)
    env.action_space.seed(0)
    for _ in range(2000):  # 20 episodes from random cells
        seen.setdefault(info["cell"], obs)
        assert np.array_equal(seen[info["cell"]], obs)  # the same cell, the same image
        assert obs.sum() == 1.0 * 16 + 0.5 * 16 * 32  # one agent block of 4×4 px, 32 wall cells
        obs, _, terminated, truncated, info = env.step(env.action_space.sample())
        if terminated or truncated:
            obs, info = env.reset()
    assert len(seen) == 49  # every cell visited, and no two cells look alike
    assert len({image.tobytes() for image in seen.values()}) == 49
    expected = GridWorld(list(ROOM_7X7)).render(list(seen))
    assert np.array_equal(np.stack(list(seen.values())), expected.numpy())
    raw = cells_to_obs(np.array(env.unwrapped.cells[info["cell"]]), ROOM_7X7)  # GridRoom-v0's observation
    assert np.array_equal(obs, make_grid_room_pixels().observation(raw))


def test_pendulum_through_the_wrapper():
    env = PixelObservation(gym.make("Pendulum-v1"), lambda obs: render_pendulum(obs[:, 0], obs[:, 1]), (1, 32, 32))
    obs, _ = env.reset(seed=0)
    theta = env.unwrapped.state[0]  # Pendulum-v1 observes (cos θ, sin θ, θ̇) in float32
    assert obs in env.observation_space
    assert np.array_equal(obs, render_pendulum(np.float32(math.cos(theta)), np.float32(math.sin(theta))))
    obs, *_ = env.step(np.zeros(1, dtype=np.float32))
    theta = env.unwrapped.state[0]
    assert np.array_equal(obs, render_pendulum(np.float32(math.cos(theta)), np.float32(math.sin(theta))))
