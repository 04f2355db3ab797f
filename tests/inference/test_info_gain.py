"""VIME information gain against the conjugate update of LinearGaussianDynamics, plus the
properties the reward relies on (far data is more informative, batched = looped)."""
import pytest
import torch
from scipy.stats import spearmanr

import pprl
from pprl.inference.info_gain import InfoGain
from pprl.inference.families import laplace_guide, make_family
from pprl.spec import as_inference_spec
from tests.conftest import linear_system

MODEL = {"type": "linear_gaussian", "prior": {"weight_scale": 1.0}, "likelihood": {"noise_scale": 0.1}}


@pytest.fixture(scope="module")
def conjugate():
    """A float64 linear-Gaussian model, its exact posterior after 30 transitions, 30 candidates
    and their exact information gains KL[p(θ | D ∪ {t}) ‖ p(θ | D)] (closed form)."""
    data = linear_system(60, seed=1)
    train, cand = data[:30], data[30:]
    model = pprl.build_model(MODEL, train.obs_dim, train.act_dim).double()
    model.fit_normalizer(train)
    old = model.exact_posterior(train)
    exact = torch.stack([torch.distributions.kl_divergence(
        model.exact_posterior(pprl.Transitions.concat([train, cand[i:i + 1]])), old) for i in range(len(cand))])
    return model, old, cand, exact


def full_rank_posterior(model, mvn):
    return pprl.Posterior(make_family(as_inference_spec("full_rank"), model, laplace_guide(model, mvn.loc, mvn.scale_tril)))


def mean_field_posterior(model, mvn):
    """The mean-field family's optimum for a Gaussian target: its mean and 1/diag(precision)."""
    q = make_family(as_inference_spec("mean_field"))
    guide = q.load_guide(model)
    guide.locs.theta = mvn.loc.clone()
    guide.scales.theta = mvn.precision_matrix.diagonal().rsqrt()
    return pprl.Posterior(q)


@pytest.mark.parametrize("solver, options", [("linearized", {}), ("gradient", {"steps": 30, "num_samples": 64})])
def test_update_equals_conjugate_kl(conjugate, solver, options):
    model, old, cand, exact = conjugate
    ig = InfoGain(full_rank_posterior(model, old), solver=solver, **options)(cand)
    assert ig.dtype == torch.float64 and ig.shape == (len(cand),)
    torch.testing.assert_close(ig, exact, rtol=1e-4, atol=0)


def test_second_order_ranks_like_exact_kl(conjugate):
    model, old, cand, exact = conjugate
    approx = InfoGain(mean_field_posterior(model, old), method="second_order", num_samples=64)(cand)
    assert spearmanr(approx.numpy(), exact.numpy()).statistic >= 0.9


def test_mean_field_gradient_update_matches_its_closed_form(conjugate):
    """For a diagonal q the best diagonal update has precision diag(Λ + JᵀR⁻¹J) and the exact
    updated mean, so its KL to q is known; the batched gradient solver must find it."""
    model, old, cand, _ = conjugate
    post = mean_field_posterior(model, old)
    loc, var = post.guide.locs.theta.detach(), post.guide.scales.theta.detach().square()
    x = torch.cat([model.inputs(cand.obs, cand.act), torch.ones(len(cand), 1, dtype=torch.float64)], -1)
    k, out = x.shape[1], model.obs_dim
    J = torch.zeros(len(cand), out, k * out, dtype=torch.float64)  # f = J θ for the linear model
    for j in range(out):
        J[:, j, torch.arange(k) * out + j] = x
    R_inv = model.noise_scale.double().pow(-2)
    y = model.targets(cand.obs, cand.next_obs)
    target_prec = torch.diag(1 / var) + torch.einsum("nid,i,nie->nde", J, R_inv, J)
    target_mean = torch.linalg.solve(target_prec, (loc / var + torch.einsum("nid,i,ni->nd", J, R_inv, y))[..., None])[..., 0]
    new_var = 1 / target_prec.diagonal(dim1=1, dim2=2)
    expected = 0.5 * ((new_var + (target_mean - loc).square()) / var - 1 - (new_var / var).log()).sum(-1)
    ig = InfoGain(post, steps=60, num_samples=64)(cand)
    torch.testing.assert_close(ig, expected, rtol=1e-3, atol=0)


