"""The intrinsic-reward interface and its VIME implementation.

Any method plugs into the learner through two calls on time-major batches of transitions:

    reward(transitions) -> Tensor[N]     score a batch (one vectorised call)
    update(transitions) -> dict          learn from it (e.g. refit on a replay pool)

and the learner optimises r' = r + η(t)·r_int. ``state_dict``/``load_state_dict`` make a
run resumable; ``stats`` reports what the method measured on the last batch.
"""
from __future__ import annotations

import warnings
from typing import Protocol

import torch

from ..data import _TENSOR_FIELDS as FIELDS, Transitions
from ..inference.info_gain import InfoGain
from ..inference.posterior import Posterior, posterior_from_state
from ..inference.svi import elbo_per_transition, fit
from ..models.dynamics import build_model
from .experiment import IntrinsicSpec


class VIMEHealthWarning(UserWarning):
    """VIME's posterior no longer models the data it scores (see :class:`VIME`)."""


class IntrinsicReward(Protocol):
    def reward(self, transitions: Transitions) -> torch.Tensor: ...
    def update(self, transitions: Transitions) -> dict[str, float]: ...
    def state_dict(self) -> dict: ...
    def load_state_dict(self, state: dict) -> None: ...


class NoBonus:
    """r_int = 0: plain PPO."""

    stats: dict[str, float] = {}

    def reward(self, transitions: Transitions) -> torch.Tensor:
        return torch.zeros(len(transitions))

    def update(self, transitions: Transitions) -> dict[str, float]:
        return {}

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class ReplayPool:
    """A FIFO pool of the last ``capacity`` transitions (a ring buffer of preallocated tensors)."""

    def __init__(self, capacity: int):
        self.capacity, self.size, self.cursor = int(capacity), 0, 0
        self.data: Transitions | None = None

    def add(self, batch: Transitions) -> None:
        batch = batch[-self.capacity:] if len(batch) > self.capacity else batch
        if self.data is None:
            empty = lambda t: t.new_zeros(self.capacity, *t.shape[1:])
            self.data = Transitions(*(empty(getattr(batch, n)) for n in FIELDS))
        idx = (self.cursor + torch.arange(len(batch))) % self.capacity
        for name in FIELDS:
            getattr(self.data, name)[idx] = getattr(batch, name).to(getattr(self.data, name).device)
        self.cursor = (self.cursor + len(batch)) % self.capacity
        self.size = min(self.size + len(batch), self.capacity)

    def contents(self) -> Transitions:
        return self.data[:self.size]

    def state_dict(self) -> dict:
        fields = {} if self.data is None else {n: getattr(self.data, n)[:self.size].clone() for n in FIELDS}
        return {"capacity": self.capacity, "cursor": self.cursor, "size": self.size, **fields}

    def load_state_dict(self, state: dict) -> None:
        self.__init__(state["capacity"])
        if state["size"]:
            self.add(Transitions(*(state[n] for n in FIELDS)))
            self.cursor = state["cursor"]


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

    def __init__(self, spec: IntrinsicSpec, obs_dim: int, act_dim: int, *, seed: int = 0, device="cpu"):
        self.spec, self.obs_dim, self.act_dim = spec, obs_dim, act_dim
        self.seed, self.device = seed, torch.device(device)
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

    def reward(self, transitions: Transitions) -> torch.Tensor:
        """Normalised information gain of each transition → ``[N]`` (CPU float32)."""
        if self.info_gain is None:
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
                "warned": sorted(self.warned)}

    def load_state_dict(self, state: dict) -> None:
        self.pool.load_state_dict(state["pool"])
        self.medians, self.fits = list(state["medians"]), int(state["fits"])
        self.last_elbo, self.peak_scale = state.get("last_elbo"), float(state.get("peak_scale", 0.0))
        self.warned = set(state.get("warned", []))
        if state["posterior"] is not None:
            self.info_gain = self._info_gain(posterior_from_state(state["posterior"], self.device))


def make_intrinsic(spec: IntrinsicSpec, obs_dim: int, act_dim: int, *, seed: int = 0, device="cpu"):
    """The intrinsic-reward module an experiment's ``intrinsic`` block declares."""
    if spec.type == "vime":
        return VIME(spec, obs_dim, act_dim, seed=seed, device=device)
    return NoBonus()
