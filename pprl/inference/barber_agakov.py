"""The Barber–Agakov bound from a Pyro model and a guide (Barber & Agakov 2003).

For sample sites ``x`` and ``y`` of a Pyro model's joint p(x, y) and a guide q(x | y), an
amortised "decoder" that reads y,

    I(X; Y) = H(X) − H(X | Y) ≥ H(X) + E_{p(x, y)}[log q(x | y)],

with equality iff q(x | y) = p(x | y); the gap is E_y KL[p(x | y) ‖ q(x | y)]. The pair is
the same one that gives an ELBO: sample the model's joint, score the guide. Empowerment
(Mohamed & Rezende 2015) is this bound with x = the action, y = the next state, the source
policy ω(a | s) in the model and the planning distribution q(a | s, s') as the guide.

The estimator draws N joint samples in one vectorised model run (an outer ``pyro.plate``)
and averages h_n + log q(x_n | y_n), where h_n is the entropy of the x site's distribution
(closed form when the distribution has one, else −log p(x_n | parents)). That is H(X)
exactly when x has no latent parents (context passed as model arguments is fine); if x
depends on other latents z it is H(X | Z) ≤ H(X), and the result is still a lower bound.
x may be discrete (the guide's log-probability is a log-mass) or continuous.

Calling conventions: ``model(*args, **kwargs)`` samples both sites; ``guide(y, *args,
**kwargs)`` samples (or here: scores) the site ``x`` given the tensor of y values ``[N, ...]``.
There is no ``device=`` argument: the samples live where the model puts them (its parameters
and tensor arguments), and the guide must be on the same device.
"""
from __future__ import annotations

import numpy as np
import pyro
import torch
from pyro import poutine

from ..rng import seeded
from .mi import MIEstimate, _progress, check_convergence
from ..threads import uses_threads


def _max_plate_nesting(model, args, kwargs) -> int:
    """How many plate dimensions the model uses (one trace without gradients)."""
    with torch.no_grad(), poutine.block():
        tr = poutine.trace(model).get_trace(*args, **kwargs)
    dims = [-frame.dim for node in tr.nodes.values() if node["type"] == "sample"
            for frame in node["cond_indep_stack"] if frame.vectorized]
    return max(dims, default=0)


def _site(trace, name: str, role: str):
    if name not in trace.nodes or trace.nodes[name]["type"] != "sample":
        sites = [k for k, v in trace.nodes.items() if v["type"] == "sample"]
        raise ValueError(f"the {role} has no sample site {name!r}; its sample sites: {', '.join(sites) or 'none'}")
    return trace.nodes[name]


def barber_agakov_terms(model, guide, x: str, y: str, num_samples: int, *args,
                        max_plate_nesting: int | None = None, **kwargs) -> torch.Tensor:
    """h_n + log q(x_n | y_n) for N = ``num_samples`` joint draws → ``[N]`` nats; its mean is
    the bound. Differentiable in the guide's parameters (and in the model's through a
    reparameterised x), so ``−terms.mean()`` is a training loss for q. ``max_plate_nesting``
    (the model's plate depth) is found by one extra model trace when not given."""
    if int(num_samples) < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    if max_plate_nesting is None:
        max_plate_nesting = _max_plate_nesting(model, args, kwargs)
    dim = -(max_plate_nesting + 1)
    with pyro.plate("barber_agakov_samples", num_samples, dim=dim):
        joint = poutine.trace(model).get_trace(*args, **kwargs)
    x_site, y_site = _site(joint, x, "model"), _site(joint, y, "model")
    x_value, y_value = x_site["value"], y_site["value"]
    fn = x_site["fn"]
    try:
        entropy = fn.entropy()
    except NotImplementedError:
        entropy = -fn.log_prob(x_value)
    with pyro.plate("barber_agakov_samples", num_samples, dim=dim):
        scored = poutine.trace(poutine.condition(guide, data={x: x_value})).get_trace(y_value, *args, **kwargs)
    log_q = _site(scored, x, "guide")["fn"].log_prob(x_value)
    return _per_sample(entropy, dim, num_samples) + _per_sample(log_q, dim, num_samples)


