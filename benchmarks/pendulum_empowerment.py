"""Empowerment alone on Pendulum-v1 (issue 14, item 4): does an agent paid only E(s') of a channel
it learns online swing the pendulum up and hold it there?

    python benchmarks/pendulum_empowerment.py --seeds 0 1 2 --steps 400000 --jobs 2 -o bench_out/pendulum_emp

Three methods, same learner, same budget, the env's reward switched off for all
(``extrinsic_weight: 0``): ``learned`` (examples/pendulum_empowerment.yaml: empowerment of a
channel learned online), ``known`` (the same with ``channel: pendulum``, the simulator's own
equations with the same sensor noise) and ``no_reward`` (no intrinsic reward: PPO on a zero
reward, the behaviour the policy's initialisation and entropy give); and the control ``extrinsic``
(PPO on the pendulum's own reward, the same learner and budget: can this learner balance at all
in this budget?). Two ablations of the known channel take back one of the example's settings each:
``known_passive`` (E linearised at zero torque, ``nominal_points: 1``) and ``known_uncentred``
(``learner.center_rewards: false``). Each trained policy then runs 10 deterministic evaluation
episodes (200 steps, random starts); reported per seed: the fraction of the last 99 states with
|θ| < 0.3 rad (upright), the mean cos θ over those steps, and the pendulum's own return
(−Σ θ² + 0.1 θ̇² + 0.001 u², higher = more upright). Aggregates: the IQM over seeds with a
percentile bootstrap 95% interval. Figures: the (θ, θ̇) visitation of the evaluation episodes of
both methods beside the learned channel's empowerment landscape, and E(s_t) along the episodes.
"""
import argparse
import json
import math
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
METHODS = ("learned", "known", "no_reward", "extrinsic", "known_passive", "known_uncentred")
UPRIGHT = 0.3  # rad


def spec(method: str) -> dict:
    import yaml

    data = yaml.safe_load((ROOT / "examples" / "pendulum_empowerment.yaml").read_text())
    if method == "no_reward":
        data["intrinsic"], data["name"] = {"type": "none"}, "pendulum_no_reward"
    elif method == "extrinsic":  # the control: the same learner and budget on the pendulum's own reward
        data["intrinsic"], data["name"], data["extrinsic_weight"] = {"type": "none"}, "pendulum_extrinsic", 1.0
    elif method.startswith("known"):
        block = data["intrinsic"]
        for name in ("model", "family", "action_low", "action_high", "initial_fit_steps", "refit_steps"):
            block.pop(name, None)
        block["channel"], block["noise_std"], data["name"] = "pendulum", 0.05, f"pendulum_empowerment_{method}"
        if method == "known_passive":  # ablation: E linearised at zero torque, the passive trajectory
            block["nominal_points"] = 1
        elif method == "known_uncentred":  # ablation: the learner sees E's ~7-nat level
            data["learner"]["center_rewards"] = False
    return data


def run(method: str, seed: int, steps: int, out: str) -> dict:
    import torch

    torch.set_num_threads(1)
    import pprl

    run_dir = Path(out) / f"{method}-seed{seed}"
    if not (run_dir / "summary.json").is_file():
        if (run_dir / "checkpoint.pt").is_file():
            pprl.train(None, out_dir=run_dir, resume=True, total_steps=steps, progress=False)
        else:
            pprl.train(spec(method), seed=seed, out_dir=run_dir, total_steps=steps, progress=False)
    return {"method": method, "seed": seed, **evaluate(run_dir)}


