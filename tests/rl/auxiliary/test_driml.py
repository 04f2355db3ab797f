"""DRIML: its InfoNCE estimate of I([S_t, A_t]; S_{t+k}) against the exact value of a finite Markov
chain under a fixed stochastic policy, the log N ceiling, pairs that never cross an episode end,
λ = 0 being plain PPO, a conv encoder with the local–global variant, and its spec."""
import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

import pprl
from pprl.inference.markov import sample_chain, state_action_future_mi
from pprl.rl.auxiliary.driml import DRIML, DRIMLSpec, future_pairs
from pprl.rl.learners import PPO, PPOConfig
from pprl.rl.learners.base import Minibatch
from pprl.spec import SpecError

pytestmark = pytest.mark.usefixtures("single_thread")


def ring_chain(S=6, drift=0.8):
    """A ring of S states: action 0 steps +1 and action 1 steps −1 with probability ``drift``, else
    a uniform jump; the policy prefers +1 on even states and −1 on odd ones."""
    P = np.full((S, 2, S), (1 - drift) / S)
    for s in range(S):
        P[s, 0, (s + 1) % S] += drift
        P[s, 1, (s - 1) % S] += drift
    policy = np.array([[0.8, 0.2] if s % 2 == 0 else [0.3, 0.7] for s in range(S)])
    return P, policy


class OneHotLearner:
    """The learner's side of DRIML for a tabular chain: inputs are one-hot states, features the identity."""

    def __init__(self, S, A):
        self.obs_dim, self.act_dim = S, A

    def features(self, x):
        return x


def chain_rollout(P, policy, seed, T=64, E=64, done=None):
    states, actions = sample_chain(P, policy, T, E, seed=seed)
    flags = torch.zeros(T * E, dtype=torch.bool) if done is None else done.reshape(-1)
    rollout = SimpleNamespace(policy_obs=F.one_hot(states, P.shape[0]).float(),
                              transitions=SimpleNamespace(terminated=flags, truncated=torch.zeros_like(flags)))
    return rollout, actions


def minibatch(rollout, actions, index):
    x = rollout.policy_obs.reshape(-1, rollout.policy_obs.shape[-1])
    return Minibatch(obs=x[index], actions=actions.reshape(-1)[index], index=index, rollout=rollout)


def train_on_chain(aux, P, policy, learner, batches=600, batch=512, seed=0):
    g = torch.Generator().manual_seed(seed)
    stats = []
    for i in range(batches):
        if i % 20 == 0:
            rollout, actions = chain_rollout(P, policy, seed=seed * 10_000 + i)
        index = torch.randperm(rollout.policy_obs.shape[0] * rollout.policy_obs.shape[1], generator=g)[:batch]
        term, s = aux.loss(minibatch(rollout, actions, index), learner)
        term.backward()
        aux.step()
        stats.append(s)
    return stats


def held_out_mi(aux, P, policy, learner, batches=40, batch=512):
    values = []
    g = torch.Generator().manual_seed(99)
    for i in range(batches):
        rollout, actions = chain_rollout(P, policy, seed=50_000 + i)
        index = torch.randperm(64 * 64, generator=g)[:batch]
        with torch.no_grad():
            values.append(aux.loss(minibatch(rollout, actions, index), learner)[1]["driml_mi"])
    return float(np.mean(values)), float(np.std(values) / math.sqrt(batches))


def test_infonce_estimate_reaches_the_exact_markov_chain_mi_and_decays_with_k_as_it_does():
    P, policy = ring_chain()
    learner = OneHotLearner(6, 2)
    exact, estimates = {}, {}
    for k in (1, 2, 4):
        aux = DRIML(DRIMLSpec(k=k, learning_rate=3e-3), learner, seed=0)
        train_on_chain(aux, P, policy, learner)
        estimates[k] = held_out_mi(aux, P, policy, learner)
        exact[k] = state_action_future_mi(P, policy, k)
    for k in (1, 2, 4):
        est, se = estimates[k]
        target = min(exact[k], math.log(512))
        assert abs(est - target) < 0.06, (k, est, exact[k])
        assert est < exact[k] + 3 * se + 0.01  # a lower bound: never above the truth beyond MC error
    # exact: 1.07, 0.45, 0.11 nats; the estimates fall with k as the truth does (|λ₂| = 0.8)
    assert estimates[1][0] > estimates[2][0] > estimates[4][0]
    for a, b in ((1, 2), (2, 4)):
        assert estimates[b][0] / estimates[a][0] == pytest.approx(exact[b] / exact[a], abs=0.06)


