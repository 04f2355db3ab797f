"""Variational empowerment (``pprl.Empowerment``) vs exact Blahut–Arimoto (``exact``) as the horizon grows.

For each grid and K = 1 .. ``--kmax`` (|A|^K = 5^K action sequences), times

- **Blahut–Arimoto**: ``blahut_arimoto(channel.compose(K), tol)`` — what ``exact(channel, K)``
  runs (composition included in the time), batched over all states; its iterations, whether it
  converged (gap < tol for every state) and the final gap. Its iterations are capped so that it
  stops near the per-K budget (the per-iteration time is measured on a 10-iteration run first);
  a capped run is "not converged" and its lower bound and gap are what the errors use.
- **variational**: construction (which composes the channel too) + ``fit(steps[K])`` with the
  estimator's defaults (hidden 128, lr 1e-2, 64 joint samples per state per step, ψ-regression
  source update, cosine annealing), then ``estimate`` of every cell with ``--eval-samples`` draws,
  in chunks of states so that the [chunk, M, 5^K] planner logits stay under ~0.5 GB.

Errors are the variational estimate minus the BA capacity per cell: mean absolute error, the
largest absolute error, and the number of cells where the estimate exceeds the exact value by
more than Monte-Carlo error (err > 4·stderr + 1e-3 nats, the criterion of
``tests/empowerment/test_variational.py``).

Stopping: a method is not run at larger K once one K exceeded the per-K ``--budget`` (seconds).
For the variational estimator the fit time is projected first from 3 timed steps (after one
warm-up step) on a throw-away estimator; if construction + steps × step time exceeds the budget
the K is skipped with its projection. A K whose composed channel S·5^K·S float64 would need more
than ``--mem-gb`` (BA's working set is ~6 copies of it; the estimator holds one plus the
[S, 64, 5^K] training logits) is skipped for both methods and said so.

    OMP_NUM_THREADS=1 python benchmarks/empowerment_scaling.py           # ~8 min on 1 CPU thread
    OMP_NUM_THREADS=1 python benchmarks/empowerment_scaling.py --quick   # K <= 2, < 1 min
    python benchmarks/empowerment_scaling.py --device cuda --json out.json
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import time
import warnings

import pyro
import torch

import pprl
from pprl.empowerment import GridWorld, blahut_arimoto

OPEN5 = ["....."] * 5
# 9×9 room: a horizontal wall with two doorways (columns 2 and 6) and a vertical wall through the
# middle that leaves the top and bottom two rows open: four chambers around a central pillar.
ROOM9 = [
    ".........",
    ".........",
    "....#....",
    "....#....",
    "##.###.##",
    "....#....",
    "....#....",
    ".........",
    ".........",
]
GRIDS = {
    "open5": (OPEN5, 0.0),
    "room9": (ROOM9, 0.0),
    "open5_slip0.1": (OPEN5, 0.1),  # a stochastic channel: BA needs many iterations here
}
STEPS = {1: 300, 2: 600, 3: 800, 4: 1000, 5: 1000, 6: 1000, 7: 1000}  # fit steps per K (K <= 3: the tests')
WORST_ABOVE = 4.0  # sd: a cell is "above exact" when err > 4 stderr + 1e-3


def sync(device: torch.device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device):
    sync(device)
    t0 = time.perf_counter()
    out = fn()
    sync(device)
    return out, time.perf_counter() - t0


def run_ba(grid: GridWorld, K: int, budget: float, tol: float, device):
    """BA with its iterations capped near ``budget`` seconds; returns a dict."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        probe, t_probe = timed(lambda: blahut_arimoto(grid.compose(K), tol=tol, max_iter=10), device)
        _, t_comp = timed(lambda: grid.compose(K), device)
        if probe.converged:
            cap, total = probe, t_probe
            max_iter = 10
        else:
            per_iter = max(t_probe - t_comp, 1e-6) / 10
            max_iter = max(10, int((budget - t_comp) / per_iter))
            cap, total = timed(lambda: blahut_arimoto(grid.compose(K), tol=tol, max_iter=max_iter), device)
    return {"ba_s": total, "ba_iters": cap.iterations, "ba_converged": bool(cap.converged), "ba_max_iter": max_iter,
            "ba_gap": float(cap.gap.max()), "capacity": cap.capacity.double().cpu()}


