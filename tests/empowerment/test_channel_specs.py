"""Channels declared in YAML, and the ``pprl empowerment`` command."""
import json
import math

import pandas as pd
import pytest

from pprl.cli import main
from pprl.empowerment import GridWorld, LinearGaussianChannel, exact, load_channel
from pprl.spec import SpecError, load_spec


def test_shipped_channels_load_by_name_from_anywhere(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    grid = load_channel("open_grid")
    assert isinstance(grid, GridWorld) and len(grid.cells) == 25 and grid.slip == 0
    room = load_channel("walled_room")
    assert room.slip == 0.1 and len(room.cells) == 44
    lg = load_channel("linear_gaussian")
    assert isinstance(lg, LinearGaussianChannel) and lg.power == 1.0
    assert isinstance(load_channel({"channel": "gridworld", "layout": ["..", ".."]}), GridWorld)
    path = tmp_path / "g.yaml"
    path.write_text("channel: gridworld\nlayout: ['...']\n")
    assert isinstance(load_spec(path), GridWorld)  # pprl validate reads channel specs too


@pytest.mark.parametrize("data, fragment", [
    ({"layout": ["."]}, "missing field 'channel'; allowed: gridworld, linear_gaussian"),
    ({"channel": "maze"}, "field 'channel': unknown value 'maze'"),
    ({"channel": "gridworld", "layout": "....."}, "field 'layout' must be a list of strings"),
    ({"channel": "gridworld", "layout": ["..", "..."]}, "field 'layout'"),
    ({"channel": "gridworld", "layout": ["."], "slip": 1.5}, "field 'slip' must be in [0, 1]"),
    ({"channel": "gridworld", "layout": ["."], "A": 1}, "unknown field 'A'"),
    ({"channel": "linear_gaussian", "A": [[1.0]]}, "field 'B' is required"),
    ({"channel": "linear_gaussian", "A": [[1.0, 0], [0, 1]], "B": [[1.0]]}, "fields 'A', 'B'"),
])
def test_bad_channel_specs_name_the_field(tmp_path, data, fragment):
    import yaml

    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(SpecError, match=r"bad\.yaml") as err:
        load_channel(path)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_empowerment_command_writes_the_map_and_the_per_cell_table(tmp_path, capsys):
    out = tmp_path / "emp"
    assert main(["empowerment", "open_grid", "--horizon", "1", "--fit-steps", "150", "-o", str(out), "--quiet"]) == 0
    cells = pd.read_csv(out / "cells.csv")
    summary = json.loads((out / "summary.json").read_text())
    truth = exact(load_channel("open_grid"), 1).capacity
    assert len(cells) == 25 and cells["exact"].tolist() == pytest.approx(truth.tolist())
    assert summary["exact_max"] == pytest.approx(math.log(5)) and summary["exact_min"] == pytest.approx(math.log(3))
    assert summary["mean_abs_error"] < 0.05 and (out / "empowerment.png").is_file()
    assert "K = 1" in capsys.readouterr().out
    assert main(["empowerment", "linear_gaussian", "-o", str(tmp_path / "x")]) == 2
    assert "gridworld channels" in capsys.readouterr().err
    assert main(["validate", str(tmp_path / "nope.yaml")]) == 2


@pytest.fixture(scope="module")
def saved_posterior(tmp_path_factory):
    """A linear-Gaussian dynamics posterior of a 2-D system with one bounded action, saved."""
    import torch

    import pprl
    from pprl.data import Transitions

    truth = LinearGaussianChannel(torch.tensor([[0.9, 0.2], [0.0, 0.8]]), torch.tensor([[0.0], [1.0]]), 0.1)
    g = torch.Generator().manual_seed(0)
    s, a = 2 * torch.randn(4000, 2, generator=g), torch.rand(4000, 1, generator=g) * 2 - 1
    data = Transitions(obs=s, act=a, next_obs=truth.sample(s, a, generator=g))
    posterior = pprl.fit("linear_gaussian", "mean_field", data, steps=1500, seed=0, progress=False)
    folder = tmp_path_factory.mktemp("learned")
    posterior.save(folder / "posterior.pt")
    return folder, truth


def test_continuous_channels_load_from_yaml(saved_posterior):
    import yaml

    from pprl.empowerment.continuous import PendulumChannel, PosteriorChannel

    pend = load_channel("pendulum")
    assert isinstance(pend, PendulumChannel) and pend.repeat == 5 and pend.noise == "final"
    assert pend.power_per_action is None
    folder, _ = saved_posterior
    path = folder / "learned.yaml"
    path.write_text(yaml.safe_dump({"channel": "learned", "posterior": "posterior.pt", "action_low": [-1.0],
                                    "action_high": [1.0], "noise": "step", "power": 0.5}))
    learned = load_channel(path)  # the posterior's path is relative to the YAML file
    assert isinstance(learned, PosteriorChannel) and learned.noise == "step" and learned.power_per_action == 0.5
    for change, fragment in (({"posterior": "missing.pt"}, "field 'posterior'"),
                             ({"action_low": [-1.0, -1.0]}, "channel 'learned'"),
                             ({"theta": "median"}, "field 'theta'"), ({"noise_std": 0.0}, "field 'noise_std'"),
                             ({"noise_std": 0.1, "noise_scale": 2.0}, "noise_scale must stay 1")):
        bad = folder / "bad.yaml"
        bad.write_text(yaml.safe_dump({**yaml.safe_load(path.read_text()), **change}))
        with pytest.raises(SpecError, match=r"bad\.yaml") as err:
            load_channel(bad)
        assert fragment in str(err.value) and "\n" not in str(err.value)


def test_empowerment_command_on_continuous_channels(tmp_path, capsys, saved_posterior):
    import numpy as np
    import torch
    import yaml

    from pprl.empowerment import linear_gaussian_empowerment

    out = tmp_path / "pend"
    assert main(["empowerment", "pendulum", "--horizon", "2", "--fit-steps", "20", "--num-samples", "16", "-o",
                 str(out), "--quiet"]) == 0
    states = pd.read_csv(out / "states.csv")
    summary = json.loads((out / "summary.json").read_text())
    assert len(states) == 41 * 41 and np.isfinite(states[["linearised", "variational"]].to_numpy()).all()
    cos, sin, _ = summary["argmax_linearised"]
    assert cos > 0.9  # the most empowered grid state is near upright
    # a learned linear-Gaussian channel with process noise: the linearised estimate is its water-filling value
    folder, truth = saved_posterior
    spec = folder / "learned.yaml"
    spec.write_text(yaml.safe_dump({"channel": "learned", "posterior": "posterior.pt", "action_low": [-1.0],
                                    "action_high": [1.0], "noise": "step"}))
    np.savez(tmp_path / "states.npz", obs=np.random.default_rng(0).normal(size=(20, 2)).astype(np.float32))
    out = tmp_path / "learned"
    assert main(["empowerment", str(spec), "--horizon", "2", "--states", str(tmp_path / "states.npz"),
                 "--fit-steps", "20", "--num-samples", "16", "-o", str(out), "--quiet"]) == 0
    table = pd.read_csv(out / "states.csv")
    exact = linear_gaussian_empowerment(truth, 2, 2 * 4 / 12)
    assert table["linearised"].to_numpy() == pytest.approx(np.full(20, exact), rel=0.05)
    # linear dynamics: the tangent is the same at every nominal action, so --nominal-points changes nothing
    assert main(["empowerment", str(spec), "--horizon", "2", "--states", str(tmp_path / "states.npz"),
                 "--nominal-points", "3", "--fit-steps", "1", "--num-samples", "4", "-o", str(tmp_path / "n3"),
                 "--quiet"]) == 0
    assert pd.read_csv(tmp_path / "n3" / "states.csv")["linearised"].to_numpy() == pytest.approx(
        table["linearised"].to_numpy(), rel=1e-5)
    assert json.loads((tmp_path / "n3" / "summary.json").read_text())["nominal_points"] == 3
    # declared noise on a learned channel: the truth's capacity at that σ, not at the fitted one
    spec.write_text(yaml.safe_dump({"channel": "learned", "posterior": "posterior.pt", "action_low": [-1.0],
                                    "action_high": [1.0], "noise": "step", "noise_std": 0.5}))
    assert main(["empowerment", str(spec), "--horizon", "2", "--states", str(tmp_path / "states.npz"),
                 "--fit-steps", "1", "--num-samples", "4", "-o", str(tmp_path / "declared"), "--quiet"]) == 0
    declared = linear_gaussian_empowerment(type(truth)(truth.A, truth.B, 0.5), 2, 2 * 4 / 12)
    assert pd.read_csv(tmp_path / "declared" / "states.csv")["linearised"].to_numpy() == pytest.approx(
        np.full(20, declared), rel=0.05)
    capsys.readouterr()
    assert main(["empowerment", str(spec), "-o", str(tmp_path / "x")]) == 2
    assert "needs --states" in capsys.readouterr().err
    np.savez(tmp_path / "bad.npz", x=np.zeros((3, 2)))
    assert main(["empowerment", str(spec), "--states", str(tmp_path / "bad.npz"), "-o", str(tmp_path / "y")]) == 2
    assert "no 'obs' array" in capsys.readouterr().err
    assert main(["empowerment", "open_grid", "--states", str(tmp_path / "states.npz"), "-o", str(tmp_path / "z")]) == 2
    assert "--states applies to continuous channels" in capsys.readouterr().err
