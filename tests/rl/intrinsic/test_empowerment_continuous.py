"""Empowerment as the reward on a continuous-action environment (issue 14, item 4): the pendulum
channel's reward is its linearised empowerment of s', a learned channel is fitted online and
resumes exactly, ``extrinsic_weight: 0`` switches the env's reward off, and blocks that mix the
channels' fields are one SpecError."""
import gymnasium as gym
import numpy as np
import pytest
import torch

import pprl
from pprl.data import Transitions
from pprl.empowerment.continuous import PendulumChannel, linearised_empowerment
from pprl.rl.experiment import load_experiment, parse_experiment
from pprl.rl.intrinsic import EmpowermentSpec, make_intrinsic
from pprl.rl.learners.ppo import PPO
from pprl.spec import SpecError

EXAMPLE = "pendulum_empowerment"


def pendulum_batch(n: int = 256, seed: int = 0) -> Transitions:
    """Random-torque Pendulum-v1 transitions, from random starts."""
    env = gym.make("Pendulum-v1")
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    rows = []
    for t in range(n):
        a = rng.uniform(-2, 2, 1).astype(np.float32)
        nxt, _, term, trunc, _ = env.step(a)
        rows.append((obs, a, nxt))
        obs = env.reset()[0] if (term or trunc or t % 50 == 49) else nxt
    o, a, n_ = (torch.tensor(np.stack(x), dtype=torch.float32) for x in zip(*rows))
    return Transitions(obs=o, act=a, next_obs=n_)


def block(**overrides) -> dict:
    return {**load_experiment(EXAMPLE).to_dict()["intrinsic"], **overrides}


def test_example_parses_and_round_trips():
    spec = load_experiment(EXAMPLE)
    assert spec.extrinsic_weight == 0.0 and spec.intrinsic.channel == "learned"
    assert spec.intrinsic.method == "linearised" and spec.intrinsic.action_repeat == 5
    assert parse_experiment(spec.to_dict()).to_dict() == spec.to_dict()


def test_pendulum_channel_reward_is_its_linearised_empowerment():
    spec = EmpowermentSpec.from_dict({"type": "empowerment", "eta": 1.0, "channel": "pendulum", "horizon": 2,
                                      "action_repeat": 3, "noise_std": 0.1})
    bonus = make_intrinsic(spec, obs_dim=3, act_dim=1)
    data = pendulum_batch(64)
    expected = linearised_empowerment(PendulumChannel(0.1, "final", 3), data.next_obs, 2, 2 * 16 / 12)
    torch.testing.assert_close(bonus.reward(data), expected)
    assert bonus.stats["empowerment"] == pytest.approx(float(expected.mean()))
    with pytest.raises(SpecError, match="Pendulum-v1"):
        make_intrinsic(spec, obs_dim=2, act_dim=5)


def test_nominal_points_reach_the_reward_and_round_trip():
    spec = EmpowermentSpec.from_dict({"type": "empowerment", "channel": "pendulum", "horizon": 2, "action_repeat": 3,
                                      "nominal_points": 5})
    assert spec.nominal_points == 5 and EmpowermentSpec.from_dict(spec.to_dict()) == spec
    data = pendulum_batch(32)
    expected = linearised_empowerment(PendulumChannel(0.05, "final", 3), data.next_obs, 2, 2 * 16 / 12,
                                      nominal_points=5)
    torch.testing.assert_close(make_intrinsic(spec, obs_dim=3, act_dim=1).reward(data), expected)
    with pytest.raises(SpecError, match="nominal_points"):
        EmpowermentSpec.from_dict({"type": "empowerment", "channel": "pendulum", "nominal_points": 0})
    with pytest.raises(SpecError, match="nominal_points"):
        EmpowermentSpec.from_dict({"type": "empowerment", "nominal_points": 3})  # gridworld: no such field
    with pytest.raises(SpecError, match="applies to method 'linearised'"):
        EmpowermentSpec.from_dict({"type": "empowerment", "channel": "pendulum", "method": "variational",
                                   "nominal_points": 3})


