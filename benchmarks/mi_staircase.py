r"""pprl's MI bounds on the Gaussian "staircase" of Poole et al. (2019), against torch-mist.

    python benchmarks/mi_staircase.py --quick --torch-mist          # 200 steps/level, ~minutes
    python benchmarks/mi_staircase.py --torch-mist                  # full: 4,000 steps/level
    python benchmarks/mi_staircase.py --critics separable --torch-mist
    python benchmarks/mi_staircase.py --summarize-only [--out-dir DIR]
    python benchmarks/mi_staircase.py --summarize-seeds DIR_SEED0 DIR_SEED1 ...   # bias over seeds

    # the two libraries side by side, one core each (two processes, same --out-dir):
    python benchmarks/mi_staircase.py --critics concat &
    python benchmarks/mi_staircase.py --critics concat --torch-mist --skip-pprl

Setup (Poole et al. 2019, Sec. 5 / Fig. 2): X, Y 20-d correlated Gaussians with true MI
2, 4, 6, 8, 10 nats, ``--steps-per-level`` (4,000) steps per level, one fresh batch of 64 per
step from :mod:`staircase_data` (the same deterministic stream torch-mist's runner reads),
Adam (lr 5e-4), every (bound, critic) pair restarted from ``--seed`` (data and torch seed).
Critics: ``make_critic("separable", 20, 20, hidden=(256, 256), embed_dim=32)`` and
``make_critic("concat", 20, 20, hidden=(256, 256))``: the same sizes (and parameter counts) as
torch-mist's ``critic_type="separable"/"joint"``. Negatives: every pair of the batch (all K²
critic values, Poole style); the bounds of :mod:`pprl.inference.bounds` read the full score
matrix, which matches torch-mist's ``--negatives poole`` (the whole row for InfoNCE, the 63
off-diagonal pairs for the rest).

Bounds (pprl name, options; torch-mist counterpart in its runner's JSON):

* ``infonce``                       <-> ``infonce``
* ``nwj``                           <-> ``nwj``
* ``dv`` (trained on plain DV)      <-> ``dv`` (torch-mist's MINE; it has no plain DV estimator)
* ``mine`` (momentum 0.9)           <-> ``dv`` (MINE, ``gamma=0.9``: same moving-average rule;
  ``--mine-clamp`` (default log 1e4) applies torch-mist's clamp of the batch mean to [1e-4, 1e4])
* ``js``                            <-> ``js``
* ``smile`` (clip τ = 5)            <-> ``smile`` (tau 5)
* ``tuba`` (learned a(y))           <-> ``tuba`` (learned a(x))
* ``interpolated`` (α = 0.01, a(y)) <-> ``interpolated`` (torch-mist AlphaTUBA, α = 0.01, a(x))

The learned log-baseline of ``tuba``/``interpolated`` is an MLP 20 -> 256 -> 256 -> 1 (ReLU),
the size of torch-mist's ``baseline_nn``. pprl's convention is Poole et al.'s: one baseline
per *column* y_j (the partition over the x's paired with y_j), so by default the MLP reads y.
torch-mist's baseline reads x and normalises each *row* over the y's; ``--baseline-on x``
reproduces that orientation with pprl (bounds applied to ``scores.mT`` with a(x)). On this
problem X and Y are exchangeable, so the two are mirror images of one another.

Timing (as in torch-mist's runner): ``sec_per_step`` is the mean over steps of critic forward +
objective + ``zero_grad`` + ``backward`` + Adam ``step``; drawing the batch and, for the bounds
whose reported estimate differs from the objective (js, smile), evaluating the estimate on the
same ``scores.detach()`` under ``no_grad`` are excluded. For the others the estimate is the
objective's value (for MINE: the DV value, which ``mine`` returns by construction).

Outputs in ``--out-dir`` (default ``bench_out/mi_staircase``, or its ``quick/`` subfolder
with ``--quick``): ``pprl.json`` (same schema as torch-mist's runner: ``{bound: {critic:
{...}}, "metadata": {...}}``), ``torch_mist.json`` (with ``--torch-mist``), ``summary.md``,
``staircase.png``. Re-running with other ``--bounds``/``--critics`` merges into existing JSON
when seed and steps per level match; ``--torch-mist`` only runs the (bound, critic) pairs its
JSON lacks.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
if REPO not in sys.path:
    sys.path.insert(1, REPO)
import staircase_data  # noqa: E402

DEFAULT_BOUNDS = ["infonce", "nwj", "dv", "mine", "js", "smile", "tuba", "interpolated"]
CRITICS = ["separable", "concat"]
#: pprl bound -> key in torch-mist's JSON (its runner maps "mine" to "dv": MINE-trained DV)
TM_KEY = {"infonce": "infonce", "nwj": "nwj", "dv": "dv", "mine": "dv", "js": "js",
          "smile": "smile", "tuba": "tuba", "interpolated": "interpolated"}
HIDDEN = (256, 256)
EMBED_DIM = 32
SMILE_TAU = 5.0
ALPHA = 0.01
MINE_MOMENTUM = 0.9  # = torch-mist's MINE gamma (pprl's own default is 0.99)
MINE_CLAMP = math.log(1e4)  # torch-mist clamps MINE's batch mean of e^f to [1e-4, 1e4] (pprl: off by default)
LOG_K = math.log(staircase_data.BATCH_SIZE)
TM_VENV_PY = os.path.join(HERE, ".venv-torch-mist", "bin", "python")
TM_RUNNER = os.path.join(HERE, "torch_mist_staircase.py")

ESTIMATE_NOTES = {
    "infonce": "InfoNCE bound (= objective)",
    "nwj": "NWJ bound (= objective)",
    "dv": "DV bound, off-diagonal log-mean-exp (trained on DV itself)",
    "mine": "DV bound (objective value; MINE moving-average gradient, momentum {m:g}, "
    "log-mean clamp {c})",
    "js": "NWJ at critic f+1: 1 + E_p[f] - E_q[e^f] (trained on JS f-GAN objective)",
    "smile": f"DV with off-diagonal scores clipped to [-{SMILE_TAU:g}, {SMILE_TAU:g}] "
    "(trained on JS f-GAN objective)",
    "tuba": "TUBA bound with learned log-baseline a({v}) (= objective)",
    "interpolated": f"Poole et al. I_alpha, alpha={ALPHA:g}, learned log-baseline a({{v}}), "
    "leave-one-out multi-sample baseline (= objective)",
}


# ---------------------------------------------------------------------------------------------
# Training (pprl)
def _mine_clamp(args):
    return (-args.mine_clamp, args.mine_clamp) if args.mine_clamp > 0 else None


def _bound_and_critic(bound: str, critic: str, args):
    """(Bound, critic module, baseline module or None, separate_estimate, description)."""
    from torch import nn

    from pprl.inference.bounds import get_bound
    from pprl.models.critics import make_critic

    d = staircase_data.DIM
    opts: Dict[str, Any] = {}
    if bound == "smile":
        opts["clip"] = SMILE_TAU
    elif bound == "interpolated":
        opts["alpha"] = ALPHA
    elif bound == "mine":
        opts["momentum"] = args.mine_momentum
        opts["log_mean_clamp"] = _mine_clamp(args)
    b = get_bound(bound, **opts)
    # Construction order as in torch-mist (baseline network first, then the critic; within the
    # separable critic g(x) before h(y)): with the same seed both libraries start from
    # identical weights, so differences come from the bounds, not from the initialisation.
    baseline = None
    if bound in ("tuba", "interpolated"):
        sizes = [d, *HIDDEN, 1]
        layers: List[nn.Module] = []
        for i, (a, c) in enumerate(zip(sizes[:-1], sizes[1:])):
            if i:
                layers.append(nn.ReLU())
            layers.append(nn.Linear(a, c))
        baseline = nn.Sequential(*layers)
    if critic == "separable":
        f = make_critic("separable", d, d, hidden=HIDDEN, embed_dim=EMBED_DIM)
    else:
        f = make_critic("concat", d, d, hidden=HIDDEN)
    separate = bound in ("js", "smile")
    opt_str = ", ".join(f"{k}={v}" for k, v in opts.items())
    name = f"pprl.inference.bounds.get_bound({bound!r}{', ' + opt_str if opt_str else ''}) + " \
           f"pprl.models.critics.make_critic({critic!r}, hidden={list(HIDDEN)}" \
           f"{', embed_dim=%d' % EMBED_DIM if critic == 'separable' else ''})"
    if baseline is not None:
        name += f" + log-baseline MLP on {args.baseline_on} {sizes}"
    return b, f, baseline, separate, name


def run_one(bound: str, critic: str, args) -> Dict[str, Any]:
    import torch

    torch.manual_seed(args.seed)
    b, f, baseline, separate, name = _bound_and_critic(bound, critic, args)
    params = list(f.parameters()) + (list(baseline.parameters()) if baseline is not None else [])
    opt = torch.optim.Adam(params, lr=args.lr)
    on_x = args.baseline_on == "x"
    objective, estimate = b.objective, b.estimate

    clock = time.perf_counter

    def train_step(x_np, y_np):
        x, y = torch.from_numpy(x_np), torch.from_numpy(y_np)
        t0 = clock()
        scores = f(x, y)                                   # [K, K], scores[i, j] = f(x_i, y_j)
        if baseline is not None:
            if on_x:   # torch-mist's orientation: rows normalised over y's, baseline a(x_i)
                scores = scores.mT
                obj = objective(scores, log_baseline=baseline(x).squeeze(-1))
            else:      # pprl / Poole: columns y_j normalised over x's, baseline a(y_j)
                obj = objective(scores, log_baseline=baseline(y).squeeze(-1))
        else:
            obj = objective(scores)
        opt.zero_grad(set_to_none=True)
        (-obj).backward()
        t1 = clock()
        if separate:
            with torch.no_grad():
                value = estimate(scores.detach())
        else:
            value = obj.detach()
        t2 = clock()
        opt.step()
        t3 = clock()
        return float(value), (t1 - t0) + (t3 - t2)

    record = staircase_data.run_staircase(train_step, args.seed, args.steps_per_level)
    n_params = sum(p.numel() for p in params if p.requires_grad)
    return {
        **record,
        "pprl_name": name,
        "estimate_reported": ESTIMATE_NOTES[bound].format(m=args.mine_momentum, v=args.baseline_on,
                                                          c=_mine_clamp(args)),
        "estimate_source": "bound.estimate(scores.detach()) under no_grad (untimed)" if separate
        else "objective value (obj.detach())",
        "neg_samples": 0 if bound == "infonce" else -1,
        "n_params": int(n_params),
    }


def _metadata(args, total_wall: float) -> Dict[str, Any]:
    import torch

    import pprl
    return staircase_data.run_metadata(
        args,
        benchmark="Poole et al. 2019 Gaussian staircase (20-d), pprl",
        pprl_version=getattr(pprl, "__version__", "unknown"),
        torch_version=torch.__version__,
        negatives="poole",
        critic_sizes={"hidden_dims": list(HIDDEN), "separable_embed_dim": EMBED_DIM},
        bound_options={"smile_clip": SMILE_TAU, "interpolated_alpha": ALPHA,
                       "mine_momentum": args.mine_momentum, "mine_log_mean_clamp": _mine_clamp(args),
                       "baseline_on": args.baseline_on, "baseline_hidden": list(HIDDEN)},
        timing="sec_per_step = mean over steps of critic forward + objective + zero_grad + "
        "backward + Adam step (data generation and untimed estimate evaluation excluded)",
        total_wall_sec=total_wall,
    )


# ---------------------------------------------------------------------------------------------
# JSON helpers
def _load(path: str) -> Optional[Dict[str, Any]]:
    if not os.path.exists(path):
        return None
    with open(path) as fh:
        return json.load(fh)


def _compatible(data: Optional[Dict[str, Any]], args) -> bool:
    if not data or "metadata" not in data:
        return False
    m = data["metadata"]
    return (m.get("seed") == args.seed and m.get("steps_per_level") == args.steps_per_level
            and m.get("negatives", "poole") == "poole" and math.isclose(m.get("lr", args.lr), args.lr))


def _entries(data: Optional[Dict[str, Any]]):
    return {} if not data else {k: v for k, v in data.items() if k != "metadata"}


def _total_wall(entries: Dict[str, Any]) -> float:
    """Sum of the per-(bound, critic) wall times (a merged file's runs may span processes)."""
    return float(sum(r.get("wall_sec", 0.0) for per in entries.values() for r in per.values()))


def _dump(path: str, data: Dict[str, Any]) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(data, fh, allow_nan=False)
    os.replace(tmp, path)


def run_pprl(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    path = os.path.join(args.out_dir, "pprl.json")
    old = _load(path)
    results = _entries(old) if _compatible(old, args) else {}
    if old is not None and not results:
        print(f"[pprl] {path}: other seed/steps per level, overwriting", flush=True)
    t_all = time.perf_counter()
    for bound in args.bounds:
        for critic in args.critics:
            r = run_one(bound, critic, args)
            results.setdefault(bound, {})[critic] = r
            lv = " ".join(
                f"{s['true_mi']:g}:{'nan' if s['mean_estimate'] is None else format(s['mean_estimate'], '.2f')}"
                for s in r["summary_last50_mean_by_level"])
            print(f"[pprl] {bound:>12s} {critic:>9s}  {1e3 * r['sec_per_step']:7.2f} ms/step  "
                  f"wall {r['wall_sec']:6.1f}s  last-50 mean [true:est] {lv}", flush=True)
            # write after every pair so that a long run can be summarised while it goes
            out = dict(results)
            out["metadata"] = _metadata(args, _total_wall(results))
            _dump(path, out)
    print(f"[pprl] wrote {path} ({time.perf_counter() - t_all:.1f}s)", flush=True)


def run_torch_mist(args) -> None:
    path = os.path.join(args.out_dir, "torch_mist.json")
    old = _load(path)
    have = _entries(old) if _compatible(old, args) else {}
    if old is not None and not have:
        print(f"[torch-mist] {path}: other seed/steps per level, re-running", flush=True)
    wanted = []
    for b in args.bounds:
        if TM_KEY[b] not in wanted:
            wanted.append(TM_KEY[b])
    if not os.path.exists(TM_VENV_PY):
        sys.exit(f"torch-mist venv not found at {TM_VENV_PY}; run: bash benchmarks/setup_torch_mist.sh")
    merged = dict(have)
    meta = old.get("metadata") if have else None
    for critic in args.critics:
        missing = [b for b in wanted if critic not in have.get(b, {})]
        if not missing:
            print(f"[torch-mist] {critic}: all of {wanted} already in {path}", flush=True)
            continue
        part = os.path.join(args.out_dir, f"torch_mist.{critic}.partial.json")
        cmd = [TM_VENV_PY, TM_RUNNER, "--seed", str(args.seed),
               "--steps-per-level", str(args.steps_per_level), "--bounds", *missing,
               "--critics", critic, "--threads", str(args.threads), "--lr", repr(args.lr),
               "--negatives", "poole", "--out", part]
        print("[torch-mist] " + " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
        new = _load(part)
        for b, per in _entries(new).items():
            merged.setdefault(b, {}).update(per)
        meta = new["metadata"]
        meta["total_wall_sec"] = _total_wall(_entries(merged))
        merged["metadata"] = meta
        _dump(path, merged)
        os.remove(part)
    print(f"[torch-mist] {path} ready", flush=True)


# ---------------------------------------------------------------------------------------------
# Summary and figure
def _arr(entry) -> np.ndarray:
    return np.asarray([np.nan if v is None else v for v in entry["estimates"]], dtype=float)


def _tail_stats(entry, steps_per_level: int, n_levels: int):
    """Per level: (true MI, mean, std, n_finite, n_tail) over the last quarter of the level."""
    est = _arr(entry)
    true = np.asarray(entry["true_mi"], dtype=float)
    tail = max(1, steps_per_level // 4)
    out = []
    for lv in range(n_levels):
        seg = est[(lv + 1) * steps_per_level - tail:(lv + 1) * steps_per_level]
        fin = seg[np.isfinite(seg)]
        out.append((float(true[lv * steps_per_level]),
                    float(fin.mean()) if fin.size else float("nan"),
                    float(fin.std()) if fin.size else float("nan"), int(fin.size), tail))
    return out


def _smooth(v: np.ndarray, w: int) -> np.ndarray:
    """Trailing rolling mean over ``w`` steps, ignoring non-finite values."""
    ok = np.isfinite(v)
    c = np.concatenate([[0.0], np.cumsum(np.where(ok, v, 0.0))])
    n = np.concatenate([[0], np.cumsum(ok)])
    idx = np.arange(1, len(v) + 1)
    lo = np.maximum(0, idx - w)
    cnt = n[idx] - n[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cnt > 0, (c[idx] - c[lo]) / cnt, np.nan)


def _fmt(m, s=None, signed=False):
    if m is None or not math.isfinite(m):
        return "nan"
    if s is None:
        return f"{m:+.2f}" if signed else f"{m:.2f}"
    return f"{m:.2f} ± {s:.2f}"


def _definition_note(b: str, c: str, meta: Dict[str, Any]) -> str:
    """How pprl's bound relates to torch-mist's counterpart, for the (a) table."""
    opts = meta.get("bound_options", {})
    on = opts.get("baseline_on", "y")
    if b in ("infonce", "nwj"):
        return "same"
    if b == "dv":
        return "differs: pprl trains plain DV, torch-mist MINE"
    if b == "mine":
        clamp = opts.get("mine_log_mean_clamp")
        same_clamp = clamp is not None and all(abs(abs(v) - MINE_CLAMP) < 1e-9 for v in clamp)
        if opts.get("mine_momentum") != 0.9:
            return "momentum differs from torch-mist's gamma 0.9"
        return ("same (momentum 0.9 = gamma 0.9, batch mean clamped to [1e-4, 1e4])" if same_clamp else
                f"differs: torch-mist clamps the batch mean of e^f to [1e-4, 1e4], pprl clamp {clamp}")
    if b in ("js", "smile"):
        return ("torch-mist's separable JS loss counts the 64 positives among the negatives"
                if c == "separable" else "same")
    if b == "tuba":
        return "same (a(x), rows)" if on == "x" else "mirror: pprl a(y) per column, torch-mist a(x) per row"
    if b == "interpolated":
        return ("differs: torch-mist's multi-sample baseline leaves the positive out (not capped)"
                + ("" if on == "x" else "; mirror orientation"))
    return ""


def summarize(out_dir: str, tie_tol: float = 0.1) -> None:
    pp = _load(os.path.join(out_dir, "pprl.json"))
    if pp is None:
        sys.exit(f"no pprl.json in {out_dir}")
    tm = _load(os.path.join(out_dir, "torch_mist.json"))
    meta = pp["metadata"]
    spl, levels = meta["steps_per_level"], meta["levels_nats"]
    if tm is not None and (tm["metadata"].get("steps_per_level") != spl
                           or tm["metadata"].get("seed") != meta["seed"]):
        print("torch_mist.json has another seed/steps per level: ignored", flush=True)
        tm = None
    tm_e = _entries(tm)
    bounds = [b for b in DEFAULT_BOUNDS if b in pp]
    critics = [c for c in CRITICS if any(c in pp[b] for b in bounds)]
    tail = max(1, spl // 4)

    L: List[str] = []
    L.append("# MI staircase: pprl vs torch-mist\n")
    L.append(f"Poole et al. (2019) Gaussian staircase: {meta['dim']}-d, batch {meta['batch_size']}, "
             f"{spl} steps per level, Adam lr {meta['lr']:g}, seed {meta['seed']}, "
             f"{meta['threads']} thread(s); pprl {meta.get('pprl_version', '?')}, torch {meta['torch_version']}"
             + (f"; torch-mist {tm['metadata'].get('torch_mist_version', '?')}" if tm else "; no torch-mist JSON")
             + ".\n")
    if tm:
        same = tm["metadata"].get("data_fingerprint") == meta.get("data_fingerprint")
        L.append(f"Data stream fingerprint: pprl `{meta.get('data_fingerprint')}`, torch-mist "
                 f"`{tm['metadata'].get('data_fingerprint')}` ({'same data' if same else 'DIFFERENT DATA'}).\n")
    L.append(f"Mean ± std of the per-step estimate over the last {tail} steps of each level "
             f"(last quarter); bias = mean − true MI. ms/step: forward + backward + Adam step, "
             "mean over all steps. torch-mist's `dv` is MINE (gamma 0.9); it is the counterpart "
             "of both pprl `dv` (plain DV training) and pprl `mine` (momentum "
             f"{meta.get('bound_options', {}).get('mine_momentum', '?')}). "
             "Δ|bias| = |pprl bias| − |torch-mist bias|; ok: Δ ≤ 0 (yes), "
             f"0 < Δ ≤ {tie_tol:g} nats (tie), else **no**. With the same seed both libraries "
             "start from identical weights on identical data, so where the bound definitions agree "
             "the two runs coincide until float round-off makes them drift apart; the sign of a "
             "small Δ is then noise.\n")

    hdr = ("| bound | critic | true MI | pprl mean ± std | pprl bias | torch-mist | tm mean ± std | "
           "tm bias | Δ\\|bias\\| | ok | pprl ms/step | tm ms/step |")
    L.append(hdr)
    L.append("|" + "|".join(["---"] * 12) + "|")
    checks_a: List[str] = []
    tot_lv = tot_pass = tot_tie = tot_t = tot_tpass = 0
    for b in bounds:
        for c in critics:
            if c not in pp[b]:
                continue
            e = pp[b][c]
            ps = _tail_stats(e, spl, len(levels))
            tk = TM_KEY[b]
            te = tm_e.get(tk, {}).get(c)
            ts = _tail_stats(te, spl, len(levels)) if te else None
            n_pass = n_tie = 0
            for lv, (mi, m, s, nf, _) in enumerate(ps):
                row = [b, c, f"{mi:g}", _fmt(m, s) + ("" if nf == tail else f" ({tail - nf} non-finite)"),
                       _fmt(m - mi, signed=True)]
                if ts:
                    _, tmm, tss, tnf, _ = ts[lv]
                    delta = abs(m - mi) - abs(tmm - mi) if math.isfinite(tmm) else -math.inf
                    ok = math.isfinite(m) and delta <= 0
                    tie = math.isfinite(m) and 0 < delta <= tie_tol
                    n_pass += ok
                    n_tie += tie
                    row += [tk, _fmt(tmm, tss) + ("" if tnf == tail else f" ({tail - tnf} non-finite)"),
                            _fmt(tmm - mi, signed=True), _fmt(delta, signed=True),
                            "yes" if ok else ("tie" if tie else "**no**")]
                else:
                    row += ["—"] * 5
                row += [f"{1e3 * e['sec_per_step']:.2f}", f"{1e3 * te['sec_per_step']:.2f}" if te else "—"]
                L.append("| " + " | ".join(row) + " |")
            if ts:
                t_ok = e["sec_per_step"] <= te["sec_per_step"]
                tot_lv += len(levels)
                tot_pass += n_pass
                tot_tie += n_tie
                tot_t += 1
                tot_tpass += t_ok
                checks_a.append(
                    f"| {b} | {c} | {tk} | {_definition_note(b, c, meta)} | {n_pass}/{len(levels)} | "
                    f"{n_pass + n_tie}/{len(levels)} | {1e3 * e['sec_per_step']:.2f} | "
                    f"{1e3 * te['sec_per_step']:.2f} | {te['sec_per_step'] / e['sec_per_step']:.2f}× | "
                    f"{'yes' if t_ok else '**no**'} |")

    L.append("\n## Issue targets\n")
    L.append("### (a) pprl vs torch-mist: |bias| per level and time per step\n")
    if checks_a:
        L.append("| bound | critic | torch-mist | definitions | levels \\|bias\\| ≤ tm | incl. ties | "
                 "pprl ms/step | tm ms/step | speed-up | pprl faster |")
        L.append("|" + "|".join(["---"] * 10) + "|")
        L += checks_a
        L.append(f"\nTotal: |bias| pprl ≤ torch-mist on **{tot_pass}/{tot_lv}** (bound, critic, level) "
                 f"cells ({tot_pass + tot_tie}/{tot_lv} counting ties within {tie_tol:g} nats)"
                 f"; pprl time per step ≤ torch-mist's for **{tot_tpass}/{tot_t}** (bound, critic) pairs. "
                 "(A level where torch-mist's estimate is non-finite counts as a pass.)\n")
    else:
        L.append("No torch-mist results to compare with.\n")

    L.append(f"### (b) InfoNCE never above log {meta['batch_size']} = {math.log(meta['batch_size']):.4f}\n")
    logk = math.log(meta["batch_size"])
    for c in critics:
        if "infonce" in pp and c in pp["infonce"]:
            v = _arr(pp["infonce"][c])
            mx = float(np.nanmax(v))
            n_above = int(np.sum(v > logk + 1e-5))
            line = (f"- {c}: pprl max over all {len(v)} steps {mx:.4f}, steps above log K (+1e-5): "
                    f"{n_above} → **{'pass' if n_above == 0 and np.isfinite(v).all() else 'FAIL'}**")
            te = tm_e.get("infonce", {}).get(c)
            if te:
                tv = _arr(te)
                line += f"; torch-mist max {np.nanmax(tv):.4f} ({int(np.sum(tv > logk + 1e-5))} above)"
            L.append(line)
    L.append("")
    L.append(f"### (c) SMILE (τ = {SMILE_TAU:g}) ≥ 7 nats at the {levels[-1]:g}-nat level "
             f"(mean of the last {tail} steps)\n")
    for c in critics:
        if "smile" in pp and c in pp["smile"]:
            _, m, s, _, _ = _tail_stats(pp["smile"][c], spl, len(levels))[-1]
            line = f"- {c}: pprl {_fmt(m, s)} → **{'pass' if m >= 7.0 else 'FAIL'}**"
            te = tm_e.get("smile", {}).get(c)
            if te:
                _, tmm, tss, _, _ = _tail_stats(te, spl, len(levels))[-1]
                line += f"; torch-mist {_fmt(tmm, tss)}"
            L.append(line)
    L.append("")
    L.append("### Wall time\n")
    for c in critics:
        pw = sum(pp[b][c]["wall_sec"] for b in bounds if c in pp[b])
        tw = sum(per[c]["wall_sec"] for per in tm_e.values() if c in per)
        L.append(f"- {c}: pprl {pw:.0f} s ({len(bounds)} bounds)"
                 + (f", torch-mist {tw:.0f} s ({sum(c in per for per in tm_e.values())} bounds)" if tm else ""))
    L.append(f"- sum of per-(bound, critic) wall times (training loop incl. data and untimed estimates): "
             f"pprl {_total_wall(_entries(pp)):.0f} s"
             + (f", torch-mist {_total_wall(tm_e):.0f} s" if tm else "") + ".")
    L.append("\n![staircase](staircase.png)\n")
    path = os.path.join(out_dir, "summary.md")
    with open(path, "w") as fh:
        fh.write("\n".join(L))
    print(f"wrote {path}", flush=True)
    _figure(pp, tm_e, bounds, critics, spl, meta, os.path.join(out_dir, "staircase.png"))


def _figure(pp, tm_e, bounds, critics, spl, meta, path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    w = min(100, max(5, spl // 10))
    nr, nc = len(critics), len(bounds)
    fig, axes = plt.subplots(nr, nc, figsize=(2.6 * nc, 2.4 * nr + 0.6), sharex=True, sharey=True,
                             squeeze=False)
    lo, hi = -2.0, max(meta["levels_nats"]) + 4.0
    for r, c in enumerate(critics):
        for k, b in enumerate(bounds):
            ax = axes[r][k]
            e = pp[b].get(c)
            if e is None:
                ax.set_axis_off()
                continue
            v = _arr(e)
            steps = np.arange(1, len(v) + 1)
            ax.plot(steps, np.clip(v, lo - 1, hi + 1), color="C0", lw=0.4, alpha=0.3)
            ax.plot(steps, _smooth(v, w), color="C0", lw=1.3, label="pprl")
            te = tm_e.get(TM_KEY[b], {}).get(c)
            if te is not None:
                ax.plot(steps, _smooth(_arr(te), w), color="C3", lw=1.1, ls="--",
                        label=f"torch-mist ({TM_KEY[b]})")
            ax.plot(steps, e["true_mi"], color="k", lw=1.0, drawstyle="steps-post", label="true MI")
            if b == "infonce":
                ax.axhline(math.log(meta["batch_size"]), color="k", ls=":", lw=1.0,
                           label=f"log {meta['batch_size']}")
            ax.set_ylim(lo, hi)
            if r == 0:
                ax.set_title(b, fontsize=10)
            if k == 0:
                ax.set_ylabel(f"{c}\nnats", fontsize=9)
            if r == nr - 1:
                ax.set_xlabel("step", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.2)
    handles = {}
    for ax in axes.flat:
        for h, l in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(l.split(" (")[0], h)
    fig.legend(list(handles.values()), list(handles.keys()), loc="lower center", ncol=len(handles),
               fontsize=8, frameon=False)
    fig.suptitle(f"MI staircase (batch {meta['batch_size']}, {spl} steps/level; thin: per step, "
                 f"thick: {w}-step rolling mean, dashed: torch-mist rolling mean; y axis cut at [{lo:g}, {hi:g}])", fontsize=10)
    fig.tight_layout(rect=(0, 0.04, 1, 0.97))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"wrote {path}", flush=True)


# ---------------------------------------------------------------------------------------------
# Across seeds: the bias comparison as a paired statistic
def _seed_runs(dirs: List[str]):
    """Load ``(pprl, torch-mist)`` JSON from each run folder; all must share steps per level and
    have distinct seeds, and torch-mist's seed must match pprl's in each folder."""
    runs, seeds = [], []
    for d in dirs:
        pp = _load(os.path.join(d, "pprl.json"))
        tm = _load(os.path.join(d, "torch_mist.json"))
        if pp is None or tm is None:
            sys.exit(f"{d}: needs both pprl.json and torch_mist.json")
        if tm["metadata"].get("seed") != pp["metadata"]["seed"]:
            sys.exit(f"{d}: pprl and torch-mist ran with different seeds")
        runs.append((pp, tm))
        seeds.append(pp["metadata"]["seed"])
    if len(set(seeds)) != len(seeds):
        sys.exit(f"--summarize-seeds: repeated seeds {seeds}")
    spl = {pp["metadata"]["steps_per_level"] for pp, tm in runs} | {
        tm["metadata"]["steps_per_level"] for pp, tm in runs}
    if len(spl) != 1:
        sys.exit(f"--summarize-seeds: runs with different steps per level {sorted(spl)}")
    return runs, seeds, spl.pop()


def paired_bias_delta(pprl_means: np.ndarray, tm_means: np.ndarray, true_mi: float):
    r"""Bias of each library over seeds and the paired difference of their magnitudes.

    With per-seed tail means m_s (pprl) and t_s (torch-mist), the biases are
    b_p = mean_s m_s − I and b_t = mean_s t_s − I, and Δ = |b_p| − |b_t|. Writing
    d_s = sgn(b_p)(m_s − I) − sgn(b_t)(t_s − I) gives mean_s d_s = Δ exactly, so the paired
    standard error of Δ is sd(d)/√n: the seed-to-seed noise the two runs share (same data and
    initial weights per seed) cancels. Returns ``(b_p, se_p, b_t, se_t, Δ, se_Δ)``.
    """
    n = len(pprl_means)
    bp, bt = pprl_means.mean() - true_mi, tm_means.mean() - true_mi
    d = np.sign(bp) * (pprl_means - true_mi) - np.sign(bt) * (tm_means - true_mi)
    se = (lambda v: float(v.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan"))
    return float(bp), se(pprl_means), float(bt), se(tm_means), float(d.mean()), se(d)


def summarize_seeds(dirs: List[str], out_dir: str, tie_tol: float = 0.1) -> None:
    """``seeds.md`` and ``bias_by_seed.png`` in ``out_dir``: for every (bound, critic) that
    all runs hold for both libraries, the bias per level over seeds and Δ|bias| with its paired
    standard error. Verdict per level: *better* (Δ ≤ 0), *no worse within noise*
    (Δ ≤ max(2 se, tie_tol)), else **worse**."""
    runs, seeds, spl = _seed_runs(dirs)
    levels = runs[0][0]["metadata"]["levels_nats"]
    tail = max(1, spl // 4)
    pairs = [(b, c) for b in DEFAULT_BOUNDS for c in CRITICS
             if all(c in pp.get(b, {}) and c in tm.get(TM_KEY[b], {}) for pp, tm in runs)]
    if not pairs:
        sys.exit("--summarize-seeds: no (bound, critic) pair is in every run for both libraries")

    def tail_means(entry):
        return [m for (_, m, _, _, _) in _tail_stats(entry, spl, len(levels))]

    L = ["# MI staircase over seeds: pprl vs torch-mist bias\n",
         f"Seeds {seeds}, {spl} steps per level; per seed the estimate is the mean over the last "
         f"{tail} steps of each level (as in `summary.md`). bias = mean over seeds − true MI "
         "(± its standard error over seeds). Δ = |pprl bias| − |torch-mist bias| with its *paired* "
         "standard error (same seed = same data and initial weights in both libraries, so their "
         "shared noise cancels; see `paired_bias_delta`). Verdict: better (Δ ≤ 0), no worse "
         f"(Δ ≤ max(2·se, {tie_tol:g} nats): within noise), else **worse**. A level where a "
         "torch-mist seed is non-finite counts as better. Runs: "
         + ", ".join(f"`{d}`" for d in dirs) + ".\n",
         "| bound | critic | true MI | pprl bias ± se | tm bias ± se | Δ\\|bias\\| ± se | verdict |",
         "|" + "|".join(["---"] * 7) + "|"]
    totals = {"better": 0, "no worse": 0, "worse": 0}
    per_pair = []
    plot = {}
    for b, c in pairs:
        pm = np.array([tail_means(pp[b][c]) for pp, _ in runs])               # [seeds, levels]
        tmm = np.array([tail_means(tm[TM_KEY[b]][c]) for _, tm in runs])
        counts = {"better": 0, "no worse": 0, "worse": 0}
        rows = []
        for lv, mi in enumerate(levels):
            if not np.isfinite(tmm[:, lv]).all():
                verdict, txt = "better", ("nan", "non-finite", "—")
            elif not np.isfinite(pm[:, lv]).all():
                verdict, txt = "worse", ("non-finite", "nan", "—")
            else:
                bp, sp, bt, st, dl, sd = paired_bias_delta(pm[:, lv], tmm[:, lv], mi)
                verdict = ("better" if dl <= 0 else
                           "no worse" if dl <= max(2 * sd if math.isfinite(sd) else 0.0, tie_tol)
                           else "worse")
                txt = (f"{bp:+.2f} ± {sp:.2f}", f"{bt:+.2f} ± {st:.2f}", f"{dl:+.2f} ± {sd:.2f}")
                plot.setdefault((b, c), []).append((mi, bp, sp, bt, st))
            counts[verdict] += 1
            rows.append(f"| {b} | {c} | {mi:g} | {txt[0]} | {txt[1]} | {txt[2]} | "
                        + ("**worse**" if verdict == "worse" else verdict) + " |")
        L += rows
        for k in totals:
            totals[k] += counts[k]
        per_pair.append(f"| {b} | {c} | {TM_KEY[b]} | {_definition_note(b, c, runs[0][0]['metadata'])} | "
                        f"{counts['better']} | {counts['no worse']} | {counts['worse']} |")
    n = sum(totals.values())
    L += ["\n## Per (bound, critic)\n",
          "| bound | critic | torch-mist | definitions | better | no worse | worse |",
          "|" + "|".join(["---"] * 7) + "|", *per_pair,
          f"\nTotal over {n} (bound, critic, level) cells: better {totals['better']}, no worse within "
          f"noise {totals['no worse']}, **worse {totals['worse']}**.\n",
          "![bias by seed](bias_by_seed.png)\n"]
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "seeds.md")
    with open(path, "w") as fh:
        fh.write("\n".join(L))
    print(f"wrote {path}", flush=True)
    _bias_figure(plot, seeds, os.path.join(out_dir, "bias_by_seed.png"))


def _bias_figure(plot, seeds, path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bounds = list(dict.fromkeys(b for b, _ in plot))
    critics = list(dict.fromkeys(c for _, c in plot))
    fig, axes = plt.subplots(len(critics), len(bounds), figsize=(2.4 * len(bounds), 2.5 * len(critics) + 0.5),
                             sharex=True, sharey=True, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for (b, c) in plot:
        ax = axes[critics.index(c)][bounds.index(b)]
        ax.set_axis_on()
        mi, bp, sp, bt, st = (np.array(v) for v in zip(*plot[(b, c)]))
        ax.errorbar(mi - 0.15, bp, yerr=sp, fmt="o-", color="C0", ms=3, lw=1, capsize=2, label="pprl")
        ax.errorbar(mi + 0.15, bt, yerr=st, fmt="s--", color="C3", ms=3, lw=1, capsize=2,
                    label="torch-mist")
        ax.axhline(0, color="k", lw=0.8)
        ax.set_ylim(-16, 12)
        ax.set_title(f"{b} ({c})", fontsize=9)
        ax.set_xlabel("true MI (nats)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.2)
    for r in range(len(critics)):
        axes[r][0].set_ylabel("bias (nats)\nmean ± se over seeds", fontsize=8)
    axes[0][0].legend(fontsize=7, frameon=False)
    fig.suptitle(f"MI staircase: bias over seeds {seeds} (y axis cut at [-16, 12]; numbers in seeds.md)",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"wrote {path}", flush=True)


# ---------------------------------------------------------------------------------------------
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps-per-level", type=int, default=staircase_data.STEPS_PER_LEVEL)
    p.add_argument("--quick", action="store_true", help="200 steps per level")
    p.add_argument("--bounds", nargs="+", default=DEFAULT_BOUNDS, choices=DEFAULT_BOUNDS)
    p.add_argument("--critics", nargs="+", default=CRITICS, choices=CRITICS)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--mine-momentum", type=float, default=MINE_MOMENTUM)
    p.add_argument("--mine-clamp", type=float, default=MINE_CLAMP,
                   help="clamp log Ê_q[e^f] to [-C, C] in MINE's running mean (default log 1e4, as "
                   "torch-mist); 0 turns it off (Belghazi et al.'s rule, pprl's default)")
    p.add_argument("--baseline-on", choices=["y", "x"], default="y",
                   help="what the tuba/interpolated log-baseline reads: y (pprl/Poole: per column) "
                   "or x (torch-mist's orientation, bounds on scores.mT)")
    p.add_argument("--out-dir", default=None,
                   help="default bench_out/mi_staircase (bench_out/mi_staircase/quick with --quick)")
    p.add_argument("--torch-mist", action="store_true",
                   help="also run benchmarks/torch_mist_staircase.py in its venv (missing pairs only)")
    p.add_argument("--skip-pprl", action="store_true",
                   help="do not run pprl (e.g. to run torch-mist in a second process beside a pprl run)")
    p.add_argument("--tie-tol", type=float, default=0.1,
                   help="summary: |bias| differences up to this many nats count as ties")
    p.add_argument("--summarize-seeds", nargs="+", metavar="RUN_DIR", default=None,
                   help="compare the two libraries' bias over seeds: one --out-dir per seed, each "
                   "holding pprl.json and torch_mist.json; writes seeds.md and bias_by_seed.png "
                   "to --out-dir (default bench_out/mi_staircase/seeds)")
    p.add_argument("--summarize-only", action="store_true",
                   help="only rebuild summary.md and staircase.png from the JSON in --out-dir")
    args = p.parse_args(argv)
    if args.quick:
        args.steps_per_level = 200
    if args.out_dir is None:
        args.out_dir = os.path.join("bench_out", "mi_staircase",
                                    "seeds" if args.summarize_seeds else "quick" if args.quick else "")
    args.out_dir = os.path.normpath(args.out_dir)
    args.bounds = list(dict.fromkeys(args.bounds))
    args.critics = list(dict.fromkeys(args.critics))
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    os.makedirs(args.out_dir, exist_ok=True)
    if args.summarize_seeds:
        summarize_seeds(args.summarize_seeds, args.out_dir, args.tie_tol)
        return
    if not args.summarize_only:
        if not args.skip_pprl:
            run_pprl(args)
        if args.torch_mist:
            run_torch_mist(args)
    summarize(args.out_dir, args.tie_tol)


if __name__ == "__main__":
    main()
