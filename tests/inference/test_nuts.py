"""NUTS reference posteriors: the NumPyro twin has the torch model's log joint, and NUTS recovers the
conjugate posterior of the linear-Gaussian model."""
import math

import arviz as az
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from numpyro.infer.util import log_density

import pprl
from pprl.inference.families import laplace_guide, make_family
from pprl.inference.mcmc import nuts
from pprl.spec import as_inference_spec
from pprl.inference.mcmc.numpyro_model import numpyro_model
from tests.conftest import linear_system

pytestmark = pytest.mark.usefixtures("single_thread")
LINEAR = {"type": "linear_gaussian", "prior": {"weight_scale": 1.0}, "likelihood": {"noise_scale": 0.3}}


@pytest.mark.parametrize("spec", ["bnn_dynamics", "bnn_dynamics_student_t", "linear_gaussian",
                                  {"type": "bnn", "hidden_sizes": [16, 8], "activation": "tanh"}])
def test_numpyro_twin_has_the_same_log_joint(spec):
    """log p(θ) + Σ_n log p(y_n | x_n, θ) from torch and from NumPyro at random θ (float32: 1e-5 relative)."""
    data = linear_system(300, obs_dim=3, act_dim=1, seed=4)
    model = pprl.build_model(spec, data.obs_dim, data.act_dim)
    model.fit_normalizer(data)
    x, y = model.inputs(data.obs, data.act), model.targets(data.obs, data.next_obs)
    theta = model.prior_scale * torch.randn(4, model.param_dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch_lj = model.prior().log_prob(theta) + model.log_likelihood(model.mean(theta, x), y).sum(-1)
    fn = numpyro_model(model)
    jax_lj = torch.tensor([float(log_density(fn, (jnp.asarray(x.numpy()), jnp.asarray(y.numpy())), {},
                                             {"theta": jnp.asarray(t.numpy())})[0]) for t in theta])
    torch.testing.assert_close(jax_lj, torch_lj, rtol=1e-5, atol=1e-3)


@pytest.fixture(scope="module")
def linear_nuts():
    data = linear_system(60, seed=2, noise=0.3)
    post = nuts(LINEAR, data, num_samples=500, num_warmup=400, num_chains=4, seed=0, progress=False)
    return post, data


def test_nuts_recovers_the_conjugate_posterior(linear_nuts):
    """Posterior means within 3 Monte-Carlo standard errors (ArviZ's MCSE), R-hat < 1.01, and the
    posterior standard deviations within 10% of the closed form."""
    post, data = linear_nuts
    exact = post.model.exact_posterior(data)
    theta = post.guide.theta.double().numpy()  # [chains, draws, D]
    idata = az.from_dict(posterior={"theta": theta})
    summary = az.summary(idata, kind="all", round_to="none")
    assert (summary["r_hat"] < 1.01).all(), summary["r_hat"].max()
    err = np.abs(summary["mean"].to_numpy() - exact.mean.numpy())
    assert (err < 3 * summary["mcse_mean"].to_numpy() + 1e-4).all(), (err / summary["mcse_mean"].to_numpy()).max()
    ratio = summary["sd"].to_numpy() / exact.variance.sqrt().numpy()
    assert np.all(np.abs(ratio - 1) < 0.1), ratio
    assert post.info["num_divergences"] == 0
    assert set(post.guide.stats()) >= {"diverging", "num_steps", "energy", "tree_depth", "accept_prob"}


def test_nuts_posterior_predicts_scores_and_round_trips(linear_nuts, tmp_path):
    post, data = linear_nuts
    assert post.family == "nuts" and post.q.num_params() == 0
    exact = post.model.exact_posterior(data)
    exact_post = pprl.Posterior(make_family(as_inference_spec("full_rank"), post.model,
                                            laplace_guide(post.model, exact.loc, exact.scale_tril)))
    assert abs(post.log_predictive(data, num_samples=500) - exact_post.log_predictive(data, num_samples=500)) < 0.02
    assert post.predict(data.obs[:3], data.act[:3], num_samples=7).shape == (7, 3, data.obs_dim)
    loaded = pprl.load_posterior(post.save(tmp_path / "nuts.pt"))
    torch.testing.assert_close(loaded.sample_theta(10, seed=3), post.sample_theta(10, seed=3))
    torch.testing.assert_close(loaded.guide.stats()["energy"], post.guide.stats()["energy"])


def test_fit_with_the_nuts_family_runs_the_sampler_and_seeds_it():
    data = linear_system(40, seed=3)
    spec = {"family": "nuts", "options": {"num_samples": 50, "num_warmup": 50, "num_chains": 2}}
    a = pprl.fit(LINEAR, spec, data, seed=5, progress=False)
    b = pprl.nuts(LINEAR, data, spec, seed=5, progress=False)
    c = pprl.nuts(LINEAR, data, spec, seed=6, progress=False)
    assert a.guide.theta.shape == (2, 50, a.model.param_dim)
    torch.testing.assert_close(a.guide.theta, b.guide.theta, rtol=0, atol=0)
    assert not torch.equal(a.guide.theta, c.guide.theta)
    with pytest.raises(ValueError, match="fitted by SVI"):
        pprl.nuts(LINEAR, data, "mean_field")
    with pytest.raises(ValueError, match="num_chains must be an integer >= 1"):
        pprl.nuts(LINEAR, data, num_chains=0)
    with pytest.raises(ValueError, match="undefined for the 'nuts' family"):
        a.q.log_q(a.sample_theta(2))


def test_predictive_summary_of_nuts_chains_has_converged(linear_nuts):
    from pprl.diagnostics.inference_data import predictive_summary

    post, data = linear_nuts
    summary = predictive_summary(post, data, max_points=20)
    assert len(summary) == 20 * data.obs_dim
    assert (summary["r_hat"] < 1.01).all() and (summary["ess_bulk"] > 400).all(), summary[["r_hat", "ess_bulk"]].describe()


def test_nuts_refuses_a_model_that_learns_its_noise():
    """SVI fits σ by maximum likelihood; NUTS would keep the initial σ: a different model."""
    data = linear_system(30, seed=1)
    with pytest.raises(ValueError, match="learn_noise: true"):
        pprl.nuts({"type": "bnn", "hidden_sizes": [4], "likelihood": {"learn_noise": True}}, data, num_samples=5,
                   num_warmup=5, num_chains=1, progress=False)
