"""The family report: its table agrees with the closed form where one exists, and its files are written."""
import math

import pytest

import pprl
from pprl.diagnostics.report import family_report
from tests.conftest import linear_system

pytestmark = [pytest.mark.usefixtures("single_thread"), pytest.mark.filterwarnings("ignore::UserWarning")]
LINEAR = {"type": "linear_gaussian", "prior": {"weight_scale": 1.0}, "likelihood": {"noise_scale": 0.1}}


def test_report_on_the_linear_model_ranks_the_exact_family_next_to_nuts(tmp_path):
    data = linear_system(400, seed=8)
    train, test = data[:40], data[40:]
    nuts = {"family": "nuts", "options": {"num_samples": 300, "num_warmup": 300, "num_chains": 2}}
    table = family_report(LINEAR, ["laplace", "map"], train, test, nuts=nuts, steps=1500, num_samples=400,
                          out_dir=tmp_path, progress=False)
    assert list(table.index) == ["laplace", "map", "nuts"]
    # Laplace is the exact posterior of a linear-Gaussian model: as close to NUTS as Monte Carlo allows
    assert table.loc["laplace", "w2_to_nuts"] < 0.3 * table.loc["map", "w2_to_nuts"], table["w2_to_nuts"]
    assert abs(table.loc["laplace", "coverage_90"] - 0.9) < 0.05
    assert table.loc["map", "coverage_90"] < table.loc["laplace", "coverage_90"]
    assert table.loc["laplace", "pareto_k"] < 0.5 and math.isnan(table.loc["map", "pareto_k"])
    assert math.isnan(table.loc["map", "elpd_loo"])  # a point mass has no leave-one-out
    assert abs(table.loc["laplace", "elpd_loo"] - table.loc["nuts", "elpd_loo"]) < 2 * table.loc["nuts", "elpd_loo_se"]
    for name in ("report.md", "report.csv", "comparison.png", "loo_compare.png", "calibration.png", "intervals.png",
                 "laplace.nc", "map.nc", "nuts.nc"):
        assert (tmp_path / name).is_file(), name
    text = (tmp_path / "report.md").read_text()
    assert "| laplace |" in text and "reference: `nuts`" in text
