"""Pixel versions of the sparse tasks and Pendulum-v1: exact pixels of the Mountain Car and cart-pole
renderers for known states, batch = per item, the registered envs' spaces and values, and frame
stacking (previous frame kept, reset at every episode start)."""
import math

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import pprl  # noqa: F401  (registers the environments)
from pprl.rl.envs import PIXEL_ENV_IDS
from pprl.rl.envs.pixels import (CAR, FLAG, POLE, TRACK, make_cartpole_swingup_pixels, make_grid_room_pixels,
                                 make_pendulum_pixels, make_sparse_mountain_car_pixels, render_cartpole,
                                 render_mountain_car, render_pendulum, with_pixels)


def _centroid(mask: np.ndarray) -> tuple[float, float]:
    rows, cols = np.nonzero(mask)
    return rows.mean() + 0.5, cols.mean() + 0.5


def test_mountain_car_flag_exact_pixels():
    # goal 0.45 at 32 px: u = 32 · 1.65 / 1.8 = 29.33, v = 32 · (1 − h(0.45) / 1.5) = 10.90, so the pole is
    # column 29 with centres in [2.90, 10.90) (rows 3..10) and the pennant rows 3..6, centres in (29.33, 33.33]
    image = render_mountain_car(-1.0)[0]  # the car far from the flag
    expected = np.zeros((32, 32), dtype=bool)
    expected[3:11, 29] = True
    expected[3:7, 29:32] = True
    assert np.array_equal(image == FLAG, expected)
    assert set(np.unique(image)) == {0.0, TRACK, FLAG, CAR}


def test_mountain_car_track_is_the_hill_curve():
    image = render_mountain_car(-1.2)[0]  # car at the left edge
    track = (image == TRACK) | (image == FLAG) | (image == CAR)
    lowest = [np.nonzero(col)[0].max() for col in track.T]  # every column has a track pixel
    # the valley floor h(−π/6) = 0.1 is at row floor(32 · (1 − 0.1/1.5)) = 29, in column floor(u(−π/6)) = 12
    assert max(lowest) == 29 and lowest.index(29) <= 12 <= len(lowest) - 1 - lowest[::-1].index(29)
    assert not track[30:].any()
    for j in range(31):  # a connected line: neighbouring columns' pixels touch
        a, b = np.nonzero(track[:, j])[0], np.nonzero(track[:, j + 1])[0]
        assert a.min() <= b.max() + 1 and b.min() <= a.max() + 1


def test_mountain_car_car_moves_right_along_the_curve():
    positions = np.linspace(-1.1, 0.5, 9)
    images = render_mountain_car(positions, size=64)[:, 0]
    r = 64 / 16
    cols = []
    for x, image in zip(positions, images):
        car = image == CAR
        row, col = _centroid(car)
        u = 64 * (x + 1.2) / 1.8
        v = 64 * (1 - (0.45 * math.sin(3 * x) + 0.55) / 1.5) - r  # a disc resting on the track
        assert abs(col - u) < 0.5 and abs(row - v) < 0.5
        assert 40 <= car.sum() <= 60  # ≈ π r² = 50 pixels
        cols.append(col)
    assert np.all(np.diff(cols) > 0)  # the car's pixels move right as the position increases
    rows = [_centroid(image == CAR)[0] for image in images]
    assert np.argmax(rows) == np.argmin(np.abs(positions + math.pi / 6))  # lowest in the valley


