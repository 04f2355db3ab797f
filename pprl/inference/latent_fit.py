"""Fitting a latent dynamics model and its amortised guide by the ELBO on minibatches of sub-sequences.

For B of the N training windows (L transitions, T = L + 1 observations each) a step ascends an
unbiased estimate of

    ELBO = Σ_n E_q[log p(o_n, z_n | a_n) − log q(z_n | o_n, a_n)]
         = Σ_n Σ_t E_q[log p(o_{n,t} | z_{n,t})] − E_q[KL(q(z_{n,t} | ·) ‖ p(z_{n,t} | z_{n,t−1}, a_{n,t−1}))]

(Levine, CS 294-112, amortised variational inference). Estimators:

* reparameterised (default): Pyro's ``Trace_ELBO`` with z = μ + σ ε (Kingma & Welling 2014);
* ``estimator: score_function``: Pyro's ``TraceGraph_ELBO`` with the z sites non-reparameterisable,
  ∇ = E_q[(downstream cost − b) ∇ log q] with the guide's learned baseline b (Williams 1992);
* ``free_nats`` / ``kl_balance`` in the model spec: the closed-form KL per step, max(KL_t, free nats)
  on its minibatch mean (Kingma et al. 2016's free bits; Hafner et al. 2019) and
  α KL(sg q ‖ p) + (1 − α) KL(q ‖ sg p) (Hafner et al. 2021);
* ``overshooting: D`` in the model spec: latent overshooting (Hafner et al. 2019), β × the mean over
  d = 2 … D of the KL from q(z_t | ·) to the d-step open-loop prior, which trains the transition for
  multi-step prediction (:func:`overshooting_kl`); a regulariser added to the loss, not part of the bound.

The reported ELBO stays the plain one.

:func:`gradient_variance` measures the spread of either estimator's gradient on one batch.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.infer import Trace_ELBO, TraceGraph_ELBO
from torch.distributions import kl_divergence
from tqdm.auto import tqdm

from ..data import Transitions
from ..data.minibatches import shuffled_batches
from ..data.sequences import Sequences, to_sequences
from ..models.latent import LatentModel, build_latent_model
from ..models.latent_spec import LatentSpec
from ..rng import seeded
from ..spec import InferenceSpec, SpecError, as_inference_spec, as_model_spec
from .amortised import AmortisedGuide, guide_options
from .families import FAMILIES, family_class
from .latent_posterior import LatentPosterior


def is_latent(model) -> bool:
    """Whether ``model`` (a built model, a spec, a mapping, a path or a bundled name) is a latent model."""
    if isinstance(model, (LatentModel, LatentSpec)):
        return True
    if isinstance(model, dict):
        return model.get("type") == "latent"
    if isinstance(model, torch.nn.Module):
        return False
    try:
        return isinstance(as_model_spec(model), LatentSpec)
    except SpecError:  # not a model spec at all: the caller's own checks report it
        return False


# --------------------------------------------------------------------------- objectives

def _normal(fn) -> dist.Normal:
    """The Normal inside a site's ``Normal(...).to_event(1)``."""
    base = fn.base_dist if isinstance(fn, dist.Independent) else fn
    return dist.Normal(base.loc, base.scale)


class AnalyticTerms(NamedTuple):
    """The pieces of one draw of the analytic-KL ELBO (:func:`analytic_terms`)."""

    rec: torch.Tensor  # log p(o_t | z_t), [T, B]
    kl: torch.Tensor  # KL(q(z_t | ·) ‖ p(z_t | z_{t−1}, a_{t−1})), [T, B]
    pairs: list  # the (q, p) Normals of each step
    z: torch.Tensor  # the guide's draw, [T, B, dz]
    theta: torch.Tensor | None  # the draw of a Bayesian transition's weights θ ~ q(θ), [D]
    weights_kl: torch.Tensor  # KL(q(θ) ‖ p(θ)), a scalar (0 without Bayesian weights)


