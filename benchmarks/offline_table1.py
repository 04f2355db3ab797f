"""BC, CQL and MISA on datasets built here by the D4RL protocol, in the layout of the MISA paper's
Table 1 (issue 17's benchmark).

    python benchmarks/offline_table1.py --env Pendulum-v1 --seeds 0 1 2 --updates 2000 --jobs 2 -o bench_out/offline_pendulum
    pprl dataset build HalfCheetah-v5 --size 100000 --sac-steps 150000 -o data/halfcheetah
    python benchmarks/offline_table1.py --env HalfCheetah-v5 --data data/halfcheetah --updates 3000 -o bench_out/offline_halfcheetah

Datasets: with ``--data DIR``, the files ``DIR/{env}-{kind}.npz`` that ``pprl dataset build`` wrote
(and its ``datasets.json``); without it, ``--size`` rows per dataset from one SAC run of
``--sac-steps`` steps, built into ``OUT/data`` (medium, medium-replay, medium-expert). Learners:
examples/offline/misa_pendulum.yaml's MISA, CQL(H) and BC with the same networks ((64, 64): MISA's
update with the paper's (256, 256) takes about 1 s on one CPU thread, its 50 action samples and 5
MCMC steps each passing 12,800 rows through both critics), batch 256 and number of updates, on
``--env``. Score: the normalised score (100 = the SAC expert, 0 = random; references measured
here) of the final evaluation (``--eval-episodes`` deterministic episodes). Table: dataset ×
method, IQM over seeds with a percentile-bootstrap 95% interval; ms per update of each method.
"""
import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
METHODS = ("bc", "cql", "misa")
KINDS = ("medium", "medium-replay", "medium-expert")


def env_name(env_id: str) -> str:
    """The dataset files' prefix for ``env_id`` (as :func:`pprl.rl.offline_datasets.build_datasets` names them)."""
    return env_id.split("/")[-1].split("-v")[0].lower()


