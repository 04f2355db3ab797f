"""A normaliser update re-expresses q(θ) exactly: the predictive at fixed raw inputs is unchanged."""
import pytest
import torch

import pprl
from pprl.inference.svi import elbo_per_transition
from tests.conftest import linear_system

pytestmark = pytest.mark.usefixtures("single_thread")
FAMILIES = ["mean_field", "low_rank", "full_rank", "flow", "map", "laplace"]
MODELS = {"bnn": {"type": "bnn", "hidden_sizes": [16, 16], "likelihood": {"learn_noise": True}},
          "linear": {"type": "linear_gaussian", "normalize": True}}


def widened(data: pprl.Transitions, obs_scale: float, target_scale: float, shift: float) -> pprl.Transitions:
    return pprl.Transitions(data.obs * obs_scale, data.act, data.next_obs * target_scale + shift,
                            data.reward, data.terminated, data.truncated)


def predictive_moments(post, obs, act, seed=1):
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        s = post.predict(obs, act, num_samples=64)
    return s.mean(0), s.var(0)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("kind", list(MODELS))
def test_renormalize_keeps_the_predictive(family, kind):
    data = linear_system(300, seed=0)
    model = pprl.build_model(MODELS[kind], data.obs_dim, data.act_dim).double()
    post = pprl.fit(model, family, _double(data),
                    steps=30, seed=0, progress=False)
    wide = _double(widened(data, 10.0, 30.0, 5.0))
    obs, act = wide.obs[:40], wide.act[:40]
    mean0, var0 = predictive_moments(post, obs, act)
    lp0 = post.log_predictive(wide[:40]) if family != "flow" else None
    in_std, out_std = model.input_norm.std.clone(), model.target_norm.std.clone()
    post.renormalize(wide)
    assert not torch.allclose(model.input_norm.std, in_std) and not torch.allclose(model.target_norm.std, out_std)
    mean1, var1 = predictive_moments(post, obs, act)
    torch.testing.assert_close(mean1, mean0, rtol=1e-5, atol=1e-5 * float(mean0.abs().max()))
    torch.testing.assert_close(var1, var0, rtol=1e-5, atol=1e-5 * float(var0.abs().max()))


def _double(data: pprl.Transitions) -> pprl.Transitions:
    return pprl.Transitions(data.obs.double(), data.act.double(), data.next_obs.double(),
                            data.reward, data.terminated, data.truncated)


def test_input_centre_is_kept_and_inputs_are_unit_rms():
    data = linear_system(400, seed=0)
    model = pprl.build_model(MODELS["bnn"], data.obs_dim, data.act_dim)
    model.fit_normalizer(data)
    centre = model.input_norm.mean.clone()
    wide = widened(data, 10.0, 30.0, 5.0)
    model.refit_normalizer(wide)
    torch.testing.assert_close(model.input_norm.mean, centre)
    x = model.inputs(wide.obs, wide.act)
    torch.testing.assert_close(x.square().mean(0), torch.ones(x.shape[1]), rtol=1e-4, atol=1e-4)
    y = model.targets(wide.obs, wide.next_obs)
    torch.testing.assert_close(y.mean(0), torch.zeros(y.shape[1]), rtol=0, atol=1e-4)


def test_elbo_per_transition_is_the_exact_elbo_for_a_conjugate_posterior():
    """At the exact posterior of a linear-Gaussian model the ELBO equals log p(data) (closed form)."""
    data = _double(linear_system(200, seed=3))
    model = pprl.build_model({"type": "linear_gaussian", "prior": {"weight_scale": 1.0},
                              "likelihood": {"noise_scale": 0.1}}, data.obs_dim, data.act_dim).double()
    model.fit_normalizer(data)
    exact = model.exact_posterior(data)
    from pprl.inference.families import laplace_guide, make_family
    from pprl.spec import as_inference_spec
    post = pprl.Posterior(make_family(as_inference_spec("full_rank"), model, laplace_guide(model, exact.loc, exact.scale_tril)))
    x = torch.cat([model.inputs(data.obs, data.act), torch.ones(len(data), 1, dtype=torch.float64)], -1)
    y = model.targets(data.obs, data.next_obs)
    log_evidence = 0.0  # per output column: y_j ~ N(0, σ_p² XXᵀ + σ² I)
    for j in range(model.obs_dim):
        cov = x @ x.T + 0.01 * torch.eye(len(data), dtype=torch.float64)
        log_evidence += torch.distributions.MultivariateNormal(torch.zeros(len(data), dtype=torch.float64),
                                                               cov).log_prob(y[:, j])
    expected = float(log_evidence) / len(data) + float(model.target_norm.log_abs_det())
    got = elbo_per_transition(post, data, num_particles=2000, seed=0)
    assert got == pytest.approx(expected, abs=0.02)


def test_a_feature_constant_at_first_gets_scale_one_not_a_blow_up():
    from pprl.models.normalizer import Normalizer

    norm = Normalizer(2)
    first = torch.stack([torch.linspace(-1, 1, 50), torch.full((50,), 3.0)], -1)
    norm.fit(first)
    assert norm.std[1] == 1.0  # constant so far: unit scale, not 1e-6
    later = torch.stack([torch.linspace(-1, 1, 50), torch.linspace(0, 6, 50)], -1)
    a, b = norm.refit(later, keep_mean=True)
    assert torch.isfinite(a).all() and a[1] == pytest.approx(1 / float(norm.std[1])) and a[1] < 1
    assert (b == 0).all()
