"""VIME from pixels: ``intrinsic: {type: vime, ..., encoder: {...}}`` encodes every frame to a latent
state before VIME sees it.

    intrinsic:
      type: vime
      model: bnn_dynamics             # the Bayesian dynamics model, now of z' given (z, a)
      family: mean_field
      eta: 0.05
      encoder:
        model: latent_mountaincar_pixels   # a type: latent spec with a per-step guide q(z_t | o_t)
        family: mean_field            # its amortised family (the default)
        fit_steps: 500                # ELBO steps of the one fit
        batch_size: 16                # sub-sequences per minibatch
        lr: 0.001
        frames_to_fit: 0              # fit once this many transitions are seen (0: on the first batch)
        history: 1                    # VIME's state: the codes of the last `history` windows of frames

z_t is the mean of the latent model's amortised encoder q(z_t | o_t) (Levine, CS 294-112: amortised
VI, latent dynamics from images). The latent model is fitted by the ELBO once, to the first
``frames_to_fit`` transitions the agent sees (at least one batch), and then frozen: VIME's
information gain is about the weights θ of a Bayesian model p(z_{t+1} | z_t, a_t; θ) (Houthooft et
al. 2016), and that quantity only means something if z keeps one meaning while θ's posterior
accumulates evidence; an encoder that kept learning would move the targets under it. Until the
encoder is fitted the bonus is 0.

Why the weights and not the latent state: q(z_t | o_t) is re-inferred from every frame, so a
"gain" about z_t measures how informative a frame is about itself (perception) and is high for
every frame, seen before or not; the gain about θ measures what a transition teaches about the
dynamics, which shrinks as transitions repeat — VIME's quantity.

A per-step guide is required: it encodes each frame alone (a filtering or smoothing guide needs the
preceding frames and actions, which a batch of shuffled transitions does not carry).

``history: h`` gives VIME's dynamics model the codes of the last h windows: the environment stacks
F = m + h − 1 frames (m: the frames the latent model reads, e.g. 2), each observation is cut into
the h windows of m consecutive frames (oldest first), and the state is (z_{t−h+1}, …, z_t), h ×
latent_size numbers. A code of one window holds what its frames show; when that is the car's
position but not its speed (speeds of a fraction of a pixel per step, and an encoder fitted on the
near-still frames of the first batch), the dynamics of z alone are not Markov, and the model
needs the previous code to see the velocity. The latent model itself is fitted on the newest
window of each observation, as with h = 1. Windows slide by one channel: one frame of pprl's
single-channel pixel environments.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch

from ...data import Transitions
from ...inference.latent_posterior import LatentPosterior, latent_posterior_from_state
from ...models.latent_spec import LatentSpec
from ...spec import InferenceSpec, SpecError, _check_keys, _check_positive, _check_type
from ..registry import resolve_spec

ENCODE_CHUNK = 4096  # frames per encoder call (bounds the conv activations' memory)


@dataclass(frozen=True)
class EncoderSpec:
    """The ``intrinsic.encoder`` block: the latent model, its family and the one fit's settings."""

    model: LatentSpec
    inference: InferenceSpec
    fit_steps: int = 500
    batch_size: int = 16
    lr: float = 1e-3
    frames_to_fit: int = 0
    history: int = 1

    KEYS = ("model", "family", "fit_steps", "batch_size", "lr", "frames_to_fit", "history")

    @property
    def latent_size(self) -> int:
        return self.model.latent_size

    @classmethod
    def from_dict(cls, data, src: str = "<dict>", base: Path | None = None) -> "EncoderSpec":
        where = "intrinsic.encoder"
        if not isinstance(data, dict):
            raise SpecError(f"{src}: field '{where}' must be a mapping with a 'model' (a type: latent spec), "
                            f"got {data!r}")
        _check_keys(data, set(cls.KEYS), where, src)
        if "model" not in data:
            raise SpecError(f"{src}: field '{where}.model' is required (a type: latent model spec with "
                            f"guide: per_step, e.g. latent_mountaincar_pixels)")
        model = resolve_spec(data["model"], "model", f"{where}.model", src, base)
        if not isinstance(model, LatentSpec):
            raise SpecError(f"{src}: field '{where}.model': {model.name!r} is a {model.type!r} model; the encoder "
                            f"needs a type: latent model (e.g. latent_mountaincar_pixels)")
        if model.guide != "per_step":
            raise SpecError(f"{src}: field '{where}.model': {model.name!r} has guide {model.guide!r}; VIME "
                            f"encodes each frame alone, so the guide must be per_step; allowed: per_step")
        out = {}
        defaults = {f.name: f.default for f in dataclasses.fields(cls) if f.name not in ("model", "inference")}
        for key, default in defaults.items():
            if key in data:
                value = _check_type(data[key], type(default), f"{where}.{key}", src)
                out[key] = _check_positive(value, f"{where}.{key}", src, strict=key != "frames_to_fit")
        settings = {**defaults, **out}
        inference = resolve_spec(data.get("family", "mean_field"), "inference", f"{where}.family", src, base)
        from ...inference.latent_fit import _check_inference
        try:
            _check_inference(inference)
        except SpecError as exc:
            raise SpecError(f"{src}: field '{where}.family': {exc}") from None
        inference = inference.replace(steps=settings["fit_steps"], batch_size=settings["batch_size"],
                                      lr=settings["lr"])
        return cls(model=model, inference=inference, **settings)

    def to_dict(self) -> dict:
        return {"model": self.model.to_dict(), "family": self.inference.to_dict(), "fit_steps": self.fit_steps,
                "batch_size": self.batch_size, "lr": self.lr, "frames_to_fit": self.frames_to_fit,
                "history": self.history}


