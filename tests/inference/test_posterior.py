"""Posterior: predict / log_predictive / prior_log_predictive / sample (seeded), save / load.

Checked through the public API only, mostly on the linear-Gaussian model, whose posterior and
posterior predictive are Gaussian in closed form (``LinearGaussianDynamics.exact_posterior``):
for θ ~ N(m, Σ) and x̃ = [s, a, 1], output j is y_j | x ~ N(x̃ᵀ m_j, x̃ᵀ Σ_jj x̃ + σ²), where
m_j, Σ_jj are the mean and covariance of column j of W (θ = W flattened row-major).
"""
import math

import numpy as np
import pytest
import torch

import pprl
from pprl.inference.posterior import posterior_from_state
from tests.conftest import linear_system

pytestmark = pytest.mark.usefixtures("single_thread")

NOISE = 0.1
PRIOR = 1.0
LINEAR = {"type": "linear_gaussian", "prior": {"weight_scale": PRIOR}, "likelihood": {"noise_scale": NOISE}}
SMALL_BNN = {"type": "bnn", "hidden_sizes": [8, 4]}
FAMILIES = ["mean_field", "low_rank", "full_rank", "flow", "map", "laplace"]
# Settings under which each family reaches its optimum on the 80-transition linear problem.
CONVERGED = {
    "laplace": {"family": "laplace", "steps": 300, "lr": 0.05, "num_particles": 1},
    "full_rank": {"family": "full_rank", "steps": 1500, "lr": 0.03, "lr_decay": 0.01, "num_particles": 32,
                  "batch_size": 80, "init_scale": 0.1},
    "map": {"family": "map", "steps": 300, "lr": 0.05},
    "mean_field": {"family": "mean_field", "steps": 300},
}


@pytest.fixture(scope="module")
def data():
    """80 training and 40 held-out transitions of one linear system (obs_dim 2, act_dim 1)."""
    both = linear_system(120, noise=NOISE, seed=1)
    return both[:80], both[80:]


@pytest.fixture(scope="module")
def exact(data):
    train, _ = data
    model = pprl.build_model(LINEAR, train.obs_dim, train.act_dim)
    model.fit_normalizer(train)  # a no-op: the spec says normalize: false
    return model.exact_posterior(train)


@pytest.fixture(scope="module")
def fitted(data):
    """Posteriors fitted to convergence on the training half, one per family in CONVERGED (lazily)."""
    cache = {}

    def get(family):
        if family not in cache:
            cache[family] = pprl.fit(LINEAR, CONVERGED[family], data[0], seed=0, progress=False)
        return cache[family]
    return get


def closed_form_predictive(mean, cov, obs, act, obs_dim):
    """Mean and variance [N, obs_dim] of y | x under θ ~ N(mean, cov) for the linear-Gaussian model
    (float64). Column j of W sits at θ[i * obs_dim + j]."""
    x = torch.cat([obs, act, torch.ones(len(obs), 1)], -1).double()
    mean, cov = mean.double(), cov.double()
    k = x.shape[1]
    m, v = torch.empty(len(x), obs_dim, dtype=torch.float64), torch.empty(len(x), obs_dim, dtype=torch.float64)
    for j in range(obs_dim):
        idx = torch.arange(k) * obs_dim + j
        m[:, j] = x @ mean[idx]
        v[:, j] = torch.einsum("ni,ij,nj->n", x, cov[idx][:, idx], x) + NOISE**2
    return m, v


def gaussian_log_density(y, m, v):
    """Σ_j log N(y_j; m_j, v_j) per row → [N] (float64)."""
    return (-0.5 * (math.log(2 * math.pi) + v.log() + (y.double() - m).square() / v)).sum(-1)


# ----------------------------------------------------------------------------- predict

def test_predict_shapes_for_one_and_many_inputs(data, fitted):
    train, test = data
    post = fitted("mean_field")
    many = post.predict(test.obs[:7], test.act[:7], num_samples=13)
    assert many.shape == (13, 7, train.obs_dim) and many.dtype == torch.float32
    one = post.predict(test.obs[3], test.act[3], num_samples=13)
    assert one.shape == (13, 1, train.obs_dim)
    # the mean part of one input is that input's column of the batched call (same seed → same θ)
    torch.testing.assert_close(post.predict(test.obs[3], test.act[3], num_samples=13, noise=False)[:, 0],
                               post.predict(test.obs[:7], test.act[:7], num_samples=13, noise=False)[:, 3])
    # numpy float64 inputs are accepted and give the float32 result of the same tensors
    from_numpy = post.predict(test.obs[:7].double().numpy(), test.act[:7].double().numpy(), num_samples=13)
    torch.testing.assert_close(from_numpy, many)


