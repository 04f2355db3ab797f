"""Tests for the `pprl` command line: validate, collect, fit, compare (in-process and as a process)."""
import argparse
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
    assert len(lines) == len(SHIPPED) == 14  # 7 models (4 latent), 7 inference specs (nuts included)
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
    assert sorted(p.name for p in out_dir.iterdir()) == ["metrics.json", "posterior.nc", "posterior.pt"]  # no .tmp left

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
    printed = capsys.readouterr().out
    assert "nats (infonce, concat" in printed and "sampling error only" in printed
    assert result["preprocess"] == "standardize" and result["bias"].startswith("lower bound, at most log K")
    copula = tmp_path / "copula.json"
    assert main(["mi", str(mi_file), "--x", "data[0:2]", "--y", "data[2,3]", "--steps", "800", "--quiet",
                 "--preprocess", "copula", "--json", str(copula)]) == 0
    result = json.loads(copula.read_text())
    assert result["preprocess"] == "copula" and abs(result["value"] - (-math.log(1 - 0.64))) < 0.15


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
    (["data[0:2]"], ["data[9]"], "column group 'data[9]': column 9 is out of range"),
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
    assert "mean info gain" in printed and ("first success at step" in printed or "never reached the goal" in printed)
    # the documented rule: a previous demo's output is overwritten, as `demo families` does
    assert main(["demo", "--steps", "2048", "--seed", "1", "-o", str(out), "--quiet"]) == 0
    assert json.loads((out / "summary.json").read_text())["seed"] == 1
    assert (out / "metrics.csv").is_file() and (out / ".pprl-demo").is_file()


# ----------------------------------------------------------------------------- issue 12: threads

def _tiny_vime_spec(path: Path) -> str:
    """examples/vime_mountaincar.yaml with a budget of seconds: 2 iterations of 4 × 128 steps, 10/5 fit steps."""
    import yaml

    spec = yaml.safe_load((REPO / "examples" / "vime_mountaincar.yaml").read_text())
    spec["learner"].update(num_envs=4, num_steps=128, num_minibatches=4, update_epochs=2)
    spec["intrinsic"].update(fit_steps=5, initial_fit_steps=10, num_samples=2, replay_size=4096)
    path.write_text(yaml.safe_dump(spec))
    return str(path)


def _without_wall_clock(path: Path) -> pd.DataFrame:
    metrics = pd.read_csv(path)
    return metrics.drop(columns=[c for c in metrics if c.endswith(("_s", "_time", "per_s")) or "wall" in c])


def test_cli_train_and_python_train_give_the_same_metrics(tmp_path, capsys):
    """One thread policy: `pprl train` and `pprl.train` at their defaults give identical numbers, and
    neither leaves torch's global thread count changed."""
    import torch

    spec = _tiny_vime_spec(tmp_path / "tiny_vime.yaml")
    before = torch.get_num_threads()
    torch.set_num_threads(3)  # the caller's own setting, which pprl must neither use nor change
    try:
        assert main(["train", spec, "--seed", "2", "--steps", "1024", "-o", str(tmp_path / "cli"), "--quiet"]) == 0
        assert torch.get_num_threads() == 3
        pprl.train(spec, seed=2, out_dir=tmp_path / "py", total_steps=1024, progress=False)
        assert torch.get_num_threads() == 3
        pprl.train(spec, seed=2, out_dir=tmp_path / "py1", total_steps=1024, progress=False, threads=1)
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)
    cli, py = _without_wall_clock(tmp_path / "cli" / "metrics.csv"), _without_wall_clock(tmp_path / "py" / "metrics.csv")
    assert list(cli["env_steps"]) == [512, 1024] and "info_gain" in cli
    pd.testing.assert_frame_equal(cli, py)
    pd.testing.assert_frame_equal(py, _without_wall_clock(tmp_path / "py1" / "metrics.csv"))


