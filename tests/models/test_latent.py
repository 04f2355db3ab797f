"""Latent dynamics models (issue 15): the spec, the Pyro model, the Kalman reference, and
probabilistic PCA as the exact check of the model + amortised guide fitted by the ELBO."""
import math

import pytest
import torch
from pyro import poutine

import pprl
from pprl.data.sequences import Sequences
from pprl.models.kalman import kalman_log_likelihood
from pprl.models.latent import LatentModel, build_latent_model
from pprl.models.latent_spec import LatentSpec, parse_latent_spec
from pprl.rng import seeded
from pprl.spec import SpecError, as_model_spec, parse_model_spec

pytestmark = pytest.mark.usefixtures("single_thread")

PPCA = {"type": "latent", "observation": {"kind": "vector", "size": 5}, "latent_size": 2,
        "encoder": {"type": "linear"}, "decoder": {"type": "linear"}, "transition": {"type": "none"},
        "likelihood": {"type": "normal", "scale": 1.0, "learn_scale": True}, "sequence_length": 0}


# ----------------------------------------------------------------------------- the spec

def test_shipped_latent_specs_parse_and_build():
    pixels = as_model_spec("latent_pendulum_pixels")
    assert isinstance(pixels, LatentSpec) and pixels.obs_shape == (1, 32, 32) and pixels.guide == "filtering"
    vector = as_model_spec("latent_vector")
    assert vector.obs_shape == (3,) and vector.likelihood.type == "normal"
    with seeded(0):
        model = build_latent_model(pixels, act_dim=1)
    assert model.obs_dim == 1024 and model.decode(torch.zeros(2, 8)).shape == (2, 1024)
    with pytest.raises(ValueError, match="build_latent_model"):
        pprl.build_model("latent_vector", 3, 1)


BAD = [  # (mapping, fragments of the one-line message)
    ({"type": "latent"}, ["missing field 'observation'"]),
    ({"type": "latent", "observation": {"kind": "video", "size": 3}}, ["field 'observation.kind'", "vector, image"]),
    ({"type": "latent", "observation": {"kind": "vector"}}, ["missing field 'observation.size'"]),
    ({"type": "latent", "observation": {"kind": "image", "shape": [1, 30, 30]}}, ["field 'observation.shape'",
                                                                                 "multiples of 4"]),
    ({"type": "latent", "observation": {"kind": "image", "shape": [32, 32]}}, ["field 'observation.shape'", "[C, H, W]"]),
    ({"type": "latent", "observation": {"size": 3}, "latent_size": 0}, ["field 'latent_size' must be > 0"]),
    ({"type": "latent", "observation": {"size": 3}, "encoder": {"type": "conv"}}, ["field 'encoder.type'",
                                                                                   "needs image observations"]),
    ({"type": "latent", "observation": {"size": 3}, "decoder": {"type": "rnn"}}, ["field 'decoder.type'",
                                                                                 "linear, mlp, conv"]),
    ({"type": "latent", "observation": {"size": 3}, "transition": {"type": "gru"}}, ["field 'transition.type'"]),
    ({"type": "latent", "observation": {"size": 3}, "transition": {"min_scale": -1.0}},
     ["field 'transition.min_scale' must be > 0"]),
    ({"type": "latent", "observation": {"size": 3}, "likelihood": {"type": "poisson"}}, ["field 'likelihood.type'",
                                                                                        "normal, bernoulli"]),
    ({"type": "latent", "observation": {"size": 3}, "likelihood": {"type": "bernoulli", "scale": 0.1}},
     ["field 'likelihood.scale'", "bernoulli"]),
    ({"type": "latent", "observation": {"size": 3}, "guide": "smoother"}, ["field 'guide'", "per_step, filtering"]),
    ({"type": "latent", "observation": {"size": 3}, "estimator": "reinforce"}, ["field 'estimator'",
                                                                               "reparameterised, score_function"]),
    ({"type": "latent", "observation": {"size": 3}, "free_nats": -1.0}, ["field 'free_nats' must be >= 0"]),
    ({"type": "latent", "observation": {"size": 3}, "kl_balance": 1.5}, ["field 'kl_balance'", "0 <= kl_balance <= 1"]),
    ({"type": "latent", "observation": {"size": 3}, "kl_balance": 0.8, "estimator": "score_function"},
     ["field 'kl_balance'", "score_function"]),
    ({"type": "latent", "observation": {"size": 3}, "transition": {"type": "none"}, "guide": "filtering"},
     ["field 'guide'", "allowed: per_step"]),
    ({"type": "latent", "observation": {"size": 3}, "sequence_length": 4, "overshooting": 5},
     ["field 'overshooting'", "at most sequence_length (4)"]),
    ({"type": "latent", "observation": {"size": 3}, "transition": {"type": "none"}, "overshooting": 3},
     ["field 'overshooting'", "allowed transition.type: mlp, linear"]),
    ({"type": "latent", "observation": {"size": 3}, "overshooting": -1}, ["field 'overshooting' must be >= 0"]),
    ({"type": "latent", "observation": {"size": 3}, "overshooting_scale": 0.5}, ["field 'overshooting_scale'",
                                                                                "overshooting to a distance >= 2"]),
    ({"type": "latent", "observation": {"size": 3}, "overshooting": 3, "overshooting_scale": 0.0},
     ["field 'overshooting_scale' must be > 0"]),
    ({"type": "latent", "observation": {"size": 3}, "overshooting": 3, "overshooting_scale": float("inf")},
     ["field 'overshooting_scale' must be finite"]),
    ({"type": "latent", "observation": {"size": 3}, "overshooting": 3, "estimator": "score_function"},
     ["field 'overshooting'", "score_function"]),
    ({"type": "latent", "observation": {"size": 3}, "hidden_sizes": [8]}, ["unknown field 'hidden_sizes'"]),
    ({"type": "latent", "observation": {"size": 3}, "encoder": {"hidden_sizes": []}}, ["field 'encoder.hidden_sizes'"]),
]