@pytest.fixture(scope="module")
def bnn_posterior(pendulum):
    train, _ = pendulum
    return pprl.fit("models/bnn_dynamics.yaml", {"family": "mean_field", "steps": 300}, train[:2000], progress=False)


def shifted(t, scale):
    """The same transitions with states (and their successors) scaled far from the data."""
    return pprl.Transitions(t.obs * scale, t.act, t.next_obs * scale, t.reward, t.terminated, t.truncated)


@pytest.mark.parametrize("num_samples", [2, 8])
def test_factored_second_order_equals_per_transition_gradients(bnn_posterior, pendulum, num_samples):
    """The Gram-form quadratic (no per-transition gradients) equals ½ Σ_d H_d⁻¹ g_nd² computed
    from explicit vmap(grad) gradients, in float64 so the comparison is tight."""
    from pprl.inference.info_gain import common_noise, posterior_view

    _, test = pendulum
    post = pprl.Posterior(make_family(bnn_posterior.inference, bnn_posterior.model.double(), bnn_posterior.guide.double()))
    try:
        ig = InfoGain(post, method="second_order", num_samples=num_samples, step_size=0.5)
        data = test[:40].to(post.device)
        model = post.model
        x = model.inputs(data.obs.double(), data.act.double())
        y = model.targets(data.obs.double(), data.next_obs.double())
        view = posterior_view(post)
        eps = common_noise(num_samples, view.noise_dim, 0, x.device, x.dtype)
        noise = model.noise_scale.detach()
        factored = ig._second_order(view, x, y, noise, eps)
        explicit = ig._second_order_autodiff(view, x, y, noise, eps)
        assert factored.dtype == torch.float64 and bool((factored > 0).all())
        torch.testing.assert_close(factored, explicit, rtol=1e-10, atol=0)
    finally:
        bnn_posterior.model.float(), bnn_posterior.guide.float()


def identity_flow_posterior(model, loc, scale):
    """The flow family at its initialisation (couplings are the identity) with the final affine
    set to (loc, scale): exactly the mean-field Gaussian N(loc, diag scale²)."""
    q = make_family(as_inference_spec("flow"))
    q.load_guide(model)
    with torch.no_grad():
        q.affine.loc.copy_(loc), q.affine.raw_scale.copy_(scale.expm1().log())
    return pprl.Posterior(q)


def test_flow_update_equals_mean_field_update_when_the_flow_is_gaussian(conjugate):
    """With identity couplings the flow is the mean-field Gaussian; with whitened antithetic
    noise its Monte-Carlo KL (and the expected log-likelihood of the linear model) is exact, so
    the flow update must reproduce the closed-form mean-field update."""
    model, old, cand, _ = conjugate
    mf = mean_field_posterior(model, old)
    flow = identity_flow_posterior(model, mf.guide.locs.theta.detach(), mf.guide.scales.theta.detach())
    options = {"steps": 20, "num_samples": 64}
    expected = InfoGain(mf, **options)(cand)
    got = InfoGain(flow, **options)(cand)
    assert bool((expected > 1e-3).all())
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=0)


@pytest.fixture(scope="module")
def flow_posterior():
    """A trained (non-Gaussian) flow posterior of the linear-Gaussian model on 200 transitions."""
    data = linear_system(300, seed=3)
    post = pprl.fit(MODEL, {"family": "flow", "steps": 400, "lr": 0.01}, data[:200], seed=0, progress=False)
    return post, data[200:]