def analytic_terms(model: LatentModel, guide: AmortisedGuide, obs, act, num_sequences=None) -> AnalyticTerms:
    """One draw z ~ q (and θ ~ q(θ) for a Bayesian transition): log p(o_t | z_t) and the closed-form
    KL(q(z_t | ·) ‖ p(z_t | z_{t−1}, a_{t−1})), each ``[T, B]`` (the prior of step t evaluated at the
    guide's z_{t−1}), the (q, p) Normals per step, the draws, and the closed-form KL(q(θ) ‖ p(θ))."""
    guide_tr = poutine.trace(guide).get_trace(obs, act, num_sequences)
    model_tr = poutine.trace(poutine.replay(model, trace=guide_tr)).get_trace(obs, act, num_sequences)
    T = obs.shape[1]
    rec = torch.stack([model_tr.nodes[f"o_{t}"]["fn"].log_prob(obs[:, t]) for t in range(T)])
    pairs = [(_normal(guide_tr.nodes[f"z_{t}"]["fn"]), _normal(model_tr.nodes[f"z_{t}"]["fn"])) for t in range(T)]
    kl = torch.stack([kl_divergence(q, p).sum(-1) for q, p in pairs])
    z = torch.stack([guide_tr.nodes[f"z_{t}"]["value"] for t in range(T)])
    theta, weights_kl = None, rec.new_zeros(())
    if model.bayesian:
        site = "transition_weights"
        theta = guide_tr.nodes[site]["value"]
        weights_kl = kl_divergence(_normal(guide_tr.nodes[site]["fn"]), _normal(model_tr.nodes[site]["fn"])).sum()
    return AnalyticTerms(rec, kl, pairs, z, theta, weights_kl)


def overshooting_kl(model: LatentModel, z: torch.Tensor, pairs, act: torch.Tensor, distance: int,
                    theta: torch.Tensor | None = None) -> list[torch.Tensor]:
    """Latent overshooting (after Hafner et al. 2019, PlaNet, eq. 7): for d = 2 … ``distance``, the KL from
    the guide's q(z_{s+d} | ·) (held fixed: the open-loop prior is trained towards it, not the other
    way round) to the d-step open-loop prior p(z_{s+d} | z_{s+d−1}, a_{s+d−1}), with z_{s+d−1} drawn by
    rolling the transition forward from the guide's draw z_s through a_s … a_{s+d−2}
    (reparameterised) → one ``[T − d, B]`` tensor per d (index s). ``z [T, B, dz]`` is the guide's
    draw, ``pairs`` the (q, p) Normals of :func:`analytic_terms`, ``act [B, T − 1, da]``. For d = 1
    this is the ELBO's own KL term, so it is not repeated here. PlaNet weighs all distances alike,
    (1/D) Σ_{d=1}^{D} β_d KL_d with free nats on each; :func:`analytic_loss` keeps the ELBO's KL
    whole and adds β × the mean over d ≥ 2 (free nats apply to the one-step term only), which
    matches PlaNet's with β_1 = D and β_{d>1} = β·D/(D − 1), up to the overall factor 1/D. A
    Bayesian transition rolls forward with the guide's draw ``theta`` of its weights."""
    T = z.shape[0]
    a = act.transpose(0, 1)  # [T − 1, B, da]
    q_loc = torch.stack([q.loc for q, _ in pairs]).detach()
    q_scale = torch.stack([q.scale for q, _ in pairs]).detach()
    current, terms = z[:-1], []  # current[s]: the open-loop state at time s + d − 1 from start s
    for d in range(1, distance + 1):
        n = T - d  # starts s = 0 … T − 1 − d
        loc, scale = model.transition_loc_scale(current[:n], a[d - 1:d - 1 + n], theta)
        if d > 1:
            target = dist.Normal(q_loc[d:d + n], q_scale[d:d + n])
            terms.append(kl_divergence(target, dist.Normal(loc, scale)).sum(-1))
        if d < distance:
            current = loc + scale * torch.randn_like(loc)
    return terms


