"""Issue 15: Bayesian transition weights inside a latent model (``transition.bayesian: true``).

The weights θ of z_{t+1} = z_t + f(z_t, a_t; θ) + s ε are a global latent with q(θ) = N(μ, diag σ²)
in the guide. Checked here: the ELBO counts KL(q(θ) ‖ p(θ)) once, unscaled by the plate (Pyro's
Monte-Carlo ELBO against the closed-form one); with near-noiseless observations of a linear-Gaussian
system the fitted q(θ) is the mean-field optimum of the exact Bayesian linear regression of the codes
z_{t+1} − z_t on (z_t, a_t, 1) (exact mean, variances 1/diag Λ); q(θ) carries over to a ``bnn``
dynamics posterior on the codes, whose VIME information gain is larger for a transition unlike the
data; checkpoints, specs and clear errors.
"""
import math

import pytest
import torch
from pyro.infer import Trace_ELBO

import pprl
from pprl.data import Transitions
from pprl.data.sequences import Sequences
from pprl.empowerment import LatentModelChannel
from pprl.inference.amortised import AmortisedGuide
from pprl.inference.info_gain import InfoGain
from pprl.inference.latent_fit import analytic_terms
from pprl.inference.latent_posterior import load_latent_posterior
from pprl.models.latent import build_latent_model
from pprl.rng import seeded
from pprl.spec import SpecError, parse_model_spec

pytestmark = pytest.mark.usefixtures("single_thread")

SPEC = {"type": "latent", "observation": {"kind": "vector", "size": 2}, "latent_size": 2,
        "encoder": {"type": "linear"}, "decoder": {"type": "linear"},
        "transition": {"type": "linear", "bayesian": True, "prior": {"weight_scale": 1.0, "bias_scale": 1.0}},
        "likelihood": {"type": "normal", "scale": 0.01, "learn_scale": False}, "guide": "smoothing",
        "sequence_length": 5}


def simulate(n: int = 100, T: int = 6, obs_noise: float = 0.01, seed: int = 0) -> Sequences:
    """n sequences of z' = A z + B a + b + N(0, 0.3² I), o = C z + N(0, obs_noise² I), z_0 ~ N(0, I)."""
    g = torch.Generator().manual_seed(seed)
    A = 0.9 * torch.tensor([[math.cos(0.3), -math.sin(0.3)], [math.sin(0.3), math.cos(0.3)]])
    B, b, C = torch.tensor([[0.5], [0.2]]), torch.tensor([0.1, -0.1]), torch.tensor([[1.0, 0.3], [-0.4, 0.8]])
    z, act = torch.randn(n, 2, generator=g), torch.rand(n, T - 1, 1, generator=g) * 2 - 1
    obs = []
    for t in range(T):
        obs.append(z @ C.T + obs_noise * torch.randn(n, 2, generator=g))
        if t < T - 1:
            z = z @ A.T + act[:, t] @ B.T + b + 0.3 * torch.randn(n, 2, generator=g)
    return Sequences(torch.stack(obs, 1), act)


@pytest.fixture(scope="module")
def fitted():
    data = simulate()
    post = pprl.fit(SPEC, {"family": "mean_field", "lr": 0.02, "lr_decay": 0.01, "batch_size": 100}, data,
                    steps=1500, progress=False, seed=0)
    return post, data


def code_transitions(post, data) -> Transitions:
    """(z_t, a_t, z_{t+1}) with z the smoothing guide's means."""
    loc, _ = post.encode(data.obs, data.act)
    return Transitions(loc[:, :-1].reshape(-1, 2), data.act.reshape(-1, 1), loc[:, 1:].reshape(-1, 2))


def test_monte_carlo_elbo_counts_the_weights_kl_once_and_unscaled():
    """E_q[log p(o, z, θ) − log q(z, θ)] by Pyro's Trace_ELBO equals the closed-form local terms scaled
    by N/B minus KL(q(θ) ‖ p(θ)), not scaled. Each Monte-Carlo draw is paired with the closed-form
    terms at the same draw of (θ, z) (same seed, the guide runs first in both), so their difference
    has mean 0: within 4 standard errors, while dropping the KL, or scaling it by N/B, would be
    more than 20 standard errors off."""
    data = simulate(n=8)
    with seeded(0):
        model = build_latent_model({**SPEC, "likelihood": {"type": "normal", "scale": 0.3}}, 1)
        guide = AmortisedGuide(model.spec, 1, weights_init_scale=0.01)
    N, diffs = 16, []  # the minibatch of 8 stands for 16 sequences
    with torch.no_grad():
        for i in range(2000):
            with seeded(i):
                mc = -Trace_ELBO().loss(model, guide, data.obs, data.act, N)
            with seeded(i):
                t = analytic_terms(model, guide, data.obs, data.act, N)
            diffs.append(mc - float((t.rec.sum() - t.kl.sum()) * N / 8 - t.weights_kl))
    diffs, weights_kl = torch.tensor(diffs, dtype=torch.float64), float(t.weights_kl)
    se = float(diffs.std() / math.sqrt(len(diffs)))
    print(f"Monte-Carlo minus closed-form ELBO {float(diffs.mean()):.3f} ± {se:.3f}; KL(q(θ) ‖ p(θ)) {weights_kl:.2f}")
    assert abs(float(diffs.mean())) < 4 * se
    assert weights_kl > 20 * se


