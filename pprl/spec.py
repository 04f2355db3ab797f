"""Declarative specs: YAML files in ``models/`` and ``inference/`` → typed, validated objects.

Every problem is reported as one :class:`SpecError` naming the file, the field and what is
allowed, e.g. ``inference/x.yaml: field 'family': unknown value 'mean-feild'; allowed:
mean_field, low_rank, full_rank, flow, map, laplace``.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .bundled import bundled, find_bundled

MODEL_TYPES = ("bnn", "linear_gaussian", "latent")
ACTIVATIONS = ("relu", "tanh", "elu", "silu", "softplus")
TARGETS = ("delta", "next_obs")
LIKELIHOODS = ("normal", "student_t")
ELBOS = ("plain", "analytic_kl", "renyi")
OPTIMIZERS = ("adam", "adamw", "sgd")


class SpecError(ValueError):
    """A spec file is malformed. The message names the file, the field and what is allowed."""


@dataclass(frozen=True)
class PriorSpec:
    """Zero-mean Gaussian priors on weights and biases; ``weight_scale='fan_in'`` means 1/√fan_in."""

    weight_scale: float | str = "fan_in"
    bias_scale: float = 1.0


@dataclass(frozen=True)
class LikelihoodSpec:
    """Observation noise on the (normalised) target, Gaussian (``normal``) or Student-t with ``df``
    degrees of freedom (``student_t``: heavy tails, so a rare discontinuity such as a collision
    does not dominate the fit); its scale fixed, or learned as a point estimate."""

    type: str = "normal"
    df: float = 4.0
    noise_scale: float = 0.1
    learn_noise: bool = False


@dataclass(frozen=True)
class ModelSpec:
    """A dynamics model p(target | s, a, θ) with a Gaussian prior on θ."""

    type: str
    name: str = ""
    hidden_sizes: tuple[int, ...] = (64, 64)
    activation: str = "relu"
    prior: PriorSpec = field(default_factory=PriorSpec)
    likelihood: LikelihoodSpec = field(default_factory=LikelihoodSpec)
    target: str = "delta"
    normalize: bool = True
    source: str = "<dict>"

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["hidden_sizes"] = list(self.hidden_sizes)
        d.pop("source")
        if self.likelihood.type == "normal":
            d["likelihood"].pop("df")
        if self.type == "linear_gaussian":
            d.pop("hidden_sizes"), d.pop("activation")
        return d


@dataclass(frozen=True)
class InferenceSpec:
    """A variational family plus the objective and optimiser that fit it. ``compile: true`` runs
    the analytic-KL step through ``torch.compile`` (CUDA graphs on a GPU; see
    :func:`pprl.inference.svi.compiled_step`)."""

    family: str
    name: str = ""
    options: dict = field(default_factory=dict)
    elbo: str = "plain"
    alpha: float = 0.0
    num_particles: int = 1
    optimizer: str = "adam"
    lr: float = 0.01
    lr_decay: float = 1.0
    steps: int = 2000
    batch_size: int = 256
    init_scale: float = 0.01
    grad_clip: float | None = 100.0
    compile: bool = False
    source: str = "<dict>"

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d.pop("source")
        if self.elbo != "renyi":
            d.pop("alpha")
        if not self.compile:
            d.pop("compile")
        return d

    def replace(self, **changes) -> "InferenceSpec":
        return dataclasses.replace(self, **changes)


# --------------------------------------------------------------------------- checking

def _type_name(t) -> str:
    names = {bool: "true/false", int: "an integer", float: "a number", str: "a string",
             list: "a list", dict: "a mapping"}
    return names.get(t, t.__name__)


def _check_type(value, expected, where: str, src: str):
    if expected is float and isinstance(value, str):
        try:  # YAML 1.1 reads '1e-3' (no dot) as a string
            value = float(value)
        except ValueError:
            pass
    ok = isinstance(value, expected)
    if expected is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    if not ok:
        raise SpecError(f"{src}: field '{where}' must be {_type_name(expected)}, "
                        f"got {value!r} ({type(value).__name__})")
    return float(value) if expected is float else value


def _check_choice(value, allowed, where: str, src: str):
    if value not in allowed:
        raise SpecError(f"{src}: field '{where}': unknown value {value!r}; "
                        f"allowed: {', '.join(map(str, allowed))}")
    return value


def _check_positive(value, where: str, src: str, strict: bool = True):
    if not (value > 0 if strict else value >= 0):  # also rejects NaN
        raise SpecError(f"{src}: field '{where}' must be {'> 0' if strict else '>= 0'}, got {value!r}")
    return value


def _check_keys(mapping, allowed, where: str, src: str):
    if not isinstance(mapping, dict):
        raise SpecError(f"{src}: {'field ' + repr(where) if where else 'the file'} must be a "
                        f"mapping, got {mapping!r}")
    unknown = sorted(set(mapping) - set(allowed), key=str)
    if unknown:
        prefix = f"{where}." if where else ""
        raise SpecError(f"{src}: unknown field '{prefix}{unknown[0]}'; allowed: "
                        f"{', '.join(sorted(allowed))}")


def _read_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: no such file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path}: the file must be a YAML mapping of fields, got {type(data).__name__}")
    return data


# --------------------------------------------------------------------------- model specs

def parse_prior(prior, where: str, src: str) -> PriorSpec:
    """Validate a ``prior: {weight_scale, bias_scale}`` mapping found at field ``where``."""
    _check_keys(prior, {"weight_scale", "bias_scale"}, where, src)
    p: dict[str, Any] = {}
    if "weight_scale" in prior:
        ws = prior["weight_scale"]
        if ws != "fan_in":
            if isinstance(ws, str):
                raise SpecError(f"{src}: field '{where}.weight_scale' must be a number > 0 or "
                                f"'fan_in', got {ws!r}")
            ws = _check_positive(_check_type(ws, float, f"{where}.weight_scale", src),
                                 f"{where}.weight_scale", src)
        p["weight_scale"] = ws
    if "bias_scale" in prior:
        p["bias_scale"] = _check_positive(_check_type(prior["bias_scale"], float, f"{where}.bias_scale", src),
                                          f"{where}.bias_scale", src)
    return PriorSpec(**p)


def parse_model_spec(data: dict, src: str = "<dict>") -> ModelSpec:
    """Validate a model-spec mapping (see ``models/*.yaml``); ``type: latent`` is a
    :class:`pprl.models.latent_spec.LatentSpec`."""
    if isinstance(data, dict) and data.get("type") == "latent":
        from .models.latent_spec import parse_latent_spec  # the model code builds on this module
        return parse_latent_spec(data, src)
    allowed = {f.name for f in dataclasses.fields(ModelSpec)} - {"source"}
    _check_keys(data, allowed, "", src)
    if "type" not in data:
        raise SpecError(f"{src}: missing field 'type'; allowed: {', '.join(MODEL_TYPES)}")
    mtype = _check_choice(data["type"], MODEL_TYPES, "type", src)
    linear = mtype == "linear_gaussian"
    out: dict[str, Any] = {"type": mtype, "source": src,
                           "name": _check_type(data.get("name", Path(src).stem), str, "name", src),
                           "target": "next_obs" if linear else "delta", "normalize": not linear}
    if linear:
        for key in ("hidden_sizes", "activation"):
            if key in data:
                raise SpecError(f"{src}: field '{key}' is not used by type 'linear_gaussian'; "
                                f"allowed: name, type, prior, likelihood, target, normalize")
    if "hidden_sizes" in data:
        sizes = _check_type(data["hidden_sizes"], list, "hidden_sizes", src)
        for i, s in enumerate(sizes):
            _check_positive(_check_type(s, int, f"hidden_sizes[{i}]", src), f"hidden_sizes[{i}]", src)
        out["hidden_sizes"] = tuple(sizes)
    if "activation" in data:
        out["activation"] = _check_choice(data["activation"], ACTIVATIONS, "activation", src)
    if "target" in data:
        out["target"] = _check_choice(data["target"], TARGETS, "target", src)
    if "normalize" in data:
        out["normalize"] = _check_type(data["normalize"], bool, "normalize", src)

    out["prior"] = parse_prior(data.get("prior", {}), "prior", src)

    lik = data.get("likelihood", {})
    _check_keys(lik, {"type", "df", "noise_scale", "learn_noise"}, "likelihood", src)
    li: dict[str, Any] = {}
    if "type" in lik:
        li["type"] = _check_choice(lik["type"], LIKELIHOODS, "likelihood.type", src)
        if linear and li["type"] != "normal":
            raise SpecError(f"{src}: field 'likelihood.type': type 'linear_gaussian' is conjugate only with "
                            f"Gaussian noise; allowed: normal")
    if "df" in lik:
        li["df"] = _check_positive(_check_type(lik["df"], float, "likelihood.df", src), "likelihood.df", src)
        if li.get("type", "normal") != "student_t":
            raise SpecError(f"{src}: field 'likelihood.df' needs likelihood.type 'student_t'")
    if "noise_scale" in lik:
        li["noise_scale"] = _check_positive(_check_type(lik["noise_scale"], float, "likelihood.noise_scale",
                                                        src), "likelihood.noise_scale", src)
    if "learn_noise" in lik:
        li["learn_noise"] = _check_type(lik["learn_noise"], bool, "likelihood.learn_noise", src)
        if linear and li["learn_noise"]:
            raise SpecError(f"{src}: field 'likelihood.learn_noise': type 'linear_gaussian' has known "
                            f"noise (its posterior is exact only then); allowed: false")
    out["likelihood"] = LikelihoodSpec(**li)
    return ModelSpec(**out)


# --------------------------------------------------------------------------- inference specs

def _families() -> dict:
    """The registered variational families (imported here, not at module load: the family
    modules build on the model code, which builds on this module)."""
    from .inference.families import FAMILIES
    return FAMILIES


def parse_inference_spec(data: dict, src: str = "<dict>") -> InferenceSpec:
    """Validate an inference-spec mapping (see ``inference/*.yaml``). The family's class says
    which objectives fit it and which options it takes (:class:`pprl.inference.families.Family`)."""
    families = _families()
    allowed = {f.name for f in dataclasses.fields(InferenceSpec)} - {"source"}
    _check_keys(data, allowed, "", src)
    if "family" not in data:
        raise SpecError(f"{src}: missing field 'family'; allowed: {', '.join(families)}")
    family = _check_choice(data["family"], tuple(families), "family", src)
    cls = families[family]
    out: dict[str, Any] = {"family": family, "source": src,
                           "name": _check_type(data.get("name", family), str, "name", src),
                           "elbo": cls.elbos[0]}

    schema = cls.options
    opts = data.get("options") or {}
    if not isinstance(opts, dict):
        raise SpecError(f"{src}: field 'options' must be a mapping, got {opts!r}")
    if schema:
        _check_keys(opts, set(schema), "options", src)
    elif opts:
        raise SpecError(f"{src}: family '{family}' takes no options, got 'options.{next(iter(opts))}'")
    if "elbo" in data:
        out["elbo"] = _check_choice(data["elbo"], ELBOS, "elbo", src)
    elbo = out["elbo"]
    if elbo not in cls.elbos:
        allowed_here = ", ".join(cls.elbos)
        if elbo == "analytic_kl":
            closed = [n for n, c in families.items() if "analytic_kl" in c.elbos]
            raise SpecError(f"{src}: field 'elbo': 'analytic_kl' needs a closed-form KL(q || prior), which "
                            f"only families {', '.join(closed)} have; allowed for '{family}': {allowed_here}")
        if cls.point_estimate:
            raise SpecError(f"{src}: field 'elbo': family '{family}' is fitted by MAP; allowed: {allowed_here}")
        raise SpecError(f"{src}: field 'elbo': {elbo!r} does not fit family '{family}'; allowed: {allowed_here}")
    options = {}
    for key, option in schema.items():
        default = option.default(elbo) if callable(option.default) else option.default
        value = _check_type(opts.get(key, default), option.type, f"options.{key}", src)
        if option.bound is not None and option.type in (int, float):
            _check_positive(value, f"options.{key}", src, strict=option.bound == "positive")
        if option.needs_elbo and value is True and elbo != option.needs_elbo:
            raise SpecError(f"{src}: field 'options.{key}' needs elbo '{option.needs_elbo}' "
                            f"(family '{family}' supports it only with that objective)")
        options[key] = value
    out["options"] = options

    typed = {"alpha": float, "num_particles": int, "lr": float, "lr_decay": float, "steps": int,
             "batch_size": int, "init_scale": float}
    for key, typ in typed.items():
        if key in data:
            out[key] = _check_type(data[key], typ, key, src)
            if key != "alpha":
                _check_positive(out[key], key, src)
    if "lr_decay" in out and not 0 < out["lr_decay"] <= 1:
        raise SpecError(f"{src}: field 'lr_decay' is the final learning rate as a fraction of 'lr'; "
                        f"allowed: 0 < lr_decay <= 1, got {out['lr_decay']}")
    if "grad_clip" in data:
        gc = data["grad_clip"]
        out["grad_clip"] = None if gc is None else _check_positive(_check_type(gc, float, "grad_clip", src),
                                                                   "grad_clip", src)
    if "optimizer" in data:
        out["optimizer"] = _check_choice(data["optimizer"], OPTIMIZERS, "optimizer", src)

    if "compile" in data:
        out["compile"] = _check_type(data["compile"], bool, "compile", src)
        if out["compile"] and elbo != "analytic_kl":
            closed = [n for n, c in families.items() if "analytic_kl" in c.elbos]
            raise SpecError(f"{src}: field 'compile' compiles the analytic-KL step (torch.compile; Pyro's traced "
                            f"ELBOs are not compiled); it needs elbo 'analytic_kl', which families "
                            f"{', '.join(closed)} have; got family {family!r} with elbo {elbo!r}")
    if "alpha" in data and elbo != "renyi":
        raise SpecError(f"{src}: field 'alpha' is only used with elbo 'renyi'")
    if elbo == "renyi" and out.get("alpha", 0.0) == 1.0:
        raise SpecError(f"{src}: field 'alpha': 1 is the plain ELBO; use elbo 'plain'")
    return InferenceSpec(**out)


# --------------------------------------------------------------------------- loading

_EXPERIMENT_FIELDS = ("env", "learner", "intrinsic", "auxiliary")


def _a_kind(spec) -> str:
    """"a model", "an inference" or "an experiment": the kind of a loaded spec, for error messages."""
    if getattr(spec, "type", None) == "latent":
        return "a model"
    return {ModelSpec: "a model", InferenceSpec: "an inference"}.get(type(spec), "an experiment")


def load_spec(path: str | Path):
    """Load and validate a YAML spec of any kind pprl reads: a mapping with ``type`` is a model
    spec (:class:`ModelSpec`), one with ``family`` an inference spec (:class:`InferenceSpec`), one
    with ``env``, ``learner`` or ``intrinsic`` an experiment spec
    (:class:`pprl.rl.experiment.ExperimentSpec`, read by :func:`pprl.load_experiment`), and one that
    also names a ``dataset`` an offline experiment (:class:`pprl.rl.offline_train.OfflineSpec`)."""
    src = str(path)
    data = _read_yaml(path)
    kinds = [kind for kind, found in (("model", "type" in data), ("inference", "family" in data),
                                      ("experiment", any(k in data for k in _EXPERIMENT_FIELDS)),
                                      ("channel", "channel" in data)) if found]
    if kinds == ["model"]:
        return parse_model_spec(data, src)
    if kinds == ["inference"]:
        return parse_inference_spec(data, src)
    if kinds == ["experiment"] and "dataset" in data:  # an offline experiment (pprl offline)
        from .rl.offline_train import load_offline_experiment
        return load_offline_experiment(path)
    if kinds == ["experiment"]:
        from .rl.experiment import load_experiment  # the RL code builds on this module
        return load_experiment(path)
    if kinds == ["channel"]:
        from .empowerment.spec import parse_channel  # an empowerment channel (channels/*.yaml)
        return parse_channel(data, src)
    raise SpecError(f"{src}: cannot tell the kind of spec; a model spec has field 'type' "
                    f"({', '.join(MODEL_TYPES)}), an inference spec has field 'family' "
                    f"({', '.join(_families())}), an experiment spec has fields 'env' and 'learner' "
                    f"(and 'intrinsic'), a channel spec has field 'channel' (gridworld, linear_gaussian)")


def as_model_spec(spec: ModelSpec | dict | str | Path) -> ModelSpec:
    """A model spec from a spec object, a mapping, a YAML path or the name of a bundled model
    (``bnn_dynamics`` finds ``models/bnn_dynamics.yaml`` shipped with pprl, from any directory).
    A ``type: latent`` spec is a :class:`pprl.models.latent_spec.LatentSpec`."""
    from .models.latent_spec import LatentSpec
    if isinstance(spec, (ModelSpec, LatentSpec)):
        return spec
    if isinstance(spec, dict):
        return parse_model_spec(spec)
    text = str(spec)
    if not Path(text).is_file():
        shipped = find_bundled("models", text)
        if shipped is None and not text.endswith((".yaml", ".yml")):
            raise SpecError(f"{text}: not a model spec file or a bundled model; bundled: "
                            f"{', '.join(bundled('models'))}")
        spec = shipped or spec
    loaded = load_spec(spec)
    if not isinstance(loaded, (ModelSpec, LatentSpec)):
        raise SpecError(f"{spec}: expected a model spec (field 'type'), got {_a_kind(loaded)} spec")
    return loaded


def as_inference_spec(spec: InferenceSpec | dict | str | Path) -> InferenceSpec:
    """An inference spec from a spec object, a mapping, a YAML path or a family name (the name
    picks ``inference/<name>.yaml`` shipped with pprl, found from any directory)."""
    if isinstance(spec, InferenceSpec):
        return spec
    if isinstance(spec, dict):
        return parse_inference_spec(spec)
    text = str(spec)
    if not Path(text).is_file():
        shipped = find_bundled("inference", text)
        if shipped is not None:
            return as_inference_spec(shipped)
        if not text.endswith((".yaml", ".yml")):
            raise SpecError(f"{text}: not a spec file or a family name; allowed families: "
                            f"{', '.join(_families())}")
    loaded = load_spec(text)
    if not isinstance(loaded, InferenceSpec):
        raise SpecError(f"{text}: expected an inference spec (field 'family'), got {_a_kind(loaded)} spec")
    return loaded