def test_every_computing_command_takes_threads_and_passes_it_to_the_api(monkeypatch, tmp_path):
    """--threads reaches the API call as threads= (no global torch setting)."""
    from pprl.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name in ("collect", "fit", "compare", "train", "mi", "demo"):
        threads = next(a for a in sub.choices[name]._actions if "--threads" in a.option_strings)
        assert threads.default == pprl.threads.DEFAULT_THREADS == 1, name
        assert "spin-wait" in threads.help and "floating-point" in threads.help, name
    seen = {}

    def spy(real):
        def call(*args, **kwargs):
            seen[real.__name__] = kwargs["threads"]
            return real(*args, **kwargs)
        return call

    monkeypatch.setattr("pprl.cli.collect.collect", spy(pprl.collect))
    monkeypatch.setattr("pprl.cli.mi.estimate_mi", spy(pprl.estimate_mi))
    data = tmp_path / "x.npz"
    assert main(["collect", "Pendulum-v1", "--steps", "300", "--threads", "2", "-o", str(data)]) == 0
    assert main(["mi", str(data), "--x", "obs", "--y", "next_obs", "--steps", "2", "--batch-size", "8",
                 "--quiet"]) == 0
    assert seen == {"collect": 2, "estimate_mi": 1}
    from pprl.cli import common
    assert not hasattr(common, "set_threads")  # no command sets torch's global thread count


# ----------------------------------------------------------------------------- issue 12: one-line errors

def _command(name: str, out: Path, data_file: Path, mi_file: Path) -> list[str]:
    """A valid invocation of each computing command writing to ``out``."""
    return {"train": ["train", "vime_mountaincar", "-o", str(out)],
            "demo": ["demo", "-o", str(out)],
            "demo families": ["demo", "families", "-o", str(out)],
            "mi": ["mi", str(mi_file), "--x", "data[0:2]", "--y", "data[2:4]", "--json", str(out / "mi.json")],
            "fit": ["fit", BNN, MAP, "--data", str(data_file), "-o", str(out)],
            "compare": ["compare", BNN, "map", "--data", str(data_file), "-o", str(out)]}[name]


@pytest.mark.parametrize("device", ["cuda", "gpu", "cuda:99", "mps"])
@pytest.mark.parametrize("command", ["train", "demo", "demo families", "mi", "fit", "compare"])
def test_unavailable_device_is_one_line(command, device, data_file, mi_file, tmp_path, capsys):
    import torch

    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    out = tmp_path / "out"
    assert main([*_command(command, out, data_file, mi_file), "--device", device, "--quiet"]) == 2
    _error_line(capsys.readouterr().err, f"--device '{device}'")
    assert not out.exists()


def _transitions_arrays(n: int = 20) -> dict:
    import numpy as np

    g = np.random.default_rng(0)
    return {"obs": g.standard_normal((n, 3)).astype(np.float32), "act": g.standard_normal((n, 1)).astype(np.float32),
            "next_obs": g.standard_normal((n, 3)).astype(np.float32), "reward": np.zeros(n, np.float32),
            "terminated": np.zeros(n, bool), "truncated": np.zeros(n, bool)}


def _bad_data(kind: str, path: Path) -> Path:
    import numpy as np

    arrays = _transitions_arrays()
    if kind == "integers":
        arrays = {k: (v * 10).astype(np.int64) if v.dtype != bool else v for k, v in arrays.items()}
    elif kind == "shapes":
        arrays["next_obs"] = arrays["next_obs"][:, :2]
    elif kind == "lengths":
        arrays["reward"] = arrays["reward"][:5]
    elif kind == "missing":
        del arrays["next_obs"]
    elif kind == "objects":
        arrays["obs"] = np.array([{"a": 1}] * 20, dtype=object)
    if kind == "text":
        path.write_text("obs,act,next_obs\n1,2,3\n")
    else:
        with open(path, "wb") as f:
            np.savez(f, **arrays)
    return path