def test_q_theta_is_the_mean_field_optimum_of_bayesian_linear_regression_on_the_codes(fitted):
    """Observations 30× less noisy than the transition: the codes are nearly exact, and the ELBO's θ
    part is the Bayesian linear regression of z_{t+1} − z_t on [z_t, a_t, 1] with noise s_j per
    output (the fitted scale) and prior N(0, I). Its mean-field optimum has the exact posterior mean
    and variances 1/Λ_dd, Λ = I + XᵀX/s_j². The fit's μ is within 0.5 posterior standard deviations
    of that mean and its σ within 15% of √(1/Λ_dd), for all 8 weights."""
    post, data = fitted
    assert post.elbo_trace[-50:].mean() > post.elbo_trace[:50].mean()
    tr = code_transitions(post, data)
    s = (torch.nn.functional.softplus(post.model.transition_scale_raw.detach()) + 0.01).double()
    X = torch.cat([tr.obs, tr.act, torch.ones(len(tr), 1)], -1).double()
    Y = (tr.next_obs - tr.obs).double()
    mean, sd = torch.zeros(4, 2, dtype=torch.float64), torch.zeros(4, 2, dtype=torch.float64)
    for j in range(2):
        lam = torch.eye(4, dtype=torch.float64) + X.T @ X / s[j] ** 2
        mean[:, j] = torch.linalg.solve(lam, X.T @ Y[:, j] / s[j] ** 2)
        sd[:, j] = torch.diag(lam).reciprocal().sqrt()
    mu = post.transition_weights().view(4, 2).double()  # rows z_1, z_2, a, bias; columns the outputs
    sigma = post.guide.weights_scale.detach().view(4, 2).double()
    print("z-scores of μ:", ((mu - mean) / sd).flatten().tolist(), "σ / exact:", (sigma / sd).flatten().tolist())
    assert ((mu - mean).abs() / sd).max() < 0.5
    assert ((sigma / sd) - 1).abs().max() < 0.15


def test_transition_posterior_is_the_same_function_and_its_information_gain_ranks_novelty(fitted):
    """The ``bnn`` posterior on the codes computes the latent transition's mean change for any θ and
    holds the fitted q(θ); its VIME information gain (the exact conjugate update for this linear
    model, solver ``linearized``) is small for transitions like the data and large for actions four
    times outside the data's range."""
    post, data = fitted
    tp = post.transition_posterior()
    assert tp.family == "mean_field"
    torch.testing.assert_close(tp.q.loc, post.transition_weights())
    torch.testing.assert_close(tp.q.scale, post.guide.weights_scale.detach())
    theta = torch.randn(3, tp.model.param_dim)
    z, a = torch.randn(5, 2), torch.randn(5, 1)
    f = tp.model.mean(theta, tp.model.inputs(z, a))  # [3, 5, 2]
    for i in range(3):
        loc, _ = post.model.transition_loc_scale(z, a, theta[i])
        torch.testing.assert_close(f[i], loc - z)
    tr = code_transitions(post, data)
    seen = InfoGain(tp, solver="linearized")(tr[:200])
    far = tr[:200]
    far = Transitions(far.obs, torch.full_like(far.act, 4.0), far.next_obs)
    novel = InfoGain(tp, solver="linearized")(far)
    print(f"information gain (nats): seen {float(seen.mean()):.4f}, novel actions {float(novel.mean()):.4f}")
    assert (seen >= 0).all() and seen.mean() < 0.05
    assert novel.mean() > 10 * seen.mean()


