"""``intrinsic: {type: vime, ...}``: VIME's information-gain bonus (Houthooft et al. 2016).

    intrinsic:
      type: vime
      model: bnn_dynamics          # models/<name>.yaml or a path
      family: mean_field           # inference/<name>.yaml or a path
      eta: 0.1                     # r' = r + η(t)·r_int
      eta_schedule: constant       # or linear: η(t) = η·(1 − t/T)
      method: second_order         # InfoGain method / solver / options
      encoder: {model: latent_mountaincar_pixels, fit_steps: 500}   # optional: VIME from pixels

With ``encoder:`` every frame is first encoded to z = E_q[z | o] by a latent model fitted once and
then frozen, and the dynamics model is of z' given (z, a) (:mod:`.pixel_encoder` says why).
``model: latent`` makes that dynamics model the latent model's own transition, whose weights must
be Bayesian (``transition.bayesian: true``): VIME starts from the q(θ) the ELBO fitted jointly with
the encoder (:meth:`~pprl.inference.latent_posterior.LatentPosterior.transition_posterior`) instead
of fitting a separate BNN to the codes (``initial_fit_steps`` is not used), and refits it on the
replay pool of codes as usual, the transition's noise scale with it (a point estimate that starts at
the latent fit's). The latent transition reads one code, so this needs ``encoder.history: 1``.
"""
from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch

from ...data import ReplayPool, Transitions
from ...inference.families import FAMILIES, family_class, info_gain_support_error
from ...inference.info_gain import METHODS, SOLVERS, InfoGain
from ...inference.posterior import Posterior, posterior_from_state
from ...inference.svi import elbo_per_transition, fit
from ...models.dynamics import build_model
from ...spec import InferenceSpec, ModelSpec, SpecError, _check_choice, _check_positive, _check_type
from ..registry import resolve_spec
from .base import Health, IntrinsicSpec
from .pixel_encoder import EncoderSpec, FrozenEncoder

BONUS_SCALES = ("recent", "peak")
LATENT = "latent"  # intrinsic.model: the encoder's latent model's Bayesian transition


class VIMEHealthWarning(UserWarning):
    """VIME's posterior no longer models the data it scores (see :class:`VIME`)."""


@dataclass(frozen=True)
class VIMESpec(IntrinsicSpec):
    """VIME's settings: the dynamics model, its variational family and the information-gain options."""

    type: ClassVar[str] = "vime"
    model: ModelSpec | None = None    # None: the encoder's latent transition (``model: latent``)
    inference: InferenceSpec | None = None
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
    encoder: EncoderSpec | None = None  # VIME from pixels: a frozen latent-model encoder (pixel_encoder.py)

    _CHOICES: ClassVar[dict] = {"method": METHODS, "solver": SOLVERS, "bonus_scale": BONUS_SCALES}

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        return ("type", *("family" if f.name == "inference" else f.name for f in dataclasses.fields(cls)))

    @classmethod
    def from_dict(cls, data: dict, src: str = "<dict>", base: Path | None = None) -> "VIMESpec":
        for required in ("model", "family", "eta"):
            if required not in data:
                raise SpecError(f"{src}: field 'intrinsic.{required}' is required for intrinsic.type 'vime'")
        latent = data["model"] == LATENT
        out = {"model": None if latent else resolve_spec(data["model"], "model", "intrinsic.model", src, base),
               "inference": resolve_spec(data["family"], "inference", "intrinsic.family", src, base),
               **cls._common(data, src)}
        defaults = cls()
        for f in dataclasses.fields(cls):
            if f.name in out or f.name not in data:
                continue
            if f.name == "encoder":
                if data["encoder"] is not None:
                    out["encoder"] = EncoderSpec.from_dict(data["encoder"], src, base)
                continue
            where, value = f"intrinsic.{f.name}", data[f.name]
            if f.name == "fit_lr" and value is None:  # the family's own final step size
                continue
            expected = float if f.name == "fit_lr" else type(getattr(defaults, f.name))
            value = _check_type(value, expected, where, src)
            if f.name in cls._CHOICES:
                _check_choice(value, cls._CHOICES[f.name], where, src)
            else:
                _check_positive(value, where, src, strict=f.name != "fit_steps")
            out[f.name] = value
        spec = cls(**out)
        _check_family(spec, src)
        if latent:
            _check_latent(spec, src)
        elif spec.method == "update" and spec.solver == "linearized" and spec.model.likelihood.type != "normal":
            raise SpecError(f"{src}: field 'intrinsic.solver': 'linearized' needs a Gaussian likelihood, the model "
                            f"has {spec.model.likelihood.type!r}; allowed: gradient")
        return spec

    def to_dict(self) -> dict:
        """The block with the model and family specs inlined."""
        out = {"type": self.type, **{f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                                     if f.name not in ("model", "inference", "encoder")}}
        if self.encoder is not None:
            out["encoder"] = self.encoder.to_dict()
        out["model"] = LATENT if self.model is None else self.model.to_dict()
        out["family"] = self.inference.to_dict()
        return out