def test_learned_channel_takes_a_declared_noise_std():
    spec = EmpowermentSpec.from_dict(block(noise_std=0.05), "x.yaml")
    assert spec.noise_std == 0.05 and EmpowermentSpec.from_dict(spec.to_dict()) == spec
    assert EmpowermentSpec.from_dict(block(noise_std=None), "x.yaml").noise_std is None  # the model's own noise
    assert EmpowermentSpec.from_dict({"type": "empowerment", "channel": "pendulum"}).noise_std == 0.05
    bonus = make_intrinsic(EmpowermentSpec.from_dict(block(noise_std=0.05, initial_fit_steps=50), "x.yaml"),
                           obs_dim=3, act_dim=1)
    bonus.reward(pendulum_batch(64))
    assert bonus.channel.noise_std == 0.05
    with pytest.raises(SpecError, match="set one"):
        EmpowermentSpec.from_dict(block(noise_std=0.05, noise_scale=2.0), "x.yaml")


def test_learned_channel_is_fitted_online_and_resumes_exactly():
    spec = EmpowermentSpec.from_dict(block(initial_fit_steps=200, refit_steps=20), "x.yaml")
    bonus = make_intrinsic(spec, obs_dim=3, act_dim=1, seed=0)
    first, second = pendulum_batch(256, 0), pendulum_batch(256, 1)
    r = bonus.reward(first)
    assert r.shape == (256,) and torch.isfinite(r).all() and bonus.fits == 1
    bonus.update(first)
    assert bonus.fits == 2 and len(bonus.pool.contents()) == 256
    bonus.reward(second)
    assert np.isfinite(bonus.stats["model_nll"])
    restored = make_intrinsic(spec, obs_dim=3, act_dim=1, seed=0)
    restored.load_state_dict(bonus.state_dict())
    torch.testing.assert_close(restored.reward(second), bonus.reward(second))


def test_variational_method_gives_a_finite_reward():
    spec = EmpowermentSpec.from_dict({"type": "empowerment", "eta": 1.0, "channel": "pendulum", "horizon": 1,
                                      "method": "variational", "fit_steps": 20, "num_samples": 16})
    bonus = make_intrinsic(spec, obs_dim=3, act_dim=1)
    r = bonus.reward(pendulum_batch(64))
    assert r.shape == (64,) and torch.isfinite(r).all() and bonus.estimator.trace.shape == (20,)


@pytest.mark.parametrize("overrides, field", [
    ({"slip": 0.1}, "intrinsic.slip' applies to channel gridworld"),
    ({"noise_std": -0.1}, "intrinsic.noise_std"),
    ({"initial_fit_steps": 10, "layout": ["..."]}, "intrinsic.layout' applies to channel gridworld"),
    ({"method": "exact"}, "intrinsic.method"),
    ({"noise": "sensor"}, "intrinsic.noise"),
    ({"action_low": [-2.0, -1.0]}, "action_low'/'action_high'"),
    ({"model": "bnn_dynamics_student_t"}, "Gaussian likelihood"),
])
def test_bad_blocks_are_one_spec_error(overrides, field):
    with pytest.raises(SpecError, match=field) as err:
        EmpowermentSpec.from_dict(block(**overrides), "x.yaml")
    assert "\n" not in str(err.value)
    data = block()
    del data["family"]
    with pytest.raises(SpecError, match="intrinsic.family' is required"):
        EmpowermentSpec.from_dict(data, "x.yaml")


def test_extrinsic_weight_zero_switches_the_env_reward_off(tmp_path, monkeypatch):
    seen = []
    update = PPO.update

    def spy(self, rollout, rewards=None, auxiliary=()):
        seen.append((float(rollout.rewards.abs().sum()), float(rewards.abs().sum())))
        return update(self, rollout, rewards, auxiliary)

    monkeypatch.setattr(PPO, "update", spy)
    data = {"env": "Pendulum-v1", "extrinsic_weight": 0.0,
            "learner": {"num_envs": 2, "num_steps": 64, "total_steps": 256}}
    pprl.train(data, out_dir=tmp_path / "off", progress=False)
    assert seen and all(env > 0 and used == 0 for env, used in seen)
    seen.clear()
    pprl.train({**data, "extrinsic_weight": 0.5}, out_dir=tmp_path / "half", progress=False)
    assert all(used == pytest.approx(0.5 * env) for env, used in seen)
    with pytest.raises(SpecError, match="extrinsic_weight"):
        parse_experiment({**data, "extrinsic_weight": -1.0})