def test_noise_false_is_the_mean_function_and_noise_adds_the_likelihood(data, fitted):
    """MAP has one θ: without noise every draw is f(x; θ̂) = s W_s + a W_a + b; with noise the draws
    spread by the likelihood's σ around it."""
    _, test = data
    post = fitted("map")
    mean = post.predict(test.obs, test.act, num_samples=20, noise=False)
    assert (mean == mean[0]).all(), "noise=False with a point posterior must not vary across samples"
    layer = post.sample(1)
    x = torch.cat([test.obs, test.act], -1)
    torch.testing.assert_close(mean[0], x @ layer["layer0.weight"][0] + layer["layer0.bias"][0])

    noisy = post.predict(test.obs, test.act, num_samples=4000, noise=True, seed=1)
    resid = noisy - mean[0]
    assert resid.mean().abs() < 5 * NOISE / math.sqrt(resid.numel())
    torch.testing.assert_close(resid.std(0), torch.full_like(resid[0], NOISE), rtol=0.12, atol=0.0)


@pytest.mark.parametrize("family", ["laplace", "full_rank"])
def test_predict_matches_the_closed_form_posterior_predictive(data, exact, fitted, family):
    """For a linear-Gaussian model Laplace is exact and full-rank can be: the draws' empirical mean
    and variance match the exact posterior predictive within Monte-Carlo error. The inputs lie
    beyond the training data, where q(θ)'s spread is a large share of the predictive variance
    (a predictive that ignored it, like MAP's, has up to half the variance there)."""
    train, test = data
    post = fitted(family)
    torch.testing.assert_close(post.mean_theta(), exact.mean, rtol=0.0, atol=0.01)
    S, obs, act = 4000, 4 * test.obs[:6], test.act[:6]
    draws = post.predict(obs, act, num_samples=S, seed=2).double()
    m, v = closed_form_predictive(exact.mean, exact.covariance_matrix, obs, act, train.obs_dim)
    assert ((draws.mean(0) - m).abs() < 5 * (v / S).sqrt() + 2e-3).all(), (draws.mean(0), m)
    torch.testing.assert_close(draws.var(0), v, rtol=5 * math.sqrt(2 / S), atol=0.0)
    # without noise the draws average to the exact predictive mean
    mean = post.predict(obs, act, num_samples=S, seed=2, noise=False).double().mean(0)
    torch.testing.assert_close(mean, m, rtol=0.0, atol=0.02)


# ----------------------------------------------------------------------------- log predictive

def test_log_predictive_matches_the_closed_form_density(data, exact, fitted):
    """On 40 inputs beyond the training data with s' drawn from the exact posterior predictive, the
    Monte-Carlo log predictive of the (exact) Laplace posterior is the closed-form density; MAP's
    plug-in density, which ignores q(θ)'s spread, is clearly worse there."""
    train, test = data
    obs, act = 4 * test.obs, test.act
    m, v = closed_form_predictive(exact.mean, exact.covariance_matrix, obs, act, train.obs_dim)
    g = torch.Generator().manual_seed(0)
    next_obs = (m + v.sqrt() * torch.randn(m.shape, generator=g, dtype=torch.float64)).float()
    n = len(obs)
    far = pprl.Transitions(obs, act, next_obs, torch.zeros(n), torch.zeros(n, dtype=torch.bool),
                           torch.zeros(n, dtype=torch.bool))
    expected = float(gaussian_log_density(next_obs, m, v).mean())
    got = fitted("laplace").log_predictive(far, num_samples=2000)
    assert abs(got - expected) < 0.03, (got, expected)
    assert fitted("map").log_predictive(far) < expected - 0.1