def test_cartpole_exact_pixels():
    # x = 0, size 32: pivot (16, 16); pole L = 8 px, 2 px wide; cart 2 × 4 px; track row 17 over |x| <= 3
    up, right, end = render_cartpole([0.0, 0.0, 3.0], [1.0, 0.0, 1.0], [0.0, 1.0, 0.0])[:, 0]
    expected = np.zeros((32, 32), dtype=np.float32)
    expected[17, 8:24] = TRACK
    expected[15:17, 14:18] = 0.5  # the cart
    expected[7:17, 15:17] = POLE  # θ = 0: straight up, tip at row 8 (pixel centres within 1 px of the segment)
    assert np.array_equal(up, expected)
    expected[7:17, 15:17] = 0.0
    expected[15:17, 14:18] = 0.5
    expected[15:17, 15:25] = POLE  # θ = π/2: pointing towards +x
    assert np.array_equal(right, expected)
    expected = np.zeros((32, 32), dtype=np.float32)
    expected[17, 8:24] = TRACK
    expected[15:17, 22:26] = 0.5  # x = 3 (the track's end): pivot at column 16 + 3 · 8/3 = 24
    expected[7:17, 23:25] = POLE
    assert np.array_equal(end, expected)
    hanging = render_cartpole(0.0, -1.0, 0.0)[0]  # θ = π: down
    assert hanging[17:25, 15:17].min() == POLE and not (hanging[:15] == POLE).any()


@pytest.mark.parametrize("render", ["mountain_car", "cartpole", "pendulum"])
def test_batch_equals_per_item(render):
    rng = np.random.default_rng(0)
    x, theta = rng.uniform(-1.2, 0.6, (2, 3)), rng.uniform(-math.pi, math.pi, (2, 3))
    draw = {"mountain_car": lambda x, t: render_mountain_car(x, size=24),
            "cartpole": lambda x, t: render_cartpole(x, np.cos(t), np.sin(t), size=24),
            "pendulum": lambda x, t: render_pendulum(np.cos(t), np.sin(t), size=24)}[render]
    batch = draw(x, theta)
    assert batch.shape == (2, 3, 1, 24, 24) and batch.dtype == np.float32
    for i in range(2):
        for j in range(3):
            assert np.array_equal(batch[i, j], draw(x[i, j], theta[i, j]))
    assert len({image.tobytes() for image in batch.reshape(6, -1)}) == 6


def test_antialiased_car_covers_its_area_and_shows_sub_pixel_moves():
    """With antialias = s the car's grey levels are its pixel coverage: they sum to ≈ π r² (less
    where the car covers track pixels, which keep the brighter of the two), the car's
    intensity-weighted centroid follows the position continuously, and a move of a tenth of a
    pixel changes the image, where the all-or-nothing disc (s = 1) often shows nothing."""
    size, r = 32, 2.0
    background = render_mountain_car(-1.2, size)[0]  # far left: the car's pixels elsewhere
    xs = -0.5 + np.arange(20) * 1.8 / size / 10  # u from 12.4 in steps of a tenth of a pixel
    smooth, binary = render_mountain_car(xs, size, antialias=8)[:, 0], render_mountain_car(xs, size)[:, 0]
    assert set(np.unique(binary)) <= {0.0, TRACK, FLAG, CAR}  # s = 1: the all-or-nothing disc
    car = np.clip(smooth - np.where(background == CAR, 0.0, background), 0, None)[:, :, 6:22]
    assert np.all((0.85 * math.pi * r ** 2 < car.sum((1, 2))) & (car.sum((1, 2)) < 1.01 * math.pi * r ** 2))
    cols = (car * (np.arange(6, 22) + 0.5)).sum((1, 2)) / car.sum((1, 2))
    assert np.all(np.diff(cols) > 0)  # moves right with every tenth of a pixel
    assert np.all(np.abs(np.diff(smooth, axis=0)).sum((1, 2)) > 0.05)
    assert (np.abs(np.diff(binary, axis=0)).sum((1, 2)) == 0).sum() >= 5  # the binary disc often shows no move
    with pytest.raises(ValueError, match="antialias must be an integer >= 1"):
        render_mountain_car(0.0, antialias=0)
    env = make_sparse_mountain_car_pixels(frames=2, antialias=4)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (2, 32, 32) and not set(np.unique(obs)) <= {0.0, TRACK, FLAG, CAR}  # grey levels


def test_renderers_reject_bad_input():
    with pytest.raises(ValueError, match="size"):
        render_mountain_car(0.0, size=1)
    with pytest.raises(ValueError, match="finite"):
        render_mountain_car(np.nan)
    with pytest.raises(ValueError, match="not both 0"):
        render_cartpole(0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="frames"):
        make_pendulum_pixels(frames=0)


