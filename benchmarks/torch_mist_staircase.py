"""torch-mist 0.2.17 as a peer on the Gaussian "staircase" MI benchmark of Poole et al. (2019).

Runs in torch-mist's own virtual environment (it needs numpy < 2):

    bash benchmarks/setup_torch_mist.sh              # prints the venv python
    benchmarks/.venv-torch-mist/bin/python benchmarks/torch_mist_staircase.py --quick
    benchmarks/.venv-torch-mist/bin/python benchmarks/torch_mist_staircase.py --out results.json

Data: :mod:`staircase_data` (next to this file), the same deterministic stream any other
consumer sees: 20-d correlated Gaussians, true MI 2, 4, 6, 8, 10 nats, ``--steps-per-level``
steps each, one fresh batch of 64 per step. Every (bound, critic) pair restarts the stream
from ``--seed`` and seeds torch with it before building its networks.

Estimators are built with torch-mist's own factories (``torch_mist.estimators.<name>``) and
critic construction (``critic_type``, ``hidden_dims``, ``k_dim``), with Poole et al.'s sizes:

* separable: ``critic_type="separable", hidden_dims=[256, 256], k_dim=32`` gives two pyro
  ``DenseNN`` 20 -> 256 -> 256 -> 32 (ReLU), one for x and one for y; score = dot product.
* concat: ``critic_type="joint", hidden_dims=[256, 256]`` gives one ``DenseNN``
  40 -> 256 -> 256 -> 1 on ``cat([x, y])``.

Bounds (our name -> torch-mist):

* ``infonce`` -> ``infonce`` (InfoNCE)
* ``nwj`` -> ``nwj`` (NWJ)
* ``dv`` (alias ``mine``) -> ``mine`` (MINE: trained with its EMA-corrected DV gradient,
  ``gamma=0.9``; reports the DV bound). torch-mist has no plain-DV estimator.
* ``js`` -> ``js`` (JS): trained on the Jensen-Shannon f-GAN objective; what it reports is
  ``mutual_information`` = NWJ evaluated at the critic f + 1: ``E_p[f] - E_neg[exp f] + 1``
  (its baseline is the constant 0), which is Poole et al.'s JS-trained estimate.
* ``smile`` -> ``smile`` (SMILE, ``tau=5``): trained on the JS objective, reports the DV bound
  with the negatives' scores clipped to [-tau, tau].
  Caveat (torch-mist 0.2.17, separable critic with ``neg_samples <= 0``): the JS training loss
  of ``js`` and ``smile`` averages softplus(f) over all 64 x 64 pairs, positives included,
  because its fast separable path skips the off-diagonal selection that the reported estimate
  does apply. The concat critic gets the 63 off-diagonal pairs as intended.
* ``tuba`` -> ``TUBA`` with a learned baseline ``a(x)`` (``baseline_nn``, hidden 256-256). The
  ``tuba`` factory of 0.2.17 fails when given critic keyword arguments (it iterates
  ``kwargs`` instead of ``kwargs.items()``), which the separable critic needs (``k_dim``),
  so the estimator is assembled from the same torch-mist parts the factory uses
  (``baseline_nn``, ``critic_nn``, ``TUBA``), in the same order.
* ``interpolated`` (alias ``alpha-tuba``) -> ``alpha_tuba`` (AlphaTUBA, ``alpha=0.01`` as in
  Poole et al.'s figure, learned baseline ``a(x)``, hidden 256-256).
* ``flo`` -> ``flo`` (FLO): available, not in the default set.

Negatives (``--negatives``): ``poole`` (default) uses every pair of the batch as Poole et al.
do: the whole batch including the positive for InfoNCE (``neg_samples=0``) and all 63
off-diagonal pairs for the others (``neg_samples=-1``). ``torch-mist`` keeps each factory's
default ``neg_samples`` instead (1 for nwj, mine, js, smile, tuba; 0 for infonce, alpha_tuba;
-1 for flo).

Per step: ``loss = est.loss(x, y); opt.zero_grad(); loss.backward(); opt.step()`` with Adam
(lr 5e-4), i.e. torch-mist's own training step (``torch_mist.utils.train.model``). Only that is
timed (``sec_per_step``); drawing the batch and converting it to tensors is not. The recorded
estimate is torch-mist's ``estimator.mutual_information(x, y)`` on the training batch before the
update. For estimators whose loss is ``-log_ratio`` (InfoNCE, NWJ, TUBA, AlphaTUBA) that is
exactly ``-loss`` and is read off the loss; for the others (MINE, JS, SMILE, FLO) it is
evaluated under ``no_grad`` between ``backward`` and ``step``, outside the timed region.

Output JSON: ``{bound: {critic: {...}}, "metadata": {...}}``; see ``run`` for the fields.
Non-finite estimates are written as ``null``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from typing import Any, Dict

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import staircase_data  # noqa: E402

try:
    import torch_mist
    from torch_mist.baseline.factories import baseline_nn
    from torch_mist.critic.factories import critic_nn
    from torch_mist.estimators import (
        TUBA,
        alpha_tuba,
        flo,
        infonce,
        js,
        mine,
        nwj,
        smile,
    )
    from torch_mist.estimators.discriminative.base import DiscriminativeMIEstimator
except ImportError as exc:  # pragma: no cover - environment guard
    sys.exit(
        f"torch-mist is not importable ({exc}). Run this with the python printed by "
        "benchmarks/setup_torch_mist.sh"
    )

DEFAULT_BOUNDS = ["infonce", "nwj", "dv", "js", "smile", "tuba", "interpolated"]
ALIASES = {"mine": "dv", "alpha-tuba": "interpolated", "alpha_tuba": "interpolated"}
ALL_BOUNDS = DEFAULT_BOUNDS + ["flo"]
CRITICS = {"separable": "separable", "concat": "joint"}  # ours -> torch-mist critic_type

HIDDEN_DIMS = [256, 256]
EMBED_DIM = 32
SMILE_TAU = 5.0
ALPHA = 0.01
MINE_GAMMA = 0.9

# torch-mist factory defaults, for --negatives torch-mist
TORCH_MIST_DEFAULT_NEG = {
    "infonce": 0, "nwj": 1, "dv": 1, "js": 1, "smile": 1, "tuba": 1,
    "interpolated": 0, "flo": -1,
}

ESTIMATE_NOTES = {
    "infonce": "InfoNCE bound (= -loss)",
    "nwj": "NWJ bound (= -loss)",
    "dv": "DV bound, log-mean-exp over all negative scores (MINE trains with the "
    "EMA-corrected gradient; loss != -estimate)",
    "js": "NWJ bound at critic f+1: E_p[f] - E_neg[exp f] + 1 (trained on JS f-GAN loss)",
    "smile": f"DV bound with negative scores clipped to [-{SMILE_TAU:g}, {SMILE_TAU:g}] "
    "(trained on JS f-GAN loss)",
    "tuba": "TUBA bound with learned baseline a(x) (= -loss)",
    "interpolated": f"alpha-TUBA bound, alpha={ALPHA:g}, learned baseline a(x) (= -loss)",
    "flo": "FLO: mean of the normalized critic u(x, y) (trained on the FLO loss)",
}


def _neg_samples(bound: str, negatives: str) -> int:
    if negatives == "torch-mist":
        return TORCH_MIST_DEFAULT_NEG[bound]
    return 0 if bound == "infonce" else -1


def build_estimator(bound: str, critic: str, negatives: str):
    """Return (estimator, torch_mist_name) built with torch-mist's own constructors."""
    critic_type = CRITICS[critic]
    neg = _neg_samples(bound, negatives)
    common: Dict[str, Any] = dict(
        x_dim=staircase_data.DIM, y_dim=staircase_data.DIM,
        hidden_dims=list(HIDDEN_DIMS), critic_type=critic_type, neg_samples=neg,
    )
    if critic == "separable":
        common["k_dim"] = EMBED_DIM  # projection_head defaults to "asymmetric": f_x and f_y
    tag = f"critic_type={critic_type!r}, neg_samples={neg}"
    if bound == "infonce":
        return infonce(**common), f"torch_mist.estimators.infonce -> InfoNCE({tag})"
    if bound == "nwj":
        return nwj(**common), f"torch_mist.estimators.nwj -> NWJ({tag})"
    if bound == "dv":
        return (mine(gamma=MINE_GAMMA, **common),
                f"torch_mist.estimators.mine -> MINE({tag}, gamma={MINE_GAMMA})")
    if bound == "js":
        return js(**common), f"torch_mist.estimators.js -> JS({tag})"
    if bound == "smile":
        return (smile(tau=SMILE_TAU, **common),
                f"torch_mist.estimators.smile -> SMILE({tag}, tau={SMILE_TAU:g})")
    if bound == "tuba":
        # Same parts and order as torch_mist.estimators.tuba (which breaks on **kwargs).
        critic_kwargs = {k: v for k, v in common.items() if k not in ("neg_samples",)}
        b_nn = baseline_nn(x_dim=staircase_data.DIM, hidden_dims=list(HIDDEN_DIMS))
        est = TUBA(critic=critic_nn(**critic_kwargs), baseline=b_nn, neg_samples=neg)
        return est, (f"torch_mist.estimators.TUBA(critic_nn, baseline_nn) ({tag}; "
                     "the tuba() factory fails on critic kwargs)")
    if bound == "interpolated":
        return (alpha_tuba(alpha=ALPHA, learnable_baseline=True, **common),
                f"torch_mist.estimators.alpha_tuba -> AlphaTUBA({tag}, alpha={ALPHA:g})")
    if bound == "flo":
        return flo(**common), f"torch_mist.estimators.flo -> FLO({tag})"
    raise ValueError(f"unknown bound {bound!r}")


