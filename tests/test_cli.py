"""Tests for the `pprl` command line: validate, collect, fit, compare (in-process and as a process)."""
import json
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import pprl
from pprl.cli import main

REPO = Path(__file__).resolve().parents[1]
BNN = str(REPO / "models" / "bnn_dynamics.yaml")
MAP = str(REPO / "inference" / "map.yaml")
SHIPPED = sorted(str(p) for p in [*(REPO / "models").glob("*.yaml"), *(REPO / "inference").glob("*.yaml")])
NUM_TRANSITIONS = 300


@pytest.fixture(autouse=True)
def _in_tmp_dir(tmp_path, monkeypatch):
    """Run every command from an empty directory so nothing lands in the repository."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    """300 Pendulum-v1 transitions written by `pprl collect`."""
    path = tmp_path_factory.mktemp("data") / "pendulum.npz"
    assert main(["collect", "Pendulum-v1", "--steps", str(NUM_TRANSITIONS), "--seed", "1", "-o", str(path)]) == 0
    return path


def _error_line(err: str, *fragments: str) -> str:
    """stderr must be exactly one `pprl: error:` line (no traceback) containing every fragment."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{err}"
    assert lines[0].startswith("pprl: error: ")
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    return lines[0]


def _write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


# ----------------------------------------------------------------------------- validate