class FrozenEncoder:
    """Frames → z = E_q[z_t | o_t], with q fitted once by the ELBO and then frozen (module docstring).

    ``__call__(transitions)`` gives the same transitions with obs and next_obs replaced by their
    codes ``[N, code_size]``, or None while fewer than ``frames_to_fit`` transitions have been
    seen (those are kept for the fit). The env's observations must have the model's size.
    """

    def __init__(self, spec: EncoderSpec, obs_dim: int, act_dim: int, *, seed: int = 0, device="cpu"):
        shape = [int(n) for n in spec.model.obs_shape]  # [m·C, H, W]: the frames one code reads
        window = 1
        for n in shape:
            window *= n
        h = spec.history
        frame = window // shape[0] if len(shape) == 3 else 0  # numbers per channel
        expected = window + (h - 1) * frame
        if len(shape) != 3 and h > 1:
            raise SpecError(f"{spec.model.source}: intrinsic.encoder.history {h} needs image observations "
                            f"[channels, H, W]; the model reads {shape}")
        if expected != obs_dim:
            more = "" if h == 1 else f" and history {h} needs {h - 1} more channel(s), {expected} numbers in all"
            raise SpecError(f"{spec.model.source}: field 'observation' of intrinsic.encoder.model "
                            f"{spec.model.name!r}: the encoder reads observations of shape {shape} "
                            f"({window} numbers){more}, the environment gives {obs_dim}; match the model's "
                            f"observation.shape to the env (its size and frames, e.g. env_kwargs: {{frames: "
                            f"{shape[0] + h - 1 if len(shape) == 3 else 1}}})")
        self.spec, self.obs_dim, self.act_dim = spec, obs_dim, act_dim
        self.window, self.frame = window, frame
        self.seed, self.device = seed, torch.device(device)
        self.posterior: LatentPosterior | None = None
        self.frames: list[Transitions] = []  # transitions kept for the fit, until it happens

    @property
    def code_size(self) -> int:
        """The numbers per encoded observation: ``history × latent_size``."""
        return self.spec.history * self.spec.latent_size

    def _newest(self, x: torch.Tensor) -> torch.Tensor:
        """The newest window of observations ``[N, obs_dim]`` → ``[N, window]``."""
        return x[:, self.obs_dim - self.window:]

    @property
    def fitted(self) -> bool:
        return self.posterior is not None

    def _fit(self) -> None:
        from ...inference.latent_fit import fit_latent
        data = Transitions.concat(self.frames)  # time-major batches of the same envs: windows stay in episodes
        data = dataclasses.replace(data, obs=self._newest(data.obs), next_obs=self._newest(data.next_obs))
        self.posterior = fit_latent(self.spec.model, self.spec.inference, data, seed=self.seed,
                                    device=self.device, progress=False)
        for p in (*self.posterior.model.parameters(), *self.posterior.guide.parameters()):
            p.requires_grad_(False)
        self.frames = []

    def encode(self, obs: torch.Tensor) -> torch.Tensor:
        """z = the mean of q(z | o) of each window of each row of ``obs [N, obs_dim]`` → ``[N, code_size]``,
        the windows' codes oldest first (no gradient)."""
        h, n = self.spec.history, len(obs)
        windows = torch.stack([obs[:, k * self.frame:k * self.frame + self.window] for k in range(h)], 1)
        windows = windows.reshape(n * h, self.window)  # row-major: each observation's windows together
        parts = [self.posterior.encode(windows[i:i + ENCODE_CHUNK])[0] for i in range(0, n * h, ENCODE_CHUNK)]
        if not parts:
            return obs.new_zeros(0, self.code_size)
        return torch.cat(parts).to(obs.device).reshape(n, self.code_size)

    def __call__(self, transitions: Transitions, keep: bool = True) -> Transitions | None:
        """The batch in latent coordinates; None before the fit (``keep``: store the batch for it)."""
        if not self.fitted:
            if keep:
                self.frames.append(transitions)
            if sum(len(t) for t in self.frames) < max(1, self.spec.frames_to_fit):
                return None
            self._fit()
        return dataclasses.replace(transitions, obs=self.encode(transitions.obs),
                                   next_obs=self.encode(transitions.next_obs))

    def state_dict(self) -> dict:
        frames = {} if not self.frames else {
            n: torch.cat([getattr(t, n) for t in self.frames]).cpu()
            for n in ("obs", "act", "next_obs", "reward", "terminated", "truncated")}
        return {"posterior": None if self.posterior is None else self.posterior.state(),
                "frames": frames, "num_envs": self.frames[0].meta.get("num_envs") if self.frames else None}

    def load_state_dict(self, state: dict) -> None:
        self.posterior, self.frames = None, []
        if state["posterior"] is not None:
            self.posterior = latent_posterior_from_state(state["posterior"], self.device, "intrinsic.encoder")
            for p in (*self.posterior.model.parameters(), *self.posterior.guide.parameters()):
                p.requires_grad_(False)
        if state["frames"]:
            meta = {} if state["num_envs"] is None else {"num_envs": int(state["num_envs"])}
            self.frames = [Transitions(**state["frames"], meta=meta)]