@pytest.mark.parametrize("kind, fragment", [
    ("integers", "array 'obs' has dtype int64; expected"),
    ("shapes", "obs and next_obs must have the same shape"),
    ("lengths", "share the leading length"),
    ("missing", "missing arrays next_obs"),
    ("objects", "array 'obs' is not a plain numeric array"),
    ("text", "not an .npz archive of transitions"),
])
@pytest.mark.parametrize("command", ["fit", "compare"])
def test_bad_data_file_is_one_line_naming_it(command, kind, fragment, tmp_path, capsys):
    bad = _bad_data(kind, tmp_path / "bad.npz")
    out = tmp_path / "out"
    assert main(_command(command, out, bad, bad) + ["--quiet"]) == 2
    line = _error_line(capsys.readouterr().err, str(bad), fragment)
    assert "allow_pickle" not in line
    assert not out.exists()


def test_bad_test_data_is_one_line_naming_it(data_file, tmp_path, capsys):
    bad = _bad_data("integers", tmp_path / "bad_test.npz")
    out = tmp_path / "out"
    assert main(["fit", BNN, MAP, "--data", str(data_file), "--test-data", str(bad), "-o", str(out), "--quiet"]) == 2
    _error_line(capsys.readouterr().err, str(bad), "dtype int64")
    assert not out.exists()


@pytest.mark.parametrize("kind, fragment", [("text", "not an .npz archive"), ("objects", "not an .npz archive of plain")])
def test_mi_bad_data_file_is_one_line_naming_it(kind, fragment, tmp_path, capsys):
    bad = _bad_data(kind, tmp_path / "bad.npz")
    out = tmp_path / "mi.json"
    assert main(["mi", str(bad), "--x", "obs", "--y", "act", "--json", str(out), "--quiet"]) == 2
    line = _error_line(capsys.readouterr().err, str(bad), fragment)
    assert "allow_pickle" not in line and not out.exists()


def test_train_without_arguments_says_what_is_needed(tmp_path, capsys):
    assert main(["train"]) == 2
    _error_line(capsys.readouterr().err, "needs an experiment spec", "vime_mountaincar", "--resume DIR")
    assert main(["train", "vime_mountaincar", "--resume", str(tmp_path)]) == 2
    _error_line(capsys.readouterr().err, "not both")
    assert list(tmp_path.iterdir()) == []


def test_a_library_value_error_keeps_its_traceback(monkeypatch, tmp_path):
    """Only pprl's own input checks become one line; a ValueError from underneath is a bug to see."""
    def broken(*args, **kwargs):
        return int("not a number")  # a ValueError raised outside pprl's code

    monkeypatch.setattr("pprl.cli.collect.collect", broken)
    with pytest.raises(ValueError, match="invalid literal"):
        main(["collect", "Pendulum-v1", "--steps", "5", "-o", str(tmp_path / "x.npz")])


# ----------------------------------------------------------------------------- issue 12: silent wrong answers

@pytest.mark.parametrize("x, y, fragments", [
    (["data[0:9]"], ["noise"], ["'data[0:9]'", "column 9 is out of range", "shape (4000, 4)"]),
    (["data[-5:2]"], ["noise"], ["column -5 is out of range", "shape (4000, 4)"]),
    (["data[0,4]"], ["noise"], ["column 4 is out of range", "shape (4000, 4)"]),
    (["noise[1]"], ["data[0:2]"], ["column 1 is out of range", "shape (4000,)"]),
    (["data[0:3]"], ["data[2:4]"], ["--x and --y share column(s) data[2]"]),
    (["data"], ["data[3]"], ["share column(s) data[3]"]),
    (["data[0:2]", "noise"], ["noise"], ["share column(s) noise[0]"]),
])
def test_mi_out_of_range_or_shared_columns_are_errors(mi_file, tmp_path, capsys, x, y, fragments):
    out = tmp_path / "mi.json"
    assert main(["mi", str(mi_file), "--x", *x, "--y", *y, "--json", str(out), "--quiet", "--steps", "5"]) == 2
    _error_line(capsys.readouterr().err, *fragments)
    assert not out.exists()


