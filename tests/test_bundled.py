"""The YAML specs ship with pprl: inside the wheel, and found by name from any directory."""
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from pprl.bundled import bundled
from pprl.rl.experiment import load_experiment
from pprl.spec import SpecError, as_inference_spec, as_model_spec

ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_carries_every_spec(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path), str(ROOT)], check=True)
    wheel, = tmp_path.glob("pprl-*.whl")
    inside = {name for name in zipfile.ZipFile(wheel).namelist() if name.endswith(".yaml")}
    for kind in ("models", "inference", "examples"):
        on_disk = {f"pprl/bundled/{kind}/{p.name}" for p in (ROOT / kind).glob("*.yaml")}
        assert on_disk and on_disk <= inside, kind


def test_names_resolve_to_the_shipped_values_from_another_directory(tmp_path):
    code = """
import pprl
from pprl.rl.experiment import load_experiment
from pprl.spec import as_inference_spec
mf = as_inference_spec("mean_field")
assert (mf.lr, mf.lr_decay, mf.options["local_reparam"]) == (0.01, 0.1, True), mf
model = pprl.build_model("bnn_dynamics", 3, 1)
assert model.spec.hidden_sizes == (64, 64) and model.spec.likelihood.learn_noise
spec = load_experiment("vime_mountaincar")
assert spec.intrinsic.model.name == "bnn_dynamics_student_t" and spec.intrinsic.bonus_scale == "peak"
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_unknown_names_list_the_shipped_ones():
    assert set(bundled("models")) >= {"bnn_dynamics", "bnn_dynamics_student_t", "linear_gaussian"}
    with pytest.raises(SpecError, match="bundled: bnn_dynamics, bnn_dynamics_student_t, latent_mountaincar_pixels, latent_mountaincar_pixels_bayesian, "
                                        "latent_pendulum_pixels, latent_vector, linear_gaussian"):
        as_model_spec("bnn_dynamcis")
    with pytest.raises(SpecError, match="allowed families: mean_field"):
        as_inference_spec("mean-field")
    with pytest.raises(SpecError, match="bundled: driml_minigrid, pendulum_empowerment, ppo_mountaincar, ppo_mountaincar_pixels, ppo_swingup, "
                                        "vime_halfcheetah, vime_mountaincar, vime_mountaincar_pixels"):
        load_experiment("vime_mountain_car")
    with pytest.raises(ValueError, match="allowed: models, inference, examples"):
        bundled("datasets")
