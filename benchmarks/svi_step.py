"""Milliseconds per SVI step of the default BNN dynamics model, pprl vs a hand-written baseline.

One "step" is forward + backward + optimizer step on a minibatch of M = 256 out of N = 5000
synthetic Pendulum-like transitions (obs_dim = 3, act_dim = 1) for the model of
``models/bnn_dynamics.yaml`` (2×64 relu, D = 4675 weights). Variants:

- ``hand-written``: a plain-torch mean-field BNN with the local reparameterisation, closed-form
  Gaussian KL to N(0, 1/fan_in) (weights) / N(0, 1) (biases), a fixed-noise Gaussian likelihood
  and ``torch.optim.Adam``: the reference (what a researcher would write by hand; the same
  objective as pprl's ``analytic_kl_loss`` with ``local_reparam``, except that pprl also learns
  the 3 noise scales). ``+ clip_grad_norm_`` adds the gradient clipping pprl's loop does, and
  ``fused Adam`` uses ``Adam(fused=True)`` instead of torch's default (per-tensor) Adam.
- ``pprl <family>``: exactly what :func:`pprl.fit` runs per step for each family spec in
  ``inference/<family>.yaml``: ``optimizer.zero_grad(); objective(x, y, N);
  clip_grad_norm_(...); optimizer.step()`` with the objective from
  ``pprl.inference.svi._objective`` and the optimizer from ``pprl.inference.svi._optimizer``.
  ``pprl mean_field (fit loop)`` adds the rest of the body of ``fit``'s loop (minibatch
  indexing, the finiteness check, the LR scheduler, storing the loss); ``pprl mean_field,
  fused Adam`` puts pprl's parameter groups under ``Adam(fused=True)`` (a suggested change).
- ``pyro AutoNormal + Trace_ELBO`` / ``+ TraceMeanField_ELBO``: Pyro's plain path, ``SVI.step``
  with ``pyro.optim.Adam`` over the same pprl model.

Measurements are interleaved: after a warm-up, every round runs every variant for ``--steps``
steps (in a freshly shuffled order) and records its mean time per step; the reported value is
the median over rounds of these means, so machine noise hits all variants alike. Ratios are to
the hand-written step of the same run. torch runs single-threaded by default (``--threads``):
the tensors are too small to gain from intra-op threads, and on a 2-core machine shared with
another busy process two spinning OpenMP threads can slow a step down by 40×.

    python benchmarks/svi_step.py                  # default: ~1.5 min on 2 CPU cores
    python benchmarks/svi_step.py --quick          # a ~15 s smoke run
    python benchmarks/svi_step.py --device cuda --json results.json
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import random
import statistics
import sys
import time
from pathlib import Path

import pyro
import torch
import torch.nn.functional as F
from pyro.infer import SVI, Trace_ELBO, TraceMeanField_ELBO
from pyro.infer.autoguide import AutoNormal
from pyro.infer.autoguide.initialization import init_to_sample

import pprl
from pprl.data import Transitions
from pprl.inference.families import make_family
from pprl.inference.svi import DivergenceGuard, _objective, _optimizer, default_check_every
from pprl.spec import as_inference_spec

ROOT = Path(__file__).resolve().parent.parent
MODEL_SPEC = ROOT / "models" / "bnn_dynamics.yaml"
OBS_DIM, ACT_DIM = 3, 1  # Pendulum-v1
FAMILIES = ("mean_field", "low_rank", "flow", "map", "laplace", "full_rank")
REFERENCE = "hand-written (torch, local reparam)"
LOG_2PI = math.log(2 * math.pi)


# --------------------------------------------------------------------------- data

def synthetic_pendulum(n: int, seed: int = 0) -> Transitions:
    """``n`` random-action transitions of the Pendulum-v1 dynamics, made locally with torch."""
    g = torch.Generator().manual_seed(seed)
    th = (torch.rand(n, generator=g) * 2 - 1) * math.pi
    thdot = (torch.rand(n, generator=g) * 2 - 1) * 8.0
    u = (torch.rand(n, 1, generator=g) * 2 - 1) * 2.0
    dt, grav, m, length = 0.05, 10.0, 1.0, 1.0
    new_thdot = (thdot + (3 * grav / (2 * length) * torch.sin(th) + 3.0 / (m * length ** 2) * u[:, 0]) * dt)
    new_thdot = new_thdot.clamp(-8.0, 8.0)
    new_th = th + new_thdot * dt
    obs = torch.stack([torch.cos(th), torch.sin(th), thdot], -1)
    next_obs = torch.stack([torch.cos(new_th), torch.sin(new_th), new_thdot], -1)
    zeros = torch.zeros(n)
    return Transitions(obs=obs, act=u, next_obs=next_obs, reward=zeros,
                       terminated=zeros.bool(), truncated=zeros.bool(), meta={"env_id": "synthetic-pendulum"})


# --------------------------------------------------------------------------- the hand-written reference

class MeanFieldLinear(torch.nn.Module):
    """A mean-field Gaussian linear layer: weight/bias means and softplus-parameterised stds,
    initialised like pprl's mean_field guide (means drawn from the prior, stds = ``init_std``)."""

    def __init__(self, fan_in: int, fan_out: int, init_std: float, bias_prior_std: float = 1.0):
        super().__init__()
        self.prior_w, self.prior_b = 1.0 / math.sqrt(fan_in), bias_prior_std
        rho = math.log(math.expm1(init_std))
        self.w_mu = torch.nn.Parameter(torch.randn(fan_in, fan_out) * self.prior_w)
        self.w_rho = torch.nn.Parameter(torch.full((fan_in, fan_out), rho))
        self.b_mu = torch.nn.Parameter(torch.randn(fan_out) * self.prior_b)
        self.b_rho = torch.nn.Parameter(torch.full((fan_out,), rho))

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Local reparameterisation: a sample of the pre-activation
        z ~ N(h μ_W + μ_b, h² σ_W² + σ_b²), and KL(q ‖ N(0, σ_p²)) of this layer in closed form."""
        w_std, b_std = F.softplus(self.w_rho), F.softplus(self.b_rho)
        w_var, b_var = w_std * w_std, b_std * b_std
        mean = torch.addmm(self.b_mu, h, self.w_mu)
        var = torch.addmm(b_var, h * h, w_var)
        z = mean + var.sqrt() * torch.randn_like(mean)
        kl = (0.5 * (w_var + self.w_mu * self.w_mu) / self.prior_w ** 2 - w_std.log()).sum() \
            + (0.5 * (b_var + self.b_mu * self.b_mu) / self.prior_b ** 2 - b_std.log()).sum() \
            + self.w_mu.numel() * (math.log(self.prior_w) - 0.5) + self.b_mu.numel() * (math.log(self.prior_b) - 0.5)
        return z, kl


class HandWrittenBNN(torch.nn.Module):
    """−ELBO = Σ_layers KL − (N/M) Σ_n log N(y_n | f(x_n), σ²) with fixed noise σ."""

    def __init__(self, sizes: list[int], init_std: float, noise: float):
        super().__init__()
        self.layers = torch.nn.ModuleList(MeanFieldLinear(a, b, init_std) for a, b in zip(sizes[:-1], sizes[1:]))
        self.noise, self.log_noise = noise, math.log(noise)

    def loss(self, x: torch.Tensor, y: torch.Tensor, num_data: int) -> torch.Tensor:
        h, kl = x, 0.0
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            h, layer_kl = layer(h)
            kl = kl + layer_kl
            if i < last:
                h = F.relu(h)
        r = (y - h) / self.noise
        log_lik = -0.5 * (r * r).sum() - y.numel() * (self.log_noise + 0.5 * LOG_2PI)
        return kl - num_data / x.shape[0] * log_lik


# --------------------------------------------------------------------------- variants

class Variant:
    """A named step function with its own state; ``steps_scale`` < 1 for the expensive ones."""

    def __init__(self, name: str, step, steps_scale: float = 1.0, needs_param_store: bool = False):
        self.name, self.step, self.steps_scale = name, step, steps_scale
        self.needs_param_store = needs_param_store
        self.round_ms: list[float] = []


def fast_adam(param_groups, lr: float):
    """``torch.optim.Adam`` with ``fused=True`` (one kernel for all parameters; CPU support since
    torch 2.4), else ``foreach=True``; returns (optimizer, flag name)."""
    try:
        return torch.optim.Adam(param_groups, lr=lr, fused=True), "fused"
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(param_groups, lr=lr, foreach=True), "foreach"


def hand_written_variant(x, y, model_spec, spec, device, *, clip: bool = False, fused: bool = False) -> Variant:
    sizes = [OBS_DIM + ACT_DIM, *model_spec.hidden_sizes, OBS_DIM]
    net = HandWrittenBNN(sizes, spec.init_scale, model_spec.likelihood.noise_scale).to(device)
    params = list(net.parameters())
    if fused:
        opt, flag = fast_adam(params, spec.lr)
    else:
        opt, flag = torch.optim.Adam(params, lr=spec.lr), ""
    num_data = x.shape[0]

    def step(xb, yb):
        opt.zero_grad(set_to_none=True)
        net.loss(xb, yb, num_data).backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(params, spec.grad_clip)
        opt.step()

    name = REFERENCE if not (clip or fused) else \
        "hand-written + clip_grad_norm_" if clip else f"hand-written, {flag} Adam"
    return Variant(name, step)


def build_pprl_model(data, device):
    model = pprl.build_model(MODEL_SPEC, OBS_DIM, ACT_DIM).to(device)
    model.fit_normalizer(data)
    return model


def pprl_variant(family: str, data, x, y, device, *, fit_loop: bool = False, fused: bool = False,
                 steps_scale: float = 1.0, batch_size: int | None = None, host_check: bool = False,
                 compile: bool = False) -> Variant:
    """What ``pprl.fit`` does per step (``fit_loop`` adds the rest of its loop body; ``fused``
    swaps pprl's optimizer for the same parameter groups under a fused Adam, to show what
    that change to ``pprl.inference.svi._optimizer`` would buy). The loop body checks finiteness
    with the on-device :class:`DivergenceGuard`, read every ``default_check_every(device)`` steps,
    or with ``host_check`` the way ``fit`` did before it: a host read of the loss every step.
    ``compile``: the spec's ``compile: true`` (torch.compile of the loss and its backward; CUDA
    graphs on a GPU), its compilation done in the warm-up steps."""
    spec = as_inference_spec(ROOT / "inference" / f"{family}.yaml")
    if compile:
        spec = spec.replace(compile=True)
    model = build_pprl_model(data, device)
    q = make_family(spec)
    guide = q.make_guide(model)
    guide(*model.dummy_batch())
    objective = _objective(model, q, spec, device)
    optimizer = _optimizer(q, model, spec, model.param_dim)
    flag = ""
    if fused:
        groups = [{k: v for k, v in g.items() if k in ("params", "lr")} for g in optimizer.param_groups]
        optimizer, flag = fast_adam(groups, spec.lr)
    params = list(guide.parameters()) + list(model.parameters())
    clip = spec.grad_clip or float("inf")
    num_data = x.shape[0]

    if not fit_loop:
        def step(xb, yb):
            optimizer.zero_grad(set_to_none=True)
            objective(xb, yb, num_data)
            torch.nn.utils.clip_grad_norm_(params, clip)
            optimizer.step()
        name = f"pprl {family}" + (f", {flag} Adam" if flag else "")
    else:
        scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, spec.lr_decay ** (1.0 / spec.steps))
        losses = torch.zeros(spec.steps, device=device)
        M = min(batch_size or spec.batch_size, num_data)
        state = {"order": torch.randperm(num_data, device=device), "cursor": 0, "step": 0}
        check_every = default_check_every(device)
        guard = DivergenceGuard(optimizer, spec.steps, device, check_every=check_every)

        def step(_xb, _yb):  # indexes its own minibatch, as fit does
            if state["cursor"] + M > num_data:
                state["order"], state["cursor"] = torch.randperm(num_data, device=device), 0
            idx = state["order"][state["cursor"]:state["cursor"] + M]
            state["cursor"] += M
            optimizer.zero_grad(set_to_none=True)
            loss = objective(x[idx], y[idx], num_data)
            grad_norm = torch.nn.utils.clip_grad_norm_(params, clip)
            if host_check:
                if not (torch.isfinite(loss) and torch.isfinite(grad_norm)):
                    raise FloatingPointError("non-finite loss")
            else:
                guard.record(state["step"] % spec.steps, torch.isfinite(loss) & torch.isfinite(grad_norm))
            optimizer.step()
            scheduler.step()
            losses[state["step"] % spec.steps] = loss
            state["step"] += 1
            if not host_check and state["step"] % check_every == 0 and guard.first_bad() is not None:
                raise FloatingPointError("non-finite loss")
        name = f"pprl {family} (fit loop" + (", host check every step)" if host_check else
                                             ", compiled)" if compile else ")")
    uses_trace = spec.elbo != "analytic_kl"
    return Variant(name, step, steps_scale, needs_param_store=uses_trace)


def pyro_variant(elbo_cls, data, x, y, device) -> Variant:
    """Pyro's plain path: ``SVI`` with ``AutoNormal`` (same init as pprl's mean_field) and ``pyro.optim.Adam``."""
    spec = as_inference_spec(ROOT / "inference" / "mean_field.yaml")
    model = build_pprl_model(data, device)
    guide = AutoNormal(model, init_loc_fn=init_to_sample, init_scale=spec.init_scale)
    guide(*model.dummy_batch())
    svi = SVI(model, guide, pyro.optim.Adam({"lr": spec.lr}), elbo_cls(max_plate_nesting=1))
    num_data = x.shape[0]

    def step(xb, yb):
        svi.step(xb, yb, num_data)
    return Variant(f"pyro AutoNormal + {elbo_cls.__name__}", step, needs_param_store=True)


# --------------------------------------------------------------------------- timing

def sync(device: torch.device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_steps(variant: Variant, batches, n: int, start: int, device) -> float:
    """Run ``n`` steps; returns ms per step."""
    if variant.needs_param_store:
        # Every pprl model registers its noise under the same name ("noise_scale") in Pyro's global
        # param store when traced; start each block from an empty store so that each variant
        # (re-)registers and trains its own tensors.
        pyro.clear_param_store()
    sync(device)
    t0 = time.perf_counter()
    for i in range(start, start + n):
        xb, yb = batches[i % len(batches)]
        variant.step(xb, yb)
    sync(device)
    return (time.perf_counter() - t0) * 1e3 / n


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=50, help="timed steps per variant per round (default 50)")
    ap.add_argument("--rounds", type=int, default=30,
                    help="interleaved rounds (default 30: many short rounds spread bursts of load from "
                         "other processes over all variants)")
    ap.add_argument("--warmup", type=int, default=30, help="untimed steps per variant first (default 30)")
    ap.add_argument("--full-rank-steps", type=int, default=1,
                    help="timed steps per round for full_rank (~0.6 s/step on CPU; default 1)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=1,
                    help="torch.set_num_threads (default 1: these ops are too small to gain from intra-op "
                         "threads, and on a loaded 2-core machine 2 spinning OpenMP threads slow a step "
                         "down ~40x; 0 keeps torch's default)")
    ap.add_argument("--num-data", type=int, default=5000)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip", nargs="*", default=[], help="variant name substrings to skip (e.g. full_rank)")
    ap.add_argument("--quick", action="store_true", help="a short smoke run (steps 20, rounds 5, warm-up 5, full_rank 1)")
    ap.add_argument("--json", type=Path, default=None, help="also write the results to this JSON file")
    args = ap.parse_args(argv)
    if args.quick:
        args.steps, args.rounds, args.warmup, args.full_rank_steps = 20, 5, 5, 1
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda requested but CUDA is not available")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    torch.manual_seed(args.seed)
    data = synthetic_pendulum(args.num_data, args.seed).to(device)
    probe = build_pprl_model(data, device)
    x, y = probe.inputs(data.obs, data.act), probe.targets(data.obs, data.next_obs)
    N, M = x.shape[0], args.batch_size
    g = torch.Generator().manual_seed(args.seed + 1)
    batches = [(x[i], y[i]) for i in (torch.randperm(N, generator=g)[:M].to(device) for _ in range(32))]

    model_spec = probe.spec
    mf_spec = as_inference_spec(ROOT / "inference" / "mean_field.yaml")
    builders = [
        lambda: hand_written_variant(x, y, model_spec, mf_spec, device),
        lambda: hand_written_variant(x, y, model_spec, mf_spec, device, clip=True),
        lambda: hand_written_variant(x, y, model_spec, mf_spec, device, fused=True),
        lambda: pprl_variant("mean_field", data, x, y, device),
        lambda: pprl_variant("mean_field", data, x, y, device, fit_loop=True, batch_size=M),
        lambda: pprl_variant("mean_field", data, x, y, device, fit_loop=True, batch_size=M, host_check=True),
        lambda: pprl_variant("mean_field", data, x, y, device, fit_loop=True, batch_size=M, compile=True),
        lambda: pprl_variant("mean_field", data, x, y, device, fused=True),
        *[(lambda f=f: pprl_variant(f, data, x, y, device,
                                    steps_scale=args.full_rank_steps / args.steps if f == "full_rank" else 1.0))
          for f in FAMILIES if f != "mean_field"],
        lambda: pyro_variant(Trace_ELBO, data, x, y, device),
        lambda: pyro_variant(TraceMeanField_ELBO, data, x, y, device),
    ]
    variants = []
    for i, build in enumerate(builders):
        pyro.clear_param_store()
        torch.manual_seed(args.seed + i)
        v = build()
        if any(s in v.name for s in args.skip):
            continue
        variants.append(v)

    print(f"torch {torch.__version__}, pyro {pyro.__version__}, device {device}, "
          f"{torch.get_num_threads()} threads; D = {probe.param_dim}, N = {N}, M = {M}; "
          f"{args.rounds} rounds × {args.steps} steps (full_rank {args.full_rank_steps})", flush=True)
    t_start = time.perf_counter()
    torch.manual_seed(args.seed)
    counters = {v.name: 0 for v in variants}
    for v in variants:  # warm-up
        n = max(2, round(args.warmup * v.steps_scale)) if v.steps_scale < 1 else args.warmup
        run_steps(v, batches, n, 0, device)
        counters[v.name] += n
    order_rng = random.Random(args.seed)
    for r in range(args.rounds):
        order = variants[:]
        order_rng.shuffle(order)
        for v in order:
            n = max(1, round(args.steps * v.steps_scale))
            v.round_ms.append(run_steps(v, batches, n, counters[v.name], device))
            counters[v.name] += n
        print(f"  round {r + 1}/{args.rounds} done ({time.perf_counter() - t_start:.0f} s)", file=sys.stderr, flush=True)

    ref_v = next((v for v in variants if v.name == REFERENCE), None)
    ref = statistics.median(ref_v.round_ms) if ref_v else float("nan")
    ref_best = min(ref_v.round_ms) if ref_v else float("nan")
    rows = []
    for v in variants:
        med, best = statistics.median(v.round_ms), min(v.round_ms)
        rows.append({"variant": v.name, "ms_per_step": med, "ratio": med / ref,
                     "best_ms": best, "best_ratio": best / ref_best, "max_ms": max(v.round_ms),
                     "steps_per_round": max(1, round(args.steps * v.steps_scale)), "round_ms": v.round_ms})

    w = max(len(r["variant"]) for r in rows)
    print(f"\n| {'variant':<{w}} | ms/step | ratio | best round ms | best ratio |")
    print(f"|{'-' * (w + 2)}|--------:|------:|--------------:|-----------:|")
    for r in rows:
        print(f"| {r['variant']:<{w}} | {r['ms_per_step']:7.2f} | {r['ratio']:5.2f} | "
              f"{r['best_ms']:13.2f} | {r['best_ratio']:10.2f} |")
    print("ms/step: median over rounds of the per-round mean; ratio: to the hand-written step's median; "
          "best: the fastest round (least disturbed by other load).")
    mf = next((r for r in rows if r["variant"] == "pprl mean_field"), None)
    if mf is not None and not math.isnan(ref):
        ok = mf["ratio"] <= 1.5
        print(f"\npprl mean_field / hand-written = {mf['ratio']:.2f} (target <= 1.5: {'met' if ok else 'MISSED'})")
    print(f"timed in {time.perf_counter() - t_start:.0f} s")

    if args.json is not None:
        result = {"device": str(device), "torch": torch.__version__, "pyro": pyro.__version__,
                  "threads": torch.get_num_threads(), "platform": platform.platform(),
                  "param_dim": probe.param_dim, "num_data": N, "batch_size": M,
                  "rounds": args.rounds, "steps": args.steps, "warmup": args.warmup,
                  "full_rank_steps": args.full_rank_steps, "reference": REFERENCE,
                  "reference_ms": ref, "results": rows}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    return rows


if __name__ == "__main__":
    main()
