"""Tests for pprl.spec: the shipped YAML specs, validation errors, name lookup and round trips."""
import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from pprl.inference.families import FAMILIES
from pprl.models.latent_spec import LatentSpec
from pprl.spec import (
    ELBOS,
    InferenceSpec,
    LikelihoodSpec,
    ModelSpec,
    PriorSpec,
    SpecError,
    as_inference_spec,
    as_model_spec,
    load_spec,
    parse_inference_spec,
    parse_model_spec,
)

REPO = Path(__file__).resolve().parents[1]
MODEL_FILES = sorted((REPO / "models").glob("*.yaml"))
INFERENCE_FILES = sorted((REPO / "inference").glob("*.yaml"))
ALL_FAMILIES = "mean_field, low_rank, full_rank, flow, map, laplace, nuts"


def _ids(paths):
    return [f"{p.parent.name}/{p.name}" for p in paths]


def _without_source(spec):
    return dataclasses.replace(spec, source="<ignored>")


# ----------------------------------------------------------------------------- shipped specs

def test_shipped_spec_files_are_the_expected_ones():
    assert [p.name for p in MODEL_FILES] == ["bnn_dynamics.yaml", "bnn_dynamics_student_t.yaml",
                                             "latent_mountaincar_pixels.yaml", "latent_mountaincar_pixels_bayesian.yaml",
                                             "latent_pendulum_pixels.yaml",
                                             "latent_vector.yaml",
                                             "linear_gaussian.yaml"]
    assert {p.stem for p in INFERENCE_FILES} == set(FAMILIES)


def test_student_t_spec_and_its_errors():
    spec = load_spec("models/bnn_dynamics_student_t.yaml")
    assert spec.likelihood == LikelihoodSpec(type="student_t", df=4.0, noise_scale=0.1, learn_noise=True)
    assert parse_model_spec(spec.to_dict()).likelihood == spec.likelihood  # round trip
    assert "df" not in load_spec("models/bnn_dynamics.yaml").to_dict()["likelihood"]
    with pytest.raises(SpecError, match="'likelihood.df' needs likelihood.type 'student_t'"):
        parse_model_spec({"type": "bnn", "likelihood": {"df": 3.0}})
    with pytest.raises(SpecError, match="'likelihood.type'.*allowed: normal"):
        parse_model_spec({"type": "linear_gaussian", "likelihood": {"type": "student_t"}})
    with pytest.raises(SpecError, match="allowed: normal, student_t"):
        parse_model_spec({"type": "bnn", "likelihood": {"type": "laplace"}})


def test_bnn_dynamics_spec():
    path = REPO / "models" / "bnn_dynamics.yaml"
    spec = load_spec(path)
    assert isinstance(spec, ModelSpec)
    assert spec.type == "bnn" and spec.name == "bnn_dynamics"
    assert spec.hidden_sizes == (64, 64) and isinstance(spec.hidden_sizes, tuple)
    assert spec.activation == "relu"
    assert spec.prior == PriorSpec(weight_scale="fan_in", bias_scale=1.0)
    assert isinstance(spec.prior.bias_scale, float)
    assert spec.likelihood == LikelihoodSpec(noise_scale=0.1, learn_noise=True)
    assert spec.target == "delta" and spec.normalize is True
    assert spec.source == str(path)


def test_linear_gaussian_spec():
    spec = load_spec(REPO / "models" / "linear_gaussian.yaml")
    assert isinstance(spec, ModelSpec)
    assert spec.type == "linear_gaussian" and spec.name == "linear_gaussian"
    assert spec.prior.weight_scale == 1.0 and isinstance(spec.prior.weight_scale, float)
    assert spec.likelihood == LikelihoodSpec(noise_scale=0.1, learn_noise=False)
    assert spec.target == "next_obs" and spec.normalize is False
    assert "hidden_sizes" not in spec.to_dict() and "activation" not in spec.to_dict()


