"""PPO learner: rollout layout, true final observations, GAE against hand-computed values,
determinism, checkpoint round trip, config validation; slow: solving CartPole and Pendulum."""
import time

import gymnasium as gym
import numpy as np
import pytest
import torch

from pprl.rl.learners.ppo import PPO, PPOConfig, RunningMeanStd, gae
from pprl.spec import SpecError

SMALL = dict(num_envs=3, num_steps=16, num_minibatches=2, update_epochs=2)


pytestmark = pytest.mark.usefixtures("single_thread")  # the slow Pendulum test: ~50 s vs 770 s CPU with 2 threads under load


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_rollout_shapes_and_layout(env_id):
    ppo = PPO(env_id, PPOConfig(**SMALL), seed=0)
    r = ppo.collect()
    T, E = 16, 3
    obs_dim = 4 if env_id == "CartPole-v1" else 3
    assert ppo.global_step == T * E
    assert r.obs.shape == (T, E, obs_dim) and r.obs.dtype == torch.float32
    for name in ("logprobs", "values", "rewards", "final_values"):
        assert getattr(r, name).shape == (T, E) and getattr(r, name).dtype == torch.float32, name
    for name in ("terminated", "truncated"):
        assert getattr(r, name).shape == (T, E) and getattr(r, name).dtype == torch.bool, name
    assert r.next_value.shape == (E,)
    tr = r.transitions
    assert len(tr) == T * E and tr.obs_dim == obs_dim
    # time-major: row t*E + i is step t of env i
    assert torch.equal(tr.obs, r.obs.reshape(T * E, obs_dim))
    assert torch.equal(tr.reward, r.rewards.reshape(-1))
    assert torch.equal(tr.terminated, r.terminated.reshape(-1))
    not_done = ~(r.terminated | r.truncated)[:-1]
    assert torch.equal(tr.next_obs.reshape(T, E, obs_dim)[:-1][not_done], r.obs[1:][not_done])
    if env_id == "CartPole-v1":
        assert r.actions.shape == (T, E) and r.actions.dtype == torch.long
        assert torch.equal(tr.act, torch.nn.functional.one_hot(r.actions.reshape(-1), 2).float())
    else:
        assert r.actions.shape == (T, E, 1) and r.actions.dtype == torch.float32
        assert tr.act.shape == (T * E, 1) and tr.act.dtype == torch.float32
        assert torch.equal(tr.act, r.actions.reshape(-1, 1).clamp(-2.0, 2.0))  # the action applied
        assert (r.actions.abs() > 2).any()  # rollout keeps the sampled, unclipped actions
    stats = ppo.update(r)
    expected = {"policy_loss", "value_loss", "entropy", "approx_kl", "clipfrac", "explained_variance",
                "learning_rate"}
    assert set(stats) == expected and all(isinstance(v, float) for v in stats.values())
    assert isinstance(ppo.act(r.obs[0, 0].numpy()), (np.ndarray, np.integer))
    ppo.close()


def test_next_obs_is_true_final_obs_and_episodes():
    """Replay each env of the vector env in a plain env with the same actions: next_obs must be
    the real last observation at every episode end (time limit 5), never the reset observation."""
    cfg = PPOConfig(num_envs=2, num_steps=12, max_episode_steps=5)
    ppo = PPO("CartPole-v1", cfg, seed=7)
    r = ppo.collect()
    ppo.close()
    T, E = 12, 2
    next_obs = r.transitions.next_obs.reshape(T, E, 4)
    assert r.truncated[[4, 9]].all() and r.truncated.sum() == 4  # episodes end at t = 4 and 9
    for i in range(E):
        env = gym.make("CartPole-v1", max_episode_steps=5)
        obs, _ = env.reset(seed=7 + i)
        for t in range(T):
            assert np.allclose(r.obs[t, i].numpy(), obs)
            obs, reward, term, trunc, _ = env.step(int(r.actions[t, i]))
            assert np.allclose(next_obs[t, i].numpy(), obs), (t, i)
            assert (term, trunc) == (bool(r.terminated[t, i]), bool(r.truncated[t, i]))
            if term or trunc:
                assert not np.allclose(r.obs[t + 1, i].numpy(), obs)  # the stored next step is the reset obs
                obs, _ = env.reset()
        env.close()
    bootstrapped = r.truncated & ~r.terminated
    assert (r.final_values[bootstrapped] != 0).all() and (r.final_values[~bootstrapped] == 0).all()
    assert r.episodes == [{"return": 5.0, "length": 5, "success": False}] * 4


