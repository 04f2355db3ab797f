"""InferenceData for every posterior, PSIS k̂, coverage and LOO, checked on conjugate models."""
import arviz as az
import numpy as np
import pytest
import torch

import pprl
from pprl.inference.families import laplace_guide, make_family
from pprl.inference.families.base import assign
from pprl.spec import as_inference_spec
from tests.conftest import linear_system

pytestmark = [pytest.mark.usefixtures("single_thread"),
              pytest.mark.filterwarnings("ignore::UserWarning:arviz")]
LINEAR = {"type": "linear_gaussian", "prior": {"weight_scale": 1.0}, "likelihood": {"noise_scale": 0.1}}


def exact_posterior(model, data):
    mvn = model.exact_posterior(data)
    return pprl.Posterior(make_family(as_inference_spec("full_rank"), model, laplace_guide(model, mvn.loc, mvn.scale_tril)))


def mean_field_optimum(model, data):
    """argmin KL(q ‖ p) over diagonal Gaussians for a Gaussian p: p's mean and 1/diag(precision)."""
    mvn = model.exact_posterior(data)
    q = make_family(as_inference_spec("mean_field"))
    guide = q.load_guide(model)
    guide.locs.theta = mvn.loc.clone()
    guide.scales.theta = mvn.precision_matrix.diagonal().rsqrt()
    return pprl.Posterior(q)


def map_at(model, theta):
    q = make_family(as_inference_spec("map"))
    assign(q.load_guide(model), "theta", theta)
    return pprl.Posterior(q)


@pytest.fixture(scope="module")
def correlated():
    """A linear system whose two state inputs are almost collinear: a strongly correlated posterior."""
    data = linear_system(300, seed=5)
    obs = data.obs.clone()
    obs[:, 1] = obs[:, 0] + 0.05 * torch.randn(len(obs), generator=torch.Generator().manual_seed(0))
    data = pprl.Transitions(obs, data.act, data.next_obs, data.reward, data.terminated, data.truncated)
    model = pprl.build_model(LINEAR, data.obs_dim, data.act_dim)
    model.fit_normalizer(data)
    return model, data


def test_pareto_k_ranks_mean_field_below_the_exact_posterior(correlated):
    model, data = correlated
    exact_k = exact_posterior(model, data).pareto_k(data, num_samples=2000)
    mf_k = mean_field_optimum(model, data).pareto_k(data, num_samples=2000)
    assert exact_k < 0.5, exact_k
    assert mf_k > 0.7 and mf_k > exact_k + 0.3, (mf_k, exact_k)
    with pytest.raises(ValueError, match="no density"):
        map_at(model, model.exact_posterior(data).mean).pareto_k(data)


def test_coverage_of_the_exact_posterior_is_calibrated_and_map_under_covers():
    """Held-out data from the model itself (noise 0.1, the model's): the exact posterior's 90%
    interval covers 0.9 ± 0.05; from 15 training transitions the parameter uncertainty matters,
    and MAP (noise only) covers less."""
    data = linear_system(2015, seed=6, noise=0.1)
    train, test = data[:15], data[15:]
    model = pprl.build_model(LINEAR, data.obs_dim, data.act_dim)
    model.fit_normalizer(train)
    exact = exact_posterior(model, train).coverage(test, num_samples=2000)
    point = map_at(model, model.exact_posterior(train).mean).coverage(test, num_samples=2000)
    assert abs(exact[0.9] - 0.9) < 0.05 and abs(exact[0.5] - 0.5) < 0.05, exact
    assert point[0.9] < exact[0.9] - 0.02 and point[0.5] < exact[0.5] - 0.02, (point, exact)  # SE ≈ 0.006


def test_inference_data_round_trips_and_az_compare_ranks_families_and_nuts(tmp_path):
    data = linear_system(120, seed=7)
    train, test = data[:90], data[90:]
    posts = {"laplace": pprl.fit(LINEAR, "laplace", train, steps=1500, seed=0, progress=False),
             "map": pprl.fit(LINEAR, "map", train, steps=1500, seed=0, progress=False),
             "nuts": pprl.nuts(LINEAR, train, num_samples=300, num_warmup=300, num_chains=2, progress=False)}
    idatas = {name: post.to_inference_data(train, num_samples=600) for name, post in posts.items()}
    held = posts["laplace"].to_inference_data(test, num_samples=200)
    assert held.posterior.theta.dims == ("chain", "draw", "weight")
    assert held.posterior.theta.coords["weight"].values[0] == "layer0.w[0,0]"
    assert held.log_likelihood.next_obs.shape == (1, 200, 30)
    assert held.posterior_predictive.next_obs.shape == (1, 200, 30, data.obs_dim)
    assert "log_q" in held.sample_stats and held.sample_stats.log_q.shape == (1, 200)
    assert held.elbo_trace.elbo.shape == (1, 1, 1500)  # its own group: no NaN padding to the draws
    assert held.posterior_predictive.f.shape == (1, 200, 30, data.obs_dim)
    assert {"diverging", "tree_depth", "energy"} <= set(idatas["nuts"].sample_stats.data_vars)
    held.to_netcdf(tmp_path / "laplace.nc")
    back = az.from_netcdf(tmp_path / "laplace.nc")
    np.testing.assert_array_equal(back.log_likelihood.next_obs.values, held.log_likelihood.next_obs.values)
    table = az.compare(idatas)
    assert set(table.index) == {"laplace", "map", "nuts"}
    # Laplace is exact here: its LOO elpd matches NUTS' within their standard errors
    diff = abs(table.loc["laplace", "elpd_loo"] - table.loc["nuts", "elpd_loo"])
    assert diff < 2 * (table.loc["laplace", "se"] + table.loc["nuts", "se"]) / 2, table


def test_importance_weighting_moves_the_mean_field_predictive_to_the_exact_one(correlated):
    from pprl.diagnostics.inference_data import importance_weighted_log_predictive

    model, data = correlated
    train, test = data[:200], data[200:]
    model.fit_normalizer(train)
    exact = exact_posterior(model, train)
    mf = mean_field_optimum(model, train)
    far = pprl.Transitions(3 * test.obs, test.act, test.next_obs)  # off the data: where q's shape matters
    target = exact.log_predictive(far, num_samples=4000)
    plain = mf.log_predictive(far, num_samples=4000)
    weighted = importance_weighted_log_predictive(mf, train, far, num_samples=4000)
    assert abs(weighted - target) < 0.5 * abs(plain - target), (plain, weighted, target)
    assert abs(importance_weighted_log_predictive(exact, train, far, num_samples=4000) - target) < 0.05
