r"""DRIML (Mazoure et al. 2020, "Deep Reinforcement and InfoMax Learning"): an auxiliary loss that
makes the learner's representation predictive of the future under its own policy, by maximising
a critic lower bound on

    I([S_t, A_t]; S_{t+k})

with in-batch negatives (InfoNCE by default; any bound of :mod:`pprl.inference.bounds` that needs
no per-batch options). For a minibatch of B valid pairs (anchor (s_i, a_i), its own future
s_{i+k}), with φ(s) = ``learner.features(s)`` the representation the policy acts on:

    ψ_i = g([φ(s_i), e(a_i)]),  χ_j = h(φ(s_{j+k})),  f_ij = ψ_i · χ_j,
    I_NCE = mean_i [f_ii − log Σ_j e^{f_ij}] + log B  ≤  log B,

g an MLP, h linear, e an action embedding (linear on the one-hot or continuous action).
``mode: local_global`` (conv encoders) scores each position p of the encoder's feature map of
s_t against the global φ(s_{t+k}): f^p_ij = g([φ_p(s_i), e(a_i)]) · χ_j, the bound averaged over
positions (DRIML's local–global variant, after Deep InfoMax).

Pairs come from the learner's rollout: a minibatch row (step t of env e) is paired with step
t + k of the same env, k fixed or drawn uniformly from {1..k} per row (DRIML's variants), and
only if t + k is inside the rollout and no episode ended at steps t … t+k−1 (the future belongs
to the same episode); other rows are left out of the term. The term is

    L = −objective(f) + β · mean(f²),   f ← c · tanh(f / c)  (when score_clip c is set),

the tanh clip and the L2 penalty on scores being DRIML's (AMDIM's) stabilisers. Unlike the
AuxiliaryLoss default (a term already multiplied by its weight), DRIML returns L itself and puts
λ on the gradient instead: the learner's encoder receives λ·∇L (the features enter the critic as
φ.detach() + λ(φ − φ.detach())), while the critic (g, h, e), with its own Adam, always learns at
full strength. So at λ = 0 the learner is exactly plain PPO while the logged MI still measures
how much its representation carries about the future. The encoder's share of the gradient goes
through the learner's own gradient-norm clipping together with its RL loss. A minibatch with
fewer than 2 valid pairs adds nothing and records only ``driml_pairs``.

Logged per iteration (means over the update's minibatches): ``driml_loss`` (the term, before λ),
``driml_mi`` (the bound's estimate, nats), ``driml_log_n`` (its ceiling log B for InfoNCE),
``driml_pairs`` (B) and ``driml_k`` (mean k of the pairs).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...inference.bounds import get_bound
from ...rng import seeded
from ...spec import SpecError, _check_choice, _check_positive, _check_type
from .base import AuxiliarySpec

if TYPE_CHECKING:
    from ..learners.base import Learner, Minibatch

__all__ = ["DRIML", "DRIMLSpec", "future_pairs", "DRIML_BOUNDS"]

#: bounds that need nothing beyond the score matrix (MINE keeps a running average of a fixed batch
#: shape; TUBA and the interpolated bound need a per-batch baseline).
DRIML_BOUNDS = ("infonce", "nwj", "dv", "js", "smile")


@dataclass(frozen=True)
class DRIMLSpec(AuxiliarySpec):
    """``auxiliary: [{type: driml, ...}]``."""

    type: ClassVar[str] = "driml"
    weight: float = 1.0            # λ
    k: int = 1                     # the horizon (fixed), or its maximum K (k_sampling: uniform)
    k_sampling: str = "fixed"      # fixed | uniform over {1..k}
    bound: str = "infonce"
    mode: str = "global"           # global | local_global (conv encoders)
    embedding: int = 64            # width of the score space (ψ, χ)
    action_embedding: int = 16     # width of e(a)
    hidden: int = 128              # hidden width of g
    score_clip: float | None = 20.0  # c of the tanh clip; null: off
    score_l2: float = 0.0          # β of the L2 penalty on scores
    learning_rate: float = 3e-4    # the critic's own Adam

    _INTS: ClassVar[tuple] = ("k", "embedding", "action_embedding", "hidden")
    _FLOATS: ClassVar[tuple] = ("score_l2", "learning_rate")
    _CHOICES: ClassVar[dict] = {"k_sampling": ("fixed", "uniform"), "bound": DRIML_BOUNDS,
                                "mode": ("global", "local_global")}

    @classmethod
    def keys(cls) -> Sequence[str]:
        return ("type", "weight", *cls._INTS, *cls._FLOATS, *cls._CHOICES, "score_clip")

    @classmethod
    def from_dict(cls, data: dict, src: str = "<dict>", base: Path | None = None,
                  where: str = "auxiliary[0]") -> "DRIMLSpec":
        out = cls._common(data, src, where)
        for name in cls._INTS:
            if name in data:
                value = _check_type(data[name], int, f"{where}.{name}", src)
                out[name] = _check_positive(value, f"{where}.{name}", src)
        for name in cls._FLOATS:
            if name in data:
                value = _check_type(data[name], float, f"{where}.{name}", src)
                if not math.isfinite(value):
                    raise SpecError(f"{src}: field '{where}.{name}' must be finite, got {value!r}")
                out[name] = _check_positive(value, f"{where}.{name}", src, strict=name == "learning_rate")
        for name, allowed in cls._CHOICES.items():
            if name in data:
                out[name] = _check_choice(data[name], allowed, f"{where}.{name}", src)
        if data.get("score_clip") is not None:
            clip = _check_type(data["score_clip"], float, f"{where}.score_clip", src)
            out["score_clip"] = _check_positive(clip, f"{where}.score_clip", src)
        elif "score_clip" in data:
            out["score_clip"] = None
        return cls(**out)

    def to_dict(self) -> dict:
        return {"type": self.type, "weight": self.weight, "k": self.k, "k_sampling": self.k_sampling,
                "bound": self.bound, "mode": self.mode, "embedding": self.embedding,
                "action_embedding": self.action_embedding, "hidden": self.hidden, "score_clip": self.score_clip,
                "score_l2": self.score_l2, "learning_rate": self.learning_rate}


def future_pairs(index: Tensor, k: Tensor, done: Tensor) -> tuple[Tensor, Tensor]:
    """Which rollout rows ``index`` (row t·E + e: step t of env e) have a future k steps ahead in
    the same episode, and that future's row.

    ``done`` [T, E] marks steps where an episode ended (terminated or truncated): the observation
    at t + 1 then belongs to a new episode. Row t pairs with row (t + k)·E + e iff t + k ≤ T − 1
    and no step t … t+k−1 ended an episode. Returns (valid ``[B]`` bool, future rows ``[B]``;
    rows where not valid are meaningless)."""
    T, E = done.shape
    t, e = index // E, index % E
    ends = torch.cat([done.new_zeros(1, E, dtype=torch.long), done.long().cumsum(0)])  # [T+1, E]: ends before t
    ahead = t + k
    inside = ahead <= T - 1
    ahead = ahead.clamp(max=T - 1)
    valid = inside & (ends[ahead, e] == ends[t, e])  # Σ_{u=t}^{t+k−1} done[u, e] = 0
    return valid, ahead * E + e


class DRIML:
    """The DRIML auxiliary loss (module docstring) for a learner with ``features`` (and
    ``feature_map`` for ``mode: local_global``)."""

    spec_class = DRIMLSpec

    def __init__(self, spec: DRIMLSpec, learner: Learner, *, seed: int = 0, device="cpu"):
        self.spec, self.device = spec, torch.device(device)
        probe = torch.zeros(1, learner.obs_dim, device=self.device)
        with torch.no_grad():
            if spec.mode == "local_global":
                if not hasattr(learner, "feature_map") or learner.feature_map(probe) is None:
                    raise ValueError("DRIML mode 'local_global' needs a learner with a convolutional encoder "
                                     "(learner.encoder: conv); use mode 'global' with an MLP encoder")
                anchor_width = learner.feature_map(probe).shape[1]
            else:
                anchor_width = learner.features(probe).shape[-1]
            future_width = learner.features(probe).shape[-1]
        self.act_dim = learner.act_dim
        with seeded(seed):
            self.action_embed = nn.Linear(learner.act_dim, spec.action_embedding)
            self.anchor_head = nn.Sequential(nn.Linear(anchor_width + spec.action_embedding, spec.hidden), nn.ReLU(),
                                             nn.Linear(spec.hidden, spec.embedding))
            self.future_head = nn.Linear(future_width, spec.embedding)
        self.critic = nn.ModuleDict({"action": self.action_embed, "anchor": self.anchor_head,
                                     "future": self.future_head}).to(self.device)
        self.optimizer = torch.optim.Adam(self.critic.parameters(), lr=spec.learning_rate)
        self.bound = get_bound(spec.bound)
        self.generator = torch.Generator().manual_seed(seed)

    def _encoder_gradient(self, features: Tensor) -> Tensor:
        """The same values; the gradient reaching the encoder scaled by λ (the critic's is not)."""
        if self.spec.weight == 1.0:
            return features
        if self.spec.weight == 0.0:
            return features.detach()
        return features.detach() + self.spec.weight * (features - features.detach())

    def _actions(self, actions: Tensor) -> Tensor:
        if actions.is_floating_point():
            return actions.reshape(len(actions), -1)
        return F.one_hot(actions.reshape(-1), self.act_dim).float()

    def scores(self, anchors: Tensor, actions: Tensor, futures: Tensor, learner: Learner) -> Tensor:
        """Critic scores f_ij ``[B, B]`` (``[P, B, B]`` for local_global) of anchors (network
        inputs, their actions) against futures, before the tanh clip."""
        e = self.action_embed(self._actions(actions))
        chi = self.future_head(self._encoder_gradient(learner.features(futures)))
        if self.spec.mode == "local_global":
            local = self._encoder_gradient(learner.feature_map(anchors))      # [B, C, H, W]
            local = local.flatten(2).permute(2, 0, 1)                         # [P, B, C]
            psi = self.anchor_head(torch.cat([local, e.expand(len(local), -1, -1)], -1))
        else:
            psi = self.anchor_head(torch.cat([self._encoder_gradient(learner.features(anchors)), e], -1))
        return psi @ chi.T

    def loss(self, minibatch: Minibatch, learner: Learner) -> tuple[Tensor, dict[str, float]]:
        spec, rollout = self.spec, minibatch.rollout
        inputs = getattr(rollout, "policy_obs", None)
        if inputs is None:
            raise ValueError("DRIML needs the rollout's network inputs (rollout.policy_obs [T, E, obs_dim])")
        T, E = inputs.shape[:2]
        if T <= spec.k and spec.k_sampling == "fixed" or T <= 1:
            raise ValueError(f"DRIML with k = {spec.k} needs rollouts longer than k steps; the learner's are {T} "
                             f"(raise learner.num_steps)")
        flags = rollout.transitions
        done = (flags.terminated | flags.truncated).reshape(T, E).to(inputs.device)
        index = minibatch.index.to(inputs.device)
        if spec.k_sampling == "fixed":
            k = torch.full_like(index, spec.k)
        else:
            k = torch.randint(1, spec.k + 1, index.shape, generator=self.generator).to(index.device)
        valid, future = future_pairs(index, k, done)
        n = int(valid.sum())
        if n < 2:  # no negatives: nothing to contrast
            return inputs.new_zeros(()), {"driml_pairs": float(n)}
        futures = inputs.reshape(T * E, -1)[future[valid]]
        scores = self.scores(minibatch.obs[valid], minibatch.actions[valid], futures, learner)
        if spec.score_clip is not None:
            scores = spec.score_clip * torch.tanh(scores / spec.score_clip)
        term = -self.bound.objective(scores).mean()
        if spec.score_l2:
            term = term + spec.score_l2 * scores.square().mean()
        with torch.no_grad():
            mi = self.bound.estimate(scores).mean()
        stats = {"driml_loss": float(term.detach()), "driml_mi": float(mi), "driml_log_n": math.log(n),
                 "driml_pairs": float(n), "driml_k": float(k[valid].float().mean())}
        return term, stats

    def step(self) -> None:
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def state_dict(self) -> dict:
        return {"critic": self.critic.state_dict(), "optimizer": self.optimizer.state_dict(),
                "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.critic.load_state_dict(state["critic"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