def _check_latent(spec: VIMESpec, src: str) -> None:
    """``model: latent`` needs an encoder whose latent model has Bayesian transition weights, read one
    code at a time, and a diagonal-Gaussian family (the form of the latent model's q(θ))."""
    enc = spec.encoder
    if enc is None:
        raise SpecError(f"{src}: field 'intrinsic.model': 'latent' is the transition of the encoder's latent model; "
                        f"add intrinsic.encoder (VIME from pixels), or name a dynamics model")
    if not enc.model.transition.bayesian:
        raise SpecError(f"{src}: field 'intrinsic.model': 'latent' needs Bayesian transition weights in "
                        f"intrinsic.encoder.model {enc.model.name!r}; set transition.bayesian: true there")
    if enc.history != 1:
        raise SpecError(f"{src}: field 'intrinsic.encoder.history': the latent transition reads one code, z_t, "
                        f"so model 'latent' needs history 1, got {enc.history}")
    if not family_class(spec.inference.family).diagonal_gaussian:
        allowed = ", ".join(name for name, cls in FAMILIES.items() if cls.diagonal_gaussian)
        raise SpecError(f"{src}: field 'intrinsic.family': the latent model's q(θ) is a diagonal Gaussian; with "
                        f"model 'latent' allowed: {allowed}, got {spec.inference.family!r}")


def _check_family(spec: VIMESpec, src: str) -> None:
    """The family must support this information-gain method and solver (its own declaration,
    ``Family.info_gain``; the same check :class:`InfoGain` makes)."""
    problem = info_gain_support_error(family_class(spec.inference.family), spec.method, spec.solver)
    if problem:
        raise SpecError(f"{src}: field 'intrinsic.family': {problem}")