class _ThreeStepEnv(gym.Env):
    """Episodes of exactly 3 steps; info["is_success"] = (action == 1) is reported at steps 2 and 3
    only (so at the last step it arrives through the vector env's final_info)."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(1, np.float32), {}

    def step(self, action):
        self.t += 1
        info = {"is_success": bool(action == 1)} if self.t >= 2 else {}
        return np.full(1, self.t / 3, np.float32), 1.0, self.t == 3, False, info


def test_episode_success_flags():
    gym.register("pprl-test/ThreeStep-v0", entry_point=_ThreeStepEnv)
    ppo = PPO("pprl-test/ThreeStep-v0", PPOConfig(num_envs=4, num_steps=9), seed=0)
    r = ppo.collect()
    ppo.close()
    a = r.actions.T.reshape(4, 3, 3)  # env, episode, step
    expected = [bool((a[i, k, 1:] == 1).any()) for k in range(3) for i in range(4)]  # finish order
    assert [e["success"] for e in r.episodes] == expected
    assert any(expected) and not all(expected)
    assert {(e["return"], e["length"]) for e in r.episodes} == {(3.0, 3)}


def test_gae_hand_computed():
    """γ = 0.9, λ = 0.8. Env 0 terminates at t=1 (its final value 7 must be ignored); env 1 is
    truncated at t=0 and bootstraps from final value 5 instead of values[1]."""
    rewards = torch.tensor([[1.0, 0.0], [1.0, 2.0], [1.0, 1.0]])
    values = torch.tensor([[0.5, 1.0], [0.4, 2.0], [0.3, 3.0]])
    next_value = torch.tensor([0.2, 4.0])
    terminated = torch.tensor([[False, False], [True, False], [False, False]])
    truncated = torch.tensor([[False, True], [False, False], [False, False]])
    final_values = torch.tensor([[0.0, 5.0], [7.0, 0.0], [0.0, 0.0]])
    adv, ret = gae(rewards, values, next_value, terminated, truncated, final_values, 0.9, 0.8)
    # env 0: δ2 = 1 + .9·.2 − .3 = .88; δ1 = 1 − .4 = .6 (terminated); δ0 = 1 + .9·.4 − .5 = .86, A0 = .86 + .72·.6
    # env 1: δ2 = 1 + .9·4 − 3 = 1.6; δ1 = 2 + .9·3 − 2 = 2.7, A1 = 2.7 + .72·1.6; δ0 = 0 + .9·5 − 1 = 3.5 (cut)
    expected = torch.tensor([[0.86 + 0.72 * 0.6, 3.5], [0.6, 2.7 + 0.72 * 1.6], [0.88, 1.6]])
    torch.testing.assert_close(adv, expected)
    torch.testing.assert_close(ret, expected + values)


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_same_seed_same_numbers_and_no_global_rng(env_id):
    def run(seed):
        ppo = PPO(env_id, PPOConfig(**SMALL), seed=seed)
        stats = [ppo.update(ppo.collect()) for _ in range(2)]
        params = [p.detach().clone() for p in ppo.agent.parameters()]
        ppo.close()
        return stats, params

    rng_before = torch.random.get_rng_state()
    stats_a, params_a = run(3)
    assert torch.equal(torch.random.get_rng_state(), rng_before)  # no hidden global RNG use
    stats_b, params_b = run(3)
    assert stats_a == stats_b
    assert all(torch.equal(a, b) for a, b in zip(params_a, params_b))
    stats_c, _ = run(4)
    assert stats_c != stats_a


def test_state_dict_round_trip(tmp_path):
    """A checkpoint taken mid-run (after collecting, before updating) and loaded into a fresh
    learner with weights_only=True continues exactly like the uninterrupted learner."""
    cfg = PPOConfig(**SMALL)
    a = PPO("Pendulum-v1", cfg, seed=0)
    a.update(a.collect())
    rollout = a.collect()
    torch.save(a.state_dict(), tmp_path / "ckpt.pt")
    stats_a = a.update(rollout)

    b = PPO("Pendulum-v1", cfg, seed=123)  # different init: everything must come from the checkpoint
    b.load_state_dict(torch.load(tmp_path / "ckpt.pt", weights_only=True))
    assert b.global_step == a.global_step
    stats_b = b.update(rollout)
    assert stats_a == stats_b
    for pa, pb in zip(a.agent.parameters(), b.agent.parameters()):
        assert torch.equal(pa, pb)
    obs = rollout.obs[-1].numpy()
    assert np.array_equal(a.act(obs), b.act(obs))
    a.close(), b.close()


def test_centered_rewards_make_the_update_blind_to_a_constant_offset():
    """center_rewards subtracts the running mean of all rewards seen: a constant c added to every
    reward then cancels, so two learners fed r and r + 7 end with the same parameters; without
    centering the offset changes them (the critic must fit c/(1 − γ))."""
    def final_params(offset, center):
        ppo = PPO("Pendulum-v1", PPOConfig(**SMALL, center_rewards=center), seed=0)
        for _ in range(3):
            rollout = ppo.collect()
            ppo.update(rollout, rewards=rollout.rewards + offset)
        params = torch.cat([q.detach().reshape(-1) for q in ppo.agent.parameters()])
        seen = ppo.reward_rms.mean
        ppo.close()
        return params, seen

    centred, mean0 = final_params(0.0, True)
    shifted, mean7 = final_params(7.0, True)
    torch.testing.assert_close(shifted, centred, atol=2e-5, rtol=0)
    assert float(mean7 - mean0) == pytest.approx(7.0, abs=1e-4)
    plain, _ = final_params(0.0, False)
    plain_shifted, _ = final_params(7.0, False)
    assert (plain_shifted - plain).abs().max() > 1e-3


def test_centered_learner_resumes_exactly(tmp_path):
    cfg = PPOConfig(**SMALL, center_rewards=True)
    a = PPO("Pendulum-v1", cfg, seed=0)
    a.update(a.collect())
    rollout = a.collect()
    torch.save(a.state_dict(), tmp_path / "ckpt.pt")
    stats_a = a.update(rollout)
    b = PPO("Pendulum-v1", cfg, seed=7)
    b.load_state_dict(torch.load(tmp_path / "ckpt.pt", weights_only=True))
    assert b.update(rollout) == stats_a and torch.equal(a.reward_rms.mean, b.reward_rms.mean)
    old = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    del old["reward_rms"]
    with pytest.warns(UserWarning, match="no reward mean"):
        PPO("Pendulum-v1", cfg, seed=0).load_state_dict(old)
    a.close(), b.close()


def test_centering_warns_once_when_episodes_terminate():
    ppo = PPO("CartPole-v1", PPOConfig(**SMALL, center_rewards=True), seed=0)
    rollout = ppo.collect()
    while not rollout.terminated.any():
        rollout = ppo.collect()
    with pytest.warns(UserWarning, match="center_rewards"):
        ppo.update(rollout)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ppo.update(rollout)
    ppo.close()


def test_running_mean_std_matches_pooled_moments():
    """Batches merged by the parallel (Chan et al.) update give the moments of the pooled data."""
    g = torch.Generator().manual_seed(0)
    batches = [torch.randn(n, 3, generator=g) * 3 + 1 for n in (1, 7, 50)]
    rms = RunningMeanStd((3,), epsilon=0.0)
    for b in batches:
        rms.update(b)
    pooled = torch.cat(batches).double()
    torch.testing.assert_close(rms.mean, pooled.mean(0))
    torch.testing.assert_close(rms.var, pooled.var(0, unbiased=False))
    assert rms.count == 58


def test_config_from_dict_and_errors():
    cfg = PPOConfig.from_dict({"hidden_sizes": [32, 32], "learning_rate": 1, "gamma": "0.9", "target_kl": None})
    assert cfg.hidden_sizes == (32, 32) and cfg.learning_rate == 1.0 and isinstance(cfg.learning_rate, float)
    assert cfg.gamma == 0.9 and cfg.target_kl is None
    assert PPOConfig.from_dict(cfg.to_dict()) == cfg and cfg.to_dict()["type"] == "ppo"
    with pytest.raises(SpecError, match=r"field 'learner\.type': got 'sac'; allowed: ppo"):
        PPOConfig.from_dict({"type": "sac"})
    with pytest.raises(SpecError, match=r"x\.yaml: unknown field 'learner\.lern_rate'; allowed: .*learning_rate"):
        PPOConfig.from_dict({"lern_rate": 1e-3}, source="x.yaml")
    with pytest.raises(SpecError, match=r"field 'learner\.learning_rate': got -0\.001.*allowed: a number > 0"):
        PPOConfig.from_dict({"learning_rate": -1e-3})
    with pytest.raises(SpecError, match=r"field 'learner\.num_envs'.*allowed: an integer >= 1"):
        PPOConfig.from_dict({"num_envs": 2.5})
    with pytest.raises(SpecError, match=r"field 'learner\.hidden_sizes'"):
        PPOConfig.from_dict({"hidden_sizes": [64, 0]})
    with pytest.raises(SpecError, match=r"field 'learner\.norm_obs'.*allowed: true, false"):
        PPOConfig.from_dict({"norm_obs": "yes"})
    with pytest.raises(SpecError, match=r"field 'learner\.num_minibatches'"):
        PPOConfig.from_dict({"num_envs": 1, "num_steps": 4, "num_minibatches": 8})
    with pytest.raises(ValueError, match="unknown environment 'NoSuchEnv-v0'"):
        PPO("NoSuchEnv-v0", PPOConfig())


def _solve(env_id, cfg, seed):
    t0 = time.perf_counter()
    ppo = PPO(env_id, cfg, seed=seed)
    ppo.learn()
    returns = ppo.evaluate(episodes=10)
    ppo.close()
    return returns, ppo.global_step, time.perf_counter() - t0


@pytest.mark.slow
def test_solves_cartpole():
    """Default PPOConfig (8 envs × 128 steps, lr 3e-4 annealed, 10 epochs × 4 minibatches) with
    a 50,000-step budget reaches deterministic return 500 on all 10 evaluation episodes.
    Measured: 7-8 s wall, one torch thread on the shared 2-core machine; seeds 0, 1, 2 all gave
    500.0 (seed 0 used here)."""
    returns, steps, wall = _solve("CartPole-v1", PPOConfig(total_steps=50_000), seed=0)
    print(f"CartPole-v1: {steps} steps, {wall:.1f} s, eval mean {returns.mean():.1f}")
    assert steps <= 51_200 and returns.mean() >= 475


@pytest.mark.slow
def test_solves_pendulum():
    """Pendulum-v1 with 4 envs × 1024 steps, γ = 0.95, lr 1e-3 annealed, 32 minibatches × 10
    epochs, 200,000-step budget: mean deterministic return ≥ −250 over 10 episodes.
    Measured: 47-52 s wall with one torch thread (≈90 s with two runs sharing the 2 cores); seeds
    0, 1, 2, 3 gave −134, −128, −128, −127 (seed 0 used here). With γ = 0.9 seed 1 collapsed its
    std and stayed near −530; lr 5e-4 with γ = 0.9 passed too (−144 to −161)."""
    cfg = PPOConfig(num_envs=4, num_steps=1024, gamma=0.95, learning_rate=1e-3, num_minibatches=32,
                    total_steps=200_000)
    returns, steps, wall = _solve("Pendulum-v1", cfg, seed=0)
    print(f"Pendulum-v1: {steps} steps, {wall:.1f} s, eval mean {returns.mean():.1f}")
    assert steps <= 204_800 and returns.mean() >= -250