def rollouts(run_dir: Path, episodes: int = 10, seed: int = 10_000) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic evaluation episodes of a trained run → observations [199, E, 3] (s_1 … s_199),
    rewards [200, E]."""
    import torch

    from pprl.rl.experiment import parse_experiment
    from pprl.rl.learners import make_learner
    from pprl.rl.envs.vector import make_vector_env

    state = torch.load(run_dir / "checkpoint.pt", map_location="cpu", weights_only=True)
    exp = parse_experiment(state["spec"])
    learner = make_learner(exp.learner, exp.env, seed=int(state["seed"]))
    learner.load_state_dict(state["learner"])
    env = make_vector_env(exp.env, episodes)
    obs, _ = env.reset(seed=seed)
    seen, rewards = [obs], []
    for _ in range(200):  # Pendulum-v1 truncates at 200 steps; no terminations
        obs, reward, _, _, _ = env.step(learner.act(obs))
        seen.append(obs)
        rewards.append(reward)
    env.close()
    learner.close()
    # the 200th observation is already the next episode's reset (the vector env autoresets on truncation)
    return np.stack(seen[1:-1]), np.stack(rewards)


def evaluate(run_dir: Path) -> dict:
    obs, rewards = rollouts(run_dir)
    theta = np.arctan2(obs[..., 1], obs[..., 0])
    tail = theta[100:]
    return {"upright_fraction": float((np.abs(tail) < UPRIGHT).mean()), "mean_cos": float(np.cos(tail).mean()),
            "eval_return": float(rewards.sum(0).mean())}


def landscape(run_dir: Path, n: int = 61):
    """The run's channel (learned: from its checkpoint; known: the simulator) and its linearised
    empowerment on a (θ, θ̇) grid."""
    import torch

    from pprl.empowerment.continuous import PendulumChannel, PosteriorChannel, linearised_empowerment
    from pprl.inference.posterior import posterior_from_state
    from pprl.rl.experiment import parse_experiment

    state = torch.load(run_dir / "checkpoint.pt", map_location="cpu", weights_only=True)
    block = parse_experiment(state["spec"]).intrinsic
    if block.channel == "learned":
        channel = PosteriorChannel(posterior_from_state(state["intrinsic"]["posterior"]), block.action_low,
                                   block.action_high, noise=block.noise, noise_std=block.noise_std,
                                   action_repeat=block.action_repeat)
    else:
        channel = PendulumChannel(block.noise_std, block.noise, block.action_repeat)
    th, thd = torch.meshgrid(torch.linspace(-math.pi, math.pi, n), torch.linspace(-8, 8, n), indexing="ij")
    s = torch.stack([th.cos(), th.sin(), thd], -1).reshape(-1, 3)
    power = block.horizon * float(((channel.action_high - channel.action_low) ** 2 / 12).sum())
    emp = linearised_empowerment(channel, s, block.horizon, power, nominal_points=block.nominal_points)
    return channel, block, power, emp.reshape(n, n).numpy()


def plot(out: Path, seed: int) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from pprl.empowerment.continuous import linearised_empowerment

    fig, axes = plt.subplots(2, 3, figsize=(15, 8.4))
    channels = {}
    for ax, method in zip(axes[0], ("learned", "known")):
        channel, block, power, emp = landscape(out / f"{method}-seed{seed}")
        channels[method] = channel, block, power
        im = ax.imshow(emp.T, origin="lower", extent=[-math.pi, math.pi, -8, 8], aspect="auto", cmap="viridis")
        fig.colorbar(im, ax=ax, label="nats")
        ax.set(title=f"{method} channel: E(θ, θ̇), K={block.horizon}×{block.action_repeat} (linearised)",
               xlabel="θ (0 = upright)", ylabel="θ̇")
    axes[0, 2].axis("off")
    for ax, method in zip(axes[1], METHODS):
        obs, _ = rollouts(out / f"{method}-seed{seed}")
        theta = np.arctan2(obs[..., 1], obs[..., 0]).ravel()
        ax.hist2d(theta, obs[..., 2].ravel(), bins=[48, 48], range=[[-math.pi, math.pi], [-8, 8]], cmap="magma")
        ax.set(title=f"{method}: visits (10 eval episodes, seed {seed})", xlabel="θ (0 = upright)", ylabel="θ̇")
    fig.tight_layout()
    fig.savefig(out / "pendulum_visitation.png", dpi=100)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(13, 4), sharey=False)
    for ax, name in zip(axes, ("learned", "known")):
        channel, block, power = channels[name]
        for method, colour in zip(METHODS, ("C0", "C2", "C3")):
            obs, _ = rollouts(out / f"{method}-seed{seed}")
            T, E, _ = obs.shape
            values = linearised_empowerment(channel, torch.from_numpy(obs.reshape(-1, 3)).float(), block.horizon,
                                            power, nominal_points=block.nominal_points).reshape(T, E).numpy()
            ax.plot(values, color=colour, alpha=0.2, lw=0.7)
            ax.plot(values.mean(1), color=colour, lw=2.5, label=f"{method} agent (mean of {E})")
        ax.set(xlabel="step", ylabel=f"E(s_t) under the {name} channel (nats)",
               title=f"empowerment along evaluation trajectories ({name} channel)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "pendulum_empowerment_along_trajectories.png", dpi=100)
    plt.close(fig)


def main() -> None:
    from vime_sample_efficiency import iqm_ci

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=400_000)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("-o", "--out", default="bench_out/pendulum_empowerment")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(m, s, args.steps, str(out)) for m in args.methods for s in args.seeds]
    with ProcessPoolExecutor(args.jobs) as pool:
        results = list(pool.map(run, *zip(*jobs)))
    (out / "results.json").write_text(json.dumps(results, indent=1))
    lines = [f"Pendulum-v1, reward off, {args.steps} env steps, seeds {args.seeds}; evaluation: 10 deterministic "
             f"episodes per seed, the last 99 states of 200 steps", "",
             "| method | upright fraction (abs θ < 0.3) | mean cos θ | pendulum return | per seed (upright) |",
             "|---|---|---|---|---|"]
    for method in args.methods:
        rows = [r for r in results if r["method"] == method]
        cells = []
        for key in ("upright_fraction", "mean_cos", "eval_return"):
            iqm, lo, hi = iqm_ci([r[key] for r in rows])
            cells.append(f"{iqm:.3g} [{lo:.3g}, {hi:.3g}]")
        per_seed = ", ".join(f"{r['upright_fraction']:.2f}" for r in rows)
        lines.append(f"| {method} | {' | '.join(cells)} | {per_seed} |")
    table = "\n".join(lines)
    (out / "results.md").write_text(table + "\n")
    print(table)
    if {"learned", "known", "no_reward"} <= set(args.methods):
        plot(out, args.seeds[0])


if __name__ == "__main__":
    main()