def run_variational(grid: GridWorld, K: int, steps: int, budget: float, eval_samples: int, seed: int, device):
    """Projection from 3 timed steps, then (if within budget) a full fit and the estimate of all cells."""
    probe, t_init = timed(lambda: pprl.Empowerment(grid, K, seed=seed, device=device), device)
    probe.fit(1, progress=False)
    _, t3 = timed(lambda: probe.fit(3, progress=False), device)
    del probe
    projected = t_init + steps * t3 / 3
    out = {"var_steps": steps, "var_projected_s": projected}
    if projected > budget:
        out["var_skipped"] = f"projected {projected:.0f} s > budget {budget:.0f} s"
        return out
    sync(device)
    t0 = time.perf_counter()
    emp = pprl.Empowerment(grid, K, seed=seed, device=device).fit(steps, progress=False)
    sync(device)
    out["var_fit_s"] = time.perf_counter() - t0
    S, X = grid.num_states, 5 ** K
    chunk = max(1, min(S, int(0.5e9 / (4 * eval_samples * X))))
    values, errs = [], []
    sync(device)
    t0 = time.perf_counter()
    for i, start in enumerate(range(0, S, chunk)):
        v, e = emp.estimate(torch.arange(start, min(S, start + chunk)), num_samples=eval_samples, seed=seed + 7919 * i)
        values.append(v.double().cpu())
        errs.append(e.double().cpu())
    sync(device)
    out["var_eval_s"] = time.perf_counter() - t0
    out["var_eval_chunk"] = chunk
    out["estimate"], out["stderr"] = torch.cat(values), torch.cat(errs)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--grids", nargs="+", default=list(GRIDS), choices=list(GRIDS))
    ap.add_argument("--kmax", type=int, default=6)
    ap.add_argument("--budget", type=float, default=120.0, help="seconds per method per (grid, K) (default 120)")
    ap.add_argument("--mem-gb", type=float, default=6.0,
                    help="skip a K whose composed channel ×6 (BA's working set) exceeds this (default 6 GB)")
    ap.add_argument("--eval-samples", type=int, default=4096, help="draws per cell for the estimate (default 4096)")
    ap.add_argument("--tol", type=float, default=1e-7, help="BA gap tolerance, nats (exact()'s default)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    ap.add_argument("--quick", action="store_true", help="K <= 2 on every grid (< 1 min)")
    ap.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = ap.parse_args(argv)
    if args.quick:
        args.kmax = min(args.kmax, 2)
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda requested but CUDA is not available")
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, pyro {pyro.__version__}, device {device}, {torch.get_num_threads()} threads; "
          f"budget {args.budget:.0f} s per method per K, memory cap {args.mem_gb:g} GB; "
          f"fit steps {({k: STEPS[k] for k in range(1, args.kmax + 1)})}; eval {args.eval_samples} draws per cell",
          flush=True)
    print("room9 layout:\n" + "\n".join("    " + row for row in ROOM9), flush=True)

    t_start = time.perf_counter()
    rows = []
    for name in args.grids:
        layout, slip = GRIDS[name]
        grid = GridWorld(layout, slip=slip, device=device)
        S = grid.num_states
        ba_on, var_on = True, True
        for K in range(1, args.kmax + 1):
            row = {"grid": name, "states": S, "slip": slip, "K": K, "inputs": 5 ** K}
            gb = S * 5 ** K * S * 8 / 1e9
            row["channel_gb"] = gb
            if 6 * gb > args.mem_gb:
                row["skipped"] = f"composed channel {gb:.2f} GB (BA ~{6 * gb:.1f} GB) > {args.mem_gb:g} GB"
                rows.append(row)
                print(f"{name} K={K}: {row['skipped']}", flush=True)
                break
            ba = var = None
            if ba_on:
                ba = run_ba(grid, K, args.budget, args.tol, device)
                row.update({k: v for k, v in ba.items() if k != "capacity"})
                if ba["ba_s"] > args.budget or not ba["ba_converged"]:
                    ba_on = False
            else:
                row["ba_skipped"] = "over budget at a smaller K"
            if var_on:
                var = run_variational(grid, K, STEPS[K], args.budget, args.eval_samples, args.seed, device)
                row.update({k: v for k, v in var.items() if k not in ("estimate", "stderr")})
                if "var_skipped" in var or var["var_fit_s"] + var["var_eval_s"] > args.budget:
                    var_on = False
            else:
                row["var_skipped"] = "over budget at a smaller K"
            if ba is not None and var is not None and "estimate" in var:
                err = var["estimate"] - ba["capacity"]
                row["mae"] = float(err.abs().mean())
                row["max_abs_err"] = float(err.abs().max())
                row["mean_err"] = float(err.mean())
                row["cells_above"] = int((err > WORST_ABOVE * var["stderr"] + 1e-3).sum())
                row["max_above"] = float(err.max())
                row["exact_mean"] = float(ba["capacity"].mean())
                row["var_faster"] = var["var_fit_s"] + var["var_eval_s"] < ba["ba_s"]
            elif ba is None and var is not None and "estimate" in var:
                row["var_faster"] = True  # BA stopped at a smaller K (over budget) while the estimator ran
            rows.append(row)
            print(f"{name} K={K}: " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                                  for k, v in row.items() if k not in ("grid", "K")), flush=True)
            if not (ba_on or var_on):
                break

    total = time.perf_counter() - t_start
    print_table(rows, args.grids)
    print(f"total {total:.0f} s")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"torch": torch.__version__, "pyro": pyro.__version__, "device": str(device),
                       "platform": platform.platform(), "threads": torch.get_num_threads(), "budget_s": args.budget,
                       "eval_samples": args.eval_samples, "total_s": total, "rows": rows}, fh, indent=2)
    return rows