def test_mi_in_range_column_forms(mi_file, tmp_path):
    """Negative and open-ended columns within the array still work, and select what Python would."""
    out = tmp_path / "mi.json"
    assert main(["mi", str(mi_file), "--x", "data[:2]", "--y", "data[-2:]", "--steps", "5", "--batch-size", "8",
                 "--json", str(out), "--quiet"]) == 0
    from pprl.cli.mi import column_group
    import numpy as np

    arrays = dict(np.load(mi_file))
    _, cols = column_group(arrays, ["data[-1]", "data[0:4:2]", "noise"], "f")
    assert cols == [("data", 3), ("data", 0), ("data", 2), ("noise", 0)]


def _tiny_run(tmp_path: Path) -> Path:
    """A finished 256-step run (2 iterations of 2 × 64, no bonus) in tmp_path/run."""
    import yaml
    from tests.rl.conftest import TINY

    spec = tmp_path / "tiny.yaml"
    spec.write_text(yaml.safe_dump({**TINY, "intrinsic": {"type": "none"}}))
    assert main(["train", str(spec), "-o", str(tmp_path / "run"), "--quiet"]) == 0
    return tmp_path / "run"


@pytest.mark.parametrize("steps", [[], ["--steps", "256"], ["--steps", "128"]])
def test_resume_without_more_steps_is_an_error_naming_the_progress(tmp_path, capsys, steps):
    run = _tiny_run(tmp_path)
    capsys.readouterr()
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    assert main(["train", "--resume", str(run), *steps, "--quiet"]) == 2
    _error_line(capsys.readouterr().err, str(run), "recorded 256 env steps", "more than 256")
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before  # nothing rewritten
    assert main(["train", "--resume", str(run), "--steps", "384", "--quiet"]) == 0  # more steps continue it
    assert list(pd.read_csv(run / "metrics.csv")["env_steps"]) == [128, 256, 384]


# ----------------------------------------------------------------------------- issue 12: smaller

