"""The spec of a latent (local-latent) dynamics model, ``type: latent`` in ``models/*.yaml``.

A latent model has one latent state z_t per time step (a VAE with stochastic latent dynamics,
Levine's CS 294-112 lecture on variational inference; Hafner et al. 2019 for free nats and KL
balancing):

    z_0 ~ N(0, I),   z_{t+1} | z_t, a_t ~ N(f(z_t, a_t), diag s(z_t, a_t)²),   o_t | z_t ~ p(o | g(z_t)),

with an amortised guide q(z_t | o_t) (``guide: per_step``), q(z_t | o_t, z_{t−1}, a_{t−1})
(``guide: filtering``) or q(z_t | o_{t:T}, a_{t:T}, z_{t−1}, a_{t−1}) (``guide: smoothing``, a backward
recurrence over the rest of the sequence). Every field is checked here with the helpers of :mod:`pprl.spec`, and every
problem is one :class:`~pprl.spec.SpecError` naming the file and the field.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..spec import (ACTIVATIONS, PriorSpec, SpecError, _check_choice, _check_keys, _check_positive, _check_type,
                    parse_prior)

OBSERVATION_KINDS = ("vector", "image")
NETWORKS = ("linear", "mlp", "conv")
TRANSITIONS = ("mlp", "linear", "none")
LATENT_LIKELIHOODS = ("normal", "bernoulli")
GUIDES = ("per_step", "filtering", "smoothing")
ESTIMATORS = ("reparameterised", "score_function")


@dataclass(frozen=True)
class ObservationSpec:
    """``vector`` observations of ``size`` numbers, or ``image`` observations of ``shape`` [C, H, W]."""

    kind: str = "vector"
    size: int | None = None
    shape: tuple[int, ...] | None = None

    @property
    def dims(self) -> tuple[int, ...]:
        """The shape of one observation: ``(size,)`` or ``(C, H, W)``."""
        return (self.size,) if self.kind == "vector" else tuple(self.shape)


@dataclass(frozen=True)
class NetworkSpec:
    """An encoder or decoder: ``linear`` (affine), ``mlp`` (``hidden_sizes``, ``activation``) or
    ``conv`` (images; :class:`~pprl.models.encoders.ConvEncoder` / ``ConvDecoder`` with ``features``)."""

    type: str = "mlp"
    hidden_sizes: tuple[int, ...] = (128,)
    activation: str = "elu"
    features: int = 128


@dataclass(frozen=True)
class TransitionSpec:
    """p(z_{t+1} | z_t, a_t): ``mlp`` (mean and learned scale from one network, scale ≥ ``min_scale``),
    ``linear`` (A z + B a + b, a learned diagonal scale) or ``none`` (z_t ~ N(0, I) independently).

    ``bayesian: true`` (mlp or linear) makes the transition's weights θ a global latent variable,
    θ ~ N(0, diag σ_p²) with σ_p from ``prior`` (``weight_scale``: a number or ``fan_in`` = 1/√fan_in;
    ``bias_scale``), and z_{t+1} = z_t + f(z_t, a_t; θ) + s ⊙ ε with f an MLP of ``hidden_sizes`` (none
    for ``linear``) and one learned diagonal scale s ≥ ``min_scale`` for every state, the likelihood
    of VIME's Bayesian dynamics model (Houthooft et al. 2016) on the latent codes. The guide holds
    q(θ) = N(μ, diag σ²), and the ELBO gains −KL(q(θ) ‖ p(θ)), counted once for the whole data set."""

    type: str = "mlp"
    hidden_sizes: tuple[int, ...] = (128,)
    activation: str = "elu"
    min_scale: float = 0.01
    bayesian: bool = False
    prior: PriorSpec = field(default_factory=PriorSpec)


@dataclass(frozen=True)
class LatentLikelihoodSpec:
    """p(o_t | z_t): ``normal`` with one scale σ shared by every coordinate (fixed, or learned from
    ``scale``), or ``bernoulli`` per pixel (observations in [0, 1], the decoder gives logits)."""

    type: str = "normal"
    scale: float = 0.1
    learn_scale: bool = True


@dataclass(frozen=True)
class LatentSpec:
    """A latent dynamics model and the options of its objective (see the module docstring).

    ``free_nats`` > 0 replaces each step's KL (averaged over the minibatch) by max(KL, free_nats);
    ``kl_balance`` = α replaces KL(q ‖ p) by α KL(sg q ‖ p) + (1 − α) KL(q ‖ sg p) (``sg``: stop
    gradient; the same value, the prior gets α and the guide 1 − α of their plain KL gradients).
    ``overshooting`` = D ≥ 2 adds latent overshooting (Hafner et al. 2019): ``overshooting_scale`` β
    times the mean over d = 2 … D of the KL from the guide's q(z_t | ·) (held fixed) to the d-step
    open-loop prior, so the transition is trained to predict D steps ahead, not only one. Any of the
    three switches the objective to the analytic-KL form of
    the ELBO; left out, the model is fitted by Pyro's Monte-Carlo ``Trace_ELBO``.
    ``estimator: score_function`` fits with ``TraceGraph_ELBO`` and the latent sites marked
    non-reparameterisable (with a learned baseline). ``sequence_length`` L: training windows of L
    transitions (L + 1 observations)."""

    type: str
    observation: ObservationSpec
    name: str = ""
    latent_size: int = 8
    encoder: NetworkSpec = field(default_factory=NetworkSpec)
    decoder: NetworkSpec = field(default_factory=NetworkSpec)
    transition: TransitionSpec = field(default_factory=TransitionSpec)
    likelihood: LatentLikelihoodSpec = field(default_factory=LatentLikelihoodSpec)
    guide: str = "per_step"
    estimator: str = "reparameterised"
    free_nats: float = 0.0
    kl_balance: float | None = None
    overshooting: int = 0
    overshooting_scale: float = 1.0
    sequence_length: int = 16
    source: str = "<dict>"

    @property
    def obs_shape(self) -> tuple[int, ...]:
        return self.observation.dims

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d.pop("source")
        obs = d["observation"]
        if self.observation.kind == "vector":
            obs.pop("shape")
        else:
            obs.pop("size")
            obs["shape"] = list(obs["shape"])
        used = {"linear": ("type",), "none": ("type",), "mlp": ("type", "hidden_sizes", "activation"),
                "conv": ("type", "features")}
        for key in ("encoder", "decoder", "transition"):
            keep = used[d[key]["type"]]
            if key == "transition" and (d[key]["type"] == "mlp" or self.transition.bayesian):
                keep += ("min_scale",)
            if key == "transition" and self.transition.bayesian:
                keep += ("bayesian", "prior")
            if key == "decoder" and d[key]["type"] == "conv":
                keep = ("type",)
            d[key] = {k: list(v) if k == "hidden_sizes" else v for k, v in d[key].items() if k in keep}
        if self.kl_balance is None:
            d.pop("kl_balance")
        if self.overshooting < 2:
            d.pop("overshooting_scale")
            if not self.overshooting:
                d.pop("overshooting")
        if self.likelihood.type == "bernoulli":
            d["likelihood"] = {"type": "bernoulli"}
        return d


def _sizes(value, where: str, src: str) -> tuple[int, ...]:
    sizes = _check_type(value, list, where, src)
    for i, s in enumerate(sizes):
        _check_positive(_check_type(s, int, f"{where}[{i}]", src), f"{where}[{i}]", src)
    return tuple(sizes)


def _network(data, where: str, src: str, image: bool) -> NetworkSpec:
    _check_keys(data, {"type", "hidden_sizes", "activation", "features"}, where, src)
    out: dict[str, Any] = {}
    if "type" in data:
        out["type"] = _check_choice(data["type"], NETWORKS, f"{where}.type", src)
        if out["type"] == "conv" and not image:
            raise SpecError(f"{src}: field '{where}.type': 'conv' needs image observations "
                            f"(observation.kind: image); allowed for vector observations: linear, mlp")
    if "hidden_sizes" in data:
        out["hidden_sizes"] = _sizes(data["hidden_sizes"], f"{where}.hidden_sizes", src)
        if not out["hidden_sizes"] and out.get("type", "mlp") == "mlp":
            raise SpecError(f"{src}: field '{where}.hidden_sizes' must list at least one layer for an "
                            f"'mlp' (use type 'linear' for none)")
    if "activation" in data:
        out["activation"] = _check_choice(data["activation"], ACTIVATIONS, f"{where}.activation", src)
    if "features" in data:
        out["features"] = _check_positive(_check_type(data["features"], int, f"{where}.features", src),
                                          f"{where}.features", src)
    return NetworkSpec(**out)


def parse_latent_spec(data: dict, src: str = "<dict>") -> LatentSpec:
    """Validate a ``type: latent`` model-spec mapping (see ``models/latent_*.yaml``)."""
    allowed = {f.name for f in dataclasses.fields(LatentSpec)} - {"source"}
    _check_keys(data, allowed, "", src)
    out: dict[str, Any] = {"type": "latent", "source": src,
                           "name": _check_type(data.get("name", Path(src).stem), str, "name", src)}
    if "observation" not in data:
        raise SpecError(f"{src}: missing field 'observation'; e.g. {{kind: vector, size: 3}} or "
                        f"{{kind: image, shape: [1, 32, 32]}}")
    obs = data["observation"]
    _check_keys(obs, {"kind", "size", "shape"}, "observation", src)
    kind = _check_choice(obs.get("kind", "vector"), OBSERVATION_KINDS, "observation.kind", src)
    if kind == "vector":
        if "shape" in obs:
            raise SpecError(f"{src}: field 'observation.shape' is for kind 'image'; vector observations "
                            f"take 'observation.size'")
        if "size" not in obs:
            raise SpecError(f"{src}: missing field 'observation.size' (the length of a vector observation)")
        size = _check_positive(_check_type(obs["size"], int, "observation.size", src), "observation.size", src)
        out["observation"] = ObservationSpec("vector", size=size)
    else:
        if "size" in obs:
            raise SpecError(f"{src}: field 'observation.size' is for kind 'vector'; image observations "
                            f"take 'observation.shape' [C, H, W]")
        if "shape" not in obs:
            raise SpecError(f"{src}: missing field 'observation.shape' ([C, H, W] of an image observation)")
        shape = _sizes(obs["shape"], "observation.shape", src)
        if len(shape) != 3:
            raise SpecError(f"{src}: field 'observation.shape' must be [C, H, W], got {list(shape)}")
        if shape[1] < 4 or shape[2] < 4 or shape[1] % 4 or shape[2] % 4:
            raise SpecError(f"{src}: field 'observation.shape': H and W must be multiples of 4 "
                            f"(two stride-2 convolutions), got {list(shape)}")
        out["observation"] = ObservationSpec("image", shape=shape)
    image = kind == "image"
    if "latent_size" in data:
        out["latent_size"] = _check_positive(_check_type(data["latent_size"], int, "latent_size", src),
                                             "latent_size", src)
    default_net = {"type": "conv"} if image else {}
    out["encoder"] = _network(data.get("encoder", default_net), "encoder", src, image)
    out["decoder"] = _network(data.get("decoder", default_net), "decoder", src, image)

    tr = data.get("transition", {})
    _check_keys(tr, {"type", "hidden_sizes", "activation", "min_scale", "bayesian", "prior"}, "transition", src)
    t: dict[str, Any] = {}
    if "type" in tr:
        t["type"] = _check_choice(tr["type"], TRANSITIONS, "transition.type", src)
    if "hidden_sizes" in tr:
        t["hidden_sizes"] = _sizes(tr["hidden_sizes"], "transition.hidden_sizes", src)
    if "activation" in tr:
        t["activation"] = _check_choice(tr["activation"], ACTIVATIONS, "transition.activation", src)
    if "min_scale" in tr:
        t["min_scale"] = _check_positive(_check_type(tr["min_scale"], float, "transition.min_scale", src),
                                         "transition.min_scale", src)
    if "bayesian" in tr:
        t["bayesian"] = _check_type(tr["bayesian"], bool, "transition.bayesian", src)
        if t["bayesian"] and t.get("type", "mlp") == "none":
            raise SpecError(f"{src}: field 'transition.bayesian': transition.type 'none' has no weights; "
                            f"allowed transition.type: mlp, linear")
    if "prior" in tr:
        if not t.get("bayesian"):
            raise SpecError(f"{src}: field 'transition.prior' is the prior of Bayesian transition weights; "
                            f"set transition.bayesian: true as well")
        t["prior"] = parse_prior(tr["prior"], "transition.prior", src)
    out["transition"] = TransitionSpec(**t)

    lik = data.get("likelihood", {})
    _check_keys(lik, {"type", "scale", "learn_scale"}, "likelihood", src)
    li: dict[str, Any] = {}
    if "type" in lik:
        li["type"] = _check_choice(lik["type"], LATENT_LIKELIHOODS, "likelihood.type", src)
    for key, typ in (("scale", float), ("learn_scale", bool)):
        if key in lik:
            if li.get("type") == "bernoulli":
                raise SpecError(f"{src}: field 'likelihood.{key}' is not used by likelihood.type "
                                f"'bernoulli'; allowed: type")
            li[key] = _check_type(lik[key], typ, f"likelihood.{key}", src)
    if "scale" in li:
        _check_positive(li["scale"], "likelihood.scale", src)
    out["likelihood"] = LatentLikelihoodSpec(**li)

    if "guide" in data:
        out["guide"] = _check_choice(data["guide"], GUIDES, "guide", src)
    if "estimator" in data:
        out["estimator"] = _check_choice(data["estimator"], ESTIMATORS, "estimator", src)
    if "free_nats" in data:
        out["free_nats"] = _check_positive(_check_type(data["free_nats"], float, "free_nats", src),
                                           "free_nats", src, strict=False)
    if data.get("kl_balance") is not None:
        kb = _check_type(data["kl_balance"], float, "kl_balance", src)
        if not 0 <= kb <= 1:
            raise SpecError(f"{src}: field 'kl_balance' is the prior's share α of the KL gradient; "
                            f"allowed: 0 <= kl_balance <= 1, got {kb}")
        if out["transition"].type == "none":
            raise SpecError(f"{src}: field 'kl_balance' needs a learned prior; transition.type 'none' has "
                            f"a fixed N(0, I); allowed transition.type: mlp, linear")
        out["kl_balance"] = kb
    if "sequence_length" in data:
        out["sequence_length"] = _check_positive(_check_type(data["sequence_length"], int, "sequence_length",
                                                             src), "sequence_length", src, strict=False)
    if "overshooting" in data:
        D = _check_positive(_check_type(data["overshooting"], int, "overshooting", src), "overshooting", src,
                            strict=False)
        L = out.get("sequence_length", LatentSpec.sequence_length)
        if D > L:
            raise SpecError(f"{src}: field 'overshooting': the distance D can be at most sequence_length "
                            f"({L}), the transitions in a training window; got {D}")
        if D > 1 and out["transition"].type == "none":
            raise SpecError(f"{src}: field 'overshooting' trains the transition's open-loop prediction; "
                            f"transition.type 'none' has none; allowed transition.type: mlp, linear")
        out["overshooting"] = D
    if "overshooting_scale" in data:
        if out.get("overshooting", 0) < 2:
            raise SpecError(f"{src}: field 'overshooting_scale' weighs latent overshooting, which is off; "
                            f"set overshooting to a distance >= 2 as well")
        scale = _check_positive(_check_type(data["overshooting_scale"], float, "overshooting_scale", src),
                                "overshooting_scale", src)
        if not math.isfinite(scale):
            raise SpecError(f"{src}: field 'overshooting_scale' must be finite, got {scale}")
        out["overshooting_scale"] = scale
    if out.get("estimator") == "score_function" and (out.get("free_nats") or out.get("kl_balance") is not None
                                                     or out.get("overshooting", 0) > 1):
        what = ("free_nats" if out.get("free_nats") else "kl_balance" if out.get("kl_balance") is not None
                else "overshooting")
        raise SpecError(f"{src}: field '{what}' needs the analytic-KL objective, which is reparameterised; "
                        f"allowed with estimator 'score_function': free_nats 0, no kl_balance, no overshooting")
    if out.get("guide", "per_step") != "per_step" and out["transition"].type == "none":
        raise SpecError(f"{src}: field 'guide': {out['guide']!r} conditions on z_(t-1) and later frames, which "
                        f"transition.type 'none' makes independent of z_t; allowed: per_step")
    return LatentSpec(**out)
