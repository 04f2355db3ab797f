"""The auxiliary-loss seam: a term defined here (an L2 penalty on the policy's features) joins the
learner's loss on its minibatches. Weight 0 leaves every number as it was; a positive weight
moves the parameters, and its stats reach metrics.csv; the entry round-trips through the spec."""
from dataclasses import dataclass
from typing import ClassVar

import pandas as pd
import pytest
import torch
import yaml

import pprl
from pprl.rl.auxiliary import AUXILIARY, AuxiliarySpec
from pprl.rl.learners import PPO, PPOConfig
from pprl.spec import SpecError
from tests.rl.conftest import TINY

pytestmark = pytest.mark.usefixtures("single_thread")


@dataclass(frozen=True)
class FeatureL2Spec(AuxiliarySpec):
    type: ClassVar[str] = "feature_l2"


class FeatureL2:
    """weight · mean ‖φ(s)‖², φ the learner's features."""

    spec_class = FeatureL2Spec

    def __init__(self, spec, learner, *, seed=0, device="cpu"):
        self.spec, self.calls = spec, 0

    def loss(self, minibatch, learner):
        self.calls += 1
        penalty = learner.features(minibatch.obs).square().mean()
        assert len(minibatch.index) == len(minibatch.obs) == len(minibatch.actions)
        return self.spec.weight * penalty, {"feature_l2": float(penalty.detach())}

    def step(self):
        pass

    def state_dict(self):
        return {"calls": self.calls}

    def load_state_dict(self, state):
        self.calls = state["calls"]


def _update(weight):
    ppo = PPO("Pendulum-v1", PPOConfig(num_envs=2, num_steps=16, num_minibatches=2, update_epochs=2), seed=0)
    aux = [] if weight is None else [FeatureL2(FeatureL2Spec(weight=weight), ppo)]
    stats = [ppo.update(ppo.collect(), aux_losses=aux) for _ in range(2)]
    params = [p.detach().clone() for p in ppo.agent.parameters()]
    ppo.close()
    return stats, params, aux


def test_weight_zero_changes_nothing_and_a_positive_weight_moves_the_parameters():
    stats, params, _ = _update(None)
    stats0, params0, (aux0,) = _update(0.0)
    assert aux0.calls == 2 * 2 * 2  # updates × epochs × minibatches
    assert all(torch.equal(a, b) for a, b in zip(params, params0))
    assert [{k: v for k, v in s.items() if k != "feature_l2"} for s in stats0] == stats
    assert all(s["feature_l2"] > 0 for s in stats0)
    stats1, params1, _ = _update(1.0)
    assert not all(torch.equal(a, b) for a, b in zip(params, params1))
    assert stats1[1]["feature_l2"] < stats0[1]["feature_l2"]  # the penalty shrinks the features


def test_auxiliary_through_the_experiment_spec(tmp_path, monkeypatch):
    monkeypatch.setitem(AUXILIARY, "feature_l2", FeatureL2)
    base = {**TINY, "intrinsic": {"type": "none"}, "learner": {**TINY["learner"], "total_steps": 128}}
    runs = {}
    for name, aux in (("none", None), ("zero", [{"type": "feature_l2", "weight": 0.0}]),
                      ("one", [{"type": "feature_l2", "weight": 1.0}])):
        spec = base if aux is None else {**base, "auxiliary": aux}
        pprl.train(spec, seed=0, out_dir=tmp_path / name, progress=False)
        runs[name] = pd.read_csv(tmp_path / name / "metrics.csv").drop(columns="wall_s")
    pd.testing.assert_frame_equal(runs["zero"].drop(columns="feature_l2"), runs["none"])
    assert runs["one"]["feature_l2"].gt(0).all()
    assert not runs["one"]["policy_loss"].equals(runs["none"]["policy_loss"])
    saved = yaml.safe_load((tmp_path / "one" / "spec.yaml").read_text())
    assert saved["auxiliary"] == [{"type": "feature_l2", "weight": 1.0}]
    state = torch.load(tmp_path / "one" / "checkpoint.pt", weights_only=True)
    assert state["auxiliary"] == [{"calls": 2 * 2}]  # one update of 2 epochs × 2 minibatches
    pprl.train(None, out_dir=tmp_path / "one", resume=True, total_steps=256, progress=False)
    assert torch.load(tmp_path / "one" / "checkpoint.pt", weights_only=True)["auxiliary"] == [{"calls": 8}]
    with pytest.raises(SpecError, match=r"field 'auxiliary\[0\]\.weight' must be >= 0"):
        pprl.load_experiment({**base, "auxiliary": [{"type": "feature_l2", "weight": -1.0}]})
    with pytest.raises(SpecError, match=r"unknown field 'auxiliary\[0\]\.scale'; allowed: type, weight"):
        pprl.load_experiment({**base, "auxiliary": [{"type": "feature_l2", "scale": 1.0}]})