# family -> (elbo, options, lr); every shipped inference spec uses adam, lr_decay 0.1, 2000 steps,
# batch 256 and grad_clip 100.
SHIPPED_INFERENCE = {
    "mean_field": ("analytic_kl", {"local_reparam": True}, 0.01),
    "low_rank": ("analytic_kl", {"rank": 10}, 0.01),
    "full_rank": ("analytic_kl", {}, 0.01),
    "flow": ("plain", {"num_flows": 4, "hidden_dim": 64}, 0.003),
    "map": ("plain", {}, 0.01),
    "laplace": ("plain", {"jitter": 1e-6}, 0.01),
}


@pytest.mark.parametrize("family", list(SHIPPED_INFERENCE))
def test_shipped_inference_spec(family):
    path = REPO / "inference" / f"{family}.yaml"
    spec = load_spec(path)
    elbo, options, lr = SHIPPED_INFERENCE[family]
    assert isinstance(spec, InferenceSpec)
    assert spec.family == family and spec.name == family
    assert spec.elbo == elbo
    assert spec.options == options
    assert all(type(v) is type(options[k]) for k, v in spec.options.items())
    assert spec.lr == lr and isinstance(spec.lr, float)
    assert spec.lr_decay == 0.1 and isinstance(spec.lr_decay, float)
    assert spec.steps == 2000 and type(spec.steps) is int
    assert spec.batch_size == 256 and type(spec.batch_size) is int
    assert spec.num_particles == 1 and spec.optimizer == "adam"
    assert spec.grad_clip == 100.0 and isinstance(spec.grad_clip, float)
    assert spec.init_scale == 0.01
    assert spec.source == str(path)


def test_mean_field_uses_local_reparameterisation():
    spec = load_spec(REPO / "inference" / "mean_field.yaml")
    assert spec.options["local_reparam"] is True


def test_load_spec_accepts_str_and_path():
    path = REPO / "inference" / "low_rank.yaml"
    assert load_spec(str(path)) == load_spec(path)


def test_defaults_fill_unset_fields(tmp_path):
    (tmp_path / "tiny.yaml").write_text("type: bnn\n")
    spec = load_spec(tmp_path / "tiny.yaml")
    assert spec.name == "tiny"  # the file stem
    assert spec.hidden_sizes == (64, 64) and spec.prior.weight_scale == "fan_in"
    ispec = parse_inference_spec({"family": "flow"})
    assert ispec.name == "flow" and ispec.elbo == "plain"
    assert ispec.options == {"num_flows": 4, "hidden_dim": 64}
    assert parse_inference_spec({"family": "low_rank"}).elbo == "analytic_kl"


# ----------------------------------------------------------------------------- round trips

@pytest.mark.parametrize("path", MODEL_FILES + INFERENCE_FILES, ids=_ids(MODEL_FILES + INFERENCE_FILES))
def test_spec_round_trip(path):
    spec = load_spec(path)
    parse = parse_model_spec if isinstance(spec, (ModelSpec, LatentSpec)) else parse_inference_spec
    assert _without_source(parse(spec.to_dict())) == _without_source(spec)
    # ... also through YAML text, as a user would write it back
    assert _without_source(parse(yaml.safe_load(yaml.safe_dump(spec.to_dict())))) == _without_source(spec)


def test_renyi_round_trip_keeps_alpha():
    spec = parse_inference_spec({"family": "flow", "elbo": "renyi", "alpha": 0.5, "num_particles": 4})
    assert spec.to_dict()["alpha"] == 0.5
    assert parse_inference_spec(spec.to_dict()) == spec


# ----------------------------------------------------------------------------- as_*_spec

def test_as_inference_spec_by_family_name_uses_bundled_file():
    spec = as_inference_spec("mean_field")
    bundled = load_spec(REPO / "inference" / "mean_field.yaml")
    assert _without_source(spec) == _without_source(bundled)
    assert Path(spec.source).resolve() == (REPO / "inference" / "mean_field.yaml").resolve()


@pytest.mark.parametrize("family", FAMILIES)
def test_as_inference_spec_every_family_name(family):
    spec = as_inference_spec(family)
    assert spec.family == family
    assert _without_source(spec) == _without_source(load_spec(REPO / "inference" / f"{family}.yaml"))


