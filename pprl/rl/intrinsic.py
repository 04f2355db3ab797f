"""The intrinsic-reward interface and its VIME implementation.

Any method plugs into the learner through two calls on time-major batches of transitions:

    reward(transitions) -> Tensor[N]     score a batch (one vectorised call)
    update(transitions) -> dict          learn from it (e.g. refit on a replay pool)

and the learner optimises r' = r + η(t)·r_int. ``state_dict``/``load_state_dict`` make a
run resumable; ``stats`` reports what the method measured on the last batch.
"""
from __future__ import annotations

from typing import Protocol

import torch

from ..data import _TENSOR_FIELDS as FIELDS, Transitions
from ..inference.info_gain import InfoGain
from ..inference.posterior import Posterior, posterior_from_state
from ..inference.svi import fit
from ..models.dynamics import build_model
from .experiment import IntrinsicSpec


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
    divided by m̄, the mean of the medians of the last k batches' gains. After each
    iteration the batch enters a FIFO replay pool and q is refit on the pool by SVI.

    The first batch, before any posterior exists, fits q from scratch (this also fixes the
    model's input/target normalisation for the rest of the run).
    """

    def __init__(self, spec: IntrinsicSpec, obs_dim: int, act_dim: int, *, seed: int = 0, device="cpu"):
        self.spec, self.obs_dim, self.act_dim = spec, obs_dim, act_dim
        self.seed, self.device = seed, torch.device(device)
        self.pool = ReplayPool(spec.replay_size)
        self.info_gain: InfoGain | None = None
        self.medians: list[float] = []
        self.stats: dict[str, float] = {}
        self.fits = 0

    def _info_gain(self, posterior: Posterior) -> InfoGain:
        s = self.spec
        return InfoGain(posterior, s.method, solver=s.solver, steps=s.steps, lr=s.lr, step_size=s.step_size,
                        num_samples=s.num_samples, seed=self.seed)

    def _fit(self, data: Transitions, steps: int, init: Posterior | None) -> Posterior:
        model = init.model if init is not None else build_model(self.spec.model, self.obs_dim, self.act_dim)
        self.fits += 1
        inference = self.spec.inference  # warm refits: a smaller, constant step size
        if init is not None:
            inference = inference.replace(lr=self.spec.fit_lr, lr_decay=1.0)
        return fit(model, inference, data, steps=steps, seed=self.seed + self.fits,
                   device=self.device, progress=False, init=init)

    def reward(self, transitions: Transitions) -> torch.Tensor:
        """Normalised information gain of each transition → ``[N]`` (CPU float32)."""
        if self.info_gain is None:
            self.info_gain = self._info_gain(self._fit(transitions, self.spec.initial_fit_steps, None))
        gain = self.info_gain(transitions).float().cpu()
        self.medians = (self.medians + [float(gain.median())])[-self.spec.median_window:]
        scale = max(sum(self.medians) / len(self.medians), 1e-12)
        self.stats = {"info_gain": float(gain.mean()), "info_gain_median": self.medians[-1]}
        return gain / scale

    def update(self, transitions: Transitions) -> dict[str, float]:
        """Add the batch to the replay pool and refit q on the pool (warm start)."""
        self.pool.add(transitions)
        if self.spec.fit_steps > 0 and self.info_gain is not None:
            posterior = self._fit(self.pool.contents(), self.spec.fit_steps, self.info_gain.posterior)
            self.info_gain = self._info_gain(posterior)
            elbo = posterior.elbo_trace[-10:].mean() / len(self.pool.contents())
            return {"elbo_per_transition": float(elbo)}
        return {}

    def state_dict(self) -> dict:
        posterior = None if self.info_gain is None else self.info_gain.posterior.state()
        return {"posterior": posterior, "pool": self.pool.state_dict(), "medians": list(self.medians),
                "fits": self.fits}

    def load_state_dict(self, state: dict) -> None:
        self.pool.load_state_dict(state["pool"])
        self.medians, self.fits = list(state["medians"]), int(state["fits"])
        if state["posterior"] is not None:
            self.info_gain = self._info_gain(posterior_from_state(state["posterior"], self.device))


def make_intrinsic(spec: IntrinsicSpec, obs_dim: int, act_dim: int, *, seed: int = 0, device="cpu"):
    """The intrinsic-reward module an experiment's ``intrinsic`` block declares."""
    if spec.type == "vime":
        return VIME(spec, obs_dim, act_dim, seed=seed, device=device)
    return NoBonus()