def _state_image(env_id, env):
    """The image of the unwrapped env's current state, drawn independently of the wrapper."""
    u = env.unwrapped
    if env_id == "pprl/SparseMountainCarPixels-v0":
        return render_mountain_car(np.float32(u.state[0]))
    if env_id == "pprl/CartPoleSwingUpPixels-v0":
        x, _, theta, _ = u.state
        return render_cartpole(np.float32(x), np.float32(math.cos(theta)), np.float32(math.sin(theta)))
    theta = u.state[0]
    return render_pendulum(np.float32(math.cos(theta)), np.float32(math.sin(theta)))


@pytest.mark.parametrize("env_id,horizon", [("pprl/SparseMountainCarPixels-v0", 500),
                                            ("pprl/CartPoleSwingUpPixels-v0", 500),
                                            ("pprl/PendulumPixels-v0", 200)])
def test_registered_pixel_envs(env_id, horizon):
    assert env_id in PIXEL_ENV_IDS and "pprl/GridRoomPixels-v0" in PIXEL_ENV_IDS
    env = gym.make(env_id)
    assert env.spec.max_episode_steps == horizon
    assert env.observation_space == gym.spaces.Box(0.0, 1.0, (1, 32, 32), np.float32)
    obs, _ = env.reset(seed=0)
    env.action_space.seed(0)
    for _ in range(5):
        assert obs.dtype == np.float32 and obs in env.observation_space
        assert np.array_equal(obs, _state_image(env_id, env))
        obs, *_ = env.step(env.action_space.sample())
    big = gym.make(env_id, size=64)
    assert big.observation_space.shape == (1, 64, 64) and big.reset(seed=0)[0].shape == (1, 64, 64)


@pytest.mark.filterwarnings("ignore:.*different from the unwrapped version", "ignore:.*symmetric and normalized")
@pytest.mark.parametrize("make", [make_sparse_mountain_car_pixels, make_cartpole_swingup_pixels, make_pendulum_pixels])
def test_check_env(make):
    check_env(make(), skip_render_check=True)
    check_env(make(frames=2), skip_render_check=True)


@pytest.mark.parametrize("env_id", ["pprl/PendulumPixels-v0", "pprl/CartPoleSwingUpPixels-v0", "pprl/GridRoomPixels-v0"])
def test_frame_stacking_keeps_the_previous_frame_and_resets(env_id):
    single = gym.make(env_id, max_episode_steps=4)
    stacked = gym.make(env_id, frames=2, max_episode_steps=4)
    C, H, W = single.observation_space.shape
    assert stacked.observation_space == gym.spaces.Box(0.0, 1.0, (2 * C, H, W), np.float32)
    one, _ = single.reset(seed=3)
    two, _ = stacked.reset(seed=3)
    assert np.array_equal(two, np.concatenate([one, one]))  # a reset fills the stack with the reset frame
    single.action_space.seed(3)
    previous = one
    for step in range(1, 10):
        action = single.action_space.sample()
        one, _, term, trunc, _ = single.step(action)
        two, _, term2, trunc2, _ = stacked.step(action)
        assert (term, trunc) == (term2, trunc2)
        assert np.array_equal(two, np.concatenate([previous, one]))  # oldest first
        if term or trunc:
            assert step % 4 == 0
            one, _ = single.reset()
            two, _ = stacked.reset()
            assert np.array_equal(two, np.concatenate([one, one]))  # nothing of the last episode
        previous = one


def test_with_pixels_stacks_any_renderer():
    env = with_pixels(gym.make("Pendulum-v1"), lambda obs: render_pendulum(obs[:, 0], obs[:, 1], 16), (1, 16, 16), frames=3)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (3, 16, 16) and np.array_equal(obs[0], obs[2])
    obs, *_ = env.step(np.array([2.0], dtype=np.float32))
    assert np.array_equal(obs[0], obs[1]) and obs.shape == (3, 16, 16)
    grid = make_grid_room_pixels(frames=2)
    assert grid.observation_space.shape == (2, 36, 36)
