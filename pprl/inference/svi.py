"""Minibatch stochastic variational inference for a dynamics model and one variational family.

Each step draws M of the N transitions and ascends an unbiased estimate of the ELBO

    L(q) = (N/M) Σ_{n∈batch} E_q[log p(y_n | x_n, θ)] − KL(q(θ) ‖ p(θ)).

Objectives (``elbo`` in the inference spec):
- ``analytic_kl`` (Gaussian families): closed-form KL plus a Monte-Carlo likelihood term (for
  mean_field with the local reparameterisation of Kingma et al. 2015 by default). Computed
  directly in torch — the objective of Pyro's ``TraceMeanField_ELBO`` without the per-step
  tracing cost, and without the O(D³)-flavoured MVN scoring for full_rank.
- ``plain``: Pyro's ``Trace_ELBO`` (Monte-Carlo KL); for ``map``/``laplace`` its value is the
  log joint log p(y, θ̂) of the point estimate.
- ``renyi``: Pyro's ``RenyiELBO`` (Li & Turner 2016); α = 0 with K particles is the IWAE bound.

With ``compile: true`` (analytic_kl only) the loss and its backward pass run through
``torch.compile`` (:func:`compiled_step`): CUDA graphs on a GPU, fused kernels on the CPU.

Reported ELBO values are in nats of the original (un-normalised) next observations.
"""
from __future__ import annotations

import math
import time
import warnings
from pathlib import Path

import torch
from pyro.infer import RenyiELBO, Trace_ELBO
from tqdm.auto import tqdm

from ..data import Transitions
from ..data.minibatches import shuffled_batches
from ..models.dynamics import DynamicsModel, build_model
from ..pyro_settings import local_params
from ..rng import seeded
from ..spec import InferenceSpec, ModelSpec, as_inference_spec
from .families import Family, family_class, make_family
from .posterior import Posterior
from ..threads import uses_threads

class FitDiverged(RuntimeError):
    """The ELBO or its gradient became NaN/inf. ``.posterior`` holds the last good state
    (the parameters before the failing step; None in the rare case that an update with a finite
    gradient overflowed the parameters themselves); ``.step`` is the failing step. From
    :func:`~pprl.inference.fit_many.fit_many` (``fit(num_runs=R)``), ``.posterior`` is None and
    ``.posteriors`` holds each run's (None for a run whose parameters overflowed), ``.runs`` the
    runs that failed at ``.step``."""

    def __init__(self, message: str, step: int, posterior: Posterior | None,
                 posteriors: list[Posterior | None] | None = None, runs: list[int] | None = None):
        super().__init__(message)
        self.step, self.posterior, self.posteriors, self.runs = step, posterior, posteriors, runs