def test_infonce_never_exceeds_log_n_even_when_the_true_mi_does():
    S = 64  # a deterministic cycle: I([S, A]; S_{t+1}) = log 64 = 4.16 nats > log 8
    P = np.zeros((S, 1, S))
    P[np.arange(S), 0, (np.arange(S) + 1) % S] = 1.0
    policy = np.ones((S, 1))
    learner = OneHotLearner(S, 1)
    aux = DRIML(DRIMLSpec(k=1, learning_rate=1e-2, score_clip=None), learner, seed=0)
    stats = train_on_chain(aux, P, policy, learner, batches=300, batch=9)  # ~8 valid pairs per batch
    ceiling = [s["driml_log_n"] for s in stats]
    mi = [s["driml_mi"] for s in stats]
    assert all(m <= c + 1e-6 for m, c in zip(mi, ceiling))
    assert np.mean(mi[-50:]) > 0.95 * np.mean(ceiling[-50:])  # the ceiling is what binds


def test_pairs_never_cross_an_episode_end():
    T, E = 10, 3
    done = torch.zeros(T, E, dtype=torch.bool)
    done[4, 0] = True            # env 0's episode ends at step 4: step 5 is a new episode
    done[2, 1] = done[3, 1] = True
    index = torch.arange(T * E)
    for k in (1, 2, 3):
        valid, future = future_pairs(index, torch.full_like(index, k), done)
        for row in range(T * E):
            t, e = divmod(row, E)
            expected = t + k <= T - 1 and not done[t:t + k, e].any()
            assert bool(valid[row]) == expected, (k, t, e)
            if expected:
                assert int(future[row]) == (t + k) * E + e
    # in DRIML: with the episode id as the observation, every positive pair is from one episode
    episode = torch.cat([torch.zeros(1, E, dtype=torch.long), done.long().cumsum(0)[:-1]]) * E + torch.arange(E)
    rollout = SimpleNamespace(policy_obs=F.one_hot(episode, int(episode.max()) + 1).float(),
                              transitions=SimpleNamespace(terminated=done.reshape(-1),
                                                          truncated=torch.zeros(T * E, dtype=torch.bool)))
    learner = OneHotLearner(int(episode.max()) + 1, 2)
    aux = DRIML(DRIMLSpec(k=3, k_sampling="uniform"), learner, seed=0)
    captured = {}
    aux.scores = lambda anchors, actions, futures, learner: captured.update(a=anchors, f=futures) or anchors @ futures.T
    aux.loss(Minibatch(obs=rollout.policy_obs.reshape(T * E, -1), actions=torch.zeros(T * E, dtype=torch.long),
                       index=torch.arange(T * E), rollout=rollout), learner)
    assert len(captured["a"]) > 2 and (captured["a"].argmax(-1) == captured["f"].argmax(-1)).all()
    # a minibatch with fewer than two valid pairs adds nothing and records only its pair count
    term, stats = aux.loss(Minibatch(obs=rollout.policy_obs.reshape(T * E, -1)[-2:],
                                     actions=torch.zeros(2, dtype=torch.long), index=torch.arange(T * E)[-2:],
                                     rollout=rollout), learner)
    assert float(term) == 0.0 and stats == {"driml_pairs": 0.0}


DRIML_SPEC = {
    "name": "ppo_driml", "env": "CartPole-v1", "intrinsic": {"type": "none"},
    "learner": {"num_envs": 2, "num_steps": 32, "total_steps": 192, "num_minibatches": 2, "update_epochs": 2},
}


def test_weight_zero_reproduces_ppo_exactly_and_a_positive_weight_does_not(tmp_path):
    runs, params = {}, {}
    for name, aux in (("ppo", None), ("zero", {"type": "driml", "weight": 0.0, "k": 2}),
                      ("one", {"type": "driml", "weight": 1.0, "k": 2})):
        spec = DRIML_SPEC if aux is None else {**DRIML_SPEC, "auxiliary": [aux]}
        pprl.train(spec, seed=3, out_dir=tmp_path / name, progress=False)
        runs[name] = pd.read_csv(tmp_path / name / "metrics.csv").drop(columns="wall_s")
        params[name] = torch.load(tmp_path / name / "checkpoint.pt", weights_only=True)["learner"]["agent"]
    driml_columns = [c for c in runs["zero"] if c.startswith("driml_")]
    assert set(driml_columns) == {"driml_loss", "driml_mi", "driml_log_n", "driml_pairs", "driml_k"}
    pd.testing.assert_frame_equal(runs["zero"].drop(columns=driml_columns), runs["ppo"])
    assert all(torch.equal(params["ppo"][k], params["zero"][k]) for k in params["ppo"])
    assert not all(torch.equal(params["ppo"][k], params["one"][k]) for k in params["ppo"])
    assert (runs["zero"]["driml_mi"] <= runs["zero"]["driml_log_n"] + 1e-6).all()
    episodes = [pd.read_csv(tmp_path / n / "episodes.csv") for n in ("ppo", "zero")]
    pd.testing.assert_frame_equal(*episodes)  # same seed, same returns


