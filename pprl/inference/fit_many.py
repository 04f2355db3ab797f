r"""Many independent fits in one vectorised SVI loop: R posteriors q_r(θ) of one dynamics model and
one Gaussian family, each with its own seed and, optionally, its own data set of the same shape.

Run r's objective is the single fit's −ELBO_r (:func:`pprl.inference.svi.analytic_kl_loss`),

    −ELBO_r = KL(q_r ‖ p) − (N/M) Σ_{n ∈ batch_r} (1/P) Σ_p log p(y_rn | x_rn, θ_rp),   θ_rp ~ q_r,

and the loop descends Σ_r −ELBO_r, whose gradient in run r's parameters is run r's own gradient.
Every parameter is stacked along a leading run axis, so one forward pass, one backward pass and
one fused optimiser step serve all R runs. Adam acts elementwise, the learning-rate schedule is
shared and gradient clipping is applied per run, so each run follows the path of its own fit.
Run r's random numbers — its initial values, minibatch permutations and reparameterisation
noise — come from its own generator, in the order a single fit draws them, so on the CPU run r
reproduces ``pprl.fit(..., seed=seeds[r])`` up to float rounding in the batched products (tested).
That exactness has a price on a GPU: each noise draw is R small ``randn`` calls (one per run's
generator), so the number of kernel launches per step grows with R.
"""
from __future__ import annotations

import copy
import time
from operator import attrgetter
from typing import Sequence

import torch
from torch.distributions import transform_to
from tqdm.auto import tqdm

from ..data import Transitions
from ..data.minibatches import shuffled_batches
from ..models.dynamics import DynamicsModel, build_model
from ..pyro_settings import local_params
from ..rng import seeded
from ..spec import InferenceSpec, as_inference_spec
from ..threads import uses_threads
from .families import make_family
from .families.gaussian import gaussian_kl_to_prior
from .posterior import Posterior
from .svi import DivergenceGuard, FitDiverged, check_data, loop_settings, make_optimizer


BATCHABLE = ("mean_field", "low_rank", "full_rank")  # Gaussian families fitted by SVI alone


def batchable(spec: InferenceSpec) -> str | None:
    """Why ``spec`` cannot be fitted by :func:`fit_many`, or None."""
    if spec.family not in BATCHABLE:
        return f"fit_many fits the families {', '.join(BATCHABLE)}; got family {spec.family!r}"
    if spec.elbo != "analytic_kl":
        return f"fit_many uses the analytic-KL ELBO; the spec asks for elbo {spec.elbo!r}"
    if spec.compile:
        return "fit_many does not compile its stacked step; compile: true applies to single fits (pprl.fit)"
    return None


def _constraint(module: torch.nn.Module, path: str):
    """The constraint of the Pyro parameter at dotted ``path`` (``real`` for a plain parameter)."""
    owner, _, name = path.rpartition(".")
    owner = attrgetter(owner)(module) if owner else module
    return getattr(owner, "_pyro_params", {}).get(name, (torch.distributions.constraints.real,))[0]


def _value(stacked: dict[str, torch.Tensor], module: torch.nn.Module, path: str) -> torch.Tensor:
    """The constrained value at ``path`` from the stacked unconstrained tensors (runs first)."""
    if path in stacked:
        return stacked[path]
    return transform_to(_constraint(module, path))(stacked[path + "_unconstrained"])


def _stack(modules: list[torch.nn.Module]) -> dict[str, torch.nn.Parameter]:
    """Each trainable tensor of R equal modules, stacked to ``[R, ...]`` as a new leaf."""
    per_run = [dict(m.named_parameters()) for m in modules]
    return {name: torch.nn.Parameter(torch.stack([p[name].detach() for p in per_run]))
            for name in per_run[0]}


def _unstack(stacked: dict[str, torch.Tensor], modules: list[torch.nn.Module]) -> None:
    with torch.no_grad():
        for r, module in enumerate(modules):
            for name, p in module.named_parameters():
                p.copy_(stacked[name][r])


def _clip_per_run(grads: list[torch.Tensor], max_norm: float) -> torch.Tensor:
    """``clip_grad_norm_`` applied to each run's slice of the stacked gradients → norms ``[R]``."""
    per_tensor = torch.stack([torch.linalg.vector_norm(g.flatten(1), dim=1) for g in grads], dim=1)  # [R, T]
    norms = torch.linalg.vector_norm(per_tensor, dim=1)  # contiguous rows: the same sums as for one run
    coef = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(coef.view(-1, *[1] * (g.dim() - 1)))
    return norms


