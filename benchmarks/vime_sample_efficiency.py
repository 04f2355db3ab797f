"""Sample efficiency on sparse-reward tasks: VIME vs PPO alone, same learner and budget.

    python benchmarks/vime_sample_efficiency.py --seeds 0 1 2 3 4 --steps 200000 --jobs 2
    python benchmarks/vime_sample_efficiency.py --env swingup --steps 300000 -o bench_out/swingup
    python benchmarks/vime_sample_efficiency.py --env mountaincar_pixels --seeds 0 1 --steps 100000 -o bench_out/mc_pixels

Each (method, seed) run is `pprl.train` in its own process (one torch thread each); runs
land in OUT/<method>-seed<S>/ and the table (success rate, first-success step per seed) in
OUT/results.csv, the figure in OUT/sample_efficiency.png. Target: VIME reaches the goal in
≥ 4 of 5 seeds within 200k env steps; PPO alone in ≤ 1 of 5.
"""
import argparse
import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
ENVS = {"mountaincar": "Sparse MountainCar", "swingup": "CartPoleSwingUp",
        "mountaincar_pixels": "Sparse MountainCar from pixels"}  # examples/{method}_{env}.yaml
METHODS = ("vime", "ppo")


def run(method: str, seed: int, steps: int, out: str, env: str = "mountaincar") -> dict:
    import torch

    torch.set_num_threads(1)
    import pprl

    run_dir = Path(out) / f"{method}-seed{seed}"
    if (run_dir / "summary.json").is_file():  # finished earlier: reuse
        return {"method": method, **json.loads((run_dir / "summary.json").read_text())}
    if (run_dir / "checkpoint.pt").is_file():
        summary = pprl.train(None, out_dir=run_dir, resume=True, total_steps=steps, progress=False)
    else:
        summary = pprl.train(ROOT / "examples" / f"{method}_{env}.yaml", seed=seed, out_dir=run_dir, total_steps=steps, progress=False)
    return {"method": method, **summary}


def plot(out: Path, results: pd.DataFrame, env: str) -> None:
    """Success rate (MountainCar: the goal is reached or not) or episode return (swing-up: steps
    spent upright) against env steps, one line per seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.6))
    colors = {"vime": "tab:purple", "ppo": "tab:gray"}
    for _, r in results.iterrows():
        ep = pd.read_csv(out / f"{r['method']}-seed{r['seed']}" / "episodes.csv")
        column = "success" if env.startswith("mountaincar") else "return"
        curve = ep[column].astype(float).rolling(20, min_periods=1).mean()
        ax.plot(ep["env_step"], curve, color=colors[r["method"]], alpha=0.8,
                label=r["method"] if r["seed"] == results["seed"].min() else None)
    ylabel = "success rate" if env.startswith("mountaincar") else "return"
    ax.set(xlabel="env steps", ylabel=f"{ylabel} (last 20 episodes)",
           title=f"{ENVS[env]}: VIME vs PPO alone (one line per seed)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "sample_efficiency.png", dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--steps", type=int, default=200_000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--env", default="mountaincar", choices=list(ENVS))
    ap.add_argument("-o", "--output", default="bench_out/sample_efficiency")
    args = ap.parse_args()
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(m, s) for m in args.methods for s in args.seeds]
    with ProcessPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(run, *zip(*jobs), [args.steps] * len(jobs), [str(out)] * len(jobs),
                             [args.env] * len(jobs)))
    results = pd.DataFrame(rows)[["method", "seed", "reached_goal", "first_success_step", "success_rate",
                                  "final_success_rate", "final_return", "env_steps", "env_steps_per_s", "wall_time_s"]]
    results.to_csv(out / "results.csv", index=False)
    plot(out, results, args.env)
    print(results.to_string(index=False))
    for method, group in results.groupby("method"):
        print(f"{method}: reached the goal in {int(group['reached_goal'].sum())} of {len(group)} seeds "
              f"within {args.steps} env steps; final return {group['final_return'].mean():.1f} "
              f"± {group['final_return'].std():.1f} (mean ± sd over seeds)")
        first = group["first_success_step"].fillna(args.steps).to_numpy(float)  # never = the budget
        for name, values in (("final success rate", group["final_success_rate"].to_numpy(float)),
                             ("final return", group["final_return"].to_numpy(float)),
                             ("first success step (never = budget)", first)):
            iqm, lo, hi = iqm_ci(values)
            print(f"    {name}: IQM {iqm:.3g} [95% bootstrap CI {lo:.3g}, {hi:.3g}]")


def iqm_ci(values, reps: int = 5000, seed: int = 0) -> tuple[float, float, float]:
    """Interquartile mean over seeds with a percentile bootstrap 95% interval: pprl.sweeps.iqm_ci
    (the aggregate ``pprl sweep`` reports), kept here under its old name for the other scripts."""
    from pprl.sweeps import iqm_ci as aggregate

    return aggregate(values, reps, seed)


if __name__ == "__main__":
    main()
