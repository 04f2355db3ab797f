"""VIME's information gain: how much one transition would move the dynamics posterior.

For a posterior q(θ; φ) and a transition (s, a, s') with x = [s, a], y = target(s, s'),
VIME (Houthooft et al. 2016, eq. 7 and 12) rewards

    IG(s, a, s') = KL[ q(θ; φ') ‖ q(θ; φ) ],
    φ' = argmin_ψ  KL[ q(θ; ψ) ‖ q(θ; φ) ] − E_{q(θ; ψ)} log p(y | x, θ),           (12)

the KL of the posterior after a Bayesian update on that single transition. Three ways to get
φ' (all in nats, for N transitions at once — the N per-transition problems are independent, so
the gradient of their *sum* with respect to N stacked copies of φ is every per-transition
gradient in one backward pass; no Python loop over transitions):

* ``method="update", solver="gradient"`` (VIME for general BNNs): ``steps`` steps of
  gradient descent on (12), preconditioned by the Hessian of the KL term at φ (VIME's Newton
  step, eq. 13) plus, for the mean, the Gauss–Newton curvature of the transition's likelihood,
  JᵀR⁻¹J with J = ∂f(x; θ)/∂θ at the transition's current mean (R⁻¹ the likelihood's Fisher
  information): by Woodbury the mean's direction is (Σ − ΣJᵀ(R + JΣJᵀ)⁻¹JΣ) g, a damped
  (Levenberg–Marquardt) step whose first unit step is the Kalman update for a linear model.
  Diagonal log-scales likewise get curvature 2 + 2σ_d² Σ_k J_kd²/R_k, and move by at most e^±½
  per step. Without these terms a surprising transition (residual r ≫ σ) makes the KL-only
  step overshoot by a factor ~ JΣJᵀ/σ². A per-transition backtracking line search keeps every
  transition's objective from increasing and rejects non-finite trials, so the result is
  finite for any finite transition. The objective is non-convex for a BNN: the solver
  returns a local optimum, which can sit below the linearized value. The expectation uses
  ``num_samples`` common random numbers ε shared by all transitions, so rewards of different
  transitions differ by the data, not by Monte-Carlo noise. The KL is closed form for the
  Gaussian families; for the flow family only its final elementwise affine is updated per
  transition and the KL is a Monte-Carlo estimate with the same common noise
  (:class:`~pprl.inference.families.flow.FlowAffineView`).
* ``method="update", solver="linearized"``: the exact minimiser of (12) over *all* Gaussians
  with the likelihood linearised at the posterior mean, f(x; θ) ≈ f(x; μ) + J(θ − μ). With
  G = JΣJᵀ (the predictive covariance of f), S = R + G (R = diag σ²) and r = y − f(x; μ),

      IG = ½ [ log det S − log det R − tr(S⁻¹G) + rᵀ S⁻¹ G S⁻¹ r ],

  a k×k computation per transition (k = obs_dim). Exact for linear-Gaussian dynamics (it is
  the conjugate Kalman update) and available for every Gaussian family, Laplace included.
* ``method="second_order"`` (VIME eq. 16, mean-field only): KL ≈ ½ λ² ∇ᵀ H⁻¹ ∇ with ∇ the
  gradient of −E_q log p(y | x, θ) at φ and H the diagonal Hessian of the KL term,
  H = (1/σ², 2) for (μ, log σ).

Each family declares what it supports (``Family.info_gain``) and supplies the per-transition
view (``Family.info_gain_view``): mean_field all three, low_rank / full_rank / laplace both
``update`` solvers, flow ``update`` with the gradient solver. The MAP family has no spread (its
KL is undefined); it and every other combination raise a clear error.
"""
from __future__ import annotations

import torch

from ..data import Transitions
from .families import info_gain_support_error
from .posterior import Posterior
from ..threads import uses_threads

METHODS = ("update", "second_order")
SOLVERS = ("gradient", "linearized")