def test_flow_info_gain_far_exceeds_near_and_batches_exactly(flow_posterior):
    """A trained flow: the Monte-Carlo KL is noisy at the 1e-3-nat level (it can dip below 0
    for uninformative transitions), far transitions must still stand out well above it."""
    post, test = flow_posterior
    ig = InfoGain(post, steps=5, num_samples=64, chunk_size=8)
    near, far = ig(test[:20]), ig(shifted(test[:20], 4.0))
    assert bool(torch.isfinite(near).all() and torch.isfinite(far).all())
    assert far.median() > 10 * near.abs().median() and (far > near).float().mean() >= 0.75
    looped = torch.cat([ig(test[i:i + 1]) for i in range(20)])
    torch.testing.assert_close(near, looped, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("options", [{"method": "second_order"}, {"solver": "linearized"},
                                     {"steps": 3, "num_samples": 2}])
def test_far_transition_gains_more(bnn_posterior, pendulum, options):
    _, test = pendulum
    inside = test[:64]
    ig = InfoGain(bnn_posterior, **options)
    near, far = ig(inside), ig(shifted(inside, 4.0))
    assert (far > near).float().mean() >= 0.95
    assert far.median() > 10 * near.median()


@pytest.mark.parametrize("options", [{"method": "second_order"}, {"solver": "linearized"},
                                     {"steps": 3, "num_samples": 2}])
def test_batched_equals_per_transition_loop(bnn_posterior, pendulum, options):
    _, test = pendulum
    batch = test[:24]
    ig = InfoGain(bnn_posterior, chunk_size=16, **options)
    batched = ig(batch)
    looped = torch.cat([ig(batch[i:i + 1]) for i in range(len(batch))])
    torch.testing.assert_close(batched, looped, rtol=1e-5, atol=1e-7)


def test_refit_on_new_data_lowers_their_gain(bnn_posterior, pendulum):
    train, test = pendulum
    far = shifted(test[:256], 2.0)
    ig = InfoGain(bnn_posterior, method="second_order")
    before = ig(far).median()
    ig.update(pprl.Transitions.concat([train[:2000], far]), steps=300)
    assert ig.posterior.model is bnn_posterior.model  # warm start: same model and normalisation
    assert ig(far).median() < 0.2 * before


@pytest.mark.parametrize("family, method, message", [
    ("map", "update", "undefined for the 'map' family"),
    ("full_rank", "second_order", r"not available for the 'full_rank' family \(families with it: mean_field\)"),
    ("flow", "second_order", r"not available for the 'flow' family \(families with it: mean_field\)"),
    ("flow", "linearized", "solver='linearized' is not available for the 'flow' family with method='update'; "
                           "allowed: gradient"),
])
def test_unsupported_combinations_fail_clearly(family, method, message):
    model = pprl.build_model(MODEL, 2, 1)
    spec = as_inference_spec(family)
    q = make_family(spec)
    q.load_guide(model)
    post = pprl.Posterior(q)
    options = {"solver": "linearized"} if method == "linearized" else {"method": method}
    with pytest.raises(ValueError, match=message):
        InfoGain(post, **options)


def test_bad_arguments_fail_clearly(conjugate):
    model, old, _, _ = conjugate
    post = full_rank_posterior(model, old)
    with pytest.raises(ValueError, match="allowed: update, second_order"):
        InfoGain(post, method="exact")
    with pytest.raises(ValueError, match="steps must be >= 1"):
        InfoGain(post, steps=0)


@pytest.mark.parametrize("family", ["mean_field", "low_rank", "full_rank"])
def test_gradient_solver_matches_the_exact_update_for_surprising_transitions(family):
    """For linear-Gaussian dynamics the linearized update is exact, so the damped-Newton gradient
    solver must reach it for every Gaussian family, from a typical transition to one 100 units off."""
    data = linear_system(100, seed=0)
    shift = torch.tensor([[0.0, 0.0], [1.0, 0.0], [10.0, -5.0], [100.0, 50.0]])
    moved = pprl.Transitions(data.obs[:4], data.act[:4], data.next_obs[:4] + shift, data.reward[:4],
                             data.terminated[:4], data.truncated[:4])
    model = pprl.build_model({"type": "linear_gaussian", "normalize": True}, data.obs_dim, data.act_dim)
    post = pprl.fit(model, family, data, steps=200, seed=0, progress=False)
    exact = InfoGain(post, solver="linearized")(moved)
    gradient = InfoGain(post, solver="gradient", steps=10, num_samples=64)(moved)
    assert (exact[1:] > exact[:-1]).all()
    torch.testing.assert_close(gradient, exact, rtol=2e-2, atol=0)