def analytic_loss(model, guide, obs, act, num_sequences, free_nats: float = 0.0, kl_balance: float | None = None,
                  overshooting: int = 0, overshooting_scale: float = 1.0):
    """(surrogate loss to minimise, −ELBO estimate): closed-form KL per step with free nats, KL
    balancing and latent overshooting (see the module docstring); both scaled to the N sequences."""
    terms = analytic_terms(model, guide, obs, act, num_sequences)
    rec, kl, pairs = terms.rec, terms.kl, terms.pairs
    B = obs.shape[0]
    scale = num_sequences / B
    neg_elbo = -scale * (rec.sum() - kl.sum()) + terms.weights_kl
    if kl_balance is not None:
        detached = lambda d: dist.Normal(d.loc.detach(), d.scale.detach())  # noqa: E731
        kl_used = torch.stack([kl_balance * kl_divergence(detached(q), p).sum(-1)
                               + (1 - kl_balance) * kl_divergence(q, detached(p)).sum(-1) for q, p in pairs])
    else:
        kl_used = kl
    kl_step = kl_used.mean(1)  # [T]: the minibatch mean of each step's KL
    if free_nats > 0:
        kl_step = torch.clamp(kl_step, min=free_nats)
    loss = -scale * rec.sum() + num_sequences * kl_step.sum() + terms.weights_kl
    if overshooting > 1:
        extra = overshooting_kl(model, terms.z, pairs, act, overshooting, terms.theta)
        # β × the mean over d = 2 … D of Σ_s (minibatch mean of KL_{d,s}), on the scale of the ELBO's KL
        loss = loss + num_sequences * overshooting_scale * sum(t.mean(1).sum() for t in extra) / len(extra)
    return loss, neg_elbo.detach()


def make_objective(model: LatentModel, guide: AmortisedGuide, num_particles: int = 1, estimator: str | None = None,
                   plain: bool = False):
    """A function (obs, act, N) → −ELBO estimate (a detached scalar) that accumulates the chosen
    estimator's gradient in the parameters. ``estimator`` defaults to the model spec's; ``plain``
    ignores the spec's free nats, KL balancing and overshooting (the gradient of the ELBO itself)."""
    spec = model.spec
    estimator = estimator or spec.estimator
    if estimator == "score_function":
        elbo = TraceGraph_ELBO(num_particles=num_particles, max_plate_nesting=1)

        def step(obs, act, n):
            guide.score_function = True
            return torch.tensor(elbo.loss_and_grads(model, guide, obs, act, n))
        return step
    guide.score_function = False
    if not plain and (spec.free_nats > 0 or spec.kl_balance is not None or spec.overshooting > 1):
        if guide.num_flows:
            raise ValueError(f"model {spec.name!r}: free_nats, kl_balance and overshooting act on the closed-form "
                             f"Gaussian KL; a flow guide has none (use family mean_field, or drop them)")
        def step(obs, act, n):
            total, report = 0.0, 0.0
            for _ in range(num_particles):
                loss, neg = analytic_loss(model, guide, obs, act, n, spec.free_nats, spec.kl_balance,
                                          spec.overshooting, spec.overshooting_scale)
                (loss / num_particles).backward()
                report = report + neg / num_particles
            return report
        return step
    elbo = Trace_ELBO(num_particles=num_particles, max_plate_nesting=1)

    def step(obs, act, n):
        loss = elbo.differentiable_loss(model, guide, obs, act, n)
        loss.backward()
        return loss.detach()
    return step


