"""Sample the 40 Beyond-Normal tasks and run the paper's estimators on them, in the benchmark's
own environment (``setup_env.sh``; this file imports ``bmi``, not pprl)::

    .venv-bmi/bin/python benchmarks/mi_beyond_normal/sample_tasks.py -o bench_out/bmi \
        --seeds 0 --samples 10000 --estimators cca ksg infonce nwj dv mine

Writes ``tasks/<task>.seed<s>.npz`` (x, y, the true MI) for pprl's side
(``benchmarks/mi_beyond_normal.py``) and appends one JSON line per (task, seed, estimator) to
``reference.jsonl`` (estimate, true MI, seconds); a line already there is not recomputed, so an
interrupted run resumes. The estimators are the package's own, with the paper's settings
(neural: MLP (16, 8) concat critic, batch 256, 10,000 steps, lr 0.1, half the samples held out,
standardised inputs; KSG with k = 10; CCA).
"""
import argparse
import json
import os
import time
from pathlib import Path

import numpy as np


def estimators(names):
    import bmi.estimators as E

    table = {
        "cca": lambda: E.CCAMutualInformationEstimator(),
        "ksg": lambda: E.KSGEnsembleFirstEstimator(neighborhoods=(10,)),
        "infonce": lambda: E.InfoNCEEstimator(verbose=False),
        "nwj": lambda: E.NWJEstimator(verbose=False),
        "dv": lambda: E.DonskerVaradhanEstimator(verbose=False),
        "mine": lambda: E.MINEEstimator(verbose=False),
    }
    unknown = sorted(set(names) - set(table))
    if unknown:
        raise SystemExit(f"unknown estimator(s) {unknown}; allowed: {sorted(table)}")
    return {n: table[n] for n in names}


def main() -> None:
    from bmi.benchmark import BENCHMARK_TASKS

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--out", default="bench_out/bmi")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--estimators", nargs="*", default=["cca", "ksg", "infonce", "nwj", "dv", "mine"])
    parser.add_argument("--tasks", nargs="*", help="task names (default: all 40)")
    args = parser.parse_args()
    out = Path(args.out)
    (out / "tasks").mkdir(parents=True, exist_ok=True)
    names = args.tasks or list(BENCHMARK_TASKS)
    builders = estimators(args.estimators)
    ledger = out / "reference.jsonl"
    done = set()
    if ledger.exists():
        done = {(r["task"], r["seed"], r["estimator"]) for r in map(json.loads, ledger.read_text().splitlines())}
    for name in names:
        task = BENCHMARK_TASKS[name]
        for seed in args.seeds:
            path = out / "tasks" / f"{name}.seed{seed}.npz"
            if not path.exists():  # written whole, then renamed: a reader never sees half a file
                x, y = task.sample(args.samples, seed=seed)
                partial = path.with_name(path.name + ".partial.npz")
                np.savez(partial, x=np.asarray(x, np.float32), y=np.asarray(y, np.float32),
                         mi=float(task.mutual_information))
                os.replace(partial, path)
            data = np.load(path)
            for est_name, build in builders.items():
                if (name, seed, est_name) in done:
                    continue
                t = time.perf_counter()
                value = float(build().estimate(data["x"], data["y"]))
                row = {"task": name, "seed": seed, "estimator": est_name, "estimate": value,
                       "true_mi": float(task.mutual_information), "seconds": time.perf_counter() - t}
                with ledger.open("a") as fh:
                    fh.write(json.dumps(row) + "\n")
                print(row, flush=True)


if __name__ == "__main__":
    main()
