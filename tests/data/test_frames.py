"""collect_frames: the frames are the pixel env's observations (same seed and actions, frame stacking
included), seeded, episode boundaries respected (true final frames, fresh stacks after a reset),
states equal to `collect`'s, the global RNGs untouched, and the flat Transitions view."""
import random

import gymnasium as gym
import numpy as np
import pytest
import torch

import pprl  # noqa: F401  (registers the environments)
from pprl.data import Frames, collect, collect_frames
from pprl.rl.envs.pixels import render_cartpole, render_mountain_car, render_pendulum

EPISODE = 20


@pytest.fixture(scope="module")
def pendulum() -> Frames:
    return collect_frames("pprl/PendulumPixels-v0", 3 * EPISODE + 5, seed=0, frames=2, max_episode_steps=EPISODE)


def test_shapes_dtypes_and_pixels(pendulum):
    n = 3 * EPISODE + 5
    assert len(pendulum) == n
    assert pendulum.obs.shape == pendulum.next_obs.shape == (n, 2, 32, 32)
    assert pendulum.obs.dtype == pendulum.next_obs.dtype == torch.float32
    assert pendulum.act.shape == (n, 1) and pendulum.state.shape == pendulum.next_state.shape == (n, 3)
    assert pendulum.episode.dtype == torch.int64 and pendulum.meta["obs_shape"] == [2, 32, 32]
    s, s_next = pendulum.state.numpy(), pendulum.next_state.numpy()
    assert np.array_equal(pendulum.obs[:, 1:].numpy(), render_pendulum(s[:, 0], s[:, 1]))  # the newest frame
    assert np.array_equal(pendulum.next_obs[:, 1:].numpy(), render_pendulum(s_next[:, 0], s_next[:, 1]))


def test_states_are_collects_transitions(pendulum):
    states = pendulum.state_transitions()
    assert states == collect("Pendulum-v1", len(pendulum), seed=0, max_episode_steps=EPISODE)


def test_equals_the_pixel_env_stepped_with_the_same_actions(pendulum):
    env = gym.make("pprl/PendulumPixels-v0", frames=2, max_episode_steps=EPISODE)
    obs, _ = env.reset(seed=0)
    for t in range(len(pendulum)):
        assert np.array_equal(obs, pendulum.obs[t].numpy())
        obs, reward, terminated, truncated, _ = env.step(pendulum.act[t].numpy())
        assert np.array_equal(obs, pendulum.next_obs[t].numpy())
        assert (np.float32(reward), terminated, truncated) == (pendulum.reward[t].item(), pendulum.terminated[t].item(),
                                                   pendulum.truncated[t].item())
        if terminated or truncated:
            obs, _ = env.reset()


def test_seeded(pendulum):
    again = collect_frames("pprl/PendulumPixels-v0", len(pendulum), seed=0, frames=2, max_episode_steps=EPISODE)
    other = collect_frames("Pendulum-v1", len(pendulum), seed=1, frames=2, max_episode_steps=EPISODE)
    for name in ("obs", "act", "next_obs", "state", "episode"):
        assert torch.equal(getattr(again, name), getattr(pendulum, name))
    assert not torch.equal(other.obs, pendulum.obs) and not torch.equal(other.act, pendulum.act)


