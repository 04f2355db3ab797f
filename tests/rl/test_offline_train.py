"""Offline learners on expert data of Pendulum-v1 (collected from the SAC policy of
``pendulum_sac``): BC reaches the data policy's return; CQL and MISA push Q down off the data's
support (the point of both penalties) where the same learner with its penalty off does not;
``train_offline`` writes its outputs; bad specs are one error."""
import json

import numpy as np
import pandas as pd
import pytest
import torch

import pprl
from pprl.data.offline import OfflineDataset, save_offline
from pprl.rl.learners.offline import CQL, CQLConfig, MISA, MISAConfig
from pprl.rl.envs.vector import evaluate_policy
from pprl.rl.offline_train import load_offline_experiment, train_offline
from pprl.spec import SpecError

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def expert_data(pendulum_sac, tmp_path_factory):
    sac, _ = pendulum_sac
    data = pprl.collect("Pendulum-v1", 4000, seed=1, policy=lambda obs: sac.act(obs, deterministic=False))
    dataset = OfflineDataset(data, env_id="Pendulum-v1", kind="expert", ref_min_score=-1200.0, ref_max_score=-150.0)
    return save_offline(tmp_path_factory.mktemp("offline") / "pendulum-expert.npz", dataset), dataset


def spec(path, learner, updates, **more):
    return {"name": f"{learner['type']}_pendulum", "env": "Pendulum-v1", "dataset": str(path),
            "learner": {"hidden_sizes": [64, 64], **learner}, "updates": updates, "eval_every": updates,
            "eval_episodes": 10, **more}


def test_bc_on_expert_data_reaches_the_data_policys_return(expert_data, tmp_path):
    path, dataset = expert_data
    data_return = dataset.episode_returns().mean()   # the stochastic SAC policy: about −150
    summary = train_offline(spec(path, {"type": "bc", "learning_rate": 1e-3}, 3000), seed=0, out_dir=tmp_path / "bc",
                            progress=False)
    assert data_return > -300
    assert summary["final_return"] > data_return - 60, (summary["final_return"], data_return)
    assert summary["final_normalized_score"] == pytest.approx(100 * (summary["final_return"] + 1200) / 1050)
    for name in ("spec.yaml", "metrics.csv", "learning_curve.png", "checkpoint.pt", "summary.json"):
        assert (tmp_path / "bc" / name).is_file()
    assert json.loads((tmp_path / "bc" / "summary.json").read_text())["learner"] == "bc"


@pytest.mark.parametrize("method", ["cql", "misa"])
def test_the_penalty_pushes_q_down_off_the_data(expert_data, method):
    """After 300 updates on expert data, Q(s, a) on the data's actions exceeds Q at uniform actions by
    at least twice as much with the penalty as without it (weight 0: plain SAC on the fixed data)."""
    _, dataset = expert_data
    t = dataset.transitions
    gaps = {}
    for weight in (0.0, 5.0):
        if method == "cql":
            learner = CQL(3, 1, [-2.0], [2.0], CQLConfig(hidden_sizes=(64, 64), cql_weight=weight), seed=0)
        else:
            learner = MISA(3, 1, [-2.0], [2.0], MISAConfig(hidden_sizes=(64, 64), mi_weight=weight,
                                                           num_action_samples=20, policy_mi_weight=weight / 5,
                                                           bc_weight=weight / 5), seed=0)
        g = torch.Generator().manual_seed(0)
        for _ in range(300):
            idx = torch.randint(len(t), (256,), generator=g)
            stats = learner.update(t[idx])
        assert all(np.isfinite(v) for v in stats.values()), stats
        with torch.no_grad():
            s = t.obs[:2000]
            uniform = torch.rand(2000, 1, generator=g) * 4 - 2
            gaps[weight] = float(learner.core.q1(s, t.act[:2000]).mean() - learner.core.q1(s, uniform).mean())
        assert np.isfinite(learner.mi_estimate(t[:512]))
    # measured: CQL 0.25 → 1.07, MISA 0.25 → 0.54 (MISA's proposal is π, not uniform actions)
    assert gaps[5.0] > 2 * gaps[0.0] and gaps[5.0] > gaps[0.0] + 0.25, gaps
    if method == "misa":
        assert "misa_mi" in stats and "bc_log_prob" in stats


def test_offline_specs_and_bad_input(expert_data, tmp_path):
    path, _ = expert_data
    loaded = load_offline_experiment(spec(path, {"type": "misa", "mi_bound": "nwj", "mcmc": "hmc"}, 10))
    assert isinstance(loaded.learner, MISAConfig) and loaded.learner.mi_bound == "nwj"
    assert load_offline_experiment(loaded.to_dict()).learner == loaded.learner
    for bad, message in (({"type": "misa", "mi_bound": "js"}, r"field 'learner.mi_bound': got 'js'"),
                         ({"type": "cql", "mi_weight": 1.0}, r"field 'learner.mi_weight' needs learner.type 'misa'"),
                         ({"type": "sac"}, r"unknown value 'sac'; allowed: bc, cql, misa")):
        with pytest.raises(SpecError, match=message):
            load_offline_experiment(spec(path, bad, 10))
    with pytest.raises(ValueError, match="observations of width 3 and actions of width 1, but MountainCarContinuous"):
        train_offline({**spec(path, {"type": "bc"}, 10), "env": "MountainCarContinuous-v0"}, out_dir=tmp_path / "x",
                      progress=False)
    returns = evaluate_policy("Pendulum-v1", lambda obs: np.zeros((len(obs), 1)), episodes=3)
    assert returns.shape == (3,) and (returns < -100).all()  # doing nothing leaves the pendulum down


def test_cql_bc_warm_up_trains_the_actor_without_q():
    """During ``bc_steps`` the actor's update is behaviour cloning: it does not depend on the
    critics (perturbing them leaves the actor's next parameters unchanged), and it does afterwards."""
    g = torch.Generator().manual_seed(0)
    batch = pprl.Transitions(torch.randn(64, 3, generator=g), torch.rand(64, 1, generator=g) * 4 - 2,
                             torch.randn(64, 3, generator=g), reward=torch.randn(64, generator=g),
                             terminated=torch.zeros(64, dtype=torch.bool), truncated=torch.zeros(64, dtype=torch.bool))

    def actor_after_one_update(bc_steps, perturb):
        learner = CQL(3, 1, [-2.0], [2.0], CQLConfig(hidden_sizes=(16,), bc_steps=bc_steps), seed=0)
        if perturb:
            with torch.no_grad():
                for p in [*learner.core.q1.parameters(), *learner.core.q2.parameters()]:
                    p.mul_(3.0)
        stats = learner.update(batch)
        return torch.cat([p.reshape(-1) for p in learner.actor.parameters()]), stats

    warm, stats = actor_after_one_update(1, False)
    assert torch.equal(warm, actor_after_one_update(1, True)[0]) and "bc_log_prob" in stats
    plain, stats = actor_after_one_update(0, False)
    assert not torch.equal(plain, actor_after_one_update(0, True)[0]) and "bc_log_prob" not in stats

    # the warm-up ends after bc_steps updates, and while it lasts the data's log-likelihood rises
    learner = CQL(3, 1, [-2.0], [2.0], CQLConfig(hidden_sizes=(16,), bc_steps=30), seed=0)
    trace = [learner.update(batch)["bc_log_prob"] for _ in range(30)]
    assert sum(trace[-5:]) / 5 > sum(trace[:5]) / 5 + 0.05, trace
    assert "bc_log_prob" not in learner.update(batch)