class VIME:
    """VIME (Houthooft et al. 2016, Algorithm 1): r_int = KL[q(θ; φ') ‖ q(θ; φ)] / m̄, the
    information gain of each transition about the dynamics posterior (:class:`InfoGain`)
    divided by m̄, the mean of the medians of the last k batches' gains (VIME's rule,
    ``bonus_scale: recent``), or by the largest such m̄ seen so far (``bonus_scale: peak``). The
    recent rule keeps the bonus at ~1 per transition however little is left to learn, so a
    positive bonus summed over a long episode can outweigh a sparse goal reward that ends the
    episode; the peak rule lets the bonus fade as the information gain does.

    After each iteration the batch enters a FIFO replay pool and q is refit on the pool by SVI
    (:meth:`InfoGain.update`); the first batch, before any posterior exists, fits q from scratch.
    Every refit first moves the model's normalisation to the pool and re-expresses q in the new
    units (:meth:`Posterior.renormalize`), so the model keeps seeing unit-scale inputs and
    targets as the agent reaches new states, instead of the first batch's scale forever.

    Health (``stats``, ``warnings``): the mean information gain of each batch and the ELBO per
    transition of the pool after each refit (:func:`elbo_per_transition`). A batch mean above
    ``spec.warn_info_gain`` nats or an ELBO that falls by more than ``spec.warn_elbo_drop`` nats
    per transition between refits raises one warning each per run.
    """

    spec_class = VIMESpec
    health = {"info_gain": Health("mean info gain (nats / transition)", "ig", log=True),
              "elbo_per_transition": Health("pool ELBO (nats / transition)", "elbo")}

    def __init__(self, spec: VIMESpec, obs_dim: int, act_dim: int, *, seed: int = 0, device="cpu"):
        # with an encoder (VIME from pixels) the dynamics model sees latent states, not frames
        self.encoder = None if spec.encoder is None else FrozenEncoder(spec.encoder, obs_dim, act_dim, seed=seed,
                                                                        device=device)
        self.spec, self.act_dim = spec, act_dim
        self.obs_dim = obs_dim if spec.encoder is None else self.encoder.code_size
        self.seed, self.device = seed, torch.device(device)
        self._encoded: tuple[Transitions, Transitions] | None = None  # the last batch and its codes
        self.pool = ReplayPool(spec.replay_size)
        self.info_gain: InfoGain | None = None
        self.medians: list[float] = []
        self.peak_scale = 0.0
        self.stats: dict[str, float] = {}
        self.fits = 0
        self.last_elbo: float | None = None
        self.warned: set[str] = set()

    def _info_gain(self, posterior: Posterior) -> InfoGain:
        s = self.spec
        return InfoGain(posterior, s.method, solver=s.solver, steps=s.steps, lr=s.lr, step_size=s.step_size,
                        num_samples=s.num_samples, seed=self.seed)

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self.warned:
            self.warned.add(key)
            warnings.warn(message, VIMEHealthWarning, stacklevel=3)

    def _latent(self, transitions: Transitions, keep: bool) -> Transitions | None:
        """The batch the dynamics model sees: as given, or encoded (None before the encoder's fit)."""
        if self.encoder is None:
            return transitions
        if self._encoded is not None and self._encoded[0] is transitions:  # reward's batch, back in update
            return self._encoded[1]
        latent = self.encoder(transitions, keep=keep)
        self._encoded = None if latent is None else (transitions, latent)
        return latent

    def reward(self, transitions: Transitions) -> torch.Tensor:
        """Normalised information gain of each transition → ``[N]`` (CPU float32); 0 while the
        encoder (if any) waits for its ``frames_to_fit`` transitions."""
        n = len(transitions)
        transitions = self._latent(transitions, keep=True)
        if transitions is None:
            self.stats = {}
            return torch.zeros(n)
        if self.info_gain is None and self.spec.model is None:  # q(θ) of the latent model's own transition
            posterior = self.encoder.posterior.transition_posterior(self.spec.inference, learn_noise=True)
            self.info_gain = self._info_gain(posterior)
        elif self.info_gain is None:
            model = build_model(self.spec.model, self.obs_dim, self.act_dim)
            self.fits += 1
            posterior = fit(model, self.spec.inference, transitions, steps=self.spec.initial_fit_steps,
                            seed=self.seed + self.fits, device=self.device, progress=False)
            self.info_gain = self._info_gain(posterior)
        gain = self.info_gain(transitions).float().cpu()
        self.medians = (self.medians + [float(gain.median())])[-self.spec.median_window:]
        recent = sum(self.medians) / len(self.medians)
        self.peak_scale = max(self.peak_scale, recent)
        scale = max(recent if self.spec.bonus_scale == "recent" else self.peak_scale, 1e-12)
        self.stats = {"info_gain": float(gain.mean()), "info_gain_median": self.medians[-1], "bonus_scale": scale}
        if not self.stats["info_gain"] <= self.spec.warn_info_gain:
            self._warn_once("info_gain", f"VIME: mean information gain {self.stats['info_gain']:.4g} nats per "
                                         f"transition exceeds {self.spec.warn_info_gain:g}: the dynamics posterior "
                                         f"does not model these transitions (see elbo_per_transition)")
        return gain / scale

    def update(self, transitions: Transitions) -> dict[str, float]:
        """Add the batch to the replay pool, refit q on the pool (warm start) and report the
        pool's ELBO per transition."""
        transitions = self._latent(transitions, keep=False)
        if transitions is None:  # the encoder is not fitted yet: nothing to learn from
            return {}
        self.pool.add(transitions)
        if self.spec.fit_steps == 0 or self.info_gain is None:
            return {}
        pool = self.pool.contents()
        self.fits += 1
        self.info_gain.update(pool, self.spec.fit_steps, lr=self.spec.fit_lr, seed=self.seed + self.fits)
        elbo = elbo_per_transition(self.info_gain.posterior, pool, seed=self.seed + self.fits)
        if self.last_elbo is not None and elbo < self.last_elbo - self.spec.warn_elbo_drop:
            self._warn_once("elbo", f"VIME: the pool's ELBO per transition fell from {self.last_elbo:.4g} to "
                                    f"{elbo:.4g} nats in one refit (more than {self.spec.warn_elbo_drop:g}): the "
                                    f"posterior stopped following the data")
        self.last_elbo = elbo
        return {"elbo_per_transition": elbo}

    def state_dict(self) -> dict:
        posterior = None if self.info_gain is None else self.info_gain.posterior.state()
        return {"posterior": posterior, "pool": self.pool.state_dict(), "medians": list(self.medians),
                "peak_scale": self.peak_scale, "fits": self.fits, "last_elbo": self.last_elbo,
                "warned": sorted(self.warned),
                "encoder": None if self.encoder is None else self.encoder.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.pool.load_state_dict(state["pool"])
        self.medians, self.fits = list(state["medians"]), int(state["fits"])
        self.last_elbo, self.peak_scale = state.get("last_elbo"), float(state.get("peak_scale", 0.0))
        self.warned = set(state.get("warned", []))
        if self.encoder is not None:
            self.encoder.load_state_dict(state["encoder"])
        self._encoded = None
        if state["posterior"] is not None:
            self.info_gain = self._info_gain(posterior_from_state(state["posterior"], self.device))