def _generator_here(device: torch.device) -> torch.Generator:
    """A generator in the state of torch's global one on ``device`` (inside :func:`seeded`)."""
    gen = torch.Generator(device)
    gen.set_state(torch.get_rng_state() if device.type == "cpu" else torch.cuda.get_rng_state(device))
    return gen


@uses_threads
@local_params
def fit_many(model: DynamicsModel | str | dict, inference: InferenceSpec | str | dict,
             data: Transitions | Sequence[Transitions], *, seeds: Sequence[int], steps: int | None = None,
             device: str | torch.device = "cpu", progress: bool = True,
             check_every: int | None = None) -> list[Posterior]:
    """Fit ``len(seeds)`` independent posteriors at once; returns one :class:`Posterior` per seed.

    ``data`` is one data set shared by every run, or one per run (equal sizes and dimensions).
    ``model`` is a spec, or a built model that is copied per run (it is not modified). The
    family must be Gaussian (``mean_field``, ``low_rank``, ``full_rank``) with the analytic-KL
    ELBO. A non-finite loss or gradient in any run stops all of them with
    :class:`~pprl.inference.svi.FitDiverged` naming the runs and the step; its ``posteriors``
    hold every run's last good state.
    """
    spec = as_inference_spec(inference)
    if (why := batchable(spec)) is not None:
        raise ValueError(why)
    seeds = [int(s) for s in seeds]
    R = len(seeds)
    if R < 1:
        raise ValueError("fit_many needs at least one seed")
    datasets = [data] * R if isinstance(data, Transitions) else list(data)
    if len(datasets) != R:
        raise ValueError(f"fit_many got {len(datasets)} data sets for {R} seeds; give one per seed, or one for all")
    shapes = {(len(d), d.obs_dim, d.act_dim) for d in datasets}
    if len(shapes) > 1:
        raise ValueError(f"fit_many needs data sets of one shape (transitions, obs_dim, act_dim); got {sorted(shapes)}")
    N = len(datasets[0])
    for r, d in enumerate(datasets):
        check_data(d, f"data[{r}]")
    steps, device, check_every = loop_settings(spec, steps, device, check_every)

    d0 = datasets[0]
    models = [copy.deepcopy(model) if isinstance(model, DynamicsModel) else build_model(model, d0.obs_dim, d0.act_dim)
              for _ in range(R)]
    if (d0.obs_dim, d0.act_dim) != (models[0].obs_dim, models[0].act_dim):
        raise ValueError(f"data has obs_dim={d0.obs_dim}, act_dim={d0.act_dim} but the model was built "
                         f"for obs_dim={models[0].obs_dim}, act_dim={models[0].act_dim}")
    xs, ys = [], []
    for m, d in zip(models, datasets):
        d = d.to(device)
        m.to(device).fit_normalizer(d)
        xs.append(m.inputs(d.obs, d.act))
        ys.append(m.targets(d.obs, d.next_obs))
    X, Y = torch.stack(xs), torch.stack(ys)  # [R, N, in], [R, N, obs_dim]
    M = min(spec.batch_size, N)
    units = torch.tensor([N * float(m.target_norm.log_abs_det()) for m in models])
    head = models[0]

    families, generators = [], []
    for r, seed in enumerate(seeds):  # the set-up of each run, as fit() does it under its seed
        with seeded(seed):
            q = make_family(spec)
            q.make_guide(models[r])(xs[r][:M], ys[r][:M], N)
            families.append(q)
            generators.append(_generator_here(device))
    guides = [q.guide for q in families]
    guide_params, model_params = _stack(guides), _stack(models)
    if set(model_params) - {"noise_scale_unconstrained"}:  # the objective below knows only the noise
        raise ValueError(f"fit_many knows the dynamics models' learned noise scale as their only parameter; "
                         f"{type(head).__name__} has {sorted(model_params)}")
    q0 = families[0]
    optimizer = make_optimizer(guide_params.items(), list(model_params.values()), q0.structure_params, spec,
                               head.param_dim)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, spec.lr_decay ** (1.0 / steps))
    params = list(guide_params.values()) + list(model_params.values())
    local = spec.options.get("local_reparam", False)
    P = spec.num_particles
    like = dict(device=device, dtype=X.dtype)

    def randn(shape):  # run r's noise from run r's generator
        return torch.stack([torch.randn(shape, generator=g, **like) for g in generators])

    def values():  # q's constrained values [R, ...] by role
        return {role: _value(guide_params, guides[0], path) for role, path in q0.roles.items()}

    def objective(idx: torch.Tensor) -> torch.Tensor:  # idx [R, M] → −ELBO_r [R]
        x = torch.take_along_dim(X, idx[..., None], dim=1)
        y = torch.take_along_dim(Y, idx[..., None], dim=1)
        # q's values are read once for the KL and once for the likelihood, as a single fit reads
        # them: the two gradients then meet after the constraint maps, in the same order.
        kl = gaussian_kl_to_prior(*q0.moments_of(values()), head.prior_loc, head.prior_scale)
        p = values()
        if local:
            f = head.mean_local_reparam(p["loc"], p["scale"], x, P, randn)
        else:
            theta = q0.sample_of(p, P, randn)  # [R, P, D]
            xp = x.unsqueeze(1).expand(R, P, *x.shape[1:])
            f = head.mean(theta.flatten(0, 1), xp.flatten(0, 1)).unflatten(0, (R, P))
        noise = torch.stack([m.noise_scale for m in models]) if not model_params else \
            _value(model_params, head, "noise_scale")
        log_lik = head.log_likelihood(f, y.unsqueeze(1), noise[:, None, None, :])  # [R, P, M]
        return kl - N / M * log_lik.sum(-1).mean(-1)

    losses = torch.empty(steps, R, device=device)
    guard = DivergenceGuard(optimizer, steps, device, runs=R, check_every=check_every)
    batches = [shuffled_batches(N, M, device, generator=g) for g in generators]
    clip = spec.grad_clip or float("inf")
    start = time.perf_counter()
    bar = tqdm(range(steps), desc=f"fit {spec.name} ×{R}", disable=not progress, leave=False)
    shown = -steps  # the step the progress bar last showed
    for step in bar:
        idx = torch.stack([next(b) for b in batches])
        optimizer.zero_grad(set_to_none=True)
        loss = objective(idx)
        loss.sum().backward()
        norms = _clip_per_run([p.grad for p in params], clip)
        guard.record(step, torch.isfinite(loss) & torch.isfinite(norms))
        optimizer.step()
        scheduler.step()
        losses[step] = loss.detach()
        if (step + 1) % check_every == 0 or step == steps - 1:
            if (bad := guard.first_bad()) is not None:
                raise _diverged(bad, guide_params, model_params, guides, models, families, losses, units, seeds,
                                spec)
            if progress and (step - shown >= steps // 100 or step == steps - 1):
                bar.set_postfix(elbo=f"{float(-loss.detach().mean() + units.mean().to(device)):.4g}")
                shown = step
    _unstack(guide_params, guides)
    _unstack(model_params, models)
    wall = time.perf_counter() - start
    trace = -losses.cpu() + units
    posteriors = []
    for r, q in enumerate(families):
        q.finish(xs[r])
        info = {"steps": steps, "seed": seeds[r], "device": str(device), "num_data": N, "wall_time_s": wall,
                "num_runs": R, "run": r}
        posteriors.append(Posterior(q, trace[:, r].clone(), info))  # a copy: saving a view saves all R
    return posteriors


def _diverged(bad, guide_params, model_params, guides, models, families, losses, units, seeds,
              spec: InferenceSpec) -> FitDiverged:
    """The error for a first non-finite loss or gradient: every run's parameters, frozen by the
    guard since that step, are the state after the step before it — unless an update overflowed
    them (then that run's posterior is None)."""
    step, runs = bad
    _unstack(guide_params, guides)
    _unstack(model_params, models)
    trace = -losses[:step].cpu() + units
    posteriors, overflowed = [], []
    for r, q in enumerate(families):
        finite = all(torch.isfinite(p[r]).all() for p in (*guide_params.values(), *model_params.values()))
        posteriors.append(Posterior(q, trace[:, r].clone(), {"steps": step, "seed": seeds[r], "diverged_at": step})
                          if finite else None)
        overflowed += [] if finite else [r]
    kept = ("every run kept its last good state" if not overflowed else
            f"run(s) {overflowed} overflowed their parameters (no good state kept), the others kept their last "
            f"good state")
    return FitDiverged(f"non-finite ELBO or gradient at step {step} of {spec.name} in run(s) {runs} (seeds "
                       f"{[seeds[r] for r in runs]}); {kept} (after step {step - 1}). Try a smaller lr or "
                       f"init_scale.", step, None, posteriors, runs)
