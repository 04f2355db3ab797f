"""Experiment specs: one YAML file names the environment, the PPO learner's settings and the
intrinsic reward (``none``, or ``vime`` with a model spec from ``models/`` and a variational
family from ``inference/``). See ``examples/*.yaml``.

    name: vime_mountaincar
    env: pprl/SparseMountainCar-v0
    learner: {num_envs: 8, num_steps: 256, total_steps: 200000, ...}   # PPOConfig fields
    intrinsic:
      type: vime
      model: bnn_dynamics          # models/<name>.yaml or a path
      family: mean_field           # inference/<name>.yaml or a path
      eta: 0.1                     # r' = r + η(t)·r_int
      eta_schedule: constant       # or linear: η(t) = η·(1 − t/T)
      method: second_order         # InfoGain method / solver / options
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

from ..bundled import bundled, find_bundled
from ..inference.info_gain import METHODS, SOLVERS
from ..spec import (SpecError, _check_choice, _check_keys, _check_positive, _check_type, _read_yaml,
                    as_inference_spec, as_model_spec, InferenceSpec, ModelSpec)
from .ppo import PPOConfig

INTRINSIC_TYPES = ("none", "vime")
ETA_SCHEDULES = ("constant", "linear")
BONUS_SCALES = ("recent", "peak")


@dataclass(frozen=True)
class IntrinsicSpec:
    """The intrinsic reward and its weight η (VIME: Houthooft et al. 2016, Algorithm 1)."""

    type: str = "none"
    model: ModelSpec | None = None
    inference: InferenceSpec | None = None
    eta: float = 0.0
    eta_schedule: str = "constant"
    method: str = "second_order"      # InfoGain method
    solver: str = "gradient"          # InfoGain solver (method: update)
    steps: int = 5                    # InfoGain gradient steps (method: update)
    lr: float = 1.0                   # InfoGain step size (method: update)
    step_size: float = 1.0            # λ of the second-order approximation
    num_samples: int = 4              # common random numbers for E_q log p
    replay_size: int = 100_000        # FIFO replay pool
    fit_steps: int = 100              # SVI steps on the replay pool after each iteration
    fit_lr: float | None = None       # their step size (default: the family's lr · lr_decay)
    initial_fit_steps: int = 500      # SVI steps of the first fit
    median_window: int = 10           # normalise by the mean of the last k batch medians
    bonus_scale: str = "recent"       # divide by that mean (recent, VIME) or by its running max (peak)
    warn_info_gain: float = 30.0      # warn once if a batch's mean info gain exceeds this (nats)
    warn_elbo_drop: float = 5.0       # warn once if the pool's ELBO/transition falls more in one refit

    def eta_at(self, step: int, total_steps: int) -> float:
        if self.eta_schedule == "linear":
            return self.eta * max(0.0, 1.0 - step / total_steps)
        return self.eta


@dataclass(frozen=True)
class ExperimentSpec:
    name: str
    env: str
    learner: PPOConfig
    intrinsic: IntrinsicSpec
    env_kwargs: dict = field(default_factory=dict)
    source: str = "<dict>"

    def to_dict(self) -> dict:
        """A plain mapping (model and family specs inlined) that :func:`parse_experiment` reads back."""
        intrinsic = {"type": "none"}
        if self.intrinsic.type == "vime":
            intrinsic = {f.name: getattr(self.intrinsic, f.name) for f in dataclasses.fields(IntrinsicSpec)
                         if f.name not in ("model", "inference")}
            intrinsic["model"] = self.intrinsic.model.to_dict()
            intrinsic["family"] = self.intrinsic.inference.to_dict()
        learner = dataclasses.asdict(self.learner)
        learner["hidden_sizes"] = list(learner["hidden_sizes"])
        return {"name": self.name, "env": self.env, "env_kwargs": dict(self.env_kwargs),
                "learner": learner, "intrinsic": intrinsic}


def _resolve(ref, kind: str, src: str, base: Path | None):
    """A model/family reference: a mapping, a path (as given or next to the experiment file), or
    the name of a spec shipped with pprl (``models/<name>.yaml``, ``inference/<name>.yaml``)."""
    convert = as_model_spec if kind == "model" else as_inference_spec
    if isinstance(ref, dict):
        return convert(ref)
    if not isinstance(ref, str):
        raise SpecError(f"{src}: field 'intrinsic.{'model' if kind == 'model' else 'family'}' must be a "
                        f"name, a path or a mapping, got {ref!r}")
    folder = "models" if kind == "model" else "inference"
    for path in (Path(ref), *([base / ref] if base else [])):
        if path.is_file():
            return convert(path)
    shipped = find_bundled(folder, ref)
    if shipped is None:
        field_name = "model" if kind == "model" else "family"
        raise SpecError(f"{src}: field 'intrinsic.{field_name}': no {'model' if kind == 'model' else 'inference'} "
                        f"spec {ref!r}; bundled: {', '.join(bundled(folder))} (or give a path)")
    return convert(shipped)


def parse_intrinsic(data: dict | None, src: str, base: Path | None) -> IntrinsicSpec:
    if data is None:
        return IntrinsicSpec()
    names = {f.name for f in dataclasses.fields(IntrinsicSpec)} - {"inference"} | {"family"}
    _check_keys(data, names, "intrinsic", src)
    kind = _check_choice(data.get("type", "none"), INTRINSIC_TYPES, "intrinsic.type", src)
    if kind == "none":
        extra = sorted(set(data) - {"type"})
        if extra:
            raise SpecError(f"{src}: field 'intrinsic.{extra[0]}' needs intrinsic.type 'vime'")
        return IntrinsicSpec()
    for required in ("model", "family", "eta"):
        if required not in data:
            raise SpecError(f"{src}: field 'intrinsic.{required}' is required for intrinsic.type 'vime'")
    out = {"type": kind, "model": _resolve(data["model"], "model", src, base),
           "inference": _resolve(data["family"], "inference", src, base)}
    defaults = IntrinsicSpec()
    for f in dataclasses.fields(IntrinsicSpec):
        if f.name in out or f.name not in data:
            continue
        where, value = f"intrinsic.{f.name}", data[f.name]
        if f.name == "fit_lr" and value is None:  # the family's own final step size
            continue
        expected = float if f.name == "fit_lr" else type(getattr(defaults, f.name))
        value = _check_type(value, expected, where, src)
        if f.name == "eta_schedule":
            _check_choice(value, ETA_SCHEDULES, where, src)
        elif f.name == "bonus_scale":
            _check_choice(value, BONUS_SCALES, where, src)
        elif f.name == "method":
            _check_choice(value, METHODS, where, src)
        elif f.name == "solver":
            _check_choice(value, SOLVERS, where, src)
        else:
            _check_positive(value, where, src, strict=f.name not in ("eta", "fit_steps"))
            if f.name == "eta" and not math.isfinite(value):
                raise SpecError(f"{src}: field '{where}' must be finite, got {value!r}")
        out[f.name] = value
    spec = IntrinsicSpec(**out)
    if spec.method == "second_order" and spec.inference.family != "mean_field":
        raise SpecError(f"{src}: field 'intrinsic.method': 'second_order' needs family mean_field "
                        f"(VIME eq. 16), got {spec.inference.family!r}; use method 'update'")
    if spec.method == "update" and spec.solver == "linearized" and spec.model.likelihood.type != "normal":
        raise SpecError(f"{src}: field 'intrinsic.solver': 'linearized' needs a Gaussian likelihood, the model "
                        f"has {spec.model.likelihood.type!r}; allowed: gradient")
    if spec.inference.family in ("map", "flow"):
        raise SpecError(f"{src}: field 'intrinsic.family': information gain needs a Gaussian posterior; "
                        f"allowed: mean_field, low_rank, full_rank, laplace")
    return spec


def parse_experiment(data: dict, src: str = "<dict>", base: Path | None = None) -> ExperimentSpec:
    """Validate an experiment mapping; every error names the file and the field."""
    _check_keys(data, {"name", "env", "env_kwargs", "learner", "intrinsic"}, "", src)
    for required in ("env", "learner"):
        if required not in data:
            raise SpecError(f"{src}: field '{required}' is required")
    env = _check_type(data["env"], str, "env", src)
    env_kwargs = data.get("env_kwargs") or {}
    _check_keys(env_kwargs, set(env_kwargs) if isinstance(env_kwargs, dict) else set(), "env_kwargs", src)
    learner = PPOConfig.from_dict(data["learner"], src)
    intrinsic = parse_intrinsic(data.get("intrinsic"), src, base)
    name = _check_type(data.get("name", Path(src).stem), str, "name", src)
    return ExperimentSpec(name=name, env=env, learner=learner, intrinsic=intrinsic,
                          env_kwargs=dict(env_kwargs), source=src)


def load_experiment(spec: ExperimentSpec | dict | str | Path) -> ExperimentSpec:
    """An experiment spec from a spec object, a mapping, a YAML path or the name of a shipped
    example (``vime_mountaincar`` finds ``examples/vime_mountaincar.yaml`` from any directory)."""
    if isinstance(spec, ExperimentSpec):
        return spec
    if isinstance(spec, dict):
        return parse_experiment(spec)
    path = Path(spec)
    if not path.is_file():
        shipped = find_bundled("examples", str(spec))
        if shipped is None and not str(spec).endswith((".yaml", ".yml")):
            raise SpecError(f"{spec}: not an experiment file or a bundled example; bundled: "
                            f"{', '.join(bundled('examples'))}")
        path = shipped or path
    return parse_experiment(_read_yaml(path), str(path), path.parent)
