"""pprl.collect: random-policy transitions from gymnasium environments (true final observations,
time-major layout, seeding, one-hot discrete actions) and their save/load round trip."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from pprl.data import Transitions, collect

EPISODE = 20


@pytest.fixture(scope="module")
def pendulum() -> Transitions:
    return collect("Pendulum-v1", 5 * EPISODE + 7, seed=0, max_episode_steps=EPISODE)


@pytest.fixture(scope="module")
def cartpole() -> Transitions:
    return collect("CartPole-v1", 400, seed=1)


def test_pendulum_shapes_and_dtypes(pendulum):
    assert len(pendulum) == 5 * EPISODE + 7
    assert (pendulum.obs_dim, pendulum.act_dim) == (3, 1)
    assert pendulum.obs.dtype == pendulum.act.dtype == pendulum.reward.dtype == torch.float32
    assert pendulum.terminated.dtype == pendulum.truncated.dtype == torch.bool
    assert pendulum.act.abs().max() <= 2.0
    assert pendulum.meta["env_id"] == "Pendulum-v1" and pendulum.meta["discrete"] is False


def test_same_seed_identical_different_seed_differs(pendulum):
    again = collect("Pendulum-v1", len(pendulum), seed=0, max_episode_steps=EPISODE)
    assert again == pendulum
    other = collect("Pendulum-v1", len(pendulum), seed=1, max_episode_steps=EPISODE)
    assert not torch.equal(other.obs, pendulum.obs)
    assert not torch.equal(other.act, pendulum.act)


def test_truncation_every_episode_and_fresh_reset(pendulum):
    n = len(pendulum)
    expected = torch.zeros(n, dtype=torch.bool)
    expected[EPISODE - 1 :: EPISODE] = True
    assert torch.equal(pendulum.truncated, expected)
    assert not pendulum.terminated.any()
    # the row after a truncation is the start of a new episode, not a continuation
    for t in torch.nonzero(expected).flatten().tolist():
        if t + 1 < n:
            assert not torch.allclose(pendulum.obs[t + 1], pendulum.next_obs[t])
            # Pendulum resets with |theta_dot| <= 1
            assert pendulum.obs[t + 1, 2].abs() <= 1.0


def test_pendulum_next_obs_chains_within_episode(pendulum):
    done = pendulum.terminated | pendulum.truncated
    cont = torch.nonzero(~done[:-1]).flatten()
    assert len(cont) > 0
    assert torch.equal(pendulum.obs[cont + 1], pendulum.next_obs[cont])


def test_pendulum_matches_single_env_replay(pendulum):
    """Replaying the recorded actions in a plain env reproduces every row, including the
    true final observation of truncated rows (not the reset one) and the reset after it."""
    env = gym.make("Pendulum-v1", max_episode_steps=EPISODE)
    obs, _ = env.reset(seed=0)
    for t in range(len(pendulum)):
        np.testing.assert_array_equal(pendulum.obs[t].numpy(), obs)
        obs, reward, term, trunc, _ = env.step(pendulum.act[t].numpy())
        np.testing.assert_array_equal(pendulum.next_obs[t].numpy(), obs)
        assert pendulum.reward[t].item() == pytest.approx(reward, rel=1e-6)
        assert (bool(pendulum.terminated[t]), bool(pendulum.truncated[t])) == (term, trunc)
        if term or trunc:
            obs, _ = env.reset()
    env.close()


def test_cartpole_one_hot_and_terminal_obs(cartpole):
    assert cartpole.act_dim == 2 and cartpole.obs_dim == 4
    assert cartpole.meta["discrete"] is True
    assert torch.equal(cartpole.act.sum(1), torch.ones(len(cartpole)))
    assert set(cartpole.act.unique().tolist()) == {0.0, 1.0}
    assert cartpole.act[:, 0].mean().item() == pytest.approx(0.5, abs=0.1)
    term = torch.nonzero(cartpole.terminated).flatten()
    assert len(term) >= 3
    assert not cartpole.truncated.any()
    # true terminal next_obs is out of bounds (|x| > 2.4 or |theta| > 12 deg) ...
    final = cartpole.next_obs[term]
    assert ((final[:, 0].abs() > 2.4) | (final[:, 2].abs() > 12 * 2 * np.pi / 360)).all()
    # ... while the following row is a fresh reset, uniform in [-0.05, 0.05]
    after = term[term + 1 < len(cartpole)] + 1
    assert (cartpole.obs[after].abs() <= 0.05).all()


def test_num_envs_exact_rows_and_per_env_streams():
    steps, k = 103, 4
    data = collect("Pendulum-v1", steps, seed=3, num_envs=k, max_episode_steps=EPISODE)
    assert len(data) == steps
    assert data.meta["num_envs"] == k
    # time-major layout: env i's stream is rows i::k, chained within each episode
    done = data.terminated | data.truncated
    cont = torch.nonzero(~done[: steps - k]).flatten()
    assert torch.equal(data.obs[cont + k], data.next_obs[cont])
    assert torch.equal(torch.nonzero(data.truncated).flatten(), torch.arange(k * (EPISODE - 1), k * EPISODE))
    # sub-envs are seeded differently
    assert not torch.equal(data.obs[0], data.obs[1])


def test_collect_single_step():
    data = collect("CartPole-v1", 1, seed=0, num_envs=3)
    assert len(data) == 1 and data.act.shape == (1, 2)


def test_save_load_round_trip(pendulum, tmp_path):
    path = pendulum.save(tmp_path / "pendulum.npz")
    assert path == tmp_path / "pendulum.npz" and path.is_file()
    loaded = Transitions.load(path)
    assert loaded == pendulum
    assert loaded.meta == pendulum.meta
    for name in ("obs", "act", "next_obs", "reward", "terminated", "truncated"):
        assert getattr(loaded, name).dtype == getattr(pendulum, name).dtype


def test_collect_bad_inputs():
    with pytest.raises(ValueError, match="unknown environment 'NoSuchEnv-v0'"):
        collect("NoSuchEnv-v0", 10)
    with pytest.raises(ValueError, match="steps"):
        collect("Pendulum-v1", 0)
    with pytest.raises(ValueError, match="observation space"):
        collect("Blackjack-v1", 10)  # Tuple observations


class _MultiBinaryActionEnv(gym.Env):
    observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = gym.spaces.MultiBinary(3)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(2, np.float32), {}

    def step(self, action):
        return np.zeros(2, np.float32), 0.0, False, False, {}


def test_collect_unsupported_action_space():
    env_id = "PprlTestMultiBinaryAction-v0"
    if env_id not in gym.registry:
        gym.register(env_id, entry_point=_MultiBinaryActionEnv)
    with pytest.raises(ValueError, match="MultiBinary"):
        collect(env_id, 5)
