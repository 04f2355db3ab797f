"""What every learner's hyperparameter block shares: fields declared with their YAML rule
(``_field``), one SpecError naming the field for every bad value, and the round trip
``from_dict`` ↔ ``to_dict``. ``PPOConfig`` and ``SACConfig`` subclass :class:`LearnerConfig`."""
from __future__ import annotations

import dataclasses
from dataclasses import field
from typing import ClassVar

import numpy as np

from ...spec import SpecError, _check_keys

_INT, _FLOAT, _BOOL, _INTS, _STR = "an integer", "a number", "true or false", "a list of integers", "a string"


def _field(default, kind: str, ok, allowed: str, optional: bool = False):
    """A field with its YAML rule: a ``kind``, a range check ``ok`` (None: any) and what is allowed,
    in words; ``optional`` also allows null."""
    return field(default=default, metadata={"rule": (kind, ok, allowed, optional)})


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


class LearnerConfig:
    """Base of a learner's dataclass of hyperparameters (subclasses are ``@dataclass`` with
    ``_field`` fields and a ``type``); ``_validate_more`` adds checks across fields."""

    type: ClassVar[str]
    num_envs: int
    num_steps: int

    @property
    def steps_per_iteration(self) -> int:
        return self.num_envs * self.num_steps

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        """The keys of a ``learner:`` block of this type."""
        return ("type", *(f.name for f in dataclasses.fields(cls)))

    @classmethod
    def from_dict(cls, d: dict, source: str = "<dict>"):
        """Build from a spec's `learner:` mapping; every problem is one SpecError naming the field."""
        if not isinstance(d, dict):
            raise SpecError(f"{source}: field 'learner' must be a mapping, got {d!r}")
        _check_keys(d, cls.keys(), "learner", source)  # the one unknown-field message of every spec
        out = {}
        for key, value in d.items():
            if key == "type":
                if value != cls.type:
                    raise SpecError(f"{source}: field 'learner.type': got {value!r}; allowed: {cls.type}")
                continue
            out[key] = cls._check(key, value, source)
        return cls(**out).validate(source)

    def to_dict(self) -> dict:
        """The ``learner:`` block that :meth:`from_dict` reads back."""
        out = {"type": self.type, **dataclasses.asdict(self)}
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}

    def validate(self, source: str | None = None):
        """Check every field's type and range (also the ones set in Python)."""
        source = source or f"<{type(self).__name__}>"
        for f in dataclasses.fields(self):
            self._check(f.name, getattr(self, f.name), source)
        self._validate_more(source)
        return self

    def _validate_more(self, source: str) -> None:
        """Checks that involve several fields (none by default)."""

    @classmethod
    def _check(cls, key: str, value, source: str):
        """``value`` for field ``key`` by the field's rule (numbers as float, lists as tuples)."""
        kind, ok, allowed, optional = cls.__dataclass_fields__[key].metadata["rule"]
        bad = SpecError(f"{source}: field 'learner.{key}': got {value!r} ({type(value).__name__}); allowed: {allowed}")
        if value is None and optional:
            return None
        if kind == _FLOAT and isinstance(value, str):
            try:  # YAML 1.1 reads '1e-3' (no dot) as a string
                value = float(value)
            except ValueError:
                raise bad from None
        if kind == _BOOL and not isinstance(value, bool):
            raise bad
        if kind == _INT and not _is_int(value):
            raise bad
        if kind == _FLOAT:
            if not (_is_int(value) or isinstance(value, (float, np.floating))):
                raise bad
            value = float(value)
        if kind == _STR and not isinstance(value, str):
            raise bad
        if kind == _INTS:
            if not isinstance(value, (list, tuple)) or not all(_is_int(s) for s in value):
                raise bad
            value = tuple(int(s) for s in value)
        if ok is not None and not ok(value):  # comparisons with NaN are False, so NaN is rejected
            raise bad
        return value
