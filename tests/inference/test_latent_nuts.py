"""NUTS reference for the local posterior of a latent model (issue 15): on a linear-Gaussian
state-space model it reproduces the exact state posterior (dense Gaussian conditioning, itself
checked against the Kalman filter's likelihood), and the guide-vs-NUTS gap is ~0 for a guide set
to the exact posterior and sees a guide shifted by one posterior sd."""
import math

import numpy as np
import pytest
import torch

from pprl.data.sequences import Sequences
from pprl.inference.amortised import MIN_SCALE, AmortisedGuide
from pprl.inference.latent_posterior import LatentPosterior
from pprl.inference.mcmc.latent_nuts import latent_nuts, local_posterior_gap, plot_local_posterior
from pprl.models.kalman import kalman_log_likelihood, state_posterior
from pprl.models.latent import build_latent_model, inverse_softplus
from pprl.rng import seeded
from pprl.spec import as_inference_spec

pytestmark = pytest.mark.usefixtures("single_thread")

from test_latent_fit import LGSSM, simulate_lgssm  # noqa: E402  (tests/inference is on sys.path)


def posterior_of(spec: dict, act_dim: int) -> LatentPosterior:
    with seeded(0):
        model, guide = build_latent_model(spec, act_dim), AmortisedGuide(build_latent_model(spec, act_dim).spec, act_dim)
    return LatentPosterior(model, guide, as_inference_spec("mean_field"))


def test_state_posterior_is_consistent_with_the_kalman_likelihood():
    """log p(o) = log p(o | z) + log p(z) − log p(z | o) at any z: the dense posterior against the
    filter, with full (non-diagonal) Q, R, P0, a non-zero m0 and a non-symmetric A."""
    g = torch.Generator().manual_seed(3)

    def spd(n):
        M = torch.randn(n, n, generator=g, dtype=torch.float64)
        return M @ M.T / n + 0.2 * torch.eye(n, dtype=torch.float64)

    k, n, m, T, N = 2, 3, 1, 5, 4
    p = dict(A=torch.tensor([[0.9, 0.3], [-0.2, 0.7]], dtype=torch.float64),
             B=torch.randn(k, m, generator=g, dtype=torch.float64), b=torch.randn(k, generator=g, dtype=torch.float64),
             Q=spd(k), C=torch.randn(n, k, generator=g, dtype=torch.float64),
             d=torch.randn(n, generator=g, dtype=torch.float64), R=spd(n),
             m0=torch.tensor([0.5, -1.0], dtype=torch.float64), P0=spd(k))
    obs = torch.randn(N, T, n, generator=g, dtype=torch.float64)
    act = torch.randn(N, T - 1, m, generator=g, dtype=torch.float64)
    mean, cov = state_posterior(obs, act, **p)
    z = torch.randn(N, T, k, dtype=torch.float64, generator=g)
    MVN = torch.distributions.MultivariateNormal
    lp = MVN(p["m0"], p["P0"]).log_prob(z[:, 0])
    for t in range(T):
        if t:
            lp += MVN(z[:, t - 1] @ p["A"].T + act[:, t - 1] @ p["B"].T + p["b"], p["Q"]).log_prob(z[:, t])
        lp += MVN(z[:, t] @ p["C"].T + p["d"], p["R"]).log_prob(obs[:, t])
    implied = lp - MVN(mean.reshape(N, -1), cov).log_prob(z.reshape(N, -1))
    torch.testing.assert_close(implied, kalman_log_likelihood(obs, act, **p))


@pytest.mark.parametrize("transition, likelihood", [("mlp", "normal"), ("mlp", "bernoulli"), ("linear", "normal"),
                                                    ("none", "bernoulli")])
def test_numpyro_model_is_the_torch_models_joint_density(transition, likelihood):
    """The JAX translation against the Pyro model's own log p(o, z | a) at random z (MLP transition
    with its min_scale floor, ELU and softplus layers, fractional Bernoulli intensities)."""
    import pyro
    from numpyro.infer.util import log_density

    from pprl.inference.mcmc.latent_nuts import latent_numpyro_model

    spec = {"type": "latent", "observation": {"kind": "vector", "size": 5}, "latent_size": 3,
            "encoder": {"type": "mlp", "hidden_sizes": [8]},
            "decoder": {"type": "mlp", "hidden_sizes": [8], "activation": "softplus"},
            "transition": {"type": transition, **({"hidden_sizes": [8], "min_scale": 0.05} if transition == "mlp" else {})},
            "likelihood": {"type": likelihood}}
    post = posterior_of(spec, act_dim=2)
    g = torch.Generator().manual_seed(0)
    obs = torch.rand(3, 4, 5, generator=g)  # intensities in [0, 1]: also valid Gaussian data
    act, z = torch.randn(3, 3, 2, generator=g), torch.randn(3, 4, 3, generator=g)
    conditioned = pyro.poutine.condition(post.model, data={f"z_{t}": z[:, t] for t in range(4)})
    with torch.no_grad():
        expected = float(pyro.poutine.trace(conditioned).get_trace(obs, act).log_prob_sum())
    got, _ = log_density(latent_numpyro_model(post.model), (obs.numpy(), act.numpy()), {}, {"z": z.numpy()})
    assert float(got) == pytest.approx(expected, rel=1e-5, abs=1e-3)


