"""Offline datasets built here by the D4RL protocol (Fu et al. 2020, Sec. 5), since none can be
downloaded on these machines: one online SAC run with policy snapshots, then

- ``random``: a uniformly random policy;
- ``expert``: the final SAC policy (stochastic, as D4RL's);
- ``medium``: the snapshot whose deterministic return is closest to a third of the way from the
  random return to the expert's (a warning when none is within a sixth of that range: snapshots
  must be dense where the return jumps);
- ``medium-replay``: SAC's replay buffer up to that snapshot (its first ``size`` rows at most);
- ``medium-expert``: medium followed by expert (2 × ``size`` rows).

Every file stores the random and expert returns measured here (``ref_min_score``,
``ref_max_score``: ``evaluate_episodes`` deterministic episodes each; the random policy's are
its own episodes), so normalised scores refer to this env version, not to D4RL's tables.
The SAC run and its snapshots are kept in ``out_dir/sac/`` and reused by later calls.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..data import collect
from ..data.offline import OfflineDataset, save_offline
from ..data.transitions import Transitions
from ..threads import uses_threads
from .learners.sac import SAC, SACConfig
from .envs.vector import evaluate_policy

__all__ = ["KINDS", "DatasetWarning", "build_datasets"]

KINDS = ("random", "medium", "medium-replay", "expert", "medium-expert")


class DatasetWarning(UserWarning):
    """A dataset was built but is not what its name says (e.g. an expert worse than random)."""


def _train_sac(env_id: str, sac_steps: int, snapshots: int, seed: int, folder: Path, progress: bool,
               evaluate_episodes: int, config: SACConfig) -> dict:
    """SAC with ``snapshots`` evenly spaced policy snapshots (actor weights, their deterministic
    return and the replay size then); cached in ``folder``."""
    cache = folder / "snapshots.pt"
    key = {"env_id": env_id, "sac_steps": sac_steps, "seed": seed, "snapshots": snapshots,
           "evaluate_episodes": evaluate_episodes, "sac_config": config.to_dict()}
    if cache.is_file():
        state = torch.load(cache, map_location="cpu", weights_only=True)
        if state.get("key") == key:
            return state
    rounded = -(-sac_steps // config.steps_per_iteration) * config.steps_per_iteration
    if config.buffer_size < rounded:  # a wrapped buffer would mix late data into "medium-replay"
        raise ValueError(f"the SAC buffer ({config.buffer_size}) must hold the whole run ({rounded} steps: "
                         f"{sac_steps} rounded up to whole iterations of {config.steps_per_iteration})")
    sac = SAC(env_id, config, seed=seed)
    every = max(config.steps_per_iteration, sac_steps // snapshots)
    taken, bar = [], tqdm(total=sac_steps, desc=f"SAC on {env_id}", disable=not progress, unit="step")
    while sac.global_step < sac_steps:
        before = sac.global_step
        sac.update(sac.collect())
        bar.update(sac.global_step - before)
        if sac.global_step // every > len(taken) or sac.global_step >= sac_steps:
            returns = evaluate_policy(env_id, sac.act, evaluate_episodes, seed=20_000 + seed)
            taken.append({"step": sac.global_step, "return": float(returns.mean()), "replay_size": sac.replay.size,
                          "actor": {k: v.clone() for k, v in sac.actor.state_dict().items()}})
            bar.set_postfix({"ret": f"{returns.mean():.3g}"}, refresh=False)
    bar.close()
    replay = sac.replay.contents()
    state = {"key": key, "snapshots": taken,
             "replay": {n: getattr(replay, n).clone() for n in ("obs", "act", "next_obs", "reward", "terminated",
                                                                 "truncated")}}
    sac.close()
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(state, cache)
    return state


@uses_threads
def build_datasets(env_id: str, kinds=KINDS, *, size: int = 100_000, sac_steps: int = 300_000, out_dir=".",
                   seed: int = 0, snapshots: int = 30, evaluate_episodes: int = 10, progress: bool = True,
                   sac_config: SACConfig | None = None) -> dict[str, Path]:
    """Write ``out_dir/{env}-{kind}.npz`` for each of ``kinds`` (module docstring); returns the paths."""
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ValueError(f"unknown dataset kind {unknown[0]!r}; allowed: {', '.join(KINDS)}")
    out = Path(out_dir)
    config = sac_config or SACConfig(total_steps=sac_steps, buffer_size=sac_steps + 256)
    state = _train_sac(env_id, sac_steps, snapshots, seed, out / "sac", progress, evaluate_episodes, config)
    snaps = state["snapshots"]
    probe = SAC(env_id, config, seed=seed)

    def policy(actor_state, stream: int):
        probe.actor.load_state_dict(actor_state)
        probe.generator.manual_seed(seed + stream)  # each kind its own stream: the order of kinds changes nothing
        return lambda obs: probe.act(obs, deterministic=False)

    space, rng = probe.act_space, np.random.default_rng(30_000 + seed)
    low, high = space.low.reshape(-1), space.high.reshape(-1)
    random_returns = evaluate_policy(env_id, lambda obs: rng.uniform(low, high, (len(obs), len(low))),
                                     evaluate_episodes, seed=30_000 + seed)
    r_min, r_max = float(random_returns.mean()), float(snaps[-1]["return"])
    if r_max <= r_min:
        warnings.warn(f"the SAC run's final policy (return {r_max:.1f}) does not beat the random policy "
                      f"({r_min:.1f}): its 'expert' is no expert and normalised scores are meaningless; "
                      f"raise sac_steps", DatasetWarning, stacklevel=3)
    target = r_min + (r_max - r_min) / 3
    medium = min(snaps[:-1] or snaps, key=lambda s: abs(s["return"] - target))
    if abs(medium["return"] - target) > (r_max - r_min) / 6:
        warnings.warn(f"no snapshot returned near a third of the way to the expert (target {target:.1f}, closest "
                      f"{medium['return']:.1f} at step {medium['step']}): 'medium' is not medium; take more "
                      f"snapshots (learning is fast where it jumps)", DatasetWarning, stacklevel=3)
    name = env_id.split("/")[-1].split("-v")[0].lower()
    made: dict[str, Transitions] = {}

    def data(kind: str) -> Transitions:
        if kind not in made:
            if kind == "random":
                made[kind] = collect(env_id, size, seed=seed + 1)
            elif kind == "expert":
                made[kind] = collect(env_id, size, seed=seed + 2, policy=policy(snaps[-1]["actor"], 2))
            elif kind == "medium":
                made[kind] = collect(env_id, size, seed=seed + 3, policy=policy(medium["actor"], 3))
            elif kind == "medium-replay":
                n = min(size, medium["replay_size"])
                made[kind] = Transitions(*(state["replay"][f][:n] for f in ("obs", "act", "next_obs", "reward",
                                                                            "terminated", "truncated")))
            else:
                made[kind] = Transitions.concat([data("medium"), data("expert")])
        return made[kind]

    paths = {}
    for kind in kinds:
        dataset = OfflineDataset(data(kind), env_id=env_id, kind=kind, ref_min_score=r_min, ref_max_score=r_max)
        paths[kind] = save_offline(out / f"{name}-{kind}.npz", dataset)
    probe.close()
    (out / "datasets.json").write_text(json.dumps({
        "env_id": env_id, "sac_steps": sac_steps, "seed": seed, "ref_min_score": r_min, "ref_max_score": r_max,
        "medium_snapshot": {"step": medium["step"], "return": medium["return"], "replay_size": medium["replay_size"]},
        "snapshots": [{"step": s["step"], "return": s["return"]} for s in snaps],
        "files": {k: str(p) for k, p in paths.items()}}, indent=1))
    return paths
