"""Sweeps: the grid (seeds, settings, overrides validated first), a 2-seed × 2-setting local sweep that
writes 4 runs and the aggregate, resuming (finished trials skipped, an interrupted one continued),
the IQM against scipy, the CLI, and the Ray backend on a local 2-CPU instance when Ray is installed."""
import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import trim_mean

from pprl.cli import main
from pprl.spec import SpecError
from pprl.sweeps import iqm, iqm_ci, make_trials, parse_seeds, parse_setting, sweep

TINY_PPO = {"name": "tiny_ppo", "env": "CartPole-v1", "intrinsic": {"type": "none"},
            "learner": {"num_envs": 2, "num_steps": 32, "total_steps": 128, "num_minibatches": 2, "update_epochs": 1}}


def test_seeds_settings_and_the_grid(tmp_path):
    assert parse_seeds("0-3") == [0, 1, 2, 3] and parse_seeds("5,1,5") == [5, 1] and parse_seeds("0-1,7") == [0, 1, 7]
    for bad in ("3-1", "a", "-1", ""):
        with pytest.raises(ValueError, match="seeds must look like"):
            parse_seeds(bad)
    assert parse_setting("learner.learning_rate=1e-3,0.01") == ("learner.learning_rate", [1e-3, 0.01])
    assert parse_setting("learner.norm_obs=true,false")[1] == [True, False]
    with pytest.raises(ValueError, match="--set must look like section.field=v1,v2"):
        parse_setting("eta")
    trials = make_trials(TINY_PPO, [0, 1], [("learner.learning_rate", [1e-3, 3e-4]), ("learner.gamma", [0.9])],
                         tmp_path)
    assert len(trials) == 4 and {t.seed for t in trials} == {0, 1}
    assert trials[0].spec["learner"]["learning_rate"] == 1e-3 and trials[0].spec["learner"]["gamma"] == 0.9
    assert trials[0].run_dir == tmp_path / "learner.learning_rate=0.001,learner.gamma=0.9" / "seed0"
    assert TINY_PPO["learner"].get("gamma") is None  # the base spec is not modified
    with pytest.raises(SpecError, match=r"--set learner.gamma=2: .*field 'learner.gamma'"):
        make_trials(TINY_PPO, [0], [("learner.gamma", [2])], tmp_path)
    with pytest.raises(SpecError, match="--set intrinsic.model.depth: the experiment has no mapping 'model'"):
        make_trials(TINY_PPO, [0], [("intrinsic.model.depth", [2])], tmp_path)


def test_iqm_is_scipys_trimmed_mean_and_its_interval_brackets_it():
    values = np.random.default_rng(0).normal(size=9)
    assert iqm(values) == pytest.approx(trim_mean(values, 0.25))
    mid, lo, hi = iqm_ci(values)
    assert lo <= mid <= hi and iqm_ci([1.0, 1.0, 1.0]) == (1.0, 1.0, 1.0)


def test_local_sweep_writes_every_run_and_the_aggregate_and_resumes(tmp_path, capsys):
    settings = [("learner.learning_rate", [1e-3, 3e-4])]
    table = sweep(TINY_PPO, [0, 1], settings, tmp_path / "sw", jobs=2)
    assert len(table) == 4 and sorted(table["seed"]) == [0, 0, 1, 1]
    for run_dir in table["run_dir"]:
        assert (tmp_path / run_dir.split(str(tmp_path) + "/")[-1] / "summary.json").is_file()
    agg = pd.read_csv(tmp_path / "sw" / "sweep.csv")
    assert list(agg["setting"]) == ["learner.learning_rate=0.001", "learner.learning_rate=0.0003"]
    assert (agg["seeds"] == 2).all() and {"final_return", "final_return_lo", "final_return_hi"} <= set(agg.columns)
    assert (tmp_path / "sw" / "sweep.md").read_text().count("| learner.learning_rate=") == 2
    assert (tmp_path / "sw" / "sweep.png").is_file()
    # same seed, same setting: the same run as pprl train would give
    one = json.loads((tmp_path / "sw" / "learner.learning_rate=0.001" / "seed0" / "summary.json").read_text())
    # resume: a finished trial is skipped (its files untouched), an interrupted one (checkpoint only) continues
    finished = tmp_path / "sw" / "learner.learning_rate=0.001" / "seed0"
    stamp = (finished / "metrics.csv").stat().st_mtime_ns
    interrupted = tmp_path / "sw" / "learner.learning_rate=0.0003" / "seed1"
    (interrupted / "summary.json").unlink()
    before = pd.read_csv(interrupted / "metrics.csv")
    again = sweep(TINY_PPO, [0, 1], settings, tmp_path / "sw", jobs=1, total_steps=192)
    assert (finished / "metrics.csv").stat().st_mtime_ns == stamp
    after = pd.read_csv(interrupted / "metrics.csv")
    assert len(after) == len(before) + 1  # continued to 192 steps from its checkpoint at 128
    assert json.loads((finished / "summary.json").read_text()) == one and len(again) == 4
    # the CLI
    assert main(["sweep", "tiny.yaml", "-o", str(tmp_path / "x")]) == 2
    assert "tiny.yaml" in capsys.readouterr().err
    spec = tmp_path / "tiny.yaml"
    import yaml

    spec.write_text(yaml.safe_dump(TINY_PPO))
    assert main(["sweep", str(spec), "--seeds", "0-1", "--set", "learner.gamma=0.9", "-o", str(tmp_path / "cli")]) == 0
    out = capsys.readouterr().out
    assert "| learner.gamma=0.9 | 2 |" in out and "(2 runs)" in out
    assert main(["sweep", str(spec), "--seeds", "2-1", "-o", str(tmp_path / "cli")]) == 2
    assert "seeds must look like" in capsys.readouterr().err


def test_ray_backend_on_a_local_instance(tmp_path):
    pytest.importorskip("ray.tune")
    table = sweep(TINY_PPO, [0, 1], [("learner.gamma", [0.9])], tmp_path / "ray", backend="ray", jobs=2)
    assert len(table) == 2 and (tmp_path / "ray" / "sweep.csv").is_file()
    local = sweep(TINY_PPO, [0, 1], [("learner.gamma", [0.9])], tmp_path / "local", jobs=2)
    assert list(table["final_return"]) == list(local["final_return"])  # same trials, same numbers