def test_nuts_reproduces_the_exact_state_posterior_of_a_linear_gaussian_ssm():
    data, true = simulate_lgssm(n=3, T=5)
    post = posterior_of({**LGSSM, "guide": "filtering"}, act_dim=1)
    m = post.model
    with torch.no_grad():  # the model at the simulator's parameters
        m.transition.weight.copy_(torch.cat([true["A"], true["B"]], 1)), m.transition.bias.copy_(true["b"])
        m.transition_scale_raw.fill_(inverse_softplus(0.3))
        m.decoder.weight.copy_(true["C"]), m.decoder.bias.copy_(true["d"])
        m.obs_log_scale.fill_(math.log(0.2))
    draws = latent_nuts(post, data, num_samples=600, num_warmup=400, num_chains=2, seed=0, progress=False)
    assert draws.z.shape == (2, 600, 3, 5, 2)
    mean, cov = state_posterior(data.obs, data.act, **true)
    sd = cov.diagonal().sqrt().reshape(5, 2)
    err = (draws.mean - mean).abs() / sd
    assert float(err.max()) < 0.25, err  # MC error of a mean with ESS ~ 400: ~0.05 sd
    ratio = draws.std / sd
    assert 0.85 < float(ratio.min()) and float(ratio.max()) < 1.15, ratio
    diag = draws.diagnostics()
    assert diag["num_divergences"] == 0 and diag["r_hat_max"] < 1.05 and diag["ess_bulk_min"] > 100


PPCA = {"type": "latent", "observation": {"kind": "vector", "size": 4}, "latent_size": 2,
        "encoder": {"type": "linear"}, "decoder": {"type": "linear"}, "transition": {"type": "none"},
        "likelihood": {"type": "normal", "scale": 0.5}, "sequence_length": 3}


def test_gap_is_zero_for_the_exact_guide_and_sees_a_shifted_one(tmp_path):
    """Probabilistic PCA with orthogonal columns W: p(z | o) = N(M⁻¹Wᵀ(o − d), σ²M⁻¹), M = WᵀW + σ²I
    diagonal, which a linear per-step guide represents exactly. Set to it, the guide's marginals
    match NUTS's; with its mean moved by one posterior sd in one of two dimensions, the mean
    error is ~½ sd on average."""
    post = posterior_of(PPCA, act_dim=0)
    W, d, sigma = torch.tensor([[2.0, 0.0], [0.0, 1.0], [0.0, 0.0], [0.0, 0.0]]), torch.tensor([0.5, -0.5, 0.0, 1.0]), 0.5
    M = W.T @ W + sigma ** 2 * torch.eye(2)
    gain, sd = torch.linalg.inv(M) @ W.T, sigma / M.diagonal().sqrt()
    with torch.no_grad():
        post.model.decoder.weight.copy_(W), post.model.decoder.bias.copy_(d)
        post.model.obs_log_scale.fill_(math.log(sigma))
        head = post.guide.head  # rows 0-1: the mean, rows 2-3: the raw scale
        head.weight.zero_(), head.weight[:2].copy_(gain)
        head.bias[:2].copy_(-gain @ d)
        head.bias[2:].copy_(torch.tensor([inverse_softplus(float(s) - MIN_SCALE) for s in sd]))
    g = torch.Generator().manual_seed(1)
    z = torch.randn(4, 3, 2, generator=g)
    data = Sequences(z @ W.T + d + sigma * torch.randn(4, 3, 4, generator=g), torch.zeros(4, 2, 0))
    draws = latent_nuts(post, data, num_samples=800, num_warmup=400, num_chains=2, seed=0, progress=False)
    exact = local_posterior_gap(post, data, draws, num_samples=4000)
    assert exact["mean_error_sd"] < 0.1 and abs(exact["sd_ratio"] - 1) < 0.06, exact
    with torch.no_grad():
        head.bias[0] += sd[0]
    shifted = local_posterior_gap(post, data, draws, num_samples=4000)
    assert 0.4 < shifted["mean_error_sd"] < 0.6 and shifted["w2"] > exact["w2"] + 0.1, shifted
    path = plot_local_posterior(post, data, draws, tmp_path / "local.png")
    assert path.is_file() and path.stat().st_size > 5000


def test_errors_are_clear():
    data, _ = simulate_lgssm(n=2, T=3)
    post = posterior_of(PPCA, act_dim=0)
    with pytest.raises(ValueError, match="obs_dim"):
        latent_nuts(post, data, progress=False)
    conv = posterior_of({"type": "latent", "observation": {"kind": "image", "shape": [1, 8, 8]}, "latent_size": 2,
                         "encoder": {"type": "conv"}, "decoder": {"type": "conv"}, "transition": {"type": "none"},
                         "likelihood": {"type": "bernoulli"}}, act_dim=0)
    frames = Sequences(torch.rand(2, 3, 64), torch.zeros(2, 2, 0))
    with pytest.raises(ValueError, match="conv"):
        latent_nuts(conv, frames, progress=False)
    with pytest.raises(ValueError, match="num_chains"):
        latent_nuts(posterior_of({**LGSSM}, 1), data, num_chains=0, progress=False)