@torch.no_grad()
def elbo_estimate(model: LatentModel, guide: AmortisedGuide, data: Sequences, num_particles: int = 8,
                  seed: int = 0, chunk: int = 256, weights_kl: bool = True) -> float:
    """The ELBO per observed step on ``data`` (closed-form KL, ``num_particles`` draws of z; a flow
    guide has no closed-form KL: E_q[log p(o, z) − log q(z)] by Monte Carlo), seeded. A Bayesian
    transition's −KL(q(θ) ‖ p(θ)) enters once for the whole of ``data`` (the bound on log p(data)
    with θ a latent variable); ``weights_kl=False`` leaves it out, E_q(θ) of the local ELBO, the
    per-step score that stays comparable between data sets of different sizes (held-out data)."""
    if guide.num_flows and model.bayesian and not weights_kl:
        raise ValueError("weights_kl=False needs the closed-form KL of a Gaussian guide; a flow guide's ELBO "
                         "is estimated with the weights' term included")
    if guide.num_flows:
        elbo = Trace_ELBO(num_particles=num_particles, max_plate_nesting=1)
        total = 0.0
        with seeded(seed), torch.no_grad():
            for start in range(0, len(data), chunk):
                part = data[start:start + chunk]
                if model.bayesian:  # local terms scaled to the data set, × B/N: the global term once in all
                    total -= float(elbo.loss(model, guide, part.obs, part.act, len(data))) * len(part) / len(data)
                else:
                    total -= float(elbo.loss(model, guide, part.obs, part.act))
        return total / (len(data) * data.length)
    total, before = 0.0, guide.score_function
    guide.score_function = False  # the closed-form KL reads the guide's Normals
    try:
        with seeded(seed):
            for start in range(0, len(data), chunk):
                part = data[start:start + chunk]
                for _ in range(num_particles):
                    terms = analytic_terms(model, guide, part.obs, part.act)
                    total += float(terms.rec.sum() - terms.kl.sum()) / num_particles
            if model.bayesian and weights_kl:
                total -= float(terms.weights_kl)  # the global KL(q(θ) ‖ p(θ)), counted once for the data set
    finally:
        guide.score_function = before
    return total / (len(data) * data.length)


@dataclass(frozen=True)
class GradientStats:
    """Draws of a stochastic gradient on one batch: their ``mean`` and per-coordinate ``variance``
    (flat over the model's and the guide's parameters, baseline excluded) and ``total_variance`` =
    Σ variance, the trace of the estimator's covariance."""

    mean: torch.Tensor
    variance: torch.Tensor
    total_variance: float
    num_samples: int


def gradient_parameters(model: LatentModel, guide: AmortisedGuide) -> list[torch.nn.Parameter]:
    """The parameters whose ELBO gradient :func:`gradient_variance` reports (not the baseline's)."""
    baseline = {id(p) for p in guide.baseline.parameters()}
    return [p for p in [*model.parameters(), *guide.parameters()] if id(p) not in baseline]


def gradient_variance(model: LatentModel, guide: AmortisedGuide, data: Sequences, estimator: str,
                      num_samples: int = 200, num_sequences: int | None = None, seed: int = 0) -> GradientStats:
    """``num_samples`` independent draws of the ELBO gradient on the batch ``data`` with ``estimator``
    (``reparameterised`` or ``score_function``; one particle each, the baseline held fixed) → their
    mean and variance per parameter coordinate. Both estimators are unbiased for ∇ELBO; the
    reparameterised one usually has far lower variance (Kingma & Welling 2014; Levine, lecture 13).
    Seeded; the global RNG is left untouched; the parameters are not changed."""
    if estimator not in ("reparameterised", "score_function"):
        raise ValueError(f"estimator must be 'reparameterised' or 'score_function', got {estimator!r}")
    params = gradient_parameters(model, guide)
    before = guide.score_function
    objective = make_objective(model, guide, 1, estimator, plain=True)
    draws = []
    try:
        with seeded(seed):
            for _ in range(num_samples):
                for p in [*model.parameters(), *guide.parameters()]:
                    p.grad = None
                objective(data.obs, data.act, num_sequences or len(data))
                draws.append(torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                                        for p in params]))
    finally:
        guide.score_function = before
        for p in [*model.parameters(), *guide.parameters()]:
            p.grad = None
    g = torch.stack(draws)
    var = g.var(0)
    return GradientStats(g.mean(0), var, float(var.sum()), num_samples)


