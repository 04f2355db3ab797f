"""Latent overshooting (Hafner et al. 2019) in the latent-model objective (issue 15): each d-step
term against its closed form on a linear-Gaussian transition, what its gradient reaches, and a fit
that keeps reporting the plain ELBO."""
import pytest
import torch
import pyro.distributions as dist
from torch.distributions import kl_divergence

import pprl
from pprl.inference.amortised import AmortisedGuide
from pprl.inference.latent_fit import analytic_loss, analytic_terms, make_objective, overshooting_kl
from pprl.models.kalman import kalman_log_likelihood
from pprl.models.latent import build_latent_model
from pprl.rng import seeded

from tests.inference.test_latent_fit import INFERENCE, LGSSM, simulate_lgssm

pytestmark = pytest.mark.usefixtures("single_thread")


def _linear_model():
    """A linear transition z' = A z + B a + b + N(0, diag s²) with chosen A, B, b, s (dz = 2, da = 1)."""
    with seeded(0):
        model = build_latent_model(LGSSM, act_dim=1)
    with torch.no_grad():
        model.transition.weight.copy_(torch.tensor([[0.9, -0.3, 0.5], [0.2, 0.8, -0.4]]))
        model.transition.bias.copy_(torch.tensor([0.1, -0.2]))
        model.transition_scale_raw.copy_(torch.tensor([0.3, -0.5]))
    return model


def test_each_overshooting_term_is_the_expected_kl_to_the_open_loop_prior():
    """From z_s, d − 1 draws of the linear transition give z_{s+d−1} ~ N(m, S) with m, S by the Kalman
    prediction recursion (no updates); the d-step prior is N(A z_{s+d−1} + B a_{s+d−1} + b, Q), so
    E KL(q_{s+d} ‖ prior) = KL(q_{s+d} ‖ N(A m + B a + b, Q)) + ½ Σ_i (A S Aᵀ)_ii / Q_ii.
    The Monte-Carlo mean of every term (T = 5, D = 4: starts s and distances d both) must match."""
    model = _linear_model()
    T, D, M = 5, 4, 40_000
    g = torch.Generator().manual_seed(3)
    starts, acts = torch.randn(T, 2, generator=g), torch.randn(T - 1, 1, generator=g)
    q_loc, q_scale = torch.randn(T, 2, generator=g), 0.3 + torch.rand(T, 2, generator=g)
    z = starts[:, None].expand(T, M, 2)
    pairs = [(dist.Normal(q_loc[t].expand(M, 2), q_scale[t].expand(M, 2)), None) for t in range(T)]
    act = acts[None].expand(M, T - 1, 1)
    with seeded(1), torch.no_grad():
        terms = overshooting_kl(model, z, pairs, act, D)
    assert [tuple(t.shape) for t in terms] == [(T - d, M) for d in range(2, D + 1)]

    W, b = model.transition.weight.detach(), model.transition.bias.detach()
    A, Bm = W[:, :2], W[:, 2:]
    Q = torch.diag(torch.nn.functional.softplus(model.transition_scale_raw.detach()) ** 2)
    for d in range(2, D + 1):
        for s in range(T - d):
            m, S = starts[s], torch.zeros(2, 2)
            for k in range(1, d):
                m, S = A @ m + Bm @ acts[s + k - 1] + b, A @ S @ A.T + Q
            mu = A @ m + Bm @ acts[s + d - 1] + b
            exact = (kl_divergence(dist.Normal(q_loc[s + d], q_scale[s + d]), dist.Normal(mu, Q.diagonal().sqrt())).sum()
                     + 0.5 * ((A @ S @ A.T).diagonal() / Q.diagonal()).sum())
            draws = terms[d - 2][s]
            err = 4 * float(draws.std()) / M ** 0.5
            assert float(draws.mean()) == pytest.approx(float(exact), abs=err), (d, s)