def _estimate_is_neg_loss(est) -> bool:
    """True when torch-mist's mutual_information(x, y) == -loss(x, y) by construction."""
    cls = type(est)
    return (
        isinstance(est, DiscriminativeMIEstimator)
        and cls.batch_loss is DiscriminativeMIEstimator.batch_loss
        and cls.log_ratio is DiscriminativeMIEstimator.log_ratio
    )


def run_one(bound: str, critic: str, args) -> Dict[str, Any]:
    torch.manual_seed(args.seed)
    est, name = build_estimator(bound, critic, args.negatives)
    est.train()
    opt = torch.optim.Adam(est.parameters(), lr=args.lr)
    neg_loss = _estimate_is_neg_loss(est)

    checked = False

    def train_step(x_np, y_np):
        nonlocal checked
        x, y = torch.from_numpy(x_np), torch.from_numpy(y_np)
        t0 = time.perf_counter()
        loss = est.loss(x, y)
        opt.zero_grad()
        loss.backward()
        t1 = time.perf_counter()
        if neg_loss:
            value = -loss.item()
            if not checked:  # confirm the identity once, untimed
                with torch.no_grad():
                    direct = est.mutual_information(x, y).item()
                if not math.isclose(direct, value, rel_tol=1e-4, abs_tol=1e-4):
                    raise AssertionError(f"{bound}: -loss {value} != estimate {direct}")
                checked = True
        else:
            with torch.no_grad():
                value = est.mutual_information(x, y).item()
        t2 = time.perf_counter()
        opt.step()
        t3 = time.perf_counter()
        return value, (t1 - t0) + (t3 - t2)

    record = staircase_data.run_staircase(train_step, args.seed, args.steps_per_level)
    n_params = sum(p.numel() for p in est.parameters() if p.requires_grad)
    return {
        **record,
        "torch_mist_name": name,
        "estimate_reported": ESTIMATE_NOTES[bound],
        "estimate_source": "-loss" if neg_loss else "estimator.mutual_information(x, y)",
        "neg_samples": _neg_samples(bound, args.negatives),
        "n_params": int(n_params),
    }


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps-per-level", type=int, default=staircase_data.STEPS_PER_LEVEL)
    p.add_argument("--quick", action="store_true", help="200 steps per level")
    p.add_argument("--bounds", nargs="+", default=DEFAULT_BOUNDS,
                   help=f"any of {ALL_BOUNDS} (aliases: {ALIASES})")
    p.add_argument("--critics", nargs="+", default=["separable", "concat"],
                   choices=sorted(CRITICS))
    p.add_argument("--negatives", choices=["poole", "torch-mist"], default="poole")
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="results.json")
    args = p.parse_args(argv)
    if args.quick:
        args.steps_per_level = 200
    bounds = []
    for b in args.bounds:
        b = ALIASES.get(b.lower(), b.lower())
        if b not in ALL_BOUNDS:
            p.error(f"unknown bound {b!r}; choose from {ALL_BOUNDS}")
        if b not in bounds:
            bounds.append(b)
    args.bounds = bounds
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    results: Dict[str, Any] = {}
    t_all = time.perf_counter()
    for bound in args.bounds:
        results[bound] = {}
        for critic in args.critics:
            r = run_one(bound, critic, args)
            results[bound][critic] = r
            lv = " ".join(
                f"{s['true_mi']:g}:{'nan' if s['mean_estimate'] is None else format(s['mean_estimate'], '.2f')}"
                for s in r["summary_last50_mean_by_level"]
            )
            print(f"{bound:>12s} {critic:>9s}  {1e3 * r['sec_per_step']:7.2f} ms/step  "
                  f"wall {r['wall_sec']:6.1f}s  last-50 mean [true:est] {lv}", flush=True)
    results["metadata"] = staircase_data.run_metadata(
        args,
        benchmark="Poole et al. 2019 Gaussian staircase (20-d), torch-mist peer",
        torch_mist_version=torch_mist.__version__,
        torch_version=torch.__version__,
        negatives=args.negatives,
        critic_sizes={"hidden_dims": HIDDEN_DIMS, "separable_embed_dim": EMBED_DIM},
        timing="sec_per_step = mean over steps of loss forward + zero_grad + backward + "
        "Adam step (data generation and untimed estimate evaluation excluded)",
        total_wall_sec=time.perf_counter() - t_all,
    )
    with open(args.out, "w") as f:
        json.dump(results, f, allow_nan=False)
    print(f"wrote {args.out} ({time.perf_counter() - t_all:.1f}s total)")


if __name__ == "__main__":
    main()