@pytest.mark.parametrize("data, fragments", BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_latent_specs_are_one_spec_error_naming_the_field(data, fragments):
    with pytest.raises(SpecError) as info:
        parse_model_spec(data, "m.yaml")
    message = str(info.value)
    assert "\n" not in message and message.startswith("m.yaml: ")
    for fragment in fragments:
        assert fragment in message, message


def test_round_trip_of_every_option():
    spec = parse_latent_spec({"type": "latent", "observation": {"kind": "image", "shape": [3, 16, 16]},
                              "latent_size": 5, "encoder": {"type": "conv", "features": 32},
                              "decoder": {"type": "mlp", "hidden_sizes": [16, 16], "activation": "tanh"},
                              "transition": {"type": "linear"}, "likelihood": {"type": "bernoulli"},
                              "guide": "smoothing", "free_nats": 1.0, "kl_balance": 0.8, "sequence_length": 4,
                              "overshooting": 3, "overshooting_scale": 0.5})
    assert parse_model_spec(spec.to_dict()) == spec
    assert (spec.overshooting, spec.overshooting_scale) == (3, 0.5)
    for distance in (0, 1):  # 1 is the ELBO's own KL term: no overshooting, and no scale written
        off = parse_latent_spec({"type": "latent", "observation": {"size": 3}, "overshooting": distance})
        assert "overshooting_scale" not in off.to_dict() and parse_model_spec(off.to_dict()) == off
    assert "overshooting" not in parse_latent_spec({"type": "latent", "observation": {"size": 3}}).to_dict()


# ----------------------------------------------------------------------------- the Pyro model

def test_model_sites_and_plate_scale():
    spec = parse_latent_spec({**PPCA, "transition": {"type": "mlp", "hidden_sizes": [8]}, "sequence_length": 3},
                             "m.yaml")
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = LatentModel(spec, act_dim=1)
    obs, act = torch.randn(4, 3, 5), torch.randn(4, 2, 1)
    tr = poutine.trace(model).get_trace(obs, act, 40)
    sites = [n for n, s in tr.nodes.items() if s["type"] == "sample" and n != "sequences"]
    assert sites == ["z_0", "o_0", "z_1", "o_1", "z_2", "o_2"]
    assert all(tr.nodes[n]["scale"] == 10.0 for n in sites)  # N / B = 40 / 4
    assert tr.nodes["o_1"]["is_observed"] and tr.nodes["z_1"]["value"].shape == (4, 2)


def test_kalman_likelihood_is_the_joint_gaussian():
    g = torch.Generator().manual_seed(0)
    k, n, m, T, N = 2, 3, 1, 4, 5
    A, B, b = torch.randn(k, k, generator=g) * 0.5, torch.randn(k, m, generator=g), torch.randn(k, generator=g)
    C, d = torch.randn(n, k, generator=g), torch.randn(n, generator=g)
    Q, R, m0, P0 = 0.3 * torch.eye(k), 0.2 * torch.eye(n), torch.randn(k, generator=g), 2 * torch.eye(k)
    obs, act = torch.randn(N, T, n, generator=g), torch.randn(N, T - 1, m, generator=g)
    got = kalman_log_likelihood(obs, act, A, B, b, Q, C, d, R, m0, P0)
    # z = L ε + mean over the stacked (z_0 … z_{T−1}); o = blockdiag(C) z + d + noise
    A, B, b, C, d, Q, R, m0, P0 = (x.double() for x in (A, B, b, C, d, Q, R, m0, P0))
    L = torch.zeros(k * T, k * T, dtype=torch.float64)
    L[:k, :k] = torch.linalg.cholesky(P0)
    for t in range(1, T):
        L[t * k:(t + 1) * k] = A @ L[(t - 1) * k:t * k]
        L[t * k:(t + 1) * k, t * k:(t + 1) * k] += torch.linalg.cholesky(Q)
    Cz = torch.block_diag(*[C] * T)
    cov = Cz @ L @ L.T @ Cz.T + torch.block_diag(*[R] * T)
    for i in range(N):
        mean = [m0]
        for t in range(1, T):
            mean.append(A @ mean[-1] + B @ act[i, t - 1].double() + b)
        mu = Cz @ torch.cat(mean) + d.repeat(T)
        want = torch.distributions.MultivariateNormal(mu, cov).log_prob(obs[i].double().reshape(-1))
        assert float(got[i]) == pytest.approx(float(want), abs=1e-8)


# ----------------------------------------------------------------------------- probabilistic PCA

def ppca_data(N=500, D=5, d=2, noise=0.3, seed=0):
    g = torch.Generator().manual_seed(seed)
    W, mu = torch.randn(D, d, generator=g), torch.randn(D, generator=g)
    x = torch.randn(N, d, generator=g) @ W.T + mu + noise * torch.randn(N, D, generator=g)
    return x


def ppca_maximum_likelihood(x: torch.Tensor, d: int) -> float:
    """Tipping & Bishop (1999): μ = x̄, σ² = mean of the D − d smallest eigenvalues of the sample
    covariance S, W = U_d (Λ_d − σ² I)^½ → the maximised log-likelihood per datapoint."""
    x = x.double()
    xb = x.mean(0)
    S = (x - xb).T @ (x - xb) / len(x)
    lam, U = torch.linalg.eigh(S)
    lam, U = lam.flip(0), U.flip(1)
    s2 = lam[d:].mean()
    W = U[:, :d] * (lam[:d] - s2).sqrt()
    C = W @ W.T + s2 * torch.eye(len(xb), dtype=torch.float64)
    return float(torch.distributions.MultivariateNormal(xb, C).log_prob(x).mean())


def test_ppca_reaches_the_exact_likelihood_and_posterior():
    """A linear-Gaussian latent model (x = W z + μ + σ ε, z ~ N(0, I)) with a linear amortised encoder,
    fitted by the reparameterised ELBO: the ELBO and the exact log-likelihood at the fitted parameters
    come within 0.5% of the maximum-likelihood PPCA solution, and q(z|x) is the exact posterior
    N(M⁻¹Wᵀ(x − μ), σ²M⁻¹), M = WᵀW + σ²I (exact for a diagonal q once W's columns are orthogonal)."""
    x = ppca_data()
    data = Sequences(x.unsqueeze(1), torch.zeros(len(x), 0, 0))
    post = pprl.fit(PPCA, {"family": "mean_field", "lr": 0.05, "lr_decay": 0.01, "batch_size": len(x)}, data,
                    steps=3000, progress=False, seed=0)
    p = post.model.linear_gaussian_parameters()
    ll_fit = float(kalman_log_likelihood(data.obs, data.act, **p).mean())
    ll_ml = ppca_maximum_likelihood(x, 2)
    # the ELBO in closed form per datapoint, E_q log p(x|z) − KL(q(z|x) ‖ N(0, I))
    loc, scale = post.encode(data.obs)
    loc, scale = loc[:, 0].double(), scale[:, 0].double()
    W, mu, s2 = p["C"].detach().double(), p["d"].detach().double(), float(p["R"][0, 0])
    D = W.shape[0]
    rec = -D / 2 * math.log(2 * math.pi * s2) - (((x.double() - loc @ W.T - mu) ** 2).sum(-1)
                                                 + scale ** 2 @ (W ** 2).sum(0)) / (2 * s2)
    kl_prior = 0.5 * (scale ** 2 + loc ** 2 - 1 - torch.log(scale ** 2)).sum(-1)
    elbo = float((rec - kl_prior).mean())
    print(f"PPCA per datapoint: exact log-lik at the fit {ll_fit:.5f}, at the ML solution {ll_ml:.5f}, ELBO {elbo:.5f}")
    assert elbo <= ll_fit + 1e-6 and ll_fit <= ll_ml + 1e-6
    assert abs(ll_fit - ll_ml) < 0.005 * abs(ll_ml)
    assert abs(elbo - ll_ml) < 0.005 * abs(ll_ml)
    assert abs(post.elbo(data, 64) - elbo) < 0.03  # the Monte-Carlo ELBO agrees (its standard error ≈ 0.006)
    # the learned posterior against the exact one
    M = W.T @ W + s2 * torch.eye(2, dtype=torch.float64)
    mean = (x.double() - mu) @ torch.linalg.solve(M, W.T).T
    cov = s2 * torch.linalg.inv(M)
    sd = cov.diagonal().sqrt()
    assert ((loc - mean).abs() / sd).max() < 0.2
    assert torch.allclose(scale, sd.expand_as(scale), rtol=0.05)
    q = torch.distributions.MultivariateNormal(loc, torch.diag_embed(scale ** 2))
    exact = torch.distributions.MultivariateNormal(mean, cov)
    assert float(torch.distributions.kl_divergence(q, exact).mean()) < 0.005  # = log p(x) − ELBO(x)