def test_validate_shipped_specs(capsys):
    assert main(["validate", *SHIPPED]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    lines = out.strip().splitlines()
    assert len(lines) == len(SHIPPED) == 9
    for path, line in zip(SHIPPED, lines):
        assert line.startswith("ok ") and path in line
    assert "(model spec: bnn)" in out and "(inference spec: mean_field)" in out


def test_validate_malformed_spec(tmp_path, capsys):
    bad = _write(tmp_path / "bad.yaml", "family: mean-feild\n")
    assert main(["validate", bad]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    _error_line(err, bad, "field 'family'", "'mean-feild'", "mean_field, low_rank")


def test_validate_mixed_good_and_bad(tmp_path, capsys):
    bad = _write(tmp_path / "bad_model.yaml", "type: bnn\nactivation: sigmoid\n")
    assert main(["validate", BNN, bad, MAP]) == 2
    out, err = capsys.readouterr()
    assert [line.split()[:2] for line in out.strip().splitlines()] == [["ok", BNN], ["ok", MAP]]
    _error_line(err, bad, "field 'activation'", "relu, tanh")


def test_validate_as_a_process(tmp_path):
    """The real exit status and stderr of `python -m pprl.cli`."""
    ok = subprocess.run([sys.executable, "-m", "pprl.cli", "validate", *SHIPPED],
                        capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.count("ok ") == len(SHIPPED)

    bad = _write(tmp_path / "bad.yaml", "family: low_rank\noptions: {rnk: 3}\n")
    res = subprocess.run([sys.executable, "-m", "pprl.cli", "validate", bad],
                         capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert res.returncode == 2
    _error_line(res.stderr, bad, "'options.rnk'", "allowed: rank")


def test_no_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
    assert "usage: pprl" in capsys.readouterr().err


# ----------------------------------------------------------------------------- collect

def test_collect_writes_loadable_transitions(data_file, capsys):
    data = pprl.Transitions.load(data_file)
    assert len(data) == NUM_TRANSITIONS
    assert (data.obs_dim, data.act_dim) == (3, 1)
    assert data.meta["env_id"] == "Pendulum-v1" and data.meta["seed"] == 1


def test_collect_prints_summary(tmp_path, capsys):
    out_file = tmp_path / "few.npz"
    assert main(["collect", "Pendulum-v1", "--steps", "5", "-o", str(out_file)]) == 0
    out, err = capsys.readouterr()
    assert "wrote 5 transitions of Pendulum-v1" in out and str(out_file) in out
    assert len(pprl.Transitions.load(out_file)) == 5


def test_collect_unknown_environment(tmp_path, capsys):
    out_file = tmp_path / "x.npz"
    assert main(["collect", "NoSuchEnv-v0", "--steps", "10", "-o", str(out_file)]) == 2
    _error_line(capsys.readouterr().err, "unknown environment 'NoSuchEnv-v0'")
    assert not out_file.exists()


@pytest.mark.parametrize("steps", ["0", "-3", "ten"])
def test_collect_bad_steps_is_a_usage_error(tmp_path, capsys, steps):
    out_file = tmp_path / "x.npz"
    with pytest.raises(SystemExit) as info:
        main(["collect", "Pendulum-v1", "--steps", steps, "-o", str(out_file)])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "--steps" in err and "expected a positive integer" in err
    assert not out_file.exists()


# ----------------------------------------------------------------------------- fit

def test_fit_writes_posterior_and_metrics(data_file, tmp_path, capsys):
    out_dir = tmp_path / "fit_map"
    code = main(["fit", BNN, MAP, "--data", str(data_file), "-o", str(out_dir), "--steps", "50", "--quiet"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "map: ELBO" in out
    assert sorted(p.name for p in out_dir.iterdir()) == ["metrics.json", "posterior.pt"]  # no .tmp left

    post = pprl.load_posterior(out_dir / "posterior.pt")
    assert post.family == "map"
    assert len(post.elbo_trace) == 50
    assert (post.model.obs_dim, post.model.act_dim) == (3, 1)

    metrics = json.loads((out_dir / "metrics.json").read_text())
    assert {"elbo", "test_log_predictive", "wall_time_s"} <= set(metrics)
    assert metrics["steps"] == 50 and metrics["family"] == "map" and metrics["model"] == "bnn_dynamics"
    assert metrics["num_train"] + metrics["num_test"] == NUM_TRANSITIONS
    assert metrics["num_test"] == round(0.2 * NUM_TRANSITIONS)
    assert math.isfinite(metrics["elbo"]["final_mean"])
    assert math.isfinite(metrics["test_log_predictive"])
    assert metrics["wall_time_s"] > 0


def _assert_untouched(out_dir: Path) -> None:
    assert [p.name for p in out_dir.iterdir()] == ["keep.txt"]
    assert (out_dir / "keep.txt").read_text() == "precious\n"


@pytest.fixture
def existing_out(tmp_path) -> Path:
    out_dir = tmp_path / "existing"
    out_dir.mkdir()
    (out_dir / "keep.txt").write_text("precious\n")
    return out_dir


def test_fit_missing_data_file_touches_nothing(existing_out, tmp_path, capsys):
    missing = tmp_path / "no_such_data.npz"
    code = main(["fit", BNN, MAP, "--data", str(missing), "-o", str(existing_out), "--steps", "50", "--quiet"])
    assert code == 2
    _error_line(capsys.readouterr().err, str(missing))
    _assert_untouched(existing_out)


def test_fit_malformed_inference_spec_touches_nothing(data_file, existing_out, tmp_path, capsys):
    bad = _write(tmp_path / "bad.yaml", "family: map\nlr: fast\n")
    code = main(["fit", BNN, bad, "--data", str(data_file), "-o", str(existing_out), "--steps", "5", "--quiet"])
    assert code == 2
    _error_line(capsys.readouterr().err, bad, "field 'lr'")
    _assert_untouched(existing_out)


def test_fit_model_spec_given_as_inference(data_file, tmp_path, capsys):
    out_dir = tmp_path / "never"
    code = main(["fit", BNN, BNN, "--data", str(data_file), "-o", str(out_dir), "--quiet"])
    assert code == 2
    _error_line(capsys.readouterr().err, BNN, "expected an inference spec")
    assert not out_dir.exists()


# ----------------------------------------------------------------------------- compare

def test_compare_two_families(data_file, tmp_path, capsys):
    out_dir = tmp_path / "cmp"
    code = main(["compare", BNN, "map", "mean_field", "--data", str(data_file), "-o", str(out_dir),
                 "--steps", "50", "--quiet"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "map" in out and "mean_field" in out and "test_log_pred" in out

    table = pd.read_csv(out_dir / "comparison.csv", index_col="family")
    assert list(table.index) == ["map", "mean_field"]
    assert {"elbo", "test_log_pred", "wall_time_s"} <= set(table.columns)
    assert (table["steps"] == 50).all()
    assert table["test_log_pred"].notna().all()

    png = out_dir / "comparison.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for name in ("map", "mean_field"):
        assert pprl.load_posterior(out_dir / f"posterior_{name}.pt").family == name


def test_compare_with_one_malformed_spec_fits_nothing(data_file, tmp_path, capsys):
    bad = _write(tmp_path / "bad_flow.yaml", "family: flow\nelbo: analytic_kl\n")
    out_dir = tmp_path / "cmp_bad"
    code = main(["compare", BNN, "map", bad, "mean_field", "--data", str(data_file), "-o", str(out_dir),
                 "--steps", "50", "--quiet"])
    out, err = capsys.readouterr()
    assert code == 2
    _error_line(err, bad, "field 'elbo'")
    assert not out_dir.exists()
    assert not list(tmp_path.rglob("*.pt")) and not list(tmp_path.rglob("comparison.*"))


def test_compare_with_one_malformed_spec_leaves_existing_dir(data_file, existing_out, tmp_path, capsys):
    code = main(["compare", BNN, "map", "mean-feild", "--data", str(data_file), "-o", str(existing_out),
                 "--steps", "50", "--quiet"])
    assert code == 2
    _error_line(capsys.readouterr().err, "mean-feild", "allowed families")
    _assert_untouched(existing_out)


# ----------------------------------------------------------------------------- known bugs

def test_compare_diverging_fit_is_one_error_line(data_file, tmp_path, capsys):
    bad = _write(tmp_path / "diverge.yaml", "family: mean_field\nlr: 1.0e+30\n")
    try:
        code = main(["compare", BNN, bad, "--data", str(data_file), "-o", str(tmp_path / "d"),
                     "--steps", "5", "--quiet"])
    except Exception as exc:  # noqa: BLE001 - what the bug looks like
        pytest.fail(f"main raised {type(exc).__name__}: {exc}")
    assert code == 2
    _error_line(capsys.readouterr().err, "non-finite ELBO")


# ----------------------------------------------------------------------------- pprl mi
@pytest.fixture
def mi_file(tmp_path):
    """Columns 0:2 and 2:4 of 'data' are 2-d Gaussians with ρ = 0.8: I = −log(1 − 0.64) nats."""
    import numpy as np

    g = np.random.default_rng(0)
    x = g.standard_normal((4000, 2))
    y = 0.8 * x + 0.6 * g.standard_normal((4000, 2))
    path = tmp_path / "pairs.npz"
    np.savez(path, data=np.concatenate([x, y], 1), noise=g.standard_normal(4000))
    return path


def test_mi_estimates_between_column_groups(mi_file, tmp_path, capsys):
    out = tmp_path / "mi.json"
    assert main(["mi", str(mi_file), "--x", "data[0:2]", "--y", "data[2,3]", "--steps", "800", "--quiet",
                 "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert abs(result["value"] - (-math.log(1 - 0.64))) < 0.15 and len(result["trace"]) == 800
    assert "nats (infonce, separable" in capsys.readouterr().out


def test_mi_mine_with_clamp(mi_file, tmp_path):
    out = tmp_path / "mi.json"
    assert main(["mi", str(mi_file), "--x", "data[0:2]", "--y", "data[2:4]", "--bound", "mine",
                 "--mine-clamp", "9.21", "--steps", "600", "--quiet", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["bound"] == "mine" and abs(result["value"] - (-math.log(1 - 0.64))) < 0.2


@pytest.mark.parametrize("extra, message", [
    (["--bound", "nwj", "--mine-clamp", "9"], "--mine-clamp applies to --bound mine only"),
    (["--bound", "mine", "--mine-clamp", "-1"], "--mine-clamp must be > 0"),
])
def test_mi_mine_clamp_errors(mi_file, tmp_path, capsys, extra, message):
    out = tmp_path / "mi.json"
    assert main(["mi", str(mi_file), "--x", "data[0:2]", "--y", "data[2:4]", *extra, "--json", str(out),
                 "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and not out.exists()


@pytest.mark.parametrize("x, y, message", [
    (["nope"], ["noise"], "array 'nope' not in"),
    (["data[0:2]"], ["data[9]"], "bad columns 'data[9]'"),
    (["data[0:2"], ["noise"], "bad column group"),
    (["data[3:3]"], ["noise"], "selects no columns"),
])
def test_mi_bad_columns_fail_with_one_line(mi_file, tmp_path, capsys, x, y, message):
    out = tmp_path / "mi.json"
    assert main(["mi", str(mi_file), "--x", *x, "--y", *y, "--json", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and not out.exists()


def test_demo_runs_end_to_end_on_a_short_budget(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--steps", "2048", "-o", str(out), "--quiet"]) == 0
    for name in ("metrics.csv", "learning_curve.png", "checkpoint.pt", "summary.json"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["env_steps"] == 2048 and summary["intrinsic"] == "vime"
    assert 0 < summary["final_info_gain"] < 30 and summary["final_elbo_per_transition"] is not None
    printed = capsys.readouterr().out
    assert "mean info gain" in printed and "first success" in printed
    assert main(["demo", "--steps", "2048", "-o", str(out), "--quiet"]) == 2  # never overwrites a run