def test_as_inference_spec_passthrough_dict_and_path():
    spec = load_spec(REPO / "inference" / "map.yaml")
    assert as_inference_spec(spec) is spec
    assert as_inference_spec(REPO / "inference" / "map.yaml") == spec
    assert as_inference_spec({"family": "map"}).family == "map"


def test_as_inference_spec_unknown_name_lists_families():
    with pytest.raises(SpecError, match=re.escape(f"mean-feild: not a spec file or a family name; "
                                                  f"allowed families: {ALL_FAMILIES}")):
        as_inference_spec("mean-feild")


def test_as_inference_spec_rejects_model_spec():
    path = REPO / "models" / "bnn_dynamics.yaml"
    with pytest.raises(SpecError, match=re.escape(str(path)) + ".*expected an inference spec"):
        as_inference_spec(path)


def test_as_model_spec_rejects_inference_spec_and_accepts_dict():
    path = REPO / "inference" / "map.yaml"
    with pytest.raises(SpecError, match=re.escape(str(path)) + ".*expected a model spec"):
        as_model_spec(path)
    assert as_model_spec({"type": "bnn", "hidden_sizes": [8]}).hidden_sizes == (8,)


# ----------------------------------------------------------------------------- malformed specs

# (id, YAML text, fragments that must all appear in the message besides the file path)
MALFORMED = [
    ("model_unknown_field", "type: bnn\nhidden_size: [64]\n",
     ["unknown field 'hidden_size'", "allowed:", "hidden_sizes"]),
    ("model_unknown_nested_field", "type: bnn\nprior:\n  weight_scal: 1.0\n",
     ["unknown field 'prior.weight_scal'", "allowed: bias_scale, weight_scale"]),
    ("inference_unknown_field", "family: map\nlearning_rate: 0.1\n",
     ["unknown field 'learning_rate'", "allowed:", "lr"]),
    ("lr_string", 'family: map\nlr: "fast"\n', ["field 'lr' must be a number", "'fast'"]),
    ("hidden_sizes_string", 'type: bnn\nhidden_sizes: [64, "x"]\n',
     ["field 'hidden_sizes[1]' must be an integer", "'x'"]),
    ("hidden_sizes_scalar", "type: bnn\nhidden_sizes: 64\n", ["field 'hidden_sizes' must be a list"]),
    ("steps_float", "family: map\nsteps: 1.5\n", ["field 'steps' must be an integer", "1.5"]),
    ("steps_bool", "family: map\nsteps: true\n", ["field 'steps' must be an integer"]),
    ("normalize_int", "type: bnn\nnormalize: 1\n", ["field 'normalize' must be true/false"]),
    ("unknown_family", "family: mean-feild\n",
     ["field 'family'", "'mean-feild'", f"allowed: {ALL_FAMILIES}"]),
    ("unknown_model_type", "type: gaussian_process\n",
     ["field 'type'", "'gaussian_process'", "allowed: bnn, linear_gaussian"]),
    ("unknown_activation", "type: bnn\nactivation: sigmoid\n",
     ["field 'activation'", "'sigmoid'", "allowed: relu, tanh, elu, silu, softplus"]),
    ("unknown_target", "type: bnn\ntarget: state\n", ["field 'target'", "allowed: delta, next_obs"]),
    ("unknown_optimizer", "family: map\noptimizer: rmsprop\n",
     ["field 'optimizer'", "allowed: adam, adamw, sgd"]),
    ("unknown_elbo", "family: flow\nelbo: iwae\n", ["field 'elbo'", f"allowed: {', '.join(ELBOS)}"]),
    ("lr_zero", "family: map\nlr: 0\n", ["field 'lr' must be > 0", "0"]),
    ("bias_scale_negative", "type: bnn\nprior:\n  bias_scale: -1\n",
     ["field 'prior.bias_scale' must be > 0", "-1"]),
    ("weight_scale_word", "type: bnn\nprior:\n  weight_scale: big\n",
     ["field 'prior.weight_scale'", "'fan_in'", "'big'"]),
    ("noise_scale_zero", "type: bnn\nlikelihood:\n  noise_scale: 0\n",
     ["field 'likelihood.noise_scale' must be > 0"]),
    ("hidden_size_zero", "type: bnn\nhidden_sizes: [64, 0]\n", ["field 'hidden_sizes[1]' must be > 0"]),
    ("batch_size_negative", "family: map\nbatch_size: -8\n", ["field 'batch_size' must be > 0"]),
    ("grad_clip_negative", "family: map\ngrad_clip: -1.0\n", ["field 'grad_clip' must be > 0"]),
    ("prior_not_mapping", "type: bnn\nprior: 1.0\n", ["field 'prior' must be a mapping"]),
    ("low_rank_unknown_option", "family: low_rank\noptions: {rnk: 3}\n",
     ["unknown field 'options.rnk'", "allowed: rank"]),
    ("low_rank_rank_zero", "family: low_rank\noptions: {rank: 0}\n", ["field 'options.rank' must be > 0"]),
    ("flow_option_type", "family: flow\noptions: {num_flows: two}\n",
     ["field 'options.num_flows' must be an integer"]),
    ("map_takes_no_options", "family: map\noptions: {rank: 3}\n",
     ["family 'map' takes no options", "options.rank"]),
    ("flow_analytic_kl", "family: flow\nelbo: analytic_kl\n",
     ["field 'elbo'", "'analytic_kl'", "mean_field, low_rank, full_rank", "allowed for 'flow': plain, renyi"]),
    ("local_reparam_plain", "family: mean_field\noptions: {local_reparam: true}\nelbo: plain\n",
     ["field 'options.local_reparam'", "'analytic_kl'"]),
    ("laplace_renyi", "family: laplace\nelbo: renyi\n",
     ["field 'elbo'", "family 'laplace'", "allowed: plain"]),
    ("map_analytic_kl", "family: map\nelbo: analytic_kl\n", ["field 'elbo'", "allowed for 'map': plain"]),
    ("alpha_without_renyi", "family: flow\nalpha: 0.5\n", ["field 'alpha'", "'renyi'"]),
    ("renyi_alpha_one", "family: flow\nelbo: renyi\nalpha: 1\n", ["field 'alpha'", "'plain'"]),
    ("lr_decay_above_one", "family: map\nlr_decay: 2\n",
     ["field 'lr_decay'", "allowed: 0 < lr_decay <= 1", "2.0"]),
    ("linear_learn_noise", "type: linear_gaussian\nlikelihood:\n  learn_noise: true\n",
     ["field 'likelihood.learn_noise'", "allowed: false"]),
    ("linear_hidden_sizes", "type: linear_gaussian\nhidden_sizes: [8]\n",
     ["field 'hidden_sizes' is not used by type 'linear_gaussian'"]),
    ("neither_type_nor_family", "name: something\n",
     ["cannot tell the kind of spec", "'type'", "'family'", "bnn, linear_gaussian", ALL_FAMILIES]),
    ("both_type_and_family", "type: bnn\nfamily: map\n", ["cannot tell the kind of spec"]),
    ("name_not_string", "family: map\nname: 3\n", ["field 'name' must be a string"]),
]