def analytic_kl_terms(model: DynamicsModel, q: Family, x: torch.Tensor, y: torch.Tensor, num_particles: int = 1,
                      local_reparam: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """KL(q ‖ p) (closed form, :meth:`Family.kl_to_prior`) and (1/P) Σ_p Σ_n log p(y_n | f(x_n; θ_p))
    over the minibatch. With ``local_reparam`` (mean-field only) the likelihood term samples
    pre-activations instead of weights."""
    kl = q.kl_to_prior()
    if local_reparam:
        f = model.mean_local_reparam(q.loc, q.scale, x, num_particles)
    else:
        f = model.mean(q.sample(num_particles), x)
    log_lik = model.log_likelihood(f, y)  # [P, M]
    return kl, log_lik.sum(-1).mean()


def analytic_kl_loss(model: DynamicsModel, q: Family, x: torch.Tensor, y: torch.Tensor, num_data: int,
                     num_particles: int = 1, local_reparam: bool = False) -> torch.Tensor:
    """−ELBO = KL(q ‖ p) − (N/M) Σ_n (1/P) Σ_p log p(y_n | f(x_n; θ_p)) (:func:`analytic_kl_terms`)."""
    kl, log_lik = analytic_kl_terms(model, q, x, y, num_particles, local_reparam)
    return kl - num_data / x.shape[0] * log_lik


def compile_errors() -> tuple[type[Exception], ...]:
    """The exceptions that mean "this could not be compiled" (tracing, lowering, the C++/GPU
    toolchain), as opposed to errors of the step itself, which are raised as they are."""
    from torch._dynamo.exc import TorchDynamoException
    from torch._inductor import exc as inductor

    return (TorchDynamoException, inductor.InductorError, inductor.LoweringException, inductor.CppCompileError,
            inductor.InvalidCxxCompiler, inductor.CUDACompileError)


def compiled_step(loss_terms, finish, params, device: torch.device, what: str = "the SVI step"):
    """A step (x, y, n) → detached loss that accumulates gradients in ``params``, with
    ``loss_terms(x, y)`` run through ``torch.compile`` and ``finish(terms, x, n)`` → loss outside it
    (so the data size n, a Python number, is not baked into the graph: one graph serves every fit
    of the same minibatch shape). ``mode="reduce-overhead"`` on a GPU: the graph is captured once
    and replayed as a CUDA graph, one launch per step instead of one per kernel, the launch-bound
    regime of small models; inductor's fused kernels on the CPU. Compilation happens in the first
    step, forward and backward; if it fails there (no C++ compiler, an unsupported operation:
    :func:`compile_errors`), a RuntimeWarning names the error, the gradients are cleared and the
    plain ``loss_terms`` runs from then on. A compiled step draws its random numbers with
    inductor's generator (seeded from torch's, so runs repeat) and fuses arithmetic, so it is not
    bit-identical to the plain step."""
    graph = torch.compile(loss_terms, mode="reduce-overhead" if device.type == "cuda" else None, dynamic=False)
    chosen = []

    def run(terms_fn, x, y, n):
        loss = finish(terms_fn(x, y), x, n)
        loss.backward()
        return loss.detach()

    def step(x, y, n):
        if chosen:
            return run(chosen[0], x, y, n)
        try:
            out = run(graph, x, y, n)
        except compile_errors() as exc:
            warnings.warn(f"torch.compile of {what} failed ({type(exc).__name__}: {str(exc).splitlines()[0]}"
                          f"); running the plain step", RuntimeWarning, stacklevel=2)
            for p in params:
                p.grad = None
            chosen.append(loss_terms)
            return run(loss_terms, x, y, n)
        chosen.append(graph)
        return out
    return step


def _objective(model, q: Family, spec: InferenceSpec, device: torch.device | None = None):
    """A function (x, y, N) → loss with gradients accumulated in the parameters."""
    guide = q.guide
    if spec.elbo == "analytic_kl":
        local = spec.options.get("local_reparam", False)
        if spec.compile:
            def terms(x, y):
                return analytic_kl_terms(model, q, x, y, spec.num_particles, local)

            def finish(t, x, n):  # analytic_kl_loss's −ELBO
                return t[0] - n / x.shape[0] * t[1]
            params = [*guide.parameters(), *model.parameters()]
            return compiled_step(terms, finish, params, device or torch.device("cpu"))

        def step(x, y, n):
            loss = analytic_kl_loss(model, q, x, y, n, spec.num_particles, local)
            loss.backward()
            return loss.detach()
        return step
    particles = 1 if q.point_estimate else spec.num_particles
    kw = dict(num_particles=particles, vectorize_particles=particles > 1, max_plate_nesting=1)
    if spec.elbo == "renyi":
        elbo = RenyiELBO(alpha=spec.alpha, **kw)
        return lambda x, y, n: torch.tensor(elbo.loss_and_grads(model, guide, x, y, n))
    elbo = Trace_ELBO(**kw)

    def step(x, y, n):
        loss = elbo.differentiable_loss(model, guide, x, y, n)
        loss.backward()
        return loss.detach()
    return step


def _optimizer(q: Family, model, spec: InferenceSpec, param_dim: int):
    """The optimiser of ``fit`` over q's guide and the model's own parameters (:func:`make_optimizer`)."""
    return make_optimizer(q.guide.named_parameters(), list(model.parameters()), q.structure_params, spec, param_dim)


def make_optimizer(guide_params, model_params: list, structure_params: tuple[str, ...], spec: InferenceSpec,
                   param_dim: int) -> torch.optim.Optimizer:
    """Adam (or the spec's optimiser) over named guide parameters and the model's parameters.
    Guide parameters that couple many coordinates of θ (``structure_params``: a D×D Cholesky
    factor, a D×r factor, a flow's coupling networks) get the step size lr/√D: Adam moves every
    entry by ≈ lr per step, so a row of D such entries moves by ≈ lr·√D and q(θ) would not stay
    stable."""
    cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}[spec.optimizer]
    plain, structure = list(model_params), []
    for name, p in guide_params:
        (structure if any(s in name for s in structure_params) else plain).append(p)
    groups = [{"params": plain}]
    if structure:
        groups.append({"params": structure, "lr": spec.lr / math.sqrt(param_dim)})
    # One fused kernel over all tensors: faster steps for flow and full_rank (benchmarks/RESULTS.md).
    # Fused optimisers also honour ``optimizer.found_inf``: the on-device skip of :class:`DivergenceGuard`.
    return cls(groups, lr=spec.lr, fused=True)