def spec(method: str, dataset: Path, updates: int, env_id: str = "Pendulum-v1", eval_episodes: int = 10) -> dict:
    import yaml

    data = yaml.safe_load((ROOT / "examples" / "offline" / "misa_pendulum.yaml").read_text())
    data.update(name=f"{method}_{dataset.stem}", env=env_id, dataset=str(dataset), updates=updates,
                eval_every=max(1, updates // 10), eval_episodes=eval_episodes)
    if method != "misa":
        data["learner"] = {"type": method, "batch_size": 256}
    data["learner"]["hidden_sizes"] = [64, 64]  # MISA's update at (256, 256) takes ~1 s on one CPU thread
    return data


def run(method: str, kind: str, seed: int, updates: int, data_dir: str, out: str, env_id: str,
        eval_episodes: int) -> dict:
    import torch

    torch.set_num_threads(1)
    from pprl.rl.offline_train import train_offline

    run_dir = Path(out) / f"{method}-{kind}-seed{seed}"
    if not (run_dir / "summary.json").is_file():
        train_offline(spec(method, Path(data_dir) / f"{env_name(env_id)}-{kind}.npz", updates, env_id, eval_episodes),
                      seed=seed, out_dir=run_dir, progress=False)
    s = json.loads((run_dir / "summary.json").read_text())
    import pandas as pd

    last = pd.read_csv(run_dir / "metrics.csv").iloc[-1]
    return {"method": method, "kind": kind, "seed": seed, "score": float(last["normalized_score"]),
            "ms_per_update": s["ms_per_update"], "data_mi": s["final_data_mi"]}


def plot(out: Path, seeds: list[int], name: str, methods=METHODS, kinds=KINDS) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    fig, axes = plt.subplots(1, len(kinds), figsize=(5 * len(kinds), 3.6), sharey=True, squeeze=False)
    axes = axes[0]
    for ax, kind in zip(axes, kinds):
        for method, colour in zip(methods, ("C0", "C1", "C2")):
            curves = [pd.read_csv(out / f"{method}-{kind}-seed{s}" / "metrics.csv") for s in seeds]
            steps = curves[0]["updates"]
            values = np.stack([c["normalized_score"].to_numpy() for c in curves])
            ax.plot(steps, np.median(values, 0), color=colour, lw=2, label=f"{method} (median of {len(seeds)})")
            for v in values:
                ax.plot(steps, v, color=colour, alpha=0.25, lw=0.8)
        ax.set(title=f"{name}-{kind}", xlabel="gradient steps")
    axes[0].set_ylabel("normalised score")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / f"offline_{name}.png", dpi=100)
    plt.close(fig)


def main() -> None:
    from vime_sample_efficiency import iqm_ci

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="Pendulum-v1", help="gymnasium id of the datasets' env")
    parser.add_argument("--data", default=None, help="a directory `pprl dataset build` wrote (default: build into OUT/data)")
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS), help="datasets to run")
    parser.add_argument("--updates", type=int, default=3000)
    parser.add_argument("--size", type=int, default=20_000)
    parser.add_argument("--sac-steps", type=int, default=30_000)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("-o", "--out", default=None, help="default: bench_out/offline_{env}")
    args = parser.parse_args()
    name = env_name(args.env)
    out = Path(args.out or f"bench_out/offline_{name}")
    import torch

    torch.set_num_threads(1)
    if args.data is None:
        from pprl.rl.learners import SACConfig
        from pprl.rl.offline_datasets import build_datasets

        data_dir = out / "data"
        build_datasets(args.env, KINDS, size=args.size, sac_steps=args.sac_steps, out_dir=data_dir, seed=0,
                       snapshots=args.sac_steps // 256,  # one per iteration: SAC jumps from random to expert in ~1k steps
                       sac_config=SACConfig(total_steps=args.sac_steps, buffer_size=args.sac_steps + 256,
                                            learning_starts=2000),
                       progress=False)
    else:
        data_dir = Path(args.data)
        missing = [f"{name}-{k}.npz" for k in KINDS if not (data_dir / f"{name}-{k}.npz").is_file()]
        missing += [] if (data_dir / "datasets.json").is_file() else ["datasets.json"]
        if missing:
            sys.exit(f"{data_dir}: no {missing[0]}; build it with `pprl dataset build {args.env} -o {data_dir}`")
        built_for = json.loads((data_dir / "datasets.json").read_text()).get("env_id")
        if built_for != args.env:
            sys.exit(f"{data_dir}/datasets.json is for {built_for!r}, not --env {args.env!r}")
    jobs = [(m, k, s, args.updates, str(data_dir), str(out), args.env, args.eval_episodes)
            for k in args.kinds for m in args.methods for s in args.seeds]
    with ProcessPoolExecutor(args.jobs) as pool:
        results = list(pool.map(run, *zip(*jobs)))
    (out / "results.json").write_text(json.dumps(results, indent=1))
    info = json.loads((data_dir / "datasets.json").read_text())
    built = f"{args.size} transitions each, SAC {args.sac_steps} steps" if args.data is None else f"from {data_dir}"
    lines = [f"{args.env} datasets ({built}; references: random "
             f"{info['ref_min_score']:.0f}, expert {info['ref_max_score']:.0f}), {args.updates} updates, seeds "
             f"{args.seeds}; final normalised score, IQM [95% bootstrap CI]", "",
             "| dataset | " + " | ".join(args.methods) + " |", "|---" * (1 + len(args.methods)) + "|"]
    totals = {m: 0.0 for m in args.methods}
    for kind in args.kinds:
        cells = []
        for method in args.methods:
            iqm, lo, hi = iqm_ci([r["score"] for r in results if r["method"] == method and r["kind"] == kind])
            totals[method] += iqm
            cells.append(f"{iqm:.1f} [{lo:.1f}, {hi:.1f}]")
        lines.append(f"| {name}-{kind} | " + " | ".join(cells) + " |")
    lines.append("| total | " + " | ".join(f"{totals[m]:.1f}" for m in args.methods) + " |")
    speed = {m: np.median([r["ms_per_update"] for r in results if r["method"] == m]) for m in args.methods}
    lines += ["", "ms per update (median, one CPU thread): " + ", ".join(f"{m} {speed[m]:.1f}" for m in args.methods)]
    table = "\n".join(lines)
    (out / "results.md").write_text(table + "\n")
    print(table)
    plot(out, args.seeds, name, args.methods, args.kinds)


if __name__ == "__main__":
    main()