def test_ctrl_c_saves_a_checkpoint_and_prints_the_resume_command(tmp_path, capsys, monkeypatch):
    import shlex

    import yaml
    from pprl.rl.learners.ppo import PPO
    from tests.rl.conftest import TINY

    spec = tmp_path / "tiny.yaml"
    spec.write_text(yaml.safe_dump({**TINY, "intrinsic": {"type": "none"}}))
    real_update, calls = PPO.update, []

    def interrupted_update(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_update(self, *args, **kwargs)

    monkeypatch.setattr(PPO, "update", interrupted_update)
    run = tmp_path / "run"
    assert main(["train", str(spec), "-o", str(run), "--steps", "512", "--quiet"]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "Traceback" not in "\n".join(err)
    assert err[0] == f"pprl: interrupted at 256 of 512 env steps; checkpoint saved in {run / 'checkpoint.pt'}"
    command = err[1].removeprefix("pprl: continue with: ")
    assert command == f"pprl train --resume {shlex.quote(str(run))} --steps 512"
    monkeypatch.setattr(PPO, "update", real_update)
    assert main(shlex.split(command)[1:] + ["--quiet"]) == 0  # the printed command continues the run
    assert pd.read_csv(run / "metrics.csv")["env_steps"].iloc[-1] == 512
    # a run on other settings is continued on the same ones (the thread count changes the numbers)
    from pprl.cli.train import interrupted
    assert interrupted(run, argparse.Namespace(device="cuda:1", threads=2)) == 130
    assert capsys.readouterr().err.strip().splitlines()[1].endswith("--steps 512 --device cuda:1 --threads 2")


def test_ctrl_c_before_the_first_checkpoint_says_so(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("pprl.cli.demo.train", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    assert main(["demo", "-o", str(tmp_path / "d"), "--quiet"]) == 130
    assert "interrupted before the first checkpoint" in capsys.readouterr().err


def test_summary_of_a_run_that_never_reached_the_goal(capsys):
    from pprl.cli.train import print_summary

    summary = {"experiment": "x", "seed": 0, "env_steps": 10, "episodes": 1, "success_rate": 0.0,
               "final_success_rate": 0.0, "first_success_step": None, "env_steps_per_s": 5.0, "intrinsic": "none"}
    print_summary(summary, Path("out"))
    out = capsys.readouterr().out
    assert "never reached the goal" in out and "at never" not in out
    print_summary({**summary, "first_success_step": 4096}, Path("out"))
    assert "first success at step 4096" in capsys.readouterr().out


def test_collect_creates_the_output_directories(tmp_path, capsys):
    out = tmp_path / "sub" / "dir" / "data.npz"
    assert main(["collect", "Pendulum-v1", "--steps", "5", "-o", str(out)]) == 0
    assert len(pprl.Transitions.load(out)) == 5
    assert main(["collect", "Pendulum-v1", "--steps", "5", "-o", str(tmp_path / "sub")]) == 2
    _error_line(capsys.readouterr().err, "is a directory")


def test_demo_output_rule(tmp_path, capsys, existing_out):
    """Both demos: a missing or empty directory is used, a previous demo's output is overwritten,
    anything else is refused with one line and left untouched."""
    tiny = ["--families", "map", "--transitions", "200", "--steps", "5", "--quiet"]
    out = tmp_path / "fam"
    assert main(["demo", "families", "-o", str(out), *tiny]) == 0
    first = sorted(p.name for p in out.iterdir())
    assert first == [".pprl-demo", "comparison.csv", "comparison.png", "map.nc", "pendulum.npz", "posterior_map.pt"]
    assert main(["demo", "families", "-o", str(out), *tiny, "--seed", "1"]) == 0  # overwritten
    assert pprl.Transitions.load(out / "pendulum.npz").meta["seed"] == 1
    (out / "notes.txt").write_text("mine\n")  # a previous demo's output plus something of the user's: refused
    for what in (["families", *tiny], ["--steps", "2048", "--quiet"]):
        assert main(["demo", *what, "-o", str(out)]) == 2
        _error_line(capsys.readouterr().err, str(out), "not a previous demo's output", "notes.txt")
        assert pprl.Transitions.load(out / "pendulum.npz").meta["seed"] == 1
        assert main(["demo", *what, "-o", str(existing_out)]) == 2
        _error_line(capsys.readouterr().err, str(existing_out), "keep.txt")
        _assert_untouched(existing_out)
    run = _tiny_run(tmp_path)  # a training run is not a demo's output
    assert main(["demo", "-o", str(run), "--steps", "2048", "--quiet"]) == 2
    _error_line(capsys.readouterr().err, str(run))
    assert (run / "checkpoint.pt").is_file()
    help_text = build_parser_help("demo")
    assert "overwritten" in help_text and "refused" in help_text


def build_parser_help(command: str) -> str:
    from pprl.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[command].format_help()


# ----------------------------------------------------------------------------- issue 12: validate, --help

EXAMPLES = sorted(str(p) for p in (REPO / "examples").glob("*.yaml"))


def test_validate_accepts_experiment_specs(capsys):
    assert main(["validate", *EXAMPLES, BNN, MAP]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    lines = out.strip().splitlines()
    assert len(lines) == len(EXAMPLES) + 2 and len(EXAMPLES) >= 5
    vime = next(line for line in lines if line.split()[1].endswith("vime_mountaincar.yaml"))
    assert vime.endswith("(experiment: vime_mountaincar, learner ppo, intrinsic vime)")
    assert any(line.endswith("(experiment: ppo_mountaincar, learner ppo, intrinsic none)") for line in lines)


@pytest.mark.parametrize("text, fragments", [
    ("name: x\nlr: 0.1\n", ["cannot tell the kind of spec", "model spec has field 'type'",
                            "inference spec has field 'family'", "experiment spec has fields 'env' and 'learner'"]),
    ("env: Pendulum-v1\nlearner: {lern_rate: 0.1}\n", ["unknown field 'learner.lern_rate'; allowed:", "learning_rate"]),
    ("env: Pendulum-v1\nlearner: {}\nintrinsic: {type: vime, eta: -1}\n", ["intrinsic"]),
    ("type: bnn\nlearner: {}\n", ["cannot tell the kind of spec"]),
])
def test_validate_bad_or_unknown_kind_is_one_line(tmp_path, capsys, text, fragments):
    bad = _write(tmp_path / "bad.yaml", text)
    assert main(["validate", bad]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    _error_line(err, bad, *fragments)


def _subparsers():
    from pprl.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return parser, sub.choices


def test_every_argument_has_help_and_shows_its_default():
    parser, commands = _subparsers()
    assert set(commands) == {"validate", "collect", "fit", "compare", "nuts", "diagnose", "train", "sweep", "offline", "dataset", "mi", "empowerment", "demo"}
    for name, sub in commands.items():
        text = sub.format_help()
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            label = f"{name} {'/'.join(action.option_strings) or action.dest}"
            assert action.help and action.help.strip(), f"{label} has no help text"
            shown = action.default is not None and action.default is not False  # (0 is a default to show)
            if shown and action.option_strings:
                formatted = sub._get_formatter()._get_help_string(action)
                assert "default" in formatted, f"{label}: default {action.default!r} not shown"
        assert "``" not in text, name
    top = parser.format_help()
    assert "``" not in top and "--version" in top
    train_help = " ".join(commands["train"].format_help().split())
    assert "(default: 1)" in train_help and "--seed SEED random seed" in train_help and "(default: 0)" in train_help


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"pprl {pprl.__version__}"


# ----------------------------------------------------------------------------- NUTS, reports, diagnose

def test_nuts_compare_report_and_diagnose(data_file, tmp_path, capsys):
    """pprl nuts writes a loadable posterior, its NetCDF and convergence metrics; compare --nuts
    writes the report; diagnose reads any run's NetCDF files."""
    import arviz as az

    out = tmp_path / "nuts"
    assert main(["nuts", "linear_gaussian", "--data", str(data_file), "-o", str(out), "--num-samples", "150",
                 "--num-warmup", "150", "--num-chains", "2", "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_divergences"] == 0 and metrics["predictive_r_hat_max"] < 1.1
    assert pprl.load_posterior(out / "posterior.pt").family == "nuts"
    assert az.from_netcdf(out / "posterior.nc").sample_stats.diverging.shape == (2, 150)

    report = tmp_path / "report"
    assert main(["compare", "linear_gaussian", "laplace", "map", "--nuts", "--data", str(data_file), "-o",
                 str(report), "--steps", "300", "--quiet"]) == 0
    table = pd.read_csv(report / "report.csv", index_col=0)
    assert list(table.index) == ["laplace", "map", "nuts"] and table.loc["nuts", "w2_to_nuts"] == 0
    assert {"report.md", "calibration.png", "loo_compare.png", "laplace.nc", "nuts.nc"} <= {p.name for p in report.iterdir()}

    capsys.readouterr()
    assert main(["diagnose", str(report)]) == 0
    printed = capsys.readouterr().out
    assert printed.count("== ") == 3 and "worst R-hat" in printed and "held-out log predictive" in printed
    assert (report / "diagnose_nuts.png").is_file()


def test_fit_writes_inference_data(data_file, tmp_path):
    import arviz as az

    out = tmp_path / "mf"
    assert main(["fit", BNN, "mean_field", "--data", str(data_file), "-o", str(out), "--steps", "20", "--quiet"]) == 0
    idata = az.from_netcdf(out / "posterior.nc")
    assert idata.posterior.theta.dims == ("chain", "draw", "weight") and "log_q" in idata.sample_stats


def test_diagnose_and_nuts_bad_input_is_one_line(tmp_path, data_file, capsys):
    assert main(["diagnose", str(tmp_path)]) == 2
    _error_line(capsys.readouterr().err, str(tmp_path), "no .nc posterior files")
    assert main(["nuts", "linear_gaussian", "--data", str(data_file), "-o", str(tmp_path / "x"), "--steps", "5"]) == 2
    _error_line(capsys.readouterr().err, "--steps is an SVI budget")
    assert not (tmp_path / "x").exists()