@pytest.mark.parametrize("text, fragments", [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_spec_message_names_file_field_and_allowed(tmp_path, text, fragments):
    path = tmp_path / "bad_spec.yaml"
    path.write_text(text)
    with pytest.raises(SpecError, match=re.escape(f"{path}: ")) as info:
        load_spec(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    assert "\n" not in message  # one line, for the CLI


def test_invalid_yaml_syntax(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("family: [map\nlr: 0.1\n")
    with pytest.raises(SpecError, match=re.escape(f"{path}: not valid YAML")) as info:
        load_spec(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("text, kind", [("- family: map\n- family: flow\n", "list"),
                                        ("just a string\n", "str"), ("", "NoneType")],
                         ids=["list", "scalar", "empty"])
def test_yaml_that_is_not_a_mapping(tmp_path, text, kind):
    path = tmp_path / "notmap.yaml"
    path.write_text(text)
    with pytest.raises(SpecError, match=re.escape(f"{path}: the file must be a YAML mapping") + f".*{kind}"):
        load_spec(path)


def test_missing_file(tmp_path):
    path = tmp_path / "nowhere" / "missing.yaml"
    with pytest.raises(SpecError, match=re.escape(f"{path}: no such file")):
        load_spec(path)
    with pytest.raises(SpecError, match=re.escape(f"{path}: no such file")):
        as_inference_spec(path)


def test_directory_is_not_a_spec(tmp_path):
    with pytest.raises(SpecError, match=re.escape(f"{tmp_path}: no such file")):
        load_spec(tmp_path)


def test_parse_functions_report_given_source():
    with pytest.raises(SpecError, match=re.escape("somewhere.yaml: field 'lr' must be > 0")):
        parse_inference_spec({"family": "map", "lr": -0.1}, "somewhere.yaml")
    with pytest.raises(SpecError, match=re.escape("<dict>: missing field 'type'; allowed: bnn, linear_gaussian")):
        parse_model_spec({"name": "x"})
    with pytest.raises(SpecError, match=re.escape("<dict>: missing field 'family'; allowed: " + ALL_FAMILIES)):
        parse_inference_spec({"lr": 0.1})


def test_spec_error_is_a_value_error():
    assert issubclass(SpecError, ValueError)


# ----------------------------------------------------------------------------- known bugs

def test_unknown_keys_of_mixed_types(tmp_path):
    path = tmp_path / "keys.yaml"
    path.write_text("family: map\n1: x\nfoo: y\n")
    with pytest.raises(SpecError, match=re.escape(f"{path}: unknown field")):
        load_spec(path)


def test_nan_learning_rate_is_rejected(tmp_path):
    path = tmp_path / "nan.yaml"
    path.write_text("family: map\nlr: .nan\n")
    with pytest.raises(SpecError, match="field 'lr'"):
        load_spec(path)


def test_family_name_not_shadowed_by_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mean_field").mkdir()  # e.g. an output directory from `pprl fit ... -o mean_field`
    assert as_inference_spec("mean_field").family == "mean_field"


# ----------------------------------------------------------------------------- every kind of spec (issue 12)

def test_load_spec_reads_experiments_too():
    from pprl.rl.experiment import ExperimentSpec

    spec = load_spec(REPO / "examples" / "vime_mountaincar.yaml")
    assert isinstance(spec, ExperimentSpec)
    assert (spec.name, spec.learner.type, spec.intrinsic.type) == ("vime_mountaincar", "ppo", "vime")
    with pytest.raises(SpecError, match="expected a model spec .field 'type'., got an experiment spec"):
        as_model_spec(REPO / "examples" / "vime_mountaincar.yaml")
    with pytest.raises(SpecError, match="expected an inference spec .field 'family'., got a model spec"):
        as_inference_spec(REPO / "models" / "bnn_dynamics.yaml")


@pytest.mark.parametrize("text", ["name: x\n", "type: bnn\nfamily: map\n", "family: map\nenv: Pendulum-v1\n"])
def test_unknown_kind_lists_the_three_kinds(tmp_path, text):
    path = tmp_path / "what.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    message = str(info.value)
    assert message.startswith(f"{path}: cannot tell the kind of spec")
    for kind in ("a model spec has field 'type'", "an inference spec has field 'family'",
                 "an experiment spec has fields 'env' and 'learner'"):
        assert kind in message


@pytest.mark.parametrize("text, where", [
    ("type: bnn\nhiden: 1\n", "hiden"),
    ("family: map\noptions: {}\nlrr: 1\n", "lrr"),
    ("env: Pendulum-v1\nlearner: {}\nseeds: 3\n", "seeds"),
    ("env: Pendulum-v1\nlearner: {lern_rate: 0.1}\n", "learner.lern_rate"),
    ("env: Pendulum-v1\nlearner: {}\nintrinsic: {type: none, temperature: 1}\n", "intrinsic.temperature"),
])
def test_unknown_field_errors_have_one_format_across_specs(tmp_path, text, where):
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert re.fullmatch(rf"{re.escape(str(path))}: unknown field '{re.escape(where)}'; allowed: [a-z_]+(, [a-z_]+)*",
                        str(info.value)), str(info.value)
