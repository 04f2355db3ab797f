"""Experiment specs, the VIME intrinsic module and the `pprl train` driver (small budgets)."""
import json

import pandas as pd
import pytest
import torch

import pprl
from pprl.cli import main
from pprl.rl.experiment import load_experiment
from pprl.rl.intrinsic import VIME, ReplayPool, VIMEHealthWarning
from pprl.spec import SpecError
from tests.conftest import linear_system

TINY = {
    "name": "tiny_vime",
    "env": "pprl/SparseMountainCar-v0",
    "learner": {"num_envs": 2, "num_steps": 64, "total_steps": 256, "num_minibatches": 2, "update_epochs": 2},
    "intrinsic": {"type": "vime", "model": "bnn_dynamics", "family": "mean_field", "eta": 0.1,
                  "fit_steps": 5, "initial_fit_steps": 20, "num_samples": 2},
}


def with_intrinsic(**changes):
    return {**TINY, "intrinsic": {**TINY["intrinsic"], **changes}}


@pytest.mark.parametrize("spec, message", [
    (with_intrinsic(temperature=1.0), "unknown field 'intrinsic.temperature'"),
    (with_intrinsic(family="full_rank"), "'second_order' needs family mean_field"),
    (with_intrinsic(family="map", method="update"), "needs a Gaussian posterior"),
    (with_intrinsic(model="no_such_model"), "no model spec 'no_such_model'"),
    (with_intrinsic(eta=-1.0), "'intrinsic.eta' must be >= 0"),
    (with_intrinsic(eta_schedule="cosine"), "allowed: constant, linear"),
    (with_intrinsic(model="bnn_dynamics_student_t", method="update", solver="linearized"),
     "'linearized' needs a Gaussian likelihood"),
    ({**TINY, "learner": {"num_envs": 2, "batch": 3}}, "learner.batch"),
    ({k: v for k, v in TINY.items() if k != "env"}, "field 'env' is required"),
])
def test_bad_experiment_specs_name_the_field(spec, message):
    with pytest.raises(SpecError, match=message):
        load_experiment(spec)


def test_bundled_examples_parse_and_round_trip():
    from pathlib import Path

    examples = sorted(Path("examples").glob("*.yaml"))
    assert len(examples) >= 5
    for path in examples:
        spec = load_experiment(path)
        assert load_experiment(spec.to_dict()).to_dict() == spec.to_dict()


def test_eta_schedule():
    spec = load_experiment(with_intrinsic(eta=0.2, eta_schedule="linear")).intrinsic
    assert spec.eta_at(0, 100) == 0.2 and spec.eta_at(50, 100) == pytest.approx(0.1) and spec.eta_at(100, 100) == 0


def test_replay_pool_is_fifo():
    pool = ReplayPool(5)
    data = linear_system(8)
    pool.add(data[:3])
    pool.add(data[3:8])
    kept = pool.contents()
    assert len(kept) == 5
    assert {tuple(r) for r in kept.obs.tolist()} == {tuple(r) for r in data[3:8].obs.tolist()}


def test_vime_rewards_are_median_normalised_and_refit_on_the_pool():
    spec = load_experiment(with_intrinsic(median_window=2)).intrinsic
    data = pprl.collect("pprl/SparseMountainCar-v0", 1024, seed=0)
    vime = VIME(spec, data.obs_dim, data.act_dim, seed=0)
    first = vime.reward(data[:512])
    assert first.shape == (512,) and torch.isfinite(first).all()
    assert first.median() == pytest.approx(1.0, rel=1e-5)  # divided by its own median
    posterior = vime.info_gain.posterior
    stats = vime.update(data[:512])
    assert vime.pool.size == 512 and vime.info_gain.posterior is not posterior
    assert torch.isfinite(torch.tensor(stats["elbo_per_transition"]))
    raw = vime.info_gain(data[512:]).float()
    second = vime.reward(data[512:])
    m1, m2 = vime.medians  # the last k = 2 batch medians; their mean is the divisor
    torch.testing.assert_close(second, raw / ((m1 + m2) / 2))


