"""Dynamics models: batched evaluation, local reparameterisation, priors, normalisation."""
import math

import pyro
import pytest
import torch

import pprl
from pprl.models.layers import local_reparam_mlp
from tests.conftest import linear_system

BNN = {"type": "bnn", "hidden_sizes": [16, 8], "activation": "tanh"}


def test_batched_mlp_equals_per_particle_loop():
    model = pprl.build_model(BNN, 3, 2)
    theta, x = torch.randn(5, model.param_dim), torch.randn(7, 5)
    batched = model.mean(theta, x)
    for p in range(5):
        h = x
        for i, layer in enumerate(model.layers):
            w = theta[p, layer.weight].view(layer.fan_in, layer.fan_out)
            h = h @ w + theta[p, layer.bias]
            h = torch.tanh(h) if i < len(model.layers) - 1 else h
        torch.testing.assert_close(batched[p], h)


def test_parameter_count_and_fan_in_prior():
    model = pprl.build_model(BNN, 3, 2)
    assert model.param_dim == 5 * 16 + 16 + 16 * 8 + 8 + 8 * 3 + 3
    first = model.layers[0]
    assert torch.allclose(model.prior_scale[first.weight], torch.tensor(1 / math.sqrt(5)))
    assert torch.allclose(model.prior_scale[first.bias], torch.tensor(1.0))


def test_local_reparameterisation_moments():
    """For one linear layer z = x W + b with W ~ N(μ, σ²): E z = x μ_W + μ_b, Var z = x² σ_W² + σ_b²."""
    model = pprl.build_model({"type": "linear_gaussian"}, 2, 1)
    loc, scale = torch.randn(model.param_dim), torch.rand(model.param_dim) + 0.1
    x = torch.randn(4, 3)
    torch.manual_seed(0)
    z = local_reparam_mlp(loc, scale, x, model.layers, None, 100_000)
    layer = model.layers[0]
    w_loc, w_var = loc[layer.weight].view(3, 2), scale[layer.weight].square().view(3, 2)
    mean = x @ w_loc + loc[layer.bias]
    var = x.square() @ w_var + scale[layer.bias].square()
    torch.testing.assert_close(z.mean(0), mean, atol=0.03, rtol=0)
    torch.testing.assert_close(z.var(0), var, rtol=0.03, atol=0)
    # and it matches sampling the weights themselves
    theta = loc + scale * torch.randn(100_000, model.param_dim)
    torch.testing.assert_close(model.mean(theta, x).var(0), var, rtol=0.03, atol=0)


def test_normalisation_round_trip_and_delta_target():
    data = linear_system(500)
    model = pprl.build_model(BNN, data.obs_dim, data.act_dim).fit_normalizer(data)
    y = model.targets(data.obs, data.next_obs)
    torch.testing.assert_close(y.mean(0), torch.zeros(data.obs_dim), atol=1e-5, rtol=0)
    torch.testing.assert_close(y.std(0), torch.ones(data.obs_dim), atol=1e-4, rtol=0)
    torch.testing.assert_close(model.to_next_obs(data.obs, y), data.next_obs, atol=1e-5, rtol=0)


def test_pyro_model_vectorises_over_particles():
    import pyro
    model = pprl.build_model(BNN, 3, 1)
    x, y = torch.randn(10, 4), torch.randn(10, 3)
    with pyro.plate("particles", 6, dim=-2):
        trace = pyro.poutine.trace(model).get_trace(x, y, 100)
    assert trace.nodes["theta"]["value"].shape == (6, 1, model.param_dim)
    assert trace.nodes["obs"]["fn"].batch_shape == (6, 10)
    trace.compute_log_prob()
    # the data plate scales the likelihood by N/M = 100/10
    assert trace.nodes["obs"]["scale"] == 10.0


def test_student_t_likelihood_matches_scipy_and_the_pyro_model():
    from scipy.stats import t as student_t

    spec = {"type": "bnn", "hidden_sizes": [8], "likelihood": {"type": "student_t", "df": 3.0, "noise_scale": 0.3}}
    model = pprl.build_model(spec, 2, 1).double()
    f, y = torch.randn(5, 2, dtype=torch.float64), 3 * torch.randn(5, 2, dtype=torch.float64)
    expected = student_t.logpdf(y.numpy(), df=3.0, loc=f.numpy(), scale=0.3).sum(-1)
    torch.testing.assert_close(model.log_likelihood(f, y), torch.from_numpy(expected))
    assert float(model.fisher_precision()[0]) == pytest.approx((3 + 1) / ((3 + 3) * 0.09))
    x = torch.randn(5, 3, dtype=torch.float64)
    theta = model.prior().sample()
    trace = pyro.poutine.trace(pyro.poutine.condition(model, {"theta": theta})).get_trace(x, y)
    obs = trace.nodes["obs"]
    mean = model.mean(theta[None], x)[0]
    torch.testing.assert_close(obs["fn"].log_prob(y).sum(), model.log_likelihood(mean, y).sum())
