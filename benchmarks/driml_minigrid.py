"""PPO vs PPO + DRIML on a MiniGrid task from its egocentric image (issue 16's benchmark).

    python benchmarks/driml_minigrid.py --seeds 0 1 2 3 4 --steps 400000 --jobs 2 -o bench_out/driml_minigrid

Both arms: examples/driml_minigrid.yaml (PPO with a conv encoder on ``pprl/MiniGrid-v0``, the task
set by ``--task``, default MiniGrid-DoorKey-8x8-v0), same seeds and budget; ``ppo`` drops the
``auxiliary:`` block, ``driml`` keeps it (λ = 0.1, k ~ U{1..4}, InfoNCE). Per seed: the final
return (mean training return of the last 10% of episodes), the final success rate and the mean
return over all of training (area under the curve / budget). Aggregates: the interquartile mean
over seeds with a percentile-bootstrap 95% interval (rliable-style), env steps per second of
both arms in this one run. Figures: return curves (per seed and the IQM per iteration) and
DRIML's MI estimate beside its log N ceiling over training. Needs ``pip install "pprl[minigrid]"``.
"""
import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
METHODS = ("ppo", "driml")


def spec(method: str, task: str) -> dict:
    import yaml

    data = yaml.safe_load((ROOT / "examples" / "driml_minigrid.yaml").read_text())
    data["env_kwargs"]["task"] = task
    if method == "ppo":
        data.pop("auxiliary")
        data["name"] = "ppo_minigrid"
    return data


def run(method: str, seed: int, steps: int, task: str, out: str) -> dict:
    import torch

    torch.set_num_threads(1)
    import pprl

    run_dir = Path(out) / f"{method}-seed{seed}"
    if not (run_dir / "summary.json").is_file():
        pprl.train(spec(method, task), seed=seed, out_dir=run_dir, total_steps=steps, progress=False)
    summary = json.loads((run_dir / "summary.json").read_text())
    import pandas as pd

    episodes = pd.read_csv(run_dir / "episodes.csv")
    return {"method": method, "seed": seed, "final_return": summary["final_return"],
            "final_success_rate": summary["final_success_rate"], "mean_return": float(episodes["return"].mean()),
            "env_steps_per_s": summary["env_steps_per_s"]}


def plot(out: Path, seeds: list[int]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd
    from scipy.stats import trim_mean

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.2))
    for method, colour in zip(METHODS, ("C0", "C1")):
        curves = [pd.read_csv(out / f"{method}-seed{s}" / "metrics.csv") for s in seeds]
        steps = curves[0]["env_steps"].to_numpy()
        values = np.stack([c["return_mean"].fillna(0.0).to_numpy()[:len(steps)] for c in curves])
        for v in values:
            axes[0].plot(steps, v, color=colour, alpha=0.25, lw=0.8)
        axes[0].plot(steps, trim_mean(values, 0.25, axis=0), color=colour, lw=2.5, label=f"{method} (IQM of {len(seeds)})")
        if method == "driml":
            for c in curves:
                axes[1].plot(c["env_steps"], c["driml_mi"], color=colour, alpha=0.6, lw=0.9)
            axes[1].plot(curves[0]["env_steps"], curves[0]["driml_log_n"], color="k", ls="--", lw=1,
                         label="log N (InfoNCE ceiling)")
    axes[0].set(xlabel="env steps", ylabel="return (mean of the last 20 episodes)", title="return")
    axes[0].legend()
    axes[1].set(xlabel="env steps", ylabel="nats", title="DRIML: InfoNCE estimate of I([S_t, A_t]; S_t+k), per seed")
    axes[1].legend()
    fig.tight_layout()
    fig.savefig(out / "driml_minigrid.png", dpi=100)
    plt.close(fig)


def main() -> None:
    from vime_sample_efficiency import iqm_ci

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--steps", type=int, default=400_000)
    parser.add_argument("--task", default="MiniGrid-DoorKey-8x8-v0")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("-o", "--out", default="bench_out/driml_minigrid")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(m, s, args.steps, args.task, str(out)) for s in args.seeds for m in METHODS]
    with ProcessPoolExecutor(args.jobs) as pool:
        results = list(pool.map(run, *zip(*jobs)))
    (out / "results.json").write_text(json.dumps(results, indent=1))
    lines = [f"{args.task}, {args.steps} env steps, seeds {args.seeds}; IQM over seeds [95% bootstrap CI]", "",
             "| method | final return | final success rate | mean return over training | env steps/s (median) | per seed (final return) |",
             "|---|---|---|---|---|---|"]
    for method in METHODS:
        rows = [r for r in results if r["method"] == method]
        cells = []
        for key in ("final_return", "final_success_rate", "mean_return"):
            iqm, lo, hi = iqm_ci([r[key] for r in rows])
            cells.append(f"{iqm:.3g} [{lo:.3g}, {hi:.3g}]")
        speed = float(np.median([r["env_steps_per_s"] for r in rows]))
        per_seed = ", ".join(f"{r['final_return']:.2f}" for r in rows)
        lines.append(f"| {method} | {' | '.join(cells)} | {speed:.0f} | {per_seed} |")
    table = "\n".join(lines)
    (out / "results.md").write_text(table + "\n")
    print(table)
    plot(out, args.seeds)


if __name__ == "__main__":
    main()