def test_predict_uses_q_theta_and_checkpoints_round_trip(fitted, tmp_path):
    """predict rolls out with μ (or one θ ~ q per sequence with ``sample``); save/load keeps q(θ); the
    latent-model empowerment channel runs at μ."""
    post, data = fitted
    mean_pred = post.predict(data.obs[:4, 0], data.act[:4])
    z0, _ = post.encode(data.obs[:4, :1])
    manual = post.model.decode_mean(post.model.rollout(z0[:, 0], data.act[:4], theta=post.transition_weights()))
    torch.testing.assert_close(mean_pred, manual)
    draws = post.predict(data.obs[:4, 0], data.act[:4], sample=True, seed=1)
    with seeded(1):  # one θ ~ q per sequence, then the transition noise: predict's own order of draws
        theta = post.transition_weights(4)
        z = post.model.rollout(z0[:, 0], data.act[:4], sample=True, theta=theta)
    torch.testing.assert_close(draws, post.model.decode_mean(z))
    assert not torch.allclose(theta[0], theta[1])
    same_start = z0[:1, 0].expand(2, -1)
    apart = post.model.rollout(same_start, data.act[:1].expand(2, -1, -1), theta=theta[:2])
    assert not torch.allclose(apart[0], apart[1])  # the weights alone move identical rollouts apart
    again = load_latent_posterior(post.save(tmp_path / "post.pt"))
    torch.testing.assert_close(again.transition_weights(), post.transition_weights())
    torch.testing.assert_close(again.predict(data.obs[:4, 0], data.act[:4]), mean_pred)
    channel = LatentModelChannel(post, [-1.0], [1.0])
    z = z0[:, 0].double()
    out = channel.rollout(z, torch.ones(4, 1, 1, dtype=torch.float64), torch.zeros(4, 1, 2, dtype=torch.float64))
    loc, _ = post.model.transition_loc_scale(z0[:, 0], torch.ones(4, 1), post.transition_weights())
    torch.testing.assert_close(out.float(), loc, rtol=1e-5, atol=1e-5)


def test_held_out_elbo_leaves_out_the_weights_kl_and_metrics_report_it(fitted):
    """The ELBO on data with the weights' KL spread over it is the one without it minus KL/(N·T);
    latent_metrics reports the latter (comparable across data sets) and the KL on its own."""
    post, data = fitted
    kl = float(torch.distributions.kl_divergence(post.guide.weights_distribution(), post.model.weights_prior()))
    with_kl, without = post.elbo(data, seed=0), post.elbo(data, seed=0, weights_kl=False)
    assert kl > 1.0
    assert with_kl == pytest.approx(without - kl / (len(data) * data.length), rel=1e-5)
    from pprl.inference.latent_fit import latent_metrics
    metrics = latent_metrics(post, data, horizon=5, num_particles=8)
    assert metrics["weights_kl"] == pytest.approx(kl, rel=1e-5) and not metrics["elbo_includes_weights_kl"]
    assert metrics["elbo_per_step"] == pytest.approx(without, rel=1e-5)


def test_mlp_bayesian_transition_fits_and_scores_with_the_gradient_solver():
    """An MLP transition with Bayesian weights (fan-in prior) on the same data: the ELBO rises, and
    VIME's gradient-solver and second-order information gains of the code transitions are finite
    and non-negative."""
    spec = {**SPEC, "transition": {"type": "mlp", "hidden_sizes": [16], "bayesian": True}}
    data = simulate(n=40)
    post = pprl.fit(spec, {"family": "mean_field", "lr": 0.01, "batch_size": 40}, data, steps=200,
                    progress=False, seed=0)
    assert torch.isfinite(post.elbo_trace).all() and post.elbo_trace[-20:].mean() > post.elbo_trace[:20].mean()
    tp = post.transition_posterior()
    tr = code_transitions(post, data)[:50]
    for method, solver in (("update", "gradient"), ("second_order", "gradient")):
        ig = InfoGain(tp, method, solver=solver, steps=3)(tr)
        assert torch.isfinite(ig).all() and (ig >= -1e-6).all()


def test_spec_round_trip_and_errors():
    spec = parse_model_spec({**SPEC, "transition": {"type": "mlp", "hidden_sizes": [8], "bayesian": True,
                                                    "prior": {"weight_scale": "fan_in", "bias_scale": 0.5}}})
    assert spec.transition.bayesian and spec.transition.prior.bias_scale == 0.5
    assert parse_model_spec(spec.to_dict()).transition == spec.transition
    assert "bayesian" not in parse_model_spec({**SPEC, "transition": {"type": "linear"}}).to_dict()["transition"]
    bad = [({"type": "none", "bayesian": True}, "has no weights"),
           ({"type": "mlp", "prior": {"weight_scale": 1.0}}, "set transition.bayesian: true"),
           ({"type": "mlp", "bayesian": True, "prior": {"weight_scale": "wide"}}, "transition.prior.weight_scale"),
           ({"type": "mlp", "bayesian": "yes"}, "transition.bayesian")]
    for transition, message in bad:
        with pytest.raises(SpecError, match=message):
            parse_model_spec({**SPEC, "guide": "per_step", "transition": transition})
    with seeded(0):
        model = build_latent_model(SPEC, 1)
    with pytest.raises(ValueError, match="needs its weights theta"):
        model.transition_loc_scale(torch.zeros(1, 2), torch.zeros(1, 1))
    with pytest.raises(ValueError, match="not Bayesian"):
        model.linear_gaussian_parameters()
    plain = pprl.fit({**SPEC, "transition": {"type": "linear"}}, {"family": "mean_field"}, simulate(n=4),
                     steps=1, progress=False)
    with pytest.raises(ValueError, match="point-estimate transition weights"):
        plain.transition_posterior()