# --------------------------------------------------------------------------- metrics

@torch.no_grad()
def latent_metrics(posterior: LatentPosterior, data: Transitions | Sequences, horizon: int = 10,
                   num_particles: int = 4, max_sequences: int = 256, seed: int = 0) -> dict:
    """ELBO per observed step, reconstruction MSE and the K-step open-loop prediction MSE (from the
    guide's mean at o_0, K = 1 … ``horizon``) with the constant-frame baseline (predict o_0), on
    windows of ``horizon`` transitions of ``data``; MSE per observation coordinate. For a Bayesian
    transition the ELBO is E_q(θ) of the local ELBO, and ``weights_kl`` reports KL(q(θ) ‖ p(θ))
    (a quantity of the training fit, not of these windows)."""
    seqs = data if isinstance(data, Sequences) else to_sequences(data, horizon)
    if len(seqs) == 0:
        raise ValueError(f"no window of {horizon} transitions in the evaluation data (episodes too short)")
    seqs = seqs[:max_sequences].to(posterior.device)
    K = seqs.length - 1
    model = posterior.model
    flow_bayesian = model.bayesian and posterior.guide.num_flows
    elbo = elbo_estimate(model, posterior.guide, seqs, num_particles, seed, weights_kl=bool(flow_bayesian))
    loc, _ = posterior.guide.encode(seqs.obs, seqs.act)
    recon = model.decode_mean(loc)
    pred = posterior.predict(seqs.obs[:, 0], seqs.act, threads=None)
    err = (pred - seqs.obs).pow(2).mean((0, 2))  # [K + 1]
    const = (seqs.obs[:, :1] - seqs.obs).pow(2).mean((0, 2))
    extra = {}
    if model.bayesian:
        extra["weights_kl"] = float(kl_divergence(posterior.guide.weights_distribution(), model.weights_prior()))
        extra["elbo_includes_weights_kl"] = bool(flow_bayesian)
    return {"elbo_per_step": elbo, **extra, "reconstruction_mse": float((recon - seqs.obs).pow(2).mean()),
            "prediction_mse": [float(e) for e in err[1:]], "constant_frame_mse": [float(e) for e in const[1:]],
            "horizon": K, "eval_sequences": len(seqs)}


@torch.no_grad()
def image_strip(posterior: LatentPosterior, seqs: Sequences, path: str | Path, index: int = 0, zoom: int = 4) -> Path:
    """A PNG of one sequence: truth (top row), reconstruction (middle) and open-loop prediction from
    its first frame (bottom), one column per time step; of stacked frames, the newest."""
    import matplotlib.image

    C, H, W = posterior.model.obs_shape
    one = seqs[index:index + 1].to(posterior.device)
    rows = [one.obs[0], posterior.reconstruct(one.obs, one.act, threads=None)[0],
            posterior.predict(one.obs[:, 0], one.act, threads=None)[0]]
    T, pad = one.length, 1
    canvas = np.ones((3 * (H + pad) + pad, T * (W + pad) + pad, 3), dtype=np.float32)
    for r, frames in enumerate(rows):
        frames = frames.reshape(T, C, H, W).clamp(0, 1).cpu().numpy()
        for t in range(T):
            img = frames[t].transpose(1, 2, 0)
            # stacked frames (oldest first): show the newest one, RGB when C is a multiple of 3, else grey
            img = img[..., -3:] if C % 3 == 0 else np.repeat(img[..., -1:], 3, -1)
            canvas[pad + r * (H + pad):pad + r * (H + pad) + H, pad + t * (W + pad):pad + t * (W + pad) + W] = img
    canvas = canvas.repeat(zoom, 0).repeat(zoom, 1)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    matplotlib.image.imsave(path, canvas)
    return path


