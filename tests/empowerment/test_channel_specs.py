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
