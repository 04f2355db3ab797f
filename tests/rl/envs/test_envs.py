"""The VIME sparse-reward environments: exact 0/1 rewards, termination, gymnasium's checker,
registration, seeding, and that the cart-pole swing-up reward is reachable at all."""
import importlib
import math

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import pprl
from pprl.rl.envs import ENV_IDS, register_envs
from pprl.rl.envs.cartpole_swingup import CartPoleSwingUpEnv

CLASSIC = ["pprl/SparseMountainCar-v0", "pprl/CartPoleSwingUp-v0"]
# Unbounded velocities are real here (and in HalfCheetah-v5); the checker only advises.
unbounded_ok = pytest.mark.filterwarnings("ignore:.*Box observation space m.*infinity")


def rollout(env, seed: int, steps: int):
    """Observations and rewards of `steps` random-action steps; actions drawn from `seed`."""
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    observations, rewards = [obs], []
    for _ in range(steps):
        obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        observations.append(obs)
        rewards.append(reward)
        if terminated or truncated:
            break
    return np.stack(observations), np.array(rewards)


def test_import_pprl_registers(monkeypatch):
    for env_id in ENV_IDS:
        monkeypatch.delitem(gym.registry, env_id)
    importlib.reload(pprl)
    for env_id in ENV_IDS:
        assert env_id in gym.registry
    assert gym.make("pprl/CartPoleSwingUp-v0").unwrapped.__class__ is CartPoleSwingUpEnv


def test_registered_with_horizons():
    register_envs()  # idempotent: a second call must not raise or re-register
    horizons = {env_id: gym.spec(env_id).max_episode_steps for env_id in ENV_IDS}
    assert horizons == {"pprl/SparseMountainCar-v0": 500, "pprl/CartPoleSwingUp-v0": 500,
                        "pprl/SparseHalfCheetah-v0": 1000}
    env = gym.make("pprl/SparseMountainCar-v0", max_episode_steps=7)
    assert env.spec.max_episode_steps == 7


@unbounded_ok
@pytest.mark.parametrize("env_id", CLASSIC)
def test_classic_check_env_and_spaces(env_id):
    env = gym.make(env_id)
    check_env(env.unwrapped, skip_render_check=True)
    for space in (env.observation_space, env.action_space):
        assert isinstance(space, gym.spaces.Box) and space.dtype == np.float32
    assert np.all(env.action_space.low == -1) and np.all(env.action_space.high == 1)


@pytest.mark.parametrize("env_id", CLASSIC)
def test_same_seed_same_trajectory(env_id):
    obs_a, rew_a = rollout(gym.make(env_id), seed=3, steps=100)
    obs_b, rew_b = rollout(gym.make(env_id), seed=3, steps=100)
    obs_c, _ = rollout(gym.make(env_id), seed=4, steps=100)
    np.testing.assert_array_equal(obs_a, obs_b)
    np.testing.assert_array_equal(rew_a, rew_b)
    assert not np.array_equal(obs_a[0], obs_c[0])


def test_mountain_car_reward_only_at_goal():
    env = gym.make("pprl/SparseMountainCar-v0")
    _, rewards = rollout(env, seed=0, steps=300)  # random actions never leave the valley
    assert len(rewards) == 300 and np.all(rewards == 0.0)

    car = env.unwrapped
    car.state = np.array([car.goal_position - 0.01, 0.05])
    obs, reward, terminated, _, info = env.step(np.array([1.0], dtype=np.float32))
    assert obs[0] >= car.goal_position
    assert reward == 1.0 and terminated and info["is_success"] is True

    car.state = np.array([car.goal_position - 0.01, -0.05])  # near the goal but moving away
    _, reward, terminated, _, info = env.step(np.array([1.0], dtype=np.float32))
    assert reward == 0.0 and not terminated and info["is_success"] is False


