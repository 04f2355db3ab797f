"""What the plug-in registries share: a plug-in is a class with a ``spec_class`` (its YAML block's
dataclass, with ``type``, ``keys()``, ``from_dict`` and ``to_dict``), listed under its ``type`` name
in ``LEARNERS`` (learners/), ``INTRINSICS`` (intrinsic/) or ``AUXILIARY`` (auxiliary/). A new method
is a new module plus one line in its registry."""
from __future__ import annotations

from pathlib import Path

from ..bundled import bundled, find_bundled
from ..spec import SpecError, _check_choice, _check_keys, as_inference_spec, as_model_spec


def plugin(registry: dict, data: dict, where: str, src: str, default: str | None = None):
    """The plug-in class a ``where:`` block names by ``type`` (``default`` when absent); an unknown
    type is a SpecError listing the known ones. Every key of the block must be one that type
    reads; a key only another type reads says which type it needs."""
    if not isinstance(data, dict):
        raise SpecError(f"{src}: field '{where}' must be a mapping, got {data!r}")
    if "type" not in data and default is None:
        raise SpecError(f"{src}: field '{where}.type' is required; allowed: {', '.join(registry) or '(none registered)'}")
    kind = data.get("type", default)
    if not registry:
        raise SpecError(f"{src}: field '{where}.type': unknown value {kind!r}; no {where} type is registered")
    cls = registry[_check_choice(kind, tuple(registry), f"{where}.type", src)]
    allowed = set(cls.spec_class.keys())
    unknown = sorted(set(data) - allowed, key=str)
    if unknown:
        owners = [name for name, other in registry.items() if unknown[0] in other.spec_class.keys()]
        if owners:
            raise SpecError(f"{src}: field '{where}.{unknown[0]}' needs {where}.type "
                            f"{' or '.join(repr(o) for o in owners)}")
        _check_keys(data, allowed, where, src)
    return cls


def resolve_spec(ref, kind: str, where: str, src: str, base: Path | None):
    """A model (``kind="model"``) or variational-family (``kind="inference"``) reference in an
    experiment: a mapping, a path (as given or next to the experiment file), or the name of a spec
    shipped with pprl (``models/<name>.yaml``, ``inference/<name>.yaml``)."""
    convert = as_model_spec if kind == "model" else as_inference_spec
    if isinstance(ref, dict):
        return convert(ref)
    if not isinstance(ref, str):
        raise SpecError(f"{src}: field '{where}' must be a name, a path or a mapping, got {ref!r}")
    for path in (Path(ref), *([base / ref] if base else [])):
        if path.is_file():
            return convert(path)
    shipped = find_bundled("models" if kind == "model" else "inference", ref)
    if shipped is None:
        raise SpecError(f"{src}: field '{where}': no {kind} spec {ref!r}; "
                        f"bundled: {', '.join(bundled('models' if kind == 'model' else 'inference'))} (or give a path)")
    return convert(shipped)