# --------------------------------------------------------------------------- fit

def _check_inference(spec: InferenceSpec) -> InferenceSpec:
    if not family_class(spec.family).local_latents:
        allowed = ", ".join(name for name, cls in FAMILIES.items() if cls.local_latents)
        raise SpecError(f"{spec.source}: field 'family': a latent model's guide is an amortised diagonal Gaussian "
                        f"per step (mean_field), or that Gaussian through planar flows (flow); allowed: {allowed}")
    if spec.elbo == "renyi":
        raise SpecError(f"{spec.source}: field 'elbo': latent models are fitted by the ELBO; allowed: plain, "
                        f"analytic_kl (the model spec's free_nats / kl_balance pick the closed-form KL)")
    if spec.compile:
        raise SpecError(f"{spec.source}: field 'compile' applies to dynamics models (pprl.fit of a 'bnn' or "
                        f"'linear_gaussian' model); a latent model's step is not compiled")
    return spec


def fit_latent(model, inference, data: Transitions | Sequences, *, steps: int | None = None, seed: int = 0,
               device="cpu", progress: bool = True, out_dir: str | Path | None = None,
               checkpoint_every: int = 0, init: LatentPosterior | None = None,
               test_data: Transitions | Sequences | None = None, horizon: int = 10,
               num_particles: int | None = None) -> LatentPosterior:
    """Fit a ``type: latent`` model and its amortised guide to ``data`` (called by :func:`pprl.fit`).

    ``data``: :class:`Transitions` (cut into windows of the spec's ``sequence_length`` without
    crossing an episode end, :func:`pprl.data.sequences.to_sequences`) or :class:`Sequences`. The
    inference spec gives lr, steps, batch_size (sequences per minibatch), optimizer, lr_decay,
    grad_clip and num_particles; its family ``mean_field`` (a Gaussian per step) or ``flow`` (that
    Gaussian through ``num_flows`` amortised planar maps, :mod:`pprl.inference.amortised`). Seeded (initial weights,
    minibatches, draws) and leaves the global RNG untouched. A non-finite ELBO or gradient stops
    with :class:`~pprl.inference.svi.FitDiverged` naming the step (``.posterior``: the state before
    it). With ``out_dir``: ``posterior.pt``, ``metrics.json`` (:func:`latent_metrics` on
    ``test_data``, or on the training data when none is given) and, for image models, ``strip.png``.
    """
    from .svi import FitDiverged, _resolve_device

    spec = _check_inference(as_inference_spec(inference))
    device = _resolve_device(device)
    if isinstance(data, Transitions):
        act_dim = data.act_dim
    elif isinstance(data, Sequences):
        act_dim = data.act_dim
    else:
        raise ValueError(f"a latent model is fitted to Transitions or Sequences, got {type(data).__name__}")
    if init is not None:
        if model is not init.model and not isinstance(model, (LatentSpec, dict, str, Path)):
            raise ValueError("fit(init=posterior) must be given that posterior's own model (or its spec)")
        model, guide = init.model, init.guide
    elif not isinstance(model, LatentModel):
        with seeded(seed):
            model = build_latent_model(model, act_dim)
    mspec: LatentSpec = model.spec
    seqs = data if isinstance(data, Sequences) else to_sequences(data, mspec.sequence_length)
    if seqs.obs_dim != model.obs_dim or seqs.act_dim != model.act_dim:
        raise ValueError(f"data has obs_dim={seqs.obs_dim}, act_dim={seqs.act_dim} but the model was built for "
                         f"obs_dim={model.obs_dim} (shape {list(model.obs_shape)}), act_dim={model.act_dim}")
    if len(seqs) < 1:
        raise ValueError(f"no window of {mspec.sequence_length} transitions in the data (episodes too short or "
                         f"the data empty); lower sequence_length")
    if mspec.overshooting > seqs.length - 1:
        raise ValueError(f"overshooting distance {mspec.overshooting} is longer than the data's windows "
                         f"({seqs.length - 1} transitions); lower overshooting or give longer sequences")
    for name in ("obs", "act"):
        if not torch.isfinite(getattr(seqs, name)).all():
            raise ValueError(f"data.{name} has NaN or inf entries; remove those transitions first")
    steps = spec.steps if steps is None else int(steps)
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    particles = spec.num_particles if num_particles is None else int(num_particles)
    seqs = seqs.to(device)
    model.to(device)
    N, T = len(seqs), seqs.length
    M = min(spec.batch_size, N)
    out_dir = Path(out_dir) if out_dir is not None else None

    with seeded(seed):
        if init is None:
            guide = AmortisedGuide(mspec, act_dim, **guide_options(spec)).to(device)
        guide.to(device)
        params = [*model.parameters(), *guide.parameters()]
        cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}[spec.optimizer]
        optimizer = cls(params, lr=spec.lr)
        scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, spec.lr_decay ** (1.0 / steps))
        objective = make_objective(model, guide, particles)
        trace = torch.empty(steps)
        batches = shuffled_batches(N, M, device)
        start = time.perf_counter()
        bar = tqdm(range(steps), desc=f"fit {mspec.name}", disable=not progress, leave=False)
        for step in bar:
            idx = next(batches)
            optimizer.zero_grad(set_to_none=True)
            loss = objective(seqs.obs[idx], seqs.act[idx], N)
            grad_norm = torch.nn.utils.clip_grad_norm_(params, spec.grad_clip or float("inf"))
            if not (torch.isfinite(loss) and torch.isfinite(grad_norm)):
                what = "ELBO" if not torch.isfinite(loss) else "ELBO gradient"
                value = float(loss) if what == "ELBO" else float(grad_norm)
                good = LatentPosterior(model, guide, spec, trace[:step].clone(),
                                       {"steps": step, "seed": seed, "diverged_at": step})
                where = f"; saved to {good.save(out_dir / 'checkpoint.pt')}" if out_dir is not None else ""
                raise FitDiverged(f"non-finite {what} ({value:.4g}) at step {step} of {mspec.name}; kept the last "
                                  f"good state (after step {step - 1}){where}. Try a smaller lr.", step, good)
            optimizer.step()
            scheduler.step()
            trace[step] = -loss / (N * T)
            if progress and (step % max(1, steps // 100) == 0 or step == steps - 1):
                bar.set_postfix(elbo_per_step=f"{float(trace[step]):.4g}")
            if out_dir is not None and checkpoint_every and (step + 1) % checkpoint_every == 0:
                LatentPosterior(model, guide, spec, trace[:step + 1].clone(),
                                {"steps": step + 1, "seed": seed}).save(out_dir / "checkpoint.pt")
        wall = time.perf_counter() - start
    info = {"steps": steps, "seed": seed, "device": str(device), "num_sequences": N, "sequence_length": T - 1,
            "batch_size": M, "estimator": mspec.estimator, "wall_time_s": wall,
            "frames_per_s": steps * M * T / max(wall, 1e-9)}
    posterior = LatentPosterior(model, guide, spec, trace, info)
    if out_dir is not None:
        posterior.save(out_dir / "posterior.pt")
        held_out = test_data is not None
        eval_data = (test_data if held_out else data)
        eval_data = eval_data.to(device)
        metrics = {"split": "held_out" if held_out else "train", **info,
                   **latent_metrics(posterior, eval_data, horizon, seed=seed)}
        (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
        if len(mspec.obs_shape) == 3:
            seq = eval_data if isinstance(eval_data, Sequences) else to_sequences(eval_data, horizon)
            image_strip(posterior, seq, out_dir / "strip.png")
    return posterior
