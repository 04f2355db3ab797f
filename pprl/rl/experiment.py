"""Experiment specs: one YAML file names the environment, the learner, the intrinsic reward and
any auxiliary losses, each a plug-in chosen by ``type`` from its registry (``LEARNERS``,
``INTRINSICS``, ``AUXILIARY``). See ``examples/*.yaml``.

    name: vime_mountaincar
    env: pprl/SparseMountainCar-v0
    extrinsic_weight: 1.0                         # optional; 0 switches the env's reward off
    learner: {type: ppo, num_envs: 8, ...}       # type defaults to ppo; PPOConfig fields
    intrinsic: {type: vime, model: ..., ...}     # type defaults to none; see pprl.rl.intrinsic
    auxiliary: [{type: ..., weight: 0.1}]         # optional; see pprl.rl.auxiliary
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from ..bundled import bundled, find_bundled
from ..spec import SpecError, _check_keys, _check_type, _read_yaml
from .auxiliary import AUXILIARY, AuxiliarySpec
from .intrinsic import INTRINSICS, IntrinsicSpec, NoBonusSpec
from .learners import LEARNERS, LearnerSpec
from .registry import plugin


@dataclass(frozen=True)
class ExperimentSpec:
    name: str
    env: str
    learner: LearnerSpec
    intrinsic: IntrinsicSpec
    auxiliary: tuple[AuxiliarySpec, ...] = ()
    env_kwargs: dict = field(default_factory=dict)
    extrinsic_weight: float = 1.0  # the learner optimises extrinsic_weight·r + η(t)·r_int
    source: str = "<dict>"

    def to_dict(self) -> dict:
        """A plain mapping (model and family specs inlined) that :func:`parse_experiment` reads back."""
        return {"name": self.name, "env": self.env, "env_kwargs": dict(self.env_kwargs),
                "extrinsic_weight": self.extrinsic_weight,
                "learner": self.learner.to_dict(), "intrinsic": self.intrinsic.to_dict(),
                "auxiliary": [a.to_dict() for a in self.auxiliary]}


def parse_learner(data, src: str) -> LearnerSpec:
    cls = plugin(LEARNERS, data, "learner", src, default="ppo")
    return cls.spec_class.from_dict(data, src)


def parse_intrinsic(data: dict | None, src: str, base: Path | None) -> IntrinsicSpec:
    if data is None:
        return NoBonusSpec()
    cls = plugin(INTRINSICS, data, "intrinsic", src, default="none")
    return cls.spec_class.from_dict(data, src, base)


def parse_auxiliary(data, src: str, base: Path | None) -> tuple[AuxiliarySpec, ...]:
    if data is None:
        return ()
    if not isinstance(data, list):
        raise SpecError(f"{src}: field 'auxiliary' must be a list of {{type: ..., ...}} entries, got {data!r}")
    specs = []
    for i, entry in enumerate(data):
        where = f"auxiliary[{i}]"
        cls = plugin(AUXILIARY, entry, where, src)
        specs.append(cls.spec_class.from_dict(entry, src, base, where))
    return tuple(specs)


def parse_experiment(data: dict, src: str = "<dict>", base: Path | None = None) -> ExperimentSpec:
    """Validate an experiment mapping; every error names the file and the field."""
    _check_keys(data, {"name", "env", "env_kwargs", "extrinsic_weight", "learner", "intrinsic", "auxiliary"}, "",
                src)
    for required in ("env", "learner"):
        if required not in data:
            raise SpecError(f"{src}: field '{required}' is required")
    env = _check_type(data["env"], str, "env", src)
    env_kwargs = data.get("env_kwargs") or {}
    _check_keys(env_kwargs, set(env_kwargs) if isinstance(env_kwargs, dict) else set(), "env_kwargs", src)
    learner = parse_learner(data["learner"], src)
    intrinsic = parse_intrinsic(data.get("intrinsic"), src, base)
    auxiliary = parse_auxiliary(data.get("auxiliary"), src, base)
    name = _check_type(data.get("name", Path(src).stem), str, "name", src)
    weight = _check_type(data.get("extrinsic_weight", 1.0), float, "extrinsic_weight", src)
    if not (weight >= 0 and math.isfinite(weight)):
        raise SpecError(f"{src}: field 'extrinsic_weight' must be a finite number >= 0, got {weight!r}")
    return ExperimentSpec(name=name, env=env, learner=learner, intrinsic=intrinsic, auxiliary=auxiliary,
                          env_kwargs=dict(env_kwargs), extrinsic_weight=weight, source=src)


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