def test_overshooting_trains_the_transition_towards_the_guide_not_the_guide_towards_it():
    """The targets q(z_{s+d}) are held fixed: the overshooting terms' gradient reaches the transition
    and, through the start draw z_s only, the guide. The added loss is N × β × the mean over
    d = 2 … D of Σ_s (the minibatch mean of the term), and the ELBO reported beside it is unchanged."""
    data, _ = simulate_lgssm(n=8)
    model = _linear_model()
    with seeded(0):
        guide = AmortisedGuide(model.spec, 1)
    with seeded(1):
        loss0, neg0 = analytic_loss(model, guide, data.obs, data.act, 8)
    with seeded(1):
        loss3, neg3 = analytic_loss(model, guide, data.obs, data.act, 8, overshooting=3, overshooting_scale=0.5)
    assert float(neg3) == pytest.approx(float(neg0), rel=1e-6)  # same draw of z: the same plain ELBO
    with seeded(1):
        _, _, pairs, z, _, _ = analytic_terms(model, guide, data.obs, data.act, 8)
        # analytic_loss draws the overshooting rollout right after the guide's draw: the same noise here
        terms = overshooting_kl(model, z, pairs, data.act, 3)
    expected = 8 * 0.5 * sum(t.mean(1).sum() for t in terms) / 2
    assert float((loss3 - loss0).detach()) == pytest.approx(float(expected.detach()), rel=1e-5)

    last = pairs[-1][0].loc  # the last step is only ever a target, never a start
    last.retain_grad()
    sum(t.sum() for t in overshooting_kl(model, z, pairs, data.act, 3)).backward()
    assert last.grad is None or not last.grad.any()  # the targets are detached
    assert model.transition.weight.grad.abs().sum() > 0 and model.transition_scale_raw.grad.abs().sum() > 0


def test_the_fit_objective_follows_the_specs_overshooting():
    """make_objective (what pprl.fit steps) of a spec with overshooting D, β gives the gradient of
    analytic_loss(..., D, β), not that of the plain ELBO."""
    data, _ = simulate_lgssm(n=8)

    def gradient(spec, **kw):
        with seeded(0):
            model = build_latent_model(spec, act_dim=1)
            guide = AmortisedGuide(model.spec, 1)
        with seeded(1):
            if kw:
                analytic_loss(model, guide, data.obs, data.act, 8, **kw)[0].backward()
            else:
                make_objective(model, guide)(data.obs, data.act, 8)
        return torch.cat([p.grad.reshape(-1) for p in [*model.transition.parameters(), model.transition_scale_raw]])

    spec = {**LGSSM, "guide": "filtering", "overshooting": 3, "overshooting_scale": 0.5}
    fitted = gradient(spec)
    assert torch.allclose(fitted, gradient(spec, overshooting=3, overshooting_scale=0.5), atol=1e-6)
    assert not torch.allclose(fitted, gradient(spec, overshooting=0), atol=1e-3)


def test_fit_with_overshooting_reports_the_plain_elbo_below_the_kalman_likelihood():
    """Overshooting is a regulariser of the transition, not part of the bound: the fitted model's
    ELBO stays below its exact (Kalman) log-likelihood, and the training trace is the plain ELBO
    (its last values agree with a fresh estimate of the ELBO to Monte-Carlo error)."""
    data, _ = simulate_lgssm(n=200)
    spec = {**LGSSM, "guide": "filtering", "overshooting": 4}
    post = pprl.fit(spec, INFERENCE, data, steps=600, progress=False, seed=0)
    T = data.length
    ll = float(kalman_log_likelihood(data.obs, data.act, **post.model.linear_gaussian_parameters()).mean()) / T
    elbo = post.elbo(data, num_particles=16)
    assert elbo < ll
    assert ll - elbo < 0.25, (ll, elbo)
    assert float(post.elbo_trace[-50:].mean()) == pytest.approx(elbo, abs=0.1)


def test_windows_shorter_than_the_distance_are_refused():
    data, _ = simulate_lgssm(n=8, T=4)  # 3 transitions per window
    with pytest.raises(ValueError, match="overshooting distance 4 is longer than the data's windows .3 transitions"):
        pprl.fit({**LGSSM, "overshooting": 4}, INFERENCE, data, steps=1, progress=False)
