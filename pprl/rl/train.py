"""``pprl.train``: run one experiment spec — a learner, an intrinsic reward and any auxiliary
losses, each a plug-in the spec names — and record it.

Each iteration (Algorithm 1 of Houthooft et al. 2016, for any learner and bonus):

    rollout = learner.collect()                            N transitions
    r_int   = intrinsic.reward(rollout.transitions)        one vectorised call
    learner.update(rollout, w·r + η(t)·r_int, auxiliary)   w = extrinsic_weight; auxiliary terms join its loss
    intrinsic.update(rollout.transitions)                  e.g. replay pool + posterior refit

Outputs in ``out_dir``: ``spec.yaml`` (resolved), ``metrics.csv`` (one row per iteration: the
loop's columns, the intrinsic reward's ``stats``, the learner's and the intrinsic update's results),
``checkpoint.pt`` (learner, intrinsic reward, auxiliary losses; ``torch.load(weights_only=True)``),
``learning_curve.png`` (with a panel per health measure the intrinsic reward declares) and
``summary.json`` (with ``final_<key>`` for each). ``resume=True`` continues from the checkpoint
exactly: the learner saves its environments too (pickled sub-envs, current observations,
episodes in progress), so a run killed at any point and resumed ends with the uninterrupted run's
metrics (bitwise on the CPU; tested with SIGKILL). Checkpoints are written atomically (a
temporary file renamed over the old one), so a kill mid-write leaves the previous one. Loading a
checkpoint unpickles those environments: resume only runs you trust.
"""
from __future__ import annotations

import dataclasses
import json
import math
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml
from tqdm.auto import tqdm

from .auxiliary import make_auxiliary
from .experiment import ExperimentSpec, load_experiment, parse_experiment
from .intrinsic import Health, make_intrinsic
from .learners import make_learner
from ..threads import uses_threads

FORMAT = "pprl.train/2"


class DeferredInterrupt:
    """Within ``with``: the first Ctrl-C only sets :attr:`pressed` (the loop finishes its iteration,
    so the checkpoint it then saves has the learner, the bonus and the metrics at the same step); a
    second Ctrl-C interrupts at once. The previous SIGINT handler is restored on exit. Off the main
    thread (where Python cannot set signal handlers) Ctrl-C interrupts at once, as without it."""

    def __init__(self):
        self.pressed, self._previous = False, None

    def _handle(self, signum, frame):
        if self.pressed:
            raise KeyboardInterrupt
        self.pressed = True

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