def check_data(data: Transitions, name: str = "data") -> None:
    """A clear error for an empty data set or NaN/inf entries (named ``name.<field>``)."""
    if len(data) < 1:
        raise ValueError("cannot fit to an empty data set")
    for field in ("obs", "act", "next_obs"):
        if not torch.isfinite(getattr(data, field)).all():
            raise ValueError(f"{name}.{field} has NaN or inf entries; remove those transitions first")


def loop_settings(spec: InferenceSpec, steps, device, check_every) -> tuple[int, torch.device, int]:
    """The SVI loop's (steps, device, check_every), validated, with their defaults filled in."""
    steps = spec.steps if steps is None else int(steps)
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    device = _resolve_device(device)
    check_every = default_check_every(device) if check_every is None else int(check_every)
    if check_every < 1:
        raise ValueError(f"check_every must be >= 1, got {check_every}")
    return steps, device, check_every


def default_check_every(device: torch.device) -> int:
    """How many SVI steps run between host reads of the loss: 1 on the CPU (reading costs nothing
    there), 64 on a GPU, where each read waits for the device to finish its queue."""
    return 1 if device.type == "cpu" else 64


class DivergenceGuard:
    """Detects a non-finite loss or gradient norm, on a GPU without reading it back every step.

    Deferred (``check_every > 1``): each step records ``finite`` on the device; the first bad
    step is kept in a device tensor, and from that step on ``optimizer.found_inf`` is 1, so the
    fused optimiser skips every update (the mechanism of torch's AMP grad scaler) with no host
    synchronisation. The parameters therefore stay at the last good state — the state after the
    step before the first bad one — however many steps pass until the host looks
    (:meth:`first_bad`, one read every ``check_every`` steps). Immediate (``check_every == 1``,
    the CPU default, where reading is free): ``finite`` is read at once and the optimiser is
    told to skip only when it is false, so the CPU step costs what it did before the guard.
    ``finite`` may be per run (``[R]``, :func:`pprl.inference.fit_many.fit_many`): any bad run
    freezes them all."""

    def __init__(self, optimizer: torch.optim.Optimizer, steps: int, device: torch.device, runs: int = 1,
                 check_every: int = 1):
        self.optimizer, self.steps, self.deferred = optimizer, steps, check_every > 1
        self.first = torch.full((runs,), steps, dtype=torch.long, device=device)  # steps = "none yet"
        self.bad: tuple[int, list[int]] | None = None
        if self.deferred:
            optimizer.found_inf = torch.zeros((), device=device, dtype=torch.float32)  # what fused kernels read

    def record(self, step: int, finite: torch.Tensor) -> None:
        """Before ``optimizer.step()`` of ``step``: note a first failure, and skip if any run has one."""
        if self.deferred:
            self.first = torch.where((self.first == self.steps) & ~finite, step, self.first)
            self.optimizer.found_inf = (self.first < self.steps).any().to(self.optimizer.found_inf.dtype)
        elif self.bad is None and not bool(finite.all()):
            self.bad = step, [int(r) for r in torch.nonzero(~finite.reshape(-1)).flatten()]
            self.optimizer.found_inf = torch.ones((), device=finite.device, dtype=torch.float32)

    def first_bad(self) -> tuple[int, list[int]] | None:
        """(first bad step, the runs that failed at it), or None: one host read when deferred."""
        if not self.deferred:
            return self.bad
        first = self.first.cpu()
        step = int(first.min())
        if step == self.steps:
            return None
        return step, [r for r in range(len(first)) if int(first[r]) == step]