def test_episode_boundaries(pendulum):
    ends = (pendulum.truncated | pendulum.terminated).numpy()
    assert np.flatnonzero(ends).tolist() == [EPISODE - 1, 2 * EPISODE - 1, 3 * EPISODE - 1]
    episode = pendulum.episode.numpy()
    assert episode.tolist() == [t // EPISODE for t in range(len(pendulum))]
    obs, nxt = pendulum.obs.numpy(), pendulum.next_obs.numpy()
    for t in range(len(pendulum) - 1):
        if ends[t]:  # the next row starts afresh: both frames are its reset frame
            assert np.array_equal(obs[t + 1, 0], obs[t + 1, 1])
            assert not np.array_equal(nxt[t], obs[t + 1])
        else:  # within an episode the stack rolls by one frame
            assert np.array_equal(nxt[t], obs[t + 1]) and np.array_equal(obs[t + 1, 0], obs[t, 1])
    assert np.array_equal(obs[0, 0], obs[0, 1])


def test_terminated_episodes_and_a_policy_function():
    push = lambda states: np.ones((len(states), 1), dtype=np.float32)  # runs the cart off the track
    frames = collect_frames("pprl/CartPoleSwingUpPixels-v0", 300, seed=2, policy=push, render={"size": 16})
    assert frames.obs.shape == (300, 1, 16, 16) and (frames.act == 1).all()
    ends = np.flatnonzero(frames.terminated.numpy())
    assert len(ends) >= 2 and not frames.truncated.any()
    s, s_next = frames.state.numpy(), frames.next_state.numpy()
    for t in ends[ends < 299]:
        assert s_next[t, 0] > 3.0 and abs(s[t + 1, 0]) <= 0.05  # the true final state, then a reset
        assert frames.episode[t + 1] == frames.episode[t] + 1
    assert np.array_equal(frames.next_obs.numpy(), render_cartpole(s_next[:, 0], s_next[:, 2], s_next[:, 3], 16))


def test_parallel_envs_stack_per_stream():
    frames = collect_frames("pprl/SparseMountainCarPixels-v0", 41, seed=0, frames=3, num_envs=2, max_episode_steps=7)
    assert frames.obs.shape == (41, 3, 32, 32)
    obs, nxt, ends = frames.obs.numpy(), frames.next_obs.numpy(), frames.truncated.numpy()
    for t in range(len(frames) - 2):  # row t + 2 is the next step of row t's env
        if not ends[t]:
            assert np.array_equal(nxt[t], obs[t + 2]) and frames.episode[t] == frames.episode[t + 2]
        else:
            assert (obs[t + 2] == obs[t + 2, :1]).all() and frames.episode[t] != frames.episode[t + 2]
    assert len(np.unique(frames.episode.numpy())) == 3 + 3  # env 0: 21 steps (3 × 7), env 1: 20 (7, 7, 6)
    assert np.array_equal(obs[:, 2], render_mountain_car(frames.state.numpy()[:, 0])[:, 0])


def test_global_rng_untouched():
    torch_state, np_state, py_state = torch.get_rng_state(), np.random.get_state(), random.getstate()
    collect_frames("pprl/GridRoomPixels-v0", 30, seed=5, env_kwargs={"start": "random"})
    collect_frames("Pendulum-v1", 30, seed=5, frames=2)
    assert torch.equal(torch.get_rng_state(), torch_state) and random.getstate() == py_state
    after = np.random.get_state()
    assert after[0] == np_state[0] and np.array_equal(after[1], np_state[1]) and after[2:] == np_state[2:]


def test_flat_transitions_view(pendulum):
    flat = pendulum.transitions()
    assert flat.obs.shape == (len(pendulum), 2 * 32 * 32) and flat.meta["obs_shape"] == [2, 32, 32]
    assert torch.equal(flat.obs.reshape(-1, *flat.meta["obs_shape"]), pendulum.obs)
    assert torch.equal(flat.truncated, pendulum.truncated)


def test_any_env_with_a_render_function():
    frames = collect_frames("CartPole-v1", 10, seed=0,
                            render=lambda s: render_cartpole(s[:, 0], np.cos(s[:, 2]), np.sin(s[:, 2]), size=8, x_threshold=2.4))
    assert frames.obs.shape == (10, 1, 8, 8) and frames.act.shape == (10, 2) and frames.meta["discrete"]


def test_bad_arguments():
    with pytest.raises(ValueError, match="no renderer"):
        collect_frames("CartPole-v1", 10)
    with pytest.raises(ValueError, match="num_steps"):
        collect_frames("Pendulum-v1", 0)
    with pytest.raises(ValueError, match="frames"):
        collect_frames("Pendulum-v1", 5, frames=0)
    with pytest.raises(ValueError, match="policy"):
        collect_frames("Pendulum-v1", 5, policy="greedy")
    with pytest.raises(ValueError, match="render"):
        collect_frames("Pendulum-v1", 5, render="big")
    with pytest.raises(ValueError, match="expected images"):
        collect_frames("Pendulum-v1", 5, render=lambda s: s)
