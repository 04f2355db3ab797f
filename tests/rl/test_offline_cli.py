"""``pprl dataset build`` and ``pprl offline`` end to end with tiny budgets, and their one-line errors."""
import json

import pytest

from pprl.cli import main
from pprl.data.offline import load_offline

pytestmark = pytest.mark.usefixtures("single_thread")


def test_build_datasets_then_train_offline_on_one(tmp_path, capsys):
    out = tmp_path / "data"
    assert main(["dataset", "build", "Pendulum-v1", "--kind", "random", "medium", "medium-replay", "expert",
                 "medium-expert", "--size", "400", "--sac-steps", "1600", "--snapshots", "4", "-o", str(out),
                 "--quiet"]) == 0
    info = json.loads((out / "datasets.json").read_text())
    assert len(info["snapshots"]) == 4 and info["snapshots"][-1]["step"] >= 1600  # iterations of 256 steps
    assert info["ref_max_score"] == info["snapshots"][-1]["return"]
    if info["ref_max_score"] <= info["ref_min_score"]:  # 1,600 SAC steps are too few: it says so
        assert "does not beat the random policy" in capsys.readouterr().err
    sizes = {kind: len(load_offline(out / f"pendulum-{kind}.npz")) for kind in
             ("random", "medium", "medium-replay", "expert", "medium-expert")}
    assert sizes["random"] == sizes["medium"] == sizes["expert"] == 400 and sizes["medium-expert"] == 800
    assert sizes["medium-replay"] == min(400, info["medium_snapshot"]["replay_size"])
    expert = load_offline(out / "pendulum-expert.npz")
    assert expert.kind == "expert" and expert.env_id == "Pendulum-v1" and expert.ref_max_score == info["ref_max_score"]
    # a second build reuses the SAC run (cached snapshots)
    mtime = (out / "sac" / "snapshots.pt").stat().st_mtime
    assert main(["dataset", "build", "Pendulum-v1", "--kind", "expert", "--size", "200", "--sac-steps", "1600",
                 "--snapshots", "4", "-o", str(out), "--quiet"]) == 0
    assert (out / "sac" / "snapshots.pt").stat().st_mtime == mtime

    spec = tmp_path / "misa.yaml"
    spec.write_text("name: misa_p\nenv: Pendulum-v1\ndataset: data/pendulum-medium.npz\n"
                    "learner: {type: misa, hidden_sizes: [32], num_action_samples: 8}\nupdates: 40\neval_every: 20\n"
                    "eval_episodes: 2\n")
    capsys.readouterr()
    assert main(["offline", str(spec), "-o", str(tmp_path / "run"), "--quiet"]) == 0  # dataset path: beside the spec
    printed = capsys.readouterr().out
    assert "misa_p (seed 0): 40 updates on 400 transitions" in printed and "normalised score" in printed
    assert main(["offline", str(spec), "-o", str(tmp_path / "run"), "--quiet"]) == 2
    assert "already holds a run" in capsys.readouterr().err


def test_the_sac_buffer_must_hold_the_whole_run(tmp_path):
    from pprl.rl.learners import SACConfig
    from pprl.rl.offline_datasets import build_datasets

    with pytest.raises(ValueError, match=r"the SAC buffer \(1000\) must hold the whole run \(1024 steps"):
        build_datasets("Pendulum-v1", ["medium-replay"], size=10, sac_steps=1000, out_dir=tmp_path,
                       sac_config=SACConfig(total_steps=1000, buffer_size=1000), progress=False)


def test_validate_reads_offline_specs(capsys):
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "examples" / "offline" / "misa_pendulum.yaml"
    assert main(["validate", str(example)]) == 0
    assert "offline experiment: misa_pendulum, learner misa, dataset data/pendulum/pendulum-medium.npz" in \
        capsys.readouterr().out


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    spec = tmp_path / "bad.yaml"
    spec.write_text("env: Pendulum-v1\ndataset: none.npz\nlearner: {type: bc, learning_rate: -1}\n")
    assert main(["offline", str(spec), "-o", str(tmp_path / "r")]) == 2
    assert "field 'learner.learning_rate': got -1" in capsys.readouterr().err
    spec.write_text("env: Pendulum-v1\ndataset: none.npz\nlearner: {type: bc}\n")
    assert main(["offline", str(spec), "-o", str(tmp_path / "r")]) == 2
    assert "none.npz: no such dataset file" in capsys.readouterr().err
    assert main(["dataset", "build", "CartPole-v1", "--size", "10", "--sac-steps", "10", "-o", str(tmp_path / "d")]) == 2
    assert "SAC needs continuous (Box) actions" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