def test_prior_log_predictive_matches_the_closed_form_prior_predictive(data, fitted):
    """Under θ ~ N(0, σ_p² I): y_j | x ~ N(0, σ_p² |x̃|² + σ²). The Monte-Carlo log-mean-exp is biased
    low (Jensen), so it may fall a little short of the exact value, never far above it."""
    train, test = data
    D = (train.obs_dim + train.act_dim + 1) * train.obs_dim
    m, v = closed_form_predictive(torch.zeros(D), PRIOR**2 * torch.eye(D), test.obs, test.act, train.obs_dim)
    expected = float(gaussian_log_density(test.next_obs, m, v).mean())
    got = fitted("map").prior_log_predictive(test, num_samples=20000)
    assert expected - 0.1 < got < expected + 0.05, (got, expected)


def test_fitting_beats_the_prior_and_the_prior_baseline_ignores_the_family(data, fitted):
    _, test = data
    baselines = []
    for family in CONVERGED:
        post = fitted(family)
        prior = post.prior_log_predictive(test)
        assert post.log_predictive(test) > prior + 3.0, family
        baselines.append(prior)
    assert baselines == [baselines[0]] * len(baselines)  # the same model and seed: the same prior draws


# ----------------------------------------------------------------------------- seeds

def test_same_seed_same_draws_different_seed_different_draws(data, fitted):
    _, test = data
    post = fitted("mean_field")
    obs, act = test.obs[:5], test.act[:5]
    calls = {
        "predict": lambda seed: post.predict(obs, act, num_samples=8, seed=seed),
        "sample_theta": lambda seed: post.sample_theta(8, seed=seed),
        "sample": lambda seed: post.sample(8, seed=seed)["layer0.weight"],
        "log_predictive": lambda seed: torch.tensor(post.log_predictive(test, num_samples=16, seed=seed)),
        "prior_log_predictive": lambda seed: torch.tensor(post.prior_log_predictive(test, num_samples=16, seed=seed)),
    }
    for name, call in calls.items():
        first = call(3)
        torch.randn(100)  # whatever ran in between, the same seed gives the same draws
        assert torch.equal(call(3), first), name
        assert not torch.equal(call(4), first), name


# ----------------------------------------------------------------------------- sample, mean_theta

def test_sample_layers_are_slices_of_theta(data, fitted):
    """θ = W flattened row-major with W = [[W_s], [W_a], [b]] of shape [in + 1, out]."""
    train, _ = data
    post = fitted("mean_field")
    draws = post.sample(5, seed=3)
    assert set(draws) == {"theta", "noise_scale", "layer0.weight", "layer0.bias"}
    theta = draws["theta"]
    assert torch.equal(theta, post.sample_theta(5, seed=3))
    n_in, n_out = train.obs_dim + train.act_dim, train.obs_dim
    W = theta.reshape(5, n_in + 1, n_out)
    assert torch.equal(draws["layer0.weight"], W[:, :n_in])
    assert torch.equal(draws["layer0.bias"], W[:, n_in])
    torch.testing.assert_close(draws["noise_scale"], torch.full((n_out,), NOISE))
    draws["noise_scale"].fill_(7.0)  # a copy: changing it leaves the model alone
    torch.testing.assert_close(post.sample(1)["noise_scale"], torch.full((n_out,), NOISE))


def test_sample_layers_of_a_bnn_partition_theta(data):
    train, _ = data
    post = pprl.fit(SMALL_BNN, "mean_field", train, steps=5, progress=False)
    draws = post.sample(4, seed=1)
    widths = [train.obs_dim + train.act_dim, *SMALL_BNN["hidden_sizes"], train.obs_dim]
    assert sorted(k for k in draws if k.startswith("layer")) == sorted(
        f"layer{l}.{p}" for l in range(len(widths) - 1) for p in ("weight", "bias"))
    parts = []
    for l, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:])):
        assert draws[f"layer{l}.weight"].shape == (4, fan_in, fan_out)
        assert draws[f"layer{l}.bias"].shape == (4, fan_out)
        parts += [draws[f"layer{l}.weight"].reshape(4, -1), draws[f"layer{l}.bias"]]
    slices = torch.cat(parts, 1)
    assert slices.shape == draws["theta"].shape == (4, post.model.param_dim)
    # every coordinate of θ lands in exactly one layer slice
    assert torch.equal(slices.sort(1).values, draws["theta"].sort(1).values)