def _per_sample(t: torch.Tensor, dim: int, n: int) -> torch.Tensor:
    """Sum every batch dimension but the samples' plate dimension → ``[n]``."""
    if t.dim() < -dim or t.shape[dim] != n:
        raise ValueError(f"a site's log-density has batch shape {tuple(t.shape)}; expected size {n} at dim {dim} "
                         f"(is the site's distribution batched under the outer plate?)")
    return t.movedim(dim, 0).reshape(n, -1).sum(1)


@uses_threads
def barber_agakov(model, guide, x: str, y: str, *args, num_samples: int = 4096, steps: int = 0,
                  batch_size: int = 256, lr: float = 1e-2, seed: int = 0, progress: bool = True,
                  **kwargs) -> MIEstimate:
    """The Barber–Agakov lower bound on I(X; Y) in nats (module docstring).

    With ``steps > 0`` the guide's parameters are first trained by Adam on −(bound) over
    ``batch_size`` fresh joint samples per step (the model's parameters are left alone); the
    estimate then uses ``num_samples`` new samples, ``value ± stderr`` (stderr = sd/√N).
    ``trace`` holds the training bound per step.
    """
    with seeded(seed):  # the model and guide sample from torch's global RNG: restore it after
        return _barber_agakov(model, guide, x, y, args, num_samples, steps, batch_size, lr, progress, kwargs)


def _barber_agakov(model, guide, x, y, args, num_samples, steps, batch_size, lr, progress, kwargs) -> MIEstimate:
    kwargs["max_plate_nesting"] = _max_plate_nesting(model, args, kwargs)  # once, not per step
    trace = np.empty(int(steps))
    if steps > 0:
        params = _guide_parameters(guide, model, x, y, args, kwargs)
        optimizer = torch.optim.Adam(params, lr=lr)
        bar = _progress(steps, "Barber–Agakov", progress)
        for step in range(steps):
            loss = -barber_agakov_terms(model, guide, x, y, batch_size, *args, **kwargs).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            trace[step] = -float(loss.detach())
            if bar is not None:
                bar.update()
        if bar is not None:
            bar.close()
    with torch.no_grad():
        terms = barber_agakov_terms(model, guide, x, y, num_samples, *args, **kwargs).double().cpu().numpy()
    stderr = float(terms.std(ddof=1) / np.sqrt(len(terms))) if len(terms) > 1 else float("nan")
    notes = tuple(n for n in (check_convergence(trace),) if n) if steps > 0 else ()
    return MIEstimate(float(terms.mean()), stderr, trace, "barber_agakov", "guide", int(num_samples), notes=notes)


def _guide_parameters(guide, model, x, y, args, kwargs) -> list[torch.Tensor]:
    """The guide's trainable tensors: its ``nn.Module`` parameters, else the Pyro params it reads."""
    if isinstance(guide, torch.nn.Module):
        params = [p for p in guide.parameters() if p.requires_grad]
    else:  # the Pyro params read while scoring, minus those the model reads
        def read_params(fn):
            with poutine.trace(param_only=True) as captured:
                fn()
            return {name: site["value"] for name, site in captured.trace.nodes.items()}

        everything = read_params(lambda: barber_agakov_terms(model, guide, x, y, 2, *args, **kwargs))
        model_kwargs = {k: v for k, v in kwargs.items() if k != "max_plate_nesting"}
        in_model = read_params(lambda: model(*args, **model_kwargs))
        params = [v.unconstrained() for k, v in everything.items() if k not in in_model]
    if not params:
        raise ValueError("the guide has no trainable parameters; pass steps=0 to only evaluate the bound")
    return params
