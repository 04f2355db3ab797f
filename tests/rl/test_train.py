"""The generic loop ``pprl.train``: outputs, resume, determinism, the CLI, and that any plug-in
registered from outside (here a count-based bonus defined in this file) trains and is recorded
without train.py naming it."""
import inspect
import json
from dataclasses import dataclass
from typing import ClassVar

import pandas as pd
import pytest
import torch
import yaml

import pprl
import pprl.rl.train
from pprl.cli import main
from pprl.rl.intrinsic import INTRINSICS, Health, IntrinsicSpec, VIMEHealthWarning
from pprl.rl.train import FORMAT
from pprl.spec import SpecError, _check_positive, _check_type
from tests.rl.conftest import TINY, with_intrinsic


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
    assert state["format"] == FORMAT and state["learner"]["global_step"] == 256
    assert state["intrinsic"]["pool"]["size"] == 256 and state["auxiliary"] == []

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


def test_cli_prints_a_health_warning_as_one_line(tmp_path, capsys):
    import yaml

    spec_path = tmp_path / "warn.yaml"
    spec_path.write_text(yaml.safe_dump(with_intrinsic(warn_info_gain=1e-9)))
    assert main(["train", str(spec_path), "-o", str(tmp_path / "run"), "--quiet"]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("pprl: warning: VIME: mean information gain")


def test_train_py_names_no_method():
    """The loop knows plug-ins only through their registries and protocols."""
    source = inspect.getsource(pprl.rl.train).lower()
    for name in ("ppo", "vime", "info_gain", "elbo", "ig="):
        assert name not in source, name


@dataclass(frozen=True)
class CountSpec(IntrinsicSpec):
    """``intrinsic: {type: count, eta: ..., cell: ...}``."""

    type: ClassVar[str] = "count"
    cell: float = 0.1  # width of a grid cell in observation space

    @classmethod
    def keys(cls):
        return (*super().keys(), "cell")

    @classmethod
    def from_dict(cls, data, src="<dict>", base=None):
        out = cls._common(data, src)
        if "cell" in data:
            out["cell"] = _check_positive(_check_type(data["cell"], float, "intrinsic.cell", src), "intrinsic.cell", src)
        return cls(**out)

    def to_dict(self):
        return {**super().to_dict(), "cell": self.cell}


class CountBonus:
    """A test-only count-based bonus: r_int = 1/√n(cell of s'), counts over every batch so far."""

    spec_class = CountSpec
    health = {"visited_cells": Health("visited cells", "cells", log=True)}

    def __init__(self, spec, obs_dim, act_dim, *, seed=0, device="cpu"):
        self.spec, self.counts, self.stats = spec, {}, {}

    def _cells(self, transitions):
        return [tuple(c) for c in torch.floor(transitions.next_obs / self.spec.cell).long().tolist()]

    def reward(self, transitions):
        cells = self._cells(transitions)
        seen = [self.counts.get(c, 0) + 1 for c in cells]
        self.stats = {"visited_cells": float(len(self.counts | dict.fromkeys(cells, 0)))}
        return torch.tensor(seen, dtype=torch.float32).rsqrt()

    def update(self, transitions):
        for c in self._cells(transitions):
            self.counts[c] = self.counts.get(c, 0) + 1
        return {"count_total": float(sum(self.counts.values()))}

    def state_dict(self):
        return {"cells": torch.tensor(list(self.counts), dtype=torch.long).reshape(len(self.counts), -1),
                "counts": torch.tensor(list(self.counts.values()), dtype=torch.long)}

    def load_state_dict(self, state):
        self.counts = dict(zip(map(tuple, state["cells"].tolist()), state["counts"].tolist()))


def test_a_bonus_registered_from_outside_trains_and_is_recorded(tmp_path, monkeypatch):
    monkeypatch.setitem(INTRINSICS, "count", CountBonus)
    spec = {**TINY, "intrinsic": {"type": "count", "eta": 0.5, "cell": 0.05}}
    out = tmp_path / "run"
    summary = pprl.train(spec, seed=0, out_dir=out, progress=False)
    metrics = pd.read_csv(out / "metrics.csv")
    assert {"visited_cells", "count_total"} <= set(metrics.columns) and "info_gain" not in metrics
    assert list(metrics["count_total"]) == [128, 256]
    assert metrics["intrinsic_mean"].between(0, 1).all() and (metrics["intrinsic_mean"] < 1).any()
    assert summary["intrinsic"] == "count"
    assert summary["final_visited_cells"] == metrics["visited_cells"].iloc[-1]
    assert json.loads((out / "summary.json").read_text())["final_visited_cells"] == summary["final_visited_cells"]
    assert yaml.safe_load((out / "spec.yaml").read_text())["intrinsic"] == {"type": "count", "eta": 0.5,
                                                                          "eta_schedule": "constant", "cell": 0.05}
    pprl.train(None, out_dir=out, resume=True, total_steps=384, progress=False)  # its state_dict resumes
    assert list(pd.read_csv(out / "metrics.csv")["count_total"]) == [128, 256, 384]
    with pytest.raises(SpecError, match="field 'intrinsic.model' needs intrinsic.type 'vime'"):
        pprl.load_experiment({**spec, "intrinsic": {**spec["intrinsic"], "model": "bnn_dynamics"}})
    with pytest.raises(SpecError, match="field 'intrinsic.cell' needs intrinsic.type 'count'"):
        pprl.load_experiment(with_intrinsic(cell=0.1))


def test_ctrl_c_finishes_the_iteration_so_the_checkpoint_is_consistent(tmp_path, monkeypatch):
    """A real SIGINT in the middle of an update: the iteration completes, then the run stops with a
    checkpoint whose learner, metrics and episodes are all at the same env step, and resuming it
    continues from there. The caller's SIGINT handler is back afterwards."""
    import os
    import signal

    from pprl.rl.learners.ppo import PPO

    real_update, calls = PPO.update, []

    def update_with_ctrl_c(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGINT)  # arrives mid-iteration, before this update runs
        return real_update(self, *args, **kwargs)

    monkeypatch.setattr(PPO, "update", update_with_ctrl_c)
    handler = signal.getsignal(signal.SIGINT)
    spec = {**TINY, "intrinsic": {"type": "none"}}
    with pytest.raises(KeyboardInterrupt):
        pprl.train(spec, seed=0, out_dir=tmp_path / "run", progress=False, total_steps=1024)
    assert signal.getsignal(signal.SIGINT) is handler
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert len(calls) == 2 and len(state["metrics"]) == 2  # the interrupted iteration was completed
    assert state["learner"]["global_step"] == state["metrics"][-1]["env_steps"]
    monkeypatch.setattr(PPO, "update", real_update)
    summary = pprl.train(None, out_dir=tmp_path / "run", resume=True, progress=False, total_steps=1024)
    assert summary["env_steps"] == 1024


def test_per_component_devices(tmp_path, capsys):
    """device={"learner": ..., "intrinsic": ...}: on one device the run is the single-device run; the
    CLI reads learner=D,intrinsic=D; a GPU placement runs only where CUDA is."""
    pprl.train(TINY, seed=0, out_dir=tmp_path / "one", progress=False)
    pprl.train(TINY, seed=0, out_dir=tmp_path / "split", progress=False, device={"learner": "cpu", "intrinsic": "cpu"})
    a, b = (pd.read_csv(tmp_path / d / "metrics.csv").drop(columns="wall_s") for d in ("one", "split"))
    pd.testing.assert_frame_equal(a, b)
    with pytest.raises(ValueError, match="device: unknown component 'critic'; allowed: learner, intrinsic"):
        pprl.train(TINY, seed=0, out_dir=tmp_path / "bad", progress=False, device={"critic": "cpu"})
    spec = tmp_path / "tiny.yaml"
    spec.write_text(yaml.safe_dump(TINY))
    assert main(["train", str(spec), "-o", str(tmp_path / "cli"), "--device", "learner=cpu,intrinsic=cpu",
                 "--quiet"]) == 0
    assert main(["train", str(spec), "-o", str(tmp_path / "cli2"), "--device", "learner=cpu,policy=cpu"]) == 2
    assert "give one device, or learner=DEVICE,intrinsic=DEVICE" in capsys.readouterr().err
    if torch.cuda.is_available():
        summary = pprl.train(TINY, seed=0, out_dir=tmp_path / "gpu", progress=False,
                             device={"learner": "cpu", "intrinsic": "cuda"})
        assert summary["env_steps"] == 256