def test_swingup_reward_and_termination():
    env = gym.make("pprl/CartPoleSwingUp-v0")
    obs, _ = env.reset(seed=0)
    assert obs.shape == (5,) and obs[2] < -0.99  # starts hanging down: cos θ ≈ -1
    zero = np.zeros(1, dtype=np.float32)
    for _ in range(100):  # left alone it just hangs
        _, reward, terminated, _, info = env.step(zero)
        assert reward == 0.0 and not terminated and info["is_success"] is False

    pole = env.unwrapped
    pole.state = np.array([0.0, 0.0, 0.01, 0.0])  # upright
    obs, reward, terminated, _, info = env.step(zero)
    assert obs[2] > 0.99 and reward == 1.0 and not terminated and info["is_success"] is True

    pole.state = np.array([0.0, 0.0, math.acos(0.8) + 0.05, 0.0])  # just outside cos θ > 0.8
    _, reward, _, _, _ = env.step(zero)
    assert reward == 0.0

    pole.state = np.array([pole.x_threshold - 0.001, 2.0, 0.0, 0.0])  # upright but off the track
    _, reward, terminated, _, info = env.step(zero)
    assert reward == 0.0 and terminated and info["is_success"] is False


def test_swingup_is_reachable_by_energy_pumping():
    """Åström–Furuta energy control: the pole's energy E = ½·(4/3)m l²θ̇² + m g l (cos θ − 1)
    is 0 upright at rest and obeys dE/dt = −m l θ̇ cos θ · ẍ, so pushing the cart with
    a = −sign(θ̇ cos θ) while E < 0 pumps energy in; a weak spring keeps the cart centred."""
    env = gym.make("pprl/CartPoleSwingUp-v0")
    m, l, g = CartPoleSwingUpEnv.mass_pole, CartPoleSwingUpEnv.half_length, CartPoleSwingUpEnv.gravity
    obs, _ = env.reset(seed=0)
    rewards = []
    for _ in range(500):
        x, x_dot, cos, _, theta_dot = obs
        energy = 0.5 * (4 / 3) * m * l**2 * theta_dot**2 + m * g * l * (cos - 1)
        pump = -np.sign(theta_dot * cos) if energy < 0 else 0.0
        action = np.clip([pump - 0.3 * x - 0.3 * x_dot], -1, 1).astype(np.float32)
        obs, reward, terminated, truncated, _ = env.step(action)
        rewards.append(reward)
        assert not terminated
        if truncated:
            break
    assert sum(rewards) >= 1.0


@unbounded_ok
def test_half_cheetah_sparse_reward(tmp_path, monkeypatch):
    pytest.importorskip("mujoco")
    monkeypatch.chdir(tmp_path)  # MuJoCo appends model-compiler warnings to ./MUJOCO_LOG.TXT
    env = gym.make("pprl/SparseHalfCheetah-v0")
    dense = gym.make("HalfCheetah-v5")
    assert env.observation_space == dense.observation_space
    assert env.action_space == dense.action_space
    check_env(env.unwrapped, skip_render_check=True)

    obs, _ = env.reset(seed=0)
    action = np.zeros(6, dtype=np.float32)
    _, reward, _, _, info = env.step(action)
    assert reward == 0.0 and info["is_success"] is False and isinstance(info["dense_reward"], float)

    cheetah = env.unwrapped
    qpos, qvel = cheetah.data.qpos.copy(), cheetah.data.qvel.copy()
    qpos[0] = 5.5
    cheetah.set_state(qpos, qvel)
    _, reward, _, _, info = env.step(action)
    assert reward == 1.0 and info["is_success"] is True and info["x_position"] > 5.0

    # Same seed, same trajectory; the dense reward is HalfCheetah-v5's.
    obs_a, rew_a = rollout(gym.make("pprl/SparseHalfCheetah-v0"), seed=1, steps=20)
    obs_b, rew_b = rollout(gym.make("pprl/SparseHalfCheetah-v0"), seed=1, steps=20)
    np.testing.assert_array_equal(obs_a, obs_b)
    env.reset(seed=2), dense.reset(seed=2)
    a = env.action_space.sample()
    assert env.step(a)[4]["dense_reward"] == dense.step(a)[1]


def test_half_cheetah_without_mujoco_says_what_to_install(monkeypatch):
    from pprl.rl.envs import sparse_half_cheetah

    monkeypatch.setattr(sparse_half_cheetah, "_MUJOCO_ERROR", ImportError("No module named 'mujoco'"))
    with pytest.raises(gym.error.DependencyNotInstalled, match=r'pip install "gymnasium\[mujoco\]"'):
        gym.make("pprl/SparseHalfCheetah-v0")