def _resolve_device(device) -> torch.device:
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r} requested but CUDA is not available; use device='cpu'")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"device {str(device)!r} requested but this machine has {torch.cuda.device_count()} "
                         f"CUDA device(s): use cuda:0 … cuda:{torch.cuda.device_count() - 1}")
    return device


@uses_threads
@local_params
def fit(model: DynamicsModel | ModelSpec | str | Path, inference: InferenceSpec | str | Path | dict,
        data: Transitions, *, steps: int | None = None, seed: int = 0, device: str | torch.device = "cpu",
        progress: bool = True, out_dir: str | Path | None = None, checkpoint_every: int = 0,
        init: Posterior | None = None, renormalize: bool = True, check_every: int | None = None,
        num_runs: int | None = None, **latent_options) -> Posterior | list[Posterior]:
    """Fit q(θ) of family ``inference`` (a YAML path, a family name or a spec) to ``data``.

    The model's normalisation is fitted from ``data`` first. Training is deterministic for a
    given ``seed`` and device, and leaves the global RNG state untouched. With ``out_dir`` and
    ``checkpoint_every > 0`` a checkpoint ``out_dir/checkpoint.pt`` is written every that many
    steps. A non-finite loss or gradient stops training with :class:`FitDiverged`, whose
    ``posterior`` holds the last good parameters (also saved to ``out_dir`` when given). Losses
    and the finiteness test stay on the device and are read every ``check_every`` steps
    (default: every step on the CPU, every 64 on a GPU, so that with the ``analytic_kl``
    objective the GPU does not wait for the host; Pyro's ``plain`` and ``renyi`` objectives still
    read their loss every step); the error still names the first bad step, since the optimiser
    skips every update from that step on (:class:`DivergenceGuard`). The result does not depend
    on ``check_every``.

    ``init`` warm-starts from a fitted posterior of the same model: its guide continues
    training (a Laplace posterior restarts its MAP search at its mean) — VIME's refit on a
    growing replay pool. With ``renormalize`` (default) the normalisation first follows ``data``
    and ``init`` is re-expressed in the new units (:meth:`Posterior.renormalize`: the same
    predictive, so training resumes from the function it had learned, on well-scaled inputs).

    A ``type: latent`` model (local latents z_t, an amortised guide) is fitted on sequences by
    :func:`pprl.inference.latent_fit.fit_latent`, which returns a
    :class:`~pprl.inference.latent_posterior.LatentPosterior`; ``latent_options`` (``test_data``,
    ``horizon``, ``num_particles``) are its own.

    ``num_runs=R`` fits R independent posteriors with seeds ``seed, …, seed + R − 1`` in one
    vectorised loop and returns them as a list (:func:`pprl.inference.fit_many.fit_many`, which
    also takes one data set per run); run r equals ``fit(..., seed=seed + r)``.
    """
    if num_runs is not None:
        if init is not None or out_dir is not None or latent_options:
            raise ValueError("fit(num_runs=...) takes neither init, out_dir nor latent-model options")
        if int(num_runs) < 1:
            raise ValueError(f"num_runs must be >= 1, got {num_runs}")
        from .fit_many import fit_many
        return fit_many(model, inference, data, seeds=range(seed, seed + int(num_runs)), steps=steps, device=device,
                        progress=progress, check_every=check_every)
    if not isinstance(model, DynamicsModel):
        from .latent_fit import fit_latent, is_latent
        if is_latent(model):
            return fit_latent(model, inference, data, steps=steps, seed=seed, device=device, progress=progress,
                              out_dir=out_dir, checkpoint_every=checkpoint_every, init=init, **latent_options)
    if latent_options:
        raise TypeError(f"fit() got options of latent models for a {type(model).__name__}: "
                        f"{', '.join(sorted(latent_options))}")
    spec = as_inference_spec(inference)
    if not isinstance(model, DynamicsModel):
        model = build_model(model, data.obs_dim, data.act_dim)
    family = family_class(spec.family)
    if (data.obs_dim, data.act_dim) != (model.obs_dim, model.act_dim):
        raise ValueError(f"data has obs_dim={data.obs_dim}, act_dim={data.act_dim} but the model was built "
                         f"for obs_dim={model.obs_dim}, act_dim={model.act_dim}")
    check_data(data)
    steps, device, check_every = loop_settings(spec, steps, device, check_every)
    if not family.fitted_by_svi:  # e.g. NUTS: the family makes its posterior itself
        if init is not None:
            raise ValueError(f"family {spec.family!r} is not fitted by SVI and cannot warm-start from init")
        return family.fit_directly(model, spec, data, seed=seed, progress=progress, device=device)
    data = data.to(device)
    if init is not None and init.model is not model:
        raise ValueError("fit(init=posterior) must be given that posterior's own model")
    model.to(device)
    if init is None:
        model.fit_normalizer(data)
    elif renormalize:
        init.renormalize(data)
    x, y = model.inputs(data.obs, data.act), model.targets(data.obs, data.next_obs)
    N, M = x.shape[0], min(spec.batch_size, x.shape[0])
    units = N * float(model.target_norm.log_abs_det())  # normalised → original nats
    out_dir = Path(out_dir) if out_dir is not None else None

    with seeded(seed):
        q = make_family(spec)
        guide = q.warm_start(init.q) if init is not None else q.make_guide(model)
        guide(x[:M], y[:M], N)  # set up the guide's parameters
        params = list(guide.parameters()) + list(model.parameters())
        optimizer = _optimizer(q, model, spec, model.param_dim)
        gamma = spec.lr_decay ** (1.0 / steps)
        scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma)
        objective = _objective(model, q, spec, device)
        losses, grad_norms = torch.empty(steps, device=device), torch.empty(steps, device=device)
        guard = DivergenceGuard(optimizer, steps, device, check_every=check_every)
        batches = shuffled_batches(N, M, device)
        start = time.perf_counter()
        bar = tqdm(range(steps), desc=f"fit {spec.name}", disable=not progress, leave=False)
        shown = -steps  # the step the progress bar last showed
        for step in bar:
            idx = next(batches)
            optimizer.zero_grad(set_to_none=True)
            try:
                loss = objective(x[idx], y[idx], N)
            except ValueError as exc:  # Pyro's argument checks reject NaN parameters
                if all(torch.isfinite(p).all() for p in params):
                    raise
                raise FitDiverged(f"parameters became non-finite after step {step - 1} of {spec.name} "
                                  f"(finite loss and gradient, but the update overflowed); no good state "
                                  f"kept. Try a smaller lr.", step, None) from exc
            grad_norm = torch.nn.utils.clip_grad_norm_(params, spec.grad_clip or float("inf"))
            guard.record(step, torch.isfinite(loss) & torch.isfinite(grad_norm))
            optimizer.step()
            scheduler.step()
            losses[step], grad_norms[step] = loss, grad_norm
            if (step + 1) % check_every == 0 or step == steps - 1:
                bad = guard.first_bad()
                if bad is not None:
                    raise _diverged(q, losses, grad_norms, bad[0], units, params, spec, seed, out_dir)
                if progress and (step - shown >= steps // 100 or step == steps - 1):
                    bar.set_postfix(elbo=f"{-float(loss) + units:.4g}")
                    shown = step
            if out_dir is not None and checkpoint_every and (step + 1) % checkpoint_every == 0:
                if (bad := guard.first_bad()) is not None:  # never checkpoint past a bad step
                    raise _diverged(q, losses, grad_norms, bad[0], units, params, spec, seed, out_dir)
                Posterior(q, -losses[:step + 1].cpu() + units,
                          {"steps": step + 1, "seed": seed}).save(out_dir / "checkpoint.pt")
        q.finish(x)
        wall = time.perf_counter() - start
    info = {"steps": steps, "seed": seed, "device": str(device), "num_data": N, "wall_time_s": wall}
    return Posterior(q, -losses.cpu() + units, info)


def _diverged(q: Family, losses, grad_norms, step: int, units: float, params, spec: InferenceSpec, seed: int,
              out_dir: Path | None) -> FitDiverged:
    """The error for a first non-finite loss or gradient at ``step``; the parameters, frozen by
    the guard since then, are the state after ``step − 1``."""
    loss, norm = float(losses[step]), float(grad_norms[step])
    what, value = ("ELBO", loss) if not math.isfinite(loss) else ("ELBO gradient", norm)
    if not all(torch.isfinite(p).all() for p in params):
        return FitDiverged(f"non-finite {what} ({value:.4g}) at step {step} of {spec.name}, after an update "
                           f"overflowed the parameters; no good state kept. Try a smaller lr.", step, None)
    posterior = Posterior(q, -losses[:step].cpu() + units, {"steps": step, "seed": seed, "diverged_at": step})
    where = f"; saved to {posterior.save(out_dir / 'checkpoint.pt')}" if out_dir is not None else ""
    return FitDiverged(f"non-finite {what} ({value:.4g}) at step {step} of {spec.name}; kept the last good "
                       f"state (after step {step - 1}){where}. Try a smaller lr or init_scale.", step, posterior)


@torch.no_grad()
def elbo_per_transition(posterior: Posterior, data: Transitions, *, num_particles: int = 4,
                        max_points: int = 8192, seed: int = 0) -> float:
    """ELBO(q)/N = (1/N) Σ_n E_q log p(s'_n | s_n, a_n, θ) − KL(q ‖ p)/N on ``data``, in nats of the
    original next observations per transition.

    The likelihood term is a Monte-Carlo estimate over ``num_particles`` draws θ ~ q and, above
    ``max_points`` transitions, a uniform subsample (unbiased for the mean). KL is closed form for
    the Gaussian families, a Monte-Carlo estimate for the flow, and −log p(θ̂) for ``map`` (whose
    "ELBO" is the log joint): :meth:`Family.regularizer`. Seeded; the global RNG is left untouched."""
    model, q = posterior.model, posterior.q
    data = data.to(posterior.device)
    N = len(data)
    if N < 1:
        raise ValueError("elbo_per_transition needs at least one transition")
    gen = torch.Generator(device=posterior.device).manual_seed(seed)
    if N > max_points:
        data = data[torch.randperm(N, generator=gen, device=posterior.device)[:max_points]]
    with seeded(seed):
        theta = q.sample(num_particles)
        kl = q.regularizer(theta)
    x, y = model.inputs(data.obs, data.act), model.targets(data.obs, data.next_obs)
    f = posterior.predictive_mean(theta, x)  # [P, n, obs_dim]
    log_lik = model.log_likelihood(f, y).mean(0)  # [n]
    return float(log_lik.mean() - kl / N + model.target_norm.log_abs_det())