def posterior_view(posterior: Posterior):
    """The posterior's q(θ) as plain tensors for per-transition updates (its family's
    :meth:`~pprl.inference.families.Family.info_gain_view`), or a clear error."""
    return posterior.q.info_gain_view()


def common_noise(num_samples: int, dim: int, seed: int, device, dtype) -> torch.Tensor:
    """ε ∈ R^{S×dim} shared by every transition: antithetic pairs (±z, so the sample mean is
    exactly 0), whitened to an exactly unit second moment when S/2 ≥ dim. With it the
    expected log-likelihood of a linear-Gaussian model is computed exactly."""
    half = max(1, num_samples // 2)
    gen = torch.Generator(device=device).manual_seed(seed)
    z = torch.randn(half, dim, generator=gen, device=device, dtype=torch.float64)
    if half >= dim:
        evals, evecs = torch.linalg.eigh(z.T @ z / half)
        z = z @ evecs @ torch.diag(evals.rsqrt()) @ evecs.T
    return torch.cat([z, -z]).to(dtype)


def _weight_block(t: torch.Tensor, layer) -> torch.Tensor:
    """A layer's slice of flat θ-shaped ``t [..., D]`` as ``[..., in+1, out]``: the weight
    rows, then the bias as the row of a constant input 1."""
    w = t[..., layer.weight].reshape(*t.shape[:-1], layer.fan_in, layer.fan_out)
    return torch.cat([w, t[..., layer.bias].unsqueeze(-2)], -2)


# ---------------------------------------------------------------------------------------------
class InfoGain:
    """VIME information gain of transitions under a fitted dynamics posterior (module docstring).

    ``InfoGain(posterior)(transitions)`` → ``Tensor[N]`` of KL[q' ‖ q] in nats (unnormalised).
    ``update(transitions)`` refits the posterior by SVI on them (warm-started), as VIME does
    on its replay pool between iterations.
    """

    def __init__(self, posterior: Posterior, method: str = "update", *, solver: str = "gradient",
                 steps: int = 10, lr: float = 1.0, step_size: float = 1.0, num_samples: int = 8,
                 chunk_size: int = 1024, seed: int = 0):
        if method not in METHODS:
            raise ValueError(f"unknown info-gain method {method!r}; allowed: {', '.join(METHODS)}")
        if solver not in SOLVERS:
            raise ValueError(f"unknown info-gain solver {solver!r}; allowed: {', '.join(SOLVERS)}")
        unsupported = info_gain_support_error(type(posterior.q), method, solver)
        if unsupported:
            raise ValueError(unsupported)
        if method == "update" and solver == "linearized" and posterior.model.spec.likelihood.type != "normal":
            raise ValueError("solver='linearized' is the closed-form update under a Gaussian likelihood; a "
                             f"{posterior.model.spec.likelihood.type!r} likelihood needs solver='gradient'")
        for name, value in (("steps", steps), ("num_samples", num_samples), ("chunk_size", chunk_size)):
            if int(value) < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if not (lr > 0 and step_size > 0):
            raise ValueError(f"lr and step_size must be > 0, got {lr}, {step_size}")
        posterior_view(posterior)  # fail now, not at the first call
        self.posterior, self.method, self.solver = posterior, method, solver
        self.steps, self.lr, self.step_size = int(steps), float(lr), float(step_size)
        self.num_samples, self.chunk_size, self.seed = int(num_samples), int(chunk_size), seed
        self.refits = 0

    def __repr__(self):
        how = self.solver if self.method == "update" else f"lambda={self.step_size}"
        return f"InfoGain({self.posterior.family}, method={self.method!r}, {how})"

    # ------------------------------------------------------------------------------ scoring
    @uses_threads
    def __call__(self, transitions: Transitions) -> torch.Tensor:
        """KL[q' ‖ q] for every transition → ``[N]`` nats, on the posterior's device and dtype."""
        model = self.posterior.model
        if (transitions.obs_dim, transitions.act_dim) != (model.obs_dim, model.act_dim):
            raise ValueError(f"transitions have obs_dim={transitions.obs_dim}, act_dim={transitions.act_dim}; "
                             f"the posterior's model expects {model.obs_dim}, {model.act_dim}")
        data = transitions.to(self.posterior.device)
        x, y = model.inputs(data.obs, data.act), model.targets(data.obs, data.next_obs)
        view = posterior_view(self.posterior)
        noise = model.noise_scale.detach()
        eps = common_noise(self.num_samples, view.noise_dim, self.seed, x.device, x.dtype)
        if self.method == "second_order":
            score = lambda xc, yc: self._second_order(view, xc, yc, noise, eps)
        elif self.solver == "linearized":
            score = lambda xc, yc: self._linearized(view, xc, yc, noise)
        else:
            score = lambda xc, yc: self._gradient_update(view, xc, yc, noise, eps)
        out = [score(x[i:i + self.chunk_size], y[i:i + self.chunk_size])
               for i in range(0, x.shape[0], self.chunk_size)]  # chunks bound memory only
        return torch.cat(out).to(x.dtype) if out else x.new_zeros(0)

    def _nll(self, view, p, x, y, noise, eps):
        """−(1/S) Σ_s log p(y_n | x_n, θ_ns), θ_ns = T(p_n, ε_s) → ``[n]`` (one batched forward)."""
        n, S = x.shape[0], eps.shape[0]
        theta = view.sample(p, eps).reshape(n * S, -1)
        f = self.posterior.model.mean(theta, x.repeat_interleave(S, 0)[:, None, :]).reshape(n, S, -1)
        return -self.posterior.model.log_likelihood(f, y[:, None, :]).mean(1)

    def _second_order(self, view, x, y, noise, eps):
        """½λ² Σ_d H_d⁻¹ g_nd² with g_n the gradient of the expected NLL of transition n at φ.

        With θ_s = μ + σ ⊙ ε_s, g_n = (1/S) Σ_s ∇_θ ℓ_n(θ_s) ⊗ (1, σ ε_s) for (μ, log σ) and
        H⁻¹ = (σ², ½), so the quadratic form is a double sum over samples,

            Σ_d H_d⁻¹ g_nd² = Σ_{s,s'} Σ_d ∂_d ℓ_n(θ_s) ∂_d ℓ_n(θ_s') σ_d² (1 + ½ ε_sd ε_s'd) / S².

        For an MLP layer ∂ℓ_n/∂W_io = h_ni δ_no (input h, pre-activation gradient δ), so the
        sum over (i, o) is ((h_s h_s') K_ss' ⊙ (δ_s δ_s')) with K_ss' = σ² ⊙ (1 + ½ ε_s ε_s'):
        one [S(S+1)/2, n, in] × [·, in, out] product per layer (pairs s ≤ s'). No per-transition
        gradient is ever formed (N·S²·D/2 work, N·S²·width memory). Models that are not MLP-shaped use
        ``torch.func.vmap(grad)`` per transition instead (:meth:`_second_order_autodiff`)."""
        model = self.posterior.model
        if model.layers is None:
            return self._second_order_autodiff(view, x, y, noise, eps)
        p, S = view.params, eps.shape[0]
        scale = p["log_scale"].exp()
        trace = []
        with torch.enable_grad():
            theta = (p["loc"] + scale * eps).requires_grad_()  # [S, D]; grad needed only to build the graph
            f = model.mean(theta, x, trace=trace)  # [S, n, k]
            nll = -model.log_likelihood(f, y).mean(0)
            deltas = torch.autograd.grad(nll.sum(), [z for _, z in trace])
        # the summand is symmetric in (s, s'): pairs s ≤ s', off-diagonal ones counted twice
        i, j = torch.triu_indices(S, S, device=x.device)
        pair_weight = torch.where(i == j, 1.0, 2.0).to(x.dtype)
        quad = x.new_zeros(x.shape[0])
        with torch.no_grad():
            for layer, (h, _), delta in zip(model.layers, trace, deltas):
                e = _weight_block(eps, layer)  # [S, in+1, out]
                K = _weight_block(view.var, layer) * (1 + 0.5 * e[i] * e[j])  # [pairs, in+1, out]
                h1 = torch.cat([h.detach(), h.new_ones(*h.shape[:-1], 1)], -1)  # [S, n, in+1]
                per_pair = (torch.bmm(h1[i] * h1[j], K) * (delta[i] * delta[j])).sum(-1)  # [pairs, n]
                quad += pair_weight @ per_pair
        return 0.5 * self.step_size ** 2 * quad

    def _second_order_autodiff(self, view, x, y, noise, eps):
        """The same quadratic form from explicit per-transition gradients, ``vmap(grad)`` over
        transitions (any differentiable model; N·S·D memory)."""
        from torch.func import grad, vmap

        model = self.posterior.model

        def nll(loc, log_scale, x1, y1):  # one transition: −(1/S) Σ_s log p(y | x, μ + σ ε_s)
            f = model.mean(loc + log_scale.exp() * eps, x1[None])[:, 0]  # [S, k]
            return -model.log_likelihood(f, y1).mean()

        p = view.params
        g_loc, g_log_scale = vmap(grad(nll, argnums=(0, 1)), in_dims=(None, None, 0, 0))(
            p["loc"], p["log_scale"], x, y)
        quad = (g_loc * view.precondition("loc", g_loc)).sum(1) \
            + (g_log_scale * view.precondition("log_scale", g_log_scale)).sum(1)
        return 0.5 * self.step_size ** 2 * quad

    def _gradient_update(self, view, x, y, noise, eps, max_backtracks: int = 12):
        """Damped-Newton descent on (12) (module docstring) with a per-transition backtracking
        line search: a step is tried at the transition's current size and shrunk 4× until the
        objective does not increase; accepted sizes grow back 2× (up to ``lr``) for the next step."""
        n = x.shape[0]
        p = {k: v.expand(n, *v.shape).clone() for k, v in view.params.items()}
        lr = torch.full((n,), self.lr, device=x.device, dtype=x.dtype)
        per_row = lambda t, like: t.view(n, *([1] * (like.dim() - 1)))

        def objective(params):
            return view.kl(params, eps) + self._nll(view, params, x, y, noise, eps)

        view.sample({k: v[:1] for k, v in p.items()}, eps)  # set up per-call state (the flow's base draws)
        fisher = self.posterior.model.fisher_precision()

        def direction(name, g, J):
            d = view.precondition(name, g)
            if name in ("log_scale", "log_sd"):  # curvature 2 + 2σ_d² Σ_k J_kd²/R_k; σ moves ≤ e^±½ per step
                lik_curv = view.log_scale_var() * (J.square() * fisher[:, None]).sum(1)
                return (d / (1 + lik_curv)).clamp(-0.5, 0.5)
            if name != "loc":
                return d
            cov_Jt = view.precondition("loc", J.reshape(-1, J.shape[-1])).reshape(J.shape)  # Σ J_nᵀ, [n, k, D]
            S = torch.diag_embed(fisher.reciprocal()) + cov_Jt @ J.transpose(1, 2)  # R + JΣJᵀ
            return d - torch.einsum("nkd,nk->nd", cov_Jt, torch.linalg.solve(S, torch.einsum("nkd,nd->nk", J, d)))

        for _ in range(self.steps):
            with torch.enable_grad():
                p = {k: v.detach().requires_grad_() for k, v in p.items()}
                loss = objective(p)
                grads = torch.autograd.grad(loss.sum(), list(p.values()))
            with torch.no_grad():
                p = {k: v.detach() for k, v in p.items()}
                J, _ = self._jacobian(p["loc"], x)  # at each transition's current mean: [n, k, D]
                step = {k: direction(k, g, J) for k, g in zip(p, grads)}
                accepted = torch.zeros(n, dtype=torch.bool, device=x.device)
                for _ in range(max_backtracks):
                    trial = {k: v - per_row(lr, v) * step[k] for k, v in p.items()}
                    finite = torch.stack([torch.isfinite(v).flatten(1).all(1) for v in trial.values()]).all(0)
                    trial = {k: torch.where(per_row(finite, v), v, p[k]) for k, v in trial.items()}
                    ok = (objective(trial) <= loss) & finite & ~accepted  # NaN/inf trials are rejected
                    p = {k: torch.where(per_row(ok, v), trial[k], v) for k, v in p.items()}
                    accepted |= ok
                    if bool(accepted.all()):
                        break
                    lr = torch.where(accepted, lr, lr / 4)
                lr = torch.where(accepted, (2 * lr).clamp(max=self.lr), lr)
        with torch.no_grad():
            return view.kl(p, eps)

    def _jacobian(self, theta: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """J_n = ∂f(x_n; θ_n)/∂θ at ``theta [D]`` (shared) or ``[n, D]`` (one per row of ``x [n, in]``)
        → (``[n, k, D]``, f ``[n, k]``), one backward pass per output coordinate."""
        n, k = x.shape[0], self.posterior.model.obs_dim
        with torch.enable_grad():
            t = theta.detach().expand(n, -1).clone().requires_grad_()
            f = self.posterior.model.mean(t, x[:, None, :])[:, 0, :]  # [n, k]
            J = torch.stack([torch.autograd.grad(f[:, j].sum(), t, retain_graph=j < k - 1)[0]
                             for j in range(k)], 1)
        return J, f.detach()

    def _linearized(self, view, x, y, noise):
        model = self.posterior.model
        n, k = x.shape[0], model.obs_dim
        J, f = self._jacobian(view.params["loc"], x)  # at μ: [n, k, D], [n, k]
        cov_Jt = view.cov_times(J.reshape(n * k, -1).T).T.reshape(n, k, -1)
        G = torch.bmm(cov_Jt, J.transpose(1, 2)).double()  # J Σ Jᵀ, [n, k, k]
        R = torch.diag_embed(noise.double().square()).expand(n, k, k)
        S = R + G
        r = (y - f).double()
        S_inv_G = torch.linalg.solve(S, G)
        S_inv_r = torch.linalg.solve(S, r.unsqueeze(-1))
        mahalanobis = (S_inv_r.transpose(1, 2) @ G @ S_inv_r).reshape(n)
        ig = 0.5 * (torch.logdet(S) - 2 * noise.double().log().sum()
                    - S_inv_G.diagonal(dim1=1, dim2=2).sum(-1) + mahalanobis)
        return ig

    # ------------------------------------------------------------------------------ refit
    @uses_threads
    def update(self, transitions: Transitions, steps: int = 100, progress: bool = False, *,
               lr: float | None = None, seed: int | None = None) -> "InfoGain":
        """Refit q(θ) on ``transitions`` by SVI, warm-started at the current posterior (VIME Alg. 1).

        The model's normalisation first follows the data and q is re-expressed in the new units
        (:meth:`Posterior.renormalize`); then ``steps`` SVI steps at a constant step size ``lr``
        (default: the family's final step size ``lr · lr_decay``, where its first fit ended).
        ``seed`` seeds the refit (default: this object's seed plus the number of refits so far);
        the common random numbers that score transitions stay those of ``self.seed``."""
        from .svi import fit

        spec = self.posterior.inference
        spec = spec.replace(lr=spec.lr * spec.lr_decay if lr is None else float(lr), lr_decay=1.0)
        self.refits += 1
        self.posterior = fit(self.posterior.model, spec, transitions, steps=steps,
                             seed=self.seed + self.refits if seed is None else seed,
                             device=self.posterior.device, progress=progress, init=self.posterior)
        return self
