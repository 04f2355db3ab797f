"""Experiment specs: every error is one SpecError naming the file and the field; plug-ins are
chosen by ``type`` from their registries; the bundled examples round-trip through to_dict."""
from pathlib import Path

import pytest

from pprl.rl.experiment import load_experiment, parse_experiment
from pprl.rl.intrinsic import NoBonusSpec, VIMESpec
from pprl.rl.learners import PPOConfig
from pprl.spec import SpecError
from tests.rl.conftest import TINY, with_intrinsic


@pytest.mark.parametrize("spec, message", [
    (with_intrinsic(temperature=1.0), "unknown field 'intrinsic.temperature'"),
    (with_intrinsic(family="full_rank"), r"'second_order' is not available for the 'full_rank' family "
                                         r"\(families with it: mean_field\)"),
    (with_intrinsic(family="map", method="update"), "undefined for the 'map' family"),
    (with_intrinsic(family="map"), "undefined for the 'map' family"),  # one error, not a chain of hints
    (with_intrinsic(family="flow", method="update", solver="linearized"), "allowed: gradient"),
    (with_intrinsic(model="no_such_model"), "field 'intrinsic.model': no model spec 'no_such_model'"),
    (with_intrinsic(family="no_such_family"), "field 'intrinsic.family': no inference spec 'no_such_family'"),
    (with_intrinsic(eta=-1.0), "'intrinsic.eta' must be >= 0"),
    (with_intrinsic(eta=float("inf")), "'intrinsic.eta' must be finite"),
    (with_intrinsic(eta_schedule="cosine"), "allowed: constant, linear"),
    (with_intrinsic(bonus_scale="max"), "allowed: recent, peak"),
    (with_intrinsic(fit_steps=-1), "'intrinsic.fit_steps' must be >= 0"),
    (with_intrinsic(num_samples=0), "'intrinsic.num_samples' must be > 0"),
    (with_intrinsic(model="bnn_dynamics_student_t", method="update", solver="linearized"),
     "'linearized' needs a Gaussian likelihood"),
    ({**TINY, "intrinsic": {"type": "vime", "model": "bnn_dynamics", "eta": 0.1}},
     "field 'intrinsic.family' is required for intrinsic.type 'vime'"),
    ({**TINY, "intrinsic": {"type": "none", "eta": 0.1}}, "field 'intrinsic.eta' needs intrinsic.type 'vime'"),
    ({**TINY, "intrinsic": "vime"}, "field 'intrinsic' must be a mapping"),
    ({**TINY, "learner": {"num_envs": 2, "batch": 3}}, "learner.batch"),
    ({**TINY, "learner": [2]}, "field 'learner' must be a mapping"),
    ({k: v for k, v in TINY.items() if k != "env"}, "field 'env' is required"),
    ({**TINY, "auxiliary": {"type": "driml"}}, "field 'auxiliary' must be a list"),
    ({**TINY, "auxiliary": [{"weight": 1.0}]}, "field 'auxiliary\\[0\\].type' is required"),
    ({**TINY, "auxiliary": [{"type": "cpc"}]}, "field 'auxiliary\\[0\\].type': unknown value 'cpc'; allowed: driml"),
])
def test_bad_experiment_specs_name_the_field(spec, message):
    with pytest.raises(SpecError, match=message) as err:
        load_experiment(spec)
    assert err.value.args[0].startswith("<dict>: ") and "\n" not in str(err.value)


@pytest.mark.parametrize("block, names", [("learner", "ppo, sac"), ("intrinsic", "none, vime, empowerment")])
def test_unknown_type_lists_the_registered_ones(block, names):
    spec = {**TINY, block: {**TINY[block], "type": "dqn"}}
    with pytest.raises(SpecError, match=f"<dict>: field '{block}.type': unknown value 'dqn'; allowed: {names}$"):
        parse_experiment(spec)


def test_types_default_and_name_their_spec_classes():
    spec = load_experiment({k: v for k, v in TINY.items() if k != "intrinsic"})
    assert type(spec.learner) is PPOConfig and type(spec.intrinsic) is NoBonusSpec and spec.auxiliary == ()
    assert spec.intrinsic.eta_at(0, 10) == 0.0
    spec = load_experiment({**TINY, "learner": {**TINY["learner"], "type": "ppo"}})
    assert type(spec.learner) is PPOConfig and type(spec.intrinsic) is VIMESpec
    assert spec.to_dict()["learner"]["type"] == "ppo" and spec.to_dict()["intrinsic"]["type"] == "vime"


def test_bundled_examples_parse_and_round_trip():
    examples = sorted(Path("examples").glob("*.yaml"))
    assert len(examples) >= 5
    for path in examples:
        spec = load_experiment(path)
        assert load_experiment(spec.to_dict()).to_dict() == spec.to_dict()


def test_eta_schedule():
    spec = load_experiment(with_intrinsic(eta=0.2, eta_schedule="linear")).intrinsic
    assert spec.eta_at(0, 100) == 0.2 and spec.eta_at(50, 100) == pytest.approx(0.1) and spec.eta_at(100, 100) == 0


def test_vime_accepts_every_family_that_declares_an_information_gain():
    """The experiment spec and InfoGain read the same declaration (Family.info_gain): the flow
    family's gradient update is accepted here because InfoGain supports it."""
    from pprl.inference.families import FAMILIES

    for name, cls in FAMILIES.items():
        for method, solvers in cls.info_gain.items():
            for solver in solvers or ("gradient",):
                spec = parse_experiment(with_intrinsic(family=name, method=method, solver=solver))
                assert (spec.intrinsic.inference.family, spec.intrinsic.method) == (name, method)