def test_pprl_nuts_command_scores_a_fitted_latent_guide(tmp_path, capsys):
    import json

    import pprl
    from pprl.cli import main

    path = tmp_path / "pend.npz"
    pprl.collect("Pendulum-v1", 400, seed=0, num_envs=2).save(path)
    fitted = tmp_path / "fit"
    assert main(["fit", "latent_vector", "mean_field", "--data", str(path), "--steps", "30", "-o", str(fitted),
                 "--quiet"]) == 0
    out = tmp_path / "nuts"
    assert main(["nuts", "latent_vector", "--posterior", str(fitted / "posterior.pt"), "--data", str(path),
                 "--num-sequences", "2", "--num-samples", "100", "--num-warmup", "100", "--num-chains", "2",
                 "-o", str(out), "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_sequences"] == 2 and metrics["guide"] == "per_step" and metrics["num_samples"] == 100
    assert all(np.isfinite(metrics[k]) for k in ("mean_error_sd", "sd_ratio", "w2", "r_hat_max", "ess_bulk_min"))
    draws = np.load(out / "local_draws.npz")
    assert draws["z"].shape[:3] == (2, 100, 2) and (out / "local_posterior.png").is_file()
    capsys.readouterr()
    assert main(["nuts", "latent_vector", "--data", str(path), "-o", str(tmp_path / "x"), "--quiet"]) == 2
    assert "--posterior" in capsys.readouterr().err
    assert main(["nuts", "linear_gaussian", "--posterior", str(fitted / "posterior.pt"), "--data", str(path),
                 "-o", str(tmp_path / "y"), "--quiet"]) == 2
    assert "latent models" in capsys.readouterr().err


def test_compare_guides_ranks_the_smoothing_guide_closer_to_nuts_than_per_step():
    """On a linear-Gaussian state-space model p(z_t | o_{0:T}) uses every observation; a per-step
    guide q(z_t | o_t) sees one, so both its held-out ELBO and its distance to the NUTS reference
    are worse than the smoothing guide's."""
    from pprl.diagnostics.compare_latent import compare_guides

    from test_latent_fit import INFERENCE

    train, _ = simulate_lgssm(n=300, T=6)
    test, _ = simulate_lgssm(n=20, T=6, seed=5)
    table = compare_guides(LGSSM, ["per_step", "smoothing"], train, test, inference={**INFERENCE, "steps": 800},
                           nuts={"num_samples": 300, "num_warmup": 300, "num_chains": 2}, num_sequences=4,
                           progress=False)
    assert list(table.index) == ["per_step", "smoothing"] and table["r_hat_max"].max() < 1.05
    assert table.loc["smoothing", "held_out_elbo"] > table.loc["per_step", "held_out_elbo"] + 0.1
    assert table.loc["smoothing", "mean_error_sd"] < table.loc["per_step", "mean_error_sd"]
    with pytest.raises(ValueError, match="guides"):
        compare_guides(LGSSM, ["per_step", "per_step"], train, test)


def test_pprl_compare_on_a_latent_model_compares_its_guides(tmp_path, capsys):
    import pandas as pd
    import yaml

    import pprl
    from pprl.cli import main

    path = tmp_path / "pend.npz"
    pprl.collect("Pendulum-v1", 400, seed=0, num_envs=2).save(path)
    nuts = tmp_path / "nuts_small.yaml"
    nuts.write_text(yaml.safe_dump({"family": "nuts", "options": {"num_samples": 50, "num_warmup": 50,
                                                                  "num_chains": 2}}))
    out = tmp_path / "cmp"
    assert main(["compare", "latent_vector", "mean_field", "--guides", "per_step", "filtering", "--data", str(path),
                 "--steps", "10", "--nuts", str(nuts), "--num-sequences", "1", "-o", str(out), "--quiet"]) == 0
    table = pd.read_csv(out / "comparison.csv", index_col=0)
    assert list(table.index) == ["per_step", "filtering"] and {"held_out_elbo", "mean_error_sd", "w2"} <= set(table)
    assert (out / "comparison.png").is_file() and (out / "local_posterior_filtering.png").is_file()
    assert (out / "posterior_per_step.pt").is_file()
    capsys.readouterr()
    assert main(["compare", "latent_vector", "mean_field", "--guides", "backwards", "--data", str(path), "-o",
                 str(tmp_path / "x"), "--quiet"]) == 2
    assert "guides" in capsys.readouterr().err
    assert main(["compare", "linear_gaussian", "mean_field", "--guides", "per_step", "--data", str(path), "-o",
                 str(tmp_path / "y"), "--quiet"]) == 2
    assert "latent models" in capsys.readouterr().err
    assert main(["compare", "latent_vector", "mean_field", "--nuts", "mean_field", "--data", str(path), "-o",
                 str(tmp_path / "z"), "--quiet"]) == 2
    assert "family nuts" in capsys.readouterr().err