def print_table(rows, grids):
    """The markdown table and the crossover line per grid."""
    print("\n| grid | K | 5^K | BA s | BA iters | BA conv. (gap) | var steps | var fit s | var eval s | MAE | max err "
          "| cells > exact | var faster |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "skipped" in r:
            print(f"| {r['grid']} | {r['K']} | {r['inputs']} | skipped: {r['skipped']} |||||||||")
            continue
        ba = (f"{r['ba_s']:.3f} | {r['ba_iters']} | {'yes' if r['ba_converged'] else 'no'} ({r['ba_gap']:.1e})"
              if "ba_s" in r else f"— ({r['ba_skipped']}) | — | —")
        if "var_fit_s" in r:
            var = f"{r['var_steps']} | {r['var_fit_s']:.1f} | {r['var_eval_s']:.2f}"
        else:
            var = f"{r.get('var_steps', STEPS[r['K']])} | — ({r['var_skipped']}) | —"
        errs = (f"{r['mae']:.4f} | {r['max_abs_err']:.4f} | {r['cells_above']}" if "mae" in r else "— | — | —")
        faster = {True: "yes", False: "no", None: "—"}[r.get("var_faster")]
        print(f"| {r['grid']} | {r['K']} | {r['inputs']} | {ba} | {var} | {errs} | {faster} |")
    print("\nBA s includes compose(K); var fit s includes construction (which composes too); "
          "'cells > exact': cells with estimate − exact > 4 stderr + 1e-3 nats.")
    for name in grids:
        ks = [r["K"] for r in rows if r["grid"] == name and r.get("var_faster")]
        ran = [r["K"] for r in rows if r["grid"] == name and "var_fit_s" in r]
        reached = max(ran) if ran else 0
        print(f"{name}: variational faster than BA from K = {min(ks)}" if ks
              else f"{name}: variational never faster than BA up to K = {reached} (the largest K it ran)")


if __name__ == "__main__":
    main()