@pytest.mark.parametrize("family", ["mean_field", "full_rank", "map"])
def test_mean_theta_is_the_mean_of_sample_theta(fitted, family):
    post = fitted(family)
    draws = post.sample_theta(20000, seed=5)
    assert draws.shape == (20000, post.model.param_dim)
    se = draws.std(0) / math.sqrt(len(draws))
    assert ((draws.mean(0) - post.mean_theta()).abs() <= 5 * se + 1e-6).all()
    if family == "map":
        assert (draws == post.mean_theta()).all()


def test_renormalize_without_normalisation_changes_nothing(data):
    train, test = data
    post = pprl.fit(LINEAR, "mean_field", train, steps=20, progress=False)
    theta, lp = post.sample_theta(10), post.log_predictive(test)
    assert post.renormalize(test) is post
    torch.testing.assert_close(post.sample_theta(10), theta, rtol=0.0, atol=1e-6)
    assert post.log_predictive(test) == pytest.approx(lp, abs=1e-5)


# ----------------------------------------------------------------------------- save / load

@pytest.mark.parametrize("family", FAMILIES)
def test_save_load_round_trip(tmp_path, data, family):
    train, test = data
    post = pprl.fit(LINEAR, family, train, steps=20, seed=1, progress=False)
    path = post.save(tmp_path / "nested" / "dir" / "post.pt")  # parents are created
    assert path == tmp_path / "nested" / "dir" / "post.pt"
    assert [p.name for p in path.parent.iterdir()] == ["post.pt"]  # no .tmp left behind

    for loaded in (pprl.load_posterior(path), posterior_from_state(post.state())):
        assert isinstance(loaded, pprl.Posterior)
        assert loaded.family == family and repr(loaded) == repr(post)
        assert torch.equal(loaded.elbo_trace, post.elbo_trace) and loaded.info == post.info
        assert loaded.log_predictive(test, num_samples=50) == post.log_predictive(test, num_samples=50)
        assert torch.equal(loaded.sample_theta(9, seed=2), post.sample_theta(9, seed=2))
        assert torch.equal(loaded.mean_theta(), post.mean_theta())
        assert torch.equal(loaded.predict(test.obs[:4], test.act[:4], num_samples=6),
                           post.predict(test.obs[:4], test.act[:4], num_samples=6))


def test_save_replaces_an_existing_checkpoint_and_a_failed_save_keeps_it(tmp_path, data, monkeypatch):
    train, test = data
    first = pprl.fit(LINEAR, "map", train, steps=5, progress=False)
    second = pprl.fit(LINEAR, "map", train, steps=30, progress=False)
    path = tmp_path / "post.pt"
    first.save(path)
    second.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["post.pt"]
    assert torch.equal(pprl.load_posterior(path).mean_theta(), second.mean_theta())

    def crash(obj, f, *args, **kwargs):  # a crash half-way through writing
        open(f, "wb").write(b"\x80\x02half")
        raise OSError("disk full")
    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        first.save(path)
    monkeypatch.undo()
    assert torch.equal(pprl.load_posterior(path).mean_theta(), second.mean_theta())


def test_loading_a_missing_path_names_it(tmp_path):
    missing = tmp_path / "nowhere" / "post.pt"
    with pytest.raises(FileNotFoundError, match="nowhere"):
        pprl.load_posterior(missing)
    with pytest.raises(FileNotFoundError, match=str(tmp_path.name)):
        pprl.load_posterior(tmp_path)  # a directory is not a checkpoint


def test_loading_a_torch_file_that_is_not_a_posterior_names_it(tmp_path):
    for name, obj in [("weights.pt", {"w": torch.zeros(3)}), ("list.pt", [1, 2]),
                      ("other.pt", {"format": "pprl.posterior/999"})]:
        path = tmp_path / name
        torch.save(obj, path)
        with pytest.raises(ValueError, match=f"{name}: not a pprl posterior checkpoint"):
            pprl.load_posterior(path)
    with pytest.raises(ValueError, match="inside run.pt: not a pprl posterior"):
        posterior_from_state({"model": 1}, where="inside run.pt")


@pytest.mark.parametrize("content", [b"hello, not a checkpoint\n", b""], ids=["text", "empty"])
def test_loading_a_file_that_is_not_a_torch_checkpoint_names_it(tmp_path, content):
    path = tmp_path / "notes.pt"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="notes.pt"):
        pprl.load_posterior(path)