def test_conv_encoder_learns_the_future_of_a_pixel_gridworld_and_the_local_global_variant_runs():
    config = PPOConfig(num_envs=4, num_steps=64, num_minibatches=2, update_epochs=4, encoder="conv",
                       hidden_sizes=(32,), norm_obs=False)
    ppo = PPO("pprl/GridRoomPixels-v0", config, seed=0)
    aux = DRIML(DRIMLSpec(k=1, learning_rate=3e-3), ppo, seed=0)
    mi = [ppo.update(ppo.collect(), aux_losses=[aux])["driml_mi"] for _ in range(7)]
    assert mi[-1] > mi[0] + 0.3  # where the agent will be is in the image: the encoder learns to say so
    # local–global: each position of the 18×18 map of the 36×36 image against the global future
    local = DRIML(DRIMLSpec(k=2, mode="local_global"), ppo, seed=0)
    assert ppo.feature_map(torch.zeros(3, ppo.obs_dim)).shape == (3, 32, 18, 18)
    stats = ppo.update(ppo.collect(), aux_losses=[local])
    assert math.isfinite(stats["driml_mi"]) and stats["driml_mi"] <= stats["driml_log_n"]
    assert local.anchor_head[0].weight.grad is None  # the critic's gradients were applied and cleared
    ppo.close()
    mlp = PPO("CartPole-v1", PPOConfig(num_envs=1, num_steps=8, num_minibatches=1), seed=0)
    with pytest.raises(ValueError, match="local_global' needs a learner with a convolutional encoder"):
        DRIML(DRIMLSpec(mode="local_global"), mlp)
    mlp.close()
    with pytest.raises(ValueError, match=r"learner.encoder 'conv' needs image observations \[C, H, W\]"):
        PPO("CartPole-v1", PPOConfig(num_envs=1, num_steps=8, num_minibatches=1, encoder="conv"), seed=0)


def test_spec_round_trip_and_one_clear_error_per_bad_field():
    spec = pprl.load_experiment({**DRIML_SPEC, "auxiliary": [{"type": "driml", "weight": 0.1, "k": 4,
                                                              "k_sampling": "uniform", "bound": "nwj",
                                                              "score_clip": None}]})
    (aux,) = spec.auxiliary
    assert isinstance(aux, DRIMLSpec) and aux.k == 4 and aux.bound == "nwj" and aux.score_clip is None
    assert pprl.load_experiment(spec.to_dict()).auxiliary == spec.auxiliary
    for entry, message in (
            ({"k": 0}, r"field 'auxiliary\[0\]\.k' must be > 0"),
            ({"bound": "mine"}, r"field 'auxiliary\[0\]\.bound': unknown value 'mine'; allowed: infonce, nwj"),
            ({"k_sampling": "geometric"}, r"unknown value 'geometric'; allowed: fixed, uniform"),
            ({"score_clip": -1.0}, r"field 'auxiliary\[0\]\.score_clip' must be > 0"),
            ({"lambda": 1.0}, r"unknown field 'auxiliary\[0\]\.lambda'")):
        with pytest.raises(SpecError, match=message):
            pprl.load_experiment({**DRIML_SPEC, "auxiliary": [{"type": "driml", **entry}]})
    with pytest.raises(ValueError, match="needs rollouts longer than k steps"):
        pprl.train({**DRIML_SPEC, "learner": {**DRIML_SPEC["learner"], "num_steps": 4, "total_steps": 8},
                    "auxiliary": [{"type": "driml", "k": 4}]}, seed=0, out_dir=None, progress=False)


def test_minigrid_task_as_an_image():
    pytest.importorskip("minigrid")
    import gymnasium as gym

    env = gym.make("pprl/MiniGrid-v0", task="MiniGrid-DoorKey-5x5-v0")
    obs, _ = env.reset(seed=0)
    assert obs.shape == (3, 7, 7) and obs.dtype == np.float32 and 0 <= obs.min() and obs.max() <= 1
    successes = []
    for _ in range(300):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        successes.append(info["is_success"] == (terminated and reward > 0))
        if terminated or truncated:
            obs, _ = env.reset()
    assert all(successes)
    with pytest.raises(ValueError, match="unknown MiniGrid task"):
        gym.make("pprl/MiniGrid-v0", task="DoorKey")