def test_train_writes_outputs_and_resumes(tmp_path):
    out = tmp_path / "run"
    summary = pprl.train(TINY, seed=0, out_dir=out, progress=False)
    for name in ("metrics.csv", "episodes.csv", "learning_curve.png", "checkpoint.pt", "summary.json", "spec.yaml"):
        assert (out / name).is_file(), name
    metrics = pd.read_csv(out / "metrics.csv")
    assert list(metrics["env_steps"]) == [128, 256]
    assert metrics["info_gain"].gt(0).all()
    assert json.loads((out / "summary.json").read_text())["env_steps"] == summary["env_steps"] == 256
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["ppo"]["global_step"] == 256 and state["intrinsic"]["pool"]["size"] == 256

    with pytest.raises(FileExistsError):
        pprl.train(TINY, seed=0, out_dir=out, progress=False)
    resumed = pprl.train(None, out_dir=out, resume=True, total_steps=512, progress=False)
    metrics = pd.read_csv(out / "metrics.csv")
    assert list(metrics["env_steps"]) == [128, 256, 384, 512] and resumed["env_steps"] == 512
    assert list(metrics["iteration"]) == [1, 2, 3, 4]


def test_same_seed_same_run(tmp_path):
    spec = {**TINY, "learner": {**TINY["learner"], "total_steps": 128}}
    a = pprl.train(spec, seed=3, out_dir=tmp_path / "a", progress=False)
    b = pprl.train(spec, seed=3, out_dir=tmp_path / "b", progress=False)
    ma, mb = pd.read_csv(tmp_path / "a" / "metrics.csv"), pd.read_csv(tmp_path / "b" / "metrics.csv")
    cols = ["info_gain", "policy_loss", "value_loss", "intrinsic_mean"]
    pd.testing.assert_frame_equal(ma[cols], mb[cols])
    assert a["episodes"] == b["episodes"]
    pprl.train(spec, seed=4, out_dir=tmp_path / "c", progress=False)  # and another seed differs
    mc = pd.read_csv(tmp_path / "c" / "metrics.csv")
    assert not ma[cols].equals(mc[cols])


def test_cli_train_and_errors(tmp_path, capsys):
    spec_path = tmp_path / "tiny.yaml"
    import yaml
    spec_path.write_text(yaml.safe_dump({**TINY, "intrinsic": {"type": "none"}}))
    assert main(["train", str(spec_path), "--seed", "1", "-o", str(tmp_path / "run"), "--quiet"]) == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["seed"] == 1 and summary["env_steps"] == 256 and summary["intrinsic"] == "none"
    assert f"{summary['episodes']} episodes" in capsys.readouterr().out  # the printed summary is the run's
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(with_intrinsic(method="exact")))
    assert main(["train", str(bad), "-o", str(tmp_path / "bad_run"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "intrinsic.method" in err[0]
    assert not (tmp_path / "bad_run").exists()  # nothing written for a bad spec
    assert main(["train", "--resume", str(tmp_path / "nowhere"), "--quiet"]) == 2
    assert "no checkpoint.pt" in capsys.readouterr().err


def test_vime_health_warning_is_raised_once_and_summary_records_health(tmp_path):
    spec = with_intrinsic(warn_info_gain=1e-9)  # every batch is "too informative"
    with pytest.warns(VIMEHealthWarning) as record:
        summary = pprl.train(spec, seed=0, out_dir=tmp_path / "run", progress=False)
    assert sum("mean information gain" in str(w.message) for w in record) == 1
    metrics = pd.read_csv(tmp_path / "run" / "metrics.csv")
    assert summary["final_info_gain"] == pytest.approx(metrics["info_gain"].iloc[-1])
    assert summary["final_elbo_per_transition"] == pytest.approx(metrics["elbo_per_transition"].iloc[-1])


def test_peak_bonus_scale_divides_by_the_largest_recent_median():
    spec = load_experiment(with_intrinsic(median_window=1, bonus_scale="peak", fit_steps=0)).intrinsic
    data = pprl.collect("pprl/SparseMountainCar-v0", 1536, seed=0)
    vime = VIME(spec, data.obs_dim, data.act_dim, seed=0)
    medians, rewards = [], []
    for part in (data[:512], data[512:1024], data[1024:]):
        raw = vime.info_gain(part).float() if vime.info_gain is not None else None
        rewards.append(vime.reward(part))
        raw = vime.info_gain(part).float() if raw is None else raw
        medians.append(float(raw.median()))
        torch.testing.assert_close(rewards[-1], raw / max(medians))
    with pytest.raises(SpecError, match="allowed: recent, peak"):
        load_experiment(with_intrinsic(bonus_scale="max"))


def test_cli_prints_a_health_warning_as_one_line(tmp_path, capsys):
    import yaml

    spec_path = tmp_path / "warn.yaml"
    spec_path.write_text(yaml.safe_dump(with_intrinsic(warn_info_gain=1e-9)))
    assert main(["train", str(spec_path), "-o", str(tmp_path / "run"), "--quiet"]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("pprl: warning: VIME: mean information gain")