def _atomic_write(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    tmp.replace(path)


def _save_checkpoint(path: Path, state: dict) -> None:
    _atomic_write(path, lambda tmp: torch.save(state, tmp))


def _summarise(episodes: pd.DataFrame, metrics: pd.DataFrame, spec: ExperimentSpec, seed: int,
               health: dict[str, Health]) -> dict:
    """Success rate, env step of first success, final return and throughput of a run."""
    n = len(episodes)
    last = episodes.tail(max(1, n // 10)) if n else episodes
    first = episodes.loc[episodes["success"], "env_step"] if n else pd.Series(dtype=float)
    wall = float(metrics["wall_s"].iloc[-1]) if len(metrics) else 0.0
    steps = int(metrics["env_steps"].iloc[-1]) if len(metrics) else 0
    return {
        "experiment": spec.name, "env": spec.env, "intrinsic": spec.intrinsic.type, "seed": seed,
        "env_steps": steps, "episodes": n,
        "success_rate": float(episodes["success"].mean()) if n else 0.0,
        "final_success_rate": float(last["success"].mean()) if n else 0.0,
        "reached_goal": bool(len(first)),
        "first_success_step": int(first.iloc[0]) if len(first) else None,
        "final_return": float(last["return"].mean()) if n else None,
        "env_steps_per_s": steps / wall if wall > 0 else None,
        "wall_time_s": wall,
        **{f"final_{k}": _last(metrics, k) for k in health},
        "health": {k: h.label for k, h in health.items()},  # what each final_<key> measures
    }


def _last(metrics: pd.DataFrame, column: str) -> float | None:
    """The last recorded (non-missing) value of a metrics column; None if there is none."""
    if column not in metrics:
        return None
    values = metrics[column].dropna()
    return float(values.iloc[-1]) if len(values) else None


PANEL_COLORS = ("tab:purple", "tab:orange", "tab:red", "tab:brown", "tab:pink", "tab:olive", "tab:cyan")


def plot_learning_curve(metrics: pd.DataFrame, episodes: pd.DataFrame, path: Path, title: str,
                        health: dict[str, Health] | None = None) -> Path:
    """Episode returns (points and a rolling mean) and success rate against env steps, plus one
    panel for each health measure of the intrinsic reward that the run recorded."""
    from matplotlib.figure import Figure  # no pyplot: the caller's backend and figures stay untouched
    from matplotlib.ticker import EngFormatter, MaxNLocator

    health = health or {}
    panels = [k for k in health if k in metrics and metrics[k].notna().any()]
    fig = Figure(figsize=(4.4 * (2 + len(panels)), 3.4))
    axes = fig.subplots(1, 2 + len(panels), squeeze=False)
    axes = axes[0]
    ax = axes[0]
    if len(episodes):
        ax.scatter(episodes["env_step"], episodes["return"], s=4, alpha=0.3, color="tab:blue", label="episode")
        roll = episodes["return"].rolling(20, min_periods=1).mean()
        ax.plot(episodes["env_step"], roll, color="tab:blue", label="rolling mean (20)")
        ax.legend(fontsize=8)
    ax.set(xlabel="env steps", ylabel="return", title=title)
    ax = axes[1]
    ax.plot(metrics["env_steps"], metrics["success_rate"], color="tab:green")
    ax.set(xlabel="env steps", ylabel="success rate (last 20 episodes)", ylim=(-0.02, 1.02))
    for ax, key in zip(axes[2:], panels):
        color = PANEL_COLORS[list(health).index(key) % len(PANEL_COLORS)]  # a measure keeps its colour
        ax.plot(metrics["env_steps"], metrics[key], color=color, marker=".", ms=3)
        ax.set(xlabel="env steps", ylabel=health[key].label)
        if health[key].log:
            ax.set_yscale("log")
    for ax in axes:  # 300,000 steps as "300k", at most 5 ticks: long runs' labels do not collide
        ax.xaxis.set_major_locator(MaxNLocator(5))
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
    fig.tight_layout()
    _atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    return path


def component_devices(device: str | dict) -> tuple[str, str]:
    """(learner device, intrinsic device) of ``train``'s ``device``: one device for both, or a mapping
    ``{"learner": ..., "intrinsic": ...}`` (a missing key means cpu). Auxiliary losses follow the learner."""
    if isinstance(device, dict):
        unknown = sorted(set(device) - {"learner", "intrinsic"})
        if unknown:
            raise ValueError(f"device: unknown component {unknown[0]!r}; allowed: learner, intrinsic")
        return str(device.get("learner", "cpu")), str(device.get("intrinsic", "cpu"))
    return str(device), str(device)


@uses_threads
def train(spec: ExperimentSpec | dict | str | Path | None, seed: int = 0, out_dir: str | Path | None = None, *,
          resume: bool = False, device: str | dict = "cpu", progress: bool = True, total_steps: int | None = None,
          checkpoint_every: int = 10) -> dict:
    """Run (or with ``resume=True`` continue) an experiment; returns the summary dict.

    ``total_steps`` overrides the spec's ``learner.total_steps`` (the learning-rate and η
    schedules then follow the override). ``device`` is one torch device, or per component
    (``{"learner": "cpu", "intrinsic": "cuda"}``: small policy networks and CPU envs stay on the
    CPU while the dynamics posterior uses the GPU; each rollout's transitions are copied to the
    intrinsic reward's device and its rewards back). Same seed, same CPU ⇒ same numbers.
    """
    learner_device, intrinsic_device = component_devices(device)
    if resume and out_dir is None:
        raise ValueError("resume=True needs the run's out_dir")
    spec = None if resume else load_experiment(spec)  # a resumed run reads its spec from the checkpoint
    out = Path(out_dir) if out_dir is not None else Path("runs") / f"{spec.name}-seed{seed}"
    ckpt_path = out / "checkpoint.pt"
    if resume and not ckpt_path.is_file():
        raise FileNotFoundError(f"{out}: no checkpoint.pt to resume from")
    if not resume and ckpt_path.exists():
        raise FileExistsError(f"{out} already holds a run (checkpoint.pt); use resume or another output directory")
    state = torch.load(ckpt_path, map_location="cpu", weights_only=True) if resume else None
    if state is not None:
        if state.get("format") != FORMAT:
            raise ValueError(f"{ckpt_path}: not a pprl training checkpoint (expected format {FORMAT!r})")
        spec, seed = parse_experiment(state["spec"], f"{ckpt_path}:spec"), int(state["seed"])
    if total_steps is not None:
        learner = dataclasses.replace(spec.learner, total_steps=int(total_steps)).validate()
        spec = dataclasses.replace(spec, learner=learner)
    cfg = spec.learner
    done = int(state["metrics"][-1]["env_steps"]) if state is not None and state["metrics"] else 0
    if state is not None and done >= cfg.total_steps:  # a resume that would do nothing, before anything is written
        raise ValueError(f"{out}: nothing to do: the run has recorded {done} env steps and total_steps is "
                         f"{cfg.total_steps}; ask for more than {done} to continue it "
                         f"(pprl train --resume {out} --steps N, or total_steps=N)")
    out.mkdir(parents=True, exist_ok=True)
    _atomic_write(out / "spec.yaml", lambda tmp: tmp.write_text(yaml.safe_dump(spec.to_dict(), sort_keys=False)))

    learner = make_learner(cfg, spec.env, seed=seed, device=learner_device, env_kwargs=spec.env_kwargs)
    intrinsic = make_intrinsic(spec.intrinsic, learner.obs_dim, learner.act_dim, seed=seed, device=intrinsic_device)
    auxiliary = [make_auxiliary(a, learner, seed=seed, device=learner_device) for a in spec.auxiliary]
    same_device = torch.device(learner_device) == torch.device(intrinsic_device)
    health = intrinsic.health
    rows, episodes, wall_before = [], [], 0.0
    if state is not None:
        learner.load_state_dict(state["learner"])
        intrinsic.load_state_dict(state["intrinsic"])
        for aux, aux_state in zip(auxiliary, state["auxiliary"]):
            aux.load_state_dict(aux_state)
        rows, episodes = state["metrics"], state["episodes"]
        wall_before = rows[-1]["wall_s"] if rows else 0.0

    def checkpoint() -> None:
        _save_checkpoint(ckpt_path, {
            "format": FORMAT, "spec": spec.to_dict(), "seed": seed, "learner": learner.state_dict(),
            "intrinsic": intrinsic.state_dict(), "auxiliary": [aux.state_dict() for aux in auxiliary],
            "metrics": rows, "episodes": episodes})

    batch = cfg.steps_per_iteration
    start = time.perf_counter()
    bar = tqdm(total=math.ceil(cfg.total_steps / batch) * batch, initial=learner.global_step, unit="step",
               desc=spec.name, disable=not progress, dynamic_ncols=True)
    interrupt = DeferredInterrupt()
    try:
        with interrupt:
            while learner.global_step < cfg.total_steps:
                step = learner.global_step
                rollout = learner.collect()
                seen = rollout.transitions if same_device else rollout.transitions.to(intrinsic_device)
                r_int = intrinsic.reward(seen).to(rollout.rewards.device).view_as(rollout.rewards)
                eta = spec.intrinsic.eta_at(step, cfg.total_steps)
                stats = learner.update(rollout, spec.extrinsic_weight * rollout.rewards + eta * r_int, auxiliary)
                stats.update(intrinsic.update(seen))
                for ep in rollout.episodes:
                    episodes.append({"env_step": int(learner.global_step), "return": float(ep["return"]),
                                     "length": int(ep["length"]), "success": bool(ep["success"])})
                recent = episodes[-20:]
                row = {"iteration": len(rows) + 1, "env_steps": int(learner.global_step),
                       "wall_s": wall_before + time.perf_counter() - start,
                       "episodes": len(episodes), "successes": sum(e["success"] for e in episodes),
                       "return_mean": float(np.mean([e["return"] for e in recent])) if recent else float("nan"),
                       "success_rate": float(np.mean([e["success"] for e in recent])) if recent else 0.0,
                       "extrinsic_reward": float(rollout.rewards.sum()), "eta": eta,
                       "intrinsic_mean": float(r_int.mean()), **intrinsic.stats, **stats}
                rows.append(row)
                bar.update(learner.global_step - step)
                shown = {h.short: f"{row[k]:.3g}" for k, h in health.items() if k in row and math.isfinite(row[k])}
                if math.isfinite(row["return_mean"]):  # no episode has ended yet: nothing to show
                    shown = {"ret": f"{row['return_mean']:.3g}", "success": f"{row['success_rate']:.2f}", **shown}
                bar.set_postfix(shown, refresh=False)
                if checkpoint_every and len(rows) % checkpoint_every == 0:
                    checkpoint()
                if interrupt.pressed:  # Ctrl-C during this iteration: stop here, with a consistent state
                    raise KeyboardInterrupt
    except KeyboardInterrupt:  # keep what was learned: the run continues with resume
        checkpoint()
        learner.close()
        raise
    finally:
        bar.close()
    metrics, eps = pd.DataFrame(rows), pd.DataFrame(episodes, columns=["env_step", "return", "length", "success"])
    checkpoint()
    _atomic_write(out / "metrics.csv", lambda tmp: metrics.to_csv(tmp, index=False))
    _atomic_write(out / "episodes.csv", lambda tmp: eps.to_csv(tmp, index=False))
    summary = _summarise(eps, metrics, spec, seed, health)
    summary["eval_return"] = float(learner.evaluate(episodes=5).mean())
    learner.close()
    if len(metrics):
        plot_learning_curve(metrics, eps, out / "learning_curve.png", f"{spec.name} (seed {seed})", health)
    _atomic_write(out / "summary.json", lambda tmp: tmp.write_text(json.dumps(summary, indent=2)))
    return summary
