"""The one vector-env helper: SAME_STEP autoreset with the true final observation put back,
unknown ids and unsupported spaces as ValueErrors, and the two action encodings."""
import gymnasium as gym
import numpy as np
import pytest
import torch

from pprl.rl.envs.vector import action_dim, encode_actions, env_actions, make_vector_env, true_next_obs


def test_true_next_obs_replaces_reset_observations():
    env = make_vector_env("CartPole-v1", 2, max_episode_steps=3)
    env.reset(seed=0)
    for t in range(3):
        obs, _, term, trunc, info = env.step(np.array([0, 1]))
    env.close()
    assert trunc.all() or term.all()
    real = true_next_obs(obs, info)
    assert real is not obs and not np.allclose(real, obs)
    np.testing.assert_array_equal(real, np.stack(info["final_obs"]))
    assert np.array_equal(true_next_obs(obs, {}), obs)  # no episode ended: a plain copy


def test_unknown_env_and_unsupported_spaces():
    with pytest.raises(ValueError, match="unknown environment 'NoSuchEnv-v0'"):
        make_vector_env("NoSuchEnv-v0", 1)
    with pytest.raises(ValueError, match="unsupported observation space .* for 'Blackjack-v1' \\(only Box\\)"):
        make_vector_env("Blackjack-v1", 1)


def test_action_encodings():
    discrete = gym.spaces.Discrete(3, start=-1)
    assert action_dim(discrete) == 3
    np.testing.assert_array_equal(encode_actions(discrete, np.array([-1, 1])), [[1, 0, 0], [0, 0, 1]])
    np.testing.assert_array_equal(env_actions(discrete, torch.tensor([0, 2])), [-1, 1])
    box = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    assert action_dim(box) == 2
    applied = env_actions(box, torch.tensor([[0.5, -3.0], [2.0, 0.25]]))
    assert applied.dtype == np.float32
    np.testing.assert_array_equal(applied, [[0.5, -1.0], [1.0, 0.25]])  # clipped to the bounds
    np.testing.assert_array_equal(encode_actions(box, applied), applied)
