"""Empowerment as the reward on continuous-action environments (``intrinsic: {type: empowerment,
channel: pendulum | learned}``; the block's fields are in :mod:`pprl.rl.intrinsic.empowerment`).

r_int(s, a, s') = E_K(s'), the K-step empowerment of the state reached, in nats, of one of two
channels (:mod:`pprl.empowerment.continuous`):

* ``pendulum``: gymnasium's Pendulum-v1 dynamics, known, with declared noise (the paper's setting:
  empowerment of a known simulator);
* ``learned``: a dynamics posterior fitted online to the agent's own transitions, as VIME fits
  its model: the first batch fits q(θ) from scratch (``initial_fit_steps``), and after every
  iteration the batch joins a FIFO replay pool and q is refit on the pool, warm-started
  (``refit_steps``). The channel rolls the posterior's mean forward (``theta``).

E_K(s') by ``linearised`` (:func:`~pprl.empowerment.continuous.linearised_empowerment`, a
deterministic function of s' and the channel) or ``variational`` (a :class:`pprl.Empowerment`
amortised over the pool's states, trained ``fit_steps`` steps after every iteration; the reward is
its Monte-Carlo bound with ``num_samples`` draws per state).

Health: ``empowerment``, the batch's mean E(s'); for a learned channel also ``model_nll``, the
posterior predictive's negative log density per transition of each new batch before it is fitted
(nats; it falls as the model learns the dynamics).
"""
from __future__ import annotations

import torch

from ...data import ReplayPool, Transitions
from ...empowerment import Empowerment
from ...empowerment.continuous import PendulumChannel, PosteriorChannel, linearised_empowerment
from ...inference.posterior import posterior_from_state
from ...inference.svi import fit
from ...models.dynamics import build_model
from ...spec import SpecError
from .base import Health


class ContinuousEmpowerment:
    """The empowerment reward of a ``pendulum`` or ``learned`` channel (module docstring)."""

    health = {"empowerment": Health("mean empowerment of s' (nats)", "emp"),
              "model_nll": Health("model NLL of new batch (nats / transition)", "nll")}

    def __init__(self, spec, obs_dim: int, act_dim: int, *, seed: int = 0, device="cpu"):
        self.spec, self.obs_dim, self.act_dim = spec, obs_dim, act_dim
        self.seed, self.device = int(seed), torch.device(device)
        self.channel = None
        self.estimator: Empowerment | None = None
        self.pool = ReplayPool(spec.replay_size)
        self.fits = 0
        self.stats: dict[str, float] = {}
        if spec.channel == "pendulum":
            if (obs_dim, act_dim) != (3, 1):
                raise SpecError(f"intrinsic.channel 'pendulum' needs Pendulum-v1's observations (cos θ, sin θ, θ̇) "
                                f"and one torque, got obs_dim {obs_dim} and act_dim {act_dim}")
            self.channel = PendulumChannel(spec.noise_std, spec.noise, spec.action_repeat)
        elif len(spec.action_low) != act_dim:
            raise SpecError(f"intrinsic.action_low/action_high: {len(spec.action_low)} bounds declared, the "
                            f"environment has {act_dim} action dimensions")
        box = None if self.channel is None else (self.channel.action_low, self.channel.action_high)
        low, high = box or (torch.tensor(spec.action_low), torch.tensor(spec.action_high))
        # the linearised estimate's budget E‖a_{1:K} − ā‖² = K × the declared power per action, or
        # K × a uniform box's Σ (high − low)²/12
        per_action = spec.power if spec.power is not None else float(((high - low) ** 2 / 12).sum())
        self.power = spec.horizon * per_action

    # ------------------------------------------------------------------ the channel
    def _learned_channel(self, posterior) -> PosteriorChannel:
        s = self.spec
        return PosteriorChannel(posterior, s.action_low, s.action_high, theta=s.theta, noise=s.noise,
                                noise_scale=s.noise_scale, noise_std=s.noise_std, action_repeat=s.action_repeat,
                                seed=self.seed)

    def _fit_learned(self, data: Transitions) -> None:
        s = self.spec
        self.fits += 1
        if self.channel is None:
            model = build_model(s.model, self.obs_dim, self.act_dim)
            posterior = fit(model, s.inference, data, steps=s.initial_fit_steps, seed=self.seed + self.fits,
                            device=self.device, progress=False)
            self.channel = self._learned_channel(posterior)
        else:
            inference = s.inference.replace(lr=s.inference.lr * s.inference.lr_decay, lr_decay=1.0)
            self.channel.posterior = fit(self.channel.posterior.model, inference, data, steps=s.refit_steps,
                                         seed=self.seed + self.fits, device=self.device, progress=False,
                                         init=self.channel.posterior)

    def _train_estimator(self, states: torch.Tensor) -> None:
        if self.estimator is None:
            self.estimator = Empowerment(self.channel, self.spec.horizon, states=states, lr=3e-3,
                                         seed=self.seed, device=self.device)
        self.estimator.fit(self.spec.fit_steps, states=states, anneal=False, progress=False)

    # ------------------------------------------------------------------ the plug-in
    def empowerment(self, states: torch.Tensor) -> torch.Tensor:
        """E_K(s) of ``states [N, obs_dim]`` → ``[N]`` nats (CPU float32)."""
        states = states.to(self.device, torch.float32)
        if self.spec.method == "linearised":
            return linearised_empowerment(self.channel, states, self.spec.horizon, self.power,
                                          nominal_points=self.spec.nominal_points).cpu()
        return self.estimator(states, num_samples=self.spec.num_samples).float().cpu()

    def reward(self, transitions: Transitions) -> torch.Tensor:
        """E_K(s') of each transition → ``[N]`` (CPU float32, nats)."""
        self.stats = {}
        if self.spec.channel == "learned":
            if self.channel is None:
                self._fit_learned(transitions)
            else:
                self.stats["model_nll"] = -self.channel.posterior.log_predictive(transitions.to(self.device),
                                                                                 num_samples=16)
        if self.spec.method == "variational" and self.estimator is None:
            self._train_estimator(transitions.obs)
        r = self.empowerment(transitions.next_obs)
        self.stats["empowerment"] = float(r.mean()) if len(r) else float("nan")
        return r

    def update(self, transitions: Transitions) -> dict[str, float]:
        """Add the batch to the pool; refit a learned channel on it and train a variational estimator."""
        self.pool.add(transitions)
        pool = self.pool.contents()
        if self.spec.channel == "learned" and self.spec.refit_steps:
            self._fit_learned(pool)
        if self.spec.method == "variational":
            self._train_estimator(pool.obs)
        return {}

    def state_dict(self) -> dict:
        posterior = self.channel.posterior.state() if isinstance(self.channel, PosteriorChannel) else None
        estimator = None if self.estimator is None else {"nets": self.estimator.nets.state_dict()}
        return {"pool": self.pool.state_dict(), "fits": self.fits, "posterior": posterior, "estimator": estimator}

    def load_state_dict(self, state: dict) -> None:
        self.pool.load_state_dict(state["pool"])
        self.fits = int(state["fits"])
        if state["posterior"] is not None:
            self.channel = self._learned_channel(posterior_from_state(state["posterior"], self.device))
        if state["estimator"] is not None:
            self._train_estimator_shell(self.pool.contents().obs)
            self.estimator.nets.load_state_dict(state["estimator"]["nets"])

    def _train_estimator_shell(self, states: torch.Tensor) -> None:
        """The estimator's networks without training (for a resume, which loads their weights)."""
        self.estimator = Empowerment(self.channel, self.spec.horizon, states=states, lr=3e-3, seed=self.seed,
                                     device=self.device)
